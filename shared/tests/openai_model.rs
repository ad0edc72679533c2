//! `OpenAiModel` against the OpenAI stand-in (`dev/openai-standin`) over real HTTP: the tool
//! loop, tool choice, the streamed path giving the buffered path's answer, usage, every error
//! kind, and the key in no error or `Debug` output.

use std::time::Duration;

use openai_standin::{Options, Standin};
use serde_json::{json, Value};
use shared::{
    adapters::{openai::OpenAiModel, secrets::ApiKey},
    domain::{
        message::{ContentBlock, Message, Role, ToolOutput},
        model::{
            InferenceConfig, ModelRequest, ModelResponse, ModelStopReason, ToolChoice, ToolSpec,
        },
    },
    ports::{Model, ModelError, TurnSink},
};
use url::Url;

const MODEL: &str = "gpt-4o-mini";
const KEY: &str = "sk-standin-test-7f3a9c";

async fn standin(options: Options) -> Standin {
    Standin::start(options).await.expect("stand-in")
}

fn model_for(standin: &Standin, key: Option<&str>, streaming: bool) -> OpenAiModel {
    model_at(&standin.base_url(), MODEL, key, Duration::from_secs(10)).with_streaming(streaming)
}

fn model_at(base: &str, model: &str, key: Option<&str>, timeout: Duration) -> OpenAiModel {
    OpenAiModel::new(
        Url::parse(base).expect("url"),
        model,
        key.map(ApiKey::new),
        timeout,
    )
    .expect("model")
}

fn tools() -> Vec<ToolSpec> {
    ["calculator", "current_time"]
        .into_iter()
        .map(|name| ToolSpec {
            name: name.into(),
            description: format!("The {name} tool"),
            input_schema: json!({"type": "object"}),
        })
        .collect()
}

fn ask(text: &str) -> ModelRequest {
    ModelRequest {
        system: Some("You are a test assistant.".into()),
        messages: vec![Message::user_text(text)],
        tools: tools(),
        inference: InferenceConfig {
            max_tokens: Some(256),
            temperature: Some(0.2),
            ..InferenceConfig::default()
        },
        ..ModelRequest::default()
    }
}

/// The request with the answer and one tool result per call appended.
fn with_results(mut request: ModelRequest, answer: &ModelResponse, output: &str) -> ModelRequest {
    request.messages.push(answer.message.clone());
    let results = answer
        .message
        .tool_calls()
        .into_iter()
        .map(|call| {
            let output = ToolOutput::text(output);
            ContentBlock::ToolResult {
                tool_use_id: call.tool_use_id,
                status: output.status,
                content: output.content,
            }
        })
        .collect();
    request.messages.push(Message {
        role: Role::User,
        content: results,
    });
    request
}

#[tokio::test]
async fn a_tool_loop_calls_the_calculator_sends_the_result_back_and_gets_the_final_answer() {
    let standin = standin(Options::default()).await;
    let model = model_for(&standin, None, false);
    assert_eq!(model.model_id(), MODEL);
    let request = ask("What is 6*7?");
    let first = model.converse(&request).await.expect("first call");
    assert_eq!(first.stop_reason, ModelStopReason::ToolUse);
    assert_eq!(first.message.role, Role::Assistant);
    assert_eq!(first.message.text(), "Let me calculate that.");
    let calls = first.message.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "calculator");
    assert_eq!(calls[0].input, json!({"expression": "6*7"}));
    assert!(calls[0].tool_use_id.starts_with("call_"));

    let request = with_results(request, &first, "42");
    let last = model.converse(&request).await.expect("second call");
    assert_eq!(last.stop_reason, ModelStopReason::EndTurn);
    assert_eq!(last.message.text(), "The calculator tool says: 42");
    assert!(last.message.tool_calls().is_empty());

    let sent = standin.last_request().expect("a request");
    assert_eq!(sent["model"], MODEL);
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "You are a test assistant."})
    );
    assert_eq!(
        sent["messages"][2]["tool_calls"][0]["function"]["arguments"],
        r#"{"expression":"6*7"}"#
    );
    assert_eq!(
        sent["messages"][3],
        json!({"role": "tool", "tool_call_id": calls[0].tool_use_id, "content": "42"})
    );
    assert_eq!(sent["max_tokens"], 256);
    assert_eq!(sent["temperature"], json!(0.2));
    assert_eq!(sent["tools"][0]["function"]["name"], "calculator");
    assert_eq!(standin.stats().chat_completions(), 2);
}

#[tokio::test]
async fn tool_choice_required_or_named_makes_the_model_call_a_tool() {
    let standin = standin(Options::default()).await;
    let model = model_for(&standin, None, false);
    let mut request = ask("Hello there");
    let free = model.converse(&request).await.expect("auto");
    assert_eq!(free.stop_reason, ModelStopReason::EndTurn);
    assert_eq!(free.message.text(), "You said: Hello there");

    request.tool_choice = Some(ToolChoice::Any);
    let required = model.converse(&request).await.expect("required");
    assert_eq!(
        standin.last_request().expect("sent")["tool_choice"],
        "required"
    );
    assert_eq!(required.stop_reason, ModelStopReason::ToolUse);
    assert_eq!(required.message.tool_calls()[0].name, "calculator");

    request.tool_choice = Some(ToolChoice::Tool("current_time".into()));
    let named = model.converse(&request).await.expect("named");
    assert_eq!(
        standin.last_request().expect("sent")["tool_choice"],
        json!({"type": "function", "function": {"name": "current_time"}})
    );
    // OpenAI answers a forced function with `finish_reason: stop`; the calls are still run.
    assert_eq!(named.stop_reason, ModelStopReason::ToolUse);
    let calls = named.message.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "current_time");

    request.tool_choice = Some(ToolChoice::Tool("no_such_tool".into()));
    let refused = model.converse(&request).await.unwrap_err();
    assert!(
        matches!(&refused, ModelError::Invalid(m) if m.contains("'no_such_tool'")),
        "{refused:?}"
    );
}

/// A sink that keeps the text it is given.
#[derive(Default)]
struct Collect(std::sync::Mutex<Vec<String>>);

impl TurnSink for Collect {
    fn text(&self, delta: &str) {
        self.0.lock().unwrap().push(delta.to_owned());
    }
}

#[tokio::test]
async fn a_streamed_call_hands_the_text_to_the_sink_as_it_arrives() {
    let standin = standin(Options::default()).await;
    // Not configured to stream: asking for a sink streams this call.
    let model = model_for(&standin, None, false);
    let sink = Collect::default();
    let request = ask("Just chatting about the weather today");
    let answer = model
        .converse_stream(&request, &sink)
        .await
        .expect("answer");
    let deltas = sink.0.lock().unwrap().clone();
    assert!(deltas.len() > 1, "the text came in pieces: {deltas:?}");
    assert_eq!(deltas.concat(), answer.message.text());
    assert_eq!(standin.stats().chat_completions_stream(), 1);
    assert_eq!(standin.last_request().expect("sent")["stream"], true);

    // A tool call streams no text; its arguments still assemble.
    let sink = Collect::default();
    let first = model
        .converse_stream(&ask("What is (2+3)*4?"), &sink)
        .await
        .expect("tool call");
    assert_eq!(first.stop_reason, ModelStopReason::ToolUse);
    assert_eq!(
        first.message.tool_calls()[0].input,
        json!({"expression": "(2+3)*4"})
    );
    assert_eq!(sink.0.lock().unwrap().concat(), first.message.text());
}

#[tokio::test]
async fn the_streamed_answer_is_the_buffered_answer() {
    let standin = standin(Options::default()).await;
    let buffered = model_for(&standin, None, false);
    let streamed = model_for(&standin, None, true);
    for request in [
        ask("What is (2+3)*4 and 10/4? And the time in Europe/Paris."),
        ask("Just chatting"),
        ask("[[standin:max-tokens]] a long answer cut short"),
    ] {
        let a = buffered.converse(&request).await.expect("buffered");
        let b = streamed.converse(&request).await.expect("streamed");
        assert_eq!(a.message, b.message);
        assert_eq!(a.stop_reason, b.stop_reason);
        assert_eq!(a.usage.output_tokens, b.usage.output_tokens);
        assert!(
            b.usage.input_tokens > a.usage.input_tokens,
            "the streamed body is longer"
        );
    }
    assert_eq!(standin.stats().chat_completions_stream(), 3);
    let sent = standin.last_request().expect("sent");
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));

    // A whole loop streamed: arguments arrive over several chunks and still parse.
    let request = ask("What is (2+3)*4?");
    let first = streamed.converse(&request).await.expect("first");
    assert_eq!(first.stop_reason, ModelStopReason::ToolUse);
    assert_eq!(
        first.message.tool_calls()[0].input,
        json!({"expression": "(2+3)*4"})
    );
    let last = streamed
        .converse(&with_results(request, &first, "20"))
        .await
        .expect("last");
    assert_eq!(last.message.text(), "The calculator tool says: 20");
    assert_eq!(last.stop_reason, ModelStopReason::EndTurn);
}

#[tokio::test]
async fn usage_splits_cached_prompt_tokens_from_the_rest() {
    let standin = standin(Options::default()).await;
    for streaming in [false, true] {
        let model = model_for(&standin, None, streaming);
        let response = model
            .converse(&ask("[[standin:cached-tokens=12]] hi"))
            .await
            .expect("answer");
        // The stand-in counts a prompt token per 4 bytes of the body it received.
        let sent = standin.last_request().expect("sent").to_string();
        let prompt = u64::try_from(sent.len() / 4).expect("fits");
        assert_eq!(
            response.usage.cache_read_tokens, 12,
            "streaming {streaming}"
        );
        assert_eq!(
            response.usage.input_tokens,
            prompt - 12,
            "streaming {streaming}"
        );
        assert_eq!(response.usage.cache_write_tokens, 0);
        let text_tokens = u64::try_from("You said: hi".len() / 4).expect("fits");
        assert_eq!(response.usage.output_tokens, text_tokens);
    }
}

#[tokio::test]
async fn a_stop_sequence_reaches_the_provider_and_cuts_the_answer() {
    let standin = standin(Options::default()).await;
    let mut request = ask("Hello there friend");
    request.inference.stop_sequences = vec!["there".into()];
    for streaming in [false, true] {
        let response = model_for(&standin, None, streaming)
            .converse(&request)
            .await
            .expect("answer");
        assert_eq!(response.message.text(), "You said: Hello ");
        // OpenAI says `stop` for a stop sequence as for the end of the answer.
        assert_eq!(response.stop_reason, ModelStopReason::EndTurn);
        assert_eq!(
            standin.last_request().expect("sent")["stop"],
            json!(["there"])
        );
    }
}

#[tokio::test]
async fn additional_fields_reach_the_provider_and_an_unknown_one_is_invalid() {
    let standin = standin(Options::default()).await;
    let model = model_for(&standin, None, false);
    let mut request = ask("hi");
    request.additional_fields =
        Some(json!({"seed": 7, "max_tokens": null, "max_completion_tokens": 99}));
    model.converse(&request).await.expect("accepted");
    let sent = standin.last_request().expect("sent");
    assert_eq!(
        (sent["seed"].clone(), sent["max_completion_tokens"].clone()),
        (json!(7), json!(99))
    );
    assert!(sent.get("max_tokens").is_none());

    request.additional_fields = Some(json!({"thinking": {"type": "enabled"}}));
    let error = model.converse(&request).await.unwrap_err();
    assert!(
        matches!(&error, ModelError::Invalid(m) if m == "Unrecognized request argument supplied: thinking"),
        "{error:?}"
    );
    assert!(!error.is_transient());
}

/// The error a model gets for `text` buffered, after checking that streamed it gets the same
/// kind.
async fn failure(standin: &Standin, key: Option<&str>, text: &str) -> ModelError {
    failures(standin, key, text).await.0
}

/// The errors a model gets for `text`, buffered and streamed, of the same kind.
async fn failures(standin: &Standin, key: Option<&str>, text: &str) -> (ModelError, ModelError) {
    let buffered = model_for(standin, key, false)
        .converse(&ask(text))
        .await
        .unwrap_err();
    let streamed = model_for(standin, key, true)
        .converse(&ask(text))
        .await
        .unwrap_err();
    assert_eq!(buffered.kind(), streamed.kind(), "{text}");
    (buffered, streamed)
}

#[tokio::test]
async fn provider_errors_map_to_the_domain_kinds() {
    let standin = standin(Options::default()).await;
    let throttled = failure(&standin, None, "[[standin:fail-throttle]] hi").await;
    assert!(matches!(throttled, ModelError::Throttled) && throttled.is_transient());
    for status in [500, 502, 503, 504] {
        let error = failure(&standin, None, &format!("[[standin:fail={status}]] hi")).await;
        assert!(
            matches!(&error, ModelError::Unavailable(m) if *m == format!("HTTP {status}")),
            "{error:?}"
        );
        assert!(error.is_transient());
    }
    let not_found = failure(&standin, None, "[[standin:fail=404]]").await;
    assert!(matches!(not_found, ModelError::AccessDenied));

    let unknown = model_at(
        &standin.base_url(),
        "gpt-99-turbo",
        None,
        Duration::from_secs(5),
    )
    .converse(&ask("hi"))
    .await
    .unwrap_err();
    assert!(
        matches!(unknown, ModelError::AccessDenied) && !unknown.is_transient(),
        "{unknown:?}"
    );

    let small = self::standin(Options {
        context_tokens: Some(100),
        ..Options::default()
    })
    .await;
    let overflow = failure(&small, None, &"many words ".repeat(100)).await;
    assert!(
        matches!(&overflow, ModelError::ContextOverflow(m) if m.starts_with("This model's maximum context length is 100 tokens.")),
        "{overflow:?}"
    );
    assert!(!overflow.is_transient());
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout_and_a_closed_port_is_unavailable() {
    let standin = standin(Options::default()).await;
    for streaming in [false, true] {
        let slow = model_at(&standin.base_url(), MODEL, None, Duration::from_millis(300))
            .with_streaming(streaming);
        let error = slow
            .converse(&ask("[[standin:sleep-ms=3000]] hi"))
            .await
            .unwrap_err();
        assert!(matches!(error, ModelError::Timeout), "{error:?}");
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}/v1", closed.local_addr().expect("addr"));
    drop(closed);
    let error = model_at(&base, MODEL, None, Duration::from_secs(5))
        .converse(&ask("hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ModelError::Unavailable(m) if m == "could not reach the model provider"),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_key_is_sent_as_a_bearer_token_and_appears_in_no_error_or_debug_output() {
    let standin = standin(Options {
        api_key: Some(KEY.into()),
        ..Options::default()
    })
    .await;
    let answer = model_for(&standin, Some(KEY), false)
        .converse(&ask("hi"))
        .await
        .expect("accepted");
    assert_eq!(answer.message.text(), "You said: hi");

    let wrong = "sk-wrong-key-5e6f7a8b";
    let mut texts: Vec<String> = Vec::new();
    for (key, text) in [
        (Some(wrong), "hi"),
        (None, "hi"),
        (Some(KEY), "[[standin:fail-throttle]] hi"),
        (Some(KEY), "[[standin:fail=500]] hi"),
        (Some(KEY), "[[standin:fail=400]] hi"),
    ] {
        let (buffered, streamed) = failures(&standin, key, text).await;
        for error in [buffered, streamed] {
            texts.push(error.to_string());
            texts.push(format!("{error:?}"));
        }
    }
    assert_eq!(texts[0], "access to the model was denied");
    assert_eq!(texts[2], "access to the model was denied");
    assert_eq!(texts[4], "access to the model was denied");
    assert_eq!(standin.stats().unauthorized(), 4);
    texts.push(format!("{:?}", model_for(&standin, Some(KEY), true)));
    for text in &texts {
        for key in [KEY, wrong, &wrong[wrong.len() - 4..], &KEY[KEY.len() - 4..]] {
            assert!(!text.contains(key), "{key} in {text}");
        }
    }
    let sent: Value = standin.last_request().expect("sent");
    assert!(
        !sent.to_string().contains(KEY),
        "the key is not in the body"
    );
}
