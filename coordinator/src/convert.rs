//! The conversion stage: input files DuckDB has no reader for (S3 Inventory's ORC reports) are
//! converted into Parquet by the workers, one task per file, before the query that reads them
//! is planned ([`quack_lambda::convert`] is the worker's side).
//!
//! Contract: [`Quack::convert`] answers one Parquet file per input file, in the input order,
//! under `<exchange root><query_id>/orc/` (a local directory in process, the S3 exchange
//! through Lambda), with the same rows and columns. They live until [`Converted::finish`] (or
//! the value is dropped), which deletes them; a failed conversion leaves nothing behind. Only
//! the winning attempt's file of each task is named, as for any stage.

use std::sync::Arc;

use quack_lambda::wire::Convert;
use quack_lambda::{ExchangeWrite, Task, WIRE_VERSION};

use crate::error::{Error, Result};
use crate::exchange::{manifest_files, ExchangeCleanup};
use crate::invoke::{Progress, QueryRun};
use crate::{new_query_id, Quack};

/// Parquet copies of a query's input files, deleted by [`Converted::finish`] or on drop.
#[derive(Debug)]
pub struct Converted {
    /// The copy of each input file, in the input order.
    pub files: Vec<String>,
    cleanup: ExchangeCleanup,
}

impl Converted {
    /// Deletes the copies.
    pub async fn finish(self) {
        self.cleanup.finish().await;
    }
}

impl Quack {
    /// Converts `files` (in `format`) into Parquet files in the exchange, one task per file.
    pub async fn convert(
        &self,
        files: &[String],
        format: Convert,
        on_progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Converted> {
        if let Some(reason) = self.planner().exchange_unavailable() {
            return Err(Error::Config { message: format!("converting {format:?} files needs an exchange: {reason}") });
        }
        let query_id = new_query_id();
        let root = self.config.exchange_root();
        let prefix = format!("{root}{query_id}/orc/");
        let cleanup = self.query_exchange_cleanup(&root, &query_id);
        let tasks: Vec<Task> = files
            .iter()
            .enumerate()
            .map(|(task_id, file)| Task {
                version: WIRE_VERSION,
                query_id: query_id.clone(),
                task_id,
                label: format!("convert {}", file.rsplit('/').next().unwrap_or(file)),
                sql: String::new(),
                files: vec![file.clone()],
                time_zone: None,
                exchange: Some(ExchangeWrite { prefix: prefix.clone(), buckets: 1 }),
                convert: Some(format),
            })
            .collect();
        let run = Arc::new(QueryRun::with_gather_limit(self.config.max_gather_bytes));
        let partials = self.invoke_tasks(&query_id, "convert", tasks, run, on_progress).await?;
        let mut converted = Vec::with_capacity(files.len());
        for (partial, file) in partials.iter().zip(files) {
            match manifest_files(partial, &prefix, 1)?.as_slice() {
                [one] => converted.push(one.path.clone()),
                other => {
                    return Err(Error::Reduce {
                        message: format!("converting {file} gave {} files, not one", other.len()),
                    })
                }
            }
        }
        Ok(Converted { files: converted, cleanup })
    }
}
