//! The `quack` command: parses arguments (each flag also reads a `QUACK_*` environment variable),
//! sets up logging, and hands over to the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use quack::config::Environment;
use quack::demo::{self, DemoSize};
use quack::invoke::Progress;
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
        /// Plan the query and print its tasks, bytes and estimated cost; invoke nothing.
        #[arg(long)]
        dry_run: bool,
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
        /// Break sizes down further, with each group's share of the total: storage-class,
        /// suffix, age, size, version, or an inventory field (is-multipart-uploaded,
        /// encryption-status, intelligent-tiering-access-tier, replication-status,
        /// object-lock-mode, ...).
        #[arg(long)]
        by: Option<String>,
        /// An ad-hoc group, as Storage Lens groups (repeatable): NAME=FILTER, the filter being
        /// &-separated prefix=, suffix= (repeated: any of them), min-age=, max-age= (days, or
        /// 90d, 2w, 1y), min-size=, max-size= (bytes, or 1MiB, 1.5GB); values percent-decoded.
        /// One row per prefix and group, with its share of all objects under the prefix.
        #[arg(long = "group", value_name = "NAME=FILTER")]
        groups: Vec<String>,
        /// The N largest objects under the prefix (with --duplicates: the N groups saving most).
        #[arg(long, value_name = "N")]
        top: Option<usize>,
        /// Groups of objects with the same ETag and size, by the bytes a cleanup would save.
        #[arg(long)]
        duplicates: bool,
        /// Size and objects per report date, in total and per child prefix, with the fastest
        /// growing prefixes between the first and last reports.
        #[arg(long)]
        history: bool,
        /// With --history: the first report date to include (2024-03-02 or 2024-03-02-00-00).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
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

/// How queries run: the engine flags every front end shares, and this CLI's output flags.
#[derive(Args, Clone)]
struct EngineArgs {
    #[command(flatten)]
    settings: quack::settings::EngineArgs,
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

impl EngineArgs {
    /// Whether to print the summary line: always for Lambda (it carries the cost), else when
    /// a person watches stderr; never with --quiet.
    fn wants_summary(&self, quack: &Quack) -> bool {
        !self.quiet && (std::io::stderr().is_terminal() || matches!(quack.config().backend, Backend::Lambda { .. }))
    }

    /// The library config, merged by the library (flags, QUACK_* variables, config file, defaults).
    fn config(&self) -> anyhow::Result<Config> {
        Ok(self.settings.resolve(&Environment::read())?)
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
    tracing::debug!("arguments read");
    // One thread: the coordinator's own work is waiting on invocations and listings; DuckDB runs
    // on blocking threads (in-process tasks) or between the waits (planning, the reduce). A
    // multi-threaded runtime would hand every answer from the thread that read it to the one
    // awaiting it, a wake-up and a context switch per task of a fan-out of thousands.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        // Everything is written and flushed; the runtime and its idle threads need no teardown.
        Ok(()) => std::process::exit(0),
        Err(e) => {
            // The cause chain, each cause once: a library error's message often quotes its source.
            let mut message = e.to_string();
            for cause in e.chain().skip(1).map(ToString::to_string) {
                if !message.contains(&cause) {
                    message = format!("{message}: {cause}");
                }
            }
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Query { sql, format, output, dry_run, engine } => {
            let sql = read_sql(sql)?;
            let quack = Quack::new(engine.config()?)?;
            if dry_run {
                let plan = quack.plan(&sql).await?;
                let estimate = quack.estimate(&plan);
                let mut text = plan.explain();
                text.push_str(&format!("\nestimate: {estimate}\n"));
                return write_stdout(&text);
            }
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
            let on_progress = |progress: Progress| {
                // A hidden bar still keeps its estimate: skip it, as this runs once per task.
                if !interactive {
                    return;
                }
                bar.set_length(progress.total as u64);
                bar.set_position(progress.done as u64);
                bar.set_message(format!("retries {}", progress.retries));
            };
            let started = Instant::now();
            let result = quack.query_to_with_progress(&sql, format, &destination, &on_progress).await;
            bar.finish_and_clear();
            let report = result?;
            if engine.wants_summary(&quack) {
                eprintln!("{}", summary(&report, started.elapsed()));
            }
            tracing::info!(?report, "query done");
            end(quack);
        }
        Command::Du {
            inventory,
            date,
            compare,
            prefix,
            delimiter,
            depth,
            by,
            groups,
            top,
            duplicates,
            history,
            since,
            dates,
            format,
            engine,
        } => {
            let quack = Quack::new(engine.config()?)?;
            if dates {
                let mut text = String::new();
                for date in quack::du::dates(&quack, &inventory).await? {
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
                by: by.as_deref().map(str::parse).transpose()?,
                groups: quack::du::parse_groups(&groups)?,
                top,
                duplicates,
                history,
                since,
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
            end(quack);
        }
        Command::Explain { sql, engine } => {
            let sql = read_sql(sql)?;
            let quack = Quack::new(engine.config()?)?;
            print!("{}", quack.plan(&sql).await?.explain());
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

/// Ends the process's use of `quack` after its last query: when dropping it would leave
/// nothing to clean up on disk ([`Quack::leaves_nothing_on_disk`]), its teardown (DuckDB's
/// catalog, buffers and threads, some 5 ms of a short query) is left to the process's exit.
fn end(quack: Quack) {
    if quack.leaves_nothing_on_disk() {
        std::mem::forget(quack);
    }
}

/// The line printed after each query: tasks, retries, cold starts, bytes scanned, billed GB-s
/// and the estimated cost.
fn summary(report: &QueryReport, elapsed: Duration) -> String {
    let mut line = format!(
        "quack: {} tasks, {} retries ({} throttled), {} hedged, {} cold starts, {} scanned",
        report.tasks,
        report.retries,
        report.throttles,
        report.hedges,
        report.cold_starts,
        quack::plan::human_bytes(report.bytes_read)
    );
    if let Some(cost) = report.cost_usd {
        line.push_str(&format!(
            ", {} requests, {:.2} GB-s billed ({:.2} on failed or abandoned attempts), ~{} S3 requests, ~${cost:.6}",
            report.requests, report.gb_seconds, report.wasted_gb_seconds, report.s3_requests
        ));
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
