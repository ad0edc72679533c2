//! Long-term memory end to end, on the local stack as `make dev` runs it: turns stored by the
//! session handler reach DynamoDB Local's stream, `dev/stream-relay` invokes
//! `memory-extractor` through `cargo lambda watch`'s Invoke API, the extractor calls the
//! Bedrock stand-in's forced `record_memories` and writes the user's records, and the next
//! session's model call carries them in its system prompt (read from the stand-in's
//! `/__systems` probe), for that user only.
//!
//! Needs `E2E_API_URL`, `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, `AWS_ENDPOINT_URL_DYNAMODB` and
//! `TABLE_NAME` (set by `make test`).

mod common;

use std::time::{Duration, Instant};

use common::api::{call, env, http, new_session, send_message};
use reqwest::Method;
use serde_json::Value;

fn new_user(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

/// A word no other test uses, so the stand-in's probe counts only this test's calls.
fn marker() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    // Letters only: the stand-in's extraction ends a value at punctuation.
    let letters: String = id
        .chars()
        .map(|c| match c.to_digit(16) {
            Some(d) => char::from(b'a' + d as u8),
            None => c,
        })
        .collect();
    format!("colour{}", &letters[..10])
}

/// Model calls seen by the stand-in whose system prompt contains `text`.
async fn systems_with(text: &str) -> u64 {
    let probe: Value = http()
        // The markers are letters only: nothing to percent-encode.
        .get(format!(
            "{}/__systems?contains={text}",
            env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
        ))
        .send()
        .await
        .expect("the stand-in's probe")
        .json()
        .await
        .expect("probe JSON");
    probe["matches"].as_u64().expect("matches")
}

async fn memories(user: &str) -> Vec<Value> {
    let (status, body) = call(Method::GET, "/memory", user, None).await;
    assert_eq!(status, 200, "{body}");
    body["memories"].as_array().cloned().unwrap_or_default()
}

/// Waits (up to 3 minutes: the first batch may start the extractor) until `user` has a
/// fact or preference whose text contains `text` (the session's summary may mention it too).
async fn learned(user: &str, text: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(record) = memories(user).await.into_iter().find(|r| {
            r["kind"] != "summary" && r["text"].as_str().is_some_and(|t| t.contains(text))
        }) {
            return record;
        }
        assert!(
            Instant::now() < deadline,
            "nothing about {text:?} was learned for {user}: is the stream relay running?"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_fact_told_in_one_session_is_in_the_next_sessions_prompt_and_no_one_elses() {
    let (alice, bob) = (new_user("alice"), new_user("bob"));
    let colour = marker();

    let first = new_session(&alice).await;
    let (status, turn) =
        send_message(&alice, &first, &format!("My favourite colour is {colour}.")).await;
    assert_eq!(status, 200, "{turn}");
    let record = learned(&alice, &colour).await;
    assert_eq!(record["id"], "fact.favourite_colour", "{record}");
    assert_eq!(record["kind"], "fact");
    assert_eq!(record["sessions"], serde_json::json!([first]));
    for field in ["created_at", "updated_at", "changed_at"] {
        assert!(record[field].is_string(), "{record}");
    }
    assert!(
        record.get("vector").is_none(),
        "vectors are not shown: {record}"
    );

    let second = new_session(&alice).await;
    let before = systems_with(&colour).await;
    let (status, turn) = send_message(&alice, &second, "What is my favourite colour?").await;
    assert_eq!(status, 200, "{turn}");
    assert_eq!(
        systems_with(&colour).await - before,
        1,
        "the next session's model call remembered the colour"
    );

    // Bob's turns never see it, and Bob has nothing remembered.
    let before = systems_with(&colour).await;
    let bobs = new_session(&bob).await;
    let (status, _) = send_message(&bob, &bobs, "What is my favourite colour?").await;
    assert_eq!(status, 200);
    assert_eq!(systems_with(&colour).await, before);
    assert!(memories(&bob).await.is_empty());

    // Forgotten means gone and never recalled again: Alice erases every record that mentions
    // the colour (the fact, and the summary of the first session).
    let mentioning: Vec<String> = memories(&alice)
        .await
        .iter()
        .filter(|r| r["text"].as_str().unwrap_or_default().contains(&colour))
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(mentioning.contains(&"fact.favourite_colour".to_owned()));
    for id in &mentioning {
        let (status, body) = call(Method::DELETE, &format!("/memory/{id}"), &alice, None).await;
        assert_eq!(status, 204, "{id}: {body}");
    }
    assert!(memories(&alice)
        .await
        .iter()
        .all(|r| !r["text"].as_str().unwrap_or_default().contains(&colour)));
    let (status, body) = call(
        Method::DELETE,
        "/memory/fact.favourite_colour",
        &alice,
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let before = systems_with(&colour).await;
    let third = new_session(&alice).await;
    let (status, _) = send_message(&alice, &third, "What is my favourite colour?").await;
    assert_eq!(status, 200);
    assert_eq!(systems_with(&colour).await, before);
}

#[tokio::test]
async fn deleting_a_session_with_forget_erases_what_it_taught() {
    let user = new_user("carol");
    let city = marker().replace("colour", "town");
    let session = new_session(&user).await;
    let (status, _) = send_message(&user, &session, &format!("I live in {city}.")).await;
    assert_eq!(status, 200);
    learned(&user, &city).await;

    let (status, body) = call(
        Method::DELETE,
        &format!("/sessions/{session}?forget=maybe"),
        &user,
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("forget"), "{body}");
    let (status, _) = call(
        Method::DELETE,
        &format!("/sessions/{session}?forget=true"),
        &user,
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        memories(&user)
            .await
            .iter()
            .all(|r| !r["text"].as_str().unwrap_or_default().contains(&city)),
        "what only that session taught is gone"
    );
    let (status, _) = call(Method::GET, &format!("/sessions/{session}"), &user, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn forgetting_everything_empties_the_memory() {
    let user = new_user("dave");
    let colour = marker();
    let session = new_session(&user).await;
    send_message(
        &user,
        &session,
        &format!("My favourite colour is {colour}."),
    )
    .await;
    learned(&user, &colour).await;
    let (status, body) = call(Method::DELETE, "/memory", &user, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["forgotten"].as_u64().unwrap_or_default() >= 1,
        "{body}"
    );
    assert!(memories(&user).await.is_empty());
    let (status, _) = call(Method::PUT, "/memory", &user, None).await;
    assert_eq!(status, 405);
}
