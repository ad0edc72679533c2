//! The `web_search` tool executor Lambda: reads its configuration and builds its clients once,
//! then serves tool requests.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::tool_contract::handle;
use tool_web_search::{SearchConfig, WebSearch};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();

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
