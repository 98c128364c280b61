//! The Lambda `bootstrap` of quack's worker: reads its settings, builds the DuckDB instance once
//! per container, and serves task events until the container is frozen or retired.

use std::sync::Arc;
use std::time::Instant;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use quack_lambda::handler::{LambdaEnv, WorkerState};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    lambda_runtime::tracing::init_default_subscriber();
    let env = LambdaEnv::from_env()?;
    let s3 = match env.spill_prefix.as_ref().or(env.exchange_prefix.as_ref()) {
        Some(_) => Some(aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
                .force_path_style(env.s3_endpoint_override)
                .build(),
        )),
        None => None,
    };
    let state = Arc::new(WorkerState::build(&env, started, s3)?);
    state.ready();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let state = state.clone();
        let deadline = event.context.deadline();
        async move { Ok::<_, Error>(state.handle(event.payload, Some(deadline)).await) }
    }))
    .await
}
