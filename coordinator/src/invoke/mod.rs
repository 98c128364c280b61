//! Running tasks: the [`Invoker`] trait, its in-process implementation (the embedded default and
//! the test double), and the wrappers that add behaviour around any invoker: a concurrency
//! limit, a per-task timeout, retries with jittered exponential backoff, hedged re-invocation
//! of stragglers, and fault injection. [`lambda::LambdaInvoker`] runs tasks in AWS Lambda.
//!
//! The coordinator depends only on the trait; [`invoke_all`] fans a plan's tasks out through it.

pub mod lambda;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use quack_lambda::{ErrorType, PartialResult, Task, TaskFailure, Worker, WorkerConfig};
use tokio::sync::Semaphore;

/// Why one invocation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The worker ran the task and reported a failure.
    #[error("{0}")]
    Task(TaskFailure),
    /// No answer within the per-task timeout.
    #[error("worker timed out after {seconds} s")]
    Timeout { seconds: u64 },
    /// The invocation itself failed (network, service error, worker crash).
    #[error("{message}")]
    Transport { message: String, retryable: bool },
}

impl InvokeError {
    /// Whether trying the same task again can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            InvokeError::Task(failure) => failure.retryable,
            InvokeError::Timeout { .. } => true,
            InvokeError::Transport { retryable, .. } => *retryable,
        }
    }
}

/// Runs one task somewhere and returns its partial result.
pub trait Invoker: Send + Sync {
    fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>>;
}

impl<I: Invoker + ?Sized> Invoker for Arc<I> {
    fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
        (**self).invoke(task)
    }
}

/// Workers in this process: a pool of DuckDB connections to one database shared with the
/// coordinator, run on blocking threads. The database's thread pool (sized to the cores) is
/// shared by all workers, so workers never oversubscribe the machine, and a straggler task can
/// use the threads others left idle. Each worker's first task counts as a cold start.
pub struct InProcessInvoker {
    database: Mutex<duckdb::Connection>,
    idle: Mutex<Vec<Worker>>,
    slots: Semaphore,
}

impl InProcessInvoker {
    /// A pool of at most `workers` busy workers, each a new connection to `database`'s database.
    pub fn new(workers: usize, database: duckdb::Connection) -> Self {
        InProcessInvoker {
            database: Mutex::new(database),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(workers.max(1)),
        }
    }

    /// A pool over its own in-memory database configured by `config`.
    pub fn standalone(workers: usize, config: &WorkerConfig) -> Result<Self, quack_lambda::WorkerError> {
        let conn = duckdb::Connection::open_in_memory().map_err(|source| quack_lambda::WorkerError::Open { source })?;
        conn.execute_batch(&format!("SET threads = {}", config.threads.max(1)))
            .map_err(|source| quack_lambda::WorkerError::Configure { setting: "threads".into(), source })?;
        Ok(Self::new(workers, conn))
    }

    fn new_worker(&self) -> Result<Worker, InvokeError> {
        let conn = self.database.lock().unwrap_or_else(|p| p.into_inner()).try_clone();
        let conn = conn.map_err(|e| InvokeError::Transport {
            message: format!("opening a worker connection: {e}"),
            retryable: true,
        })?;
        Worker::from_connection(conn).map_err(|e| InvokeError::Transport { message: e.to_string(), retryable: true })
    }
}

impl Invoker for InProcessInvoker {
    fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
        Box::pin(async move {
            let _slot = self.slots.acquire().await.map_err(|e| InvokeError::Transport {
                message: format!("worker pool closed: {e}"),
                retryable: false,
            })?;
            let worker = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut worker = match worker {
                Some(worker) => worker,
                None => self.new_worker()?,
            };
            let joined = tokio::task::spawn_blocking(move || {
                let result = worker.run(&task).map_err(InvokeError::Task);
                (worker, result)
            })
            .await;
            match joined {
                Ok((worker, result)) => {
                    self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(worker);
                    result
                }
                Err(e) => {
                    Err(InvokeError::Transport { message: format!("worker thread failed: {e}"), retryable: true })
                }
            }
        })
    }
}

/// At most `limit` invocations in flight.
pub struct ConcurrencyLimit<I> {
    inner: I,
    slots: Semaphore,
}

impl<I> ConcurrencyLimit<I> {
    pub fn new(inner: I, limit: usize) -> Self {
        ConcurrencyLimit { inner, slots: Semaphore::new(limit.max(1)) }
    }
}

impl<I: Invoker> Invoker for ConcurrencyLimit<I> {
    fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
        Box::pin(async move {
            let _slot = self.slots.acquire().await.map_err(|e| InvokeError::Transport {
                message: format!("concurrency limit closed: {e}"),
                retryable: false,
            })?;
            self.inner.invoke(task).await
        })
    }
}

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
    fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
        Box::pin(async move {
            match tokio::time::timeout(self.limit, self.inner.invoke(task)).await {
                Ok(result) => result,
                Err(_) => Err(InvokeError::Timeout { seconds: self.limit.as_secs() }),
            }
        })
    }
}

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// Full-jitter exponential backoff before attempt `attempt + 1`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// Retries retryable failures; counts retries in `retries`.
pub struct Retry<I> {
    inner: I,
    policy: RetryPolicy,
    retries: Arc<AtomicU64>,
}

impl<I> Retry<I> {
    pub fn new(inner: I, policy: RetryPolicy) -> Self {
        Retry { inner, policy, retries: Arc::new(AtomicU64::new(0)) }
    }

    /// Shared counter of retries made so far.
    pub fn retries(&self) -> Arc<AtomicU64> {
        self.retries.clone()
    }
}

impl<I: Invoker> Invoker for Retry<I> {
    fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                match self.inner.invoke(task.clone()).await {
                    Err(e) if e.is_retryable() && attempt + 1 < self.policy.max_attempts => {
                        let delay = self.policy.delay(attempt);
                        tracing::warn!(query_id = %task.query_id, task_id = task.task_id, attempt = attempt + 1, error = %e, ?delay, "retrying task");
                        self.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    Err(e) if e.is_retryable() => {
                        return Err(InvokeError::Transport {
                            message: format!("gave up after {} attempts: {e}", attempt + 1),
                            retryable: false,
                        })
                    }
                    other => return other,
                }
            }
        })
    }
}

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

/// Hedged requests: a task much slower than its query's finished tasks is invoked a second
/// time, and the first successful answer wins (the other is dropped). A failure of one copy
/// waits for the other. Counts hedges in [`Hedge::hedges`].
pub struct Hedge<I> {
    inner: I,
    policy: HedgePolicy,
    finished: Mutex<HashMap<String, Vec<Duration>>>,
    hedges: Arc<AtomicU64>,
}

impl<I> Hedge<I> {
    pub fn new(inner: I, policy: HedgePolicy) -> Self {
        Hedge { inner, policy, finished: Mutex::new(HashMap::new()), hedges: Arc::new(AtomicU64::new(0)) }
    }

    /// Shared counter of hedged invocations started so far.
    pub fn hedges(&self) -> Arc<AtomicU64> {
        self.hedges.clone()
    }

    /// How long a task of `query_id` may run before it is hedged, once enough tasks finished.
    fn hedge_after(&self, query_id: &str) -> Option<Duration> {
        let finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        let durations = finished.get(query_id)?;
        if durations.len() < self.policy.min_samples.max(1) {
            return None;
        }
        let mut sorted = durations.clone();
        sorted.sort();
        Some(sorted[sorted.len() / 2].mul_f64(self.policy.factor).max(self.policy.min_delay))
    }

    fn record(&self, query_id: &str, took: Duration) {
        let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        if finished.len() > 64 && !finished.contains_key(query_id) {
            finished.clear();
        }
        finished.entry(query_id.to_string()).or_default().push(took);
    }
}

impl<I: Invoker> Invoker for Hedge<I> {
    fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
        Box::pin(async move {
            let started = Instant::now();
            let mut primary = self.inner.invoke(task.clone());
            loop {
                tokio::select! {
                    result = &mut primary => {
                        if result.is_ok() {
                            self.record(&task.query_id, started.elapsed());
                        }
                        return result;
                    }
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {
                        if self.hedge_after(&task.query_id).is_some_and(|after| started.elapsed() >= after) {
                            break;
                        }
                    }
                }
            }
            self.hedges.fetch_add(1, Ordering::Relaxed);
            tracing::info!(query_id = %task.query_id, task_id = task.task_id, after = ?started.elapsed(), "hedging a straggler");
            let backup = self.inner.invoke(task.clone());
            let first = futures::future::select(primary, backup).await;
            let (result, other) = match first {
                futures::future::Either::Left((result, other)) => (result, other),
                futures::future::Either::Right((result, other)) => (result, other),
            };
            let result = match result {
                Ok(partial) => Ok(partial),
                Err(_) => other.await,
            };
            if result.is_ok() {
                self.record(&task.query_id, started.elapsed());
            }
            result
        })
    }
}

/// Test wrapper: makes the first `times` invocations of chosen tasks fail with `error_type`.
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
    fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
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
            let failure = TaskFailure::new(&task, self.error_type, "injected fault");
            return Box::pin(async move { Err(InvokeError::Task(failure)) });
        }
        self.inner.invoke(task)
    }
}

/// Test wrapper: fails a random share of invocations (retryably, like a crashed or throttled
/// worker) and delays another share, from a seeded generator.
pub struct RandomFaults<I> {
    inner: I,
    faults: FaultRates,
    rng: Mutex<fastrand::Rng>,
}

/// What [`RandomFaults`] injects: `fail` and `delay` are shares of invocations (0..=1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRates {
    pub fail: f64,
    pub delay: f64,
    pub delay_by: Duration,
}

impl std::str::FromStr for FaultRates {
    type Err = String;

    /// `fail=0.2,delay=0.1[,delay_ms=500]`.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut rates = FaultRates { fail: 0.0, delay: 0.0, delay_by: Duration::from_millis(500) };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("expected key=value, got {part}"))?;
            let number: f64 = value.trim().parse().map_err(|_| format!("{key}: {value} is not a number"))?;
            match key.trim() {
                "fail" => rates.fail = number,
                "delay" => rates.delay = number,
                "delay_ms" => rates.delay_by = Duration::from_millis(number as u64),
                other => return Err(format!("unknown fault {other} (fail, delay, delay_ms)")),
            }
        }
        Ok(rates)
    }
}

impl<I> RandomFaults<I> {
    pub fn new(inner: I, faults: FaultRates, seed: u64) -> Self {
        RandomFaults { inner, faults, rng: Mutex::new(fastrand::Rng::with_seed(seed)) }
    }
}

impl<I: Invoker> Invoker for RandomFaults<I> {
    fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
        let (fail, delay) = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            (rng.f64() < self.faults.fail, rng.f64() < self.faults.delay)
        };
        Box::pin(async move {
            if fail {
                return Err(InvokeError::Transport { message: "injected fault".into(), retryable: true });
            }
            if delay {
                tokio::time::sleep(self.faults.delay_by).await;
            }
            self.inner.invoke(task).await
        })
    }
}

/// Progress of a fan-out, reported after each finished task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// Runs every task and returns the partials in task order; the first failure cancels the rest
/// and is returned (no partial answer), as does missing the overall `deadline`.
pub async fn invoke_all(
    invoker: &dyn Invoker,
    tasks: Vec<Task>,
    deadline: Option<Duration>,
    on_progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<PartialResult>, crate::Error> {
    let total = tasks.len();
    let labels: Vec<String> = tasks.iter().map(|t| t.label.clone()).collect();
    let mut running: FuturesUnordered<_> = tasks
        .into_iter()
        .map(|task| {
            let id = task.task_id;
            async move { (id, invoker.invoke(task).await) }
        })
        .collect();
    let mut partials: Vec<Option<PartialResult>> = vec![None; total];
    let mut done = 0;
    let expires = deadline.map(|d| tokio::time::Instant::now() + d);
    loop {
        let next = match expires {
            Some(at) => match tokio::time::timeout_at(at, running.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let seconds = deadline.map_or(0, |d| d.as_secs());
                    return Err(crate::Error::Deadline { seconds, done, total });
                }
            },
            None => running.next().await,
        };
        let Some((id, result)) = next else { break };
        match result {
            Ok(partial) => {
                partials[id] = Some(partial);
                done += 1;
                on_progress(Progress { done, total });
            }
            Err(source) => {
                return Err(crate::Error::Task { task_id: id, label: labels[id].clone(), source });
            }
        }
    }
    Ok(partials.into_iter().map(|p| p.expect("every task answered")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quack_lambda::WIRE_VERSION;

    fn task(id: usize, sql: &str) -> Task {
        Task {
            version: WIRE_VERSION,
            query_id: "q".into(),
            task_id: id,
            label: format!("t{id}"),
            sql: sql.into(),
            files: vec![],
        }
    }

    /// An invoker that never answers in time.
    struct Slow;

    impl Invoker for Slow {
        fn invoke(&self, _task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                unreachable!()
            })
        }
    }

    fn fast_policy(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn in_process_runs_tasks_in_parallel_and_in_order() {
        let invoker = InProcessInvoker::standalone(2, &WorkerConfig::default()).unwrap();
        let tasks = (0..5).map(|i| task(i, &format!("SELECT {i} AS x"))).collect();
        let partials = invoke_all(&invoker, tasks, None, &|_| {}).await.unwrap();
        assert_eq!(partials.iter().map(|p| p.task_id).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert!(partials.iter().filter(|p| p.stats.cold_start).count() <= 2);
    }

    #[tokio::test]
    async fn retries_retryable_faults_then_succeeds() {
        let invoker = Retry::new(
            FaultInjection::new(
                InProcessInvoker::standalone(1, &WorkerConfig::default()).unwrap(),
                ErrorType::Throttled,
                &[0],
                2,
            ),
            fast_policy(4),
        );
        let retries = invoker.retries();
        let partial = invoker.invoke(task(0, "SELECT 1")).await.unwrap();
        assert_eq!(partial.stats.rows, 1);
        assert_eq!(retries.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn gives_up_loudly_after_the_last_attempt() {
        let invoker = Retry::new(
            FaultInjection::new(
                InProcessInvoker::standalone(1, &WorkerConfig::default()).unwrap(),
                ErrorType::Throttled,
                &[0],
                10,
            ),
            fast_policy(3),
        );
        let err = invoker.invoke(task(0, "SELECT 1")).await.unwrap_err();
        assert!(err.to_string().contains("gave up after 3 attempts"), "{err}");
    }

    #[tokio::test]
    async fn does_not_retry_permanent_failures() {
        let invoker = Retry::new(InProcessInvoker::standalone(1, &WorkerConfig::default()).unwrap(), fast_policy(4));
        let retries = invoker.retries();
        let err = invoker.invoke(task(0, "SELEC 1")).await.unwrap_err();
        assert!(matches!(err, InvokeError::Task(ref f) if f.error_type == ErrorType::BadSql));
        assert_eq!(retries.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn times_out_slow_tasks() {
        let invoker = Timeout::new(Slow, Duration::from_millis(10));
        assert!(matches!(invoker.invoke(task(0, "SELECT 1")).await, Err(InvokeError::Timeout { .. })));
    }

    #[tokio::test]
    async fn hedges_a_straggler_and_takes_the_first_answer() {
        /// Task 9's first invocation hangs; every other invocation answers at once.
        struct Straggler {
            inner: InProcessInvoker,
            calls: Mutex<HashMap<usize, u32>>,
        }
        impl Invoker for Straggler {
            fn invoke(&self, task: Task) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
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
                    self.inner.invoke(task).await
                })
            }
        }
        let straggler = Straggler {
            inner: InProcessInvoker::standalone(2, &WorkerConfig::default()).unwrap(),
            calls: Mutex::new(HashMap::new()),
        };
        let policy = HedgePolicy { factor: 2.0, min_delay: Duration::from_millis(100), min_samples: 3 };
        let hedge = Hedge::new(straggler, policy);
        let hedges = hedge.hedges();
        let tasks = (0..10).map(|i| task(i, &format!("SELECT {i} AS x"))).collect();
        let partials = invoke_all(&hedge, tasks, None, &|_| {}).await.unwrap();
        assert_eq!(partials.len(), 10);
        assert_eq!(hedges.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn random_faults_with_retries_still_answer_every_task() {
        let faults: FaultRates = "fail=0.2,delay=0.1,delay_ms=5".parse().unwrap();
        let invoker = Retry::new(
            RandomFaults::new(InProcessInvoker::standalone(2, &WorkerConfig::default()).unwrap(), faults, 7),
            fast_policy(10),
        );
        let retries = invoker.retries();
        let tasks = (0..40).map(|i| task(i, &format!("SELECT {i} AS x"))).collect();
        let partials = invoke_all(&invoker, tasks, None, &|_| {}).await.unwrap();
        assert_eq!(partials.len(), 40);
        assert!(retries.load(Ordering::Relaxed) > 0);
        assert!("fail=2x".parse::<FaultRates>().is_err());
    }

    #[tokio::test]
    async fn a_failed_task_fails_the_fan_out() {
        let invoker = InProcessInvoker::standalone(2, &WorkerConfig::default()).unwrap();
        let tasks = vec![task(0, "SELECT 1"), task(1, "SELECT * FROM read_parquet('/nonexistent/x.parquet')")];
        let err = invoke_all(&invoker, tasks, None, &|_| {}).await.unwrap_err();
        assert!(err.to_string().starts_with("task 1 (t1): missing_file"), "{err}");
    }

    #[tokio::test]
    async fn misses_the_deadline_loudly() {
        let err = invoke_all(&Slow, vec![task(0, "SELECT 1")], Some(Duration::from_millis(20)), &|_| {}).await;
        assert!(matches!(err, Err(crate::Error::Deadline { done: 0, total: 1, .. })));
    }
}
