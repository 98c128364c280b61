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
    /// DuckDB threads per in-process worker; workers x threads should match the cores.
    pub worker_threads: usize,
    /// DuckDB `memory_limit` per worker, e.g. `"2GB"`.
    pub worker_memory_limit: Option<String>,
    /// Bytes of input per task; derived from the data and `concurrency` when `None`.
    pub target_task_bytes: Option<u64>,
    /// Lower and upper bound of the derived task size.
    pub min_task_bytes: u64,
    pub max_task_bytes: u64,
    /// Retries of retryable task failures.
    pub retry: RetryPolicy,
    /// Per-task deadline.
    pub task_timeout: Duration,
    /// DuckDB threads of the coordinator's own engine (describe, prune, reduce).
    pub engine_threads: usize,
}

/// Cores available to this process.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl Config {
    /// The embedded default: one in-process worker per core, one DuckDB thread each.
    pub fn embedded() -> Self {
        Self::with_concurrency(available_cores())
    }

    /// `concurrency` in-process workers sharing the machine's cores.
    pub fn with_concurrency(concurrency: usize) -> Self {
        let cores = available_cores();
        let concurrency = concurrency.max(1);
        Config {
            concurrency,
            worker_threads: (cores / concurrency).max(1),
            worker_memory_limit: None,
            target_task_bytes: None,
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
    fn workers_times_threads_fit_the_cores() {
        let cores = available_cores();
        let config = Config::with_concurrency(cores);
        assert_eq!(config.worker_threads, 1);
        let config = Config::with_concurrency(1);
        assert_eq!(config.worker_threads, cores);
        assert!(Config::with_concurrency(0).concurrency >= 1);
    }
}
