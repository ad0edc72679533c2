//! The ports: traits through which the domain reaches models, storage and tools.
//!
//! Adapters implement them (`adapters::bedrock`, `adapters::dynamodb`, `adapters::memory`,
//! `tools::BuiltinTools`); the agent takes `&dyn Trait`, so tests and local runs swap them freely.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::{
    memory::MemoryRecord,
    message::{ContentBlock, Message, ToolCall, ToolOutput, ToolStatus},
    model::{ModelRequest, ModelResponse, ToolSpec, Usage},
    trace::TurnTrace,
};

/// Why a model call failed. Each kind says whether a retry can help (see
/// [`ModelError::is_transient`]).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The provider is throttling us; retry later.
    #[error("the model is throttling requests")]
    Throttled,
    /// The request is longer than the model's context window.
    #[error("the request is too long for the model's context window: {0}")]
    ContextOverflow(String),
    /// The provider rejected the request as invalid; the same request will fail again.
    #[error("the model rejected the request: {0}")]
    Invalid(String),
    /// Access to the model is not granted (or the model does not exist); a configuration fault.
    #[error("access to the model was denied")]
    AccessDenied,
    /// The call did not finish in the time left.
    #[error("the model did not answer in time")]
    Timeout,
    /// A transient failure: the provider is unavailable, the model not ready, an internal
    /// error, the network. Names the error kind, never the conversation.
    #[error("the model is unavailable: {0}")]
    Unavailable(String),
}

impl ModelError {
    /// True when the same request may succeed if retried later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled | Self::Timeout | Self::Unavailable(_))
    }

    /// A short stable name of the kind, for answers, traces and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::ContextOverflow(_) => "context_overflow",
            Self::Invalid(_) => "invalid_request",
            Self::AccessDenied => "access_denied",
            Self::Timeout => "timeout",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// A language model that takes a conversation and answers with one assistant message.
#[async_trait]
pub trait Model: Send + Sync {
    /// The model identifier, for pricing and traces.
    fn model_id(&self) -> &str;

    /// One Converse call.
    async fn converse(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError>;

    /// One call whose answer's text goes to `sink` as the model generates it (ConverseStream),
    /// returning the same assembled response as [`Model::converse`].
    ///
    /// The default makes a buffered call and hands its text to the sink at once, for a
    /// provider that cannot stream.
    async fn converse_stream(
        &self,
        request: &ModelRequest,
        sink: &dyn TurnSink,
    ) -> Result<ModelResponse, ModelError> {
        let response = self.converse(request).await?;
        for block in &response.message.content {
            if let ContentBlock::Text { text } = block {
                sink.text(text);
            }
        }
        Ok(response)
    }
}

/// Where a streamed turn's events go as they happen: the answer's text as the model writes it,
/// each tool call as it starts and ends, and the moment the turn is under way.
///
/// A sink never blocks the turn (it forwards to a channel, say) and never fails it: a sink
/// whose reader has gone drops what it is given, and the turn runs to its end and is stored.
pub trait TurnSink: Send + Sync {
    /// More of the answer's text.
    fn text(&self, delta: &str);

    /// A tool call starts.
    fn tool_start(&self, _call: &ToolCall) {}

    /// A tool call ended.
    fn tool_end(&self, _tool_use_id: &str, _status: ToolStatus, _latency: std::time::Duration) {}

    /// The turn passed every check that can refuse it (its key is claimed, its session loaded)
    /// and its loop starts: what follows is the turn's own outcome.
    fn started(&self) {}
}

/// Who is calling a tool, for authorization, auditing and tracing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallContext {
    /// The caller (JWT `sub`).
    pub user_id: String,
    /// The session.
    pub session_id: String,
    /// The model's tool use id.
    pub tool_use_id: String,
    /// The turn's trace id.
    pub trace_id: String,
    /// The W3C trace context of the call: the turn's trace and the call's `execute_tool` span
    /// (absent from older callers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// Why tool specs could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("tools unavailable: {0}")]
pub struct ToolListError(pub String);

/// A source of tools: lists their specs and runs one call.
///
/// `call` never fails: a tool error is a [`ToolOutput`] with status `error`, which the model reads.
#[async_trait]
pub trait ToolInvoker: Send + Sync {
    /// The specs of every tool this source offers.
    async fn specs(&self) -> Result<Vec<ToolSpec>, ToolListError>;

    /// Runs one call.
    async fn call(&self, call: &ToolCall, context: &CallContext) -> ToolOutput;
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The session does not exist, or belongs to someone else.
    #[error("session not found")]
    NotFound,
    /// Another turn was stored on the session since this one loaded it.
    #[error("the session changed while this turn ran (expected version {expected})")]
    Conflict {
        /// The version this turn expected.
        expected: u64,
    },
    /// The session already exists (create with a taken id).
    #[error("the session already exists")]
    AlreadyExists,
    /// The store could not be reached or failed in a way a retry may fix (throttling, a
    /// timeout, a network or service error).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A write exceeds a limit of the store (item, transaction); retrying cannot fix it.
    #[error("too large to store: {0}")]
    TooLarge(String),
    /// The store refused the request as invalid, or holds something it cannot read back;
    /// retrying cannot fix it.
    #[error("storage refused the request: {0}")]
    Rejected(String),
}

/// A session as listed: owner, title, version and totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionHeader {
    /// The owner.
    pub user_id: String,
    /// The session id.
    pub session_id: String,
    /// A title taken from the first message.
    pub title: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a turn last changed it.
    pub updated_at: DateTime<Utc>,
    /// Number of messages stored; the optimistic concurrency version.
    pub version: u64,
    /// Number of turns stored.
    pub turns: u64,
    /// Tokens used by all turns.
    pub usage: Usage,
    /// Dollars spent on all turns.
    pub cost_usd: f64,
    /// When the session expires (Unix seconds), refreshed by every turn.
    pub expires_at: i64,
}

/// A stored message with its position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// 1-based position in the session.
    pub seq: u64,
    /// The turn it belongs to.
    pub turn: u64,
    /// The message.
    pub message: Message,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// The recent messages of a session, as loaded for a turn.
///
/// The store returns what it has, newest last, expired items left out; which of them the model
/// sees is the domain's choice (`domain::context::select_history`).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionWindow {
    /// The session's version when loaded: the number of messages ever stored, as the session's
    /// header (and marker) record it (0 when empty). The one source of the version.
    pub version: u64,
    /// The turn number of the last stored turn (0 when empty).
    pub last_turn: u64,
    /// The most recent messages, oldest first, at most the requested count.
    pub messages: Vec<StoredMessage>,
    /// Dollars the session's turns have cost so far (its budget is checked against it).
    pub cost_usd: f64,
    /// Read request units the load consumed (as the store reports them; 0 when it does not).
    pub read_units: f64,
}

/// What a user has spent, read before a turn to check the budgets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserUsage {
    /// Dollars of the user's turns stored this calendar month (UTC).
    pub month_cost_usd: f64,
    /// Turns of the user stored in the current minute (UTC).
    pub minute_turns: u32,
    /// Read request units the read consumed.
    pub read_units: f64,
}

/// The calendar month (UTC) a user's spending is counted in: `2026-12`.
pub fn usage_month(now: DateTime<Utc>) -> String {
    now.format("%Y-%m").to_string()
}

/// The minute (Unix seconds / 60) a user's turn rate is counted in.
pub fn usage_minute(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(60)
}

/// Which part of a list to read: the items after a position, at most `limit` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this position (a message's seq, a trace's turn); `None` from the start.
    pub after: Option<u64>,
    /// Most items to return (at least 1).
    pub limit: usize,
}

/// One page of a list, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The position to continue after, when more items may follow.
    pub next: Option<u64>,
}

/// A stored response for a request that carried an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The key the client sent.
    pub key: String,
    /// Fingerprint of the request, so a reused key with another body is refused.
    pub request_hash: String,
    /// The session the request was for.
    pub session_id: String,
    /// The response body to replay.
    pub response: Value,
    /// Until when the record is kept and replayed (Unix seconds); a record past it is gone.
    pub expires_at: i64,
}

/// A request's claim on its idempotency key, taken before the turn runs so that a retry
/// arriving while it runs cannot start a second turn.
#[derive(Clone, Debug, PartialEq)]
pub struct IdempotencyClaim {
    /// The key the client sent.
    pub key: String,
    /// Fingerprint of the request.
    pub request_hash: String,
    /// Identifies this attempt; only it may complete or release the claim.
    pub token: String,
    /// When the claim lapses if the attempt never completes it (it crashed): the invocation's
    /// deadline. A retry after it may claim the key again.
    pub lease_until: DateTime<Utc>,
    /// Now, by the caller's clock.
    pub now: DateTime<Utc>,
}

/// What claiming an idempotency key found.
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimOutcome {
    /// The key was free (or its record had expired): this attempt holds it now.
    Claimed,
    /// A request with this key completed: its record, to replay (or refuse, if the request
    /// differs).
    Completed(IdempotencyRecord),
    /// Another attempt with this key is running.
    InFlight {
        /// The running attempt's request fingerprint.
        request_hash: String,
        /// When its claim lapses.
        lease_until: DateTime<Utc>,
    },
}

/// What a turn with an idempotency key stores with it: the completed record, replacing the
/// claim of the attempt named by `token`.
#[derive(Clone, Debug, PartialEq)]
pub struct IdempotencyCompletion {
    /// The record to keep.
    pub record: IdempotencyRecord,
    /// The claim's token.
    pub token: String,
}

/// Everything one turn stores, written at once or not at all.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnCommit {
    /// The version the turn loaded; the write fails with `Conflict` if it changed.
    pub expected_version: u64,
    /// The turn's number (the last turn + 1).
    pub turn: u64,
    /// The turn's messages, in order: the user message first.
    pub messages: Vec<Message>,
    /// Tokens the turn used.
    pub usage: Usage,
    /// Dollars the turn cost (added to the session's and the user's monthly totals).
    pub cost_usd: f64,
    /// Whether the user's monthly spend and turn rate are counted (with the turn, in the same
    /// write): when budgets or a rate limit are configured.
    pub count_usage: bool,
    /// The turn's trace.
    pub trace: TurnTrace,
    /// Set on the first turn to title the session.
    pub title: Option<String>,
    /// Stored with the turn when the request carried an idempotency key.
    pub idempotency: Option<IdempotencyCompletion>,
    /// When the turn is stored.
    pub now: DateTime<Utc>,
}

/// Short-term memory: sessions and their turns, each owned by one user.
///
/// Every method takes the owner: a session of another user is `NotFound`, never visible.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates an empty session owned by `user_id`.
    async fn create_session(
        &self,
        user_id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<SessionHeader, StoreError>;

    /// Loads the last `max_messages` messages of a session, in one read; expired items are
    /// left out (a session whose marker expired is `NotFound`).
    async fn load_window(
        &self,
        user_id: &str,
        session_id: &str,
        max_messages: usize,
    ) -> Result<SessionWindow, StoreError>;

    /// What `user_id` has spent this month and how many turns they stored this minute, as of
    /// `now` (zeros for a user with none).
    async fn user_usage(&self, user_id: &str, now: DateTime<Utc>) -> Result<UserUsage, StoreError>;

    /// Appends a turn in one atomic write, if the session is still at `expected_version`;
    /// the session's totals, and with `count_usage` the user's monthly spend and minute turn
    /// count, are updated in the same write.
    ///
    /// Returns nothing: a turn costs exactly one write, with no read-back.
    async fn append_turn(
        &self,
        user_id: &str,
        session_id: &str,
        commit: &TurnCommit,
    ) -> Result<(), StoreError>;

    /// The user's sessions, most recently updated first.
    async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionHeader>, StoreError>;

    /// A session's header and one page of its messages (by seq), oldest first.
    async fn get_session(
        &self,
        user_id: &str,
        session_id: &str,
        page: PageRequest,
    ) -> Result<(SessionHeader, Page<StoredMessage>), StoreError>;

    /// One page of the traces of a session's turns (by turn), oldest first.
    async fn get_traces(
        &self,
        user_id: &str,
        session_id: &str,
        page: PageRequest,
    ) -> Result<Page<TurnTrace>, StoreError>;

    /// Deletes a session and everything stored under it, its idempotency records included.
    async fn delete_session(&self, user_id: &str, session_id: &str) -> Result<(), StoreError>;

    /// Claims an idempotency key of a session for one attempt (one conditional write), or says
    /// who holds it. Expired records and lapsed claims count as free.
    async fn claim_idempotency(
        &self,
        user_id: &str,
        session_id: &str,
        claim: &IdempotencyClaim,
    ) -> Result<ClaimOutcome, StoreError>;

    /// Gives up a claim this attempt holds (its turn failed and stored nothing), so a retry
    /// can run at once. Does nothing if the claim is no longer this attempt's.
    async fn release_idempotency(
        &self,
        user_id: &str,
        session_id: &str,
        key: &str,
        token: &str,
    ) -> Result<(), StoreError>;

    /// The completed record of an idempotency key of a session, unless it expired.
    async fn get_idempotency(
        &self,
        user_id: &str,
        session_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
}

/// What is remembered about one user, as read in one Query of their memory partition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserMemory {
    /// The records, by id.
    pub records: Vec<MemoryRecord>,
    /// Records the user erased, by id, with when: kept for a while so that an extraction of a
    /// turn stored before that cannot bring them back.
    pub forgotten: BTreeMap<String, DateTime<Utc>>,
    /// Sessions the user deleted with what was learned from them.
    pub forgotten_sessions: BTreeSet<String>,
    /// When the user last erased everything.
    pub forgotten_all_at: Option<DateTime<Utc>>,
}

impl UserMemory {
    /// Whether a turn of `session` stored at `source_at` may still be learned from.
    pub fn accepts(&self, session: &str, source_at: DateTime<Utc>) -> bool {
        !self.forgotten_sessions.contains(session)
            && self.forgotten_all_at.is_none_or(|at| at < source_at)
    }

    /// The ids a turn stored at `source_at` must not learn again (erased after it).
    pub fn forgotten_since(&self, source_at: DateTime<Utc>) -> BTreeSet<String> {
        self.forgotten
            .iter()
            .filter(|(_, at)| **at >= source_at)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Long-term memory: what is learned about each user, in a partition of their own.
///
/// Every method takes the owner; no call reaches another user's records.
#[async_trait]
pub trait LongTermMemory: Send + Sync {
    /// Everything remembered about `user_id`, in one (paged) Query of their partition.
    async fn memory(&self, user_id: &str) -> Result<UserMemory, StoreError>;

    /// Writes `records` (from [`crate::domain::memory::merge`]) learned from a turn of
    /// `session_id` stored at `source_at`, in one transaction: a new record only where its id
    /// is free (or was erased before `source_at`), a changed one only while still at the
    /// version it was read at, and nothing if the user has since erased the session or
    /// everything. [`StoreError::Conflict`] when any of that changed: read again, merge again.
    async fn write_memories(
        &self,
        user_id: &str,
        session_id: &str,
        source_at: DateTime<Utc>,
        records: &[MemoryRecord],
    ) -> Result<(), StoreError>;

    /// Erases one record; [`StoreError::NotFound`] when there is none with that id.
    async fn forget(&self, user_id: &str, id: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Erases every record of the user; returns how many there were.
    async fn forget_all(&self, user_id: &str, now: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Erases what was learned only from `session_id` (and takes the session off the records
    /// other sessions also taught); returns how many records were erased.
    async fn forget_session(
        &self,
        user_id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
}

/// A text's embedding, and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// The vector (normalized).
    pub vector: Vec<f32>,
    /// Input tokens billed.
    pub input_tokens: u64,
}

/// Turns text into vectors (Amazon Titan Text Embeddings V2 through `InvokeModel`).
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The embedding model's id.
    fn model_id(&self) -> &str;

    /// The embedding of `text`.
    async fn embed(&self, text: &str) -> Result<Embedding, ModelError>;
}
