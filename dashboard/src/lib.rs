//! quack's web dashboard: one page (Storage, Trips, Query console) and a JSON API, answered by
//! the coordinator library (in process by default, Lambda when configured).
//!
//! Contract:
//! - Form inputs are parsed and validated into typed parameters (a prefix is passed to `du` as a
//!   literal, dates are parsed as dates, `k` as a number) and never spliced into SQL as text.
//! - Every query, the console's included, runs on a sandboxed engine ([`quack::Quack::sandboxed`]):
//!   it passes the Lambda worker's allowlist first, and the engine's DuckDB reads only the
//!   lake and the inventory. A refused query is a 403 saying why.
//! - With a token ([`ServerOptions`]), every API route needs `Authorization: Bearer <token>`
//!   (401 otherwise); a server bound beyond loopback refuses to start without one.
//! - Bad inputs get a 400 with a message, in which paths outside the lake and the inventory
//!   are redacted; internal errors are logged and answered with a generic 500; more queries
//!   than `max_queries` at once get a 429.

pub mod page;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use quack::du::DuOptions;
use quack::invoke::Progress;
use quack::{Config, Quack, QueryReport};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// Shortest token accepted.
pub const MIN_TOKEN_CHARS: usize = 16;

/// How the server is exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    pub bind: std::net::IpAddr,
    /// The bearer token API requests must carry, if any.
    pub token: Option<String>,
    /// API queries running at once at most.
    pub max_queries: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { bind: std::net::Ipv4Addr::LOCALHOST.into(), token: None, max_queries: 8 }
    }
}

/// The server may not start as configured.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "binding {bind} exposes the dashboard beyond this machine: set a token (--token or QUACK_DASHBOARD_TOKEN, \
         at least {MIN_TOKEN_CHARS} characters), or bind 127.0.0.1"
    )]
    PublicWithoutToken { bind: std::net::IpAddr },
    #[error("the token is {chars} characters; use at least {MIN_TOKEN_CHARS}")]
    ShortToken { chars: usize },
    #[error("the lake {path}: {source}")]
    Lake { path: String, source: std::io::Error },
    #[error(transparent)]
    Engine(#[from] quack::Error),
}

impl ServerOptions {
    /// Refuses a bind beyond loopback without a token, and a short token.
    pub fn check(&self) -> Result<(), StartError> {
        match &self.token {
            Some(token) if token.chars().count() < MIN_TOKEN_CHARS => {
                Err(StartError::ShortToken { chars: token.chars().count() })
            }
            None if !self.bind.is_loopback() => Err(StartError::PublicWithoutToken { bind: self.bind }),
            _ => Ok(()),
        }
    }
}

/// What the server answers from.
pub struct AppState {
    pub quack: Quack,
    /// The lake (`<lake>/trips`, `<lake>/dashboard/...`), a directory or `s3://` URL.
    pub lake: String,
    /// The inventory for the Storage page.
    pub inventory: String,
    running: Mutex<HashMap<u64, Progress>>,
    next_request: AtomicU64,
    token: Option<String>,
    queries: Semaphore,
}

/// A local path made absolute and canonical (the sandbox compares prefixes); URLs unchanged.
fn absolute(location: &str) -> Result<String, StartError> {
    let trimmed = location.trim_end_matches('/');
    if trimmed.contains("://") {
        return Ok(trimmed.to_string());
    }
    let path = std::fs::canonicalize(if trimmed.is_empty() { "/" } else { trimmed })
        .map_err(|source| StartError::Lake { path: location.to_string(), source })?;
    Ok(path.to_string_lossy().trim_end_matches('/').to_string())
}

impl AppState {
    /// The server's state over `lake` (and `inventory`, default `<lake>/inventory`): a
    /// [`Quack::sandboxed`] engine that reads only those two.
    pub fn open(
        config: Config,
        lake: &str,
        inventory: Option<&str>,
        options: &ServerOptions,
    ) -> Result<Self, StartError> {
        options.check()?;
        let lake = absolute(lake)?;
        let inventory = match inventory {
            Some(inventory) => absolute(inventory)?,
            None => absolute(&format!("{lake}/inventory")).unwrap_or_else(|_| format!("{lake}/inventory")),
        };
        let quack = Quack::sandboxed(config, &[lake.as_str(), inventory.as_str()])?;
        Ok(AppState {
            quack,
            lake,
            inventory,
            running: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(0),
            token: options.token.clone(),
            queries: Semaphore::new(options.max_queries.max(1)),
        })
    }

    /// Paths a message may name: the lake's and the inventory's.
    fn public_prefixes(&self) -> [&str; 2] {
        [self.lake.as_str(), self.inventory.as_str()]
    }

    /// A slot to run a query in, or a 429.
    fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.queries.try_acquire().map_err(|_| ApiError::Busy)
    }

    /// Registers a running request for `/api/progress`; its id for [`AppState::report`].
    fn start(&self) -> u64 {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        self.report(id, Progress::default());
        id
    }

    fn report(&self, id: u64, progress: Progress) {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id, progress);
    }

    fn finish(&self, id: u64) {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Runs `sql`, publishing its progress for `/api/progress` while it runs.
    async fn run(&self, sql: &str) -> Result<(Vec<RecordBatch>, QueryReport), ApiError> {
        let id = self.start();
        let result = self.quack.query_batches_with_progress(sql, &|p| self.report(id, p)).await;
        self.finish(id);
        result.map_err(|e| ApiError::of(e, self))
    }
}

/// The routes: `/` (the page), `/assets/chart.js`, `/du`, `/api/...`. With a token, `/du`'s
/// JSON and every `/api/` route need it; the page and the chart library are public (they hold
/// no data).
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/du", get(du))
        .route("/api/du/dates", get(du_dates))
        .route("/api/trips/top", get(trips_top))
        .route("/api/query", post(query))
        .route("/api/progress", get(progress))
        .route("/api/lake", get(lake))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new().route("/", get(index)).route("/assets/chart.js", get(chart_js)).merge(api).with_state(state)
}

/// Compares in time independent of where the strings differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Lets a request through when the server has no token, or the request carries it. `/du`
/// without JSON asked for is the page, and needs none.
async fn authenticate(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(token) = &state.token else { return next.run(request).await };
    if request.uri().path() == "/du" && !wants_json(request.headers(), request.uri().query().unwrap_or("")) {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({ "error": "this API needs the dashboard's token (Authorization: Bearer ...)" })),
        )
            .into_response(),
    }
}

/// An API failure: the client's (400 or 403, with the reason, paths redacted), too many at
/// once (429), or ours (500, logged, not leaked).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("too many queries at once")]
    Busy,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// Classifies a quack error for a client of `state`: what the client's request caused is
    /// theirs to see, with paths beyond the lake and inventory redacted; the rest is internal.
    fn of(error: quack::Error, state: &AppState) -> Self {
        use quack::invoke::InvokeError;
        use quack::Error as E;
        use quack_lambda::ErrorType;
        let redacted = || redact_paths(&error.to_string(), &state.public_prefixes());
        match &error {
            E::Forbidden { .. } => ApiError::Forbidden(redacted()),
            E::Syntax { .. }
            | E::Unsupported { .. }
            | E::Bind { .. }
            | E::NoFiles { .. }
            | E::Inventory { .. }
            | E::GatherLimit { .. } => ApiError::BadRequest(redacted()),
            E::Task { source: InvokeError::Task(failure), .. } => match failure.error_type {
                ErrorType::Forbidden => ApiError::Forbidden(redacted()),
                ErrorType::BadSql | ErrorType::QueryError | ErrorType::MissingFile | ErrorType::CorruptFile => {
                    ApiError::BadRequest(redacted())
                }
                _ => ApiError::Internal(error.to_string()),
            },
            _ => ApiError::Internal(error.to_string()),
        }
    }
}

/// `message` with every absolute path or URL that does not lie under one of `public` replaced
/// by `<path>` (a word starting with `/`, `~` or naming a `scheme://`, up to a quote or space).
pub fn redact_paths(message: &str, public: &[&str]) -> String {
    let mut out = String::with_capacity(message.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let looks_like_path = word.starts_with('/') || word.starts_with('~') || word.contains("://");
        let is_public = public.iter().any(|p| !p.is_empty() && (word == p || word.starts_with(&format!("{p}/"))));
        if looks_like_path && !is_public {
            out.push_str("<path>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in message.chars() {
        if c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | ')' | '[' | ']' | ',' | ';') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": message }))).into_response()
            }
            ApiError::Forbidden(message) => {
                (StatusCode::FORBIDDEN, Json(serde_json::json!({ "error": message }))).into_response()
            }
            ApiError::Busy => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                Json(serde_json::json!({ "error": "too many queries at once; try again shortly" })),
            )
                .into_response(),
            ApiError::Internal(message) => {
                tracing::error!(%message, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(serde_json::json!({ "error": "internal error (see the server log)" })),
                )
                    .into_response()
            }
        }
    }
}

/// Per-request figures the pages show.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    pub round_trip_ms: u64,
    pub worker_ms: u64,
    pub tasks: usize,
    pub cold_workers: usize,
    pub warm_workers: usize,
    pub retries: u64,
    pub bytes_scanned: u64,
    pub cost_usd: Option<f64>,
    pub strategy: String,
}

impl Figures {
    fn of(report: &QueryReport, started: Instant) -> Figures {
        Figures {
            round_trip_ms: started.elapsed().as_millis() as u64,
            worker_ms: report.worker_ms,
            tasks: report.tasks,
            cold_workers: report.cold_starts,
            warm_workers: report.tasks.saturating_sub(report.cold_starts),
            retries: report.retries,
            bytes_scanned: report.bytes_read,
            cost_usd: report.cost_usd,
            strategy: report.strategy.clone(),
        }
    }
}

async fn index() -> Html<&'static str> {
    Html(page::INDEX)
}

async fn chart_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=86400")],
        page::CHART_JS,
    )
}

/// `/du` query parameters, as lakeview names them.
#[derive(Debug, Default, Deserialize)]
pub struct DuParams {
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub date: Option<String>,
    pub compare: Option<String>,
    pub depth: Option<String>,
    pub by: Option<String>,
    /// The N largest objects (with `duplicates`, the N groups saving most).
    pub top: Option<String>,
    /// Present (or `true`/`1`): duplicate groups.
    pub duplicates: Option<String>,
    /// Present (or `true`/`1`): sizes per report date, with `since`.
    pub history: Option<String>,
    pub since: Option<String>,
    pub json: Option<String>,
}

/// A switch parameter: absent or `false`/`0` is off; present empty, `true` or `1` is on.
fn switch(name: &str, value: &Option<String>) -> Result<bool, ApiError> {
    match value.as_deref() {
        None | Some("false") | Some("0") => Ok(false),
        Some("") | Some("true") | Some("1") => Ok(true),
        Some(other) => {
            let shown: String = other.chars().take(20).collect();
            Err(ApiError::BadRequest(format!("{name} is a switch (true or false), not {shown:?}")))
        }
    }
}

/// Whether a `/du` request asks for JSON (`Accept: application/json` or a `json` parameter).
fn wants_json(headers: &HeaderMap, query: &str) -> bool {
    query.split('&').any(|pair| pair == "json" || pair.starts_with("json="))
        || headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("application/json"))
}

/// A report date: `YYYY-MM-DD-HH-MM`.
fn valid_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 16
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| if [4, 7, 10, 13].contains(&i) { *b == b'-' } else { b.is_ascii_digit() })
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// `GET /du`: lakeview's JSON when asked for (`Accept: application/json` or `?json`), else the page.
/// `group` may repeat (one `NAME=FILTER` each, as `quack du --group`).
async fn du(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<DuParams>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if params.json.is_none() && !wants_json(&headers, "") {
        return Html(page::INDEX).into_response();
    }
    let groups: Vec<String> = pairs.into_iter().filter(|(name, _)| name == "group").map(|(_, spec)| spec).collect();
    match du_json(&state, &params, &groups).await {
        Ok(value) => Json(value).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn du_json(state: &AppState, params: &DuParams, groups: &[String]) -> Result<serde_json::Value, ApiError> {
    for (name, value) in [("date", &params.date), ("compare", &params.compare)] {
        if let Some(date) = non_empty(value) {
            if !valid_date(date) {
                return Err(ApiError::BadRequest(format!("{name} must look like 2024-03-04-00-00, not {date:?}")));
            }
        }
    }
    let depth = match non_empty(&params.depth) {
        None => 1,
        Some(d) => match d.parse::<usize>() {
            Ok(n @ 1..=16) => n,
            _ => return Err(ApiError::BadRequest(format!("depth must be a number from 1 to 16, not {d:?}"))),
        },
    };
    let by = match non_empty(&params.by).map(str::parse::<quack::du::DuBy>).transpose() {
        Ok(by) => by,
        Err(e) => return Err(ApiError::BadRequest(e.to_string())),
    };
    let top = match non_empty(&params.top) {
        None => None,
        Some(n) => match n.parse::<usize>() {
            Ok(n @ 1..=10_000) => Some(n),
            _ => return Err(ApiError::BadRequest(format!("top must be a number from 1 to 10000, not {n:?}"))),
        },
    };
    let groups = quack::du::parse_groups(groups).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let options = DuOptions {
        inventory: state.inventory.clone(),
        date: non_empty(&params.date).map(String::from),
        compare: non_empty(&params.compare).map(String::from),
        prefix: params.prefix.clone().unwrap_or_default(),
        delimiter: params.delimiter.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| "/".into()),
        depth,
        by,
        groups,
        top,
        duplicates: switch("duplicates", &params.duplicates)?,
        history: switch("history", &params.history)?,
        since: non_empty(&params.since).map(String::from),
    };
    options.validate().map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let started = Instant::now();
    let _slot = state.slot()?;
    let id = state.start();
    let answer = quack::du::du_with_progress(&state.quack, &options, &|p| state.report(id, p)).await;
    state.finish(id);
    let answer = answer.map_err(|e| ApiError::of(e, state))?;
    let mut value = answer.to_json();
    value["figures"] = serde_json::to_value(Figures::of(&answer.report, started)).unwrap_or_default();
    Ok(value)
}

async fn du_dates(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let dates = quack::du::dates(&state.quack, &state.inventory).await.map_err(|e| ApiError::of(e, &state))?;
    Ok(Json(serde_json::json!({ "inventory": state.inventory, "dates": dates })))
}

/// `/api/trips/top` parameters.
#[derive(Debug, Default, Deserialize)]
pub struct TopParams {
    pub k: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A calendar date `YYYY-MM-DD`, re-printed from its parsed parts (never the input text).
fn parse_day(name: &str, text: &str) -> Result<String, ApiError> {
    let parts: Vec<&str> = text.split('-').collect();
    let numbers: Option<Vec<u32>> = parts.iter().map(|p| p.parse::<u32>().ok()).collect();
    match (parts.len(), numbers) {
        (3, Some(n)) if parts[0].len() == 4 && (1..=12).contains(&n[1]) && (1..=31).contains(&n[2]) => {
            Ok(format!("{:04}-{:02}-{:02}", n[0], n[1], n[2]))
        }
        _ => Err(ApiError::BadRequest(format!("{name} must be a date like 2024-03-01, not {text:?}"))),
    }
}

/// `GET /api/trips/top?k=&from=&to=`: the top-k pickup locations from the dbt tables, over a
/// date range when given (the daily table, partitions pruned), with the total number of trips.
async fn trips_top(
    State(state): State<Arc<AppState>>,
    Query(params): Query<TopParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let k = match non_empty(&params.k) {
        None => 10,
        Some(text) => match text.parse::<u32>() {
            Ok(k @ 1..=1000) => k,
            _ => return Err(ApiError::BadRequest(format!("k must be a number from 1 to 1000, not {text:?}"))),
        },
    };
    let from = non_empty(&params.from).map(|d| parse_day("from", d)).transpose()?;
    let to = non_empty(&params.to).map(|d| parse_day("to", d)).transpose()?;
    let daily = format!(
        "read_parquet({}, hive_partitioning = true)",
        quack_lambda::quote::literal(&format!("{}/dashboard/daily_trips/*/*.parquet", state.lake))
    );
    let mut filter = Vec::new();
    if let Some(from) = &from {
        filter.push(format!("date >= DATE '{from}'"));
    }
    if let Some(to) = &to {
        filter.push(format!("date <= DATE '{to}'"));
    }
    let where_clause = if filter.is_empty() { String::new() } else { format!("WHERE {}", filter.join(" AND ")) };
    let sql = if from.is_none() && to.is_none() {
        format!(
            "SELECT pickup_location_id, trips FROM read_parquet({}) WHERE rank <= {k} ORDER BY rank",
            quack_lambda::quote::literal(&format!("{}/dashboard/top_pickup_locations/data.parquet", state.lake))
        )
    } else {
        format!(
            "SELECT pickup_location_id, CAST(sum(trips) AS BIGINT) AS trips FROM {daily} {where_clause} \
             GROUP BY pickup_location_id ORDER BY trips DESC, pickup_location_id LIMIT {k}"
        )
    };
    let started = Instant::now();
    let _slot = state.slot()?;
    let (batches, report) = state.run(&sql).await?;
    let (total_batches, _) = state
        .run(&format!("SELECT CAST(coalesce(sum(trips), 0) AS BIGINT) AS total FROM {daily} {where_clause}"))
        .await?;
    let rows = quack::output::json_rows(&batches);
    let names = zone_names(&state, rows.iter().filter_map(|r| r[0].as_i64())).await;
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let (borough, zone) = r[0].as_i64().and_then(|id| names.get(&id).cloned()).unwrap_or_default();
            serde_json::json!({ "pickup_location_id": r[0], "borough": borough, "zone": zone, "trips": r[1] })
        })
        .collect();
    let total = quack::output::json_rows(&total_batches)
        .first()
        .and_then(|r| r.first().cloned())
        .unwrap_or(serde_json::Value::Null);
    Ok(Json(serde_json::json!({
        "k": k, "from": from, "to": to, "rows": rows, "total_trips": total,
        "figures": Figures::of(&report, started),
    })))
}

/// Borough and zone of each location id in `ids`, from `<lake>/zones.parquet`; none when the
/// lake has no zones table (the page then shows bare ids).
async fn zone_names(
    state: &AppState,
    ids: impl Iterator<Item = i64>,
) -> std::collections::HashMap<i64, (serde_json::Value, serde_json::Value)> {
    let ids: Vec<String> = ids.map(|id| id.to_string()).collect();
    if ids.is_empty() {
        return Default::default();
    }
    let sql = format!(
        "SELECT location_id, borough, zone FROM read_parquet({}) WHERE location_id IN ({})",
        quack_lambda::quote::literal(&format!("{}/zones.parquet", state.lake)),
        ids.join(", ")
    );
    match state.run(&sql).await {
        Ok((batches, _)) => quack::output::json_rows(&batches)
            .into_iter()
            .filter_map(|r| Some((r[0].as_i64()?, (r[1].clone(), r[2].clone()))))
            .collect(),
        Err(error) => {
            tracing::debug!(?error, "no zone names");
            Default::default()
        }
    }
}

/// `POST /api/query` body.
#[derive(Debug, Deserialize)]
pub struct QueryRequest {
    pub sql: String,
    /// Rows to return at most (default 1000).
    pub limit: Option<usize>,
}

/// `POST /api/query`: runs the console's SQL; answers columns, rows, the plan and the figures.
async fn query(
    State(state): State<Arc<AppState>>,
    Json(request): Json<QueryRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if request.sql.trim().is_empty() {
        return Err(ApiError::BadRequest("the query is empty".into()));
    }
    let limit = request.limit.unwrap_or(1000).clamp(1, 100_000);
    let started = Instant::now();
    let _slot = state.slot()?;
    let plan = redact_paths(
        &state.quack.plan(&request.sql).await.map_err(|e| ApiError::of(e, &state))?.explain(),
        &state.public_prefixes(),
    );
    let (batches, report) = state.run(&request.sql).await?;
    let columns: Vec<String> =
        batches.first().map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect()).unwrap_or_default();
    let all = quack::output::json_rows(&batches);
    let truncated = all.len() > limit;
    let rows: Vec<Vec<serde_json::Value>> = all.into_iter().take(limit).collect();
    Ok(Json(serde_json::json!({
        "columns": columns, "rows": rows, "row_count": report.rows, "truncated": truncated,
        "plan": plan, "figures": Figures::of(&report, started),
    })))
}

/// `GET /api/lake`: where the data is.
async fn lake(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "lake": state.lake, "inventory": state.inventory }))
}

/// `GET /api/progress`: the queries running now, with their tasks done and total.
async fn progress(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let running: Vec<serde_json::Value> = state
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .map(|p| serde_json::json!({ "done": p.done, "total": p.total }))
        .collect();
    Json(serde_json::json!({ "running": running }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_paths_outside_the_lake() {
        let public = ["/srv/lake", "s3://lake"];
        assert_eq!(
            redact_paths("IO Error: No files found that match \"/srv/lake/trips/*.parquet\"", &public),
            "IO Error: No files found that match \"/srv/lake/trips/*.parquet\""
        );
        assert_eq!(
            redact_paths("Permission Error: Cannot access \"/etc/passwd\" or '/root/.cache/x' (s3://other/k)", &public),
            "Permission Error: Cannot access \"<path>\" or '<path>' (<path>)"
        );
        assert_eq!(redact_paths("/srv/lakehouse/x and s3://lake/y", &public), "<path> and s3://lake/y");
    }

    #[test]
    fn a_public_bind_needs_a_long_token() {
        let public = ServerOptions { bind: "0.0.0.0".parse().unwrap(), ..ServerOptions::default() };
        assert!(matches!(public.check(), Err(StartError::PublicWithoutToken { .. })));
        let short = ServerOptions { token: Some("secret".into()), ..public.clone() };
        assert!(matches!(short.check(), Err(StartError::ShortToken { chars: 6 })));
        assert!(ServerOptions { token: Some("a-long-enough-token".into()), ..public }.check().is_ok());
        assert!(ServerOptions::default().check().is_ok());
        let v6 = ServerOptions { bind: "::".parse().unwrap(), ..ServerOptions::default() };
        assert!(v6.check().is_err());
        assert!(
            constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"ab", b"abc")
        );
    }

    #[test]
    fn validates_dates() {
        assert!(valid_date("2024-03-04-00-00"));
        assert!(!valid_date("2024-03-04' OR 1=1"));
        assert_eq!(parse_day("from", "2024-3-1").unwrap(), "2024-03-01");
        assert!(parse_day("from", "2024-13-01").is_err());
        assert!(parse_day("from", "2024-03-01'; DROP").is_err());
    }
}
