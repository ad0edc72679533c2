//! A local stand-in for an OpenAI-compatible Chat Completions API, for `shared`'s
//! `OpenAiModel` tests and local runs. Development and test tool only; never deployed; binds
//! loopback addresses only.
//!
//! # Routes
//!
//! Every API route answers under `/v1`, and also without the prefix: a client calls
//! `{base_url}/chat/completions`, which is `POST /v1/chat/completions` with the base URL
//! [`Standin::base_url`] (`http://127.0.0.1:PORT/v1`) and `POST /chat/completions` with a
//! base URL of just `http://127.0.0.1:PORT`.
//!
//! - `POST /v1/chat/completions` → a `chat.completion` object: `choices[0].message` (`role:
//!   assistant`, `content`, `tool_calls: [{id, type: function, function: {name, arguments}}]`
//!   with `arguments` a JSON string), `finish_reason` (`stop`, `tool_calls`, `length`),
//!   `usage` (`prompt_tokens`, `completion_tokens`, `total_tokens`,
//!   `prompt_tokens_details.cached_tokens`).
//! - The same with `"stream": true` → `text/event-stream` of `data: {chat.completion.chunk}`
//!   events: a delta with the role, the text over several `content` deltas, each tool call
//!   as `delta.tool_calls[{index, id, type, function: {name, arguments: ""}}]` followed by
//!   its `arguments` over several fragments of the same `index`, a chunk with an empty delta
//!   and the `finish_reason`; with `stream_options.include_usage` every chunk carries
//!   `"usage": null` and a last chunk has `"choices": []` and the `usage`; then
//!   `data: [DONE]`.
//! - `GET /v1/models` → `{"object": "list", "data": [{"id", "object": "model", ..}]}`, the
//!   served models; `GET /v1/models/{id}` → one, or 404 `model_not_found`.
//! - `GET /__stats` → `{"chat_completions": n, "chat_completions_stream": n, "models": n,
//!   "unauthorized": n}`: requests received on the chat route (every one, rejected and
//!   failed ones included), of which parsed as streaming, on the model routes, and refused
//!   for their key. No key needed.
//! - `GET /__health` → `{"status": "ok"}`. No key needed.
//! - Anything else → 404 `Invalid URL (<METHOD> <path>)`.
//!
//! Errors have OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with
//! OpenAI's status and, where the stand-in knows it, OpenAI's wording ([`error`]).
//!
//! # Checks, in order
//!
//! 1. The key ([`Options::api_key`], env `OPENAI_STANDIN_API_KEY`): when set, a request
//!    without `Authorization: Bearer <key>` gets 401 (`You didn't provide an API key...`), one
//!    with another key 401 `invalid_api_key` (`Incorrect API key provided: sk-***...abcd`,
//!    masked as OpenAI masks it). Unset: no key is needed.
//! 2. The request, as OpenAI validates it ([`request`]): 400 `invalid_request_error` with the
//!    `param` at fault. Unknown top-level parameters are refused
//!    (`Unrecognized request argument supplied: <name>`).
//! 3. The model ([`Options::models`], env `OPENAI_STANDIN_MODELS`): one not served is 404
//!    `model_not_found`.
//! 4. The context window ([`Options::context_tokens`], env `OPENAI_STANDIN_CONTEXT_TOKENS`,
//!    default 128 000): a request of more tokens (request body bytes / 4) is 400
//!    `context_length_exceeded`, `This model's maximum context length is N tokens. However,
//!    your messages resulted in M tokens. Please reduce the length of the messages.`
//!
//! # The script (what the fake model answers)
//!
//! The Bedrock stand-in's ([`bedrock_standin::script`], documented in that crate), on the
//! conversation converted to the Converse shape ([`script::to_converse`]): system messages
//! left out, each run of `tool` messages one user message of tool results. So a request
//! offering `calculator` and asking `What is 6*7?` gets `Let me calculate that.` and a
//! `calculator` call with `{"expression":"6*7"}` (`finish_reason: tool_calls`); sending the
//! result back gets `The calculator tool says: 42` (`stop`); without tools, `You said:
//! <text>`. Tool-call ids are the script's, `call_` + 16 hex digits. Usage: prompt tokens =
//! request body bytes / 4, completion tokens = answer characters / 4 (each at least 1),
//! cached tokens 0.
//!
//! The tool choice and stop sequences go to the script as Converse's `toolChoice` and
//! `stopSequences`, so they work as there: `required` (`any`) and a named function
//! (`tool`) force tool calls with no text before them (the calls planned from the text,
//! else one call of the first offered, or the named, tool); `none` offers the script no
//! tools; a stop sequence found in the answer's text cuts it there and drops the calls
//! after it. A named function answers `finish_reason: stop`, as OpenAI does for a forced
//! function; a stop sequence answers `stop` too (OpenAI does not tell them apart).
//!
//! # Test triggers
//!
//! Markers in the latest user text, removed before the script reads it, in force while the
//! client loops on tool results:
//!
//! - `[[standin:fail-throttle]]` → 429 `rate_limit_exceeded` (type `requests`) with
//!   `retry-after: 1`.
//! - `[[standin:fail=<status>]]` (400 to 599) → that status with an OpenAI error body (500
//!   `The server had an error while processing your request...`, 503 `The engine is
//!   currently overloaded...`, 429 as above, ...: [`error::ApiError::for_status`]).
//! - `[[standin:fail-after-tools=<status>]]` → answers normally until the conversation ends
//!   with tool results, then fails with that status.
//! - A `fail=` / `fail-after-tools=` marker whose value is not a status 400-599 → 400
//!   `Unknown stand-in trigger ...`, so a typo does not pass as a success.
//! - `[[standin:sleep-ms=N]]` → sleep N ms before answering.
//! - `[[standin:cached-tokens=N]]` → report N (at most the prompt tokens) as
//!   `prompt_tokens_details.cached_tokens`.
//! - `[[standin:always-tool]]`, `[[standin:max-tokens]]` → as in the Bedrock stand-in (call
//!   the first offered tool; half the echo with `finish_reason: length`).
//! - The Bedrock stand-in's triggers named by Bedrock error (`fail@<model>=`, `fail-first=`,
//!   `fail-in-stream=`) → 400 `Unknown stand-in trigger ...` here, rather than ignored.
//!
//! Failures answer after the `sleep-ms` and latency delays.
//!
//! # Environment
//!
//! Read by [`Options::from_env`]; a bad value is an error naming the variable:
//!
//! - `OPENAI_STANDIN_API_KEY`: the one key accepted (unset or empty: none needed). Read from
//!   the environment so it is not on a command line; never logged or served.
//! - `OPENAI_STANDIN_CONTEXT_TOKENS`: the context window (default 128000; `off` for none).
//! - `OPENAI_STANDIN_MODELS`: comma-separated model ids served, `*` for any (default
//!   [`DEFAULT_MODELS`]).
//! - `OPENAI_STANDIN_LATENCY_MS`: a fixed delay before every answer (default 0).

pub mod error;
mod http;
pub mod request;
pub mod script;
pub mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The default context window, in the stand-in's tokens (GPT-4o's 128 000).
pub const DEFAULT_CONTEXT_TOKENS: u64 = 128_000;

/// The models served when `OPENAI_STANDIN_MODELS` does not say.
pub const DEFAULT_MODELS: &[&str] = &[
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "o4-mini",
    "standin-chat",
];

/// Request counters, shared with the server (also served at `GET /__stats`).
#[derive(Debug, Default)]
pub struct Stats {
    chat_completions: AtomicU64,
    chat_completions_stream: AtomicU64,
    models: AtomicU64,
    unauthorized: AtomicU64,
}

impl Stats {
    /// Requests on the chat route, every one.
    pub fn chat_completions(&self) -> u64 {
        self.chat_completions.load(Ordering::SeqCst)
    }

    /// Chat requests that asked to stream.
    pub fn chat_completions_stream(&self) -> u64 {
        self.chat_completions_stream.load(Ordering::SeqCst)
    }

    /// Requests on the model routes.
    pub fn models(&self) -> u64 {
        self.models.load(Ordering::SeqCst)
    }

    /// Requests refused for their key.
    pub fn unauthorized(&self) -> u64 {
        self.unauthorized.load(Ordering::SeqCst)
    }

    /// The counters as served at `GET /__stats`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "chat_completions": self.chat_completions(),
            "chat_completions_stream": self.chat_completions_stream(),
            "models": self.models(),
            "unauthorized": self.unauthorized(),
        })
    }
}

/// Server settings.
#[derive(Clone)]
pub struct Options {
    /// The one key accepted as `Authorization: Bearer <key>`; `None`: no key needed.
    pub api_key: Option<String>,
    /// The context window in tokens (request body bytes / 4); `None`: no limit.
    pub context_tokens: Option<u64>,
    /// The models served; `None`: any.
    pub models: Option<Vec<String>>,
    /// Delay before every answer.
    pub latency: Duration,
    /// Request counters (keep a clone of the `Arc` to read them).
    pub stats: Arc<Stats>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("context_tokens", &self.context_tokens)
            .field("models", &self.models)
            .field("latency", &self.latency)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            api_key: None,
            context_tokens: Some(DEFAULT_CONTEXT_TOKENS),
            models: Some(DEFAULT_MODELS.iter().map(|m| (*m).to_owned()).collect()),
            latency: Duration::ZERO,
            stats: Arc::default(),
        }
    }
}

impl Options {
    /// Reads the `OPENAI_STANDIN_*` variables (see the crate docs).
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let latency = match var("OPENAI_STANDIN_LATENCY_MS") {
            Some(raw) => raw.trim().parse::<u64>().map_err(|e| {
                format!("OPENAI_STANDIN_LATENCY_MS={raw:?} is not a number of ms: {e}")
            })?,
            None => 0,
        };
        Ok(Self {
            api_key: var("OPENAI_STANDIN_API_KEY"),
            context_tokens: parse_context_tokens(var("OPENAI_STANDIN_CONTEXT_TOKENS").as_deref())?,
            models: parse_models(var("OPENAI_STANDIN_MODELS").as_deref()),
            latency: Duration::from_millis(latency),
            stats: Arc::default(),
        })
    }
}

/// The context window from an `OPENAI_STANDIN_CONTEXT_TOKENS` value: unset or blank →
/// [`DEFAULT_CONTEXT_TOKENS`]; `off` → no limit; otherwise a whole number, at least 1.
pub fn parse_context_tokens(raw: Option<&str>) -> Result<Option<u64>, String> {
    let Some(value) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Some(DEFAULT_CONTEXT_TOKENS));
    };
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match value.parse::<u64>() {
        Ok(tokens) if tokens >= 1 => Ok(Some(tokens)),
        _ => Err(format!(
            "OPENAI_STANDIN_CONTEXT_TOKENS={value:?} is not a number of tokens of at least 1 \
             (or `off`)"
        )),
    }
}

/// The models from an `OPENAI_STANDIN_MODELS` value: unset → [`DEFAULT_MODELS`]; `*` → any;
/// otherwise the comma-separated ids.
pub fn parse_models(raw: Option<&str>) -> Option<Vec<String>> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        None => Options::default().models,
        Some("*") => None,
        Some(list) => Some(
            list.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
    }
}

/// Per-server state shared by all connections.
pub(crate) struct State {
    options: Options,
    api_key: Mutex<Option<String>>,
    last_request: Mutex<Option<Value>>,
    stats: Arc<Stats>,
    request_seq: AtomicU64,
}

impl State {
    fn new(options: Options) -> Self {
        Self {
            api_key: Mutex::new(options.api_key.clone()),
            stats: Arc::clone(&options.stats),
            options,
            last_request: Mutex::new(None),
            request_seq: AtomicU64::new(0),
        }
    }

    fn serves(&self, model: &str) -> bool {
        self.options
            .models
            .as_ref()
            .is_none_or(|models| models.iter().any(|m| m == model))
    }

    fn models(&self) -> Vec<String> {
        self.options
            .models
            .clone()
            .unwrap_or_else(|| vec!["standin-chat".to_owned()])
    }
}

/// Serves on `listener` forever with [`Options::from_env`].
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let options = Options::from_env()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    serve_with(listener, options).await
}

/// Serves on `listener` forever with `options`; dropping the future stops the server.
pub async fn serve_with(listener: TcpListener, options: Options) -> std::io::Result<()> {
    serve_state(listener, Arc::new(State::new(options))).await
}

async fn serve_state(listener: TcpListener, state: Arc<State>) -> std::io::Result<()> {
    bedrock_standin::server::accept_loop(listener, move |req| http::handle(Arc::clone(&state), req))
        .await
}

/// A stand-in on a background task, for tests: bound to `127.0.0.1:0`, stopped on drop.
pub struct Standin {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<std::io::Result<()>>,
}

impl fmt::Debug for Standin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Standin")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Standin {
    /// Binds `127.0.0.1:0` and serves with `options` on a new task.
    pub async fn start(options: Options) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new(options));
        let task = tokio::spawn(serve_state(listener, Arc::clone(&state)));
        Ok(Self { addr, state, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/v1`, the base URL a client appends `/chat/completions` to.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The request counters.
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// Accepts only `key` from now on (`None`: no key needed), as after a rotation.
    pub fn set_api_key(&self, key: Option<&str>) {
        if let Ok(mut accepted) = self.state.api_key.lock() {
            *accepted = key.map(str::to_owned);
        }
    }

    /// The JSON body of the last chat request received (valid or not, if it was JSON), for
    /// in-process tests of what a client sends. Never served over HTTP; headers (the key)
    /// are not kept.
    pub fn last_request(&self) -> Option<Value> {
        self.state
            .last_request
            .lock()
            .ok()
            .and_then(|last| last.clone())
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_values_parse_or_name_the_variable() {
        assert_eq!(parse_context_tokens(None), Ok(Some(128_000)));
        assert_eq!(parse_context_tokens(Some(" 9000 ")), Ok(Some(9000)));
        assert_eq!(parse_context_tokens(Some("off")), Ok(None));
        assert!(parse_context_tokens(Some("0"))
            .is_err_and(|e| e.starts_with("OPENAI_STANDIN_CONTEXT_TOKENS=\"0\"")));
        assert!(parse_context_tokens(Some("lots")).is_err());
        assert_eq!(parse_models(Some("*")), None);
        assert_eq!(
            parse_models(Some("a, b,,")),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert!(parse_models(None).is_some_and(|m| m.iter().any(|m| m == "gpt-4o-mini")));
    }

    #[test]
    fn the_options_debug_output_hides_the_key() {
        let options = Options {
            api_key: Some("sk-standin-hidden".into()),
            ..Options::default()
        };
        let debug = format!("{options:?}");
        assert!(!debug.contains("hidden"), "{debug}");
        assert!(debug.contains("***"));
    }
}
