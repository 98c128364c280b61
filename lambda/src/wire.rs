//! Wire types shared by the worker and the coordinator: the task event a worker receives and the
//! partial result (or failure) it answers with.
//!
//! Contract: every message carries [`WIRE_VERSION`]; a worker refuses a task of another version
//! with [`ErrorType::VersionMismatch`] instead of guessing. The JSON shape is pinned by the fixtures
//! under `lambda/tests/fixtures/` and the round-trip tests at the bottom of this file. Arrow data
//! travels as Arrow IPC stream bytes, base64-encoded in JSON.

use serde::{Deserialize, Serialize};

/// Version of the task / partial-result wire format. Bump on any incompatible change.
pub const WIRE_VERSION: u32 = 5;

/// Whether `id` is a well-formed query id: 1 to 64 ASCII letters, digits, `-` or `_`, starting
/// with a letter or digit. Ids name spill and exchange objects, so both sides check them.
pub fn valid_query_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// One unit of map work: a read-only SQL query over an explicit list of files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub version: u32,
    /// Id of the query this task belongs to; carried into worker logs.
    pub query_id: String,
    /// Position of the task in the plan (0-based); partials are reduced in this order.
    pub task_id: usize,
    /// Human-readable name of the work, used in messages (`date=2024-03-05`, `3 partitions`).
    pub label: String,
    /// The map SQL, with this task's files already in place.
    pub sql: String,
    /// The files the SQL reads (the fanned-out table's share of this task).
    pub files: Vec<String>,
    /// The coordinator's session time zone (DuckDB's `TimeZone`, an IANA name such as
    /// `Europe/Berlin`): the worker runs the SQL in it, so that TIMESTAMPTZ casts, `date_trunc`
    /// and `strftime` agree with one DuckDB in that session. `None`: the worker's own (UTC on
    /// Lambda). Added in wire version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// When set, the task is a stage of a multi-stage plan: it writes its rows to the exchange,
    /// one Parquet file per bucket, and answers with a manifest of the files instead of the rows
    /// ([`crate::exchange`]). Added in wire version 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<ExchangeWrite>,
    /// When set, the task runs no SQL (`sql` is empty): it reads its `files`, which are in this
    /// format that DuckDB has no reader for, and writes their rows unchanged to its exchange
    /// (which must be set, with one bucket) as one Parquet file per input file, answering with
    /// the exchange manifest ([`crate::convert`]). Added in wire version 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert: Option<Convert>,
}

/// An input format a worker converts to Parquet before DuckDB reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Convert {
    /// Apache ORC, one of S3 Inventory's three report formats.
    Orc,
}

/// Where and how a task writes its rows to the exchange between two stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeWrite {
    /// The stage's directory or URL prefix, ending in `/`:
    /// `<exchange root><query_id>/<stage>/`. The worker checks it against its own root.
    pub prefix: String,
    /// How many buckets the rows are spread over; the SQL's last column,
    /// [`crate::exchange::BUCKET_COLUMN`], holds each row's bucket in `0..buckets`.
    pub buckets: u32,
}

/// Whether `zone` may name a time zone on the wire: 1 to 64 ASCII letters, digits and `/_+-:.`
/// (IANA names, `UTC`, `Etc/GMT+5`). DuckDB then decides whether it knows the zone.
pub fn valid_time_zone(zone: &str) -> bool {
    (1..=64).contains(&zone.len())
        && zone.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+-:.".contains(&b))
        && !zone.split('/').any(|part| part == ".." || part == ".")
}

/// A successful task's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialResult {
    pub version: u32,
    pub query_id: String,
    pub task_id: usize,
    pub data: PartialData,
    pub stats: TaskStats,
}

/// Where the partial's rows are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartialData {
    /// The rows as an Arrow IPC stream (schema + batches).
    Inline {
        #[serde(with = "base64_bytes")]
        arrow_ipc: Vec<u8>,
    },
    /// The rows were too large to return inline and were written to this URL as an Arrow IPC
    /// stream; the coordinator reads and deletes it.
    Spilled { url: String },
}

/// Figures a worker reports about one task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStats {
    pub rows: u64,
    /// Bytes of the task's input files, when the worker could tell.
    pub bytes_read: Option<u64>,
    /// Bytes of the Arrow IPC answer.
    pub result_bytes: u64,
    pub duration_ms: u64,
    /// Peak memory DuckDB reported for the task, when known.
    pub peak_memory_bytes: Option<u64>,
    /// True when this was the first task the worker instance ran (a cold start).
    pub cold_start: bool,
    pub duckdb_version: String,
    /// On a cold start in Lambda: milliseconds from process start to ready (runtime, DuckDB,
    /// httpfs, sandbox), billed like the task itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_ms: Option<u64>,
    /// The memory the function was given (Lambda's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), for the
    /// coordinator's GB-s figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

/// A failed task's answer. `error_type` is stable; `retryable` says whether running the same task
/// again can succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct TaskFailure {
    pub version: u32,
    pub query_id: String,
    pub task_id: usize,
    pub error_type: ErrorType,
    pub retryable: bool,
    pub message: String,
}

impl TaskFailure {
    /// A failure of `task` of the given type; retryability follows the type.
    pub fn new(task: &Task, error_type: ErrorType, message: impl Into<String>) -> Self {
        TaskFailure {
            version: WIRE_VERSION,
            query_id: task.query_id.clone(),
            task_id: task.task_id,
            error_type,
            retryable: error_type.is_retryable(),
            message: message.into(),
        }
    }
}

/// Stable classification of task errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The SQL does not parse or bind (a planner bug or a forged event).
    BadSql,
    /// An input file does not exist.
    MissingFile,
    /// An input file is not a readable Parquet file.
    CorruptFile,
    /// The task ran out of memory.
    OutOfMemory,
    /// The task did not finish in time.
    Timeout,
    /// The storage or the function service asked us to slow down.
    Throttled,
    /// The task or event is not allowed (not a read-only query, a path outside the task).
    Forbidden,
    /// The task's wire version is not this worker's.
    VersionMismatch,
    /// The event is not a task (malformed JSON shape).
    BadEvent,
    /// The result does not fit the response and could not be spilled.
    ResultTooLarge,
    /// The query failed on the data deterministically (a failed cast, an out-of-range value).
    QueryError,
    /// DuckDB failed one of its own internal checks on this task, or met a case it does not
    /// implement (an `INTERNAL` or `Not implemented` error: a DuckDB limit that this task's SQL
    /// and files reach, in SQL that was bound before it was sent). Running the same task again
    /// fails the same way, so it is not retried; the coordinator runs the query another way.
    /// Added in wire version 3.
    EngineInternal,
    /// Anything else raised while running the query.
    Internal,
}

impl ErrorType {
    /// Whether running the same task again can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorType::Timeout | ErrorType::Throttled | ErrorType::Internal)
    }

    /// The stable snake_case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadSql => "bad_sql",
            ErrorType::MissingFile => "missing_file",
            ErrorType::CorruptFile => "corrupt_file",
            ErrorType::OutOfMemory => "out_of_memory",
            ErrorType::Timeout => "timeout",
            ErrorType::Throttled => "throttled",
            ErrorType::Forbidden => "forbidden",
            ErrorType::VersionMismatch => "version_mismatch",
            ErrorType::BadEvent => "bad_event",
            ErrorType::EngineInternal => "engine_internal",
            ErrorType::ResultTooLarge => "result_too_large",
            ErrorType::QueryError => "query_error",
            ErrorType::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A worker's whole answer to one task, as the Lambda handler returns it.
///
/// On the wire, an object tagged by `status` (`ok`: a [`PartialResult`]'s fields; `error`: a
/// [`TaskFailure`]'s). It is read through [`ResponseFields`], one flat pass, rather than as
/// serde's internally tagged enum, which first copies the whole answer (the base64 rows
/// included) into a buffer of its own: the coordinator reads one answer per task. It accepts
/// what the tagged enum accepts, except that a field of the other status's, when present, must
/// be well-formed too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", try_from = "ResponseFields")]
pub enum TaskResponse {
    Ok(PartialResult),
    Error(TaskFailure),
}

/// Every field a [`TaskResponse`] may have, as read off the wire; which are required depends on
/// `status`.
#[derive(Deserialize)]
struct ResponseFields {
    status: ResponseStatus,
    version: u32,
    query_id: String,
    task_id: usize,
    data: Option<DataFields>,
    stats: Option<TaskStats>,
    error_type: Option<ErrorType>,
    retryable: Option<bool>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ResponseStatus {
    Ok,
    Error,
}

/// Every field a [`PartialData`] may have; which are required depends on `kind`.
#[derive(Deserialize)]
struct DataFields {
    kind: DataKind,
    #[serde(default, with = "base64_bytes_option")]
    arrow_ipc: Option<Vec<u8>>,
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum DataKind {
    Inline,
    Spilled,
}

impl TryFrom<ResponseFields> for TaskResponse {
    type Error = String;

    fn try_from(fields: ResponseFields) -> Result<Self, String> {
        let missing = |status: &str, field: &str| format!("a `{status}` task response without its `{field}`");
        let ResponseFields { status, version, query_id, task_id, data, stats, error_type, retryable, message } = fields;
        Ok(match status {
            ResponseStatus::Ok => {
                let data = data.ok_or_else(|| missing("ok", "data"))?;
                let data = match data.kind {
                    DataKind::Inline => {
                        PartialData::Inline { arrow_ipc: data.arrow_ipc.ok_or_else(|| missing("inline", "arrow_ipc"))? }
                    }
                    DataKind::Spilled => {
                        PartialData::Spilled { url: data.url.ok_or_else(|| missing("spilled", "url"))? }
                    }
                };
                let stats = stats.ok_or_else(|| missing("ok", "stats"))?;
                TaskResponse::Ok(PartialResult { version, query_id, task_id, data, stats })
            }
            ResponseStatus::Error => TaskResponse::Error(TaskFailure {
                version,
                query_id,
                task_id,
                error_type: error_type.ok_or_else(|| missing("error", "error_type"))?,
                retryable: retryable.ok_or_else(|| missing("error", "retryable"))?,
                message: message.ok_or_else(|| missing("error", "message"))?,
            }),
        })
    }
}

mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Decodes straight from the JSON text when it can be borrowed (no escapes, as a base64
    /// string never has), without first copying it into a `String`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Base64;
        impl serde::de::Visitor<'_> for Base64 {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
                STANDARD.decode(text.as_bytes()).map_err(E::custom)
            }
        }
        d.deserialize_str(Base64)
    }
}

mod base64_bytes_option {
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        super::base64_bytes::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Parsing the fixture and serializing it again gives the same JSON value.
    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(name: &str) -> T {
        let text = fixture(name);
        let value: T = serde_json::from_str(&text).unwrap();
        let again = serde_json::to_value(&value).unwrap();
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(again, original, "{name} does not round-trip");
        let back: T = serde_json::from_value(again).unwrap();
        assert_eq!(back, value);
        value
    }

    #[test]
    fn task_fixture_round_trips() {
        let task: Task = round_trip("task.json");
        assert_eq!(task.version, WIRE_VERSION);
        assert_eq!(task.files.len(), 2);
    }

    #[test]
    fn exchange_task_fixture_round_trips() {
        let task: Task = round_trip("task_exchange.json");
        let exchange = task.exchange.expect("an exchange");
        assert_eq!(exchange.buckets, 16);
        assert!(exchange.prefix.ends_with(&format!("{}/s1/", task.query_id)));
    }

    #[test]
    fn convert_task_fixture_round_trips() {
        let task: Task = round_trip("task_convert.json");
        assert_eq!(task.convert, Some(Convert::Orc));
        assert_eq!(task.exchange.map(|e| e.buckets), Some(1));
    }

    #[test]
    fn ok_response_fixture_round_trips() {
        let response: TaskResponse = round_trip("response_ok.json");
        let TaskResponse::Ok(partial) = response else { panic!("expected ok") };
        let PartialData::Inline { arrow_ipc } = &partial.data else { panic!("expected inline") };
        assert_eq!(&arrow_ipc[..], b"ARROW1");
    }

    #[test]
    fn spilled_and_error_fixtures_round_trip() {
        let spilled: TaskResponse = round_trip("response_spilled.json");
        assert!(matches!(spilled, TaskResponse::Ok(PartialResult { data: PartialData::Spilled { .. }, .. })));
        let failed: TaskResponse = round_trip("response_error.json");
        let TaskResponse::Error(failure) = failed else { panic!("expected error") };
        assert_eq!(failure.error_type, ErrorType::CorruptFile);
        assert!(!failure.retryable);
    }

    /// The one-pass reading accepts exactly what serde's internally tagged enum accepts, and
    /// reads the same values: over the fixtures, each with every field removed, nulled, mistyped,
    /// or joined by another variant's fields.
    #[test]
    fn responses_read_as_the_tagged_enum_reads_them() {
        #[derive(Debug, PartialEq, Deserialize)]
        #[serde(tag = "status", rename_all = "snake_case")]
        enum Tagged {
            Ok(PartialResult),
            Error(TaskFailure),
        }
        fn same(value: &serde_json::Value) {
            let text = value.to_string();
            let ours = serde_json::from_str::<TaskResponse>(&text);
            let theirs = serde_json::from_str::<Tagged>(&text);
            match (ours, theirs) {
                (Ok(TaskResponse::Ok(a)), Ok(Tagged::Ok(b))) => assert_eq!(a, b, "{text}"),
                (Ok(TaskResponse::Error(a)), Ok(Tagged::Error(b))) => assert_eq!(a, b, "{text}"),
                (Err(_), Err(_)) => {}
                (ours, theirs) => panic!("{text}: ours {ours:?}, the tagged enum's {theirs:?}"),
            }
        }
        let mut cases = Vec::new();
        for name in ["response_ok.json", "response_spilled.json", "response_error.json"] {
            let value: serde_json::Value = serde_json::from_str(&fixture(name)).unwrap();
            cases.push(value.clone());
            let mut with_paths = vec![(None, value.clone())];
            if let Some(data) = value.get("data") {
                with_paths.push((Some("data"), data.clone()));
            }
            for (inner, object) in with_paths {
                for key in object.as_object().unwrap().keys() {
                    for replacement in
                        [None, Some(serde_json::Value::Null), Some(serde_json::json!("3")), Some(serde_json::json!(3))]
                    {
                        let mut changed = value.clone();
                        let target = match inner {
                            Some(field) => changed.get_mut(field).unwrap(),
                            None => &mut changed,
                        };
                        let target = target.as_object_mut().unwrap();
                        match &replacement {
                            None => {
                                target.remove(key);
                            }
                            Some(v) => {
                                target.insert(key.clone(), v.clone());
                            }
                        }
                        cases.push(changed);
                    }
                }
            }
            let mut mixed = value.clone();
            let object = mixed.as_object_mut().unwrap();
            object.insert("message".into(), serde_json::json!("x"));
            object.insert("error_type".into(), serde_json::json!("query_error"));
            object.insert("retryable".into(), serde_json::json!(false));
            object.insert("data".into(), serde_json::json!({"kind": "inline", "arrow_ipc": "QUJD", "url": "s3://b/k"}));
            object.insert("unknown".into(), serde_json::json!([1]));
            cases.push(mixed);
            for status in ["ok", "error", "OK", "other", ""] {
                let mut restatused = value.clone();
                restatused.as_object_mut().unwrap().insert("status".into(), serde_json::json!(status));
                cases.push(restatused);
            }
        }
        cases.push(serde_json::json!({"status": "ok", "version": 1, "query_id": "q", "task_id": 0,
            "data": {"kind": "inline", "arrow_ipc": "not base64!"}, "stats": TaskStats::default()}));
        cases.push(serde_json::json!([]));
        cases.push(serde_json::json!("ok"));
        for case in &cases {
            same(case);
        }
        // Stricter in one way: a field of the other status's, present but malformed, is an
        // error, where the tagged enum ignored it.
        let mut odd: serde_json::Value = serde_json::from_str(&fixture("response_ok.json")).unwrap();
        odd.as_object_mut().unwrap().insert("retryable".into(), serde_json::json!("yes"));
        assert!(serde_json::from_value::<TaskResponse>(odd).is_err());
    }

    #[test]
    fn query_ids_are_plain_names() {
        for good in ["q-18c2f-0a1b2c3d", "q", "Q_1"] {
            assert!(valid_query_id(good), "{good}");
        }
        let long = "q".repeat(65);
        for bad in ["", "-q", "q/../x", "q id", "q\n", long.as_str(), "q\u{e9}", "q?x"] {
            assert!(!valid_query_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn retryability_is_part_of_the_type() {
        assert!(ErrorType::Throttled.is_retryable());
        assert!(ErrorType::Timeout.is_retryable());
        assert!(!ErrorType::BadSql.is_retryable());
        assert!(!ErrorType::MissingFile.is_retryable());
        assert!(!ErrorType::EngineInternal.is_retryable());
        assert_eq!(serde_json::to_string(&ErrorType::EngineInternal).unwrap(), "\"engine_internal\"");
        let json = serde_json::to_string(&ErrorType::OutOfMemory).unwrap();
        assert_eq!(json, "\"out_of_memory\"");
        assert_eq!(ErrorType::OutOfMemory.as_str(), "out_of_memory");
    }
}
