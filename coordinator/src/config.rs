//! The coordinator's configuration, in one place. Front ends (the `quack` CLI, the dashboard)
//! build it with [`crate::settings::EngineArgs::resolve`]: flags and their `QUACK_*` variables,
//! then the config file, then defaults; library users build it directly.
//! [`Environment::read`] is the one place that reads the other environment variables the
//! coordinator uses.

use std::path::PathBuf;
use std::time::Duration;

use crate::aws::AwsSettings;
use crate::invoke::{FaultRates, HedgePolicy, RetryPolicy, StackConfig};

/// Where tasks run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Backend {
    /// In-process DuckDB workers (the embedded default).
    #[default]
    Local,
    /// One AWS Lambda invocation per task, of this function (name, ARN or `name:alias`).
    Lambda { function: String },
}

/// Whether a query that can be split is split ([`crate::plan`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitPolicy {
    /// By cost. In process, a query runs as one DuckDB query over all its files with all cores:
    /// the workers share one DuckDB thread pool, so a split adds planning, binding per task and
    /// a reduce, and parallelizes nothing DuckDB does not (a query whose FILTERed aggregates one
    /// DuckDB query answers differently from run to run is still split, one partition per
    /// task). Through Lambda, or with `--buckets`, it splits (one function cannot read a whole
    /// lake).
    #[default]
    Auto,
    /// Split whenever the rewriter can (what Lambda runs; tests use it to exercise the split
    /// path in process).
    Always,
}

/// AWS Lambda prices used for the cost estimate (USD).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pricing {
    pub per_gb_second: f64,
    pub per_request: f64,
    /// One S3 request (GET at $0.0004 per 1,000 in us-east-1).
    pub per_s3_request: f64,
}

impl Default for Pricing {
    /// Lambda on arm64 in us-east-1: $0.0000133334 per GB-s, $0.20 per million requests; S3
    /// Standard GETs at $0.40 per million.
    fn default() -> Self {
        Pricing { per_gb_second: 0.000_013_333_4, per_request: 0.000_000_2, per_s3_request: 0.000_000_4 }
    }
}

/// The model behind dry-run estimates: each task costs a fixed overhead (invocation, DuckDB
/// set-up, the Parquet footers) plus its bytes at a scan rate. Defaults from the local Lambda
/// stack's figures (README: warm tasks of ~130 ms, ~150 MiB/s per 2 GB worker).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    pub task_overhead: Duration,
    pub scan_bytes_per_second: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel { task_overhead: Duration::from_millis(150), scan_bytes_per_second: 150.0 * 1024.0 * 1024.0 }
    }
}

impl Pricing {
    /// The cost in USD of `gb_seconds` of Lambda, `requests` invocations and `s3_requests`.
    pub fn cost(&self, gb_seconds: f64, requests: u64, s3_requests: u64) -> f64 {
        gb_seconds * self.per_gb_second + requests as f64 * self.per_request + s3_requests as f64 * self.per_s3_request
    }
}

/// How a [`crate::Quack`] plans and runs queries.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where tasks run.
    pub backend: Backend,
    /// Region, endpoints and credentials for S3 and Lambda.
    pub aws: AwsSettings,
    /// The httpfs extension file the coordinator's DuckDB loads for `s3://` paths; DuckDB's
    /// extension directory when `None`.
    pub httpfs_extension: Option<PathBuf>,
    /// The icu extension file (time zones) the coordinator's DuckDB loads; when `None`, the
    /// fetch script's cache, then DuckDB's extension directory ([`quack_lambda::extension`]).
    pub icu_extension: Option<PathBuf>,
    /// The session's time zone (an IANA name, DuckDB's `TimeZone`); `None`: `TZ`, else the
    /// system's, as DuckDB picks it. Every task runs in it.
    pub time_zone: Option<String>,
    /// Hedged re-invocation of stragglers (`None`: off).
    pub hedge: Option<HedgePolicy>,
    /// Deadline for all of a query's tasks (`None`: only the per-task timeout).
    pub deadline: Option<Duration>,
    /// Prices for the cost estimate of Lambda queries.
    pub pricing: Pricing,
    /// The model of dry-run estimates.
    pub cost_model: CostModel,
    /// Function memory assumed when a worker does not report it (MB).
    pub lambda_memory_mb: u64,
    /// Random faults injected around the invoker (testing).
    pub inject_faults: Option<FaultRates>,
    /// Tasks in flight at once (in-process: the number of workers).
    pub concurrency: usize,
    /// DuckDB `memory_limit` of the embedded database (shared by in-process workers), e.g. `"8GB"`.
    pub memory_limit: Option<String>,
    /// Work per task, as bytes of input plus `file_open_bytes` per file; derived from the data
    /// and `concurrency` when `None`.
    pub target_task_bytes: Option<u64>,
    /// What opening one file costs a task, counted as bytes read in the same time; `None`: 8 MiB
    /// for `s3://` files (request latency), 64 KiB for local ones. See [`crate::tasks::FileCost`].
    pub file_open_bytes: Option<u64>,
    /// Tasks per worker when the task size is derived: more evens out skew, fewer saves the
    /// per-task setup (~1 ms in process; much more per Lambda invocation).
    pub tasks_per_worker: usize,
    /// Lower and upper bound of the derived task size.
    pub min_task_bytes: u64,
    pub max_task_bytes: u64,
    /// Retries of retryable task failures.
    pub retry: RetryPolicy,
    /// Per-attempt timeout; `None`: 900 s in process, the function's own timeout in Lambda.
    pub task_timeout: Option<Duration>,
    /// Where Lambda workers spill partials too large to answer inline (`s3://bucket/prefix/`,
    /// the workers' `QUACK_SPILL_PREFIX`); spilled partials are read only from there.
    pub spill_prefix: Option<String>,
    /// DuckDB threads of the coordinator's database, whose pool in-process workers share:
    /// the cores, so workers never oversubscribe the machine.
    pub engine_threads: usize,
    /// When a block whose map ships rows is split.
    pub split: SplitPolicy,
    /// Bytes of partial results the coordinator may hold for one query (`None`: any); a query
    /// whose partials would pass it stops with [`crate::Error::GatherLimit`].
    pub max_gather_bytes: Option<u64>,
    /// When a query reads two hive-partitioned tables, the smaller is read whole by every task
    /// (broadcast) when its listed bytes are at most this; see [`crate::plan`].
    pub broadcast_bytes: u64,
    /// Buckets of the exchange between the map and a second stage (`None`: no second stage).
    /// A reduce that groups is then shuffled on its keys: see [`crate::rewrite::stage`].
    pub buckets: Option<u32>,
    /// Where stages exchange rows (a directory, ending in `/`); `None`: `quack-exchange/` under
    /// the system's temporary directory. Each query's files go under `<exchange><query_id>/` and
    /// are deleted when the query ends.
    pub exchange: Option<String>,
}

/// The default of [`Config::broadcast_bytes`]: 32 MiB.
pub const DEFAULT_BROADCAST_BYTES: u64 = 32 << 20;

/// The default of [`Config::max_gather_bytes`]: 256 MiB.
pub const DEFAULT_MAX_GATHER_BYTES: u64 = 256 << 20;

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
            backend: Backend::Local,
            aws: AwsSettings::default(),
            httpfs_extension: None,
            icu_extension: None,
            time_zone: None,
            hedge: None,
            deadline: None,
            pricing: Pricing::default(),
            cost_model: CostModel::default(),
            lambda_memory_mb: 2048,
            inject_faults: None,
            concurrency: concurrency.max(1),
            memory_limit: None,
            target_task_bytes: None,
            file_open_bytes: None,
            tasks_per_worker: 2,
            min_task_bytes: 1 << 20,
            max_task_bytes: 256 << 20,
            retry: RetryPolicy::default(),
            task_timeout: None,
            spill_prefix: None,
            engine_threads: cores,
            split: SplitPolicy::Auto,
            max_gather_bytes: Some(DEFAULT_MAX_GATHER_BYTES),
            buckets: None,
            exchange: None,
            broadcast_bytes: DEFAULT_BROADCAST_BYTES,
        }
    }

    /// The exchange's root, ending in `/`: [`Config::exchange`] or `quack-exchange/` in the
    /// system's temporary directory.
    pub fn exchange_root(&self) -> String {
        let root = self
            .exchange
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("quack-exchange").to_string_lossy().into_owned());
        if root.ends_with('/') {
            root
        } else {
            format!("{root}/")
        }
    }

    /// The invoker stack this configuration asks for.
    pub fn stack(&self) -> StackConfig {
        let attempt_timeout = match self.backend {
            Backend::Local => Some(self.task_timeout.unwrap_or(Duration::from_secs(900))),
            // The Lambda invoker bounds attempts itself, by the function's timeout when unset.
            Backend::Lambda { .. } => None,
        };
        StackConfig {
            concurrency: self.concurrency,
            attempt_timeout,
            retry: self.retry.clone(),
            hedge: self.hedge.clone(),
            faults: self.inject_faults.map(|rates| (rates, fastrand::u64(..))),
        }
    }
}

/// Environment variables the coordinator reads besides the `QUACK_*` ones its flags declare
/// (the AWS SDK reads the standard AWS variables itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`: the S3 endpoint DuckDB's secret names.
    pub s3_endpoint: Option<String>,
    /// The config file: `QUACK_CONFIG`, else `$XDG_CONFIG_HOME/quack/config.toml`, else
    /// `$HOME/.config/quack/config.toml`.
    pub config_file: Option<PathBuf>,
}

impl Environment {
    /// Reads the variables listed on the fields.
    pub fn read() -> Environment {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Environment {
        let config_file = var("QUACK_CONFIG").map(PathBuf::from).or_else(|| {
            var("XDG_CONFIG_HOME")
                .map(|dir| PathBuf::from(dir).join("quack/config.toml"))
                .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".config/quack/config.toml")))
        });
        Environment { s3_endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")), config_file }
    }
}

/// Settings from the config file (TOML); flags and `QUACK_*` variables override them.
///
/// ```toml
/// backend = "lambda"
/// function = "quack-worker"
/// region = "eu-west-1"
/// concurrency = 200
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub backend: Option<String>,
    pub function: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub concurrency: Option<u64>,
    pub httpfs_extension: Option<PathBuf>,
    pub icu_extension: Option<PathBuf>,
    pub time_zone: Option<String>,
    pub spill_prefix: Option<String>,
    pub hedge_after: Option<f64>,
    pub task_timeout: Option<f64>,
    pub deadline: Option<f64>,
    pub max_attempts: Option<u64>,
    pub memory_limit: Option<String>,
    pub lambda_memory_mb: Option<u64>,
    pub split: Option<String>,
    pub file_open_bytes: Option<u64>,
    pub max_gather_bytes: Option<u64>,
    pub buckets: Option<u64>,
    pub exchange: Option<String>,
    pub broadcast_bytes: Option<u64>,
}

/// The config file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("config file {path}: {message}")]
pub struct FileConfigError {
    pub path: String,
    pub message: String,
}

impl FileConfig {
    /// Reads `path`; an absent file is an empty config, unless `required`.
    pub fn load(path: &std::path::Path, required: bool) -> Result<FileConfig, FileConfigError> {
        let error = |message: String| FileConfigError { path: path.display().to_string(), message };
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| error(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(FileConfig::default()),
            Err(e) => Err(error(e.to_string())),
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

    #[test]
    fn reads_the_environment_in_one_place() {
        let env = Environment::from_vars(|name| match name {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9000".into()),
            "HOME" => Some("/home/me".into()),
            _ => None,
        });
        assert_eq!(env.s3_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(env.config_file, Some(PathBuf::from("/home/me/.config/quack/config.toml")));
    }

    #[test]
    fn reads_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert_eq!(FileConfig::load(&path, false).unwrap(), FileConfig::default());
        assert!(FileConfig::load(&path, true).is_err());
        std::fs::write(&path, "backend = \"lambda\"\nfunction = \"quack-worker\"\n").unwrap();
        let file = FileConfig::load(&path, false).unwrap();
        assert_eq!(file.function.as_deref(), Some("quack-worker"));
        std::fs::write(&path, "functoin = \"typo\"\n").unwrap();
        assert!(FileConfig::load(&path, false).unwrap_err().to_string().contains("functoin"));
    }
}
