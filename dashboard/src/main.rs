//! `quack-dashboard`: serves the dashboard page and its JSON API over a lake, with quack's
//! coordinator as the backend (in-process workers by default). Parses flags, sets up logging,
//! and hands over to the library.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use quack_dashboard::{router, AppState, ServerOptions};

#[derive(Parser)]
#[command(name = "quack-dashboard", version, about = "quack's web dashboard: storage (du), trips, query console")]
struct Cli {
    /// The lake: a directory or s3:// URL with trips/ (and dashboard/ from dbt/run.sh).
    #[arg(long, env = "QUACK_LAKE", default_value = "demo-lake")]
    lake: String,
    /// The S3 Inventory for the Storage page; default <lake>/inventory.
    #[arg(long, env = "QUACK_INVENTORY")]
    inventory: Option<String>,
    /// Address to listen on (loopback by default; any other needs --token).
    #[arg(long, env = "QUACK_DASHBOARD_BIND", default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    #[arg(long, env = "QUACK_DASHBOARD_PORT", default_value_t = 8080)]
    port: u16,
    /// Bearer token every API request must carry (`Authorization: Bearer <token>`); required
    /// when --bind is not a loopback address. At least 16 characters.
    #[arg(long, env = "QUACK_DASHBOARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// API queries running at once at most; more are answered 429.
    #[arg(long, env = "QUACK_DASHBOARD_MAX_QUERIES", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    max_queries: u32,
    #[command(flatten)]
    engine: quack::settings::EngineArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let options = ServerOptions { bind: cli.bind, token: cli.token.clone(), max_queries: cli.max_queries as usize };
    options.check()?;
    let config = cli.engine.resolve(&quack::config::Environment::read())?;
    let state = Arc::new(AppState::open(config, &cli.lake, cli.inventory.as_deref(), &options)?);
    let address = SocketAddr::new(cli.bind, cli.port);
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("listening on {address}"))?;
    tracing::info!(
        url = %format!("http://{}", listener.local_addr()?),
        lake = %state.lake,
        token = options.token.is_some(),
        "dashboard ready"
    );
    axum::serve(listener, router(state)).await.context("serving")
}
