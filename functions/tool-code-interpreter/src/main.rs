//! The `run_javascript` tool executor Lambda: reads its limits once, then serves tool requests.
//! Started with [`tool_code_interpreter::child::CHILD_ARG`], the same binary is instead the
//! sandbox process of one call: it runs that call's script and exits.

use std::process::ExitCode;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::tool_contract::handle;
use tool_code_interpreter::{child, Limits, RunJavascript};

fn main() -> ExitCode {
    if child::is_child() {
        return child::main();
    }
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tool-code-interpreter: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The executor: a Tokio runtime serving the Lambda Runtime API.
fn serve() -> Result<(), Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            shared::telemetry::init_logging();
            let tool = RunJavascript::new(Limits::from_env()?);
            let tool = &tool;
            lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                Ok::<_, Error>(handle(tool, event.payload).await)
            }))
            .await
        })
}
