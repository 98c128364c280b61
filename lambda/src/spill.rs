//! Spilled partials: a partial result too large for the synchronous response (6 MB) is written
//! by the worker to a spill prefix in S3 as an Arrow IPC stream, and read and deleted by the
//! coordinator. The worker's spill prefix comes from its deployment, never from the event.
//!
//! Contract: a spilled object is named `<prefix>/<query_id>/task-<task_id:05>-<16 hex>.arrows`
//! ([`object_url`]); the coordinator reads only URLs of exactly that shape under its own
//! configured prefix for the task it sent ([`is_object_of`]), and deletes everything under
//! `<prefix>/<query_id>/` when the query ends ([`delete_query`]), which also removes what hedge
//! losers and abandoned attempts wrote.

use aws_sdk_s3::primitives::ByteStream;

use crate::s3::split_url;

/// Reading, writing or deleting a spilled partial failed.
#[derive(Debug, thiserror::Error)]
#[error("spilled partial {url}: {message}")]
pub struct SpillError {
    pub url: String,
    pub message: String,
    /// The object's size, when it was larger than the reader allowed (and was not read).
    pub too_large: Option<u64>,
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
        let url = object_url(&self.prefix, query_id, task_id, random_u64());
        let (bucket, key) = split_url(&url).ok_or_else(|| SpillError {
            url: url.clone(),
            message: "the spill prefix is not an s3:// URL".into(),
            too_large: None,
        })?;
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
                too_large: None,
            })?;
        Ok(url)
    }
}

/// `prefix` with exactly one trailing `/`.
fn directory(prefix: &str) -> String {
    format!("{}/", prefix.trim_end_matches('/'))
}

/// The URL of a spilled partial of `task_id` of `query_id` under `prefix`.
pub fn object_url(prefix: &str, query_id: &str, task_id: usize, nonce: u64) -> String {
    format!("{}{query_id}/task-{task_id:05}-{nonce:016x}.arrows", directory(prefix))
}

/// Where every spilled partial of `query_id` lies.
pub fn query_prefix(prefix: &str, query_id: &str) -> String {
    format!("{}{query_id}/", directory(prefix))
}

/// Whether `url` is a spilled partial of `task_id` of `query_id` under `prefix`, named exactly as
/// [`object_url`] names it (a valid query id; nothing else before or after).
pub fn is_object_of(prefix: &str, query_id: &str, task_id: usize, url: &str) -> bool {
    if !crate::wire::valid_query_id(query_id) {
        return false;
    }
    let Some(name) = url.strip_prefix(&query_prefix(prefix, query_id)) else { return false };
    let Some(rest) = name.strip_prefix(&format!("task-{task_id:05}-")) else { return false };
    let Some(nonce) = rest.strip_suffix(".arrows") else { return false };
    nonce.len() == 16 && nonce.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Reads a spilled partial of at most `max_bytes` (`None`: any size). A larger object is not
/// read: the error's `too_large` has its size.
pub async fn read(client: &aws_sdk_s3::Client, url: &str, max_bytes: Option<u64>) -> Result<Vec<u8>, SpillError> {
    let error = |message: String| SpillError { url: url.to_string(), message, too_large: None };
    let too_large = |bytes: u64| SpillError {
        url: url.to_string(),
        message: format!("{bytes} bytes, more than the {} bytes it may have", max_bytes.unwrap_or_default()),
        too_large: Some(bytes),
    };
    let (bucket, key) = split_url(url).ok_or_else(|| error("not an s3:// URL".into()))?;
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| error(format!("{}", aws_sdk_s3::error::DisplayErrorContext(e))))?;
    let declared = object.content_length().unwrap_or(0).max(0) as u64;
    if max_bytes.is_some_and(|max| declared > max) {
        return Err(too_large(declared));
    }
    let bytes = object.body.collect().await.map_err(|e| error(format!("reading the body: {e}")))?.into_bytes().to_vec();
    if max_bytes.is_some_and(|max| bytes.len() as u64 > max) {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Deletes one spilled partial.
pub async fn delete(client: &aws_sdk_s3::Client, url: &str) -> Result<(), SpillError> {
    let error = |message: String| SpillError { url: url.to_string(), message, too_large: None };
    let (bucket, key) = split_url(url).ok_or_else(|| error("not an s3:// URL".into()))?;
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| error(format!("deleting: {}", aws_sdk_s3::error::DisplayErrorContext(e))))?;
    Ok(())
}

/// Reads a spilled partial of at most `max_bytes` and deletes it; a failed delete is logged, not
/// an error (the query's prefix is deleted at its end anyway, and the rows were read).
pub async fn take(client: &aws_sdk_s3::Client, url: &str, max_bytes: Option<u64>) -> Result<Vec<u8>, SpillError> {
    let bytes = read(client, url, max_bytes).await?;
    if let Err(e) = delete(client, url).await {
        tracing::warn!(error = %e, "could not delete a spilled partial; the query's cleanup will retry");
    }
    Ok(bytes)
}

/// Deletes every object under `<prefix>/<query_id>/`; the number deleted.
pub async fn delete_query(client: &aws_sdk_s3::Client, prefix: &str, query_id: &str) -> Result<usize, SpillError> {
    let url = query_prefix(prefix, query_id);
    let error = |message: String| SpillError { url: url.clone(), message, too_large: None };
    if !crate::wire::valid_query_id(query_id) {
        return Err(error("not a valid query id".into()));
    }
    let (bucket, key_prefix) = split_url(&url).ok_or_else(|| error("not an s3:// URL".into()))?;
    let mut deleted = 0;
    let mut pages = client.list_objects_v2().bucket(bucket).prefix(key_prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error(format!("listing: {}", aws_sdk_s3::error::DisplayErrorContext(e))))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            delete(client, &format!("s3://{bucket}/{key}")).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
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
    fn names_are_distinct_and_checked_exactly() {
        assert_ne!(random_u64(), random_u64());
        let url = object_url("s3://spill/partials", "q-1", 7, 0xab);
        assert_eq!(url, "s3://spill/partials/q-1/task-00007-00000000000000ab.arrows");
        assert!(is_object_of("s3://spill/partials/", "q-1", 7, &url));
        assert!(!is_object_of("s3://spill/partials/", "q-1", 8, &url), "another task's");
        assert!(!is_object_of("s3://spill/partials/", "q-2", 7, &url), "another query's");
        assert!(!is_object_of("s3://spill/other/", "q-1", 7, &url), "another prefix");
        for forged in [
            "s3://lake/trips/date=2024-03-01/part-0.parquet",
            "s3://spill/partials/q-1/task-00007-00000000000000ab.arrows/../../x",
            "s3://spill/partials/q-1/task-00007-00000000000000ab.arrowsx",
            "s3://spill/partials/q-1/task-00007-zz000000000000ab.arrows",
            "s3://spill/partials/q-1/../q-1/task-00007-00000000000000ab.arrows",
        ] {
            assert!(!is_object_of("s3://spill/partials", "q-1", 7, forged), "{forged}");
        }
        assert!(!is_object_of(
            "s3://spill/partials",
            "../x",
            7,
            "s3://spill/partials/../x/task-00007-00000000000000ab.arrows"
        ));
    }
}
