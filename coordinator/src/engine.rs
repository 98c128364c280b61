//! The coordinator's own DuckDB: binds queries to learn their output names and types (DESCRIBE),
//! checks syntax with DuckDB's parser, evaluates partition predicates, and runs the reduce.
//!
//! Built once per [`crate::Quack`]; calls are serialized on one connection.

use std::collections::HashSet;

use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::catalog::FunctionCatalog;
use crate::error::{Error, Result};

/// A result column: name and DuckDB type as DuckDB spells it (`DECIMAL(38,2)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub data_type: String,
}

/// The coordinator's DuckDB connection.
pub struct Engine {
    conn: Mutex<duckdb::Connection>,
    /// DuckDB's aggregates ([`Engine::aggregates`]), once read.
    catalog: OnceLock<FunctionCatalog>,
    /// The thread reading them while the process starts: `duckdb_functions()` takes ~20 ms,
    /// which overlaps with listing and binding instead of adding to them.
    catalog_loading: Mutex<Option<std::thread::JoinHandle<duckdb::Result<FunctionCatalog>>>>,
    time_zone: Option<String>,
}

impl Engine {
    /// Opens an in-memory DuckDB using `threads` threads, with ICU where it is found.
    pub fn new(threads: usize) -> Result<Self> {
        let mut config = crate::Config::with_concurrency(1);
        config.engine_threads = threads;
        Self::open(&config)
    }

    /// Opens an in-memory DuckDB for `config`: its engine threads, its memory limit, and ICU
    /// (from `icu_extension`, else where [`quack_lambda::extension::load`] finds it; never
    /// downloaded), so that TIMESTAMPTZ and time-zone functions work in the session's time zone
    /// as in one DuckDB: `time_zone` when set, else `TZ`, else the system's.
    ///
    /// Without ICU, DuckDB works in UTC. That is the same answer only when the session's zone
    /// is UTC: in another zone, opening fails with a message that says how to get ICU, rather
    /// than showing every time in UTC.
    pub fn open(config: &crate::Config) -> Result<Self> {
        // Planned: ICU now, httpfs when a query reads s3:// (see quack_lambda::extension).
        let planned = [("icu", config.icu_extension.as_deref()), ("httpfs", config.httpfs_extension.as_deref())];
        let conn = quack_lambda::extension::open_in_memory(duckdb::Config::default(), &planned)
            .map_err(|source| Error::Engine { source })?;
        tracing::debug!("opened DuckDB");
        let mut settings =
            format!("SET threads = {}; SET autoinstall_known_extensions = false;", config.engine_threads.max(1));
        if let Some(limit) = &config.memory_limit {
            settings.push_str(&format!(" SET memory_limit = {};", quack_lambda::quote::literal(limit)));
        }
        conn.execute_batch(&settings).map_err(|source| Error::Engine { source })?;
        let icu = config.icu_extension.as_deref();
        match quack_lambda::extension::load(&conn, "icu", icu) {
            Ok(file) => tracing::debug!(?file, "loaded ICU"),
            Err(e) if icu.is_some() => return Err(Error::Config { message: e.to_string() }),
            Err(e) => {
                let zone = match &config.time_zone {
                    Some(zone) => crate::time_zone::other_than_utc(Some(zone), None, || None),
                    None => crate::time_zone::local_zone_other_than_utc(),
                };
                if let Some(zone) = zone {
                    tracing::debug!(error = %e, "no ICU");
                    return Err(Error::Config {
                        message: format!(
                            "the session's time zone is {zone}, and quack needs DuckDB's icu extension to work in \
                             it as DuckDB does, but found none: run scripts/fetch-extension.sh icu (or point \
                             --icu-extension at an icu.duckdb_extension file), or set TZ=UTC"
                        ),
                    });
                }
                tracing::debug!(error = %e, "no ICU: the session's zone is UTC, and time-zone functions fail");
            }
        }
        if let (Some(zone), Some(_)) = (&config.time_zone, quack_lambda::runner::current_time_zone(&conn)) {
            // GLOBAL: the in-process workers' connections to this database run in it too.
            conn.execute_batch(&format!("SET GLOBAL TimeZone = {}", quack_lambda::quote::literal(zone)))
                .map_err(|e| Error::Config { message: format!("--time-zone {zone:?}: {e}") })?;
        }
        let time_zone = quack_lambda::runner::current_time_zone(&conn);
        // The bundled release's catalog is kept (crate::catalog); another release's is read on a
        // thread of its own, overlapping with listing and binding. A failure there is read
        // again, and reported, by the first call of `aggregates`.
        let catalog = OnceLock::new();
        let release = conn.query_row("SELECT library_version FROM pragma_version()", [], |row| row.get::<_, String>(0));
        let catalog_loading = match release.ok().and_then(|release| FunctionCatalog::pinned(&release)) {
            Some(pinned) => {
                let _ = catalog.set(pinned);
                None
            }
            None => conn.try_clone().ok().map(|second| std::thread::spawn(move || FunctionCatalog::load(&second))),
        };
        Ok(Engine { conn: Mutex::new(conn), catalog, catalog_loading: Mutex::new(catalog_loading), time_zone })
    }

    /// The session's time zone (DuckDB's `TimeZone`) that every task runs in; `None` without
    /// ICU (then the session's zone is UTC, and so is every worker's).
    pub fn time_zone(&self) -> Option<&str> {
        self.time_zone.as_deref()
    }

    /// A new connection to the engine's database (for in-process workers sharing it).
    pub fn connect(&self) -> Result<duckdb::Connection> {
        self.lock().try_clone().map_err(|source| Error::Engine { source })
    }

    /// Lets the database (the coordinator and in-process workers sharing it) read `s3://` URLs:
    /// loads httpfs (from `httpfs`, else DuckDB's extension directory; never downloaded) and
    /// creates the S3 secret from `access`.
    pub fn enable_s3(&self, httpfs: Option<&std::path::Path>, access: &quack_lambda::s3::S3Access) -> Result<()> {
        let conn = self.lock();
        conn.execute_batch("SET autoinstall_known_extensions = false").map_err(|source| Error::Engine { source })?;
        quack_lambda::s3::load_httpfs(&conn, httpfs).map_err(|e| Error::S3 { message: e.to_string() })?;
        conn.execute_batch(&access.secret_sql())
            .map_err(|e| Error::S3 { message: format!("creating DuckDB's S3 secret: {e}") })
    }

    /// Lowercase names that aggregate in this DuckDB: its aggregate functions and the macros
    /// whose bodies aggregate ([`FunctionCatalog`]).
    pub fn aggregates(&self) -> Result<&HashSet<String>> {
        if let Some(catalog) = self.catalog.get() {
            return Ok(catalog.aggregates());
        }
        let loading = self.catalog_loading.lock().unwrap_or_else(|p| p.into_inner()).take();
        let catalog = match loading.map(|thread| thread.join()) {
            Some(Ok(Ok(catalog))) => catalog,
            // The thread failed (or another call took it): read the catalog here, reporting errors.
            _ => FunctionCatalog::load(&self.lock()).map_err(|source| Error::Engine { source })?,
        };
        Ok(self.catalog.get_or_init(|| catalog).aggregates())
    }

    /// Exclusive access to the connection (for the reduce).
    pub fn lock(&self) -> MutexGuard<'_, duckdb::Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The output columns of `sql`, as DuckDB binds it. DuckDB's error message on failure.
    pub fn describe(&self, sql: &str) -> std::result::Result<Vec<Column>, String> {
        let conn = self.lock();
        let describe = "DESCRIBE ";
        let mut stmt = conn.prepare(&format!("{describe}{sql}")).map_err(|e| as_written(&e.to_string(), describe))?;
        let rows = stmt
            .query_map([], |row| Ok(Column { name: row.get(0)?, data_type: row.get(1)? }))
            .map_err(|e| e.to_string())?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| e.to_string())
    }

    /// The first column of `sql`'s rows, as text (`NULL`: `None`). For the planner's own small
    /// queries (a sample's quantiles); DuckDB's error message on failure.
    pub fn strings(&self, sql: &str) -> std::result::Result<Vec<Option<String>>, String> {
        let conn = self.lock();
        let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
        let rows = stmt.query_map([], |row| row.get::<_, Option<String>>(0)).map_err(|e| e.to_string())?;
        rows.collect::<duckdb::Result<Vec<_>>>().map_err(|e| e.to_string())
    }

    /// Runs DuckDB's optimizer on `sql` (`EXPLAIN`) without executing it. DuckDB's error message
    /// when planning fails: an optimizer bug shows here, before any task runs.
    pub fn optimize(&self, sql: &str) -> std::result::Result<(), String> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).map_err(|e| e.to_string())?;
        stmt.query([]).map(|_| ()).map_err(|e| e.to_string())
    }

    /// DuckDB's physical plan of `sql` (`EXPLAIN`'s text), without executing it.
    pub fn physical_plan(&self, sql: &str) -> std::result::Result<String, String> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).map_err(|e| e.to_string())?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(1)).map_err(|e| e.to_string())?;
        rows.collect::<duckdb::Result<Vec<String>>>().map(|parts| parts.join("\n")).map_err(|e| e.to_string())
    }

    /// Binds `final_sql` over an empty partials table with `partial_columns`: the reduce of a
    /// plan must bind before any task runs. DuckDB's error message on failure.
    pub fn check_reduce(&self, partial_columns: &[Column], final_sql: &str) -> std::result::Result<(), String> {
        let conn = self.lock();
        crate::reduce::create_partials(&conn, partial_columns).map_err(|e| e.to_string())?;
        let described = conn.prepare(&format!("DESCRIBE {final_sql}")).and_then(|mut stmt| stmt.query([]).map(|_| ()));
        crate::reduce::drop_partials(&conn);
        described.map_err(|e| e.to_string())
    }

    /// DuckDB's verdict on the syntax of `sql`: `Some(error)` when it does not parse.
    pub fn syntax_error(&self, sql: &str) -> Option<Error> {
        let conn = self.lock();
        let json: String =
            match conn.query_row("SELECT json_serialize_sql(CAST(? AS VARCHAR))", [sql], |row| row.get(0)) {
                Ok(json) => json,
                Err(e) => {
                    tracing::debug!(error = %e, "DuckDB could not check the syntax");
                    return None;
                }
            };
        let value: serde_json::Value = serde_json::from_str(&json).ok()?;
        if value.get("error").and_then(|e| e.as_bool()) != Some(true) || value.get("error_type")?.as_str()? != "parser"
        {
            return None;
        }
        let message = value.get("error_message")?.as_str()?.to_string();
        let position = value.get("position").and_then(|p| p.as_str()?.parse::<usize>().ok()).unwrap_or(0);
        let (line, column) = line_column(sql, position);
        Some(Error::Syntax { message, line, column })
    }

    /// Whether the database holds no temporary (spilled) files and its temporary directory does
    /// not exist; `false` when that cannot be read.
    pub fn has_no_temporary_files(&self) -> bool {
        let conn = self.lock();
        let files = conn.query_row("SELECT count(*) FROM duckdb_temporary_files()", [], |row| row.get::<_, i64>(0));
        let dir = conn.query_row("SELECT current_setting('temp_directory')", [], |row| row.get::<_, String>(0));
        match (files, dir) {
            (Ok(0), Ok(dir)) => dir.is_empty() || std::fs::symlink_metadata(&dir).is_err(),
            _ => false,
        }
    }

    /// How many statements DuckDB's parser finds in `sql` when all are SELECT queries;
    /// `None` when another kind is among them, or DuckDB cannot tell.
    pub fn select_statements(&self, sql: &str) -> Option<usize> {
        let conn = self.lock();
        let json: String =
            conn.query_row("SELECT json_serialize_sql(CAST(? AS VARCHAR))", [sql], |row| row.get(0)).ok()?;
        let value: serde_json::Value = serde_json::from_str(&json).ok()?;
        if value.get("error").and_then(|e| e.as_bool()) != Some(false) {
            return None;
        }
        Some(value.get("statements")?.as_array()?.len())
    }

    /// Indices (into `rows`) of the rows of a VALUES table that satisfy `predicate`.
    /// `columns` are (name, type); each row holds one SQL literal expression per column.
    pub fn filter_rows(
        &self,
        columns: &[(String, String)],
        rows: &[Vec<String>],
        predicate: &str,
    ) -> std::result::Result<Vec<usize>, String> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let names = columns.iter().map(|(n, _)| quack_lambda::quote::ident(n)).collect::<Vec<_>>();
        let values = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let cells =
                    row.iter().zip(columns).map(|(cell, (_, ty))| format!("CAST({cell} AS {ty})")).collect::<Vec<_>>();
                format!("({i}, {})", cells.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT __quack_row FROM (VALUES {values}) AS __quack_parts(__quack_row, {}) WHERE {predicate} ORDER BY 1",
            names.join(", ")
        );
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
        let rows = stmt.query_map([], |row| row.get::<_, i64>(0)).map_err(|e| e.to_string())?;
        rows.map(|r| r.map(|i| i as usize)).collect::<std::result::Result<Vec<_>, _>>().map_err(|e| e.to_string())
    }
}

/// DuckDB's `message` without the line of SQL it ends with (`LINE 3: ...` and its caret),
/// for SQL the user did not write.
pub fn without_line(message: &str) -> &str {
    match message.rfind("\n\nLINE ") {
        Some(at) => &message[..at],
        None => message,
    }
}

/// DuckDB's `message` about SQL that it ran as `prefix` + the user's SQL, its line shown as the
/// user wrote it: the prefix removed from the first line, the caret moved back under the same
/// character. A line further on, or shown from its middle (`LINE 1: ...`), is the user's already.
fn as_written(message: &str, prefix: &str) -> String {
    let Some(at) = message.rfind(&format!("\n\nLINE 1: {prefix}")) else { return message.to_string() };
    let (head, context) = message.split_at(at);
    // DuckDB's context is two lines: the SQL's, then the caret's.
    let context = context.replacen(prefix, "", 1);
    match context.rsplit_once('\n') {
        Some((line, caret)) => {
            let caret = caret.strip_prefix(&" ".repeat(prefix.chars().count())).unwrap_or(caret);
            format!("{head}{line}\n{caret}")
        }
        None => format!("{head}{context}"),
    }
}

/// 1-based line and column of byte `position` in `text`.
pub fn line_column(text: &str, position: usize) -> (usize, usize) {
    let position = position.min(text.len());
    let before = &text[..text.floor_char_boundary(position)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_or_their_directory_need_a_teardown() {
        let engine = Engine::new(1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("spill");
        let set = |path: &std::path::Path| {
            let sql = format!("SET temp_directory = {}", quack_lambda::quote::literal(&path.display().to_string()));
            engine.lock().execute_batch(&sql).unwrap();
        };
        set(&absent);
        assert!(engine.has_no_temporary_files(), "nothing spilled, no directory");
        // A sort past the memory limit spills into the directory, which DuckDB creates.
        engine.lock().execute_batch("SET memory_limit = '16MB'; SET threads = 1").unwrap();
        let spilled = engine.lock().query_row(
            "SELECT count(*) FROM (SELECT range AS i, md5(range::VARCHAR) AS m FROM range(600000) ORDER BY m)",
            [],
            |row| row.get::<_, i64>(0),
        );
        assert_eq!(spilled.unwrap(), 600000);
        assert!(absent.exists(), "DuckDB spilled");
        assert!(!engine.has_no_temporary_files(), "its directory is there until DuckDB closes");
        drop(engine);
        assert!(!absent.exists(), "DuckDB removed it when it closed");
    }

    #[test]
    fn errors_show_the_sql_as_the_user_wrote_it() {
        let engine = Engine::new(1).unwrap();
        let error = engine.describe("SELECT nosuchcol FROM range(3)").unwrap_err();
        assert!(error.contains("LINE 1: SELECT nosuchcol FROM range(3)\n               ^"), "{error}");
        assert!(!error.contains("DESCRIBE"), "{error}");
        // A long line is shown from its middle, as the user wrote it already.
        let long = format!("SELECT {} nosuchcol FROM range(3)", "1 + ".repeat(40) + "1,");
        let error = engine.describe(&long).unwrap_err();
        assert!(error.contains("LINE 1: ...") && !error.contains("DESCRIBE"), "{error}");
        // On a later line, the prefix is not in the line shown.
        let error = engine.describe("SELECT 1,\n  nosuchcol FROM range(3)").unwrap_err();
        assert!(error.contains("LINE 2:   nosuchcol"), "{error}");
        assert_eq!(without_line("Binder Error: no\n\nLINE 1: COPY (SELECT x\n  ^"), "Binder Error: no");
        assert_eq!(without_line("Conversion Error: no"), "Conversion Error: no");
    }

    #[test]
    fn positions_are_one_based() {
        assert_eq!(line_column("SELECT a FORM t", 14), (1, 15));
        assert_eq!(line_column("SELECT a\nFORM t", 14), (2, 6));
        assert_eq!(line_column("", 10), (1, 1));
    }

    #[test]
    fn duckdb_reports_syntax_errors_with_a_position() {
        let engine = Engine::new(1).unwrap();
        let Some(Error::Syntax { line, column, message }) = engine.syntax_error("SELECT a\nFORM t") else {
            panic!("expected a syntax error")
        };
        assert_eq!((line, column), (2, 6), "{message}");
        assert!(engine.syntax_error("SELECT 1").is_none());
    }

    #[test]
    fn describes_and_knows_aggregates() {
        let engine = Engine::new(1).unwrap();
        let columns = engine.describe("SELECT 1::BIGINT AS a, 'x' AS b").unwrap();
        assert_eq!(columns[0], Column { name: "a".into(), data_type: "BIGINT".into() });
        assert_eq!(columns[1].data_type, "VARCHAR");
        assert!(engine.aggregates().unwrap().contains("median"));
        assert!(engine.aggregates().unwrap().contains("geomean"), "an aggregating macro");
        assert!(!engine.aggregates().unwrap().contains("lower"));
        assert!(engine.describe("SELECT nope").unwrap_err().contains("nope"));
    }

    #[test]
    fn filters_rows_with_duckdb_semantics() {
        let engine = Engine::new(1).unwrap();
        let columns = vec![("date".to_string(), "DATE".to_string())];
        let rows = vec![vec!["'2024-03-01'".to_string()], vec!["'2024-3-2'".to_string()], vec!["NULL".to_string()]];
        let kept = engine.filter_rows(&columns, &rows, "\"date\" >= DATE '2024-03-02'").unwrap();
        assert_eq!(kept, vec![1]);
    }
}
