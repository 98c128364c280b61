//! The reduce: loads the partial results (Arrow) into the coordinator's DuckDB as the table
//! [`PARTIALS_TABLE`] with the map's exact column types, in task order, for the final SQL to read.

use duckdb::Connection;
use quack_lambda::{ipc, PartialData, PartialResult};

use crate::engine::Column;
use crate::error::{Error, Result};
use crate::rewrite::PARTIALS_TABLE;
use crate::transport;
use quack_lambda::quote::ident as quote_ident;

/// The table the partials are loaded into when some column travels as another type
/// ([`transport`]); [`PARTIALS_TABLE`] is then a view that casts it back.
const CARRIED_TABLE: &str = "__quack_partials_carried__";

/// Creates an empty [`PARTIALS_TABLE`] with `columns`: a table, or a view over
/// [`CARRIED_TABLE`] when some column travels as another type.
pub fn create_partials(conn: &Connection, columns: &[Column]) -> Result<()> {
    let definition = |columns: &[Column]| {
        columns.iter().map(|c| format!("{} {}", quote_ident(&c.name), c.data_type)).collect::<Vec<_>>().join(", ")
    };
    let sql = if transport::needs_carriers(columns) {
        let casts = columns
            .iter()
            .map(|c| format!("CAST({name} AS {}) AS {name}", c.data_type, name = quote_ident(&c.name)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "CREATE OR REPLACE TABLE {CARRIED_TABLE} ({}); \
             CREATE OR REPLACE TEMP VIEW {PARTIALS_TABLE} AS SELECT {casts} FROM {CARRIED_TABLE}",
            definition(&transport::carried(columns))
        )
    } else {
        format!("CREATE OR REPLACE TABLE {PARTIALS_TABLE} ({})", definition(columns))
    };
    conn.execute_batch(&sql).map_err(|e| Error::Reduce { message: format!("creating the partials table: {e}") })
}

/// Creates [`PARTIALS_TABLE`] with `columns` and appends every partial's rows, in order.
pub fn load_partials(conn: &Connection, columns: &[Column], partials: &[PartialResult]) -> Result<u64> {
    let reduce_error = |message: String| Error::Reduce { message };
    create_partials(conn, columns)?;
    let target = if transport::needs_carriers(columns) { CARRIED_TABLE } else { PARTIALS_TABLE };
    let mut appender = conn.appender(target).map_err(|e| reduce_error(e.to_string()))?;
    let mut rows = 0u64;
    for partial in partials {
        let bytes = match &partial.data {
            PartialData::Inline { arrow_ipc } => arrow_ipc,
            PartialData::Spilled { url } => {
                return Err(reduce_error(format!(
                    "task {} spilled its result to {url}, and this coordinator has no object store to read it",
                    partial.task_id
                )))
            }
        };
        let (_, batches) = ipc::decode(bytes)
            .map_err(|e| reduce_error(format!("task {}: undecodable Arrow partial: {e}", partial.task_id)))?;
        for batch in batches {
            rows += batch.num_rows() as u64;
            appender
                .append_record_batch(batch)
                .map_err(|e| reduce_error(format!("task {}: loading its partial: {e}", partial.task_id)))?;
        }
    }
    appender.flush().map_err(|e| reduce_error(e.to_string()))?;
    Ok(rows)
}

/// Drops the partials table (and view).
pub fn drop_partials(conn: &Connection) {
    let _ = conn.execute_batch(&format!("DROP VIEW IF EXISTS {PARTIALS_TABLE}"));
    let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {PARTIALS_TABLE}"));
    let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {CARRIED_TABLE}"));
}
