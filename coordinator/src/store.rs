//! A [`Lister`] over any `object_store` store: S3 ([`crate::s3`]) and in-memory
//! ([`crate::memory`]). One glob implementation for every store, with the local lister's
//! and DuckDB's semantics: `*` and `?` stay within one path segment, `**` crosses segments,
//! `[...]` is a class, matches come back sorted, and a literal path that names a prefix is an
//! error rather than an empty table.
//!
//! A pattern is a URL: `url_prefix` (`s3://bucket/`, `mem://`) and a key. Keys are used raw
//! (`Path::parse`, never percent-encoded), so a listed key is the name DuckDB reads.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{Error, Result};
use crate::partitions::{glob_matcher, has_glob, FileEntry, Lister};

/// Lists the objects of one store under one URL prefix.
#[derive(Debug, Clone)]
pub struct StoreLister {
    store: Arc<dyn ObjectStore>,
    url_prefix: String,
}

impl StoreLister {
    /// Lists `store`, whose keys are named by URLs `url_prefix` + key.
    pub fn new(store: Arc<dyn ObjectStore>, url_prefix: impl Into<String>) -> Self {
        StoreLister { store, url_prefix: url_prefix.into() }
    }

    /// The store listed.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The key of `url`: what follows the URL prefix.
    fn key<'a>(&self, url: &'a str) -> std::result::Result<&'a str, String> {
        url.strip_prefix(&self.url_prefix).ok_or_else(|| format!("is not under {}", self.url_prefix))
    }

    fn entry(&self, key: &str, size: u64) -> FileEntry {
        FileEntry { path: format!("{}{key}", self.url_prefix), size }
    }
}

/// A key as a store path; an error names what is wrong with it (an empty segment, `.`, `..`,
/// a control character), which DuckDB would not read either.
fn location(key: &str) -> std::result::Result<Path, String> {
    Path::parse(key).map_err(|e| format!("not a valid object key: {e}"))
}

/// Maps an `object_store` error to [`Error::Store`], naming the action and the URL.
pub(crate) fn store_error(action: &'static str, path: &str) -> impl FnOnce(object_store::Error) -> Error {
    let path = path.to_string();
    move |source| Error::Store { action, path, source }
}

#[async_trait::async_trait]
impl Lister for StoreLister {
    async fn list(&self, pattern: &str) -> Result<Vec<FileEntry>> {
        let list_error = |message: String| Error::List { path: pattern.to_string(), message };
        let key_pattern = self.key(pattern).map_err(list_error)?;
        if !has_glob(key_pattern) {
            let path = location(key_pattern).map_err(list_error)?;
            if !key_pattern.is_empty() && !key_pattern.ends_with('/') {
                match self.store.head(&path).await {
                    Ok(meta) => return Ok(vec![self.entry(key_pattern, meta.size)]),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(other) => return Err(store_error("listing", pattern)(other)),
                }
            }
            // No such object: a prefix of others is named wrongly, nothing at all is no files.
            let mut under = self.store.list(Some(&path));
            return match under.try_next().await.map_err(store_error("listing", pattern))? {
                Some(_) => Err(list_error(
                    "is a prefix, not an object; name its files with a glob such as prefix/*/*.parquet".into(),
                )),
                None => Ok(vec![]),
            };
        }
        let matcher = glob_matcher(key_pattern).map_err(list_error)?;
        // Stores list by whole segments: the prefix is the segments before the first glob.
        let segments: Vec<&str> = key_pattern.split('/').collect();
        let literal = segments.iter().take_while(|s| !has_glob(s)).copied().collect::<Vec<_>>().join("/");
        let prefix = if literal.is_empty() { None } else { Some(location(&literal).map_err(list_error)?) };
        let objects: Vec<object_store::ObjectMeta> =
            self.store.list(prefix.as_ref()).try_collect().await.map_err(store_error("listing", pattern))?;
        let mut files: Vec<FileEntry> = objects
            .iter()
            .filter(|meta| matcher.is_match(meta.location.as_ref()))
            .map(|meta| self.entry(meta.location.as_ref(), meta.size))
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    async fn read_to_string(&self, url: &str) -> Result<String> {
        let read_error = |message: String| Error::List { path: url.to_string(), message };
        let path = location(self.key(url).map_err(read_error)?).map_err(read_error)?;
        let got = self.store.get(&path).await.map_err(store_error("reading", url))?;
        let bytes = got.bytes().await.map_err(store_error("reading", url))?;
        String::from_utf8(bytes.to_vec()).map_err(|e| read_error(format!("not UTF-8 text: {e}")))
    }
}

/// Deletes every object of `store` under `prefix` (whole segments), in bulk where the store
/// can; answers how many.
pub async fn delete_under(store: &dyn ObjectStore, prefix: &Path) -> object_store::Result<usize> {
    let locations = store.list(Some(prefix)).map_ok(|meta| meta.location).boxed();
    store.delete_stream(locations).try_fold(0, |deleted, _| async move { Ok(deleted + 1) }).await
}
