//! The `Model` port on Amazon Bedrock's Converse API (`aws-sdk-bedrockruntime`).
//!
//! Converts the domain's request to Converse's shapes and back. The SDK's standard retry
//! policy (exponential backoff with jitter) handles throttling and transient errors; what
//! still fails is mapped to a [`ModelError`] that never carries the conversation.

pub mod document;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::{
    error::{ProvideErrorMetadata, SdkError},
    operation::converse::ConverseError,
    types::{
        self as bedrock, ConversationRole, ConverseOutput, GuardrailConfiguration,
        InferenceConfiguration, SystemContentBlock, Tool, ToolConfiguration, ToolInputSchema,
        ToolResultBlock, ToolResultContentBlock, ToolResultStatus, ToolSpecification, ToolUseBlock,
    },
    Client,
};

use crate::{
    domain::{
        message::{ContentBlock, Message, Role, ToolResultContent, ToolStatus},
        model::{ModelRequest, ModelResponse, ModelStopReason, Usage},
    },
    ports::{Model, ModelError},
};

use document::{to_document, to_value};

/// A Bedrock model reached through the Converse API.
#[derive(Clone, Debug)]
pub struct BedrockModel {
    client: Client,
    model_id: String,
}

impl BedrockModel {
    /// A model with this id (a foundation model id or an inference profile id).
    pub fn new(client: Client, model_id: impl Into<String>) -> Self {
        Self {
            client,
            model_id: model_id.into(),
        }
    }
}

#[async_trait]
impl Model for BedrockModel {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn converse(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let messages = request
            .messages
            .iter()
            .map(to_bedrock_message)
            .collect::<Result<Vec<_>, _>>()?;
        let mut call = self
            .client
            .converse()
            .model_id(&self.model_id)
            .set_messages(Some(messages))
            .set_system(
                request
                    .system
                    .as_ref()
                    .map(|text| vec![SystemContentBlock::Text(text.clone())]),
            )
            .inference_config(
                InferenceConfiguration::builder()
                    .set_max_tokens(
                        request
                            .inference
                            .max_tokens
                            .and_then(|n| i32::try_from(n).ok()),
                    )
                    .set_temperature(request.inference.temperature)
                    .set_top_p(request.inference.top_p)
                    .set_stop_sequences(
                        (!request.inference.stop_sequences.is_empty())
                            .then(|| request.inference.stop_sequences.clone()),
                    )
                    .build(),
            );
        if !request.tools.is_empty() {
            call = call.tool_config(tool_config(request)?);
        }
        if let Some(guardrail) = &request.guardrail {
            call = call.guardrail_config(
                GuardrailConfiguration::builder()
                    .guardrail_identifier(&guardrail.id)
                    .guardrail_version(&guardrail.version)
                    .build(),
            );
        }
        let output = call.send().await.map_err(map_error)?;

        let message = match output.output {
            Some(ConverseOutput::Message(message)) => from_bedrock_message(message),
            _ => {
                return Err(ModelError::Unavailable(
                    "Converse returned no message".into(),
                ))
            }
        };
        let usage = output.usage.map_or_else(Usage::default, |usage| Usage {
            input_tokens: u64::try_from(usage.input_tokens).unwrap_or(0),
            output_tokens: u64::try_from(usage.output_tokens).unwrap_or(0),
        });
        Ok(ModelResponse {
            message,
            stop_reason: stop_reason(&output.stop_reason),
            usage,
        })
    }
}

fn invalid(error: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid(error.to_string())
}

fn tool_config(request: &ModelRequest) -> Result<ToolConfiguration, ModelError> {
    let tools = request
        .tools
        .iter()
        .map(|spec| {
            ToolSpecification::builder()
                .name(&spec.name)
                .description(&spec.description)
                .input_schema(ToolInputSchema::Json(to_document(&spec.input_schema)))
                .build()
                .map(Tool::ToolSpec)
                .map_err(invalid)
        })
        .collect::<Result<Vec<_>, _>>()?;
    ToolConfiguration::builder()
        .set_tools(Some(tools))
        .build()
        .map_err(invalid)
}

/// Converts a domain message to Converse's.
pub fn to_bedrock_message(message: &Message) -> Result<bedrock::Message, ModelError> {
    let content = message
        .content
        .iter()
        .map(|block| {
            Ok(match block {
                ContentBlock::Text { text } => bedrock::ContentBlock::Text(text.clone()),
                ContentBlock::ToolUse {
                    tool_use_id,
                    name,
                    input,
                } => bedrock::ContentBlock::ToolUse(
                    ToolUseBlock::builder()
                        .tool_use_id(tool_use_id)
                        .name(name)
                        .input(to_document(input))
                        .build()
                        .map_err(invalid)?,
                ),
                ContentBlock::ToolResult {
                    tool_use_id,
                    status,
                    content,
                } => bedrock::ContentBlock::ToolResult(
                    ToolResultBlock::builder()
                        .tool_use_id(tool_use_id)
                        .status(match status {
                            ToolStatus::Success => ToolResultStatus::Success,
                            ToolStatus::Error => ToolResultStatus::Error,
                        })
                        .set_content(Some(
                            content
                                .iter()
                                .map(|part| match part {
                                    ToolResultContent::Text { text } => {
                                        ToolResultContentBlock::Text(text.clone())
                                    }
                                    ToolResultContent::Json { json } => {
                                        ToolResultContentBlock::Json(to_document(json))
                                    }
                                })
                                .collect(),
                        ))
                        .build()
                        .map_err(invalid)?,
                ),
            })
        })
        .collect::<Result<Vec<_>, ModelError>>()?;
    bedrock::Message::builder()
        .role(match message.role {
            Role::User => ConversationRole::User,
            Role::Assistant => ConversationRole::Assistant,
        })
        .set_content(Some(content))
        .build()
        .map_err(invalid)
}

/// Converts a Converse message to the domain's, keeping text, tool uses and tool results.
pub fn from_bedrock_message(message: bedrock::Message) -> Message {
    let role = match message.role {
        ConversationRole::User => Role::User,
        _ => Role::Assistant,
    };
    let content = message
        .content
        .into_iter()
        .filter_map(|block| match block {
            bedrock::ContentBlock::Text(text) => Some(ContentBlock::Text { text }),
            bedrock::ContentBlock::ToolUse(tool_use) => Some(ContentBlock::ToolUse {
                input: to_value(&tool_use.input),
                tool_use_id: tool_use.tool_use_id,
                name: tool_use.name,
            }),
            bedrock::ContentBlock::ToolResult(result) => Some(ContentBlock::ToolResult {
                status: match result.status {
                    Some(ToolResultStatus::Error) => ToolStatus::Error,
                    _ => ToolStatus::Success,
                },
                content: result
                    .content
                    .into_iter()
                    .filter_map(|part| match part {
                        ToolResultContentBlock::Text(text) => {
                            Some(ToolResultContent::Text { text })
                        }
                        ToolResultContentBlock::Json(json) => Some(ToolResultContent::Json {
                            json: to_value(&json),
                        }),
                        _ => None,
                    })
                    .collect(),
                tool_use_id: result.tool_use_id,
            }),
            // Reasoning, citations, images and the like are not part of the conversation we keep.
            _ => None,
        })
        .collect();
    Message { role, content }
}

fn stop_reason(reason: &bedrock::StopReason) -> ModelStopReason {
    match reason {
        bedrock::StopReason::EndTurn => ModelStopReason::EndTurn,
        bedrock::StopReason::ToolUse => ModelStopReason::ToolUse,
        bedrock::StopReason::MaxTokens => ModelStopReason::MaxTokens,
        bedrock::StopReason::StopSequence => ModelStopReason::StopSequence,
        bedrock::StopReason::GuardrailIntervened => ModelStopReason::GuardrailIntervened,
        bedrock::StopReason::ContentFiltered => ModelStopReason::ContentFiltered,
        other => ModelStopReason::Other(other.as_str().to_owned()),
    }
}

/// Phrases of Bedrock's `ValidationException` messages that mean the input is longer than the
/// model's context window (Bedrock's own "Input is too long for requested model", Anthropic's
/// "prompt is too long", and the wording of other providers).
const OVERFLOW_PHRASES: &[&str] = &[
    "too long",
    "too many input tokens",
    "maximum context length",
    "context window",
    "exceeds the maximum",
];

/// Maps a Converse failure to the domain's kinds: what a retry may fix (`Throttled`, `Timeout`,
/// `Unavailable`) apart from what it cannot (`ContextOverflow`, `Invalid`, `AccessDenied`).
/// Only the error code and, for validation errors, Bedrock's message are kept: never the
/// conversation.
pub fn map_error<R>(error: SdkError<ConverseError, R>) -> ModelError {
    match &error {
        SdkError::TimeoutError(_) => return ModelError::Timeout,
        SdkError::DispatchFailure(_) => {
            return ModelError::Unavailable("could not reach Bedrock".into())
        }
        SdkError::ResponseError(_) => {
            return ModelError::Unavailable("Bedrock's response could not be read".into())
        }
        SdkError::ConstructionFailure(_) => {
            return ModelError::Invalid("the request could not be built".into())
        }
        _ => {}
    }
    let Some(service) = error.as_service_error() else {
        return ModelError::Unavailable("unexpected error".into());
    };
    match service {
        ConverseError::ThrottlingException(_) => ModelError::Throttled,
        ConverseError::AccessDeniedException(_) | ConverseError::ResourceNotFoundException(_) => {
            ModelError::AccessDenied
        }
        ConverseError::ModelTimeoutException(_) => ModelError::Timeout,
        ConverseError::ValidationException(e) => {
            let message = e.message().unwrap_or("validation failed");
            let lower = message.to_ascii_lowercase();
            if OVERFLOW_PHRASES.iter().any(|phrase| lower.contains(phrase)) {
                ModelError::ContextOverflow(message.to_owned())
            } else {
                ModelError::Invalid(message.to_owned())
            }
        }
        // Not modelled by this SDK version for Converse: it arrives as an unhandled error.
        other if other.code() == Some("ServiceQuotaExceededException") => ModelError::Throttled,
        other => ModelError::Unavailable(
            other
                .code()
                .map_or_else(|| "unexpected error".to_owned(), str::to_owned),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_of_every_kind_survive_the_trip_through_converse_types() {
        let messages = vec![
            Message::user_text("What is 6*7?"),
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentBlock::Text {
                        text: "Calculating.".into(),
                    },
                    ContentBlock::ToolUse {
                        tool_use_id: "tooluse_1".into(),
                        name: "calculator".into(),
                        input: json!({"expression": "6*7", "precision": 2, "flags": [true, null]}),
                    },
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    ContentBlock::ToolResult {
                        tool_use_id: "tooluse_1".into(),
                        status: ToolStatus::Success,
                        content: vec![
                            ToolResultContent::Json {
                                json: json!({"result": "42"}),
                            },
                            ToolResultContent::Text {
                                text: "done".into(),
                            },
                        ],
                    },
                    ContentBlock::ToolResult {
                        tool_use_id: "tooluse_2".into(),
                        status: ToolStatus::Error,
                        content: vec![ToolResultContent::Text {
                            text: "timed out".into(),
                        }],
                    },
                ],
            },
        ];
        for message in messages {
            let converted = to_bedrock_message(&message).expect("converts");
            assert_eq!(from_bedrock_message(converted), message);
        }
    }
}
