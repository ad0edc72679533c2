//! The `run_javascript` tool executor Lambda: reads its limits once, then serves tool requests.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::tool_contract::handle;
use tool_code_interpreter::{Limits, RunJavascript};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();

    let tool = RunJavascript::new(Limits::from_env()?);
    let tool = &tool;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(handle(tool, event.payload).await)
    }))
    .await
}
