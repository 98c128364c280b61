//! Bad input gets a clear error and no partial answer.

mod common;

use common::lake;
use quack::{Config, Destination, Format, Quack};

fn run(sql: &str) -> Result<String, quack::Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let quack = Quack::embedded(Config::with_concurrency(2))?;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(quack.query_to(sql, Format::Csv, &Destination::File(path.clone())))?;
    Ok(std::fs::read_to_string(path).unwrap())
}

#[test]
fn syntax_errors_have_a_line_and_column() {
    let err = run("SELECT count(*)\nFORM read_parquet('x/*.parquet')").unwrap_err();
    match err {
        quack::Error::Syntax { line, column, .. } => assert_eq!((line, column), (2, 6)),
        other => panic!("expected a syntax error, got {other}"),
    }
}

#[test]
fn a_path_with_no_files_is_named() {
    let sql =
        format!("SELECT count(*) FROM read_parquet('{}/nope/*/*.parquet', hive_partitioning = true)", lake().path());
    let err = run(&sql).unwrap_err().to_string();
    assert!(err.contains("nope/*/*.parquet"), "{err}");
}

#[test]
fn unknown_columns_get_duckdbs_binder_error() {
    let err = run(&format!("SELECT no_such_column FROM {}", lake().trips())).unwrap_err().to_string();
    assert!(err.contains("no_such_column"), "{err}");
}

#[test]
fn statements_other_than_select_are_refused() {
    let err = run("CREATE TABLE x AS SELECT 1").unwrap_err().to_string();
    assert!(err.contains("only a single SELECT query is supported"), "{err}");
}

#[test]
fn a_corrupt_file_is_named_and_no_answer_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("t/d=1");
    std::fs::create_dir_all(&good).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!("COPY (SELECT range AS x FROM range(10)) TO '{}/a.parquet'", good.display())).unwrap();
    let bad = dir.path().join("t/d=2");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("broken.parquet"), b"PAR1 this is not really parquet").unwrap();
    let out = dir.path().join("out.csv");
    let sql = format!(
        "SELECT d, sum(x) FROM read_parquet('{}/t/*/*.parquet', hive_partitioning = true) GROUP BY d",
        dir.path().display()
    );
    let quack = Quack::embedded(Config::with_concurrency(2)).unwrap();
    let mut config = quack.config().clone();
    config.target_task_bytes = Some(1);
    let quack = Quack::embedded(config).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = runtime.block_on(quack.query_to(&sql, Format::Csv, &Destination::File(out.clone()))).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("broken.parquet"), "{text}");
    assert!(!out.exists(), "no partial answer may be written");
}
