//! A streamed answer (`"stream": true`): the server-sent events, and the
//! `chat.completion.chunk`s they carry assembled into the same [`ModelResponse`] a buffered
//! call returns. Pure: bytes in, deltas and a response out, so the streaming of answers to
//! clients can forward the [`StreamDelta`]s as they come.
//!
//! [`SseDecoder`] splits bytes, cut anywhere, into events (`data:` lines up to a blank line;
//! comments and other fields ignored; `\n` or `\r\n` line ends). [`StreamAssembler`] reads
//! each event's chunk: text deltas are appended; a tool call is started by its first
//! fragment (the one with its `index`, `id` and `function.name`) and its `arguments` are the
//! fragments of the same `index` joined; the last `finish_reason` and the `usage` chunk
//! (`stream_options.include_usage`) are kept; an `error` object ends the stream with an error
//! ([`super::errors::map_stream_error`]); `data: [DONE]` ends it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{
    errors::map_stream_error,
    wire::{self, WireUsage},
};
use crate::{
    domain::{
        message::{ContentBlock, Message, Role},
        model::{ModelResponse, Usage},
    },
    ports::ModelError,
};

/// One server-sent event's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseEvent {
    /// A `data:` payload (several `data:` lines joined by newlines).
    Data(String),
    /// `data: [DONE]`: the stream is complete.
    Done,
}

/// Splits a byte stream into server-sent events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    pending: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// The events completed by `bytes` (a piece of the stream, cut anywhere).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]);
            self.line(line.strip_suffix('\r').unwrap_or(&line), &mut events);
        }
        events
    }

    /// The event left when the stream ends without a final blank line.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let line = String::from_utf8_lossy(&rest);
            self.line(line.strip_suffix('\r').unwrap_or(&line), &mut events);
        }
        self.line("", &mut events);
        events
    }

    fn line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(if data == "[DONE]" {
                    SseEvent::Done
                } else {
                    SseEvent::Data(data)
                });
            }
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        if field == "data" {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match self.data.as_mut() {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        // Comments (`: ...`) and the `event`, `id` and `retry` fields carry nothing here.
    }
}

/// A piece of the answer as it arrives, for a caller that forwards it.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamDelta {
    /// More of the assistant's text.
    Text(String),
    /// A tool call begins.
    ToolCallStart {
        /// Its position among the answer's calls.
        index: u32,
        /// Its id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// More of a tool call's arguments (JSON text).
    ToolCallArguments {
        /// The call's position.
        index: u32,
        /// The fragment.
        fragment: String,
    },
    /// Why the model stopped, as sent (`stop`, `tool_calls`, `length`, ...).
    Finish(String),
    /// The tokens used (the last chunk, with `include_usage`).
    Usage(Usage),
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Delta,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Assembles a stream's chunks into a [`ModelResponse`].
#[derive(Debug, Default)]
pub struct StreamAssembler {
    text: String,
    refusal: String,
    calls: BTreeMap<u32, PartialCall>,
    last_index: Option<u32>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    done: bool,
}

impl StreamAssembler {
    /// Reads one event; returns what it added to the answer.
    pub fn push(&mut self, event: &SseEvent) -> Result<Vec<StreamDelta>, ModelError> {
        match event {
            SseEvent::Done => {
                self.done = true;
                Ok(Vec::new())
            }
            SseEvent::Data(data) => self.push_data(data),
        }
    }

    /// Whether `data: [DONE]` was read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn push_data(&mut self, data: &str) -> Result<Vec<StreamDelta>, ModelError> {
        let chunk: Chunk = serde_json::from_str(data).map_err(|_| {
            ModelError::Unavailable("the model provider sent an unreadable stream chunk".into())
        })?;
        if let Some(error) = &chunk.error {
            return Err(map_stream_error(error));
        }
        let mut deltas = Vec::new();
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let delta = choice.delta;
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                self.text.push_str(&text);
                deltas.push(StreamDelta::Text(text));
            }
            if let Some(refusal) = delta.refusal {
                self.refusal.push_str(&refusal);
            }
            for call in delta.tool_calls.unwrap_or_default() {
                self.tool_call(call, &mut deltas);
            }
            if let Some(reason) = choice.finish_reason {
                deltas.push(StreamDelta::Finish(reason.clone()));
                self.finish_reason = Some(reason);
            }
        }
        if let Some(usage) = chunk.usage {
            let usage = usage.to_usage();
            self.usage = Some(usage);
            deltas.push(StreamDelta::Usage(usage));
        }
        Ok(deltas)
    }

    /// A tool-call fragment: one with a new id (or index) starts a call; the first id and
    /// name seen are kept; arguments are appended. A fragment without an `index` continues
    /// the last call, or starts one if it has an id.
    fn tool_call(&mut self, call: ToolCallDelta, deltas: &mut Vec<StreamDelta>) {
        let index = call
            .index
            .unwrap_or_else(|| match (self.last_index, &call.id) {
                (Some(last), None) => last,
                (Some(last), Some(id)) if self.calls.get(&last).is_some_and(|c| c.id == *id) => {
                    last
                }
                _ => self.calls.keys().next_back().map_or(0, |last| last + 1),
            });
        self.last_index = Some(index);
        let (name, arguments) = call
            .function
            .map_or((None, None), |f| (f.name, f.arguments));
        let partial = self.calls.entry(index).or_default();
        let was_started = !partial.id.is_empty() || !partial.name.is_empty();
        if partial.id.is_empty() {
            partial.id = call.id.unwrap_or_default();
        }
        if partial.name.is_empty() {
            partial.name = name.unwrap_or_default();
        }
        if !was_started && (!partial.id.is_empty() || !partial.name.is_empty()) {
            deltas.push(StreamDelta::ToolCallStart {
                index,
                id: partial.id.clone(),
                name: partial.name.clone(),
            });
        }
        if let Some(fragment) = arguments.filter(|a| !a.is_empty()) {
            partial.arguments.push_str(&fragment);
            deltas.push(StreamDelta::ToolCallArguments { index, fragment });
        }
    }

    /// The answer. A stream that ended with neither `[DONE]` nor a finish reason was cut
    /// short: `Unavailable`. Without a usage chunk (a server that ignores `include_usage`)
    /// the usage is zero.
    pub fn finish(self) -> Result<ModelResponse, ModelError> {
        if !self.done && self.finish_reason.is_none() {
            return Err(ModelError::Unavailable(
                "the model provider's stream ended before the answer was complete".into(),
            ));
        }
        let mut content = Vec::new();
        let text = if self.text.is_empty() {
            self.refusal
        } else {
            self.text
        };
        if !text.is_empty() {
            content.push(ContentBlock::Text { text });
        }
        for call in self.calls.into_values() {
            content.push(ContentBlock::ToolUse {
                tool_use_id: call.id,
                name: call.name,
                input: wire::tool_input(&call.arguments),
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
            stop_reason: wire::stop_reason(self.finish_reason.as_deref(), has_calls),
            usage: self.usage.unwrap_or_default(),
        })
    }
}

/// A whole stream body at once, as [`SseDecoder`] and [`StreamAssembler`] read it piece by
/// piece.
pub fn assemble(body: &[u8]) -> Result<ModelResponse, ModelError> {
    let mut decoder = SseDecoder::default();
    let mut assembler = StreamAssembler::default();
    for event in decoder.push(body).into_iter().chain(decoder.finish()) {
        assembler.push(&event)?;
    }
    assembler.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::ModelStopReason;
    use serde_json::json;

    fn chunk(delta: Value, finish_reason: Option<&str>) -> String {
        let chunk = json!({"id": "c", "object": "chat.completion.chunk", "usage": null,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]});
        format!("data: {chunk}\n\n")
    }

    /// A stream as OpenAI sends one: role, text over two deltas, two tool calls with their
    /// arguments in fragments, the finish reason, usage, `[DONE]`.
    fn stream() -> String {
        [
            ": keep-alive comment\n\n".to_owned(),
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"content": "Let me "}), None),
            chunk(json!({"content": "calculate that."}), None),
            chunk(json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                "function": {"name": "calculator", "arguments": ""}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"expre"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "ssion\":\"6*7\"}"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                "function": {"name": "current_time", "arguments": "{}"}}]}), None),
            chunk(json!({}), Some("tool_calls")),
            format!("data: {}\n\n", json!({"choices": [], "usage": {"prompt_tokens": 50,
                "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 10}}})),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat()
    }

    fn expected() -> ModelResponse {
        ModelResponse {
            message: Message {
                role: Role::Assistant,
                content: vec![
                    ContentBlock::Text {
                        text: "Let me calculate that.".into(),
                    },
                    ContentBlock::ToolUse {
                        tool_use_id: "call_a".into(),
                        name: "calculator".into(),
                        input: json!({"expression": "6*7"}),
                    },
                    ContentBlock::ToolUse {
                        tool_use_id: "call_b".into(),
                        name: "current_time".into(),
                        input: json!({}),
                    },
                ],
            },
            stop_reason: ModelStopReason::ToolUse,
            usage: Usage {
                input_tokens: 40,
                output_tokens: 9,
                cache_read_tokens: 10,
                cache_write_tokens: 0,
            },
        }
    }

    #[test]
    fn a_stream_assembles_into_the_response_a_buffered_call_returns() {
        assert_eq!(assemble(stream().as_bytes()).unwrap(), expected());
    }

    #[test]
    fn the_stream_may_be_cut_anywhere_even_inside_a_character() {
        let body = stream()
            .replace("Let me ", "Lét me ")
            .replace("\n\n", "\r\n\r\n");
        let bytes = body.as_bytes();
        for size in [1, 2, 3, 7, 64] {
            let mut decoder = SseDecoder::default();
            let mut assembler = StreamAssembler::default();
            for piece in bytes.chunks(size) {
                for event in decoder.push(piece) {
                    assembler.push(&event).unwrap();
                }
            }
            assert!(assembler.is_done());
            let response = assembler.finish().unwrap();
            assert_eq!(
                response.message.text(),
                "Lét me calculate that.",
                "size {size}"
            );
            assert_eq!(
                response.message.tool_calls(),
                expected().message.tool_calls()
            );
        }
    }

    #[test]
    fn deltas_say_what_arrived_for_a_caller_that_forwards_them() {
        let mut decoder = SseDecoder::default();
        let mut assembler = StreamAssembler::default();
        let deltas: Vec<StreamDelta> = decoder
            .push(stream().as_bytes())
            .iter()
            .flat_map(|event| assembler.push(event).unwrap())
            .collect();
        assert_eq!(
            deltas,
            vec![
                StreamDelta::Text("Let me ".into()),
                StreamDelta::Text("calculate that.".into()),
                StreamDelta::ToolCallStart {
                    index: 0,
                    id: "call_a".into(),
                    name: "calculator".into()
                },
                StreamDelta::ToolCallArguments {
                    index: 0,
                    fragment: "{\"expre".into()
                },
                StreamDelta::ToolCallArguments {
                    index: 0,
                    fragment: "ssion\":\"6*7\"}".into()
                },
                StreamDelta::ToolCallStart {
                    index: 1,
                    id: "call_b".into(),
                    name: "current_time".into()
                },
                StreamDelta::ToolCallArguments {
                    index: 1,
                    fragment: "{}".into()
                },
                StreamDelta::Finish("tool_calls".into()),
                StreamDelta::Usage(expected().usage),
            ]
        );
    }

    #[test]
    fn a_cut_stream_an_unreadable_chunk_and_an_error_event_fail() {
        let cut = chunk(json!({"content": "Hel"}), None);
        assert!(
            matches!(assemble(cut.as_bytes()), Err(ModelError::Unavailable(m)) if m.contains("ended before"))
        );
        assert!(matches!(
            assemble(b"data: {oops\n\n"),
            Err(ModelError::Unavailable(_))
        ));
        let error = format!(
            "{}data: {}\n\n",
            chunk(json!({"content": "Hel"}), None),
            json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
        );
        assert!(matches!(
            assemble(error.as_bytes()),
            Err(ModelError::Throttled)
        ));
    }

    #[test]
    fn a_stream_without_usage_or_done_but_with_a_finish_reason_still_answers() {
        let body = [
            chunk(json!({"content": "Hi"}), None),
            chunk(json!({}), Some("length")),
        ]
        .concat();
        let response = assemble(body.as_bytes()).unwrap();
        assert_eq!(response.stop_reason, ModelStopReason::MaxTokens);
        assert_eq!(response.usage, Usage::default());
        assert_eq!(response.message.text(), "Hi");
    }

    #[test]
    fn fragments_without_an_index_continue_the_last_call() {
        let body = [
            chunk(json!({"tool_calls": [{"id": "call_x", "function": {"name": "calculator", "arguments": "{\"a\""}}]}), None),
            chunk(json!({"tool_calls": [{"function": {"arguments": ":1}"}}]}), None),
            chunk(json!({"tool_calls": [{"id": "call_y", "function": {"name": "current_time", "arguments": "not json"}}]}), None),
            chunk(json!({}), Some("tool_calls")),
        ]
        .concat();
        let calls = assemble(body.as_bytes()).unwrap().message.tool_calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].input, json!({"a": 1}));
        assert_eq!(calls[1].input, json!({"_raw": "not json"}));
    }

    #[test]
    fn multi_line_data_is_joined_and_other_fields_are_ignored() {
        let mut decoder = SseDecoder::default();
        let events = decoder
            .push(b"event: message\nid: 1\ndata: {\"a\":\ndata: 1}\nretry: 5\n\ndata:[DONE]\n\n");
        assert_eq!(
            events,
            vec![SseEvent::Data("{\"a\":\n1}".into()), SseEvent::Done]
        );
        assert_eq!(decoder.push(b"data: tail"), vec![]);
        assert_eq!(decoder.finish(), vec![SseEvent::Data("tail".into())]);
    }
}
