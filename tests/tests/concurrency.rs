//! The local stack serves a function's requests concurrently, as Lambda does: `cargo lambda
//! watch` runs several instances of each function (`DEV_CONCURRENCY`, at least 4), so two
//! requests in flight at once are served at once (with `--concurrency 1` the second waits for
//! the first, and this test fails).
//!
//! Shown without a timed assertion: two turns on two sessions, each held up 1.5 s in the
//! Bedrock stand-in (`[[standin:sleep-ms=1500]]`), sent together; the stored traces' intervals
//! (`started_at` .. `started_at + duration_ms`) overlap, i.e. the second began before the
//! first ended.
//!
//! Needs `E2E_API_URL` (set by `make test`); without it the test fails and says so.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

fn api_url() -> String {
    std::env::var("E2E_API_URL").unwrap_or_else(|_| {
        panic!(
            "E2E_API_URL is not set: run this test with `make test`, which starts the local stack"
        )
    })
}

async fn call(method: reqwest::Method, path: &str, user: &str, body: Option<Value>) -> Value {
    let client = reqwest::Client::builder()
        // A new instance may wait for `cargo lambda watch` to start it.
        .timeout(Duration::from_secs(600))
        .build()
        .expect("HTTP client");
    let mut request = client
        .request(method, format!("{}{path}", api_url()))
        .header("x-user-id", user);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    assert!(
        (200..300).contains(&status),
        "{path}: HTTP {status}: {text}"
    );
    serde_json::from_str(&text).expect("JSON")
}

async fn new_session(user: &str) -> String {
    let created = call(reqwest::Method::POST, "/sessions", user, None).await;
    created["session_id"]
        .as_str()
        .expect("session id")
        .to_owned()
}

/// One slow turn on `session`; the interval its stored trace covers.
async fn slow_turn(user: &str, session: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    let turn = call(
        reqwest::Method::POST,
        &format!("/sessions/{session}/messages"),
        user,
        Some(json!({"message": "[[standin:sleep-ms=1500]] Say hello."})),
    )
    .await;
    let trace_id = turn["trace_id"].as_str().expect("a trace id").to_owned();
    let traces = call(
        reqwest::Method::GET,
        &format!("/sessions/{session}/trace"),
        user,
        None,
    )
    .await;
    let trace = traces["turns"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|trace| trace["trace_id"] == trace_id.as_str())
        .unwrap_or_else(|| panic!("the turn's trace is stored: {traces}"));
    let started: DateTime<Utc> = trace["started_at"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .unwrap_or_else(|| panic!("an RFC 3339 start: {trace}"))
        .with_timezone(&Utc);
    let duration = trace["duration_ms"]
        .as_i64()
        .unwrap_or_else(|| panic!("a duration: {trace}"));
    assert!(duration >= 1500, "the stand-in held the turn up: {trace}");
    (started, started + TimeDelta::milliseconds(duration))
}

#[tokio::test]
async fn two_requests_in_flight_at_once_are_served_at_once() {
    let user = format!("concurrency-{}", uuid::Uuid::new_v4().simple());
    let first_session = new_session(&user).await;
    let second_session = new_session(&user).await;
    let (first, second) = tokio::join!(
        slow_turn(&user, &first_session),
        slow_turn(&user, &second_session)
    );
    // Whichever began first, the other began before it ended.
    let overlap = first.0 < second.1 && second.0 < first.1;
    assert!(
        overlap,
        "the two turns were served one after the other, not at once: {first:?} and {second:?} \
         (is cargo lambda watch running with --concurrency 1? see DEV_CONCURRENCY)"
    );
}
