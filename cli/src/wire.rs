//! The API's JSON as the CLI reads it. Lenient on purpose: unknown fields are ignored and
//! missing ones default, so that a server newer than the CLI (a field added, a step kind the
//! CLI does not know) is still shown as well as it can be.
//!
//! These mirror `shared`'s `TurnResult` and `TurnTrace` rather than reuse them: the server's
//! types are strict where a client must not be (an unknown `stop_reason` or step `kind` is an
//! error there), and depending on `shared` would put the AWS SDKs into a command-line binary
//! that only speaks HTTP. Only the fields the CLI shows are here.

use serde::Deserialize;
use serde_json::Value;

/// Tokens of a turn, a step or a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

/// What some tokens cost, in US dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Cost {
    pub total_usd: f64,
}

/// A turn's result: the buffered route's `200` and the stream's `done` event.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TurnResult {
    pub session_id: String,
    pub turn: u64,
    pub answer: String,
    pub stop_reason: String,
    pub steps: u32,
    pub usage: Usage,
    pub cost: Option<Cost>,
    pub models: Vec<String>,
    pub trace_id: String,
    pub error: Option<TurnFailure>,
}

/// Why a turn's model failed after some steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TurnFailure {
    pub kind: String,
    pub detail: String,
}

/// An `application/problem+json` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: Option<u16>,
    pub detail: String,
}

/// `POST /sessions`.
#[derive(Clone, Debug, Deserialize)]
pub struct Created {
    pub session_id: String,
}

/// `GET /sessions`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SessionList {
    pub sessions: Vec<SessionHeader>,
}

/// One session as listed.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionHeader {
    pub session_id: String,
    pub title: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub turns: u64,
    pub usage: Usage,
    pub cost_usd: f64,
}

/// `GET /sessions/{id}/trace`: a page of turns.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TracePage {
    pub turns: Vec<TurnTrace>,
    pub next_cursor: Option<String>,
}

/// Every step of one turn.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TurnTrace {
    pub turn: u64,
    pub trace_id: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub stop_reason: String,
    pub usage: Usage,
    pub cost: Option<Cost>,
    pub steps: Vec<TraceStep>,
    pub omitted_tool_steps: u32,
}

/// One step of a turn, by its `kind`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceStep {
    Model {
        step: u32,
        #[serde(default)]
        model_id: String,
        #[serde(default)]
        latency_ms: u64,
        #[serde(default)]
        usage: Usage,
        #[serde(default)]
        cost: Option<Cost>,
        #[serde(default)]
        stop_reason: String,
        #[serde(default)]
        failed_attempts: Vec<FailedAttempt>,
        #[serde(default)]
        start_ms: Option<u64>,
    },
    ModelFailed {
        step: u32,
        #[serde(default)]
        latency_ms: u64,
        #[serde(default)]
        failed_attempts: Vec<FailedAttempt>,
        #[serde(default)]
        start_ms: Option<u64>,
    },
    Tool {
        step: u32,
        name: String,
        #[serde(default)]
        tool_use_id: String,
        #[serde(default)]
        latency_ms: u64,
        #[serde(default)]
        status: String,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        start_ms: Option<u64>,
    },
    /// A kind this CLI does not know.
    #[serde(other)]
    Other,
}

/// A model attempt that failed before the step was answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FailedAttempt {
    pub model_id: String,
    pub error: String,
}

/// `GET /tools`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ToolList {
    pub tools: Vec<ToolSpec>,
}

/// One tool.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// `GET /console/config.json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConsoleConfig {
    pub stream_url: Option<String>,
}

/// The stream's `tool_start` event.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ToolStart {
    pub tool_use_id: String,
    pub name: String,
    pub input: Value,
}

/// The stream's `tool_end` event.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ToolEnd {
    pub tool_use_id: String,
    pub status: String,
    pub latency_ms: Option<u64>,
}

/// The stream's `text` event.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TextDelta {
    pub delta: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_trace_reads_with_and_without_start_ms_and_unknown_kinds() {
        let page: TracePage = serde_json::from_value(json!({
            "session_id": "s",
            "next_cursor": null,
            "turns": [{
                "turn": 1, "trace_id": "t", "started_at": "2026-01-01T00:00:00Z",
                "duration_ms": 900, "stop_reason": "end_turn",
                "usage": {"input_tokens": 10, "output_tokens": 2},
                "cost": null,
                "steps": [
                    {"kind": "model", "step": 1, "model_id": "m", "latency_ms": 400,
                     "usage": {"input_tokens": 5, "output_tokens": 1}, "cost": {"input_usd": 0.1, "output_usd": 0.2, "total_usd": 0.3},
                     "stop_reason": "tool_use", "start_ms": 0},
                    {"kind": "tool", "step": 1, "name": "calculator", "tool_use_id": "u",
                     "latency_ms": 3, "status": "success"},
                    {"kind": "reflection", "step": 2}
                ]
            }]
        }))
        .unwrap();
        let steps = &page.turns[0].steps;
        assert!(matches!(
            steps[0],
            TraceStep::Model { start_ms: Some(0), cost: Some(Cost { total_usd }), .. } if total_usd == 0.3
        ));
        assert!(matches!(steps[1], TraceStep::Tool { start_ms: None, .. }));
        assert_eq!(steps[2], TraceStep::Other);
        assert_eq!(page.turns[0].usage.cache_read_tokens, 0);
    }
}
