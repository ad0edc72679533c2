//! The record of what a turn did, step by step, stored with the turn and served by the trace API.

use serde::{Deserialize, Serialize};

use super::{model::Usage, pricing::Cost, turn::StopReason};

/// One step of a turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceStep {
    /// A model call.
    Model {
        /// 1-based model call number within the turn.
        step: u32,
        /// Wall time of the call.
        latency_ms: u64,
        /// Tokens it used.
        usage: Usage,
        /// What it cost, when the model's price is known.
        cost: Option<Cost>,
        /// Why the model stopped (`end_turn`, `tool_use`, ...).
        stop_reason: String,
    },
    /// A tool call.
    Tool {
        /// The model call that asked for it.
        step: u32,
        /// The tool.
        name: String,
        /// Pairs it with the model's request.
        tool_use_id: String,
        /// Wall time of the call.
        latency_ms: u64,
        /// `success` or `error`.
        status: String,
        /// Why it failed, when it did (never a secret: tools write these messages).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// Every step of one turn, with its totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnTrace {
    /// 1-based turn number within the session.
    pub turn: u64,
    /// Identifier that ties logs and tool calls of this turn together.
    pub trace_id: String,
    /// When the turn started (RFC 3339).
    pub started_at: String,
    /// Wall time of the whole turn.
    pub duration_ms: u64,
    /// Why the turn ended.
    pub stop_reason: StopReason,
    /// Tokens of all model calls.
    pub usage: Usage,
    /// Cost of all model calls, when priced.
    pub cost: Option<Cost>,
    /// The steps, in order.
    pub steps: Vec<TraceStep>,
}
