//! An in-memory [`Lister`]: objects kept in a map, listed with the same glob semantics as the
//! local and S3 listers. A real mode for callers that hold their listing already (tests, a
//! listing read from an inventory) and the test double of everything that lists.

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::error::{Error, Result};
use crate::partitions::{glob_matcher, has_glob, FileEntry, Lister};

/// Objects by path (any string: `mem://bucket/key`, `/a/b`), listed as files.
#[derive(Debug, Default)]
pub struct InMemoryLister {
    objects: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl InMemoryLister {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `bytes` at `path`, replacing what was there.
    pub fn put(&self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.objects.write().unwrap_or_else(|e| e.into_inner()).insert(path.into(), bytes.into());
    }
}

impl Lister for InMemoryLister {
    fn list(&self, pattern: &str) -> Result<Vec<FileEntry>> {
        let list_error = |message: String| Error::List { path: pattern.to_string(), message };
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let entry = |(path, bytes): (&String, &Vec<u8>)| FileEntry { path: path.clone(), size: bytes.len() as u64 };
        if !has_glob(pattern) {
            if let Some(bytes) = objects.get(pattern) {
                return Ok(vec![entry((&pattern.to_string(), bytes))]);
            }
            let directory = format!("{}/", pattern.trim_end_matches('/'));
            if objects.range(directory.clone()..).next().is_some_and(|(path, _)| path.starts_with(&directory)) {
                return Err(list_error("is a directory; name its files with a glob such as dir/*/*.parquet".into()));
            }
            return Ok(vec![]);
        }
        let matcher = glob_matcher(pattern).map_err(list_error)?;
        // BTreeMap order is byte order of the paths: DuckDB's sorted order.
        Ok(objects.iter().filter(|(path, _)| matcher.is_match(path.as_str())).map(entry).collect())
    }

    fn read_to_string(&self, path: &str) -> Result<String> {
        let error = |message: String| Error::List { path: path.to_string(), message };
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let bytes = objects.get(path).ok_or_else(|| error("no such object".into()))?;
        String::from_utf8(bytes.clone()).map_err(|e| error(format!("not UTF-8 text: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_lister_conformance_suite() {
        let lister = InMemoryLister::new();
        for (path, contents) in crate::conformance::LISTER_FILES {
            lister.put(format!("mem://lake/{path}"), contents.as_bytes());
        }
        crate::conformance::lister(&lister, "mem://lake");
    }
}
