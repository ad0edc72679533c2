//! The `http_fetch` tool executor Lambda: serves [`HttpFetch`] through the MCP-shaped tool
//! contract.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::tool_contract::handle;
use tool_http_fetch::HttpFetch;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();

    let tool = HttpFetch::from_env()?;
    let tool = &tool;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(handle(tool, event.payload).await)
    }))
    .await
}
