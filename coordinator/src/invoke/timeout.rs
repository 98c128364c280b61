//! [`Timeout`]: gives up on an attempt that takes longer than a limit.
//!
//! Contract: an attempt still running after the limit is dropped and answered
//! [`InvokeError::Timeout`] (retryable once); the time it ran counts in the query's
//! `abandoned_ms`, since the backend may still bill it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use quack_lambda::{PartialResult, Task};

use super::{InvokeError, Invoker, QueryRun};

/// Fails an invocation that takes longer than `limit`.
pub struct Timeout<I> {
    inner: I,
    limit: Duration,
}

impl<I> Timeout<I> {
    pub fn new(inner: I, limit: Duration) -> Self {
        Timeout { inner, limit }
    }
}

impl<I: Invoker> Invoker for Timeout<I> {
    fn invoke<'a>(
        &'a self,
        task: &'a Task,
        run: &'a Arc<QueryRun>,
    ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
        Box::pin(async move {
            let started = Instant::now();
            match tokio::time::timeout(self.limit, self.inner.invoke(task, run)).await {
                Ok(result) => result,
                Err(_) => {
                    QueryRun::add(&run.abandoned_ms, started.elapsed().as_millis() as u64);
                    Err(InvokeError::Timeout { seconds: self.limit.as_secs() })
                }
            }
        })
    }

    fn finish(&self, query_id: &str) -> BoxFuture<'_, ()> {
        self.inner.finish(query_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoke::tests::{run, task, Slow};

    #[tokio::test]
    async fn times_out_slow_tasks_and_counts_the_time() {
        let invoker = Timeout::new(Slow, Duration::from_millis(10));
        let run = run();
        assert!(matches!(invoker.invoke(&task(0, "SELECT 1"), &run).await, Err(InvokeError::Timeout { .. })));
        assert!(QueryRun::get(&run.abandoned_ms) >= 10);
    }
}
