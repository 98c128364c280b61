//! The Lambda side of the worker: its settings (read from the environment in one place), the
//! per-container state built once at cold start, and the per-invocation handler.
//!
//! Contract: [`WorkerState::handle`] always answers with a [`TaskResponse`]; a classified failure
//! is data (`status: "error"` with a stable `error_type`), never a function error. Function errors
//! only come from crashes, which the coordinator treats as retryable.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument;

use crate::exchange::{ExchangeStore, S3Exchange};
use crate::runner::{Worker, WorkerConfig, WorkerError};
use crate::s3::{self, S3Access};
use crate::sandbox::{check_envelope, Sandbox};
use crate::spill::SpillTarget;
use crate::wire::{ErrorType, PartialData, PartialResult, Task, TaskFailure, TaskResponse, WIRE_VERSION};

/// The file name of DuckDB's icu extension in the deployment package.
pub const ICU_FILE: &str = "icu.duckdb_extension";

/// The time zone a worker runs in until a task names another: Lambda's own.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// The synchronous Invoke response limit is 6 MB; inline partials stay under this much JSON.
pub const DEFAULT_SPILL_THRESHOLD: usize = 4 << 20;

/// The worker's deployment settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaEnv {
    /// `QUACK_HTTPFS_EXTENSION`: the httpfs extension file; default `httpfs.duckdb_extension`
    /// next to the `bootstrap` binary (where the deployment package puts it).
    pub httpfs: PathBuf,
    /// `QUACK_ICU_EXTENSION`: DuckDB's icu extension file (time zones: TIMESTAMPTZ, `date_trunc`
    /// on it); default `icu.duckdb_extension` next to `bootstrap`.
    pub icu: PathBuf,
    /// `QUACK_ALLOWED_PREFIXES`: comma-separated prefixes tasks may read (`s3://lake/`). Required.
    pub allowed_prefixes: Vec<String>,
    /// `QUACK_SPILL_PREFIX`: where partials too large to return inline go (`s3://b/spill/`).
    pub spill_prefix: Option<String>,
    /// `QUACK_EXCHANGE_PREFIX`: where the stages of a multi-stage plan exchange rows
    /// (`s3://b/exchange/`); tasks may write under it, and read it. Without it, exchange tasks
    /// are refused.
    pub exchange_prefix: Option<String>,
    /// `QUACK_SPILL_THRESHOLD_BYTES`: inline answers above this many bytes of JSON spill.
    pub spill_threshold: usize,
    /// `QUACK_WORKER_THREADS`: DuckDB threads; default twice the cores Lambda gives the function,
    /// at least 4: S3 reads wait on the network, and more threads keep more ranged GETs in
    /// flight (measured on the local stack: warm tasks 242 ms median with 1 thread, 137 ms with 4).
    pub threads: usize,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (MB); DuckDB's memory limit is 75% of it.
    pub memory_mb: Option<u64>,
    /// Whether `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` points S3 elsewhere (an S3-compatible
    /// store wants path-style requests).
    pub s3_endpoint_override: bool,
}

/// The worker's settings were not usable.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("QUACK_ALLOWED_PREFIXES is not set: list the prefixes tasks may read, e.g. s3://my-lake/")]
    NoAllowedPrefixes,
    #[error("{name}={value} is not a number")]
    NotANumber { name: &'static str, value: String },
    #[error(
        "QUACK_ALLOWED_PREFIXES: {prefix:?} is too broad or malformed: name a bucket (s3://my-lake/) or an \
         absolute directory other than /, without URL parameters"
    )]
    BadPrefix { prefix: String },
    #[error("QUACK_EXCHANGE_PREFIX: {prefix:?} is not an s3:// prefix naming a bucket, without URL parameters")]
    BadExchangePrefix { prefix: String },
}

/// Whether `prefix` names a bucket (`s3://b/...`) or an absolute directory other than `/`, with
/// no URL parameters or `..`: a deployment must not grant every bucket by accident.
fn valid_prefix(prefix: &str) -> bool {
    let clean = !prefix.contains(['?', '#', '\\']) && !prefix.split('/').any(|s| s == "..");
    let named = match prefix.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty() && rest.split('/').next().is_some_and(|host| !host.is_empty() && host != "*")
        }
        None => prefix.starts_with('/') && !prefix.trim_matches('/').is_empty(),
    };
    clean && named
}

impl LambdaEnv {
    /// Reads every variable the worker uses (listed on the fields), except the AWS credentials,
    /// which [`LambdaEnv::s3_access`] reads per invocation.
    pub fn from_env() -> Result<LambdaEnv, EnvError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`LambdaEnv::from_env`], over any variable lookup.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<LambdaEnv, EnvError> {
        let number = |name: &'static str| -> Result<Option<u64>, EnvError> {
            match var(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(value) => value.trim().parse().map(Some).map_err(|_| EnvError::NotANumber { name, value }),
            }
        };
        let allowed_prefixes: Vec<String> = var("QUACK_ALLOWED_PREFIXES")
            .unwrap_or_default()
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if allowed_prefixes.is_empty() {
            return Err(EnvError::NoAllowedPrefixes);
        }
        if let Some(prefix) = allowed_prefixes.iter().find(|p| !valid_prefix(p)) {
            return Err(EnvError::BadPrefix { prefix: prefix.clone() });
        }
        let packaged = |name: &str, file: &str| {
            var(name).filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
                let dir = std::env::current_exe().ok().and_then(|p| p.parent().map(PathBuf::from)).unwrap_or_default();
                dir.join(file)
            })
        };
        let exchange_prefix = var("QUACK_EXCHANGE_PREFIX").map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
        if let Some(prefix) = exchange_prefix.as_ref().filter(|p| !p.starts_with("s3://") || !valid_prefix(p)) {
            return Err(EnvError::BadExchangePrefix { prefix: prefix.clone() });
        }
        let exchange_prefix = exchange_prefix.map(|p| if p.ends_with('/') { p } else { format!("{p}/") });
        let httpfs = packaged("QUACK_HTTPFS_EXTENSION", s3::HTTPFS_FILE);
        let icu = packaged("QUACK_ICU_EXTENSION", ICU_FILE);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Ok(LambdaEnv {
            httpfs,
            icu,
            allowed_prefixes,
            spill_prefix: var("QUACK_SPILL_PREFIX").filter(|v| !v.trim().is_empty()),
            exchange_prefix,
            spill_threshold: number("QUACK_SPILL_THRESHOLD_BYTES")?.map_or(DEFAULT_SPILL_THRESHOLD, |n| n as usize),
            threads: number("QUACK_WORKER_THREADS")?.map_or((2 * cores).max(4), |n| n.max(1) as usize),
            memory_mb: number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?,
            s3_endpoint_override: ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
                .iter()
                .any(|name| var(name).is_some_and(|v| !v.trim().is_empty())),
        })
    }

    /// The S3 credentials, region and endpoint from the environment, read per invocation so a
    /// rotated session token keeps working.
    pub fn s3_access() -> S3Access {
        S3Access::from_vars(|name| std::env::var(name).ok())
    }
}

/// Building the worker at cold start failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error(transparent)]
    Extension(#[from] crate::extension::ExtensionError),
    #[error("setting up the worker's DuckDB ({step}): {source}")]
    Setup { step: &'static str, source: duckdb::Error },
    /// DuckDB does not know the time zone, or has no ICU to work in it.
    #[error("this worker cannot run in the time zone {zone:?}: {source}")]
    TimeZone { zone: String, source: duckdb::Error },
}

/// What a warm container keeps between invocations.
pub struct WorkerState {
    env: LambdaEnv,
    worker: Mutex<Worker>,
    access: Mutex<S3Access>,
    sandbox: Sandbox,
    spill: Option<SpillTarget>,
    exchange: Option<Arc<dyn ExchangeStore>>,
    spill_threshold: usize,
    memory_mb: Option<u64>,
    started: Instant,
    init_ms: Mutex<Option<u64>>,
}

impl WorkerState {
    /// Builds the DuckDB instance once per container ([`WorkerState::open`], in
    /// [`DEFAULT_TIME_ZONE`]). `started` is when the process started (for the cold-start
    /// figure); `s3` is the client for spilling, built by the caller from the same environment.
    pub fn build(env: &LambdaEnv, started: Instant, s3: Option<aws_sdk_s3::Client>) -> Result<Self, InitError> {
        let access = LambdaEnv::s3_access();
        // Stage 2 reads what stage 1 wrote to the exchange.
        let readable: Vec<&String> = env.allowed_prefixes.iter().chain(&env.exchange_prefix).collect();
        let sandbox = Sandbox::new(&readable);
        let mut worker = Self::open(env, &sandbox, &access, DEFAULT_TIME_ZONE)?;
        let exchange: Option<Arc<dyn ExchangeStore>> = match (&env.exchange_prefix, &s3) {
            (Some(prefix), Some(client)) => tokio::runtime::Handle::try_current()
                .ok()
                .map(|runtime| Arc::new(S3Exchange::new(client.clone(), prefix.clone(), runtime)) as _),
            _ => None,
        };
        worker.set_exchange(exchange.clone());
        let spill = match (&env.spill_prefix, s3) {
            (Some(prefix), Some(client)) => Some(SpillTarget { client, prefix: prefix.clone() }),
            _ => None,
        };
        Ok(WorkerState {
            env: env.clone(),
            worker: Mutex::new(worker),
            access: Mutex::new(access),
            sandbox,
            spill,
            exchange,
            spill_threshold: env.spill_threshold,
            memory_mb: env.memory_mb,
            started,
            init_ms: Mutex::new(None),
        })
    }

    /// A worker's DuckDB: writable directories under /tmp (Lambda's only writable disk), httpfs
    /// and icu from the package, the time zone `zone`, the S3 secret, then the sandbox lock
    /// (after which no setting, the time zone included, can change).
    fn open(env: &LambdaEnv, sandbox: &Sandbox, access: &S3Access, zone: &str) -> Result<Worker, InitError> {
        let memory_limit = env.memory_mb.map(|mb| format!("{}MB", mb * 3 / 4));
        let extensions = vec![("httpfs", Some(env.httpfs.clone())), ("icu", Some(env.icu.clone()))];
        let mut worker = Worker::new(&WorkerConfig { threads: env.threads, memory_limit, extensions })?;
        let conn = worker.connection();
        let tmp = std::env::temp_dir();
        let tmp = tmp.to_string_lossy();
        let settings = format!(
            "SET home_directory = {home}; SET extension_directory = {ext}; SET temp_directory = {temp}; \
             SET secret_directory = {secrets}; SET allow_persistent_secrets = false; \
             SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;",
            home = crate::quote::literal(&tmp),
            ext = crate::quote::literal(&format!("{tmp}/duckdb/extensions")),
            temp = crate::quote::literal(&format!("{tmp}/duckdb/spill")),
            secrets = crate::quote::literal(&format!("{tmp}/duckdb/secrets")),
        );
        conn.execute_batch(&settings).map_err(|source| InitError::Setup { step: "directories", source })?;
        s3::load_httpfs(conn, Some(&env.httpfs))?;
        crate::extension::load(conn, "icu", Some(&env.icu))?;
        worker.set_time_zone(zone).map_err(|source| InitError::TimeZone { zone: zone.to_string(), source })?;
        let conn = worker.connection();
        conn.execute_batch(&access.secret_sql()).map_err(|source| InitError::Setup { step: "S3 secret", source })?;
        sandbox.lock_down(conn).map_err(|source| InitError::Setup { step: "sandbox", source })?;
        Ok(worker)
    }

    /// Puts the worker in the time zone `task` runs in. The configuration is locked, so a task
    /// in another zone than the last one gets a new DuckDB (50-80 ms, once per zone change; a
    /// coordinator keeps one zone). The old one stays when the new one cannot be built.
    fn enter_time_zone(&self, task: &Task) -> Result<(), TaskFailure> {
        let Some(zone) = task.time_zone.as_deref() else { return Ok(()) };
        let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if worker.time_zone() == Some(zone) {
            return Ok(());
        }
        let access = self.access.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut fresh = Self::open(&self.env, &self.sandbox, &access, zone).map_err(|e| match e {
            InitError::TimeZone { .. } => TaskFailure::new(task, ErrorType::BadEvent, e.to_string()),
            other => {
                TaskFailure::new(task, ErrorType::Internal, format!("rebuilding the worker for {zone:?}: {other}"))
            }
        })?;
        tracing::info!(zone, "the worker now runs in the task's time zone");
        fresh.set_exchange(self.exchange.clone());
        *worker = fresh;
        Ok(())
    }

    /// Marks the worker ready; the time since process start is the cold-start figure.
    pub fn ready(&self) {
        let init_ms = self.started.elapsed().as_millis() as u64;
        *self.init_ms.lock().unwrap_or_else(|p| p.into_inner()) = Some(init_ms);
        tracing::info!(init_ms, "worker ready");
    }

    /// Runs one event: parse, check the envelope and then the SQL against the sandbox, run
    /// (interrupting DuckDB [`interrupt_margin`] before `deadline`, the invocation's own), spill
    /// when too large.
    pub async fn handle(self: &Arc<Self>, event: serde_json::Value, deadline: Option<SystemTime>) -> TaskResponse {
        let task = match parse_event(event) {
            Ok(task) => task,
            Err(failure) => return TaskResponse::Error(failure),
        };
        if let Err(message) = check_envelope(&task) {
            tracing::warn!(query_id = ?task.query_id, %message, "refused an event");
            return TaskResponse::Error(TaskFailure::new(&task, ErrorType::Forbidden, message));
        }
        let span = tracing::info_span!("task", query_id = %task.query_id, task_id = task.task_id, label = %task.label);
        match self.clone().handle_task(task, deadline).instrument(span).await {
            Ok(partial) => TaskResponse::Ok(partial),
            Err(failure) => {
                tracing::warn!(error_type = %failure.error_type, message = %failure.message, "task failed");
                TaskResponse::Error(failure)
            }
        }
    }

    async fn handle_task(
        self: Arc<Self>,
        task: Task,
        deadline: Option<SystemTime>,
    ) -> Result<PartialResult, TaskFailure> {
        let received = Instant::now();
        let (state, zoned_task) = (self.clone(), task.clone());
        tokio::task::spawn_blocking(move || state.enter_time_zone(&zoned_task))
            .await
            .map_err(|e| TaskFailure::new(&task, ErrorType::Internal, format!("worker thread: {e}")))??;
        let state = self.clone();
        let run_task = task.clone();
        let interrupt = self.worker.lock().unwrap_or_else(|p| p.into_inner()).connection().interrupt_handle();
        // A deadline already past is not a real one (the local emulator sends its timeout as if
        // it were a time): then the task runs without an interrupt.
        let budget = deadline.and_then(|d| d.duration_since(SystemTime::now()).ok()).filter(|b| !b.is_zero());
        if deadline.is_some() && budget.is_none() {
            tracing::warn!(?deadline, "the invocation's deadline has passed or is not a time; no interrupt is set");
        }
        let interrupter = budget.map(|budget| {
            let margin = interrupt_margin(budget);
            let fire_in = budget.saturating_sub(margin);
            let handle = interrupt.clone();
            (
                margin,
                tokio::spawn(async move {
                    tokio::time::sleep(fire_in).await;
                    tracing::warn!(?margin, "interrupting the task before the invocation's deadline");
                    handle.interrupt();
                }),
            )
        });
        let ran = tokio::task::spawn_blocking(move || state.run_blocking(&run_task)).await;
        let interrupted = interrupter.as_ref().is_some_and(|(_, timer)| timer.is_finished());
        if let Some((_, timer)) = &interrupter {
            timer.abort();
        }
        let mut partial = ran
            .map_err(|e| TaskFailure::new(&task, ErrorType::Internal, format!("worker thread: {e}")))?
            .map_err(|mut failure| {
                if interrupted && failure.error_type == ErrorType::Timeout {
                    let margin = interrupter.as_ref().map_or(Duration::ZERO, |(m, _)| *m);
                    failure.message = format!(
                        "the task was stopped {} ms before the function's deadline: {}",
                        margin.as_millis(),
                        failure.message
                    );
                }
                failure
            })?;
        if let PartialData::Inline { arrow_ipc } = &mut partial.data {
            let json_bytes = arrow_ipc.len().div_ceil(3) * 4;
            if json_bytes > self.spill_threshold {
                let Some(spill) = &self.spill else {
                    return Err(TaskFailure::new(
                        &task,
                        ErrorType::ResultTooLarge,
                        format!(
                            "the partial result is {json_bytes} bytes as JSON, over the {} byte inline limit, and \
                             no QUACK_SPILL_PREFIX is set to spill it",
                            self.spill_threshold
                        ),
                    ));
                };
                let bytes = std::mem::take(arrow_ipc);
                let url = spill
                    .put(&task.query_id, task.task_id, bytes)
                    .await
                    .map_err(|e| TaskFailure::new(&task, ErrorType::Internal, e.to_string()))?;
                tracing::info!(%url, bytes = json_bytes, "spilled the partial");
                partial.data = PartialData::Spilled { url };
            }
        }
        partial.stats.duration_ms = received.elapsed().as_millis() as u64;
        partial.stats.memory_mb = self.memory_mb;
        if partial.stats.cold_start {
            partial.stats.init_ms = *self.init_ms.lock().unwrap_or_else(|p| p.into_inner());
        }
        tracing::info!(
            rows = partial.stats.rows,
            ms = partial.stats.duration_ms,
            cold = partial.stats.cold_start,
            "task done"
        );
        Ok(partial)
    }

    fn run_blocking(&self, task: &Task) -> Result<PartialResult, TaskFailure> {
        let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        let access = LambdaEnv::s3_access();
        {
            let mut current = self.access.lock().unwrap_or_else(|p| p.into_inner());
            if *current != access {
                worker.connection().execute_batch(&access.secret_sql()).map_err(|e| {
                    TaskFailure::new(task, ErrorType::Internal, format!("refreshing the S3 secret: {e}"))
                })?;
                *current = access;
            }
        }
        self.sandbox.check(worker.connection(), task)?;
        reset_peak_memory();
        let mut partial = worker.run(task)?;
        partial.stats.peak_memory_bytes = peak_memory();
        Ok(partial)
    }
}

/// How long before an invocation's deadline DuckDB is interrupted, so that the worker still
/// answers `timeout` itself instead of Lambda killing it: a tenth of the time left, between
/// 200 ms and 2 s.
pub fn interrupt_margin(budget: Duration) -> Duration {
    (budget / 10).clamp(Duration::from_millis(200), Duration::from_secs(2))
}

/// The task in an event, or a failure naming what is wrong with it.
fn parse_event(event: serde_json::Value) -> Result<Task, TaskFailure> {
    let field = |name: &str| event.get(name).cloned();
    let fallback = Task {
        version: WIRE_VERSION,
        query_id: field("query_id").and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        task_id: field("task_id").and_then(|v| v.as_u64()).unwrap_or(0) as usize,
        label: String::new(),
        sql: String::new(),
        files: vec![],
        time_zone: None,
        exchange: None,
        convert: None,
    };
    match field("version").and_then(|v| v.as_u64()) {
        Some(v) if v == WIRE_VERSION as u64 => {}
        Some(v) => {
            return Err(TaskFailure::new(
                &fallback,
                ErrorType::VersionMismatch,
                format!("task has wire version {v}, this worker speaks {WIRE_VERSION}"),
            ))
        }
        None => {
            return Err(TaskFailure::new(&fallback, ErrorType::BadEvent, "the event is not a quack task (no version)"))
        }
    }
    serde_json::from_value(event)
        .map_err(|e| TaskFailure::new(&fallback, ErrorType::BadEvent, format!("the event is not a quack task: {e}")))
}

/// Resets the process's peak resident set size (Linux `clear_refs`), so the next reading is
/// this task's peak. Best effort.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set size since the last reset (Linux `VmHWM`).
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn reads_the_environment() {
        let env = LambdaEnv::from_vars(vars(&[
            ("QUACK_ALLOWED_PREFIXES", "s3://lake/, s3://dims/"),
            ("QUACK_SPILL_THRESHOLD_BYTES", "1024"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048"),
            ("QUACK_HTTPFS_EXTENSION", "/opt/httpfs.duckdb_extension"),
        ]))
        .unwrap();
        assert_eq!(env.allowed_prefixes, vec!["s3://lake/", "s3://dims/"]);
        assert_eq!(env.spill_threshold, 1024);
        assert_eq!(env.memory_mb, Some(2048));
        assert_eq!(env.httpfs, PathBuf::from("/opt/httpfs.duckdb_extension"));
        assert!(matches!(LambdaEnv::from_vars(vars(&[])), Err(EnvError::NoAllowedPrefixes)));
        for broad in ["s3://", "s3:///x", "/", "relative/dir", "s3://lake/?x=1", "s3://lake/../x"] {
            assert!(
                matches!(
                    LambdaEnv::from_vars(vars(&[("QUACK_ALLOWED_PREFIXES", broad)])),
                    Err(EnvError::BadPrefix { .. })
                ),
                "{broad}"
            );
        }
        assert!(matches!(
            LambdaEnv::from_vars(vars(&[("QUACK_ALLOWED_PREFIXES", "s3://x/"), ("QUACK_WORKER_THREADS", "many")])),
            Err(EnvError::NotANumber { .. })
        ));
        let exchange = |prefix: &str| {
            LambdaEnv::from_vars(vars(&[("QUACK_ALLOWED_PREFIXES", "s3://x/"), ("QUACK_EXCHANGE_PREFIX", prefix)]))
        };
        assert_eq!(exchange("s3://x/exchange").unwrap().exchange_prefix.as_deref(), Some("s3://x/exchange/"));
        assert_eq!(exchange(" ").unwrap().exchange_prefix, None);
        for bad in ["/tmp/exchange/", "s3://", "s3://x/?a=1", "s3://x/../y/"] {
            assert!(matches!(exchange(bad), Err(EnvError::BadExchangePrefix { .. })), "{bad}");
        }
    }

    #[test]
    fn malformed_events_are_refused_as_data() {
        let failure = parse_event(serde_json::json!({"sql": "SELECT 1"})).unwrap_err();
        assert_eq!(failure.error_type, ErrorType::BadEvent);
        let failure = parse_event(serde_json::json!({"version": 99, "task_id": 4})).unwrap_err();
        assert_eq!((failure.error_type, failure.task_id), (ErrorType::VersionMismatch, 4));
        let failure = parse_event(serde_json::json!({"version": WIRE_VERSION, "sql": 3})).unwrap_err();
        assert_eq!(failure.error_type, ErrorType::BadEvent);
    }

    #[test]
    fn reads_peak_memory_on_linux() {
        reset_peak_memory();
        let peak = peak_memory().expect("Linux reports VmHWM");
        assert!(peak > 1 << 20, "a test process peaks above 1 MiB, not {peak} bytes");
    }

    #[test]
    fn interrupts_leave_a_margin_that_fits_the_budget() {
        assert_eq!(interrupt_margin(Duration::from_secs(900)), Duration::from_secs(2));
        assert_eq!(interrupt_margin(Duration::from_secs(5)), Duration::from_millis(500));
        assert_eq!(interrupt_margin(Duration::ZERO), Duration::from_millis(200));
    }
}
