//! The `quack` command: parses arguments (each flag also reads a `QUACK_*` environment variable),
//! sets up logging, and hands over to the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use quack::aws::AwsSettings;
use quack::config::{Environment, FileConfig};
use quack::demo::{self, DemoSize};
use quack::invoke::{FaultRates, HedgePolicy, Progress};
use quack::{Backend, Config, Destination, Format, Quack, QueryReport};

#[derive(Parser)]
#[command(
    name = "quack",
    version,
    about = "Split one SQL query per partition, fan it out to DuckDB workers, reduce it exactly"
)]
struct Cli {
    /// Log more (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a query and print its answer.
    Query {
        /// The SQL query (`-` reads it from stdin).
        sql: String,
        /// Output format: table, csv, json or parquet.
        #[arg(long, short, default_value = "table", env = "QUACK_FORMAT")]
        format: Format,
        /// Write the answer to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Show how a query would run: partitions found and pruned, tasks, map SQL, reduce SQL.
    Explain {
        /// The SQL query (`-` reads it from stdin).
        sql: String,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Storage per common prefix from S3 Inventory reports (like ncdu; lakeview-compatible).
    Du {
        /// The inventory: `.../<source-bucket>/<config-id>/` (or its hive/ folder) in S3 or a local
        /// copy, or a plain hive directory (`dt=.../*.parquet`).
        #[arg(long, env = "QUACK_INVENTORY")]
        inventory: String,
        /// The report date (`2024-03-04-00-00`); default the newest.
        #[arg(long)]
        date: Option<String>,
        /// Compare with this report: size_left (--date), size_right (this), diff.
        #[arg(long)]
        compare: Option<String>,
        /// Only keys under this prefix (a literal, not a pattern).
        #[arg(long, default_value = "")]
        prefix: String,
        /// The delimiter common prefixes end at.
        #[arg(long, default_value = "/")]
        delimiter: String,
        /// Levels below the prefix to group at.
        #[arg(long, default_value_t = 1)]
        depth: usize,
        /// Break sizes down further: storage-class.
        #[arg(long, value_enum)]
        by: Option<DuBy>,
        /// List the report dates, newest first, and exit.
        #[arg(long)]
        dates: bool,
        /// Output format: table (sizes in KiB, MiB...), json (lakeview's /du shape) or csv.
        #[arg(long, short, default_value = "table", value_enum)]
        format: DuFormat,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Write a demo lake and run the headline queries on it.
    Demo {
        /// Where to write the lake.
        #[arg(long, default_value = "demo-lake")]
        dir: PathBuf,
        /// Trips to generate.
        #[arg(long, default_value_t = DemoSize::default().trips)]
        trips: u64,
        /// Objects in the first inventory report.
        #[arg(long, default_value_t = DemoSize::default().objects)]
        objects: u64,
        /// Only write the lake.
        #[arg(long)]
        no_queries: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

/// How queries run.
#[derive(Args, Clone)]
struct EngineArgs {
    /// Where tasks run: local (in-process DuckDB workers) or lambda.
    #[arg(long, env = "QUACK_BACKEND", value_enum)]
    backend: Option<BackendKind>,
    /// The worker's Lambda function (name, ARN or name:alias) for --backend lambda.
    #[arg(long, env = "QUACK_FUNCTION")]
    function: Option<String>,
    /// AWS region; default from the AWS configuration (AWS_REGION, profile).
    #[arg(long)]
    region: Option<String>,
    /// Endpoint for both S3 and Lambda (S3-compatible stores, emulators); default from
    /// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_LAMBDA or AWS_ENDPOINT_URL.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Config file (TOML: backend, function, region, endpoint_url, concurrency,
    /// httpfs_extension); default QUACK_CONFIG or ~/.config/quack/config.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Tasks in flight at once; default: the cores (local) or 100 (lambda).
    #[arg(long, short = 'j', env = "QUACK_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Input bytes per task; default: derived from the data size and the concurrency.
    #[arg(long, env = "QUACK_TARGET_TASK_BYTES")]
    target_task_bytes: Option<u64>,
    /// Per-task timeout in seconds.
    #[arg(long, env = "QUACK_TASK_TIMEOUT", default_value_t = 900)]
    task_timeout: u64,
    /// Deadline in seconds for all of a query's tasks.
    #[arg(long, env = "QUACK_DEADLINE")]
    deadline: Option<u64>,
    /// Attempts per task for retryable failures (throttling, timeouts, crashes).
    #[arg(long, env = "QUACK_MAX_ATTEMPTS", default_value_t = 4)]
    max_attempts: u32,
    /// Start a straggler again when it runs this many times longer than the median finished
    /// task (0: never); default 3 for lambda, 0 for local.
    #[arg(long, env = "QUACK_HEDGE_AFTER")]
    hedge_after: Option<f64>,
    /// DuckDB memory limit of the embedded database its workers share, e.g. 8GB.
    #[arg(long, env = "QUACK_MEMORY_LIMIT")]
    memory_limit: Option<String>,
    /// The httpfs extension file the coordinator loads for s3:// paths (scripts/fetch-httpfs.sh).
    #[arg(long, env = "QUACK_HTTPFS_EXTENSION")]
    httpfs_extension: Option<PathBuf>,
    /// Lambda price per GB-second (USD) for the cost estimate; default arm64 us-east-1.
    #[arg(long, env = "QUACK_PRICE_PER_GB_SECOND")]
    price_per_gb_second: Option<f64>,
    /// Lambda price per request (USD) for the cost estimate.
    #[arg(long, env = "QUACK_PRICE_PER_REQUEST")]
    price_per_request: Option<f64>,
    /// Function memory (MB) assumed when a worker does not report it.
    #[arg(long, env = "QUACK_LAMBDA_MEMORY_MB", default_value_t = 2048)]
    lambda_memory_mb: u64,
    /// Inject faults around the invoker, e.g. fail=0.2,delay=0.1 (testing).
    #[arg(long, env = "QUACK_INJECT_FAULTS", hide = true)]
    inject_faults: Option<FaultRates>,
    /// No progress bar and no summary line.
    #[arg(long, short = 'q', env = "QUACK_QUIET")]
    quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DuFormat {
    Table,
    Json,
    Csv,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DuBy {
    StorageClass,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendKind {
    Local,
    Lambda,
}

impl EngineArgs {
    /// Whether to print the summary line: always for Lambda (it carries the cost), else when
    /// a person watches stderr; never with --quiet.
    fn wants_summary(&self, quack: &Quack) -> bool {
        !self.quiet && (std::io::stderr().is_terminal() || matches!(quack.config().backend, Backend::Lambda { .. }))
    }

    /// The library config: flags and QUACK_* variables, then the config file, then defaults.
    fn config(&self) -> anyhow::Result<Config> {
        let environment = Environment::read();
        let file = match self.config.as_ref().or(environment.config_file.as_ref()) {
            Some(path) => FileConfig::load(path, self.config.is_some())?,
            None => FileConfig::default(),
        };
        let backend_kind = match (self.backend, file.backend.as_deref()) {
            (Some(kind), _) => kind,
            (None, Some("lambda")) => BackendKind::Lambda,
            (None, Some("local")) | (None, None) => BackendKind::Local,
            (None, Some(other)) => anyhow::bail!("config file: unknown backend {other:?} (local or lambda)"),
        };
        let lambda = backend_kind == BackendKind::Lambda;
        let concurrency = self.concurrency.or(file.concurrency);
        let mut config = match (concurrency, lambda) {
            (Some(n), _) => Config::with_concurrency(n),
            (None, true) => Config::with_concurrency(100),
            (None, false) => Config::embedded(),
        };
        if lambda {
            let function = self.function.clone().or(file.function.clone()).ok_or_else(|| {
                anyhow::anyhow!("--backend lambda needs a function: --function, QUACK_FUNCTION or the config file")
            })?;
            config.backend = Backend::Lambda { function };
        }
        config.aws = AwsSettings {
            region: self.region.clone().or(file.region.clone()),
            endpoint_url: self.endpoint_url.clone().or(file.endpoint_url.clone()),
            s3_endpoint_env: environment.s3_endpoint.clone(),
        };
        config.httpfs_extension = self.httpfs_extension.clone().or(file.httpfs_extension.clone());
        config.target_task_bytes = self.target_task_bytes;
        config.task_timeout = Duration::from_secs(self.task_timeout.max(1));
        config.deadline = self.deadline.map(|s| Duration::from_secs(s.max(1)));
        config.retry.max_attempts = self.max_attempts.max(1);
        let hedge_after = self.hedge_after.unwrap_or(if lambda { 3.0 } else { 0.0 });
        config.hedge = (hedge_after > 0.0).then(|| HedgePolicy { factor: hedge_after, ..HedgePolicy::default() });
        config.memory_limit = self.memory_limit.clone();
        if let Some(price) = self.price_per_gb_second {
            config.pricing.per_gb_second = price;
        }
        if let Some(price) = self.price_per_request {
            config.pricing.per_request = price;
        }
        config.lambda_memory_mb = self.lambda_memory_mb;
        config.inject_faults = self.inject_faults;
        Ok(config)
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_level.into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Query { sql, format, output, engine } => {
            let sql = read_sql(sql)?;
            let quack = Quack::new(engine.config()?)?;
            let destination = output.map(Destination::File).unwrap_or(Destination::Stdout);
            let interactive = std::io::stderr().is_terminal() && !engine.quiet;
            let bar = if interactive {
                let bar = ProgressBar::new(0);
                bar.set_style(
                    ProgressStyle::with_template("{spinner} tasks {pos}/{len} {wide_bar} {elapsed} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            } else {
                ProgressBar::hidden()
            };
            let retries = quack.retries();
            let on_progress = |progress: Progress| {
                bar.set_length(progress.total as u64);
                bar.set_position(progress.done as u64);
                bar.set_message(format!("retries {}", retries.load(std::sync::atomic::Ordering::Relaxed)));
            };
            let started = Instant::now();
            let result = quack.query_to_with_progress(&sql, format, &destination, &on_progress).await;
            bar.finish_and_clear();
            let report = result?;
            if engine.wants_summary(&quack) {
                eprintln!("{}", summary(&report, started.elapsed()));
            }
            tracing::info!(?report, "query done");
        }
        Command::Du { inventory, date, compare, prefix, delimiter, depth, by, dates, format, engine } => {
            let quack = Quack::new(engine.config()?)?;
            if dates {
                let mut text = String::new();
                for date in quack::du::dates(&quack, &inventory)? {
                    text.push_str(&date);
                    text.push('\n');
                }
                return write_stdout(&text);
            }
            let options = quack::du::DuOptions {
                inventory,
                date,
                compare,
                prefix,
                delimiter,
                depth,
                by_storage_class: by == Some(DuBy::StorageClass),
            };
            let started = Instant::now();
            let answer = quack::du::du(&quack, &options).await?;
            let text = match format {
                DuFormat::Table => answer.to_table(),
                DuFormat::Json => format!("{}\n", serde_json::to_string_pretty(&answer.to_json())?),
                DuFormat::Csv => answer.to_csv(),
            };
            write_stdout(&text)?;
            if engine.wants_summary(&quack) {
                eprintln!("{}", summary(&answer.report, started.elapsed()));
            }
        }
        Command::Explain { sql, engine } => {
            let sql = read_sql(sql)?;
            let quack = Quack::new(engine.config()?)?;
            print!("{}", quack.plan(&sql)?.explain());
        }
        Command::Demo { dir, trips, objects, no_queries, engine } => {
            let started = Instant::now();
            demo::generate(&dir, DemoSize { trips, objects })
                .with_context(|| format!("writing the demo lake to {}", dir.display()))?;
            println!("wrote the demo lake to {} in {:.1} s", dir.display(), started.elapsed().as_secs_f64());
            if no_queries {
                return Ok(());
            }
            let quack = Quack::embedded(engine.config()?)?;
            for (title, sql) in demo::headline_queries(&dir) {
                println!("\n== {title}\n{sql}");
                let started = Instant::now();
                let report = quack.query_to(&sql, Format::Table, &Destination::Stdout).await?;
                println!(
                    "{} rows in {} ms ({} tasks, {}; plan {} ms, map {} ms, reduce {} ms)",
                    report.rows,
                    started.elapsed().as_millis(),
                    report.tasks,
                    report.strategy.split(" (").next().unwrap_or(""),
                    report.plan_ms,
                    report.map_ms,
                    report.reduce_ms
                );
            }
        }
    }
    Ok(())
}

/// The line printed after each query: tasks, retries, cold starts, bytes scanned, billed GB-s
/// and the estimated cost.
fn summary(report: &QueryReport, elapsed: Duration) -> String {
    let mut line = format!(
        "quack: {} tasks, {} retries, {} hedged, {} cold starts, {} scanned",
        report.tasks,
        report.retries,
        report.hedges,
        report.cold_starts,
        quack::plan::human_bytes(report.bytes_read)
    );
    if let Some(cost) = report.cost_usd {
        line.push_str(&format!(", {} requests, {:.2} GB-s billed, ~${cost:.6}", report.requests, report.gb_seconds));
    }
    line.push_str(&format!(
        "; {:.2} s (plan {} ms, map {} ms, reduce {} ms)",
        elapsed.as_secs_f64(),
        report.plan_ms,
        report.map_ms,
        report.reduce_ms
    ));
    line
}

/// Writes `text` to stdout; a closed pipe (`quack du | head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

/// The SQL argument, or stdin when it is `-`.
fn read_sql(arg: String) -> anyhow::Result<String> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut sql = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut sql).context("reading the SQL from stdin")?;
    Ok(sql)
}
