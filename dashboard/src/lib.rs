//! quack's web dashboard: one page (Storage, Trips, Query console) and a JSON API, answered by
//! the coordinator library (in process by default, Lambda when configured).
//!
//! Contract: form inputs are parsed and validated into typed parameters (a prefix is passed to
//! `du` as a literal, dates are parsed as dates, `k` as a number) and never spliced into SQL as
//! text; bad inputs get a 400 with a message; internal errors are logged and answered with a
//! generic 500.

pub mod page;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use quack::du::DuOptions;
use quack::invoke::Progress;
use quack::{Quack, QueryReport};
use serde::{Deserialize, Serialize};

/// What the server answers from.
pub struct AppState {
    pub quack: Quack,
    /// The lake (`<lake>/trips`, `<lake>/dashboard/...`), a directory or `s3://` URL.
    pub lake: String,
    /// The inventory for the Storage page.
    pub inventory: String,
    running: Mutex<HashMap<u64, Progress>>,
    next_request: AtomicU64,
}

impl AppState {
    pub fn new(quack: Quack, lake: &str, inventory: Option<&str>) -> Self {
        let lake = lake.trim_end_matches('/').to_string();
        let inventory =
            inventory.map(|i| i.trim_end_matches('/').to_string()).unwrap_or_else(|| format!("{lake}/inventory"));
        AppState { quack, lake, inventory, running: Mutex::new(HashMap::new()), next_request: AtomicU64::new(0) }
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
        result.map_err(ApiError::from)
    }
}

/// The routes: `/` (the page), `/assets/chart.js`, `/du`, `/api/...`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/chart.js", get(chart_js))
        .route("/du", get(du))
        .route("/api/du/dates", get(du_dates))
        .route("/api/trips/top", get(trips_top))
        .route("/api/query", post(query))
        .route("/api/progress", get(progress))
        .route("/api/lake", get(lake))
        .with_state(state)
}

/// An API failure: the client's (400, with the reason) or ours (500, logged, not leaked).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error")]
    Internal(String),
}

impl From<quack::Error> for ApiError {
    fn from(error: quack::Error) -> Self {
        use quack::Error as E;
        match error {
            E::Syntax { .. }
            | E::Unsupported { .. }
            | E::Bind { .. }
            | E::NoFiles { .. }
            | E::Inventory { .. }
            | E::Config { .. }
            | E::Task { .. } => ApiError::BadRequest(error.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": message }))).into_response()
            }
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
    pub json: Option<String>,
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
async fn du(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(params): Query<DuParams>) -> Response {
    let wants_json = params.json.is_some()
        || headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    if !wants_json {
        return Html(page::INDEX).into_response();
    }
    match du_json(&state, &params).await {
        Ok(value) => Json(value).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn du_json(state: &AppState, params: &DuParams) -> Result<serde_json::Value, ApiError> {
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
    let by_storage_class = match non_empty(&params.by) {
        None => false,
        Some("storage-class") | Some("storage_class") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("by must be storage-class, not {other:?}"))),
    };
    let options = DuOptions {
        inventory: state.inventory.clone(),
        date: non_empty(&params.date).map(String::from),
        compare: non_empty(&params.compare).map(String::from),
        prefix: params.prefix.clone().unwrap_or_default(),
        delimiter: params.delimiter.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| "/".into()),
        depth,
        by_storage_class,
    };
    let started = Instant::now();
    let id = state.start();
    let answer = quack::du::du_with_progress(&state.quack, &options, &|p| state.report(id, p)).await;
    state.finish(id);
    let answer = answer?;
    let mut value = answer.to_json();
    value["figures"] = serde_json::to_value(Figures::of(&answer.report, started)).unwrap_or_default();
    Ok(value)
}

async fn du_dates(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let dates = quack::du::dates(&state.quack, &state.inventory)?;
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
        "read_parquet('{}/dashboard/daily_trips/*/*.parquet', hive_partitioning = true)",
        state.lake.replace('\'', "''")
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
            "SELECT pickup_location_id, trips FROM read_parquet('{}/dashboard/top_pickup_locations/data.parquet') \
             WHERE rank <= {k} ORDER BY rank",
            state.lake.replace('\'', "''")
        )
    } else {
        format!(
            "SELECT pickup_location_id, CAST(sum(trips) AS BIGINT) AS trips FROM {daily} {where_clause} \
             GROUP BY pickup_location_id ORDER BY trips DESC, pickup_location_id LIMIT {k}"
        )
    };
    let started = Instant::now();
    let (batches, report) = state.run(&sql).await?;
    let (total_batches, _) = state
        .run(&format!("SELECT CAST(coalesce(sum(trips), 0) AS BIGINT) AS total FROM {daily} {where_clause}"))
        .await?;
    let rows: Vec<serde_json::Value> = quack::output::json_rows(&batches)
        .into_iter()
        .map(|r| serde_json::json!({ "pickup_location_id": r[0], "trips": r[1] }))
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
    let plan = state.quack.plan(&request.sql)?.explain();
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
    fn validates_dates() {
        assert!(valid_date("2024-03-04-00-00"));
        assert!(!valid_date("2024-03-04' OR 1=1"));
        assert_eq!(parse_day("from", "2024-3-1").unwrap(), "2024-03-01");
        assert!(parse_day("from", "2024-13-01").is_err());
        assert!(parse_day("from", "2024-03-01'; DROP").is_err());
    }
}
