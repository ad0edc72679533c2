//! The `Model` port on Amazon Bedrock's Converse API (`aws-sdk-bedrockruntime`).
//!
//! Converts the domain's request to Converse's shapes and back: system prompt, tool specs,
//! messages (text, tool use and results, reasoning with its signature), tool choice, stop
//! sequences, service tier, request fields passed through, and prompt-cache points where the
//! model takes them ([`crate::domain::caching`]). One call is one attempt: the SDK's own
//! retries are turned off where the client is built (`main.rs`), because the agent's retry
//! layer (`crate::models`) retries within the turn's time left and falls back along the
//! configured chain. What fails is mapped to a [`ModelError`] that never carries the
//! conversation.

pub mod document;
pub mod embed;
pub mod stream;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::{
    error::{ProvideErrorMetadata, SdkError},
    primitives::Blob,
    types::error::ConverseStreamOutputError,
    types::{
        self as bedrock, AnyToolChoice, AutoToolChoice, CachePointBlock, CachePointType,
        ConversationRole, ConverseOutput, GuardrailConfiguration, GuardrailStreamConfiguration,
        InferenceConfiguration, ReasoningContentBlock, ReasoningTextBlock, ServiceTierType,
        SpecificToolChoice, SystemContentBlock, Tool, ToolConfiguration, ToolInputSchema,
        ToolResultBlock, ToolResultContentBlock, ToolResultStatus, ToolSpecification, ToolUseBlock,
    },
    Client,
};
use base64::Engine as _;

use crate::{
    domain::{
        caching::{self, CachePlan},
        catalog::{self, ModelInfo},
        message::{ContentBlock, Message, Role, ToolResultContent, ToolStatus},
        model::{ModelRequest, ModelResponse, ModelStopReason, ServiceTier, ToolChoice, Usage},
    },
    ports::{Model, ModelError, TurnSink},
};

use document::{to_document, to_value};

/// A Bedrock model reached through the Converse API.
#[derive(Clone, Debug)]
pub struct BedrockModel {
    client: Client,
    model_id: String,
    info: Option<&'static ModelInfo>,
}

impl BedrockModel {
    /// A model with this id (a foundation model id, an inference profile id or ARN).
    pub fn new(client: Client, model_id: impl Into<String>) -> Self {
        let model_id = model_id.into();
        Self {
            info: catalog::lookup(&model_id),
            client,
            model_id,
        }
    }

    /// Where this model takes cache points for `request`.
    fn cache_plan(&self, request: &ModelRequest) -> CachePlan {
        self.info
            .and_then(|info| info.cache.as_ref())
            .map_or_else(CachePlan::default, |support| {
                caching::plan(request, support)
            })
    }

    /// The tool choice to send: `any` and a named tool only to models that take them (an
    /// unknown model gets what was asked).
    fn tool_choice(&self, request: &ModelRequest) -> Option<bedrock::ToolChoice> {
        let choice = request.tool_choice.as_ref()?;
        let supported = self.info.is_none_or(|info| info.tool_choice);
        Some(match choice {
            ToolChoice::Auto => bedrock::ToolChoice::Auto(AutoToolChoice::builder().build()),
            _ if !supported => return None,
            ToolChoice::Any => bedrock::ToolChoice::Any(AnyToolChoice::builder().build()),
            ToolChoice::Tool(name) => {
                bedrock::ToolChoice::Tool(SpecificToolChoice::builder().name(name).build().ok()?)
            }
        })
    }

    /// The service tier to ask for: only one the model offers (an unknown model gets it).
    fn service_tier(&self, request: &ModelRequest) -> Option<bedrock::ServiceTier> {
        let tier = request.service_tier?;
        if self.info.is_some_and(|info| !info.offers(tier)) {
            return None;
        }
        let kind = match tier {
            ServiceTier::Default => ServiceTierType::Default,
            ServiceTier::Priority => ServiceTierType::Priority,
            ServiceTier::Flex => ServiceTierType::Flex,
        };
        bedrock::ServiceTier::builder().r#type(kind).build().ok()
    }
}

fn cache_point() -> Result<CachePointBlock, ModelError> {
    CachePointBlock::builder()
        .r#type(CachePointType::Default)
        .build()
        .map_err(invalid)
}

/// Sets a request's parts on a `Converse` or a `ConverseStream` builder: two types with the
/// same setters (the guardrail's type differs, and is set by the caller).
macro_rules! with_parts {
    ($builder:expr, $model_id:expr, $parts:expr) => {{
        let parts = $parts;
        $builder
            .model_id($model_id)
            .set_messages(Some(parts.messages))
            .set_system(parts.system)
            .inference_config(parts.inference)
            .set_tool_config(parts.tool_config)
            .set_service_tier(parts.service_tier)
            .set_additional_model_request_fields(parts.additional_fields)
    }};
}

/// The parts of a Converse request, shared by `Converse` and `ConverseStream`.
struct Parts {
    messages: Vec<bedrock::Message>,
    system: Option<Vec<SystemContentBlock>>,
    inference: InferenceConfiguration,
    tool_config: Option<ToolConfiguration>,
    service_tier: Option<bedrock::ServiceTier>,
    additional_fields: Option<aws_smithy_types::Document>,
}

impl BedrockModel {
    fn parts(&self, request: &ModelRequest) -> Result<Parts, ModelError> {
        let plan = self.cache_plan(request);
        let mut messages = request
            .messages
            .iter()
            .map(to_bedrock_message)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(index) = plan.after_message {
            if let Some(message) = messages.get_mut(index) {
                let mut content = message.content.clone();
                content.push(bedrock::ContentBlock::CachePoint(cache_point()?));
                *message = bedrock::Message::builder()
                    .role(message.role.clone())
                    .set_content(Some(content))
                    .build()
                    .map_err(invalid)?;
            }
        }
        let mut system = request
            .system
            .as_ref()
            .map(|text| vec![SystemContentBlock::Text(text.clone())]);
        if let (Some(system), true) = (system.as_mut(), plan.after_system) {
            system.push(SystemContentBlock::CachePoint(cache_point()?));
        }
        let inference = InferenceConfiguration::builder()
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
            .build();
        let tool_config = if request.tools.is_empty() {
            None
        } else {
            Some(tool_config(request, plan, self.tool_choice(request))?)
        };
        Ok(Parts {
            messages,
            system,
            inference,
            tool_config,
            service_tier: self.service_tier(request),
            additional_fields: request.additional_fields.as_ref().map(to_document),
        })
    }
}

#[async_trait]
impl Model for BedrockModel {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn converse(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let parts = self.parts(request)?;
        let guardrail = request.guardrail.as_ref().map(|guardrail| {
            GuardrailConfiguration::builder()
                .guardrail_identifier(&guardrail.id)
                .guardrail_version(&guardrail.version)
                .build()
        });
        let output = with_parts!(self.client.converse(), &self.model_id, parts)
            .set_guardrail_config(guardrail)
            .send()
            .await
            .map_err(|error| map_error(&error))?;

        let message = match output.output {
            Some(ConverseOutput::Message(message)) => from_bedrock_message(message),
            _ => {
                return Err(ModelError::Unavailable(
                    "Converse returned no message".into(),
                ))
            }
        };
        Ok(ModelResponse {
            message,
            stop_reason: stop_reason(&output.stop_reason),
            usage: output.usage.map_or_else(Usage::default, usage),
        })
    }

    async fn converse_stream(
        &self,
        request: &ModelRequest,
        sink: &dyn TurnSink,
    ) -> Result<ModelResponse, ModelError> {
        let parts = self.parts(request)?;
        let guardrail = request.guardrail.as_ref().map(|guardrail| {
            GuardrailStreamConfiguration::builder()
                .guardrail_identifier(&guardrail.id)
                .guardrail_version(&guardrail.version)
                .build()
        });
        let mut output = with_parts!(self.client.converse_stream(), &self.model_id, parts)
            .set_guardrail_config(guardrail)
            .send()
            .await
            .map_err(|error| map_error(&error))?;
        let mut assembler = stream::Assembler::default();
        loop {
            match output.stream.recv().await {
                Ok(Some(event)) => assembler.push(event, sink)?,
                Ok(None) => break,
                Err(error) => return Err(map_event_error(&error)),
            }
        }
        assembler.finish()
    }
}

/// The domain's usage of Converse's.
fn usage(usage: bedrock::TokenUsage) -> Usage {
    let count = |n: Option<i32>| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    Usage {
        input_tokens: count(Some(usage.input_tokens)),
        output_tokens: count(Some(usage.output_tokens)),
        cache_read_tokens: count(usage.cache_read_input_tokens),
        cache_write_tokens: count(usage.cache_write_input_tokens),
    }
}

fn invalid(error: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid(error.to_string())
}

fn tool_config(
    request: &ModelRequest,
    plan: CachePlan,
    choice: Option<bedrock::ToolChoice>,
) -> Result<ToolConfiguration, ModelError> {
    let mut tools = request
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
    if plan.after_tools {
        tools.push(Tool::CachePoint(cache_point()?));
    }
    ToolConfiguration::builder()
        .set_tools(Some(tools))
        .set_tool_choice(choice)
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
                ContentBlock::Reasoning { text, signature } => {
                    bedrock::ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(
                        ReasoningTextBlock::builder()
                            .text(text)
                            .set_signature(signature.clone())
                            .build()
                            .map_err(invalid)?,
                    ))
                }
                ContentBlock::RedactedReasoning { data } => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .map_err(invalid)?;
                    bedrock::ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(
                        Blob::new(bytes),
                    ))
                }
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
            bedrock::ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(
                reasoning,
            )) => Some(ContentBlock::Reasoning {
                text: reasoning.text,
                signature: reasoning.signature,
            }),
            bedrock::ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(
                data,
            )) => Some(ContentBlock::RedactedReasoning {
                data: base64::engine::general_purpose::STANDARD.encode(data.as_ref()),
            }),
            // Citations, images and the like are not part of the conversation we keep.
            _ => None,
        })
        .collect();
    Message { role, content }
}

pub(crate) fn stop_reason(reason: &bedrock::StopReason) -> ModelStopReason {
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

/// Maps a Converse or ConverseStream failure (a refused call, or an exception event inside a
/// started stream) to the domain's kinds: what a retry may fix (`Throttled`, `Timeout`,
/// `Unavailable`) apart from what it cannot (`ContextOverflow`, `Invalid`, `AccessDenied`).
/// Only the error code and, for validation errors, Bedrock's message are kept: never the
/// conversation.
pub fn map_error<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> ModelError {
    match error {
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
    match error.as_service_error() {
        Some(service) => map_code(service.code(), service.message()),
        None => ModelError::Unavailable("unexpected error".into()),
    }
}

/// Maps an exception event inside a started ConverseStream by its kind (the SDK does not give
/// every event's code).
fn map_event_error<R>(error: &SdkError<ConverseStreamOutputError, R>) -> ModelError {
    match error.as_service_error() {
        Some(ConverseStreamOutputError::ThrottlingException(_)) => ModelError::Throttled,
        Some(ConverseStreamOutputError::ValidationException(e)) => {
            map_code(Some("ValidationException"), e.message())
        }
        Some(ConverseStreamOutputError::ServiceUnavailableException(_)) => {
            ModelError::Unavailable("ServiceUnavailableException".into())
        }
        Some(ConverseStreamOutputError::ModelStreamErrorException(_)) => {
            ModelError::Unavailable("ModelStreamErrorException".into())
        }
        Some(ConverseStreamOutputError::InternalServerException(_)) => {
            ModelError::Unavailable("InternalServerException".into())
        }
        _ => map_error(error),
    }
}

/// The domain's kind of a Bedrock error code. Codes are compared without case: an exception
/// event inside a stream names its kind in lowerCamel (`throttlingException`).
fn map_code(code: Option<&str>, message: Option<&str>) -> ModelError {
    let Some(code) = code else {
        return ModelError::Unavailable("unexpected error".into());
    };
    match code.to_ascii_lowercase().as_str() {
        // ServiceQuotaExceededException is not modelled by this SDK version for Converse: it
        // arrives as an unhandled error with its code.
        "throttlingexception" | "servicequotaexceededexception" => ModelError::Throttled,
        "accessdeniedexception" | "resourcenotfoundexception" => ModelError::AccessDenied,
        "modeltimeoutexception" => ModelError::Timeout,
        "validationexception" => {
            let message = message.unwrap_or("validation failed");
            let lower = message.to_ascii_lowercase();
            if OVERFLOW_PHRASES.iter().any(|phrase| lower.contains(phrase)) {
                ModelError::ContextOverflow(message.to_owned())
            } else {
                ModelError::Invalid(message.to_owned())
            }
        }
        _ => ModelError::Unavailable(code.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(id: &str) -> BedrockModel {
        let config = aws_sdk_bedrockruntime::Config::builder()
            .behavior_version(aws_sdk_bedrockruntime::config::BehaviorVersion::latest())
            .build();
        BedrockModel::new(Client::from_conf(config), id)
    }

    #[test]
    fn a_service_tier_goes_only_to_a_model_that_offers_it() {
        let request = ModelRequest {
            service_tier: Some(ServiceTier::Flex),
            ..ModelRequest::default()
        };
        let tier = |id: &str| model(id).service_tier(&request).map(|t| t.r#type().clone());
        assert_eq!(
            tier("us.amazon.nova-2-lite-v1:0"),
            Some(ServiceTierType::Flex)
        );
        assert_eq!(tier("us.anthropic.claude-haiku-4-5-20251001-v1:0"), None);
        assert_eq!(tier("acme.unknown-v1"), Some(ServiceTierType::Flex));
        let default = ModelRequest {
            service_tier: Some(ServiceTier::Default),
            ..ModelRequest::default()
        };
        assert!(model("us.anthropic.claude-haiku-4-5-20251001-v1:0")
            .service_tier(&default)
            .is_some());
    }

    #[test]
    fn cache_points_follow_the_models_support() {
        let request = ModelRequest {
            system: Some("s".repeat(20_000)),
            tools: vec![crate::domain::model::ToolSpec {
                name: "search".into(),
                description: "d".repeat(20_000),
                input_schema: json!({"type": "object"}),
            }],
            messages: vec![Message::user_text("hi")],
            prompt_caching: true,
            ..ModelRequest::default()
        };
        let claude = model("us.anthropic.claude-haiku-4-5-20251001-v1:0").cache_plan(&request);
        assert!(claude.after_tools && claude.after_system && claude.after_message == Some(0));
        let nova = model("us.amazon.nova-lite-v1:0").cache_plan(&request);
        assert!(!nova.after_tools && nova.after_system);
        assert_eq!(model("acme.unknown-v1").cache_plan(&request).points(), 0);
    }

    #[test]
    fn messages_of_every_kind_survive_the_trip_through_converse_types() {
        let messages = vec![
            Message::user_text("What is 6*7?"),
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentBlock::Reasoning {
                        text: "The user wants a product; the calculator is exact.".into(),
                        signature: Some("c2lnbmF0dXJl".into()),
                    },
                    ContentBlock::RedactedReasoning {
                        data: "AAECAw==".into(),
                    },
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
