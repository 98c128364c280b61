//! [`LambdaInvoker`]: runs a task in AWS Lambda through the Invoke API (RequestResponse), and
//! reads (then deletes) partials the worker spilled to S3.
//!
//! Contract:
//! - Invocations go through [`crate::lambda_api`], a lean Invoke client (the SDK's orchestrator
//!   costs more coordinator CPU per task than everything else); GetFunctionConfiguration, once a
//!   query, through the SDK.
//! - Failures map to [`InvokeError`] with a [`Retryable`] class decided here, from structured
//!   data only: the service's error type and HTTP status (`TooManyRequestsException` and 429 are
//!   throttling, with the service's `Retry-After`; 5xx and dropped connections are passing), and
//!   Lambda's `errorType` for function errors (its own timeout, out of memory, an oversized
//!   response and a broken cold start are tried once more at most; a crashed handler again).
//! - An answer is trusted only as far as it matches the task sent: its wire version, query id
//!   and task id must be the task's, and a spilled partial is read only at the URL
//!   [`quack_lambda::spill::is_object_of`] allows under the configured spill prefix (a worker
//!   spilling while this side has no spill prefix configured is an error, not a read).
//! - Each attempt is bounded by the configured timeout, or else by the function's own timeout
//!   (GetFunctionConfiguration, read once) plus [`TIMEOUT_SLACK`].
//! - [`Invoker::finish`] deletes everything under `<spill prefix>/<query id>/`: partials of
//!   hedge losers, timed-out attempts and abandoned tasks leave nothing behind.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use quack_lambda::{PartialData, PartialResult, Task, TaskResponse, WIRE_VERSION};
use tokio::sync::OnceCell;

use super::{InvokeError, Invoker, QueryRun, Retryable};
use crate::aws::Aws;
use crate::lambda_api::{InvokeApi, InvokeApiError, InvokeTarget};

/// How much longer than the function's own timeout an attempt may take (network, queueing).
pub const TIMEOUT_SLACK: Duration = Duration::from_secs(10);

/// How long to wait for GetFunctionConfiguration before assuming Lambda's largest timeout.
pub const CONFIGURATION_TIMEOUT: Duration = Duration::from_secs(2);

/// Lambda's largest timeout: the attempt timeout when the function's is unknown.
pub const MAX_FUNCTION_TIMEOUT: Duration = Duration::from_secs(900);

/// Invokes one Lambda function per task.
pub struct LambdaInvoker {
    aws: Arc<Aws>,
    /// The Invoke client and this function's target, made on first use.
    api: OnceCell<(InvokeApi, InvokeTarget)>,
    client: aws_sdk_lambda::Client,
    function: String,
    s3: aws_sdk_s3::Client,
    spill_prefix: Option<String>,
    attempt_timeout: Option<Duration>,
    function_timeout: OnceCell<Duration>,
}

impl LambdaInvoker {
    /// `function` is a name, ARN or `name:alias`, reached through `aws`'s region, endpoint and
    /// credentials; spilled partials are read through `aws`'s S3 client, and accepted only under
    /// `spill_prefix`.
    pub fn new(aws: Arc<Aws>, function: impl Into<String>, spill_prefix: Option<String>) -> Self {
        LambdaInvoker {
            client: aws.lambda(),
            s3: aws.s3(),
            aws,
            api: OnceCell::new(),
            function: function.into(),
            spill_prefix,
            attempt_timeout: None,
            function_timeout: OnceCell::new(),
        }
    }

    /// Bounds every attempt by `timeout` instead of the function's own timeout.
    pub fn with_attempt_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The per-attempt timeout: the configured one, else the function's timeout plus
    /// [`TIMEOUT_SLACK`] (GetFunctionConfiguration, asked once; [`MAX_FUNCTION_TIMEOUT`] when the
    /// service does not say).
    pub async fn attempt_timeout(&self) -> Duration {
        if let Some(timeout) = self.attempt_timeout {
            return timeout;
        }
        *self
            .function_timeout
            .get_or_init(|| async {
                let request = self.client.get_function_configuration().function_name(&self.function).send();
                let seconds = match tokio::time::timeout(CONFIGURATION_TIMEOUT, request).await {
                    Ok(Ok(output)) => output.timeout().and_then(|s| u64::try_from(s).ok()),
                    Ok(Err(error)) => {
                        let error = aws_sdk_lambda::error::DisplayErrorContext(&error);
                        tracing::info!(function = %self.function, %error, "the function's timeout is unknown; using Lambda's largest");
                        None
                    }
                    Err(_) => {
                        tracing::info!(function = %self.function, "GetFunctionConfiguration did not answer; using Lambda's largest timeout");
                        None
                    }
                };
                seconds.map_or(MAX_FUNCTION_TIMEOUT, Duration::from_secs).min(MAX_FUNCTION_TIMEOUT) + TIMEOUT_SLACK
            })
            .await
    }

    async fn call(&self, task: &Task, run: &QueryRun) -> Result<PartialResult, InvokeError> {
        // Sized once for the task's text (the JSON adds its names and a few escapes).
        let size = task.sql.len() + task.files.iter().map(|f| f.len() + 3).sum::<usize>() + task.label.len() + 256;
        let mut payload = Vec::with_capacity(size);
        serde_json::to_writer(&mut payload, task)
            .map_err(|e| InvokeError::Transport { message: format!("encoding the task: {e}"), retry: Retryable::No })?;
        let timeout = self.attempt_timeout().await;
        let (api, target) = self
            .api
            .get_or_try_init(|| async {
                let api = self.aws.invoke_api().await?;
                let target = api.target(&self.function)?;
                Ok::<_, InvokeApiError>((api, target))
            })
            .await
            .map_err(|e| InvokeError::Transport {
                message: format!("function {}: {e}", self.function),
                retry: Retryable::No,
            })?;
        QueryRun::add(&run.attempts, 1);
        let started = std::time::Instant::now();
        let sent = match tokio::time::timeout(timeout, api.invoke(target, payload)).await {
            Ok(sent) => sent,
            Err(_) => {
                QueryRun::add(&run.abandoned_ms, started.elapsed().as_millis() as u64);
                return Err(InvokeError::Timeout { seconds: timeout.as_secs() });
            }
        };
        let output = match sent {
            Ok(output) => output,
            Err(error) => return Err(api_error(&self.function, error)),
        };
        let body = output.payload.as_ref();
        if let Some(kind) = output.function_error.as_deref() {
            QueryRun::add(&run.failed_ms, started.elapsed().as_millis() as u64);
            return Err(function_error(&self.function, kind, body));
        }
        let response: TaskResponse = serde_json::from_slice(body).map_err(|e| InvokeError::Transport {
            message: format!(
                "function {}: the answer is not a quack task response ({e}): {}",
                self.function,
                preview(body)
            ),
            retry: Retryable::No,
        })?;
        let mut partial = match response {
            TaskResponse::Ok(partial) => partial,
            TaskResponse::Error(failure) => {
                QueryRun::add(&run.failed_ms, started.elapsed().as_millis() as u64);
                check_identity(&self.function, task, failure.version, &failure.query_id, failure.task_id)?;
                return Err(InvokeError::Task(failure));
            }
        };
        check_identity(&self.function, task, partial.version, &partial.query_id, partial.task_id)?;
        if let PartialData::Spilled { url } = &partial.data {
            let Some(prefix) = &self.spill_prefix else {
                return Err(InvokeError::Transport {
                    message: format!(
                        "function {}: the worker spilled task {}'s partial to {url}, but no spill prefix is \
                         configured here (--spill-prefix or QUACK_SPILL_PREFIX), so it is not read",
                        self.function, task.task_id
                    ),
                    retry: Retryable::No,
                });
            };
            if !quack_lambda::spill::is_object_of(prefix, &task.query_id, task.task_id, url) {
                return Err(InvokeError::Transport {
                    message: format!(
                        "function {}: the answer to task {} names {url} as its spilled partial, which is not a \
                         spill object of this task under {prefix}; it is not read",
                        self.function, task.task_id
                    ),
                    retry: Retryable::No,
                });
            }
            QueryRun::add(&run.s3_requests, 2);
            let room = run.gather.room();
            let arrow_ipc = quack_lambda::spill::take(&self.s3, url, room).await.map_err(|e| match e.too_large {
                Some(bytes) => InvokeError::GatherLimit { bytes, room: room.unwrap_or_default() },
                None => InvokeError::Transport { message: e.to_string(), retry: Retryable::Yes },
            })?;
            partial.data = PartialData::Inline { arrow_ipc };
        }
        Ok(partial)
    }
}

impl Invoker for LambdaInvoker {
    fn invoke<'a>(
        &'a self,
        task: &'a Task,
        run: &'a Arc<QueryRun>,
    ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
        Box::pin(self.call(task, run))
    }

    fn finish(&self, query_id: &str) -> BoxFuture<'_, ()> {
        let query_id = query_id.to_string();
        Box::pin(async move {
            let Some(prefix) = &self.spill_prefix else { return };
            match quack_lambda::spill::delete_query(&self.s3, prefix, &query_id).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(%query_id, deleted, "deleted the query's leftover spilled partials"),
                Err(e) => tracing::warn!(%query_id, error = %e, "could not clean the query's spill prefix"),
            }
        })
    }
}

/// An answer must be to the task that was sent.
fn check_identity(
    function: &str,
    task: &Task,
    version: u32,
    query_id: &str,
    task_id: usize,
) -> Result<(), InvokeError> {
    if version == WIRE_VERSION && query_id == task.query_id && task_id == task.task_id {
        return Ok(());
    }
    let shown: String = query_id.chars().take(80).collect();
    Err(InvokeError::Transport {
        message: format!(
            "function {function}: answered version {version}, query {shown:?}, task {task_id} to version \
             {WIRE_VERSION}, query {}, task {}; the answer is dropped",
            task.query_id, task.task_id
        ),
        retry: Retryable::No,
    })
}

/// The class of an Invoke that got no answer from the function.
fn api_error(function: &str, error: InvokeApiError) -> InvokeError {
    let message = format!("function {function}: {error}");
    match error {
        InvokeApiError::Service { status, error_type, retry_after, body, .. } => {
            // The emulator answers a handler error with 500 and the function-error body.
            if status == 500 {
                if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) {
                    if let Some(kind) = value.get("errorType").and_then(|t| t.as_str()) {
                        return function_error(function, kind, &body);
                    }
                }
            }
            InvokeError::Transport { message, retry: service_error_retry(status, &error_type, retry_after) }
        }
        // Connection refused or reset, unreadable answers: try again; a request that could not
        // be built would not be built the next time either.
        InvokeApiError::Dispatch { .. } => InvokeError::Transport { message, retry: Retryable::Yes },
        InvokeApiError::Request { .. } => InvokeError::Transport { message, retry: Retryable::No },
    }
}

/// How an Invoke error answer may be retried, from Lambda's error type and the HTTP status.
pub fn service_error_retry(status: u16, error_type: &str, retry_after: Option<Duration>) -> Retryable {
    match error_type {
        "TooManyRequestsException"
        | "EC2ThrottledException"
        | "ENILimitReachedException"
        | "SubnetIPAddressLimitReachedException" => Retryable::Throttled { retry_after },
        "ServiceException"
        | "ResourceNotReadyException"
        | "ResourceConflictException"
        | "SnapStartNotReadyException" => Retryable::Yes,
        _ => match status {
            429 => Retryable::Throttled { retry_after },
            500..=599 => Retryable::Yes,
            _ => Retryable::No,
        },
    }
}

/// How a function error of Lambda's `error_type` may be retried: Lambda's own timeout, out of
/// memory, an oversized response and a failed start are tried once more at most (the same task
/// likely fails the same way); a crashed handler again, with backoff.
pub fn function_error_retry(error_type: &str) -> Retryable {
    match error_type {
        "Sandbox.Timedout"
        | "Runtime.OutOfMemory"
        | "Runtime.ExitError"
        | "Function.ResponseSizeTooLarge"
        | "Runtime.InitError"
        | "Runtime.Unknown"
        | "Runtime.InvalidEntrypoint"
        | "Extension.InitError"
        | "Extension.Crash" => Retryable::Once,
        _ => Retryable::Yes,
    }
}

/// A function error: the handler crashed or the runtime failed; classified task failures never
/// take this path.
fn function_error(function: &str, kind: &str, body: &[u8]) -> InvokeError {
    let (error_type, error_message) = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => (
            value.get("errorType").and_then(|t| t.as_str()).unwrap_or(kind).to_string(),
            value.get("errorMessage").and_then(|t| t.as_str()).unwrap_or_default().to_string(),
        ),
        Err(_) => (kind.to_string(), preview(body)),
    };
    InvokeError::Transport {
        message: format!(
            "function {function} failed ({error_type}): {}",
            error_message.chars().take(500).collect::<String>()
        ),
        retry: function_error_retry(&error_type),
    }
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_errors_are_classified_by_lambdas_error_type() {
        let error = function_error(
            "quack-worker",
            "Unhandled",
            br#"{"errorType":"Runtime.ExitError","errorMessage":"signal: killed"}"#,
        );
        assert_eq!(error.retryable(), Retryable::Once);
        assert_eq!(error.to_string(), "function quack-worker failed (Runtime.ExitError): signal: killed");
        let timeout = function_error("f", "Unhandled", br#"{"errorType":"Sandbox.Timedout","errorMessage":"x"}"#);
        assert_eq!(timeout.retryable(), Retryable::Once);
        let crash = function_error("f", "Unhandled", br#"{"errorType":"Panic","errorMessage":"503 429"}"#);
        assert_eq!(crash.retryable(), Retryable::Yes);
        let error = function_error("f", "Unhandled", b"not json");
        assert!(error.to_string().contains("not json"));
    }

    #[test]
    fn service_errors_are_classified_by_type_then_status() {
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            service_error_retry(429, "TooManyRequestsException", after),
            Retryable::Throttled { retry_after: after }
        );
        assert_eq!(
            service_error_retry(502, "ENILimitReachedException", None),
            Retryable::Throttled { retry_after: None }
        );
        assert_eq!(service_error_retry(400, "ResourceConflictException", None), Retryable::Yes);
        assert_eq!(service_error_retry(404, "ResourceNotFoundException", None), Retryable::No);
        assert_eq!(service_error_retry(403, "AccessDeniedException", None), Retryable::No);
        assert_eq!(service_error_retry(413, "RequestTooLargeException", None), Retryable::No);
        assert_eq!(service_error_retry(429, "", after), Retryable::Throttled { retry_after: after });
        assert_eq!(service_error_retry(503, "", None), Retryable::Yes);
    }

    #[test]
    fn answers_must_match_the_task() {
        let task: Task = serde_json::from_value(serde_json::json!({
            "version": WIRE_VERSION, "query_id": "q-1", "task_id": 3, "label": "", "sql": "", "files": []
        }))
        .unwrap();
        assert!(check_identity("f", &task, WIRE_VERSION, "q-1", 3).is_ok());
        for (version, query_id, task_id) in [(WIRE_VERSION, "q-2", 3), (WIRE_VERSION, "q-1", 4), (99, "q-1", 3)] {
            let error = check_identity("f", &task, version, query_id, task_id).unwrap_err();
            assert!(!error.is_retryable(), "{error}");
        }
    }
}
