//! End-to-end tests through the official `aws-sdk-bedrockruntime` client (see
//! `common`), extended thinking: reasoning blocks over Converse and
//! ConverseStream, the checks on the reasoning sent back, and the thinking
//! settings.

mod common;

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::converse::builders::ConverseFluentBuilder;
use aws_sdk_bedrockruntime::operation::converse_stream::builders::ConverseStreamFluentBuilder;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConverseStreamOutput, InferenceConfiguration, Message,
    ReasoningContentBlock, ReasoningContentBlockDelta, ReasoningTextBlock, StopReason,
};
use aws_sdk_bedrockruntime::Client;
use common::{
    ask, converse_refused, converse_stream_with_tools, converse_with_tools, reply_of, start, texts,
    to_document, tool_result_for, user_text, with_content, BoxError, TestResult,
};
use serde_json::json;

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

/// A Converse call with `messages` offering the calculator, thinking with `budget` tokens.
fn think_with_calculator(
    client: &Client,
    messages: Vec<Message>,
    budget: u64,
) -> Result<ConverseFluentBuilder, BoxError> {
    Ok(converse_with_tools(client, messages, &["calculator"])?
        .additional_model_request_fields(thinking(budget)))
}

/// [`think_with_calculator`] over ConverseStream.
fn think_with_calculator_streamed(
    client: &Client,
    messages: Vec<Message>,
    budget: u64,
) -> Result<ConverseStreamFluentBuilder, BoxError> {
    Ok(
        converse_stream_with_tools(client, messages, &["calculator"])?
            .additional_model_request_fields(thinking(budget)),
    )
}

/// `reply` with its leading (reasoning) block replaced by `reasoning`.
fn with_reasoning(reply: &Message, reasoning: ReasoningContentBlock) -> Result<Message, BoxError> {
    let mut content = vec![ContentBlock::ReasoningContent(reasoning)];
    content.extend(reply.content()[1..].iter().cloned());
    with_content(reply, content)
}

#[tokio::test]
async fn a_thinking_tool_loop_that_sends_the_reasoning_back_unchanged_works() -> TestResult {
    let (_standin, client) = start().await?;
    let question = user_text("What is 6 * 7?")?;
    let limits = InferenceConfiguration::builder().max_tokens(4096).build();
    let first = think_with_calculator(&client, vec![question.clone()], 2048)?
        .inference_config(limits.clone())
        .send()
        .await?;
    assert_eq!(first.stop_reason(), &StopReason::ToolUse);
    let reply = reply_of(&first)?.clone();
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

    let conversation = vec![
        question.clone(),
        reply.clone(),
        tool_result_for(&reply, "42")?,
    ];
    let second = think_with_calculator(&client, conversation, 2048)?
        .inference_config(limits.clone())
        .send()
        .await?;
    assert_eq!(second.stop_reason(), &StopReason::EndTurn);
    let last = reply_of(&second)?;
    assert!(leading_reasoning(last).is_some_and(|(t, _)| t.ends_with("so I will report them.")));
    assert_eq!(texts(last), "The calculator tool says: 42");

    // The same over ConverseStream: reasoning text pieces, then one signature delta.
    let mut stream = think_with_calculator_streamed(&client, vec![question.clone()], 2048)?
        .inference_config(limits.clone())
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
    let from_stream = with_reasoning(&reply, ReasoningContentBlock::ReasoningText(rebuilt))?;
    let result = tool_result_for(&from_stream, "42")?;
    let third = think_with_calculator(&client, vec![question, from_stream, result], 2048)?
        .inference_config(limits)
        .send()
        .await?;
    assert_eq!(third.stop_reason(), &StopReason::EndTurn);
    Ok(())
}

#[tokio::test]
async fn a_thinking_tool_loop_that_drops_or_alters_the_reasoning_is_refused() -> TestResult {
    let (_standin, client) = start().await?;
    let question = user_text("What is 6 * 7?")?;
    let first = think_with_calculator(&client, vec![question.clone()], 1024)?
        .send()
        .await?;
    let reply = reply_of(&first)?.clone();
    let (text, signature) = leading_reasoning(&reply).ok_or("no reasoning")?;
    let step = |assistant: Message| {
        let client = client.clone();
        let question = question.clone();
        async move {
            let result = tool_result_for(&assistant, "42")?;
            let sent = think_with_calculator(&client, vec![question, assistant, result], 1024)?
                .send()
                .await;
            let err = sent.err().ok_or("must be refused")?.into_service_error();
            assert!(err.is_validation_exception(), "{err:?}");
            Ok::<String, BoxError>(err.message().unwrap_or_default().to_string())
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
    let altered = with_reasoning(&reply, ReasoningContentBlock::ReasoningText(altered))?;
    let message = step(altered).await?;
    assert_eq!(
        message,
        "The model returned the following errors: messages.1.content.0: Invalid `signature` in \
         `thinking` block"
    );

    let unsigned = ReasoningTextBlock::builder().text(text).build()?;
    let unsigned = with_reasoning(&reply, ReasoningContentBlock::ReasoningText(unsigned))?;
    let message = step(unsigned).await?;
    assert!(
        message.ends_with("messages.1.content.0.thinking.signature: Field required"),
        "{message}"
    );

    // Redacted reasoning is accepted without checks.
    let opaque = aws_smithy_types::Blob::new(b"opaque".to_vec());
    let redacted = with_reasoning(&reply, ReasoningContentBlock::RedactedContent(opaque))?;
    let result = tool_result_for(&redacted, "42")?;
    let ok = think_with_calculator(&client, vec![question, redacted, result], 1024)?
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
            let call = ask(&client, "hi")?
                .inference_config(config)
                .additional_model_request_fields(thinking(budget));
            let err = converse_refused(call, "must be refused").await?;
            assert!(err.is_validation_exception(), "{err:?}");
            Ok::<String, BoxError>(err.message().unwrap_or_default().to_string())
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
    let with = ask(&client, "hi")?
        .additional_model_request_fields(thinking(1024))
        .send()
        .await?;
    let without = ask(&client, "hi")?.send().await?;
    let tokens = |o: &aws_sdk_bedrockruntime::operation::converse::ConverseOutput| {
        o.usage().map(|u| u.output_tokens()).unwrap_or_default()
    };
    assert!(tokens(&with) > tokens(&without) + 5, "{with:?}");
    Ok(())
}
