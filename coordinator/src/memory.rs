//! An in-memory [`Lister`]: `object_store`'s in-memory store, listed by [`StoreLister`] with the
//! same glob semantics as the local and S3 listers. A real mode for callers that hold their
//! objects already (a listing read from an inventory, tests) and the test double of
//! everything that lists.

use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStoreExt;

use crate::error::{Error, Result};
use crate::partitions::{FileEntry, Lister};
use crate::store::StoreLister;

/// The URL prefix of in-memory objects: `mem://bucket/key`.
pub const URL_PREFIX: &str = "mem://";

/// Objects named `mem://...`, held in memory.
#[derive(Debug, Clone)]
pub struct InMemoryLister {
    inner: StoreLister,
}

impl Default for InMemoryLister {
    fn default() -> Self {
        InMemoryLister { inner: StoreLister::new(Arc::new(InMemory::new()), URL_PREFIX) }
    }
}

impl InMemoryLister {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `bytes` at `url` (`mem://...`), replacing what was there.
    pub async fn put(&self, url: &str, bytes: impl Into<Vec<u8>>) -> Result<()> {
        let put_error = |message: String| Error::List { path: url.to_string(), message };
        let key = url.strip_prefix(URL_PREFIX).ok_or_else(|| put_error(format!("is not under {URL_PREFIX}")))?;
        let path = Path::parse(key).map_err(|e| put_error(format!("not a valid object key: {e}")))?;
        self.inner.store().put(&path, bytes.into().into()).await.map_err(crate::store::store_error("writing", url))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Lister for InMemoryLister {
    async fn list(&self, pattern: &str) -> Result<Vec<FileEntry>> {
        self.inner.list(pattern).await
    }

    async fn read_to_string(&self, path: &str) -> Result<String> {
        self.inner.read_to_string(path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_lister_conformance_suite() {
        let lister = InMemoryLister::new();
        for (path, contents) in crate::conformance::LISTER_FILES {
            lister.put(&format!("mem://lake/{path}"), contents.as_bytes()).await.unwrap();
        }
        crate::conformance::lister(&lister, "mem://lake").await;
    }
}
