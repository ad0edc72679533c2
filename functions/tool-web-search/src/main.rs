//! The `web_search` tool executor Lambda: reads its configuration and builds its clients once,
//! then serves tool requests.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::tool_contract::handle;
use tool_web_search::{SearchConfig, WebSearch};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();

    let config = SearchConfig::from_env()?;
    let tool = WebSearch::from_config(&config).await?;
    if config.secret_id.is_none() {
        tracing::warn!("SEARCH_API_KEY_SECRET is unset: searching keyless, results are not live");
    }
    let tool = &tool;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(handle(tool, event.payload).await)
    }))
    .await
}
