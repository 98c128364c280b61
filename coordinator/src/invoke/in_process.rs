//! [`InProcessInvoker`]: workers in this process, the embedded default and the test double of
//! every other backend.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use quack_lambda::{PartialResult, Task, Worker, WorkerConfig};
use tokio::sync::Semaphore;

use super::{InvokeError, Invoker, QueryRun, Retryable};

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
            slots: Semaphore::new(workers.clamp(1, Semaphore::MAX_PERMITS)),
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
            retry: Retryable::Yes,
        })?;
        Worker::from_connection(conn)
            .map_err(|e| InvokeError::Transport { message: e.to_string(), retry: Retryable::Yes })
    }
}

impl Invoker for InProcessInvoker {
    fn invoke(&self, task: Task, run: Arc<QueryRun>) -> BoxFuture<'_, Result<PartialResult, InvokeError>> {
        Box::pin(async move {
            let _slot = self.slots.acquire().await.map_err(|e| InvokeError::Transport {
                message: format!("worker pool closed: {e}"),
                retry: Retryable::No,
            })?;
            QueryRun::add(&run.attempts, 1);
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
                    Err(InvokeError::Transport { message: format!("worker thread failed: {e}"), retry: Retryable::Yes })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_invoker_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.parquet").display().to_string();
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!("COPY (SELECT range AS id FROM range(10)) TO '{file}'")).unwrap();
        let missing = dir.path().join("missing.parquet").display().to_string();
        let invoker = InProcessInvoker::standalone(2, &WorkerConfig::default()).unwrap();
        crate::conformance::invoker(&invoker, &file, &missing).await;
    }
}
