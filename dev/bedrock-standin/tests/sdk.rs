//! End-to-end tests through the official `aws-sdk-bedrockruntime` client: the
//! stand-in runs in-process on 127.0.0.1:0 and the SDK talks to it over HTTP,
//! so request serialisation, response parsing, event-stream decoding and
//! error mapping are all the SDK's own.

mod common;

use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::converse::ConverseError;
use aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamError;
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_sdk_bedrockruntime::types::{
    AnyToolChoice, AutoToolChoice, CachePointBlock, CachePointType, ContentBlock,
    ContentBlockDelta, ContentBlockStart, ConversationRole, ConverseOutput, ConverseStreamOutput,
    InferenceConfiguration, Message, ReasoningContentBlock, ReasoningContentBlockDelta,
    ReasoningTextBlock, ServiceTier, ServiceTierType, SpecificToolChoice, StopReason,
    SystemContentBlock, TokenUsage, Tool, ToolChoice as SdkToolChoice, ToolConfiguration,
    ToolInputSchema, ToolResultBlock, ToolResultContentBlock, ToolResultStatus, ToolSpecification,
};
use bedrock_standin::fault::ErrorKind;
use bedrock_standin::Options;
use common::{
    client_for, start, start_with, texts, to_document, to_json, tool_uses, tools, user_text,
    TestResult, MODEL,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[tokio::test]
async fn converse_calls_the_offered_calculator_then_reports_its_result() -> TestResult {
    let (standin, client) = start().await?;
    let question = user_text("What is 6 * 7?")?;
    let first = client
        .converse()
        .model_id(MODEL)
        .messages(question.clone())
        .tool_config(tools(&["calculator", "current_time"])?)
        .send()
        .await?;
    assert_eq!(first.stop_reason(), &StopReason::ToolUse);
    let reply = match first.output() {
        Some(ConverseOutput::Message(m)) => m.clone(),
        other => return Err(format!("unexpected output {other:?}").into()),
    };
    assert_eq!(reply.role(), &ConversationRole::Assistant);
    assert_eq!(texts(&reply), "Let me calculate that.");
    let uses = tool_uses(&reply);
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].name(), "calculator");
    assert_eq!(to_json(uses[0].input()), json!({"expression": "6 * 7"}));
    assert!(uses[0].tool_use_id().starts_with("tooluse_"));
    let usage = first.usage().ok_or("usage missing")?;
    assert!(usage.input_tokens() > 0 && usage.output_tokens() > 0);
    assert_eq!(
        usage.total_tokens(),
        usage.input_tokens() + usage.output_tokens()
    );

    let result = ToolResultBlock::builder()
        .tool_use_id(uses[0].tool_use_id())
        .content(ToolResultContentBlock::Text("42".into()))
        .status(ToolResultStatus::Success)
        .build()?;
    let answer_to_tool = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::ToolResult(result))
        .build()?;
    let second = client
        .converse()
        .model_id(MODEL)
        .messages(question)
        .messages(reply)
        .messages(answer_to_tool)
        .tool_config(tools(&["calculator", "current_time"])?)
        .send()
        .await?;
    assert_eq!(second.stop_reason(), &StopReason::EndTurn);
    let text = match second.output() {
        Some(ConverseOutput::Message(m)) => texts(m),
        other => return Err(format!("unexpected output {other:?}").into()),
    };
    assert_eq!(text, "The calculator tool says: 42");
    assert_eq!(
        (
            standin.stats().converse(),
            standin.stats().converse_stream()
        ),
        (2, 0)
    );
    Ok(())
}

#[tokio::test]
async fn converse_stream_emits_the_real_event_sequence() -> TestResult {
    let (standin, client) = start().await?;
    let mut output = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user_text(
            "What is (2+3)*4, and what time is it in Europe/Paris?",
        )?)
        .tool_config(tools(&["current_time", "calculator"])?)
        .send()
        .await?;

    let mut kinds = Vec::new();
    let mut starts: BTreeMap<i32, (String, String)> = BTreeMap::new();
    let mut inputs: HashMap<i32, String> = HashMap::new();
    let mut text = String::new();
    let (mut stop, mut usage) = (None, None);
    while let Some(event) = output.stream.recv().await? {
        match &event {
            ConverseStreamOutput::MessageStart(e) => {
                kinds.push("messageStart");
                assert_eq!(e.role(), &ConversationRole::Assistant);
            }
            ConverseStreamOutput::ContentBlockStart(e) => {
                kinds.push("contentBlockStart");
                if let Some(ContentBlockStart::ToolUse(t)) = e.start() {
                    starts.insert(
                        e.content_block_index(),
                        (t.tool_use_id().into(), t.name().into()),
                    );
                }
            }
            ConverseStreamOutput::ContentBlockDelta(e) => {
                kinds.push("contentBlockDelta");
                match e.delta() {
                    Some(ContentBlockDelta::Text(t)) => text.push_str(t),
                    Some(ContentBlockDelta::ToolUse(t)) => {
                        inputs
                            .entry(e.content_block_index())
                            .or_default()
                            .push_str(t.input());
                    }
                    other => return Err(format!("unexpected delta {other:?}").into()),
                }
            }
            ConverseStreamOutput::ContentBlockStop(_) => kinds.push("contentBlockStop"),
            ConverseStreamOutput::MessageStop(e) => {
                kinds.push("messageStop");
                stop = Some(e.stop_reason().clone());
            }
            ConverseStreamOutput::Metadata(e) => {
                kinds.push("metadata");
                usage = e.usage().cloned();
                assert!(e.metrics().is_some());
            }
            other => return Err(format!("unexpected event {other:?}").into()),
        }
    }

    assert_eq!(kinds.first(), Some(&"messageStart"));
    assert_eq!(kinds[kinds.len() - 2..], ["messageStop", "metadata"]);
    assert_eq!(
        kinds.iter().filter(|k| **k == "contentBlockStop").count(),
        3
    );
    assert_eq!(text, "Let me calculate that. Let me check the time.");
    assert_eq!(stop, Some(StopReason::ToolUse));
    let usage = usage.ok_or("metadata usage missing")?;
    assert!(usage.input_tokens() > 0 && usage.total_tokens() > usage.input_tokens());

    let names: Vec<&str> = starts.values().map(|(_, name)| name.as_str()).collect();
    assert_eq!(names, ["calculator", "current_time"]);
    let ids: Vec<&String> = starts.values().map(|(id, _)| id).collect();
    assert_ne!(ids[0], ids[1]);
    let input_of = |index: i32| -> Result<Value, Box<dyn std::error::Error>> {
        let raw = inputs.get(&index).ok_or("no input deltas")?;
        Ok(serde_json::from_str(raw)?)
    };
    assert!(
        inputs.get(&1).is_some_and(|raw| raw.len() > 12),
        "input arrives in pieces"
    );
    assert_eq!(input_of(1)?, json!({"expression": "(2+3)*4"}));
    assert_eq!(input_of(2)?, json!({"timezone": "Europe/Paris"}));
    assert_eq!(
        (
            standin.stats().converse(),
            standin.stats().converse_stream()
        ),
        (0, 1)
    );
    Ok(())
}

#[tokio::test]
async fn throttle_trigger_maps_to_the_sdk_throttling_variant() -> TestResult {
    let (standin, client) = start().await?;
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("hi [[standin:fail-throttle]]")?)
        .send()
        .await
        .err()
        .ok_or("expected an error")?
        .into_service_error();
    assert!(err.is_throttling_exception(), "got {err:?}");

    let err = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user_text("hi [[standin:fail-throttle]]")?)
        .send()
        .await
        .err()
        .ok_or("expected an error")?
        .into_service_error();
    assert!(err.is_throttling_exception(), "got {err:?}");
    assert_eq!(
        (
            standin.stats().converse(),
            standin.stats().converse_stream()
        ),
        (1, 1)
    );
    Ok(())
}

#[tokio::test]
async fn invalid_conversation_is_a_validation_exception() -> TestResult {
    let (_standin, client) = start().await?;
    let assistant_first = Message::builder()
        .role(ConversationRole::Assistant)
        .content(ContentBlock::Text("hello".into()))
        .build()?;
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(assistant_first)
        .send()
        .await
        .err()
        .ok_or("expected an error")?
        .into_service_error();
    assert!(err.is_validation_exception(), "got {err:?}");
    assert!(
        err.to_string().contains("must start with a user message"),
        "got {err}"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_body_is_a_validation_exception_and_stats_count() -> TestResult {
    let (standin, _client) = start().await?;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/model/{}/converse",
        standin.endpoint_url(),
        "any%3Amodel"
    );
    let response = http.post(&url).body("{not json").send().await?;
    assert_eq!(response.status().as_u16(), 400);
    let kind = response
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().map(str::to_owned));
    assert_eq!(kind.transpose()?.as_deref(), Some("ValidationException"));
    let body: Value = response.json().await?;
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Malformed request body")));

    let stats: Value = http
        .get(format!("{}/__stats", standin.endpoint_url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        stats,
        json!({"converse": 1, "converse_stream": 0, "models": {"any:model": 1}})
    );
    let missing = http
        .post(format!("{}/model/x/invoke", standin.endpoint_url()))
        .send()
        .await?;
    assert_eq!(missing.status().as_u16(), 404);
    Ok(())
}

#[tokio::test]
async fn max_tokens_always_tool_and_sleep_triggers() -> TestResult {
    let (_standin, client) = start().await?;
    let cut = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("[[standin:max-tokens]] tell me a long story")?)
        .send()
        .await?;
    assert_eq!(cut.stop_reason(), &StopReason::MaxTokens);

    let question = user_text("[[standin:always-tool]] hello")?;
    let first = client
        .converse()
        .model_id(MODEL)
        .messages(question.clone())
        .tool_config(tools(&["current_time"])?)
        .send()
        .await?;
    assert_eq!(first.stop_reason(), &StopReason::ToolUse);
    let reply = first
        .output()
        .and_then(|o| o.as_message().ok())
        .ok_or("no message")?
        .clone();
    let id = tool_uses(&reply)
        .first()
        .ok_or("no tool use")?
        .tool_use_id()
        .to_string();
    let result = ToolResultBlock::builder()
        .tool_use_id(id)
        .content(ToolResultContentBlock::Text("12:00".into()))
        .build()?;
    let second = client
        .converse()
        .model_id(MODEL)
        .messages(question)
        .messages(reply)
        .messages(
            Message::builder()
                .role(ConversationRole::User)
                .content(ContentBlock::ToolResult(result))
                .build()?,
        )
        .tool_config(tools(&["current_time"])?)
        .send()
        .await?;
    assert_eq!(
        second.stop_reason(),
        &StopReason::ToolUse,
        "still calling tools"
    );

    let started = Instant::now();
    let slow = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("[[standin:sleep-ms=300]] hi")?)
        .send()
        .await?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(slow.metrics().is_some_and(|m| m.latency_ms() >= 300));
    Ok(())
}

/// The SDK's name for a `Converse` error: its variant, or `Unhandled(<code>)`.
fn converse_variant(err: &ConverseError) -> String {
    match err {
        ConverseError::AccessDeniedException(_) => "AccessDeniedException".into(),
        ConverseError::InternalServerException(_) => "InternalServerException".into(),
        ConverseError::ModelErrorException(_) => "ModelErrorException".into(),
        ConverseError::ModelNotReadyException(_) => "ModelNotReadyException".into(),
        ConverseError::ModelTimeoutException(_) => "ModelTimeoutException".into(),
        ConverseError::ResourceNotFoundException(_) => "ResourceNotFoundException".into(),
        ConverseError::ServiceUnavailableException(_) => "ServiceUnavailableException".into(),
        ConverseError::ThrottlingException(_) => "ThrottlingException".into(),
        ConverseError::ValidationException(_) => "ValidationException".into(),
        other => format!("Unhandled({})", other.code().unwrap_or("-")),
    }
}

/// The SDK's name for a `ConverseStream` error: its variant, or `Unhandled(<code>)`.
fn converse_stream_variant(err: &ConverseStreamError) -> String {
    match err {
        ConverseStreamError::AccessDeniedException(_) => "AccessDeniedException".into(),
        ConverseStreamError::InternalServerException(_) => "InternalServerException".into(),
        ConverseStreamError::ModelErrorException(_) => "ModelErrorException".into(),
        ConverseStreamError::ModelNotReadyException(_) => "ModelNotReadyException".into(),
        ConverseStreamError::ModelTimeoutException(_) => "ModelTimeoutException".into(),
        ConverseStreamError::ResourceNotFoundException(_) => "ResourceNotFoundException".into(),
        ConverseStreamError::ServiceUnavailableException(_) => "ServiceUnavailableException".into(),
        ConverseStreamError::ThrottlingException(_) => "ThrottlingException".into(),
        ConverseStreamError::ValidationException(_) => "ValidationException".into(),
        ConverseStreamError::ModelStreamErrorException(_) => "ModelStreamErrorException".into(),
        other => format!("Unhandled({})", other.code().unwrap_or("-")),
    }
}

/// What the SDK should report for each error name: its own variant, except the two the
/// Converse operations do not model, which arrive unhandled with the name as `code()`
/// (`TooManyTokens` arrives as a `ThrottlingException`).
fn expected_variant(kind: ErrorKind, stream: bool) -> String {
    match kind {
        ErrorKind::ServiceQuotaExceeded => "Unhandled(ServiceQuotaExceededException)".into(),
        ErrorKind::ModelStreamError if !stream => "Unhandled(ModelStreamErrorException)".into(),
        other => other.error_type().into(),
    }
}

#[tokio::test]
async fn every_fail_trigger_reaches_the_sdk_as_that_error() -> TestResult {
    let (standin, client) = start().await?;
    for kind in ErrorKind::ALL {
        let text = format!("hi [[standin:fail={}]]", kind.name());
        let err = client
            .converse()
            .model_id(MODEL)
            .messages(user_text(&text)?)
            .send()
            .await
            .err()
            .ok_or_else(|| format!("{}: expected an error", kind.name()))?;
        let status = err.raw_response().map(|r| r.status().as_u16());
        let err = err.into_service_error();
        assert_eq!(
            (converse_variant(&err), status),
            (expected_variant(kind, false), Some(kind.status().as_u16())),
            "converse {kind:?}: {err:?}"
        );
        assert_eq!(err.code(), Some(kind.error_type()));
        assert_eq!(err.message(), Some(kind.message()));

        let err = client
            .converse_stream()
            .model_id(MODEL)
            .messages(user_text(&text)?)
            .send()
            .await
            .err()
            .ok_or_else(|| format!("{}: expected a stream error", kind.name()))?;
        let status = err.raw_response().map(|r| r.status().as_u16());
        let err = err.into_service_error();
        assert_eq!(
            (converse_stream_variant(&err), status),
            (expected_variant(kind, true), Some(kind.status().as_u16())),
            "converse-stream {kind:?}: {err:?}"
        );
        assert_eq!(err.message(), Some(kind.message()));
    }
    let calls = u64::try_from(ErrorKind::ALL.len())?;
    assert_eq!(
        (
            standin.stats().converse(),
            standin.stats().converse_stream()
        ),
        (calls, calls)
    );

    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("hi [[standin:fail=ServiceUnavailable]]")?)
        .send()
        .await
        .err()
        .ok_or("a misspelt trigger must not succeed")?
        .into_service_error();
    assert!(err.is_validation_exception(), "got {err:?}");
    assert!(
        err.message().is_some_and(|m| m.starts_with(
            "Unknown stand-in trigger [[standin:fail=ServiceUnavailable]]: the error name must be one of ThrottlingException,"
        )),
        "got {err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn fail_after_tools_lets_the_first_call_ask_for_tools_then_fails() -> TestResult {
    let (standin, client) = start().await?;
    let question =
        user_text("[[standin:fail-after-tools=ServiceUnavailableException]] What is 6 * 7?")?;
    let first = client
        .converse()
        .model_id(MODEL)
        .messages(question.clone())
        .tool_config(tools(&["calculator"])?)
        .send()
        .await?;
    assert_eq!(first.stop_reason(), &StopReason::ToolUse);
    let reply = first
        .output()
        .and_then(|o| o.as_message().ok())
        .ok_or("no message")?
        .clone();
    let uses = tool_uses(&reply);
    assert_eq!(uses.len(), 1);
    assert_eq!(to_json(uses[0].input()), json!({"expression": "6 * 7"}));
    let result = ToolResultBlock::builder()
        .tool_use_id(uses[0].tool_use_id())
        .content(ToolResultContentBlock::Text("42".into()))
        .build()?;
    let tool_answer = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::ToolResult(result))
        .build()?;

    let err = client
        .converse()
        .model_id(MODEL)
        .messages(question.clone())
        .messages(reply.clone())
        .messages(tool_answer.clone())
        .tool_config(tools(&["calculator"])?)
        .send()
        .await
        .err()
        .ok_or("the call after the tool ran must fail")?;
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    let err = err.into_service_error();
    assert!(
        matches!(err, ConverseError::ServiceUnavailableException(_)),
        "got {err:?}"
    );
    assert_eq!(
        err.message(),
        Some("Bedrock is unable to process your request.")
    );

    let err = client
        .converse_stream()
        .model_id(MODEL)
        .messages(question)
        .messages(reply)
        .messages(tool_answer)
        .tool_config(tools(&["calculator"])?)
        .send()
        .await
        .err()
        .ok_or("the streamed call after the tool ran must fail")?
        .into_service_error();
    assert!(
        matches!(err, ConverseStreamError::ServiceUnavailableException(_)),
        "got {err:?}"
    );
    assert_eq!(
        (
            standin.stats().converse(),
            standin.stats().converse_stream()
        ),
        (2, 1)
    );
    Ok(())
}

#[tokio::test]
async fn input_over_the_context_window_is_refused_like_bedrock() -> TestResult {
    let options = Options {
        context_tokens: Some(1000),
        ..Options::default()
    };
    let (standin, client) = start_with(options).await?;
    // 5000 bytes of text: over 1000 tokens (bytes / 4) with the JSON around it.
    let long = user_text(&"word ".repeat(1000))?;
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(long.clone())
        .send()
        .await
        .err()
        .ok_or("an over-long input must be refused")?;
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let err = err.into_service_error();
    assert!(err.is_validation_exception(), "got {err:?}");
    assert_eq!(
        err.message(),
        Some("Input is too long for requested model.")
    );
    let err = client
        .converse_stream()
        .model_id(MODEL)
        .messages(long)
        .send()
        .await
        .err()
        .ok_or("an over-long streamed input must be refused")?
        .into_service_error();
    assert!(err.is_validation_exception(), "got {err:?}");
    assert_eq!(
        err.message(),
        Some("Input is too long for requested model.")
    );

    // 2000 bytes of text: about 500 tokens, under the window.
    let short = client
        .converse()
        .model_id(MODEL)
        .messages(user_text(&"word ".repeat(400))?)
        .send()
        .await?;
    assert_eq!(short.stop_reason(), &StopReason::EndTurn);
    let input = short.usage().map(|u| u.input_tokens());
    assert!(
        input.is_some_and(|t| (500..=1000).contains(&t)),
        "{input:?}"
    );
    assert_eq!(
        (
            standin.stats().converse(),
            standin.stats().converse_stream()
        ),
        (2, 1)
    );
    Ok(())
}

#[tokio::test]
async fn default_context_window_is_claudes_200k_tokens() -> TestResult {
    let (_standin, client) = start().await?;
    // 900 000 bytes ≈ 225 000 tokens: over; 700 000 bytes ≈ 175 000 tokens: under.
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user_text(&"x".repeat(900_000))?)
        .send()
        .await
        .err()
        .ok_or("225k tokens must be over the default window")?
        .into_service_error();
    assert!(err.is_validation_exception(), "got {err:?}");
    assert_eq!(
        err.message(),
        Some("Input is too long for requested model.")
    );
    let fits = client
        .converse()
        .model_id(MODEL)
        .messages(user_text(&"x".repeat(700_000))?)
        .send()
        .await?;
    let input = fits.usage().map(|u| u.input_tokens());
    assert!(
        input.is_some_and(|t| (175_000..200_000).contains(&t)),
        "{input:?}"
    );
    Ok(())
}

#[tokio::test]
async fn too_many_tokens_is_a_throttling_exception_with_bedrocks_token_wording() -> TestResult {
    let (_standin, client) = start().await?;
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("hi [[standin:fail=TooManyTokens]]")?)
        .send()
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(429));
    let err = err.into_service_error();
    assert!(err.is_throttling_exception(), "got {err:?}");
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(
        err.message(),
        Some("Too many tokens, please wait before trying again.")
    );
    Ok(())
}

#[tokio::test]
async fn stats_count_calls_per_model_id() -> TestResult {
    let (standin, client) = start().await?;
    let other = "anthropic.claude-3-haiku-20240307-v1:0";
    for model in [MODEL, other, MODEL] {
        client
            .converse()
            .model_id(model)
            .messages(user_text("hi")?)
            .send()
            .await?;
    }
    let mut stream = client
        .converse_stream()
        .model_id(other)
        .messages(user_text("hi")?)
        .send()
        .await?;
    while stream.stream.recv().await?.is_some() {}
    // A rejected call counts too.
    let rejected = client
        .converse()
        .model_id(other)
        .messages(user_text("[[standin:fail=AccessDeniedException]]")?)
        .send()
        .await;
    assert!(rejected.is_err());
    let stats = standin.stats();
    assert_eq!((stats.calls(MODEL), stats.calls(other)), (2, 3));
    assert_eq!(stats.calls("never-called"), 0);
    assert_eq!((stats.converse(), stats.converse_stream()), (4, 1));

    let json: Value = reqwest::get(format!("{}/__stats", standin.endpoint_url()))
        .await?
        .json()
        .await?;
    assert_eq!(
        json,
        json!({"converse": 4, "converse_stream": 1, "models": {MODEL: 2, other: 3}})
    );
    Ok(())
}

/// A second model id, as a fallback chain would use.
const FALLBACK: &str = "anthropic.claude-3-haiku-20240307-v1:0";

#[tokio::test]
async fn fail_at_model_fails_that_model_only_so_a_fallback_answers() -> TestResult {
    let (standin, client) = start().await?;
    let text = format!(
        "[[standin:fail@{MODEL}=ThrottlingException]] [[standin:fail@eu.x=TooManyTokens]] hi"
    );
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user_text(&text)?)
        .send()
        .await
        .err()
        .ok_or("the primary model must fail")?
        .into_service_error();
    assert!(err.is_throttling_exception(), "got {err:?}");
    let err = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user_text(&text)?)
        .send()
        .await
        .err()
        .ok_or("the primary model must fail on ConverseStream too")?
        .into_service_error();
    assert!(err.is_throttling_exception(), "got {err:?}");
    let err = client
        .converse()
        .model_id("eu.x")
        .messages(user_text(&text)?)
        .send()
        .await
        .err()
        .ok_or("eu.x must fail")?
        .into_service_error();
    assert_eq!(
        err.message(),
        Some("Too many tokens, please wait before trying again.")
    );

    let fallback = client
        .converse()
        .model_id(FALLBACK)
        .messages(user_text(&text)?)
        .send()
        .await?;
    let reply = fallback
        .output()
        .and_then(|o| o.as_message().ok())
        .ok_or("no message")?;
    assert_eq!(texts(reply), "You said: hi");
    assert_eq!(
        (
            standin.stats().calls(MODEL),
            standin.stats().calls("eu.x"),
            standin.stats().calls(FALLBACK)
        ),
        (2, 1, 1)
    );

    let err = client
        .converse()
        .model_id(FALLBACK)
        .messages(user_text("[[standin:fail@m=Throttling]] hi")?)
        .send()
        .await
        .err()
        .ok_or("a misspelt name fails every model")?
        .into_service_error();
    assert!(err.is_validation_exception(), "got {err:?}");
    assert!(
        err.message().is_some_and(
            |m| m.starts_with("Unknown stand-in trigger [[standin:fail@m=Throttling]]")
        ),
        "got {err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn fail_first_counts_attempts_of_the_same_request_and_restarts_each_step() -> TestResult {
    let (standin, client) = start().await?;
    let question = user_text(&format!(
        "[[standin:fail-first=2@{MODEL}=ServiceUnavailableException]] What is 6 * 7?"
    ))?;
    let calculator = tools(&["calculator"])?;
    let ask = || {
        client
            .converse()
            .model_id(MODEL)
            .messages(question.clone())
            .tool_config(calculator.clone())
            .send()
    };
    for attempt in 1..=2 {
        let err = ask()
            .await
            .err()
            .ok_or_else(|| format!("attempt {attempt} must fail"))?
            .into_service_error();
        assert!(
            matches!(err, ConverseError::ServiceUnavailableException(_)),
            "attempt {attempt}: {err:?}"
        );
    }
    let first = ask().await?;
    assert_eq!(first.stop_reason(), &StopReason::ToolUse);
    assert_eq!(ask().await?.stop_reason(), &StopReason::ToolUse, "stays ok");
    // Another model id is not affected.
    let other = client
        .converse()
        .model_id(FALLBACK)
        .messages(question.clone())
        .tool_config(tools(&["calculator"])?)
        .send()
        .await?;
    assert_eq!(other.stop_reason(), &StopReason::ToolUse);

    // The next step (the tool result added) is a new conversation key: it fails twice again.
    let reply = first
        .output()
        .and_then(|o| o.as_message().ok())
        .ok_or("no message")?
        .clone();
    let id = tool_uses(&reply)
        .first()
        .ok_or("no tool use")?
        .tool_use_id()
        .to_string();
    let result = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::ToolResult(
            ToolResultBlock::builder()
                .tool_use_id(id)
                .content(ToolResultContentBlock::Text("42".into()))
                .build()?,
        ))
        .build()?;
    let step = || {
        client
            .converse_stream()
            .model_id(MODEL)
            .messages(question.clone())
            .messages(reply.clone())
            .messages(result.clone())
            .tool_config(calculator.clone())
            .send()
    };
    for attempt in 1..=2 {
        let err = step()
            .await
            .err()
            .ok_or_else(|| format!("step 2 attempt {attempt} must fail"))?
            .into_service_error();
        assert!(err.is_service_unavailable_exception(), "{err:?}");
    }
    let mut ok = step().await?;
    while ok.stream.recv().await?.is_some() {}
    assert_eq!(
        (
            standin.stats().calls(MODEL),
            standin.stats().calls(FALLBACK)
        ),
        (7, 1)
    );
    Ok(())
}

#[tokio::test]
async fn sdk_retries_get_past_fail_first() -> TestResult {
    let standin = bedrock_standin::Standin::start(Options::default()).await?;
    let retry = RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(5));
    let client = client_for(&standin, retry).await;
    let answer = client
        .converse()
        .model_id(MODEL)
        .messages(user_text(
            "[[standin:fail-first=2=ThrottlingException]] hi",
        )?)
        .send()
        .await?;
    assert_eq!(answer.stop_reason(), &StopReason::EndTurn);
    assert_eq!(
        standin.stats().calls(MODEL),
        3,
        "two throttled attempts, then ok"
    );

    // Three failures are one more than three attempts can get past.
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("[[standin:fail-first=3=TooManyTokens]] hi")?)
        .send()
        .await
        .err()
        .ok_or("three attempts all fail")?
        .into_service_error();
    assert!(err.is_throttling_exception(), "got {err:?}");
    assert_eq!(standin.stats().calls(MODEL), 6);
    Ok(())
}

/// The SDK's name for an in-stream error variant.
fn stream_output_variant(err: &ConverseStreamOutputError) -> String {
    match err {
        ConverseStreamOutputError::ThrottlingException(_) => "throttlingException".into(),
        ConverseStreamOutputError::ServiceUnavailableException(_) => {
            "serviceUnavailableException".into()
        }
        ConverseStreamOutputError::ModelStreamErrorException(_) => {
            "modelStreamErrorException".into()
        }
        ConverseStreamOutputError::InternalServerException(_) => "internalServerException".into(),
        ConverseStreamOutputError::ValidationException(_) => "validationException".into(),
        other => format!("Unhandled({})", other.code().unwrap_or("-")),
    }
}

#[tokio::test]
async fn fail_in_stream_sends_an_exception_event_after_the_first_delta() -> TestResult {
    let (standin, client) = start().await?;
    for kind in ErrorKind::IN_STREAM {
        let name = kind.stream_name().ok_or("no stream name")?;
        let text = format!("[[standin:fail-in-stream={name}]] tell me a story");
        let mut output = client
            .converse_stream()
            .model_id(MODEL)
            .messages(user_text(&text)?)
            .send()
            .await?;
        let mut kinds = Vec::new();
        let err = loop {
            match output.stream.recv().await {
                Ok(Some(ConverseStreamOutput::MessageStart(_))) => kinds.push("messageStart"),
                Ok(Some(ConverseStreamOutput::ContentBlockDelta(e))) => {
                    assert!(matches!(e.delta(), Some(ContentBlockDelta::Text(_))));
                    kinds.push("contentBlockDelta");
                }
                Ok(Some(other)) => return Err(format!("{name}: unexpected {other:?}").into()),
                Ok(None) => return Err(format!("{name}: the stream ended without an error").into()),
                Err(e) => break e.into_service_error(),
            }
        };
        assert_eq!(kinds, ["messageStart", "contentBlockDelta"], "{name}");
        assert_eq!(stream_output_variant(&err), name, "{err:?}");
        assert_eq!(err.message(), Some(kind.message()));

        // Converse answers the matching HTTP error.
        let err = client
            .converse()
            .model_id(MODEL)
            .messages(user_text(&text)?)
            .send()
            .await
            .err()
            .ok_or_else(|| format!("{name}: Converse must fail"))?;
        let status = err.raw_response().map(|r| r.status().as_u16());
        let err = err.into_service_error();
        assert_eq!(
            (converse_variant(&err), status),
            (expected_variant(kind, false), Some(kind.status().as_u16())),
            "{name}"
        );
    }
    let calls = u64::try_from(ErrorKind::IN_STREAM.len())?;
    assert_eq!(
        (
            standin.stats().converse(),
            standin.stats().converse_stream()
        ),
        (calls, calls)
    );
    // An HTTP failure trigger wins: the stream never starts.
    let err = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user_text(
            "[[standin:fail-in-stream=throttlingException]] [[standin:fail=AccessDeniedException]]",
        )?)
        .send()
        .await
        .err()
        .ok_or("the HTTP failure comes first")?
        .into_service_error();
    assert!(err.is_access_denied_exception(), "{err:?}");
    Ok(())
}

fn cache_point() -> Result<CachePointBlock, Box<dyn std::error::Error>> {
    Ok(CachePointBlock::builder()
        .r#type(CachePointType::Default)
        .build()?)
}

/// A system prompt of about `bytes` bytes, with a cache point after it when `cached`.
fn system(
    bytes: usize,
    cached: bool,
) -> Result<Vec<SystemContentBlock>, Box<dyn std::error::Error>> {
    let mut blocks = vec![SystemContentBlock::Text(format!(
        "You are a careful assistant. {}",
        "Follow the house rules. ".repeat(bytes / 24)
    ))];
    if cached {
        blocks.push(SystemContentBlock::CachePoint(cache_point()?));
    }
    Ok(blocks)
}

/// `message` with a cache point appended to its content.
fn with_cache_point(message: &Message) -> Result<Message, Box<dyn std::error::Error>> {
    let mut content = message.content().to_vec();
    content.push(ContentBlock::CachePoint(cache_point()?));
    Ok(Message::builder()
        .role(message.role().clone())
        .set_content(Some(content))
        .build()?)
}

/// The usage of a Converse call.
async fn converse_usage(
    client: &aws_sdk_bedrockruntime::Client,
    model: &str,
    system: Vec<SystemContentBlock>,
    messages: Vec<Message>,
) -> Result<TokenUsage, Box<dyn std::error::Error>> {
    let output = client
        .converse()
        .model_id(model)
        .set_system(Some(system))
        .set_messages(Some(messages))
        .send()
        .await?;
    Ok(output.usage().ok_or("usage missing")?.clone())
}

/// (input, cache read, cache write, output, total) of a usage.
fn parts(u: &TokenUsage) -> (i32, Option<i32>, Option<i32>, i32, i32) {
    (
        u.input_tokens(),
        u.cache_read_input_tokens(),
        u.cache_write_input_tokens(),
        u.output_tokens(),
        u.total_tokens(),
    )
}

#[tokio::test]
async fn a_request_seen_twice_writes_the_cache_then_reads_it() -> TestResult {
    let (_standin, client) = start().await?;
    let question = vec![user_text("hi")?];
    let plain = converse_usage(&client, MODEL, system(8000, false)?, question.clone()).await?;
    assert_eq!(
        (
            plain.cache_read_input_tokens(),
            plain.cache_write_input_tokens()
        ),
        (None, None),
        "no cache point: no cache fields, as Bedrock does"
    );
    let first = converse_usage(&client, MODEL, system(8000, true)?, question.clone()).await?;
    let (input, read, write, output, total) = parts(&first);
    let write = write.ok_or("cacheWriteInputTokens missing")?;
    assert_eq!(read, Some(0));
    assert!(write > 1900, "the system prompt is written: {first:?}");
    // The body is the plain one plus a cache point: all of it is billed, split differently.
    assert!(
        (input + write - plain.input_tokens()).abs() <= 16,
        "{first:?} vs {plain:?}"
    );
    assert_eq!(total, input + write + output);

    let second = converse_usage(&client, MODEL, system(8000, true)?, question.clone()).await?;
    assert_eq!(
        parts(&second),
        (input, Some(write), Some(0), output, input + write + output)
    );

    // ConverseStream accounts the same way, in its metadata event.
    let mut stream = client
        .converse_stream()
        .model_id(MODEL)
        .set_system(Some(system(8000, true)?))
        .set_messages(Some(question))
        .send()
        .await?;
    let mut usage = None;
    while let Some(event) = stream.stream.recv().await? {
        if let ConverseStreamOutput::Metadata(m) = event {
            usage = m.usage().cloned();
        }
    }
    let usage = usage.ok_or("no metadata usage")?;
    assert_eq!(
        (
            usage.cache_read_input_tokens(),
            usage.cache_write_input_tokens()
        ),
        (Some(write), Some(0))
    );
    Ok(())
}

#[tokio::test]
async fn a_growing_conversation_reads_the_last_step_and_writes_only_the_new_part() -> TestResult {
    let (_standin, client) = start().await?;
    let question = user_text(&format!("Summarise this: {}", "lorem ipsum ".repeat(600)))?;
    let step1 = vec![with_cache_point(&question)?];
    let output = client
        .converse()
        .model_id(MODEL)
        .set_system(Some(system(400, false)?))
        .set_messages(Some(step1))
        .send()
        .await?;
    let first = output.usage().ok_or("usage")?.clone();
    let written = first.cache_write_input_tokens().ok_or("no write")?;
    assert_eq!(first.cache_read_input_tokens(), Some(0));
    assert!(written > 1024, "{first:?}");
    let reply = output
        .output()
        .and_then(|o| o.as_message().ok())
        .ok_or("no message")?
        .clone();

    // Step 2: the cache point moves to the new last message.
    let follow_up = user_text("And in one word?")?;
    let step2 = vec![
        question.clone(),
        reply.clone(),
        with_cache_point(&follow_up)?,
    ];
    let second = converse_usage(&client, MODEL, system(400, false)?, step2.clone()).await?;
    let (input, read, write, _, total) = parts(&second);
    assert_eq!(read, Some(written), "step 1's prefix is read: {second:?}");
    let write = write.ok_or("no write")?;
    assert!(write > 0, "the new messages are written: {second:?}");
    // The reply echoes the question, so the new part is about as large as step 1's.
    assert!(
        write < written + 100,
        "only the new part is written: {second:?}"
    );
    assert!(input < 150, "little is billed at the full rate: {second:?}");
    assert_eq!(total, second.output_tokens() + input + written + write);

    // The same step again reads all of it.
    let again = converse_usage(&client, MODEL, system(400, false)?, step2).await?;
    assert_eq!(
        (
            again.cache_read_input_tokens(),
            again.cache_write_input_tokens()
        ),
        (Some(written + write), Some(0))
    );
    Ok(())
}

#[tokio::test]
async fn cache_points_below_the_minimum_are_ignored() -> TestResult {
    let (_standin, client) = start().await?;
    let question = vec![user_text("hi")?];
    for _ in 0..2 {
        let usage = converse_usage(&client, MODEL, system(2000, true)?, question.clone()).await?;
        assert_eq!(
            (
                usage.cache_read_input_tokens(),
                usage.cache_write_input_tokens()
            ),
            (Some(0), Some(0)),
            "about 500 tokens is below the 1024 minimum: {usage:?}"
        );
    }
    // A lower minimum (Options::cache_min_tokens) makes the same point count.
    let options = Options {
        cache_min_tokens: 100,
        ..Options::default()
    };
    let (_standin, client) = start_with(options).await?;
    let first = converse_usage(&client, MODEL, system(2000, true)?, question.clone()).await?;
    let write = first.cache_write_input_tokens().ok_or("no write")?;
    assert!(write > 400, "{first:?}");
    let second = converse_usage(&client, MODEL, system(2000, true)?, question).await?;
    assert_eq!(second.cache_read_input_tokens(), Some(write));
    Ok(())
}

#[tokio::test]
async fn model_ids_do_not_share_a_cache_and_entries_expire() -> TestResult {
    let options = Options {
        cache_ttl: Duration::from_millis(300),
        ..Options::default()
    };
    let (_standin, client) = start_with(options).await?;
    let question = vec![user_text("hi")?];
    let first = converse_usage(&client, MODEL, system(8000, true)?, question.clone()).await?;
    let write = first.cache_write_input_tokens().ok_or("no write")?;
    let other = converse_usage(&client, FALLBACK, system(8000, true)?, question.clone()).await?;
    assert_eq!(
        (
            other.cache_read_input_tokens(),
            other.cache_write_input_tokens()
        ),
        (Some(0), Some(write)),
        "another model id writes its own"
    );
    let read = converse_usage(&client, MODEL, system(8000, true)?, question.clone()).await?;
    assert_eq!(read.cache_read_input_tokens(), Some(write));
    tokio::time::sleep(Duration::from_millis(450)).await;
    let expired = converse_usage(&client, MODEL, system(8000, true)?, question).await?;
    assert_eq!(
        (
            expired.cache_read_input_tokens(),
            expired.cache_write_input_tokens()
        ),
        (Some(0), Some(write)),
        "past the TTL the prefix is written again"
    );
    Ok(())
}

#[tokio::test]
async fn too_many_or_unknown_cache_points_are_validation_exceptions() -> TestResult {
    let (_standin, client) = start().await?;
    let mut system = system(100, false)?;
    for _ in 0..5 {
        system.push(SystemContentBlock::CachePoint(cache_point()?));
    }
    let err = client
        .converse()
        .model_id(MODEL)
        .set_system(Some(system))
        .messages(user_text("hi")?)
        .send()
        .await
        .err()
        .ok_or("five cache points must be refused")?
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert_eq!(
        err.message(),
        Some(
            "The model returned the following errors: A maximum of 4 blocks with cache_control \
             may be provided. Found 5."
        )
    );
    let odd = CachePointBlock::builder()
        .r#type(CachePointType::from("ephemeral"))
        .build()?;
    let message = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text("hi".into()))
        .content(ContentBlock::CachePoint(odd))
        .build()?;
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(message)
        .send()
        .await
        .err()
        .ok_or("an unknown cache point type must be refused")?
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert!(
        err.message().is_some_and(|m| m
            .contains("Value 'ephemeral' at 'messages.1.member.content.2.member.cachePoint.type'")),
        "{err:?}"
    );
    Ok(())
}

/// Two tools with long descriptions (about 4 KB together), a cache point after them when
/// `cached`.
fn large_tools(cached: bool) -> Result<ToolConfiguration, Box<dyn std::error::Error>> {
    let schema = json!({"type": "object", "properties": {"expression": {"type": "string"}}});
    let mut builder = ToolConfiguration::builder();
    for name in ["calculator", "web_search"] {
        let spec = ToolSpecification::builder()
            .name(name)
            .description(format!(
                "The {name} tool. {}",
                "Use it with care. ".repeat(110)
            ))
            .input_schema(ToolInputSchema::Json(to_document(&schema)))
            .build()?;
        builder = builder.tools(Tool::ToolSpec(spec));
    }
    if cached {
        builder = builder.tools(Tool::CachePoint(cache_point()?));
    }
    Ok(builder.build()?)
}

#[tokio::test]
async fn caching_a_five_step_tool_loop_cuts_the_billed_input_by_most_of_it() -> TestResult {
    let (_standin, client) = start().await?;
    let question = user_text("[[standin:always-tool]] What is 6 * 7?")?;
    let mut messages = vec![question];
    let mut steps: Vec<(Vec<Message>, TokenUsage)> = Vec::new();
    for step in 1..=5 {
        let mut sent = messages.clone();
        let last = sent.len() - 1;
        sent[last] = with_cache_point(&sent[last])?;
        let output = client
            .converse()
            .model_id(MODEL)
            .set_system(Some(system(4000, true)?))
            .tool_config(large_tools(true)?)
            .set_messages(Some(sent))
            .send()
            .await?;
        assert_eq!(output.stop_reason(), &StopReason::ToolUse, "step {step}");
        let usage = output.usage().ok_or("usage")?.clone();
        steps.push((messages.clone(), usage));
        let reply = output
            .output()
            .and_then(|o| o.as_message().ok())
            .ok_or("no message")?
            .clone();
        let id = tool_uses(&reply)
            .first()
            .ok_or("no tool use")?
            .tool_use_id()
            .to_string();
        let result = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::ToolResult(
                ToolResultBlock::builder()
                    .tool_use_id(id)
                    .content(ToolResultContentBlock::Text(format!("result {step}: 42")))
                    .build()?,
            ))
            .build()?;
        messages.push(reply);
        messages.push(result);
    }

    // The same five requests without cache points.
    let (_fresh, plain_client) = start().await?;
    let mut plain_inputs = Vec::new();
    for (sent, _) in &steps {
        let output = plain_client
            .converse()
            .model_id(MODEL)
            .set_system(Some(system(4000, false)?))
            .tool_config(large_tools(false)?)
            .set_messages(Some(sent.clone()))
            .send()
            .await?;
        plain_inputs.push(output.usage().ok_or("usage")?.input_tokens());
    }

    let cached_inputs: Vec<i32> = steps.iter().map(|(_, u)| u.input_tokens()).collect();
    let reads: Vec<i32> = steps
        .iter()
        .map(|(_, u)| u.cache_read_input_tokens().unwrap_or(0))
        .collect();
    let writes: Vec<i32> = steps
        .iter()
        .map(|(_, u)| u.cache_write_input_tokens().unwrap_or(0))
        .collect();
    let cached: i32 = cached_inputs.iter().sum();
    let plain: i32 = plain_inputs.iter().sum();
    println!("five-step tool loop, inputTokens per step");
    println!("  without cache points: {plain_inputs:?} (sum {plain})");
    println!("  with cache points:    {cached_inputs:?} (sum {cached})");
    println!("  cache reads:          {reads:?}");
    println!("  cache writes:         {writes:?}");
    println!(
        "  billed input at the full rate is {:.1}% lower",
        100.0 * f64::from(plain - cached) / f64::from(plain)
    );
    assert!(
        f64::from(cached) <= 0.4 * f64::from(plain),
        "at least 60% lower: {cached} vs {plain}"
    );
    assert_eq!(reads[0], 0, "nothing cached before step 1");
    assert!(
        writes[0] > 2000,
        "step 1 writes tools and system: {writes:?}"
    );
    for step in 1..5 {
        assert_eq!(
            reads[step],
            reads[step - 1] + writes[step - 1],
            "step {} reads everything step {step} cached",
            step + 1
        );
        assert!(writes[step] > 0 && writes[step] < 200, "{writes:?}");
    }
    Ok(())
}

/// `tools(names)` with a tool choice.
fn tools_choosing(
    names: &[&str],
    choice: SdkToolChoice,
) -> Result<ToolConfiguration, Box<dyn std::error::Error>> {
    let config = tools(names)?;
    Ok(ToolConfiguration::builder()
        .set_tools(Some(config.tools().to_vec()))
        .tool_choice(choice)
        .build()?)
}

#[tokio::test]
async fn tool_choice_any_and_tool_force_calls_and_unknown_tools_are_refused() -> TestResult {
    let (_standin, client) = start().await?;
    let offered = ["web_search", "calculator"];
    let call = |choice: SdkToolChoice, text: &'static str| {
        let client = client.clone();
        async move {
            let output = client
                .converse()
                .model_id(MODEL)
                .messages(user_text(text)?)
                .tool_config(tools_choosing(&offered, choice)?)
                .send()
                .await?;
            let message = output
                .output()
                .and_then(|o| o.as_message().ok())
                .ok_or("no message")?
                .clone();
            let calls: Vec<(String, Value)> = tool_uses(&message)
                .iter()
                .map(|u| (u.name().to_string(), to_json(u.input())))
                .collect();
            Ok::<_, Box<dyn std::error::Error>>((
                output.stop_reason().clone(),
                texts(&message),
                calls,
            ))
        }
    };
    let any = SdkToolChoice::Any(AnyToolChoice::builder().build());
    let (stop, text, calls) = call(any.clone(), "hello").await?;
    assert_eq!(stop, StopReason::ToolUse);
    assert_eq!(text, "", "a forced choice has no text before the call");
    assert_eq!(calls, [("web_search".into(), json!({"query": "hello"}))]);
    let (_, _, calls) = call(any, "what is 6*7").await?;
    assert_eq!(calls, [("calculator".into(), json!({"expression": "6*7"}))]);

    let calculator = SdkToolChoice::Tool(SpecificToolChoice::builder().name("calculator").build()?);
    let (stop, _, calls) = call(calculator, "search for rust").await?;
    assert_eq!(stop, StopReason::ToolUse);
    assert_eq!(calls, [("calculator".into(), json!({"expression": "1+1"}))]);

    let auto = SdkToolChoice::Auto(AutoToolChoice::builder().build());
    let (stop, text, calls) = call(auto, "hello").await?;
    assert_eq!(
        (stop, text.as_str(), calls.len()),
        (StopReason::EndTurn, "You said: hello", 0)
    );

    let unknown = SdkToolChoice::Tool(SpecificToolChoice::builder().name("current_time").build()?);
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("hello")?)
        .tool_config(tools_choosing(&offered, unknown)?)
        .send()
        .await
        .err()
        .ok_or("a tool choice naming no offered tool must be refused")?
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert_eq!(
        err.message(),
        Some(
            "The tool current_time in toolConfig.toolChoice is not one of the tools in \
             toolConfig.tools: web_search, calculator."
        )
    );
    Ok(())
}

#[tokio::test]
async fn stop_sequences_cut_the_answer_and_say_stop_sequence() -> TestResult {
    let (_standin, client) = start().await?;
    let config = InferenceConfiguration::builder()
        .stop_sequences("STOP")
        .stop_sequences("\n\n")
        .build();
    let output = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("first part STOP second part")?)
        .inference_config(config.clone())
        .send()
        .await?;
    assert_eq!(output.stop_reason(), &StopReason::StopSequence);
    let message = output
        .output()
        .and_then(|o| o.as_message().ok())
        .ok_or("no message")?;
    assert_eq!(texts(message), "You said: first part ");
    assert!(output.additional_model_response_fields().is_none());

    let mut stream = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user_text("first part STOP second part")?)
        .inference_config(config)
        .send()
        .await?;
    let (mut text, mut stop) = (String::new(), None);
    while let Some(event) = stream.stream.recv().await? {
        match event {
            ConverseStreamOutput::ContentBlockDelta(e) => {
                if let Some(ContentBlockDelta::Text(t)) = e.delta() {
                    text.push_str(t);
                }
            }
            ConverseStreamOutput::MessageStop(e) => stop = Some(e.stop_reason().clone()),
            _ => {}
        }
    }
    assert_eq!(
        (text.as_str(), stop),
        ("You said: first part ", Some(StopReason::StopSequence))
    );

    let five = InferenceConfiguration::builder()
        .set_stop_sequences(Some(vec![
            "a".into(),
            "b".into(),
            "c".into(),
            "d".into(),
            "e".into(),
        ]))
        .build();
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("hi")?)
        .inference_config(five)
        .send()
        .await
        .err()
        .ok_or("five stop sequences must be refused")?
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert!(
        err.message().is_some_and(|m| m.contains("stopSequences")),
        "{err:?}"
    );
    let blank = InferenceConfiguration::builder().stop_sequences("").build();
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("hi")?)
        .inference_config(blank)
        .send()
        .await
        .err()
        .ok_or("an empty stop sequence must be refused")?
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    Ok(())
}

/// `additionalModelRequestFields` enabling thinking with `budget` tokens.
fn thinking(budget: u64) -> aws_smithy_types::Document {
    to_document(&json!({"thinking": {"type": "enabled", "budget_tokens": budget}}))
}

/// The reasoning block of a message, if it starts with one: (text, signature).
fn leading_reasoning(message: &Message) -> Option<(String, Option<String>)> {
    match message.content().first()? {
        ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(r)) => {
            Some((r.text().to_string(), r.signature().map(str::to_string)))
        }
        _ => None,
    }
}

/// A user message answering `reply`'s first tool use with `output`.
fn tool_result_for(reply: &Message, output: &str) -> Result<Message, Box<dyn std::error::Error>> {
    let id = tool_uses(reply)
        .first()
        .ok_or("no tool use")?
        .tool_use_id()
        .to_string();
    Ok(Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::ToolResult(
            ToolResultBlock::builder()
                .tool_use_id(id)
                .content(ToolResultContentBlock::Text(output.into()))
                .build()?,
        ))
        .build()?)
}

/// `message` with its content replaced.
fn with_content(
    message: &Message,
    content: Vec<ContentBlock>,
) -> Result<Message, Box<dyn std::error::Error>> {
    Ok(Message::builder()
        .role(message.role().clone())
        .set_content(Some(content))
        .build()?)
}

#[tokio::test]
async fn a_thinking_tool_loop_that_sends_the_reasoning_back_unchanged_works() -> TestResult {
    let (_standin, client) = start().await?;
    let question = user_text("What is 6 * 7?")?;
    let limits = InferenceConfiguration::builder().max_tokens(4096).build();
    let first = client
        .converse()
        .model_id(MODEL)
        .messages(question.clone())
        .tool_config(tools(&["calculator"])?)
        .inference_config(limits.clone())
        .additional_model_request_fields(thinking(2048))
        .send()
        .await?;
    assert_eq!(first.stop_reason(), &StopReason::ToolUse);
    let reply = first
        .output()
        .and_then(|o| o.as_message().ok())
        .ok_or("no message")?
        .clone();
    let (text, signature) = leading_reasoning(&reply).ok_or("no leading reasoning block")?;
    assert_eq!(
        text,
        "The user asked: \"What is 6 * 7?\". I will call calculator and use the results."
    );
    assert!(
        signature.as_ref().is_some_and(|s| s.len() > 20),
        "{signature:?}"
    );
    assert_eq!(texts(&reply), "Let me calculate that.");

    let second = client
        .converse()
        .model_id(MODEL)
        .messages(question.clone())
        .messages(reply.clone())
        .messages(tool_result_for(&reply, "42")?)
        .tool_config(tools(&["calculator"])?)
        .inference_config(limits.clone())
        .additional_model_request_fields(thinking(2048))
        .send()
        .await?;
    assert_eq!(second.stop_reason(), &StopReason::EndTurn);
    let last = second
        .output()
        .and_then(|o| o.as_message().ok())
        .ok_or("no message")?;
    assert!(leading_reasoning(last).is_some_and(|(t, _)| t.ends_with("so I will report them.")));
    assert_eq!(texts(last), "The calculator tool says: 42");

    // The same over ConverseStream: reasoning text pieces, then one signature delta.
    let mut stream = client
        .converse_stream()
        .model_id(MODEL)
        .messages(question.clone())
        .tool_config(tools(&["calculator"])?)
        .inference_config(limits.clone())
        .additional_model_request_fields(thinking(2048))
        .send()
        .await?;
    let (mut streamed, mut signatures, mut pieces) = (String::new(), Vec::new(), 0);
    let mut order = Vec::new();
    while let Some(event) = stream.stream.recv().await? {
        match event {
            ConverseStreamOutput::ContentBlockDelta(e) => match e.delta() {
                Some(ContentBlockDelta::ReasoningContent(ReasoningContentBlockDelta::Text(t))) => {
                    assert_eq!(e.content_block_index(), 0);
                    streamed.push_str(t);
                    pieces += 1;
                    order.push("reasoning");
                }
                Some(ContentBlockDelta::ReasoningContent(
                    ReasoningContentBlockDelta::Signature(s),
                )) => {
                    signatures.push(s.clone());
                    order.push("signature");
                }
                _ => order.push("other delta"),
            },
            ConverseStreamOutput::ContentBlockStop(e) if e.content_block_index() == 0 => {
                order.push("stop 0");
            }
            _ => {}
        }
    }
    assert!(pieces > 1, "the reasoning arrives in pieces");
    assert_eq!(streamed, text);
    assert_eq!(signatures, [signature.clone().unwrap_or_default()]);
    let stop_at = order.iter().position(|o| *o == "stop 0");
    assert_eq!(stop_at, Some(pieces + 1), "{order:?}");

    // The block rebuilt from the stream works as well.
    let rebuilt = ReasoningTextBlock::builder()
        .text(streamed)
        .signature(signatures.concat())
        .build()?;
    let mut content = vec![ContentBlock::ReasoningContent(
        ReasoningContentBlock::ReasoningText(rebuilt),
    )];
    content.extend(reply.content()[1..].iter().cloned());
    let from_stream = with_content(&reply, content)?;
    let third = client
        .converse()
        .model_id(MODEL)
        .messages(question)
        .messages(from_stream.clone())
        .messages(tool_result_for(&from_stream, "42")?)
        .tool_config(tools(&["calculator"])?)
        .inference_config(limits)
        .additional_model_request_fields(thinking(2048))
        .send()
        .await?;
    assert_eq!(third.stop_reason(), &StopReason::EndTurn);
    Ok(())
}

#[tokio::test]
async fn a_thinking_tool_loop_that_drops_or_alters_the_reasoning_is_refused() -> TestResult {
    let (_standin, client) = start().await?;
    let question = user_text("What is 6 * 7?")?;
    let first = client
        .converse()
        .model_id(MODEL)
        .messages(question.clone())
        .tool_config(tools(&["calculator"])?)
        .additional_model_request_fields(thinking(1024))
        .send()
        .await?;
    let reply = first
        .output()
        .and_then(|o| o.as_message().ok())
        .ok_or("no message")?
        .clone();
    let (text, signature) = leading_reasoning(&reply).ok_or("no reasoning")?;
    let step = |assistant: Message| {
        let client = client.clone();
        let question = question.clone();
        async move {
            let result = tool_result_for(&assistant, "42")?;
            let sent = client
                .converse()
                .model_id(MODEL)
                .messages(question)
                .messages(assistant)
                .messages(result)
                .tool_config(tools(&["calculator"])?)
                .additional_model_request_fields(thinking(1024))
                .send()
                .await;
            let err = sent.err().ok_or("must be refused")?.into_service_error();
            assert!(err.is_validation_exception(), "{err:?}");
            Ok::<String, Box<dyn std::error::Error>>(err.message().unwrap_or_default().to_string())
        }
    };

    let dropped = with_content(&reply, reply.content()[1..].to_vec())?;
    let message = step(dropped).await?;
    assert!(
        message.starts_with(
            "The model returned the following errors: messages.1.content.0.type: Expected \
             `thinking` or `redacted_thinking`, but found `text`. When `thinking` is enabled, a \
             final `assistant` message must start with a thinking block"
        ),
        "{message}"
    );
    let calls_only: Vec<ContentBlock> = reply
        .content()
        .iter()
        .filter(|b| b.is_tool_use())
        .cloned()
        .collect();
    let message = step(with_content(&reply, calls_only)?).await?;
    assert!(message.contains("but found `tool_use`"), "{message}");

    let altered = ReasoningTextBlock::builder()
        .text(format!("{text} Actually, no."))
        .set_signature(signature)
        .build()?;
    let mut content = vec![ContentBlock::ReasoningContent(
        ReasoningContentBlock::ReasoningText(altered),
    )];
    content.extend(reply.content()[1..].iter().cloned());
    let message = step(with_content(&reply, content)?).await?;
    assert_eq!(
        message,
        "The model returned the following errors: messages.1.content.0: Invalid `signature` in \
         `thinking` block"
    );

    let unsigned = ReasoningTextBlock::builder().text(text).build()?;
    let mut content = vec![ContentBlock::ReasoningContent(
        ReasoningContentBlock::ReasoningText(unsigned),
    )];
    content.extend(reply.content()[1..].iter().cloned());
    let message = step(with_content(&reply, content)?).await?;
    assert!(
        message.ends_with("messages.1.content.0.thinking.signature: Field required"),
        "{message}"
    );

    // Redacted reasoning is accepted without checks.
    let mut content = vec![ContentBlock::ReasoningContent(
        ReasoningContentBlock::RedactedContent(aws_smithy_types::Blob::new(b"opaque".to_vec())),
    )];
    content.extend(reply.content()[1..].iter().cloned());
    let redacted = with_content(&reply, content)?;
    let ok = client
        .converse()
        .model_id(MODEL)
        .messages(question)
        .messages(redacted.clone())
        .messages(tool_result_for(&redacted, "42")?)
        .tool_config(tools(&["calculator"])?)
        .additional_model_request_fields(thinking(1024))
        .send()
        .await?;
    assert_eq!(ok.stop_reason(), &StopReason::EndTurn);
    Ok(())
}

#[tokio::test]
async fn thinking_settings_are_checked_as_claude_checks_them() -> TestResult {
    let (_standin, client) = start().await?;
    let refused = |budget: u64, max_tokens: Option<i32>, temperature: Option<f32>| {
        let client = client.clone();
        async move {
            let config = InferenceConfiguration::builder()
                .set_max_tokens(max_tokens)
                .set_temperature(temperature)
                .build();
            let err = client
                .converse()
                .model_id(MODEL)
                .messages(user_text("hi")?)
                .inference_config(config)
                .additional_model_request_fields(thinking(budget))
                .send()
                .await
                .err()
                .ok_or("must be refused")?
                .into_service_error();
            assert!(err.is_validation_exception(), "{err:?}");
            Ok::<String, Box<dyn std::error::Error>>(err.message().unwrap_or_default().to_string())
        }
    };
    assert_eq!(
        refused(1000, None, None).await?,
        "The model returned the following errors: thinking.enabled.budget_tokens: Input should \
         be greater than or equal to 1024"
    );
    assert!(refused(2048, Some(2048), None)
        .await?
        .contains("`max_tokens` must be greater than `thinking.budget_tokens`"));
    assert!(refused(2048, Some(4096), Some(0.5))
        .await?
        .contains("`temperature` may only be set to 1 when thinking is enabled"));

    // Output tokens count the reasoning.
    let with = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("hi")?)
        .additional_model_request_fields(thinking(1024))
        .send()
        .await?;
    let without = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("hi")?)
        .send()
        .await?;
    let tokens = |o: &aws_sdk_bedrockruntime::operation::converse::ConverseOutput| {
        o.usage().map(|u| u.output_tokens()).unwrap_or_default()
    };
    assert!(tokens(&with) > tokens(&without) + 5, "{with:?}");
    Ok(())
}

#[tokio::test]
async fn service_tier_is_validated_and_echoed() -> TestResult {
    let (_standin, client) = start().await?;
    for tier in [
        ServiceTierType::Default,
        ServiceTierType::Priority,
        ServiceTierType::Flex,
        ServiceTierType::Reserved,
    ] {
        let output = client
            .converse()
            .model_id(MODEL)
            .messages(user_text("hi")?)
            .service_tier(ServiceTier::builder().r#type(tier.clone()).build()?)
            .send()
            .await?;
        assert_eq!(output.service_tier().map(|t| t.r#type()), Some(&tier));
        let mut stream = client
            .converse_stream()
            .model_id(MODEL)
            .messages(user_text("hi")?)
            .service_tier(ServiceTier::builder().r#type(tier.clone()).build()?)
            .send()
            .await?;
        let mut echoed = None;
        while let Some(event) = stream.stream.recv().await? {
            if let ConverseStreamOutput::Metadata(m) = event {
                echoed = m.service_tier().map(|t| t.r#type().clone());
            }
        }
        assert_eq!(echoed, Some(tier));
    }
    let plain = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("hi")?)
        .send()
        .await?;
    assert!(plain.service_tier().is_none());

    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user_text("hi")?)
        .service_tier(
            ServiceTier::builder()
                .r#type(ServiceTierType::from("economy"))
                .build()?,
        )
        .send()
        .await
        .err()
        .ok_or("an unknown tier must be refused")?
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert!(
        err.message()
            .is_some_and(|m| m.contains("Value 'economy' at 'serviceTier.type'")),
        "{err:?}"
    );
    Ok(())
}
