//! The `run_javascript` tool: runs a JavaScript snippet in a QuickJS sandbox and returns what it
//! printed and the value of its last expression.
//!
//! Each call runs in a sandbox process of its own: the executor's binary started again with
//! [`child::CHILD_ARG`] ([`child`]), which runs the script in a fresh runtime and context
//! ([`sandbox`]) and exits, so nothing leaks between calls or users. The run is bounded by
//! [`Limits`]: heap, CPU time, stack and output, enforced by the engine with a readable error;
//! and since some native built-ins never give the engine a chance to stop, the executor also
//! kills the process by its pid once the time limit plus [`limits::KILL_GRACE`] has passed on
//! the wall clock, and the kernel kills it past its CPU-time limit ([`supervisor`]). No CPU is
//! spent on a call once it is answered. The sandbox has no file system, network, modules,
//! timers or environment variables.
//!
//! Response (MCP text content holding JSON), `isError` set when `error` is:
//!
//! ```text
//! {"output": "hi\n", "result": "2", "error": null}
//! {"output": "", "result": null, "error": "ReferenceError: x is not defined at line 3"}
//! ```

pub mod child;
pub mod limits;
mod os;
mod output;
mod render;
pub mod sandbox;
pub mod supervisor;

use std::path::{Path, PathBuf};

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

/// The program started for each call: this very executable, whatever its name or location
/// (Linux's link to the running binary, which stays valid even if the file is replaced).
const OWN_EXECUTABLE: &str = "/proc/self/exe";

/// The input of `run_javascript`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunJavascriptInput {
    /// JavaScript (ES2023) to run as a script. Print with console.log; the value of the last
    /// expression is returned as the result. Top-level `await` works; a final promise is
    /// awaited.
    pub code: String,
}

/// The `run_javascript` tool, holding the limits every call runs under and the program that
/// serves as its sandbox process.
#[derive(Clone, Debug)]
pub struct RunJavascript {
    limits: Limits,
    program: PathBuf,
}

impl Default for RunJavascript {
    /// The default limits, and this executable as the sandbox program.
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl RunJavascript {
    /// A tool whose calls run under `limits`, each in a sandbox process started from this
    /// executable (whose `main` must hand over to [`child::main`] when [`child::is_child`]).
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            program: PathBuf::from(OWN_EXECUTABLE),
        }
    }

    /// The same tool with `program` started as the sandbox process: the executor's binary,
    /// for callers (tests) that are not that binary themselves.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// The limits calls run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The program started as each call's sandbox process.
    pub fn program(&self) -> &Path {
        &self.program
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
        let execution = supervisor::run(&self.program, &input.code, &self.limits).await;
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
        usage: Default::default(),
    }
}
