//! Builders of ids, turns, commits and records, and the assertions the checks share.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::domain::message::{ContentBlock, Message, Role, ToolResultContent, ToolStatus};
use crate::domain::{model::Usage, trace::TurnTrace, turn::StopReason};
use crate::ports::{
    ClaimOutcome, IdempotencyClaim, IdempotencyCompletion, IdempotencyRecord, PageRequest,
    SessionHeader, SessionStore, StoreError, StoredMessage, TurnCommit,
};

/// A fresh random id with a readable prefix.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4())
}

/// A turn's trace.
pub fn trace(turn: u64) -> TurnTrace {
    TurnTrace {
        turn,
        trace_id: new_id("trace"),
        started_at: "2025-01-01T00:00:00Z".into(),
        duration_ms: 10 * turn,
        stop_reason: StopReason::EndTurn,
        usage: Usage::default(),
        cost: None,
        groundedness: None,
        steps: Vec::new(),
        omitted_tool_steps: 0,
    }
}

/// A turn's commit: usage (10 in, 5 out, 7 read from and 3 written to the cache), cost 0.1, title `title <turn>`, no idempotency record.
pub fn commit(expected: u64, turn: u64, messages: Vec<Message>, now: DateTime<Utc>) -> TurnCommit {
    TurnCommit {
        expected_version: expected,
        turn,
        messages,
        usage: Usage {
            cache_read_tokens: 7,
            cache_write_tokens: 3,
            input_tokens: 10,
            output_tokens: 5,
        },
        cost_usd: 0.1,
        count_usage: false,
        trace: trace(turn),
        title: Some(format!("title {turn}")),
        idempotency: None,
        now,
    }
}

/// A plain turn: question and answer.
pub fn chat_turn(question: &str) -> Vec<Message> {
    vec![
        Message::user_text(question),
        Message::assistant_text(format!("answer to {question}")),
    ]
}

/// A turn with one tool call: question, tool use, tool result, answer.
pub fn tool_turn(question: &str) -> Vec<Message> {
    let id = new_id("tool");
    vec![
        Message::user_text(question),
        Message {
            role: Role::Assistant,
            content: vec![ContentBlock::ToolUse {
                tool_use_id: id.clone(),
                name: "clock".into(),
                input: json!({ "tz": "UTC" }),
            }],
        },
        Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id: id,
                status: ToolStatus::Success,
                content: vec![ToolResultContent::Json {
                    json: json!({ "now": "12:00" }),
                }],
            }],
        },
        Message::assistant_text(format!("answer to {question}")),
    ]
}

/// Creates a session for a new user; returns (user, session, creation time).
pub(super) async fn fresh(store: &dyn SessionStore) -> (String, String, DateTime<Utc>) {
    let (user, session, now) = (new_id("user"), new_id("session"), Utc::now());
    store.create_session(&user, &session, now).await.unwrap();
    (user, session, now)
}

/// The messages stored in a session, without positions.
pub(super) async fn stored(store: &dyn SessionStore, user: &str, session: &str) -> Vec<Message> {
    let (_, messages) = session_of(store, user, session).await;
    messages.into_iter().map(|stored| stored.message).collect()
}

/// Asserts `result` is `NotFound`.
pub(super) fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "{what}: {result:?}"
    );
}

/// Reads every message: a page as large as any test session.
pub const ALL: PageRequest = PageRequest {
    after: None,
    limit: 100_000,
};

/// A session's header and every message.
pub async fn session_of(
    store: &dyn SessionStore,
    user: &str,
    session: &str,
) -> (SessionHeader, Vec<StoredMessage>) {
    let (header, page) = store.get_session(user, session, ALL).await.unwrap();
    assert_eq!(page.next, None, "one page holds everything");
    (header, page.items)
}

/// Every trace of a session.
pub async fn traces_of(store: &dyn SessionStore, user: &str, session: &str) -> Vec<TurnTrace> {
    let page = store.get_traces(user, session, ALL).await.unwrap();
    assert_eq!(page.next, None, "one page holds everything");
    page.items
}

/// A claim on `key`, lapsing in a minute, with a fresh token.
pub fn claim(key: &str) -> IdempotencyClaim {
    let now = Utc::now();
    IdempotencyClaim {
        key: key.to_owned(),
        request_hash: format!("hash-of-{key}"),
        token: new_id("token"),
        lease_until: now + Duration::seconds(60),
        now,
    }
}

/// A completed idempotency record for `session`, kept for a day.
pub fn record(key: &str, session: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.to_owned(),
        request_hash: format!("hash-of-{key}"),
        session_id: session.to_owned(),
        response: json!({ "reply": "cached", "n": [1, 2, 3] }),
        expires_at: (Utc::now() + Duration::days(1)).timestamp(),
    }
}

/// Claims `key` (asserting it was free) and returns what a turn holding it stores.
pub async fn claimed(
    store: &dyn SessionStore,
    user: &str,
    session: &str,
    key: &str,
) -> IdempotencyCompletion {
    let claim = claim(key);
    let outcome = store
        .claim_idempotency(user, session, &claim)
        .await
        .unwrap();
    assert_eq!(outcome, ClaimOutcome::Claimed, "claim of {key}");
    IdempotencyCompletion {
        record: record(key, session),
        token: claim.token,
    }
}

/// Every read of the session is `NotFound` and it is not listed.
pub(super) async fn assert_gone(store: &dyn SessionStore, user: &str, session: &str) {
    assert_not_found(store.load_window(user, session, 10).await, "load_window");
    assert_not_found(store.get_session(user, session, ALL).await, "get_session");
    assert_not_found(store.get_traces(user, session, ALL).await, "get_traces");
    let listed = store.list_sessions(user).await.unwrap();
    assert!(
        listed.iter().all(|header| header.session_id != session),
        "still listed"
    );
}

/// The id can be created again and holds nothing of the deleted session.
pub(super) async fn assert_recreated_empty(store: &dyn SessionStore, user: &str, session: &str) {
    let header = store
        .create_session(user, session, Utc::now())
        .await
        .unwrap();
    assert_eq!((header.version, header.turns), (0, 0));
    let window = store.load_window(user, session, 100).await.unwrap();
    assert_eq!(
        (window.version, window.messages.len()),
        (0, 0),
        "leftover messages"
    );
    assert!(session_of(store, user, session).await.1.is_empty());
    assert!(
        traces_of(store, user, session).await.is_empty(),
        "leftover traces"
    );
}
