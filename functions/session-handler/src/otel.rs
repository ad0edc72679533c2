//! The turn's OpenTelemetry spans (`shared::otel`), exported after the turn when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; without it,
//! nothing is built at start-up and [`export_turn`] does nothing.

use shared::{
    agent::TurnResult,
    otel::{Exporter, TurnContent, TurnSpanContext},
};

use crate::handler::{App, TurnInput};

/// The agent's name on its spans (`gen_ai.agent.name`) unless `AGENT_NAME` says otherwise.
pub const DEFAULT_AGENT_NAME: &str = "lambda-agent";

/// What exports each turn's spans.
#[derive(Clone, Debug)]
pub struct Traces {
    /// The OTLP exporter.
    pub exporter: Exporter,
    /// `gen_ai.agent.name`.
    pub agent_name: String,
    /// `gen_ai.provider.name`.
    pub provider: &'static str,
}

/// Exports the spans of a turn that ran (a replayed answer carries no trace: its turn ran
/// before). Awaited before the invocation returns; a failure is a warning, never the turn's.
pub async fn export_turn(app: &App, result: &TurnResult, input: &TurnInput) {
    let (Some(traces), Some(trace)) = (&app.traces, result.trace.get()) else {
        return;
    };
    let context = TurnSpanContext {
        session_id: &result.session_id,
        agent_name: &traces.agent_name,
        provider: traces.provider,
        // Used only when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true.
        content: Some(TurnContent {
            input: &input.body.message,
            output: &result.answer,
        }),
    };
    traces.exporter.export_turn(trace, &context).await;
}
