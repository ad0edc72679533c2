//! Checks of a session's life and ownership: isolation between users, listing, deletion,
//! idempotency records and taken ids.

use chrono::{Duration, Utc};

use super::fixtures::{
    assert_gone, assert_not_found, assert_recreated_empty, chat_turn, claim, claimed, commit,
    fresh, new_id, record, session_of, stored, tool_turn, ALL,
};
use crate::ports::{ClaimOutcome, IdempotencyCompletion, SessionStore, StoreError};

/// Another user's session does not exist for them, whatever they call; ids containing the
/// key separator cannot reach another user's partition.
pub async fn other_users_sessions_are_not_found(store: &dyn SessionStore) {
    let owner = new_id("owner");
    let session = "b#SESSION#c".to_owned();
    let now = Utc::now();
    store.create_session(&owner, &session, now).await.unwrap();
    let mut first = commit(0, 1, chat_turn("secret"), now);
    first.idempotency = Some(claimed(store, &owner, &session, "owner-key").await);
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
    assert_not_found(
        store.get_session(&intruder, &session, ALL).await,
        "get_session",
    );
    assert_not_found(
        store.get_traces(&intruder, &session, ALL).await,
        "get_traces",
    );
    assert_not_found(
        store.delete_session(&intruder, &session).await,
        "delete_session",
    );
    assert!(store.list_sessions(&intruder).await.unwrap().is_empty());
    assert_eq!(
        store
            .get_idempotency(&intruder, &session, "owner-key")
            .await
            .unwrap(),
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

/// A claimed key is held until its turn completes it: a second claim is told it is in flight;
/// the completed record is then what a claim finds, and `get_idempotency` returns it to its
/// owner only. A turn whose claim is not held (another token) is a `Conflict` and stores nothing.
pub async fn idempotency_claim_is_completed_by_its_turn(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    let key = new_id("key");
    let first_claim = claim(&key);
    assert_eq!(
        store
            .claim_idempotency(&user, &session, &first_claim)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    let retry = claim(&key);
    match store
        .claim_idempotency(&user, &session, &retry)
        .await
        .unwrap()
    {
        ClaimOutcome::InFlight {
            request_hash,
            lease_until,
        } => {
            assert_eq!(request_hash, first_claim.request_hash);
            assert_eq!(
                lease_until.timestamp_millis(),
                first_claim.lease_until.timestamp_millis()
            );
        }
        other => panic!("a second claim while the first runs: {other:?}"),
    }
    assert_eq!(
        store.get_idempotency(&user, &session, &key).await.unwrap(),
        None
    );

    // Completing with a token that does not hold the claim is refused.
    let mut stolen = commit(0, 1, chat_turn("q1"), now);
    stolen.idempotency = Some(IdempotencyCompletion {
        record: record(&key, &session),
        token: retry.token.clone(),
    });
    let result = store.append_turn(&user, &session, &stolen).await;
    assert!(
        matches!(result, Err(StoreError::Conflict { expected: 0 })),
        "{result:?}"
    );
    assert!(stored(store, &user, &session).await.is_empty());

    let mut first = commit(0, 1, chat_turn("q1"), now);
    first.idempotency = Some(IdempotencyCompletion {
        record: record(&key, &session),
        token: first_claim.token.clone(),
    });
    store.append_turn(&user, &session, &first).await.unwrap();
    let completed = first.idempotency.as_ref().map(|c| c.record.clone());
    assert_eq!(
        store.get_idempotency(&user, &session, &key).await.unwrap(),
        completed
    );
    assert_eq!(
        store
            .claim_idempotency(&user, &session, &claim(&key))
            .await
            .unwrap(),
        ClaimOutcome::Completed(completed.clone().unwrap())
    );
    assert_eq!(
        store
            .get_idempotency(&user, &session, "unknown")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_idempotency(&new_id("other"), &session, &key)
            .await
            .unwrap(),
        None
    );
}

/// A released claim, a lapsed claim and an expired record leave the key free; a release
/// with another token changes nothing.
pub async fn released_lapsed_and_expired_keys_are_free(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    let held = claim("released");
    store
        .claim_idempotency(&user, &session, &held)
        .await
        .unwrap();
    store
        .release_idempotency(&user, &session, "released", "someone-else")
        .await
        .unwrap();
    assert!(matches!(
        store
            .claim_idempotency(&user, &session, &claim("released"))
            .await
            .unwrap(),
        ClaimOutcome::InFlight { .. }
    ));
    store
        .release_idempotency(&user, &session, "released", &held.token)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency(&user, &session, &claim("released"))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );

    let mut lapsed = claim("lapsed");
    lapsed.lease_until = now - Duration::seconds(1);
    store
        .claim_idempotency(&user, &session, &lapsed)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency(&user, &session, &claim("lapsed"))
            .await
            .unwrap(),
        ClaimOutcome::Claimed,
        "a crashed attempt's claim lapses"
    );

    let expiring = claim("expired");
    store
        .claim_idempotency(&user, &session, &expiring)
        .await
        .unwrap();
    let mut turn = commit(0, 1, chat_turn("q1"), now);
    let mut old = record("expired", &session);
    old.expires_at = now.timestamp() - 1;
    turn.idempotency = Some(IdempotencyCompletion {
        record: old,
        token: expiring.token,
    });
    store.append_turn(&user, &session, &turn).await.unwrap();
    assert_eq!(
        store
            .get_idempotency(&user, &session, "expired")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .claim_idempotency(&user, &session, &claim("expired"))
            .await
            .unwrap(),
        ClaimOutcome::Claimed,
        "an expired record is not replayed"
    );
}

/// Deleting a session deletes its idempotency records: a replay after delete finds nothing.
pub async fn delete_removes_idempotency_records(store: &dyn SessionStore) {
    let (user, session, now) = fresh(store).await;
    let mut first = commit(0, 1, chat_turn("q1"), now);
    first.idempotency = Some(claimed(store, &user, &session, "k").await);
    store.append_turn(&user, &session, &first).await.unwrap();
    store.delete_session(&user, &session).await.unwrap();
    assert_eq!(
        store.get_idempotency(&user, &session, "k").await.unwrap(),
        None
    );
    store
        .create_session(&user, &session, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency(&user, &session, &claim("k"))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
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
    let (header, _) = session_of(store, &user, &session).await;
    assert_eq!((header.version, header.created_at), (2, now));
    assert_eq!(stored(store, &user, &session).await, first.messages);
    store
        .create_session(&new_id("other"), &session, now)
        .await
        .unwrap();
}
