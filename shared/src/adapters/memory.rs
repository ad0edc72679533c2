//! An in-memory [`SessionStore`] for tests and local runs, with the DynamoDB store's behaviour:
//! version checks, all-or-nothing turns, the message size cap, idempotency claims and their
//! expiry, pages, TTL stamps and `NotFound` for other users' sessions.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::dynamodb::sort_most_recent_first;
use crate::domain::{
    model::Usage,
    trace::TurnTrace,
    truncate::{fit_message, MAX_MESSAGE_CONTENT_BYTES},
};
use crate::ports::{
    ClaimOutcome, IdempotencyClaim, IdempotencyRecord, Page, PageRequest, SessionHeader,
    SessionStore, SessionWindow, StoreError, StoredMessage, TurnCommit, UserUsage,
};

/// TTL of sessions in a store built with [`Default`].
pub const DEFAULT_TTL_DAYS: u32 = 30;

/// Seconds in a day, for TTLs.
const DAY_SECONDS: i64 = 24 * 3600;

/// A [`SessionStore`] that keeps everything in a mutex-guarded map; nothing expires, but
/// `expires_at` is stamped as DynamoDB's store would.
#[derive(Debug)]
pub struct MemorySessionStore {
    ttl_days: u32,
    state: Mutex<State>,
}

/// One session: its header, messages (seq order) and traces by turn.
#[derive(Debug)]
struct Session {
    header: SessionHeader,
    messages: Vec<StoredMessage>,
    traces: BTreeMap<u64, TurnTrace>,
}

/// An idempotency key's entry: a running attempt's claim, or a completed record.
#[derive(Clone, Debug)]
enum Idempotency {
    Claimed(IdempotencyClaim),
    Completed(IdempotencyRecord),
}

/// Everything stored, keyed by owner first; idempotency entries by (owner, session, key).
#[derive(Debug, Default)]
struct State {
    sessions: HashMap<(String, String), Session>,
    idempotency: HashMap<(String, String, String), Idempotency>,
    /// Dollars by (user, month).
    month_cost: HashMap<(String, String), f64>,
    /// Turns by (user, minute).
    minute_turns: HashMap<(String, i64), u32>,
}

impl Default for MemorySessionStore {
    fn default() -> Self {
        Self::with_ttl_days(DEFAULT_TTL_DAYS)
    }
}

impl MemorySessionStore {
    /// An empty store that stamps `expires_at` = now + `ttl_days`.
    pub fn with_ttl_days(ttl_days: u32) -> Self {
        Self {
            ttl_days,
            state: Mutex::new(State::default()),
        }
    }

    /// The state; a panic in another holder cannot leave it half-written (every write is
    /// checked before it starts), so a poisoned lock is still usable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When something written at `now` expires (Unix seconds).
    fn expires_at(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp() + i64::from(self.ttl_days) * DAY_SECONDS
    }
}

/// The map key of a session.
fn id(user_id: &str, session_id: &str) -> (String, String) {
    (user_id.to_owned(), session_id.to_owned())
}

/// The map key of an idempotency entry.
fn key_id(user_id: &str, session_id: &str, key: &str) -> (String, String, String) {
    (user_id.to_owned(), session_id.to_owned(), key.to_owned())
}

/// The items of `items` after `page.after` (by `position`), at most `page.limit`, and where
/// the next page starts.
fn page_of<T: Clone>(items: &[T], page: PageRequest, position: impl Fn(&T) -> u64) -> Page<T> {
    let limit = page.limit.max(1);
    let mut after: Vec<T> = items
        .iter()
        .filter(|item| page.after.is_none_or(|after| position(item) > after))
        .take(limit + 1)
        .cloned()
        .collect();
    let more = after.len() > limit;
    after.truncate(limit);
    let next = if more {
        after.last().map(&position)
    } else {
        None
    };
    Page { items: after, next }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create_session(
        &self,
        user_id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<SessionHeader, StoreError> {
        let header = SessionHeader {
            user_id: user_id.to_owned(),
            session_id: session_id.to_owned(),
            title: None,
            created_at: now,
            updated_at: now,
            version: 0,
            turns: 0,
            usage: Usage::default(),
            cost_usd: 0.0,
            expires_at: self.expires_at(now),
        };
        let mut state = self.state();
        let key = id(user_id, session_id);
        if state.sessions.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        state.sessions.insert(
            key,
            Session {
                header: header.clone(),
                messages: Vec::new(),
                traces: BTreeMap::new(),
            },
        );
        Ok(header)
    }

    async fn load_window(
        &self,
        user_id: &str,
        session_id: &str,
        max_messages: usize,
    ) -> Result<SessionWindow, StoreError> {
        let state = self.state();
        let session = state
            .sessions
            .get(&id(user_id, session_id))
            .ok_or(StoreError::NotFound)?;
        let (version, last_turn) = (session.header.version, session.header.turns);
        let start = session.messages.len().saturating_sub(max_messages);
        let messages = session.messages[start..].to_vec();
        Ok(SessionWindow {
            version,
            last_turn,
            messages,
            cost_usd: session.header.cost_usd,
            read_units: 0.0,
        })
    }

    async fn user_usage(&self, user_id: &str, now: DateTime<Utc>) -> Result<UserUsage, StoreError> {
        let state = self.state();
        let month = crate::ports::usage_month(now);
        let minute = crate::ports::usage_minute(now);
        Ok(UserUsage {
            month_cost_usd: state
                .month_cost
                .get(&(user_id.to_owned(), month))
                .copied()
                .unwrap_or(0.0),
            minute_turns: state
                .minute_turns
                .get(&(user_id.to_owned(), minute))
                .copied()
                .unwrap_or(0),
            read_units: 0.0,
        })
    }

    async fn append_turn(
        &self,
        user_id: &str,
        session_id: &str,
        commit: &TurnCommit,
    ) -> Result<(), StoreError> {
        let expires_at = self.expires_at(commit.now);
        let expected = commit.expected_version;
        let mut guard = self.state();
        let state = &mut *guard;
        let session = state
            .sessions
            .get_mut(&id(user_id, session_id))
            .ok_or(StoreError::NotFound)?;
        if session.header.version != expected {
            return Err(StoreError::Conflict { expected });
        }
        let idempotency_key = commit
            .idempotency
            .as_ref()
            .map(|completion| key_id(user_id, session_id, &completion.record.key));
        if let (Some(key), Some(completion)) = (&idempotency_key, &commit.idempotency) {
            // Only the attempt that holds the claim may complete it.
            let holds = matches!(
                state.idempotency.get(key),
                Some(Idempotency::Claimed(claim)) if claim.token == completion.token
            );
            if !holds {
                return Err(StoreError::Conflict { expected });
            }
        }
        // Every check passed: the writes below cannot fail, so the turn is all or nothing.
        session.messages.extend(
            (expected + 1..)
                .zip(&commit.messages)
                .map(|(seq, message)| StoredMessage {
                    seq,
                    turn: commit.turn,
                    message: fit_message(message, MAX_MESSAGE_CONTENT_BYTES),
                    created_at: commit.now,
                }),
        );
        session.traces.insert(commit.turn, commit.trace.clone());
        let header = &mut session.header;
        header.version = expected + commit.messages.len() as u64;
        header.turns = commit.turn;
        header.updated_at = commit.now;
        header.expires_at = expires_at;
        header.usage.add(commit.usage);
        header.cost_usd += commit.cost_usd;
        if header.title.is_none() {
            header.title.clone_from(&commit.title);
        }
        if let (Some(key), Some(completion)) = (idempotency_key, &commit.idempotency) {
            state
                .idempotency
                .insert(key, Idempotency::Completed(completion.record.clone()));
        }
        if commit.count_usage {
            let month = crate::ports::usage_month(commit.now);
            let minute = crate::ports::usage_minute(commit.now);
            *state
                .month_cost
                .entry((user_id.to_owned(), month))
                .or_default() += commit.cost_usd;
            *state
                .minute_turns
                .entry((user_id.to_owned(), minute))
                .or_default() += 1;
        }
        Ok(())
    }

    async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionHeader>, StoreError> {
        let mut headers: Vec<SessionHeader> = self
            .state()
            .sessions
            .iter()
            .filter(|((owner, _), _)| owner == user_id)
            .map(|(_, session)| session.header.clone())
            .collect();
        sort_most_recent_first(&mut headers);
        Ok(headers)
    }

    async fn get_session(
        &self,
        user_id: &str,
        session_id: &str,
        page: PageRequest,
    ) -> Result<(SessionHeader, Page<StoredMessage>), StoreError> {
        let state = self.state();
        let session = state
            .sessions
            .get(&id(user_id, session_id))
            .ok_or(StoreError::NotFound)?;
        let messages = page_of(&session.messages, page, |m| m.seq);
        Ok((session.header.clone(), messages))
    }

    async fn get_traces(
        &self,
        user_id: &str,
        session_id: &str,
        page: PageRequest,
    ) -> Result<Page<TurnTrace>, StoreError> {
        let state = self.state();
        let session = state
            .sessions
            .get(&id(user_id, session_id))
            .ok_or(StoreError::NotFound)?;
        let traces: Vec<TurnTrace> = session.traces.values().cloned().collect();
        Ok(page_of(&traces, page, |t| t.turn))
    }

    async fn delete_session(&self, user_id: &str, session_id: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        state
            .idempotency
            .retain(|(owner, session, _), _| !(owner == user_id && session == session_id));
        state
            .sessions
            .remove(&id(user_id, session_id))
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    async fn claim_idempotency(
        &self,
        user_id: &str,
        session_id: &str,
        claim: &IdempotencyClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut state = self.state();
        let key = key_id(user_id, session_id, &claim.key);
        let outcome = match state.idempotency.get(&key) {
            Some(Idempotency::Completed(record)) if record.expires_at > claim.now.timestamp() => {
                ClaimOutcome::Completed(record.clone())
            }
            Some(Idempotency::Claimed(held)) if held.lease_until > claim.now => {
                ClaimOutcome::InFlight {
                    request_hash: held.request_hash.clone(),
                    lease_until: held.lease_until,
                }
            }
            _ => ClaimOutcome::Claimed,
        };
        if outcome == ClaimOutcome::Claimed {
            state
                .idempotency
                .insert(key, Idempotency::Claimed(claim.clone()));
        }
        Ok(outcome)
    }

    async fn release_idempotency(
        &self,
        user_id: &str,
        session_id: &str,
        key: &str,
        token: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let key = key_id(user_id, session_id, key);
        if matches!(state.idempotency.get(&key), Some(Idempotency::Claimed(claim)) if claim.token == token)
        {
            state.idempotency.remove(&key);
        }
        Ok(())
    }

    async fn get_idempotency(
        &self,
        user_id: &str,
        session_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let now = Utc::now().timestamp();
        Ok(
            match self
                .state()
                .idempotency
                .get(&key_id(user_id, session_id, key))
            {
                Some(Idempotency::Completed(record)) if record.expires_at > now => {
                    Some(record.clone())
                }
                _ => None,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::MemorySessionStore;

    crate::session_store_conformance_tests!(MemorySessionStore::default());

    #[tokio::test]
    async fn the_whole_suite_passes_on_one_shared_store() {
        crate::store_conformance::run_all(&MemorySessionStore::default()).await;
    }
}
