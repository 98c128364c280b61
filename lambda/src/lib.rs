//! quack's worker library: run one map task on DuckDB and return its partial result as Arrow.
//!
//! The same [`runner::Worker`] runs inside the coordinator's in-process invoker (the embedded
//! default and test double) and inside the AWS Lambda `bootstrap` binary. The wire types in
//! [`wire`] are the only contract between the two sides.

pub mod ipc;
pub mod runner;
pub mod wire;

pub use runner::{Worker, WorkerConfig, WorkerError};
pub use wire::{ErrorType, PartialData, PartialResult, Task, TaskFailure, TaskResponse, TaskStats, WIRE_VERSION};
