//! The async driver of a turn: performs what the [`TurnState`] asks for through the ports.
//!
//! Tool calls of one step run concurrently, each bounded by the tool timeout and the time left;
//! a tool that fails, panics or times out becomes an error result the model reads, never a
//! failed turn. Model calls go through the role's [`ModelChain`] (retries and fallbacks, never
//! past the turn's time left); a call that cannot be made in the time left ends the turn by
//! its wall-time cap. A model that says the input is too long for its context gets the request
//! again, fitted to a smaller budget, a few times before the overflow counts as a failure.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures::{future::join_all, FutureExt};
use tokio::time::Instant;

use crate::{
    domain::{
        ledger::{CostModel, Ledger},
        message::{ToolCall, ToolOutput},
        trace::span_ids,
        turn::{Action, ToolRun, TurnState},
    },
    models::{ModelChain, RetryPolicy},
    ports::{CallContext, ModelError, ToolInvoker, TurnSink},
};

/// Who runs the turn and how long each tool may take.
#[derive(Clone, Debug)]
pub struct TurnContext {
    /// The caller.
    pub user_id: String,
    /// The session.
    pub session_id: String,
    /// Ties the turn's logs, tool calls and trace together.
    pub trace_id: String,
    /// The longest one tool call may take.
    pub tool_timeout: Duration,
    /// When the turn's clock started: the request's arrival, so the time spent before the loop
    /// (idempotency, loading, tool listing) counts against the turn's wall time.
    pub started: Instant,
    /// How failed model calls are retried.
    pub retry: RetryPolicy,
    /// Prices and function sizes, to cost each tool call.
    pub cost_model: Arc<CostModel>,
}

/// Runs the turn until it is done. Fails only when the model fails.
///
/// With a `sink`, the turn is streamed: the model's text goes to it as it is generated, and
/// each tool call as it starts and ends; without, model calls are buffered.
pub async fn drive_turn(
    state: &mut TurnState,
    models: &ModelChain,
    tools: &dyn ToolInvoker,
    context: &TurnContext,
    sink: Option<&dyn TurnSink>,
) -> Result<(), ModelError> {
    let started = context.started;
    let deadline = started + state.limits().max_wall_time;
    loop {
        match state.next_action(started.elapsed()) {
            Action::Done => return Ok(()),
            Action::CallModel(request) => {
                let call_started = Instant::now();
                let answer = match sink {
                    Some(sink) => {
                        models
                            .converse_stream(request, deadline, &context.retry, sink)
                            .await
                    }
                    None => models.converse(request, deadline, &context.retry).await,
                };
                match answer {
                    Ok(answer) => state.record_model_response(
                        answer.response,
                        call_started.elapsed(),
                        answer.by,
                    ),
                    Err(failure) => {
                        let out_of_time = deadline.saturating_duration_since(Instant::now())
                            < context.retry.min_attempt_time;
                        let no_attempt = failure.failed.is_empty();
                        state.record_failed_call(failure.failed, call_started.elapsed());
                        match failure.error {
                            ModelError::ContextOverflow(detail) => {
                                if !state.record_context_overflow() {
                                    return Err(ModelError::ContextOverflow(detail));
                                }
                                tracing::warn!(trace_id = %context.trace_id, "the model said the input is too long; fitting it to a smaller budget");
                            }
                            // Cut by the turn's time limit (or no time for an attempt): the
                            // turn ends by its wall-time cap, keeping what was done.
                            ModelError::Timeout if out_of_time => {
                                tracing::warn!(trace_id = %context.trace_id, "model call cut off by the turn's time limit");
                                state.record_out_of_time();
                            }
                            _ if no_attempt => state.record_out_of_time(),
                            error => return Err(error),
                        }
                    }
                }
            }
            Action::CallTools { calls, timeout } => {
                let timeout = timeout.min(context.tool_timeout);
                let calls = calls.to_vec();
                // The model call that asked for these: the step their trace entries name.
                let step = state.steps();
                if let Some(sink) = sink {
                    for call in &calls {
                        sink.tool_start(call);
                    }
                }
                let runs = join_all(calls.into_iter().map(|call| async move {
                    let run = run_tool(tools, call, step, context, timeout).await;
                    if let Some(sink) = sink {
                        sink.tool_end(&run.call.tool_use_id, run.output.status, run.latency);
                    }
                    run
                }))
                .await;
                state.record_tool_results(runs);
            }
        }
    }
}

async fn run_tool(
    tools: &dyn ToolInvoker,
    call: ToolCall,
    step: u32,
    context: &TurnContext,
    timeout: Duration,
) -> ToolRun {
    // The span id the call's `execute_tool` span gets when the turn's spans are exported.
    let span_id = span_ids::tool(&context.trace_id, step, &call.tool_use_id);
    let call_context = CallContext {
        user_id: context.user_id.clone(),
        session_id: context.session_id.clone(),
        tool_use_id: call.tool_use_id.clone(),
        trace_id: context.trace_id.clone(),
        traceparent: Some(span_ids::traceparent(&context.trace_id, span_id)),
    };
    let started = Instant::now();
    let invocation = AssertUnwindSafe(tools.call(&call, &call_context)).catch_unwind();
    let output = match tokio::time::timeout(timeout, invocation).await {
        Ok(Ok(output)) => output,
        Ok(Err(_panic)) => {
            ToolOutput::error(format!("the tool '{}' failed unexpectedly", call.name))
        }
        Err(_) => ToolOutput::error(format!(
            "the tool '{}' did not answer within {} ms",
            call.name,
            timeout.as_millis()
        )),
    };
    let latency = started.elapsed();
    tracing::info!(
        trace_id = %context.trace_id,
        step,
        tool = %call.name,
        tool_use_id = %call.tool_use_id,
        latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        status = ?output.status,
        "tool call"
    );
    let cost = tool_cost(&context.cost_model, &call.name, &output, latency);
    ToolRun {
        call,
        output,
        latency,
        cost,
    }
}

/// What a tool call cost: its executor's Lambda (memory times the measured call, an upper
/// bound of the billed duration) and what the executor reported using; nothing for a tool
/// that runs in the handler (its time is the handler's).
fn tool_cost(model: &CostModel, tool: &str, output: &ToolOutput, latency: Duration) -> Ledger {
    let mut ledger = Ledger::default();
    if let Some(lambda) = model.tool_lambdas.get(tool) {
        let millis = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        ledger.add_lambda(
            &lambda.function,
            lambda.memory_mb,
            millis.max(1),
            &model.prices,
        );
    }
    ledger.add_tool_usage(&output.usage, &model.prices);
    ledger
}
