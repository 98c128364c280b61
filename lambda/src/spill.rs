//! Spilled partials: a partial result too large for the synchronous response (6 MB) is written
//! by the worker to a spill prefix in S3 as an Arrow IPC stream, and read and deleted by the
//! coordinator. The worker's spill prefix comes from its deployment, never from the event.

use aws_sdk_s3::primitives::ByteStream;

use crate::s3::split_url;

/// Reading, writing or deleting a spilled partial failed.
#[derive(Debug, thiserror::Error)]
#[error("spilled partial {url}: {message}")]
pub struct SpillError {
    pub url: String,
    pub message: String,
}

/// Where a worker writes its spilled partials.
#[derive(Clone, Debug)]
pub struct SpillTarget {
    pub client: aws_sdk_s3::Client,
    /// `s3://bucket/prefix/`.
    pub prefix: String,
}

impl SpillTarget {
    /// Writes `bytes` under the prefix and returns the object's URL. The name carries the query
    /// and task and a random suffix, so a retried or hedged task never overwrites another's.
    pub async fn put(&self, query_id: &str, task_id: usize, bytes: Vec<u8>) -> Result<String, SpillError> {
        let prefix = if self.prefix.ends_with('/') { self.prefix.clone() } else { format!("{}/", self.prefix) };
        let url = format!("{prefix}{}/task-{task_id:05}-{:016x}.arrows", sanitize(query_id), random_u64());
        let (bucket, key) = split_url(&url)
            .ok_or_else(|| SpillError { url: url.clone(), message: "the spill prefix is not an s3:// URL".into() })?;
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/vnd.apache.arrow.stream")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| SpillError {
                url: url.clone(),
                message: format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
            })?;
        Ok(url)
    }
}

/// Reads a spilled partial and deletes it.
pub async fn take(client: &aws_sdk_s3::Client, url: &str) -> Result<Vec<u8>, SpillError> {
    let error = |message: String| SpillError { url: url.to_string(), message };
    let (bucket, key) = split_url(url).ok_or_else(|| error("not an s3:// URL".into()))?;
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| error(format!("{}", aws_sdk_s3::error::DisplayErrorContext(e))))?;
    let bytes = object.body.collect().await.map_err(|e| error(format!("reading the body: {e}")))?.into_bytes().to_vec();
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| error(format!("deleting: {}", aws_sdk_s3::error::DisplayErrorContext(e))))?;
    Ok(bytes)
}

fn sanitize(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_distinct() {
        assert_eq!(sanitize("q-1/../x"), "q-1____x");
        assert_ne!(random_u64(), random_u64());
    }
}
