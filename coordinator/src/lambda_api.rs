//! A lean client for Lambda's Invoke API (`RequestResponse`): one SigV4-signed POST per task on
//! a pooled HTTP connection, and nothing else.
//!
//! Why not the SDK's `invoke()`: its generic orchestrator (runtime plugins merged per call,
//! interceptors, identity and endpoint resolution, type-erased config bags) costs the
//! coordinator about 0.2 ms of CPU per invocation, the largest per-task cost of a fan-out of
//! thousands of tasks. What it does once per call is done here once per client:
//! - the endpoint is the SDK's own resolution (its endpoint rules over region, FIPS and
//!   dual-stack, or the override from `--endpoint-url`, `AWS_ENDPOINT_URL_LAMBDA`,
//!   `AWS_ENDPOINT_URL` or the profile), resolved when the client is made;
//! - credentials come from the SDK's chain through [`CachedCredentials`];
//! - signing is [`crate::sigv4`]'s: what `aws-sigv4` signs, with the day's key cached;
//! - the URL of a function's Invoke is parsed once ([`InvokeApi::target`]), and a request is
//!   one write on a kept-alive connection, its answer read in the caller's task
//!   ([`crate::http1`]; no redirects, no URL parsing per request).
//!
//! Contract: [`InvokeApi::invoke`] answers the function's payload with Lambda's
//! `X-Amz-Function-Error` when the status is 2xx; any other status is
//! [`InvokeApiError::Service`] with the service's error type (`x-amzn-ErrorType`, else the
//! body's `Type`/`__type`), its message and `Retry-After`. Classifying those for retries is the
//! invoker's job ([`crate::invoke::lambda`]).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::aws::CachedCredentials;
use crate::http1::Connections;
use crate::sigv4::{InvokeSigner, SigningTarget};

/// What a path label keeps unescaped: RFC 3986's unreserved characters but `.`, so that no
/// label is a dot segment.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// The headers of every Invoke, all signed.
const HEADERS: [(&str, &str); 2] = [("x-amz-invocation-type", "RequestResponse"), ("content-type", "application/json")];

/// The largest answer read: Lambda's synchronous responses are at most 6 MB (20 MB streamed).
pub const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// A client for one region's (or one override's) Invoke API.
#[derive(Clone)]
pub struct InvokeApi {
    http: Arc<Connections>,
    /// `scheme://host[:port][/path]`, without a trailing `/`.
    endpoint: String,
    signer: Arc<InvokeSigner>,
    /// `None`: requests go unsigned (no credential provider is configured).
    credentials: Option<Arc<CachedCredentials>>,
}

impl std::fmt::Debug for InvokeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokeApi").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// One function's Invoke: its URL and what signing it needs, made once per function.
#[derive(Debug, Clone)]
pub struct InvokeTarget {
    /// The request line and the headers every request to it has, up to `content-length: `.
    head: String,
    signing: SigningTarget,
}

/// A 2xx answer to an Invoke.
#[derive(Debug)]
pub struct Invoked {
    /// `X-Amz-Function-Error`: the handler failed (`Unhandled`) and the payload says how.
    pub function_error: Option<String>,
    pub payload: Bytes,
}

/// An Invoke that got no 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeApiError {
    /// No answer: the connection failed, was reset, or the body could not be read. Worth
    /// another try.
    #[error("calling Lambda at {endpoint}: {source}")]
    Dispatch {
        endpoint: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request could not be made (a credential chain failure, an unsignable request).
    #[error("preparing the request to Lambda at {endpoint}: {message}")]
    Request { endpoint: String, message: String },
    /// Lambda answered with an error status.
    #[error("Lambda answered {status} {error_type}: {message}")]
    Service {
        status: u16,
        /// The service's error code, e.g. `TooManyRequestsException`; empty when it gave none.
        error_type: String,
        message: String,
        /// `Retry-After` (or a throttle's `retryAfterSeconds`), in whole seconds.
        retry_after: Option<Duration>,
        body: Bytes,
    },
}

impl InvokeApi {
    /// A client for the SDK configuration `sdk`: its region (`us-east-1` when none is set),
    /// endpoint resolution and credential chain (cached in `credentials`).
    pub async fn new(
        sdk: &aws_config::SdkConfig,
        credentials: Option<Arc<CachedCredentials>>,
    ) -> Result<Self, InvokeApiError> {
        use aws_sdk_lambda::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let region = sdk.region().map_or_else(|| "us-east-1".to_string(), |r| r.to_string());
        let mut params = Params::builder()
            .region(region.clone())
            .use_fips(sdk.use_fips().unwrap_or(false))
            .use_dual_stack(sdk.use_dual_stack().unwrap_or(false));
        if let Some(url) = endpoint_override(sdk) {
            params = params.endpoint(url);
        }
        let request_error = |message: String| InvokeApiError::Request { endpoint: "(unresolved)".into(), message };
        let params = params.build().map_err(|e| request_error(format!("endpoint parameters: {e}")))?;
        let endpoint = DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .map_err(|e| request_error(format!("resolving the Lambda endpoint for {region}: {e}")))?;
        let endpoint = endpoint.url().trim_end_matches('/').to_string();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let tls = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(tls) => tls,
            // Plain HTTP (a local emulator) needs no roots; HTTPS fails here, saying why.
            Err(e) if endpoint.starts_with("http://") => {
                tracing::debug!(error = %e, "no system root certificates; the Lambda endpoint is plain HTTP");
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            }
            Err(e) => {
                return Err(InvokeApiError::Request {
                    endpoint,
                    message: format!("loading the system's root certificates: {e}"),
                })
            }
        };
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| InvokeApiError::Request { endpoint: endpoint.clone(), message: format!("the URL: {e}") })?;
        let http = Connections::new(tls.https_or_http().enable_http1().wrap_connector(connector), uri);
        Ok(InvokeApi { http: Arc::new(http), endpoint, signer: Arc::new(InvokeSigner::new(region)), credentials })
    }

    /// The Invoke of `function` (a name, ARN or `name:qualifier`): its URL, made once.
    pub fn target(&self, function: &str) -> Result<InvokeTarget, InvokeApiError> {
        let request_error = |message: String| InvokeApiError::Request { endpoint: self.endpoint.clone(), message };
        let url =
            format!("{}/2015-03-31/functions/{}/invocations", self.endpoint, utf8_percent_encode(function, LABEL));
        let uri: http::Uri = url.parse().map_err(|e| request_error(format!("the URL {url}: {e}")))?;
        let signing = InvokeSigner::target(&uri, &HEADERS).map_err(|e| request_error(e.to_string()))?;
        let mut head = format!("POST {} HTTP/1.1\r\nhost: {}\r\n", uri.path(), signing.host());
        for (name, value) in HEADERS {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("content-length: ");
        Ok(InvokeTarget { head, signing })
    }

    /// Invokes `target` with `payload` and waits for its answer.
    pub async fn invoke(&self, target: &InvokeTarget, payload: Vec<u8>) -> Result<Invoked, InvokeApiError> {
        let request_error = |message: String| InvokeApiError::Request { endpoint: self.endpoint.clone(), message };
        let mut head = String::with_capacity(target.head.len() + 512);
        head.push_str(&target.head);
        head.push_str(&payload.len().to_string());
        head.push_str("\r\n");
        if let Some(credentials) = &self.credentials {
            let credentials = credentials.get().await.map_err(|e| request_error(format!("AWS credentials: {e}")))?;
            let signature = self.signer.sign(&target.signing, &credentials, &payload, SystemTime::now());
            let mut header = |name: &str, value: &str| {
                // A value that would end the header early is never sent (a forged credential).
                if value.bytes().any(|b| b < b' ' && b != b'\t' || b == 0x7f) {
                    return Err(request_error(format!("the {name} header has a control character")));
                }
                for part in [name, ": ", value, "\r\n"] {
                    head.push_str(part);
                }
                Ok(())
            };
            header("x-amz-date", &signature.amz_date)?;
            header("authorization", &signature.authorization)?;
            if let Some(token) = &signature.security_token {
                header("x-amz-security-token", token)?;
            }
        }
        head.push_str("\r\n");
        let answer = self
            .http
            .exchange(head.as_bytes(), &payload, MAX_ANSWER)
            .await
            .map_err(|e| InvokeApiError::Dispatch { endpoint: self.endpoint.clone(), source: Box::new(e) })?;
        if (200..300).contains(&answer.status) {
            let function_error = answer.header("x-amz-function-error").map(str::to_string);
            return Ok(Invoked { function_error, payload: answer.body });
        }
        let retry_after =
            answer.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let error_type = answer.header("x-amzn-errortype").map(str::to_string);
        Err(service_error(answer.status, error_type, retry_after, answer.body))
    }
}

/// An error answer's code, message and retry hint, from its headers or its JSON body.
fn service_error(
    status: u16,
    header_type: Option<String>,
    retry_after: Option<Duration>,
    body: Bytes,
) -> InvokeApiError {
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let field = |names: &[&str]| names.iter().find_map(|name| json.as_ref()?.get(*name)?.as_str().map(str::to_string));
    // `x-amzn-ErrorType` may carry a namespace URL after a colon; `__type` a `#`-prefixed shape.
    let error_type = header_type
        .or_else(|| field(&["Type", "__type", "code"]))
        .map(|t| {
            let t = t.split(':').next().unwrap_or_default();
            t.rsplit('#').next().unwrap_or_default().to_string()
        })
        .unwrap_or_default();
    let message = field(&["message", "Message", "errorMessage"])
        .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
    let retry_after = retry_after.or_else(|| {
        let seconds = json.as_ref()?.get("retryAfterSeconds")?;
        seconds.as_u64().or_else(|| seconds.as_str()?.trim().parse().ok()).map(Duration::from_secs)
    });
    InvokeApiError::Service { status, error_type, message, retry_after, body }
}

/// The Lambda endpoint override, resolved as the SDK resolves it: `--endpoint-url` set on the
/// loader wins, then `AWS_ENDPOINT_URL_LAMBDA` / the profile's `lambda` section, then
/// `AWS_ENDPOINT_URL` / the profile's `endpoint_url`.
fn endpoint_override(sdk: &aws_config::SdkConfig) -> Option<String> {
    if sdk.get_origin("endpoint_url").is_client_config() {
        return sdk.endpoint_url().map(str::to_string);
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("Lambda")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config().and_then(|c| c.load_config(key)).or_else(|| sdk.endpoint_url().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_name_their_type_message_and_retry_hint() {
        let throttled = service_error(
            429,
            Some("TooManyRequestsException:http://internal.amazon.com/coral/com.amazonaws.awslambda/".into()),
            None,
            Bytes::from_static(br#"{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded.","retryAfterSeconds":"2"}"#),
        );
        let InvokeApiError::Service { status, error_type, message, retry_after, .. } = throttled else { panic!() };
        assert_eq!(
            (status, error_type.as_str(), message.as_str()),
            (429, "TooManyRequestsException", "Rate Exceeded.")
        );
        assert_eq!(retry_after, Some(Duration::from_secs(2)));

        let missing = service_error(
            404,
            None,
            Some(Duration::from_secs(7)),
            Bytes::from_static(
                br#"{"__type":"com.amazon#ResourceNotFoundException","Message":"Function not found: x"}"#,
            ),
        );
        let InvokeApiError::Service { error_type, message, retry_after, .. } = missing else { panic!() };
        assert_eq!((error_type.as_str(), message.as_str()), ("ResourceNotFoundException", "Function not found: x"));
        assert_eq!(retry_after, Some(Duration::from_secs(7)));

        let opaque = service_error(502, None, None, Bytes::from_static(b"<html>bad gateway</html>"));
        let InvokeApiError::Service { error_type, message, .. } = opaque else { panic!() };
        assert_eq!((error_type.as_str(), message.as_str()), ("", "<html>bad gateway</html>"));
    }

    #[test]
    fn function_names_are_one_escaped_path_segment() {
        let encoded = utf8_percent_encode("arn:aws:lambda:us-east-1:123:function:quack/../x:live", LABEL).to_string();
        assert_eq!(encoded, "arn%3Aaws%3Alambda%3Aus-east-1%3A123%3Afunction%3Aquack%2F%2E%2E%2Fx%3Alive");
        assert_eq!(utf8_percent_encode("..", LABEL).to_string(), "%2E%2E");
    }
}
