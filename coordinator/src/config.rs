//! The coordinator's configuration, in one place. The CLI (`main.rs`) builds it from flags and
//! their `QUACK_*` environment variables (declared next to each flag); library users build it
//! directly.

use std::time::Duration;

use crate::invoke::RetryPolicy;

/// How a [`crate::Quack`] plans and runs queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Tasks in flight at once (in-process: the number of workers).
    pub concurrency: usize,
    /// DuckDB `memory_limit` of the embedded database (shared by in-process workers), e.g. `"8GB"`.
    pub memory_limit: Option<String>,
    /// Bytes of input per task; derived from the data and `concurrency` when `None`.
    pub target_task_bytes: Option<u64>,
    /// Tasks per worker when the task size is derived: more evens out skew, fewer saves the
    /// per-task setup (~1 ms in process; much more per Lambda invocation).
    pub tasks_per_worker: usize,
    /// Lower and upper bound of the derived task size.
    pub min_task_bytes: u64,
    pub max_task_bytes: u64,
    /// Retries of retryable task failures.
    pub retry: RetryPolicy,
    /// Per-task deadline.
    pub task_timeout: Duration,
    /// DuckDB threads of the coordinator's database, whose pool in-process workers share:
    /// the cores, so workers never oversubscribe the machine.
    pub engine_threads: usize,
}

/// Cores available to this process.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl Config {
    /// The embedded default: one in-process worker per core, sharing one pool of DuckDB threads.
    pub fn embedded() -> Self {
        Self::with_concurrency(available_cores())
    }

    /// `concurrency` in-process workers sharing the machine's cores.
    pub fn with_concurrency(concurrency: usize) -> Self {
        let cores = available_cores();
        Config {
            concurrency: concurrency.max(1),
            memory_limit: None,
            target_task_bytes: None,
            tasks_per_worker: 2,
            min_task_bytes: 1 << 20,
            max_task_bytes: 256 << 20,
            retry: RetryPolicy::default(),
            task_timeout: Duration::from_secs(900),
            engine_threads: cores,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_pool_matches_the_cores_whatever_the_concurrency() {
        for concurrency in [0, 1, 64] {
            let config = Config::with_concurrency(concurrency);
            assert_eq!(config.engine_threads, available_cores());
            assert!(config.concurrency >= 1);
        }
    }
}
