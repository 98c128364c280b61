//! quack's worker library: run one map task on DuckDB and return its partial result as Arrow.
//!
//! The same [`runner::Worker`] runs inside the coordinator's in-process invoker (the embedded
//! default and test double) and inside the AWS Lambda `bootstrap` binary, where [`handler`] adds
//! the sandbox ([`sandbox`]), S3 access through httpfs ([`s3`]) and spilled partials ([`spill`]). The wire types in
//! [`wire`] are the only contract between the two sides.

pub mod convert;
pub mod exchange;
pub mod extension;
pub mod handler;
pub mod ipc;
pub mod quote;
pub mod runner;
pub mod s3;
pub mod sandbox;
pub mod spill;
pub mod wire;

pub use runner::{Worker, WorkerConfig, WorkerError};
pub use wire::{
    valid_query_id, ErrorType, ExchangeWrite, PartialData, PartialResult, Task, TaskFailure, TaskResponse, TaskStats,
    WIRE_VERSION,
};
