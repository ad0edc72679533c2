//! The HTTP API as a client sees it: the real handler, the real Bedrock adapter over loopback
//! to the Converse stand-in, the built-in tools, and the in-memory session store.

mod common;

use common::*;
use serde_json::json;
use shared::config::AuthMode;

#[tokio::test]
async fn a_tool_using_turn_answers_and_is_stored_with_its_trace() {
    let api = api().await;
    let session = api.create_session("alice").await;

    let reply = api.send("alice", &session, "What is 12*(3+4)?").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(
        reply.body["answer"]
            .as_str()
            .unwrap_or_default()
            .contains("84"),
        "{:?}",
        reply.body
    );
    assert_eq!(reply.body["stop_reason"], "end_turn");
    assert_eq!(reply.body["steps"], 2);
    assert!(reply.body["usage"]["input_tokens"].as_u64().unwrap_or(0) > 0);
    assert!(reply.body["cost"]["total_usd"].as_f64().unwrap_or(0.0) > 0.0);

    let history = api
        .call("GET", &format!("/sessions/{session}"), "alice", None, &[])
        .await;
    assert_eq!(history.status, 200);
    let messages = history.body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shape: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_owned(),
                m["content"][0]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("user", "text"),
            ("assistant", "text"),
            ("user", "tool_result"),
            ("assistant", "text")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(messages[1]["content"][1]["name"], "calculator");
    assert_eq!(history.body["title"], "What is 12*(3+4)?");

    let trace = api.trace("alice", &session).await;
    assert_eq!(trace.status, 200);
    let kinds: Vec<&str> = trace.body["turns"][0]["steps"]
        .as_array()
        .map(|steps| steps.iter().filter_map(|s| s["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["model", "tool", "model"]);

    let listed = api.call("GET", "/sessions", "alice", None, &[]).await;
    assert_eq!(listed.body["sessions"][0]["session_id"], session.as_str());
    assert_eq!(listed.body["sessions"][0]["turns"], 1);
}

#[tokio::test]
async fn tools_asked_for_in_one_step_all_run_and_the_next_turn_sees_the_history() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let reply = api
        .send(
            "alice",
            &session,
            "What is 2+2, and what time is it in Europe/Paris?",
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let answer = reply.body["answer"].as_str().unwrap_or_default();
    assert!(
        answer.contains("calculator") && answer.contains("current_time"),
        "{answer}"
    );
    assert!(answer.contains("Europe/Paris"), "{answer}");

    let second = api.send("alice", &session, "Thanks, and 6*7?").await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(second.body["turn"], 2);
    assert!(second.body["answer"]
        .as_str()
        .unwrap_or_default()
        .contains("42"));
}

#[tokio::test]
async fn the_step_cap_ends_the_turn_with_its_own_stop_reason_and_the_session_stays_usable() {
    let api = api_with(3, AuthMode::InsecureLocal).await;
    let session = api.create_session("alice").await;
    let reply = api
        .send("alice", &session, "[[standin:always-tool]] 1+1")
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["stop_reason"], "max_steps");
    assert_eq!(reply.body["steps"], 3);
    assert!(reply.body["answer"]
        .as_str()
        .unwrap_or_default()
        .contains("limit of 3 steps"));
    // The stand-in validates the conversation like Bedrock: a broken history would be a 502.
    let next = api.send("alice", &session, "hello again").await;
    assert_eq!(next.status, 200, "{:?}", next.body);
}

#[tokio::test]
async fn another_users_session_answers_404_as_if_it_did_not_exist() {
    let api = api().await;
    let session = api.create_session("alice").await;
    for (method, path, body) in [
        ("GET", format!("/sessions/{session}"), None),
        ("GET", format!("/sessions/{session}/trace"), None),
        ("DELETE", format!("/sessions/{session}"), None),
        (
            "POST",
            format!("/sessions/{session}/messages"),
            Some(r#"{"message":"hi"}"#),
        ),
    ] {
        let reply = api.call(method, &path, "mallory", body, &[]).await;
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(reply.content_type, "application/problem+json");
    }
    let listed = api.call("GET", "/sessions", "mallory", None, &[]).await;
    assert_eq!(listed.body["sessions"], json!([]));
    // Still there for its owner.
    assert_eq!(
        api.call("GET", &format!("/sessions/{session}"), "alice", None, &[])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let path = format!("/sessions/{session}/messages");
    let cases: [(&str, &str, u16, &str); 5] = [
        ("POST", "{not json", 400, "not valid JSON"),
        ("POST", r#"{"text":"hi"}"#, 400, "unknown field `text`"),
        ("POST", "{}", 400, "field `message` is required"),
        (
            "POST",
            r#"{"message": ["hi"]}"#,
            400,
            "field `message` must be a string",
        ),
        ("POST", "", 400, "empty"),
    ];
    for (method, body, status, detail) in cases {
        let reply = api.call(method, &path, "alice", Some(body), &[]).await;
        assert_eq!(reply.status, status, "{body}");
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(detail),
            "{:?}",
            reply.body
        );
    }
    let oversized = json!({ "message": "x".repeat(16 * 1024 + 1) }).to_string();
    assert_eq!(
        api.call("POST", &path, "alice", Some(&oversized), &[])
            .await
            .status,
        413
    );
    let invalid_id = api.send("alice", "not-a-uuid", "hi").await;
    assert_eq!(invalid_id.status, 400);
    let unknown = api
        .send("alice", "0b9e6a4e-6a57-4c64-9f3b-2f1f0b3c2a10", "hi")
        .await;
    assert_eq!(unknown.status, 404);

    assert_eq!(
        api.standin.stats().converse(),
        0,
        "no bad request reached the model"
    );
    let history = api
        .call("GET", &format!("/sessions/{session}"), "alice", None, &[])
        .await;
    assert_eq!(history.body["messages"], json!([]));
}

#[tokio::test]
async fn a_retried_request_with_the_same_idempotency_key_replays_the_answer() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let path = format!("/sessions/{session}/messages");
    let body = r#"{"message":"What is 6*7?"}"#;
    let key = [("idempotency-key", "retry-1")];
    let first = api.call("POST", &path, "alice", Some(body), &key).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let calls = api.standin.stats().converse();
    let again = api.call("POST", &path, "alice", Some(body), &key).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(
        api.standin.stats().converse(),
        calls,
        "the retry did not call the model"
    );
    let history = api
        .call("GET", &format!("/sessions/{session}"), "alice", None, &[])
        .await;
    assert_eq!(history.body["turns"], 1, "the retry stored nothing");

    let other_body = api
        .call(
            "POST",
            &path,
            "alice",
            Some(r#"{"message":"What is 1+1?"}"#),
            &key,
        )
        .await;
    assert_eq!(other_body.status, 422);
}

#[tokio::test]
async fn a_throttled_model_is_a_503_with_retry_after_and_stores_nothing() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let reply = api
        .send("alice", &session, "[[standin:fail-throttle]] hi")
        .await;
    assert_eq!(reply.status, 503);
    let history = api
        .call("GET", &format!("/sessions/{session}"), "alice", None, &[])
        .await;
    assert_eq!(history.body["turns"], 0);
}

#[tokio::test]
async fn a_deleted_session_is_gone() {
    let api = api().await;
    let session = api.create_session("alice").await;
    assert_eq!(api.send("alice", &session, "hello").await.status, 200);
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/sessions/{session}"),
            "alice",
            None,
            &[]
        )
        .await
        .status,
        204
    );
    assert_eq!(
        api.call("GET", &format!("/sessions/{session}"), "alice", None, &[])
            .await
            .status,
        404
    );
    assert_eq!(api.send("alice", &session, "hello").await.status, 404);
}

#[tokio::test]
async fn tools_are_listed_with_their_schemas() {
    let api = api().await;
    let reply = api.call("GET", "/tools", "alice", None, &[]).await;
    assert_eq!(reply.status, 200);
    let names: Vec<&str> = reply.body["tools"]
        .as_array()
        .map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["calculator", "current_time"]);
    assert_eq!(
        reply.body["tools"][0]["input_schema"]["required"],
        json!(["expression"])
    );
}

#[tokio::test]
async fn routes_and_methods_that_do_not_exist_say_so() {
    let api = api().await;
    assert_eq!(
        api.call("GET", "/nowhere", "alice", None, &[]).await.status,
        404
    );
    let reply = api.call("PUT", "/sessions", "alice", None, &[]).await;
    assert_eq!(reply.status, 405);
}

#[tokio::test]
async fn without_a_jwt_the_deployed_mode_refuses_the_caller_even_with_the_local_header() {
    let api = api_with(8, AuthMode::Jwt).await;
    let reply = api.call("POST", "/sessions", "alice", None, &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.content_type, "application/problem+json");
}
