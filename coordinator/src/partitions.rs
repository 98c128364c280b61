//! Partition discovery: expanding the fanned-out table's paths into files, reading hive
//! `key=value` segments from their paths, grouping files into partitions, and pruning partitions
//! with the query's predicates on partition columns.
//!
//! Listing is behind the async [`Lister`] trait: local directories here, S3 in [`crate::s3`] and
//! an in-memory store in [`crate::memory`] (both on `object_store`, [`crate::store`]); all pass
//! [`crate::conformance::lister`]. Pruning evaluates the predicate in DuckDB over one row per partition, so its
//! semantics (casts, NULLs, functions) are DuckDB's own; it is an optimization only, since the
//! map SQL keeps the full WHERE clause.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use crate::engine::Engine;
use crate::error::{Error, Result};
use quack_lambda::quote::literal as quote_literal;

/// One file of the fanned-out table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The path or URL as DuckDB should read it.
    pub path: String,
    pub size: u64,
}

/// Lists the files a path or glob names, in DuckDB's order (sorted). Asynchronous: a listing
/// is I/O (S3 pages, a directory walk), and the planner lists before it plans.
#[async_trait::async_trait]
pub trait Lister: Send + Sync {
    /// Files matching `pattern` (a path, or a glob with `*`, `**`, `?`, `[...]`). An empty list
    /// when nothing matches; an error when a literal path names a directory (a prefix).
    async fn list(&self, pattern: &str) -> Result<Vec<FileEntry>>;

    /// The contents of a small text object (a manifest, a symlink list).
    async fn read_to_string(&self, path: &str) -> Result<String>;
}

/// Lists local files, walking directories on tokio's blocking pool.
///
/// Written by hand rather than on `object_store`'s `LocalFileSystem`, which hides files whose
/// names end in `#` and digits (its own upload temporaries) where DuckDB reads them, and walks
/// the whole tree under a glob's literal prefix where `*` needs one level.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalLister;

#[async_trait::async_trait]
impl Lister for LocalLister {
    async fn list(&self, pattern: &str) -> Result<Vec<FileEntry>> {
        let owned = pattern.to_string();
        tokio::task::spawn_blocking(move || list_local(&owned)).await.map_err(|e| Error::List {
            path: pattern.to_string(),
            message: format!("the listing thread failed: {e}"),
        })?
    }

    async fn read_to_string(&self, path: &str) -> Result<String> {
        tokio::fs::read_to_string(path)
            .await
            .map_err(|e| Error::List { path: path.to_string(), message: e.to_string() })
    }
}

/// [`LocalLister::list`], synchronously.
fn list_local(pattern: &str) -> Result<Vec<FileEntry>> {
    let list_error = |message: String| Error::List { path: pattern.to_string(), message };
    if !has_glob(pattern) {
        return match std::fs::metadata(pattern) {
            Ok(meta) if meta.is_file() => Ok(vec![FileEntry { path: pattern.to_string(), size: meta.len() }]),
            Ok(_) => Err(list_error("is a directory; name its files with a glob such as dir/*/*.parquet".into())),
            Err(_) => Ok(vec![]),
        };
    }
    let (root, matcher) = local_glob(pattern).map_err(list_error)?;
    if !Path::new(&root).exists() {
        return Ok(vec![]);
    }
    let depth_limit = if pattern.contains("**") { usize::MAX } else { pattern.matches('/').count() + 1 };
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(&root).follow_links(true).max_depth(depth_limit) {
        let entry = entry.map_err(|e| list_error(e.to_string()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path().to_string_lossy().to_string();
        let relative = path.strip_prefix("./").unwrap_or(&path);
        if matcher.is_match(relative) || matcher.is_match(&path) {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            files.push(FileEntry { path, size });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Whether a path has glob characters.
pub(crate) fn has_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The directory to walk (the longest glob-free prefix) and the matcher for whole paths.
fn local_glob(pattern: &str) -> std::result::Result<(String, GlobMatcher), String> {
    let segments: Vec<&str> = pattern.split('/').collect();
    let literal: Vec<&str> = segments.iter().take_while(|s| !has_glob(s)).copied().collect();
    let root = if literal.is_empty() {
        ".".to_string()
    } else if literal == [""] {
        "/".to_string()
    } else {
        literal.join("/")
    };
    Ok((root, glob_matcher(pattern.strip_prefix("./").unwrap_or(pattern))?))
}

/// The matcher every [`Lister`] uses for a glob, with DuckDB's semantics: `*` and `?` stay within
/// one path segment, `**` crosses segments, `[...]` is a class. An error says what is wrong with it.
pub(crate) fn glob_matcher(pattern: &str) -> std::result::Result<GlobMatcher, String> {
    let glob = GlobBuilder::new(pattern).literal_separator(true).build().map_err(|e| format!("bad glob: {e}"))?;
    Ok(glob.compile_matcher())
}

/// Files for all the scan's paths, in order, each pattern's matches sorted; an error naming the
/// first pattern that matches nothing (DuckDB errors the same way).
pub async fn discover(lister: &dyn Lister, patterns: &[String]) -> Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    for pattern in patterns {
        let found = lister.list(pattern).await?;
        if found.is_empty() {
            return Err(Error::NoFiles { pattern: pattern.clone() });
        }
        files.extend(found);
    }
    Ok(files)
}

/// The hive `key=value` directory segments of a path (the file name excluded), raw (not decoded).
pub fn hive_segments(path: &str) -> Vec<(String, String)> {
    let mut segments: Vec<&str> = path.split('/').collect();
    segments.pop();
    segments
        .into_iter()
        .filter_map(|s| s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// A set of files sharing the same hive partition values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// `date=2024-03-01` (segments joined by `/`), or the file's directory when there are none.
    pub name: String,
    /// Raw value per partition column, in [`Partitions::columns`] order (`None`: key absent).
    pub values: Vec<Option<String>>,
    pub files: Vec<FileEntry>,
}

impl Partition {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The fanned-out table's files grouped by partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partitions {
    /// Partition column names, in order of first appearance.
    pub columns: Vec<String>,
    pub partitions: Vec<Partition>,
}

impl Partitions {
    /// Groups files by their hive segments (keeping the files' order).
    pub fn from_files(files: &[FileEntry]) -> Self {
        let mut columns: Vec<String> = Vec::new();
        for file in files {
            for (key, _) in hive_segments(&file.path) {
                if !columns.contains(&key) {
                    columns.push(key);
                }
            }
        }
        let mut order: Vec<String> = Vec::new();
        let mut groups: BTreeMap<String, Partition> = BTreeMap::new();
        for file in files {
            let segments = hive_segments(&file.path);
            let name = if segments.is_empty() {
                PathBuf::from(&file.path).parent().map(|p| p.to_string_lossy().to_string()).unwrap_or_default()
            } else {
                segments.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("/")
            };
            let values =
                columns.iter().map(|c| segments.iter().rev().find(|(k, _)| k == c).map(|(_, v)| v.clone())).collect();
            let group = groups.entry(name.clone()).or_insert_with(|| {
                order.push(name.clone());
                Partition { name: name.clone(), values, files: Vec::new() }
            });
            group.files.push(file.clone());
        }
        let partitions = order.into_iter().map(|name| groups.remove(&name).expect("grouped")).collect();
        Partitions { columns, partitions }
    }

    pub fn file_count(&self) -> usize {
        self.partitions.iter().map(|p| p.files.len()).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.bytes()).sum()
    }

    /// Indices of the partitions that can hold rows satisfying `predicate` (SQL over the
    /// partition columns), evaluated by DuckDB with the columns cast to `types` (name → type).
    pub fn prune(
        &self,
        engine: &Engine,
        types: &[(String, String)],
        predicate: &str,
    ) -> std::result::Result<Vec<usize>, String> {
        let columns: Vec<(String, String)> = self
            .columns
            .iter()
            .map(|c| {
                let ty = types.iter().find(|(n, _)| n.eq_ignore_ascii_case(c)).map(|(_, t)| t.clone());
                (c.clone(), ty.unwrap_or_else(|| "VARCHAR".to_string()))
            })
            .collect();
        let rows: Vec<Vec<String>> =
            self.partitions.iter().map(|p| p.values.iter().map(|v| value_literal(v.as_deref())).collect()).collect();
        engine.filter_rows(&columns, &rows, predicate)
    }
}

/// The SQL literal of a raw hive value as DuckDB reads it: `null` in any letter case and
/// `__HIVE_DEFAULT_PARTITION__` mean NULL (checked before decoding, so `%4EULL` is the text
/// `NULL`); anything else is percent-decoded text.
pub fn value_literal(raw: Option<&str>) -> String {
    match raw {
        None => "NULL".to_string(),
        Some(raw) if raw.eq_ignore_ascii_case("null") || raw == "__HIVE_DEFAULT_PARTITION__" => "NULL".to_string(),
        Some(raw) => quote_literal(&percent_encoding::percent_decode_str(raw).decode_utf8_lossy()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_lister_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        for (path, contents) in crate::conformance::LISTER_FILES {
            let path = format!("{root}/{path}");
            std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
        }
        crate::conformance::lister(&LocalLister, &root).await;
    }

    fn touch(root: &Path, rel: &str, bytes: usize) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![0u8; bytes]).unwrap();
    }

    #[tokio::test]
    async fn lists_globs_sorted_like_duckdb() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "t/date=2024-03-02/b.parquet", 3);
        touch(dir.path(), "t/date=2024-03-01/a.parquet", 1);
        touch(dir.path(), "t/date=2024-03-01/a.txt", 1);
        touch(dir.path(), "t/deeper/x/y.parquet", 1);
        let root = dir.path().display();
        let files = LocalLister.list(&format!("{root}/t/*/*.parquet")).await.unwrap();
        let names: Vec<_> = files.iter().map(|f| f.path.rsplit('/').next().unwrap().to_string()).collect();
        assert_eq!(names, vec!["a.parquet", "b.parquet"]);
        assert_eq!(files[1].size, 3);
        let all = LocalLister.list(&format!("{root}/t/**/*.parquet")).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(LocalLister.list(&format!("{root}/nothing/*.parquet")).await.unwrap().is_empty());
        assert!(matches!(
            discover(&LocalLister, &[format!("{root}/nothing/*.parquet")]).await,
            Err(Error::NoFiles { .. })
        ));
    }

    #[test]
    fn reads_hive_segments_and_groups() {
        assert_eq!(
            hive_segments("/l/year=1994/month=3/part-0.parquet"),
            vec![("year".into(), "1994".into()), ("month".into(), "3".into())]
        );
        let files = vec![
            FileEntry { path: "l/d=1/a.parquet".into(), size: 10 },
            FileEntry { path: "l/d=1/b.parquet".into(), size: 5 },
            FileEntry { path: "l/d=2/a.parquet".into(), size: 7 },
        ];
        let parts = Partitions::from_files(&files);
        assert_eq!(parts.columns, vec!["d"]);
        assert_eq!(parts.partitions.len(), 2);
        assert_eq!(parts.partitions[0].bytes(), 15);
        assert_eq!(parts.partitions[1].values, vec![Some("2".to_string())]);
    }

    #[test]
    fn decodes_values_like_duckdb() {
        assert_eq!(value_literal(Some("a%20b")), "'a b'");
        assert_eq!(value_literal(Some("it's")), "'it''s'");
        assert_eq!(value_literal(Some("__HIVE_DEFAULT_PARTITION__")), "NULL");
        assert_eq!(value_literal(None), "NULL");
    }

    #[test]
    fn hive_nulls_read_as_duckdb_reads_them() {
        for raw in ["null", "NULL", "Null", "nUlL", "__HIVE_DEFAULT_PARTITION__"] {
            assert_eq!(value_literal(Some(raw)), "NULL", "{raw}");
        }
        assert_eq!(value_literal(Some("%4EULL")), "'NULL'");
        assert_eq!(value_literal(Some("")), "''");
        assert_eq!(value_literal(Some("__hive_default_partition__")), "'__hive_default_partition__'");
    }

    #[test]
    fn prunes_with_duckdb() {
        let engine = Engine::new(1).unwrap();
        let files: Vec<FileEntry> =
            ["l/date=2024-03-01/a.parquet", "l/date=2024-03-02/a.parquet", "l/date=2024-03-03/a.parquet"]
                .iter()
                .map(|p| FileEntry { path: p.to_string(), size: 1 })
                .collect();
        let parts = Partitions::from_files(&files);
        let types = vec![("date".to_string(), "DATE".to_string())];
        let kept = parts.prune(&engine, &types, "\"date\" BETWEEN DATE '2024-03-02' AND DATE '2024-03-09'").unwrap();
        assert_eq!(kept, vec![1, 2]);
        let kept =
            parts.prune(&engine, &types, "\"date\" IN (DATE '2024-03-01') OR \"date\" = DATE '2024-03-03'").unwrap();
        assert_eq!(kept, vec![0, 2]);
    }
}
