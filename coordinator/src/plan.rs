//! Planning one query: parse it, find the fanned-out table, list and prune its partitions, pack
//! tasks, rewrite the SQL into map and reduce, and bind both in the coordinator's DuckDB so the
//! output has exactly the names and types DuckDB gives the original query.
//!
//! Strategy order: partial aggregate, then ship rows, then a single task running the whole query
//! (when the query cannot be split exactly), or a direct run (no partitioned table). A strategy
//! whose map SQL does not bind in DuckDB falls back to the next one.

use std::fmt::Write as _;

use quack_lambda::exchange::BUCKET_COLUMN;
use quack_lambda::{ExchangeWrite, Task, WIRE_VERSION};

use crate::config::{Backend, Config, SplitPolicy};
use crate::engine::{Column, Engine};
use crate::error::{Error, Result};
use crate::exchange::{self, Shuffle};
use crate::partitions::{self, Lister, Partitions};
use crate::rewrite::scan::{collect_fan_scans, substitute_scan, TableLayout};
use crate::rewrite::{self, Context, FanScan, RewriteError, PARTIALS_TABLE};
use crate::tasks::{self, TaskSpec};
use crate::transport;

/// How the query is executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Split per partition with the given block strategy.
    Split { strategy: rewrite::Strategy, note: Option<String>, top_n_pushdown: bool },
    /// The whole query in one task over all files: it cannot be split exactly.
    Single { reason: String },
    /// No partitioned table: the query runs as is in one task.
    Direct { reason: String },
}

impl Strategy {
    pub fn describe(&self) -> String {
        match self {
            Strategy::Split { strategy, note, top_n_pushdown } => {
                let mut text = strategy.describe().to_string();
                if *top_n_pushdown {
                    text.push_str("; ORDER BY + LIMIT pushed into the map (top-N per task)");
                }
                if let Some(note) = note {
                    let _ = write!(text, "; partial aggregates not used: {note}");
                }
                text
            }
            Strategy::Single { reason } => format!("single task over all files: {reason}"),
            Strategy::Direct { reason } => {
                format!("direct (one task runs the query as written): {reason}")
            }
        }
    }
}

/// What the planner found about the fanned-out table.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub scan: FanScan,
    /// Partition columns with the types DuckDB infers for them.
    pub partition_columns: Vec<(String, String)>,
    pub partitions: Partitions,
    /// Indices of the partitions that survive pruning.
    pub kept: Vec<usize>,
    /// The pruning predicate, when the WHERE clause has one on partition columns.
    pub predicate: Option<String>,
    /// Why pruning was not applied, when it failed.
    pub pruning_note: Option<String>,
    pub target_task_bytes: u64,
}

/// A planned query, ready to fan out.
#[derive(Debug, Clone)]
pub struct Plan {
    pub query_id: String,
    pub sql: String,
    pub strategy: Strategy,
    pub scan: Option<ScanPlan>,
    pub specs: Vec<TaskSpec>,
    pub tasks: Vec<Task>,
    /// Columns of every partial (the map's output).
    pub partial_columns: Vec<Column>,
    /// Reduce SQL over [`PARTIALS_TABLE`] (before the final rename and casts).
    pub reduce_sql: String,
    /// Names and types of the answer, as DuckDB gives them for the original query.
    pub output_columns: Vec<Column>,
    /// The SQL that produces the answer from [`PARTIALS_TABLE`].
    pub final_sql: String,
    /// The second stage, when the map's rows are shuffled through the exchange
    /// (`partial_columns`, `reduce_sql` and `final_sql` are then those of the final reduce
    /// over stage 2's rows).
    pub shuffle: Option<Shuffle>,
    /// Why `--buckets` did not give this plan a second stage, when it did not.
    pub shuffle_note: Option<String>,
}

/// Plans queries against one engine and lister.
pub struct Planner<'a> {
    pub engine: &'a Engine,
    pub lister: &'a dyn Lister,
    pub config: &'a Config,
}

impl Planner<'_> {
    /// Plans `sql` under query id `query_id`.
    pub fn plan(&self, query_id: &str, sql: &str) -> Result<Plan> {
        let sql = sql.trim().trim_end_matches(';').trim_end();
        if sql.is_empty() {
            return Err(Error::Unsupported { reason: "the query is empty".into() });
        }
        let statements = match rewrite::parse(sql) {
            Ok(statements) => statements,
            Err(parse_error) => {
                if let Some(error) = self.engine.syntax_error(sql) {
                    return Err(error);
                }
                let output_columns = self.describe_original(sql)?;
                let reason = format!("the planner's SQL parser does not understand this query ({parse_error})");
                return Ok(self.whole_query(query_id, sql, Strategy::Direct { reason }, vec![], output_columns));
            }
        };
        let query = rewrite::single_query(statements).map_err(|e| Error::Unsupported { reason: e.to_string() })?;
        let output_columns = self.describe_original(sql)?;

        let scans = collect_fan_scans(&mut query.clone(), false);
        if scans.is_empty() {
            let reason = "the query reads no read_parquet(..., hive_partitioning = true) table".to_string();
            return Ok(self.whole_query(query_id, sql, Strategy::Direct { reason }, vec![], output_columns));
        }
        let mut all_files = Vec::new();
        for scan in &scans {
            all_files.extend(partitions::discover(self.lister, &scan.paths)?);
        }
        if scans.len() > 1 {
            let reason = format!("the query reads {} hive-partitioned tables; only one can be split", scans.len());
            return Ok(self.whole_query(query_id, sql, Strategy::Single { reason }, all_files, output_columns));
        }
        if let Some(reason) = self.partitioned_aggregate_with_filter(&query, sql) {
            return Ok(self.whole_query(query_id, sql, Strategy::Single { reason }, all_files, output_columns));
        }
        let scan = scans.into_iter().next().expect("one scan");
        let parts = Partitions::from_files(&all_files);
        let scan_columns = self
            .engine
            .describe(&format!("SELECT * FROM {}", scan.original()))
            .map_err(|message| Error::Bind { message })?;
        let partition_columns: Vec<(String, String)> = parts
            .columns
            .iter()
            .map(|c| {
                let ty =
                    scan_columns.iter().find(|col| col.name.eq_ignore_ascii_case(c)).map(|col| col.data_type.clone());
                (c.clone(), ty.unwrap_or_else(|| "VARCHAR".into()))
            })
            .collect();
        let layout = TableLayout {
            hive_types: partition_columns.clone(),
            first_file: all_files[0].path.clone(),
            columns: scan_columns.iter().map(|c| (c.name.clone(), c.data_type.clone())).collect(),
        };
        let one_file = [layout.first_file.clone()];
        let binder = |query: &sqlparser::ast::Query| {
            let sql = substitute_scan(query, &scan, &one_file, &layout).to_string();
            self.engine.describe(&sql).map(|columns| columns.into_iter().map(|c| c.name).collect())
        };
        let ctx = Context {
            aggregates: self.engine.aggregates()?.clone(),
            scan_columns: scan_columns.iter().map(|c| c.name.to_ascii_lowercase()).collect(),
            binder: Some(&binder),
        };

        // Rewrite, falling back while the map does not bind.
        let mut allow_partial_aggregate = true;
        let mut one_file_tasks_fail = false;
        let mut fallback_note = None;
        let (rewritten, partial_columns) = loop {
            let rewritten = match rewrite::rewrite(&query, &ctx, allow_partial_aggregate) {
                Ok(rewritten) => rewritten,
                Err(RewriteError::Unsplittable { reason }) | Err(RewriteError::Unsupported { reason }) => {
                    return Ok(self.whole_query(query_id, sql, Strategy::Single { reason }, all_files, output_columns));
                }
                Err(other) => return Err(Error::Unsupported { reason: other.to_string() }),
            };
            let ships_rows = rewritten.strategy == rewrite::Strategy::ShipRows || rewritten.distinct_keys;
            if ships_rows && self.one_query_is_cheaper() {
                let what = if rewritten.distinct_keys {
                    "a row per distinct value of a DISTINCT aggregate"
                } else {
                    "the rows of a block that partial states cannot merge"
                };
                let mut reason = format!(
                    "in process, one DuckDB query over all files with all cores is cheaper than shipping {what} \
                     to one reduce (--split always splits it)"
                );
                if let Some(note) = &fallback_note {
                    let _ = write!(reason, "; partial aggregates not used: {note}");
                }
                return Ok(self.whole_query(query_id, sql, Strategy::Single { reason }, all_files, output_columns));
            }
            let probe = substitute_scan(&rewritten.map, &scan, &one_file, &layout).to_string();
            let bound = self.engine.describe(&probe).and_then(|columns| {
                self.engine.check_reduce(&columns, &final_sql(&rewritten.reduce_sql, &output_columns)).map(|_| columns)
            });
            // DuckDB's optimizer has failed internally on a one-file scan that it plans fine
            // over many files (1.5.5: min/max of a hive column from statistics). A map that
            // cannot be planned over one file is not split.
            // When it plans over two files, every task gets at least two.
            let bound = bound.and_then(|columns| match self.engine.optimize(&probe) {
                Err(message) if quack_lambda::runner::exception_class(&message) == Some("INTERNAL") => {
                    let two = all_files.iter().take(2).map(|f| f.path.clone()).collect::<Vec<_>>();
                    let probe_two = substitute_scan(&rewritten.map, &scan, &two, &layout).to_string();
                    if two.len() == 2 && self.engine.optimize(&probe_two).is_ok() {
                        one_file_tasks_fail = true;
                        Ok(columns)
                    } else {
                        Err(format!("DuckDB fails internally planning the map: {}", first_line(&message)))
                    }
                }
                _ => Ok(columns),
            });
            match bound {
                Ok(columns) => break (rewritten, columns),
                Err(message)
                    if allow_partial_aggregate && rewritten.strategy == rewrite::Strategy::PartialAggregate =>
                {
                    tracing::debug!(%message, "partial-aggregate split does not bind; shipping rows");
                    fallback_note = Some(format!("its SQL does not bind ({})", first_line(&message)));
                    allow_partial_aggregate = false;
                }
                Err(message) => {
                    let reason = format!("the split SQL does not bind ({})", first_line(&message));
                    return Ok(self.whole_query(query_id, sql, Strategy::Single { reason }, all_files, output_columns));
                }
            }
        };

        // Prune.
        let mut placeholder_query = query.clone();
        collect_fan_scans(&mut placeholder_query, true);
        let predicate = rewrite::filter::partition_predicate(&placeholder_query, &parts.columns, scan.alias.as_deref());
        let (kept, pruning_note) = match &predicate {
            Some(predicate) => match parts.prune(self.engine, &partition_columns, predicate) {
                Ok(kept) => (kept, None),
                Err(message) => ((0..parts.partitions.len()).collect(), Some(first_line(&message).to_string())),
            },
            None => ((0..parts.partitions.len()).collect(), None),
        };
        let kept_parts: Vec<&partitions::Partition> = kept.iter().map(|&i| &parts.partitions[i]).collect();
        let cost = tasks::FileCost { open_bytes: self.config.file_open_bytes };
        let total: u64 = kept_parts.iter().map(|p| cost.of_files(&p.files)).fold(0, u64::saturating_add);
        let target = self.config.target_task_bytes.unwrap_or_else(|| {
            tasks::target_bytes(
                total,
                self.config.concurrency * self.config.tasks_per_worker,
                self.config.min_task_bytes,
                self.config.max_task_bytes,
            )
        });
        let specs = if kept.is_empty() {
            // Every partition was pruned. One task over one file still yields partials of the
            // right shape (and no rows), since the map keeps the full WHERE clause.
            let files = all_files.iter().take(if one_file_tasks_fail { 2 } else { 1 }).cloned().collect();
            vec![TaskSpec { label: "all partitions pruned: the empty result".into(), files, partitions: 0 }]
        } else if one_file_tasks_fail {
            tasks::at_least_two_files(tasks::pack(&kept_parts, target, cost))
        } else {
            tasks::pack(&kept_parts, target, cost)
        };
        let (shuffle, shuffle_note) = match self.config.buckets {
            None => (None, None),
            Some(_)
                if !matches!(self.config.backend, Backend::Local)
                    && !self.config.exchange_root().starts_with("s3://") =>
            {
                (
                    None,
                    Some(
                        "a second stage through Lambda needs an S3 exchange: --exchange s3://bucket/prefix/, the \
                     workers' QUACK_EXCHANGE_PREFIX"
                            .to_string(),
                    ),
                )
            }
            Some(_) if matches!(self.config.backend, Backend::Local) && self.config.exchange_root().contains("://") => {
                (None, Some("in process, the exchange is a local directory, not a URL (--exchange)".to_string()))
            }
            Some(buckets) => {
                let probe = |map: &sqlparser::ast::Query| substitute_scan(map, &scan, &one_file, &layout).to_string();
                match self.plan_shuffle(query_id, &rewritten, &partial_columns, &ctx, buckets, &output_columns, &probe)
                {
                    Ok(shuffle) => (Some(shuffle), None),
                    Err(reason) => (None, Some(reason)),
                }
            }
        };
        let (map, map_columns) = match &shuffle {
            Some((shuffle, bucketed)) => {
                let mut columns = shuffle.map_columns.clone();
                columns.push(Column { name: BUCKET_COLUMN.to_string(), data_type: "INTEGER".into() });
                (bucketed.clone(), columns)
            }
            None => (rewritten.map.clone(), partial_columns.clone()),
        };
        let exchange = shuffle
            .as_ref()
            .map(|(shuffle, _)| ExchangeWrite { prefix: shuffle.map_prefix(), buckets: shuffle.buckets });
        let tasks = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let files: Vec<String> = spec.files.iter().map(|f| f.path.clone()).collect();
                Task {
                    version: WIRE_VERSION,
                    query_id: query_id.to_string(),
                    task_id: i,
                    label: spec.label.clone(),
                    sql: transport::wrap_map(substitute_scan(&map, &scan, &files, &layout), &map_columns).to_string(),
                    files,
                    time_zone: self.engine.time_zone().map(String::from),
                    exchange: exchange.clone(),
                }
            })
            .collect();
        let shuffle = shuffle.map(|(shuffle, _)| shuffle);
        let (partial_columns, reduce_sql) = match &shuffle {
            Some(shuffle) => (shuffle.columns.clone(), shuffle.split.upper.to_string()),
            None => (partial_columns, rewritten.reduce_sql.clone()),
        };
        let note = fallback_note.or(rewritten.note.clone());
        let final_sql = final_sql(&reduce_sql, &output_columns);
        Ok(Plan {
            query_id: query_id.to_string(),
            sql: sql.to_string(),
            strategy: Strategy::Split { strategy: rewritten.strategy, note, top_n_pushdown: rewritten.top_n_pushdown },
            scan: Some(ScanPlan {
                scan,
                partition_columns,
                partitions: parts,
                kept,
                predicate,
                pruning_note,
                target_task_bytes: target,
            }),
            specs,
            tasks,
            partial_columns,
            reduce_sql,
            output_columns,
            final_sql,
            shuffle,
            shuffle_note,
        })
    }

    /// The second stage for `rewritten`'s reduce in `buckets` buckets, with the stage-1 map
    /// (the map with each row's bucket), or why there is none. Every part binds in the
    /// coordinator's DuckDB before it is used: stage 1 over one file (`probe` substitutes it),
    /// stage 2 over no rows, the final reduce over stage 2's columns.
    #[allow(clippy::too_many_arguments)]
    fn plan_shuffle(
        &self,
        query_id: &str,
        rewritten: &rewrite::Rewritten,
        partial_columns: &[Column],
        ctx: &Context,
        buckets: u32,
        output_columns: &[Column],
        probe: &dyn Fn(&sqlparser::ast::Query) -> String,
    ) -> std::result::Result<(Shuffle, sqlparser::ast::Query), String> {
        let names: Vec<String> = partial_columns.iter().map(|c| c.name.clone()).collect();
        let split = rewrite::stage::split_reduce(&rewritten.reduce, &names, ctx).map_err(|e| e.to_string())?;
        if let Some(column) = partial_columns.iter().find(|c| !transport::exchange_carries(&c.data_type)) {
            return Err(format!(
                "the map's column {} is of type {}, which the exchange does not carry yet",
                quack_lambda::quote::ident(&column.name),
                column.data_type
            ));
        }
        let bucketed = split.bucketed(rewritten.map.clone(), buckets);
        let described = self
            .engine
            .describe(&probe(&bucketed))
            .map_err(|m| format!("stage 1 does not bind ({})", first_line(&m)))?;
        if described.len() != partial_columns.len() + 1 {
            return Err(format!(
                "stage 1 gives {} columns, not the map's {} and a bucket",
                described.len(),
                partial_columns.len()
            ));
        }
        let group = split.group_over(rewrite::stage::empty_source(&exchange::typed(partial_columns)));
        let columns = self
            .engine
            .describe(&group.to_string())
            .map_err(|m| format!("stage 2 does not bind ({})", first_line(&m)))?;
        self.engine
            .check_reduce(&columns, &final_sql(&split.upper.to_string(), output_columns))
            .map_err(|m| format!("the reduce after stage 2 does not bind ({})", first_line(&m)))?;
        let root = self.config.exchange_root();
        let query_dir = format!("{root}{query_id}/");
        let shuffle = Shuffle { buckets, root, query_dir, split, map_columns: partial_columns.to_vec(), columns };
        Ok((shuffle, bucketed))
    }

    /// Why `query` must run as one DuckDB query, when DuckDB 1.5.5 plans it with its
    /// partition-aware aggregate (GROUP BY hive partition columns only) and an aggregate has a
    /// FILTER. That operator is DuckDB's own answer, and it differs from what every other
    /// aggregate gives: `max(p) FILTER (WHERE p = 2) ... GROUP BY p` is 2 in the groups where
    /// p is 3 (a FILTER that rejects a file's rows still counts the file's constant partition
    /// value; found by the fuzzer, seed 18). No split reproduces it, so one task runs the query
    /// as written over all the files, which is DuckDB's answer by definition.
    fn partitioned_aggregate_with_filter(&self, query: &sqlparser::ast::Query, sql: &str) -> Option<String> {
        struct FilteredAggregate;
        impl sqlparser::ast::Visitor for FilteredAggregate {
            type Break = ();
            fn pre_visit_expr(&mut self, expr: &sqlparser::ast::Expr) -> std::ops::ControlFlow<()> {
                match expr {
                    sqlparser::ast::Expr::Function(f) if f.filter.is_some() => std::ops::ControlFlow::Break(()),
                    _ => std::ops::ControlFlow::Continue(()),
                }
            }
        }
        if !sqlparser::ast::Visit::visit(query, &mut FilteredAggregate).is_break() {
            return None;
        }
        let physical = self.engine.physical_plan(sql).ok()?;
        physical.contains("PARTITIONED_AGGREGATE").then(|| {
            "DuckDB plans it with its partition-aware aggregate (GROUP BY partition columns), whose FILTER \
             clauses give answers no split reproduces; one DuckDB over all the files gives DuckDB's own answer"
                .to_string()
        })
    }

    /// `split`'s query as one task running it as written over all the files its table listed,
    /// exact by definition, for `reason` (a task of the split hit a DuckDB bug that the query as
    /// written does not reach). Nothing is listed or bound again: the files and the output
    /// columns are the split plan's.
    pub fn single(&self, split: &Plan, query_id: &str, reason: String) -> Plan {
        let files = split
            .scan
            .iter()
            .flat_map(|scan| scan.partitions.partitions.iter().flat_map(|p| p.files.iter().cloned()))
            .collect();
        self.whole_query(query_id, &split.sql, Strategy::Single { reason }, files, split.output_columns.clone())
    }

    /// Whether a block whose map ships rows (or a row per distinct value) runs as one query
    /// ([`SplitPolicy::Auto`] in process):
    /// the in-process workers share one DuckDB thread pool, so a split adds the reduce's pass
    /// over every shipped row and parallelizes nothing that one DuckDB query does not.
    fn one_query_is_cheaper(&self) -> bool {
        self.config.split == SplitPolicy::Auto && self.config.backend == Backend::Local && self.config.buckets.is_none()
    }

    fn describe_original(&self, sql: &str) -> Result<Vec<Column>> {
        self.engine.describe(sql).map_err(|message| Error::Bind { message })
    }

    /// A plan that runs `sql` as written in one task.
    fn whole_query(
        &self,
        query_id: &str,
        sql: &str,
        strategy: Strategy,
        files: Vec<partitions::FileEntry>,
        output_columns: Vec<Column>,
    ) -> Plan {
        let label = match &strategy {
            Strategy::Direct { .. } => "whole query".to_string(),
            _ => format!("whole query over {} files", files.len()),
        };
        let spec = TaskSpec { label: label.clone(), files, partitions: 0 };
        // Partials are stored positionally (c0, c1, ...): the answer may repeat a column name.
        let partial_columns = output_columns
            .iter()
            .enumerate()
            .map(|(i, c)| Column { name: format!("c{i}"), data_type: c.data_type.clone() })
            .collect::<Vec<_>>();
        let task = Task {
            version: WIRE_VERSION,
            query_id: query_id.to_string(),
            task_id: 0,
            label,
            sql: transport::wrap_sql(sql, &partial_columns),
            files: spec.files.iter().map(|f| f.path.clone()).collect(),
            time_zone: self.engine.time_zone().map(String::from),
            exchange: None,
        };
        let reduce_sql = format!("SELECT * FROM {PARTIALS_TABLE}");
        Plan {
            query_id: query_id.to_string(),
            sql: sql.to_string(),
            strategy,
            scan: None,
            specs: vec![spec],
            tasks: vec![task],
            partial_columns,
            final_sql: final_sql(&reduce_sql, &output_columns),
            reduce_sql,
            output_columns,
            shuffle: None,
            shuffle_note: None,
        }
    }
}

/// The reduce wrapped to give the answer DuckDB's column names and types, by position.
///
/// Text, not a tree: the types are DuckDB's own spelling from `DESCRIBE` (`ENUM('a', 'b')`,
/// `UNION(...)`, `STRUCT("A b" INTEGER)`), which only DuckDB reads back exactly; names are
/// quoted by [`quack_lambda::quote`].
fn final_sql(reduce_sql: &str, output: &[Column]) -> String {
    let inner = (0..output.len()).map(|i| format!("__c{i}")).collect::<Vec<_>>().join(", ");
    let items = output
        .iter()
        .enumerate()
        .map(|(i, c)| format!("CAST(__c{i} AS {}) AS {}", c.data_type, quack_lambda::quote::ident(&c.name)))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {items} FROM ({reduce_sql}) AS __quack_result({inner})")
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message)
}

/// `1.5 MiB`-style sizes (base 1024, one decimal).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl Plan {
    /// The human-readable plan `quack explain` prints.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "query {}", self.query_id);
        let _ = writeln!(out, "strategy: {}", self.strategy.describe());
        if let Some(scan) = &self.scan {
            let parts = &scan.partitions;
            let _ = writeln!(out, "partitioned table: {}", scan.scan.original());
            let columns = scan.partition_columns.iter().map(|(n, t)| format!("{n} {t}")).collect::<Vec<_>>().join(", ");
            let _ =
                writeln!(out, "  partition columns: {}", if columns.is_empty() { "(none)".into() } else { columns });
            let _ = writeln!(
                out,
                "  found: {} files in {} partitions, {}",
                parts.file_count(),
                parts.partitions.len(),
                human_bytes(parts.bytes())
            );
            match (&scan.predicate, &scan.pruning_note) {
                (Some(predicate), None) => {
                    let kept = scan.kept.len();
                    let _ = writeln!(
                        out,
                        "  pruning: {predicate} -> {kept} of {} partitions kept, {} pruned",
                        parts.partitions.len(),
                        parts.partitions.len() - kept
                    );
                }
                (Some(predicate), Some(note)) => {
                    let _ = writeln!(out, "  pruning: {predicate} could not be evaluated ({note}); nothing pruned");
                }
                (None, _) => {
                    let _ = writeln!(out, "  pruning: no predicate on partition columns; nothing pruned");
                }
            }
            let _ = writeln!(out, "  target task size: {}", human_bytes(scan.target_task_bytes));
        }
        let _ = writeln!(out, "tasks: {}", self.specs.len());
        for (i, spec) in self.specs.iter().enumerate() {
            let _ =
                writeln!(out, "  task {i}: {} ({} files, {})", spec.label, spec.files.len(), human_bytes(spec.bytes()));
        }
        if let Some(task) = self.tasks.first() {
            let _ = writeln!(out, "map SQL (task 0):\n  {}", task.sql);
        }
        if let Some(shuffle) = &self.shuffle {
            let keys = shuffle.split.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
            let _ = writeln!(
                out,
                "stage 1: the {} map tasks write their rows to the exchange ({}), in {} buckets by hash({keys})",
                self.tasks.len(),
                shuffle.map_prefix(),
                shuffle.buckets
            );
            let _ = writeln!(
                out,
                "stage 2: one task per bucket with rows computes its groups whole; SQL over a bucket's files:\n  {}",
                shuffle.group_sql(&["<bucket files>".to_string()])
            );
        } else if let Some(note) = &self.shuffle_note {
            let _ = writeln!(out, "second stage not used: {note}");
        }
        let partials =
            self.partial_columns.iter().map(|c| format!("{} {}", c.name, c.data_type)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(out, "partial columns: {partials}");
        let _ = writeln!(out, "reduce SQL:\n  {}", self.reduce_sql);
        let output =
            self.output_columns.iter().map(|c| format!("{} {}", c.name, c.data_type)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(out, "output columns: {output}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanizes_sizes_in_base_1024() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn final_sql_renames_and_casts_by_position() {
        let columns = vec![
            Column { name: "count_star()".into(), data_type: "BIGINT".into() },
            Column { name: "a\"b".into(), data_type: "DOUBLE".into() },
        ];
        assert_eq!(
            final_sql("SELECT 1, 2", &columns),
            "SELECT CAST(__c0 AS BIGINT) AS \"count_star()\", CAST(__c1 AS DOUBLE) AS \"a\"\"b\" \
             FROM (SELECT 1, 2) AS __quack_result(__c0, __c1)"
        );
    }
}
