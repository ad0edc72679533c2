//! End-to-end tests through the official `aws-sdk-bedrockruntime` client (see
//! `common`), the failures: the fail triggers as the SDK reports them, the
//! context window, per-model and first-attempt failures, SDK retries and
//! in-stream exceptions.

mod common;

use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::converse::builders::ConverseFluentBuilder;
use aws_sdk_bedrockruntime::operation::converse::ConverseError;
use aws_sdk_bedrockruntime::operation::converse_stream::builders::ConverseStreamFluentBuilder;
use aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamError;
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_sdk_bedrockruntime::types::{ContentBlockDelta, ConverseStreamOutput, StopReason};
use bedrock_standin::fault::ErrorKind;
use bedrock_standin::Options;
use common::{
    ask, ask_stream, client_for, converse, converse_refused, converse_stream,
    converse_stream_refused, converse_stream_with_tools, converse_with_tools, operation_counts,
    reply_of, start, start_with, texts, to_json, tool_result, tool_result_for, tool_uses, tools,
    user_text, BoxError, TestResult, FALLBACK, MODEL,
};
use serde_json::json;
use std::time::Duration;

/// Sends a Converse call that must fail: its service error and HTTP status; `why` is the
/// test's error when it succeeds.
async fn converse_failure(
    call: ConverseFluentBuilder,
    why: &str,
) -> Result<(ConverseError, Option<u16>), BoxError> {
    let err = call.send().await.err().ok_or(why)?;
    let status = err.raw_response().map(|r| r.status().as_u16());
    Ok((err.into_service_error(), status))
}

/// [`converse_failure`] for a ConverseStream call.
async fn converse_stream_failure(
    call: ConverseStreamFluentBuilder,
    why: &str,
) -> Result<(ConverseStreamError, Option<u16>), BoxError> {
    let err = call.send().await.err().ok_or(why)?;
    let status = err.raw_response().map(|r| r.status().as_u16());
    Ok((err.into_service_error(), status))
}

#[tokio::test]
async fn throttle_trigger_maps_to_the_sdk_throttling_variant() -> TestResult {
    let (standin, client) = start().await?;
    let text = "hi [[standin:fail-throttle]]";
    let err = converse_refused(ask(&client, text)?, "expected an error").await?;
    assert!(err.is_throttling_exception(), "got {err:?}");

    let err = converse_stream_refused(ask_stream(&client, text)?, "expected an error").await?;
    assert!(err.is_throttling_exception(), "got {err:?}");
    assert_eq!(operation_counts(&standin), (1, 1));
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
        let why = format!("{}: expected an error", kind.name());
        let (err, status) = converse_failure(ask(&client, &text)?, &why).await?;
        assert_eq!(
            (converse_variant(&err), status),
            (expected_variant(kind, false), Some(kind.status().as_u16())),
            "converse {kind:?}: {err:?}"
        );
        assert_eq!(err.code(), Some(kind.error_type()));
        assert_eq!(err.message(), Some(kind.message()));

        let why = format!("{}: expected a stream error", kind.name());
        let (err, status) = converse_stream_failure(ask_stream(&client, &text)?, &why).await?;
        assert_eq!(
            (converse_stream_variant(&err), status),
            (expected_variant(kind, true), Some(kind.status().as_u16())),
            "converse-stream {kind:?}: {err:?}"
        );
        assert_eq!(err.message(), Some(kind.message()));
    }
    let calls = u64::try_from(ErrorKind::ALL.len())?;
    assert_eq!(operation_counts(&standin), (calls, calls));

    let err = converse_refused(
        ask(&client, "hi [[standin:fail=ServiceUnavailable]]")?,
        "a misspelt trigger must not succeed",
    )
    .await?;
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
    let first = converse_with_tools(&client, vec![question.clone()], &["calculator"])?
        .send()
        .await?;
    assert_eq!(first.stop_reason(), &StopReason::ToolUse);
    let reply = reply_of(&first)?.clone();
    let uses = tool_uses(&reply);
    assert_eq!(uses.len(), 1);
    assert_eq!(to_json(uses[0].input()), json!({"expression": "6 * 7"}));
    let tool_answer = tool_result(uses[0].tool_use_id(), "42", None)?;

    let conversation = vec![question, reply, tool_answer];
    let (err, status) = converse_failure(
        converse_with_tools(&client, conversation.clone(), &["calculator"])?,
        "the call after the tool ran must fail",
    )
    .await?;
    assert_eq!(status, Some(503));
    assert!(
        matches!(err, ConverseError::ServiceUnavailableException(_)),
        "got {err:?}"
    );
    assert_eq!(
        err.message(),
        Some("Bedrock is unable to process your request.")
    );

    let err = converse_stream_refused(
        converse_stream_with_tools(&client, conversation, &["calculator"])?,
        "the streamed call after the tool ran must fail",
    )
    .await?;
    assert!(
        matches!(err, ConverseStreamError::ServiceUnavailableException(_)),
        "got {err:?}"
    );
    assert_eq!(operation_counts(&standin), (2, 1));
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
    let (err, status) = converse_failure(
        converse(&client, vec![long.clone()]),
        "an over-long input must be refused",
    )
    .await?;
    assert_eq!(status, Some(400));
    assert!(err.is_validation_exception(), "got {err:?}");
    assert_eq!(
        err.message(),
        Some("Input is too long for requested model.")
    );
    let err = converse_stream_refused(
        converse_stream(&client, vec![long]),
        "an over-long streamed input must be refused",
    )
    .await?;
    assert!(err.is_validation_exception(), "got {err:?}");
    assert_eq!(
        err.message(),
        Some("Input is too long for requested model.")
    );

    // 2000 bytes of text: about 500 tokens, under the window.
    let short = ask(&client, &"word ".repeat(400))?.send().await?;
    assert_eq!(short.stop_reason(), &StopReason::EndTurn);
    let input = short.usage().map(|u| u.input_tokens());
    assert!(
        input.is_some_and(|t| (500..=1000).contains(&t)),
        "{input:?}"
    );
    assert_eq!(operation_counts(&standin), (2, 1));
    Ok(())
}

#[tokio::test]
async fn default_context_window_is_claudes_200k_tokens() -> TestResult {
    let (_standin, client) = start().await?;
    // 900 000 bytes ≈ 225 000 tokens: over; 700 000 bytes ≈ 175 000 tokens: under.
    let err = converse_refused(
        ask(&client, &"x".repeat(900_000))?,
        "225k tokens must be over the default window",
    )
    .await?;
    assert!(err.is_validation_exception(), "got {err:?}");
    assert_eq!(
        err.message(),
        Some("Input is too long for requested model.")
    );
    let fits = ask(&client, &"x".repeat(700_000))?.send().await?;
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
    let (err, status) = converse_failure(
        ask(&client, "hi [[standin:fail=TooManyTokens]]")?,
        "expected an error",
    )
    .await?;
    assert_eq!(status, Some(429));
    assert!(err.is_throttling_exception(), "got {err:?}");
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(
        err.message(),
        Some("Too many tokens, please wait before trying again.")
    );
    Ok(())
}

#[tokio::test]
async fn fail_at_model_fails_that_model_only_so_a_fallback_answers() -> TestResult {
    let (standin, client) = start().await?;
    let text = format!(
        "[[standin:fail@{MODEL}=ThrottlingException]] [[standin:fail@eu.x=TooManyTokens]] hi"
    );
    let err = converse_refused(ask(&client, &text)?, "the primary model must fail").await?;
    assert!(err.is_throttling_exception(), "got {err:?}");
    let err = converse_stream_refused(
        ask_stream(&client, &text)?,
        "the primary model must fail on ConverseStream too",
    )
    .await?;
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
    assert_eq!(texts(reply_of(&fallback)?), "You said: hi");
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
        converse(&client, vec![question.clone()])
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
    let other = converse_with_tools(&client, vec![question.clone()], &["calculator"])?
        .model_id(FALLBACK)
        .send()
        .await?;
    assert_eq!(other.stop_reason(), &StopReason::ToolUse);

    // The next step (the tool result added) is a new conversation key: it fails twice again.
    let reply = reply_of(&first)?.clone();
    let result = tool_result_for(&reply, "42")?;
    let step = || {
        converse_stream(
            &client,
            vec![question.clone(), reply.clone(), result.clone()],
        )
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
    let answer = ask(&client, "[[standin:fail-first=2=ThrottlingException]] hi")?
        .send()
        .await?;
    assert_eq!(answer.stop_reason(), &StopReason::EndTurn);
    assert_eq!(
        standin.stats().calls(MODEL),
        3,
        "two throttled attempts, then ok"
    );

    // Three failures are one more than three attempts can get past.
    let err = converse_refused(
        ask(&client, "[[standin:fail-first=3=TooManyTokens]] hi")?,
        "three attempts all fail",
    )
    .await?;
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
        let mut output = ask_stream(&client, &text)?.send().await?;
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
        let why = format!("{name}: Converse must fail");
        let (err, status) = converse_failure(ask(&client, &text)?, &why).await?;
        assert_eq!(
            (converse_variant(&err), status),
            (expected_variant(kind, false), Some(kind.status().as_u16())),
            "{name}"
        );
    }
    let calls = u64::try_from(ErrorKind::IN_STREAM.len())?;
    assert_eq!(operation_counts(&standin), (calls, calls));
    // An HTTP failure trigger wins: the stream never starts.
    let err = converse_stream_refused(
        ask_stream(
            &client,
            "[[standin:fail-in-stream=throttlingException]] [[standin:fail=AccessDeniedException]]",
        )?,
        "the HTTP failure comes first",
    )
    .await?;
    assert!(err.is_access_denied_exception(), "{err:?}");
    Ok(())
}
