//! DuckDB's access to S3: loading the official `httpfs` extension from a file shipped with the
//! binary (never downloaded at run time) and the S3 secret built from AWS-style settings.
//!
//! Shared by the Lambda worker (settings from the Lambda environment, refreshed per invocation)
//! and the coordinator (settings from the AWS credential chain).

use std::path::Path;

use crate::extension::ExtensionError;

/// The file name of DuckDB's httpfs extension.
pub const HTTPFS_FILE: &str = "httpfs.duckdb_extension";

/// Name of the secret quack creates in a DuckDB instance.
pub const SECRET_NAME: &str = "quack_s3";

/// Credentials, region and endpoint DuckDB uses for `s3://` URLs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct S3Access {
    pub key_id: Option<String>,
    pub secret: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); AWS's own when `None`.
    pub endpoint: Option<Endpoint>,
}

impl std::fmt::Debug for S3Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Access")
            .field("key_id", &self.key_id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// An endpoint override: DuckDB wants `host:port` without a scheme, path-style URLs, and whether
/// to use TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host_port: String,
    pub use_ssl: bool,
}

impl Endpoint {
    /// Parses `http://host:port[/]` or `https://host[:port]`; a bare `host:port` means https.
    pub fn parse(url: &str) -> Option<Endpoint> {
        let url = url.trim();
        let (use_ssl, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            (true, url)
        };
        let host_port = rest.trim_end_matches('/');
        (!host_port.is_empty() && !host_port.contains('/'))
            .then(|| Endpoint { host_port: host_port.to_string(), use_ssl })
    }
}

impl S3Access {
    /// Settings from AWS-style variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL`), looked up through `var` (the process environment in the worker).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> S3Access {
        let non_empty = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        S3Access {
            key_id: non_empty("AWS_ACCESS_KEY_ID"),
            secret: non_empty("AWS_SECRET_ACCESS_KEY"),
            session_token: non_empty("AWS_SESSION_TOKEN"),
            region: non_empty("AWS_REGION").or_else(|| non_empty("AWS_DEFAULT_REGION")),
            endpoint: non_empty("AWS_ENDPOINT_URL_S3")
                .or_else(|| non_empty("AWS_ENDPOINT_URL"))
                .and_then(|u| Endpoint::parse(&u)),
        }
    }

    /// `CREATE OR REPLACE SECRET` for these settings (temporary, in memory).
    pub fn secret_sql(&self) -> String {
        let mut options = vec!["TYPE s3".to_string()];
        let mut push = |key: &str, value: &Option<String>| {
            if let Some(value) = value {
                options.push(format!("{key} {}", crate::quote::literal(value)));
            }
        };
        push("KEY_ID", &self.key_id);
        push("SECRET", &self.secret);
        push("SESSION_TOKEN", &self.session_token);
        push("REGION", &self.region);
        if let Some(endpoint) = &self.endpoint {
            options.push(format!("ENDPOINT {}", crate::quote::literal(&endpoint.host_port)));
            options.push("URL_STYLE 'path'".to_string());
            options.push(format!("USE_SSL {}", endpoint.use_ssl));
        }
        format!("CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} ({})", options.join(", "))
    }
}

/// The settings httpfs fills from `AWS_*` variables when it loads. quack keeps credentials in its
/// secret only, so these are emptied right after loading: no SQL can read them back.
pub const CREDENTIAL_SETTINGS: &[&str] = &["s3_access_key_id", "s3_secret_access_key", "s3_session_token"];

/// Loads httpfs into `conn` ([`crate::extension::load`]: from `path` when given, else from the
/// fetch script's cache or DuckDB's extension directory; never downloads). Then empties the
/// [`CREDENTIAL_SETTINGS`] that loading copied from the environment.
pub fn load_httpfs(conn: &duckdb::Connection, path: Option<&Path>) -> Result<(), ExtensionError> {
    let file = crate::extension::load(conn, "httpfs", path)?;
    let clear: String = CREDENTIAL_SETTINGS.iter().map(|name| format!("SET {name} = '';")).collect();
    conn.execute_batch(&clear).map_err(|e| ExtensionError { name: "httpfs", path: file, message: e.to_string() })
}

/// Splits `s3://bucket/key` into bucket and key.
pub fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://").or_else(|| url.strip_prefix("s3a://"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, key))
}

/// Reads the object at `url` (`s3://bucket/key`) whole, classifying a failure: a missing
/// object, a refusal, throttling, or anything else (retryable).
pub async fn get_object(client: &aws_sdk_s3::Client, url: &str) -> Result<bytes::Bytes, crate::exchange::InputError> {
    use crate::exchange::InputError;
    use crate::wire::ErrorType;
    let (bucket, key) = split_url(url)
        .ok_or_else(|| InputError { error_type: ErrorType::BadEvent, message: format!("{url} is not an s3:// URL") })?;
    let object = client.get_object().bucket(bucket).key(key).send().await.map_err(|e| {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let error_type = status.map_or(ErrorType::Internal, crate::runner::status_error_type);
        InputError { error_type, message: format!("reading {url}: {}", aws_sdk_s3::error::DisplayErrorContext(e)) }
    })?;
    let body = object
        .body
        .collect()
        .await
        .map_err(|e| InputError { error_type: ErrorType::Internal, message: format!("reading {url}: {e}") })?;
    Ok(body.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints_like_duckdb_wants_them() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:9000/"),
            Some(Endpoint { host_port: "127.0.0.1:9000".into(), use_ssl: false })
        );
        assert_eq!(
            Endpoint::parse("https://s3.example.com"),
            Some(Endpoint { host_port: "s3.example.com".into(), use_ssl: true })
        );
        assert_eq!(Endpoint::parse("http://host/path"), None);
    }

    #[test]
    fn builds_the_secret_from_aws_variables() {
        let vars = |name: &str| {
            match name {
                "AWS_ACCESS_KEY_ID" => Some("AK"),
                "AWS_SECRET_ACCESS_KEY" => Some("S'K"),
                "AWS_DEFAULT_REGION" => Some("eu-west-1"),
                "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9000"),
                "AWS_SESSION_TOKEN" => Some(""),
                _ => None,
            }
            .map(String::from)
        };
        let access = S3Access::from_vars(vars);
        assert_eq!(access.session_token, None);
        assert_eq!(
            access.secret_sql(),
            "CREATE OR REPLACE TEMPORARY SECRET quack_s3 (TYPE s3, KEY_ID 'AK', SECRET 'S''K', REGION 'eu-west-1', \
             ENDPOINT '127.0.0.1:9000', URL_STYLE 'path', USE_SSL false)"
        );
        assert!(!format!("{access:?}").contains("S'K"));
    }

    #[test]
    fn splits_s3_urls() {
        assert_eq!(split_url("s3://b/k/x.parquet"), Some(("b", "k/x.parquet")));
        assert_eq!(split_url("s3://b"), Some(("b", "")));
        assert_eq!(split_url("/local"), None);
    }
}
