//! `bedrock-standin [--listen 127.0.0.1:0]`: runs the Bedrock Runtime stand-in
//! on a loopback address.
//!
//! After binding it prints exactly one line to stdout,
//! `bedrock-standin listening on http://127.0.0.1:<port>`, flushes it, then
//! serves until SIGTERM or SIGINT (exit 0). Bad arguments, a non-loopback
//! address, a bad `STANDIN_*` variable (`STANDIN_LATENCY_MS`, `STANDIN_CONTEXT_TOKENS`,
//! `STANDIN_CACHE_MIN_TOKENS`, `STANDIN_CACHE_TTL_SECS`), or a bind failure exit 2 with a
//! message on stderr.

use std::process::ExitCode;

use bedrock_standin::{serve_with, server::run_binary, Options};

const USAGE: &str = "usage: bedrock-standin [--listen 127.0.0.1:0]";

#[tokio::main]
async fn main() -> ExitCode {
    run_binary("bedrock-standin", USAGE, Options::from_env, serve_with).await
}
