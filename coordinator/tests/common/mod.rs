//! Shared by the integration tests: a small lake the tests generate, the truth from one plain
//! DuckDB over the same files, and the fuzzer's comparison (the tolerance of `lakecheck/check.py`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use quack::{Config, Destination, Format, Quack};
use quack_fuzz::judge::{compare, parse_csv};

/// A lake under a temporary directory, generated once per test binary.
pub struct Lake {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Lake {
    pub fn path(&self) -> String {
        self.root.display().to_string()
    }

    pub fn trips(&self) -> String {
        format!("read_parquet('{}/trips/*/*.parquet', hive_partitioning = true)", self.path())
    }
}

/// The shared test lake: the demo generator at small size, plus edge cases (a day with one row
/// in an extra file, a day written as three files, a file with many NULLs).
pub fn lake() -> &'static Lake {
    static LAKE: OnceLock<Lake> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lake");
        quack::demo::generate(&root, quack::demo::DemoSize { trips: 60_000, objects: 5_000 }).unwrap();
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let trips = format!("{}/trips", root.display());
        std::fs::create_dir_all(format!("{trips}/date=2024-04-01")).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE t AS SELECT * FROM read_parquet('{trips}/*/*.parquet', hive_partitioning = true);
             CREATE TABLE extra AS SELECT * EXCLUDE (date) FROM t WHERE date = DATE '2024-03-05';
             COPY (SELECT * FROM extra WHERE pickup_location_id % 3 = 0) TO '{trips}/date=2024-03-05/part-a.parquet' (FORMAT parquet);
             COPY (SELECT * FROM extra WHERE pickup_location_id % 3 = 1) TO '{trips}/date=2024-03-05/part-b.parquet' (FORMAT parquet);
             COPY (SELECT * REPLACE (NULL::DOUBLE AS tip_amount) FROM extra WHERE pickup_location_id % 3 = 2) TO '{trips}/date=2024-03-05/part-c.parquet' (FORMAT parquet);
             COPY (SELECT * EXCLUDE (date) FROM t WHERE date = DATE '2024-03-07' LIMIT 1) TO '{trips}/date=2024-04-01/part-0.parquet' (FORMAT parquet);"
        ))
        .unwrap();
        // The day-5 data now lives in three files next to DuckDB's own; drop the original.
        for entry in std::fs::read_dir(format!("{trips}/date=2024-03-05")).unwrap() {
            let path = entry.unwrap().path();
            if !path.file_name().unwrap().to_string_lossy().starts_with("part-") {
                std::fs::remove_file(path).unwrap();
            }
        }
        Lake { _dir: dir, root }
    })
}

/// One DuckDB over the files: the expected answer as CSV rows (header first).
pub fn truth(sql: &str) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truth.csv");
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute(&format!("COPY ({sql}) TO '{}' (FORMAT csv, HEADER)", path.display()), []).unwrap();
    read_csv(&path)
}

/// As [`truth`], in the time zone `zone` (ICU from `QUACK_ICU_EXTENSION` or the fetch
/// script's cache).
pub fn truth_in_zone(sql: &str, zone: &str) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truth.csv");
    let conn = database_with_icu();
    conn.execute_batch(&format!("SET TimeZone = '{zone}'")).unwrap();
    conn.execute(&format!("COPY ({sql}) TO '{}' (FORMAT csv, HEADER)", path.display()), []).unwrap();
    read_csv(&path)
}

/// A fresh in-memory DuckDB with ICU (`QUACK_ICU_EXTENSION`, or the fetch script's cache).
pub fn database_with_icu() -> duckdb::Connection {
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let icu = std::env::var_os("QUACK_ICU_EXTENSION").filter(|v| !v.is_empty()).map(PathBuf::from);
    quack_lambda::extension::load(&conn, "icu", icu.as_deref()).unwrap();
    conn
}

/// `quack`'s plan of `sql`, from synchronous test code.
pub fn plan(quack: &Quack, sql: &str) -> Result<quack::plan::Plan, quack::Error> {
    tokio::runtime::Runtime::new().unwrap().block_on(quack.plan(sql))
}

/// quack's answer as CSV rows (header first), with `concurrency` in-process workers.
pub fn quack_csv(sql: &str, config: Config) -> Result<Vec<Vec<String>>, quack::Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quack.csv");
    let quack = Quack::embedded(config)?;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(quack.query_to(sql, Format::Csv, &Destination::File(path.clone())))?;
    Ok(read_csv(&path))
}

pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    parse_csv(&std::fs::read_to_string(path).unwrap())
}

/// Asserts quack's answer equals DuckDB's: header exactly, rows in order when `ordered`, else as
/// multisets; numbers with relative tolerance 1e-9.
pub fn assert_same(name: &str, sql: &str, ordered: bool, config: Config) {
    let want = truth(sql);
    let got = quack_csv(sql, config).unwrap_or_else(|e| panic!("{name}: quack failed: {e}\n{sql}"));
    assert_rows(name, sql, got, want, ordered);
}

/// Asserts two CSV answers (header first) are the same, as [`assert_same`] compares them
/// (the fuzzer's comparison, [`quack_fuzz::judge::compare`]).
pub fn assert_rows(name: &str, sql: &str, got: Vec<Vec<String>>, want: Vec<Vec<String>>, ordered: bool) {
    if let Some(difference) = compare(&got, &want, ordered) {
        panic!("{name}: {difference}\n{sql}");
    }
}
