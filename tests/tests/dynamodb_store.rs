//! The DynamoDB session store against DynamoDB Local: the whole conformance suite, the item
//! layout, and the requests on the wire (an interceptor counts them per operation).
//!
//! Needs `AWS_ENDPOINT_URL_DYNAMODB` (set by `make test`, which starts DynamoDB Local); without
//! it every test fails and says so. The tests create their own uniquely named table.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use common::*;
use shared::adapters::dynamodb::DynamoSessionStore;
use shared::domain::message::Message;
use shared::ports::{SessionStore, StoreError};
use shared::store_conformance::{chat_turn, claimed, commit, new_id, tool_turn};

shared::session_store_conformance_tests!(harness().await.store);

/// A session with `turns` chat turns; returns (user, session, now, version).
async fn session_with_turns(h: &Harness, turns: u64) -> (String, String, DateTime<Utc>, u64) {
    let (user, session, now) = (new_id("user"), new_id("session"), Utc::now());
    h.store.create_session(&user, &session, now).await.unwrap();
    for turn in 1..=turns {
        let expected = (turn - 1) * 2;
        let turn_commit = commit(expected, turn, chat_turn(&format!("q{turn}")), now);
        h.store
            .append_turn(&user, &session, &turn_commit)
            .await
            .unwrap();
    }
    (user, session, now, turns * 2)
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

#[tokio::test]
async fn load_window_is_exactly_one_query() {
    let h = harness().await;
    let (user, session, _, _) = session_with_turns(&h, 3).await;
    h.requests.take();
    let window = h.store.load_window(&user, &session, 3).await.unwrap();
    assert_eq!(h.requests.take(), counts(&[("Query", 1)]));
    assert_eq!((window.version, window.messages.len()), (6, 3));
    let missing = h.store.load_window(&user, "missing", 3).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    assert_eq!(h.requests.take(), counts(&[("Query", 1)]));
}

#[tokio::test]
async fn append_turn_is_exactly_one_transact_write_items() {
    let h = harness().await;
    let (user, session, now, version) = session_with_turns(&h, 1).await;
    h.requests.take();
    let turn = commit(version, 2, tool_turn("q2"), now);
    h.store.append_turn(&user, &session, &turn).await.unwrap();
    assert_eq!(h.requests.take(), counts(&[("TransactWriteItems", 1)]));
    let stale = h.store.append_turn(&user, &session, &turn).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { expected: 2 })),
        "{stale:?}"
    );
    assert_eq!(h.requests.take(), counts(&[("TransactWriteItems", 1)]));
}

#[tokio::test]
async fn items_follow_the_data_model_with_ttls() {
    let h = harness().await;
    let (user, session) = (new_id("user"), new_id("session"));
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let expires = 1_800_000_000 + i64::from(TTL_DAYS) * 86_400;
    h.store.create_session(&user, &session, now).await.unwrap();
    let mut turn = commit(0, 1, tool_turn("q1"), now);
    turn.idempotency = Some(claimed(&h.store, &user, &session, "key-1").await);
    h.store.append_turn(&user, &session, &turn).await.unwrap();

    let headers = partition(&h, &format!("USER#{user}")).await;
    assert_eq!(headers.len(), 1);
    let header = &headers[0];
    assert_eq!(
        header["SK"],
        AttributeValue::S(format!("SESSION#{session}"))
    );
    assert_eq!((&header["version"], &header["turns"]), (&n(4), &n(1)));
    assert_eq!(header["expires_at"], n(expires));
    assert_eq!(header["title"], AttributeValue::S("title 1".into()));

    let items = partition(&h, &format!("USER#{user}#SESSION#{session}")).await;
    let sort_keys: Vec<&str> = items
        .iter()
        .map(|i| i["SK"].as_s().unwrap().as_str())
        .collect();
    assert_eq!(
        sort_keys,
        [
            "IDEMPOTENCY#key-1",
            "MSG#0000000001",
            "MSG#0000000002",
            "MSG#0000000003",
            "MSG#0000000004",
            "SESSION",
            "TRACE#0000000001"
        ]
    );
    let (records, items): (Vec<_>, Vec<_>) = items.into_iter().partition(|item| {
        item["SK"]
            .as_s()
            .is_ok_and(|sk| sk.starts_with("IDEMPOTENCY#"))
    });
    assert!(items.iter().all(|item| item["expires_at"] == n(expires)));
    let marker = &items[4];
    assert_eq!(
        (&marker["version"], &marker["turn"]),
        (&n(4), &n(1)),
        "the marker carries the version"
    );
    let first = &items[0];
    assert_eq!((&first["seq"], &first["turn"]), (&n(1), &n(1)));
    assert_eq!(first["role"], AttributeValue::S("user".into()));
    let content: Vec<shared::domain::message::ContentBlock> =
        serde_json::from_str(first["content"].as_s().unwrap()).unwrap();
    assert_eq!(
        Message {
            role: turn.messages[0].role,
            content
        },
        turn.messages[0]
    );
    let trace: serde_json::Value = serde_json::from_str(items[5]["trace"].as_s().unwrap()).unwrap();
    assert_eq!(trace["trace_id"], turn.trace.trace_id.as_str());

    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["state"], AttributeValue::S("completed".into()));
    let record = turn.idempotency.as_ref().map(|c| c.record.expires_at);
    assert_eq!(records[0]["expires_at"], n(record.unwrap()));

    let ttl = h
        .client
        .describe_time_to_live()
        .table_name(&h.table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}

#[tokio::test]
async fn a_turn_on_a_session_whose_header_is_gone_is_not_found_not_conflict() {
    let h = harness().await;
    let (user, session, now, version) = session_with_turns(&h, 1).await;
    h.client
        .delete_item()
        .table_name(&h.table)
        .key("PK", AttributeValue::S(format!("USER#{user}")))
        .key("SK", AttributeValue::S(format!("SESSION#{session}")))
        .send()
        .await
        .unwrap();
    let turn = commit(version, 2, chat_turn("q2"), now);
    let result = h.store.append_turn(&user, &session, &turn).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    let items = partition(&h, &format!("USER#{user}#SESSION#{session}")).await;
    assert_eq!(
        items.len(),
        4,
        "2 messages, the marker and a trace: nothing added"
    );
}

#[tokio::test]
async fn deleting_a_long_session_removes_every_item_in_batches_of_25() {
    let h = harness().await;
    let (user, session, now) = (new_id("user"), new_id("session"), Utc::now());
    h.store.create_session(&user, &session, now).await.unwrap();
    let messages: Vec<Message> = (0..30).flat_map(|i| chat_turn(&format!("q{i}"))).collect();
    h.store
        .append_turn(&user, &session, &commit(0, 1, messages, now))
        .await
        .unwrap();
    let pk = format!("USER#{user}#SESSION#{session}");
    assert_eq!(partition(&h, &pk).await.len(), 62);
    h.requests.take();
    h.store.delete_session(&user, &session).await.unwrap();
    let sent = h.requests.take();
    assert_eq!(sent.get("DeleteItem"), Some(&1), "{sent:?}");
    assert!(
        sent.get("BatchWriteItem") >= Some(&4),
        "61 items in 25s, then the marker: {sent:?}"
    );
    assert!(partition(&h, &pk).await.is_empty());
    assert!(partition(&h, &format!("USER#{user}")).await.is_empty());
}

#[tokio::test]
async fn a_delete_interrupted_after_the_header_is_finished_by_the_next_one() {
    let h = harness().await;
    let (user, session, now, _) = session_with_turns(&h, 2).await;
    h.client
        .delete_item()
        .table_name(&h.table)
        .key("PK", AttributeValue::S(format!("USER#{user}")))
        .key("SK", AttributeValue::S(format!("SESSION#{session}")))
        .send()
        .await
        .unwrap();
    let taken = h.store.create_session(&user, &session, now).await;
    assert!(
        matches!(taken, Err(StoreError::AlreadyExists)),
        "marker keeps the id: {taken:?}"
    );
    let again = h.store.delete_session(&user, &session).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
    assert!(partition(&h, &format!("USER#{user}#SESSION#{session}"))
        .await
        .is_empty());
    h.store
        .create_session(&user, &session, now + Duration::seconds(1))
        .await
        .unwrap();
    let window = h.store.load_window(&user, &session, 10).await.unwrap();
    assert_eq!((window.version, window.messages.len()), (0, 0));
}

#[tokio::test]
async fn a_missing_table_is_rejected_not_retryable_naming_the_operation_without_contents() {
    let h = harness().await;
    let missing = DynamoSessionStore::new(h.client.clone(), "no-such-table".into(), TTL_DAYS);
    let (user, session) = (new_id("secret-user"), new_id("secret-session"));
    let result = missing.load_window(&user, &session, 5).await;
    let Err(StoreError::Rejected(message)) = result else {
        panic!("expected Rejected (a retry cannot create the table), got {result:?}");
    };
    assert!(message.starts_with("load_window: "), "{message}");
    assert!(!message.contains("secret"), "{message}");
    let turn = commit(0, 1, vec![Message::user_text("secret text")], Utc::now());
    let result = missing.append_turn(&user, &session, &turn).await;
    let Err(StoreError::Rejected(message)) = result else {
        panic!("expected Rejected (a retry cannot create the table), got {result:?}");
    };
    assert!(
        message.starts_with("append_turn: ") && !message.contains("secret"),
        "{message}"
    );
}
