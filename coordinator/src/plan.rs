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
use crate::exchange::{self, JoinShuffle, Shuffle};
use crate::partitions::{self, Lister, Partitions};
use crate::rewrite::scan::{collect_fan_scans, collect_fan_scans_except, substitute_scan, TableLayout};
use crate::rewrite::{self, Companion, Context, FanScan, RewriteError, PARTIALS_TABLE};
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
    /// Why no task holds files of two partitions, when none may.
    pub apart_note: Option<String>,
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
    /// The co-partitioned join, when the query joins two hive-partitioned tables through the
    /// exchange: `tasks` are then its stage 1 (both sides' rows into buckets), and its stage 2
    /// runs the map per bucket.
    pub join: Option<JoinShuffle>,
    /// The second hive-partitioned table, as written, when the query reads two: broadcast (read
    /// whole by every task) or, with `join`, co-partitioned.
    pub companion: Option<String>,
    /// Every file the query's hive-partitioned tables listed.
    pub all_files: Vec<partitions::FileEntry>,
    /// The plan's one task runs the query as written on the coordinator's own DuckDB, whose
    /// answer is written as it comes, instead of through a worker and the reduce
    /// ([`Planner::in_engine`]); `output_columns`, `partial_columns` and `final_sql` are then
    /// empty: no reduce runs.
    pub in_engine: bool,
}

/// How the hive-partitioned tables of a query are read.
#[derive(Debug, Clone)]
enum Pairing {
    /// One table, fanned out.
    Alone,
    /// Two: the `fanned`-th (fan-out occurrence) is fanned out, the `companion`-th is read whole
    /// by every task.
    Broadcast { fanned: usize, companion: usize },
    /// Two, joined directly on keys: both are hash-partitioned on them into `buckets`.
    CoPartitioned { buckets: u32, join: rewrite::join::CoPartition },
}

impl Pairing {
    fn fanned(&self) -> usize {
        match self {
            Pairing::Alone | Pairing::CoPartitioned { .. } => 0,
            Pairing::Broadcast { fanned, .. } => *fanned,
        }
    }

    fn companion(&self) -> Option<Companion> {
        match self {
            Pairing::Alone => None,
            Pairing::Broadcast { companion, .. } => Some(Companion { occurrence: *companion, co_partitioned: false }),
            Pairing::CoPartitioned { .. } => Some(Companion { occurrence: 1, co_partitioned: true }),
        }
    }
}

/// A fan-out table's partitions, its partition columns with their types, and its layout.
type SideLayout = (Partitions, Vec<(String, String)>, TableLayout);

/// One side of a co-partitioned join, as stage 1 reads it.
struct Side<'a> {
    scan: &'a FanScan,
    layout: &'a TableLayout,
    specs: Vec<TaskSpec>,
}

/// How a key of each side is hashed so that equal keys hash alike: as they are when both have
/// one type, both as HUGEINT when both are integers; other pairs are not co-partitioned.
fn hashed_key_type(left: &str, right: &str) -> std::result::Result<Option<&'static str>, String> {
    const INTEGERS: &[&str] =
        &["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"];
    // Types whose equality is their hash's: no collation, no normalization (INTERVAL's
    // '1 month' = '30 days', a float's -0.0 = 0.0 and its NaNs), no nesting.
    const HASHABLE: &[&str] = &[
        "BOOLEAN",
        "VARCHAR",
        "BLOB",
        "DATE",
        "TIME",
        "TIMESTAMP",
        "TIMESTAMP_S",
        "TIMESTAMP_MS",
        "TIMESTAMP_NS",
        "TIMESTAMP WITH TIME ZONE",
        "UUID",
        "UHUGEINT",
    ];
    let (l, r) = (left.trim().to_ascii_uppercase(), right.trim().to_ascii_uppercase());
    let integer = |t: &str| INTEGERS.contains(&t);
    let hashable = |t: &str| integer(t) || HASHABLE.contains(&t) || t.starts_with("DECIMAL(");
    if l == r && hashable(&l) {
        Ok(None)
    } else if integer(&l) && integer(&r) {
        Ok(Some("HUGEINT"))
    } else {
        Err(format!("its keys' types, {left} and {right}, do not hash alike"))
    }
}

/// `sql` without surrounding blanks and trailing semicolons: the statement planned.
fn statement_text(sql: &str) -> &str {
    sql.trim().trim_end_matches(';').trim_end()
}

/// The files listed for each fanned-out scan of a query ([`Planner::list_scans`]), by the
/// scan's paths.
#[derive(Default)]
struct Listed(Vec<(Vec<String>, Result<Vec<partitions::FileEntry>>)>);

impl Listed {
    /// The files of the scan of `paths`, or the error listing them gave (once).
    fn take(&mut self, paths: &[String]) -> Result<Vec<partitions::FileEntry>> {
        let at = self.0.iter().position(|(listed, _)| listed == paths).ok_or_else(|| Error::List {
            path: paths.join(", "),
            message: "the planner met a scan it had not listed (a planner bug)".into(),
        })?;
        match &self.0[at].1 {
            Ok(files) => Ok(files.clone()),
            Err(_) => self.0.swap_remove(at).1,
        }
    }
}

/// Plans queries against one engine and lister.
pub struct Planner<'a> {
    pub engine: &'a Engine,
    pub lister: &'a dyn Lister,
    pub config: &'a Config,
    /// A plan of one task running the query as written runs on `engine` itself, its answer
    /// written as it comes ([`Plan::in_engine`]): its output columns are not bound beforehand.
    pub in_engine: bool,
}

impl Planner<'_> {
    /// Plans `sql` under query id `query_id`. A query that would run as one DuckDB query where
    /// DuckDB's answer is not fixed ([`Planner::filters_leak`]) is refused.
    pub async fn plan(&self, query_id: &str, sql: &str) -> Result<Plan> {
        let mut listed = self.list_scans(sql).await;
        tracing::debug!(scans = listed.0.len(), "listed");
        self.checked(self.plan_any(query_id, sql, &mut listed)?)
    }

    /// Lists the files of every fanned-out scan of `sql` before it is planned (listing is I/O,
    /// planning is not): each scan's paths with what listing them answered. A listing's error
    /// is kept for the point where planning meets that scan, so errors come in the same order
    /// as if planning listed as it went.
    async fn list_scans(&self, sql: &str) -> Listed {
        let mut listed = Listed::default();
        let Ok(statements) = rewrite::parse(statement_text(sql)) else { return listed };
        let Ok(mut query) = rewrite::single_query(statements) else { return listed };
        rewrite::join::inline_scan_ctes(&mut query);
        for scan in collect_fan_scans(&mut query, false) {
            if !listed.0.iter().any(|(paths, _)| *paths == scan.paths) {
                let files = partitions::discover(self.lister, &scan.paths).await;
                listed.0.push((scan.paths, files));
            }
        }
        listed
    }

    fn plan_any(&self, query_id: &str, sql: &str, listed: &mut Listed) -> Result<Plan> {
        let sql = statement_text(sql);
        if sql.is_empty() {
            return Err(Error::Unsupported { reason: "the query is empty".into() });
        }
        let statements = match rewrite::parse(sql) {
            Ok(statements) => statements,
            Err(parse_error) => {
                if let Some(error) = self.engine.syntax_error(sql) {
                    return Err(error);
                }
                let reason = format!("the planner's SQL parser does not understand this query ({parse_error})");
                return match self.engine.select_statements(sql) {
                    Some(1) => self.whole_query_bound(query_id, sql, Strategy::Direct { reason }, vec![]),
                    Some(n) => Err(Error::Unsupported { reason: format!("quack runs one query, and this is {n}") }),
                    // Not a SELECT DuckDB can serialize: run by a worker, as bound.
                    None => {
                        let output_columns = self.describe_original(sql)?;
                        let mut plan =
                            self.whole_query(query_id, sql, Strategy::Direct { reason }, vec![], output_columns);
                        plan.in_engine = false;
                        Ok(plan)
                    }
                };
            }
        };
        let mut query = rewrite::single_query(statements).map_err(|e| Error::Unsupported { reason: e.to_string() })?;
        // A CTE that is the table, used twice, is the table read twice (a self-join).
        rewrite::join::inline_scan_ctes(&mut query);
        let scans = collect_fan_scans(&mut query.clone(), false);
        if scans.is_empty() {
            let reason = "the query reads no read_parquet(..., hive_partitioning = true) table".to_string();
            return self.whole_query_bound(query_id, sql, Strategy::Direct { reason }, vec![]);
        }
        // DuckDB's binding errors come before listing's, except for a query that may run whole
        // in the engine, which is not bound beforehand.
        let bound_first = if self.in_engine { None } else { Some(self.describe_original(sql)?) };
        let mut scan_files = Vec::new();
        for scan in &scans {
            scan_files.push(listed.take(&scan.paths)?);
        }
        let all_files: Vec<partitions::FileEntry> = scan_files.concat();
        if self.one_query_is_cheaper() {
            let partition_columns = partitions::Partitions::from_files(&all_files).columns;
            if !self.filters_leak(sql, Some(&query), &partition_columns) {
                let reason = one_query_reason();
                let output_columns = bound_first.unwrap_or_default();
                return Ok(self.whole_query(query_id, sql, Strategy::Single { reason }, all_files, output_columns));
            }
        }
        let output_columns = match bound_first {
            Some(columns) => columns,
            None => self.describe_original(sql)?,
        };
        let pairing = match scans.len() {
            1 => Pairing::Alone,
            2 => match self.pair(&query, &scans, &scan_files) {
                Ok(pairing) => pairing,
                Err(reason) => {
                    return Ok(self.whole_query(query_id, sql, Strategy::Single { reason }, all_files, output_columns))
                }
            },
            n => {
                let reason = format!("the query reads {n} hive-partitioned tables; at most two can be split together");
                return Ok(self.whole_query(query_id, sql, Strategy::Single { reason }, all_files, output_columns));
            }
        };
        let fanned = pairing.fanned();
        let companion = pairing.companion();
        let mut scans = scans;
        let companion_scan = companion.map(|c| (scans[c.occurrence].clone(), scan_files[c.occurrence].clone()));
        let scan = scans.swap_remove(fanned);
        let fan_files = scan_files.swap_remove(fanned);
        let (parts, partition_columns, layout) = self.side_layout(&scan, &fan_files)?;
        let apart_note = self.filters_leak(sql, Some(&query), &parts.columns).then(|| {
            "one partition per task: DuckDB's partition-aware aggregate carries a FILTERed aggregate's state \
             across the partitions one thread reads"
                .to_string()
        });
        let one_file = [layout.first_file.clone()];
        let binder = |query: &sqlparser::ast::Query| {
            let sql = substitute_scan(query, &scan, &one_file, &layout).to_string();
            self.engine.describe(&sql).map(|columns| columns.into_iter().map(|c| c.name).collect())
        };
        let ctx = Context {
            aggregates: self.engine.aggregates()?.clone(),
            scan_columns: layout.columns.iter().map(|(name, _)| name.to_ascii_lowercase()).collect(),
            binder: Some(&binder),
            companion,
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
                    let two = fan_files.iter().take(2).map(|f| f.path.clone()).collect::<Vec<_>>();
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
        collect_fan_scans_except(&mut placeholder_query, true, companion.map(|c| c.occurrence));
        let predicate = match &pairing {
            // Side 0 on the null-supplying side of the join: a row of the companion that loses
            // its match is NULL-extended, and a WHERE clause may keep it.
            Pairing::CoPartitioned { join, .. } if !join.keeps_side_0 => None,
            _ => rewrite::filter::partition_predicate(&placeholder_query, &parts.columns, scan.alias.as_deref()),
        };
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
        let target = self.target_task_bytes(total);
        let specs = if kept.is_empty() {
            // Every partition was pruned. One task over one file still yields partials of the
            // right shape (and no rows), since the map keeps the full WHERE clause.
            let files = fan_files.iter().take(if one_file_tasks_fail { 2 } else { 1 }).cloned().collect();
            vec![TaskSpec { label: "all partitions pruned: the empty result".into(), files, partitions: 0 }]
        } else if apart_note.is_some() {
            if one_file_tasks_fail {
                let reason = "DuckDB cannot plan the map over one file, and its partition-aware aggregate \
                              needs tasks of one partition each"
                    .to_string();
                return Ok(self.whole_query(query_id, sql, Strategy::Single { reason }, all_files, output_columns));
            }
            tasks::pack_apart(&kept_parts, target, cost)
        } else if one_file_tasks_fail {
            tasks::at_least_two_files(tasks::pack(&kept_parts, target, cost))
        } else {
            tasks::pack(&kept_parts, target, cost)
        };
        if let (Pairing::CoPartitioned { buckets, join }, Some((companion_scan, companion_files))) =
            (&pairing, &companion_scan)
        {
            let side0 = Side { scan: &scan, layout: &layout, specs };
            let companion_side = self.side_layout(companion_scan, companion_files).map(|(parts, _, layout)| {
                let cost = tasks::FileCost { open_bytes: self.config.file_open_bytes };
                (tasks::pack(&parts.partitions.iter().collect::<Vec<_>>(), target, cost), layout)
            })?;
            let side1 = Side { scan: companion_scan, layout: &companion_side.1, specs: companion_side.0 };
            let planned = self.co_partitioned(query_id, *buckets, join, [side0, side1], &rewritten, &output_columns);
            let (join, tasks, specs) = match planned {
                Ok(planned) => planned,
                Err(why) => {
                    let reason = format!("the two hive-partitioned tables cannot be co-partitioned: {why}");
                    return Ok(self.whole_query(query_id, sql, Strategy::Single { reason }, all_files, output_columns));
                }
            };
            let note = fallback_note.or(rewritten.note.clone());
            return Ok(Plan {
                query_id: query_id.to_string(),
                sql: sql.to_string(),
                strategy: Strategy::Split {
                    strategy: rewritten.strategy,
                    note,
                    top_n_pushdown: rewritten.top_n_pushdown,
                },
                scan: Some(ScanPlan {
                    scan,
                    partition_columns,
                    partitions: parts,
                    kept,
                    predicate,
                    pruning_note,
                    target_task_bytes: target,
                    apart_note,
                }),
                specs,
                tasks,
                partial_columns: join.partial_columns.clone(),
                final_sql: final_sql(&rewritten.reduce_sql, &output_columns),
                reduce_sql: rewritten.reduce_sql,
                output_columns,
                shuffle: None,
                shuffle_note: None,
                join: Some(join),
                companion: Some(companion_scan.original()),
                all_files,
                in_engine: false,
            });
        }
        let kept_bytes: u64 = specs.iter().flat_map(|spec| spec.files.iter().map(|f| f.size)).sum();
        let (shuffle, shuffle_note) = match self
            .config
            .buckets
            .or_else(|| self.automatic_buckets(&rewritten, kept_bytes))
        {
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
                // A few files spread over the kept ones, for sampling a ranged sort's key.
                let kept_files: Vec<String> =
                    specs.iter().flat_map(|spec| spec.files.iter().map(|f| f.path.clone())).collect();
                let step = kept_files.len().div_ceil(SAMPLE_FILES).max(1);
                let sample_files: Vec<String> = kept_files.iter().step_by(step).cloned().collect();
                let sample = |map: &sqlparser::ast::Query| substitute_scan(map, &scan, &sample_files, &layout);
                let probes = Probes { one_file: &probe, sample: &sample };
                match self.plan_shuffle(query_id, &rewritten, &partial_columns, &ctx, buckets, &output_columns, &probes)
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
                    convert: None,
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
                apart_note,
            }),
            specs,
            tasks,
            partial_columns,
            reduce_sql,
            output_columns,
            final_sql,
            shuffle,
            shuffle_note,
            join: None,
            companion: companion_scan.map(|(scan, _)| scan.original()),
            all_files,
            in_engine: false,
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
        probes: &Probes,
    ) -> std::result::Result<(Shuffle, sqlparser::ast::Query), String> {
        let probe = probes.one_file;
        let names: Vec<String> = partial_columns.iter().map(|c| c.name.clone()).collect();
        let mut split = rewrite::stage::split_reduce(&rewritten.reduce, &names, ctx).map_err(|e| e.to_string())?;
        if let Some(range) = &mut split.range {
            let sampled =
                rewrite::stage::key_source(&split.keys[0], split.alias.clone(), (probes.sample)(&rewritten.map));
            *range = self.range_bounds(&sampled, range.clone(), buckets)?;
        }
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

    /// `range` with DuckDB's NULL placement and `buckets - 1` bounds: the key's quantiles over
    /// `sampled` (`SELECT key AS __quack_k FROM <the map over a sample of files>`). The bounds
    /// only balance the buckets; any bounds give the exact answer.
    fn range_bounds(
        &self,
        sampled: &sqlparser::ast::Query,
        mut range: rewrite::order::Range,
        buckets: u32,
    ) -> std::result::Result<rewrite::order::Range, String> {
        let key_type = match self.engine.describe(&sampled.to_string()) {
            Ok(columns) if columns.len() == 1 => columns[0].data_type.clone(),
            Ok(_) => return Err("the sort key does not bind as one column".to_string()),
            Err(m) => return Err(format!("the sort key does not bind ({})", first_line(&m))),
        };
        if !rangeable(&key_type) {
            return Err(format!(
                "the first sort key is of type {key_type}, whose comparisons quack does not range-partition"
            ));
        }
        let nulls = self
            .engine
            .strings(&rewrite::stage::nulls_probe(&range.options).to_string())
            .map_err(|m| format!("DuckDB's NULL order could not be read ({})", first_line(&m)))?;
        range.nulls_first = nulls.first().and_then(|v| v.as_deref()) == Some("true");
        if buckets < 2 {
            range.bounds = Vec::new();
            return Ok(range);
        }
        let quantiles = rewrite::stage::quantiles_query(sampled, buckets);
        let values = self
            .engine
            .strings(&quantiles.to_string())
            .map_err(|m| format!("sampling the sort key failed ({})", first_line(&m)))?;
        let mut bounds: Vec<String> = values.into_iter().flatten().collect();
        bounds.dedup();
        range.bounds = bounds.iter().map(|text| rewrite::stage::typed_literal(text, &key_type)).collect();
        Ok(range)
    }

    /// Whether DuckDB plans `sql` with its partition-aware aggregate (GROUP BY hive partition
    /// columns only) and an aggregate has a FILTER and arguments constant within a partition
    /// (no column but the `partition_columns`; `query` is `sql` parsed, when it parses, else
    /// any FILTER in the text counts). DuckDB 1.5.5 and 1.5.6 carry such an aggregate's state
    /// from one partition into the next one a thread reads when the FILTER rejects the new
    /// partition's rows: `max(p) FILTER (WHERE p = 2) ... GROUP BY p` is 2, and
    /// `sum(p) FILTER (WHERE p = 2)` is 0, in groups where p is 3, depending on which thread read
    /// what (found by the fuzzer, seed 18). Over one partition it is exact, so a split keeps
    /// partitions in separate tasks and the reduce gives SQL's answer (NULL there).
    fn filters_leak(&self, sql: &str, query: Option<&sqlparser::ast::Query>, partition_columns: &[String]) -> bool {
        let filtered = match query {
            Some(query) => rewrite::constant_filtered_aggregate(query, partition_columns),
            None => sql.to_ascii_uppercase().contains("FILTER"),
        };
        filtered && self.engine.physical_plan(sql).is_ok_and(|physical| physical.contains("PARTITIONED_AGGREGATE"))
    }

    /// How the two hive-partitioned tables of `query` are read (their files listed in `files`,
    /// in fan-out occurrence order), or why the query runs as one task:
    /// - the smaller is broadcast when its listed bytes are at most `--broadcast-bytes`;
    /// - else both are co-partitioned through the exchange when they are joined directly on
    ///   equal keys ([`rewrite::join`]) and there are buckets: `--buckets`, or through Lambda
    ///   one per target task size of their bytes;
    /// - else one task (in process, one DuckDB with all cores is what a split would not beat).
    fn pair(
        &self,
        query: &sqlparser::ast::Query,
        scans: &[FanScan],
        files: &[Vec<partitions::FileEntry>],
    ) -> std::result::Result<Pairing, String> {
        let bytes: Vec<u64> = files.iter().map(|f| f.iter().map(|e| e.size).sum()).collect();
        let small = if bytes[1] < bytes[0] { 1 } else { 0 };
        if bytes[small] <= self.config.broadcast_bytes {
            return Ok(Pairing::Broadcast { fanned: 1 - small, companion: small });
        }
        let large = format!(
            "the query reads two hive-partitioned tables, both over --broadcast-bytes ({} and {}), ",
            human_bytes(bytes[0]),
            human_bytes(bytes[1])
        );
        let columns = |scan: &FanScan| -> std::result::Result<Vec<String>, String> {
            let described = self.engine.describe(&format!("SELECT * FROM {}", scan.original()));
            Ok(described.map_err(|m| first_line(&m).to_string())?.into_iter().map(|c| c.name).collect())
        };
        let columns = [columns(&scans[0])?, columns(&scans[1])?];
        let join = rewrite::join::co_partition(query, &columns).map_err(|why| format!("{large}and {why}"))?;
        if let Some(why) = self.exchange_unavailable() {
            return Err(format!("{large}and {why}"));
        }
        let buckets = match (self.config.buckets, &self.config.backend) {
            (Some(n), _) => n,
            (None, Backend::Lambda { .. }) => self.buckets_for(bytes.iter().sum::<u64>()),
            (None, Backend::Local) => {
                return Err(format!(
                    "{large}in process one DuckDB query with all cores joins them fastest (--buckets N \
                     co-partitions them through the exchange)"
                ))
            }
        };
        Ok(Pairing::CoPartitioned { buckets, join })
    }

    /// The bytes one task reads: `--target-task-bytes`, else `total` spread over the workers.
    fn target_task_bytes(&self, total: u64) -> u64 {
        self.config.target_task_bytes.unwrap_or_else(|| {
            tasks::target_bytes(
                total,
                self.config.concurrency * self.config.tasks_per_worker,
                self.config.min_task_bytes,
                self.config.max_task_bytes,
            )
        })
    }

    /// Buckets for a stage over `total` listed bytes through Lambda: one per task's worth of
    /// bytes, as the map packs them.
    fn buckets_for(&self, total: u64) -> u32 {
        total.div_ceil(self.target_task_bytes(total).max(1)).clamp(1, u64::from(quack_lambda::exchange::MAX_BUCKETS))
            as u32
    }

    /// A second stage without `--buckets`: through Lambda with an S3 exchange, when the map ships
    /// rows (not a top-N, whose rows are few) from more listed bytes than the coordinator may
    /// gather (`--max-gather-bytes`): the shipped rows could then exceed what the coordinator may
    /// hold, so the reduce is shuffled instead (when it can be: grouped, windowed or sorted).
    fn automatic_buckets(&self, rewritten: &rewrite::Rewritten, kept_bytes: u64) -> Option<u32> {
        let ships_rows = rewritten.strategy == rewrite::Strategy::ShipRows || rewritten.distinct_keys;
        let gather = self.config.max_gather_bytes.filter(|&b| b > 0)?;
        (matches!(self.config.backend, Backend::Lambda { .. })
            && self.exchange_unavailable().is_none()
            && ships_rows
            && !rewritten.top_n_pushdown
            && kept_bytes > gather)
            .then(|| self.buckets_for(kept_bytes).max(2))
    }

    /// Why this configuration has no exchange for a later stage, when it has none.
    pub(crate) fn exchange_unavailable(&self) -> Option<String> {
        match &self.config.backend {
            Backend::Lambda { .. } if !self.config.exchange_root().starts_with("s3://") => Some(
                "a second stage through Lambda needs an S3 exchange: --exchange s3://bucket/prefix/, the workers' \
                 QUACK_EXCHANGE_PREFIX"
                    .to_string(),
            ),
            Backend::Local if self.config.exchange_root().contains("://") => {
                Some("in process, the exchange is a local directory, not a URL (--exchange)".to_string())
            }
            _ => None,
        }
    }

    /// A fan-out table's partitions, their columns with the types DuckDB infers over all
    /// `files`, and the layout every task reads it with.
    fn side_layout(&self, scan: &FanScan, files: &[partitions::FileEntry]) -> Result<SideLayout> {
        let parts = Partitions::from_files(files);
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
            first_file: files[0].path.clone(),
            columns: scan_columns.iter().map(|c| (c.name.clone(), c.data_type.clone())).collect(),
        };
        Ok((parts, partition_columns, layout))
    }

    /// The stages of a co-partitioned join: stage 1 writes each side's rows into `buckets` on
    /// its keys (one task per spec of each side), stage 2 runs `rewritten`'s map per bucket.
    /// Every part binds in the coordinator's DuckDB first; `Err` says why it cannot be done.
    fn co_partitioned(
        &self,
        query_id: &str,
        buckets: u32,
        join: &rewrite::join::CoPartition,
        sides: [Side<'_>; 2],
        rewritten: &rewrite::Rewritten,
        output_columns: &[Column],
    ) -> std::result::Result<(JoinShuffle, Vec<Task>, Vec<TaskSpec>), String> {
        // Each key as its table's column: (name, type).
        let mut keys: [Vec<(String, String)>; 2] = [Vec::new(), Vec::new()];
        for (i, side) in sides.iter().enumerate() {
            for key in &join.sides[i].keys {
                let matching: Vec<&(String, String)> =
                    side.layout.columns.iter().filter(|(name, _)| name.eq_ignore_ascii_case(key)).collect();
                match matching.as_slice() {
                    [(name, ty)] => keys[i].push((name.clone(), ty.clone())),
                    [] => return Err(format!("the join key {key} is not a column of {}", side.scan.original())),
                    _ => return Err(format!("the join key {key} names several columns of {}", side.scan.original())),
                }
            }
        }
        let mut hashed: [Vec<sqlparser::ast::Expr>; 2] = [Vec::new(), Vec::new()];
        for ((l, lt), (r, rt)) in keys[0].iter().zip(&keys[1]) {
            let as_type = hashed_key_type(lt, rt)?;
            for (side, name) in [(0, l), (1, r)] {
                let column = sqlparser::ast::Expr::Identifier(sqlparser::ast::Ident::with_quote('"', name));
                hashed[side].push(match as_type {
                    Some(ty) => rewrite::scan::cast(column, ty),
                    None => column,
                });
            }
        }
        let columns = |layout: &TableLayout| -> Vec<Column> {
            layout.columns.iter().map(|(name, ty)| Column { name: name.clone(), data_type: ty.clone() }).collect()
        };
        let root = self.config.exchange_root();
        let query_dir = format!("{root}{query_id}/");
        let mut shuffle = JoinShuffle {
            buckets,
            root,
            query_dir,
            sides: [columns(sides[0].layout), columns(sides[1].layout)],
            keys: [0, 1].map(|i| hashed[i].iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
            side0_tasks: sides[0].specs.len(),
            unaliased: [sides[0].scan.function.clone(), sides[1].scan.function.clone()],
            map: rewritten.map.clone(),
            partial_columns: Vec::new(),
        };
        let describe =
            |shuffle: &JoinShuffle| self.engine.describe(&shuffle.bucket_query(&[vec![], vec![]]).to_string());
        shuffle.partial_columns =
            describe(&shuffle).map_err(|m| format!("the map over the exchange does not bind ({})", first_line(&m)))?;
        // Stage 1 writes only the columns the map names, when it provably reads no other, and
        // the map over those binds to the same columns as over all of them.
        let unaliased = [shuffle.unaliased[0].as_str(), shuffle.unaliased[1].as_str()];
        if let Some(names) = rewrite::join::named_columns(&rewritten.map, &unaliased) {
            let named = shuffle
                .sides
                .clone()
                .map(|cols| cols.into_iter().filter(|c| names.contains(&c.name.to_ascii_lowercase())).collect());
            let all = std::mem::replace(&mut shuffle.sides, named);
            if describe(&shuffle).ok().as_ref() != Some(&shuffle.partial_columns) {
                shuffle.sides = all;
            }
        }
        for (side, cols) in sides.iter().zip(&shuffle.sides) {
            if let Some(c) = cols.iter().find(|c| !transport::exchange_carries(&c.data_type)) {
                return Err(format!(
                    "the column {} of {} is of type {}, which the exchange does not carry yet",
                    quack_lambda::quote::ident(&c.name),
                    side.scan.original(),
                    c.data_type
                ));
            }
        }
        self.engine
            .check_reduce(&shuffle.partial_columns, &final_sql(&rewritten.reduce_sql, output_columns))
            .map_err(|m| format!("the reduce does not bind ({})", first_line(&m)))?;
        let mut tasks = Vec::new();
        let mut specs = Vec::new();
        for (i, side) in sides.into_iter().enumerate() {
            let mut with_bucket = shuffle.sides[i].clone();
            with_bucket.push(Column { name: BUCKET_COLUMN.to_string(), data_type: "INTEGER".into() });
            for spec in side.specs {
                let files: Vec<String> = spec.files.iter().map(|f| f.path.clone()).collect();
                let bucketed = rewrite::stage::bucketed_scan(
                    side.scan.task_factor(&files, side.layout, None),
                    &shuffle.sides[i],
                    &hashed[i],
                    buckets,
                );
                let label = format!("side {i}: {}", spec.label);
                tasks.push(Task {
                    version: WIRE_VERSION,
                    query_id: query_id.to_string(),
                    task_id: tasks.len(),
                    label: label.clone(),
                    sql: transport::wrap_map(bucketed, &with_bucket).to_string(),
                    files,
                    time_zone: self.engine.time_zone().map(String::from),
                    exchange: Some(ExchangeWrite { prefix: shuffle.side_prefix(i), buckets }),
                    convert: None,
                });
                specs.push(TaskSpec { label, ..spec });
            }
        }
        Ok((shuffle, tasks, specs))
    }

    /// `split`'s query as one task running it as written over all the files its table listed,
    /// exact by definition, for `reason` (a task of the split hit a DuckDB bug that the query as
    /// written does not reach). Nothing is listed or bound again: the files and the output
    /// columns are the split plan's.
    pub fn single(&self, split: &Plan, query_id: &str, reason: String) -> Result<Plan> {
        let mut single = self.whole_query(
            query_id,
            &split.sql,
            Strategy::Single { reason },
            split.all_files.clone(),
            split.output_columns.clone(),
        );
        single.in_engine = false; // its partials are reduced as the split's would have been
        self.checked(single)
    }

    /// `plan`, unless it runs one DuckDB query over files of several partitions where DuckDB's
    /// partition-aware aggregate meets a FILTER ([`Planner::filters_leak`]): DuckDB's answer
    /// there changes from run to run, and a split that cannot keep partitions apart has none
    /// to give either.
    fn checked(&self, plan: Plan) -> Result<Plan> {
        if matches!(plan.strategy, Strategy::Split { .. }) {
            return Ok(plan);
        }
        let query = rewrite::parse(&plan.sql).ok().and_then(|statements| rewrite::single_query(statements).ok());
        let partition_columns = partitions::Partitions::from_files(&plan.all_files).columns;
        if !self.filters_leak(&plan.sql, query.as_ref(), &partition_columns) {
            return Ok(plan);
        }
        Err(Error::Unsupported {
            reason: format!(
                "the query must run as one DuckDB query ({}), and DuckDB's partition-aware aggregate \
                 (GROUP BY hive partition columns) gives aggregates with FILTER no fixed answer: it carries \
                 a FILTERed aggregate's state from one partition into the next one a thread reads",
                plan.strategy.describe()
            ),
        })
    }

    /// Whether a query runs as one DuckDB query over all its files rather than split
    /// ([`SplitPolicy::Auto`] in process, without `--buckets`): the in-process workers share one
    /// DuckDB thread pool, so a split adds its planning, the tasks' binding and the reduce, and
    /// parallelizes nothing that one DuckDB query does not. The exception is a query that one
    /// DuckDB query answers differently from run to run ([`Planner::filters_leak`]), which is
    /// split one partition per task.
    fn one_query_is_cheaper(&self) -> bool {
        self.config.split == SplitPolicy::Auto && self.config.backend == Backend::Local && self.config.buckets.is_none()
    }

    /// [`Planner::whole_query`], with the output columns bound first unless the plan runs in
    /// the engine, which needs none.
    fn whole_query_bound(
        &self,
        query_id: &str,
        sql: &str,
        strategy: Strategy,
        files: Vec<partitions::FileEntry>,
    ) -> Result<Plan> {
        let output_columns = if self.in_engine { vec![] } else { self.describe_original(sql)? };
        Ok(self.whole_query(query_id, sql, strategy, files, output_columns))
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
        let all_files = files.clone();
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
            convert: None,
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
            join: None,
            companion: None,
            all_files,
            in_engine: self.in_engine,
        }
    }
}

/// Why a query runs as one DuckDB query in process ([`Planner::one_query_is_cheaper`]).
fn one_query_reason() -> String {
    "in process, one DuckDB query over all files with all cores is cheapest: the workers would share its \
     thread pool, so a split adds a reduce and parallelizes nothing (--split always splits it)"
        .to_string()
}

/// The reduce wrapped to give the answer DuckDB's column names and types, by position.
///
/// Text, not a tree: the types are DuckDB's own spelling from `DESCRIBE` (`ENUM('a', 'b')`,
/// `UNION(...)`, `STRUCT("A b" INTEGER)`), which only DuckDB reads back exactly; names are
/// quoted by [`quack_lambda::quote`].
/// How many files the planner reads to sample a ranged sort's key.
const SAMPLE_FILES: usize = 4;

/// The map over sample files, as [`Planner::plan_shuffle`] binds and samples it.
struct Probes<'a> {
    /// The map's SQL over one file (binding only).
    one_file: &'a dyn Fn(&sqlparser::ast::Query) -> String,
    /// The map over up to [`SAMPLE_FILES`] files spread over the kept ones.
    sample: &'a dyn Fn(&sqlparser::ast::Query) -> sqlparser::ast::Query,
}

/// Key types whose `>=` orders as DuckDB's ORDER BY does (NULLs aside), so that ranges of the
/// key are ranges of the output: numbers, booleans, dates and times, and strings (no collation).
fn rangeable(data_type: &str) -> bool {
    let t = data_type.to_ascii_uppercase();
    matches!(
        t.as_str(),
        "BOOLEAN"
            | "TINYINT"
            | "SMALLINT"
            | "INTEGER"
            | "BIGINT"
            | "HUGEINT"
            | "UTINYINT"
            | "USMALLINT"
            | "UINTEGER"
            | "UBIGINT"
            | "UHUGEINT"
            | "FLOAT"
            | "DOUBLE"
            | "DATE"
            | "TIME"
            | "TIMESTAMP"
            | "TIMESTAMP_S"
            | "TIMESTAMP_MS"
            | "TIMESTAMP_NS"
            | "TIMESTAMP WITH TIME ZONE"
            | "VARCHAR"
    ) || (t.starts_with("DECIMAL(") && t.ends_with(')'))
}

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
    /// The exchange's root and this query's directory under it, when the plan has a second
    /// stage (what is deleted when the query ends).
    pub fn exchange_dirs(&self) -> Option<(&str, &str)> {
        match (&self.shuffle, &self.join) {
            (Some(shuffle), _) => Some((&shuffle.root, &shuffle.query_dir)),
            (None, Some(join)) => Some((&join.root, &join.query_dir)),
            (None, None) => None,
        }
    }

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
            if let Some(note) = &scan.apart_note {
                let _ = writeln!(out, "  {note}");
            }
        }
        match (&self.companion, &self.join) {
            (Some(companion), None) => {
                let _ = writeln!(out, "broadcast table: {companion} (every task reads it whole)");
            }
            (Some(companion), Some(join)) => {
                let _ = writeln!(
                    out,
                    "co-partitioned table: {companion} (joined on keys: both tables are hashed into {} buckets)",
                    join.buckets
                );
            }
            _ => {}
        }
        let _ = writeln!(out, "tasks: {}", self.specs.len());
        for (i, spec) in self.specs.iter().enumerate() {
            let _ =
                writeln!(out, "  task {i}: {} ({} files, {})", spec.label, spec.files.len(), human_bytes(spec.bytes()));
        }
        if let Some(join) = &self.join {
            for side in 0..2 {
                let tasks = if side == 0 { join.side0_tasks } else { self.tasks.len() - join.side0_tasks };
                let _ = writeln!(
                    out,
                    "stage 1, side {side}: {tasks} tasks write the {} table's rows to the exchange ({}), in {} buckets by hash({})",
                    if side == 0 { "partitioned" } else { "co-partitioned" },
                    join.side_prefix(side),
                    join.buckets,
                    join.keys[side]
                );
                let first = if side == 0 { self.tasks.first() } else { self.tasks.get(join.side0_tasks) };
                if let Some(task) = first {
                    let _ = writeln!(out, "  SQL (task {}):\n  {}", task.task_id, task.sql);
                }
            }
            let files = ["<side 0's bucket files>".to_string(), "<side 1's bucket files>".to_string()];
            let _ = writeln!(
                out,
                "stage 2: one task per bucket with rows runs the map over that bucket of each side:\n  {}",
                join.bucket_sql(&files.map(|f| vec![f]))
            );
        } else if let (true, Some(task)) = (self.in_engine, self.tasks.first()) {
            let _ =
                writeln!(out, "SQL, run on the coordinator's DuckDB, its answer written as it comes:\n  {}", task.sql);
            return out;
        } else if let Some(task) = self.tasks.first() {
            let _ = writeln!(out, "map SQL (task 0):\n  {}", task.sql);
        }
        if let Some(shuffle) = &self.shuffle {
            let _ = writeln!(
                out,
                "stage 1: the {} map tasks write their rows to the exchange ({}), in {} buckets {}",
                self.tasks.len(),
                shuffle.map_prefix(),
                shuffle.buckets,
                shuffle.split.describe_partitioning()
            );
            let _ = writeln!(
                out,
                "stage 2: one task per bucket with rows computes its {} whole; SQL over a bucket's files:\n  {}",
                shuffle.split.unit,
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
