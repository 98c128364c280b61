//! `quack-dashboard`: serves the dashboard page and its JSON API over a lake, with quack's
//! coordinator as the backend (in-process workers by default).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use quack::{Backend, Config, Quack};
use quack_dashboard::{router, AppState};

#[derive(Parser)]
#[command(name = "quack-dashboard", version, about = "quack's web dashboard: storage (du), trips, query console")]
struct Cli {
    /// The lake: a directory or s3:// URL with trips/ (and dashboard/ from dbt/run.sh).
    #[arg(long, env = "QUACK_LAKE", default_value = "demo-lake")]
    lake: String,
    /// The S3 Inventory for the Storage page; default <lake>/inventory.
    #[arg(long, env = "QUACK_INVENTORY")]
    inventory: Option<String>,
    /// Where tasks run: local or lambda.
    #[arg(long, env = "QUACK_BACKEND", default_value = "local")]
    backend: String,
    /// The worker function for --backend lambda.
    #[arg(long, env = "QUACK_FUNCTION")]
    function: Option<String>,
    /// The httpfs extension file for s3:// lakes.
    #[arg(long, env = "QUACK_HTTPFS_EXTENSION")]
    httpfs_extension: Option<std::path::PathBuf>,
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    #[arg(long, env = "QUACK_DASHBOARD_PORT", default_value_t = 8080)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut config = Config::embedded();
    config.backend = match cli.backend.as_str() {
        "local" => Backend::Local,
        "lambda" => Backend::Lambda {
            function: cli.function.clone().context("--backend lambda needs --function or QUACK_FUNCTION")?,
        },
        other => anyhow::bail!("unknown backend {other:?} (local or lambda)"),
    };
    config.aws.s3_endpoint_env = quack::config::Environment::read().s3_endpoint;
    config.httpfs_extension = cli.httpfs_extension.clone();
    let quack = Quack::new(config)?;
    let state = Arc::new(AppState::new(quack, &cli.lake, cli.inventory.as_deref()));
    let address = SocketAddr::new(cli.bind, cli.port);
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("listening on {address}"))?;
    tracing::info!(url = %format!("http://{}", listener.local_addr()?), lake = %state.lake, "dashboard ready");
    axum::serve(listener, router(state)).await.context("serving")
}
