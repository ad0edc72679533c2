//! End-to-end tests through the official `aws-sdk-bedrockruntime` client (see
//! `common`), prompt caching: cache points, reads and writes in the usage,
//! the minimum size, model ids, expiry and validation.

mod common;

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::types::{
    CachePointBlock, CachePointType, ContentBlock, ConversationRole, ConverseStreamOutput, Message,
    StopReason, SystemContentBlock, TokenUsage, Tool, ToolConfiguration, ToolInputSchema,
    ToolSpecification,
};
use bedrock_standin::Options;
use common::{
    ask, converse, converse_refused, converse_stream, reply_of, start, start_with, to_document,
    tool_result_for, user_text, with_content, BoxError, TestResult, FALLBACK, MODEL,
};
use serde_json::json;
use std::time::Duration;

fn cache_point() -> Result<CachePointBlock, BoxError> {
    Ok(CachePointBlock::builder()
        .r#type(CachePointType::Default)
        .build()?)
}

/// A system prompt of about `bytes` bytes, with a cache point after it when `cached`.
fn system(bytes: usize, cached: bool) -> Result<Vec<SystemContentBlock>, BoxError> {
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
fn with_cache_point(message: &Message) -> Result<Message, BoxError> {
    let mut content = message.content().to_vec();
    content.push(ContentBlock::CachePoint(cache_point()?));
    with_content(message, content)
}

/// The usage of a Converse call.
async fn converse_usage(
    client: &aws_sdk_bedrockruntime::Client,
    model: &str,
    system: Vec<SystemContentBlock>,
    messages: Vec<Message>,
) -> Result<TokenUsage, BoxError> {
    let output = converse(client, messages)
        .model_id(model)
        .set_system(Some(system))
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
    let mut stream = converse_stream(&client, question)
        .set_system(Some(system(8000, true)?))
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
    let output = converse(&client, step1)
        .set_system(Some(system(400, false)?))
        .send()
        .await?;
    let first = output.usage().ok_or("usage")?.clone();
    let written = first.cache_write_input_tokens().ok_or("no write")?;
    assert_eq!(first.cache_read_input_tokens(), Some(0));
    assert!(written > 1024, "{first:?}");
    let reply = reply_of(&output)?.clone();

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
    let err = converse_refused(
        ask(&client, "hi")?.set_system(Some(system)),
        "five cache points must be refused",
    )
    .await?;
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
    let err = converse_refused(
        converse(&client, vec![message]),
        "an unknown cache point type must be refused",
    )
    .await?;
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
fn large_tools(cached: bool) -> Result<ToolConfiguration, BoxError> {
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
        let output = converse(&client, sent)
            .set_system(Some(system(4000, true)?))
            .tool_config(large_tools(true)?)
            .send()
            .await?;
        assert_eq!(output.stop_reason(), &StopReason::ToolUse, "step {step}");
        let usage = output.usage().ok_or("usage")?.clone();
        steps.push((messages.clone(), usage));
        let reply = reply_of(&output)?.clone();
        let result = tool_result_for(&reply, &format!("result {step}: 42"))?;
        messages.push(reply);
        messages.push(result);
    }

    // The same five requests without cache points.
    let (_fresh, plain_client) = start().await?;
    let mut plain_inputs = Vec::new();
    for (sent, _) in &steps {
        let output = converse(&plain_client, sent.clone())
            .set_system(Some(system(4000, false)?))
            .tool_config(large_tools(false)?)
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
