//! What the fake model answers: the Bedrock stand-in's script ([`bedrock_standin::script`]),
//! run on the Chat request converted to the Converse shape (tool choice and stop sequences
//! included), so both stand-ins answer a conversation alike; then the OpenAI-only parts
//! (finish reasons, HTTP-status triggers, cached tokens).

use bedrock_standin::request::ConverseRequest;
use bedrock_standin::script::{self, OutBlock, StopReason};
use http::StatusCode;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::request::{ChatMessage, ChatRequest, ToolChoice};

/// A tool call of the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `call_` + 16 hex digits, deterministic.
    pub id: String,
    /// The tool.
    pub name: String,
    /// The arguments, a JSON string.
    pub arguments: String,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The assistant's text, if any.
    pub content: Option<String>,
    /// Its tool calls.
    pub tool_calls: Vec<Call>,
    /// `stop`, `tool_calls` or `length`.
    pub finish_reason: &'static str,
    /// Request body bytes / 4, at least 1.
    pub prompt_tokens: u64,
    /// Answer characters / 4, at least 1.
    pub completion_tokens: u64,
    /// Reported as `prompt_tokens_details.cached_tokens` (0 unless a trigger says).
    pub cached_tokens: u64,
    /// `[[standin:sleep-ms=N]]`.
    pub sleep_ms: Option<u64>,
    /// The error a trigger asks for instead of the answer.
    pub failure: Option<ApiError>,
}

/// Computes the answer to a validated request whose body was `body_len` bytes.
pub fn respond(request: &ChatRequest, body_len: usize) -> Answer {
    let converse = match to_converse(request) {
        Ok(converse) => converse,
        Err(message) => {
            return refused(ApiError::invalid(message).status(StatusCode::INTERNAL_SERVER_ERROR))
        }
    };
    let call = script::Call {
        model_id: &request.model,
        attempt: 0,
    };
    let answer = script::respond(&converse, body_len, &call);

    let mut content = Vec::new();
    let mut tool_calls = Vec::new();
    for block in &answer.blocks {
        match block {
            OutBlock::Text(text) => content.push(text.as_str()),
            OutBlock::ToolUse { id, name, input } => tool_calls.push(Call {
                id: format!("call_{}", id.trim_start_matches("tooluse_")),
                name: name.clone(),
                arguments: input.to_string(),
            }),
            // Only with Claude's `thinking` field, which a Chat request cannot carry.
            OutBlock::Reasoning { .. } => {}
        }
    }
    let finish_reason = match answer.stop_reason {
        StopReason::MaxTokens => "length",
        // OpenAI says `stop` when the tool choice named the function, tool calls or not.
        StopReason::ToolUse if !matches!(request.tool_choice, ToolChoice::Function(_)) => {
            "tool_calls"
        }
        StopReason::ToolUse | StopReason::EndTurn | StopReason::StopSequence => "stop",
    };
    let own = Triggers::scan(request.latest_user_text());
    let failure = if answer.triggers.fail_throttle {
        Some(ApiError::for_status(StatusCode::TOO_MANY_REQUESTS))
    } else {
        own.failure(request.ends_with_tool_results())
    };
    Answer {
        content: (!content.is_empty()).then(|| content.concat()),
        tool_calls,
        finish_reason,
        prompt_tokens: answer.usage.input_tokens,
        completion_tokens: answer.usage.output_tokens,
        cached_tokens: own
            .cached_tokens
            .unwrap_or(0)
            .min(answer.usage.input_tokens),
        sleep_ms: answer.triggers.sleep_ms,
        failure,
    }
}

fn refused(error: ApiError) -> Answer {
    Answer {
        content: None,
        tool_calls: Vec::new(),
        finish_reason: "stop",
        prompt_tokens: 1,
        completion_tokens: 1,
        cached_tokens: 0,
        sleep_ms: None,
        failure: Some(error),
    }
}

/// The Chat request as the Converse request the Bedrock script reads, built as Converse JSON
/// and read with the Bedrock stand-in's own parser: system messages left out, each run of
/// tool messages one user message of tool results, the tool choice as `toolChoice` (`none`:
/// no tools offered), `stop` as `stopSequences`.
pub fn to_converse(request: &ChatRequest) -> Result<ConverseRequest, String> {
    let mut messages: Vec<Value> = Vec::new();
    for message in &request.messages {
        match message {
            ChatMessage::System(_) => {}
            ChatMessage::User(text) => {
                let content: Vec<Value> = text_block(text).into_iter().collect();
                messages.push(json!({"role": "user", "content": content}));
            }
            ChatMessage::Assistant {
                content,
                tool_calls,
            } => {
                let mut blocks: Vec<Value> = content
                    .as_deref()
                    .and_then(text_block)
                    .into_iter()
                    .collect();
                blocks.extend(tool_calls.iter().map(|call| {
                    let input = serde_json::from_str(&call.arguments)
                        .unwrap_or(Value::String(call.arguments.clone()));
                    json!({"toolUse": {"toolUseId": call.id, "name": call.name, "input": input}})
                }));
                messages.push(json!({"role": "assistant", "content": blocks}));
            }
            ChatMessage::Tool {
                tool_call_id,
                content,
            } => {
                let result = json!({"toolResult": {"toolUseId": tool_call_id,
                    "content": [{"text": content}]}});
                let previous = messages.last_mut().filter(|m| {
                    m["role"] == "user"
                        && m["content"].as_array().is_some_and(|blocks| {
                            !blocks.is_empty()
                                && blocks.iter().all(|b| b.get("toolResult").is_some())
                        })
                });
                match previous.and_then(|m| m["content"].as_array_mut()) {
                    Some(blocks) => blocks.push(result),
                    None => messages.push(json!({"role": "user", "content": [result]})),
                }
            }
        }
    }
    let mut body = json!({"messages": messages});
    let offered: Vec<&String> = match &request.tool_choice {
        ToolChoice::None => Vec::new(),
        _ => request.tools.iter().collect(),
    };
    if !offered.is_empty() {
        let tools: Vec<Value> = offered
            .iter()
            .map(|name| json!({"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}}))
            .collect();
        let choice = match &request.tool_choice {
            ToolChoice::Required => json!({"any": {}}),
            ToolChoice::Function(name) => json!({"tool": {"name": name}}),
            ToolChoice::Auto | ToolChoice::None => json!({"auto": {}}),
        };
        body["toolConfig"] = json!({"tools": tools, "toolChoice": choice});
    }
    let stops: Vec<&String> = request.stop.iter().filter(|s| !s.is_empty()).collect();
    if !stops.is_empty() {
        body["inferenceConfig"] = json!({"stopSequences": stops});
    }
    ConverseRequest::parse(body.to_string().as_bytes())
}

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({"text": text}))
}

/// The triggers only this stand-in reads (the Bedrock script reads, and removes from the
/// text, `fail-throttle`, `sleep-ms=N`, `always-tool` and `max-tokens`). The Bedrock
/// stand-in's error triggers named by Bedrock error (`fail@<model>=`, `fail-first=`,
/// `fail-in-stream=`) are refused here rather than ignored, so a test does not pass on a
/// failure that never happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triggers {
    /// `[[standin:fail=<status>]]`.
    pub fail: Option<StatusCode>,
    /// `[[standin:fail-after-tools=<status>]]`.
    pub fail_after_tools: Option<StatusCode>,
    /// `[[standin:cached-tokens=N]]`.
    pub cached_tokens: Option<u64>,
    /// A `fail=` / `fail-after-tools=` marker whose value is not an HTTP error status, or a
    /// Bedrock-only error trigger.
    pub unknown: Option<String>,
}

impl Triggers {
    /// The triggers in `text`.
    pub fn scan(text: &str) -> Self {
        let mut triggers = Self::default();
        let mut rest = text;
        while let Some(start) = rest.find("[[standin:") {
            let after = &rest[start + "[[standin:".len()..];
            let Some(end) = after.find("]]") else { break };
            let marker = after[..end].trim();
            let status = |value: &str| {
                value
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|s| (400..=599).contains(s))
                    .and_then(|s| StatusCode::from_u16(s).ok())
            };
            if let Some(value) = marker.strip_prefix("fail=") {
                triggers.fail = status(value);
                if triggers.fail.is_none() {
                    triggers.unknown = Some(marker.to_owned());
                }
            } else if let Some(value) = marker.strip_prefix("fail-after-tools=") {
                triggers.fail_after_tools = status(value);
                if triggers.fail_after_tools.is_none() {
                    triggers.unknown = Some(marker.to_owned());
                }
            } else if let Some(value) = marker.strip_prefix("cached-tokens=") {
                triggers.cached_tokens = value.trim().parse().ok();
            } else if ["fail@", "fail-first=", "fail-in-stream="]
                .iter()
                .any(|prefix| marker.starts_with(prefix))
            {
                triggers.unknown = Some(marker.to_owned());
            }
            rest = &after[end + 2..];
        }
        triggers
    }

    /// The error to answer with: a malformed marker first, then `fail=`, then
    /// `fail-after-tools=` once the conversation ends with tool results.
    pub fn failure(&self, after_tools: bool) -> Option<ApiError> {
        if let Some(marker) = &self.unknown {
            return Some(ApiError::invalid(format!(
                "Unknown stand-in trigger [[standin:{marker}]]: the OpenAI stand-in takes \
                 fail=<status> and fail-after-tools=<status>, an HTTP error status from 400 \
                 to 599"
            )));
        }
        self.fail
            .or(self.fail_after_tools.filter(|_| after_tools))
            .map(ApiError::for_status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(body: Value) -> Answer {
        let raw = body.to_string();
        respond(
            &ChatRequest::parse(raw.as_bytes()).expect("valid"),
            raw.len(),
        )
    }

    fn tools(names: &[&str]) -> Value {
        names
            .iter()
            .map(|n| json!({"type": "function", "function": {"name": n}}))
            .collect()
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    #[test]
    fn answers_like_the_bedrock_stand_in() {
        let echo = answer(json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"}, user("hello there")]}));
        assert_eq!(echo.content.as_deref(), Some("You said: hello there"));
        assert_eq!(echo.finish_reason, "stop");
        assert!(echo.tool_calls.is_empty());

        let first = answer(json!({"model": "m", "tools": tools(&["calculator"]),
            "messages": [user("What is 6*7?")]}));
        assert_eq!(first.finish_reason, "tool_calls");
        assert_eq!(first.content.as_deref(), Some("Let me calculate that."));
        assert_eq!(first.tool_calls.len(), 1);
        let call = &first.tool_calls[0];
        assert_eq!(
            (call.name.as_str(), call.arguments.as_str()),
            ("calculator", r#"{"expression":"6*7"}"#)
        );
        assert!(
            call.id.starts_with("call_") && call.id.len() == 21,
            "{}",
            call.id
        );

        let last = answer(
            json!({"model": "m", "tools": tools(&["calculator"]), "messages": [
            user("What is 6*7?"),
            {"role": "assistant", "content": "Let me calculate that.", "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": "calculator", "arguments": call.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "42"}]}),
        );
        assert_eq!(
            last.content.as_deref(),
            Some("The calculator tool says: 42")
        );
        assert_eq!(last.finish_reason, "stop");
    }

    #[test]
    fn the_tool_choice_decides_whether_a_tool_is_called() {
        let ask = |choice: Value, text: &str| {
            answer(
                json!({"model": "m", "tools": tools(&["calculator", "current_time"]),
                "tool_choice": choice, "messages": [user(text)]}),
            )
        };
        let none = ask(json!("none"), "What is 6*7?");
        assert!(none.tool_calls.is_empty());
        assert_eq!(none.finish_reason, "stop");
        let required = ask(json!("required"), "hello");
        assert_eq!(required.tool_calls.len(), 1);
        assert_eq!(required.tool_calls[0].name, "calculator");
        assert_eq!(required.finish_reason, "tool_calls");
        assert_eq!(required.content, None, "a forced call comes with no text");
        let named = ask(
            json!({"type": "function", "function": {"name": "current_time"}}),
            "What is 6*7?",
        );
        assert_eq!(named.tool_calls.len(), 1);
        assert_eq!(named.tool_calls[0].name, "current_time");
        assert_eq!(
            named.finish_reason, "stop",
            "OpenAI's finish reason for a named tool choice"
        );
    }

    #[test]
    fn a_stop_sequence_cuts_the_answer_and_stops() {
        let cut = answer(
            json!({"model": "m", "stop": ["there"], "tools": tools(&["calculator"]),
            "messages": [user("Hello there friend")]}),
        );
        assert_eq!(cut.content.as_deref(), Some("You said: Hello "));
        assert!(cut.tool_calls.is_empty());
        assert_eq!(cut.finish_reason, "stop");
        let calls = answer(
            json!({"model": "m", "stop": "zzz", "tools": tools(&["calculator"]),
            "messages": [user("6*7?")]}),
        );
        assert_eq!(calls.finish_reason, "tool_calls");
    }

    #[test]
    fn triggers_choose_the_failure() {
        let fail = |text: &str| answer(json!({"model": "m", "messages": [user(text)]})).failure;
        assert_eq!(fail("hi"), None);
        assert_eq!(
            fail("[[standin:fail-throttle]] hi").map(|e| e.status),
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        assert_eq!(
            fail("hi [[standin:fail=503]]").map(|e| e.status),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        let bedrock_only = fail("[[standin:fail-in-stream=ModelStreamErrorException]] hi");
        assert_eq!(
            bedrock_only.map(|e| e.status),
            Some(StatusCode::BAD_REQUEST)
        );
        let typo = fail("[[standin:fail=ThrottlingException]]").expect("a failure");
        assert_eq!(typo.status, StatusCode::BAD_REQUEST);
        assert!(typo
            .message
            .starts_with("Unknown stand-in trigger [[standin:fail=ThrottlingException]]"));
        assert_eq!(fail("[[standin:fail-after-tools=500]] hi"), None);
        let cached =
            answer(json!({"model": "m", "messages": [user("[[standin:cached-tokens=5]] hi")]}));
        assert_eq!(cached.cached_tokens, 5);
        assert_eq!(
            cached.content.as_deref(),
            Some("You said: hi"),
            "markers are not echoed"
        );
    }

    #[test]
    fn fail_after_tools_waits_for_tool_results() {
        let text = "[[standin:fail-after-tools=502]] 6*7";
        let first = answer(
            json!({"model": "m", "tools": tools(&["calculator"]), "messages": [user(text)]}),
        );
        assert_eq!(first.failure, None);
        let call = &first.tool_calls[0];
        let second = answer(
            json!({"model": "m", "tools": tools(&["calculator"]), "messages": [
            user(text),
            {"role": "assistant", "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": "calculator", "arguments": call.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "42"}]}),
        );
        assert_eq!(
            second.failure.map(|e| e.status),
            Some(StatusCode::BAD_GATEWAY)
        );
    }
}
