//! The `quack` command: parses arguments (each flag also reads a `QUACK_*` environment variable),
//! sets up logging, and hands over to the library.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use quack::demo::{self, DemoSize};
use quack::{Config, Destination, Format, Quack};

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
    /// Tasks in flight at once (in-process workers); default: the number of cores.
    #[arg(long, short = 'j', env = "QUACK_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Input bytes per task; default: derived from the data size and the concurrency.
    #[arg(long, env = "QUACK_TARGET_TASK_BYTES")]
    target_task_bytes: Option<u64>,
    /// Per-task timeout in seconds.
    #[arg(long, env = "QUACK_TASK_TIMEOUT", default_value_t = 900)]
    task_timeout: u64,
    /// Attempts per task for retryable failures (throttling, timeouts, crashes).
    #[arg(long, env = "QUACK_MAX_ATTEMPTS", default_value_t = 4)]
    max_attempts: u32,
    /// DuckDB memory limit of the embedded database its workers share, e.g. 8GB.
    #[arg(long, env = "QUACK_MEMORY_LIMIT")]
    memory_limit: Option<String>,
}

impl EngineArgs {
    fn config(&self) -> Config {
        let mut config = match self.concurrency {
            Some(n) => Config::with_concurrency(n),
            None => Config::embedded(),
        };
        config.target_task_bytes = self.target_task_bytes;
        config.task_timeout = Duration::from_secs(self.task_timeout.max(1));
        config.retry.max_attempts = self.max_attempts.max(1);
        config.memory_limit = self.memory_limit.clone();
        config
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
            let quack = Quack::embedded(engine.config())?;
            let destination = output.map(Destination::File).unwrap_or(Destination::Stdout);
            let report = quack.query_to(&sql, format, &destination).await?;
            tracing::info!(?report, "query done");
        }
        Command::Explain { sql, engine } => {
            let sql = read_sql(sql)?;
            let quack = Quack::embedded(engine.config())?;
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
            let quack = Quack::embedded(engine.config())?;
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

/// The SQL argument, or stdin when it is `-`.
fn read_sql(arg: String) -> anyhow::Result<String> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut sql = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut sql).context("reading the SQL from stdin")?;
    Ok(sql)
}
