//! [`AdaptiveLimit`]: at most N invocations in flight, where N adapts to throttling by AIMD
//! (additive increase, multiplicative decrease), as TCP and the AWS SDKs' adaptive retry mode do.
//!
//! Contract: the limit starts at, and never exceeds, the configured concurrency. A throttled
//! answer halves it (at most once per [`DECREASE_INTERVAL`], so one burst of 429s counts once);
//! each successful answer adds `1 / limit`, so a full round of successes adds one slot. It never
//! goes below one. Hedged copies take their slot from the same [`LimitHandle`], so they count
//! against the concurrency too.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use quack_lambda::{PartialResult, Task};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{InvokeError, Invoker, QueryRun, Retryable};

/// Throttles closer together than this halve the limit once.
pub const DECREASE_INTERVAL: Duration = Duration::from_secs(1);

/// The most concurrency anyone may ask for.
pub const MAX_CONCURRENCY: usize = 100_000;

/// The shared, adaptive limit.
#[derive(Clone)]
pub struct LimitHandle {
    state: Arc<LimitState>,
}

struct LimitState {
    max: usize,
    slots: Arc<Semaphore>,
    inner: Mutex<Aimd>,
}

struct Aimd {
    /// The current limit; its floor is the number of slots (held or free, debt excluded).
    limit: f64,
    /// Slots to take out of circulation as they are released (a decrease below what is in use).
    debt: usize,
    last_decrease: Option<Instant>,
}

/// A slot; released when dropped.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    state: Arc<LimitState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else { return };
        let mut aimd = self.state.inner.lock().unwrap_or_else(|p| p.into_inner());
        if aimd.debt > 0 {
            aimd.debt -= 1;
            permit.forget();
        }
    }
}

impl LimitHandle {
    /// A limit of `concurrency` (clamped to 1..=[`MAX_CONCURRENCY`]).
    pub fn new(concurrency: usize) -> Self {
        let max = concurrency.clamp(1, MAX_CONCURRENCY);
        LimitHandle {
            state: Arc::new(LimitState {
                max,
                slots: Arc::new(Semaphore::new(max)),
                inner: Mutex::new(Aimd { limit: max as f64, debt: 0, last_decrease: None }),
            }),
        }
    }

    /// Waits for a slot.
    pub async fn acquire(&self) -> Result<Slot, InvokeError> {
        let permit = self.state.slots.clone().acquire_owned().await.map_err(|e| InvokeError::Transport {
            message: format!("concurrency limit closed: {e}"),
            retry: Retryable::No,
        })?;
        Ok(Slot { permit: Some(permit), state: self.state.clone() })
    }

    /// The current limit (whole slots).
    pub fn current(&self) -> usize {
        self.state.inner.lock().unwrap_or_else(|p| p.into_inner()).limit.floor() as usize
    }

    /// A throttled answer: halve the limit, unless it was halved less than
    /// [`DECREASE_INTERVAL`] ago.
    pub fn on_throttle(&self) {
        let mut aimd = self.state.inner.lock().unwrap_or_else(|p| p.into_inner());
        if aimd.last_decrease.is_some_and(|at| at.elapsed() < DECREASE_INTERVAL) {
            return;
        }
        aimd.last_decrease = Some(Instant::now());
        let before = aimd.limit.floor() as usize;
        aimd.limit = (aimd.limit / 2.0).max(1.0);
        let remove = before - aimd.limit.floor() as usize;
        // Take free slots out now; the rest as they are released.
        let mut taken = 0;
        while taken < remove {
            match self.state.slots.try_acquire() {
                Ok(permit) => {
                    permit.forget();
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        aimd.debt += remove - taken;
        tracing::info!(limit = aimd.limit.floor() as usize, "throttled: concurrency lowered");
    }

    /// A successful answer: add `1 / limit`, up to the configured concurrency.
    pub fn on_success(&self) {
        let mut aimd = self.state.inner.lock().unwrap_or_else(|p| p.into_inner());
        if aimd.limit >= self.state.max as f64 {
            return;
        }
        let before = aimd.limit.floor() as usize;
        aimd.limit = (aimd.limit + 1.0 / aimd.limit).min(self.state.max as f64);
        let added = aimd.limit.floor() as usize - before;
        for _ in 0..added {
            if aimd.debt > 0 {
                aimd.debt -= 1;
            } else {
                self.state.slots.add_permits(1);
            }
        }
    }
}

/// At most [`LimitHandle::current`] invocations of `inner` in flight.
pub struct AdaptiveLimit<I> {
    inner: I,
    limit: LimitHandle,
}

impl<I> AdaptiveLimit<I> {
    pub fn new(inner: I, limit: LimitHandle) -> Self {
        AdaptiveLimit { inner, limit }
    }
}

impl<I: Invoker> Invoker for AdaptiveLimit<I> {
    fn invoke<'a>(
        &'a self,
        task: &'a Task,
        run: &'a Arc<QueryRun>,
    ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
        Box::pin(async move {
            let _slot = self.limit.acquire().await?;
            let result = self.inner.invoke(task, run).await;
            match &result {
                Ok(_) => self.limit.on_success(),
                Err(e) if e.is_throttle() => self.limit.on_throttle(),
                Err(_) => {}
            }
            result
        })
    }

    fn finish(&self, query_id: &str) -> BoxFuture<'_, ()> {
        self.inner.finish(query_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn halves_on_throttling_and_grows_back_one_round_at_a_time() {
        let limit = LimitHandle::new(8);
        assert_eq!(limit.current(), 8);
        limit.on_throttle();
        assert_eq!(limit.current(), 4);
        limit.on_throttle(); // the same burst
        assert_eq!(limit.current(), 4);
        // Only 4 slots can be held now.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(limit.acquire().await.unwrap());
        }
        assert!(tokio::time::timeout(Duration::from_millis(20), limit.acquire()).await.is_err());
        drop(held);
        for _ in 0..5 {
            limit.on_success();
        }
        assert_eq!(limit.current(), 5, "a round of successes adds about one slot");
        for _ in 0..1000 {
            limit.on_success();
        }
        assert_eq!(limit.current(), 8, "never above the configured concurrency");
    }

    #[tokio::test]
    async fn a_decrease_below_what_is_in_use_takes_effect_as_slots_return() {
        let limit = LimitHandle::new(4);
        let held: Vec<Slot> = futures::future::try_join_all((0..4).map(|_| limit.acquire())).await.unwrap();
        limit.on_throttle();
        assert_eq!(limit.current(), 2);
        drop(held);
        let a = limit.acquire().await.unwrap();
        let b = limit.acquire().await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(20), limit.acquire()).await.is_err());
        drop((a, b));
    }

    #[test]
    fn concurrency_is_clamped() {
        assert_eq!(LimitHandle::new(0).current(), 1);
        assert_eq!(LimitHandle::new(usize::MAX).current(), MAX_CONCURRENCY);
    }
}
