//! Converting a task's input files that DuckDB has no reader for into Parquet in the exchange.
//! S3 Inventory writes its reports as Parquet, CSV or ORC; DuckDB reads the first two, and a
//! conversion stage turns ORC data files into Parquet files that the next stage reads.
//!
//! Contract: a conversion task ([`Task::convert`]) has empty SQL, at least one file, and an
//! exchange of one bucket ([`crate::exchange::check`] applies). Its files' rows, read with
//! [orc-rust](https://docs.rs/orc-rust) (timestamps at microsecond precision, as DuckDB's
//! `TIMESTAMP`), become one Parquet file `<prefix>t<task_id>-<attempt>-b0.parquet`, in file
//! order, written whole even when it has no rows (the next stage still learns the columns). The
//! answer is the exchange manifest of that one file. Files of different schemas are refused.
//! A file that is not ORC, or is truncated, is a [`ErrorType::CorruptFile`] naming it.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use orc_rust::arrow_reader::ArrowReaderBuilder;
use orc_rust::reader::ChunkReader;
use orc_rust::schema::TimestampPrecision;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::exchange::{self, attempt_id, BucketFile, ExchangeStore};
use crate::wire::{Convert, ErrorType, Task, TaskFailure};

/// Runs conversion task `task` ([`Task::convert`] set) through `store`: answers the manifest
/// batch and the number of rows converted.
pub fn run(task: &Task, store: &dyn ExchangeStore) -> Result<(RecordBatch, u64), TaskFailure> {
    let refuse = |message: String| TaskFailure::new(task, ErrorType::BadEvent, message);
    let Some(Convert::Orc) = task.convert else { return Err(refuse("not a conversion task".into())) };
    let Some(exchange) = &task.exchange else {
        return Err(refuse("a conversion task writes to the exchange, but names none".into()));
    };
    if exchange.buckets != 1 {
        return Err(refuse(format!("a conversion task writes one bucket, not {}", exchange.buckets)));
    }
    if !task.sql.is_empty() {
        return Err(refuse("a conversion task runs no SQL, but this one has some".into()));
    }
    if task.files.is_empty() {
        return Err(refuse("a conversion task names no files".into()));
    }
    exchange::check(task, exchange, store).map_err(|message| TaskFailure::new(task, ErrorType::Forbidden, message))?;

    let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer: Option<(SchemaRef, ArrowWriter<Vec<u8>>)> = None;
    let mut rows = 0u64;
    for file in &task.files {
        let corrupt = |message: String| {
            TaskFailure::new(task, ErrorType::CorruptFile, format!("reading the ORC file {file}: {message}"))
        };
        let batches: Box<dyn Iterator<Item = Result<RecordBatch, String>>> = if crate::s3::split_url(file).is_some() {
            let bytes = store.get(file).map_err(|e| TaskFailure::new(task, e.error_type, e.message))?;
            read_orc(bytes).map_err(corrupt)?
        } else {
            let opened = std::fs::File::open(file).map_err(|e| {
                let kind =
                    if e.kind() == std::io::ErrorKind::NotFound { ErrorType::MissingFile } else { ErrorType::Internal };
                TaskFailure::new(task, kind, format!("opening {file}: {e}"))
            })?;
            read_orc(opened).map_err(corrupt)?
        };
        for batch in batches {
            let batch = batch.map_err(corrupt)?;
            let (schema, writer) = match &mut writer {
                Some((schema, writer)) => (schema.clone(), writer),
                None => {
                    let schema = batch.schema();
                    let started = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties.clone()))
                        .map_err(|e| internal(task, format!("starting a Parquet file: {e}")))?;
                    let (_, writer) = writer.insert((schema.clone(), started));
                    (schema, writer)
                }
            };
            if batch.schema().fields() != schema.fields() {
                return Err(corrupt(format!(
                    "its columns ({}) differ from the task's first file's ({})",
                    field_list(&batch.schema()),
                    field_list(&schema)
                )));
            }
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(|e| internal(task, format!("writing Parquet: {e}")))?;
        }
    }
    let Some((_, writer)) = writer else {
        return Err(TaskFailure::new(
            task,
            ErrorType::CorruptFile,
            "the ORC files have no stripes to read columns from",
        ));
    };
    let bytes = writer.into_inner().map_err(|e| internal(task, format!("finishing a Parquet file: {e}")))?;
    let path = format!("{}t{}-{}-b0.parquet", exchange.prefix, task.task_id, attempt_id());
    store.put(&path, bytes).map_err(|message| internal(task, message))?;
    let manifest = exchange::manifest(&[BucketFile { bucket: 0, path, rows }]).map_err(|m| internal(task, m))?;
    Ok((manifest, rows))
}

fn internal(task: &Task, message: String) -> TaskFailure {
    TaskFailure::new(task, ErrorType::Internal, message)
}

fn field_list(schema: &SchemaRef) -> String {
    schema.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect::<Vec<_>>().join(", ")
}

/// The record batches of the ORC file `reader` reads.
fn read_orc<R: ChunkReader + 'static>(
    reader: R,
) -> Result<Box<dyn Iterator<Item = Result<RecordBatch, String>>>, String> {
    let reader = ArrowReaderBuilder::try_new(reader)
        .map_err(|e| e.to_string())?
        .with_timestamp_precision(TimestampPrecision::Microsecond)
        .build();
    Ok(Box::new(reader.map(|batch| batch.map_err(|e| e.to_string()))))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::exchange::{read_manifest, LocalExchange};
    use crate::wire::{ExchangeWrite, WIRE_VERSION};

    /// An ORC file at `path` with `rows` of (key, size).
    fn orc_file(path: &std::path::Path, rows: &[(&str, i64)]) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("size", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap();
        let file = std::fs::File::create(path).unwrap();
        let mut writer = orc_rust::arrow_writer::ArrowWriterBuilder::new(file, schema).try_build().unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn task(root: &str, files: &[&std::path::Path]) -> Task {
        Task {
            version: WIRE_VERSION,
            query_id: "q-orc".into(),
            task_id: 2,
            label: "convert".into(),
            sql: String::new(),
            files: files.iter().map(|f| f.display().to_string()).collect(),
            time_zone: None,
            exchange: Some(ExchangeWrite { prefix: format!("{root}q-orc/orc/"), buckets: 1 }),
            convert: Some(Convert::Orc),
        }
    }

    #[test]
    fn orc_files_become_one_parquet_file_with_their_rows_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.orc"), dir.path().join("b.orc"));
        orc_file(&a, &[("x/1", 10), ("ü b", 20), ("x/3", 30)]);
        orc_file(&b, &[("y", 5), ("z", 0)]);
        let root = format!("{}/exchange/", dir.path().display());
        let store = LocalExchange::new(root.clone());
        let (manifest, rows) = run(&task(&root, &[&a, &b]), &store).unwrap();
        assert_eq!(rows, 5);
        let files = read_manifest(&manifest).unwrap();
        let [file] = files.as_slice() else { panic!("{files:?}") };
        assert_eq!((file.bucket, file.rows), (0, 5));
        assert!(file.path.starts_with(&format!("{root}q-orc/orc/t2-")) && file.path.ends_with("-b0.parquet"));
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&file.path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let keys = batch.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let sizes = batch.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        let got: Vec<(String, i64)> = (0..keys.len()).map(|i| (keys.value(i).to_string(), sizes.value(i))).collect();
        let want = [("x/1", 10), ("ü b", 20), ("x/3", 30), ("y", 5), ("z", 0)];
        assert_eq!(got, want.map(|(k, s)| (k.to_string(), s)));
    }

    #[test]
    fn forged_or_broken_conversion_tasks_fail_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.orc");
        orc_file(&good, &[("k", 1)]);
        let garbage = dir.path().join("garbage.orc");
        std::fs::write(&garbage, b"PAR1 not an ORC file at all").unwrap();
        let other = dir.path().join("other.orc");
        {
            let schema = Arc::new(Schema::new(vec![Field::new("key", DataType::Utf8, true)]));
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from_iter_values(["k"]))]).unwrap();
            let file = std::fs::File::create(&other).unwrap();
            let mut writer = orc_rust::arrow_writer::ArrowWriterBuilder::new(file, schema).try_build().unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
        }
        let missing = dir.path().join("missing.orc");
        let root = format!("{}/exchange/", dir.path().display());
        let store = LocalExchange::new(root.clone());
        let base = task(&root, &[&good]);
        let cases: Vec<(Task, ErrorType, &str)> = vec![
            (Task { sql: "SELECT 1".into(), ..base.clone() }, ErrorType::BadEvent, "runs no SQL"),
            (
                Task {
                    exchange: Some(ExchangeWrite { prefix: format!("{root}q-orc/orc/"), buckets: 2 }),
                    ..base.clone()
                },
                ErrorType::BadEvent,
                "one bucket",
            ),
            (Task { exchange: None, ..base.clone() }, ErrorType::BadEvent, "names none"),
            (Task { files: vec![], ..base.clone() }, ErrorType::BadEvent, "names no files"),
            (
                Task {
                    exchange: Some(ExchangeWrite { prefix: "/tmp/elsewhere/q-orc/orc/".into(), buckets: 1 }),
                    ..base.clone()
                },
                ErrorType::Forbidden,
                "outside this worker's exchange",
            ),
            (task(&root, &[&missing]), ErrorType::MissingFile, "missing.orc"),
            (task(&root, &[&garbage]), ErrorType::CorruptFile, "reading the ORC file"),
            (task(&root, &[&good, &other]), ErrorType::CorruptFile, "differ from the task's first file's"),
            (
                Task { files: vec!["s3://bucket/inv/data/x.orc".into()], ..base.clone() },
                ErrorType::Forbidden,
                "reads no S3 objects itself",
            ),
        ];
        for (task, error_type, needle) in cases {
            let failure = run(&task, &store).unwrap_err();
            assert_eq!(failure.error_type, error_type, "{}", failure.message);
            assert!(failure.message.contains(needle), "{needle:?} not in {}", failure.message);
        }
    }
}
