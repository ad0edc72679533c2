//! Model roles, retries and fallback through the HTTP API: the real handler and Bedrock
//! adapter against the Converse stand-in, which throttles or fails per model id.

mod common;

use std::time::{Duration, Instant, SystemTime};

use bedrock_standin::Options;
use common::{api_with_roles, reply, settings, Api, Reply};
use lambda_http::{http::Request as HttpRequest, Body, Context, Request, RequestExt};
use serde_json::{json, Value};
use session_handler::handler::handle;
use shared::{agent::AgentSettings, config::AuthMode, models::ModelRole};

const SONNET: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const HAIKU: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";
const NOVA: &str = "us.amazon.nova-lite-v1:0";

/// Reasoning is Sonnet falling back to Haiku then Nova; fast is Haiku.
async fn api_with(settings: AgentSettings) -> Api {
    api_with_roles(
        settings,
        AuthMode::InsecureLocal,
        Options::default(),
        &[
            (ModelRole::Reasoning, &[SONNET, HAIKU, NOVA]),
            (ModelRole::Fast, &[HAIKU]),
        ],
    )
    .await
}

async fn api() -> Api {
    api_with(settings()).await
}

/// Sends a message with this body, as an invocation whose deadline is `time_left` away.
async fn send(api: &Api, session: &str, body: Value, time_left: Option<Duration>) -> Reply {
    let mut request: Request = HttpRequest::builder()
        .method("POST")
        .uri(format!("/sessions/{session}/messages"))
        .header("x-user-id", "alice")
        .body(Body::Text(body.to_string()))
        .expect("request builds");
    if let Some(left) = time_left {
        let deadline = SystemTime::now() + left;
        let mut context = Context::default();
        context.deadline = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        request = request.with_lambda_context(context);
    }
    reply(handle(&api.app, request).await)
}

async fn trace(api: &Api, session: &str) -> Value {
    api.call(
        "GET",
        &format!("/sessions/{session}/trace"),
        "alice",
        None,
        &[],
    )
    .await
    .body
}

fn problem_type(reply: &Reply) -> &str {
    reply.body["type"]
        .as_str()
        .and_then(|t| t.rsplit(':').next())
        .unwrap_or_default()
}

fn model_steps(trace: &Value) -> Vec<Value> {
    trace["turns"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|turn| turn["steps"].as_array().cloned().unwrap_or_default())
        .filter(|step| step["kind"] == "model")
        .collect()
}

#[tokio::test]
async fn a_turn_may_ask_for_the_fast_role_and_the_answer_and_trace_say_which_model_answered() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let fast = send(
        &api,
        &session,
        json!({"message": "What is 6*7?", "model": "fast"}),
        None,
    )
    .await;
    assert_eq!(fast.status, 200, "{:?}", fast.body);
    assert_eq!(
        fast.body["models"],
        json!([HAIKU, HAIKU]),
        "two steps, both Haiku"
    );
    let default = send(&api, &session, json!({"message": "hello"}), None).await;
    assert_eq!(default.status, 200, "{:?}", default.body);
    assert_eq!(default.body["models"], json!([SONNET]));
    let steps = model_steps(&trace(&api, &session).await);
    let ids: Vec<&str> = steps
        .iter()
        .map(|s| s["model_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, [HAIKU, HAIKU, SONNET]);
    // Each step is priced at its own model's rate: Haiku 4.5 through `us.` is $1.10 / M input.
    let first = &steps[0];
    let input = first["usage"]["input_tokens"].as_f64().expect("tokens");
    let input_usd = first["cost"]["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["unit"] == "input_tokens"))
        .and_then(|item| item["usd"].as_f64())
        .expect("priced");
    assert!((input_usd - input * 1.10 / 1e6).abs() < 1e-12, "{first}");
}

#[tokio::test]
async fn an_unknown_or_unconfigured_role_is_400_naming_the_field_and_stores_nothing() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let unknown = send(
        &api,
        &session,
        json!({"message": "hi", "model": "turbo"}),
        None,
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("field `model`") && d.contains("'turbo'")),
        "{:?}",
        unknown.body
    );
    let unconfigured = send(
        &api,
        &session,
        json!({"message": "hi", "model": "extraction"}),
        None,
    )
    .await;
    assert_eq!(unconfigured.status, 400);
    assert_eq!(problem_type(&unconfigured), "model-role-not-configured");
    let history = api
        .call("GET", &format!("/sessions/{session}"), "alice", None, &[])
        .await;
    assert_eq!(history.body["turns"], 0);
}

#[tokio::test]
async fn a_throttled_model_is_retried_then_the_chain_falls_back_and_the_trace_shows_it() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let reply = send(
        &api,
        &session,
        json!({"message": format!("[[standin:fail@{SONNET}=ThrottlingException]] hello")}),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["models"], json!([HAIKU]));
    let stats = api.standin.stats();
    assert_eq!(
        stats.calls(SONNET),
        3,
        "three attempts on the throttled model"
    );
    assert_eq!(stats.calls(HAIKU), 1);
    assert_eq!(stats.calls(NOVA), 0);
    let steps = model_steps(&trace(&api, &session).await);
    let failed = steps[0]["failed_attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(failed.len(), 3);
    assert!(failed
        .iter()
        .all(|a| a["model_id"] == SONNET && a["error"] == "throttled"));
}

#[tokio::test]
async fn a_model_that_recovers_is_answered_by_itself_after_a_retry() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let reply = send(
        &api,
        &session,
        json!({"message": format!("[[standin:fail-first=2@{SONNET}=ServiceUnavailableException]] hello")}),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["models"], json!([SONNET]));
    assert_eq!(api.standin.stats().calls(SONNET), 3);
    assert_eq!(api.standin.stats().calls(HAIKU), 0);
}

#[tokio::test]
async fn a_denied_or_missing_model_moves_to_the_next_at_once() {
    for error in ["AccessDeniedException", "ResourceNotFoundException"] {
        let api = api().await;
        let session = api.create_session("alice").await;
        let message = format!(
            "[[standin:fail@{SONNET}={error}]] [[standin:fail@{HAIKU}=TooManyTokens]] hello"
        );
        let reply = send(&api, &session, json!({ "message": message }), None).await;
        assert_eq!(reply.status, 200, "{error}: {:?}", reply.body);
        assert_eq!(reply.body["models"], json!([NOVA]), "{error}");
        let stats = api.standin.stats();
        assert_eq!(stats.calls(SONNET), 1, "{error}: not retried");
        assert_eq!(
            stats.calls(HAIKU),
            3,
            "{error}: Haiku's token throttling is retried"
        );
    }
}

#[tokio::test]
async fn a_request_the_model_refuses_as_invalid_is_not_retried_nor_sent_elsewhere() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let reply = send(
        &api,
        &session,
        json!({"message": "[[standin:fail=ValidationException]] hello"}),
        None,
    )
    .await;
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert_eq!(problem_type(&reply), "model-rejected-request");
    let stats = api.standin.stats();
    assert_eq!(
        (stats.calls(SONNET), stats.calls(HAIKU), stats.calls(NOVA)),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn a_fully_throttled_turn_ends_with_503_and_retry_after_inside_its_time_left() {
    // The invocation has 4 s; the handler keeps its 2 s storage margin, so the turn has 2 s.
    let api = api_with(AgentSettings {
        max_wall_time: Duration::from_secs(60),
        ..settings()
    })
    .await;
    let session = api.create_session("alice").await;
    let started = Instant::now();
    let reply = send(
        &api,
        &session,
        json!({"message": "[[standin:fail=ThrottlingException]] hello"}),
        Some(Duration::from_secs(4)),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(problem_type(&reply), "model-throttled");
    assert!(reply.headers.get("retry-after").is_some());
    assert!(
        elapsed < Duration::from_secs(2),
        "the turn had 2 s (4 s less the 2 s margin) and took {elapsed:?}"
    );
    let stats = api.standin.stats();
    let attempts = stats.calls(SONNET) + stats.calls(HAIKU) + stats.calls(NOVA);
    assert!(
        (3..=9).contains(&attempts),
        "retries and fallbacks, bounded by the time left: {attempts}"
    );
    let history = api
        .call("GET", &format!("/sessions/{session}"), "alice", None, &[])
        .await;
    assert_eq!(history.body["turns"], 0, "nothing stored");
}
