//! The exchange between a plan's stages, on the coordinator's side: what a shuffled plan's second
//! stage is, the stage-2 tasks built from the map's manifests, and deleting a query's exchange
//! files when it ends.
//!
//! Contract: stage 2 reads only the files that the answered (winning) map attempts name in their
//! manifests, one task per bucket that has rows. A retried or hedged attempt's files are never
//! read. Every file of the query lies under [`Shuffle::query_dir`], which [`ExchangeCleanup`]
//! deletes when the query ends, whether it succeeded or not. The exchange is a local directory
//! for in-process workers and an `s3://` prefix (the workers' `QUACK_EXCHANGE_PREFIX`) for Lambda.

use std::collections::BTreeMap;

use quack_lambda::exchange::{read_manifest, BucketFile};
use quack_lambda::{ipc, PartialData, PartialResult, Task, WIRE_VERSION};

use crate::engine::Column;
use crate::error::{Error, Result};
use crate::rewrite::stage::{empty_source, exchange_source, StageSplit};
use crate::transport;

/// A plan's second stage: the map's rows are hashed on the reduce's group keys (or its windows'
/// partition keys) into buckets in the exchange, or put in the bucket of their sort key's range,
/// and one task per bucket computes its groups (window partitions, sorted range) whole. Stage-2
/// tasks are numbered in bucket order, and the reduce loads their answers in that order.
#[derive(Debug, Clone)]
pub struct Shuffle {
    pub buckets: u32,
    /// The exchange's root: a directory or `s3://` prefix, ending in `/`.
    pub root: String,
    /// Where this query's exchange files go (`<root><query_id>/`).
    pub query_dir: String,
    /// The reduce split into the stage-2 SQL and the final reduce.
    pub split: StageSplit,
    /// The map's columns, as DuckDB types them (the exchange files hold their carried types).
    pub map_columns: Vec<Column>,
    /// Stage 2's columns, as DuckDB types them: the final reduce's partials.
    pub columns: Vec<Column>,
}

impl Shuffle {
    /// The stage-1 prefix every map task writes under.
    pub fn map_prefix(&self) -> String {
        format!("{}s1/", self.query_dir)
    }

    /// Stage 2's SQL over `files` (one bucket's), as a task runs it (stage 2's own carriers
    /// included).
    pub fn group_sql(&self, files: &[String]) -> String {
        let source = exchange_source(files, &typed(&self.map_columns));
        transport::wrap_map(self.split.group_over(source), &self.columns).to_string()
    }

    /// One stage-2 task per bucket that has rows, from the map tasks' manifests (`partials`).
    pub fn tasks(&self, query_id: &str, partials: &[PartialResult], time_zone: Option<&str>) -> Result<Vec<Task>> {
        let mut buckets: BTreeMap<u32, Vec<BucketFile>> = BTreeMap::new();
        for partial in partials {
            for file in manifest_files(partial, &self.map_prefix(), self.buckets)? {
                buckets.entry(file.bucket).or_default().push(file);
            }
        }
        Ok(buckets
            .into_iter()
            .enumerate()
            .map(|(task_id, (bucket, files))| {
                let rows: u64 = files.iter().map(|f| f.rows).sum();
                let files: Vec<String> = files.into_iter().map(|f| f.path).collect();
                Task {
                    version: WIRE_VERSION,
                    query_id: query_id.to_string(),
                    task_id,
                    label: format!("bucket {bucket} ({} files, {rows} rows)", files.len()),
                    sql: self.group_sql(&files),
                    files,
                    time_zone: time_zone.map(String::from),
                    exchange: None,
                    convert: None,
                }
            })
            .collect())
    }
}

/// A join of two hive-partitioned tables co-partitioned through the exchange: stage 1 writes
/// each side's rows, hash-partitioned on its join keys, under `<query_dir>s1_<side>/`; stage 2
/// runs the split's map once per bucket, over that bucket of each side
/// ([`crate::rewrite::join`]). Its tasks' answers are the map's partials, reduced as usual.
#[derive(Debug, Clone)]
pub struct JoinShuffle {
    pub buckets: u32,
    /// The exchange's root: a directory or `s3://` prefix, ending in `/`.
    pub root: String,
    /// Where this query's exchange files go (`<root><query_id>/`).
    pub query_dir: String,
    /// Each side's columns that its exchange files hold, typed as its table has them: every
    /// column, or only those the map names when it provably reads no other
    /// ([`crate::rewrite::join::named_columns`]). Side 0 is the fanned-out scan (the map's
    /// placeholder), side 1 its companion.
    pub sides: [Vec<Column>; 2],
    /// Each side's hashed keys, for `explain` (`CAST(k AS BIGINT)`).
    pub keys: [String; 2],
    /// How many of the plan's (stage 1) tasks read side 0; the rest read side 1.
    pub side0_tasks: usize,
    /// The name each side goes by without an alias (its function's, as DuckDB names it).
    pub unaliased: [String; 2],
    /// The map, with the placeholder for side 0 and the companion's scan for side 1.
    pub map: sqlparser::ast::Query,
    /// The map's columns over the exchange (the reduce's partials).
    pub partial_columns: Vec<Column>,
}

impl JoinShuffle {
    /// The prefix side `side`'s stage-1 tasks write under.
    pub fn side_prefix(&self, side: usize) -> String {
        format!("{}s1_{side}/", self.query_dir)
    }

    /// The map over one bucket as a task runs it (with its carriers): `files[side]` of each
    /// side (none: no rows of that side).
    pub fn bucket_sql(&self, files: &[Vec<String>; 2]) -> String {
        transport::wrap_map(self.bucket_query(files), &self.partial_columns).to_string()
    }

    /// The map over one bucket, before carriers: the placeholder and the companion's scan
    /// replaced by the rows of `files[side]` of each side, under their own aliases.
    pub fn bucket_query(&self, files: &[Vec<String>; 2]) -> sqlparser::ast::Query {
        let source = |side: usize| {
            let columns = typed(&self.sides[side]);
            if files[side].is_empty() {
                empty_source(&columns)
            } else {
                exchange_source(&files[side], &columns)
            }
        };
        let (left, right) = (source(0), source(1));
        crate::rewrite::scan::substitute_factors(
            &self.map,
            &|alias| crate::rewrite::scan::derived(left.clone(), alias.or_else(|| self.default_alias(0))),
            &|alias| crate::rewrite::scan::derived(right.clone(), alias.or_else(|| self.default_alias(1))),
        )
    }

    fn default_alias(&self, side: usize) -> Option<sqlparser::ast::TableAlias> {
        Some(sqlparser::ast::TableAlias {
            explicit: true,
            name: sqlparser::ast::Ident::with_quote('"', &self.unaliased[side]),
            columns: vec![],
            at: None,
        })
    }

    /// One stage-2 task per bucket that has rows on either side, from the stage-1 tasks'
    /// manifests (`partials`, in task order); one task over no rows when no bucket has any, so
    /// that the map's partials have their shape (a global aggregate's one row).
    pub fn tasks(&self, query_id: &str, partials: &[PartialResult], time_zone: Option<&str>) -> Result<Vec<Task>> {
        let mut buckets: BTreeMap<u32, [Vec<BucketFile>; 2]> = BTreeMap::new();
        for partial in partials {
            let side = usize::from(partial.task_id >= self.side0_tasks);
            for file in manifest_files(partial, &self.side_prefix(side), self.buckets)? {
                buckets.entry(file.bucket).or_default()[side].push(file);
            }
        }
        if buckets.is_empty() {
            buckets.insert(0, Default::default());
        }
        Ok(buckets
            .into_iter()
            .enumerate()
            .map(|(task_id, (bucket, [left, right]))| {
                let rows = |files: &[BucketFile]| files.iter().map(|f| f.rows).sum::<u64>();
                let label = format!("bucket {bucket} ({} + {} rows)", rows(&left), rows(&right));
                let files = [
                    left.into_iter().map(|f| f.path).collect::<Vec<_>>(),
                    right.into_iter().map(|f| f.path).collect::<Vec<_>>(),
                ];
                Task {
                    version: WIRE_VERSION,
                    query_id: query_id.to_string(),
                    task_id,
                    label,
                    sql: self.bucket_sql(&files),
                    files: files.concat(),
                    time_zone: time_zone.map(String::from),
                    exchange: None,
                    convert: None,
                }
            })
            .collect())
    }
}

/// `(name, type)` pairs of `columns`.
pub fn typed(columns: &[Column]) -> Vec<(String, String)> {
    columns.iter().map(|c| (c.name.clone(), c.data_type.clone())).collect()
}

/// The files one map task's manifest names; each must lie under the stage's `prefix` and be in
/// one of `buckets`, or the manifest is refused (a worker answers only for its own files).
pub(crate) fn manifest_files(partial: &PartialResult, prefix: &str, bucket_count: u32) -> Result<Vec<BucketFile>> {
    let bad =
        |message: String| Error::Reduce { message: format!("task {}'s exchange manifest: {message}", partial.task_id) };
    let PartialData::Inline { arrow_ipc } = &partial.data else {
        return Err(bad("it was spilled; a manifest is always small enough to answer inline".into()));
    };
    let (_, batches) = ipc::decode(arrow_ipc).map_err(|e| bad(format!("undecodable: {e}")))?;
    let mut files = Vec::new();
    for batch in &batches {
        for file in read_manifest(batch).map_err(bad)? {
            // The task's own files only: `<prefix>t<task_id>-<attempt>-b<bucket>.parquet`.
            let own = file.path.strip_prefix(prefix).is_some_and(|name| {
                name.strip_prefix(&format!("t{}-", partial.task_id)).is_some_and(|rest| {
                    rest.ends_with(&format!("-b{}.parquet", file.bucket)) && !rest.contains(['/', '\\'])
                })
            });
            if file.bucket >= bucket_count || !own {
                return Err(bad(format!("bucket {} at {} is not one of this stage's files", file.bucket, file.path)));
            }
            files.push(file);
        }
    }
    Ok(files)
}

/// Deletes a query's exchange files: [`ExchangeCleanup::finish`] when the query ends, or on
/// drop when it was cancelled (a local directory at once; S3 objects by a task spawned on the
/// runtime, as far as it gets; the bucket's lifecycle rule removes what is left).
#[derive(Debug)]
pub struct ExchangeCleanup {
    target: Option<CleanupTarget>,
}

#[derive(Debug)]
enum CleanupTarget {
    Local { dir: String },
    S3 { aws: std::sync::Arc<crate::aws::Aws>, root: String, query_id: String },
}

impl ExchangeCleanup {
    /// Nothing to clean up.
    pub fn none() -> Self {
        ExchangeCleanup { target: None }
    }

    /// Cleans up the local directory `dir`.
    pub fn local(dir: String) -> Self {
        ExchangeCleanup { target: Some(CleanupTarget::Local { dir }) }
    }

    /// Cleans up every object under `<root><query_id>/` (`root` an `s3://` prefix), through
    /// `object_store` (bulk deletes of up to 1,000 keys a request).
    pub fn s3(aws: std::sync::Arc<crate::aws::Aws>, root: String, query_id: String) -> Self {
        ExchangeCleanup { target: Some(CleanupTarget::S3 { aws, root, query_id }) }
    }

    /// Deletes the files now.
    pub async fn finish(mut self) {
        match self.target.take() {
            None => {}
            Some(CleanupTarget::Local { dir }) => remove_local(&dir),
            Some(CleanupTarget::S3 { aws, root, query_id }) => remove_s3(&aws, &root, &query_id).await,
        }
    }
}

fn remove_local(dir: &str) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => tracing::debug!(%dir, "deleted the query's exchange files"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(%dir, error = %e, "could not delete the query's exchange files"),
    }
}

async fn remove_s3(aws: &crate::aws::Aws, root: &str, query_id: &str) {
    match delete_query_objects(aws, root, query_id).await {
        Ok(deleted) => tracing::debug!(%query_id, deleted, "deleted the query's exchange objects"),
        Err(e) => tracing::warn!(%query_id, error = %e, "could not delete the query's exchange objects"),
    }
}

/// Deletes every object under `<root><query_id>/`; answers how many.
async fn delete_query_objects(aws: &crate::aws::Aws, root: &str, query_id: &str) -> Result<usize> {
    let url = quack_lambda::spill::query_prefix(root, query_id);
    let error = |message: String| Error::List { path: url.clone(), message };
    if !quack_lambda::wire::valid_query_id(query_id) {
        return Err(error("not a valid query id".into()));
    }
    let (bucket, key) = quack_lambda::s3::split_url(&url).ok_or_else(|| error("not an s3:// URL".into()))?;
    let store_error = |action| crate::store::store_error(action, &url);
    let store = aws.object_store(bucket).await.map_err(store_error("connecting to S3 for"))?;
    let prefix = object_store::path::Path::parse(key).map_err(|e| error(format!("not a valid prefix: {e}")))?;
    crate::store::delete_under(&store, &prefix).await.map_err(store_error("deleting"))
}

impl Drop for ExchangeCleanup {
    fn drop(&mut self) {
        match self.target.take() {
            None => {}
            Some(CleanupTarget::Local { dir }) => remove_local(&dir),
            Some(CleanupTarget::S3 { aws, root, query_id }) => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { remove_s3(&aws, &root, &query_id).await });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::{parse_query, stage::split_reduce, Context};
    use quack_lambda::exchange::manifest;
    use quack_lambda::TaskStats;

    fn shuffle() -> Shuffle {
        let reduce = parse_query("SELECT k, median(v) AS m FROM __quack_partials__ GROUP BY k").unwrap();
        let split =
            split_reduce(&reduce, &["k".into(), "v".into()], &Context::with_bundled_aggregates()).expect("a split");
        let column = |name: &str, data_type: &str| Column { name: name.into(), data_type: data_type.into() };
        Shuffle {
            buckets: 4,
            root: "/tmp/ex/".into(),
            query_dir: "/tmp/ex/q-1/".into(),
            split,
            map_columns: vec![column("k", "BIGINT"), column("v", "DOUBLE")],
            columns: vec![column("__quack_k0", "BIGINT"), column("__quack_a0", "DOUBLE")],
        }
    }

    fn answer(task_id: usize, files: &[(u32, &str, u64)]) -> PartialResult {
        let files: Vec<BucketFile> = files
            .iter()
            .map(|(bucket, path, rows)| BucketFile { bucket: *bucket, path: path.to_string(), rows: *rows })
            .collect();
        let batch = manifest(&files).unwrap();
        PartialResult {
            version: WIRE_VERSION,
            query_id: "q-1".into(),
            task_id,
            data: PartialData::Inline { arrow_ipc: ipc::encode(&batch.schema(), &[batch]).unwrap() },
            stats: TaskStats::default(),
        }
    }

    #[test]
    fn a_stage_two_task_per_bucket_with_rows_reads_the_answered_files() {
        let s = shuffle();
        let partials = [
            answer(0, &[(0, "/tmp/ex/q-1/s1/t0-aa-b0.parquet", 5), (3, "/tmp/ex/q-1/s1/t0-aa-b3.parquet", 1)]),
            answer(1, &[(3, "/tmp/ex/q-1/s1/t1-bb-b3.parquet", 2)]),
        ];
        let tasks = s.tasks("q-1", &partials, Some("UTC")).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].files, ["/tmp/ex/q-1/s1/t0-aa-b0.parquet"]);
        assert_eq!(tasks[1].files, ["/tmp/ex/q-1/s1/t0-aa-b3.parquet", "/tmp/ex/q-1/s1/t1-bb-b3.parquet"]);
        assert_eq!(tasks[1].label, "bucket 3 (2 files, 3 rows)");
        assert!(tasks[1]
            .sql
            .contains("read_parquet(['/tmp/ex/q-1/s1/t0-aa-b3.parquet', '/tmp/ex/q-1/s1/t1-bb-b3.parquet'])"));
        assert!(tasks.iter().all(|t| t.exchange.is_none() && t.time_zone.as_deref() == Some("UTC")));
    }

    #[test]
    fn a_manifest_naming_other_files_or_buckets_is_refused() {
        let s = shuffle();
        for (bucket, path) in [
            (0, "/etc/passwd"),
            (0, "/tmp/ex/q-2/s1/t0-b0.parquet"),
            (4, "/tmp/ex/q-1/s1/t0-b4.parquet"),
            (0, "/tmp/ex/q-1/s1/../../x"),
            (0, "/tmp/ex/q-1/s1/t1-aa-b0.parquet"),
            (0, "/tmp/ex/q-1/s1/t0-aa-b1.parquet"),
            (0, "/tmp/ex/q-1/s1/t0-a/../../b-b0.parquet"),
        ] {
            let error = s.tasks("q-1", &[answer(0, &[(bucket, path, 1)])], None).unwrap_err().to_string();
            assert!(error.contains("not one of this stage's files"), "{path}: {error}");
        }
    }

    #[test]
    fn the_cleanup_deletes_the_query_directory() {
        let dir = tempfile::tempdir().unwrap();
        let query_dir = dir.path().join("q-1");
        std::fs::create_dir_all(query_dir.join("s1")).unwrap();
        std::fs::write(query_dir.join("s1/t0-b0.parquet"), b"x").unwrap();
        drop(ExchangeCleanup::local(query_dir.to_string_lossy().into_owned()));
        assert!(!query_dir.exists());
        drop(ExchangeCleanup::local(query_dir.to_string_lossy().into_owned()));
        drop(ExchangeCleanup::none());
    }
}
