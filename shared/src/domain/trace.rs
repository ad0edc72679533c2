//! The record of what a turn did, step by step, stored with the turn and served by the trace API.

use serde::{Deserialize, Serialize};

use serde_json::Value;

use super::{ledger::Ledger, model::Usage, truncate::shrink_text, turn::StopReason};

/// One step of a turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceStep {
    /// A model call.
    Model {
        /// 1-based model call number within the turn.
        step: u32,
        /// When it started, in milliseconds from the turn's start (absent in traces stored
        /// before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_ms: Option<u64>,
        /// The model that answered (after any retries and fallbacks).
        #[serde(default)]
        model_id: String,
        /// Wall time of the call, retries and back-off included.
        latency_ms: u64,
        /// Tokens it used.
        usage: Usage,
        /// What it cost, itemized by token class (an unknown price names the model in
        /// `unpriced`; `null` in traces stored before costs were itemized and unpriced).
        cost: Option<Ledger>,
        /// Why the model stopped (`end_turn`, `tool_use`, ...).
        stop_reason: String,
        /// The attempts that failed before the answer (retries and fallbacks), in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failed_attempts: Vec<FailedAttempt>,
    },
    /// A model call that failed on every model it tried (the turn then ended).
    ModelFailed {
        /// The model call number it would have been.
        step: u32,
        /// When it started, in milliseconds from the turn's start (absent in traces stored
        /// before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_ms: Option<u64>,
        /// Wall time spent, retries and back-off included.
        latency_ms: u64,
        /// Every failed attempt, in order.
        failed_attempts: Vec<FailedAttempt>,
    },
    /// A tool call.
    Tool {
        /// The model call that asked for it.
        step: u32,
        /// When it started, in milliseconds from the turn's start (absent in traces stored
        /// before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_ms: Option<u64>,
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
        /// The arguments, personal data and secrets masked (`domain::redact`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<Value>,
        /// The result's text, masked and capped, when it succeeded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
        /// What it cost, when it ran outside the handler (its Lambda, what it reported).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost: Option<Ledger>,
    },
}

/// A model call attempt that failed before a step was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedAttempt {
    /// The model tried.
    pub model_id: String,
    /// How it failed (`throttled`, `unavailable`, `access_denied`, ...).
    pub error: String,
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
    /// What the turn cost, itemized: the steps, the handler's compute, the store's units.
    pub cost: Option<Ledger>,
    /// How much of the answer is grounded in the turn's tool results, from 0 to 1
    /// (`domain::grounding`); absent when no tool ran or the answer makes no checkable claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groundedness: Option<f64>,
    /// The steps, in order.
    pub steps: Vec<TraceStep>,
    /// Tool steps left out to keep the stored trace within its size limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_tool_steps: u32,
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

/// Largest serialized trace of one turn: 256 KB, so its item stays well under DynamoDB's
/// 400 KB and the turn's transaction under 4 MB.
pub const MAX_TRACE_BYTES: usize = 256 * 1024;

/// Longest error message kept per tool step.
pub const MAX_TRACE_ERROR_BYTES: usize = 1024;

impl TurnTrace {
    /// The trace as it is stored: each tool error cut to [`MAX_TRACE_ERROR_BYTES`] with a
    /// marker; if the trace is still over `max_bytes`, the errors are dropped, then the tool
    /// steps beyond those that fit (the model steps, with usage and cost, are always kept, and
    /// `omitted_tool_steps` says how many tool steps were left out).
    pub fn fitted(mut self, max_bytes: usize) -> Self {
        for step in &mut self.steps {
            if let TraceStep::Tool {
                error: Some(error), ..
            } = step
            {
                *error = shrink_text(error, MAX_TRACE_ERROR_BYTES);
            }
        }
        if self.size() <= max_bytes {
            return self;
        }
        for step in &mut self.steps {
            if let TraceStep::Tool {
                error,
                input,
                result,
                ..
            } = step
            {
                *error = None;
                *input = None;
                *result = None;
            }
        }
        let mut size = self.size();
        while size > max_bytes {
            let Some(last_tool) = self
                .steps
                .iter()
                .rposition(|step| matches!(step, TraceStep::Tool { .. }))
            else {
                break;
            };
            let removed = self.steps.remove(last_tool);
            size -= serde_json::to_vec(&removed).map_or(0, |bytes| bytes.len() + 1);
            self.omitted_tool_steps += 1;
        }
        self
    }

    /// Serialized size in bytes.
    pub fn size(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |bytes| bytes.len())
    }
}

/// The span ids of a turn's OpenTelemetry spans, derived from its trace id (FNV-1a, 64 bits):
/// the driver names a tool call's span in the `traceparent` it sends the executor, and the
/// spans built from the trace after the turn get the same ids, with nothing kept in between.
pub mod span_ids {
    /// The turn's span (`invoke_agent`).
    pub fn turn(trace_id: &str) -> u64 {
        hash(trace_id, b"invoke_agent", 0, "")
    }

    /// The span of the model call at `index` in the trace's steps (`chat`).
    pub fn model(trace_id: &str, index: usize) -> u64 {
        hash(trace_id, b"chat", index as u64, "")
    }

    /// The span of a tool call (`execute_tool`): asked for by model call `step`, with the
    /// model's `tool_use_id`.
    pub fn tool(trace_id: &str, step: u32, tool_use_id: &str) -> u64 {
        hash(trace_id, b"execute_tool", u64::from(step), tool_use_id)
    }

    /// A W3C `traceparent` naming `span_id` in the turn's trace, sampled.
    pub fn traceparent(trace_id: &str, span_id: u64) -> String {
        format!("00-{trace_id}-{span_id:016x}-01")
    }

    fn hash(trace_id: &str, kind: &[u8], index: u64, key: &str) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = trace_id
            .bytes()
            .chain([0])
            .chain(kind.iter().copied())
            .chain(index.to_le_bytes())
            .chain(key.bytes());
        for byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // An all-zero span id is invalid.
        hash.max(1)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ids_are_stable_and_distinct_per_span() {
            let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
            assert_eq!(turn(trace), turn(trace));
            let ids = [
                turn(trace),
                model(trace, 0),
                model(trace, 1),
                tool(trace, 1, "a"),
                tool(trace, 1, "b"),
                tool(trace, 2, "a"),
                turn("00000000000000000000000000000001"),
            ];
            let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
            assert_eq!(distinct.len(), ids.len());
        }

        #[test]
        fn a_traceparent_is_version_trace_span_and_sampled() {
            let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
            assert_eq!(
                traceparent(trace, 0x00f0_67aa_0ba9_02b7),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            );
        }
    }
}
