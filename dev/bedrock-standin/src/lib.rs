//! A local stand-in for Amazon Bedrock Runtime's `Converse` and
//! `ConverseStream` APIs (and `InvokeModel` for Titan Text Embeddings V2), speaking their real wire protocol so the official
//! `aws-sdk-bedrockruntime` client works against it unchanged (point it here
//! with `AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://127.0.0.1:PORT`, or
//! `.endpoint_url(..)` on the client config). Development and test tool only;
//! never deployed. Authentication is ignored: any SigV4 credentials work.
//!
//! # Routes
//!
//! - `POST /model/{modelId}/converse` → JSON `ConverseResponse`.
//! - `POST /model/{modelId}/converse-stream` → `application/vnd.amazon.eventstream`
//!   body of messageStart, contentBlockStart (tool use only), contentBlockDelta (text,
//!   tool-use input, or reasoning text and signature), contentBlockStop, messageStop and
//!   metadata events; or, with `fail-in-stream`, an exception event after the first delta.
//! - `POST /model/{modelId}/invoke` → InvokeModel, for Amazon Titan Text Embeddings V2
//!   only (see [Embeddings](#embeddings)).
//! - `GET /__stats` → `{"converse": n, "converse_stream": n, "invoke": n,
//!   "models": {"<model id>": n, ..}}`: requests received per operation, and per model id
//!   (decoded from the path; all operations together). Every request on a model route
//!   counts, including rejected, throttled and SDK-retried ones; a path whose model id does
//!   not decode does not. Also readable in-process: [`Stats::converse`],
//!   [`Stats::converse_stream`], [`Stats::invoke`], [`Stats::calls`]`(model_id)` and
//!   [`Stats::models`] (at most [`MAX_COUNTED_MODELS`] distinct ids are counted one by one).
//! - `GET /__systems?contains=<text>` → `{"matches": n, "kept": n}`: the stand-in keeps the
//!   system text (the request's `system` text blocks joined by `\n`, empty without any) of
//!   the latest 500 Converse and ConverseStream requests that passed validation; `kept` is
//!   how many it holds, `matches` how many of those contain `<text>` (percent-decoded, `+`
//!   read as a space; absent or empty matches every one). To check what a prompt said.
//! - `GET /__health` → `{"status": "ok"}`.
//!
//! Any model id (URL-encoded in the path) is accepted by Converse and ConverseStream.
//! Requests are validated
//! as Bedrock does (see [`request`]); failures are `400` with header
//! `x-amzn-errortype: ValidationException` and body `{"message": ".."}`.
//!
//! # Embeddings
//!
//! `POST /model/{modelId}/invoke` (the SDK's `invoke_model`) answers for model ids starting
//! `amazon.titan-embed-text-v2` (also the last `/` segment of an ARN); any other model id
//! → `400` `ValidationException` `The provided model identifier is invalid.`. The body is
//! Titan Text Embeddings V2's ([`embed`]): `{"inputText": "..", "dimensions": 256 | 512 |
//! 1024 (default 1024), "normalize": bool (default true), "embeddingTypes": ["float" |
//! "binary", ..] (optional)}`. `inputText` is required, 1 to 50 000 characters; an unknown
//! member, a missing or mistyped one, or another `dimensions` is refused as Bedrock passes
//! on Titan's refusal: `400` `ValidationException`, `Malformed input request: <detail>,
//! please reformat your input and try again.` (e.g. `#: required key [inputText] not found`,
//! `#/dimensions: 300 is not a valid enum value`, `extraneous key [x] is not permitted`).
//! The answer is `200`, `content-type: application/json`, header
//! `x-amzn-bedrock-input-token-count: <n>` (and `x-amzn-bedrock-invocation-latency`), body
//! `{"embedding": [f32; dimensions], "inputTextTokenCount": n, "embeddingsByType":
//! {"float": [..]}}` (`"binary": [0 | 1, ..]` too when asked for, 1 for a positive value;
//! `float` only when asked for or no types are given). `n` is the number of words × 1.3
//! rounded up, at least 1.
//!
//! Vectors are deterministic and texts sharing words are close: feature hashing of the
//! lower-cased words (runs of letters and digits, a trailing `s` dropped from words longer
//! than 3 characters) into `dimensions` buckets, ±1 each, bucket and sign from the word's
//! FNV-1a hash; L2-normalised when `normalize` is true. `STANDIN_LATENCY_MS` applies;
//! the triggers below do not (they are read from Converse messages only).
//!
//! # Context window
//!
//! A request whose input is larger than the context window
//! ([`Options::context_tokens`], env `STANDIN_CONTEXT_TOKENS`, default 200 000:
//! Claude's) is refused as Bedrock refuses it: `400`,
//! `x-amzn-errortype: ValidationException`, message
//! `Input is too long for requested model.`, on both Converse and ConverseStream.
//! The input is counted as the reported usage counts it ([`script::tokens`] of the
//! request body: bytes / 4), after the request has passed validation.
//!
//! # The script (what the fake model answers)
//!
//! Deterministic, driven by the latest user text and the tools offered in the
//! request's `toolConfig`:
//!
//! 1. If the last message is a user message with `toolResult` blocks: a final
//!    text, one line per result, `The <tool> tool says: <output>` (or
//!    `The <tool> tool reported an error: <output>` for `status: error`), the
//!    output verbatim (text as is, JSON compact); stop reason `end_turn`.
//! 2. Otherwise, from the last user text, tool calls for the offered tools, all
//!    in one answer (stop reason `tool_use`, preceded by a short text such as
//!    `Let me calculate that.`):
//!    - `calculator`: one call per arithmetic expression (digits with
//!      `+ - * / ( ) . % ^`), input `{"expression": "<expr>"}`;
//!    - `current_time`: when the text says time/date/clock/today/timezone,
//!      input `{}` or `{"timezone": "Europe/Paris"}` when an IANA zone
//!      (or `UTC`) appears;
//!    - `web_search`: when the text says search / look up / lookup, input
//!      `{"query": "<text after the keyword, up to ? ! ; newline or ' and '>"}`.
//! 3. Otherwise `You said: <text>` with `end_turn`.
//!
//! `toolConfig.toolChoice` is validated as Bedrock does: exactly one of `{"auto": {}}`,
//! `{"any": {}}` or `{"tool": {"name": "<tool>"}}`, and a named tool must be one of the
//! offered ones (else `ValidationException`
//! `The tool <name> in toolConfig.toolChoice is not one of the tools in toolConfig.tools: ..`).
//! `auto` changes nothing. `any` and `tool` force tool calls before rules 1 to 3 (only
//! `max-tokens` comes first), with no text block before them (as Claude's prefilled
//! forced choice): `any` makes the calls planned from the latest user text (rule 2), else
//! one call of the first offered tool with its scripted input (as `always-tool`); `tool`
//! makes the planned calls of that tool, else one call of it with its scripted input
//! (`calculator`: `{"expression": "1+1"}` when the text has no expression). Stop reason
//! `tool_use`, also after tool results.
//!
//! # Memory tools
//!
//! Forced calls (a `toolChoice` naming the tool, `any` with it offered first, or
//! `always-tool`) of the long-term memory tools get inputs read from the latest user text,
//! a transcript of `User: <text>` / `Assistant: <text>` lines:
//!
//! - `record_memories`: `{"memories": [{"kind", "key", "text"}, ..]}` (empty when nothing is
//!   found). From the `User: ` lines (the whole text when there are none), never from the
//!   lines of an `Already remembered:` section (its `- <kind>.<key>: <text>` lines),
//!   case-insensitively: `my <1 to 4 words> is|are <value>` → a fact keyed by the words in
//!   snake_case, `The user's <words> is <value>.` (`My favourite colour is blue.` →
//!   `{"kind": "fact", "key": "favourite_colour", "text": "The user's favourite colour is
//!   blue."}`); `I live in <place>` → fact `home_city`, `The user lives in <place>.`;
//!   `I prefer|like|love <x>` → preference `prefers_<first two words of x>`,
//!   `The user prefers|likes|loves <x>.`. A value ends at `.`, `,`, `!`, `?`, ` and ` or
//!   the end of the line. A later memory of the same kind and key replaces an earlier one
//!   in place. With at least one `User: ` line, last comes
//!   `{"kind": "summary", "key": "session", "text": "The user talked about <first user
//!   line, up to 80 characters>."}`.
//! - `write_summary`: `{"summary": ".."}`: the text of a `Summary so far: <s>` line, then
//!   `The user said: <line, up to 60 characters>.` per `User: ` line, joined by spaces and
//!   cut at 1200 characters (`No user messages yet.` when that leaves nothing).
//!
//! Trailing `.`, `!` and `?` of a quoted line are dropped before the final `.`.
//!
//! `inferenceConfig.stopSequences` (at most 4, none empty, else `ValidationException`):
//! when a text block of the answer contains one, the text is cut just before the earliest
//! of them, later blocks (e.g. the tool calls after an intro) are dropped, an emptied
//! text block is dropped too, and the stop reason is `stop_sequence` (which sequence is
//! not reported, as on Bedrock). Matching is exact and case-sensitive.
//!
//! Tool-use ids are `tooluse_` + 16 hex digits hashed from the conversation
//! position, block index, tool name and input. Usage: input tokens = request
//! body bytes / 4, output tokens = answer characters / 4, each at least 1;
//! `totalTokens` is their sum (with the cache tokens below, when present).
//!
//! # Service tier
//!
//! A top-level `serviceTier` of `{"type": "default" | "priority" | "flex" | "reserved"}` is
//! accepted (another value → `ValidationException`
//! `1 validation error detected: Value 'x' at 'serviceTier.type' failed to satisfy
//! constraint: Member must satisfy enum value set: [default, flex, priority, reserved]`)
//! and echoed as `"serviceTier": {"type": ..}` in the Converse response and in the
//! ConverseStream metadata event (both modelled by the SDK: `service_tier()`). Without
//! it, no `serviceTier` is answered.
//!
//! # Extended thinking
//!
//! As Claude on Bedrock ([`thinking`]). `additionalModelRequestFields` of
//! `{"thinking": {"type": "enabled", "budget_tokens": N}}` turns it on (`"disabled"` or no
//! `thinking` member: off). Refused with a `ValidationException` in the words Bedrock passes
//! on from Claude (`The model returned the following errors: ...`):
//!
//! - N below 1024: `thinking.enabled.budget_tokens: Input should be greater than or equal
//!   to 1024` (not a whole number: `.. Input should be a valid integer`; missing:
//!   `.. Field required`); another `type`: `thinking: Input tag .. does not match ..`;
//! - N not below `inferenceConfig.maxTokens` (when given): `` `max_tokens` must be greater
//!   than `thinking.budget_tokens`. Please consult our documentation at .. ``;
//! - a `temperature` other than 1: `` `temperature` may only be set to 1 when thinking is
//!   enabled. .. ``;
//! - a `toolChoice` of `any` or `tool`: `Thinking may not be enabled when tool_choice
//!   forces tool use.`;
//! - a tool loop (the last message is a user message with `toolResult` blocks) whose
//!   preceding assistant message, at index i, does not start with a `reasoningContent`
//!   block: ``messages.<i>.content.0.type: Expected `thinking` or `redacted_thinking`, but
//!   found `tool_use`. When `thinking` is enabled, a final `assistant` message must start
//!   with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result`
//!   blocks). ..`` (`text` instead of `tool_use` when a text block comes first);
//! - a `reasoningText` without a signature: `messages.<i>.content.<j>.thinking.signature:
//!   Field required`.
//!
//! Whether thinking is on or not, a `reasoningText` block anywhere in the request whose
//! signature is not the one the stand-in gave its text is refused:
//! ``messages.<i>.content.<j>: Invalid `signature` in `thinking` block``. Redacted blocks
//! (`{"reasoningContent": {"redactedContent": "<base64>"}}`) are accepted without checks.
//!
//! With thinking on, every answer starts with a reasoning block, content index 0, before
//! the blocks the rules above give: Converse
//! `{"reasoningContent": {"reasoningText": {"text": "..", "signature": ".."}}}`,
//! ConverseStream contentBlockDelta events `{"reasoningContent": {"text": ".."}}` (the text
//! in pieces), one `{"reasoningContent": {"signature": ".."}}`, then contentBlockStop (no
//! contentBlockStart, as Bedrock). The text is deterministic:
//! `The user asked: "<first 200 characters of the latest user text>". <plan>`, where the
//! plan is `I will call <tools> and use the results.`, `The tool results are in, so I will
//! report them.` or `I will answer directly.`; the signature is a base64 hash of the text
//! and a fixed key ([`thinking::signature`]). Output tokens count the reasoning text too;
//! stop sequences do not cut it. Send the block back unchanged (as the SDK returned it,
//! or rebuilt from the stream's text pieces and signature) and the loop goes on.
//!
//! # Prompt caching
//!
//! Converse `cachePoint` blocks (`{"cachePoint": {"type": "default"}}`, optional
//! `"ttl": "5m"` or `"1h"`, accepted but every entry lives [`Options::cache_ttl`]) may stand
//! as an entry of `system`, an entry of `toolConfig.tools`, or a block of any message's
//! `content`. They are accounted as Bedrock accounts them (details in [`cache`]):
//!
//! - Prefix order is tools, then system, then messages. The *prefix* at a cache point is
//!   everything before it in that order: the `toolConfig.tools` entries, `system`
//!   entries and message blocks that are not cache points, each block keyed with its
//!   message's role. Its size in tokens is the total length of those items' compact JSON
//!   / 4 (the same bytes / 4 rule as the usage).
//! - More than 4 cache points in one request → `400` `ValidationException`
//!   `The model returned the following errors: A maximum of 4 blocks with cache_control
//!   may be provided. Found 5.`; a `type` other than `default` (or a `ttl` other than
//!   `5m` / `1h`) → `ValidationException`
//!   `1 validation error detected: Value 'x' at '<path>.cachePoint.type' failed to satisfy
//!   constraint: Member must satisfy enum value set: [default]`.
//! - A cache point whose prefix is under [`Options::cache_min_tokens`] (env
//!   `STANDIN_CACHE_MIN_TOKENS`, default 1024) is ignored.
//! - Each model id has its own cache (the id is part of every key); entries live
//!   [`Options::cache_ttl`] (env `STANDIN_CACHE_TTL_SECS`, default 300 s) from their last
//!   write or read; at most [`cache::MAX_CACHE_ENTRIES`] are held.
//! - Read: the longest cached prefix found at any block boundary from a cache point back
//!   to 20 blocks before it (Anthropic's lookback), over all cache points. Write: the
//!   tokens from the end of the read to the furthest valid cache point, when that lies
//!   beyond the read. Then every valid cache point's prefix is stored.
//! - Usage (Converse `usage` and the ConverseStream metadata event): `inputTokens` = the
//!   body's tokens less read and write (at least 0), `cacheReadInputTokens`,
//!   `cacheWriteInputTokens` (0 when nothing is read or written), `outputTokens`, and
//!   `totalTokens` = all four together. A request without any cache point has no cache
//!   fields at all, as on Bedrock.
//! - A call answered with an error (including an in-stream one) reads and writes nothing.
//!
//! So a request sent twice bills a write, then the same amount as a read; a tool loop
//! that moves its cache point to the last message each step reads the previous step's
//! prefix and writes only the new messages.
//!
//! # Test triggers
//!
//! Markers in the latest user text (they are removed before the rules above
//! apply, and stay in force while the agent loops on tool results):
//!
//! - `[[standin:fail-throttle]]` → `429` with `x-amzn-errortype: ThrottlingException`.
//! - `[[standin:fail=<Name>]]` → every model call answers with that Bedrock
//!   error: its HTTP status, `x-amzn-errortype: <Name>` and a message in
//!   Bedrock's words ([`fault::ErrorKind`]). Names and statuses:
//!   `ThrottlingException` 429, `ServiceUnavailableException` 503,
//!   `ModelNotReadyException` 429, `InternalServerException` 500,
//!   `ModelTimeoutException` 408, `ModelErrorException` 424,
//!   `ValidationException` 400, `AccessDeniedException` 403,
//!   `ResourceNotFoundException` 404, `ServiceQuotaExceededException` 400,
//!   `ModelStreamErrorException` 424 (exact spelling, case-sensitive), and
//!   `TooManyTokens`: 429 with `x-amzn-errortype: ThrottlingException` and
//!   `Too many tokens, please wait before trying again.` (Bedrock's wording for
//!   token-rate throttling; `ThrottlingException` itself says
//!   `Too many requests, please wait before trying again.`). These are the "error
//!   names" every error trigger below accepts.
//! - `[[standin:fail@<model-id>=<Name>]]` → every call whose model id (decoded from the
//!   URL path) is exactly `<model-id>` answers with that error; calls to other model ids
//!   answer normally (to test fallback chains). One marker per model; several may appear,
//!   e.g. `[[standin:fail@us.anthropic.claude-3-5-haiku-20241022-v1:0=ThrottlingException]]`.
//!   The model id is everything between `@` and the last `=`, so ARNs work.
//! - `[[standin:fail-first=<N>@<model-id>=<Name>]]` and `[[standin:fail-first=<N>=<Name>]]`
//!   (any model) → the first N calls of this conversation to that model answer with the
//!   error, later ones normally (to test retries). "This conversation" is the model id
//!   plus a hash of the request's `messages` JSON exactly as sent (trigger text included):
//!   a retry of the same request counts up, both operations count together, and the next
//!   step of a tool loop (more messages) is a new conversation whose first N calls fail
//!   again. A marker naming the model wins over an any-model one. Counts are kept for the
//!   10 000 most recent conversations (the oldest is forgotten first); only calls that
//!   pass request validation and the context-window check are counted.
//! - `[[standin:fail-after-tools=<Name>]]` → answers normally while the last
//!   message carries no tool results (so the agent's first call succeeds and asks
//!   for tools), then with that error once it does: the model fails at step 2,
//!   after a tool ran.
//! - `[[standin:fail-in-stream=<name>]]`, `<name>` one of ConverseStream's in-stream
//!   exception event names `throttlingException`, `serviceUnavailableException`,
//!   `modelStreamErrorException`, `internalServerException`, `validationException` →
//!   ConverseStream answers `200`, sends messageStart and the first contentBlockDelta,
//!   then an exception frame (headers `:message-type: exception`,
//!   `:exception-type: <name>`, `:content-type: application/json`, payload
//!   `{"message": ".."}` in the error's usual words) and ends; the SDK's receiver yields
//!   the matching `ConverseStreamOutputError` variant. Converse answers the matching HTTP
//!   error (`throttlingException` → 429 `ThrottlingException`, `modelStreamErrorException`
//!   → 424 `ModelStreamErrorException`, and so on). Any other name →
//!   `ValidationException` `Unknown stand-in trigger ..`.
//! - An error trigger with a name not in the list above → `400` `ValidationException`,
//!   `Unknown stand-in trigger [[standin:fail=X]]: the error name must be one of ...`;
//!   a `fail@` / `fail-first=` marker of another shape (no model id, N not a whole
//!   number, ...) → `ValidationException`
//!   `Malformed stand-in trigger [[standin:..]]: expected ...`. Either way a typo does
//!   not pass as a success, whatever the model id.
//! - `[[standin:always-tool]]` → always call the first offered tool again
//!   (`Calling <tool> again.`, stop reason `tool_use`), to test step caps.
//! - `[[standin:max-tokens]]` → the first half of the echo, stop reason `max_tokens`.
//! - `[[standin:sleep-ms=N]]` → sleep N ms before answering, to test wall-time caps.
//! - `[[standin:stream-gap-ms=N]]` → ConverseStream sends its events N ms apart, as a
//!   model's tokens arrive, to see them streamed.
//!
//! Error triggers answer after the `sleep-ms` and `STANDIN_LATENCY_MS` delays;
//! when several apply, a malformed or unknown one wins, then `fail-throttle`, `fail=`,
//! `fail@` (for this model), `fail-first=` (while within its count), `fail-after-tools=`,
//! and last `fail-in-stream=`. A call answered with an error reads and writes no prompt
//! cache.
//!
//! # Environment
//!
//! Read by [`Options::from_env`]; a bad value is an error naming the variable:
//!
//! - `STANDIN_LATENCY_MS`: a fixed delay added to every model call (default 0).
//! - `STANDIN_CONTEXT_TOKENS`: the context window in tokens (default 200000;
//!   `off` for none; see [`parse_context_tokens`]).
//! - `STANDIN_CACHE_MIN_TOKENS`: the smallest prefix, in tokens, a cache point needs to
//!   count (default 1024).
//! - `STANDIN_CACHE_TTL_SECS`: how long a prompt-cache entry lives after its last write
//!   or read, in seconds (default 300).

mod attempts;
pub mod cache;
pub mod embed;
pub mod eventstream;
pub mod fault;
mod hash;
mod http;
mod memory;
pub mod request;
pub mod script;
pub mod server;
mod text;
pub mod thinking;
mod tools;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Most distinct model ids [`Stats`] counts one by one; calls to further ids still count in
/// the per-operation totals.
pub const MAX_COUNTED_MODELS: usize = 10_000;

/// Counts of model calls received, per operation and per model id; shared with the server
/// and readable at any time (also served as JSON at `GET /__stats`).
#[derive(Debug, Default)]
pub struct Stats {
    converse: AtomicU64,
    converse_stream: AtomicU64,
    invoke: AtomicU64,
    models: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// Number of `Converse` requests received.
    pub fn converse(&self) -> u64 {
        self.converse.load(Ordering::SeqCst)
    }

    /// Number of `ConverseStream` requests received.
    pub fn converse_stream(&self) -> u64 {
        self.converse_stream.load(Ordering::SeqCst)
    }

    /// Number of `InvokeModel` requests received (embeddings, and refused ones).
    pub fn invoke(&self) -> u64 {
        self.invoke.load(Ordering::SeqCst)
    }

    /// Number of `Converse`, `ConverseStream` and `InvokeModel` requests received for
    /// `model_id` (the id as decoded from the URL path, compared exactly).
    pub fn calls(&self, model_id: &str) -> u64 {
        self.lock_models().get(model_id).copied().unwrap_or(0)
    }

    /// Every model id called so far with its count of calls (all operations).
    pub fn models(&self) -> BTreeMap<String, u64> {
        self.lock_models().clone()
    }

    /// `{"converse": n, "converse_stream": n, "invoke": n, "models": {"<model id>": n, ...}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "converse": self.converse(),
            "converse_stream": self.converse_stream(),
            "invoke": self.invoke(),
            "models": self.models(),
        })
    }

    fn record(&self, operation: http::Operation, model_id: &str) {
        let counter = match operation {
            http::Operation::Converse => &self.converse,
            http::Operation::ConverseStream => &self.converse_stream,
            http::Operation::Invoke => &self.invoke,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        let mut models = self.lock_models();
        if let Some(count) = models.get_mut(model_id) {
            *count += 1;
        } else if models.len() < MAX_COUNTED_MODELS {
            models.insert(model_id.to_string(), 1);
        }
    }

    fn lock_models(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        // The map is always left consistent, so a panic elsewhere does not spoil it.
        self.models.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The default context window, in the stand-in's tokens: Claude's 200 000.
pub const DEFAULT_CONTEXT_TOKENS: u64 = 200_000;

/// Server settings: a fixed delay added to every model call, the context window,
/// and the counters the server updates (keep a clone of the `Arc` to read them).
#[derive(Debug, Clone)]
pub struct Options {
    /// Delay added before every model answer.
    pub latency: Duration,
    /// The model's context window in tokens ([`script::tokens`] of the request body):
    /// a longer request is refused with a `ValidationException` saying
    /// `Input is too long for requested model.`, as Bedrock does. `None`: no limit.
    /// Default [`DEFAULT_CONTEXT_TOKENS`].
    pub context_tokens: Option<u64>,
    /// The smallest prefix, in tokens, a `cachePoint` needs to count (smaller ones are
    /// ignored, as Bedrock ignores them). Default [`cache::DEFAULT_CACHE_MIN_TOKENS`] (1024).
    pub cache_min_tokens: u64,
    /// How long a prompt-cache entry lives after it was last written or read. Default
    /// [`cache::DEFAULT_CACHE_TTL`] (5 minutes).
    pub cache_ttl: Duration,
    /// Request counters.
    pub stats: Arc<Stats>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            context_tokens: Some(DEFAULT_CONTEXT_TOKENS),
            cache_min_tokens: cache::DEFAULT_CACHE_MIN_TOKENS,
            cache_ttl: cache::DEFAULT_CACHE_TTL,
            stats: Arc::default(),
        }
    }
}

impl Options {
    /// Reads `STANDIN_LATENCY_MS` (milliseconds, default 0), `STANDIN_CONTEXT_TOKENS` (see
    /// [`parse_context_tokens`]), `STANDIN_CACHE_MIN_TOKENS` (tokens, default 1024) and
    /// `STANDIN_CACHE_TTL_SECS` (seconds, default 300); a bad value is an error naming the
    /// variable.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok();
        let latency = parse_number("STANDIN_LATENCY_MS", var("STANDIN_LATENCY_MS"), "ms")?;
        let context = var("STANDIN_CONTEXT_TOKENS");
        let min = parse_number(
            "STANDIN_CACHE_MIN_TOKENS",
            var("STANDIN_CACHE_MIN_TOKENS"),
            "tokens",
        )?;
        let ttl = parse_number(
            "STANDIN_CACHE_TTL_SECS",
            var("STANDIN_CACHE_TTL_SECS"),
            "seconds",
        )?;
        Ok(Self {
            latency: Duration::from_millis(latency.unwrap_or(0)),
            context_tokens: parse_context_tokens(context.as_deref())?,
            cache_min_tokens: min.unwrap_or(cache::DEFAULT_CACHE_MIN_TOKENS),
            cache_ttl: ttl.map_or(cache::DEFAULT_CACHE_TTL, Duration::from_secs),
            stats: Arc::default(),
        })
    }
}

/// A whole number from variable `name`; `None` when unset or blank.
fn parse_number(name: &str, raw: Option<String>, unit: &str) -> Result<Option<u64>, String> {
    match raw {
        Some(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|e| format!("{name}={raw:?} is not a number of {unit}: {e}")),
        _ => Ok(None),
    }
}

/// The context window from a `STANDIN_CONTEXT_TOKENS` value: unset or blank →
/// [`DEFAULT_CONTEXT_TOKENS`]; `off` → no limit; otherwise a whole number of tokens,
/// at least 1. Anything else is an error naming the variable.
pub fn parse_context_tokens(raw: Option<&str>) -> Result<Option<u64>, String> {
    let Some(value) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Some(DEFAULT_CONTEXT_TOKENS));
    };
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match value.parse::<u64>() {
        Ok(tokens) if tokens >= 1 => Ok(Some(tokens)),
        Ok(_) => Err(format!(
            "STANDIN_CONTEXT_TOKENS={value:?} must be at least 1 (or `off` for no limit)"
        )),
        Err(e) => Err(format!(
            "STANDIN_CONTEXT_TOKENS={value:?} is not a number of tokens (or `off`): {e}"
        )),
    }
}

/// Serves the stand-in on `listener` forever with [`Options::from_env`]; returns
/// only on a bad `STANDIN_*` variable or a fatal accept error.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let options = Options::from_env()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    serve_with(listener, options).await
}

/// Serves the stand-in on `listener` forever with the given options. Each
/// connection runs on its own task (HTTP/1.1, keep-alive); dropping the
/// returned future stops the server and its connections. Transient accept
/// errors (aborted connections, out of file descriptors) are retried; others
/// are returned.
pub async fn serve_with(listener: TcpListener, options: Options) -> std::io::Result<()> {
    let state = Arc::new(http::State {
        latency: options.latency,
        context_tokens: options.context_tokens,
        stats: options.stats,
        request_seq: AtomicU64::new(0),
        attempts: Mutex::default(),
        cache: Mutex::new(cache::Cache::new(
            options.cache_ttl,
            cache::MAX_CACHE_ENTRIES,
        )),
        cache_min_tokens: options.cache_min_tokens,
        systems: Mutex::default(),
    });
    server::accept_loop(listener, move |req| http::handle(Arc::clone(&state), req)).await
}

/// A stand-in running on a background task, for tests: bound to
/// `127.0.0.1:0`, stopped when dropped.
#[derive(Debug)]
pub struct Standin {
    addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Standin {
    /// Binds `127.0.0.1:0` and starts serving with `options` on a new task.
    pub async fn start(options: Options) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::clone(&options.stats);
        let task = tokio::spawn(serve_with(listener, options));
        Ok(Self { addr, stats, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for `endpoint_url` or
    /// `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
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
    fn numbers_from_the_environment_name_the_variable() {
        assert_eq!(parse_number("X", None, "s"), Ok(None));
        assert_eq!(parse_number("X", Some(" ".into()), "s"), Ok(None));
        assert_eq!(parse_number("X", Some(" 60 ".into()), "s"), Ok(Some(60)));
        let bad = parse_number("STANDIN_CACHE_TTL_SECS", Some("5m".into()), "seconds");
        assert!(
            bad.as_ref().is_err_and(
                |e| e.starts_with("STANDIN_CACHE_TTL_SECS=\"5m\" is not a number of seconds")
            ),
            "{bad:?}"
        );
        let defaults = Options::default();
        assert_eq!(defaults.cache_min_tokens, 1024);
        assert_eq!(defaults.cache_ttl, Duration::from_secs(300));
    }

    #[test]
    fn context_window_defaults_to_claude_and_reads_the_variable() {
        assert_eq!(Options::default().context_tokens, Some(200_000));
        assert_eq!(parse_context_tokens(None), Ok(Some(200_000)));
        assert_eq!(parse_context_tokens(Some("  ")), Ok(Some(200_000)));
        assert_eq!(parse_context_tokens(Some(" 8000 ")), Ok(Some(8000)));
        assert_eq!(parse_context_tokens(Some("OFF")), Ok(None));
        let zero = parse_context_tokens(Some("0"));
        assert!(
            zero.as_ref()
                .is_err_and(|e| e.starts_with("STANDIN_CONTEXT_TOKENS=\"0\" must be at least 1")),
            "{zero:?}"
        );
        let bad = parse_context_tokens(Some("200k"));
        assert!(
            bad.as_ref()
                .is_err_and(|e| e.starts_with("STANDIN_CONTEXT_TOKENS=\"200k\" is not a number")),
            "{bad:?}"
        );
    }
}
