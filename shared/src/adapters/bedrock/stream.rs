//! ConverseStream's events assembled into the response `Converse` would have given, the text
//! handed to a [`TurnSink`] as it arrives.
//!
//! Bedrock sends a message as content blocks, each opened (`contentBlockStart`, for a tool
//! use: its id and name), grown by deltas (text, a tool's input as JSON fragments, reasoning
//! text and its signature, redacted reasoning), and closed (`contentBlockStop`); then
//! `messageStop` with the stop reason and `metadata` with the usage. Blocks are kept by their
//! index, so deltas of interleaved blocks land where they belong.

use std::collections::BTreeMap;

use aws_sdk_bedrockruntime::types::{
    ContentBlockDelta, ContentBlockStart, ConverseStreamOutput, ReasoningContentBlockDelta,
};
use base64::Engine as _;
use serde_json::Value;

use super::{stop_reason, usage};
use crate::{
    domain::{
        message::{ContentBlock, Message, Role},
        model::{ModelResponse, ModelStopReason, Usage},
    },
    ports::{ModelError, TurnSink},
};

/// One content block as its deltas arrive.
#[derive(Debug)]
enum Block {
    Text(String),
    ToolUse {
        tool_use_id: String,
        name: String,
        input: String,
    },
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    Redacted(Vec<u8>),
}

/// Assembles one ConverseStream answer.
#[derive(Debug, Default)]
pub struct Assembler {
    blocks: BTreeMap<i32, Block>,
    stop_reason: Option<ModelStopReason>,
    usage: Option<Usage>,
}

impl Assembler {
    /// Takes one event; text deltas go to `sink` at once.
    pub fn push(
        &mut self,
        event: ConverseStreamOutput,
        sink: &dyn TurnSink,
    ) -> Result<(), ModelError> {
        match event {
            ConverseStreamOutput::ContentBlockStart(start) => {
                if let Some(ContentBlockStart::ToolUse(tool_use)) = start.start {
                    self.blocks.insert(
                        start.content_block_index,
                        Block::ToolUse {
                            tool_use_id: tool_use.tool_use_id,
                            name: tool_use.name,
                            input: String::new(),
                        },
                    );
                }
            }
            ConverseStreamOutput::ContentBlockDelta(event) => {
                let index = event.content_block_index;
                match event.delta {
                    Some(ContentBlockDelta::Text(text)) => {
                        sink.text(&text);
                        match self
                            .blocks
                            .entry(index)
                            .or_insert_with(|| Block::Text(String::new()))
                        {
                            Block::Text(whole) => whole.push_str(&text),
                            other => return Err(mixed(index, other)),
                        }
                    }
                    Some(ContentBlockDelta::ToolUse(delta)) => match self.blocks.get_mut(&index) {
                        Some(Block::ToolUse { input, .. }) => input.push_str(&delta.input),
                        _ => {
                            return Err(ModelError::Unavailable(format!(
                                "ConverseStream sent tool input for block {index}, which opened no tool use"
                            )))
                        }
                    },
                    Some(ContentBlockDelta::ReasoningContent(delta)) => {
                        let block = self.blocks.entry(index).or_insert_with(|| match delta {
                            ReasoningContentBlockDelta::RedactedContent(_) => {
                                Block::Redacted(Vec::new())
                            }
                            _ => Block::Reasoning {
                                text: String::new(),
                                signature: None,
                            },
                        });
                        match (block, delta) {
                            (Block::Reasoning { text, .. }, ReasoningContentBlockDelta::Text(more)) => {
                                text.push_str(&more);
                            }
                            (
                                Block::Reasoning { signature, .. },
                                ReasoningContentBlockDelta::Signature(more),
                            ) => signature.get_or_insert_with(String::new).push_str(&more),
                            (Block::Redacted(data), ReasoningContentBlockDelta::RedactedContent(more)) => {
                                data.extend_from_slice(more.as_ref());
                            }
                            (
                                other,
                                ReasoningContentBlockDelta::Text(_)
                                | ReasoningContentBlockDelta::Signature(_)
                                | ReasoningContentBlockDelta::RedactedContent(_),
                            ) => return Err(mixed(index, other)),
                            // A kind of reasoning delta newer than this SDK.
                            _ => {}
                        }
                    }
                    // Citations, images and tool-result deltas are not part of the
                    // conversation we keep (as in `from_bedrock_message`).
                    _ => {}
                }
            }
            ConverseStreamOutput::MessageStop(stop) => {
                self.stop_reason = Some(stop_reason(&stop.stop_reason));
            }
            ConverseStreamOutput::Metadata(metadata) => {
                self.usage = metadata.usage.map(usage);
            }
            // messageStart (the role is always the assistant's), contentBlockStop, and events
            // newer than this SDK.
            _ => {}
        }
        Ok(())
    }

    /// The response, once the stream has ended. A stream that ended before `messageStop`
    /// was cut: the answer is incomplete, and a retry may give a whole one.
    pub fn finish(self) -> Result<ModelResponse, ModelError> {
        let stop_reason = self.stop_reason.ok_or_else(|| {
            ModelError::Unavailable("ConverseStream ended before the message stopped".into())
        })?;
        let content = self
            .blocks
            .into_values()
            .map(|block| {
                Ok(match block {
                    Block::Text(text) => ContentBlock::Text { text },
                    Block::ToolUse {
                        tool_use_id,
                        name,
                        input,
                    } => ContentBlock::ToolUse {
                        input: tool_input(&input, &name)?,
                        tool_use_id,
                        name,
                    },
                    Block::Reasoning { text, signature } => {
                        ContentBlock::Reasoning { text, signature }
                    }
                    Block::Redacted(data) => ContentBlock::RedactedReasoning {
                        data: base64::engine::general_purpose::STANDARD.encode(data),
                    },
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(ModelResponse {
            message: Message {
                role: Role::Assistant,
                content,
            },
            stop_reason,
            usage: self.usage.unwrap_or_default(),
        })
    }
}

/// A tool's input from its JSON fragments: no fragment is an empty input.
fn tool_input(json: &str, name: &str) -> Result<Value, ModelError> {
    if json.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(json).map_err(|_| {
        ModelError::Unavailable(format!(
            "ConverseStream sent an input for the tool '{name}' that is not JSON"
        ))
    })
}

fn mixed(index: i32, block: &Block) -> ModelError {
    let kind = match block {
        Block::Text(_) => "text",
        Block::ToolUse { .. } => "tool use",
        Block::Reasoning { .. } => "reasoning",
        Block::Redacted(_) => "redacted reasoning",
    };
    ModelError::Unavailable(format!(
        "ConverseStream sent another kind of delta into {kind} block {index}"
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_bedrockruntime::types::{
        ContentBlockDeltaEvent, ContentBlockStartEvent, ConverseStreamMetadataEvent,
        MessageStopEvent, StopReason, TokenUsage, ToolUseBlockDelta, ToolUseBlockStart,
    };
    use serde_json::json;

    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<String>>);

    impl TurnSink for Collect {
        fn text(&self, delta: &str) {
            self.0.lock().unwrap().push(delta.to_owned());
        }
    }

    fn text(index: i32, text: &str) -> ConverseStreamOutput {
        ConverseStreamOutput::ContentBlockDelta(
            ContentBlockDeltaEvent::builder()
                .content_block_index(index)
                .delta(ContentBlockDelta::Text(text.into()))
                .build()
                .unwrap(),
        )
    }

    fn tool_start(index: i32, id: &str, name: &str) -> ConverseStreamOutput {
        ConverseStreamOutput::ContentBlockStart(
            ContentBlockStartEvent::builder()
                .content_block_index(index)
                .start(ContentBlockStart::ToolUse(
                    ToolUseBlockStart::builder()
                        .tool_use_id(id)
                        .name(name)
                        .build()
                        .unwrap(),
                ))
                .build()
                .unwrap(),
        )
    }

    fn tool_input_delta(index: i32, fragment: &str) -> ConverseStreamOutput {
        ConverseStreamOutput::ContentBlockDelta(
            ContentBlockDeltaEvent::builder()
                .content_block_index(index)
                .delta(ContentBlockDelta::ToolUse(
                    ToolUseBlockDelta::builder()
                        .input(fragment)
                        .build()
                        .unwrap(),
                ))
                .build()
                .unwrap(),
        )
    }

    fn stop(reason: StopReason) -> ConverseStreamOutput {
        ConverseStreamOutput::MessageStop(
            MessageStopEvent::builder()
                .stop_reason(reason)
                .build()
                .unwrap(),
        )
    }

    fn metadata(input: i32, output: i32) -> ConverseStreamOutput {
        ConverseStreamOutput::Metadata(
            ConverseStreamMetadataEvent::builder()
                .usage(
                    TokenUsage::builder()
                        .input_tokens(input)
                        .output_tokens(output)
                        .total_tokens(input + output)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
    }

    #[test]
    fn text_and_a_tool_use_assemble_and_only_the_text_is_streamed() {
        let sink = Collect::default();
        let mut assembler = Assembler::default();
        for event in [
            text(0, "Let me "),
            text(0, "compute."),
            tool_start(1, "t1", "calculator"),
            tool_input_delta(1, "{\"expression\":"),
            tool_input_delta(1, "\"12*7\"}"),
            stop(StopReason::ToolUse),
            metadata(120, 30),
        ] {
            assembler.push(event, &sink).unwrap();
        }
        let response = assembler.finish().unwrap();
        assert_eq!(*sink.0.lock().unwrap(), ["Let me ", "compute."]);
        assert_eq!(response.stop_reason, ModelStopReason::ToolUse);
        assert_eq!(response.usage.input_tokens, 120);
        assert_eq!(response.usage.output_tokens, 30);
        assert_eq!(
            response.message.content,
            [
                ContentBlock::Text {
                    text: "Let me compute.".into()
                },
                ContentBlock::ToolUse {
                    tool_use_id: "t1".into(),
                    name: "calculator".into(),
                    input: json!({"expression": "12*7"}),
                },
            ]
        );
    }

    #[test]
    fn a_tool_use_without_input_has_an_empty_object_and_bad_json_fails() {
        let sink = Collect::default();
        let mut assembler = Assembler::default();
        assembler
            .push(tool_start(0, "t1", "current_time"), &sink)
            .unwrap();
        assembler.push(stop(StopReason::ToolUse), &sink).unwrap();
        let response = assembler.finish().unwrap();
        assert!(matches!(
            &response.message.content[0],
            ContentBlock::ToolUse { input, .. } if input == &json!({})
        ));

        let mut assembler = Assembler::default();
        assembler
            .push(tool_start(0, "t1", "calculator"), &sink)
            .unwrap();
        assembler
            .push(tool_input_delta(0, "{\"expr"), &sink)
            .unwrap();
        assembler.push(stop(StopReason::ToolUse), &sink).unwrap();
        let error = assembler.finish().unwrap_err();
        assert!(
            error.is_transient() && error.to_string().contains("calculator"),
            "{error}"
        );
    }

    #[test]
    fn a_stream_cut_before_message_stop_is_a_transient_failure() {
        let sink = Collect::default();
        let mut assembler = Assembler::default();
        assembler.push(text(0, "partial"), &sink).unwrap();
        let error = assembler.finish().unwrap_err();
        assert!(error.is_transient(), "{error}");
    }

    #[test]
    fn reasoning_keeps_its_signature_and_is_not_streamed_as_text() {
        let sink = Collect::default();
        let mut assembler = Assembler::default();
        for delta in [
            ReasoningContentBlockDelta::Text("think".into()),
            ReasoningContentBlockDelta::Text("ing".into()),
            ReasoningContentBlockDelta::Signature("sig".into()),
        ] {
            assembler
                .push(
                    ConverseStreamOutput::ContentBlockDelta(
                        ContentBlockDeltaEvent::builder()
                            .content_block_index(0)
                            .delta(ContentBlockDelta::ReasoningContent(delta))
                            .build()
                            .unwrap(),
                    ),
                    &sink,
                )
                .unwrap();
        }
        assembler.push(text(1, "answer"), &sink).unwrap();
        assembler.push(stop(StopReason::EndTurn), &sink).unwrap();
        let response = assembler.finish().unwrap();
        assert_eq!(*sink.0.lock().unwrap(), ["answer"]);
        assert_eq!(
            response.message.content[0],
            ContentBlock::Reasoning {
                text: "thinking".into(),
                signature: Some("sig".into())
            }
        );
    }
}
