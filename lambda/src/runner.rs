//! The task runner: one DuckDB connection, built once, that runs map tasks and answers with
//! partial results.
//!
//! Contract: [`Worker::run`] executes exactly the task's SQL, returns every row as Arrow IPC in
//! DuckDB's result order, and classifies any failure into a stable [`ErrorType`]. A worker runs one
//! task at a time (`&mut self`); concurrency comes from having several workers.

use std::time::Instant;

use crate::exchange::{self, ExchangeStore};
use crate::ipc;
use crate::wire::{ErrorType, PartialData, PartialResult, Task, TaskFailure, TaskStats, WIRE_VERSION};

/// How to build a worker's DuckDB instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// DuckDB threads for this worker (workers x threads should match the cores).
    pub threads: usize,
    /// DuckDB `memory_limit`, e.g. `"2GB"`; DuckDB's default when `None`.
    pub memory_limit: Option<String>,
    /// The extensions this worker will load (name, file), as [`crate::extension::open_in_memory`]
    /// plans them: when all are pinned files, DuckDB's slow signature check is skipped.
    pub extensions: Vec<(&'static str, Option<std::path::PathBuf>)>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig { threads: 1, memory_limit: None, extensions: Vec::new() }
    }
}

/// Building a worker failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("could not start DuckDB for a worker: {source}")]
    Open { source: duckdb::Error },
    #[error("could not configure the worker's DuckDB ({setting}): {source}")]
    Configure { setting: String, source: duckdb::Error },
}

/// A DuckDB instance that runs map tasks.
pub struct Worker {
    conn: duckdb::Connection,
    duckdb_version: String,
    /// The connection's `TimeZone`; `None` without ICU (then DuckDB works in UTC).
    time_zone: Option<String>,
    tasks_run: u64,
    /// Where tasks with an exchange write their rows; `None`: such tasks are refused.
    exchange: Option<std::sync::Arc<dyn ExchangeStore>>,
}

impl Worker {
    /// Opens an in-memory DuckDB configured by `config`.
    pub fn new(config: &WorkerConfig) -> Result<Self, WorkerError> {
        let planned: Vec<_> = config.extensions.iter().map(|(name, path)| (*name, path.as_deref())).collect();
        let conn = crate::extension::open_in_memory(duckdb::Config::default(), &planned)
            .map_err(|source| WorkerError::Open { source })?;
        // Extensions come from files (crate::extension), never from the network.
        let mut settings =
            vec![format!("SET threads = {}", config.threads.max(1)), "SET autoinstall_known_extensions = false".into()];
        if let Some(limit) = &config.memory_limit {
            settings.push(format!("SET memory_limit = {}", crate::quote::literal(limit)));
        }
        for setting in settings {
            conn.execute_batch(&setting)
                .map_err(|source| WorkerError::Configure { setting: setting.clone(), source })?;
        }
        Self::from_connection(conn)
    }

    /// A worker on an existing connection (e.g. one of several connections to a database
    /// shared by in-process workers, whose thread pool the database's settings size).
    pub fn from_connection(conn: duckdb::Connection) -> Result<Self, WorkerError> {
        let duckdb_version = conn
            .query_row("SELECT library_version FROM pragma_version()", [], |row| row.get::<_, String>(0))
            .map_err(|source| WorkerError::Open { source })?;
        let time_zone = current_time_zone(&conn);
        Ok(Worker { conn, duckdb_version, time_zone, tasks_run: 0, exchange: None })
    }

    /// The connection's time zone (`TimeZone`), `None` when ICU is not loaded.
    pub fn time_zone(&self) -> Option<&str> {
        self.time_zone.as_deref()
    }

    /// Runs the connection in `zone` from now on (`SET TimeZone`), unless it already is.
    /// Fails when DuckDB does not know the zone, when ICU is not loaded, or when the
    /// configuration is locked (a sandboxed worker is rebuilt in a zone instead).
    pub fn set_time_zone(&mut self, zone: &str) -> duckdb::Result<()> {
        if self.time_zone.as_deref() == Some(zone) {
            return Ok(());
        }
        self.conn.execute_batch(&format!("SET TimeZone = {}", crate::quote::literal(zone)))?;
        self.time_zone = current_time_zone(&self.conn);
        Ok(())
    }

    /// Lets this worker run tasks that write to an exchange, through `store`.
    pub fn set_exchange(&mut self, store: Option<std::sync::Arc<dyn ExchangeStore>>) {
        self.exchange = store;
    }

    /// The worker's connection (for set-up such as the S3 secret and the sandbox).
    pub fn connection(&self) -> &duckdb::Connection {
        &self.conn
    }

    /// The DuckDB version this worker runs (`v1.5.5`).
    pub fn duckdb_version(&self) -> &str {
        &self.duckdb_version
    }

    /// Runs `task` and returns its rows, or a classified failure.
    pub fn run(&mut self, task: &Task) -> Result<PartialResult, TaskFailure> {
        let span = tracing::debug_span!("task", query_id = %task.query_id, task_id = task.task_id, label = %task.label);
        let _guard = span.enter();
        if task.version != WIRE_VERSION {
            return Err(TaskFailure::new(
                task,
                ErrorType::VersionMismatch,
                format!("task has wire version {}, this worker speaks {WIRE_VERSION}", task.version),
            ));
        }
        if let Some(zone) = &task.time_zone {
            self.set_time_zone(zone).map_err(|e| {
                TaskFailure::new(
                    task,
                    ErrorType::BadEvent,
                    format!(
                        "this worker cannot run in the time zone {zone:?} (is DuckDB's icu extension loaded?): {e}"
                    ),
                )
            })?;
        }
        let cold_start = self.tasks_run == 0;
        self.tasks_run += 1;
        let started = Instant::now();
        let exchange = match &task.exchange {
            None => None,
            Some(exchange) => {
                let store = self.exchange.as_deref().ok_or_else(|| {
                    TaskFailure::new(
                        task,
                        ErrorType::Forbidden,
                        "this worker has no exchange to write a stage's rows to",
                    )
                })?;
                exchange::check(task, exchange, store)
                    .map_err(|message| TaskFailure::new(task, ErrorType::Forbidden, message))?;
                Some((exchange, store))
            }
        };
        let (schema, batches, rows) = match (task.convert, exchange) {
            (Some(_), Some((_, store))) => {
                let (manifest, rows) = crate::convert::run(task, store)?;
                (manifest.schema(), vec![manifest], rows)
            }
            (Some(_), None) => {
                return Err(TaskFailure::new(
                    task,
                    ErrorType::BadEvent,
                    "a conversion task writes to the exchange, but names none",
                ))
            }
            (None, exchange) => self.run_sql(task, exchange)?,
        };
        let arrow_ipc = ipc::encode(&schema, &batches).map_err(|e| {
            TaskFailure::new(task, ErrorType::Internal, format!("encoding the result as Arrow IPC: {e}"))
        })?;
        let stats = TaskStats {
            rows,
            bytes_read: local_bytes(&task.files),
            result_bytes: arrow_ipc.len() as u64,
            duration_ms: started.elapsed().as_millis() as u64,
            peak_memory_bytes: None,
            cold_start,
            duckdb_version: self.duckdb_version.clone(),
            init_ms: None,
            memory_mb: None,
        };
        tracing::debug!(rows, ms = stats.duration_ms, "task done");
        Ok(PartialResult {
            version: WIRE_VERSION,
            query_id: task.query_id.clone(),
            task_id: task.task_id,
            data: PartialData::Inline { arrow_ipc },
            stats,
        })
    }

    /// Runs `task`'s SQL: answers its rows, or, with an exchange, the manifest of the files
    /// they were written to; and the number of rows.
    fn run_sql(
        &self,
        task: &Task,
        exchange: Option<(&crate::wire::ExchangeWrite, &dyn ExchangeStore)>,
    ) -> Result<(arrow::datatypes::SchemaRef, Vec<arrow::record_batch::RecordBatch>, u64), TaskFailure> {
        let (schema, batches) = self.query(&task.sql).map_err(|e| classify(task, &e))?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let Some((exchange, store)) = exchange else { return Ok((schema, batches, rows)) };
        let manifest = exchange::write(task, exchange, store, &schema, &batches).map_err(|message| {
            TaskFailure::new(task, ErrorType::Internal, format!("writing the stage's rows to the exchange: {message}"))
        })?;
        Ok((manifest.schema(), vec![manifest], rows))
    }

    fn query(&self, sql: &str) -> duckdb::Result<(arrow::datatypes::SchemaRef, Vec<arrow::record_batch::RecordBatch>)> {
        let mut stmt = self.conn.prepare(sql)?;
        let arrow = stmt.query_arrow([])?;
        let schema = arrow.get_schema();
        let batches = arrow.collect();
        Ok((schema, batches))
    }
}

/// `conn`'s `TimeZone` setting; `None` when there is none (ICU not loaded).
pub fn current_time_zone(conn: &duckdb::Connection) -> Option<String> {
    conn.query_row("SELECT current_setting('TimeZone')", [], |row| row.get::<_, String>(0)).ok()
}

/// Total size of the files when they are local paths (S3 sizes come from the listing).
fn local_bytes(files: &[String]) -> Option<u64> {
    files.iter().map(|f| std::fs::metadata(f).ok().map(|m| m.len())).sum::<Option<u64>>()
}

/// Maps a DuckDB error to a stable error type. This is the one place DuckDB's message text is
/// inspected; everything downstream decides on the [`ErrorType`].
pub fn classify(task: &Task, error: &duckdb::Error) -> TaskFailure {
    let message = error.to_string();
    TaskFailure::new(task, classify_message(&message), message)
}

/// DuckDB's exception class names, as its messages begin (`Binder Error: ...`); the C API keeps
/// only the formatted message, whose first words are the class.
const EXCEPTION_CLASSES: &[&str] = &[
    "Invalid",
    "Out of Range",
    "Conversion",
    "Unknown Type",
    "Decimal",
    "Mismatch Type",
    "Divide by Zero",
    "Object Size",
    "Invalid type",
    "Serialization",
    "TransactionContext",
    "Not implemented",
    "Expression",
    "Catalog",
    "Parser",
    "Binder",
    "Planner",
    "Scheduler",
    "Executor",
    "Constraint",
    "Index",
    "Stat",
    "Connection",
    "Syntax",
    "Settings",
    "Optimizer",
    "NullPointer",
    "IO",
    "INTERRUPT",
    "FATAL",
    "INTERNAL",
    "Invalid Input",
    "Out of Memory",
    "Permission",
    "Parameter Not Resolved",
    "Parameter Not Allowed",
    "Dependency",
    "Missing Extension",
    "HTTP",
    "Extension Autoloading",
    "Sequence",
    "Invalid Configuration",
];

/// The exception class a DuckDB message starts with (`Binder` for `Binder Error: ...`).
pub fn exception_class(message: &str) -> Option<&'static str> {
    let head = message.split_once(" Error: ").or_else(|| message.split_once(" Error:"))?.0;
    EXCEPTION_CLASSES.iter().copied().find(|class| *class == head)
}

/// The HTTP status httpfs appends to a failed request's message: `... (HTTP 404)` or, as httpfs
/// 1.5.5 writes it for S3, `... (HTTP 404 Not Found)` at the end of the first line, the
/// structured part of its format (digits elsewhere in a message, as in a file name, do not
/// count).
pub fn http_status(message: &str) -> Option<u16> {
    let line = message.lines().next()?.trim_end();
    let rest = line.strip_suffix(')')?;
    let start = rest.rfind("(HTTP ")?;
    let status = &rest[start + "(HTTP ".len()..];
    let (digits, reason) = status.split_at_checked(3)?;
    let reason_ok = reason.is_empty()
        || reason
            .strip_prefix(' ')
            .is_some_and(|r| r.bytes().all(|b| b.is_ascii_alphabetic() || b == b' ' || b == b'-'));
    (reason_ok && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// How a task fails when storage answers with the HTTP error `status`.
pub fn status_error_type(status: u16) -> ErrorType {
    match status {
        404 => ErrorType::MissingFile,
        401 | 403 => ErrorType::Forbidden,
        429 | 503 => ErrorType::Throttled,
        500..=599 => ErrorType::Internal,
        _ => ErrorType::QueryError,
    }
}

/// How a task fails with DuckDB's error `message` (its exception class, or an HTTP status it
/// names).
pub fn classify_message(message: &str) -> ErrorType {
    let lower = message.to_ascii_lowercase();
    if let Some(status) = http_status(message) {
        return status_error_type(status);
    }
    match exception_class(message) {
        Some("Parser" | "Syntax" | "Binder" | "Catalog" | "Planner" | "Dependency")
        | Some("Parameter Not Resolved" | "Parameter Not Allowed" | "Missing Extension" | "Extension Autoloading") => {
            ErrorType::BadSql
        }
        Some("Permission") => ErrorType::Forbidden,
        Some("Out of Memory") => ErrorType::OutOfMemory,
        Some("INTERRUPT") => ErrorType::Timeout,
        // A task's SQL was bound and planned over the table before it was sent, so an internal
        // check or a missing implementation met while it runs is DuckDB's, for the plan it chose
        // over this task's files (1.5.5: a join's bloom filter pushed into a union_by_name scan
        // of some files is "Not implemented"); the query as written may well run.
        Some("INTERNAL" | "Not implemented") => ErrorType::EngineInternal,
        Some("IO" | "HTTP")
            if ["no files found", "no such file", "cannot open file", "does not exist"]
                .iter()
                .any(|p| lower.contains(p)) =>
        {
            ErrorType::MissingFile
        }
        Some("IO" | "Invalid Input" | "Invalid" | "Serialization")
            if ["magic bytes", "too small to be a parquet file", "corrupt"].iter().any(|p| lower.contains(p))
                || lower.contains("parquet") && !lower.contains("conversion") =>
        {
            ErrorType::CorruptFile
        }
        Some(
            "Conversion" | "Out of Range" | "Invalid Input" | "Divide by Zero" | "Decimal" | "Mismatch Type"
            | "Invalid type" | "Unknown Type" | "Constraint" | "Expression" | "Sequence",
        ) => ErrorType::QueryError,
        _ => ErrorType::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(sql: &str, files: Vec<String>) -> Task {
        Task {
            version: WIRE_VERSION,
            query_id: "q-test".into(),
            task_id: 0,
            label: "test".into(),
            sql: sql.into(),
            files,
            time_zone: None,
            exchange: None,
            convert: None,
        }
    }

    /// A worker whose DuckDB has ICU (`QUACK_ICU_EXTENSION`, or where the fetch script put it).
    fn worker_with_icu() -> Worker {
        let worker = Worker::new(&WorkerConfig::default()).unwrap();
        let path = std::env::var_os("QUACK_ICU_EXTENSION").map(std::path::PathBuf::from);
        crate::extension::load(worker.connection(), "icu", path.as_deref()).expect("ICU for the time zone tests");
        Worker::from_connection(worker.conn).unwrap()
    }

    #[test]
    fn runs_in_the_task_time_zone() {
        let mut worker = worker_with_icu();
        let sql = "SELECT strftime(TIMESTAMPTZ '2024-03-01 00:00:00+00', '%Y-%m-%d %H:%M') AS t, \
                   date_trunc('day', TIMESTAMPTZ '2024-03-01 00:00:00+00')::VARCHAR AS d";
        let mut zoned = task(sql, vec![]);
        zoned.time_zone = Some("America/St_Johns".into());
        let partial = worker.run(&zoned).unwrap();
        let PartialData::Inline { arrow_ipc } = partial.data else { panic!("inline") };
        let (_, batches) = ipc::decode(&arrow_ipc).unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        assert!(text.contains("2024-02-29 20:30"), "{text}");
        assert!(text.contains("2024-02-29 00:00:00-03:30"), "{text}");
        assert_eq!(worker.time_zone(), Some("America/St_Johns"));

        zoned.time_zone = Some("Mars/Olympus_Mons".into());
        let failure = worker.run(&zoned).unwrap_err();
        assert_eq!(failure.error_type, ErrorType::BadEvent, "{}", failure.message);
        assert!(failure.message.contains("Mars/Olympus_Mons"), "{}", failure.message);
    }

    #[test]
    fn a_time_zone_without_icu_is_a_clear_error() {
        let mut worker = Worker::new(&WorkerConfig::default()).unwrap();
        assert_eq!(worker.time_zone(), None);
        let mut zoned = task("SELECT 1", vec![]);
        zoned.time_zone = Some("Europe/Berlin".into());
        let failure = worker.run(&zoned).unwrap_err();
        assert_eq!(failure.error_type, ErrorType::BadEvent);
        assert!(failure.message.contains("icu"), "{}", failure.message);
    }

    #[test]
    fn runs_a_query_and_returns_arrow() {
        let mut worker = Worker::new(&WorkerConfig::default()).unwrap();
        let result = worker.run(&task("SELECT range AS x FROM range(5)", vec![])).unwrap();
        assert_eq!(result.stats.rows, 5);
        assert!(result.stats.cold_start);
        let PartialData::Inline { arrow_ipc } = result.data else { panic!() };
        let (schema, batches) = ipc::decode(&arrow_ipc).unwrap();
        assert_eq!(schema.field(0).name(), "x");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 5);
        let second = worker.run(&task("SELECT 1", vec![])).unwrap();
        assert!(!second.stats.cold_start);
    }

    #[test]
    fn bad_sql_is_not_retryable() {
        let mut worker = Worker::new(&WorkerConfig::default()).unwrap();
        let failure = worker.run(&task("SELEC 1", vec![])).unwrap_err();
        assert_eq!(failure.error_type, ErrorType::BadSql);
        assert!(!failure.retryable);
    }

    #[test]
    fn corrupt_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.parquet");
        std::fs::write(&bad, b"this is not parquet at all, not even close").unwrap();
        let bad = bad.to_string_lossy().to_string();
        let mut worker = Worker::new(&WorkerConfig::default()).unwrap();
        let failure =
            worker.run(&task(&format!("SELECT * FROM read_parquet('{bad}')"), vec![bad.clone()])).unwrap_err();
        assert_eq!(failure.error_type, ErrorType::CorruptFile, "{failure}");
        assert!(failure.message.contains("bad.parquet"), "{failure}");
        let missing = format!("{}/missing.parquet", dir.path().display());
        let failure = worker.run(&task(&format!("SELECT * FROM read_parquet('{missing}')"), vec![])).unwrap_err();
        assert_eq!(failure.error_type, ErrorType::MissingFile, "{failure}");
    }

    /// DuckDB 1.5.5 fails an internal check planning `min` of a hive column over one file. Such
    /// a failure is DuckDB's own bug, not retryable, and the worker stays usable after it.
    #[test]
    fn duckdbs_internal_errors_are_engine_internal_and_final() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("p=1");
        std::fs::create_dir_all(&part).unwrap();
        let file = part.join("f.parquet").to_string_lossy().to_string();
        let mut worker = Worker::new(&WorkerConfig::default()).unwrap();
        let copy = format!("COPY (SELECT range AS a FROM range(3)) TO {}", crate::quote::literal(&file));
        worker.connection().execute_batch(&copy).unwrap();
        let sql =
            format!("SELECT min(p) FROM read_parquet({}, hive_partitioning = true)", crate::quote::literal(&file));
        let failure = worker.run(&task(&sql, vec![file.clone()])).unwrap_err();
        assert_eq!(failure.error_type, ErrorType::EngineInternal, "{failure}");
        assert!(!failure.retryable);
        assert!(worker.run(&task("SELECT 42", vec![])).is_ok());
    }

    #[test]
    fn refuses_other_wire_versions() {
        let mut worker = Worker::new(&WorkerConfig::default()).unwrap();
        let mut t = task("SELECT 1", vec![]);
        t.version = 99;
        assert_eq!(worker.run(&t).unwrap_err().error_type, ErrorType::VersionMismatch);
    }

    #[test]
    fn an_interrupted_task_answers_timeout() {
        let mut worker = Worker::new(&WorkerConfig { threads: 2, ..WorkerConfig::default() }).unwrap();
        let handle = worker.connection().interrupt_handle();
        let interrupter = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            handle.interrupt();
        });
        let slow = task("SELECT count(*) FROM range(100000000000) a", vec![]);
        let failure = worker.run(&slow).unwrap_err();
        interrupter.join().unwrap();
        assert_eq!(failure.error_type, ErrorType::Timeout, "{failure}");
        // The interrupt does not outlive the task it stopped.
        assert!(worker.run(&task("SELECT 1", vec![])).is_ok());
    }

    #[test]
    fn classifies_messages() {
        assert_eq!(classify_message("Out of Memory Error: failed to allocate"), ErrorType::OutOfMemory);
        assert_eq!(classify_message("Conversion Error: Could not convert string 'x' to INT32"), ErrorType::QueryError);
        assert_eq!(
            classify_message("HTTP Error: HTTP GET error on 's3://lake/x.parquet' (HTTP 503)"),
            ErrorType::Throttled
        );
        assert_eq!(classify_message("HTTP Error: HTTP GET error on 's3://lake/x' (HTTP 404)"), ErrorType::MissingFile);
        // httpfs 1.5.5 against S3 adds the reason phrase (found by the invoker conformance suite).
        let not_found = "HTTP Error: HTTP GET error reading 's3://lake/e2e/missing.parquet' in region 'us-east-1' \
                         (HTTP 404 Not Found)\n\nLINE 1: SELECT * FROM read_parquet('s3://lake/e2e/missing.parquet')";
        assert_eq!(classify_message(not_found), ErrorType::MissingFile);
        assert_eq!(http_status("... (HTTP 503 Service Unavailable)"), Some(503));
        assert_eq!(http_status("... (HTTP 403 Forbidden)"), Some(403));
        assert_eq!(http_status("file (HTTP 404x)"), None);
        assert_eq!(http_status("file (HTTP 40)"), None);
        assert_eq!(http_status("file (HTTP 404 Not Found; retry))"), None);
        // Digits in a file name are not a status.
        assert_eq!(
            classify_message("IO Error: No files found that match the pattern \"s3://lake/429/503.parquet\""),
            ErrorType::MissingFile
        );
        assert_eq!(classify_message("Binder Error: column 503 not found"), ErrorType::BadSql);
        assert_eq!(classify_message("INTERRUPT Error: Interrupted!"), ErrorType::Timeout);
        assert_eq!(
            classify_message("INTERNAL Error: Attempted to access index 8 within vector of size 8"),
            ErrorType::EngineInternal
        );
        assert_eq!(
            classify_message(
                "Not implemented Error: Can't convert TableFilterType (BLOOM_FILTER) from global to local indexes"
            ),
            ErrorType::EngineInternal
        );
        assert_eq!(classify_message("something odd about 429"), ErrorType::Internal);
        assert_eq!(exception_class("Out of Memory Error: x"), Some("Out of Memory"));
        assert_eq!(http_status("x (HTTP 4044)"), None);
        assert_eq!(
            classify_message(
                "Permission Error: Cannot access file \"/etc/passwd\" - file system operations are disabled"
            ),
            ErrorType::Forbidden
        );
    }
}
