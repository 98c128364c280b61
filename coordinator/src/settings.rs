//! The engine settings every front end takes, and their one merge into a [`Config`].
//!
//! Contract: [`EngineArgs`] is the flag set both `quack` and `quack-dashboard` flatten (each flag
//! also reads its `QUACK_*` variable, through clap); [`EngineArgs::resolve`] merges flag >
//! environment > config file > defaults, once, for every front end. Every number is parsed into
//! a checked range by the functions of this module, for flags and config-file values alike: an
//! out-of-range, infinite or NaN value is a clear error, never a panic or a silent clamp.

use std::path::PathBuf;
use std::time::Duration;

use crate::aws::AwsSettings;
use crate::config::{Backend, Config, Environment, FileConfig, SplitPolicy};
use crate::invoke::limit::MAX_CONCURRENCY;
use crate::invoke::{FaultRates, HedgePolicy};
use crate::Error;

/// Longest per-task timeout or query deadline, in seconds (a week).
pub const MAX_SECONDS: f64 = 7.0 * 86_400.0;
/// Largest hedge factor.
pub const MAX_HEDGE_FACTOR: f64 = 1000.0;
/// Most attempts per task.
pub const MAX_ATTEMPTS: u64 = 100;
/// Largest task size, in bytes (1 TiB).
pub const MAX_TASK_BYTES: u64 = 1 << 40;
/// Largest `--max-gather-bytes`.
pub const MAX_GATHER_BYTES: u64 = 1 << 50;

/// Where tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    Local,
    Lambda,
}

/// How queries run: the flags every front end shares.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct EngineArgs {
    /// Where tasks run: local (in-process DuckDB workers) or lambda.
    #[arg(long, env = "QUACK_BACKEND", value_enum)]
    pub backend: Option<BackendKind>,
    /// The worker's Lambda function (name, ARN or name:alias) for --backend lambda.
    #[arg(long, env = "QUACK_FUNCTION")]
    pub function: Option<String>,
    /// AWS region; default from the AWS configuration (AWS_REGION, profile).
    #[arg(long)]
    pub region: Option<String>,
    /// Endpoint for both S3 and Lambda (S3-compatible stores, emulators); default from
    /// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_LAMBDA or AWS_ENDPOINT_URL.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Config file (TOML: backend, function, region, endpoint_url, concurrency,
    /// httpfs_extension, icu_extension, time_zone, spill_prefix, hedge_after, task_timeout, deadline, max_attempts,
    /// memory_limit, lambda_memory_mb, split, file_open_bytes, max_gather_bytes, buckets, exchange, broadcast_bytes); default QUACK_CONFIG or ~/.config/quack/config.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Tasks in flight at once (1 to 100000); default: the cores (local) or 100 (lambda).
    #[arg(long, short = 'j', env = "QUACK_CONCURRENCY", value_parser = parse_concurrency)]
    pub concurrency: Option<usize>,
    /// Input bytes per task (1 to 2^40), each file counting --file-open-bytes more; default:
    /// derived from the data size and the concurrency.
    #[arg(long, env = "QUACK_TARGET_TASK_BYTES", value_parser = parse_task_bytes)]
    pub target_task_bytes: Option<u64>,
    /// What opening one file costs a task, as bytes read in the same time (0 to 2^40), so that
    /// many small files spread over tasks; default 8 MiB for s3:// files, 64 KiB for local ones.
    #[arg(long, env = "QUACK_FILE_OPEN_BYTES", value_parser = parse_file_open_bytes)]
    pub file_open_bytes: Option<u64>,
    /// Bytes of partial results the coordinator may hold for one query (0: no limit; at most
    /// 2^50); default 256 MiB. A query that would hold more stops with a message that says so.
    #[arg(long, env = "QUACK_MAX_GATHER_BYTES", value_parser = parse_gather_bytes)]
    pub max_gather_bytes: Option<u64>,
    /// Run a reduce that groups as a second stage (1 to 4096 buckets): the map writes its rows
    /// to the exchange hashed on the group keys, and one task per bucket computes its groups
    /// whole, so only a row per group reaches the coordinator. Windows that share PARTITION BY
    /// keys are shuffled on those, and a sort without LIMIT is range-partitioned on its first
    /// key and sorted per bucket. 0 or unset: no second stage.
    #[arg(long, env = "QUACK_BUCKETS", value_parser = parse_buckets)]
    pub buckets: Option<u32>,
    /// A second hive-partitioned table of at most this many listed bytes is read whole by every
    /// task (broadcast) when a query reads two (0 to 2^40); default 32 MiB. Larger ones are
    /// co-partitioned through the exchange (--buckets) or the query runs as one task.
    #[arg(long, env = "QUACK_BROADCAST_BYTES", value_parser = parse_file_open_bytes)]
    pub broadcast_bytes: Option<u64>,
    /// Directory where the stages exchange rows; default quack-exchange/ in the system's
    /// temporary directory. A query's files are deleted when it ends.
    #[arg(long, env = "QUACK_EXCHANGE")]
    pub exchange: Option<String>,
    /// Per-attempt timeout in seconds; default 900 (local) or the function's own (lambda).
    #[arg(long, env = "QUACK_TASK_TIMEOUT", value_parser = parse_seconds)]
    pub task_timeout: Option<Duration>,
    /// Deadline in seconds for all of a query's tasks.
    #[arg(long, env = "QUACK_DEADLINE", value_parser = parse_seconds)]
    pub deadline: Option<Duration>,
    /// Attempts per task for passing failures (1 to 100; throttling has a budget of its own).
    #[arg(long, env = "QUACK_MAX_ATTEMPTS", value_parser = parse_attempts)]
    pub max_attempts: Option<u32>,
    /// Start a straggler again when it runs this many times longer than the median finished
    /// task (0: never, else 1 to 1000); default 3 for lambda, 0 for local.
    #[arg(long, env = "QUACK_HEDGE_AFTER", value_parser = parse_hedge_factor)]
    pub hedge_after: Option<f64>,
    /// DuckDB memory limit of the embedded database its workers share, e.g. 8GB.
    #[arg(long, env = "QUACK_MEMORY_LIMIT")]
    pub memory_limit: Option<String>,
    /// The httpfs extension file the coordinator loads for s3:// paths (scripts/fetch-httpfs.sh).
    #[arg(long, env = "QUACK_HTTPFS_EXTENSION")]
    pub httpfs_extension: Option<PathBuf>,
    /// DuckDB's icu extension file (time zones; scripts/fetch-extension.sh icu); default the
    /// fetch script's cache, then DuckDB's extension directory.
    #[arg(long, env = "QUACK_ICU_EXTENSION")]
    pub icu_extension: Option<PathBuf>,
    /// The session's time zone, e.g. Europe/Berlin (DuckDB's TimeZone); default TZ, else the
    /// system's. Every task runs in it.
    #[arg(long, env = "QUACK_TIME_ZONE")]
    pub time_zone: Option<String>,
    /// Where the Lambda workers spill large partials (their QUACK_SPILL_PREFIX); spilled
    /// partials are read only from there.
    #[arg(long, env = "QUACK_SPILL_PREFIX")]
    pub spill_prefix: Option<String>,
    /// Lambda price per GB-second (USD) for the cost estimate; default arm64 us-east-1.
    #[arg(long, env = "QUACK_PRICE_PER_GB_SECOND", value_parser = parse_price)]
    pub price_per_gb_second: Option<f64>,
    /// Lambda price per request (USD) for the cost estimate.
    #[arg(long, env = "QUACK_PRICE_PER_REQUEST", value_parser = parse_price)]
    pub price_per_request: Option<f64>,
    /// S3 price per request (USD) for the cost estimate.
    #[arg(long, env = "QUACK_PRICE_PER_S3_REQUEST", value_parser = parse_price)]
    pub price_per_s3_request: Option<f64>,
    /// Function memory (MB, 128 to 10240) assumed when a worker does not report it.
    #[arg(long, env = "QUACK_LAMBDA_MEMORY_MB", value_parser = parse_memory_mb)]
    pub lambda_memory_mb: Option<u64>,
    /// When a query is split: auto (in process, one DuckDB query over all files with all cores,
    /// which is cheapest there; through Lambda or with --buckets, split) or always.
    #[arg(long, env = "QUACK_SPLIT", value_enum)]
    pub split: Option<SplitPolicy>,
    /// Inject faults around the invoker, e.g. fail=0.2,delay=0.1 (testing).
    #[arg(long, env = "QUACK_INJECT_FAULTS", hide = true)]
    pub inject_faults: Option<FaultRates>,
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim().parse::<T>().map_err(|_| format!("{text:?} is not a number"))
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(value: T, low: T, high: T) -> Result<T, String> {
    if value >= low && value <= high {
        Ok(value)
    } else {
        Err(format!("{value} is not from {low} to {high}"))
    }
}

/// Tasks in flight: 1 to [`MAX_CONCURRENCY`].
pub fn parse_concurrency(text: &str) -> Result<usize, String> {
    in_range(number::<u64>(text)?, 1, MAX_CONCURRENCY as u64).map(|n| n as usize)
}

/// Bytes per task: 1 to [`MAX_TASK_BYTES`].
pub fn parse_task_bytes(text: &str) -> Result<u64, String> {
    in_range(number::<u64>(text)?, 1, MAX_TASK_BYTES)
}

/// The cost of a file's open: 0 to [`MAX_TASK_BYTES`].
pub fn parse_file_open_bytes(text: &str) -> Result<u64, String> {
    in_range(number::<u64>(text)?, 0, MAX_TASK_BYTES)
}

/// The gather limit: 0 (no limit) to [`MAX_GATHER_BYTES`].
pub fn parse_gather_bytes(text: &str) -> Result<u64, String> {
    in_range(number::<u64>(text)?, 0, MAX_GATHER_BYTES)
}

/// A bucket count: 0 (no second stage) to [`quack_lambda::exchange::MAX_BUCKETS`].
pub fn parse_buckets(text: &str) -> Result<u32, String> {
    Ok(in_range(number::<u64>(text)?, 0, u64::from(quack_lambda::exchange::MAX_BUCKETS))? as u32)
}

/// A duration in seconds (fractions allowed): more than 0, at most [`MAX_SECONDS`].
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    seconds(number::<f64>(text)?)
}

fn seconds(value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value <= MAX_SECONDS {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!("{value} seconds is not more than 0 and at most {MAX_SECONDS} (a week)"))
    }
}

/// Attempts per task: 1 to [`MAX_ATTEMPTS`].
pub fn parse_attempts(text: &str) -> Result<u32, String> {
    in_range(number::<u64>(text)?, 1, MAX_ATTEMPTS).map(|n| n as u32)
}

/// A hedge factor: 0 (off) or 1 to [`MAX_HEDGE_FACTOR`].
pub fn parse_hedge_factor(text: &str) -> Result<f64, String> {
    hedge_factor(number::<f64>(text)?)
}

fn hedge_factor(value: f64) -> Result<f64, String> {
    if value == 0.0 || (value.is_finite() && (1.0..=MAX_HEDGE_FACTOR).contains(&value)) {
        Ok(value)
    } else {
        Err(format!("{value} is not 0 (off) or from 1 to {MAX_HEDGE_FACTOR}"))
    }
}

/// A price in USD: finite, 0 or more, at most 1000.
pub fn parse_price(text: &str) -> Result<f64, String> {
    let value = number::<f64>(text)?;
    if value.is_finite() && (0.0..=1000.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a price from 0 to 1000 USD"))
    }
}

/// Lambda memory: 128 to 10240 MB.
pub fn parse_memory_mb(text: &str) -> Result<u64, String> {
    in_range(number::<u64>(text)?, 128, 10_240)
}

impl EngineArgs {
    /// The library config: these flags (and their `QUACK_*` variables), then the config file
    /// (`--config`, else [`Environment::config_file`]; a missing default file is no error),
    /// then defaults.
    pub fn resolve(&self, environment: &Environment) -> Result<Config, Error> {
        let file = match self.config.as_ref().or(environment.config_file.as_ref()) {
            Some(path) => {
                FileConfig::load(path, self.config.is_some()).map_err(|e| Error::Config { message: e.to_string() })?
            }
            None => FileConfig::default(),
        };
        self.resolve_with(&file, environment)
    }

    /// As [`EngineArgs::resolve`], over a config file already read.
    pub fn resolve_with(&self, file: &FileConfig, environment: &Environment) -> Result<Config, Error> {
        let bad = |key: &str, message: String| Error::Config { message: format!("config file: {key}: {message}") };
        let backend = match (self.backend, file.backend.as_deref()) {
            (Some(kind), _) => kind,
            (None, Some("lambda")) => BackendKind::Lambda,
            (None, Some("local")) | (None, None) => BackendKind::Local,
            (None, Some(other)) => return Err(bad("backend", format!("{other:?} is not local or lambda"))),
        };
        let lambda = backend == BackendKind::Lambda;
        let concurrency = match (self.concurrency, file.concurrency) {
            (Some(n), _) => Some(n),
            (None, Some(n)) => Some(parse_concurrency(&n.to_string()).map_err(|m| bad("concurrency", m))?),
            (None, None) => None,
        };
        let mut config = match (concurrency, lambda) {
            (Some(n), _) => Config::with_concurrency(n),
            (None, true) => Config::with_concurrency(100),
            (None, false) => Config::embedded(),
        };
        if lambda {
            let function = self.function.clone().or(file.function.clone()).ok_or_else(|| Error::Config {
                message: "--backend lambda needs a function: --function, QUACK_FUNCTION or the config file".into(),
            })?;
            config.backend = Backend::Lambda { function };
        }
        config.aws = AwsSettings {
            region: self.region.clone().or(file.region.clone()),
            endpoint_url: self.endpoint_url.clone().or(file.endpoint_url.clone()),
            s3_endpoint_env: environment.s3_endpoint.clone(),
        };
        config.httpfs_extension = self.httpfs_extension.clone().or(file.httpfs_extension.clone());
        config.icu_extension = self.icu_extension.clone().or(file.icu_extension.clone());
        config.time_zone = self.time_zone.clone().or(file.time_zone.clone()).filter(|z| !z.trim().is_empty());
        config.spill_prefix = self.spill_prefix.clone().or(file.spill_prefix.clone());
        config.target_task_bytes = self.target_task_bytes;
        config.max_gather_bytes = match (self.max_gather_bytes, file.max_gather_bytes) {
            (Some(bytes), _) => Some(bytes),
            (None, Some(bytes)) => Some(in_range(bytes, 0, MAX_GATHER_BYTES).map_err(|m| bad("max_gather_bytes", m))?),
            (None, None) => Some(crate::config::DEFAULT_MAX_GATHER_BYTES),
        }
        .filter(|&bytes| bytes > 0);
        config.buckets = match (self.buckets, file.buckets) {
            (Some(n), _) => Some(n),
            (None, Some(n)) => {
                Some(in_range(n, 0, u64::from(quack_lambda::exchange::MAX_BUCKETS)).map_err(|m| bad("buckets", m))?
                    as u32)
            }
            (None, None) => None,
        }
        .filter(|&n| n > 0);
        config.exchange = self.exchange.clone().or(file.exchange.clone()).filter(|e| !e.trim().is_empty());
        config.broadcast_bytes = match (self.broadcast_bytes, file.broadcast_bytes) {
            (Some(bytes), _) => bytes,
            (None, Some(bytes)) => in_range(bytes, 0, MAX_TASK_BYTES).map_err(|m| bad("broadcast_bytes", m))?,
            (None, None) => crate::config::DEFAULT_BROADCAST_BYTES,
        };
        config.file_open_bytes = match (self.file_open_bytes, file.file_open_bytes) {
            (Some(bytes), _) => Some(bytes),
            (None, Some(bytes)) => Some(in_range(bytes, 0, MAX_TASK_BYTES).map_err(|m| bad("file_open_bytes", m))?),
            (None, None) => None,
        };
        config.task_timeout = match (self.task_timeout, file.task_timeout) {
            (Some(t), _) => Some(t),
            (None, Some(s)) => Some(seconds(s).map_err(|m| bad("task_timeout", m))?),
            (None, None) => None,
        };
        config.deadline = match (self.deadline, file.deadline) {
            (Some(t), _) => Some(t),
            (None, Some(s)) => Some(seconds(s).map_err(|m| bad("deadline", m))?),
            (None, None) => None,
        };
        config.retry.max_attempts = match (self.max_attempts, file.max_attempts) {
            (Some(n), _) => n,
            (None, Some(n)) => in_range(n, 1, MAX_ATTEMPTS).map_err(|m| bad("max_attempts", m))? as u32,
            (None, None) => config.retry.max_attempts,
        };
        let hedge_after = match (self.hedge_after, file.hedge_after) {
            (Some(f), _) => f,
            (None, Some(f)) => hedge_factor(f).map_err(|m| bad("hedge_after", m))?,
            (None, None) if lambda => 3.0,
            (None, None) => 0.0,
        };
        config.hedge = (hedge_after > 0.0).then(|| HedgePolicy { factor: hedge_after, ..HedgePolicy::default() });
        config.memory_limit = self.memory_limit.clone().or(file.memory_limit.clone());
        if let Some(price) = self.price_per_gb_second {
            config.pricing.per_gb_second = price;
        }
        if let Some(price) = self.price_per_request {
            config.pricing.per_request = price;
        }
        if let Some(price) = self.price_per_s3_request {
            config.pricing.per_s3_request = price;
        }
        config.lambda_memory_mb = match (self.lambda_memory_mb, file.lambda_memory_mb) {
            (Some(mb), _) => mb,
            (None, Some(mb)) => parse_memory_mb(&mb.to_string()).map_err(|m| bad("lambda_memory_mb", m))?,
            (None, None) => config.lambda_memory_mb,
        };
        config.split = match (self.split, file.split.as_deref()) {
            (Some(policy), _) => policy,
            (None, None) | (None, Some("auto")) => SplitPolicy::Auto,
            (None, Some("always")) => SplitPolicy::Always,
            (None, Some(other)) => return Err(bad("split", format!("{other:?} is not auto or always"))),
        };
        config.inject_faults = self.inject_faults;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        engine: EngineArgs,
    }

    fn parse(args: &[&str]) -> Result<EngineArgs, String> {
        Cli::try_parse_from(std::iter::once("quack").chain(args.iter().copied()))
            .map(|cli| cli.engine)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn hostile_numbers_are_clear_errors() {
        for args in [
            &["--hedge-after", "inf"][..],
            &["--hedge-after", "NaN"],
            &["--hedge-after", "0.5"],
            &["-j", "18446744073709551615"],
            &["-j", "0"],
            &["--deadline", "1e30"],
            &["--deadline", "0"],
            &["--task-timeout", "0"],
            &["--max-attempts", "1000000"],
            &["--target-task-bytes", "0"],
            &["--file-open-bytes", "8MiB"],
            &["--file-open-bytes", "1099511627777"],
            &["--max-gather-bytes", "1125899906842625"],
            &["--max-gather-bytes", "lots"],
            &["--price-per-gb-second", "inf"],
            &["--lambda-memory-mb", "99999999"],
        ] {
            let error = parse(args).expect_err(&format!("{args:?} was accepted"));
            let flag = if args[0] == "-j" { "--concurrency" } else { args[0] };
            assert!(error.contains(flag), "{args:?}: {error}");
        }
        let ok = parse(&["-j", "64", "--deadline", "2.5", "--hedge-after", "0"]).unwrap();
        assert_eq!(ok.deadline, Some(Duration::from_millis(2500)));
        assert_eq!(parse(&["--file-open-bytes", "0"]).unwrap().file_open_bytes, Some(0));
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let environment = Environment::default();
        let file = FileConfig {
            backend: Some("lambda".into()),
            function: Some("from-file".into()),
            concurrency: Some(7),
            hedge_after: Some(5.0),
            spill_prefix: Some("s3://spill/p/".into()),
            ..FileConfig::default()
        };
        let config = EngineArgs::default().resolve_with(&file, &environment).unwrap();
        assert_eq!(config.backend, Backend::Lambda { function: "from-file".into() });
        assert_eq!((config.concurrency, config.hedge.as_ref().map(|h| h.factor)), (7, Some(5.0)));
        assert_eq!(config.spill_prefix.as_deref(), Some("s3://spill/p/"));
        let flags = EngineArgs { concurrency: Some(3), function: Some("flag".into()), ..EngineArgs::default() };
        let config = flags.resolve_with(&file, &environment).unwrap();
        assert_eq!(config.backend, Backend::Lambda { function: "flag".into() });
        assert_eq!(config.concurrency, 3);
        let defaults = EngineArgs::default().resolve_with(&FileConfig::default(), &environment).unwrap();
        assert_eq!((defaults.backend, defaults.hedge), (Backend::Local, None));
        assert_eq!(defaults.max_gather_bytes, Some(256 << 20));
        let unlimited = EngineArgs { max_gather_bytes: Some(0), ..EngineArgs::default() };
        assert_eq!(unlimited.resolve_with(&file, &environment).unwrap().max_gather_bytes, None);
        let from_file = FileConfig { max_gather_bytes: Some(1000), ..FileConfig::default() };
        assert_eq!(EngineArgs::default().resolve_with(&from_file, &environment).unwrap().max_gather_bytes, Some(1000));
    }

    #[test]
    fn hostile_file_values_are_clear_errors() {
        let environment = Environment::default();
        for file in [
            FileConfig { concurrency: Some(u64::MAX), ..FileConfig::default() },
            FileConfig { hedge_after: Some(f64::INFINITY), ..FileConfig::default() },
            FileConfig { deadline: Some(1e30), ..FileConfig::default() },
            FileConfig { task_timeout: Some(f64::NAN), ..FileConfig::default() },
            FileConfig { backend: Some("cloud".into()), ..FileConfig::default() },
            FileConfig { file_open_bytes: Some(u64::MAX), ..FileConfig::default() },
            FileConfig { max_gather_bytes: Some(u64::MAX), ..FileConfig::default() },
        ] {
            let error = EngineArgs::default().resolve_with(&file, &environment).unwrap_err();
            assert!(error.to_string().starts_with("configuration: config file:"), "{error}");
        }
    }
}
