//! The reduce: loads the partial results (Arrow) into the coordinator's DuckDB as the table
//! [`PARTIALS_TABLE`] with the map's exact column types, in task order, for the final SQL to read.

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use duckdb::{Appender, Connection};
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
    // Partials of a few rows each (one per group of a task) are gathered into batches of up to
    // a DuckDB vector before they are appended: each append builds a whole data chunk.
    let mut pending = Pending::default();
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
            pending.push(batch, partial.task_id, &mut appender)?;
        }
    }
    pending.append(&mut appender)?;
    appender.flush().map_err(|e| reduce_error(e.to_string()))?;
    Ok(rows)
}

/// Rows of one DuckDB vector at most; a larger batch is appended as it is.
const GATHERED_ROWS: usize = 2048;

/// Small batches of the same schema waiting to be appended as one, with the tasks they came
/// from (named when appending fails).
#[derive(Default)]
struct Pending {
    batches: Vec<RecordBatch>,
    rows: usize,
    tasks: Vec<usize>,
}

impl Pending {
    fn push(&mut self, batch: RecordBatch, task_id: usize, appender: &mut Appender<'_>) -> Result<()> {
        let fits = self.batches.first().is_none_or(|first| first.schema() == batch.schema())
            && self.rows + batch.num_rows() <= GATHERED_ROWS;
        if !fits {
            self.append(appender)?;
        }
        self.rows += batch.num_rows();
        self.batches.push(batch);
        if self.tasks.last() != Some(&task_id) {
            self.tasks.push(task_id);
        }
        Ok(())
    }

    /// Appends what is waiting, as one batch.
    fn append(&mut self, appender: &mut Appender<'_>) -> Result<()> {
        let tasks = std::mem::take(&mut self.tasks);
        let failed = |e: &dyn std::fmt::Display| {
            let tasks = tasks.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
            Error::Reduce { message: format!("loading the partials of tasks {tasks}: {e}") }
        };
        self.rows = 0;
        let batch = match std::mem::take(&mut self.batches).as_slice() {
            [] => return Ok(()),
            [one] => one.clone(),
            many => concat_batches(&many[0].schema(), many).map_err(|e| failed(&e))?,
        };
        appender.append_record_batch(batch).map_err(|e| failed(&e))
    }
}

/// Drops the partials table (and view).
pub fn drop_partials(conn: &Connection) {
    let _ = conn.execute_batch(&format!("DROP VIEW IF EXISTS {PARTIALS_TABLE}"));
    let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {PARTIALS_TABLE}"));
    let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {CARRIED_TABLE}"));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use quack_lambda::TaskStats;

    use super::*;

    fn partial(task_id: usize, schema: &Arc<Schema>, values: &[i64]) -> PartialResult {
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(values.to_vec())),
                Arc::new(StringArray::from(values.iter().map(|v| format!("t{task_id}-{v}")).collect::<Vec<_>>())),
            ],
        )
        .unwrap();
        PartialResult {
            version: quack_lambda::WIRE_VERSION,
            query_id: "q".into(),
            task_id,
            data: PartialData::Inline { arrow_ipc: ipc::encode(schema, &[batch]).unwrap() },
            stats: TaskStats::default(),
        }
    }

    /// Thousands of one-row partials, a large one, and one whose schema differs (a nullable
    /// flag) load in task order, every row once.
    #[test]
    fn small_partials_load_gathered_in_task_order() {
        let columns = [
            Column { name: "n".into(), data_type: "BIGINT".into() },
            Column { name: "s".into(), data_type: "VARCHAR".into() },
        ];
        let schema =
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true), Field::new("s", DataType::Utf8, true)]));
        let strict = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let mut partials: Vec<PartialResult> = (0..3000).map(|t| partial(t, &schema, &[t as i64])).collect();
        partials.push(partial(3000, &schema, &(3000..8000).collect::<Vec<_>>()));
        partials.push(partial(3001, &strict, &[8000]));
        partials.extend((3002..3010).map(|t| partial(t, &schema, &[t as i64 + 4999])));
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(load_partials(&conn, &columns, &partials).unwrap(), 8009);
        let (count, ordered): (i64, bool) = conn
            .query_row(
                &format!("SELECT count(*), bool_and(n = rowid) FROM (SELECT rowid, n FROM {PARTIALS_TABLE})"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((count, ordered), (8009, true));
    }
}
