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

/// A task that fails with DuckDB's own internal error (a DuckDB bug that only the split SQL or
/// one task's files reach) is not retried; the query runs again as one task over all files, as
/// one DuckDB runs it, and gives DuckDB's answer. A bug the whole query reaches is the answer.
#[test]
fn a_tasks_internal_duckdb_error_reruns_the_query_as_one_task() {
    use std::sync::Arc;

    use quack::invoke::{self, FaultInjection, InProcessInvoker};
    use quack_lambda::ErrorType;

    let sql = format!(
        "SELECT payment_type, count(*) AS n, sum(fare_amount) AS fares FROM {} GROUP BY ALL ORDER BY 1",
        lake().trips()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let run = |fail_tasks: &[usize]| {
        let mut config = Config::with_concurrency(2);
        config.target_task_bytes = Some(1);
        config.split = quack::config::SplitPolicy::Always;
        // Workers on a database of their own, with ICU as the coordinator's (it runs in `TZ`).
        let workers = InProcessInvoker::new(2, common::database_with_icu());
        let faulty = FaultInjection::new(workers, ErrorType::EngineInternal, fail_tasks, u32::MAX);
        let invoker = invoke::stack(Arc::new(faulty), &config.stack());
        let lister = Arc::new(quack::partitions::LocalLister);
        let quack = Quack::from_parts(config, lister, invoker).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let report = runtime.block_on(quack.query_to(&sql, Format::Csv, &Destination::File(path.clone())))?;
        Ok::<_, quack::Error>((common::read_csv(&path), report))
    };

    // Task 3 of the split plan always fails internally; the rerun's only task is task 0.
    let (got, report) = run(&[3]).unwrap();
    assert_eq!(report.tasks, 1, "{report:?}");
    assert!(report.strategy.contains("single task over all files"), "{}", report.strategy);
    assert!(report.strategy.contains("hit DuckDB's own error"), "{}", report.strategy);
    assert_eq!(report.retries, 0, "an internal DuckDB error is not retried: {report:?}");
    common::assert_rows("rerun as one task", &sql, got, common::truth(&sql), true);

    // When the one task fails the same way, that failure is the answer.
    let err = run(&[0, 3]).unwrap_err();
    assert!(err.to_string().contains("engine_internal"), "{err}");
}

#[test]
fn partials_past_the_gather_limit_are_reduced_in_a_second_stage() {
    // One group per trip: the partials are as large as the rows, the answer a few of them.
    let sql = format!(
        "SELECT pickup_at, count(*) AS n, max(fare_amount) AS fare FROM {} GROUP BY pickup_at \
         HAVING max(fare_amount) > 72 ORDER BY pickup_at",
        lake().trips()
    );
    let mut config = Config::with_concurrency(2);
    config.target_task_bytes = Some(256 << 10);
    config.max_gather_bytes = Some(128 << 10);
    config.split = quack::config::SplitPolicy::Always;
    let exchange = tempfile::tempdir().unwrap();
    config.exchange = Some(exchange.path().display().to_string());
    let quack = Quack::embedded(config).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let report = runtime.block_on(quack.query_to(&sql, Format::Csv, &Destination::File(path.clone()))).unwrap();
    assert!(report.tasks > 2, "{report:?}");
    // The coordinator got stage 2's groups, not a partial row per trip.
    assert!(report.partial_rows < 200, "{report:?}");
    let want = common::truth(&sql);
    assert!(want.len() > 1 && want.len() < 200, "a few groups pass: {}", want.len());
    common::assert_rows("second stage after the gather limit", &sql, common::read_csv(&path), want, true);
    assert_eq!(std::fs::read_dir(exchange.path()).unwrap().count(), 0, "the exchange files are removed");

    // An answer larger than the limit is the limit's error, from the second stage too.
    let every = format!("SELECT pickup_at, count(*) AS n FROM {} GROUP BY pickup_at", lake().trips());
    let error = runtime.block_on(quack.query_to(&every, Format::Csv, &Destination::File(path))).unwrap_err();
    assert!(matches!(error, quack::Error::GatherLimit { .. }), "{error}");
    assert_eq!(std::fs::read_dir(exchange.path()).unwrap().count(), 0, "the exchange files are removed");
}
