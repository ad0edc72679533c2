//! The deterministic fake model: what the stand-in answers to a conversation.
//!
//! The answer depends only on the request and the [`Call`] (the model id and, for the
//! `fail-first` trigger, which attempt this is, both given by the server), so a test can
//! predict it exactly; the rules are listed in the crate docs.

use crate::fault::{ErrorKind, Failure};
use crate::request::{ContentBlock, ConverseRequest, Message, ToolChoice, ToolResult};
use crate::text;
pub use crate::text::{FailFirst, Triggers};
use crate::tools::{intro_for, plan_calls, scripted_input};
use serde_json::{json, Value};

/// Why the model stopped, as Bedrock spells it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The answer is complete.
    EndTurn,
    /// The answer asks for tool calls.
    ToolUse,
    /// The answer was cut by the token limit.
    MaxTokens,
    /// The answer reached one of the request's stop sequences.
    StopSequence,
}

impl StopReason {
    /// The wire value (`end_turn`, `tool_use`, `max_tokens`, `stop_sequence`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndTurn => "end_turn",
            Self::ToolUse => "tool_use",
            Self::MaxTokens => "max_tokens",
            Self::StopSequence => "stop_sequence",
        }
    }
}

/// One block of the assistant's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum OutBlock {
    /// Reasoning (extended thinking), always the first block when thinking is enabled.
    Reasoning {
        /// The reasoning text.
        text: String,
        /// Its signature ([`crate::thinking::signature`]).
        signature: String,
    },
    /// Text.
    Text(String),
    /// A tool call.
    ToolUse {
        /// Deterministic id, `tooluse_` + 16 hex digits.
        id: String,
        /// The offered tool's name.
        name: String,
        /// The tool input document.
        input: Value,
    },
}

impl OutBlock {
    /// The block as Converse JSON (`{"text": ..}`, `{"toolUse": {..}}` or
    /// `{"reasoningContent": {"reasoningText": {"text": .., "signature": ..}}}`).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Reasoning { text, signature } => {
                json!({ "reasoningContent": { "reasoningText": { "text": text, "signature": signature } } })
            }
            Self::Text(text) => json!({ "text": text }),
            Self::ToolUse { id, name, input } => {
                json!({ "toolUse": { "toolUseId": id, "name": name, "input": input } })
            }
        }
    }
}

/// The stand-in's token estimate for `len` bytes or characters: `len / 4`, at least 1.
/// Used for the reported usage and for the context-window check (on the request body).
pub fn tokens(len: usize) -> u64 {
    u64::try_from(len / 4).unwrap_or(u64::MAX).max(1)
}

/// Token counts reported in `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Request body bytes / 4, at least 1, less the cache read and write tokens (at
    /// least 0).
    pub input_tokens: u64,
    /// Answer characters / 4, at least 1.
    pub output_tokens: u64,
    /// Tokens read from the prompt cache; `None` (field omitted) when the request has no
    /// cache point.
    pub cache_read_input_tokens: Option<u64>,
    /// Tokens written to the prompt cache; `None` (field omitted) when the request has no
    /// cache point.
    pub cache_write_input_tokens: Option<u64>,
}

impl Usage {
    /// The usage with the cache's read and write taken out of the input tokens.
    pub fn with_cache(self, cache: crate::cache::CacheUsage) -> Self {
        Self {
            input_tokens: self
                .input_tokens
                .saturating_sub(cache.read.saturating_add(cache.write)),
            cache_read_input_tokens: Some(cache.read),
            cache_write_input_tokens: Some(cache.write),
            ..self
        }
    }

    /// Input, output, cache read and cache write tokens together.
    pub fn total_tokens(self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
            .saturating_add(self.cache_write_input_tokens.unwrap_or(0))
    }

    /// The `usage` JSON object.
    pub fn to_json(self) -> Value {
        let mut usage = json!({
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.total_tokens(),
        });
        if let (Some(read), Some(write), Some(map)) = (
            self.cache_read_input_tokens,
            self.cache_write_input_tokens,
            usage.as_object_mut(),
        ) {
            map.insert("cacheReadInputTokens".into(), json!(read));
            map.insert("cacheWriteInputTokens".into(), json!(write));
        }
        usage
    }
}

/// The scripted answer and the test triggers found in the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Triggers from the latest user text.
    pub triggers: Triggers,
    /// The error to answer with instead of the blocks, when a trigger asks for one.
    pub failure: Option<Failure>,
    /// `fail-in-stream`, when no [`failure`](Self::failure) applies: the exception
    /// ConverseStream sends after the first delta (Converse answers it as an HTTP error).
    pub in_stream: Option<ErrorKind>,
    /// The assistant's content blocks.
    pub blocks: Vec<OutBlock>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Token estimates.
    pub usage: Usage,
    /// The request's `serviceTier.type`, echoed in the response.
    pub service_tier: Option<String>,
}

/// What the server knows about a call besides its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Call<'a> {
    /// The model id from the URL path.
    pub model_id: &'a str,
    /// Which call of this conversation to this model this is (1 for the first), counted by
    /// the server only when a `fail-first` trigger applies to the model; 0 when not counted.
    pub attempt: u64,
}

/// The triggers in the latest user text of a request.
pub fn triggers(req: &ConverseRequest) -> Triggers {
    text::take_triggers(&latest_user_text(req.messages())).0
}

/// Computes the answer to a validated request whose body was `body_len` bytes.
pub fn respond(req: &ConverseRequest, body_len: usize, call: &Call<'_>) -> Answer {
    let messages = req.messages();
    let (triggers, user_text) = text::take_triggers(&latest_user_text(messages));
    let tools = req.tool_names();
    let results: Vec<&ToolResult> = messages
        .last()
        .filter(|m| m.role == "user")
        .map(|m| blocks(m).filter_map(|b| b.tool_result.as_ref()).collect())
        .unwrap_or_default();
    let ids = IdMaker {
        position: messages.len(),
    };

    let (mut blocks, mut stop_reason) = if triggers.max_tokens {
        let full = echo(&user_text);
        let half: String = full
            .chars()
            .take(full.chars().count().div_ceil(2))
            .collect();
        (vec![OutBlock::Text(half)], StopReason::MaxTokens)
    } else if let Some(calls) = forced_calls(req.tool_choice(), &tools, &user_text) {
        // A forced choice is prefilled: tool calls only, no text before them.
        let out = calls
            .into_iter()
            .enumerate()
            .map(|(i, (name, input))| ids.call(i, name, input))
            .collect();
        (out, StopReason::ToolUse)
    } else if let (true, Some(first)) = (triggers.always_tool, tools.first()) {
        let call = ids.call(0, first, scripted_input(first, &user_text));
        let intro = OutBlock::Text(format!("Calling {first} again."));
        (vec![intro, call], StopReason::ToolUse)
    } else if !results.is_empty() {
        let previous = messages.len().checked_sub(2).and_then(|i| messages.get(i));
        let summary = results
            .iter()
            .map(|r| describe_result(r, previous))
            .collect::<Vec<_>>();
        (
            vec![OutBlock::Text(summary.join("\n"))],
            StopReason::EndTurn,
        )
    } else {
        let calls = plan_calls(&tools, &user_text);
        if calls.is_empty() {
            (vec![OutBlock::Text(echo(&user_text))], StopReason::EndTurn)
        } else {
            let mut intro: Vec<&str> = Vec::new();
            for (name, _) in &calls {
                let line = intro_for(name);
                if !intro.contains(&line) {
                    intro.push(line);
                }
            }
            let mut out = vec![OutBlock::Text(intro.join(" "))];
            for (i, (name, input)) in calls.into_iter().enumerate() {
                out.push(ids.call(i, name, input));
            }
            (out, StopReason::ToolUse)
        }
    };

    if req.thinking().ok().flatten().is_some() {
        let text = thinking_text(&user_text, &blocks, !results.is_empty());
        let signature = crate::thinking::signature(&text);
        blocks.insert(0, OutBlock::Reasoning { text, signature });
    }
    if cut_at_stop_sequence(&mut blocks, req.stop_sequences()) {
        stop_reason = StopReason::StopSequence;
    }

    let output_chars: usize = blocks
        .iter()
        .map(|b| match b {
            OutBlock::Reasoning { text, .. } | OutBlock::Text(text) => text.chars().count(),
            OutBlock::ToolUse { input, .. } => input.to_string().len(),
        })
        .sum();
    let usage = Usage {
        input_tokens: tokens(body_len),
        output_tokens: tokens(output_chars),
        cache_read_input_tokens: None,
        cache_write_input_tokens: None,
    };
    let failure = failure(&triggers, call, !results.is_empty());
    let in_stream = triggers.fail_in_stream.filter(|_| failure.is_none());
    Answer {
        triggers,
        failure,
        in_stream,
        blocks,
        stop_reason,
        usage,
        service_tier: req.service_tier().map(str::to_string),
    }
}

/// The fake model's reasoning: what the user asked (the first 200 characters of the
/// latest user text) and what the answer does.
fn thinking_text(user_text: &str, blocks: &[OutBlock], after_tools: bool) -> String {
    let asked: String = user_text.chars().take(200).collect();
    let asked = if asked.is_empty() {
        "nothing in particular".to_string()
    } else {
        format!("\"{asked}\"")
    };
    let mut tools: Vec<&str> = Vec::new();
    for block in blocks {
        if let OutBlock::ToolUse { name, .. } = block {
            if !tools.contains(&name.as_str()) {
                tools.push(name);
            }
        }
    }
    let plan = if !tools.is_empty() {
        format!("I will call {} and use the results.", tools.join(", "))
    } else if after_tools {
        "The tool results are in, so I will report them.".to_string()
    } else {
        "I will answer directly.".to_string()
    };
    format!("The user asked: {asked}. {plan}")
}

/// Cuts the answer just before the first stop sequence found in a text block (the earliest
/// in that block), dropping every later block and the text block itself when nothing is
/// left of it; whether a sequence was found.
fn cut_at_stop_sequence(blocks: &mut Vec<OutBlock>, sequences: &[String]) -> bool {
    let found = blocks
        .iter()
        .enumerate()
        .find_map(|(i, block)| match block {
            OutBlock::Text(text) => sequences
                .iter()
                .filter_map(|s| text.find(s.as_str()))
                .min()
                .map(|at| (i, at)),
            _ => None,
        });
    let Some((index, at)) = found else {
        return false;
    };
    blocks.truncate(index + 1);
    if let Some(OutBlock::Text(text)) = blocks.get_mut(index) {
        text.truncate(at);
        if text.is_empty() {
            blocks.truncate(index);
        }
    }
    true
}

/// The calls a forcing `toolChoice` makes: for `any`, the calls planned from the text,
/// else the first offered tool; for `tool`, the planned calls of that tool, else one call
/// of it. `None` for `auto` or no choice.
fn forced_calls<'a>(
    choice: Option<ToolChoice>,
    tools: &[&'a str],
    text: &str,
) -> Option<Vec<(&'a str, Value)>> {
    let planned = plan_calls(tools, text);
    match choice? {
        ToolChoice::Auto => None,
        ToolChoice::Any if !planned.is_empty() => Some(planned),
        ToolChoice::Any => {
            let first = tools.first()?;
            Some(vec![(first, scripted_input(first, text))])
        }
        ToolChoice::Tool(name) => {
            let tool = tools.iter().copied().find(|t| *t == name)?;
            let mine: Vec<_> = planned.into_iter().filter(|(n, _)| *n == tool).collect();
            if mine.is_empty() {
                Some(vec![(tool, scripted_input(tool, text))])
            } else {
                Some(mine)
            }
        }
    }
}

/// The error the triggers ask for, first match wins: a malformed error trigger (as a
/// `ValidationException`), `fail-throttle`, `fail=<Name>`, `fail@<this model>=<Name>`,
/// `fail-first` while the attempt is within its count, and `fail-after-tools=<Name>` once
/// the last message carries tool results.
fn failure(triggers: &Triggers, call: &Call<'_>, after_tools: bool) -> Option<Failure> {
    if let Some(message) = &triggers.bad_trigger {
        return Some(Failure {
            kind: ErrorKind::Validation,
            message: message.clone(),
        });
    }
    let fail_first = triggers
        .fail_first_for(call.model_id)
        .filter(|f| (1..=f.calls).contains(&call.attempt))
        .map(|f| f.kind);
    let kind = if triggers.fail_throttle {
        Some(ErrorKind::Throttling)
    } else {
        triggers
            .fail
            .or_else(|| triggers.fail_for_model(call.model_id))
            .or(fail_first)
            .or_else(|| triggers.fail_after_tools.filter(|_| after_tools))
    };
    kind.map(Failure::from)
}

fn blocks(message: &Message) -> impl Iterator<Item = &ContentBlock> {
    message.content.iter().flatten()
}

/// The text blocks of the most recent user message that has any, joined.
fn latest_user_text(messages: &[Message]) -> String {
    messages
        .iter()
        .rev()
        .filter(|m| m.role == "user")
        .map(|m| {
            blocks(m)
                .filter_map(|b| b.text.as_deref())
                .collect::<Vec<_>>()
        })
        .find(|texts| !texts.is_empty())
        .map(|texts| texts.join("\n"))
        .unwrap_or_default()
}

fn echo(text: &str) -> String {
    if text.is_empty() {
        "Hello! How can I help?".to_string()
    } else {
        format!("You said: {text}")
    }
}

/// `The <tool> tool says: <output>` with the output verbatim (JSON compact).
fn describe_result(result: &ToolResult, previous: Option<&Message>) -> String {
    let name = previous
        .into_iter()
        .flat_map(blocks)
        .filter_map(|b| b.tool_use.as_ref())
        .find(|u| u.tool_use_id == result.tool_use_id)
        .map_or("requested", |u| u.name.as_str());
    let output: Vec<String> = result
        .content
        .iter()
        .filter_map(|c| {
            c.text
                .clone()
                .or_else(|| c.json.as_ref().map(Value::to_string))
        })
        .collect();
    let output = if output.is_empty() {
        "(no output)".to_string()
    } else {
        output.join("\n")
    };
    if result.status.as_deref() == Some("error") {
        format!("The {name} tool reported an error: {output}")
    } else {
        format!("The {name} tool says: {output}")
    }
}

/// Deterministic tool-use ids from the conversation position, block index,
/// tool name and input (FNV-1a, so stable across Rust versions).
struct IdMaker {
    position: usize,
}

impl IdMaker {
    fn call(&self, index: usize, name: &str, input: Value) -> OutBlock {
        let key = format!("{}|{index}|{name}|{input}", self.position);
        let hash = crate::hash::fnv64(key.as_bytes());
        OutBlock::ToolUse {
            id: format!("tooluse_{hash:016x}"),
            name: name.to_string(),
            input,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: Value) -> Answer {
        let raw = body.to_string();
        let req = ConverseRequest::parse(raw.as_bytes()).expect("parses");
        req.validate().expect("valid");
        respond(&req, raw.len(), &Call::default())
    }

    fn answer_for(body: &Value, model_id: &str, attempt: u64) -> Answer {
        let raw = body.to_string();
        let req = ConverseRequest::parse(raw.as_bytes()).expect("parses");
        req.validate().expect("valid");
        respond(&req, raw.len(), &Call { model_id, attempt })
    }

    fn tools(names: &[&str]) -> Value {
        let tools: Vec<Value> = names
            .iter()
            .map(|n| json!({"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object"}}}}))
            .collect();
        json!({ "tools": tools })
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": [{"text": text}]})
    }

    #[test]
    fn echoes_without_tools() {
        let a = answer(json!({"messages": [user("hello there")]}));
        assert_eq!(
            a.blocks,
            vec![OutBlock::Text("You said: hello there".into())]
        );
        assert_eq!(a.stop_reason, StopReason::EndTurn);
        assert!(a.usage.input_tokens >= 1 && a.usage.output_tokens >= 1);
    }

    #[test]
    fn usage_takes_the_cache_out_of_the_input() {
        let usage = Usage {
            input_tokens: 100,
            output_tokens: 5,
            cache_read_input_tokens: None,
            cache_write_input_tokens: None,
        };
        assert_eq!(
            usage.to_json(),
            json!({"inputTokens": 100, "outputTokens": 5, "totalTokens": 105})
        );
        let cached = usage.with_cache(crate::cache::CacheUsage {
            read: 60,
            write: 30,
        });
        assert_eq!(
            cached.to_json(),
            json!({"inputTokens": 10, "outputTokens": 5, "totalTokens": 105,
                "cacheReadInputTokens": 60, "cacheWriteInputTokens": 30})
        );
        let none = usage.with_cache(crate::cache::CacheUsage::default());
        assert_eq!(none.to_json()["cacheReadInputTokens"], json!(0));
        let over = usage.with_cache(crate::cache::CacheUsage {
            read: 90,
            write: 30,
        });
        assert_eq!((over.input_tokens, over.total_tokens()), (0, 125));
    }

    #[test]
    fn calls_several_offered_tools() {
        let body = json!({
            "messages": [user("What is (2+3)*4 and the time in Europe/Paris? Also search for tokio")],
            "toolConfig": tools(&["web_search", "current_time", "calculator"]),
        });
        let a = answer(body.clone());
        assert_eq!(a.stop_reason, StopReason::ToolUse);
        let calls: Vec<(&str, &Value)> = a
            .blocks
            .iter()
            .filter_map(|b| match b {
                OutBlock::ToolUse { name, input, .. } => Some((name.as_str(), input)),
                OutBlock::Text(_) | OutBlock::Reasoning { .. } => None,
            })
            .collect();
        assert_eq!(calls[0], ("calculator", &json!({"expression": "(2+3)*4"})));
        assert_eq!(
            calls[1],
            ("current_time", &json!({"timezone": "Europe/Paris"}))
        );
        assert_eq!(calls[2], ("web_search", &json!({"query": "tokio"})));
        assert_eq!(a, answer(body), "deterministic");
    }

    #[test]
    fn thinking_starts_the_answer_with_signed_reasoning() {
        let thinking = json!({"thinking": {"type": "enabled", "budget_tokens": 2048}});
        let a = answer(json!({"messages": [user("What is 6*7?")],
            "toolConfig": tools(&["calculator"]),
            "additionalModelRequestFields": thinking}));
        let expected =
            "The user asked: \"What is 6*7?\". I will call calculator and use the results.";
        assert_eq!(
            a.blocks[0],
            OutBlock::Reasoning {
                text: expected.into(),
                signature: crate::thinking::signature(expected),
            }
        );
        assert_eq!(a.blocks[1], OutBlock::Text("Let me calculate that.".into()));
        assert_eq!(a.stop_reason, StopReason::ToolUse);
        let plain = answer(json!({"messages": [user("What is 6*7?")],
            "toolConfig": tools(&["calculator"])}));
        assert_eq!(plain.blocks, a.blocks[1..]);
        assert!(a.usage.output_tokens > plain.usage.output_tokens + 15);
        assert_eq!(
            a.blocks[0].to_json(),
            json!({"reasoningContent": {"reasoningText": {
                "text": expected, "signature": crate::thinking::signature(expected)}}})
        );
        let echo = answer(json!({"messages": [user("hi")],
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}},
            "inferenceConfig": {"stopSequences": ["I will"]}}));
        assert!(
            matches!(&echo.blocks[0], OutBlock::Reasoning { text, .. } if text.ends_with("I will answer directly.")),
            "stop sequences do not cut the reasoning: {:?}",
            echo.blocks
        );
    }

    #[test]
    fn stop_sequences_cut_the_text() {
        let with_stops = |text: &str, stops: Value, config: Option<Value>| {
            let mut body = json!({"messages": [user(text)],
                "inferenceConfig": {"stopSequences": stops}});
            if let Some(config) = config {
                body["toolConfig"] = config;
            }
            answer(body)
        };
        let cut = with_stops("one, two. three", json!(["three", "."]), None);
        assert_eq!(cut.stop_reason, StopReason::StopSequence);
        assert_eq!(
            cut.blocks,
            vec![OutBlock::Text("You said: one, two".into())]
        );
        let none = with_stops("one", json!(["zzz"]), None);
        assert_eq!(none.stop_reason, StopReason::EndTurn);
        // A sequence in a tool-call intro ends the answer before the calls.
        let early = with_stops(
            "what is 1+1",
            json!(["calculate"]),
            Some(tools(&["calculator"])),
        );
        assert_eq!(early.stop_reason, StopReason::StopSequence);
        assert_eq!(early.blocks, vec![OutBlock::Text("Let me ".into())]);
        // Nothing left of the text: no block at all.
        let empty = with_stops("hi", json!(["You"]), None);
        assert_eq!(
            (empty.stop_reason, empty.blocks.len()),
            (StopReason::StopSequence, 0)
        );
        assert_eq!(StopReason::StopSequence.as_str(), "stop_sequence");
    }

    #[test]
    fn tool_choice_forces_calls() {
        let body = |choice: Value, text: &str| {
            let mut config = tools(&["web_search", "calculator"]);
            config["toolChoice"] = choice;
            json!({"messages": [user(text)], "toolConfig": config})
        };
        let calls = |a: &Answer| -> Vec<(String, Value)> {
            a.blocks
                .iter()
                .map(|b| match b {
                    OutBlock::ToolUse { name, input, .. } => (name.clone(), input.clone()),
                    OutBlock::Text(t) | OutBlock::Reasoning { text: t, .. } => {
                        ("text".into(), json!(t))
                    }
                })
                .collect()
        };
        let any = answer(body(json!({"any": {}}), "hello"));
        assert_eq!(any.stop_reason, StopReason::ToolUse);
        assert_eq!(
            calls(&any),
            [("web_search".to_string(), json!({"query": "hello"}))]
        );
        let planned = answer(body(json!({"any": {}}), "what is 2+2 and 3*3"));
        assert_eq!(
            calls(&planned),
            [
                ("calculator".to_string(), json!({"expression": "2+2"})),
                ("calculator".to_string(), json!({"expression": "3*3"}))
            ]
        );
        let named = answer(body(
            json!({"tool": {"name": "calculator"}}),
            "search for 2+2",
        ));
        assert_eq!(
            calls(&named),
            [("calculator".to_string(), json!({"expression": "2+2"}))]
        );
        let scripted = answer(body(json!({"tool": {"name": "calculator"}}), "hello"));
        assert_eq!(
            calls(&scripted),
            [("calculator".to_string(), json!({"expression": "1+1"}))]
        );
        let auto = answer(body(json!({"auto": {}}), "hello"));
        assert_eq!(auto.stop_reason, StopReason::EndTurn);
        assert_eq!(auto.blocks, answer(body(json!(null), "hello")).blocks);
    }

    #[test]
    fn tool_ids_are_valid_and_distinct() {
        let a = answer(
            json!({"messages": [user("1+1 and 2*2")], "toolConfig": tools(&["calculator"])}),
        );
        let ids: Vec<&String> = a
            .blocks
            .iter()
            .filter_map(|b| match b {
                OutBlock::ToolUse { id, .. } => Some(id),
                OutBlock::Text(_) | OutBlock::Reasoning { .. } => None,
            })
            .collect();
        assert_eq!(ids.len(), 2);
        assert_ne!(ids[0], ids[1]);
        assert!(ids.iter().all(|id| crate::request::is_valid_name(id)));
    }

    #[test]
    fn summarises_tool_results_verbatim() {
        let a = answer(json!({
            "toolConfig": tools(&["calculator", "current_time"]),
            "messages": [
                user("6*7 and the time"),
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "a", "name": "calculator", "input": {"expression": "6*7"}}},
                    {"toolUse": {"toolUseId": "b", "name": "current_time", "input": {}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "a", "content": [{"text": "42"}]}},
                    {"toolResult": {"toolUseId": "b", "status": "error", "content": [{"json": {"e": 1}}]}}
                ]}
            ]
        }));
        assert_eq!(a.stop_reason, StopReason::EndTurn);
        assert_eq!(
            a.blocks,
            vec![OutBlock::Text(
                "The calculator tool says: 42\nThe current_time tool reported an error: {\"e\":1}"
                    .into()
            )]
        );
    }

    #[test]
    fn triggers_change_the_answer() {
        let forced = answer(json!({
            "toolConfig": tools(&["current_time"]),
            "messages": [
                user("[[standin:always-tool]] hi"),
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "a", "name": "current_time", "input": {}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "a", "content": [{"text": "noon"}]}}]}
            ]
        }));
        assert_eq!(forced.stop_reason, StopReason::ToolUse);
        assert!(forced.triggers.always_tool);
        assert_eq!(forced.failure, None);
        let cut = answer(json!({"messages": [user("[[standin:max-tokens]] abcdefgh")]}));
        assert_eq!(cut.stop_reason, StopReason::MaxTokens);
        assert_eq!(cut.blocks, vec![OutBlock::Text("You said:".into())]);
    }

    #[test]
    fn error_triggers_choose_the_failure() {
        let failed = answer(json!({"messages": [user("hi [[standin:fail=ModelErrorException]]")]}));
        assert_eq!(failed.failure, Some(Failure::from(ErrorKind::ModelError)));
        let throttled = answer(json!({"messages": [user("[[standin:fail-throttle]] hi")]}));
        assert_eq!(
            throttled.failure.map(|f| (f.kind, f.message)),
            Some((
                ErrorKind::Throttling,
                "Too many requests, please wait before trying again.".to_string()
            ))
        );
        let typo = answer(json!({"messages": [user("[[standin:fail=Nope]] hi")]}));
        let typo = typo.failure.ok_or("no failure").map_err(String::from);
        assert!(typo.as_ref().is_ok_and(|f| f.kind == ErrorKind::Validation
            && f.message
                .starts_with("Unknown stand-in trigger [[standin:fail=Nope]]")
            && f.message.contains("ServiceUnavailableException")));
    }

    #[test]
    fn per_model_triggers_fail_only_that_model() {
        let body = json!({"messages": [user(
            "[[standin:fail@model-a=ThrottlingException]] [[standin:fail@model-b=TooManyTokens]] hi"
        )]});
        let kind = |model: &str| answer_for(&body, model, 0).failure.map(|f| f.kind);
        assert_eq!(kind("model-a"), Some(ErrorKind::Throttling));
        assert_eq!(kind("model-b"), Some(ErrorKind::TooManyTokens));
        assert_eq!(kind("model-c"), None);
        assert_eq!(kind("model-"), None, "exact match only");
        let failure = answer_for(&body, "model-b", 0).failure;
        assert_eq!(
            failure.map(|f| (f.kind.error_type(), f.message)),
            Some((
                "ThrottlingException",
                "Too many tokens, please wait before trying again.".to_string()
            ))
        );
    }

    #[test]
    fn fail_first_fails_attempts_within_the_count() {
        let body = json!({"messages": [user(
            "[[standin:fail-first=2@model-a=ServiceUnavailableException]] \
             [[standin:fail-first=1=InternalServerException]] hi"
        )]});
        let kind = |model: &str, attempt| answer_for(&body, model, attempt).failure.map(|f| f.kind);
        assert_eq!(kind("model-a", 1), Some(ErrorKind::ServiceUnavailable));
        assert_eq!(kind("model-a", 2), Some(ErrorKind::ServiceUnavailable));
        assert_eq!(kind("model-a", 3), None);
        assert_eq!(kind("model-b", 1), Some(ErrorKind::InternalServer));
        assert_eq!(kind("model-b", 2), None);
        assert_eq!(kind("model-b", 0), None, "not counted: no failure");
        // A per-model failure comes before fail-first.
        let both = json!({"messages": [user(
            "[[standin:fail-first=1=InternalServerException]] [[standin:fail@m=AccessDeniedException]]"
        )]});
        assert_eq!(
            answer_for(&both, "m", 1).failure.map(|f| f.kind),
            Some(ErrorKind::AccessDenied)
        );
    }

    #[test]
    fn fail_after_tools_waits_for_tool_results() {
        let question = user("[[standin:fail-after-tools=ServiceUnavailableException]] 6*7");
        let first = answer(json!({
            "toolConfig": tools(&["calculator"]),
            "messages": [question.clone()],
        }));
        assert_eq!(first.failure, None);
        assert_eq!(first.stop_reason, StopReason::ToolUse);
        let second = answer(json!({
            "toolConfig": tools(&["calculator"]),
            "messages": [
                question,
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "a", "name": "calculator", "input": {"expression": "6*7"}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "a", "content": [{"text": "42"}]}}]}
            ]
        }));
        assert_eq!(
            second.failure,
            Some(Failure::from(ErrorKind::ServiceUnavailable))
        );
    }
}
