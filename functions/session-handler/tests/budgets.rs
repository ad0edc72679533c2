//! Budgets as a client sees them through the API: the context window, idempotent retries
//! racing their original, a model that fails part-way, every model error's status, pages.

mod common;

use std::time::Duration;

use bedrock_standin::Options;
use common::*;
use serde_json::{json, Value};
use shared::{agent::AgentSettings, config::AuthMode, domain::context::ContextBudget};

fn small_window(tokens: u64) -> AgentSettings {
    AgentSettings {
        context: ContextBudget {
            context_tokens: tokens,
            output_tokens: 512,
            tool_result_tokens: 500,
            step_tool_result_tokens: 1_000,
        },
        ..settings()
    }
}

async fn history(api: &Api, session: &str, query: &str) -> Reply {
    api.call(
        "GET",
        &format!("/sessions/{session}{query}"),
        "alice",
        None,
        &[],
    )
    .await
}

fn problem_type(reply: &Reply) -> String {
    reply.body["type"]
        .as_str()
        .unwrap_or_default()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn retry_after(reply: &Reply) -> Option<u64> {
    reply
        .headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn a_session_longer_than_the_models_window_keeps_answering() {
    // The stand-in refuses, as Bedrock does, any input over 6 000 tokens; each message is a
    // fifth of that, so without a context budget the sixth turn would fail, and every one after.
    let options = Options {
        context_tokens: Some(6_000),
        ..Options::default()
    };
    let api = api_with_settings(small_window(6_000), AuthMode::InsecureLocal, options).await;
    let session = api.create_session("alice").await;
    for turn in 1..=30 {
        let message = format!("turn {turn}: {}", "words and more words ".repeat(240));
        let reply = api.send("alice", &session, &message).await;
        assert_eq!(reply.status, 200, "turn {turn}: {:?}", reply.body);
        assert_eq!(reply.body["stop_reason"], "end_turn", "turn {turn}");
    }
    let reply = history(&api, &session, "?limit=500").await;
    assert_eq!(reply.body["turns"], 30, "every turn is stored whole");
}

#[tokio::test]
async fn a_model_that_says_the_input_is_too_long_gets_a_shorter_one() {
    // The agent believes the window is twice what the stand-in accepts.
    let options = Options {
        context_tokens: Some(6_000),
        ..Options::default()
    };
    let api = api_with_settings(small_window(12_000), AuthMode::InsecureLocal, options).await;
    let session = api.create_session("alice").await;
    for turn in 1..=12 {
        let message = format!("turn {turn}: {}", "words and more words ".repeat(240));
        let reply = api.send("alice", &session, &message).await;
        assert_eq!(reply.status, 200, "turn {turn}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn a_message_that_cannot_fit_the_window_is_422_and_stores_nothing() {
    let api = api_with_settings(
        small_window(4_000),
        AuthMode::InsecureLocal,
        Options::default(),
    )
    .await;
    let session = api.create_session("alice").await;
    let reply = api.send("alice", &session, &"x".repeat(16_000)).await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(problem_type(&reply), "context-too-long");
    assert!(reply.body["detail"]
        .as_str()
        .is_some_and(|detail| detail.contains("shorter message")));
    assert_eq!(
        api.standin.stats().converse(),
        0,
        "the model was not called"
    );
    assert_eq!(history(&api, &session, "").await.body["turns"], 0);
}

#[tokio::test]
async fn a_retry_while_its_original_runs_is_409_with_retry_after_and_runs_no_second_turn() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let path = format!("/sessions/{session}/messages");
    let body = r#"{"message":"[[standin:sleep-ms=1500]] What is 6*7?"}"#;
    let key = [("idempotency-key", "in-flight-1")];
    let original = api.call("POST", &path, "alice", Some(body), &key);
    let retry = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.call("POST", &path, "alice", Some(body), &key).await
    };
    let (original, retry) = tokio::join!(original, retry);
    assert_eq!(original.status, 200, "{:?}", original.body);
    assert_eq!(retry.status, 409, "{:?}", retry.body);
    assert_eq!(problem_type(&retry), "request-in-progress");
    assert!(retry_after(&retry).is_some_and(|s| (1..=5).contains(&s)));
    assert_eq!(
        api.standin.stats().converse(),
        2,
        "one turn of two model calls"
    );
    let again = api.call("POST", &path, "alice", Some(body), &key).await;
    assert_eq!(
        (again.status, &again.body),
        (200, &original.body),
        "replayed"
    );
    assert_eq!(history(&api, &session, "").await.body["turns"], 1);
}

#[tokio::test]
async fn a_failed_turn_gives_its_key_back_so_the_retry_runs_at_once() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let path = format!("/sessions/{session}/messages");
    let key = [("idempotency-key", "fails-first")];
    let failing = r#"{"message":"[[standin:fail=ServiceUnavailableException]] hi"}"#;
    let first = api.call("POST", &path, "alice", Some(failing), &key).await;
    assert_eq!(first.status, 503);
    let again = api.call("POST", &path, "alice", Some(failing), &key).await;
    assert_eq!(
        again.status, 503,
        "not 409: the failed attempt released the key"
    );
}

#[tokio::test]
async fn a_replay_after_delete_finds_nothing() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let path = format!("/sessions/{session}/messages");
    let body = r#"{"message":"hello"}"#;
    let key = [("idempotency-key", "deleted-1")];
    assert_eq!(
        api.call("POST", &path, "alice", Some(body), &key)
            .await
            .status,
        200
    );
    let deleted = api
        .call(
            "DELETE",
            &format!("/sessions/{session}"),
            "alice",
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, 204);
    let replay = api.call("POST", &path, "alice", Some(body), &key).await;
    assert_eq!(replay.status, 404, "{:?}", replay.body);
}

#[tokio::test]
async fn a_model_failure_after_a_tool_ran_stores_the_steps_and_their_cost() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let reply = api
        .send(
            "alice",
            &session,
            "[[standin:fail-after-tools=ServiceUnavailableException]] What is 6*7?",
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["stop_reason"], "model_error");
    assert_eq!(reply.body["error"]["kind"], "unavailable");
    assert_eq!(reply.body["steps"], 1);
    let input = reply.body["usage"]["input_tokens"].as_u64().unwrap_or(0);
    assert!(input > 0, "the first call's tokens are counted");
    assert!(reply.body["cost"]["total_usd"].as_f64().unwrap_or(0.0) > 0.0);

    let stored = history(&api, &session, "").await.body;
    assert_eq!(stored["turns"], 1);
    assert_eq!(
        stored["usage"]["input_tokens"], input,
        "session totals include it"
    );
    let messages = stored["messages"].as_array().cloned().unwrap_or_default();
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(
        roles,
        ["user", "assistant", "user", "assistant"],
        "tool use, its result, a closing note"
    );
    let trace = api.trace("alice", &session).await;
    assert_eq!(trace.body["turns"][0]["stop_reason"], "model_error");
    assert_eq!(trace.body["turns"][0]["usage"]["input_tokens"], input);
}

#[tokio::test]
async fn every_model_error_kind_has_its_status_problem_type_and_retry_after() {
    let api = api().await;
    let table: &[(&str, u16, &str, Option<u64>)] = &[
        ("ThrottlingException", 503, "model-throttled", Some(5)),
        (
            "ServiceQuotaExceededException",
            503,
            "model-throttled",
            Some(5),
        ),
        (
            "ServiceUnavailableException",
            503,
            "model-unavailable",
            Some(5),
        ),
        ("ModelNotReadyException", 503, "model-unavailable", Some(5)),
        ("InternalServerException", 503, "model-unavailable", Some(5)),
        ("ModelErrorException", 503, "model-unavailable", Some(5)),
        ("ModelTimeoutException", 504, "model-timeout", Some(2)),
        ("ValidationException", 502, "model-rejected-request", None),
        ("AccessDeniedException", 502, "model-access-denied", None),
        (
            "ResourceNotFoundException",
            502,
            "model-access-denied",
            None,
        ),
    ];
    for &(name, status, kind, retry) in table {
        let session = api.create_session("alice").await;
        let reply = api
            .send("alice", &session, &format!("[[standin:fail={name}]] hi"))
            .await;
        assert_eq!(reply.status, status, "{name}: {:?}", reply.body);
        assert_eq!(problem_type(&reply), kind, "{name}");
        assert_eq!(retry_after(&reply), retry, "{name}");
        assert_eq!(reply.content_type, "application/problem+json");
        assert_eq!(
            history(&api, &session, "").await.body["turns"],
            0,
            "{name}: nothing stored"
        );
    }
}

#[tokio::test]
async fn history_and_traces_come_in_pages_with_an_opaque_cursor() {
    let api = api().await;
    let session = api.create_session("alice").await;
    for turn in 1..=3 {
        assert_eq!(
            api.send("alice", &session, &format!("What is {turn}+1?"))
                .await
                .status,
            200
        );
    }
    let mut seqs = Vec::new();
    let mut query = "?limit=5".to_owned();
    loop {
        let page = history(&api, &session, &query).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let messages = page.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(messages.len() <= 5);
        seqs.extend(messages.iter().filter_map(|m| m["seq"].as_u64()));
        match &page.body["next_cursor"] {
            Value::String(cursor) => query = format!("?limit=5&cursor={cursor}"),
            _ => break,
        }
    }
    assert_eq!(
        seqs,
        (1..=12).collect::<Vec<u64>>(),
        "three tool turns, each message once"
    );

    let first = api
        .call(
            "GET",
            &format!("/sessions/{session}/trace?limit=2"),
            "alice",
            None,
            &[],
        )
        .await;
    assert_eq!(first.body["turns"].as_array().map(Vec::len), Some(2));
    let cursor = first.body["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rest = api
        .call(
            "GET",
            &format!("/sessions/{session}/trace?limit=2&cursor={cursor}"),
            "alice",
            None,
            &[],
        )
        .await;
    assert_eq!(rest.body["turns"][0]["turn"], 3);
    assert_eq!(rest.body["next_cursor"], json!(null));

    for bad in ["?limit=0", "?limit=501", "?limit=ten", "?cursor=nonsense"] {
        let reply = history(&api, &session, bad).await;
        assert_eq!(reply.status, 400, "{bad}: {:?}", reply.body);
    }
    // A trace cursor is not a history cursor.
    let reply = history(&api, &session, &format!("?cursor={cursor}")).await;
    assert_eq!(reply.status, 400);
}
