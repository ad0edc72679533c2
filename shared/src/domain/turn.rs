//! One turn of the ReAct loop as a state machine that does no I/O.
//!
//! The state says what it needs next ([`Action`]): a model call, tool calls, or nothing (done).
//! A driver (`crate::driver`) performs the action through the ports and feeds the result back.
//! Caps (steps, wall time, the context budget) are checks on this state. The state is a plain
//! serializable value with a format version, so a turn can later be checkpointed, resumed or
//! paused for approval.
//!
//! Two views of the turn are kept: what the model is sent (tool results capped, older parts
//! elided to fit the context budget, see [`super::context`]) and what is stored (every message
//! whole; the store fits them to its item limits).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    context::{self, ContextBudget},
    ledger::{transaction_write_units, CostModel, Ledger},
    message::{ContentBlock, Message, Role, ToolCall, ToolOutput},
    model::{ModelRequest, ModelResponse, ModelStopReason, Usage},
    pricing::Pricing,
    redact,
    trace::{FailedAttempt, TraceStep},
};

/// Format version of [`TurnState`]; bump it when the serialized shape changes.
pub const TURN_STATE_VERSION: u32 = 4;

/// Fewest output tokens worth a model call under the turn's token cap.
const MIN_CALL_OUTPUT_TOKENS: u64 = 16;

/// How many times a turn shrinks its context budget after the model said the input was too
/// long (each time to three quarters) before it gives up.
const MAX_CONTEXT_RETRIES: u32 = 3;

/// Why a turn ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The step cap was reached.
    MaxSteps,
    /// The wall-time cap was reached.
    MaxWallTime,
    /// The model ran out of output tokens.
    MaxTokens,
    /// The model hit a stop sequence.
    StopSequence,
    /// A guardrail intervened.
    GuardrailIntervened,
    /// Content filtering stopped the model.
    ContentFiltered,
    /// The conversation no longer fits the model's context window, even shortened.
    MaxContext,
    /// The model failed after some steps were done; what they did is kept.
    ModelError,
    /// The turn's token cap (input plus output of all its calls) was reached.
    MaxTurnTokens,
    /// A dollar budget (the session's, or the user's for the month) was spent.
    BudgetExceeded,
}

impl StopReason {
    /// The wire name, as the API reports it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::EndTurn => "end_turn",
            Self::MaxSteps => "max_steps",
            Self::MaxWallTime => "max_wall_time",
            Self::MaxTokens => "max_tokens",
            Self::StopSequence => "stop_sequence",
            Self::GuardrailIntervened => "guardrail_intervened",
            Self::ContentFiltered => "content_filtered",
            Self::MaxContext => "max_context",
            Self::ModelError => "model_error",
            Self::MaxTurnTokens => "max_turn_tokens",
            Self::BudgetExceeded => "budget_exceeded",
        }
    }
}

/// The caps of one turn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnLimits {
    /// Most model calls in one turn.
    pub max_steps: u32,
    /// Most wall time for the turn, from its start.
    pub max_wall_time: Duration,
    /// Most tokens (input, cached or not, plus output) of all the turn's model calls.
    #[serde(default)]
    pub max_turn_tokens: Option<u64>,
    /// Most dollars the turn may spend: what is left of the session's and the user's monthly
    /// budgets when it starts. Checked before each model call.
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
}

/// What the turn needs next.
#[derive(Debug)]
pub enum Action<'a> {
    /// Call the model with this request.
    CallModel(&'a ModelRequest),
    /// Run these tools (concurrently), each within `timeout`.
    CallTools {
        /// The calls, in the model's order.
        calls: &'a [ToolCall],
        /// Time left for the tools.
        timeout: Duration,
    },
    /// The turn is over.
    Done,
}

/// The phase a turn is in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
enum Phase {
    NeedModel,
    NeedTools { calls: Vec<ToolCall> },
    Done { stop_reason: StopReason },
}

/// One tool call's result as the driver reports it.
#[derive(Clone, Debug)]
pub struct ToolRun {
    /// The call.
    pub call: ToolCall,
    /// What it returned (an error output when it failed or timed out).
    pub output: ToolOutput,
    /// How long it took.
    pub latency: Duration,
    /// What it cost (the executor's Lambda compute and what it reported using); empty for a
    /// tool that runs in the handler.
    pub cost: Ledger,
}

/// What the end of a turn adds to its steps' cost: the handler's time, the store's units.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TurnCosts {
    /// The handler's wall time for the turn.
    pub duration_ms: u64,
    /// Read units the turn's loads consumed, as the store reported them.
    pub read_units: f64,
    /// Whether the commit bumps the user's two counters.
    pub counters: bool,
    /// The stored answer's size when the commit completes an idempotency record.
    pub replay_bytes: Option<usize>,
}

/// Bytes counted per stored item beyond its content (keys, attribute names, numbers), for the
/// estimate of the commit's write units.
const ITEM_OVERHEAD_BYTES: usize = 200;

/// Who answered one model call, as the driver reports it with the response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnsweredBy {
    /// The model that answered.
    pub model_id: String,
    /// Its price, when known.
    pub pricing: Option<Pricing>,
    /// The attempts that failed before this answer.
    pub failed: Vec<FailedAttempt>,
}

/// The state of one turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnState {
    /// Format version, [`TURN_STATE_VERSION`].
    pub format_version: u32,
    request: ModelRequest,
    turn_start: usize,
    stored: Vec<Message>,
    budget: ContextBudget,
    context_retries: u32,
    /// Estimated tokens of the system prompt and tool specs, which do not change in a turn.
    overhead_tokens: u64,
    /// Estimated tokens of `request.messages`, kept up to date as messages are added, so a
    /// step that fits costs no walk over the history.
    request_tokens: u64,
    steps: u32,
    usage: Usage,
    /// What the turn's steps cost so far (model calls and tool calls).
    ledger: Ledger,
    /// The model that answered each step, in order.
    step_models: Vec<String>,
    /// The configured output cap of one call, which the token cap may lower.
    max_output_tokens: Option<u32>,
    limits: TurnLimits,
    phase: Phase,
    trace: Vec<TraceStep>,
    /// When the action under way started, in milliseconds from the turn's start (for the
    /// trace's timeline).
    #[serde(default)]
    action_started_ms: u64,
}

impl TurnState {
    /// Starts a turn: `request` holds the system prompt, tools, settings and history;
    /// `user_message` is appended as the turn's first message.
    pub fn start(
        mut request: ModelRequest,
        user_message: Message,
        limits: TurnLimits,
        budget: ContextBudget,
    ) -> Self {
        let turn_start = request.messages.len();
        request.messages.push(user_message.clone());
        let overhead_tokens = context::overhead_tokens(request.system.as_deref(), &request.tools);
        let request_tokens = context::messages_tokens(&request.messages);
        let max_output_tokens = request.inference.max_tokens;
        Self {
            overhead_tokens,
            request_tokens,
            format_version: TURN_STATE_VERSION,
            request,
            turn_start,
            stored: vec![user_message],
            budget,
            context_retries: 0,
            steps: 0,
            usage: Usage::default(),
            ledger: Ledger::default(),
            step_models: Vec::new(),
            max_output_tokens,
            limits,
            phase: Phase::NeedModel,
            trace: Vec::new(),
            action_started_ms: 0,
        }
    }

    /// What to do next, given the wall time spent since the turn started.
    ///
    /// When a cap is reached this ends the turn (keeping everything done so far) and returns
    /// [`Action::Done`].
    pub fn next_action(&mut self, elapsed: Duration) -> Action<'_> {
        let over_time = elapsed >= self.limits.max_wall_time;
        match &self.phase {
            Phase::NeedModel if self.steps >= self.limits.max_steps => {
                self.finish(StopReason::MaxSteps)
            }
            Phase::NeedModel if over_time => self.finish(StopReason::MaxWallTime),
            Phase::NeedTools { calls } if over_time => {
                let skipped = calls
                    .iter()
                    .map(|call| ToolRun {
                        call: call.clone(),
                        output: ToolOutput::error("not run: the turn reached its time limit"),
                        latency: Duration::ZERO,
                        cost: Ledger::default(),
                    })
                    .collect();
                self.record_tool_runs(skipped);
                self.finish(StopReason::MaxWallTime)
            }
            _ => {}
        }
        if matches!(self.phase, Phase::NeedModel) && !self.fit_context() {
            self.finish(StopReason::MaxContext);
        }
        if matches!(self.phase, Phase::NeedModel) && !self.fit_token_cap() {
            self.finish(StopReason::MaxTurnTokens);
        }
        if matches!(self.phase, Phase::NeedModel) && self.over_budget() {
            self.finish(StopReason::BudgetExceeded);
        }
        self.action_started_ms = millis(elapsed);
        match &self.phase {
            Phase::NeedModel => Action::CallModel(&self.request),
            Phase::NeedTools { calls } => Action::CallTools {
                calls,
                timeout: self.limits.max_wall_time.saturating_sub(elapsed),
            },
            Phase::Done { .. } => Action::Done,
        }
    }

    /// Feeds back the model's response, and which model gave it at what price.
    pub fn record_model_response(
        &mut self,
        response: ModelResponse,
        latency: Duration,
        answered_by: AnsweredBy,
    ) {
        self.steps += 1;
        self.usage.add(response.usage);
        let cost = Ledger::model_call(&answered_by.model_id, answered_by.pricing, response.usage);
        self.ledger.merge(&cost);
        self.trace.push(TraceStep::Model {
            step: self.steps,
            start_ms: Some(self.action_started_ms),
            model_id: answered_by.model_id.clone(),
            latency_ms: millis(latency),
            usage: response.usage,
            cost: Some(cost),
            stop_reason: stop_reason_name(&response.stop_reason),
            failed_attempts: answered_by.failed,
        });
        self.step_models.push(answered_by.model_id);
        // A forced tool choice is for the first step: the model must be free to answer after.
        self.request.tool_choice = None;

        let mut message = response.message;
        message.role = Role::Assistant;
        let calls = message.tool_calls();
        let wants_tools = response.stop_reason == ModelStopReason::ToolUse && !calls.is_empty();
        if !wants_tools {
            // A tool use that will not run would leave the history unanswered, which the
            // model API rejects on the next turn: keep only the rest.
            message
                .content
                .retain(|block| !matches!(block, ContentBlock::ToolUse { .. }));
        }
        if message.content.is_empty() {
            message.content.push(ContentBlock::Text {
                text: "(no answer)".to_owned(),
            });
        }
        self.push(message);

        self.phase = if wants_tools {
            Phase::NeedTools { calls }
        } else {
            Phase::Done {
                stop_reason: match response.stop_reason {
                    ModelStopReason::MaxTokens => StopReason::MaxTokens,
                    ModelStopReason::StopSequence => StopReason::StopSequence,
                    ModelStopReason::GuardrailIntervened => StopReason::GuardrailIntervened,
                    ModelStopReason::ContentFiltered => StopReason::ContentFiltered,
                    ModelStopReason::EndTurn
                    | ModelStopReason::ToolUse
                    | ModelStopReason::Other(_) => StopReason::EndTurn,
                },
            }
        };
    }

    /// Feeds back the results of the tool calls asked for by the last model response.
    pub fn record_tool_results(&mut self, runs: Vec<ToolRun>) {
        if matches!(self.phase, Phase::NeedTools { .. }) {
            self.record_tool_runs(runs);
            self.phase = Phase::NeedModel;
        }
    }

    fn record_tool_runs(&mut self, runs: Vec<ToolRun>) {
        let mut content = Vec::with_capacity(runs.len());
        for run in runs {
            let error = match run.output.status {
                super::message::ToolStatus::Error => Some(run.output_text()),
                super::message::ToolStatus::Success => None,
            };
            self.ledger.merge(&run.cost);
            let result = match run.output.status {
                super::message::ToolStatus::Success => Some(redact::text(
                    &run.output_text(),
                    redact::MAX_TRACE_RESULT_BYTES,
                )),
                super::message::ToolStatus::Error => None,
            };
            self.trace.push(TraceStep::Tool {
                step: self.steps,
                start_ms: Some(self.action_started_ms),
                name: run.call.name.clone(),
                tool_use_id: run.call.tool_use_id.clone(),
                latency_ms: millis(run.latency),
                status: if error.is_some() { "error" } else { "success" }.to_owned(),
                error,
                input: Some(redact::json(&run.call.input)),
                result,
                cost: (!run.cost.is_empty()).then(|| run.cost.clone()),
            });
            content.push(ContentBlock::ToolResult {
                tool_use_id: run.call.tool_use_id,
                status: run.output.status,
                content: run.output.content,
            });
        }
        let stored = Message {
            role: Role::User,
            content,
        };
        let mut for_model = stored.clone();
        context::cap_tool_results(&mut for_model.content, &self.budget);
        self.request_tokens += context::message_tokens(&for_model);
        self.request.messages.push(for_model);
        self.stored.push(stored);
    }

    /// Appends a message to both views of the turn.
    fn push(&mut self, message: Message) {
        self.request_tokens += context::message_tokens(&message);
        self.request.messages.push(message.clone());
        self.stored.push(message);
    }

    /// Fits the request into the context budget (shrunk after each overflow the model
    /// reported); false when it cannot be made to fit.
    fn fit_context(&mut self) -> bool {
        let mut budget = self.budget.input_tokens();
        for _ in 0..self.context_retries {
            budget = budget / 4 * 3;
        }
        let budget = budget.saturating_sub(self.overhead_tokens);
        if self.request_tokens <= budget {
            return true;
        }
        let fits = context::fit_request(&mut self.request.messages, &mut self.turn_start, budget);
        self.request_tokens = context::messages_tokens(&self.request.messages);
        fits
    }

    /// Keeps the next call within the turn's token cap: its estimated input plus an output cap
    /// lowered to what is left. False when not even a short answer fits.
    fn fit_token_cap(&mut self) -> bool {
        let Some(cap) = self.limits.max_turn_tokens else {
            return true;
        };
        let input = self.overhead_tokens + self.request_tokens;
        let left = cap.saturating_sub(self.usage.total_tokens() + input);
        if left < MIN_CALL_OUTPUT_TOKENS {
            return false;
        }
        let allowed = u32::try_from(left).unwrap_or(u32::MAX);
        self.request.inference.max_tokens = Some(
            self.max_output_tokens
                .map_or(allowed, |configured| configured.min(allowed)),
        );
        true
    }

    /// The model said the request was too long for its context window: the next call is fitted
    /// to a smaller budget. False (and the turn is not changed) when it has shrunk enough
    /// times already; the caller then treats the overflow as a failure.
    pub fn record_context_overflow(&mut self) -> bool {
        if self.context_retries >= MAX_CONTEXT_RETRIES || !matches!(self.phase, Phase::NeedModel) {
            return false;
        }
        self.context_retries += 1;
        true
    }

    /// Records a model call that failed on every model it tried, for the trace.
    pub fn record_failed_call(&mut self, failed: Vec<FailedAttempt>, latency: Duration) {
        if !failed.is_empty() {
            self.trace.push(TraceStep::ModelFailed {
                step: self.steps + 1,
                start_ms: Some(self.action_started_ms),
                latency_ms: millis(latency),
                failed_attempts: failed,
            });
        }
    }

    /// Ends the turn by its wall-time cap: no model call can be made in the time left.
    pub fn record_out_of_time(&mut self) {
        if !matches!(self.phase, Phase::Done { .. }) {
            self.finish(StopReason::MaxWallTime);
        }
    }

    /// Ends the turn because the model failed after some steps: what was done is kept, closed
    /// with an assistant message that says so, and the stop reason is
    /// [`StopReason::ModelError`].
    pub fn record_model_failure(&mut self) {
        if !matches!(self.phase, Phase::Done { .. }) {
            self.finish(StopReason::ModelError);
        }
    }

    fn finish(&mut self, stop_reason: StopReason) {
        // The history must end with the assistant so the next turn's user message alternates.
        let ends_with_user = self
            .stored
            .last()
            .is_some_and(|message| message.role == Role::User);
        if ends_with_user {
            let why = match stop_reason {
                StopReason::MaxSteps => format!(
                    "I stopped before finishing: this turn reached its limit of {} steps.",
                    self.limits.max_steps
                ),
                StopReason::MaxContext => "I stopped before finishing: this conversation no \
                    longer fits in the model's context window. Start a new session, or ask for \
                    less at a time."
                    .to_owned(),
                StopReason::ModelError => "I stopped before finishing: the model failed. What \
                    I did so far is kept; ask me to continue."
                    .to_owned(),
                StopReason::MaxTurnTokens => "I stopped before finishing: this turn reached its \
                    token budget. What I did so far is kept; ask me to continue."
                    .to_owned(),
                _ => "I stopped before finishing: this turn reached its time limit.".to_owned(),
            };
            self.push(Message::assistant_text(why));
        }
        self.phase = Phase::Done { stop_reason };
    }

    /// Why the turn ended, once it has.
    pub fn stop_reason(&self) -> Option<StopReason> {
        match self.phase {
            Phase::Done { stop_reason } => Some(stop_reason),
            _ => None,
        }
    }

    /// The messages this turn added, the user message first.
    pub fn turn_messages(&self) -> &[Message] {
        &self.stored
    }

    /// The context budget of this turn.
    pub fn budget(&self) -> &ContextBudget {
        &self.budget
    }

    /// The answer: the text of the last assistant message of this turn.
    pub fn answer(&self) -> String {
        self.turn_messages()
            .iter()
            .rev()
            .find(|message| message.role == Role::Assistant)
            .map(Message::text)
            .unwrap_or_default()
    }

    /// The caps of this turn.
    pub fn limits(&self) -> TurnLimits {
        self.limits
    }

    /// Model calls made so far.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Tokens used so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// What the steps cost so far, itemized (models whose price is unknown are named in it).
    pub fn cost(&self) -> &Ledger {
        &self.ledger
    }

    /// The whole turn's cost: its steps, the handler's compute (memory times its time, and the
    /// request), and the store's units: the loads' reads as reported, the commit's writes
    /// from its items' sizes (DynamoDB bills a transaction two units per KB of each item;
    /// the write itself cannot carry its own bill, so it is computed before it).
    pub fn whole_cost(&self, model: &CostModel, end: &TurnCosts) -> Ledger {
        let mut ledger = self.ledger.clone();
        ledger.add_lambda(
            &model.handler_function,
            model.handler_memory_mb,
            end.duration_ms,
            &model.prices,
        );
        // Sizes estimated from the text they hold (serializing the turn again here would cost
        // more than the estimate's error, a unit now and then, is worth: $0.000000625).
        let messages = self.turn_messages().iter().map(approx_message_bytes);
        let trace_bytes =
            self.trace.iter().map(approx_step_bytes).sum::<usize>() + 2 * ITEM_OVERHEAD_BYTES;
        // The header and the marker, then the counters.
        let mut items: Vec<usize> = messages.chain([trace_bytes, 0, 0]).collect();
        if end.counters {
            items.extend([0, 0]);
        }
        let mut write_units = 0.0;
        if let Some(answer) = end.replay_bytes {
            // The claim (one plain conditional write), then the record in the transaction.
            write_units += 1.0;
            items.push(answer + 512);
        }
        write_units +=
            transaction_write_units(items.into_iter().map(|bytes| bytes + ITEM_OVERHEAD_BYTES));
        ledger.add_dynamodb(&model.table, end.read_units, write_units, &model.prices);
        ledger
    }

    /// How grounded the answer is in the tool results the turn read
    /// ([`super::grounding::score`]), to a thousandth.
    pub fn groundedness(&self) -> Option<f64> {
        let results: Vec<_> = self
            .turn_messages()
            .iter()
            .flat_map(|message| &message.content)
            .filter_map(|block| match block {
                ContentBlock::ToolResult { content, .. } => Some(content),
                _ => None,
            })
            .flatten()
            .map(super::message::ToolResultContent::text)
            .collect();
        super::grounding::score(&self.answer(), results.iter().map(|text| text.as_ref()))
            .map(|score| (score * 1000.0).round() / 1000.0)
    }

    /// True when the turn has spent its dollar budget.
    fn over_budget(&self) -> bool {
        self.limits
            .max_cost_usd
            .is_some_and(|max| self.ledger.total_usd >= max)
    }

    /// The model that answered each step, in order.
    pub fn step_models(&self) -> &[String] {
        &self.step_models
    }

    /// Every step so far.
    pub fn trace(&self) -> &[TraceStep] {
        &self.trace
    }
}

impl ToolRun {
    fn output_text(&self) -> String {
        super::message::ToolResultContent::joined(&self.output.content)
    }
}

fn stop_reason_name(reason: &ModelStopReason) -> String {
    match reason {
        ModelStopReason::EndTurn => "end_turn".to_owned(),
        ModelStopReason::ToolUse => "tool_use".to_owned(),
        ModelStopReason::MaxTokens => "max_tokens".to_owned(),
        ModelStopReason::StopSequence => "stop_sequence".to_owned(),
        ModelStopReason::GuardrailIntervened => "guardrail_intervened".to_owned(),
        ModelStopReason::ContentFiltered => "content_filtered".to_owned(),
        ModelStopReason::Other(other) => other.clone(),
    }
}

/// About what a message takes serialized: its text and JSON, plus its keys.
pub(super) fn approx_message_bytes(message: &Message) -> usize {
    let json = |value: &serde_json::Value| serde_json::to_vec(value).map_or(0, |b| b.len());
    let result = |part: &super::message::ToolResultContent| match part {
        super::message::ToolResultContent::Text { text } => text.len() + 24,
        super::message::ToolResultContent::Json { json: value } => json(value) + 24,
    };
    32 + message
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text { text } => text.len() + 24,
            ContentBlock::ToolUse {
                tool_use_id,
                name,
                input,
            } => tool_use_id.len() + name.len() + json(input) + 56,
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                ..
            } => tool_use_id.len() + content.iter().map(result).sum::<usize>() + 64,
            ContentBlock::Reasoning { text, signature } => {
                text.len() + signature.as_ref().map_or(0, String::len) + 48
            }
            ContentBlock::RedactedReasoning { data } => data.len() + 40,
        })
        .sum::<usize>()
}

/// About what a trace step takes serialized.
pub(super) fn approx_step_bytes(step: &TraceStep) -> usize {
    let ledger = |cost: &Option<Ledger>| {
        cost.as_ref().map_or(0, |l| {
            l.items.iter().map(|i| i.detail.len() + 72).sum::<usize>() + 40
        })
    };
    match step {
        TraceStep::Model {
            model_id,
            cost,
            failed_attempts,
            ..
        } => 220 + model_id.len() + ledger(cost) + failed_attempts.len() * 96,
        TraceStep::ModelFailed {
            failed_attempts, ..
        } => 80 + failed_attempts.len() * 96,
        TraceStep::Tool {
            name,
            tool_use_id,
            error,
            input,
            result,
            cost,
            ..
        } => {
            160 + name.len()
                + tool_use_id.len()
                + error.as_ref().map_or(0, String::len)
                + input
                    .as_ref()
                    .map_or(0, |v| serde_json::to_vec(v).map_or(0, |b| b.len()))
                + result.as_ref().map_or(0, String::len)
                + ledger(cost)
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
