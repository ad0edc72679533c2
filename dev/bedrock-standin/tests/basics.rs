//! End-to-end tests through the official `aws-sdk-bedrockruntime` client (see
//! `common`), the basics: a tool loop over Converse, the streamed event
//! sequence, request validation, the simple triggers, stats, stop sequences and
//! service tiers.

mod common;

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ContentBlockStart, ConversationRole, ConverseOutput,
    ConverseStreamOutput, InferenceConfiguration, Message, ServiceTier, ServiceTierType,
    StopReason, ToolResultStatus,
};
use common::{
    ask, ask_stream, converse, converse_refused, converse_stream_with_tools, converse_with_tools,
    operation_counts, reply_of, start, texts, to_json, tool_result, tool_result_for, tool_uses,
    user_text, TestResult, MODEL,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[tokio::test]
async fn converse_calls_the_offered_calculator_then_reports_its_result() -> TestResult {
    let (standin, client) = start().await?;
    let question = user_text("What is 6 * 7?")?;
    let offered = ["calculator", "current_time"];
    let first = converse_with_tools(&client, vec![question.clone()], &offered)?
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

    let answer_to_tool = tool_result(uses[0].tool_use_id(), "42", Some(ToolResultStatus::Success))?;
    let second = converse_with_tools(&client, vec![question, reply, answer_to_tool], &offered)?
        .send()
        .await?;
    assert_eq!(second.stop_reason(), &StopReason::EndTurn);
    let text = match second.output() {
        Some(ConverseOutput::Message(m)) => texts(m),
        other => return Err(format!("unexpected output {other:?}").into()),
    };
    assert_eq!(text, "The calculator tool says: 42");
    assert_eq!(operation_counts(&standin), (2, 0));
    Ok(())
}

#[tokio::test]
async fn converse_stream_emits_the_real_event_sequence() -> TestResult {
    let (standin, client) = start().await?;
    let question = user_text("What is (2+3)*4, and what time is it in Europe/Paris?")?;
    let mut output =
        converse_stream_with_tools(&client, vec![question], &["current_time", "calculator"])?
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
    assert_eq!(operation_counts(&standin), (0, 1));
    Ok(())
}

#[tokio::test]
async fn invalid_conversation_is_a_validation_exception() -> TestResult {
    let (_standin, client) = start().await?;
    let assistant_first = Message::builder()
        .role(ConversationRole::Assistant)
        .content(ContentBlock::Text("hello".into()))
        .build()?;
    let err = converse_refused(
        converse(&client, vec![assistant_first]),
        "expected an error",
    )
    .await?;
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
    let http = http_client();
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
        json!({"converse": 1, "converse_stream": 0, "invoke": 0, "models": {"any:model": 1}})
    );
    let missing = http
        .post(format!(
            "{}/model/x/invoke-with-response-stream",
            standin.endpoint_url()
        ))
        .send()
        .await?;
    assert_eq!(missing.status().as_u16(), 404);
    Ok(())
}

#[tokio::test]
async fn max_tokens_always_tool_and_sleep_triggers() -> TestResult {
    let (_standin, client) = start().await?;
    let cut = ask(&client, "[[standin:max-tokens]] tell me a long story")?
        .send()
        .await?;
    assert_eq!(cut.stop_reason(), &StopReason::MaxTokens);

    let question = user_text("[[standin:always-tool]] hello")?;
    let first = converse_with_tools(&client, vec![question.clone()], &["current_time"])?
        .send()
        .await?;
    assert_eq!(first.stop_reason(), &StopReason::ToolUse);
    let reply = reply_of(&first)?.clone();
    let result = tool_result_for(&reply, "12:00")?;
    let second = converse_with_tools(&client, vec![question, reply, result], &["current_time"])?
        .send()
        .await?;
    assert_eq!(
        second.stop_reason(),
        &StopReason::ToolUse,
        "still calling tools"
    );

    let started = Instant::now();
    let slow = ask(&client, "[[standin:sleep-ms=300]] hi")?.send().await?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(slow.metrics().is_some_and(|m| m.latency_ms() >= 300));
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

    let json: Value = http_client()
        .get(format!("{}/__stats", standin.endpoint_url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        json,
        json!({"converse": 4, "converse_stream": 1, "invoke": 0, "models": {MODEL: 2, other: 3}})
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
    let output = ask(&client, "first part STOP second part")?
        .inference_config(config.clone())
        .send()
        .await?;
    assert_eq!(output.stop_reason(), &StopReason::StopSequence);
    let message = reply_of(&output)?;
    assert_eq!(texts(message), "You said: first part ");
    assert!(output.additional_model_response_fields().is_none());

    let mut stream = ask_stream(&client, "first part STOP second part")?
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
    let err = converse_refused(
        ask(&client, "hi")?.inference_config(five),
        "five stop sequences must be refused",
    )
    .await?;
    assert!(err.is_validation_exception(), "{err:?}");
    assert!(
        err.message().is_some_and(|m| m.contains("stopSequences")),
        "{err:?}"
    );
    let blank = InferenceConfiguration::builder().stop_sequences("").build();
    let err = converse_refused(
        ask(&client, "hi")?.inference_config(blank),
        "an empty stop sequence must be refused",
    )
    .await?;
    assert!(err.is_validation_exception(), "{err:?}");
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
        let output = ask(&client, "hi")?
            .service_tier(ServiceTier::builder().r#type(tier.clone()).build()?)
            .send()
            .await?;
        assert_eq!(output.service_tier().map(|t| t.r#type()), Some(&tier));
        let mut stream = ask_stream(&client, "hi")?
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
    let plain = ask(&client, "hi")?.send().await?;
    assert!(plain.service_tier().is_none());

    let economy = ServiceTier::builder()
        .r#type(ServiceTierType::from("economy"))
        .build()?;
    let err = converse_refused(
        ask(&client, "hi")?.service_tier(economy),
        "an unknown tier must be refused",
    )
    .await?;
    assert!(err.is_validation_exception(), "{err:?}");
    assert!(
        err.message()
            .is_some_and(|m| m.contains("Value 'economy' at 'serviceTier.type'")),
        "{err:?}"
    );
    Ok(())
}

/// A plain HTTP client. reqwest has rustls but no crypto provider of its own in this
/// workspace (the OpenAI adapter brings its TLS configuration): install ring's as the default.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
