//! quack: answer one SQL query by splitting it per partition of a hive-partitioned Parquet table,
//! running each piece in its own DuckDB worker, and reducing the partial results into exactly the
//! answer one DuckDB would give over all the files.
//!
//! [`Quack`] wires the parts: the [`plan::Planner`] (parse, list, prune, pack, [`rewrite`]), an
//! [`invoke::Invoker`] that runs the tasks (in-process by default), and the [`reduce`] and
//! [`output`] steps in the coordinator's own DuckDB ([`engine::Engine`]).

pub mod config;
pub mod demo;
pub mod engine;
pub mod error;
pub mod invoke;
pub mod output;
pub mod partitions;
pub mod plan;
pub mod reduce;
pub mod rewrite;
pub mod tasks;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use quack_lambda::PartialResult;
use tracing::Instrument;

pub use config::Config;
pub use error::{Error, Result};
pub use output::{Destination, Format};
pub use plan::Plan;

use invoke::{InProcessInvoker, Invoker, Progress, Retry, Timeout};
use partitions::{Lister, LocalLister};

/// Figures about one executed query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryReport {
    pub query_id: String,
    pub strategy: String,
    pub tasks: usize,
    pub retries: u64,
    pub cold_starts: usize,
    /// Bytes of input the tasks read (as reported by workers).
    pub bytes_read: u64,
    /// Rows of partial results shipped to the reduce.
    pub partial_rows: u64,
    /// Sum of the workers' execution times.
    pub worker_ms: u64,
    pub plan_ms: u64,
    pub map_ms: u64,
    pub reduce_ms: u64,
    /// Rows of the answer.
    pub rows: u64,
}

/// The engine: plans, fans out and reduces queries.
pub struct Quack {
    config: Config,
    engine: engine::Engine,
    lister: Arc<dyn Lister>,
    invoker: Arc<dyn Invoker>,
    retries: Arc<AtomicU64>,
}

impl Quack {
    /// The embedded default: local files, in-process workers on connections to the
    /// coordinator's own DuckDB database (one instance, one thread pool sized to the cores).
    pub fn embedded(config: Config) -> Result<Self> {
        let engine = engine::Engine::with_memory_limit(config.engine_threads, config.memory_limit.as_deref())?;
        let workers = InProcessInvoker::new(config.concurrency, engine.connect()?);
        let retry = Retry::new(Timeout::new(workers, config.task_timeout), config.retry.clone());
        let retries = retry.retries();
        Ok(Quack { config, engine, lister: Arc::new(LocalLister), invoker: Arc::new(retry), retries })
    }

    /// A Quack over any lister and invoker (wrap the invoker in [`invoke::Retry`] yourself and
    /// pass its counter as `retries`, or a fresh counter).
    pub fn from_parts(
        config: Config,
        lister: Arc<dyn Lister>,
        invoker: Arc<dyn Invoker>,
        retries: Arc<AtomicU64>,
    ) -> Result<Self> {
        let engine = engine::Engine::new(config.engine_threads)?;
        Ok(Quack { config, engine, lister, invoker, retries })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Plans `sql` without running it.
    pub fn plan(&self, sql: &str) -> Result<Plan> {
        let planner = plan::Planner { engine: &self.engine, lister: self.lister.as_ref(), config: &self.config };
        planner.plan(&new_query_id(), sql)
    }

    /// Runs `sql` and writes the answer in `format` to `destination`.
    pub async fn query_to(&self, sql: &str, format: Format, destination: &Destination) -> Result<QueryReport> {
        self.query_to_with_progress(sql, format, destination, &|_| {}).await
    }

    /// As [`Quack::query_to`], reporting progress after each task.
    pub async fn query_to_with_progress(
        &self,
        sql: &str,
        format: Format,
        destination: &Destination,
        on_progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<QueryReport> {
        let (plan, partials, mut report) = self.run_map(sql, on_progress).await?;
        let started = Instant::now();
        let conn = self.engine.lock();
        let result = reduce::load_partials(&conn, &plan.partial_columns, &partials)
            .and_then(|_| output::write(&conn, &plan.final_sql, format, destination));
        reduce::drop_partials(&conn);
        report.rows = result?;
        report.reduce_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Runs `sql` and returns the answer as Arrow batches.
    pub async fn query_batches(&self, sql: &str) -> Result<(Vec<RecordBatch>, QueryReport)> {
        let (plan, partials, mut report) = self.run_map(sql, &|_| {}).await?;
        let started = Instant::now();
        let conn = self.engine.lock();
        let result = reduce::load_partials(&conn, &plan.partial_columns, &partials)
            .and_then(|_| output::query_batches(&conn, &plan.final_sql));
        reduce::drop_partials(&conn);
        let batches = result?;
        report.rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        report.reduce_ms = started.elapsed().as_millis() as u64;
        Ok((batches, report))
    }

    async fn run_map(
        &self,
        sql: &str,
        on_progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(Plan, Vec<PartialResult>, QueryReport)> {
        let started = Instant::now();
        let plan = self.plan(sql)?;
        let plan_ms = started.elapsed().as_millis() as u64;
        let span = tracing::info_span!("query", query_id = %plan.query_id);
        span.in_scope(|| tracing::info!(strategy = %plan.strategy.describe(), tasks = plan.tasks.len(), "planned"));
        let retries_before = self.retries.load(Ordering::Relaxed);
        let map_started = Instant::now();
        let partials =
            invoke::invoke_all(self.invoker.as_ref(), plan.tasks.clone(), on_progress).instrument(span).await?;
        let report = QueryReport {
            query_id: plan.query_id.clone(),
            strategy: plan.strategy.describe(),
            tasks: plan.tasks.len(),
            retries: self.retries.load(Ordering::Relaxed) - retries_before,
            cold_starts: partials.iter().filter(|p| p.stats.cold_start).count(),
            bytes_read: partials.iter().filter_map(|p| p.stats.bytes_read).sum(),
            partial_rows: partials.iter().map(|p| p.stats.rows).sum(),
            worker_ms: partials.iter().map(|p| p.stats.duration_ms).sum(),
            plan_ms,
            map_ms: map_started.elapsed().as_millis() as u64,
            reduce_ms: 0,
            rows: 0,
        };
        Ok((plan, partials, report))
    }
}

/// A fresh query id: time-ordered, with random bits.
pub fn new_query_id() -> String {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("q-{millis:x}-{:08x}", fastrand::u32(..))
}
