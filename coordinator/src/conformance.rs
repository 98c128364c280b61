//! Shared conformance suites, in object_store's habit: every [`Lister`] and every [`Invoker`]
//! implementation runs the same checks from its own tests (local, S3 and in-memory listers;
//! the in-process and Lambda invokers), so a backend cannot drift from the contract the planner
//! and the runner rely on. The suites panic on the first broken promise, naming it.

use std::sync::Arc;

use quack_lambda::{ipc, ErrorType, PartialData, Task, WIRE_VERSION};

use crate::invoke::{invoke_all, InvokeError, Invoker, QueryRun};
use crate::partitions::Lister;

/// The objects a lister under test must hold under its root, as `(relative path, contents)`:
/// hive directories, a nested file, a name with a space and a non-ASCII character, a name with
/// a percent sign (never decoded), and a file of another extension. The caller writes them; [`lister`] checks the listing.
pub const LISTER_FILES: &[(&str, &str)] = &[
    ("t/d=1/a.parquet", "a"),
    ("t/d=1/b.parquet", "bb"),
    ("t/d=10/x.csv", "ccc"),
    ("t/d=2/a.parquet", "dddd"),
    ("t/d=2/c%41.parquet", "ggggggg"),
    ("t/d=2/sub/deep.parquet", "eeeee"),
    ("t/with space/é.parquet", "ffffff"),
    ("manifest.json", "{\"files\": 2}"),
];

/// Checks `lister` over [`LISTER_FILES`] written under `root` (no trailing `/`): glob semantics
/// (`*` and `?` within a segment, `[...]`, `**` across segments), DuckDB's sorted order, sizes,
/// literal paths, no match, a directory named as a file, and reading a small text object.
pub async fn lister(lister: &dyn Lister, root: &str) {
    let listed = |pattern: &str| {
        let pattern = format!("{root}/{pattern}");
        async move { (lister.list(&pattern).await, pattern) }
    };
    let relative =
        |(listed, pattern): (crate::Result<Vec<crate::partitions::FileEntry>>, String)| -> Vec<(String, u64)> {
            listed
                .unwrap_or_else(|e| panic!("listing {pattern}: {e}"))
                .into_iter()
                .map(|f| {
                    let relative = f
                        .path
                        .strip_prefix(&format!("{root}/"))
                        .unwrap_or_else(|| panic!("listing {pattern}: {} is not under the root {root}", f.path));
                    (relative.to_string(), f.size)
                })
                .collect()
        };
    let expect = |paths: &[&str]| -> Vec<(String, u64)> {
        paths
            .iter()
            .map(|p| {
                let (_, contents) = LISTER_FILES.iter().find(|(path, _)| path == p).expect("a suite file");
                (p.to_string(), contents.len() as u64)
            })
            .collect()
    };
    assert_eq!(
        relative(listed("t/*/*.parquet").await),
        expect(&[
            "t/d=1/a.parquet",
            "t/d=1/b.parquet",
            "t/d=2/a.parquet",
            "t/d=2/c%41.parquet",
            "t/with space/é.parquet"
        ]),
        "`*` matches within one segment, in sorted order, with sizes"
    );
    assert_eq!(
        relative(listed("t/**/*.parquet").await),
        expect(&[
            "t/d=1/a.parquet",
            "t/d=1/b.parquet",
            "t/d=2/a.parquet",
            "t/d=2/c%41.parquet",
            "t/d=2/sub/deep.parquet",
            "t/with space/é.parquet"
        ]),
        "`**` crosses segments"
    );
    assert_eq!(
        relative(listed("t/d=?/a.parquet").await),
        expect(&["t/d=1/a.parquet", "t/d=2/a.parquet"]),
        "`?` is one character"
    );
    assert_eq!(
        relative(listed("t/d=[12]/*.parquet").await),
        expect(&["t/d=1/a.parquet", "t/d=1/b.parquet", "t/d=2/a.parquet", "t/d=2/c%41.parquet"]),
        "`[...]` is a class"
    );
    assert_eq!(relative(listed("t/*/*.csv").await), expect(&["t/d=10/x.csv"]), "the extension is matched");
    assert_eq!(
        relative(listed("t/d=1/b.parquet").await),
        expect(&["t/d=1/b.parquet"]),
        "a literal path is the one file"
    );
    assert_eq!(
        relative(listed("t/with space/é.parquet").await),
        expect(&["t/with space/é.parquet"]),
        "names are not decoded"
    );
    assert_eq!(relative(listed("t/d=2/c%41.parquet").await), expect(&["t/d=2/c%41.parquet"]), "nor percent signs");
    assert!(relative(listed("t/d=2/cA.parquet").await).is_empty(), "a decoded name is another name");
    assert!(relative(listed("t/nothing/*.parquet").await).is_empty(), "no match is an empty list");
    assert!(relative(listed("t/d=1/missing.parquet").await).is_empty(), "a missing literal path is an empty list");
    let directory = format!("{root}/t/d=1");
    assert!(lister.list(&directory).await.is_err(), "{directory} is a directory, not a file: an error");
    let manifest = format!("{root}/manifest.json");
    assert_eq!(lister.read_to_string(&manifest).await.unwrap_or_else(|e| panic!("{e}")), "{\"files\": 2}");
    assert!(lister.read_to_string(&format!("{root}/absent.json")).await.is_err(), "reading a missing object fails");
}

fn task(query_id: &str, task_id: usize, sql: &str, files: &[&str]) -> Task {
    Task {
        version: WIRE_VERSION,
        query_id: query_id.into(),
        task_id,
        label: format!("conformance {task_id}"),
        sql: sql.into(),
        files: files.iter().map(|f| f.to_string()).collect(),
        time_zone: None,
        exchange: None,
        convert: None,
    }
}

/// The one failure of a one-task fan-out, as the invoker reports it.
async fn failure(invoker: &dyn Invoker, task: Task) -> InvokeError {
    let sql = task.sql.clone();
    match invoke_all(invoker, vec![task], Arc::new(QueryRun::default()), None, &|_| {}).await {
        Err(crate::Error::Task { source, .. }) => source,
        Err(other) => panic!("{sql}: failed outside the task: {other}"),
        Ok(_) => panic!("{sql}: answered"),
    }
}

/// Checks `invoker` against the contract of every backend: answers carry the task's identity
/// and come back in task order through [`invoke_all`], an inline or spilled Arrow partial decodes
/// to the task's rows, and failures are classified as data (bad SQL, a missing file, a failed
/// query; none retryable). `file` is a Parquet file the invoker's workers can read; `missing`
/// one in the same store that does not exist.
pub async fn invoker(invoker: &dyn Invoker, file: &str, missing: &str) {
    let query_id = crate::new_query_id();
    let tasks = (0..5).map(|i| task(&query_id, i, &format!("SELECT {i}::BIGINT AS x, 'é' AS s"), &[])).collect();
    let partials = invoke_all(invoker, tasks, Arc::new(QueryRun::default()), None, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("five constant tasks: {e}"));
    assert_eq!(partials.len(), 5);
    for (i, partial) in partials.iter().enumerate() {
        assert_eq!((partial.version, partial.query_id.as_str(), partial.task_id), (WIRE_VERSION, query_id.as_str(), i));
        let PartialData::Inline { arrow_ipc } = &partial.data else {
            panic!("task {i}: the invoker must read a spilled partial itself: {:?}", partial.data)
        };
        let (_, batches) = ipc::decode(arrow_ipc).unwrap_or_else(|e| panic!("task {i}: {e}"));
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!((rows as u64, partial.stats.rows), (1, 1), "task {i}: one row");
        let x = batches[0].column(0).as_any().downcast_ref::<arrow::array::Int64Array>().expect("x is BIGINT");
        assert_eq!(x.value(0), i as i64, "task {i}'s own answer");
    }

    let count = task(&query_id, 0, &format!("SELECT count(*) AS n FROM read_parquet('{file}')"), &[file]);
    let partials = invoke_all(invoker, vec![count], Arc::new(QueryRun::default()), None, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("counting {file}: {e}"));
    assert_eq!(partials[0].stats.rows, 1, "a count is one row");

    let classified = [
        ("SELEC 1".to_string(), vec![], ErrorType::BadSql),
        (format!("SELECT * FROM read_parquet('{missing}')"), vec![missing], ErrorType::MissingFile),
        ("SELECT CAST('not a number' AS INTEGER) AS n".to_string(), vec![], ErrorType::QueryError),
    ];
    for (sql, files, expected) in classified {
        let error = failure(invoker, task(&query_id, 0, &sql, &files)).await;
        let InvokeError::Task(failure) = &error else { panic!("{sql}: not the worker's failure: {error}") };
        assert_eq!(failure.error_type, expected, "{sql}: {}", failure.message);
        assert!(!error.is_retryable(), "{sql}: the same task fails the same way");
        assert_eq!(
            (failure.query_id.as_str(), failure.task_id),
            (query_id.as_str(), 0),
            "{sql}: the failure's identity"
        );
    }
    // Releasing a finished query is always allowed, and so is releasing it twice.
    invoker.finish(&query_id).await;
    invoker.finish(&query_id).await;
}

/// Checks `invoker`, whose workers write a stage's rows under the exchange root `root` (ending
/// in `/`), against the exchange's contract: a task with an exchange writes one Parquet file per
/// bucket that has rows and answers with their manifest, a later task reads a bucket's file back,
/// and an exchange outside the task's query or with no buckets is refused as forbidden. Returns
/// the query id whose files it left under `root`, for the caller to delete.
pub async fn exchange(invoker: &dyn Invoker, root: &str) -> String {
    let query_id = crate::new_query_id();
    let prefix = format!("{root}{query_id}/s1/");
    let mut write = task(
        &query_id,
        0,
        "SELECT k, CAST(k % 3 AS INTEGER) AS __quack_bucket FROM (SELECT unnest([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) AS k)",
        &[],
    );
    write.exchange = Some(quack_lambda::ExchangeWrite { prefix: prefix.clone(), buckets: 4 });
    let partials = invoke_all(invoker, vec![write.clone()], Arc::new(QueryRun::default()), None, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("a task writing to the exchange: {e}"));
    let PartialData::Inline { arrow_ipc } = &partials[0].data else { panic!("a manifest is answered inline") };
    let (_, batches) = ipc::decode(arrow_ipc).unwrap_or_else(|e| panic!("the manifest: {e}"));
    let files: Vec<_> = batches
        .iter()
        .flat_map(|b| quack_lambda::exchange::read_manifest(b).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let mut buckets: Vec<(u32, u64)> = files.iter().map(|f| (f.bucket, f.rows)).collect();
    buckets.sort();
    assert_eq!(buckets, [(0, 4), (1, 3), (2, 3)], "one file per bucket with rows, none for the empty bucket 3");
    assert!(files.iter().all(|f| f.path.starts_with(&prefix) && f.path.ends_with(".parquet")), "{files:?}");
    assert_eq!(partials[0].stats.rows, 10, "the task's rows are counted");

    let one = files.iter().find(|f| f.bucket == 1).expect("bucket 1");
    let sql = format!("SELECT CAST(list(k ORDER BY k) AS VARCHAR) AS ks FROM read_parquet('{}')", one.path);
    let partials =
        invoke_all(invoker, vec![task(&query_id, 1, &sql, &[&one.path])], Arc::new(QueryRun::default()), None, &|_| {})
            .await
            .unwrap_or_else(|e| panic!("reading bucket 1 back: {e}"));
    let PartialData::Inline { arrow_ipc } = &partials[0].data else { panic!("inline") };
    let (_, batches) = ipc::decode(arrow_ipc).unwrap_or_else(|e| panic!("{e}"));
    let ks = batches[0].column(0).as_any().downcast_ref::<arrow::array::StringArray>().expect("VARCHAR");
    assert_eq!(ks.value(0), "[1, 4, 7]", "bucket 1 holds its rows, without the bucket column");

    let mut forged = write.clone();
    forged.exchange = Some(quack_lambda::ExchangeWrite { prefix: format!("{root}another-query/s1/"), buckets: 4 });
    let mut no_buckets = write.clone();
    no_buckets.exchange = Some(quack_lambda::ExchangeWrite { prefix, buckets: 0 });
    for forged in [forged, no_buckets] {
        let error = failure(invoker, forged).await;
        let InvokeError::Task(failure) = &error else { panic!("not the worker's failure: {error}") };
        assert_eq!(failure.error_type, ErrorType::Forbidden, "{}", failure.message);
    }
    query_id
}
