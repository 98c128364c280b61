//! The exchange between the stages of a multi-stage plan, on the worker's side: a task with
//! [`ExchangeWrite`] writes its rows as Parquet files, one per bucket, instead of answering with
//! them, and answers with a manifest of the files it wrote.
//!
//! Contract:
//! - The task's SQL ends with an integer column [`BUCKET_COLUMN`] in `0..buckets`. Every row goes
//!   to its bucket's file, without that column, in the SQL's row order. A bucket with no rows
//!   has no file.
//! - Files are named `<prefix>t<task_id>-<attempt>-b<bucket>.parquet`. `attempt` is drawn at random
//!   for each run, so a retried or hedged attempt never overwrites another attempt's files, and
//!   the next stage reads only the files the winning attempt's manifest names.
//! - The manifest has one row per file: `bucket INTEGER, path VARCHAR, rows BIGINT`.
//! - The prefix must be `<store root><query_id>/<stage>/` ([`check`]): a forged event cannot
//!   write anywhere else. A worker without an [`ExchangeStore`] refuses exchange tasks.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, Int64Array, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::wire::{ErrorType, ExchangeWrite, Task};

/// The column of a task's SQL that holds each row's bucket.
pub const BUCKET_COLUMN: &str = "__quack_bucket";
/// The most buckets one exchange may have.
pub const MAX_BUCKETS: u32 = 4096;

/// Where exchange files are written. Implementations write a file whole or not at all.
pub trait ExchangeStore: Send + Sync {
    /// The directory or URL prefix this store writes under; it ends with `/`.
    fn root(&self) -> &str;
    /// Writes `bytes` at `path`, which lies under [`ExchangeStore::root`].
    fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), String>;
    /// Reads the object at the `s3://` URL `url` whole: a conversion task's input
    /// ([`crate::convert`]), which the caller has checked the task may read. A store without S3
    /// access says so.
    fn get(&self, url: &str) -> Result<bytes::Bytes, InputError> {
        Err(no_reader(url))
    }
}

fn no_reader(url: &str) -> InputError {
    InputError {
        error_type: ErrorType::Forbidden,
        message: format!("this worker reads no S3 objects itself, so it cannot convert {url}"),
    }
}

/// Why an input file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    /// How the task fails: a missing object, throttling, or anything else (retryable).
    pub error_type: ErrorType,
    pub message: String,
}

/// Reads an `s3://` object whole, for [`ExchangeStore::get`].
pub type ObjectReader = Arc<dyn Fn(&str) -> Result<bytes::Bytes, InputError> + Send + Sync>;

/// An exchange in a local directory (the in-process backend's).
#[derive(Clone)]
pub struct LocalExchange {
    root: String,
    /// How [`ExchangeStore::get`] reads S3 objects; `None`: it does not.
    reader: Option<ObjectReader>,
}

impl std::fmt::Debug for LocalExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalExchange").field("root", &self.root).field("reads_s3", &self.reader.is_some()).finish()
    }
}

impl LocalExchange {
    /// An exchange under the directory `root` (created when first written).
    pub fn new(root: impl Into<String>) -> Self {
        let root = root.into();
        let root = if root.ends_with('/') { root } else { format!("{root}/") };
        LocalExchange { root, reader: None }
    }

    /// The same exchange, reading conversion tasks' S3 inputs with `reader`.
    pub fn with_reader(mut self, reader: ObjectReader) -> Self {
        self.reader = Some(reader);
        self
    }
}

impl ExchangeStore for LocalExchange {
    fn root(&self) -> &str {
        &self.root
    }

    fn get(&self, url: &str) -> Result<bytes::Bytes, InputError> {
        match &self.reader {
            Some(reader) => reader(url),
            None => Err(no_reader(url)),
        }
    }

    fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), String> {
        let target = std::path::Path::new(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        // Written aside, then renamed: a reader never sees half a file.
        let partial = format!("{path}.{}.partial", attempt_id());
        std::fs::write(&partial, bytes).map_err(|e| format!("writing {partial}: {e}"))?;
        std::fs::rename(&partial, path).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            format!("renaming {partial} to {path}: {e}")
        })
    }
}

/// An exchange under an `s3://bucket/prefix/` (the Lambda backend's), written with the worker's
/// S3 client from the blocking thread a task runs on.
#[derive(Debug, Clone)]
pub struct S3Exchange {
    client: aws_sdk_s3::Client,
    root: String,
    runtime: tokio::runtime::Handle,
}

impl S3Exchange {
    /// An exchange under `root` (`s3://bucket/prefix/`), whose writes run on `runtime`.
    pub fn new(client: aws_sdk_s3::Client, root: impl Into<String>, runtime: tokio::runtime::Handle) -> Self {
        let root = root.into();
        let root = if root.ends_with('/') { root } else { format!("{root}/") };
        S3Exchange { client, root, runtime }
    }
}

impl ExchangeStore for S3Exchange {
    fn root(&self) -> &str {
        &self.root
    }

    fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), String> {
        let (bucket, key) = crate::s3::split_url(path).ok_or_else(|| format!("{path} is not an s3:// URL"))?;
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send();
        self.runtime
            .block_on(request)
            .map(|_| ())
            .map_err(|e| format!("writing {path}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
    }

    fn get(&self, url: &str) -> Result<bytes::Bytes, InputError> {
        self.runtime.block_on(crate::s3::get_object(&self.client, url))
    }
}

/// `Ok` when `task` may write to `exchange` through `store`: a bucket count in
/// `1..=MAX_BUCKETS`, and a prefix that is the store's root, the task's query id and one stage
/// name (`[a-z0-9_]`, at most 32 characters), each followed by `/`. Else why not.
pub fn check(task: &Task, exchange: &ExchangeWrite, store: &dyn ExchangeStore) -> Result<(), String> {
    if !(1..=MAX_BUCKETS).contains(&exchange.buckets) {
        return Err(format!("an exchange of {} buckets; 1 to {MAX_BUCKETS} are allowed", exchange.buckets));
    }
    let rest = exchange.prefix.strip_prefix(store.root()).ok_or_else(|| {
        format!("the exchange prefix {:?} is outside this worker's exchange ({})", exchange.prefix, store.root())
    })?;
    let stage = rest
        .strip_prefix(task.query_id.as_str())
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.strip_suffix('/'))
        .ok_or_else(|| format!("the exchange prefix {:?} is not <root>{}/<stage>/", exchange.prefix, task.query_id))?;
    let stage_ok = (1..=32).contains(&stage.len())
        && stage.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !stage_ok || !crate::wire::valid_query_id(&task.query_id) {
        return Err(format!("the exchange prefix {:?} names no valid query and stage", exchange.prefix));
    }
    Ok(())
}

/// A random attempt id, 16 hex digits.
pub fn attempt_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("{:016x}", hasher.finish())
}

/// Splits `batches` by their last column, [`BUCKET_COLUMN`], into `buckets` groups of batches
/// without that column, in row order.
pub fn partition(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    buckets: u32,
) -> Result<(SchemaRef, Vec<Vec<RecordBatch>>), String> {
    let last = schema.fields().len().checked_sub(1).ok_or("the task's SQL has no columns")?;
    if schema.field(last).name() != BUCKET_COLUMN {
        return Err(format!("the task's SQL does not end with the column {BUCKET_COLUMN}"));
    }
    let data_schema = Arc::new(Schema::new(schema.fields()[..last].to_vec()));
    let mut out: Vec<Vec<RecordBatch>> = vec![Vec::new(); buckets as usize];
    for batch in batches {
        let column = arrow::compute::cast(batch.column(last), &DataType::UInt32)
            .map_err(|e| format!("{BUCKET_COLUMN} is not an unsigned integer: {e}"))?;
        let column = column.as_any().downcast_ref::<UInt32Array>().ok_or("bucket column cast")?;
        if column.null_count() > 0 {
            return Err(format!("{BUCKET_COLUMN} is NULL"));
        }
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); buckets as usize];
        for (row, bucket) in column.values().iter().enumerate() {
            let slot = rows
                .get_mut(*bucket as usize)
                .ok_or_else(|| format!("{BUCKET_COLUMN} is {bucket}, outside 0..{buckets}"))?;
            slot.push(row as u32);
        }
        let data = RecordBatch::try_new(data_schema.clone(), batch.columns()[..last].to_vec())
            .map_err(|e| format!("dropping {BUCKET_COLUMN}: {e}"))?;
        for (bucket, indices) in rows.into_iter().enumerate() {
            if indices.is_empty() {
                continue;
            }
            let part = if indices.len() == data.num_rows() {
                data.clone()
            } else {
                arrow::compute::take_record_batch(&data, &UInt32Array::from(indices))
                    .map_err(|e| format!("taking bucket {bucket}'s rows: {e}"))?
            };
            out[bucket].push(part);
        }
    }
    Ok((data_schema, out))
}

/// `batches` as one Parquet file (Snappy).
pub fn encode_parquet(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, String> {
    let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties))
        .map_err(|e| format!("starting a Parquet file: {e}"))?;
    for batch in batches {
        writer.write(batch).map_err(|e| format!("writing Parquet: {e}"))?;
    }
    writer.into_inner().map_err(|e| format!("finishing a Parquet file: {e}"))
}

/// The schema of a manifest.
pub fn manifest_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("bucket", DataType::Int32, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
    ]))
}

/// One file a task wrote to the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketFile {
    pub bucket: u32,
    pub path: String,
    pub rows: u64,
}

/// Writes `task`'s rows to the exchange and returns the manifest as one batch.
pub fn write(
    task: &Task,
    exchange: &ExchangeWrite,
    store: &dyn ExchangeStore,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<RecordBatch, String> {
    check(task, exchange, store)?;
    let (data_schema, buckets) = partition(schema, batches, exchange.buckets)?;
    let attempt = attempt_id();
    let mut files = Vec::new();
    for (bucket, parts) in buckets.iter().enumerate() {
        if parts.is_empty() {
            continue;
        }
        let rows: usize = parts.iter().map(RecordBatch::num_rows).sum();
        let path = format!("{}t{}-{attempt}-b{bucket}.parquet", exchange.prefix, task.task_id);
        store.put(&path, encode_parquet(&data_schema, parts)?)?;
        files.push(BucketFile { bucket: bucket as u32, path, rows: rows as u64 });
    }
    manifest(&files)
}

/// The manifest batch of `files`.
pub fn manifest(files: &[BucketFile]) -> Result<RecordBatch, String> {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(files.iter().map(|f| f.bucket as i32))),
        Arc::new(StringArray::from_iter_values(files.iter().map(|f| f.path.as_str()))),
        Arc::new(Int64Array::from_iter_values(files.iter().map(|f| f.rows as i64))),
    ];
    RecordBatch::try_new(manifest_schema(), columns).map_err(|e| format!("building the manifest: {e}"))
}

/// The files a manifest batch names (the coordinator's side of [`manifest`]).
pub fn read_manifest(batch: &RecordBatch) -> Result<Vec<BucketFile>, String> {
    let bad = || "not an exchange manifest (bucket INTEGER, path VARCHAR, rows BIGINT)".to_string();
    if batch.num_columns() != 3 {
        return Err(bad());
    }
    let buckets = batch.column(0).as_any().downcast_ref::<Int32Array>().ok_or_else(bad)?;
    let paths = batch.column(1).as_any().downcast_ref::<StringArray>().ok_or_else(bad)?;
    let rows = batch.column(2).as_any().downcast_ref::<Int64Array>().ok_or_else(bad)?;
    (0..batch.num_rows())
        .map(|i| {
            if buckets.is_null(i) || paths.is_null(i) || rows.is_null(i) || buckets.value(i) < 0 || rows.value(i) < 0 {
                return Err(bad());
            }
            Ok(BucketFile {
                bucket: buckets.value(i) as u32,
                path: paths.value(i).to_string(),
                rows: rows.value(i) as u64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WIRE_VERSION;

    fn task(query_id: &str) -> Task {
        Task {
            version: WIRE_VERSION,
            query_id: query_id.into(),
            task_id: 7,
            label: "t".into(),
            sql: String::new(),
            files: vec![],
            time_zone: None,
            exchange: None,
            convert: None,
        }
    }

    fn rows(keys: &[i64], buckets: &[i32]) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new(BUCKET_COLUMN, DataType::Int32, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(keys.to_vec())), Arc::new(Int32Array::from(buckets.to_vec()))],
        )
        .unwrap();
        (schema, batch)
    }

    #[test]
    fn partitions_rows_by_bucket_in_order_without_the_bucket_column() {
        let (schema, batch) = rows(&[10, 11, 12, 13, 14], &[2, 0, 2, 2, 0]);
        let (data_schema, parts) = partition(&schema, &[batch], 3).unwrap();
        assert_eq!(data_schema.fields().len(), 1);
        let values = |bucket: usize| -> Vec<i64> {
            parts[bucket]
                .iter()
                .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
                .collect()
        };
        assert_eq!(values(0), vec![11, 14]);
        assert!(parts[1].is_empty());
        assert_eq!(values(2), vec![10, 12, 13]);
    }

    #[test]
    fn refuses_buckets_out_of_range_and_sql_without_the_bucket_column() {
        let (schema, batch) = rows(&[1], &[3]);
        assert!(partition(&schema, &[batch], 3).unwrap_err().contains("outside 0..3"));
        let plain = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        assert!(partition(&plain, &[], 3).unwrap_err().contains(BUCKET_COLUMN));
    }

    #[test]
    fn writes_only_under_the_query_and_stage_of_the_task() {
        let store = LocalExchange::new("/tmp/x");
        let t = task("q-1");
        let at = |prefix: &str, buckets: u32| check(&t, &ExchangeWrite { prefix: prefix.into(), buckets }, &store);
        assert!(at("/tmp/x/q-1/s1/", 4).is_ok());
        for bad in [
            "/tmp/y/q-1/s1/",
            "/tmp/x/q-2/s1/",
            "/tmp/x/q-1/s1",
            "/tmp/x/q-1/../s1/",
            "/tmp/x/q-1/a/b/",
            "/tmp/x/q-1//",
        ] {
            assert!(at(bad, 4).is_err(), "{bad}");
        }
        assert!(at("/tmp/x/q-1/s1/", 0).is_err());
        assert!(at("/tmp/x/q-1/s1/", MAX_BUCKETS + 1).is_err());
    }

    #[test]
    fn writes_bucket_files_and_a_manifest_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalExchange::new(dir.path().to_str().unwrap());
        let t = task("q-1");
        let exchange = ExchangeWrite { prefix: format!("{}q-1/s1/", store.root()), buckets: 4 };
        let (schema, batch) = rows(&[1, 2, 3], &[3, 1, 3]);
        let manifest = write(&t, &exchange, &store, &schema, &[batch]).unwrap();
        let files = read_manifest(&manifest).unwrap();
        assert_eq!(files.iter().map(|f| (f.bucket, f.rows)).collect::<Vec<_>>(), vec![(1, 1), (3, 2)]);
        for file in &files {
            assert!(file.path.starts_with(&exchange.prefix) && file.path.contains("t7-"), "{}", file.path);
            let bytes = std::fs::read(&file.path).unwrap();
            assert_eq!(&bytes[..4], b"PAR1");
        }
        // DuckDB reads what was written.
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let sql = format!("SELECT list(k ORDER BY k) FROM read_parquet({})", crate::quote::literal(&files[1].path));
        let listed: String = conn.query_row(&format!("SELECT CAST(({sql}) AS VARCHAR)"), [], |r| r.get(0)).unwrap();
        assert_eq!(listed, "[1, 3]");
    }
}
