//! [`Retry`]: tries a failed task again, by the failure's [`Retryable`] class.
//!
//! Contract:
//! - [`Retryable::No`]: returned at once.
//! - [`Retryable::Once`]: tried again once per task (Lambda's own timeout, out of memory, an
//!   oversized response, a broken cold start); a second such failure is final.
//! - [`Retryable::Yes`]: up to `max_attempts` attempts in all, with full-jitter exponential
//!   backoff from `base_delay` to `max_delay`.
//! - [`Retryable::Throttled`]: a budget of its own (`throttle_budget` of waiting per task), with
//!   backoff of seconds (`throttle_base_delay` doubling to `throttle_max_delay`, half of it
//!   jittered), and never less than the service's `Retry-After`. Throttles do not use up the
//!   attempts of the other classes.
//!
//! Every retry counts in the query's `retries`, every throttle in its `throttles`.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use quack_lambda::{PartialResult, Task};

use super::{InvokeError, Invoker, QueryRun, Retryable};

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all for [`Retryable::Yes`] failures, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// First backoff after a throttle.
    pub throttle_base_delay: Duration,
    /// Longest backoff after a throttle.
    pub throttle_max_delay: Duration,
    /// Most time one task may spend waiting out throttles.
    pub throttle_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            throttle_base_delay: Duration::from_secs(1),
            throttle_max_delay: Duration::from_secs(20),
            throttle_budget: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Full-jitter exponential backoff before attempt `attempt + 1`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }

    /// Backoff after the `throttles`-th throttle of a task (0-based): half fixed, half jittered,
    /// and at least `retry_after`.
    pub fn throttle_delay(&self, throttles: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.throttle_base_delay.saturating_mul(1u32 << throttles.min(16)).min(self.throttle_max_delay);
        let delay = ceiling / 2 + (ceiling / 2).mul_f64(fastrand::f64());
        delay.max(retry_after.unwrap_or_default().min(self.throttle_max_delay.max(Duration::from_secs(60))))
    }
}

/// Retries retryable failures.
pub struct Retry<I> {
    inner: I,
    policy: RetryPolicy,
}

impl<I> Retry<I> {
    pub fn new(inner: I, policy: RetryPolicy) -> Self {
        Retry { inner, policy }
    }
}

impl<I: Invoker> Invoker for Retry<I> {
    fn invoke<'a>(
        &'a self,
        task: &'a Task,
        run: &'a Arc<QueryRun>,
    ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
        Box::pin(async move {
            let (mut attempts, mut once_used, mut throttles) = (1u32, false, 0u32);
            let mut throttled_for = Duration::ZERO;
            loop {
                let error = match self.inner.invoke(task, run).await {
                    Ok(partial) => return Ok(partial),
                    Err(error) => error,
                };
                let delay = match error.retryable() {
                    Retryable::No => return Err(error),
                    Retryable::Throttled { retry_after } => {
                        QueryRun::add(&run.throttles, 1);
                        let delay = self.policy.throttle_delay(throttles, retry_after);
                        if throttled_for + delay > self.policy.throttle_budget {
                            return Err(give_up(
                                format!("still throttled after waiting {} s", throttled_for.as_secs()),
                                &error,
                            ));
                        }
                        throttles += 1;
                        throttled_for += delay;
                        delay
                    }
                    Retryable::Once if once_used => return Err(give_up("failed the same way twice".into(), &error)),
                    Retryable::Once | Retryable::Yes if attempts >= self.policy.max_attempts => {
                        return Err(give_up(format!("gave up after {attempts} attempts"), &error));
                    }
                    Retryable::Once => {
                        once_used = true;
                        attempts += 1;
                        self.policy.delay(attempts - 2)
                    }
                    Retryable::Yes => {
                        attempts += 1;
                        self.policy.delay(attempts - 2)
                    }
                };
                tracing::warn!(query_id = %task.query_id, task_id = task.task_id, %error, ?delay, "retrying task");
                QueryRun::add(&run.retries, 1);
                tokio::time::sleep(delay).await;
            }
        })
    }

    fn finish(&self, query_id: &str) -> BoxFuture<'_, ()> {
        self.inner.finish(query_id)
    }
}

/// The final error after retrying: says why retrying stopped, and is not retryable any more.
fn give_up(why: String, error: &InvokeError) -> InvokeError {
    InvokeError::Transport { message: format!("{why}: {error}"), retry: Retryable::No }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoke::tests::{fast_policy, run, task};
    use crate::invoke::{FaultInjection, InProcessInvoker};
    use quack_lambda::{ErrorType, WorkerConfig};

    fn local() -> InProcessInvoker {
        InProcessInvoker::standalone(1, &WorkerConfig::default()).unwrap()
    }

    #[tokio::test]
    async fn retries_passing_faults_then_succeeds() {
        let invoker = Retry::new(FaultInjection::new(local(), ErrorType::Internal, &[0], 2), fast_policy(4));
        let run = run();
        let partial = invoker.invoke(&task(0, "SELECT 1"), &run).await.unwrap();
        assert_eq!(partial.stats.rows, 1);
        assert_eq!(QueryRun::get(&run.retries), 2);
    }

    #[tokio::test]
    async fn gives_up_loudly_after_the_last_attempt() {
        let invoker = Retry::new(FaultInjection::new(local(), ErrorType::Internal, &[0], 10), fast_policy(3));
        let err = invoker.invoke(&task(0, "SELECT 1"), &run()).await.unwrap_err();
        assert!(err.to_string().contains("gave up after 3 attempts"), "{err}");
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn throttles_have_their_own_budget() {
        // Ten throttles in a row do not use up the three attempts of other failures.
        let invoker = Retry::new(FaultInjection::new(local(), ErrorType::Throttled, &[0], 10), fast_policy(3));
        let run = run();
        invoker.invoke(&task(0, "SELECT 1"), &run).await.unwrap();
        assert_eq!(QueryRun::get(&run.throttles), 10);
        // ...but a budget of waiting, once spent, ends it.
        let mut policy = fast_policy(3);
        policy.throttle_budget = Duration::from_millis(3);
        let invoker = Retry::new(FaultInjection::new(local(), ErrorType::Throttled, &[0], 1000), policy);
        let err = invoker.invoke(&task(0, "SELECT 1"), &run).await.unwrap_err();
        assert!(err.to_string().contains("still throttled"), "{err}");
    }

    #[tokio::test]
    async fn timeouts_and_the_like_are_retried_once_only() {
        let invoker = Retry::new(FaultInjection::new(local(), ErrorType::Timeout, &[0], 1), fast_policy(4));
        invoker.invoke(&task(0, "SELECT 1"), &run()).await.unwrap();
        let invoker = Retry::new(FaultInjection::new(local(), ErrorType::Timeout, &[0], 2), fast_policy(4));
        let run = run();
        let err = invoker.invoke(&task(0, "SELECT 1"), &run).await.unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        assert_eq!(QueryRun::get(&run.retries), 1);
    }

    #[tokio::test]
    async fn does_not_retry_permanent_failures() {
        let invoker = Retry::new(local(), fast_policy(4));
        let run = run();
        let err = invoker.invoke(&task(0, "SELEC 1"), &run).await.unwrap_err();
        assert!(matches!(err, InvokeError::Task(ref f) if f.error_type == ErrorType::BadSql));
        assert_eq!(QueryRun::get(&run.retries), 0);
    }

    #[test]
    fn throttle_backoff_is_seconds_and_honours_retry_after() {
        let policy = RetryPolicy::default();
        let first = policy.throttle_delay(0, None);
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1), "{first:?}");
        assert!(policy.throttle_delay(10, None) <= Duration::from_secs(20));
        assert!(policy.throttle_delay(0, Some(Duration::from_secs(7))) >= Duration::from_secs(7));
        // A hostile Retry-After does not stall a task for a day.
        assert!(policy.throttle_delay(0, Some(Duration::from_secs(86_400))) <= Duration::from_secs(60));
    }
}
