//! Fault injection, for tests: [`FaultInjection`] fails chosen tasks a set number of times;
//! [`RandomFaults`] fails, delays, or runs and then loses the answer of a random share of
//! invocations from a seeded generator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use quack_lambda::{ErrorType, PartialResult, Task, TaskFailure};

use super::{InvokeError, Invoker, QueryRun, Retryable};

/// Makes the first `times` invocations of chosen tasks fail with `error_type`.
pub struct FaultInjection<I> {
    inner: I,
    error_type: ErrorType,
    remaining: Mutex<HashMap<usize, u32>>,
}

impl<I> FaultInjection<I> {
    /// Fails each of `task_ids` `times` times before letting it through.
    pub fn new(inner: I, error_type: ErrorType, task_ids: &[usize], times: u32) -> Self {
        FaultInjection { inner, error_type, remaining: Mutex::new(task_ids.iter().map(|&id| (id, times)).collect()) }
    }
}

impl<I: Invoker> Invoker for FaultInjection<I> {
    fn invoke<'a>(
        &'a self,
        task: &'a Task,
        run: &'a Arc<QueryRun>,
    ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
        let fail = {
            let mut remaining = self.remaining.lock().unwrap_or_else(|p| p.into_inner());
            match remaining.get_mut(&task.task_id) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        };
        if fail {
            let failure = TaskFailure::new(task, self.error_type, "injected fault");
            return Box::pin(async move { Err(InvokeError::Task(failure)) });
        }
        self.inner.invoke(task, run)
    }

    fn finish(&self, query_id: &str) -> BoxFuture<'_, ()> {
        self.inner.finish(query_id)
    }
}

/// What [`RandomFaults`] injects: `fail`, `lose` and `delay` are shares of invocations (0..=1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRates {
    /// Fails before the task runs (a throttled or refused invocation, a crash at start).
    pub fail: f64,
    /// Runs the task, then loses its answer (a connection dropped after the function finished):
    /// whatever the attempt wrote (exchange files, a spilled partial) is left behind unnamed, and
    /// the task is tried again.
    pub lose: f64,
    pub delay: f64,
    pub delay_by: Duration,
}

impl std::str::FromStr for FaultRates {
    type Err = String;

    /// `fail=0.2,lose=0.1,delay=0.1[,delay_ms=500]`: shares from 0 to 1, a delay up to an hour.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut rates = FaultRates { fail: 0.0, lose: 0.0, delay: 0.0, delay_by: Duration::from_millis(500) };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("expected key=value, got {part}"))?;
            let number: f64 = value.trim().parse().map_err(|_| format!("{key}: {value} is not a number"))?;
            let share = || {
                (0.0..=1.0)
                    .contains(&number)
                    .then_some(number)
                    .ok_or_else(|| format!("{key}: {value} is not from 0 to 1"))
            };
            match key.trim() {
                "fail" => rates.fail = share()?,
                "lose" => rates.lose = share()?,
                "delay" => rates.delay = share()?,
                "delay_ms" if (0.0..=3_600_000.0).contains(&number) => {
                    rates.delay_by = Duration::from_millis(number as u64)
                }
                "delay_ms" => return Err(format!("delay_ms: {value} is not from 0 to 3600000")),
                other => return Err(format!("unknown fault {other} (fail, lose, delay, delay_ms)")),
            }
        }
        Ok(rates)
    }
}

/// Fails a random share of invocations (retryably, like a crashed worker), loses the answer of
/// another share after the task ran, and delays another share, from a seeded generator.
pub struct RandomFaults<I> {
    inner: I,
    faults: FaultRates,
    rng: Mutex<fastrand::Rng>,
}

impl<I> RandomFaults<I> {
    pub fn new(inner: I, faults: FaultRates, seed: u64) -> Self {
        RandomFaults { inner, faults, rng: Mutex::new(fastrand::Rng::with_seed(seed)) }
    }
}

impl<I: Invoker> Invoker for RandomFaults<I> {
    fn invoke<'a>(
        &'a self,
        task: &'a Task,
        run: &'a Arc<QueryRun>,
    ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
        let (fail, lose, delay) = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            (rng.f64() < self.faults.fail, rng.f64() < self.faults.lose, rng.f64() < self.faults.delay)
        };
        Box::pin(async move {
            if fail {
                return Err(InvokeError::Transport { message: "injected fault".into(), retry: Retryable::Yes });
            }
            if delay {
                tokio::time::sleep(self.faults.delay_by).await;
            }
            let answer = self.inner.invoke(task, run).await;
            if lose && answer.is_ok() {
                return Err(InvokeError::Transport {
                    message: "injected fault: the answer was lost".into(),
                    retry: Retryable::Yes,
                });
            }
            answer
        })
    }

    fn finish(&self, query_id: &str) -> BoxFuture<'_, ()> {
        self.inner.finish(query_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoke::tests::{fast_policy, run, task};
    use crate::invoke::{invoke_all, InProcessInvoker, Retry};
    use quack_lambda::WorkerConfig;

    #[tokio::test]
    async fn random_faults_with_retries_still_answer_every_task() {
        let faults: FaultRates = "fail=0.2,lose=0.2,delay=0.1,delay_ms=5".parse().unwrap();
        let invoker = Retry::new(
            RandomFaults::new(InProcessInvoker::standalone(2, &WorkerConfig::default()).unwrap(), faults, 7),
            fast_policy(10),
        );
        let run = run();
        let tasks = (0..40).map(|i| task(i, &format!("SELECT {i} AS x"))).collect();
        let partials = invoke_all(&invoker, tasks, run.clone(), None, &|_| {}).await.unwrap();
        assert_eq!(partials.len(), 40);
        assert!(QueryRun::get(&run.retries) > 0);
    }

    #[test]
    fn fault_rates_are_checked() {
        for bad in ["fail=2x", "fail=2", "lose=1.5", "delay=-1", "delay_ms=1e30", "fail=NaN", "jitter=1"] {
            assert!(bad.parse::<FaultRates>().is_err(), "{bad}");
        }
        assert_eq!("fail=0.5".parse::<FaultRates>().unwrap().fail, 0.5);
    }
}
