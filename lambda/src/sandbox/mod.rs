//! The worker's sandbox: what a task event may make the worker do.
//!
//! Contract: a sandboxed worker runs one read-only `SELECT`/`WITH` statement per task. The
//! statement passes [`tree`]'s allowlist over DuckDB's own parse tree (known functions, file
//! readers with constant paths under the allowed prefixes, no catalog, settings, secrets or
//! other queries), the event's envelope is well-formed ([`check_envelope`]: an id of
//! [`crate::wire::valid_query_id`]'s form, bounded sizes), and its files lie under the allowed
//! prefixes with no URL parameters or `..`. DuckDB itself is locked down underneath, so that even
//! SQL that got past these checks cannot read local files, `/proc`, or objects outside the
//! prefixes, cannot write, `ATTACH`, `INSTALL` or `LOAD`, and cannot change a setting:
//! `enable_external_access = false` with the allowed prefixes as DuckDB's `allowed_directories`,
//! then `lock_configuration = true`. Loading httpfs never leaves credentials in settings
//! ([`crate::s3::load_httpfs`] clears them).
//!
//! The allowlist is per worker instance (the data prefixes the deployment grants, see
//! `serverless.yml`), not per task: DuckDB refuses to change `allowed_directories` once external
//! access is off, and a fresh DuckDB per task costs 50-80 ms (mostly loading httpfs again).
//! The per-task check on the task's files keeps the event honest on top of that.
//!
//! The same [`Sandbox::check_sql`] guards the dashboard's query console.

pub mod tree;

use crate::quote::literal as quote;
use crate::wire::{valid_query_id, ErrorType, Task, TaskFailure};

/// Largest task SQL accepted, in bytes.
pub const MAX_SQL_BYTES: usize = 1 << 20;
/// Most files one task may name.
pub const MAX_FILES: usize = 100_000;
/// Longest path or URL accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest task label accepted, in characters.
pub const MAX_LABEL_CHARS: usize = 512;

/// Where a sandboxed worker may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// URL or path prefixes (`s3://my-lake/`); each ends with `/`.
    pub allowed_prefixes: Vec<String>,
}

/// Why SQL may not run in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlRefusal {
    /// DuckDB's parser rejected it.
    #[error("Parser Error: {message}")]
    Syntax { message: String },
    /// It parses, but is not something the sandbox runs.
    #[error("{message}")]
    Forbidden { message: String },
    /// DuckDB could not serialize it for the check.
    #[error("checking the SQL: {message}")]
    Check { message: String },
}

impl Sandbox {
    /// A sandbox allowing reads under `prefixes` (a trailing `/` is added where missing, so
    /// `s3://lake` does not also allow `s3://lake-private`).
    pub fn new<S: AsRef<str>>(prefixes: &[S]) -> Sandbox {
        let allowed_prefixes = prefixes
            .iter()
            .map(|p| p.as_ref().trim())
            .filter(|p| !p.is_empty())
            .map(|p| if p.ends_with('/') { p.to_string() } else { format!("{p}/") })
            .collect();
        Sandbox { allowed_prefixes }
    }

    /// Locks `conn`'s database down. Run it after everything that needs file access at set-up
    /// (loading httpfs, creating the S3 secret); nothing can change the settings afterwards.
    pub fn lock_down(&self, conn: &duckdb::Connection) -> duckdb::Result<()> {
        let list = self.allowed_prefixes.iter().map(|p| quote(p)).collect::<Vec<_>>().join(", ");
        conn.execute_batch(&format!(
            "SET allowed_directories = [{list}]; SET enable_external_access = false; SET lock_configuration = true;"
        ))
    }

    /// Whether `path` may be read: see [`Sandbox::permit`].
    pub fn allows(&self, path: &str) -> bool {
        self.permit(path).is_ok()
    }

    /// `Ok` when `path` lies under an allowed prefix, names no URL parameters or fragments
    /// (`?`, `#`: httpfs reads settings such as `s3_endpoint` from them), has no `..` segment
    /// (plain or percent-encoded) and no control characters; else why not.
    pub fn permit(&self, path: &str) -> Result<(), String> {
        if path.len() > MAX_PATH_BYTES {
            return Err(format!("a path of {} bytes is longer than the {MAX_PATH_BYTES} allowed", path.len()));
        }
        if path.chars().any(char::is_control) {
            return Err(format!("the path {path:?} has control characters"));
        }
        if path.contains('?') || path.contains('#') {
            return Err(format!("the path {path:?} has URL parameters (? or #), which may not be used here"));
        }
        let lower = path.to_ascii_lowercase();
        if path.contains('\\') || ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e)) {
            return Err(format!("the path {path:?} has escaped separators or dots"));
        }
        if path.split('/').any(|segment| segment == "..") {
            return Err(format!("the path {path:?} has a .. segment"));
        }
        if self.allowed_prefixes.iter().any(|p| path.starts_with(p)) {
            return Ok(());
        }
        Err(format!("{path} is outside the prefixes this worker may read ({})", self.allowed_prefixes.join(", ")))
    }

    /// Refuses a task that is not one read-only query the allowlist accepts, names a file
    /// outside the prefixes, or whose envelope is malformed.
    pub fn check(&self, conn: &duckdb::Connection, task: &Task) -> Result<(), TaskFailure> {
        check_envelope(task).map_err(|message| TaskFailure::new(task, ErrorType::Forbidden, message))?;
        for file in &task.files {
            self.permit(file)
                .map_err(|message| TaskFailure::new(task, ErrorType::Forbidden, format!("file: {message}")))?;
        }
        if task.convert.is_some() {
            // A conversion task runs no SQL (crate::convert refuses one that has some); its
            // files, checked above, are all it reads.
            return Ok(());
        }
        self.check_sql(conn, &task.sql).map_err(|refusal| match refusal {
            SqlRefusal::Syntax { .. } => TaskFailure::new(task, ErrorType::BadSql, refusal.to_string()),
            SqlRefusal::Forbidden { .. } => TaskFailure::new(task, ErrorType::Forbidden, refusal.to_string()),
            SqlRefusal::Check { .. } => TaskFailure::new(task, ErrorType::Internal, refusal.to_string()),
        })
    }

    /// Refuses `sql` unless it is exactly one statement that [`tree::check_statement`] accepts
    /// with this sandbox's paths. DuckDB's own parser (`json_serialize_sql`, which serializes
    /// `SELECT` statements only) decides what the SQL is.
    pub fn check_sql(&self, conn: &duckdb::Connection, sql: &str) -> Result<(), SqlRefusal> {
        let forbidden = |message: String| SqlRefusal::Forbidden { message };
        if sql.len() > MAX_SQL_BYTES {
            return Err(forbidden(format!("the SQL is {} bytes, over the {MAX_SQL_BYTES} allowed", sql.len())));
        }
        let json: String = conn
            .query_row("SELECT json_serialize_sql(CAST(? AS VARCHAR))", [sql], |row| row.get(0))
            .map_err(|e| SqlRefusal::Check { message: e.to_string() })?;
        let depth = tree::json_depth(&json);
        if depth > tree::MAX_DEPTH {
            return Err(forbidden(format!(
                "the query nests {depth} levels deep, over the {} allowed",
                tree::MAX_DEPTH
            )));
        }
        let mut deserializer = serde_json::Deserializer::from_str(&json);
        deserializer.disable_recursion_limit();
        let value: serde_json::Value = serde::Deserialize::deserialize(&mut deserializer)
            .map_err(|e| SqlRefusal::Check { message: e.to_string() })?;
        if value.get("error").and_then(|e| e.as_bool()) == Some(true) {
            let message = value.get("error_message").and_then(|m| m.as_str()).unwrap_or("not a SELECT statement");
            let error_type = value.get("error_type").and_then(|t| t.as_str()).unwrap_or("");
            return Err(if error_type == "parser" {
                SqlRefusal::Syntax { message: message.to_string() }
            } else {
                forbidden(format!("only one read-only SELECT or WITH query runs here: {message}"))
            });
        }
        let statements = value.get("statements").and_then(|s| s.as_array()).map(Vec::as_slice).unwrap_or_default();
        let [statement] = statements else {
            return Err(forbidden(format!("a task runs exactly one statement, this one has {}", statements.len())));
        };
        tree::check_statement(statement, self).map_err(|refusal| forbidden(refusal.0))
    }
}

impl tree::PathPolicy for Sandbox {
    fn permit(&self, path: &str) -> Result<(), String> {
        Sandbox::permit(self, path)
    }
}

/// Refuses an event whose id, label, SQL or file list is malformed or oversized.
pub fn check_envelope(task: &Task) -> Result<(), String> {
    if !valid_query_id(&task.query_id) {
        let shown: String = task.query_id.chars().take(80).collect();
        return Err(format!(
            "the query id {shown:?} is not 1 to 64 letters, digits, '-' or '_' starting with a letter or digit"
        ));
    }
    if task.label.chars().count() > MAX_LABEL_CHARS || task.label.chars().any(char::is_control) {
        return Err(format!("the label is over {MAX_LABEL_CHARS} characters or has control characters"));
    }
    if task.sql.len() > MAX_SQL_BYTES {
        return Err(format!("the SQL is {} bytes, over the {MAX_SQL_BYTES} allowed", task.sql.len()));
    }
    if task.files.len() > MAX_FILES {
        return Err(format!("the task names {} files, over the {MAX_FILES} allowed", task.files.len()));
    }
    if let Some(zone) = task.time_zone.as_deref().filter(|z| !crate::wire::valid_time_zone(z)) {
        let shown: String = zone.chars().take(80).collect();
        return Err(format!("the time zone {shown:?} is not 1 to 64 letters, digits or /_+-:."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WIRE_VERSION;

    fn task(sql: &str, files: &[&str]) -> Task {
        Task {
            version: WIRE_VERSION,
            query_id: "q".into(),
            task_id: 0,
            label: "t".into(),
            sql: sql.into(),
            files: files.iter().map(|f| f.to_string()).collect(),
            time_zone: None,
            exchange: None,
            convert: None,
        }
    }

    fn lake() -> Sandbox {
        Sandbox::new(&["s3://lake", "s3://spill/partials/"])
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let sandbox = lake();
        assert!(sandbox.allows("s3://lake/t/x.parquet"));
        assert!(sandbox.allows("s3://lake/t/*/*.parquet"));
        for bad in [
            "s3://lake-private/x.parquet",
            "s3://lake/../other/x.parquet",
            "s3://lake/%2E%2E/other/x.parquet",
            "s3://lake/k?s3_endpoint=127.0.0.1:9",
            "s3://lake/k#frag",
            "s3://lake/a\nb",
            "S3://lake/x",
            "/etc/passwd",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            assert!(!sandbox.allows(bad), "{bad} was allowed");
        }
        assert!(!sandbox.allows(&format!("s3://lake/{}", "a".repeat(MAX_PATH_BYTES))));
    }

    /// SQL of the shapes the planner emits, which must keep passing.
    const HONEST: &[&str] = &[
        "SELECT date, count(*) AS n, sum(fare_amount) FILTER (WHERE tip_amount > 0) AS f \
         FROM read_parquet(['s3://lake/trips/date=2024-03-01/a.parquet'], hive_partitioning = true, \
         hive_types = {'date': 'DATE'}) GROUP BY ALL ORDER BY 1 LIMIT 5",
        "WITH t AS (SELECT * FROM read_parquet('s3://lake/trips/*/*.parquet', hive_partitioning := true)), \
         u AS (SELECT * FROM t WHERE x IN (SELECT 1)) SELECT z.borough, median(t.x) OVER (PARTITION BY z.borough) \
         FROM u t JOIN read_parquet('s3://lake/zones.parquet') z ON t.id = z.location_id QUALIFY row_number() OVER () = 1",
        "SELECT CASE WHEN starts_with(key, 'backups/') THEN substr(key, 9) END AS p, sum(size)::BIGINT AS size \
         FROM read_csv(['s3://lake/inv/a.csv.gz'], hive_partitioning = true, header = false, compression = 'gzip', \
         columns = {'key': 'VARCHAR', 'size': 'BIGINT'}, filename = true) \
         WHERE list_contains(['s3://lake/inv/a.csv.gz'], filename) GROUP BY 1",
        "SELECT list_transform([1, 2], x -> x + 1), unnest([1]), TRY(1 / 0), a IS DISTINCT FROM b, 'x' LIKE 'y%', \
         COLUMNS('f.*'), * EXCLUDE (a), INTERVAL 3 DAY, date_trunc('day', d), coalesce(a, b), [1, 2][1], #1, \
         GROUPING(a), 's3://lake/ok' AS url FROM read_parquet('s3://lake/x.parquet') TABLESAMPLE 10% \
         GROUP BY GROUPING SETS ((a), ())",
        "SELECT * FROM (VALUES (1, 2)) v(a, b), UNNEST([1, 2]) u(x) UNION ALL SELECT 1, 2, 3",
    ];

    /// Forged SQL, each refused as forbidden (with a word the message must contain).
    const FORGED: &[(&str, &str)] = &[
        ("SELECT current_setting('s3_secret_access_key')", "current_setting"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
        ("SELECT * FROM duckdb_secrets()", "duckdb_secrets"),
        ("SELECT (SELECT value FROM duckdb_settings() WHERE name = 's3_secret_access_key')", "duckdb_settings"),
        ("WITH s AS (SELECT current_setting('s3_access_key_id') AS k) SELECT k FROM s", "current_setting"),
        ("SELECT * FROM query('SELECT 1')", "query"),
        ("SELECT * FROM query_table('t')", "query_table"),
        ("SELECT getvariable('x')", "getvariable"),
        ("SELECT * FROM which_secret('s3://lake/x', 's3')", "which_secret"),
        ("SELECT system.main.lower('x')", "qualified"),
        ("SELECT * FROM read_text('/etc/passwd')", "read_text"),
        ("SELECT * FROM read_blob('/proc/self/environ')", "read_blob"),
        ("SELECT * FROM read_csv('/etc/passwd')", "outside"),
        ("SELECT * FROM read_parquet('s3://other-bucket/x.parquet')", "outside"),
        ("SELECT * FROM read_parquet('s3://lake/k?s3_endpoint=127.0.0.1:9&s3_use_ssl=false')", "URL parameters"),
        ("SELECT * FROM read_parquet('s3://lake/' || 'x.parquet')", "constant"),
        ("SELECT * FROM read_parquet((SELECT 's3://lake/x.parquet'))", "constant"),
        ("SELECT * FROM read_parquet('s3://lake/x.parquet', encryption_config = {'footer_key': 'k'})", "encryption"),
        ("SELECT * FROM read_csv('s3://lake/x.csv', store_rejects = true)", "store_rejects"),
        ("SELECT * FROM glob('s3://lake/*')", "glob"),
        ("SELECT 'http://169.254.169.254/latest/meta-data/' AS u", "outside"),
        ("SELECT * FROM 's3://lake/x.parquet'", "common table expression"),
        ("SELECT * FROM duckdb_tables", "common table expression"),
        ("SELECT * FROM information_schema.tables", "qualified"),
        ("SELECT count(*) FROM range(1000000000000)", "range"),
        ("SELECT len(range(1000000000000))", "range"),
        ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t", "recursive"),
        ("SELECT pg_sleep(100)", "pg_sleep"),
        ("SELECT * FROM (DESCRIBE SELECT 1)", "DESCRIBE"),
        ("SELECT ?", "parameters"),
        ("SELECT json_serialize_sql('SELECT 1')", "json_serialize_sql"),
        ("SELECT * FROM json_execute_serialized_sql('x')", "json_execute_serialized_sql"),
        ("WITH x AS (SELECT 1) SELECT * FROM (WITH duckdb_views AS (SELECT 1) SELECT 1), duckdb_views", "duckdb_views"),
        ("COPY (SELECT 1) TO 's3://lake/x.csv'", "SELECT"),
        ("ATTACH 's3://lake/x.db'", "SELECT"),
        ("INSTALL httpfs", "SELECT"),
        ("LOAD httpfs", "SELECT"),
        ("SET enable_external_access = true", "SELECT"),
        ("RESET s3_endpoint", "SELECT"),
        ("PRAGMA version", "SELECT"),
        ("CREATE TABLE t AS SELECT 1", "SELECT"),
        ("SELECT 1; SELECT 2", "exactly one"),
        ("CALL duckdb_settings()", "SELECT"),
    ];

    #[test]
    fn honest_queries_pass_and_forged_ones_are_refused() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let sandbox = lake();
        for sql in HONEST {
            assert_eq!(sandbox.check_sql(&conn, sql), Ok(()), "{sql}");
        }
        for (sql, word) in FORGED {
            let failure = sandbox.check(&conn, &task(sql, &[])).unwrap_err();
            assert_eq!(failure.error_type, ErrorType::Forbidden, "{sql}: {failure}");
            assert!(!failure.retryable, "{sql}");
            assert!(failure.message.to_lowercase().contains(&word.to_lowercase()), "{sql}: {failure}");
        }
        assert_eq!(sandbox.check(&conn, &task("SELEC 1", &[])).unwrap_err().error_type, ErrorType::BadSql);
    }

    #[test]
    fn the_envelope_is_checked() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let sandbox = lake();
        let outside = sandbox.check(&conn, &task("SELECT 1", &["s3://other/x.parquet"])).unwrap_err();
        assert_eq!(outside.error_type, ErrorType::Forbidden);
        assert!(outside.message.contains("s3://other/x.parquet"), "{outside}");
        let params = sandbox.check(&conn, &task("SELECT 1", &["s3://lake/x?s3_endpoint=h"])).unwrap_err();
        assert_eq!(params.error_type, ErrorType::Forbidden);
        for query_id in ["../../x", "", "q id", &"q".repeat(65)] {
            let mut forged = task("SELECT 1", &[]);
            forged.query_id = query_id.to_string();
            assert_eq!(sandbox.check(&conn, &forged).unwrap_err().error_type, ErrorType::Forbidden, "{query_id}");
        }
        let mut long = task(&format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES)), &[]);
        assert_eq!(sandbox.check(&conn, &long).unwrap_err().error_type, ErrorType::Forbidden);
        long.sql = format!("SELECT {}1", "abs(".repeat(400)) + &")".repeat(400);
        let deep = sandbox.check(&conn, &long).unwrap_err();
        assert_eq!(deep.error_type, ErrorType::Forbidden, "{deep}");
        assert!(deep.message.contains("levels deep"), "{deep}");
        let mut labelled = task("SELECT 1", &[]);
        labelled.label = "a\nforged log line".into();
        assert_eq!(sandbox.check(&conn, &labelled).unwrap_err().error_type, ErrorType::Forbidden);
    }

    /// Every function of this DuckDB build is either allowed or denied on purpose: a new
    /// release's new functions fail this test until someone classifies them.
    #[test]
    fn the_function_lists_cover_duckdbs_catalog() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT DISTINCT function_name FROM duckdb_functions() \
                 WHERE function_type IN ('scalar', 'aggregate', 'macro')",
            )
            .unwrap();
        let names: Vec<String> = stmt.query_map([], |row| row.get(0)).unwrap().map(|r| r.unwrap()).collect();
        let allowed: std::collections::HashSet<&str> = tree::allowed_function_names().collect();
        let denied: std::collections::HashSet<&str> = tree::denied_functions().map(|(n, _)| n).collect();
        let unknown: Vec<&String> =
            names.iter().filter(|n| !allowed.contains(n.as_str()) && !denied.contains(n.as_str())).collect();
        assert!(unknown.is_empty(), "classify in lambda/src/sandbox/*_functions.txt: {unknown:?}");
    }

    #[test]
    fn a_locked_down_database_reads_nothing_outside_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("lake");
        std::fs::create_dir_all(&allowed).unwrap();
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!("COPY (SELECT 42 AS x) TO '{}/a.parquet'", allowed.display())).unwrap();
        Sandbox::new(&[allowed.to_string_lossy()]).lock_down(&conn).unwrap();
        let read = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0));
        assert_eq!(read(&format!("SELECT x FROM read_parquet('{}/a.parquet')", allowed.display())).unwrap(), 42);
        for sql in [
            "SELECT count(*) FROM read_text('/etc/passwd')".to_string(),
            "SELECT count(*) FROM read_text('/proc/self/environ')".to_string(),
        ] {
            assert!(read(&sql).is_err(), "{sql} was allowed");
        }
        for sql in [
            format!("COPY (SELECT 1) TO '{}/out.csv'", dir.path().display()),
            "SET enable_external_access = true".to_string(),
            "SET allowed_directories = ['/']".to_string(),
            "INSTALL httpfs".to_string(),
            format!("ATTACH '{}/x.db'", dir.path().display()),
        ] {
            assert!(conn.execute_batch(&sql).is_err(), "{sql} was allowed");
        }
    }
}
