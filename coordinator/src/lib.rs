//! quack: answer one SQL query by splitting it per partition of a hive-partitioned Parquet table,
//! running each piece in its own DuckDB worker, and reducing the partial results into exactly the
//! answer one DuckDB would give over all the files.
//!
//! [`Quack`] wires the parts: the [`plan::Planner`] (parse, list local or [`s3`] paths, prune,
//! pack, [`rewrite`]), an [`invoke::Invoker`] that runs the tasks (in-process by default, or in
//! AWS Lambda), and the [`reduce`] and [`output`] steps in the coordinator's own DuckDB
//! ([`engine::Engine`]).

pub mod aws;
pub mod config;
pub mod demo;
pub mod du;
pub mod engine;
pub mod error;
pub mod inventory;
pub mod invoke;
pub mod output;
pub mod partitions;
pub mod plan;
pub mod reduce;
pub mod rewrite;
pub mod s3;
pub mod tasks;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use quack_lambda::PartialResult;
use tracing::Instrument;

pub use config::{Backend, Config};
pub use error::{Error, Result};
pub use output::{Destination, Format};
pub use plan::Plan;

use invoke::{ConcurrencyLimit, Hedge, InProcessInvoker, Invoker, Progress, RandomFaults, Retry, Timeout};
use partitions::Lister;

/// Figures about one executed query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryReport {
    pub query_id: String,
    pub strategy: String,
    pub tasks: usize,
    pub retries: u64,
    /// Stragglers invoked a second time.
    pub hedges: u64,
    pub cold_starts: usize,
    /// Bytes of the input files the tasks scan (from the listing).
    pub bytes_read: u64,
    /// Invocations billed in Lambda: tasks, retries and hedges (`0` in process).
    pub requests: u64,
    /// Billed GB-seconds of the answered invocations, init included on cold starts (`0.0` in
    /// process; failed and abandoned attempts are not reported by workers, so not counted).
    pub gb_seconds: f64,
    /// Estimated Lambda cost in USD at the configured prices (`None` in process).
    pub cost_usd: Option<f64>,
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
    hedges: Arc<AtomicU64>,
    aws: Arc<aws::Aws>,
    s3_enabled: Mutex<bool>,
}

impl Quack {
    /// A Quack for `config`: in-process workers on the coordinator's own DuckDB database (one
    /// instance, one thread pool sized to the cores) for [`Backend::Local`], Lambda invocations
    /// for [`Backend::Lambda`]. Local paths and `s3://` URLs both work with either backend.
    pub fn new(config: Config) -> Result<Self> {
        let engine = engine::Engine::with_memory_limit(config.engine_threads, config.memory_limit.as_deref())?;
        let aws = Arc::new(aws::Aws::new(config.aws.clone()));
        let base: Arc<dyn Invoker> = match &config.backend {
            Backend::Local => Arc::new(InProcessInvoker::new(config.concurrency, engine.connect()?)),
            Backend::Lambda { function } => {
                if function.trim().is_empty() {
                    return Err(Error::Config {
                        message: "the Lambda backend needs a function (--function or QUACK_FUNCTION)".into(),
                    });
                }
                Arc::new(invoke::lambda::LambdaInvoker::new(aws.lambda(), function.clone(), aws.s3()))
            }
        };
        let faulty: Arc<dyn Invoker> = match config.inject_faults {
            Some(rates) => Arc::new(RandomFaults::new(base, rates, fastrand::u64(..))),
            None => base,
        };
        let timed: Arc<dyn Invoker> = Arc::new(Timeout::new(faulty, config.task_timeout));
        let hedge = config.hedge.clone().map(|policy| Hedge::new(timed.clone(), policy));
        let hedges = hedge.as_ref().map_or_else(|| Arc::new(AtomicU64::new(0)), |h| h.hedges());
        let hedged: Arc<dyn Invoker> = match hedge {
            Some(hedge) => Arc::new(hedge),
            None => timed,
        };
        let retry = Retry::new(hedged, config.retry.clone());
        let retries = retry.retries();
        let invoker = Arc::new(ConcurrencyLimit::new(retry, config.concurrency));
        let lister = Arc::new(s3::RoutingLister::new(aws.clone()));
        Ok(Quack { config, engine, lister, invoker, retries, hedges, aws, s3_enabled: Mutex::new(false) })
    }

    /// The embedded default: [`Quack::new`] with local in-process workers.
    pub fn embedded(mut config: Config) -> Result<Self> {
        config.backend = Backend::Local;
        Self::new(config)
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
        let aws = Arc::new(aws::Aws::new(config.aws.clone()));
        let hedges = Arc::new(AtomicU64::new(0));
        Ok(Quack { config, engine, lister, invoker, retries, hedges, aws, s3_enabled: Mutex::new(false) })
    }

    /// The lister for local paths and `s3://` URLs.
    pub fn lister(&self) -> &dyn Lister {
        self.lister.as_ref()
    }

    /// The output columns of `sql` as the coordinator's DuckDB binds it.
    pub fn describe(&self, sql: &str) -> Result<Vec<engine::Column>> {
        self.enable_s3_for(sql)?;
        self.engine.describe(sql).map_err(|message| Error::Bind { message })
    }

    /// Shared counter of task retries (for progress displays).
    pub fn retries(&self) -> Arc<AtomicU64> {
        self.retries.clone()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Plans `sql` without running it.
    pub fn plan(&self, sql: &str) -> Result<Plan> {
        self.enable_s3_for(sql)?;
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
        self.query_batches_with_progress(sql, &|_| {}).await
    }

    /// As [`Quack::query_batches`], reporting progress after each task.
    pub async fn query_batches_with_progress(
        &self,
        sql: &str,
        on_progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(Vec<RecordBatch>, QueryReport)> {
        let (plan, partials, mut report) = self.run_map(sql, on_progress).await?;
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
        let hedges_before = self.hedges.load(Ordering::Relaxed);
        let map_started = Instant::now();
        let partials = invoke::invoke_all(self.invoker.as_ref(), plan.tasks.clone(), self.config.deadline, on_progress)
            .instrument(span)
            .await?;
        let retries = self.retries.load(Ordering::Relaxed) - retries_before;
        let hedges = self.hedges.load(Ordering::Relaxed) - hedges_before;
        let lambda = matches!(self.config.backend, Backend::Lambda { .. });
        let gb_seconds: f64 = if lambda {
            partials
                .iter()
                .map(|p| {
                    let billed_ms = p.stats.duration_ms + p.stats.init_ms.unwrap_or(0);
                    let memory_mb = p.stats.memory_mb.unwrap_or(self.config.lambda_memory_mb);
                    billed_ms as f64 / 1000.0 * memory_mb as f64 / 1024.0
                })
                .sum()
        } else {
            0.0
        };
        let requests = if lambda { plan.tasks.len() as u64 + retries + hedges } else { 0 };
        let report = QueryReport {
            query_id: plan.query_id.clone(),
            strategy: plan.strategy.describe(),
            tasks: plan.tasks.len(),
            retries,
            hedges,
            cold_starts: partials.iter().filter(|p| p.stats.cold_start).count(),
            bytes_read: plan.specs.iter().map(|s| s.bytes()).sum(),
            requests,
            gb_seconds,
            cost_usd: lambda.then_some(
                gb_seconds * self.config.pricing.per_gb_second + requests as f64 * self.config.pricing.per_request,
            ),
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

impl Quack {
    /// Lets the coordinator's DuckDB (and in-process workers) read S3, once, when `sql` names
    /// an `s3://` URL.
    fn enable_s3_for(&self, sql: &str) -> Result<()> {
        if !(sql.contains("s3://") || sql.contains("s3a://")) {
            return Ok(());
        }
        let mut enabled = self.s3_enabled.lock().unwrap_or_else(|p| p.into_inner());
        if !*enabled {
            let access = self.aws.duckdb_access().map_err(|e| Error::S3 { message: e.to_string() })?;
            self.engine.enable_s3(self.config.httpfs_extension.as_deref(), &access)?;
            *enabled = true;
        }
        Ok(())
    }
}

/// A fresh query id: time-ordered, with random bits.
pub fn new_query_id() -> String {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("q-{millis:x}-{:08x}", fastrand::u32(..))
}
