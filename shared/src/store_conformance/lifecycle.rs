//! Checks of a session's life and ownership: isolation between users, listing, deletion,
//! idempotency records and taken ids.

use chrono::{Duration, Utc};

use super::fixtures::{
    assert_gone, assert_not_found, assert_recreated_empty, chat_turn, commit, fresh, new_id,
    record, stored, tool_turn,
};
use crate::ports::{SessionStore, StoreError};

/// Another user's session does not exist for them, whatever they call; ids containing the
/// key separator cannot reach another user's partition.
pub async fn other_users_sessions_are_not_found(store: &dyn SessionStore) {
    let owner = new_id("owner");
    let session = "b#SESSION#c".to_owned();
    let now = Utc::now();
    store.create_session(&owner, &session, now).await.unwrap();
    let mut first = commit(0, 1, chat_turn("secret"), now);
    first.idempotency = Some(record("owner-key", &session));
    store.append_turn(&owner, &session, &first).await.unwrap();

    let intruder = new_id("intruder");
    assert_not_found(
        store.load_window(&intruder, &session, 10).await,
        "load_window",
    );
    let turn = commit(2, 2, chat_turn("x"), now);
    assert_not_found(
        store.append_turn(&intruder, &session, &turn).await,
        "append_turn",
    );
    assert_not_found(store.get_session(&intruder, &session).await, "get_session");
    assert_not_found(store.get_traces(&intruder, &session).await, "get_traces");
    assert_not_found(
        store.delete_session(&intruder, &session).await,
        "delete_session",
    );
    assert!(store.list_sessions(&intruder).await.unwrap().is_empty());
    assert_eq!(
        store.get_idempotency(&intruder, "owner-key").await.unwrap(),
        None
    );

    // User `<owner>#SESSION#b` with session `c` must not alias `<owner>` with `b#SESSION#c`.
    let (aliased_user, aliased_session) = (format!("{owner}#SESSION#b"), "c");
    assert_not_found(
        store.load_window(&aliased_user, aliased_session, 10).await,
        "aliased load_window",
    );
    store
        .create_session(&aliased_user, aliased_session, now)
        .await
        .unwrap();
    let window = store
        .load_window(&aliased_user, aliased_session, 10)
        .await
        .unwrap();
    assert!(
        window.messages.is_empty() && window.version == 0,
        "aliased session is empty"
    );

    assert_eq!(
        stored(store, &owner, &session).await,
        first.messages,
        "owner intact"
    );
}

/// Sessions are listed most recently updated first, and only the caller's.
pub async fn sessions_are_listed_most_recently_updated_first(store: &dyn SessionStore) {
    let user = new_id("user");
    let t0 = Utc::now();
    let ids: Vec<String> = (0..3).map(|i| new_id(&format!("s{i}"))).collect();
    for (offset, id) in (0..).zip(&ids) {
        let at = t0 + Duration::seconds(offset);
        store.create_session(&user, id, at).await.unwrap();
    }
    let later = commit(0, 1, chat_turn("bump"), t0 + Duration::seconds(10));
    store.append_turn(&user, &ids[0], &later).await.unwrap();
    let listed: Vec<String> = store
        .list_sessions(&user)
        .await
        .unwrap()
        .into_iter()
        .map(|header| header.session_id)
        .collect();
    assert_eq!(listed, [ids[0].clone(), ids[2].clone(), ids[1].clone()]);
}

/// After a delete nothing of the session is left: every read is `NotFound`, and the same id
/// can be created again, empty.
pub async fn delete_removes_everything(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    store
        .append_turn(&user, &session, &commit(0, 1, tool_turn("q1"), now))
        .await
        .unwrap();
    store
        .append_turn(&user, &session, &commit(4, 2, chat_turn("q2"), now))
        .await
        .unwrap();
    store.delete_session(&user, &session).await.unwrap();
    assert_gone(store, &user, &session).await;
    assert_not_found(store.delete_session(&user, &session).await, "second delete");
    let late = commit(6, 3, chat_turn("late"), now);
    assert_not_found(
        store.append_turn(&user, &session, &late).await,
        "append after delete",
    );
    assert_gone(store, &user, &session).await;
    assert_recreated_empty(store, &user, &session).await;
}

/// A turn racing a delete either lands before it (and is deleted with the session) or fails
/// with `NotFound`: it never brings the session back.
pub async fn a_turn_racing_a_delete_cannot_resurrect_the_session(store: &dyn SessionStore) {
    for _ in 0..5 {
        let (user, session, now) = fresh(store).await;
        store
            .append_turn(&user, &session, &commit(0, 1, chat_turn("q1"), now))
            .await
            .unwrap();
        let racing = commit(2, 2, tool_turn("q2"), now);
        let (deleted, appended) = tokio::join!(
            store.delete_session(&user, &session),
            store.append_turn(&user, &session, &racing)
        );
        deleted.unwrap();
        assert!(
            matches!(appended, Ok(_) | Err(StoreError::NotFound)),
            "racing turn: {appended:?}"
        );
        assert_gone(store, &user, &session).await;
        assert_recreated_empty(store, &user, &session).await;
    }
}

/// The idempotency record is stored with its turn, read back by its owner only, and a key
/// cannot be stored twice (the second turn is a `Conflict` and stores nothing).
pub async fn idempotency_record_is_stored_with_the_turn(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    let key = new_id("key");
    let mut first = commit(0, 1, chat_turn("q1"), now);
    first.idempotency = Some(record(&key, &session));
    store.append_turn(&user, &session, &first).await.unwrap();
    assert_eq!(
        store.get_idempotency(&user, &key).await.unwrap(),
        first.idempotency
    );
    assert_eq!(store.get_idempotency(&user, "unknown").await.unwrap(), None);
    assert_eq!(
        store.get_idempotency(&new_id("other"), &key).await.unwrap(),
        None
    );

    let mut again = commit(2, 2, chat_turn("q2"), now);
    again.idempotency = Some(record(&key, &session));
    let result = store.append_turn(&user, &session, &again).await;
    assert!(
        matches!(result, Err(StoreError::Conflict { expected: 2 })),
        "{result:?}"
    );
    assert_eq!(stored(store, &user, &session).await, first.messages);
    assert_eq!(
        store.get_idempotency(&user, &key).await.unwrap(),
        first.idempotency
    );
}

/// Creating a session whose id is taken is `AlreadyExists` and leaves it untouched; the same
/// id under another user is another session.
pub async fn reused_session_id_on_create_is_already_exists(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    let first = commit(0, 1, chat_turn("q1"), now);
    store.append_turn(&user, &session, &first).await.unwrap();
    let result = store.create_session(&user, &session, Utc::now()).await;
    assert!(
        matches!(result, Err(StoreError::AlreadyExists)),
        "{result:?}"
    );
    let (header, _) = store.get_session(&user, &session).await.unwrap();
    assert_eq!((header.version, header.created_at), (2, now));
    assert_eq!(stored(store, &user, &session).await, first.messages);
    store
        .create_session(&new_id("other"), &session, now)
        .await
        .unwrap();
}
