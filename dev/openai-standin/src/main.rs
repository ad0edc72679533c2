//! `openai-standin [--listen 127.0.0.1:0]`: runs the OpenAI Chat Completions stand-in on a
//! loopback address.
//!
//! After binding it prints exactly one line to stdout,
//! `openai-standin listening on http://127.0.0.1:<port>` (the API base URL is that plus
//! `/v1`), flushes it, then serves until SIGTERM or SIGINT (exit 0). Bad arguments, a
//! non-loopback address, a bad `OPENAI_STANDIN_*` variable or a bind failure exit 2 with a
//! message on stderr. The key (`OPENAI_STANDIN_API_KEY`) is read from the environment, never
//! from the command line, and never printed.

use std::process::ExitCode;

use bedrock_standin::server::run_binary;
use openai_standin::{serve_with, Options};

const USAGE: &str = "usage: openai-standin [--listen 127.0.0.1:0]";

#[tokio::main]
async fn main() -> ExitCode {
    run_binary("openai-standin", USAGE, Options::from_env, serve_with).await
}
