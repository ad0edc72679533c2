//! Streamed turns end to end: `cargo lambda watch` serves the `session-stream` function (in
//! response-streaming mode, as a Function URL would run it), which streams the Bedrock
//! stand-in's ConverseStream as server-sent events. The turn is then read back through the
//! buffered API.
//!
//! Needs `E2E_API_URL`, `E2E_STREAM_URL` and the stand-in, which `make test` sets up.

mod common;

use std::time::{Duration, Instant};

use common::api::{call, env, http, new_session};
use serde_json::{json, Value};

/// One server-sent event as the client saw it, and when.
#[derive(Debug)]
struct Event {
    name: String,
    data: Value,
    at: Duration,
}

/// What a stream answered: status, content type, and its events (or its body when it is not
/// a stream).
struct Streamed {
    status: u16,
    content_type: String,
    events: Vec<Event>,
    body: String,
}

impl Streamed {
    fn named(&self, name: &str) -> Vec<&Event> {
        self.events.iter().filter(|e| e.name == name).collect()
    }

    fn done(&self) -> &Value {
        &self
            .named("done")
            .first()
            .unwrap_or_else(|| panic!("no done event in {:?}", self.events))
            .data
    }
}

fn stream_url() -> String {
    env("E2E_STREAM_URL")
}

fn post(user: &str, session: &str, body: &Value) -> reqwest::RequestBuilder {
    let mut request = http()
        .post(format!("{}/sessions/{session}/messages", stream_url()))
        .header("content-type", "application/json")
        .body(body.to_string());
    if !user.is_empty() {
        request = request.header("x-user-id", user);
    }
    request
}

/// Sends the request and reads its events as they arrive, stopping after `stop_after`
/// events when given (the client hangs up).
async fn stream(request: reqwest::RequestBuilder, stop_after: Option<usize>) -> Streamed {
    let started = Instant::now();
    let mut response = request.send().await.expect("the stream answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let mut body = String::new();
    while let Some(chunk) = response.chunk().await.expect("the body reads") {
        let text = String::from_utf8_lossy(&chunk).into_owned();
        body.push_str(&text);
        buffer.push_str(&text);
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = value.to_owned();
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            if data.is_empty() {
                continue;
            }
            events.push(Event {
                name,
                data: serde_json::from_str(&data).expect("each data line is JSON"),
                at: started.elapsed(),
            });
        }
        if stop_after.is_some_and(|n| events.len() >= n) {
            break;
        }
    }
    Streamed {
        status,
        content_type,
        events,
        body,
    }
}

/// The session as the buffered API shows it.
async fn history(user: &str, session: &str) -> (u16, Value) {
    call(
        reqwest::Method::GET,
        &format!("/sessions/{session}"),
        user,
        None,
    )
    .await
}

fn user() -> String {
    format!("stream-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn a_streamed_turn_sends_text_as_it_comes_the_tool_calls_and_done_and_is_stored() {
    let user = user();
    let session = new_session(&user).await;
    let turn = stream(
        post(
            &user,
            &session,
            &json!({"message": "[[standin:stream-gap-ms=40]] What is 12*7?"}),
        ),
        None,
    )
    .await;
    assert_eq!(turn.status, 200, "{}", turn.body);
    assert!(
        turn.content_type.starts_with("text/event-stream"),
        "{}",
        turn.content_type
    );

    let texts = turn.named("text");
    assert!(
        texts.len() > 2,
        "the answer comes in pieces: {:?}",
        turn.events
    );
    let done = turn.named("done");
    assert_eq!(done.len(), 1, "{:?}", turn.events);
    assert_eq!(turn.events.last().map(|e| e.name.as_str()), Some("done"));
    // The stand-in sends its events 40 ms apart: the first piece of text reaches the client
    // well before the turn is done, not all at once at the end.
    assert!(
        texts[0].at + Duration::from_millis(200) < done[0].at,
        "text at {:?}, done at {:?}",
        texts[0].at,
        done[0].at
    );

    let started = turn.named("tool_start");
    assert_eq!(started.len(), 1, "{:?}", turn.events);
    assert_eq!(started[0].data["name"], "calculator");
    assert_eq!(started[0].data["input"]["expression"], "12*7");
    let tool_use_id = started[0].data["tool_use_id"].clone();
    let ended = turn.named("tool_end");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].data["tool_use_id"], tool_use_id);
    assert_eq!(ended[0].data["status"], "success");
    assert!(ended[0].data["latency_ms"].is_u64());
    let order: Vec<&str> = turn.events.iter().map(|e| e.name.as_str()).collect();
    let start_at = order.iter().position(|n| *n == "tool_start").unwrap();
    let end_at = order.iter().position(|n| *n == "tool_end").unwrap();
    assert!(start_at < end_at && end_at < order.len() - 1, "{order:?}");

    // `done` is the buffered route's body.
    let result = turn.done();
    assert_eq!(result["session_id"], session.as_str());
    assert_eq!(result["turn"], 1);
    assert_eq!(result["steps"], 2);
    assert_eq!(result["stop_reason"], "end_turn");
    assert!(result["answer"].as_str().unwrap_or_default().contains("84"));
    assert!(result["usage"]["input_tokens"].as_u64().unwrap_or(0) > 0);
    assert!(result["cost"]["total_usd"].as_f64().unwrap_or(0.0) > 0.0);
    // The text streamed is the answer's text of each step.
    let streamed: String = texts
        .iter()
        .map(|e| e.data["delta"].as_str().unwrap_or_default())
        .collect();
    assert!(
        streamed.ends_with(result["answer"].as_str().unwrap_or_default()),
        "{streamed}"
    );

    let (status, history) = history(&user, &session).await;
    assert_eq!(status, 200);
    let messages = history["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 4, "{history}");
    assert_eq!(messages[1]["content"][1]["tool_use_id"], tool_use_id);
    let (status, trace) = call(
        reqwest::Method::GET,
        &format!("/sessions/{session}/trace"),
        &user,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let steps = trace["turns"][0]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(steps.len(), 3, "{trace}");
    assert!(
        steps.iter().all(|step| step["start_ms"].is_u64()),
        "{trace}"
    );
}

#[tokio::test]
async fn what_can_be_refused_before_the_stream_starts_gets_the_buffered_routes_status() {
    let owner = user();
    let session = new_session(&owner).await;
    let message = json!({"message": "hello"});
    let cases = [
        ("no caller", post("", &session, &message), 401),
        (
            "not a session id",
            post(&owner, "not-a-uuid", &message),
            400,
        ),
        (
            "no message field",
            post(&owner, &session, &json!({"text": "hello"})),
            400,
        ),
        (
            "too large",
            post(&owner, &session, &json!({"message": "x".repeat(17 * 1024)})),
            413,
        ),
        (
            "unknown session",
            post(&owner, &uuid::Uuid::new_v4().to_string(), &message),
            404,
        ),
        (
            "someone else's session",
            post(&user(), &session, &message),
            404,
        ),
        (
            "unconfigured role",
            post(
                &owner,
                &session,
                &json!({"message": "hi", "model": "extraction"}),
            ),
            0,
        ),
    ];
    for (what, request, expected) in cases {
        let answer = stream(request, None).await;
        if expected == 0 {
            // The test stack configures every role (extraction defaults to fast): it streams.
            assert_eq!(answer.status, 200, "{what}: {}", answer.body);
            continue;
        }
        assert_eq!(answer.status, expected, "{what}: {}", answer.body);
        assert!(
            answer.content_type.starts_with("application/problem+json"),
            "{what}: {}",
            answer.content_type
        );
        let problem: Value = serde_json::from_str(&answer.body).expect("problem JSON");
        assert_eq!(problem["status"], expected, "{what}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // Nothing was stored by the refusals; the one turn that ran is the only one.
    let (_, history) = history(&owner, &session).await;
    assert_eq!(history["turns"], 1, "{history}");
    // Only the turn route streams.
    let other = stream(
        http()
            .get(format!("{}/sessions", stream_url()))
            .header("x-user-id", &owner),
        None,
    )
    .await;
    assert_eq!(other.status, 404, "{}", other.body);
}

#[tokio::test]
async fn a_client_that_hangs_up_does_not_lose_the_turn() {
    let user = user();
    let session = new_session(&user).await;
    let cut = stream(
        post(
            &user,
            &session,
            &json!({"message": "[[standin:stream-gap-ms=60]] What is 6*7?"}),
        ),
        Some(1),
    )
    .await;
    assert_eq!(cut.status, 200, "{}", cut.body);
    assert_eq!(cut.events.len(), 1, "hung up after the first event");
    // The turn completes without its reader and shows in the history.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, history) = history(&user, &session).await;
        assert_eq!(status, 200);
        if history["turns"] == 1 {
            let messages = history["messages"].as_array().cloned().unwrap_or_default();
            assert_eq!(messages.len(), 4, "{history}");
            let last = messages[3]["content"][0]["text"]
                .as_str()
                .unwrap_or_default();
            assert!(last.contains("42"), "{history}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the turn was not stored: {history}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_retried_stream_with_the_same_key_replays_the_turn_as_done() {
    let user = user();
    let session = new_session(&user).await;
    let key = uuid::Uuid::new_v4().to_string();
    let body = json!({"message": "What is 2+3?"});
    let first = stream(
        post(&user, &session, &body).header("idempotency-key", &key),
        None,
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = stream(
        post(&user, &session, &body).header("idempotency-key", &key),
        None,
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    let names: Vec<&str> = again.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["done"], "a replay runs nothing: {:?}", again.events);
    assert_eq!(again.done()["turn"], first.done()["turn"]);
    assert_eq!(again.done()["answer"], first.done()["answer"]);
    let (_, history) = history(&user, &session).await;
    assert_eq!(history["turns"], 1, "{history}");
}
