//! What the agent asks a model and what it gets back, independent of any provider.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::message::Message;

pub use super::catalog::base_model_id;

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

/// Which tool the model must use, if any (Converse `toolChoice`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the default).
    #[default]
    Auto,
    /// The model must call some tool.
    Any,
    /// The model must call this tool.
    Tool(String),
}

/// Bedrock's service tiers (Converse `serviceTier`): how a call is scheduled and priced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceTier {
    /// Standard on-demand.
    Default,
    /// Faster, at a premium.
    Priority,
    /// Cheaper, for work that can wait.
    Flex,
}

impl ServiceTier {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Priority => "priority",
            Self::Flex => "flex",
        }
    }
}

impl std::str::FromStr for ServiceTier {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "default" => Ok(Self::Default),
            "priority" => Ok(Self::Priority),
            "flex" => Ok(Self::Flex),
            other => Err(format!(
                "'{other}' is not one of 'default', 'priority', 'flex'"
            )),
        }
    }
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
    /// Which tool the model must use; `None` is the provider's default (auto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Provider-specific request fields passed through as they are (Converse
    /// `additionalModelRequestFields`, for example Claude's `thinking`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_fields: Option<Value>,
    /// The service tier to ask for, when the model offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<ServiceTier>,
    /// Mark the stable prefix (tool specs, system prompt, the conversation so far) for the
    /// provider's prompt cache, where the model supports it (the adapter decides where).
    #[serde(default)]
    pub prompt_caching: bool,
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
///
/// Input is split as providers bill it: `input_tokens` at the full input price, the tokens read
/// from the prompt cache and those written to it each at their own price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens billed at the full input price (neither read from nor written to cache).
    pub input_tokens: u64,
    /// Tokens generated.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Usage {
    /// Every input token, cached or not.
    pub fn all_input_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    /// All input plus output.
    pub fn total_tokens(&self) -> u64 {
        self.all_input_tokens() + self.output_tokens
    }

    /// Adds another call's usage to this one.
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
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
