//! The agent as the HTTP API uses it: sessions and turns, composed from the ports.
//!
//! A turn ([`Agent::send_message`], in `turn.rs`) is a few named steps: claim the idempotency
//! key, load the window and the tools, choose the history, drive the loop, settle a model
//! failure, commit. The reading operations here are paged so that no answer outgrows Lambda's
//! response limit.

mod turn;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    domain::{
        context::ContextBudget,
        ledger::{CostModel, Ledger},
        memory::MemoryRecord,
        model::{GuardrailConfig, InferenceConfig, ServiceTier, ToolChoice, ToolSpec, Usage},
        trace::TurnTrace,
        truncate::content_size,
    },
    learning::Recaller,
    models::{ModelChain, ModelRole, RetryPolicy},
    ports::{
        LongTermMemory, Model, ModelError, Page, PageRequest, SessionHeader, SessionStore,
        StoreError, StoredMessage, ToolInvoker, ToolListError,
    },
};

/// Largest `MAX_STEPS`: a capped turn stores at most `2 * steps + 2` messages, and with the
/// header, the marker, the trace and the idempotency record its one transaction must stay
/// within DynamoDB's 100 items (`2 * 40 + 6 = 86`, room kept for what later features add).
pub const MAX_STEPS_LIMIT: u32 = 40;

/// Most bytes of message content or traces one page of a read carries: well under Lambda's
/// 6 MB response limit once encoded as JSON (a stored message is at most 300 KB).
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// How the agent behaves; read once from configuration.
#[derive(Clone, Debug)]
pub struct AgentSettings {
    /// The system prompt.
    pub system_prompt: Option<String>,
    /// Most model calls per turn (at most [`MAX_STEPS_LIMIT`]).
    pub max_steps: u32,
    /// Most wall time per turn, before the invocation's own deadline is considered.
    pub max_wall_time: Duration,
    /// Most recent messages loaded for a turn; the context budget chooses among them.
    pub history_messages: usize,
    /// The longest one tool call may take.
    pub tool_timeout: Duration,
    /// Sampling settings.
    pub inference: InferenceConfig,
    /// Bedrock guardrail, when configured.
    pub guardrail: Option<GuardrailConfig>,
    /// The reasoning model's context window and how it is shared out (the budget of a role
    /// built by [`Agent::new`]; [`RoleModels`] carry their own).
    pub context: ContextBudget,
    /// How failed model calls are retried.
    pub retry: RetryPolicy,
    /// Most tokens (input plus output) of all the model calls of one turn.
    pub max_turn_tokens: Option<u64>,
    /// Whether requests carry prompt-cache points (where the model supports them).
    pub prompt_caching: bool,
    /// The tool choice of a turn's first model call.
    pub tool_choice: Option<ToolChoice>,
    /// How long a completed request's answer is replayed for its idempotency key.
    pub idempotency_retention: Duration,
    /// Prices and function sizes, for the ledger.
    pub cost_model: Arc<CostModel>,
    /// Dollar budgets and the turn rate limit.
    pub budgets: Budgets,
}

/// Dollar caps and the turn rate of each user; `None` is no cap.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Budgets {
    /// Most dollars a user's turns may cost in a calendar month (UTC).
    pub user_monthly_usd: Option<f64>,
    /// Most dollars one session's turns may cost.
    pub session_usd: Option<f64>,
    /// Most turns a user may start in a minute.
    pub rate_per_minute: Option<u32>,
}

impl Budgets {
    /// True when the user's counters must be read before a turn and kept with it.
    pub fn counts_usage(&self) -> bool {
        self.user_monthly_usd.is_some() || self.rate_per_minute.is_some()
    }
}

/// Which dollar budget a turn is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetScope {
    /// The user's monthly budget.
    UserMonthly,
    /// The session's budget.
    Session,
}

impl Default for AgentSettings {
    /// The documented defaults (README, "Configuration"), for a model with a 200 000-token
    /// window.
    fn default() -> Self {
        Self {
            system_prompt: None,
            max_steps: 8,
            max_wall_time: Duration::from_secs(120),
            history_messages: 40,
            tool_timeout: Duration::from_secs(10),
            inference: InferenceConfig {
                max_tokens: Some(1024),
                ..InferenceConfig::default()
            },
            guardrail: None,
            retry: RetryPolicy::default(),
            max_turn_tokens: None,
            prompt_caching: true,
            tool_choice: None,
            context: ContextBudget {
                context_tokens: 200_000,
                output_tokens: 1024,
                tool_result_tokens: 8_000,
                step_tool_result_tokens: 24_000,
            },
            idempotency_retention: Duration::from_secs(24 * 3600),
            cost_model: Arc::new(CostModel::default()),
            budgets: Budgets::default(),
        }
    }
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
    /// A request with this idempotency key is still running.
    #[error("a request with this Idempotency-Key is still running; retry after it ends")]
    InFlight {
        /// When to ask again.
        retry_after: Duration,
    },
    /// The message cannot be answered within the model's context window, even with no
    /// history; nothing was stored.
    #[error("the message is too long for the model's context window")]
    ContextTooLong,
    /// The turn asked for a model role this deployment does not configure.
    #[error("the model role '{}' is not configured", .0.as_str())]
    RoleNotConfigured(ModelRole),
    /// A dollar budget is spent; the turn was refused before any model call.
    #[error("the {} budget of ${limit_usd} is spent (${spent_usd:.6} so far)", match .scope { BudgetScope::UserMonthly => "monthly", BudgetScope::Session => "session" })]
    BudgetExceeded {
        /// Which budget.
        scope: BudgetScope,
        /// The cap.
        limit_usd: f64,
        /// What was spent.
        spent_usd: f64,
    },
    /// The user started their turns-per-minute allowance already.
    #[error("at most {limit} turns a minute; retry after the minute ends")]
    RateLimited {
        /// The cap.
        limit: u32,
        /// When to ask again.
        retry_after: Duration,
    },
    /// The model failed before any step was done; nothing was stored.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The tools could not be listed.
    #[error(transparent)]
    Tools(#[from] ToolListError),
    /// The store failed.
    #[error("storage failed")]
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
#[derive(Clone)]
pub struct TurnRequest<'a> {
    /// The caller.
    pub user_id: &'a str,
    /// The session.
    pub session_id: &'a str,
    /// What the user said.
    pub message: &'a str,
    /// The client's idempotency key, if it sent one.
    pub idempotency_key: Option<&'a str>,
    /// The model role to answer with.
    pub role: ModelRole,
    /// When the request arrived: the turn's clock starts here.
    pub arrived: std::time::Instant,
    /// Time this invocation had left for the turn when the request arrived (its deadline less
    /// a margin), if known.
    pub time_left: Option<Duration>,
    /// Where the turn is streamed to, if it is: told when the turn is under way, then given
    /// the answer's text and the tool calls as they happen.
    pub sink: Option<&'a dyn crate::ports::TurnSink>,
}

impl std::fmt::Debug for TurnRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnRequest")
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .field("message_bytes", &self.message.len())
            .field("idempotency_key", &self.idempotency_key.is_some())
            .field("role", &self.role)
            .field("time_left", &self.time_left)
            .field("streamed", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a stored turn ended early on a model failure (stop reason `model_error`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnFailure {
    /// The kind of failure (`throttled`, `unavailable`, `timeout`, ...).
    pub kind: String,
    /// What happened and what to do.
    pub detail: String,
}

/// What a turn answers, as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// What the turn cost, itemized (`None` only in answers stored before costs were kept).
    pub cost: Option<Ledger>,
    /// The model that answered each step, in order (after retries and fallbacks).
    #[serde(default)]
    pub models: Vec<String>,
    /// Ties the turn to its logs and trace.
    pub trace_id: String,
    /// Set when the model failed after some steps (stop reason `model_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TurnFailure>,
    /// The turn's whole trace (before it was fitted to the store), for exporters such as
    /// `shared::otel`; not part of the answer, so never serialized, and absent from a replayed
    /// answer (its turn ran before).
    #[serde(skip)]
    pub trace: Attached<TurnTrace>,
}

/// A value carried along with an answer but not part of it: never serialized, and ignored
/// when answers are compared.
pub struct Attached<T>(pub Option<Arc<T>>);

impl<T> Clone for Attached<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for Attached<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T> Attached<T> {
    /// The value, if attached.
    pub fn get(&self) -> Option<&T> {
        self.0.as_deref()
    }
}

impl<T> PartialEq for Attached<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> std::fmt::Debug for Attached<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Attached(..)"
        } else {
            "Attached(None)"
        })
    }
}

/// The models of one role: its chain, its context budget and what its requests carry.
#[derive(Clone, Debug)]
pub struct RoleModels {
    /// The model and its fallbacks.
    pub chain: ModelChain,
    /// The context budget (of the smallest window in the chain).
    pub context: ContextBudget,
    /// Provider request fields passed through (for example Claude's `thinking`).
    pub additional_fields: Option<Value>,
    /// The service tier to ask for.
    pub service_tier: Option<ServiceTier>,
}

impl RoleModels {
    /// A role of this chain and budget, with nothing else set.
    pub fn new(chain: ModelChain, context: ContextBudget) -> Self {
        Self {
            chain,
            context,
            additional_fields: None,
            service_tier: None,
        }
    }
}

/// The configured model roles.
#[derive(Clone, Debug, Default)]
pub struct Models {
    roles: BTreeMap<ModelRole, RoleModels>,
}

impl Models {
    /// These models for `role` (replacing what it had).
    pub fn with(mut self, role: ModelRole, models: RoleModels) -> Self {
        self.roles.insert(role, models);
        self
    }

    /// The models of a role, if configured.
    pub fn get(&self, role: ModelRole) -> Option<&RoleModels> {
        self.roles.get(&role)
    }
}

/// The agent: sessions, turns and tools over the ports.
#[derive(Clone)]
pub struct Agent {
    store: Arc<dyn SessionStore>,
    models: Models,
    tools: Arc<dyn ToolInvoker>,
    settings: AgentSettings,
    memory: Option<Arc<dyn LongTermMemory>>,
    recaller: Option<Recaller>,
}

impl Agent {
    /// An agent with one model, for the `reasoning` role, priced from the built-in table and
    /// budgeted by `settings.context`.
    pub fn new(
        store: Arc<dyn SessionStore>,
        model: Arc<dyn Model>,
        tools: Arc<dyn ToolInvoker>,
        settings: AgentSettings,
    ) -> Self {
        let models = Models::default().with(
            ModelRole::Reasoning,
            RoleModels::new(ModelChain::single(model), settings.context),
        );
        Self::with_models(store, models, tools, settings)
    }

    /// An agent with these model roles.
    pub fn with_models(
        store: Arc<dyn SessionStore>,
        models: Models,
        tools: Arc<dyn ToolInvoker>,
        settings: AgentSettings,
    ) -> Self {
        Self {
            store,
            models,
            tools,
            settings,
            memory: None,
            recaller: None,
        }
    }

    /// The agent with long-term memory: the user's records are listed and erased through
    /// `memory`, and with a `recaller` the relevant ones join each turn's system prompt.
    pub fn with_memory(
        mut self,
        memory: Arc<dyn LongTermMemory>,
        recaller: Option<Recaller>,
    ) -> Self {
        self.memory = Some(memory);
        self.recaller = recaller;
        self
    }

    fn long_term(&self) -> Result<&dyn LongTermMemory, AgentError> {
        self.memory.as_deref().ok_or_else(|| {
            AgentError::Store(StoreError::Rejected(
                "long-term memory is not configured".into(),
            ))
        })
    }

    /// What is remembered about `user_id`, most recently updated first.
    pub async fn memories(&self, user_id: &str) -> Result<Vec<MemoryRecord>, AgentError> {
        let mut records = self.long_term()?.memory(user_id).await?.records;
        records.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
        Ok(records)
    }

    /// Erases one of the user's records (`NotFound` when they have none with that id).
    pub async fn forget(&self, user_id: &str, id: &str) -> Result<(), AgentError> {
        Ok(self.long_term()?.forget(user_id, id, Utc::now()).await?)
    }

    /// Erases everything remembered about the user; returns how many records there were.
    pub async fn forget_all(&self, user_id: &str) -> Result<usize, AgentError> {
        Ok(self.long_term()?.forget_all(user_id, Utc::now()).await?)
    }

    /// Deletes a session and erases what was learned only from it; returns how many records
    /// were erased.
    pub async fn delete_session_and_forget(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<usize, AgentError> {
        let memory = self.long_term()?;
        self.store.delete_session(user_id, session_id).await?;
        Ok(memory
            .forget_session(user_id, session_id, Utc::now())
            .await?)
    }

    /// Creates a session for `user_id` with a fresh id.
    pub async fn create_session(&self, user_id: &str) -> Result<SessionHeader, AgentError> {
        let session_id = uuid::Uuid::new_v4().to_string();
        Ok(self
            .store
            .create_session(user_id, &session_id, Utc::now())
            .await?)
    }

    /// The caller's sessions, most recent first.
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionHeader>, AgentError> {
        Ok(self.store.list_sessions(user_id).await?)
    }

    /// A session's header and one page of its messages, at most [`MAX_PAGE_BYTES`] of content.
    pub async fn get_session(
        &self,
        user_id: &str,
        session_id: &str,
        page: PageRequest,
    ) -> Result<(SessionHeader, Page<StoredMessage>), AgentError> {
        let (header, page) = self.store.get_session(user_id, session_id, page).await?;
        let page = cap_page(page, |m| content_size(&m.message.content), |m| m.seq);
        Ok((header, page))
    }

    /// One page of a session's turn traces, at most [`MAX_PAGE_BYTES`] of them.
    pub async fn get_traces(
        &self,
        user_id: &str,
        session_id: &str,
        page: PageRequest,
    ) -> Result<Page<TurnTrace>, AgentError> {
        let page = self.store.get_traces(user_id, session_id, page).await?;
        Ok(cap_page(page, trace_size, |t| t.turn))
    }

    /// Deletes a session, its messages and its idempotency records.
    pub async fn delete_session(&self, user_id: &str, session_id: &str) -> Result<(), AgentError> {
        Ok(self.store.delete_session(user_id, session_id).await?)
    }

    /// The tools the agent can use.
    pub async fn tool_specs(&self) -> Result<Vec<ToolSpec>, AgentError> {
        Ok(self.tools.specs().await?)
    }
}

/// Serialized size of a trace.
fn trace_size(trace: &TurnTrace) -> usize {
    serde_json::to_vec(trace).map_or(usize::MAX, |bytes| bytes.len())
}

/// Keeps the first items of a page while their sizes add up to at most [`MAX_PAGE_BYTES`]
/// (always at least one), moving the page's `next` to the last item kept when some are cut.
fn cap_page<T>(
    mut page: Page<T>,
    size: impl Fn(&T) -> usize,
    position: impl Fn(&T) -> u64,
) -> Page<T> {
    let mut total = 0;
    let keep = page
        .items
        .iter()
        .position(|item| {
            total += size(item);
            total > MAX_PAGE_BYTES
        })
        .map_or(page.items.len(), |over| over.max(1));
    if keep < page.items.len() {
        page.items.truncate(keep);
        page.next = page.items.last().map(&position);
    }
    page
}
