//! AWS access for the serverless path: one SDK configuration (the standard credential chain,
//! region and endpoint overrides), loaded on first use and shared by the S3 lister, the Lambda
//! invoker, spilled-partial reads and the coordinator DuckDB's S3 secret.

use std::future::Future;
use std::sync::OnceLock;

use aws_config::BehaviorVersion;
use quack_lambda::s3::{Endpoint, S3Access};

/// Where and as whom to reach AWS (or S3/Lambda-compatible stand-ins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// `--region`; else the SDK's chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// `--endpoint-url`: one endpoint for both S3 and Lambda; else the SDK reads
    /// `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_LAMBDA` and `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// The S3 endpoint from `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (see
    /// [`crate::config::Config::from_env`]); DuckDB needs it spelled out.
    pub s3_endpoint_env: Option<String>,
}

impl AwsSettings {
    /// The S3 endpoint override in effect, if any.
    pub fn s3_endpoint(&self) -> Option<&str> {
        self.endpoint_url.as_deref().or(self.s3_endpoint_env.as_deref())
    }
}

/// A lazily loaded SDK configuration and the clients built from it.
#[derive(Debug)]
pub struct Aws {
    settings: AwsSettings,
    sdk: OnceLock<aws_config::SdkConfig>,
    credentials: OnceLock<Option<std::sync::Arc<CachedCredentials>>>,
}

/// Talking to AWS failed.
#[derive(Debug, thiserror::Error)]
#[error("AWS credentials: {message}")]
pub struct AwsError {
    pub message: String,
}

impl Aws {
    pub fn new(settings: AwsSettings) -> Self {
        Aws { settings, sdk: OnceLock::new(), credentials: OnceLock::new() }
    }

    /// The SDK configuration, loaded once (the credential chain itself resolves lazily). From
    /// synchronous code; async code awaits [`Aws::sdk_loaded`] instead.
    pub fn sdk(&self) -> &aws_config::SdkConfig {
        self.sdk.get_or_init(|| block_on(self.loader().load()))
    }

    /// [`Aws::sdk`], awaited rather than blocked on.
    pub async fn sdk_loaded(&self) -> &aws_config::SdkConfig {
        if let Some(sdk) = self.sdk.get() {
            return sdk;
        }
        let loaded = self.loader().load().await;
        self.sdk.get_or_init(|| loaded)
    }

    /// The SDK's credential chain behind one shared cache; `None` when no provider is set.
    pub async fn credentials(&self) -> Option<std::sync::Arc<CachedCredentials>> {
        let sdk = self.sdk_loaded().await;
        self.credentials
            .get_or_init(|| sdk.credentials_provider().map(|p| std::sync::Arc::new(CachedCredentials::new(p))))
            .clone()
    }

    /// A client for Lambda's Invoke API on the SDK's region, endpoint and credentials
    /// ([`crate::lambda_api`]).
    pub async fn invoke_api(&self) -> Result<crate::lambda_api::InvokeApi, crate::lambda_api::InvokeApiError> {
        crate::lambda_api::InvokeApi::new(self.sdk_loaded().await, self.credentials().await).await
    }

    fn loader(&self) -> aws_config::ConfigLoader {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &self.settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(url) = &self.settings.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        loader
    }

    /// An `object_store` S3 store for `bucket`, on the SDK's region, credential chain (cached
    /// until five minutes before they expire) and endpoint override (path-style, plain HTTP
    /// allowed, as S3-compatible servers want). Unsigned when no credential provider is set.
    pub async fn object_store(&self, bucket: &str) -> Result<object_store::aws::AmazonS3, object_store::Error> {
        let sdk = self.sdk_loaded().await;
        let region = sdk.region().map_or_else(|| "us-east-1".to_string(), |r| r.to_string());
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = self.settings.s3_endpoint() {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        builder = match self.credentials().await {
            Some(credentials) => builder.with_credentials(credentials),
            None => builder.with_skip_signature(true),
        };
        builder.build()
    }

    /// An S3 client (path-style when an endpoint override is set, as S3-compatible stores want).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config =
            aws_sdk_s3::config::Builder::from(self.sdk()).force_path_style(self.settings.s3_endpoint().is_some());
        aws_sdk_s3::Client::from_conf(config.build())
    }

    /// A Lambda client without the SDK's own retries: quack's retry wrapper decides, so a
    /// failing handler is not run three times behind its back. Without stalled-stream
    /// protection either: every attempt has a timeout of its own, and the protection's
    /// per-response timer and interceptor are coordinator CPU on every task.
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        let config = aws_sdk_lambda::config::Builder::from(self.sdk())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .stalled_stream_protection(aws_sdk_lambda::config::StalledStreamProtectionConfig::disabled())
            .build();
        aws_sdk_lambda::Client::from_conf(config)
    }

    /// Credentials, region and endpoint for DuckDB's S3 secret, resolved through the chain.
    pub fn duckdb_access(&self) -> Result<S3Access, AwsError> {
        use aws_credential_types::provider::ProvideCredentials;
        let sdk = self.sdk();
        let provider = sdk
            .credentials_provider()
            .ok_or_else(|| AwsError { message: "no credential provider is configured".into() })?;
        let credentials = block_on(provider.provide_credentials()).map_err(|e| AwsError {
            message: format!("{}", aws_smithy_types::error::display::DisplayErrorContext(e)),
        })?;
        Ok(S3Access {
            key_id: Some(credentials.access_key_id().to_string()),
            secret: Some(credentials.secret_access_key().to_string()),
            session_token: credentials.session_token().map(String::from),
            region: sdk.region().map(|r| r.to_string()),
            endpoint: self.settings.s3_endpoint().and_then(Endpoint::parse),
        })
    }
}

/// The SDK's credential chain, asked again only when its credentials are five minutes from
/// expiring: the orchestrator's identity cache, for callers that sign requests themselves
/// (`object_store`'s S3 client, [`crate::lambda_api`]).
#[derive(Debug)]
pub struct CachedCredentials {
    provider: aws_credential_types::provider::SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<aws_credential_types::Credentials>>,
}

impl CachedCredentials {
    pub fn new(provider: aws_credential_types::provider::SharedCredentialsProvider) -> Self {
        CachedCredentials { provider, cached: tokio::sync::Mutex::new(None) }
    }

    /// Credentials valid for at least five more minutes (or without an expiry).
    pub async fn get(
        &self,
    ) -> Result<aws_credential_types::Credentials, aws_credential_types::provider::error::CredentialsError> {
        use aws_credential_types::provider::ProvideCredentials;
        let mut cached = self.cached.lock().await;
        let fresh_until = std::time::SystemTime::now() + std::time::Duration::from_secs(300);
        if let Some(credentials) = cached.as_ref() {
            if credentials.expiry().is_none_or(|expiry| expiry > fresh_until) {
                return Ok(credentials.clone());
            }
        }
        let credentials = self.provider.provide_credentials().await?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for CachedCredentials {
    type Credential = object_store::aws::AwsCredential;

    async fn get_credential(&self) -> object_store::Result<std::sync::Arc<Self::Credential>> {
        let credentials =
            self.get().await.map_err(|e| object_store::Error::Generic { store: "S3", source: Box::new(e) })?;
        Ok(std::sync::Arc::new(object_store::aws::AwsCredential {
            key_id: credentials.access_key_id().to_string(),
            secret_key: credentials.secret_access_key().to_string(),
            token: credentials.session_token().map(String::from),
        }))
    }
}

/// Runs `future` to completion from synchronous code: inside a multi-threaded tokio runtime
/// without blocking its other tasks, elsewhere on a private runtime on a scoped thread.
pub fn block_on<F: Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            return tokio::task::block_in_place(|| handle.block_on(future));
        }
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a private tokio runtime")
                    .block_on(future)
            })
            .join()
            .expect("the blocking thread does not panic")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_endpoint_wins_over_the_environment() {
        let settings = AwsSettings {
            endpoint_url: Some("http://127.0.0.1:1".into()),
            s3_endpoint_env: Some("http://127.0.0.1:2".into()),
            ..Default::default()
        };
        assert_eq!(settings.s3_endpoint(), Some("http://127.0.0.1:1"));
    }

    #[test]
    fn block_on_works_inside_and_outside_a_runtime() {
        assert_eq!(block_on(async { 1 }), 1);
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        assert_eq!(runtime.block_on(async { block_on(async { 2 }) }), 2);
        let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(single.block_on(async { block_on(async { 3 }) }), 3);
    }
}
