//! The parts of a Converse / ConverseStream request body the stand-in reads,
//! and the validation Bedrock applies to them.
//!
//! Only what the script needs is modelled; every other field (`guardrailConfig`,
//! image blocks, ...) is accepted and ignored; the whole document is kept in
//! [`ConverseRequest::raw`] for what is read from it directly (`cachePoint` blocks, see
//! [`crate::cache`]; `serviceTier`; `additionalModelRequestFields.thinking`). Validation
//! mirrors the checks real Bedrock makes that an agent is most likely to trip over: a
//! conversation must start with a user message and alternate roles, content must not be
//! empty or blank, tool names must match `[a-zA-Z0-9_-]{1,64}`, `toolConfig` must be
//! present when tool blocks are, every `toolUse` must be answered by exactly one
//! `toolResult` in the next user message, `toolChoice` must be one member naming an
//! offered tool, at most 4 non-empty stop sequences, at most 4 `cachePoint` blocks of type
//! `default`, a known `serviceTier`, and, passed on from Claude, the extended-thinking
//! rules (see the crate docs).

use crate::thinking::{self, model_error, Thinking, DOCS, MIN_BUDGET_TOKENS};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// A parsed Converse request (the fields the stand-in looks at).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    /// The conversation; required and non-empty.
    pub messages: Option<Vec<Message>>,
    /// Offered tools and the tool choice.
    pub tool_config: Option<ToolConfig>,
    /// Inference parameters (only validated).
    pub inference_config: Option<InferenceConfig>,
    /// The whole request document as parsed (for what is not modelled above).
    #[serde(skip)]
    pub raw: Value,
}

/// One conversation message.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Message {
    /// `user` or `assistant`.
    #[serde(default)]
    pub role: String,
    /// Content blocks; required and non-empty.
    pub content: Option<Vec<ContentBlock>>,
}

/// A content block: a union of which only the members used here are modelled.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlock {
    /// Plain text.
    pub text: Option<String>,
    /// A tool call made by the assistant.
    pub tool_use: Option<ToolUse>,
    /// A tool's answer sent back by the user side.
    pub tool_result: Option<ToolResult>,
    /// A reasoning (thinking) block sent back by the assistant side.
    pub reasoning_content: Option<ReasoningContent>,
    /// A cache point (see [`crate::cache`]).
    pub cache_point: Option<Value>,
}

/// A `reasoningContent` block: reasoning text with its signature, or redacted reasoning.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningContent {
    /// The reasoning text and its signature.
    pub reasoning_text: Option<ReasoningText>,
    /// Encrypted reasoning (base64), accepted as is.
    pub redacted_content: Option<String>,
}

/// A `reasoningText` member.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReasoningText {
    /// The reasoning.
    #[serde(default)]
    pub text: String,
    /// The signature the model gave it.
    pub signature: Option<String>,
}

/// A `toolUse` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    /// The id the matching `toolResult` must carry.
    pub tool_use_id: String,
    /// The tool's name.
    pub name: String,
    /// The tool's input document.
    #[serde(default)]
    pub input: Value,
}

/// A `toolResult` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    /// The id of the `toolUse` this answers.
    pub tool_use_id: String,
    /// The result's content.
    #[serde(default)]
    pub content: Vec<ToolResultContent>,
    /// `success` or `error` (optional).
    pub status: Option<String>,
}

/// A content item of a tool result (only text and JSON are modelled).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToolResultContent {
    /// Text output.
    pub text: Option<String>,
    /// JSON output.
    pub json: Option<Value>,
}

/// The `toolConfig` member.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    /// Offered tools; entries that are not `toolSpec` (e.g. `cachePoint`) are ignored.
    #[serde(default)]
    pub tools: Vec<Tool>,
    /// The tool choice as sent (see [`ToolChoice`]).
    pub tool_choice: Option<Value>,
}

/// A validated `toolConfig.toolChoice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// `{"auto": {}}`: the model decides (the default).
    Auto,
    /// `{"any": {}}`: the model must call some tool.
    Any,
    /// `{"tool": {"name": ".."}}`: the model must call this tool.
    Tool(String),
}

impl ToolChoice {
    /// Reads a `toolChoice` union as Bedrock does: exactly one of `auto`, `any` (each an
    /// object) or `tool` (with a valid `name` among `offered`).
    pub fn parse(value: &Value, offered: &[&str]) -> Result<Self, String> {
        let exactly_one = || {
            "1 validation error detected: Value at 'toolConfig.toolChoice' failed to satisfy \
             constraint: Member must have exactly one of [auto, any, tool] set"
                .to_string()
        };
        let members = value.as_object().ok_or_else(exactly_one)?;
        let mut set = members.iter().filter(|(_, v)| !v.is_null());
        let (Some((member, inner)), None) = (set.next(), set.next()) else {
            return Err(exactly_one());
        };
        if !inner.is_object() {
            return Err(format!(
                "1 validation error detected: Value at 'toolConfig.toolChoice.{member}' failed \
                 to satisfy constraint: Member must be a structure"
            ));
        }
        match member.as_str() {
            "auto" => Ok(Self::Auto),
            "any" => Ok(Self::Any),
            "tool" => {
                let name = match inner.get("name") {
                    None | Some(Value::Null) => {
                        return Err(not_null("toolConfig.toolChoice.tool.name"))
                    }
                    Some(Value::String(name)) if is_valid_name(name) => name,
                    Some(other) => {
                        let shown = other
                            .as_str()
                            .map_or_else(|| other.to_string(), str::to_string);
                        return Err(format!(
                            "1 validation error detected: Value '{shown}' at \
                             'toolConfig.toolChoice.tool.name' failed to satisfy constraint: \
                             Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+ and \
                             have length between 1 and 64"
                        ));
                    }
                };
                if !offered.contains(&name.as_str()) {
                    return Err(format!(
                        "The tool {name} in toolConfig.toolChoice is not one of the tools in \
                         toolConfig.tools: {}.",
                        offered.join(", ")
                    ));
                }
                Ok(Self::Tool(name.clone()))
            }
            _ => Err(exactly_one()),
        }
    }
}

/// An entry of `toolConfig.tools`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// The tool's specification.
    pub tool_spec: Option<ToolSpec>,
}

/// A tool specification (only the name is used).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToolSpec {
    /// The tool's name.
    #[serde(default)]
    pub name: String,
}

/// The `inferenceConfig` member.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig {
    /// Maximum output tokens; must be at least 1 when present.
    pub max_tokens: Option<i64>,
    /// Sampling temperature; must be within 0..=1 when present.
    pub temperature: Option<f64>,
    /// Nucleus sampling; must be within 0..=1 when present.
    pub top_p: Option<f64>,
    /// Texts that end the answer where they appear; at most 4, none empty.
    pub stop_sequences: Option<Vec<String>>,
}

/// The `serviceTier.type` values Bedrock accepts.
pub const SERVICE_TIERS: [&str; 4] = ["default", "flex", "priority", "reserved"];

/// Most stop sequences a request may give.
pub const MAX_STOP_SEQUENCES: usize = 4;

impl ConverseRequest {
    /// Parses a request body, turning malformed JSON into a validation message.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let raw: Value =
            serde_json::from_slice(body).map_err(|e| format!("Malformed request body: {e}"))?;
        let mut request =
            Self::deserialize(&raw).map_err(|e| format!("Malformed request body: {e}"))?;
        request.raw = raw;
        Ok(request)
    }

    /// The `messages` member exactly as sent, as compact JSON (`null` if absent).
    pub fn messages_json(&self) -> String {
        self.raw.get("messages").unwrap_or(&Value::Null).to_string()
    }

    /// The messages (empty if absent; [`validate`](Self::validate) rejects that).
    pub fn messages(&self) -> &[Message] {
        self.messages.as_deref().unwrap_or_default()
    }

    /// The validated tool choice; `None` when absent (the same as `auto`) or invalid
    /// ([`validate`](Self::validate) rejects that).
    pub fn tool_choice(&self) -> Option<ToolChoice> {
        let value = self.tool_config.as_ref()?.tool_choice.as_ref()?;
        ToolChoice::parse(value, &self.tool_names()).ok()
    }

    /// The extended-thinking setting from `additionalModelRequestFields.thinking`:
    /// `None` when absent or `{"type": "disabled"}`; an error (a `ValidationException`
    /// message in the words Bedrock passes on from Claude) when malformed.
    pub fn thinking(&self) -> Result<Option<Thinking>, String> {
        let Some(thinking) = self
            .raw
            .get("additionalModelRequestFields")
            .and_then(|f| f.get("thinking"))
            .filter(|t| !t.is_null())
        else {
            return Ok(None);
        };
        let kind = thinking.get("type").and_then(Value::as_str);
        match kind {
            Some("disabled") => return Ok(None),
            Some("enabled") => {}
            None if !thinking.is_object() => {
                return Err(model_error(
                    "thinking: Input should be a valid dictionary or object to extract fields \
                     from",
                ))
            }
            None if thinking.get("type").is_none() => {
                return Err(model_error("thinking.type: Field required"))
            }
            _ => {
                let shown = thinking
                    .get("type")
                    .map(Value::to_string)
                    .unwrap_or_default();
                return Err(model_error(&format!(
                    "thinking: Input tag {shown} found using 'type' does not match any of the \
                     expected tags: 'disabled', 'enabled'"
                )));
            }
        }
        let budget = match thinking.get("budget_tokens") {
            None | Some(Value::Null) => {
                return Err(model_error(
                    "thinking.enabled.budget_tokens: Field required",
                ))
            }
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Some(_) => None,
        };
        let budget = budget.ok_or_else(|| {
            model_error("thinking.enabled.budget_tokens: Input should be a valid integer")
        })?;
        let budget = u64::try_from(budget)
            .ok()
            .filter(|b| *b >= MIN_BUDGET_TOKENS)
            .ok_or_else(|| {
                model_error(&format!(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to \
                     {MIN_BUDGET_TOKENS}"
                ))
            })?;
        let max_tokens = self.inference_config.as_ref().and_then(|c| c.max_tokens);
        if max_tokens.is_some_and(|max| u64::try_from(max).map_or(true, |max| max <= budget)) {
            return Err(model_error(&format!(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our \
                 documentation at {DOCS}#max-tokens-and-context-window-size"
            )));
        }
        Ok(Some(Thinking {
            budget_tokens: budget,
        }))
    }

    /// The validated `serviceTier.type` (`default`, `flex`, `priority` or `reserved`);
    /// `None` when absent or invalid ([`validate`](Self::validate) rejects that).
    pub fn service_tier(&self) -> Option<&str> {
        let tier = self.raw.get("serviceTier")?.get("type")?.as_str()?;
        SERVICE_TIERS.contains(&tier).then_some(tier)
    }

    /// The stop sequences (empty if none).
    pub fn stop_sequences(&self) -> &[String] {
        self.inference_config
            .as_ref()
            .and_then(|c| c.stop_sequences.as_deref())
            .unwrap_or_default()
    }

    /// Names of the offered tools, in request order.
    pub fn tool_names(&self) -> Vec<&str> {
        self.tool_config
            .iter()
            .flat_map(|c| c.tools.iter())
            .filter_map(|t| t.tool_spec.as_ref().map(|s| s.name.as_str()))
            .collect()
    }

    /// Checks the request as Bedrock would; the error is the message of a
    /// `ValidationException`.
    pub fn validate(&self) -> Result<(), String> {
        let messages = match &self.messages {
            None => return Err(not_null("messages")),
            Some(m) if m.is_empty() => {
                return Err("The messages field is empty. Add at least one message.".into())
            }
            Some(m) => m,
        };
        if let Some(cfg) = &self.inference_config {
            validate_inference(cfg)?;
        }
        if let Some(cfg) = &self.tool_config {
            validate_tools(cfg)?;
            if let Some(choice) = &cfg.tool_choice {
                ToolChoice::parse(choice, &self.tool_names())?;
            }
        }
        crate::cache::validate(&self.raw)?;
        validate_service_tier(self.raw.get("serviceTier"))?;
        if messages[0].role != "user" {
            return Err(
                "A conversation must start with a user message. Try again with a \
                        conversation that starts with a user message."
                    .into(),
            );
        }
        let mut uses_tools = false;
        for (i, message) in messages.iter().enumerate() {
            if message.role != "user" && message.role != "assistant" {
                return Err(format!(
                    "Value '{}' at 'messages.{}.member.role' failed to satisfy constraint: \
                     Member must satisfy enum value set: [user, assistant]",
                    message.role,
                    i + 1
                ));
            }
            if i > 0 && messages[i - 1].role == message.role {
                return Err(
                    "A conversation must alternate between user and assistant roles. \
                            Make sure the conversation alternates between user and assistant \
                            roles and try again."
                        .into(),
                );
            }
            let content = match &message.content {
                None => return Err(not_null(&format!("messages.{}.member.content", i + 1))),
                Some(c) if c.is_empty() => {
                    return Err(format!(
                        "The content field in the Message object at messages.{i} is empty. \
                         Add a ContentBlock object to the content field and try again."
                    ))
                }
                Some(c) => c,
            };
            for (j, block) in content.iter().enumerate() {
                if block.text.as_deref().is_some_and(|t| t.trim().is_empty()) {
                    return Err(format!(
                        "The text field in the ContentBlock object at messages.{i}.content.{j} \
                         is blank. Add text to the text field, and try again."
                    ));
                }
                uses_tools |= block.tool_use.is_some() || block.tool_result.is_some();
            }
        }
        if uses_tools && self.tool_config.is_none() {
            return Err(
                "The toolConfig field must be defined when using toolUse and toolResult \
                        content blocks."
                    .into(),
            );
        }
        validate_tool_pairing(messages)?;
        let thinking = self.thinking()?;
        validate_reasoning(messages, thinking.is_some())?;
        if thinking.is_some() {
            self.validate_with_thinking(messages)?;
        }
        Ok(())
    }

    /// What Claude refuses when thinking is enabled: a temperature other than 1, a tool
    /// choice that forces tool use, and a tool loop whose last assistant message does not
    /// start with its reasoning.
    fn validate_with_thinking(&self, messages: &[Message]) -> Result<(), String> {
        let temperature = self.inference_config.as_ref().and_then(|c| c.temperature);
        if temperature.is_some_and(|t| t != 1.0) {
            return Err(model_error(&format!(
                "`temperature` may only be set to 1 when thinking is enabled. Please consult \
                 our documentation at {DOCS}#feature-compatibility"
            )));
        }
        if matches!(
            self.tool_choice(),
            Some(ToolChoice::Any | ToolChoice::Tool(_))
        ) {
            return Err(model_error(
                "Thinking may not be enabled when tool_choice forces tool use.",
            ));
        }
        let Some(last) = messages.last() else {
            return Ok(());
        };
        let in_tool_loop = last.role == "user" && blocks(last).any(|b| b.tool_result.is_some());
        let Some(i) = messages.len().checked_sub(2).filter(|_| in_tool_loop) else {
            return Ok(());
        };
        let first = blocks(&messages[i]).find(|b| b.cache_point.is_none());
        if first.is_some_and(|b| b.reasoning_content.is_some()) {
            return Ok(());
        }
        Err(model_error(&format!(
            "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found \
             `{}`. When `thinking` is enabled, a final `assistant` message must start with a \
             thinking block (preceeding the lastmost set of `tool_use` and `tool_result` \
             blocks). We recommend you include thinking blocks from previous turns. To avoid \
             this requirement, disable `thinking`. Please consult our documentation at {DOCS}",
            first.map_or("text", anthropic_type)
        )))
    }
}

/// The message Bedrock gives for a missing required member.
fn not_null(path: &str) -> String {
    format!(
        "1 validation error detected: Value null at '{path}' failed to satisfy constraint: \
         Member must not be null"
    )
}

/// `serviceTier`, when present, is `{"type": <one of SERVICE_TIERS>}`.
fn validate_service_tier(tier: Option<&Value>) -> Result<(), String> {
    let Some(tier) = tier.filter(|t| !t.is_null()) else {
        return Ok(());
    };
    match tier.get("type") {
        None | Some(Value::Null) => Err(not_null("serviceTier.type")),
        Some(Value::String(t)) if SERVICE_TIERS.contains(&t.as_str()) => Ok(()),
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            Err(format!(
                "1 validation error detected: Value '{shown}' at 'serviceTier.type' failed to \
                 satisfy constraint: Member must satisfy enum value set: [{}]",
                SERVICE_TIERS.join(", ")
            ))
        }
    }
}

fn validate_inference(cfg: &InferenceConfig) -> Result<(), String> {
    if cfg.max_tokens.is_some_and(|m| m < 1) {
        return Err("The maximum tokens you requested must be at least 1.".into());
    }
    let sequences = cfg.stop_sequences.as_deref().unwrap_or_default();
    if sequences.len() > MAX_STOP_SEQUENCES {
        let shown = serde_json::to_string(sequences).unwrap_or_default();
        return Err(format!(
            "1 validation error detected: Value '{shown}' at 'inferenceConfig.stopSequences' \
             failed to satisfy constraint: Member must have length less than or equal to \
             {MAX_STOP_SEQUENCES}"
        ));
    }
    if let Some(i) = sequences.iter().position(String::is_empty) {
        return Err(format!(
            "1 validation error detected: Value '' at 'inferenceConfig.stopSequences.{}.member' \
             failed to satisfy constraint: Member must have length greater than or equal to 1",
            i + 1
        ));
    }
    for (name, value) in [("temperature", cfg.temperature), ("topP", cfg.top_p)] {
        if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            return Err(format!(
                "Value at 'inferenceConfig.{name}' failed to satisfy constraint: Member must \
                 be between 0 and 1"
            ));
        }
    }
    Ok(())
}

fn validate_tools(cfg: &ToolConfig) -> Result<(), String> {
    if cfg.tools.is_empty() {
        return Err("The toolConfig field must contain at least one tool.".into());
    }
    let mut seen = BTreeSet::new();
    for (i, spec) in cfg
        .tools
        .iter()
        .filter_map(|t| t.tool_spec.as_ref())
        .enumerate()
    {
        if !is_valid_name(&spec.name) {
            return Err(format!(
                "Value '{}' at 'toolConfig.tools.{}.member.toolSpec.name' failed to satisfy \
                 constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+ \
                 and have length between 1 and 64",
                spec.name,
                i + 1
            ));
        }
        if !seen.insert(spec.name.as_str()) {
            return Err(format!(
                "The tool name {} is duplicated in toolConfig.",
                spec.name
            ));
        }
    }
    Ok(())
}

/// Whether a tool name or tool-use id matches `[a-zA-Z0-9_-]{1,64}`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Every assistant `toolUse` must be answered, id for id, by the `toolResult`
/// blocks of the following user message, and results may only answer uses.
fn validate_tool_pairing(messages: &[Message]) -> Result<(), String> {
    for (i, message) in messages.iter().enumerate() {
        let results: BTreeSet<&str> = blocks(message)
            .filter_map(|b| b.tool_result.as_ref().map(|r| r.tool_use_id.as_str()))
            .collect();
        let uses: BTreeSet<&str> = match i.checked_sub(1).map(|p| &messages[p]) {
            Some(prev) => blocks(prev)
                .filter_map(|b| b.tool_use.as_ref().map(|u| u.tool_use_id.as_str()))
                .collect(),
            None => BTreeSet::new(),
        };
        let result_count = blocks(message).filter(|b| b.tool_result.is_some()).count();
        if result_count > uses.len() {
            return Err(format!(
                "The number of toolResult blocks at messages.{i}.content exceeds the number of \
                 toolUse blocks of previous turn."
            ));
        }
        if !uses.is_empty() && uses != results {
            let missing: Vec<&str> = uses.difference(&results).copied().collect();
            return Err(format!(
                "Expected toolResult blocks at messages.{i}.content for the following Ids: {}",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}

fn blocks(message: &Message) -> impl Iterator<Item = &ContentBlock> {
    message.content.iter().flatten()
}

/// Anthropic's name for the type of a content block (as its messages spell it).
fn anthropic_type(block: &ContentBlock) -> &'static str {
    if block.tool_use.is_some() {
        "tool_use"
    } else if block.tool_result.is_some() {
        "tool_result"
    } else if block.reasoning_content.is_some() {
        "thinking"
    } else if block.text.is_some() {
        "text"
    } else {
        "document"
    }
}

/// Every reasoning text sent back must carry the signature the model gave it: a missing
/// one is refused when thinking is enabled, a wrong one always.
fn validate_reasoning(messages: &[Message], thinking: bool) -> Result<(), String> {
    for (i, message) in messages.iter().enumerate() {
        let texts = blocks(message)
            .enumerate()
            .filter_map(|(j, b)| Some((j, b.reasoning_content.as_ref()?.reasoning_text.as_ref()?)));
        for (j, reasoning) in texts {
            match reasoning.signature.as_deref().filter(|s| !s.is_empty()) {
                None if thinking => {
                    return Err(model_error(&format!(
                        "messages.{i}.content.{j}.thinking.signature: Field required"
                    )))
                }
                None => {}
                Some(signature) if thinking::verify(&reasoning.text, signature) => {}
                Some(_) => {
                    return Err(model_error(&format!(
                        "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                    )))
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value) -> Result<(), String> {
        ConverseRequest::parse(body.to_string().as_bytes())?.validate()
    }

    #[test]
    fn accepts_a_tool_round_trip_and_ignores_unknown_fields() {
        let body = json!({
            "messages": [
                {"role": "user", "content": [{"text": "2+2?"}]},
                {"role": "assistant", "content": [
                    {"text": "Let me calculate that."},
                    {"toolUse": {"toolUseId": "t1", "name": "calculator", "input": {"expression": "2+2"}}}
                ]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "4"}]}}]}
            ],
            "system": [{"text": "be nice"}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "calculator", "inputSchema": {"json": {}}}}]},
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5},
            "additionalModelRequestFields": {"x": 1},
            "somethingNew": true
        });
        assert_eq!(check(body), Ok(()));
    }

    #[test]
    fn rejects_malformed_and_invalid_conversations() {
        assert!(ConverseRequest::parse(b"{not json").is_err());
        assert!(check(json!({})).is_err_and(|e| e.contains("'messages'")));
        assert!(check(json!({"messages": []})).is_err());
        let assistant_first =
            json!({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]});
        assert!(check(assistant_first).is_err_and(|e| e.contains("start with a user")));
        let twice = json!({"messages": [
            {"role": "user", "content": [{"text": "a"}]},
            {"role": "user", "content": [{"text": "b"}]}
        ]});
        assert!(check(twice).is_err_and(|e| e.contains("alternate")));
        let blank = json!({"messages": [{"role": "user", "content": [{"text": "  "}]}]});
        assert!(check(blank).is_err_and(|e| e.contains("blank")));
        let bad_tool = json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "bad name"}}]}});
        assert!(check(bad_tool).is_err_and(|e| e.contains("pattern")));
        let bad_temp = json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
            "inferenceConfig": {"temperature": 3.0}});
        assert!(check(bad_temp).is_err());
        let stops = |s: Value| {
            check(
                json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
                "inferenceConfig": {"stopSequences": s}}),
            )
        };
        assert_eq!(stops(json!(["a", "b", "c", "d"])), Ok(()));
        assert!(stops(json!(["a", "b", "c", "d", "e"])).is_err_and(|e| {
            e.contains(
            "at 'inferenceConfig.stopSequences' failed to satisfy constraint: Member must have \
             length less than or equal to 4"
        )
        }));
        assert!(stops(json!(["a", ""]))
            .is_err_and(|e| e.contains("'inferenceConfig.stopSequences.2.member'")));
    }

    #[test]
    fn tool_choice_is_one_member_naming_an_offered_tool() {
        let offered = ["calculator", "web_search"];
        let parse = |v: Value| ToolChoice::parse(&v, &offered);
        assert_eq!(parse(json!({"auto": {}})), Ok(ToolChoice::Auto));
        assert_eq!(parse(json!({"any": {}})), Ok(ToolChoice::Any));
        assert_eq!(
            parse(json!({"tool": {"name": "web_search"}})),
            Ok(ToolChoice::Tool("web_search".into()))
        );
        for bad in [
            json!({}),
            json!({"auto": {}, "any": {}}),
            json!({"none": {}}),
            json!("auto"),
        ] {
            assert!(
                parse(bad.clone()).is_err_and(|e| e.contains("exactly one of [auto, any, tool]")),
                "{bad}"
            );
        }
        assert!(parse(json!({"any": true})).is_err_and(|e| e.contains("structure")));
        assert!(parse(json!({"tool": {}})).is_err_and(|e| e.contains("Value null")));
        assert!(parse(json!({"tool": {"name": "a b"}})).is_err_and(|e| e.contains("pattern")));
        assert_eq!(
            parse(json!({"tool": {"name": "current_time"}})),
            Err(
                "The tool current_time in toolConfig.toolChoice is not one of the tools in \
                 toolConfig.tools: calculator, web_search."
                    .into()
            )
        );
        let body = json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "calculator"}}],
                "toolChoice": {"tool": {"name": "nope"}}}});
        assert!(check(body).is_err_and(|e| e.contains("nope")));
    }

    fn thinking_body(budget: Value, max_tokens: Option<u64>) -> Value {
        let mut body = json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": budget}}});
        if let Some(max) = max_tokens {
            body["inferenceConfig"] = json!({"maxTokens": max});
        }
        body
    }

    #[test]
    fn thinking_needs_a_budget_of_1024_below_max_tokens() {
        let thinking = |body: Value| {
            let req = ConverseRequest::parse(body.to_string().as_bytes())?;
            req.validate()?;
            req.thinking()
        };
        assert_eq!(
            thinking(thinking_body(json!(2048), Some(4096))),
            Ok(Some(Thinking {
                budget_tokens: 2048
            }))
        );
        assert_eq!(
            thinking(thinking_body(json!(1024), None)),
            Ok(Some(Thinking {
                budget_tokens: 1024
            }))
        );
        assert_eq!(
            thinking(thinking_body(json!(1000), None)),
            Err(
                "The model returned the following errors: thinking.enabled.budget_tokens: \
                 Input should be greater than or equal to 1024"
                    .into()
            )
        );
        assert_eq!(
            thinking(thinking_body(json!(4096), Some(4096))),
            Err(
                "The model returned the following errors: `max_tokens` must be greater than \
                 `thinking.budget_tokens`. Please consult our documentation at \
                 https://docs.claude.com/en/docs/build-with-claude/extended-thinking\
                 #max-tokens-and-context-window-size"
                    .into()
            )
        );
        assert!(thinking(thinking_body(json!("lots"), None))
            .is_err_and(|e| e.ends_with("budget_tokens: Input should be a valid integer")));
        assert!(thinking(thinking_body(json!(null), None))
            .is_err_and(|e| e.ends_with("budget_tokens: Field required")));
        let disabled = json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
            "additionalModelRequestFields": {"thinking": {"type": "disabled"}}});
        assert_eq!(thinking(disabled), Ok(None));
        let odd = json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
            "additionalModelRequestFields": {"thinking": {"type": "on"}}});
        assert!(thinking(odd).is_err_and(|e| e.contains("Input tag \"on\"")));
        let mut hot = thinking_body(json!(2048), None);
        hot["inferenceConfig"] = json!({"temperature": 0.2});
        assert!(check(hot).is_err_and(|e| e.contains("`temperature` may only be set to 1")));
        let mut forced = thinking_body(json!(2048), None);
        forced["toolConfig"] = json!({"tools": [{"toolSpec": {"name": "calculator"}}],
            "toolChoice": {"any": {}}});
        assert_eq!(
            check(forced),
            Err(
                "The model returned the following errors: Thinking may not be enabled when \
                 tool_choice forces tool use."
                    .into()
            )
        );
    }

    #[test]
    fn thinking_tool_loops_need_the_signed_reasoning_first() {
        let text = "The user asked: a. I will call calculator.";
        let loop_with = |assistant: Value, thinking: bool| {
            let mut body = json!({
            "toolConfig": {"tools": [{"toolSpec": {"name": "calculator"}}]},
            "messages": [
                {"role": "user", "content": [{"text": "a"}]},
                {"role": "assistant", "content": assistant},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": []}}]}
            ]});
            if thinking {
                body["additionalModelRequestFields"] =
                    json!({"thinking": {"type": "enabled", "budget_tokens": 1024}});
            }
            check(body)
        };
        let tool_use = json!({"toolUse": {"toolUseId": "t1", "name": "calculator", "input": {}}});
        let signed = json!({"reasoningContent": {"reasoningText": {
            "text": text, "signature": thinking::signature(text)}}});
        assert_eq!(loop_with(json!([signed, tool_use]), true), Ok(()));
        let redacted = json!({"reasoningContent": {"redactedContent": "c2VjcmV0"}});
        assert_eq!(loop_with(json!([redacted, tool_use]), true), Ok(()));
        assert_eq!(loop_with(json!([tool_use]), false), Ok(()), "thinking off");
        let dropped = loop_with(json!([tool_use]), true);
        assert!(
            dropped.as_ref().is_err_and(|e| e.starts_with(
                "The model returned the following errors: messages.1.content.0.type: Expected \
                 `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is \
                 enabled, a final `assistant` message must start with a thinking block"
            )),
            "{dropped:?}"
        );
        let text_first = loop_with(json!([{"text": "Let me see."}, signed, tool_use]), true);
        assert!(text_first.is_err_and(|e| e.contains("but found `text`")));
        let altered = json!({"reasoningContent": {"reasoningText": {
            "text": "I will not.", "signature": thinking::signature(text)}}});
        let expected = "The model returned the following errors: messages.1.content.0: \
                        Invalid `signature` in `thinking` block";
        assert_eq!(
            loop_with(json!([altered, tool_use]), true),
            Err(expected.into())
        );
        assert_eq!(
            loop_with(json!([altered, tool_use]), false),
            Err(expected.into()),
            "a wrong signature is refused even with thinking off"
        );
        let unsigned = json!({"reasoningContent": {"reasoningText": {"text": text}}});
        assert_eq!(
            loop_with(json!([unsigned, tool_use]), true),
            Err("The model returned the following errors: \
                 messages.1.content.0.thinking.signature: Field required"
                .into())
        );
        assert_eq!(loop_with(json!([unsigned, tool_use]), false), Ok(()));
    }

    #[test]
    fn service_tier_is_one_of_bedrocks() {
        let with_tier = |tier: Value| {
            let body = json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
                "serviceTier": tier});
            let req = ConverseRequest::parse(body.to_string().as_bytes())?;
            req.validate()?;
            Ok::<_, String>(req.service_tier().map(str::to_string))
        };
        for tier in SERVICE_TIERS {
            assert_eq!(with_tier(json!({"type": tier})), Ok(Some(tier.to_string())));
        }
        assert_eq!(with_tier(json!(null)), Ok(None));
        assert_eq!(
            with_tier(json!({"type": "economy"})),
            Err(
                "1 validation error detected: Value 'economy' at 'serviceTier.type' failed to \
                 satisfy constraint: Member must satisfy enum value set: [default, flex, \
                 priority, reserved]"
                    .into()
            )
        );
        assert!(with_tier(json!({})).is_err_and(|e| e.contains("Value null at 'serviceTier.type'")));
    }

    #[test]
    fn rejects_unanswered_or_unknown_tool_results() {
        let tools = json!({"tools": [{"toolSpec": {"name": "calculator"}}]});
        let unanswered = json!({"toolConfig": tools, "messages": [
            {"role": "user", "content": [{"text": "a"}]},
            {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "t1", "name": "calculator", "input": {}}},
                {"toolUse": {"toolUseId": "t2", "name": "calculator", "input": {}}}
            ]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": []}}]}
        ]});
        assert!(check(unanswered).is_err_and(|e| e.contains("t2")));
        let stray = json!({"toolConfig": tools, "messages": [
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t9", "content": []}}]}
        ]});
        assert!(check(stray).is_err_and(|e| e.contains("exceeds")));
        let no_config = json!({"messages": [
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t9", "content": []}}]}
        ]});
        assert!(check(no_config).is_err_and(|e| e.contains("toolConfig")));
    }
}
