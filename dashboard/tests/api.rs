//! Every endpoint through axum's `oneshot`, on a small demo lake with the dashboard tables that
//! `dbt/run.sh` writes (made here with the same SQL as the dbt models), including bad inputs.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use quack::{Config, Quack};
use quack_dashboard::{router, AppState, ServerOptions};
use tower::ServiceExt;

fn lake() -> &'static str {
    static LAKE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    &LAKE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("lake");
            quack::demo::generate(&root, quack::demo::DemoSize { trips: 20_000, objects: 2_000 }).unwrap();
            let lake = root.display().to_string();
            std::fs::create_dir_all(format!("{lake}/dashboard/top_pickup_locations")).unwrap();
            let conn = duckdb::Connection::open_in_memory().unwrap();
            conn.execute_batch(&format!(
                "CREATE TABLE t AS SELECT * FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true);
                 COPY (SELECT row_number() OVER (ORDER BY count(*) DESC, pickup_location_id) AS rank, pickup_location_id,
                       count(*) AS trips FROM t GROUP BY pickup_location_id)
                   TO '{lake}/dashboard/top_pickup_locations/data.parquet' (FORMAT parquet);
                 COPY (SELECT date, pickup_location_id, count(*) AS trips, sum(fare_amount) AS fares, sum(tip_amount) AS tips
                       FROM t GROUP BY ALL) TO '{lake}/dashboard/daily_trips' (FORMAT parquet, PARTITION_BY (date));"
            ))
            .unwrap();
            (dir, lake)
        })
        .1
}

fn app() -> axum::Router {
    app_with(&ServerOptions::default())
}

fn app_with(options: &ServerOptions) -> axum::Router {
    router(Arc::new(AppState::open(Config::with_concurrency(2), lake(), None, options).unwrap()))
}

async fn get(uri: &str, accept: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get(uri);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    let response = app().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

async fn post_query(body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    post_query_to(app(), body).await
}

async fn post_query_to(app: axum::Router, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let request = Request::post("/api/query")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_page_and_the_chart_library() {
    let (status, body) = get("/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<canvas id=\"du-chart\">") && body.contains("/assets/chart.js"));
    let (status, body) = get("/assets/chart.js", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Chart.js v4"));
    // /du without JSON asked for is the page.
    let (status, body) = get("/du?prefix=backups/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("<!doctype html>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn du_answers_lakeviews_shape_and_matches_quack_du() {
    let (status, body) = get("/du?prefix=&delimiter=%2F", Some("application/json")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let du = json(&body);
    assert_eq!(du["prefix"], "");
    assert_eq!(du["delimiter"], "/");
    assert_eq!(du["date"], "2024-03-04-00-00");
    assert!(du["compare"].is_null());
    let quack = Quack::embedded(Config::with_concurrency(2)).unwrap();
    let options = quack::du::DuOptions { inventory: format!("{}/inventory", lake()), ..Default::default() };
    let expected = quack::du::du(&quack, &options).await.unwrap().to_json();
    assert_eq!(du["response"], expected["response"]);
    let (_, body) = get("/du?json&prefix=backups/&compare=2024-03-01-00-00", None).await;
    let compare = json(&body);
    assert_eq!(compare["compare"], "2024-03-01-00-00");
    for row in compare["response"].as_array().unwrap() {
        assert!(row["diff"].is_i64(), "{row}");
        assert_eq!(
            row["diff"].as_i64(),
            Some(row["size_left"].as_i64().unwrap() - row["size_right"].as_i64().unwrap())
        );
    }
    let (_, body) = get("/du?json&by=storage-class", None).await;
    assert!(json(&body)["response"][0]["storage_class"].is_string(), "{body}");
    let (_, body) = get("/du?json&by=age", None).await;
    assert!(json(&body)["response"][0]["age"].is_string(), "{body}");
    assert!(json(&body)["response"][0]["share"].is_f64(), "{body}");
    let (_, body) = get("/api/du/dates", None).await;
    assert_eq!(json(&body)["dates"][0], "2024-03-04-00-00");
    // The other views take the CLI's names and equal quack du's answers.
    let library = |options: quack::du::DuOptions| {
        let quack = Quack::embedded(Config::with_concurrency(2)).unwrap();
        async move {
            quack::du::du(&quack, &quack::du::DuOptions { inventory: format!("{}/inventory", lake()), ..options })
                .await
                .unwrap()
                .to_json()
        }
    };
    let (status, body) = get("/du?json&top=3&prefix=backups/", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let want = library(quack::du::DuOptions { top: Some(3), prefix: "backups/".into(), ..Default::default() }).await;
    assert_eq!(json(&body)["response"], want["response"]);
    assert_eq!(json(&body)["response"].as_array().unwrap().len(), 3);
    let (_, body) = get("/du?json&duplicates", None).await;
    assert_eq!(json(&body)["view"], "duplicates", "{body}");
    assert!(json(&body)["reclaimable"].is_i64(), "{body}");
    let (_, body) = get("/du?json&history=true&since=2024-03-02", None).await;
    let history = json(&body);
    assert_eq!(history["dates"], serde_json::json!(["2024-03-02-00-00", "2024-03-03-00-00", "2024-03-04-00-00"]));
    let want =
        library(quack::du::DuOptions { history: true, since: Some("2024-03-02".into()), ..Default::default() }).await;
    assert_eq!((&history["totals"], &history["growth"]), (&want["totals"], &want["growth"]));
    let (_, body) = get("/du?json&group=big%3Dmin-size%3D1MiB&group=bak%3Dprefix%3Dbackups%2F", None).await;
    let groups = json(&body);
    let names: std::collections::BTreeSet<&str> =
        groups["response"].as_array().unwrap().iter().map(|r| r["group"].as_str().unwrap()).collect();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["bak", "big"], "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn du_rejects_bad_inputs_with_400() {
    for uri in [
        "/du?json&date=2024-03-04'%20OR%201=1",
        "/du?json&date=2023-01-01-00-00",
        "/du?json&compare=yesterday",
        "/du?json&depth=0",
        "/du?json&depth=many",
        "/du?json&by=owner",
        "/du?json&by=replication-status",
        "/du?json&top=0",
        "/du?json&top=100001",
        "/du?json&duplicates=maybe",
        "/du?json&history&compare=2024-03-01-00-00",
        "/du?json&history&since=2099-01-01",
        "/du?json&group=nofilter",
        "/du?json&group=g%3Dcolour%3Dred",
        "/du?json&by=age&group=g%3D",
    ] {
        let (status, body) = get(uri, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(json(&body)["error"].is_string(), "{uri}: {body}");
    }
    // A prefix is a literal: quotes and LIKE wildcards match nothing, and break nothing.
    let (status, body) = get("/du?json&prefix=x'%20OR%20'1'='1%25", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["response"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_pickups_equal_quack_query_and_check_inputs() {
    let (status, body) = get("/api/trips/top?k=5", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let top = json(&body);
    assert_eq!(top["total_trips"], 20_000);
    let quack = Quack::embedded(Config::with_concurrency(2)).unwrap();
    let (batches, _) = quack
        .query_batches(&format!(
            "SELECT pickup_location_id, count(*) AS trips FROM read_parquet('{}/trips/*/*.parquet', hive_partitioning = true) \
             GROUP BY 1 ORDER BY trips DESC, pickup_location_id LIMIT 5",
            lake()
        ))
        .await
        .unwrap();
    let mut expected = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let cell = |c: usize| arrow::util::display::array_value_to_string(batch.column(c), row).unwrap();
            expected.push((cell(0), cell(1)));
        }
    }
    let got: Vec<(String, String)> = top["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["pickup_location_id"].to_string(), r["trips"].to_string()))
        .collect();
    assert_eq!(got, expected);
    // Each location with its zone and borough from zones.parquet, as DuckDB reads them there.
    let zones = duckdb::Connection::open_in_memory().unwrap();
    for row in top["rows"].as_array().unwrap() {
        let (zone, borough): (String, String) = zones
            .query_row(
                &format!("SELECT zone, borough FROM '{}/zones.parquet' WHERE location_id = ?", lake()),
                [row["pickup_location_id"].as_i64().unwrap()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((row["zone"].as_str(), row["borough"].as_str()), (Some(zone.as_str()), Some(borough.as_str())));
    }
    let (status, body) = get("/api/trips/top?k=3&from=2024-03-02&to=2024-03-03", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ranged = json(&body);
    assert_eq!(ranged["rows"].as_array().unwrap().len(), 3);
    assert!(ranged["total_trips"].as_i64().unwrap() < 20_000);
    for uri in
        ["/api/trips/top?k=0", "/api/trips/top?k=abc", "/api/trips/top?from=2024-99-01", "/api/trips/top?to=x'--"]
    {
        let (status, body) = get(uri, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_sql_and_explains_it() {
    let sql = format!(
        "SELECT date, count(*) AS trips FROM read_parquet('{}/trips/*/*.parquet', hive_partitioning = true) \
         GROUP BY date ORDER BY date",
        lake()
    );
    let (status, body) = post_query(serde_json::json!({ "sql": sql })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["columns"], serde_json::json!(["date", "trips"]));
    assert_eq!(body["rows"].as_array().unwrap().len(), 31);
    // In process, one DuckDB query over all files; split when configured to.
    let plan = body["plan"].as_str().unwrap();
    assert!(plan.contains("in process, one DuckDB query over all files with all cores is cheapest"), "{plan}");
    assert_eq!(body["figures"]["tasks"].as_u64(), Some(1), "{body}");
    let mut config = Config::with_concurrency(2);
    config.split = quack::config::SplitPolicy::Always;
    config.target_task_bytes = Some(1);
    let split = router(Arc::new(AppState::open(config, lake(), None, &ServerOptions::default()).unwrap()));
    let (status, body) = post_query_to(split, serde_json::json!({ "sql": sql })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["plan"].as_str().unwrap().contains("partial aggregate"), "{body}");
    assert!(body["figures"]["tasks"].as_u64().unwrap() > 1, "{body}");
    assert_eq!(body["rows"].as_array().unwrap().len(), 31);
    let (status, body) = post_query(serde_json::json!({ "sql": "SELEC 1" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("line 1, column 1"), "{body}");
    let (status, _) = post_query(serde_json::json!({ "sql": "  " })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, body) = get("/api/progress", None).await;
    assert!(json(&body)["running"].is_array());
    let (_, body) = get("/api/lake", None).await;
    assert_eq!(json(&body)["lake"], lake());
    assert_eq!(json(&body)["inventory"], format!("{}/inventory", lake()));
}

/// The console runs in the workers' sandbox: nothing outside the lake and inventory, no
/// settings, secrets, catalog or other queries; each refused with a 403 that says why and
/// leaks nothing of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_only_the_lake() {
    let lake = lake();
    let forged = [
        "SELECT * FROM read_text('/etc/passwd')".to_string(),
        "SELECT * FROM read_csv('/etc/passwd', delim = ':', header = false)".to_string(),
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT * FROM glob('/etc/*')".to_string(),
        "SELECT * FROM read_parquet('/proc/self/environ')".to_string(),
        format!("SELECT * FROM read_parquet('{lake}/../../etc/passwd')"),
        format!("SELECT * FROM read_csv('{lake}/../lake-elsewhere/x.csv')"),
        "SELECT current_setting('home_directory')".to_string(),
        "SELECT * FROM duckdb_settings()".to_string(),
        "SELECT * FROM duckdb_secrets()".to_string(),
        "SELECT * FROM query('SELECT 1')".to_string(),
        "SELECT * FROM read_text('http://169.254.169.254/latest/meta-data/')".to_string(),
        format!("COPY (SELECT 1) TO '{lake}/x.csv'"),
        "ATTACH '/tmp/x.db'".to_string(),
        "SELECT 1; SELECT 2".to_string(),
    ];
    for sql in forged {
        let (status, body) = post_query(serde_json::json!({ "sql": sql })).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{sql}: {body}");
        let text = body.to_string();
        assert!(body["error"].as_str().is_some_and(|e| e.starts_with("forbidden:")), "{sql}: {text}");
        assert!(!text.contains("root:") && !text.contains("/home/") && !text.contains(".cache"), "{sql}: {text}");
    }
    // An honest query still runs, and a missing file in the lake is the client's error, named
    // by its lake path (not a server path elsewhere).
    let (status, body) = post_query(serde_json::json!({
        "sql": format!("SELECT count(*) AS n FROM read_parquet('{lake}/zones.parquet')")
    }))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post_query(serde_json::json!({
        "sql": format!("SELECT count(*) FROM read_parquet('{lake}/nothing/*.parquet', hive_partitioning = true)")
    }))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nothing"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_every_api_route() {
    let token = "a-test-token-of-some-length";
    let options = ServerOptions { token: Some(token.into()), ..ServerOptions::default() };
    let send = |uri: &str, auth: Option<&str>| {
        let mut request = Request::get(uri);
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        app_with(&options).oneshot(request.body(Body::empty()).unwrap())
    };
    for uri in ["/api/lake", "/api/progress", "/api/du/dates", "/api/trips/top", "/du?json"] {
        for auth in [None, Some("Bearer wrong-token-of-some-length"), Some(token), Some("Basic x")] {
            let response = send(uri, auth).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{uri} with {auth:?}");
        }
        let response = send(uri, Some(&format!("Bearer {token}"))).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
    }
    let (status, _) = post_query_to(app_with(&options), serde_json::json!({ "sql": "SELECT 1" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The page itself holds no data.
    assert_eq!(send("/", None).await.unwrap().status(), StatusCode::OK);
    assert_eq!(send("/du", None).await.unwrap().status(), StatusCode::OK);
    // No token on a public address: the server does not start.
    let public = ServerOptions { bind: "0.0.0.0".parse().unwrap(), ..ServerOptions::default() };
    let refused = AppState::open(Config::with_concurrency(1), lake(), None, &public);
    assert!(refused.err().is_some_and(|e| e.to_string().contains("token")));
}
