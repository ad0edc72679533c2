//! The conversation as the agent sees it: messages made of text, tool uses and tool results.
//!
//! These types are the domain's own. Adapters convert them to and from Bedrock's and
//! DynamoDB's shapes at the edge; nothing here knows an AWS type.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The person, or tool results sent back on their side of the conversation.
    User,
    /// The model.
    Assistant,
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// What it holds, in order.
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A user message with one text block.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![ContentBlock::Text { text: text.into() }],
        }
    }

    /// An assistant message with one text block.
    pub fn assistant_text(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: vec![ContentBlock::Text { text: text.into() }],
        }
    }

    /// The text blocks of the message joined by newlines.
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        parts.join("\n")
    }

    /// The tool calls the message asks for, in order.
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        self.content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::ToolUse {
                    tool_use_id,
                    name,
                    input,
                } => Some(ToolCall {
                    tool_use_id: tool_use_id.clone(),
                    name: name.clone(),
                    input: input.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// True when this is a user message that opens a turn (text, not tool results).
    pub fn starts_turn(&self) -> bool {
        self.role == Role::User
            && self
                .content
                .iter()
                .all(|block| matches!(block, ContentBlock::Text { .. }))
    }
}

/// One piece of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// The model asks for a tool to be run.
    ToolUse {
        /// Pairs the use with its result.
        tool_use_id: String,
        /// The tool's name.
        name: String,
        /// The tool's arguments, a JSON object.
        input: Value,
    },
    /// What a tool returned.
    ToolResult {
        /// The use this answers.
        tool_use_id: String,
        /// Whether the tool succeeded.
        status: ToolStatus,
        /// What the tool returned.
        content: Vec<ToolResultContent>,
    },
    /// The model's reasoning (extended thinking), kept exactly as returned: Bedrock requires
    /// it back, unchanged and with its signature, in the tool-use loop that produced it. It is
    /// never cut; when a message must shrink, reasoning is dropped whole.
    Reasoning {
        /// The reasoning text.
        text: String,
        /// The provider's signature of the text, when it gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// Reasoning the provider encrypted (redacted), base64, kept as returned.
    RedactedReasoning {
        /// The opaque data, base64.
        data: String,
    },
}

impl ContentBlock {
    /// True for reasoning blocks, which must travel unchanged or not at all.
    pub fn is_reasoning(&self) -> bool {
        matches!(
            self,
            Self::Reasoning { .. } | Self::RedactedReasoning { .. }
        )
    }
}

/// Whether a tool call succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    /// The tool did its job.
    Success,
    /// The tool failed; the content says why, for the model to read.
    Error,
}

/// A piece of a tool's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolResultContent {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// Structured data.
    Json {
        /// The value.
        json: Value,
    },
}

impl ToolResultContent {
    /// The piece as text (JSON as its serialization).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Text { text } => std::borrow::Cow::Borrowed(text),
            Self::Json { json } => std::borrow::Cow::Owned(json.to_string()),
        }
    }

    /// The pieces of a result as one text, a line between them.
    pub fn joined(parts: &[ToolResultContent]) -> String {
        parts
            .iter()
            .map(ToolResultContent::text)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A tool call the model asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Pairs the call with its result.
    pub tool_use_id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments.
    pub input: Value,
}

/// What a tool returned for one call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    /// Whether it succeeded.
    pub status: ToolStatus,
    /// What it returned.
    pub content: Vec<ToolResultContent>,
    /// What the executor reported it used (search queries, secret reads), for the ledger;
    /// never sent to the model nor stored with the messages.
    #[serde(skip)]
    pub usage: super::ledger::ToolUsage,
}

impl ToolOutput {
    /// A successful text result.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            status: ToolStatus::Success,
            content: vec![ToolResultContent::Text { text: text.into() }],
            usage: Default::default(),
        }
    }

    /// A successful JSON result.
    pub fn json(json: Value) -> Self {
        Self {
            status: ToolStatus::Success,
            content: vec![ToolResultContent::Json { json }],
            usage: Default::default(),
        }
    }

    /// An error result that the model reads.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            status: ToolStatus::Error,
            content: vec![ToolResultContent::Text {
                text: message.into(),
            }],
            usage: Default::default(),
        }
    }
}
