//! [`LambdaInvoker`]: runs a task in AWS Lambda through the Invoke API (RequestResponse), and
//! reads (then deletes) partials the worker spilled to S3.
//!
//! Failures map to [`InvokeError`] with retryability as data: throttling (429,
//! `TooManyRequestsException`), 5xx and function errors (a crashed handler; real Lambda answers
//! 200 with `X-Amz-Function-Error`, the local emulator 500 with `{"errorType","errorMessage"}`)
//! are retryable; a missing function, a forbidden call or an oversized request are not.

use aws_sdk_lambda::operation::invoke::InvokeError as SdkInvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use futures::future::BoxFuture;
use quack_lambda::{PartialData, PartialResult, Task, TaskResponse};

use super::{InvokeError, Invoker};

/// Invokes one Lambda function per task.
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    function: String,
    s3: aws_sdk_s3::Client,
}

impl LambdaInvoker {
    /// `function` is a name, ARN or `name:alias`; `s3` reads spilled partials.
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>, s3: aws_sdk_s3::Client) -> Self {
        LambdaInvoker { client, function: function.into(), s3 }
    }

    async fn call(&self, task: Task) -> Result<PartialResult, InvokeError> {
        let payload = serde_json::to_vec(&task)
            .map_err(|e| InvokeError::Transport { message: format!("encoding the task: {e}"), retryable: false })?;
        let sent = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(error) => return Err(sdk_error(&self.function, error)),
        };
        let body = output.payload().map(|b| b.as_ref()).unwrap_or_default();
        if let Some(kind) = output.function_error() {
            return Err(function_error(&self.function, kind, body));
        }
        let response: TaskResponse = serde_json::from_slice(body).map_err(|e| InvokeError::Transport {
            message: format!(
                "function {}: the answer is not a quack task response ({e}): {}",
                self.function,
                preview(body)
            ),
            retryable: false,
        })?;
        let mut partial = match response {
            TaskResponse::Ok(partial) => partial,
            TaskResponse::Error(failure) => return Err(InvokeError::Task(failure)),
        };
        if let PartialData::Spilled { url } = &partial.data {
            let arrow_ipc = quack_lambda::spill::take(&self.s3, url)
                .await
                .map_err(|e| InvokeError::Transport { message: e.to_string(), retryable: true })?;
            partial.data = PartialData::Inline { arrow_ipc };
        }
        Ok(partial)
    }
}

impl Invoker for LambdaInvoker {
    fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
        Box::pin(self.call(task))
    }
}

fn sdk_error(function: &str, error: aws_sdk_lambda::error::SdkError<SdkInvokeError>) -> InvokeError {
    use aws_sdk_lambda::error::SdkError;
    let status = error.raw_response().map(|r| r.status().as_u16());
    let body = error.raw_response().and_then(|r| r.body().bytes()).unwrap_or_default().to_vec();
    let message = format!("function {function}: {}", aws_sdk_lambda::error::DisplayErrorContext(&error));
    match &error {
        SdkError::ServiceError(service) => {
            let retryable = match service.err() {
                SdkInvokeError::TooManyRequestsException(_)
                | SdkInvokeError::ServiceException(_)
                | SdkInvokeError::ResourceNotReadyException(_)
                | SdkInvokeError::ResourceConflictException(_)
                | SdkInvokeError::Ec2ThrottledException(_)
                | SdkInvokeError::EniLimitReachedException(_)
                | SdkInvokeError::SubnetIpAddressLimitReachedException(_)
                | SdkInvokeError::SnapStartNotReadyException(_) => true,
                _ => matches!(status, Some(429) | Some(500..=599)),
            };
            // The emulator answers a handler error with 500 and the function-error body.
            if status == Some(500) {
                if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) {
                    if let Some(kind) = value.get("errorType").and_then(|t| t.as_str()) {
                        return function_error(function, kind, &body);
                    }
                }
            }
            InvokeError::Transport { message, retryable }
        }
        // Connection refused or reset, timeouts, unreadable responses: try again.
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            InvokeError::Transport { message, retryable: true }
        }
        _ => InvokeError::Transport { message, retryable: false },
    }
}

/// A function error: the handler crashed or the runtime failed. Retryable (a fresh container may
/// well succeed); classified task failures never take this path.
fn function_error(function: &str, kind: &str, body: &[u8]) -> InvokeError {
    let (error_type, error_message) = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => (
            value.get("errorType").and_then(|t| t.as_str()).unwrap_or(kind).to_string(),
            value.get("errorMessage").and_then(|t| t.as_str()).unwrap_or_default().to_string(),
        ),
        Err(_) => (kind.to_string(), preview(body)),
    };
    InvokeError::Transport {
        message: format!("function {function} failed ({error_type}): {error_message}"),
        retryable: true,
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
    fn function_errors_are_retryable_and_named() {
        let error = function_error(
            "quack-worker",
            "Unhandled",
            br#"{"errorType":"Runtime.ExitError","errorMessage":"exit 1"}"#,
        );
        assert!(error.is_retryable());
        assert_eq!(error.to_string(), "function quack-worker failed (Runtime.ExitError): exit 1");
        let error = function_error("f", "Unhandled", b"not json");
        assert!(error.to_string().contains("not json"));
    }
}
