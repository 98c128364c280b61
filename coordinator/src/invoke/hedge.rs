//! [`Hedge`]: hedged requests. A task much slower than its query's finished tasks is invoked a
//! second time, and the first successful answer wins.
//!
//! Contract: the second copy takes a slot of the same [`LimitHandle`] as every other invocation
//! (hedges count against the concurrency); a failure of one copy waits for the other; the copy
//! that lost is dropped, its time so far counted in the query's `abandoned_ms`, and whatever it
//! spilled is removed with the query's spill prefix at [`Invoker::finish`]. Hedges count in the
//! query's `hedges`; the durations it learns from are the query's own.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use quack_lambda::{PartialResult, Task};

use super::{InvokeError, Invoker, LimitHandle, QueryRun};

/// When to start a second copy of a straggler.
#[derive(Debug, Clone, PartialEq)]
pub struct HedgePolicy {
    /// A task running longer than `factor` times the median of the query's finished tasks...
    pub factor: f64,
    /// ...and at least this long...
    pub min_delay: Duration,
    /// ...once this many of the query's tasks have finished, is started again.
    pub min_samples: usize,
}

impl Default for HedgePolicy {
    fn default() -> Self {
        HedgePolicy { factor: 3.0, min_delay: Duration::from_secs(2), min_samples: 3 }
    }
}

/// Hedges stragglers of `inner`.
pub struct Hedge<I> {
    inner: I,
    policy: HedgePolicy,
    slots: Option<LimitHandle>,
    finished: Mutex<HashMap<String, RunningMedian>>,
}

/// The median of a growing set of durations in O(log n) per insert and O(1) per read (two
/// heaps: the lower half as a max-heap, the upper half as a min-heap, the lower at most one
/// larger), so a query of 100,000 tasks does not sort its durations on every check.
#[derive(Debug, Default)]
struct RunningMedian {
    lower: BinaryHeap<Duration>,
    upper: BinaryHeap<Reverse<Duration>>,
}

impl RunningMedian {
    fn len(&self) -> usize {
        self.lower.len() + self.upper.len()
    }

    fn insert(&mut self, value: Duration) {
        if self.lower.peek().is_none_or(|&top| value <= top) {
            self.lower.push(value);
        } else {
            self.upper.push(Reverse(value));
        }
        if self.lower.len() > self.upper.len() + 1 {
            let moved = self.lower.pop().expect("not empty");
            self.upper.push(Reverse(moved));
        } else if self.upper.len() > self.lower.len() {
            let Reverse(moved) = self.upper.pop().expect("not empty");
            self.lower.push(moved);
        }
    }

    /// The element at index `len / 2` of the sorted values (the upper median of an even count).
    fn median(&self) -> Option<Duration> {
        if self.len().is_multiple_of(2) {
            self.upper.peek().map(|Reverse(d)| *d)
        } else {
            self.lower.peek().copied()
        }
    }
}

impl<I> Hedge<I> {
    /// `slots`: where the second copy takes its slot (none: it takes none).
    pub fn new(inner: I, policy: HedgePolicy, slots: Option<LimitHandle>) -> Self {
        Hedge { inner, policy, slots, finished: Mutex::new(HashMap::new()) }
    }

    /// How long a task of `query_id` may run before it is hedged, once enough tasks finished.
    fn hedge_after(&self, query_id: &str) -> Option<Duration> {
        let finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        let durations = finished.get(query_id)?;
        if durations.len() < self.policy.min_samples.max(1) {
            return None;
        }
        let median = durations.median()?;
        let after = Duration::try_from_secs_f64(median.as_secs_f64() * self.policy.factor).unwrap_or(Duration::MAX);
        Some(after.max(self.policy.min_delay))
    }

    fn record(&self, query_id: &str, took: Duration) {
        let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(durations) = finished.get_mut(query_id) {
            durations.insert(took);
        } else {
            let mut durations = RunningMedian::default();
            durations.insert(took);
            finished.insert(query_id.to_string(), durations);
        }
    }
}

impl<I: Invoker> Invoker for Hedge<I> {
    fn invoke<'a>(
        &'a self,
        task: &'a Task,
        run: &'a Arc<QueryRun>,
    ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
        Box::pin(async move {
            let started = Instant::now();
            let mut primary = self.inner.invoke(task, run);
            // No task is hedged before `min_delay`: the first check waits that long, so the
            // many tasks shorter than that set no timer but this one. Then every 50 ms.
            let mut wait = self.policy.min_delay.max(Duration::from_millis(1));
            loop {
                tokio::select! {
                    result = &mut primary => {
                        if result.is_ok() {
                            self.record(&task.query_id, started.elapsed());
                        }
                        return result;
                    }
                    _ = tokio::time::sleep(wait) => {
                        if self.hedge_after(&task.query_id).is_some_and(|after| started.elapsed() >= after) {
                            break;
                        }
                        wait = Duration::from_millis(50);
                    }
                }
            }
            // The second copy waits for a slot like any invocation; the first keeps running.
            let backup_started: Mutex<Option<Instant>> = Mutex::new(None);
            let backup = async {
                let _slot = match &self.slots {
                    Some(slots) => Some(slots.acquire().await?),
                    None => None,
                };
                QueryRun::add(&run.hedges, 1);
                tracing::info!(query_id = %task.query_id, task_id = task.task_id, after = ?started.elapsed(), "hedging a straggler");
                *backup_started.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                self.inner.invoke(task, run).await
            };
            futures::pin_mut!(backup);
            let (result, loser_started) = match futures::future::select(primary, backup).await {
                futures::future::Either::Left((Ok(partial), _backup)) => {
                    (Ok(partial), *backup_started.lock().unwrap_or_else(|p| p.into_inner()))
                }
                futures::future::Either::Left((Err(_), backup)) => (backup.await, None),
                futures::future::Either::Right((Ok(partial), _primary)) => (Ok(partial), Some(started)),
                futures::future::Either::Right((Err(_), primary)) => (primary.await, None),
            };
            if let Some(loser_started) = loser_started {
                QueryRun::add(&run.abandoned_ms, loser_started.elapsed().as_millis() as u64);
            }
            if result.is_ok() {
                self.record(&task.query_id, started.elapsed());
            }
            result
        })
    }

    fn finish(&self, query_id: &str) -> BoxFuture<'_, ()> {
        self.finished.lock().unwrap_or_else(|p| p.into_inner()).remove(query_id);
        self.inner.finish(query_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoke::tests::{run, task};
    use crate::invoke::{invoke_all, InProcessInvoker};
    use quack_lambda::WorkerConfig;

    /// Task 9's first invocation hangs; every other invocation answers at once.
    struct Straggler {
        inner: InProcessInvoker,
        calls: Mutex<HashMap<usize, u32>>,
    }

    impl Invoker for Straggler {
        fn invoke<'a>(
            &'a self,
            task: &'a Task,
            run: &'a Arc<QueryRun>,
        ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
            let call = {
                let mut calls = self.calls.lock().unwrap();
                let n = calls.entry(task.task_id).or_default();
                *n += 1;
                *n
            };
            Box::pin(async move {
                if task.task_id == 9 && call == 1 {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                }
                self.inner.invoke(task, run).await
            })
        }
    }

    fn straggler() -> Straggler {
        Straggler {
            inner: InProcessInvoker::standalone(2, &WorkerConfig::default()).unwrap(),
            calls: Mutex::new(HashMap::new()),
        }
    }

    #[tokio::test]
    async fn hedges_a_straggler_takes_the_first_answer_and_counts_the_loser() {
        let straggler = straggler();
        let policy = HedgePolicy { factor: 2.0, min_delay: Duration::from_millis(100), min_samples: 3 };
        let hedge = Hedge::new(straggler, policy, Some(LimitHandle::new(4)));
        let run = run();
        let tasks = (0..10).map(|i| task(i, &format!("SELECT {i} AS x"))).collect();
        let partials = invoke_all(&hedge, tasks, run.clone(), None, &|_| {}).await.unwrap();
        assert_eq!(partials.len(), 10);
        assert_eq!(QueryRun::get(&run.hedges), 1);
        assert!(QueryRun::get(&run.abandoned_ms) >= 100, "the loser's time is counted");
        assert!(hedge.finished.lock().unwrap().is_empty(), "finish forgets the query");
    }

    #[test]
    fn the_running_median_is_the_sorted_middle() {
        let mut median = RunningMedian::default();
        assert_eq!(median.median(), None);
        let mut values = Vec::new();
        let mut seed = 7u64;
        for _ in 0..500 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let value = Duration::from_micros(seed >> 54);
            median.insert(value);
            values.push(value);
            let mut sorted = values.clone();
            sorted.sort();
            assert_eq!(median.median(), Some(sorted[sorted.len() / 2]), "after {} values", values.len());
        }
    }

    #[tokio::test]
    async fn a_hedge_waits_for_a_slot() {
        let straggler = straggler();
        let policy = HedgePolicy { factor: 1.0, min_delay: Duration::from_millis(10), min_samples: 1 };
        let slots = LimitHandle::new(1);
        let held = slots.acquire().await.unwrap();
        let hedge = Hedge::new(straggler, policy, Some(slots));
        hedge.record("q", Duration::from_millis(1));
        let (run, nine) = (run(), task(9, "SELECT 9"));
        let waiting = tokio::time::timeout(Duration::from_millis(300), hedge.invoke(&nine, &run));
        assert!(waiting.await.is_err(), "no slot, so the straggler is not hedged");
        assert_eq!(QueryRun::get(&run.hedges), 0);
        drop(held);
    }
}
