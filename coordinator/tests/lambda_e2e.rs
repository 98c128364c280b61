//! End-to-end tests of the serverless path against real protocol peers on 127.0.0.1: the S3
//! server and the Lambda emulator of `tests/e2e/stack.sh` (started here when not running), with
//! real `bootstrap` workers behind the emulator.
//!
//! Covered here: forged events refused by the sandbox, the spill round trip, S3 listing, and
//! queries through the Lambda backend equal to the in-process answer. The whole differential
//! corpus, fault injection and throttling run through the CLI in `tests/e2e/run.sh`.

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use aws_sdk_lambda::primitives::Blob;
use quack::partitions::Lister;
use quack::{Backend, Config, Quack};
use quack_lambda::{ErrorType, PartialData, TaskResponse, WIRE_VERSION};

/// The running stack's settings (the `export` lines of `stack.sh up`).
struct Stack {
    vars: HashMap<String, String>,
}

impl Stack {
    fn get() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/stack.sh");
            let output = std::process::Command::new("bash").arg(script).arg("up").output().expect("running stack.sh");
            assert!(output.status.success(), "stack.sh up failed:\n{}", String::from_utf8_lossy(&output.stderr));
            let vars = String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Stack { vars }
        })
    }

    fn var(&self, name: &str) -> &str {
        self.vars.get(name).unwrap_or_else(|| panic!("stack.sh printed no {name}"))
    }

    fn credentials(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.var("AWS_ACCESS_KEY_ID"),
            self.var("AWS_SECRET_ACCESS_KEY"),
            None,
            None,
            "stack",
        )
    }

    fn lambda(&self) -> aws_sdk_lambda::Client {
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .endpoint_url(self.var("AWS_ENDPOINT_URL_LAMBDA"))
            .credentials_provider(self.credentials())
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_lambda::Client::from_conf(config)
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(self.var("AWS_ENDPOINT_URL_S3"))
            .credentials_provider(self.credentials())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// AWS access to this stack as the coordinator has it: its S3 endpoint, and the SDK's chain
    /// reading the stack's credentials from the environment.
    fn aws(&self) -> std::sync::Arc<quack::aws::Aws> {
        for (name, value) in &self.vars {
            std::env::set_var(name, value);
        }
        std::sync::Arc::new(quack::aws::Aws::new(quack::aws::AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: None,
            s3_endpoint_env: Some(self.var("AWS_ENDPOINT_URL_S3").into()),
        }))
    }

    /// A Quack on the Lambda backend of this stack.
    fn quack(&self, function: &str) -> Quack {
        self.quack_with(function, |_| {})
    }

    /// As [`Stack::quack`], with `edit` applied to its configuration.
    fn quack_with(&self, function: &str, edit: impl FnOnce(&mut Config)) -> Quack {
        let mut config = Config::with_concurrency(4);
        config.backend = Backend::Lambda { function: function.into() };
        config.aws = quack::aws::AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: None,
            s3_endpoint_env: Some(self.var("AWS_ENDPOINT_URL_S3").into()),
        };
        config.httpfs_extension = Some(self.var("QUACK_HTTPFS_EXTENSION").into());
        config.icu_extension = Some(self.var("QUACK_ICU_EXTENSION").into());
        config.spill_prefix = Some(SPILL_PREFIX.into());
        // The emulator does not answer GetFunctionConfiguration: give the attempt timeout.
        config.task_timeout = Some(std::time::Duration::from_secs(600));
        edit(&mut config);
        // The SDK's chain reads the stack's endpoints and credentials from the environment.
        for (name, value) in &self.vars {
            std::env::set_var(name, value);
        }
        Quack::new(config).unwrap()
    }

    /// Sends `event` as is and returns the worker's answer.
    async fn invoke_raw(&self, function: &str, event: serde_json::Value) -> TaskResponse {
        serde_json::from_slice(&self.invoke_bytes(function, event).await).unwrap()
    }

    /// Sends `event` as is and returns the worker's answer as bytes.
    async fn invoke_bytes(&self, function: &str, event: serde_json::Value) -> Vec<u8> {
        let output = self
            .lambda()
            .invoke()
            .function_name(function)
            .payload(Blob::new(serde_json::to_vec(&event).unwrap()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("invoke failed: {}", aws_sdk_lambda::error::DisplayErrorContext(e)));
        assert!(output.function_error().is_none(), "function error: {:?}", output.payload());
        output.payload().unwrap().as_ref().to_vec()
    }
}

/// The workers' spill prefix (`stack.sh`).
const SPILL_PREFIX: &str = "s3://spill/partials/";

/// Uploads the shared test lake under `s3://lake/<prefix>/` through the S3 API; once.
async fn upload_lake(stack: &Stack) -> String {
    static UPLOADED: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    UPLOADED
        .get_or_init(|| async {
            let prefix = format!("e2e-{:x}", std::process::id());
            let root = common::lake().root.clone();
            let s3 = stack.s3();
            for entry in walk(&root) {
                let key = format!("{prefix}/{}", entry.strip_prefix(&root).unwrap().display());
                let body = aws_sdk_s3::primitives::ByteStream::from_path(&entry).await.unwrap();
                s3.put_object().bucket("lake").key(&key).body(body).send().await.unwrap();
            }
            format!("s3://lake/{prefix}")
        })
        .await
        .clone()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn task_event(sql: &str, files: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "version": WIRE_VERSION, "query_id": "q-forged", "task_id": 0, "label": "forged",
        "sql": sql, "files": files,
    })
}

/// Every way the secret could be written into an answer: as is, in other cases, reversed, as
/// hex, URL-encoded, and base64 at each of the three alignments.
fn encodings(secret: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let mut forms: Vec<String> = vec![
        secret.to_string(),
        secret.to_uppercase(),
        secret.to_lowercase(),
        secret.chars().rev().collect(),
        secret.bytes().map(|b| format!("{b:02x}")).collect(),
        secret.bytes().map(|b| format!("{b:02X}")).collect(),
        secret.bytes().map(|b| format!("%{b:02X}")).collect(),
    ];
    for engine in [base64::engine::general_purpose::STANDARD, base64::engine::general_purpose::URL_SAFE] {
        for skip in 0..3 {
            // The part of the encoding that does not depend on the bytes around the secret.
            let encoded = engine.encode(format!("{}{secret}", "x".repeat(skip)));
            let stable = &encoded[(skip * 4).div_ceil(3) + 1..encoded.len().saturating_sub(4)];
            if stable.len() >= 8 {
                forms.push(stable.to_string());
            }
        }
    }
    forms.into_iter().map(String::into_bytes).collect()
}

/// The answer's bytes, with any Arrow payload decoded, so that a secret inside rows is seen.
fn answer_bytes(raw: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let mut all = raw.to_vec();
    if let Ok(TaskResponse::Ok(partial)) = serde_json::from_slice::<TaskResponse>(raw) {
        if let PartialData::Inline { arrow_ipc } = &partial.data {
            all.extend_from_slice(arrow_ipc);
            let (_, batches) = quack_lambda::ipc::decode(arrow_ipc).unwrap();
            for batch in batches {
                for column in batch.columns() {
                    for row in 0..batch.num_rows() {
                        let cell = arrow::util::display::array_value_to_string(column, row).unwrap_or_default();
                        all.extend_from_slice(cell.as_bytes());
                        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(cell.trim()) {
                            all.extend_from_slice(&decoded);
                        }
                    }
                }
            }
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Forged events over every class of attack on the worker: each is refused as `forbidden`
/// (not retryable), no answer carries the secret key in any encoding, and a listener on a free
/// loopback port, named as endpoint or host in the events, receives no connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_events_are_refused() {
    let stack = Stack::get();
    let lake = upload_lake(stack).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let endpoint = format!("s3_endpoint=127.0.0.1:{port}&s3_url_style=path&s3_use_ssl=false");
    let file = format!("{lake}/zones.parquet");
    let secret = stack.var("AWS_SECRET_ACCESS_KEY").to_string();
    let forged: Vec<(String, Vec<String>, &str)> = vec![
        // Settings, secrets, the catalog, other queries.
        ("SELECT current_setting('s3_secret_access_key') AS k".into(), vec![], "settings"),
        ("SELECT * FROM duckdb_settings()".into(), vec![], "settings"),
        (
            "SELECT (SELECT value FROM duckdb_settings() WHERE name = 's3_secret_access_key') AS k".into(),
            vec![],
            "settings",
        ),
        ("WITH s AS (SELECT current_setting('s3_access_key_id') AS k) SELECT * FROM s".into(), vec![], "settings"),
        ("SELECT * FROM query('SELECT current_setting(''s3_secret_access_key'')')".into(), vec![], "queries"),
        ("SELECT * FROM duckdb_secrets()".into(), vec![], "secrets"),
        ("SELECT * FROM which_secret('s3://lake/x', 's3')".into(), vec![], "secrets"),
        ("SELECT * FROM duckdb_tables".into(), vec![], "catalog"),
        ("SELECT getvariable('x') AS v".into(), vec![], "settings"),
        // URL parameters pointing httpfs at another host, in SQL and in the file list.
        (format!("SELECT * FROM read_text('{lake}/k?{endpoint}')"), vec![], "url parameters"),
        (format!("SELECT * FROM glob('{lake}/*?{endpoint}')"), vec![], "url parameters"),
        (format!("SELECT count(*) FROM read_parquet('{file}?{endpoint}')"), vec![], "url parameters"),
        (format!("SELECT count(*) FROM read_parquet('{file}')"), vec![format!("{file}?{endpoint}")], "url parameters"),
        (
            format!("SELECT count(*) FROM read_parquet('{lake}/' || 'zones.parquet?{endpoint}')"),
            vec![],
            "url parameters",
        ),
        // Other hosts, schemes and buckets.
        (format!("SELECT count(*) FROM read_parquet('http://127.0.0.1:{port}/x.parquet')"), vec![], "schemes"),
        (
            "SELECT * FROM read_text('http://169.254.169.254/latest/meta-data/iam/security-credentials/')".into(),
            vec![],
            "metadata",
        ),
        ("SELECT count(*) FROM read_parquet('gcs://bucket/x.parquet')".into(), vec![], "schemes"),
        ("SELECT count(*) FROM read_parquet('hf://datasets/x/y.parquet')".into(), vec![], "schemes"),
        ("SELECT count(*) FROM read_parquet('file:///etc/passwd')".into(), vec![], "schemes"),
        ("SELECT count(*) FROM read_parquet('s3://other-bucket/x.parquet')".into(), vec![], "buckets"),
        ("SELECT count(*) FROM read_parquet('s3://spill/partials/*')".into(), vec![], "buckets"),
        (format!("SELECT count(*) FROM read_parquet('{lake}/../../spill/x.parquet')"), vec![], "buckets"),
        ("SELECT 1".into(), vec!["s3://other-bucket/x.parquet".into()], "buckets"),
        // Local files.
        ("SELECT * FROM read_text('/etc/passwd')".into(), vec![], "local files"),
        ("SELECT * FROM read_text('/proc/self/environ')".into(), vec![], "local files"),
        ("SELECT * FROM read_csv('/var/task/bootstrap')".into(), vec![], "local files"),
        ("SELECT 1".into(), vec!["/etc/passwd".into()], "local files"),
        // Statements other than one SELECT.
        ("COPY (SELECT 1) TO 's3://lake/evil.csv'".into(), vec![], "statements"),
        ("ATTACH 's3://lake/evil.db'".into(), vec![], "statements"),
        ("INSTALL httpfs".into(), vec![], "statements"),
        ("LOAD '/tmp/evil.duckdb_extension'".into(), vec![], "statements"),
        ("SET enable_external_access = true".into(), vec![], "statements"),
        ("RESET s3_endpoint".into(), vec![], "statements"),
        ("PRAGMA version".into(), vec![], "statements"),
        ("SELECT 1; COPY (SELECT 1) TO '/tmp/x.csv'".into(), vec![], "statements"),
        // Long-running and very large.
        ("SELECT count(*) FROM range(1000000000000)".into(), vec![], "long-running"),
        (
            "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t".into(),
            vec![],
            "long-running",
        ),
        ("SELECT pg_sleep(3600)".into(), vec![], "long-running"),
        (format!("SELECT '{}' AS big", "x".repeat(2 << 20)), vec![], "large"),
    ];
    assert!(forged.len() >= 30);
    let mut answers = Vec::new();
    for (sql, files, class) in &forged {
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let raw = stack.invoke_bytes("quack-worker", task_event(sql, &files)).await;
        let shown: String = sql.chars().take(120).collect();
        match serde_json::from_slice::<TaskResponse>(&raw).unwrap() {
            TaskResponse::Error(failure) => {
                assert_eq!(failure.error_type, ErrorType::Forbidden, "{class}: {shown}: {}", failure.message);
                assert!(!failure.retryable, "{shown}");
            }
            TaskResponse::Ok(partial) => panic!("{class}: {shown} was run: {:?}", partial.stats),
        }
        answers.push(raw);
    }
    // Odd query ids and labels are refused before anything runs or is logged.
    for (query_id, label) in [("../../x", "l"), (&*"q".repeat(65), "l"), ("q\nforged", "l"), ("q", "line\nforged")] {
        let mut event = task_event(&format!("SELECT count(*) FROM read_parquet('{file}')"), &[&file]);
        event["query_id"] = query_id.into();
        event["label"] = label.into();
        let raw = stack.invoke_bytes("quack-worker", event).await;
        let response: TaskResponse = serde_json::from_slice(&raw).unwrap();
        assert!(
            matches!(response, TaskResponse::Error(ref f) if f.error_type == ErrorType::Forbidden),
            "{query_id:?}/{label:?}: {response:?}"
        );
        answers.push(raw);
    }
    // Forged time zones: malformed ones are refused before anything runs, and a well-formed
    // name DuckDB does not know is a bad event; the worker keeps answering in its old zone.
    let zoned = |zone: serde_json::Value| {
        let mut event = task_event(&format!("SELECT count(*) AS n FROM read_parquet('{file}')"), &[&file]);
        event["time_zone"] = zone;
        event
    };
    let long_zone = "A/".repeat(40);
    for (zone, want) in [
        ("../../etc/passwd", ErrorType::Forbidden),
        ("UTC'; SET enable_external_access = true; --", ErrorType::Forbidden),
        (long_zone.as_str(), ErrorType::Forbidden),
        ("Mars/Olympus_Mons", ErrorType::BadEvent),
    ] {
        let raw = stack.invoke_bytes("quack-worker", zoned(zone.into())).await;
        let response: TaskResponse = serde_json::from_slice(&raw).unwrap();
        assert!(matches!(response, TaskResponse::Error(ref f) if f.error_type == want), "{zone:?}: {response:?}");
        answers.push(raw);
    }
    // Forged conversion tasks: inputs outside the prefixes, an exchange elsewhere, SQL smuggled
    // in beside the conversion, several buckets. Refused before anything is read or written.
    let exchange = stack.var("QUACK_EXCHANGE").to_string();
    let converting = |files: &[&str], prefix: &str, sql: &str, buckets: u32| {
        let mut event = task_event(sql, files);
        event["convert"] = "orc".into();
        event["exchange"] = serde_json::json!({"prefix": prefix, "buckets": buckets});
        event
    };
    let own = format!("{exchange}q-forged/orc/");
    for (event, want) in [
        (converting(&["s3://other-bucket/x.orc"], &own, "", 1), ErrorType::Forbidden),
        (converting(&["/etc/passwd"], &own, "", 1), ErrorType::Forbidden),
        (converting(&[&file], "s3://lake/stolen/q-forged/orc/", "", 1), ErrorType::Forbidden),
        (converting(&[&file], &format!("{exchange}other-query/orc/"), "", 1), ErrorType::Forbidden),
        (converting(&[&file], &own, "SELECT current_setting('s3_secret_access_key') AS k", 1), ErrorType::BadEvent),
        (converting(&[&file], &own, "", 3), ErrorType::BadEvent),
        // A Parquet file is not ORC: named, not run.
        (converting(&[&file], &own, "", 1), ErrorType::CorruptFile),
    ] {
        let raw = stack.invoke_bytes("quack-worker", event.clone()).await;
        let response: TaskResponse = serde_json::from_slice(&raw).unwrap();
        assert!(matches!(response, TaskResponse::Error(ref f) if f.error_type == want), "{event}: {response:?}");
        answers.push(raw);
    }
    let wrong_type = stack.invoke_raw("quack-worker", zoned(serde_json::json!(5))).await;
    assert!(matches!(wrong_type, TaskResponse::Error(ref f) if f.error_type == ErrorType::BadEvent), "{wrong_type:?}");
    let not_a_task = stack.invoke_raw("quack-worker", serde_json::json!({"hello": "world"})).await;
    assert!(matches!(not_a_task, TaskResponse::Error(ref f) if f.error_type == ErrorType::BadEvent), "{not_a_task:?}");
    // The allowed prefix still works for an honest task.
    let honest = stack
        .invoke_bytes(
            "quack-worker",
            task_event(&format!("SELECT count(*) AS n FROM read_parquet('{file}')"), &[&file]),
        )
        .await;
    assert!(matches!(serde_json::from_slice(&honest).unwrap(), TaskResponse::Ok(_)));
    answers.push(honest);
    for raw in &answers {
        let all = answer_bytes(raw);
        for form in encodings(&secret) {
            assert!(!contains(&all, &form), "an answer carries the secret ({})", String::from_utf8_lossy(&form));
        }
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the listener on port {port} was contacted: {other:?}"),
    }
}

/// Loading httpfs leaves no credential in DuckDB's settings: the secret holds them, and reads
/// through it still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn httpfs_keeps_no_credentials_in_settings() {
    let stack = Stack::get();
    let lake = upload_lake(stack).await;
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3", "AWS_REGION"] {
        std::env::set_var(name, stack.var(name));
    }
    let conn = duckdb::Connection::open_in_memory().unwrap();
    quack_lambda::s3::load_httpfs(&conn, Some(std::path::Path::new(stack.var("QUACK_HTTPFS_EXTENSION")))).unwrap();
    for setting in quack_lambda::s3::CREDENTIAL_SETTINGS {
        let value: String =
            conn.query_row(&format!("SELECT current_setting('{setting}')"), [], |row| row.get(0)).unwrap();
        assert_eq!(value, "", "{setting}");
    }
    let access = quack_lambda::s3::S3Access::from_vars(|name| std::env::var(name).ok());
    conn.execute_batch(&access.secret_sql()).unwrap();
    let n: i64 = conn
        .query_row(&format!("SELECT count(*) FROM read_parquet('{lake}/zones.parquet')"), [], |row| row.get(0))
        .unwrap();
    assert!(n > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_partials_spill_to_s3_and_the_coordinator_deletes_them() {
    let stack = Stack::get();
    let lake = upload_lake(stack).await;
    let file = format!("{lake}/zones.parquet");
    let response = stack
        .invoke_raw("quack-worker-spill", task_event(&format!("SELECT * FROM read_parquet('{file}')"), &[&file]))
        .await;
    let TaskResponse::Ok(partial) = response else { panic!("{response:?}") };
    let PartialData::Spilled { url } = &partial.data else { panic!("not spilled: {:?}", partial.stats) };
    assert!(url.starts_with("s3://spill/partials/q-forged/"), "{url}");
    let s3 = stack.s3();
    let refused = quack_lambda::spill::take(&s3, url, Some(10)).await.unwrap_err();
    assert_eq!(refused.too_large, Some(partial.stats.result_bytes), "{refused}");
    let bytes = quack_lambda::spill::take(&s3, url, None).await.unwrap();
    let (_, batches) = quack_lambda::ipc::decode(&bytes).unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows() as u64).sum::<u64>(), partial.stats.rows);
    assert!(quack_lambda::spill::take(&s3, url, None).await.is_err(), "the spilled object was not deleted");

    // Through the coordinator: every partial spills, the answer is exact, nothing is left behind.
    let sql = format!(
        "SELECT vendor_id, count(*) AS n, sum(fare_amount) AS fare FROM read_parquet('{lake}/trips/*/*.parquet', \
         hive_partitioning = true) GROUP BY ALL ORDER BY vendor_id"
    );
    let quack = stack.quack("quack-worker-spill");
    let (got, report) = lambda_csv(&quack, &sql).await;
    let local_sql = sql.replace(&lake, &common::lake().path());
    common::assert_rows("spilled", &sql, got, common::truth(&local_sql), true);
    assert!(report.tasks > 1);
    let left =
        s3.list_objects_v2().bucket("spill").prefix(format!("partials/{}/", report.query_id)).send().await.unwrap();
    assert_eq!(left.key_count().unwrap_or(0), 0, "spilled partials left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_s3_globs_like_local_ones() {
    let stack = Stack::get();
    let lake = upload_lake(stack).await;
    let lister = quack::s3::S3Lister::new(stack.aws());
    let remote = lister.list(&format!("{lake}/trips/*/*.parquet")).await.unwrap();
    let local =
        quack::partitions::LocalLister.list(&format!("{}/trips/*/*.parquet", common::lake().path())).await.unwrap();
    assert_eq!(remote.len(), local.len());
    for (r, l) in remote.iter().zip(&local) {
        assert_eq!(r.path.strip_prefix(&lake), l.path.strip_prefix(&common::lake().path()));
        assert_eq!(r.size, l.size);
    }
    assert!(lister.list(&format!("{lake}/nothing/*.parquet")).await.unwrap().is_empty());
    assert!(lister.list(&format!("{lake}/trips")).await.is_err(), "a prefix is not a file");
}

/// The S3 lister keeps the contract of every lister: the shared suite, over objects written
/// through the S3 API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_lister_passes_the_conformance_suite() {
    let stack = Stack::get();
    let s3 = stack.s3();
    let prefix = format!("conformance-{}", std::process::id());
    for (path, contents) in quack::conformance::LISTER_FILES {
        s3.put_object()
            .bucket("lake")
            .key(format!("{prefix}/{path}"))
            .body(contents.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", aws_sdk_s3::error::DisplayErrorContext(e)));
    }
    quack::conformance::lister(&quack::s3::S3Lister::new(stack.aws()), &format!("s3://lake/{prefix}")).await;
}

/// The Lambda invoker keeps the contract of every invoker (the in-process one passes the same
/// suite), through the emulator and real workers, with and without spilling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_invoker_passes_the_conformance_suite() {
    let stack = Stack::get();
    let lake = upload_lake(stack).await;
    for function in ["quack-worker", "quack-worker-spill"] {
        let invoker = quack::invoke::lambda::LambdaInvoker::new(stack.aws(), function, Some(SPILL_PREFIX.into()))
            .with_attempt_timeout(Some(std::time::Duration::from_secs(600)));
        quack::conformance::invoker(&invoker, &format!("{lake}/zones.parquet"), &format!("{lake}/missing.parquet"))
            .await;
        let query_id = quack::conformance::exchange(&invoker, EXCHANGE_ROOT).await;
        quack_lambda::spill::delete_query(&stack.s3(), EXCHANGE_ROOT, &query_id).await.unwrap();
    }
}

/// The workers' QUACK_EXCHANGE_PREFIX in tests/e2e/stack.sh.
const EXCHANGE_ROOT: &str = "s3://exchange/stages/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_answers_equal_duckdb_answers() {
    let stack = Stack::get();
    let lake = upload_lake(stack).await;
    let quack = stack.quack("quack-worker");
    let trips = |root: &str| format!("read_parquet('{root}/trips/*/*.parquet', hive_partitioning = true)");
    let queries = [
        "SELECT date, count(*) AS trips, avg(fare_amount) AS avg_fare FROM {trips} GROUP BY date ORDER BY date",
        "SELECT median(trip_distance) AS m, stddev_samp(tip_amount) AS s FROM {trips}",
        "SELECT count(*) FROM {trips} WHERE date BETWEEN DATE '2024-03-02' AND DATE '2024-03-04'",
        "SELECT z.borough, count(*) AS n FROM {trips} t JOIN read_parquet('{root}/zones.parquet') z \
         ON t.pickup_location_id = z.location_id GROUP BY ALL ORDER BY n DESC, z.borough LIMIT 5",
    ];
    for template in queries {
        let remote_sql = template.replace("{trips}", &trips(&lake)).replace("{root}", &lake);
        let local_root = common::lake().path();
        let local_sql = template.replace("{trips}", &trips(&local_root)).replace("{root}", &local_root);
        let (got, report) = lambda_csv(&quack, &remote_sql).await;
        common::assert_rows(template, &remote_sql, got, common::truth(&local_sql), template.contains("ORDER BY"));
        assert!(report.cost_usd.is_some_and(|c| c > 0.0), "{report:?}");
        assert!(report.gb_seconds > 0.0 && report.requests >= report.tasks as u64, "{report:?}");
    }
    // A missing file is a clear, permanent error naming the file.
    let err = quack
        .query_batches(&format!(
            "SELECT count(*) FROM read_parquet('{lake}/nothing/*.parquet', hive_partitioning = true)"
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing"), "{err}");
}

/// Tasks run in the coordinator's time zone: a Lambda worker (in UTC) rebuilds its locked
/// DuckDB in the task's zone, so day boundaries, TIMESTAMPTZ text and `strftime` are the
/// session's, in two zones in turn (each a switch for the warm workers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_in_the_coordinators_time_zone() {
    let stack = Stack::get();
    let lake = upload_lake(stack).await;
    let trips = |root: &str| format!("read_parquet('{root}/trips/*/*.parquet', hive_partitioning = true)");
    let template = "SELECT date_trunc('day', pickup_at::TIMESTAMPTZ) AS day, count(*) AS n, \
                    min(pickup_at::TIMESTAMPTZ) AS first, max(strftime(pickup_at::TIMESTAMPTZ, '%H:%M %z')) AS latest \
                    FROM {trips} GROUP BY 1 ORDER BY 1";
    for zone in ["America/St_Johns", "Asia/Kathmandu", "America/St_Johns"] {
        let quack = stack.quack_with("quack-worker", |config| config.time_zone = Some(zone.into()));
        let remote_sql = template.replace("{trips}", &trips(&lake));
        let local_sql = template.replace("{trips}", &trips(&common::lake().path()));
        let (got, _) = lambda_csv(&quack, &remote_sql).await;
        let want = common::truth_in_zone(&local_sql, zone);
        assert!(want[1][0].ends_with(if zone == "Asia/Kathmandu" { "+05:45" } else { "-03:30" }), "{want:?}");
        common::assert_rows(zone, &remote_sql, got, want, true);
    }
}

/// The Lambda backend's answer as CSV rows (header first), and its report.
async fn lambda_csv(quack: &Quack, sql: &str) -> (Vec<Vec<String>>, quack::QueryReport) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("answer.csv");
    let report = quack
        .query_to(sql, quack::Format::Csv, &quack::Destination::File(path.clone()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    (common::read_csv(&path), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_function_fails_at_once_and_says_which() {
    let stack = Stack::get();
    let invoker = quack::invoke::lambda::LambdaInvoker::new(stack.aws(), "no-such-function", None)
        .with_attempt_timeout(Some(std::time::Duration::from_secs(30)));
    let task: quack_lambda::Task = serde_json::from_value(task_event("SELECT 1", &[])).unwrap();
    let run = std::sync::Arc::new(quack::invoke::QueryRun::default());
    let error = quack::invoke::Invoker::invoke(&invoker, &task, &run).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains("no-such-function"), "{error}");
}
