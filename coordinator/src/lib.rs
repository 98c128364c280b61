//! quack: answer one SQL query by splitting it per partition of a hive-partitioned Parquet table,
//! running each piece in its own DuckDB worker, and reducing the partial results into exactly the
//! answer one DuckDB would give over all the files.
//!
//! [`Quack`] wires the parts: the [`plan::Planner`] (parse, list local or [`s3`] paths, prune,
//! pack, [`rewrite`]), an [`invoke::Invoker`] that runs the tasks (in-process by default, or in
//! AWS Lambda), and the [`reduce`] and [`output`] steps in the coordinator's own DuckDB
//! ([`engine::Engine`]).

pub mod aws;
pub mod catalog;
pub mod config;
pub mod conformance;
pub mod convert;
pub mod demo;
pub mod du;
pub mod engine;
pub mod error;
pub mod exchange;
pub mod http1;
pub mod inventory;
pub mod invoke;
pub mod lambda_api;
pub mod memory;
pub mod output;
pub mod partitions;
pub mod plan;
pub mod reduce;
pub mod rewrite;
pub mod s3;
pub mod settings;
pub mod sigv4;
pub mod store;
pub mod tasks;
pub mod time_zone;
pub mod transport;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use quack_lambda::{ErrorType, PartialResult};
use tracing::Instrument;

pub use config::{Backend, Config};
pub use error::{Error, Result};
pub use output::{Destination, Format};
pub use plan::Plan;

use invoke::{InProcessInvoker, InvokeError, Invoker, Progress, QueryRun};
use partitions::Lister;

/// Figures about one executed query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryReport {
    pub query_id: String,
    pub strategy: String,
    /// Tasks answered, over every stage.
    pub tasks: usize,
    pub retries: u64,
    /// Throttled attempts (each retried on the throttle budget).
    pub throttles: u64,
    /// Stragglers invoked a second time.
    pub hedges: u64,
    pub cold_starts: usize,
    /// Bytes of the input files the tasks scan (from the listing).
    pub bytes_read: u64,
    /// Invocations billed in Lambda: first attempts, retries and hedges (`0` in process).
    pub requests: u64,
    /// Billed GB-seconds (`0.0` in process): answered invocations (init included on cold
    /// starts), plus failed attempts and abandoned ones (hedge losers, timed-out attempts) for
    /// as long as the coordinator saw them run.
    pub gb_seconds: f64,
    /// Of `gb_seconds`, the failed and abandoned attempts'.
    pub wasted_gb_seconds: f64,
    /// S3 requests: an estimate of the workers' GETs (two per file) plus the coordinator's
    /// spill reads and deletes.
    pub s3_requests: u64,
    /// Estimated cost in USD at the configured prices: Lambda and S3 requests (`None` in process).
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

/// What a query's map left for the answer.
enum Mapped {
    /// The partial results of the plan's (last stage's) tasks, for the reduce.
    Partials(Vec<PartialResult>),
    /// Nothing yet: the plan's one task, the query as written, runs on the coordinator's DuckDB
    /// as its answer is written ([`Plan::in_engine`]).
    InEngine,
}

impl QueryReport {
    /// The figures of a query run on the coordinator's DuckDB since `started`: one task.
    fn finish_in_engine(&mut self, started: Instant) {
        let ms = started.elapsed().as_millis() as u64;
        (self.tasks, self.map_ms, self.worker_ms, self.partial_rows) = (1, ms, ms, self.rows);
    }
}

/// A query run on `conn`, the coordinator's DuckDB, failed: DuckDB's errors as the task of
/// `plan` that would have run it in a worker reports them (classified the same way); writing's
/// as they are.
///
/// DuckDB's message ends with the line of the SQL it ran, which is the `COPY` around the query
/// (with a private file's path). A query that does not bind gets the message of binding it
/// alone, whose line is the user's; a failure while it ran loses that line instead.
fn in_engine_error(conn: &duckdb::Connection, plan: &Plan, error: Error) -> Error {
    match (error, plan.tasks.first()) {
        (Error::Reduce { message }, Some(task)) => {
            // One SELECT (Plan::in_engine): preparing it binds it and runs nothing.
            let message = match conn.prepare(&plan.sql) {
                Err(bind) => bind.to_string(),
                Ok(_) => engine::without_line(&message).to_string(),
            };
            Error::Task {
                task_id: task.task_id,
                label: task.label.clone(),
                source: InvokeError::Task(quack_lambda::TaskFailure::new(
                    task,
                    quack_lambda::runner::classify_message(&message),
                    message,
                )),
            }
        }
        (other, _) => other,
    }
}

/// The reduce failed: DuckDB's message without the line of the reduce SQL it ends with, which
/// is quack's (partial columns, its own table), not the user's.
fn reduce_error(error: Error) -> Error {
    match error {
        Error::Reduce { message } => Error::Reduce { message: engine::without_line(&message).to_string() },
        other => other,
    }
}

/// What the first stage of a two-stage plan did, for the report (empty for one stage): its
/// answered tasks' figures, and the files both stages read.
#[derive(Debug, Default)]
struct EarlierStage {
    stats: Vec<quack_lambda::TaskStats>,
    files: u64,
}

/// What a plan would cost, before running it ([`Quack::estimate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub tasks: usize,
    pub files: usize,
    /// Bytes of the input files, from the listing.
    pub bytes: u64,
    /// Modelled worker time: [`config::CostModel`] per task.
    pub worker_seconds: f64,
    /// Lambda only: GB-seconds, requests, S3 requests and cost at the configured prices.
    pub gb_seconds: f64,
    pub requests: u64,
    pub s3_requests: u64,
    pub cost_usd: Option<f64>,
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tasks over {} files, {} to scan, ~{:.1} s of worker time",
            self.tasks,
            self.files,
            plan::human_bytes(self.bytes),
            self.worker_seconds
        )?;
        if let Some(cost) = self.cost_usd {
            write!(
                f,
                "; Lambda: {} requests, ~{:.2} GB-s, ~{} S3 requests, ~${cost:.6}",
                self.requests, self.gb_seconds, self.s3_requests
            )?;
        }
        Ok(())
    }
}

/// The engine: plans, fans out and reduces queries.
pub struct Quack {
    config: Config,
    engine: engine::Engine,
    lister: Arc<dyn Lister>,
    invoker: Arc<dyn Invoker>,
    aws: Arc<aws::Aws>,
    s3_enabled: Mutex<bool>,
    /// When set, every query must pass the workers' sandbox check first, and the engine's
    /// DuckDB (shared by in-process workers) reads only under the sandbox's prefixes.
    sandbox: Option<quack_lambda::sandbox::Sandbox>,
    /// The invoker is the in-process workers on the engine's own database (not one given to
    /// [`Quack::from_parts`]), so a whole-query plan may run on the engine instead.
    in_process_on_engine: bool,
}

impl Quack {
    /// A Quack for `config`: in-process workers on the coordinator's own DuckDB database (one
    /// instance, one thread pool sized to the cores) for [`Backend::Local`], Lambda invocations
    /// for [`Backend::Lambda`]. Local paths and `s3://` URLs both work with either backend.
    pub fn new(config: Config) -> Result<Self> {
        let engine = engine::Engine::open(&config)?;
        let aws = Arc::new(aws::Aws::new(config.aws.clone()));
        let base: Arc<dyn Invoker> = match &config.backend {
            Backend::Local => {
                // Conversion tasks read S3 inputs with the coordinator's client, made on first use.
                let reader_aws = aws.clone();
                let reader: quack_lambda::exchange::ObjectReader = Arc::new(move |url: &str| {
                    let runtime =
                        tokio::runtime::Handle::try_current().map_err(|e| quack_lambda::exchange::InputError {
                            error_type: ErrorType::Internal,
                            message: format!("reading {url}: no async runtime: {e}"),
                        })?;
                    runtime.block_on(quack_lambda::s3::get_object(&reader_aws.s3(), url))
                });
                let exchange = quack_lambda::exchange::LocalExchange::new(config.exchange_root()).with_reader(reader);
                Arc::new(InProcessInvoker::new(config.concurrency, engine.connect()?).with_exchange(Arc::new(exchange)))
            }
            Backend::Lambda { function } => {
                if function.trim().is_empty() {
                    return Err(Error::Config {
                        message: "the Lambda backend needs a function (--function or QUACK_FUNCTION)".into(),
                    });
                }
                Arc::new(
                    invoke::lambda::LambdaInvoker::new(aws.clone(), function.clone(), config.spill_prefix.clone())
                        .with_attempt_timeout(config.task_timeout),
                )
            }
        };
        let invoker = invoke::stack(base, &config.stack());
        let lister = Arc::new(s3::RoutingLister::new(aws.clone()));
        let in_process_on_engine = config.backend == Backend::Local;
        Ok(Self::assemble(config, engine, lister, invoker, aws, in_process_on_engine))
    }

    fn assemble(
        config: Config,
        engine: engine::Engine,
        lister: Arc<dyn Lister>,
        invoker: Arc<dyn Invoker>,
        aws: Arc<aws::Aws>,
        in_process_on_engine: bool,
    ) -> Self {
        Quack {
            config,
            engine,
            lister,
            invoker,
            aws,
            s3_enabled: Mutex::new(false),
            sandbox: None,
            in_process_on_engine,
        }
    }

    /// A Quack for untrusted SQL (the dashboard's console): as [`Quack::new`], then its DuckDB,
    /// which in-process workers share, is locked down to read only under `prefixes` (S3 set up
    /// first when a prefix is an `s3://` URL), and every query must pass the same sandbox check
    /// as a Lambda worker's task before it is planned ([`quack_lambda::sandbox::Sandbox`]).
    pub fn sandboxed<S: AsRef<str>>(config: Config, prefixes: &[S]) -> Result<Self> {
        let mut quack = Self::new(config)?;
        let sandbox = quack_lambda::sandbox::Sandbox::new(prefixes);
        if sandbox.allowed_prefixes.is_empty() {
            return Err(Error::Config { message: "a sandboxed engine needs at least one readable prefix".into() });
        }
        if sandbox.allowed_prefixes.iter().any(|p| p.starts_with("s3://") || p.starts_with("s3a://")) {
            quack.enable_s3()?;
        }
        sandbox.lock_down(&quack.engine.lock()).map_err(|source| Error::Engine { source })?;
        quack.sandbox = Some(sandbox);
        Ok(quack)
    }

    /// Refuses `sql` unless it passes the sandbox (when this Quack has one).
    fn check_sandbox(&self, sql: &str) -> Result<()> {
        let Some(sandbox) = &self.sandbox else { return Ok(()) };
        use quack_lambda::sandbox::SqlRefusal;
        let checked = sandbox.check_sql(&self.engine.lock(), sql);
        match checked {
            Ok(()) => Ok(()),
            Err(SqlRefusal::Syntax { .. }) => Err(self
                .engine
                .syntax_error(sql)
                .unwrap_or(Error::Forbidden { message: "the query does not parse".into() })),
            Err(SqlRefusal::Forbidden { message }) => Err(Error::Forbidden { message }),
            Err(SqlRefusal::Check { message }) => Err(Error::Bind { message }),
        }
    }

    /// The embedded default: [`Quack::new`] with local in-process workers.
    pub fn embedded(mut config: Config) -> Result<Self> {
        config.backend = Backend::Local;
        Self::new(config)
    }

    /// A Quack over any lister and invoker (wrap the invoker with [`invoke::stack`] yourself
    /// for retries, hedging and a concurrency limit).
    pub fn from_parts(config: Config, lister: Arc<dyn Lister>, invoker: Arc<dyn Invoker>) -> Result<Self> {
        let engine = engine::Engine::open(&config)?;
        let aws = Arc::new(aws::Aws::new(config.aws.clone()));
        Ok(Self::assemble(config, engine, lister, invoker, aws, false))
    }

    /// The lister for local paths and `s3://` URLs.
    pub fn lister(&self) -> &dyn Lister {
        self.lister.as_ref()
    }

    /// The output columns of `sql` as the coordinator's DuckDB binds it.
    pub fn describe(&self, sql: &str) -> Result<Vec<engine::Column>> {
        self.check_sandbox(sql)?;
        self.enable_s3_for(sql)?;
        self.engine.describe(sql).map_err(|message| Error::Bind { message })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether dropping this Quack has nothing to remove from disk: no query is running, and
    /// its DuckDB holds no temporary (spilled) files and has no temporary directory, which
    /// DuckDB removes when it closes. A process that ends after its last query may then skip
    /// the teardown (`std::mem::forget`); exchange and staging files are removed as each query
    /// ends, whatever happens.
    pub fn leaves_nothing_on_disk(&self) -> bool {
        self.engine.has_no_temporary_files()
    }

    /// Plans `sql` without running it (listing its tables' files).
    pub async fn plan(&self, sql: &str) -> Result<Plan> {
        self.check_sandbox(sql)?;
        self.enable_s3_for(sql)?;
        self.planner().plan(&new_query_id(), sql).await
    }

    /// What running `plan` would cost, by the configured [`config::CostModel`] and prices,
    /// without invoking anything.
    pub fn estimate(&self, plan: &Plan) -> Estimate {
        let model = &self.config.cost_model;
        let bytes: u64 = plan.specs.iter().map(|s| s.bytes()).sum();
        let files: usize = plan.tasks.iter().map(|t| t.files.len()).sum();
        let tasks = plan.tasks.len();
        let worker_seconds =
            tasks as f64 * model.task_overhead.as_secs_f64() + bytes as f64 / model.scan_bytes_per_second;
        let lambda = matches!(self.config.backend, Backend::Lambda { .. });
        let gb_seconds = if lambda { worker_seconds * self.config.lambda_memory_mb as f64 / 1024.0 } else { 0.0 };
        let requests = if lambda { tasks as u64 } else { 0 };
        let s3_requests = if lambda { 2 * files as u64 } else { 0 };
        Estimate {
            tasks,
            files,
            bytes,
            worker_seconds,
            gb_seconds,
            requests,
            s3_requests,
            cost_usd: lambda.then(|| self.config.pricing.cost(gb_seconds, requests, s3_requests)),
        }
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
        let (plan, mapped, mut report) = self.run_map(sql, on_progress).await?;
        let started = Instant::now();
        let conn = self.engine.lock();
        match mapped {
            Mapped::InEngine => {
                on_progress(Progress { done: 0, total: 1, retries: 0 });
                let rows = output::write(&conn, &plan.sql, format, destination, self.hold_limit());
                report.rows = rows.map_err(|e| in_engine_error(&conn, &plan, e))?;
                report.finish_in_engine(started);
                on_progress(Progress { done: 1, total: 1, retries: 0 });
            }
            Mapped::Partials(partials) => {
                let result = reduce::load_partials(&conn, &plan.partial_columns, &partials)
                    .and_then(|_| output::write(&conn, &plan.final_sql, format, destination, None));
                reduce::drop_partials(&conn);
                report.rows = result.map_err(reduce_error)?;
                report.reduce_ms = started.elapsed().as_millis() as u64;
            }
        }
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
        let (plan, mapped, mut report) = self.run_map(sql, on_progress).await?;
        let started = Instant::now();
        let conn = self.engine.lock();
        let batches = match mapped {
            Mapped::InEngine => {
                on_progress(Progress { done: 0, total: 1, retries: 0 });
                let batches = output::query_batches(&conn, &plan.sql, self.hold_limit())
                    .map_err(|e| in_engine_error(&conn, &plan, e))?;
                report.finish_in_engine(started);
                on_progress(Progress { done: 1, total: 1, retries: 0 });
                batches
            }
            Mapped::Partials(partials) => {
                let result = reduce::load_partials(&conn, &plan.partial_columns, &partials)
                    .and_then(|_| output::query_batches(&conn, &plan.final_sql, None));
                reduce::drop_partials(&conn);
                let batches = result.map_err(reduce_error)?;
                report.reduce_ms = started.elapsed().as_millis() as u64;
                batches
            }
        };
        report.rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        Ok((batches, report))
    }

    /// What the coordinator may hold of an answer it runs itself ([`Mapped::InEngine`]) before
    /// it is written: `--max-gather-bytes`, as for partials.
    fn hold_limit(&self) -> Option<u64> {
        self.config.max_gather_bytes
    }

    /// Whether a plan of one task running the query as written runs on the coordinator's own
    /// DuckDB, its answer written as it comes ([`Mapped::InEngine`], [`Plan::in_engine`]): in
    /// process (an in-process worker would run the same SQL on a connection to the same
    /// database, then ship the answer to a reduce that only renames it), with no deadline,
    /// attempt timeout or injected faults, which act on tasks.
    fn whole_queries_in_engine(&self) -> bool {
        self.in_process_on_engine
            && self.config.deadline.is_none()
            && self.config.task_timeout.is_none()
            && self.config.inject_faults.is_none()
    }

    /// Plans `sql` and runs its map. When a task of a split plan fails with DuckDB's internal
    /// or not-implemented error ([`ErrorType::EngineInternal`]: a DuckDB bug or limit that the
    /// split SQL or a task's share of the files reaches), the query is planned again as one task running it as written over all
    /// its files, which is exact by definition; its own failure, if any, is the answer.
    async fn run_map(
        &self,
        sql: &str,
        on_progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(Plan, Mapped, QueryReport)> {
        let started = Instant::now();
        let plan = self.plan(sql).await?;
        let plan_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(query_id = %plan.query_id, in_engine = plan.in_engine, tasks = plan.tasks.len(), "planned");
        if plan.in_engine {
            let report = self.report(&plan, &[], &EarlierStage::default(), &QueryRun::default(), plan_ms, 0);
            return Ok((plan, Mapped::InEngine, report));
        }
        let run = Arc::new(QueryRun::with_gather_limit(self.config.max_gather_bytes));
        let map_started = Instant::now();
        let cleanup = self.exchange_cleanup(&plan);
        let ran = self.run_stages(plan, run.clone(), on_progress).await;
        cleanup.finish().await;
        let (plan, partials, earlier) = ran?;
        let report = self.report(&plan, &partials, &earlier, &run, plan_ms, map_started.elapsed().as_millis() as u64);
        Ok((plan, Mapped::Partials(partials), report))
    }

    /// What removes `plan`'s exchange files when the query ends, answered or not.
    fn exchange_cleanup(&self, plan: &Plan) -> exchange::ExchangeCleanup {
        match plan.exchange_dirs() {
            None => exchange::ExchangeCleanup::none(),
            Some((root, _)) => self.query_exchange_cleanup(root, &plan.query_id),
        }
    }

    /// What removes query `query_id`'s exchange files: everything under `<root><query_id>/`.
    fn query_exchange_cleanup(&self, root: &str, query_id: &str) -> exchange::ExchangeCleanup {
        if root.starts_with("s3://") {
            exchange::ExchangeCleanup::s3(self.aws.clone(), root.to_string(), query_id.to_string())
        } else {
            exchange::ExchangeCleanup::local(format!("{root}{query_id}/"))
        }
    }

    /// Runs `plan`'s map, and its second stage when it has one. When a task of a split plan
    /// (of either stage) fails with DuckDB's internal or not-implemented error, the query is
    /// planned again as one task (see [`Quack::run_map`]). When a split's partials pass
    /// `--max-gather-bytes` and it has no second stage (`--buckets` unset), it is planned again
    /// with one, a bucket per map task: a grouped reduce over keys nearly as many as the rows
    /// (duplicates by ETag, a GROUP BY of ids) is then computed in the buckets, and only its
    /// answer reaches the coordinator. Without an exchange, or when the reduce cannot be
    /// shuffled, the limit's error stands.
    async fn run_stages(
        &self,
        plan: Plan,
        run: Arc<QueryRun>,
        on_progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(Plan, Vec<PartialResult>, EarlierStage)> {
        match self.run_split(&plan, run.clone(), on_progress).await {
            Err(Error::Task { task_id, label, source: InvokeError::Task(failure) })
                if failure.error_type == ErrorType::EngineInternal
                    && matches!(plan.strategy, plan::Strategy::Split { .. }) =>
            {
                let reason = format!(
                    "task {task_id} ({label}) of the split plan hit DuckDB's own error ({}), which \
                     the query as written need not reach",
                    failure.message.lines().next().unwrap_or_default()
                );
                let single = self.planner().single(&plan, &new_query_id(), reason)?;
                tracing::warn!(
                    query_id = %plan.query_id,
                    replanned_as = %single.query_id,
                    strategy = %single.strategy.describe(),
                    "replanned after an internal DuckDB error in a task"
                );
                // The split plan's partials were dropped with its error.
                run.gather.release_all();
                let partials = self.invoke_plan(&single, run.clone(), on_progress).await?;
                Ok((single, partials, EarlierStage::default()))
            }
            Err(gather @ Error::GatherLimit { .. })
                if plan.shuffle.is_none()
                    && plan.join.is_none()
                    && self.config.buckets.is_none()
                    && matches!(plan.strategy, plan::Strategy::Split { .. }) =>
            {
                let buckets =
                    u32::try_from(plan.tasks.len()).unwrap_or(u32::MAX).clamp(2, quack_lambda::exchange::MAX_BUCKETS);
                let config = Config { buckets: Some(buckets), ..self.config.clone() };
                let staged = self.planner_with(&config).plan(&new_query_id(), &plan.sql).await?;
                if staged.shuffle.is_none() {
                    return Err(gather);
                }
                tracing::warn!(
                    query_id = %plan.query_id,
                    replanned_as = %staged.query_id,
                    buckets,
                    "the partials passed --max-gather-bytes; replanned with a second stage"
                );
                run.gather.release_all();
                let cleanup = self.exchange_cleanup(&staged);
                let ran = Box::pin(self.run_split(&staged, run.clone(), on_progress)).await;
                cleanup.finish().await;
                let (partials, earlier) = ran?;
                Ok((staged, partials, earlier))
            }
            other => {
                let (partials, earlier) = other?;
                Ok((plan, partials, earlier))
            }
        }
    }

    /// Runs `plan`'s tasks, then its second stage's when it has one (a shuffled reduce or a
    /// co-partitioned join), whose tasks are built from the first stage's manifests. Answers the
    /// last stage's partials, and what the first stage's tasks did when there were two.
    async fn run_split(
        &self,
        plan: &Plan,
        run: Arc<QueryRun>,
        on_progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(Vec<PartialResult>, EarlierStage)> {
        let partials = self.invoke_plan(plan, run.clone(), on_progress).await?;
        let time_zone = self.engine.time_zone();
        let tasks = match (&plan.shuffle, &plan.join) {
            (Some(shuffle), _) => shuffle.tasks(&plan.query_id, &partials, time_zone)?,
            (None, Some(join)) => join.tasks(&plan.query_id, &partials, time_zone)?,
            (None, None) => return Ok((partials, EarlierStage::default())),
        };
        let earlier = EarlierStage {
            stats: partials.iter().map(|p| p.stats.clone()).collect(),
            files: plan.tasks.iter().map(|t| t.files.len() as u64).sum(),
        };
        let stage2_files: u64 = tasks.iter().map(|t| t.files.len() as u64).sum();
        // The manifests are read; stage 2's rows are what the coordinator holds.
        run.gather.release_all();
        let partials = self.invoke_tasks(&plan.query_id, "stage 2", tasks, run, on_progress).await?;
        Ok((partials, EarlierStage { files: earlier.files + stage2_files, ..earlier }))
    }

    /// Runs `plan`'s tasks through the invoker, under the query's tracing span.
    async fn invoke_plan(
        &self,
        plan: &Plan,
        run: Arc<QueryRun>,
        on_progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Vec<PartialResult>> {
        let span = tracing::info_span!("query", query_id = %plan.query_id);
        span.in_scope(|| tracing::info!(strategy = %plan.strategy.describe(), tasks = plan.tasks.len(), "planned"));
        invoke::invoke_all(self.invoker.as_ref(), plan.tasks.clone(), run, self.config.deadline, on_progress)
            .instrument(span)
            .await
    }

    /// Runs the tasks of a later stage (`stage`, for the logs) of query `query_id`.
    async fn invoke_tasks(
        &self,
        query_id: &str,
        stage: &str,
        tasks: Vec<quack_lambda::Task>,
        run: Arc<QueryRun>,
        on_progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Vec<PartialResult>> {
        let span = tracing::info_span!("query", query_id = %query_id);
        span.in_scope(|| tracing::info!(stage, tasks = tasks.len(), "running a stage"));
        invoke::invoke_all(self.invoker.as_ref(), tasks, run, self.config.deadline, on_progress).instrument(span).await
    }

    fn planner(&self) -> plan::Planner<'_> {
        self.planner_with(&self.config)
    }

    fn planner_with<'a>(&'a self, config: &'a Config) -> plan::Planner<'a> {
        plan::Planner {
            engine: &self.engine,
            lister: self.lister.as_ref(),
            config,
            in_engine: self.whole_queries_in_engine(),
        }
    }
}

impl Quack {
    /// The figures of one executed query, from its plan, its partials and its [`QueryRun`].
    fn report(
        &self,
        plan: &Plan,
        partials: &[PartialResult],
        earlier: &EarlierStage,
        run: &QueryRun,
        plan_ms: u64,
        map_ms: u64,
    ) -> QueryReport {
        let lambda = matches!(self.config.backend, Backend::Lambda { .. });
        let gb_seconds_of = |ms: u64, memory_mb: u64| ms as f64 / 1000.0 * memory_mb as f64 / 1024.0;
        // Every stage's answered tasks.
        let stats: Vec<&quack_lambda::TaskStats> =
            earlier.stats.iter().chain(partials.iter().map(|p| &p.stats)).collect();
        let answered: f64 = stats
            .iter()
            .map(|s| {
                let billed_ms = s.duration_ms + s.init_ms.unwrap_or(0);
                gb_seconds_of(billed_ms, s.memory_mb.unwrap_or(self.config.lambda_memory_mb))
            })
            .sum();
        let wasted_ms = QueryRun::get(&run.failed_ms) + QueryRun::get(&run.abandoned_ms);
        let wasted = gb_seconds_of(wasted_ms, self.config.lambda_memory_mb);
        let files = if earlier.stats.is_empty() {
            plan.tasks.iter().map(|t| t.files.len() as u64).sum()
        } else {
            earlier.files
        };
        let s3_requests = if lambda { 2 * files + QueryRun::get(&run.s3_requests) } else { 0 };
        let requests = if lambda { QueryRun::get(&run.attempts) } else { 0 };
        let (gb_seconds, wasted_gb_seconds) = if lambda { (answered + wasted, wasted) } else { (0.0, 0.0) };
        QueryReport {
            query_id: plan.query_id.clone(),
            strategy: plan.strategy.describe(),
            tasks: stats.len(),
            retries: QueryRun::get(&run.retries),
            throttles: QueryRun::get(&run.throttles),
            hedges: QueryRun::get(&run.hedges),
            cold_starts: stats.iter().filter(|s| s.cold_start).count(),
            bytes_read: plan.specs.iter().map(|s| s.bytes()).sum(),
            requests,
            gb_seconds,
            wasted_gb_seconds,
            s3_requests,
            cost_usd: lambda.then(|| self.config.pricing.cost(gb_seconds, requests, s3_requests)),
            partial_rows: partials.iter().map(|p| p.stats.rows).sum(),
            worker_ms: stats.iter().map(|s| s.duration_ms).sum(),
            plan_ms,
            map_ms,
            reduce_ms: 0,
            rows: 0,
        }
    }

    /// Lets the coordinator's DuckDB (and in-process workers) read S3, once, when `sql` names
    /// an `s3://` URL.
    fn enable_s3_for(&self, sql: &str) -> Result<()> {
        if sql.contains("s3://") || sql.contains("s3a://") {
            self.enable_s3()?;
        }
        Ok(())
    }

    /// Lets the coordinator's DuckDB (and in-process workers) read S3; once.
    fn enable_s3(&self) -> Result<()> {
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
