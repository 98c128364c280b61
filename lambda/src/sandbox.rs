//! The worker's sandbox: what a task event may make the worker do.
//!
//! Contract: a sandboxed worker runs one read-only `SELECT`/`WITH` statement per task, whose
//! files lie under the allowed prefixes; DuckDB itself is locked down so that even SQL that gets
//! past these checks cannot read local files, `/proc`, or objects outside the allowed prefixes,
//! cannot write, `ATTACH`, `INSTALL` or `LOAD`, and cannot change a setting:
//! `enable_external_access = false` with the allowed prefixes as DuckDB's `allowed_directories`,
//! then `lock_configuration = true`.
//!
//! The allowlist is per worker instance (the data prefixes the deployment grants, see
//! `serverless.yml`), not per task: DuckDB refuses to change `allowed_directories` once external
//! access is off, and a fresh DuckDB per task costs 50-80 ms (mostly loading httpfs again).
//! The per-task check on the task's files keeps the event honest on top of that.

use crate::s3::quote;
use crate::wire::{ErrorType, Task, TaskFailure};

/// Where a sandboxed worker may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// URL or path prefixes (`s3://my-lake/`); each ends with `/`.
    pub allowed_prefixes: Vec<String>,
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

    /// Whether `path` lies under an allowed prefix (no `..` segments).
    pub fn allows(&self, path: &str) -> bool {
        !path.split('/').any(|segment| segment == "..") && self.allowed_prefixes.iter().any(|p| path.starts_with(p))
    }

    /// Refuses a task that is not one read-only query, or names a file outside the prefixes.
    /// DuckDB's own parser (`json_serialize_sql`, which serializes `SELECT` statements only)
    /// decides what the SQL is.
    pub fn check(&self, conn: &duckdb::Connection, task: &Task) -> Result<(), TaskFailure> {
        if let Some(file) = task.files.iter().find(|f| !self.allows(f)) {
            return Err(TaskFailure::new(
                task,
                ErrorType::Forbidden,
                format!(
                    "file {file} is outside the prefixes this worker may read ({})",
                    self.allowed_prefixes.join(", ")
                ),
            ));
        }
        let json: String = conn
            .query_row("SELECT json_serialize_sql(CAST(? AS VARCHAR))", [&task.sql], |row| row.get(0))
            .map_err(|e| TaskFailure::new(task, ErrorType::Internal, format!("checking the task's SQL: {e}")))?;
        let value: serde_json::Value = serde_json::from_str(&json)
            .map_err(|e| TaskFailure::new(task, ErrorType::Internal, format!("checking the task's SQL: {e}")))?;
        if value.get("error").and_then(|e| e.as_bool()) == Some(true) {
            let message = value.get("error_message").and_then(|m| m.as_str()).unwrap_or("not a SELECT statement");
            let error_type = value.get("error_type").and_then(|t| t.as_str()).unwrap_or("");
            return Err(if error_type == "parser" {
                TaskFailure::new(task, ErrorType::BadSql, format!("Parser Error: {message}"))
            } else {
                TaskFailure::new(
                    task,
                    ErrorType::Forbidden,
                    format!("only one read-only SELECT or WITH query runs here: {message}"),
                )
            });
        }
        let statements = value.get("statements").and_then(|s| s.as_array()).map_or(0, |s| s.len());
        if statements != 1 {
            return Err(TaskFailure::new(
                task,
                ErrorType::Forbidden,
                format!("a task runs exactly one statement, this one has {statements}"),
            ));
        }
        Ok(())
    }
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
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let sandbox = Sandbox::new(&["s3://lake", "s3://spill/partials/"]);
        assert!(sandbox.allows("s3://lake/t/x.parquet"));
        assert!(!sandbox.allows("s3://lake-private/x.parquet"));
        assert!(!sandbox.allows("s3://lake/../other/x.parquet"));
        assert!(!sandbox.allows("/etc/passwd"));
    }

    #[test]
    fn only_single_select_statements_pass() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let sandbox = Sandbox::new(&["s3://lake/"]);
        assert!(sandbox.check(&conn, &task("WITH t AS (SELECT 1 AS x) SELECT * FROM t", &[])).is_ok());
        for sql in [
            "COPY (SELECT 1) TO 's3://lake/x.csv'",
            "ATTACH 's3://lake/x.db'",
            "INSTALL httpfs",
            "LOAD httpfs",
            "SET enable_external_access = true",
            "SELECT 1; SELECT 2",
            "PRAGMA version",
            "CREATE TABLE t AS SELECT 1",
        ] {
            let failure = sandbox.check(&conn, &task(sql, &[])).unwrap_err();
            assert_eq!(failure.error_type, ErrorType::Forbidden, "{sql}: {failure}");
        }
        assert_eq!(sandbox.check(&conn, &task("SELEC 1", &[])).unwrap_err().error_type, ErrorType::BadSql);
        let outside = sandbox.check(&conn, &task("SELECT 1", &["s3://other/x.parquet"])).unwrap_err();
        assert_eq!(outside.error_type, ErrorType::Forbidden);
        assert!(outside.message.contains("s3://other/x.parquet"), "{outside}");
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
        for sql in
            ["SELECT count(*) FROM read_text('/etc/passwd')", "SELECT count(*) FROM read_text('/proc/self/environ')"]
        {
            assert!(read(sql).is_err(), "{sql} was allowed");
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
