//! The ports: traits through which the domain reaches models, storage and tools.
//!
//! Adapters implement them (`adapters::bedrock`, `adapters::dynamodb`, `adapters::memory`,
//! `tools::BuiltinTools`); the agent takes `&dyn Trait`, so tests and local runs swap them freely.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{
    message::{Message, ToolCall, ToolOutput},
    model::{ModelRequest, ModelResponse, ToolSpec, Usage},
    trace::TurnTrace,
};

/// Why a model call failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The provider is throttling us; retry later.
    #[error("the model is throttling requests")]
    Throttled,
    /// The provider rejected the request as invalid.
    #[error("the model rejected the request: {0}")]
    Invalid(String),
    /// Access to the model is not granted.
    #[error("access to the model was denied")]
    AccessDenied,
    /// The call did not finish in the time left.
    #[error("the model did not answer in time")]
    Timeout,
    /// Any other failure (network, provider error).
    #[error("the model is unavailable: {0}")]
    Unavailable(String),
}

/// A language model that takes a conversation and answers with one assistant message.
#[async_trait]
pub trait Model: Send + Sync {
    /// The model identifier, for pricing and traces.
    fn model_id(&self) -> &str;

    /// One Converse call.
    async fn converse(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError>;
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
    /// The store could not be reached or failed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
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
#[derive(Clone, Debug, PartialEq)]
pub struct SessionWindow {
    /// The session's version when loaded: the seq of its last message (0 when empty).
    pub version: u64,
    /// The turn number of the last stored turn (0 when empty).
    pub last_turn: u64,
    /// The most recent messages, oldest first, at most the requested count.
    pub messages: Vec<StoredMessage>,
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
    /// Dollars the turn cost.
    pub cost_usd: f64,
    /// The turn's trace.
    pub trace: TurnTrace,
    /// Set on the first turn to title the session.
    pub title: Option<String>,
    /// Stored with the turn when the request carried an idempotency key.
    pub idempotency: Option<IdempotencyRecord>,
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

    /// Loads the last `max_messages` messages of a session, in one read.
    async fn load_window(
        &self,
        user_id: &str,
        session_id: &str,
        max_messages: usize,
    ) -> Result<SessionWindow, StoreError>;

    /// Appends a turn in one atomic write, if the session is still at `expected_version`.
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

    /// A session's header and every message, oldest first.
    async fn get_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<(SessionHeader, Vec<StoredMessage>), StoreError>;

    /// The traces of every turn of a session, oldest first.
    async fn get_traces(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<Vec<TurnTrace>, StoreError>;

    /// Deletes a session and everything stored under it.
    async fn delete_session(&self, user_id: &str, session_id: &str) -> Result<(), StoreError>;

    /// The stored response for an idempotency key, if any.
    async fn get_idempotency(
        &self,
        user_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
}
