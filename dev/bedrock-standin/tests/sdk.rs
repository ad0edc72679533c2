//! End-to-end tests through the official `aws-sdk-bedrockruntime` client: the
//! stand-in runs in-process on 127.0.0.1:0 and the SDK talks to it over HTTP,
//! so request serialisation, response parsing, event-stream decoding and
//! error mapping are all the SDK's own.

mod common;

use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ContentBlockStart, ConversationRole, ConverseOutput,
    ConverseStreamOutput, Message, StopReason, ToolResultBlock, ToolResultContentBlock,
    ToolResultStatus,
};
use common::{start, texts, to_json, tool_uses, tools, user_text, TestResult, MODEL};
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
    assert_eq!(stats, json!({"converse": 1, "converse_stream": 0}));
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
