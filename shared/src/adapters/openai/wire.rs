//! The domain's request as a Chat Completions body, and a `chat.completion` back as the
//! domain's response. Pure functions: no I/O.
//!
//! Out: the system prompt is a `system` message; user text a `user` message; an assistant
//! message's text and tool uses one `assistant` message (`content` and `tool_calls`, the
//! arguments serialized JSON); each tool result a `tool` message (`tool_call_id`, its parts
//! joined by newlines, JSON compact, an error's text after [`TOOL_ERROR_PREFIX`]), placed
//! before any text of the same user message since OpenAI wants tool messages right after the
//! calls. Reasoning blocks are not sent (OpenAI-compatible servers do not take them back); an
//! assistant message left empty is not sent. Tools are `function` tools; the tool choice
//! `auto`, `required` or the named function (only with tools); `max_tokens`, `temperature`,
//! `top_p`, `stop`, `service_tier`. `additional_fields` (a JSON object) is merged into the
//! body's top level: a field replaces the adapter's, a `null` removes it (say
//! `{"max_tokens": null, "max_completion_tokens": 4096}` for o-series models), and the fields
//! the adapter owns ([`OWN_FIELDS`]) cannot be set. A guardrail is a Bedrock feature: a
//! request asking for one is refused rather than sent without it.
//!
//! Back: `content` is a text block, `tool_calls` tool-use blocks (arguments parsed; text that
//! is not a JSON object becomes `{"_raw": "<text>"}`); `finish_reason` `stop` is `EndTurn`
//! (`ToolUse` when tool calls came with it, as OpenAI answers a forced function), `tool_calls`
//! `ToolUse`, `length` `MaxTokens`, `content_filter` `ContentFiltered`, anything else `Other`;
//! usage `prompt_tokens` less `prompt_tokens_details.cached_tokens` is `input_tokens`, the
//! cached tokens `cache_read_tokens`, `completion_tokens` `output_tokens`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::{
    domain::{
        message::{ContentBlock, Message, Role, ToolResultContent, ToolStatus},
        model::{ModelRequest, ModelResponse, ModelStopReason, ToolChoice, Usage},
    },
    ports::ModelError,
};

/// What a failed tool's result starts with, so the model knows the call failed.
pub const TOOL_ERROR_PREFIX: &str = "Error: ";

/// Top-level fields the adapter owns: `additional_fields` may not set them.
pub const OWN_FIELDS: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "stream",
    "stream_options",
];

/// The request body for `model`; with `stream`, asking for usage in the stream too.
pub fn chat_body(model: &str, request: &ModelRequest, stream: bool) -> Result<Value, ModelError> {
    if request.guardrail.is_some() {
        return Err(ModelError::Invalid(
            "a guardrail is configured, and guardrails are a Bedrock feature: the \
             OpenAI-compatible provider cannot apply one"
                .into(),
        ));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(chat_messages(request)));
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|spec| {
                json!({"type": "function", "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": spec.input_schema,
                }})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = &request.tool_choice {
            let choice = match choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::Any => json!("required"),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            };
            body.insert("tool_choice".into(), choice);
        }
    }
    let inference = &request.inference;
    if let Some(max_tokens) = inference.max_tokens {
        body.insert("max_tokens".into(), json!(max_tokens));
    }
    if let Some(temperature) = inference.temperature {
        body.insert("temperature".into(), decimal(temperature));
    }
    if let Some(top_p) = inference.top_p {
        body.insert("top_p".into(), decimal(top_p));
    }
    if !inference.stop_sequences.is_empty() {
        body.insert("stop".into(), json!(inference.stop_sequences));
    }
    if let Some(tier) = request.service_tier {
        body.insert("service_tier".into(), json!(tier.as_str()));
    }
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(extra) = &request.additional_fields {
        let Value::Object(extra) = extra else {
            return Err(ModelError::Invalid(
                "additional request fields must be a JSON object".into(),
            ));
        };
        for (name, value) in extra {
            if OWN_FIELDS.contains(&name.as_str()) {
                return Err(ModelError::Invalid(format!(
                    "the additional request field '{name}' is set by the adapter"
                )));
            }
            if value.is_null() {
                body.remove(name);
            } else {
                body.insert(name.clone(), value.clone());
            }
        }
    }
    Ok(Value::Object(body))
}

/// An `f32` as the decimal it was written as (`0.7`, not `0.699999988079071`).
fn decimal(value: f32) -> Value {
    value
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// The conversation as Chat messages.
pub fn chat_messages(request: &ModelRequest) -> Vec<Value> {
    let mut messages = Vec::new();
    if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
        messages.push(json!({"role": "system", "content": system}));
    }
    for message in &request.messages {
        match message.role {
            Role::User => user_messages(message, &mut messages),
            Role::Assistant => messages.extend(assistant_message(message)),
        }
    }
    messages
}

fn user_messages(message: &Message, out: &mut Vec<Value>) {
    let mut texts = Vec::new();
    for block in &message.content {
        match block {
            ContentBlock::Text { text } => texts.push(text.as_str()),
            ContentBlock::ToolResult {
                tool_use_id,
                status,
                content,
            } => out.push(json!({
                "role": "tool",
                "tool_call_id": tool_use_id,
                "content": tool_result_text(*status, content),
            })),
            ContentBlock::ToolUse { .. }
            | ContentBlock::Reasoning { .. }
            | ContentBlock::RedactedReasoning { .. } => {}
        }
    }
    if !texts.is_empty() {
        out.push(json!({"role": "user", "content": texts.join("\n")}));
    }
}

/// A tool result's parts joined by newlines (JSON compact); an error's after
/// [`TOOL_ERROR_PREFIX`].
pub fn tool_result_text(status: ToolStatus, content: &[ToolResultContent]) -> String {
    let parts: Vec<String> = content
        .iter()
        .map(|part| match part {
            ToolResultContent::Text { text } => text.clone(),
            ToolResultContent::Json { json } => json.to_string(),
        })
        .collect();
    let text = if parts.is_empty() {
        "(no output)".to_owned()
    } else {
        parts.join("\n")
    };
    match status {
        ToolStatus::Success => text,
        ToolStatus::Error => format!("{TOOL_ERROR_PREFIX}{text}"),
    }
}

fn assistant_message(message: &Message) -> Option<Value> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for block in &message.content {
        match block {
            ContentBlock::Text { text } => texts.push(text.as_str()),
            ContentBlock::ToolUse {
                tool_use_id,
                name,
                input,
            } => calls.push(json!({
                "id": tool_use_id,
                "type": "function",
                "function": {"name": name, "arguments": input.to_string()},
            })),
            _ => {}
        }
    }
    if texts.is_empty() && calls.is_empty() {
        return None;
    }
    let content = (!texts.is_empty()).then(|| texts.join("\n"));
    let mut message = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Some(message)
}

/// A `chat.completion` object (the parts read).
#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    message: WireMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: String,
    #[serde(default)]
    function: WireFunction,
}

#[derive(Debug, Default, Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

/// The `usage` object.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl WireUsage {
    /// As the domain counts it: cached tokens apart from those billed at the full price.
    pub fn to_usage(self) -> Usage {
        let prompt = self.prompt_tokens.unwrap_or(0);
        let cached = self
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
            .min(prompt);
        Usage {
            input_tokens: prompt - cached,
            output_tokens: self.completion_tokens.unwrap_or(0),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
        }
    }
}

/// Parses a `chat.completion` body.
pub fn from_completion(body: &[u8]) -> Result<ModelResponse, ModelError> {
    let completion: Completion = serde_json::from_slice(body).map_err(|_| {
        ModelError::Unavailable("the model provider's answer is not a chat completion".into())
    })?;
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(ModelError::Unavailable(
            "the model provider answered no choice".into(),
        ));
    };
    let mut content = Vec::new();
    let text = choice.message.content.as_ref().map(content_text);
    if let Some(text) = text
        .filter(|t| !t.is_empty())
        .or(choice.message.refusal.filter(|r| !r.is_empty()))
    {
        content.push(ContentBlock::Text { text });
    }
    for call in choice.message.tool_calls.unwrap_or_default() {
        let input = match call.function.arguments {
            Some(Value::String(arguments)) => tool_input(&arguments),
            Some(Value::Object(input)) => Value::Object(input),
            None | Some(Value::Null) => json!({}),
            Some(other) => tool_input(&other.to_string()),
        };
        content.push(ContentBlock::ToolUse {
            tool_use_id: call.id,
            name: call.function.name,
            input,
        });
    }
    let has_calls = content
        .iter()
        .any(|b| matches!(b, ContentBlock::ToolUse { .. }));
    Ok(ModelResponse {
        message: Message {
            role: Role::Assistant,
            content,
        },
        stop_reason: stop_reason(choice.finish_reason.as_deref(), has_calls),
        usage: completion.usage.unwrap_or_default().to_usage(),
    })
}

/// A message content: a string, or the `text` of an array of parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Tool-call arguments as the tool's input: the JSON object they hold; empty text is `{}`;
/// anything else (not JSON, or JSON that is not an object) is `{"_raw": "<text>"}`, so a
/// malformed call reaches the tool (which refuses it, for the model to read) instead of
/// failing the turn.
pub fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(input)) => Value::Object(input),
        _ => json!({"_raw": arguments}),
    }
}

/// `finish_reason` as the domain's stop reason; `stop` with tool calls is `ToolUse` (OpenAI
/// answers a forced function call so).
pub fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> ModelStopReason {
    match finish_reason {
        Some("stop") | None if has_tool_calls => ModelStopReason::ToolUse,
        Some("stop") => ModelStopReason::EndTurn,
        Some("tool_calls" | "function_call") => ModelStopReason::ToolUse,
        Some("length") => ModelStopReason::MaxTokens,
        Some("content_filter") => ModelStopReason::ContentFiltered,
        Some(other) => ModelStopReason::Other(other.to_owned()),
        None => ModelStopReason::Other("unknown".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{GuardrailConfig, InferenceConfig, ServiceTier, ToolSpec};

    fn request() -> ModelRequest {
        ModelRequest {
            system: Some("Be terse.".into()),
            messages: vec![
                Message::user_text("What is 6*7?"),
                Message {
                    role: Role::Assistant,
                    content: vec![
                        ContentBlock::Reasoning {
                            text: "multiply".into(),
                            signature: Some("sig".into()),
                        },
                        ContentBlock::Text {
                            text: "Calculating.".into(),
                        },
                        ContentBlock::ToolUse {
                            tool_use_id: "call_1".into(),
                            name: "calculator".into(),
                            input: json!({"expression": "6*7"}),
                        },
                        ContentBlock::ToolUse {
                            tool_use_id: "call_2".into(),
                            name: "current_time".into(),
                            input: json!({}),
                        },
                    ],
                },
                Message {
                    role: Role::User,
                    content: vec![
                        ContentBlock::ToolResult {
                            tool_use_id: "call_1".into(),
                            status: ToolStatus::Success,
                            content: vec![
                                ToolResultContent::Json {
                                    json: json!({"result": 42}),
                                },
                                ToolResultContent::Text { text: "ok".into() },
                            ],
                        },
                        ContentBlock::ToolResult {
                            tool_use_id: "call_2".into(),
                            status: ToolStatus::Error,
                            content: vec![ToolResultContent::Text {
                                text: "no clock".into(),
                            }],
                        },
                    ],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![ContentBlock::RedactedReasoning {
                        data: "AAEC".into(),
                    }],
                },
                Message::user_text("Thanks"),
            ],
            tools: vec![ToolSpec {
                name: "calculator".into(),
                description: "Evaluates arithmetic".into(),
                input_schema: json!({"type": "object"}),
            }],
            inference: InferenceConfig {
                max_tokens: Some(512),
                temperature: Some(0.7),
                top_p: Some(0.9),
                stop_sequences: vec!["END".into()],
            },
            tool_choice: Some(ToolChoice::Any),
            service_tier: Some(ServiceTier::Flex),
            ..ModelRequest::default()
        }
    }

    #[test]
    fn the_request_maps_to_chat_messages_tools_and_settings() {
        let body = chat_body("gpt-4o-mini", &request(), false).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "What is 6*7?"},
                {"role": "assistant", "content": "Calculating.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\":\"6*7\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "current_time", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"result\":42}\nok"},
                {"role": "tool", "tool_call_id": "call_2", "content": "Error: no clock"},
                {"role": "user", "content": "Thanks"}
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {"name": "calculator",
                "description": "Evaluates arithmetic", "parameters": {"type": "object"}}}])
        );
        assert_eq!(body["tool_choice"], "required");
        assert_eq!(body["max_tokens"], 512);
        assert_eq!(body["temperature"], json!(0.7));
        assert_eq!(body["top_p"], json!(0.9));
        assert_eq!(body["stop"], json!(["END"]));
        assert_eq!(body["service_tier"], "flex");
        assert!(body.get("stream").is_none());
        let streamed = chat_body("m", &request(), true).unwrap();
        assert_eq!(streamed["stream"], true);
        assert_eq!(streamed["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn tool_choices_map_and_are_sent_only_with_tools() {
        let choice = |choice: ToolChoice, tools: bool| {
            let mut request = request();
            request.tool_choice = Some(choice);
            if !tools {
                request.tools.clear();
            }
            chat_body("m", &request, false)
                .unwrap()
                .get("tool_choice")
                .cloned()
        };
        assert_eq!(choice(ToolChoice::Auto, true), Some(json!("auto")));
        assert_eq!(
            choice(ToolChoice::Tool("calculator".into()), true),
            Some(json!({"type": "function", "function": {"name": "calculator"}}))
        );
        assert_eq!(choice(ToolChoice::Any, false), None);
    }

    #[test]
    fn additional_fields_are_merged_at_the_top_level_and_null_removes_a_field() {
        let mut request = request();
        request.additional_fields = Some(
            json!({"seed": 7, "max_tokens": null, "max_completion_tokens": 900, "temperature": 0.1}),
        );
        let body = chat_body("m", &request, false).unwrap();
        assert_eq!(body["seed"], 7);
        assert!(body.get("max_tokens").is_none());
        assert_eq!(body["max_completion_tokens"], 900);
        assert_eq!(body["temperature"], json!(0.1));
        request.additional_fields = Some(json!({"stream": true}));
        assert!(
            matches!(chat_body("m", &request, false), Err(ModelError::Invalid(m)) if m.contains("'stream'"))
        );
        request.additional_fields = Some(json!([1]));
        assert!(matches!(
            chat_body("m", &request, false),
            Err(ModelError::Invalid(_))
        ));
    }

    #[test]
    fn a_guardrail_is_refused_rather_than_silently_skipped() {
        let mut request = request();
        request.guardrail = Some(GuardrailConfig {
            id: "g".into(),
            version: "1".into(),
        });
        assert!(
            matches!(chat_body("m", &request, false), Err(ModelError::Invalid(m)) if m.contains("guardrail"))
        );
    }

    #[test]
    fn a_completion_maps_to_text_tool_uses_stop_reason_and_usage() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me calculate that.",
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\":\"6*7\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\": 6*"}},
                    {"id": "call_c", "type": "function", "function": {"name": "current_time", "arguments": ""}}
                ]}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                "prompt_tokens_details": {"cached_tokens": 64}}
        });
        let response = from_completion(body.to_string().as_bytes()).unwrap();
        assert_eq!(response.stop_reason, ModelStopReason::ToolUse);
        assert_eq!(
            response.usage,
            Usage {
                input_tokens: 36,
                output_tokens: 20,
                cache_read_tokens: 64,
                cache_write_tokens: 0
            }
        );
        assert_eq!(
            response.message.content,
            vec![
                ContentBlock::Text {
                    text: "Let me calculate that.".into()
                },
                ContentBlock::ToolUse {
                    tool_use_id: "call_a".into(),
                    name: "calculator".into(),
                    input: json!({"expression": "6*7"})
                },
                ContentBlock::ToolUse {
                    tool_use_id: "call_b".into(),
                    name: "calculator".into(),
                    input: json!({"_raw": "{\"expression\": 6*"})
                },
                ContentBlock::ToolUse {
                    tool_use_id: "call_c".into(),
                    name: "current_time".into(),
                    input: json!({})
                },
            ]
        );
    }

    #[test]
    fn finish_reasons_map_to_stop_reasons() {
        assert_eq!(stop_reason(Some("stop"), false), ModelStopReason::EndTurn);
        assert_eq!(stop_reason(Some("stop"), true), ModelStopReason::ToolUse);
        assert_eq!(
            stop_reason(Some("tool_calls"), true),
            ModelStopReason::ToolUse
        );
        assert_eq!(
            stop_reason(Some("length"), true),
            ModelStopReason::MaxTokens
        );
        assert_eq!(
            stop_reason(Some("content_filter"), false),
            ModelStopReason::ContentFiltered
        );
        assert_eq!(
            stop_reason(Some("eos"), false),
            ModelStopReason::Other("eos".into())
        );
        assert_eq!(tool_input("[1, 2]"), json!({"_raw": "[1, 2]"}));
    }

    #[test]
    fn unreadable_or_empty_completions_are_unavailable() {
        assert!(matches!(
            from_completion(b"<html>"),
            Err(ModelError::Unavailable(_))
        ));
        assert!(matches!(
            from_completion(br#"{"choices": []}"#),
            Err(ModelError::Unavailable(_))
        ));
        let refusal = from_completion(
            br#"{"choices": [{"finish_reason": "stop", "message": {"content": null, "refusal": "I can't help with that."}}]}"#,
        )
        .unwrap();
        assert_eq!(refusal.message.text(), "I can't help with that.");
        assert_eq!(refusal.usage, Usage::default());
    }
}
