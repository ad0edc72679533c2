//! The stand-in over real HTTP connections: routes, the key check, validation, the script
//! buffered and streamed, triggers and the context window.

use std::time::{Duration, Instant};

use openai_standin::{Options, Standin};
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn start(options: Options) -> Result<Standin, Box<dyn std::error::Error>> {
    Ok(Standin::start(options).await?)
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "calculator", "description": "Evaluates",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}}}}])
}

/// POSTs `body` to `{base}/chat/completions`; the status and the JSON answer.
async fn chat(
    base: &str,
    key: Option<&str>,
    body: &Value,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let mut request = client().post(format!("{base}/chat/completions")).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

fn ask(text: &str) -> Value {
    json!({"model": "gpt-4o-mini", "tools": tools(), "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": text}]})
}

#[tokio::test]
async fn a_tool_loop_answers_with_a_call_then_with_the_result() -> TestResult {
    let standin = start(Options::default()).await?;
    let (status, first) = chat(&standin.base_url(), None, &ask("What is 6*7?")).await?;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["object"], "chat.completion");
    let choice = &first["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Let me calculate that.");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "calculator");
    assert_eq!(call["function"]["arguments"], r#"{"expression":"6*7"}"#);
    let usage = &first["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap_or(0)
                + usage["completion_tokens"].as_u64().unwrap_or(0)
        )
    );
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);

    let mut body = ask("What is 6*7?");
    let messages = body["messages"].as_array_mut().ok_or("messages")?;
    messages.push(choice["message"].clone());
    messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "42"}));
    // Without the `/v1` prefix too.
    let base = format!("http://{}", standin.addr());
    let (status, last) = chat(&base, None, &body).await?;
    assert_eq!(status, 200, "{last}");
    assert_eq!(
        last["choices"][0]["message"]["content"],
        "The calculator tool says: 42"
    );
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(standin.stats().chat_completions(), 2);
    assert_eq!(standin.last_request(), Some(body));
    Ok(())
}

#[tokio::test]
async fn a_streamed_answer_is_server_sent_chunks_ending_in_usage_and_done() -> TestResult {
    let standin = start(Options::default()).await?;
    let mut body = ask("What is (2+3)*4?");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = client()
        .post(format!("{}/chat/completions", standin.base_url()))
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        content_type.as_deref(),
        Some("text/event-stream; charset=utf-8")
    );
    let text = response.text().await?;
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap_or(e)))
        .collect::<Result<_, _>>()?;
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let arguments: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, r#"{"expression":"(2+3)*4"}"#);
    let fragments = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["tool_calls"].is_array())
        .count();
    assert!(fragments > 2, "arguments over several chunks: {fragments}");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert!(chunks[chunks.len() - 1]["usage"]["prompt_tokens"]
        .as_u64()
        .is_some_and(|n| n > 0));
    assert_eq!(standin.stats().chat_completions_stream(), 1);
    Ok(())
}

#[tokio::test]
async fn with_a_key_set_requests_need_it_as_a_bearer_token() -> TestResult {
    let key = "sk-standin-0123456789";
    let standin = start(Options {
        api_key: Some(key.into()),
        ..Options::default()
    })
    .await?;
    let base = standin.base_url();
    let (status, missing) = chat(&base, None, &ask("hi")).await?;
    assert_eq!(status, 401);
    assert!(missing["error"]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("You didn't provide an API key")));
    let (status, wrong) = chat(&base, Some("sk-wrong-key-9876"), &ask("hi")).await?;
    assert_eq!(status, 401);
    assert_eq!(wrong["error"]["code"], "invalid_api_key");
    assert!(
        !wrong.to_string().contains("sk-wrong-key-9876"),
        "masked: {wrong}"
    );
    let (status, _) = chat(&base, Some(key), &ask("hi")).await?;
    assert_eq!(status, 200);
    standin.set_api_key(Some("sk-rotated-key-42"));
    assert_eq!(chat(&base, Some(key), &ask("hi")).await?.0, 401);
    assert_eq!(
        chat(&base, Some("sk-rotated-key-42"), &ask("hi")).await?.0,
        200
    );
    assert_eq!(standin.stats().unauthorized(), 3);
    let client = client();
    let models = client.get(format!("{base}/models")).send().await?;
    assert_eq!(
        models.status().as_u16(),
        401,
        "the model list needs the key too"
    );
    let health = client
        .get(format!("http://{}/__health", standin.addr()))
        .send()
        .await?;
    assert_eq!(health.status().as_u16(), 200, "health does not");
    let stats: Value = client
        .get(format!("http://{}/__stats", standin.addr()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(stats["unauthorized"], 4);
    assert_eq!(stats["chat_completions"], 5);
    Ok(())
}

#[tokio::test]
async fn triggers_answer_with_openai_errors() -> TestResult {
    let standin = start(Options::default()).await?;
    let response = client()
        .post(format!("{}/chat/completions", standin.base_url()))
        .json(&ask("[[standin:fail-throttle]] hi"))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = response.json().await?;
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    let (status, body) = chat(&standin.base_url(), None, &ask("hi [[standin:fail=500]]")).await?;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "server_error");
    let (status, _) = chat(&standin.base_url(), None, &ask("[[standin:fail=503]]")).await?;
    assert_eq!(status, 503);
    let (status, body) = chat(&standin.base_url(), None, &ask("[[standin:fail=oops]]")).await?;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Unknown stand-in trigger")));

    let started = Instant::now();
    let (status, body) = chat(
        &standin.base_url(),
        None,
        &ask("[[standin:sleep-ms=150]] hi"),
    )
    .await?;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(body["choices"][0]["message"]["content"], "You said: hi");
    Ok(())
}

#[tokio::test]
async fn a_request_longer_than_the_context_window_is_refused_as_openai_refuses_it() -> TestResult {
    let standin = start(Options {
        context_tokens: Some(50),
        ..Options::default()
    })
    .await?;
    let (status, body) = chat(&standin.base_url(), None, &ask(&"long words ".repeat(40))).await?;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "This model's maximum context length is 50 tokens. However, your messages resulted in "
        ),
        "{message}"
    );
    assert_eq!(
        chat(
            &standin.base_url(),
            None,
            &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
        )
        .await?
        .0,
        200
    );
    Ok(())
}

#[tokio::test]
async fn unknown_models_routes_and_invalid_requests_are_refused() -> TestResult {
    let standin = start(Options::default()).await?;
    let base = standin.base_url();
    let mut body = ask("hi");
    body["model"] = json!("gpt-99");
    let (status, refused) = chat(&base, None, &body).await?;
    assert_eq!(status, 404);
    assert_eq!(refused["error"]["code"], "model_not_found");
    let (status, refused) = chat(&base, None, &json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_1", "content": "4"}]})).await?;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["type"], "invalid_request_error");
    assert_eq!(refused["error"]["param"], "messages.[1].role");

    let client = client();
    let list: Value = client
        .get(format!("{base}/models"))
        .send()
        .await?
        .json()
        .await?;
    assert!(list["data"]
        .as_array()
        .is_some_and(|d| d.iter().any(|m| m["id"] == "gpt-4o-mini")));
    let one = client.get(format!("{base}/models/gpt-99")).send().await?;
    assert_eq!(one.status().as_u16(), 404);
    let nowhere = client.post(format!("{base}/completions")).send().await?;
    assert_eq!(nowhere.status().as_u16(), 404);
    let nowhere: Value = nowhere.json().await?;
    assert_eq!(
        nowhere["error"]["message"],
        "Invalid URL (POST /v1/completions)"
    );
    Ok(())
}

/// A plain HTTP client. reqwest has rustls but no crypto provider of its own in this
/// workspace (the OpenAI adapter brings its TLS configuration): install ring's as the default.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
