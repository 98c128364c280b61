//! Listing `s3://` paths and globs with ListObjectsV2 (paginated), for the same partition and
//! pruning code as local files. Glob semantics match the local lister and DuckDB: `*` and `?`
//! stay within one path segment, `**` crosses segments.

use crate::aws::block_on;
use crate::error::{Error, Result};
use crate::partitions::{glob_matcher, has_glob, FileEntry, Lister, LocalLister};

/// Lists objects of S3 (or an S3-compatible store).
#[derive(Clone, Debug)]
pub struct S3Lister {
    client: aws_sdk_s3::Client,
}

impl S3Lister {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3Lister { client }
    }

    async fn list_prefix(&self, bucket: &str, prefix: &str) -> std::result::Result<Vec<(String, u64)>, String> {
        let mut objects = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    objects.push((key.to_string(), object.size().unwrap_or(0).max(0) as u64));
                }
            }
        }
        Ok(objects)
    }
}

impl S3Lister {
    async fn get_text(&self, url: &str) -> std::result::Result<String, String> {
        let (bucket, key) = quack_lambda::s3::split_url(url).ok_or("not an s3:// URL")?;
        let object = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        let bytes = object.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("not UTF-8 text: {e}"))
    }
}

impl Lister for S3Lister {
    fn read_to_string(&self, path: &str) -> Result<String> {
        block_on(self.get_text(path)).map_err(|message| Error::List { path: path.to_string(), message })
    }

    fn list(&self, pattern: &str) -> Result<Vec<FileEntry>> {
        let list_error = |message: String| Error::List { path: pattern.to_string(), message };
        let (bucket, key_pattern) =
            quack_lambda::s3::split_url(pattern).ok_or_else(|| list_error("not an s3:// URL".into()))?;
        let glob_at = key_pattern.find(['*', '?', '[']).unwrap_or(key_pattern.len());
        let prefix = &key_pattern[..glob_at];
        let objects = block_on(self.list_prefix(bucket, prefix)).map_err(list_error)?;
        let mut files: Vec<FileEntry> = if has_glob(key_pattern) {
            let matcher = glob_matcher(key_pattern).map_err(list_error)?;
            objects
                .into_iter()
                .filter(|(key, _)| matcher.is_match(key))
                .map(|(key, size)| FileEntry { path: format!("s3://{bucket}/{key}"), size })
                .collect()
        } else {
            let directory = format!("{}/", key_pattern.trim_end_matches('/'));
            let exact: Vec<FileEntry> = objects
                .iter()
                .filter(|(key, _)| key == key_pattern)
                .map(|(key, size)| FileEntry { path: format!("s3://{bucket}/{key}"), size: *size })
                .collect();
            if exact.is_empty() && objects.iter().any(|(key, _)| key.starts_with(&directory)) {
                return Err(list_error(
                    "is a prefix, not an object; name its files with a glob such as prefix/*/*.parquet".into(),
                ));
            }
            exact
        };
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }
}

/// Local paths to the local lister, `s3://` URLs to S3 (its client built on first use).
pub struct RoutingLister {
    aws: std::sync::Arc<crate::aws::Aws>,
    s3: std::sync::OnceLock<S3Lister>,
}

impl RoutingLister {
    pub fn new(aws: std::sync::Arc<crate::aws::Aws>) -> Self {
        RoutingLister { aws, s3: std::sync::OnceLock::new() }
    }
}

impl RoutingLister {
    fn s3(&self) -> &S3Lister {
        self.s3.get_or_init(|| S3Lister::new(self.aws.s3()))
    }
}

impl Lister for RoutingLister {
    fn list(&self, pattern: &str) -> Result<Vec<FileEntry>> {
        if is_s3(pattern) {
            self.s3().list(pattern)
        } else {
            LocalLister.list(pattern)
        }
    }

    fn read_to_string(&self, path: &str) -> Result<String> {
        if is_s3(path) {
            self.s3().read_to_string(path)
        } else {
            LocalLister.read_to_string(path)
        }
    }
}

/// Whether `path` is an S3 URL.
pub fn is_s3(path: &str) -> bool {
    path.starts_with("s3://") || path.starts_with("s3a://")
}
