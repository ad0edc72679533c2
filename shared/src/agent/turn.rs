//! One turn, as named steps: [`Agent::send_message`] reads top to bottom.
//!
//! 1. `claim`: with an `Idempotency-Key`, claim it (one conditional write): a completed request
//!    is replayed, one still running is `InFlight`, a key used for another body is refused.
//! 2. `prepare`: load the window and list the tools, concurrently; choose the history that
//!    fits the context budget; start the turn's state.
//! 3. `drive`: run the loop through the ports until it is done.
//! 4. `settle`: a model failure after some steps ends the turn with what was done (stop reason
//!    `model_error`), so tokens already billed are stored; a failure before any step stores
//!    nothing.
//! 5. `commit`: store everything in one conditional write, fitted to the store's limits; a
//!    turn that lost a race stores nothing.
//!
//! A turn that fails in any step gives its idempotency claim back, so a retry can run at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::Instrument;

use super::{
    Agent, AgentError, Attached, BudgetScope, RoleModels, TurnFailure, TurnRequest, TurnResult,
};
use crate::{
    domain::{
        context::{self, History},
        ledger::Ledger,
        message::Message,
        model::ModelRequest,
        trace::{TurnTrace, MAX_TRACE_BYTES},
        truncate::{fit_turn, shrink_text},
        turn::{StopReason, TurnCosts, TurnLimits, TurnState},
    },
    driver::{drive_turn, TurnContext},
    models::ModelRole,
    ports::{
        ClaimOutcome, IdempotencyClaim, IdempotencyCompletion, IdempotencyRecord, ModelError,
        SessionWindow, StoreError, TurnCommit, UserUsage,
    },
};

/// Time a claim outlives the turn's own time limit, for the commit and clock skew.
const CLAIM_GRACE: Duration = Duration::from_secs(10);

/// Longest answer kept in an idempotency record, so the record fits in one item.
const MAX_REPLAY_ANSWER_BYTES: usize = 256 * 1024;

/// Longest `Retry-After` given to a retry that arrives while its original runs.
const MAX_IN_FLIGHT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// A turn that has been prepared: its state and what it loaded.
struct Prepared<'m> {
    models: &'m RoleModels,
    state: TurnState,
    window: SessionWindow,
    /// The user's counters, read when budgets or a rate limit are configured.
    usage: Option<UserUsage>,
    trace_id: String,
    started_at: DateTime<Utc>,
    /// What recalling long-term memory cost (the message's embedding).
    recall_cost: Ledger,
}

impl Agent {
    /// Runs one turn and stores it.
    pub async fn send_message(&self, request: TurnRequest<'_>) -> Result<TurnResult, AgentError> {
        // An unknown role is refused before any I/O.
        let models = self
            .models
            .get(request.role)
            .ok_or(AgentError::RoleNotConfigured(request.role))?;
        let limits = self.limits(request.time_left);
        let claim = match self.claim(&request, limits).await? {
            Claimed::Replay(result) => return Ok(*result),
            Claimed::Held(claim) => claim,
        };
        let outcome = self.run(&request, models, limits, claim.as_ref()).await;
        if let (Err(_), Some(claim)) = (&outcome, &claim) {
            self.release(&request, claim).await;
        }
        outcome
    }

    /// Steps 2 to 5, once the key (if any) is held.
    async fn run(
        &self,
        request: &TurnRequest<'_>,
        models: &RoleModels,
        limits: TurnLimits,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<TurnResult, AgentError> {
        let mut prepared = self.prepare(request, models, limits).await?;
        if let Some(sink) = request.sink {
            sink.started();
        }
        // Every line the loop logs names the session and the turn.
        let span = tracing::info_span!(
            "turn",
            session_id = request.session_id,
            turn = prepared.window.last_turn + 1,
            trace_id = %prepared.trace_id,
        );
        let failure = self.drive(request, &mut prepared).instrument(span).await?;
        let ledger = self.ledger_of(request, &prepared);
        let mut result = result_of(request, &prepared, failure, ledger);
        let trace = trace_of(request, &prepared, &result);
        match self
            .commit(request, &prepared, &result, trace.clone(), claim)
            .await
        {
            Ok(()) => {
                result.trace = Attached(Some(std::sync::Arc::new(trace)));
                Ok(result)
            }
            Err(StoreError::Conflict { .. }) => self.conflict(request).await,
            Err(other) => Err(other.into()),
        }
    }

    /// Step 1: claims the idempotency key, or answers from what holds it.
    async fn claim(
        &self,
        request: &TurnRequest<'_>,
        limits: TurnLimits,
    ) -> Result<Claimed, AgentError> {
        let Some(key) = request.idempotency_key else {
            return Ok(Claimed::Held(None));
        };
        let now = Utc::now();
        let claim = IdempotencyClaim {
            key: key.to_owned(),
            request_hash: fingerprint(request),
            token: uuid::Uuid::new_v4().simple().to_string(),
            lease_until: now + to_chrono(limits.max_wall_time + CLAIM_GRACE),
            now,
        };
        let outcome = self
            .store
            .claim_idempotency(request.user_id, request.session_id, &claim)
            .await?;
        match outcome {
            ClaimOutcome::Claimed => Ok(Claimed::Held(Some(claim))),
            ClaimOutcome::Completed(record) => {
                replay(&record, &claim.request_hash).map(|result| Claimed::Replay(Box::new(result)))
            }
            ClaimOutcome::InFlight {
                request_hash,
                lease_until,
            } => {
                if request_hash != claim.request_hash {
                    return Err(AgentError::IdempotencyKeyReused);
                }
                let left = (lease_until - now).to_std().unwrap_or_default();
                Err(AgentError::InFlight {
                    retry_after: left.clamp(Duration::from_secs(1), MAX_IN_FLIGHT_RETRY_AFTER),
                })
            }
        }
    }

    /// Step 2: loads the window and the tools concurrently, chooses the history, starts the state.
    async fn prepare<'m>(
        &self,
        request: &TurnRequest<'_>,
        models: &'m RoleModels,
        limits: TurnLimits,
    ) -> Result<Prepared<'m>, AgentError> {
        let budgets = self.settings.budgets;
        let counts_usage = budgets.counts_usage();
        // The user's counters are read beside the window, not after it: no extra round trip.
        // So is long-term memory: one Query of the user's partition and the message's
        // embedding, at the same time as the window.
        let (window, tools, usage, recall) = tokio::join!(
            self.store.load_window(
                request.user_id,
                request.session_id,
                self.settings.history_messages,
            ),
            self.tools.specs(),
            async {
                if counts_usage {
                    Some(self.store.user_usage(request.user_id, Utc::now()).await)
                } else {
                    None
                }
            },
            async {
                match &self.recaller {
                    Some(recaller) => Some(
                        recaller
                            .recall(request.user_id, request.message, Utc::now())
                            .await,
                    ),
                    None => None,
                }
            },
        );
        let mut window = window?;
        let recall = recall.unwrap_or_default();
        if let Some(why) = &recall.degraded {
            tracing::warn!(reason = %why, "turn goes on without remembered context");
        }
        if !recall.chosen.is_empty() {
            tracing::debug!(
                remembered = recall.chosen.len(),
                of = recall.records,
                "remembered context added"
            );
        }
        // The remembered context follows the configured prompt, so the prompt cache keeps the
        // configured part's prefix (docs/memory.md).
        let system = match (self.settings.system_prompt.clone(), recall.block) {
            (Some(prompt), Some(block)) => Some(format!("{prompt}\n\n{block}")),
            (None, Some(block)) => Some(block),
            (prompt, None) => prompt,
        };
        let usage = usage.transpose()?;
        let max_cost_usd = self.check_budgets(&window, usage.as_ref())?;
        let mut tools = tools?;
        // One order, whatever order the sources listed them in: the prompt cache's prefix
        // (tools first) then repeats from call to call.
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        let user_message = Message::user_text(request.message);
        let budget = models.context;
        let room = budget
            .input_tokens()
            .saturating_sub(context::overhead_tokens(system.as_deref(), &tools))
            .saturating_sub(context::message_tokens(&user_message));
        let stored = std::mem::take(&mut window.messages);
        let history: History = context::select_history(
            stored.into_iter().map(|stored| stored.message).collect(),
            &budget,
            room,
        );
        if history.dropped_turns > 0 {
            tracing::debug!(
                dropped_turns = history.dropped_turns,
                history_tokens = history.tokens,
                "history shortened to fit the context budget"
            );
        }
        let model_request = ModelRequest {
            system,
            messages: history.messages,
            tools,
            inference: self.settings.inference.clone(),
            guardrail: self.settings.guardrail.clone(),
            tool_choice: self.settings.tool_choice.clone(),
            additional_fields: models.additional_fields.clone(),
            service_tier: models.service_tier,
            prompt_caching: self.settings.prompt_caching,
        };
        let limits = TurnLimits {
            max_cost_usd,
            ..limits
        };
        Ok(Prepared {
            models,
            state: TurnState::start(model_request, user_message, limits, budget),
            window,
            usage,
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            // The wall-clock time of the request's arrival, where the turn's clock (and every
            // step's `start_ms`) starts.
            started_at: Utc::now() - to_chrono(request.arrived.elapsed()),
            recall_cost: recall.ledger,
        })
    }

    /// Steps 3 and 4: drives the loop; a model failure after some steps becomes the turn's end
    /// (returned so the answer can say what failed), one before any step fails the turn.
    async fn drive(
        &self,
        request: &TurnRequest<'_>,
        prepared: &mut Prepared<'_>,
    ) -> Result<Option<TurnFailure>, AgentError> {
        let context = TurnContext {
            user_id: request.user_id.to_owned(),
            session_id: request.session_id.to_owned(),
            trace_id: prepared.trace_id.clone(),
            tool_timeout: self.settings.tool_timeout,
            started: tokio::time::Instant::from_std(request.arrived),
            retry: self.settings.retry,
            cost_model: self.settings.cost_model.clone(),
        };
        let state = &mut prepared.state;
        let chain = &prepared.models.chain;
        let outcome = drive_turn(state, chain, self.tools.as_ref(), &context, request.sink).await;
        match outcome {
            Ok(()) if state.steps() == 0 && state.stop_reason() == Some(StopReason::MaxContext) => {
                Err(AgentError::ContextTooLong)
            }
            Ok(()) => Ok(None),
            Err(ModelError::ContextOverflow(_)) if state.steps() == 0 => {
                Err(AgentError::ContextTooLong)
            }
            Err(error) if state.steps() == 0 => Err(AgentError::Model(error)),
            Err(error) => {
                tracing::warn!(trace_id = %prepared.trace_id, steps = state.steps(), kind = error.kind(), "model failed mid-turn; storing the steps done");
                state.record_model_failure();
                Ok(Some(failure_of(&error)))
            }
        }
    }

    /// Step 5: the turn in one conditional write, fitted to the store's limits.
    async fn commit(
        &self,
        request: &TurnRequest<'_>,
        prepared: &Prepared<'_>,
        result: &TurnResult,
        trace: TurnTrace,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<(), StoreError> {
        let state = &prepared.state;
        let now = Utc::now();
        let commit = TurnCommit {
            expected_version: prepared.window.version,
            turn: result.turn,
            messages: fit_turn(state.turn_messages()),
            usage: state.usage(),
            cost_usd: result.cost.as_ref().map_or(0.0, |cost| cost.total_usd),
            count_usage: self.settings.budgets.counts_usage(),
            trace: trace.fitted(MAX_TRACE_BYTES),
            title: (prepared.window.version == 0).then(|| title_of(request.message)),
            idempotency: claim.map(|claim| IdempotencyCompletion {
                record: IdempotencyRecord {
                    key: claim.key.clone(),
                    request_hash: claim.request_hash.clone(),
                    session_id: request.session_id.to_owned(),
                    response: replay_body(result),
                    expires_at: (now + to_chrono(self.settings.idempotency_retention)).timestamp(),
                },
                token: claim.token.clone(),
            }),
            now,
        };
        self.store
            .append_turn(request.user_id, request.session_id, &commit)
            .await
    }

    /// A turn that lost the race to commit: the winner's answer when it was this request's own
    /// retry, otherwise a conflict.
    async fn conflict(&self, request: &TurnRequest<'_>) -> Result<TurnResult, AgentError> {
        let Some(key) = request.idempotency_key else {
            return Err(AgentError::Conflict);
        };
        let record = self
            .store
            .get_idempotency(request.user_id, request.session_id, key)
            .await;
        match record {
            Ok(Some(record)) => replay(&record, &fingerprint(request)),
            _ => Err(AgentError::Conflict),
        }
    }

    /// Gives the idempotency claim back after a failed turn; a failure to do so only delays a
    /// retry until the claim lapses.
    async fn release(&self, request: &TurnRequest<'_>, claim: &IdempotencyClaim) {
        let released = self
            .store
            .release_idempotency(
                request.user_id,
                request.session_id,
                &claim.key,
                &claim.token,
            )
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, "could not release the idempotency claim; it lapses by itself");
        }
    }

    /// Refuses a turn over a budget or the rate limit; otherwise the dollars it may spend.
    fn check_budgets(
        &self,
        window: &SessionWindow,
        usage: Option<&UserUsage>,
    ) -> Result<Option<f64>, AgentError> {
        let budgets = self.settings.budgets;
        if let (Some(limit), Some(usage)) = (budgets.rate_per_minute, usage) {
            if usage.minute_turns >= limit {
                let into_minute = Utc::now().timestamp().rem_euclid(60);
                return Err(AgentError::RateLimited {
                    limit,
                    retry_after: Duration::from_secs((60 - into_minute).max(1) as u64),
                });
            }
        }
        let mut left: Option<f64> = None;
        let mut check = |scope, limit: Option<f64>, spent: f64| match limit {
            Some(limit_usd) if spent >= limit_usd => Err(AgentError::BudgetExceeded {
                scope,
                limit_usd,
                spent_usd: spent,
            }),
            Some(limit_usd) => {
                let remaining = limit_usd - spent;
                left = Some(left.map_or(remaining, |l: f64| l.min(remaining)));
                Ok(())
            }
            None => Ok(()),
        };
        if let Some(usage) = usage {
            check(
                BudgetScope::UserMonthly,
                budgets.user_monthly_usd,
                usage.month_cost_usd,
            )?;
        }
        check(BudgetScope::Session, budgets.session_usd, window.cost_usd)?;
        Ok(left)
    }

    /// The turn's whole cost: its steps, the handler's compute so far, and the store's units
    /// (the reads as DynamoDB reported them, the commit's writes from the items' sizes).
    fn ledger_of(&self, request: &TurnRequest<'_>, prepared: &Prepared<'_>) -> Ledger {
        let state = &prepared.state;
        let mut ledger = state.whole_cost(
            &self.settings.cost_model,
            &TurnCosts {
                duration_ms: u64::try_from(request.arrived.elapsed().as_millis())
                    .unwrap_or(u64::MAX),
                read_units: prepared.window.read_units
                    + prepared
                        .usage
                        .as_ref()
                        .map_or(0.0, |usage| usage.read_units),
                counters: self.settings.budgets.counts_usage(),
                replay_bytes: request
                    .idempotency_key
                    .map(|_| state.answer().len().min(MAX_REPLAY_ANSWER_BYTES)),
            },
        );
        ledger.merge(&prepared.recall_cost);
        ledger
    }

    /// The caps of a turn: the configured ones, and no more wall time than the invocation has.
    fn limits(&self, time_left: Option<Duration>) -> TurnLimits {
        TurnLimits {
            max_cost_usd: None,
            max_turn_tokens: self.settings.max_turn_tokens,
            max_steps: self.settings.max_steps,
            max_wall_time: time_left.map_or(self.settings.max_wall_time, |left| {
                left.min(self.settings.max_wall_time)
            }),
        }
    }
}

/// What claiming found: a replayable answer, or the claim (none without a key).
enum Claimed {
    Replay(Box<TurnResult>),
    Held(Option<IdempotencyClaim>),
}

/// The answer of a finished turn.
fn result_of(
    request: &TurnRequest<'_>,
    prepared: &Prepared<'_>,
    error: Option<TurnFailure>,
    cost: Ledger,
) -> TurnResult {
    let state = &prepared.state;
    TurnResult {
        session_id: request.session_id.to_owned(),
        turn: prepared.window.last_turn + 1,
        answer: state.answer(),
        stop_reason: state
            .stop_reason()
            .unwrap_or(StopReason::EndTurn)
            .as_str()
            .to_owned(),
        steps: state.steps(),
        usage: state.usage(),
        cost: Some(cost),
        models: state.step_models().to_vec(),
        trace_id: prepared.trace_id.clone(),
        error,
        trace: Attached::default(),
    }
}

/// The trace of a finished turn, whole.
fn trace_of(request: &TurnRequest<'_>, prepared: &Prepared<'_>, result: &TurnResult) -> TurnTrace {
    let state = &prepared.state;
    TurnTrace {
        turn: result.turn,
        trace_id: prepared.trace_id.clone(),
        started_at: prepared.started_at.to_rfc3339(),
        duration_ms: u64::try_from(request.arrived.elapsed().as_millis()).unwrap_or(u64::MAX),
        stop_reason: state.stop_reason().unwrap_or(StopReason::EndTurn),
        usage: state.usage(),
        cost: result.cost.clone(),
        groundedness: state.groundedness(),
        steps: state.trace().to_vec(),
        omitted_tool_steps: 0,
    }
}

/// What the answer of a turn ended by a model failure says about it.
fn failure_of(error: &ModelError) -> TurnFailure {
    let detail = if error.is_transient() {
        "the model failed part-way; the steps done so far (and their cost) are stored. Send a \
         new message (for example \"continue\") to go on."
    } else {
        "the model refused the request part-way; the steps done so far (and their cost) are \
         stored. Retrying the same request will fail the same way."
    };
    TurnFailure {
        kind: error.kind().to_owned(),
        detail: detail.to_owned(),
    }
}

/// The stored answer of a record, if the request matches it.
fn replay(record: &IdempotencyRecord, request_hash: &str) -> Result<TurnResult, AgentError> {
    if record.request_hash != request_hash {
        return Err(AgentError::IdempotencyKeyReused);
    }
    serde_json::from_value(record.response.clone()).map_err(|_| {
        AgentError::Store(StoreError::Rejected(
            "the stored idempotency response could not be read".into(),
        ))
    })
}

/// The answer as stored for replay, its text cut so the record fits in one item.
fn replay_body(result: &TurnResult) -> Value {
    let mut result = result.clone();
    result.answer = shrink_text(&result.answer, MAX_REPLAY_ANSWER_BYTES);
    serde_json::to_value(&result).unwrap_or(Value::Null)
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
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

/// A stable fingerprint of a turn request (FNV-1a, 64 bits), to detect a reused idempotency
/// key: the session, the message and (when not the default) the model role.
fn fingerprint(request: &TurnRequest<'_>) -> String {
    let role = match request.role {
        ModelRole::Reasoning => "",
        other => other.as_str(),
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = request
        .session_id
        .bytes()
        .chain([0u8])
        .chain(request.message.bytes());
    for byte in bytes.chain(role.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
