//! The agent as the HTTP API uses it: sessions and turns, composed from the ports.
//!
//! A turn is: replay if the idempotency key was seen, load the recent window (one read), run
//! the loop, store everything in one conditional write. A turn that loses a race stores
//! nothing and reports a conflict.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use crate::{
    domain::{
        message::Message,
        model::{GuardrailConfig, InferenceConfig, ModelRequest, ToolSpec, Usage},
        pricing::{Cost, Pricing},
        trace::TurnTrace,
        turn::{TurnLimits, TurnState},
    },
    driver::{drive_turn, TurnContext},
    ports::{
        IdempotencyRecord, Model, ModelError, SessionHeader, SessionStore, StoreError,
        StoredMessage, ToolInvoker, ToolListError, TurnCommit,
    },
};

/// How the agent behaves; read once from configuration.
#[derive(Clone, Debug)]
pub struct AgentSettings {
    /// The system prompt.
    pub system_prompt: Option<String>,
    /// Most model calls per turn.
    pub max_steps: u32,
    /// Most wall time per turn, before the invocation's own deadline is considered.
    pub max_wall_time: Duration,
    /// How many recent messages are sent to the model as history.
    pub history_messages: usize,
    /// The longest one tool call may take.
    pub tool_timeout: Duration,
    /// Sampling settings.
    pub inference: InferenceConfig,
    /// Bedrock guardrail, when configured.
    pub guardrail: Option<GuardrailConfig>,
    /// The model's price, when known.
    pub pricing: Option<Pricing>,
}

/// Why an agent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The session does not exist or belongs to someone else.
    #[error("session not found")]
    NotFound,
    /// Another turn changed the session while this one ran; nothing was stored.
    #[error("the session was changed by another request; nothing of this turn was stored")]
    Conflict,
    /// The idempotency key was already used for a different request.
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The tools could not be listed.
    #[error(transparent)]
    Tools(#[from] ToolListError),
    /// The store failed.
    #[error("storage unavailable")]
    Store(#[source] StoreError),
}

impl From<StoreError> for AgentError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict { .. } | StoreError::AlreadyExists => Self::Conflict,
            other => Self::Store(other),
        }
    }
}

/// One message sent to a session.
#[derive(Clone, Debug)]
pub struct TurnRequest<'a> {
    /// The caller.
    pub user_id: &'a str,
    /// The session.
    pub session_id: &'a str,
    /// What the user said.
    pub message: &'a str,
    /// The client's idempotency key, if it sent one.
    pub idempotency_key: Option<&'a str>,
    /// Time this invocation has left for the turn (its deadline less a margin), if known.
    pub time_left: Option<Duration>,
}

/// What a turn answers, as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct TurnResult {
    /// The session.
    pub session_id: String,
    /// The turn's number in the session.
    pub turn: u64,
    /// The model's answer.
    pub answer: String,
    /// Why the turn ended.
    pub stop_reason: String,
    /// Model calls made.
    pub steps: u32,
    /// Tokens used.
    pub usage: Usage,
    /// Dollars spent, when the model's price is known.
    pub cost: Option<Cost>,
    /// Ties the turn to its logs and trace.
    pub trace_id: String,
}

/// The agent: sessions, turns and tools over the ports.
#[derive(Clone)]
pub struct Agent {
    store: Arc<dyn SessionStore>,
    model: Arc<dyn Model>,
    tools: Arc<dyn ToolInvoker>,
    settings: AgentSettings,
}

impl Agent {
    /// An agent over these ports.
    pub fn new(
        store: Arc<dyn SessionStore>,
        model: Arc<dyn Model>,
        tools: Arc<dyn ToolInvoker>,
        settings: AgentSettings,
    ) -> Self {
        Self {
            store,
            model,
            tools,
            settings,
        }
    }

    /// Creates a session for `user_id` with a fresh id.
    pub async fn create_session(&self, user_id: &str) -> Result<SessionHeader, AgentError> {
        let session_id = uuid::Uuid::new_v4().to_string();
        Ok(self
            .store
            .create_session(user_id, &session_id, Utc::now())
            .await?)
    }

    /// Runs one turn and stores it.
    pub async fn send_message(&self, request: TurnRequest<'_>) -> Result<TurnResult, AgentError> {
        let request_hash = fingerprint(request.session_id, request.message);
        if let Some(key) = request.idempotency_key {
            if let Some(replay) = self.replay(&request, key, &request_hash).await? {
                return Ok(replay);
            }
        }

        let window = self
            .store
            .load_window(
                request.user_id,
                request.session_id,
                self.settings.history_messages,
            )
            .await?;
        let tools = self.tools.specs().await?;
        let started_at = Utc::now();
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let turn = window.last_turn + 1;

        let mut state = TurnState::start(
            self.model_request(
                window.messages.into_iter().map(|m| m.message).collect(),
                tools,
            ),
            Message::user_text(request.message),
            self.limits(request.time_left),
            self.settings.pricing,
        );
        let context = TurnContext {
            user_id: request.user_id.to_owned(),
            session_id: request.session_id.to_owned(),
            trace_id: trace_id.clone(),
            tool_timeout: self.settings.tool_timeout,
        };
        let clock = std::time::Instant::now();
        drive_turn(
            &mut state,
            self.model.as_ref(),
            self.tools.as_ref(),
            &context,
        )
        .await?;
        let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);

        let stop_reason = state
            .stop_reason()
            .unwrap_or(crate::domain::turn::StopReason::EndTurn);
        let result = TurnResult {
            session_id: request.session_id.to_owned(),
            turn,
            answer: state.answer(),
            stop_reason: stop_reason.as_str().to_owned(),
            steps: state.steps(),
            usage: state.usage(),
            cost: state.cost(),
            trace_id: trace_id.clone(),
        };
        let commit = TurnCommit {
            expected_version: window.version,
            turn,
            messages: state.turn_messages().to_vec(),
            usage: state.usage(),
            cost_usd: state.cost().map_or(0.0, |cost| cost.total_usd),
            trace: TurnTrace {
                turn,
                trace_id,
                started_at: started_at.to_rfc3339(),
                duration_ms,
                stop_reason,
                usage: state.usage(),
                cost: state.cost(),
                steps: state.trace().to_vec(),
            },
            title: (window.version == 0).then(|| title_of(request.message)),
            idempotency: request.idempotency_key.map(|key| IdempotencyRecord {
                key: key.to_owned(),
                request_hash: request_hash.clone(),
                session_id: request.session_id.to_owned(),
                response: serde_json::to_value(&result).unwrap_or(Value::Null),
            }),
            now: Utc::now(),
        };
        match self
            .store
            .append_turn(request.user_id, request.session_id, &commit)
            .await
        {
            Ok(_) => Ok(result),
            Err(StoreError::Conflict { .. }) => {
                // A retry that raced its original: answer with the original's stored response.
                if let Some(key) = request.idempotency_key {
                    if let Some(replay) = self.replay(&request, key, &request_hash).await? {
                        return Ok(replay);
                    }
                }
                Err(AgentError::Conflict)
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn replay(
        &self,
        request: &TurnRequest<'_>,
        key: &str,
        request_hash: &str,
    ) -> Result<Option<TurnResult>, AgentError> {
        let Some(record) = self.store.get_idempotency(request.user_id, key).await? else {
            return Ok(None);
        };
        if record.request_hash != request_hash || record.session_id != request.session_id {
            return Err(AgentError::IdempotencyKeyReused);
        }
        Ok(serde_json::from_value(record.response).ok())
    }

    fn model_request(&self, history: Vec<Message>, tools: Vec<ToolSpec>) -> ModelRequest {
        ModelRequest {
            system: self.settings.system_prompt.clone(),
            messages: history,
            tools,
            inference: self.settings.inference.clone(),
            guardrail: self.settings.guardrail.clone(),
        }
    }

    fn limits(&self, time_left: Option<Duration>) -> TurnLimits {
        TurnLimits {
            max_steps: self.settings.max_steps,
            max_wall_time: time_left.map_or(self.settings.max_wall_time, |left| {
                left.min(self.settings.max_wall_time)
            }),
        }
    }

    /// The caller's sessions, most recent first.
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionHeader>, AgentError> {
        Ok(self.store.list_sessions(user_id).await?)
    }

    /// A session's header and messages.
    pub async fn get_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<(SessionHeader, Vec<StoredMessage>), AgentError> {
        Ok(self.store.get_session(user_id, session_id).await?)
    }

    /// Every turn's trace of a session.
    pub async fn get_traces(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<Vec<TurnTrace>, AgentError> {
        Ok(self.store.get_traces(user_id, session_id).await?)
    }

    /// Deletes a session and its messages.
    pub async fn delete_session(&self, user_id: &str, session_id: &str) -> Result<(), AgentError> {
        Ok(self.store.delete_session(user_id, session_id).await?)
    }

    /// The tools the agent can use.
    pub async fn tool_specs(&self) -> Result<Vec<ToolSpec>, AgentError> {
        Ok(self.tools.specs().await?)
    }
}

/// A session title: the first line of the first message, at most 80 characters.
fn title_of(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default().trim();
    let mut title: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        title.push('…');
    }
    title
}

/// A stable fingerprint of a turn request (FNV-1a, 64 bits), to detect a reused idempotency key.
fn fingerprint(session_id: &str, message: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in session_id.bytes().chain([0u8]).chain(message.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
