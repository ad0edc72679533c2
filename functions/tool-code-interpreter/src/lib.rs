//! The `run_javascript` tool: runs a JavaScript snippet in a QuickJS sandbox and returns what it
//! printed and the value of its last expression.
//!
//! Each call gets a fresh runtime and context (nothing leaks between calls or users), runs on
//! Tokio's blocking pool (QuickJS is synchronous), and is bounded by [`Limits`]: heap, CPU time
//! (an interrupt handler), stack and output. The sandbox has no file system, network, modules
//! or timers; see [`sandbox`].
//!
//! Response (MCP text content holding JSON), `isError` set when `error` is:
//!
//! ```text
//! {"output": "hi\n", "result": "2", "error": null}
//! {"output": "", "result": null, "error": "ReferenceError: x is not defined at line 3"}
//! ```

pub mod limits;
mod output;
mod render;
pub mod sandbox;

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use shared::{
    domain::message::{ToolOutput, ToolResultContent, ToolStatus},
    ports::CallContext,
    tool_contract::Tool,
};

pub use limits::Limits;
pub use output::TRUNCATION_MARKER;
pub use sandbox::{execute, Execution, Failure};

/// How long past its time limit a run may take before the caller stops waiting for it.
/// The interrupt handler stops scripts at the limit; this only guards against the engine
/// spending that long inside one native call.
const WAIT_GRACE: Duration = Duration::from_secs(2);

/// The input of `run_javascript`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunJavascriptInput {
    /// JavaScript (ES2023) to run as a script. Print with console.log; the value of the last
    /// expression is returned as the result. Top-level `await` works; a final promise is
    /// awaited.
    pub code: String,
}

/// The `run_javascript` tool, holding the limits every call runs under.
#[derive(Clone, Debug, Default)]
pub struct RunJavascript {
    limits: Limits,
}

impl RunJavascript {
    /// A tool whose calls run under `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// The limits calls run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Tool for RunJavascript {
    type Input = RunJavascriptInput;

    const NAME: &'static str = "run_javascript";

    const DESCRIPTION: &'static str = "Runs a JavaScript snippet in a sandbox (QuickJS, ES2023) \
        and returns JSON {output, result, error}: what console.log printed, the value of the \
        last expression (as JSON when possible), and the error with its line if it failed. Use \
        it for arithmetic, data processing and checking logic. There is no file system, network, \
        modules, require, import or fetch; CPU time, memory and output are limited, and nothing \
        persists between calls.";

    async fn run(
        &self,
        input: RunJavascriptInput,
        _context: Option<&CallContext>,
    ) -> Result<ToolOutput, String> {
        let limits = self.limits.clone();
        let time_limit = limits.time;
        let task = tokio::task::spawn_blocking(move || execute(&input.code, &limits));
        let execution = match tokio::time::timeout(time_limit + WAIT_GRACE, task).await {
            Ok(Ok(execution)) => execution,
            Ok(Err(error)) => return Err(format!("the JavaScript engine failed: {error}")),
            Err(_) => {
                tracing::error!("a script did not stop at its time limit");
                return Err(Failure::TimeLimit(time_limit).to_string());
            }
        };
        if let Err(failure) = &execution.outcome {
            tracing::info!(failure = ?failure, "script failed");
        }
        Ok(tool_output(execution))
    }
}

/// The tool output of a run: JSON `{output, result, error}`, an error output when `error` is set.
pub fn tool_output(execution: Execution) -> ToolOutput {
    let (result, error) = match execution.outcome {
        Ok(result) => (result, None),
        Err(failure) => (None, Some(failure.to_string())),
    };
    let status = if error.is_some() {
        ToolStatus::Error
    } else {
        ToolStatus::Success
    };
    ToolOutput {
        status,
        content: vec![ToolResultContent::Json {
            json: json!({ "output": execution.output, "result": result, "error": error }),
        }],
    }
}
