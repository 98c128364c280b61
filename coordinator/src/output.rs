//! Writing the answer: CSV, JSON and Parquet through DuckDB's own COPY (so values are formatted
//! exactly as DuckDB formats them), and a text table through Arrow's pretty printer. Standard
//! output is written as a stream (never reopened or truncated), so `>>` appends and text an
//! enclosing shell group wrote first is kept.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use arrow::record_batch::RecordBatch;
use duckdb::Connection;

use crate::error::{Error, Result};
use quack_lambda::quote::literal as quote_literal;

/// Output format of a query's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "parquet" => Ok(Format::Parquet),
            other => Err(format!("unknown format `{other}` (expected table, csv, json or parquet)")),
        }
    }
}

/// Where the answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

impl Destination {
    fn describe(&self) -> String {
        match self {
            Destination::Stdout => "stdout".into(),
            Destination::File(path) => path.display().to_string(),
        }
    }
}

/// Runs `sql` on `conn` and writes its answer; returns the number of rows written. A text
/// table is formatted in memory: with `hold_limit`, an answer of more bytes (as Arrow) stops
/// with [`Error::GatherLimit`] instead. DuckDB's errors are [`Error::Reduce`]; writing's are
/// [`Error::Output`].
pub fn write(
    conn: &Connection,
    sql: &str,
    format: Format,
    destination: &Destination,
    hold_limit: Option<u64>,
) -> Result<u64> {
    let output_error = |message: String| Error::Output { destination: destination.describe(), message };
    let options = match format {
        Format::Csv => "FORMAT csv, HEADER",
        Format::Json => "FORMAT json, ARRAY true",
        Format::Parquet => "FORMAT parquet",
        Format::Table => {
            let batches = query_batches(conn, sql, hold_limit)?;
            let text = arrow::util::pretty::pretty_format_batches(&batches).map_err(|e| output_error(e.to_string()))?;
            let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
            let mut sink: Box<dyn Write> = match destination {
                Destination::Stdout => Box::new(std::io::stdout().lock()),
                Destination::File(path) => {
                    Box::new(std::fs::File::create(path).map_err(|e| output_error(e.to_string()))?)
                }
            };
            writeln!(sink, "{text}").and_then(|_| sink.flush()).map_err(|e| output_error(e.to_string()))?;
            return Ok(rows);
        }
    };
    let copy = |target: &std::path::Path| {
        let copy = format!("COPY ({sql}) TO {} ({options})", quote_literal(&target.display().to_string()));
        conn.execute(&copy, []).map(|rows| rows as u64).map_err(|e| Error::Reduce { message: e.to_string() })
    };
    match destination {
        Destination::File(path) => copy(path),
        Destination::Stdout => {
            // DuckDB's COPY opens its target with truncation, which would empty a file the shell
            // opened for appending (`>>`) or lose what an enclosing `(echo; quack ...) >` wrote
            // first. So COPY writes a private file, streamed to our stdout as written bytes.
            let dir = tempfile::tempdir().map_err(|e| output_error(format!("creating a temporary directory: {e}")))?;
            let staged = dir.path().join("answer");
            let rows = copy(&staged)?;
            let mut file = std::fs::File::open(&staged).map_err(|e| output_error(e.to_string()))?;
            let mut stdout = std::io::stdout().lock();
            match std::io::copy(&mut file, &mut stdout).and_then(|_| stdout.flush()) {
                Ok(()) => Ok(rows),
                // The reader went away (`quack query ... | head`): nothing more to deliver.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(rows),
                Err(e) => Err(output_error(e.to_string())),
            }
        }
    }
}

/// Runs `sql` on `conn` and returns its answer as Arrow batches; with `hold_limit`, an answer
/// of more bytes stops with [`Error::GatherLimit`] as soon as it passes it.
pub fn query_batches(conn: &Connection, sql: &str, hold_limit: Option<u64>) -> Result<Vec<RecordBatch>> {
    let mut stmt = conn.prepare(sql).map_err(|e| Error::Reduce { message: e.to_string() })?;
    let arrow = stmt.query_arrow([]).map_err(|e| Error::Reduce { message: e.to_string() })?;
    let Some(limit) = hold_limit else { return Ok(arrow.collect()) };
    let mut held = 0u64;
    let mut batches = Vec::new();
    for batch in arrow {
        held = held.saturating_add(batch.get_array_memory_size() as u64);
        if held > limit {
            return Err(Error::GatherLimit { limit, gathered: held, done: 0, total: 1 });
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// Rows of `batches` as JSON values: integers and floats as numbers, booleans as booleans,
/// NULL as null, everything else as Arrow prints it (dates, timestamps, decimals, strings).
pub fn json_rows(batches: &[RecordBatch]) -> Vec<Vec<serde_json::Value>> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            rows.push(batch.columns().iter().map(|column| json_value(column.as_ref(), row)).collect());
        }
    }
    rows
}

/// One cell of an Arrow array as JSON (see [`json_rows`]).
pub fn json_value(array: &dyn arrow::array::Array, row: usize) -> serde_json::Value {
    use arrow::datatypes::DataType;
    if array.is_null(row) {
        return serde_json::Value::Null;
    }
    let text = arrow::util::display::array_value_to_string(array, row).unwrap_or_default();
    match array.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => text.parse::<i64>().map(Into::into).unwrap_or(serde_json::Value::String(text)),
        DataType::Float32 | DataType::Float64 => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::String(text)),
        DataType::Boolean => serde_json::Value::Bool(text == "true"),
        _ => serde_json::Value::String(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats() {
        assert_eq!("CSV".parse::<Format>(), Ok(Format::Csv));
        assert!("xml".parse::<Format>().unwrap_err().contains("expected table, csv, json or parquet"));
    }

    #[test]
    fn writes_csv_like_duckdb() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let conn = Connection::open_in_memory().unwrap();
        let rows = write(
            &conn,
            "SELECT 1.50::DECIMAL(4,2) AS x, DATE '2024-03-01' AS d",
            Format::Csv,
            &Destination::File(path.clone()),
            None,
        )
        .unwrap();
        assert_eq!(rows, 1);
        assert_eq!(std::fs::read_to_string(path).unwrap(), "x,d\n1.50,2024-03-01\n");
    }
}
