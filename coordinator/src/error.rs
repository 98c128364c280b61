//! The coordinator library's error type: each variant names what failed and where.

/// Errors from planning, fanning out and reducing a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL does not parse; line and column are 1-based.
    #[error("SQL syntax error at line {line}, column {column}: {message}")]
    Syntax { message: String, line: usize, column: usize },
    /// The SQL may not run here: the sandbox of a worker or of the dashboard refused it.
    #[error("forbidden: {message}")]
    Forbidden { message: String },
    /// The SQL parses but is not something quack runs.
    #[error("unsupported query: {reason}")]
    Unsupported { reason: String },
    /// DuckDB rejected the query when binding it (unknown column, type error, missing file...).
    #[error("{message}")]
    Bind { message: String },
    /// A path or glob of the partitioned table matched no file.
    #[error("no files match {pattern}")]
    NoFiles { pattern: String },
    /// Listing the files of a path failed.
    #[error("listing {path}: {message}")]
    List { path: String, message: String },
    /// An object store failed to list or read `path`.
    #[error("{action} {path}: {source}")]
    Store {
        action: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },
    /// A task failed for good (after retries, when retryable).
    #[error("task {task_id} ({label}): {source}")]
    Task { task_id: usize, label: String, source: crate::invoke::InvokeError },
    /// The reduce step failed.
    #[error("reduce failed: {message}")]
    Reduce { message: String },
    /// Writing the result failed.
    #[error("writing the result to {destination}: {message}")]
    Output { destination: String, message: String },
    /// The coordinator's own DuckDB failed.
    #[error("coordinator DuckDB: {source}")]
    Engine { source: duckdb::Error },
    /// Setting up S3 access (credentials, httpfs) failed.
    #[error("S3 access: {message}")]
    S3 { message: String },
    /// The query's tasks did not all finish before the overall deadline.
    #[error("the query's tasks did not finish within the {seconds} s deadline ({done} of {total} done)")]
    Deadline { seconds: u64, done: usize, total: usize },
    /// The workers' partial results would pass what the coordinator may hold.
    #[error(
        "the partial results reached {gathered} bytes with {done} of {total} tasks done, more than the {limit} bytes \
         --max-gather-bytes lets the coordinator hold; aggregate or filter more, add a LIMIT, or raise \
         --max-gather-bytes (0: no limit)"
    )]
    GatherLimit { limit: u64, gathered: u64, done: usize, total: usize },
    /// An S3 Inventory location or report is missing or unreadable.
    #[error("inventory {location}: {message}")]
    Inventory { location: String, message: String },
    /// The configuration is not usable.
    #[error("configuration: {message}")]
    Config { message: String },
    /// A worker could not be started.
    #[error(transparent)]
    Worker(#[from] quack_lambda::WorkerError),
    /// Generating the demo lake failed.
    #[error("demo lake at {path}: {message}")]
    Demo { path: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
