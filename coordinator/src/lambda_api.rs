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
//! - signing is `aws-sigv4`'s, the SDK's signer.
//!
//! Contract: [`InvokeApi::invoke`] answers the function's payload with Lambda's
//! `X-Amz-Function-Error` when the status is 2xx; any other status is
//! [`InvokeApiError::Service`] with the service's error type (`x-amzn-ErrorType`, else the
//! body's `Type`/`__type`), its message and `Retry-After`. Classifying those for retries is the
//! invoker's job ([`crate::invoke::lambda`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningParams, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::aws::CachedCredentials;

/// What a path label keeps unescaped: RFC 3986's unreserved characters.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The headers of every Invoke, all signed.
const HEADERS: [(&str, &str); 2] = [("x-amz-invocation-type", "RequestResponse"), ("content-type", "application/json")];

/// Lambda's signing name.
const SERVICE: &str = "lambda";

/// A client for one region's (or one override's) Invoke API.
#[derive(Debug, Clone)]
pub struct InvokeApi {
    http: reqwest::Client,
    /// `scheme://host[:port][/path]`, without a trailing `/`.
    endpoint: String,
    region: String,
    /// `None`: requests go unsigned (no credential provider is configured).
    credentials: Option<Arc<CachedCredentials>>,
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
    /// No answer: the connection failed, was reset, or the body could not be read.
    #[error("calling Lambda at {endpoint}: {source}")]
    Dispatch {
        endpoint: String,
        #[source]
        source: reqwest::Error,
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
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| InvokeApiError::Request { endpoint: endpoint.clone(), message: e.to_string() })?;
        Ok(InvokeApi { http, endpoint, region, credentials })
    }

    /// Invokes `function` (a name, ARN or `name:qualifier`) with `payload` and waits for its
    /// answer.
    pub async fn invoke(&self, function: &str, payload: Vec<u8>) -> Result<Invoked, InvokeApiError> {
        let url =
            format!("{}/2015-03-31/functions/{}/invocations", self.endpoint, utf8_percent_encode(function, LABEL));
        let request_error = |message: String| InvokeApiError::Request { endpoint: self.endpoint.clone(), message };
        let mut request = self.http.post(&url);
        for (name, value) in HEADERS {
            request = request.header(name, value);
        }
        if let Some(credentials) = &self.credentials {
            let credentials = credentials.get().await.map_err(|e| request_error(format!("AWS credentials: {e}")))?;
            let identity: Identity = credentials.into();
            let params: SigningParams = v4::SigningParams::builder()
                .identity(&identity)
                .region(&self.region)
                .name(SERVICE)
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .map_err(|e| request_error(format!("signing parameters: {e}")))?
                .into();
            let signable =
                SignableRequest::new("POST", url.as_str(), HEADERS.into_iter(), SignableBody::Bytes(&payload))
                    .map_err(|e| request_error(format!("signing: {e}")))?;
            let (instructions, _) =
                sign(signable, &params).map_err(|e| request_error(format!("signing: {e}")))?.into_parts();
            for (name, value) in instructions.headers() {
                request = request.header(name, value);
            }
        }
        let dispatch = |source| InvokeApiError::Dispatch { endpoint: self.endpoint.clone(), source };
        let response = request.body(payload).send().await.map_err(dispatch)?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let function_error = header("x-amz-function-error");
        let error_type = header("x-amzn-errortype");
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let body = response.bytes().await.map_err(dispatch)?;
        if (200..300).contains(&status) {
            return Ok(Invoked { function_error, payload: body });
        }
        Err(service_error(status, error_type, retry_after, body))
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
        assert_eq!(encoded, "arn%3Aaws%3Alambda%3Aus-east-1%3A123%3Afunction%3Aquack%2F..%2Fx%3Alive");
    }
}
