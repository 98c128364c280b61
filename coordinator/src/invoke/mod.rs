//! Running tasks: the [`Invoker`] trait, its implementations ([`in_process::InProcessInvoker`],
//! the embedded default and the test double, and [`lambda::LambdaInvoker`]), and the wrappers
//! that add behaviour around any invoker, one per file: [`limit`] (an adaptive concurrency
//! limit), [`timeout`], [`retry`] (backoff, with a separate budget for throttling), [`hedge`]
//! (re-invoking stragglers) and [`faults`] (injection, for tests). [`stack`] builds them into
//! the one order every backend uses.
//!
//! Every invocation carries the [`QueryRun`] of its query: the wrappers count retries, hedges,
//! throttles and attempts there, so that two queries running at once (dashboard requests) never
//! see each other's figures. [`invoke_all`] fans a plan's tasks out and calls
//! [`Invoker::finish`] when the query's tasks are done or abandoned.

pub mod faults;
pub mod hedge;
pub mod in_process;
pub mod lambda;
pub mod limit;
pub mod retry;
pub mod timeout;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use quack_lambda::{ErrorType, PartialResult, Task, TaskFailure};

pub use faults::{FaultInjection, FaultRates, RandomFaults};
pub use hedge::{Hedge, HedgePolicy};
pub use in_process::InProcessInvoker;
pub use limit::{AdaptiveLimit, LimitHandle};
pub use retry::{Retry, RetryPolicy};
pub use timeout::Timeout;

/// Whether, and how, a failed invocation may be tried again. This is data decided where the
/// failure is classified (by error type, HTTP status or Lambda's error type), never by
/// matching message text downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryable {
    /// Trying again gives the same answer (bad SQL, a missing file or function, forbidden).
    No,
    /// Worth one more try, not more: Lambda's own timeout, out of memory, an oversized
    /// response, a broken cold start. A second failure is final.
    Once,
    /// A passing fault (a crash, a 5xx, a dropped connection): back off and try again.
    Yes,
    /// The service asked us to slow down: back off by seconds, on a budget of its own, after
    /// at least `retry_after` when the service said.
    Throttled { retry_after: Option<Duration> },
}

/// Why one invocation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The worker ran the task and reported a failure.
    #[error("{0}")]
    Task(TaskFailure),
    /// No answer within the per-attempt timeout.
    #[error("worker timed out after {seconds} s")]
    Timeout { seconds: u64 },
    /// The invocation itself failed (network, service error, worker crash, a forged answer).
    #[error("{message}")]
    Transport { message: String, retry: Retryable },
    /// The answer is larger than what the query may still gather (`--max-gather-bytes`); it
    /// was not read.
    #[error("its partial result is {bytes} bytes, more than the {room} bytes left of the gather limit")]
    GatherLimit { bytes: u64, room: u64 },
}

impl InvokeError {
    /// How trying the same task again may go.
    pub fn retryable(&self) -> Retryable {
        match self {
            InvokeError::Task(failure) => match failure.error_type {
                ErrorType::Throttled => Retryable::Throttled { retry_after: None },
                ErrorType::Timeout => Retryable::Once,
                _ if failure.retryable => Retryable::Yes,
                _ => Retryable::No,
            },
            InvokeError::Timeout { .. } => Retryable::Once,
            InvokeError::Transport { retry, .. } => *retry,
            InvokeError::GatherLimit { .. } => Retryable::No,
        }
    }

    /// Whether trying the same task again can succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable() != Retryable::No
    }

    /// Whether the service throttled this invocation.
    pub fn is_throttle(&self) -> bool {
        matches!(self.retryable(), Retryable::Throttled { .. })
    }
}

/// One query's figures, counted by the wrappers as its tasks run. Shared by its tasks only.
#[derive(Debug, Default)]
pub struct QueryRun {
    /// Invocations started: first attempts, retries and hedges.
    pub attempts: AtomicU64,
    /// Attempts made again after a failure.
    pub retries: AtomicU64,
    /// Failures that were throttling.
    pub throttles: AtomicU64,
    /// Stragglers invoked a second time.
    pub hedges: AtomicU64,
    /// Milliseconds billed for attempts that failed, where the worker said.
    pub failed_ms: AtomicU64,
    /// Milliseconds of attempts given up on (hedge losers, timed-out attempts): billed too,
    /// counted up to the moment they were abandoned.
    pub abandoned_ms: AtomicU64,
    /// S3 requests the coordinator made for the query (spilled partials read and deleted).
    pub s3_requests: AtomicU64,
    /// The partial results the coordinator holds for the query, and its limit.
    pub gather: GatherBudget,
}

/// The bytes of partial results one query may hold in the coordinator (`--max-gather-bytes`).
/// [`invoke_all`] counts every answer it keeps; an invoker that downloads a partial (a spilled
/// one) first checks it against [`GatherBudget::room`], so it never reads what cannot be kept.
/// The coordinator then holds at most the limit, plus the answers in flight (in Lambda, at most
/// 6 MB each inline).
#[derive(Debug, Default)]
pub struct GatherBudget {
    limit: Option<u64>,
    held: AtomicU64,
}

impl GatherBudget {
    /// A budget of `limit` bytes; `None`: unlimited.
    pub fn new(limit: Option<u64>) -> Self {
        GatherBudget { limit, held: AtomicU64::new(0) }
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Bytes held so far.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Bytes that may still be held (`None`: any).
    pub fn room(&self) -> Option<u64> {
        self.limit.map(|limit| limit.saturating_sub(self.held()))
    }

    /// Counts `bytes` as held; `Err(total)` when the total held would pass the limit (then
    /// nothing is counted).
    pub fn hold(&self, bytes: u64) -> Result<u64, u64> {
        let mut current = self.held();
        loop {
            let total = current.saturating_add(bytes);
            if self.limit.is_some_and(|limit| total > limit) {
                return Err(total);
            }
            match self.held.compare_exchange_weak(current, total, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(total),
                Err(actual) => current = actual,
            }
        }
    }

    /// Forgets everything held (the partials were dropped).
    pub fn release_all(&self) {
        self.held.store(0, Ordering::Relaxed);
    }
}

impl QueryRun {
    /// The figures of a query that may hold `max_gather_bytes` of partial results (`None`: any).
    pub fn with_gather_limit(max_gather_bytes: Option<u64>) -> Self {
        QueryRun { gather: GatherBudget::new(max_gather_bytes), ..QueryRun::default() }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Runs one task somewhere and returns its partial result.
pub trait Invoker: Send + Sync {
    /// Runs `task`, counting into `run`, the figures of the task's query. Both are lent, not
    /// given: a wrapper that tries a task again or twice (retry, hedge) lends the same task to
    /// every attempt instead of copying it, and only a backend that must move it elsewhere (a
    /// worker thread) copies it.
    fn invoke<'a>(
        &'a self,
        task: &'a Task,
        run: &'a Arc<QueryRun>,
    ) -> BoxFuture<'a, Result<PartialResult, InvokeError>>;

    /// Called once when every task of `query_id` has answered or been abandoned: releases what
    /// the query left behind (spilled partials). Wrappers pass it on.
    fn finish(&self, query_id: &str) -> BoxFuture<'_, ()> {
        let _ = query_id;
        Box::pin(async {})
    }
}

impl<I: Invoker + ?Sized> Invoker for Arc<I> {
    fn invoke<'a>(
        &'a self,
        task: &'a Task,
        run: &'a Arc<QueryRun>,
    ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
        (**self).invoke(task, run)
    }

    fn finish(&self, query_id: &str) -> BoxFuture<'_, ()> {
        (**self).finish(query_id)
    }
}

/// What [`stack`] builds around a backend.
#[derive(Debug, Clone, PartialEq)]
pub struct StackConfig {
    /// Invocations in flight at most (hedges included); throttling lowers it for a while.
    pub concurrency: usize,
    /// Per-attempt timeout; `None` leaves it to the backend (Lambda: the function's timeout).
    pub attempt_timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub hedge: Option<HedgePolicy>,
    pub faults: Option<(FaultRates, u64)>,
}

/// The wrappers around `backend`, in the one order every backend uses:
/// Retry(AdaptiveLimit(Hedge(Timeout(Faults(backend))))). Retries wait for a slot again; a
/// hedge takes a slot of the same limit; the timeout and injected faults apply per attempt.
pub fn stack(backend: Arc<dyn Invoker>, config: &StackConfig) -> Arc<dyn Invoker> {
    let faulty: Arc<dyn Invoker> = match config.faults {
        Some((rates, seed)) => Arc::new(RandomFaults::new(backend, rates, seed)),
        None => backend,
    };
    let timed: Arc<dyn Invoker> = match config.attempt_timeout {
        Some(limit) => Arc::new(Timeout::new(faulty, limit)),
        None => faulty,
    };
    let limit = LimitHandle::new(config.concurrency);
    let hedged: Arc<dyn Invoker> = match &config.hedge {
        Some(policy) => Arc::new(Hedge::new(timed, policy.clone(), Some(limit.clone()))),
        None => timed,
    };
    let limited: Arc<dyn Invoker> = Arc::new(AdaptiveLimit::new(hedged, limit));
    Arc::new(Retry::new(limited, config.retry.clone()))
}

/// Progress of a fan-out, reported after each finished task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    /// This query's retries so far.
    pub retries: u64,
}

/// Runs every task of one query and returns the partials in task order; the first failure
/// cancels the rest and is returned (no partial answer), as does missing the overall
/// `deadline`. [`Invoker::finish`] runs in every case before this returns.
pub async fn invoke_all(
    invoker: &dyn Invoker,
    tasks: Vec<Task>,
    run: Arc<QueryRun>,
    deadline: Option<Duration>,
    on_progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<PartialResult>, crate::Error> {
    let query_id = tasks.first().map(|t| t.query_id.clone());
    let result = run_all(invoker, tasks, &run, deadline, on_progress).await;
    if let Some(query_id) = query_id {
        invoker.finish(&query_id).await;
    }
    result
}

async fn run_all(
    invoker: &dyn Invoker,
    tasks: Vec<Task>,
    run: &Arc<QueryRun>,
    deadline: Option<Duration>,
    on_progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<PartialResult>, crate::Error> {
    let total = tasks.len();
    let labels: Vec<String> = tasks.iter().map(|t| t.label.clone()).collect();
    let mut running: FuturesUnordered<_> = tasks
        .into_iter()
        .enumerate()
        .map(|(position, task)| async move { (position, invoker.invoke(&task, run).await) })
        .collect();
    let mut partials: Vec<Option<PartialResult>> = vec![None; total];
    let mut done = 0;
    // One timer for the whole query, not one per answer.
    let expires = deadline.and_then(|d| tokio::time::Instant::now().checked_add(d));
    let expiry = async move {
        match expires {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    loop {
        let next = tokio::select! {
            biased;
            next = running.next() => next,
            () = &mut expiry => {
                let seconds = deadline.map_or(0, |d| d.as_secs());
                return Err(crate::Error::Deadline { seconds, done, total });
            }
        };
        let Some((position, result)) = next else { break };
        let gather_error = |gathered: u64| crate::Error::GatherLimit {
            limit: run.gather.limit().unwrap_or_default(),
            gathered,
            done,
            total,
        };
        match result {
            Ok(partial) => {
                let bytes = match &partial.data {
                    quack_lambda::PartialData::Inline { arrow_ipc } => arrow_ipc.len() as u64,
                    quack_lambda::PartialData::Spilled { .. } => 0,
                };
                run.gather.hold(bytes).map_err(gather_error)?;
                partials[position] = Some(partial);
                done += 1;
                on_progress(Progress { done, total, retries: QueryRun::get(&run.retries) });
            }
            Err(InvokeError::GatherLimit { bytes, .. }) => {
                return Err(gather_error(run.gather.held().saturating_add(bytes)));
            }
            Err(source) => {
                return Err(crate::Error::Task { task_id: position, label: labels[position].clone(), source });
            }
        }
    }
    partials
        .into_iter()
        .enumerate()
        .map(|(position, partial)| {
            partial.ok_or_else(|| crate::Error::Reduce { message: format!("task {position} gave no partial") })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use quack_lambda::{WorkerConfig, WIRE_VERSION};

    pub(crate) fn task(id: usize, sql: &str) -> Task {
        Task {
            version: WIRE_VERSION,
            query_id: "q".into(),
            task_id: id,
            label: format!("t{id}"),
            sql: sql.into(),
            files: vec![],
            time_zone: None,
            exchange: None,
            convert: None,
        }
    }

    pub(crate) fn run() -> Arc<QueryRun> {
        Arc::new(QueryRun::default())
    }

    /// An invoker that never answers in time.
    pub(crate) struct Slow;

    impl Invoker for Slow {
        fn invoke<'a>(
            &'a self,
            _task: &'a Task,
            _run: &'a Arc<QueryRun>,
        ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(InvokeError::Transport { message: "slow".into(), retry: Retryable::No })
            })
        }
    }

    pub(crate) fn fast_policy(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            throttle_base_delay: Duration::from_millis(1),
            throttle_max_delay: Duration::from_millis(4),
            throttle_budget: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn in_process_runs_tasks_in_parallel_and_in_order() {
        let invoker = InProcessInvoker::standalone(2, &WorkerConfig::default()).unwrap();
        let tasks = (0..5).map(|i| task(i, &format!("SELECT {i} AS x"))).collect();
        let partials = invoke_all(&invoker, tasks, run(), None, &|_| {}).await.unwrap();
        assert_eq!(partials.iter().map(|p| p.task_id).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert!(partials.iter().filter(|p| p.stats.cold_start).count() <= 2);
    }

    #[tokio::test]
    async fn a_failed_task_fails_the_fan_out() {
        let invoker = InProcessInvoker::standalone(2, &WorkerConfig::default()).unwrap();
        let tasks = vec![task(0, "SELECT 1"), task(1, "SELECT * FROM read_parquet('/nonexistent/x.parquet')")];
        let err = invoke_all(&invoker, tasks, run(), None, &|_| {}).await.unwrap_err();
        assert!(err.to_string().starts_with("task 1 (t1): missing_file"), "{err}");
    }

    #[tokio::test]
    async fn partials_past_the_gather_limit_stop_the_query() {
        let invoker = InProcessInvoker::standalone(2, &WorkerConfig::default()).unwrap();
        let tasks = || (0..4).map(|i| task(i, "SELECT range AS x FROM range(10000)")).collect::<Vec<_>>();
        let all = invoke_all(&invoker, tasks(), run(), None, &|_| {}).await.unwrap();
        let one: u64 = match &all[0].data {
            quack_lambda::PartialData::Inline { arrow_ipc } => arrow_ipc.len() as u64,
            other => panic!("{other:?}"),
        };
        // Room for two partials and a half: the third one stops the query.
        let limited = Arc::new(QueryRun::with_gather_limit(Some(one * 5 / 2)));
        let err = invoke_all(&invoker, tasks(), limited.clone(), None, &|_| {}).await.unwrap_err();
        let crate::Error::GatherLimit { limit, gathered, done: 2, total: 4 } = err else { panic!("{err}") };
        assert_eq!((limit, gathered), (one * 5 / 2, one * 3));
        assert!(err.to_string().contains("--max-gather-bytes"), "{err}");
        assert!(limited.gather.held() <= one * 5 / 2);
        // Exactly the limit is allowed.
        let exact = Arc::new(QueryRun::with_gather_limit(Some(one * 4)));
        assert_eq!(invoke_all(&invoker, tasks(), exact.clone(), None, &|_| {}).await.unwrap().len(), 4);
        assert_eq!(exact.gather.held(), one * 4);
    }

    #[test]
    fn the_gather_budget_never_counts_past_its_limit() {
        let budget = GatherBudget::new(Some(10));
        assert_eq!(budget.hold(6), Ok(6));
        assert_eq!(budget.hold(5), Err(11));
        assert_eq!((budget.held(), budget.room()), (6, Some(4)));
        assert_eq!(budget.hold(u64::MAX), Err(u64::MAX));
        budget.release_all();
        assert_eq!(budget.room(), Some(10));
        assert_eq!(GatherBudget::default().hold(u64::MAX), Ok(u64::MAX));
    }

    #[tokio::test]
    async fn misses_the_deadline_loudly() {
        let err = invoke_all(&Slow, vec![task(0, "SELECT 1")], run(), Some(Duration::from_millis(20)), &|_| {}).await;
        assert!(matches!(err, Err(crate::Error::Deadline { done: 0, total: 1, .. })));
        // A deadline too far to represent is no deadline, not a panic.
        let far = invoke_all(
            &InProcessInvoker::standalone(1, &WorkerConfig::default()).unwrap(),
            vec![task(0, "SELECT 1")],
            run(),
            Some(Duration::MAX),
            &|_| {},
        )
        .await;
        assert!(far.is_ok());
    }

    #[tokio::test]
    async fn finish_runs_once_per_query_whatever_the_outcome() {
        struct Counting(AtomicU64, InProcessInvoker);
        impl Invoker for Counting {
            fn invoke<'a>(
                &'a self,
                task: &'a Task,
                run: &'a Arc<QueryRun>,
            ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
                self.1.invoke(task, run)
            }
            fn finish(&self, query_id: &str) -> BoxFuture<'_, ()> {
                assert_eq!(query_id, "q");
                self.0.fetch_add(1, Ordering::Relaxed);
                Box::pin(async {})
            }
        }
        let invoker = Counting(AtomicU64::new(0), InProcessInvoker::standalone(1, &WorkerConfig::default()).unwrap());
        invoke_all(&invoker, vec![task(0, "SELECT 1")], run(), None, &|_| {}).await.unwrap();
        invoke_all(&invoker, vec![task(0, "SELEC 1")], run(), None, &|_| {}).await.unwrap_err();
        assert_eq!(invoker.0.load(Ordering::Relaxed), 2);
    }

    /// Throttles every invocation until `until`, then lets them through; fails every first
    /// invocation of the tasks of query `flaky` (to tell queries' counters apart).
    struct Storm {
        inner: InProcessInvoker,
        until: std::time::Instant,
        throttled: AtomicU64,
        failed: std::sync::Mutex<std::collections::HashSet<(String, usize)>>,
    }

    impl Invoker for Storm {
        fn invoke<'a>(
            &'a self,
            task: &'a Task,
            run: &'a Arc<QueryRun>,
        ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
            Box::pin(async move {
                if std::time::Instant::now() < self.until {
                    self.throttled.fetch_add(1, Ordering::Relaxed);
                    return Err(InvokeError::Transport {
                        message: "429 TooManyRequestsException".into(),
                        retry: Retryable::Throttled { retry_after: Some(Duration::from_millis(0)) },
                    });
                }
                let first = task.query_id == "flaky"
                    && self.failed.lock().unwrap().insert((task.query_id.clone(), task.task_id));
                if first {
                    return Err(InvokeError::Transport { message: "crashed".into(), retry: Retryable::Yes });
                }
                self.inner.invoke(task, run).await
            })
        }
    }

    fn storm(seconds: f64) -> Arc<Storm> {
        Arc::new(Storm {
            inner: InProcessInvoker::standalone(4, &WorkerConfig::default()).unwrap(),
            until: std::time::Instant::now() + Duration::from_secs_f64(seconds),
            throttled: AtomicU64::new(0),
            failed: Default::default(),
        })
    }

    fn storm_stack(backend: Arc<Storm>) -> Arc<dyn Invoker> {
        let mut retry = fast_policy(4);
        retry.throttle_base_delay = Duration::from_millis(100);
        retry.throttle_max_delay = Duration::from_millis(800);
        retry.throttle_budget = Duration::from_secs(60);
        stack(backend, &StackConfig { concurrency: 4, attempt_timeout: None, retry, hedge: None, faults: None })
    }

    /// Every invocation throttled for a while, then recovering: the query completes, exactly,
    /// and the throttles are this query's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_throttling_storm_is_ridden_out() {
        let backend = storm(1.5);
        let invoker = storm_stack(backend.clone());
        let run = run();
        let tasks: Vec<Task> = (0..24).map(|i| task(i, &format!("SELECT {i} AS x"))).collect();
        let partials = invoke_all(invoker.as_ref(), tasks, run.clone(), None, &|_| {}).await.unwrap();
        let got: Vec<usize> = partials.iter().map(|p| p.task_id).collect();
        assert_eq!(got, (0..24).collect::<Vec<_>>());
        let throttled = backend.throttled.load(Ordering::Relaxed);
        assert!(throttled > 0);
        assert_eq!(QueryRun::get(&run.throttles), throttled);
        assert_eq!(QueryRun::get(&run.retries), throttled);
    }

    /// Two queries at once through one stack (two dashboard requests): each sees its own
    /// retries only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counters_are_per_query_under_concurrency() {
        let invoker = storm_stack(storm(0.0));
        let of = |query_id: &str| -> Vec<Task> {
            (0..8)
                .map(|i| {
                    let mut t = task(i, &format!("SELECT {i} AS x"));
                    t.query_id = query_id.into();
                    t
                })
                .collect()
        };
        let (flaky, steady) = (run(), run());
        let (a, b) = tokio::join!(
            invoke_all(invoker.as_ref(), of("flaky"), flaky.clone(), None, &|_| {}),
            invoke_all(invoker.as_ref(), of("steady"), steady.clone(), None, &|_| {}),
        );
        assert_eq!((a.unwrap().len(), b.unwrap().len()), (8, 8));
        assert_eq!(QueryRun::get(&flaky.retries), 8);
        assert_eq!(QueryRun::get(&steady.retries), 0);
        assert_eq!(QueryRun::get(&steady.attempts), 8);
    }

    #[test]
    fn retryability_follows_the_error_type() {
        let t = task(0, "");
        let of = |error_type| InvokeError::Task(TaskFailure::new(&t, error_type, "x")).retryable();
        assert_eq!(of(ErrorType::Throttled), Retryable::Throttled { retry_after: None });
        assert_eq!(of(ErrorType::Timeout), Retryable::Once);
        assert_eq!(of(ErrorType::Internal), Retryable::Yes);
        // DuckDB's own INTERNAL error: the same task fails the same way again.
        assert_eq!(of(ErrorType::EngineInternal), Retryable::No);
        assert_eq!(of(ErrorType::Forbidden), Retryable::No);
        assert_eq!(of(ErrorType::BadSql), Retryable::No);
        assert_eq!(InvokeError::Timeout { seconds: 1 }.retryable(), Retryable::Once);
    }
}
