//! [`InProcessInvoker`]: workers in this process, the embedded default and the test double of
//! every other backend.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use quack_lambda::exchange::ExchangeStore;
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
    exchange: Option<Arc<dyn ExchangeStore>>,
}

impl InProcessInvoker {
    /// A pool of at most `workers` busy workers, each a new connection to `database`'s database.
    pub fn new(workers: usize, database: duckdb::Connection) -> Self {
        InProcessInvoker {
            database: Mutex::new(database),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(workers.clamp(1, Semaphore::MAX_PERMITS)),
            exchange: None,
        }
    }

    /// Lets the workers run the tasks of a stage that writes to `store`.
    pub fn with_exchange(mut self, store: Arc<dyn ExchangeStore>) -> Self {
        self.exchange = Some(store);
        self
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
        let mut worker = Worker::from_connection(conn)
            .map_err(|e| InvokeError::Transport { message: e.to_string(), retry: Retryable::Yes })?;
        worker.set_exchange(self.exchange.clone());
        Ok(worker)
    }
}

impl Invoker for InProcessInvoker {
    fn invoke<'a>(
        &'a self,
        task: &'a Task,
        run: &'a Arc<QueryRun>,
    ) -> BoxFuture<'a, Result<PartialResult, InvokeError>> {
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
            // The worker thread needs a task of its own; DuckDB's run dwarfs the copy.
            let task = task.clone();
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
        let root = format!("{}/exchange/", dir.path().display());
        let invoker = InProcessInvoker::standalone(2, &WorkerConfig::default())
            .unwrap()
            .with_exchange(Arc::new(quack_lambda::exchange::LocalExchange::new(root.clone())));
        crate::conformance::invoker(&invoker, &file, &missing).await;
        crate::conformance::exchange(&invoker, &root).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_an_exchange_a_stage_task_is_refused() {
        let invoker = InProcessInvoker::standalone(1, &WorkerConfig::default()).unwrap();
        let mut task = crate::invoke::tests::task(0, "SELECT 1 AS k, 0 AS __quack_bucket");
        task.exchange = Some(quack_lambda::ExchangeWrite { prefix: format!("/tmp/{}/s1/", task.query_id), buckets: 1 });
        let Err(InvokeError::Task(failure)) = invoker.invoke(&task, &Arc::new(QueryRun::default())).await else {
            panic!("a worker without an exchange ran a stage task")
        };
        assert_eq!(failure.error_type, quack_lambda::ErrorType::Forbidden, "{}", failure.message);
    }
}
