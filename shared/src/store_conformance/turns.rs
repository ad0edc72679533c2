//! Checks of turns: creating, appending, loading windows, version conflicts, the size cap.

use chrono::{Duration, Utc};

use super::fixtures::{
    chat_turn, claimed, commit, fresh, new_id, session_of, stored, tool_turn, traces_of,
};
use crate::domain::message::Message;
use crate::domain::truncate::{content_size, MAX_MESSAGE_CONTENT_BYTES};
use crate::ports::{PageRequest, SessionStore, StoreError};

/// Create, then load: an empty window at version 0, and an empty header.
pub async fn create_then_load_gives_an_empty_window(store: &dyn SessionStore) {
    let (user, session, now) = (new_id("user"), new_id("session"), Utc::now());
    let header = store.create_session(&user, &session, now).await.unwrap();
    assert_eq!(
        (header.version, header.turns, header.title.as_ref()),
        (0, 0, None)
    );
    assert_eq!((header.created_at, header.updated_at), (now, now));
    assert!(
        header.expires_at > now.timestamp(),
        "expires_at in the future"
    );
    let window = store.load_window(&user, &session, 10).await.unwrap();
    assert_eq!((window.version, window.last_turn), (0, 0));
    assert!(window.messages.is_empty());
    let (loaded, messages) = session_of(store, &user, &session).await;
    assert_eq!(loaded, header);
    assert!(messages.is_empty());
    assert!(traces_of(store, &user, &session).await.is_empty());
}

/// Two turns appended, then read back: messages in order with seq and turn, totals summed,
/// the first title kept, traces oldest first.
pub async fn appended_turns_are_loaded_back_in_order_with_totals(store: &dyn SessionStore) {
    let (user, session, created) = fresh(store).await;
    let first = commit(0, 1, tool_turn("q1"), created + Duration::seconds(1));
    store.append_turn(&user, &session, &first).await.unwrap();
    let (header, _) = session_of(store, &user, &session).await;
    assert_eq!((header.version, header.turns), (4, 1));
    assert_eq!(header.title.as_deref(), Some("title 1"));
    assert_eq!((header.created_at, header.updated_at), (created, first.now));
    let second = commit(4, 2, chat_turn("q2"), created + Duration::seconds(2));
    store.append_turn(&user, &session, &second).await.unwrap();
    let (header, _) = session_of(store, &user, &session).await;
    assert_eq!((header.version, header.turns), (6, 2));
    assert_eq!(header.title.as_deref(), Some("title 1"), "first title kept");
    assert_eq!(
        (header.usage.input_tokens, header.usage.output_tokens),
        (20, 10)
    );
    assert_eq!(
        (
            header.usage.cache_read_tokens,
            header.usage.cache_write_tokens
        ),
        (14, 6),
        "cache tokens add up too"
    );
    assert!(
        (header.cost_usd - 0.2).abs() < 1e-9,
        "cost {}",
        header.cost_usd
    );
    assert_eq!(header.updated_at, second.now);
    assert!(header.expires_at > second.now.timestamp());

    let window = store.load_window(&user, &session, 50).await.unwrap();
    assert_eq!((window.version, window.last_turn), (6, 2));
    let seqs: Vec<(u64, u64)> = window.messages.iter().map(|m| (m.seq, m.turn)).collect();
    assert_eq!(seqs, [(1, 1), (2, 1), (3, 1), (4, 1), (5, 2), (6, 2)]);
    assert_eq!(window.messages[4].created_at, second.now);
    let all: Vec<Message> = [first.messages.clone(), second.messages.clone()].concat();
    assert_eq!(stored(store, &user, &session).await, all);
    let (listed, _) = session_of(store, &user, &session).await;
    assert_eq!(listed, header);
    let traces = traces_of(store, &user, &session).await;
    assert_eq!(traces, [first.trace, second.trace]);
}

/// Windows hold the newest messages, at most the requested count (which of them the model
/// sees is the domain's choice), and the version and last turn of the whole session.
pub async fn window_is_the_newest_messages_and_the_sessions_version(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    let turns = [tool_turn("q1"), chat_turn("q2"), tool_turn("q3")];
    let mut version = 0;
    for (turn, messages) in (1..).zip(turns) {
        let count = messages.len() as u64;
        store
            .append_turn(&user, &session, &commit(version, turn, messages, now))
            .await
            .unwrap();
        version += count;
    }
    for max in 1..=12 {
        let window = store.load_window(&user, &session, max).await.unwrap();
        assert_eq!((window.version, window.last_turn), (10, 3), "max {max}");
        let seqs: Vec<u64> = window.messages.iter().map(|m| m.seq).collect();
        let expected: Vec<u64> = (10u64.saturating_sub(max as u64) + 1..=10).collect();
        assert_eq!(seqs, expected, "max {max}");
    }
}

/// Pages of messages and traces cover everything once, in order, and say where to go on.
pub async fn pages_cover_every_message_and_trace_once(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    let mut version = 0;
    for turn in 1..=5 {
        let messages = tool_turn(&format!("q{turn}"));
        let count = messages.len() as u64;
        store
            .append_turn(&user, &session, &commit(version, turn, messages, now))
            .await
            .unwrap();
        version += count;
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (_, page) = store
            .get_session(&user, &session, PageRequest { after, limit: 3 })
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|m| m.seq));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, (1..=20).collect::<Vec<u64>>());
    let mut turns = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .get_traces(&user, &session, PageRequest { after, limit: 2 })
            .await
            .unwrap();
        turns.extend(page.items.iter().map(|t| t.turn));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(turns, [1, 2, 3, 4, 5]);
}

/// A turn written against an old version is refused with `Conflict` and leaves no trace:
/// no message, no trace, no totals, no idempotency record.
pub async fn stale_expected_version_conflicts_and_stores_nothing(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    store
        .append_turn(&user, &session, &commit(0, 1, chat_turn("q1"), now))
        .await
        .unwrap();
    let (header, _) = session_of(store, &user, &session).await;
    for expected in [0, 1, 99] {
        let mut stale = commit(expected, 2, tool_turn("late"), now + Duration::seconds(5));
        stale.idempotency =
            Some(claimed(store, &user, &session, &format!("stale-{expected}")).await);
        let result = store.append_turn(&user, &session, &stale).await;
        assert!(
            matches!(result, Err(StoreError::Conflict { expected: e }) if e == expected),
            "expected {expected}: {result:?}"
        );
    }
    let (after, messages) = session_of(store, &user, &session).await;
    assert_eq!(after, header, "header untouched");
    assert_eq!(messages.len(), 2);
    assert_eq!(traces_of(store, &user, &session).await.len(), 1);
    for expected in [0, 1, 99] {
        let key = format!("stale-{expected}");
        assert_eq!(
            store.get_idempotency(&user, &session, &key).await.unwrap(),
            None
        );
    }
}

/// Two turns racing from the same version: exactly one is stored, whole and in order; the
/// other gets `Conflict`.
pub async fn concurrent_appends_have_exactly_one_winner(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    let left = commit(0, 1, chat_turn("left"), now);
    let right = commit(0, 1, tool_turn("right"), now);
    let (a, b) = tokio::join!(
        store.append_turn(&user, &session, &left),
        store.append_turn(&user, &session, &right)
    );
    let winner = match (&a, &b) {
        (Ok(_), Err(StoreError::Conflict { expected: 0 })) => &left,
        (Err(StoreError::Conflict { expected: 0 }), Ok(_)) => &right,
        other => panic!("expected one winner and one conflict, got {other:?}"),
    };
    assert_eq!(stored(store, &user, &session).await, winner.messages);
    let window = store.load_window(&user, &session, 10).await.unwrap();
    assert_eq!(window.version, winner.messages.len() as u64);
    let traces = traces_of(store, &user, &session).await;
    assert_eq!(traces, std::slice::from_ref(&winner.trace));
}

/// A message over the size cap is stored truncated, with a visible marker, and fits.
pub async fn oversized_message_is_truncated_to_fit(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    let text = "0123456789abcdef".repeat(400 * 1024 / 16);
    let messages = vec![
        Message::user_text(text.clone()),
        Message::assistant_text("ok"),
    ];
    store
        .append_turn(&user, &session, &commit(0, 1, messages, now))
        .await
        .unwrap();
    let window = store.load_window(&user, &session, 10).await.unwrap();
    let first = &window.messages[0].message;
    assert!(content_size(&first.content) <= MAX_MESSAGE_CONTENT_BYTES);
    let kept = first.text();
    let (prefix, marker) = kept.split_once('…').unwrap();
    assert!(text.starts_with(prefix) && prefix.len() > 200 * 1024);
    assert!(marker.starts_with("[truncated ") && marker.ends_with(" bytes]"));
    assert_eq!(window.messages[1].message, Message::assistant_text("ok"));
}

/// A turn that counts usage adds its cost to the session (seen by the next window), and to the
/// user's month and minute counters (seen by `user_usage`); one that does not, only to the
/// session. Other users' counters are untouched.
pub async fn usage_is_counted_with_the_turn(store: &dyn SessionStore) {
    let (user, session, created) = fresh(store).await;
    let now = created + Duration::seconds(1);
    let before = store.user_usage(&user, now).await.unwrap();
    assert_eq!((before.month_cost_usd, before.minute_turns), (0.0, 0));
    let mut first = commit(0, 1, chat_turn("q1"), now);
    first.count_usage = true;
    first.cost_usd = 0.25;
    store.append_turn(&user, &session, &first).await.unwrap();
    let mut second = commit(2, 2, chat_turn("q2"), now);
    second.cost_usd = 0.5;
    store.append_turn(&user, &session, &second).await.unwrap();
    let window = store.load_window(&user, &session, 10).await.unwrap();
    assert!(
        (window.cost_usd - 0.75).abs() < 1e-9,
        "session cost {}",
        window.cost_usd
    );
    let usage = store.user_usage(&user, now).await.unwrap();
    assert!((usage.month_cost_usd - 0.25).abs() < 1e-9, "{usage:?}");
    assert_eq!(usage.minute_turns, 1, "only the counted turn");
    let next_minute = now + Duration::seconds(60);
    assert_eq!(
        store
            .user_usage(&user, next_minute)
            .await
            .unwrap()
            .minute_turns,
        0
    );
    let next_month = now + Duration::days(32);
    assert_eq!(
        store
            .user_usage(&user, next_month)
            .await
            .unwrap()
            .month_cost_usd,
        0.0
    );
    let other = store.user_usage(&new_id("user"), now).await.unwrap();
    assert_eq!((other.month_cost_usd, other.minute_turns), (0.0, 0));
}

/// Turns of one user in several sessions at once all store and all count: they share the
/// user's counters, and none is lost to the other's transaction.
pub async fn concurrent_turns_of_one_user_all_count(store: &dyn SessionStore) {
    let user = new_id("user");
    let now = Utc::now();
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let session = new_id("session");
        store.create_session(&user, &session, now).await.unwrap();
        sessions.push(session);
    }
    let commits: Vec<_> = (0..4)
        .map(|i| {
            let mut c = commit(0, 1, chat_turn(&format!("q{i}")), now);
            c.count_usage = true;
            c.cost_usd = 0.01;
            c
        })
        .collect();
    let results = futures::future::join_all(
        sessions
            .iter()
            .zip(&commits)
            .map(|(session, commit)| store.append_turn(&user, session, commit)),
    )
    .await;
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    let usage = store.user_usage(&user, now).await.unwrap();
    assert_eq!(usage.minute_turns, 4);
    assert!((usage.month_cost_usd - 0.04).abs() < 1e-9, "{usage:?}");
}
