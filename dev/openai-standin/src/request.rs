//! A Chat Completions request as the stand-in reads it, checked as OpenAI checks it.
//!
//! Validation covers what an agent is most likely to get wrong: the body is a JSON object
//! with a `model` and a non-empty `messages` array; only known top-level parameters are
//! accepted (OpenAI answers `Unrecognized request argument supplied: <name>` otherwise);
//! roles are `system`, `developer`, `user`, `assistant` or `tool`; an assistant message has
//! `content` or `tool_calls`, each call `{id, type: "function", function: {name, arguments:
//! <string>}}`; every `tool` message answers, by `tool_call_id`, a call of the assistant
//! message before its run of tool messages, and every call is answered before the next
//! other message; tools are `{type: "function", function: {name, ...}}` with names matching
//! `^[a-zA-Z0-9_-]{1,64}$`; `tool_choice` is `none`, `auto`, `required` or
//! `{"type": "function", "function": {"name"}}` naming an offered tool (and only with
//! tools); `max_tokens` / `max_completion_tokens` at least 1, `temperature` within 0..=2,
//! `top_p` within 0..=1, `stop` a string or up to 4 strings, `stream_options` only with
//! `stream: true`.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Top-level parameters OpenAI's Chat Completions accepts.
const KNOWN_PARAMETERS: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "stream",
    "stream_options",
    "n",
    "seed",
    "user",
    "response_format",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "service_tier",
    "reasoning_effort",
    "metadata",
    "store",
    "modalities",
    "prediction",
    "audio",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
    "safety_identifier",
];

/// A validated request: what the script needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The model asked for.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Names of the offered function tools, in order.
    pub tools: Vec<String>,
    /// The tool choice (`auto` when absent).
    pub tool_choice: ToolChoice,
    /// `stop`: the stop sequences.
    pub stop: Vec<String>,
    /// `stream: true`.
    pub stream: bool,
    /// `stream_options.include_usage: true`.
    pub include_usage: bool,
}

/// One message.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatMessage {
    /// A `system` or `developer` message.
    System(String),
    /// A `user` message: its text parts joined by newlines.
    User(String),
    /// An `assistant` message.
    Assistant {
        /// Its text, if any.
        content: Option<String>,
        /// Its tool calls.
        tool_calls: Vec<ToolCall>,
    },
    /// A `tool` message.
    Tool {
        /// The call it answers.
        tool_call_id: String,
        /// Its text.
        content: String,
    },
}

/// A tool call of an assistant message.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The id a `tool` message answers.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments, a JSON string as sent.
    pub arguments: String,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// `"auto"` (or absent): the model decides.
    Auto,
    /// `"none"`: no tool calls.
    None,
    /// `"required"`: at least one tool call.
    Required,
    /// `{"type": "function", "function": {"name"}}`: a call of this tool.
    Function(String),
}

impl ChatRequest {
    /// Parses and checks a request body.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|_| {
            ApiError::invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means \
                 you aren't using your HTTP library correctly. The OpenAI API expects a JSON \
                 payload, but what was sent was not valid JSON.)",
            )
        })?;
        let Value::Object(body) = value else {
            return Err(ApiError::wrong_type("body", "an object", &value));
        };
        if let Some(unknown) = body
            .keys()
            .find(|k| !KNOWN_PARAMETERS.contains(&k.as_str()))
        {
            return Err(ApiError::invalid(format!(
                "Unrecognized request argument supplied: {unknown}"
            ))
            .param(unknown.as_str()));
        }
        let model = match body.get("model") {
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            None | Some(Value::Null) => {
                return Err(ApiError::invalid("you must provide a model parameter"))
            }
            Some(other) => return Err(ApiError::wrong_type("model", "a string", other)),
        };
        check_sampling(&body)?;
        let tools = tools(&body)?;
        let tool_choice = tool_choice(&body, &tools)?;
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(ApiError::wrong_type("stream", "a boolean", other)),
        };
        let include_usage = match body.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(_) if !stream => {
                return Err(ApiError::invalid(
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                )
                .param("stream_options"))
            }
            Some(Value::Object(options)) => {
                options.get("include_usage") == Some(&Value::Bool(true))
            }
            Some(other) => return Err(ApiError::wrong_type("stream_options", "an object", other)),
        };
        let messages = messages(&body)?;
        let stop = match body.get("stop") {
            Some(Value::String(stop)) => vec![stop.clone()],
            Some(Value::Array(stops)) => stops
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            model,
            messages,
            tools,
            tool_choice,
            stop,
            stream,
            include_usage,
        })
    }

    /// The text of the most recent user message that has some.
    pub fn latest_user_text(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find_map(|m| match m {
                ChatMessage::User(text) if !text.is_empty() => Some(text.as_str()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Whether the conversation ends with tool results.
    pub fn ends_with_tool_results(&self) -> bool {
        matches!(self.messages.last(), Some(ChatMessage::Tool { .. }))
    }
}

fn check_sampling(body: &Map<String, Value>) -> Result<(), ApiError> {
    for name in ["max_tokens", "max_completion_tokens"] {
        match body.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_i64().is_some() => {
                let n = n.as_i64().unwrap_or_default();
                if n < 1 {
                    return Err(ApiError::invalid(format!(
                        "Invalid '{name}': integer below minimum value. Expected a value >= 1, \
                         but got {n} instead."
                    ))
                    .param(name)
                    .code("integer_below_min_value"));
                }
            }
            Some(other) => return Err(ApiError::wrong_type(name, "an integer", other)),
        }
    }
    for (name, max) in [("temperature", 2.0), ("top_p", 1.0)] {
        match body.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or_default();
                if v < 0.0 {
                    return Err(ApiError::invalid(format!(
                        "Invalid '{name}': decimal below minimum value. Expected a value >= 0, \
                         but got {v} instead."
                    ))
                    .param(name)
                    .code("decimal_below_min_value"));
                }
                if v > max {
                    return Err(ApiError::invalid(format!(
                        "Invalid '{name}': decimal above maximum value. Expected a value <= \
                         {max}, but got {v} instead."
                    ))
                    .param(name)
                    .code("decimal_above_max_value"));
                }
            }
            Some(other) => return Err(ApiError::wrong_type(name, "a decimal", other)),
        }
    }
    match body.get("stop") {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(stops)) if stops.len() > 4 => Err(ApiError::invalid(format!(
            "Invalid 'stop': array too long. Expected an array with maximum length 4, but got \
             an array with length {} instead.",
            stops.len()
        ))
        .param("stop")
        .code("array_above_max_length")),
        Some(Value::Array(stops)) => match stops.iter().position(|s| !s.is_string()) {
            Some(i) => Err(ApiError::wrong_type(
                &format!("stop[{i}]"),
                "a string",
                &stops[i],
            )),
            None => Ok(()),
        },
        Some(other) => Err(ApiError::wrong_type("stop", "a string or array", other)),
    }
}

/// Whether a function name matches `^[a-zA-Z0-9_-]{1,64}$`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn tools(body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(other) => return Err(ApiError::wrong_type("tools", "an array", other)),
    };
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let kind = tool.get("type").and_then(Value::as_str);
        match kind {
            Some("function") => {}
            None => return Err(ApiError::missing(&format!("tools[{i}].type"))),
            Some(other) => {
                return Err(ApiError::bad_value(
                    &format!("tools[{i}].type"),
                    other,
                    "'function'",
                ))
            }
        }
        let param = format!("tools[{i}].function.name");
        let name = match tool.get("function").and_then(|f| f.get("name")) {
            Some(Value::String(name)) => name,
            None => return Err(ApiError::missing(&param)),
            Some(other) => return Err(ApiError::wrong_type(&param, "a string", other)),
        };
        if name.len() > 64 {
            return Err(ApiError::invalid(format!(
                "Invalid '{param}': string too long. Expected a string with maximum length 64, \
                 but got a string with length {} instead.",
                name.len()
            ))
            .param(param)
            .code("string_above_max_length"));
        }
        if !is_valid_name(name) {
            return Err(ApiError::invalid(format!(
                "Invalid '{param}': string does not match pattern. Expected a string that \
                 matches the pattern '^[a-zA-Z0-9_-]+$'."
            ))
            .param(param)
            .code("invalid_value"));
        }
        names.push(name.clone());
    }
    Ok(names)
}

fn tool_choice(body: &Map<String, Value>, tools: &[String]) -> Result<ToolChoice, ApiError> {
    let choice = match body.get("tool_choice") {
        None | Some(Value::Null) => return Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(ApiError::bad_value(
                    "tool_choice",
                    other,
                    "'none', 'auto', 'required'",
                ))
            }
        },
        Some(Value::Object(choice)) => {
            if choice.get("type").and_then(Value::as_str) != Some("function") {
                return Err(ApiError::missing("tool_choice.type"));
            }
            match choice.get("function").and_then(|f| f.get("name")) {
                Some(Value::String(name)) => ToolChoice::Function(name.clone()),
                _ => return Err(ApiError::missing("tool_choice.function.name")),
            }
        }
        Some(other) => {
            return Err(ApiError::wrong_type(
                "tool_choice",
                "a string or object",
                other,
            ))
        }
    };
    if tools.is_empty() && !matches!(choice, ToolChoice::Auto | ToolChoice::None) {
        return Err(ApiError::invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are \
             specified.",
        )
        .param("tool_choice"));
    }
    if let ToolChoice::Function(name) = &choice {
        if !tools.contains(name) {
            return Err(ApiError::invalid(format!(
                "Invalid value for 'tool_choice': no function named '{name}' was specified in \
                 the 'tools' parameter."
            ))
            .param("tool_choice"));
        }
    }
    Ok(choice)
}

fn messages(body: &Map<String, Value>) -> Result<Vec<ChatMessage>, ApiError> {
    let raw =
        match body.get("messages") {
            None | Some(Value::Null) => return Err(ApiError::missing("messages")),
            Some(Value::Array(m)) if m.is_empty() => return Err(ApiError::invalid(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but \
                 got an empty array instead.",
            )
            .param("messages")
            .code("empty_array")),
            Some(Value::Array(m)) => m,
            Some(other) => return Err(ApiError::wrong_type("messages", "an array", other)),
        };
    let messages = raw
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    check_pairing(&messages)?;
    Ok(messages)
}

fn message(i: usize, raw: &Value) -> Result<ChatMessage, ApiError> {
    let role_param = format!("messages[{i}].role");
    let role = match raw.get("role") {
        Some(Value::String(role)) => role.as_str(),
        None => return Err(ApiError::missing(&role_param)),
        Some(other) => return Err(ApiError::wrong_type(&role_param, "a string", other)),
    };
    let content_param = format!("messages[{i}].content");
    let content = raw.get("content").filter(|c| !c.is_null());
    Ok(match role {
        "system" | "developer" => ChatMessage::System(text_of(
            &content_param,
            content.ok_or_else(|| ApiError::missing(&content_param))?,
        )?),
        "user" => ChatMessage::User(text_of(
            &content_param,
            content.ok_or_else(|| ApiError::missing(&content_param))?,
        )?),
        "assistant" => {
            let content = content.map(|c| text_of(&content_param, c)).transpose()?;
            let tool_calls = tool_calls(i, raw.get("tool_calls"))?;
            if content.is_none() && tool_calls.is_empty() {
                return Err(ApiError::invalid(format!(
                    "Invalid value for '{content_param}': expected a string, got null."
                ))
                .param(content_param));
            }
            ChatMessage::Assistant {
                content,
                tool_calls,
            }
        }
        "tool" => {
            let id_param = format!("messages[{i}].tool_call_id");
            let tool_call_id = match raw.get("tool_call_id") {
                Some(Value::String(id)) => id.clone(),
                None | Some(Value::Null) => return Err(ApiError::missing(&id_param)),
                Some(other) => return Err(ApiError::wrong_type(&id_param, "a string", other)),
            };
            ChatMessage::Tool {
                tool_call_id,
                content: text_of(
                    &content_param,
                    content.ok_or_else(|| ApiError::missing(&content_param))?,
                )?,
            }
        }
        other => {
            return Err(ApiError::bad_value(
                &role_param,
                other,
                "'system', 'assistant', 'user', 'tool', and 'developer'",
            ))
        }
    })
}

/// A content: a string, or an array of parts whose `text` parts are joined by newlines
/// (other part types, such as images, are accepted and ignored).
fn text_of(param: &str, content: &Value) -> Result<String, ApiError> {
    match content {
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let part_param = format!("{param}[{j}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => match part.get("text") {
                        Some(Value::String(text)) => texts.push(text.as_str()),
                        _ => return Err(ApiError::missing(&format!("{part_param}.text"))),
                    },
                    Some("image_url" | "input_audio" | "file" | "refusal") => {}
                    Some(other) => {
                        return Err(ApiError::bad_value(
                            &format!("{part_param}.type"),
                            other,
                            "'text', 'image_url', 'input_audio', 'refusal', and 'file'",
                        ))
                    }
                    None => return Err(ApiError::missing(&format!("{part_param}.type"))),
                }
            }
            Ok(texts.join("\n"))
        }
        other => Err(ApiError::wrong_type(param, "a string or array", other)),
    }
}

fn tool_calls(i: usize, raw: Option<&Value>) -> Result<Vec<ToolCall>, ApiError> {
    let calls = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) => calls,
        Some(other) => {
            return Err(ApiError::wrong_type(
                &format!("messages[{i}].tool_calls"),
                "an array",
                other,
            ))
        }
    };
    calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            let param = |field: &str| format!("messages[{i}].tool_calls[{j}].{field}");
            let string = |field: &str, value: Option<&Value>| match value {
                Some(Value::String(s)) => Ok(s.clone()),
                None | Some(Value::Null) => Err(ApiError::missing(&param(field))),
                Some(other) => Err(ApiError::wrong_type(&param(field), "a string", other)),
            };
            let id = string("id", call.get("id"))?;
            let kind = string("type", call.get("type"))?;
            if kind != "function" {
                return Err(ApiError::bad_value(&param("type"), &kind, "'function'"));
            }
            let function = call.get("function");
            Ok(ToolCall {
                id,
                name: string("function.name", function.and_then(|f| f.get("name")))?,
                arguments: string(
                    "function.arguments",
                    function.and_then(|f| f.get("arguments")),
                )?,
            })
        })
        .collect()
}

/// Each run of `tool` messages answers the assistant message just before it, id for id.
fn check_pairing(messages: &[ChatMessage]) -> Result<(), ApiError> {
    let mut open: Option<(usize, Vec<&str>)> = None;
    for (i, message) in messages.iter().enumerate() {
        if let ChatMessage::Tool { tool_call_id, .. } = message {
            let Some((_, pending)) = open.as_mut() else {
                return Err(ApiError::invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a \
                     preceeding message with 'tool_calls'.",
                )
                .param(format!("messages.[{i}].role")));
            };
            match pending.iter().position(|id| id == tool_call_id) {
                Some(at) => {
                    pending.remove(at);
                }
                None => {
                    return Err(ApiError::invalid(format!(
                        "Invalid parameter: 'tool_call_id' of '{tool_call_id}' not found in \
                         'tool_calls' of previous message."
                    ))
                    .param(format!("messages.[{i}].tool_call_id")))
                }
            }
            continue;
        }
        if let Some((at, pending)) = open.take() {
            unanswered(at, &pending)?;
        }
        if let ChatMessage::Assistant { tool_calls, .. } = message {
            if !tool_calls.is_empty() {
                open = Some((i, tool_calls.iter().map(|c| c.id.as_str()).collect()));
            }
        }
    }
    match open {
        Some((at, pending)) => unanswered(at, &pending),
        None => Ok(()),
    }
}

fn unanswered(at: usize, pending: &[&str]) -> Result<(), ApiError> {
    if pending.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to \
         each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        pending.join(", ")
    ))
    .param(format!("messages.[{at}].role")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value) -> Result<ChatRequest, ApiError> {
        ChatRequest::parse(body.to_string().as_bytes())
    }

    fn calculator() -> Value {
        json!([{"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}])
    }

    #[test]
    fn a_tool_round_trip_is_accepted() {
        let request = check(json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "2+2?"}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\":\"2+2\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "4"}
            ],
            "tools": calculator(),
            "tool_choice": {"type": "function", "function": {"name": "calculator"}},
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 100,
            "temperature": 1.5,
            "stop": ["END"],
            "seed": 7
        }))
        .unwrap();
        assert_eq!(request.tools, vec!["calculator"]);
        assert_eq!(
            request.tool_choice,
            ToolChoice::Function("calculator".into())
        );
        assert!(request.stream && request.include_usage);
        assert_eq!(request.latest_user_text(), "2+2?");
        assert!(request.ends_with_tool_results());
    }

    #[test]
    fn malformed_requests_get_openais_messages() {
        let base = |extra: Value| {
            let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            check(body).unwrap_err()
        };
        assert!(ChatRequest::parse(b"{nope")
            .unwrap_err()
            .message
            .contains("parse the JSON"));
        assert_eq!(
            check(json!({"model": "m"})).unwrap_err().code,
            Some("missing_required_parameter")
        );
        assert_eq!(
            check(json!({"model": "m", "messages": []}))
                .unwrap_err()
                .code,
            Some("empty_array")
        );
        assert!(
            check(json!({"messages": [{"role": "user", "content": "hi"}]}))
                .unwrap_err()
                .message
                .contains("model parameter")
        );
        let role = check(json!({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}))
            .unwrap_err();
        assert_eq!(
            (role.param.as_deref(), role.code),
            (Some("messages[0].role"), Some("invalid_value"))
        );
        assert_eq!(
            base(json!({"thinking": {}})).message,
            "Unrecognized request argument supplied: thinking"
        );
        let name = base(json!({"tools": [{"type": "function", "function": {"name": "bad name"}}]}));
        assert_eq!(name.param.as_deref(), Some("tools[0].function.name"));
        let long =
            base(json!({"tools": [{"type": "function", "function": {"name": "x".repeat(65)}}]}));
        assert_eq!(long.code, Some("string_above_max_length"));
        assert!(base(json!({"tools": [{"type": "retrieval"}]}))
            .message
            .contains("'retrieval'"));
        assert!(base(json!({"tool_choice": "required"}))
            .message
            .contains("only allowed when 'tools'"));
        assert!(base(json!({"tools": calculator(), "tool_choice": {"type": "function", "function": {"name": "clock"}}}))
            .message
            .contains("'clock'"));
        assert!(
            base(json!({"tools": calculator(), "tool_choice": "always"}))
                .message
                .contains("'always'")
        );
        assert_eq!(
            base(json!({"max_tokens": 0})).code,
            Some("integer_below_min_value")
        );
        assert_eq!(
            base(json!({"temperature": 2.5})).code,
            Some("decimal_above_max_value")
        );
        assert_eq!(
            base(json!({"top_p": 1.5})).code,
            Some("decimal_above_max_value")
        );
        assert_eq!(
            base(json!({"stop": ["a", "b", "c", "d", "e"]})).code,
            Some("array_above_max_length")
        );
        assert!(base(json!({"stream_options": {"include_usage": true}}))
            .message
            .contains("'stream' is enabled"));
    }

    #[test]
    fn tool_messages_must_answer_the_calls_before_them() {
        let call = |id: &str| json!({"id": id, "type": "function", "function": {"name": "calculator", "arguments": "{}"}});
        let conversation = |messages: Value| {
            check(json!({"model": "m", "tools": calculator(), "messages": messages}))
        };
        let user = json!({"role": "user", "content": "hi"});
        let stray =
            conversation(json!([user, {"role": "tool", "tool_call_id": "call_9", "content": "4"}]))
                .unwrap_err();
        assert!(
            stray
                .message
                .contains("preceeding message with 'tool_calls'"),
            "{stray:?}"
        );
        let unknown = conversation(json!([user,
            {"role": "assistant", "tool_calls": [call("call_1")]},
            {"role": "tool", "tool_call_id": "call_2", "content": "4"}]))
        .unwrap_err();
        assert!(
            unknown.message.contains("'call_2' not found"),
            "{unknown:?}"
        );
        let unanswered = conversation(json!([user,
            {"role": "assistant", "tool_calls": [call("call_1"), call("call_2")]},
            {"role": "tool", "tool_call_id": "call_1", "content": "4"},
            {"role": "user", "content": "and?"}]))
        .unwrap_err();
        assert!(
            unanswered
                .message
                .ends_with("did not have response messages: call_2"),
            "{unanswered:?}"
        );
        assert_eq!(unanswered.param.as_deref(), Some("messages.[1].role"));
        let answered = conversation(json!([user,
            {"role": "assistant", "tool_calls": [call("call_1"), call("call_2")]},
            {"role": "tool", "tool_call_id": "call_2", "content": "4"},
            {"role": "tool", "tool_call_id": "call_1", "content": "5"},
            {"role": "user", "content": "and?"}]));
        assert!(answered.is_ok(), "{answered:?}");
        let empty_assistant = conversation(json!([user, {"role": "assistant"}])).unwrap_err();
        assert!(empty_assistant.message.contains("messages[1].content"));
    }
}
