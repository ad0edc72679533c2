//! What the agent asks a model and what it gets back, independent of any provider.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::message::Message;

/// Cross-region inference profile prefixes: they choose where a call runs, not which model.
const PROFILE_PREFIXES: &[&str] = &["us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au."];

/// The base model id of a model id or inference profile id (`us.anthropic.…` →
/// `anthropic.…`), for the built-in tables keyed by model.
pub fn base_model_id(model_id: &str) -> &str {
    PROFILE_PREFIXES
        .iter()
        .find_map(|prefix| model_id.strip_prefix(prefix))
        .unwrap_or(model_id)
}

/// A tool the model may ask for: name, description and the JSON schema of its input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model uses.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON schema of the input object.
    pub input_schema: Value,
}

/// Sampling settings of a model call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InferenceConfig {
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Sequences that stop generation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

/// A Bedrock guardrail applied to every model call when configured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuardrailConfig {
    /// Guardrail identifier.
    pub id: String,
    /// Guardrail version.
    pub version: String,
}

/// One model call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// The system prompt.
    pub system: Option<String>,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// Tools the model may ask for.
    pub tools: Vec<ToolSpec>,
    /// Sampling settings.
    pub inference: InferenceConfig,
    /// Guardrail to apply, if any.
    pub guardrail: Option<GuardrailConfig>,
}

/// Why the model stopped generating.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStopReason {
    /// It finished its answer.
    EndTurn,
    /// It wants tools run.
    ToolUse,
    /// It ran out of output tokens.
    MaxTokens,
    /// It hit a stop sequence.
    StopSequence,
    /// A guardrail intervened.
    GuardrailIntervened,
    /// Content filtering stopped it.
    ContentFiltered,
    /// Something this version does not know.
    Other(String),
}

/// Tokens used by one or more model calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens read.
    pub input_tokens: u64,
    /// Tokens generated.
    pub output_tokens: u64,
}

impl Usage {
    /// Input plus output.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// Adds another call's usage to this one.
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

/// What one model call returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The assistant message.
    pub message: Message,
    /// Why it stopped.
    pub stop_reason: ModelStopReason,
    /// Tokens used.
    pub usage: Usage,
}
