//! Listing `s3://` paths and globs, on `object_store`'s S3 client ([`crate::store`]'s glob
//! listing, so the semantics are the local lister's and DuckDB's), and routing a path to the
//! lister of its kind.

use std::collections::HashMap;
use std::sync::Arc;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::partitions::{FileEntry, Lister, LocalLister};
use crate::store::StoreLister;

/// Lists objects of S3 (or an S3-compatible store), one `object_store` store per bucket, built
/// on first use from the SDK's configuration ([`Aws::object_store`]). `s3a://` URLs are read as
/// `s3://` ones; listed files are named `s3://bucket/key`.
pub struct S3Lister {
    aws: Arc<Aws>,
    buckets: tokio::sync::Mutex<HashMap<String, StoreLister>>,
}

impl S3Lister {
    pub fn new(aws: Arc<Aws>) -> Self {
        S3Lister { aws, buckets: tokio::sync::Mutex::new(HashMap::new()) }
    }

    /// The bucket's lister and `url` spelled `s3://bucket/key`.
    async fn bucket(&self, url: &str) -> Result<(StoreLister, String)> {
        let (bucket, key) = quack_lambda::s3::split_url(url)
            .ok_or_else(|| Error::List { path: url.to_string(), message: "not an s3:// URL".into() })?;
        let mut buckets = self.buckets.lock().await;
        let lister = match buckets.get(bucket) {
            Some(lister) => lister.clone(),
            None => {
                let store = self
                    .aws
                    .object_store(bucket)
                    .await
                    .map_err(crate::store::store_error("connecting to S3 for", url))?;
                let lister = StoreLister::new(Arc::new(store), format!("s3://{bucket}/"));
                buckets.insert(bucket.to_string(), lister.clone());
                lister
            }
        };
        Ok((lister, format!("s3://{bucket}/{key}")))
    }
}

impl std::fmt::Debug for S3Lister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Lister").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Lister for S3Lister {
    async fn list(&self, pattern: &str) -> Result<Vec<FileEntry>> {
        let (lister, url) = self.bucket(pattern).await?;
        lister.list(&url).await
    }

    async fn read_to_string(&self, path: &str) -> Result<String> {
        let (lister, url) = self.bucket(path).await?;
        lister.read_to_string(&url).await
    }
}

/// Local paths to the local lister, `s3://` URLs to S3.
pub struct RoutingLister {
    s3: S3Lister,
}

impl RoutingLister {
    pub fn new(aws: Arc<Aws>) -> Self {
        RoutingLister { s3: S3Lister::new(aws) }
    }
}

#[async_trait::async_trait]
impl Lister for RoutingLister {
    async fn list(&self, pattern: &str) -> Result<Vec<FileEntry>> {
        if is_s3(pattern) {
            self.s3.list(pattern).await
        } else {
            LocalLister.list(pattern).await
        }
    }

    async fn read_to_string(&self, path: &str) -> Result<String> {
        if is_s3(path) {
            self.s3.read_to_string(path).await
        } else {
            LocalLister.read_to_string(path).await
        }
    }
}

/// Whether `path` is an S3 URL.
pub fn is_s3(path: &str) -> bool {
    path.starts_with("s3://") || path.starts_with("s3a://")
}
