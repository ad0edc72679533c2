//! The DynamoDB session store: one table, keys `PK`/`SK`, TTL attribute `expires_at`.
//!
//! | item | PK | SK |
//! |---|---|---|
//! | session header | `USER#<user>` | `SESSION#<session>` |
//! | session marker (exists iff the session does; version and last turn) | `USER#<user>#SESSION#<session>` | `SESSION` |
//! | idempotency record | `USER#<user>#SESSION#<session>` | `IDEMPOTENCY#<key>` |
//! | message | `USER#<user>#SESSION#<session>` | `MSG#<seq, 10 digits>` |
//! | turn trace | `USER#<user>#SESSION#<session>` | `TRACE#<turn, 10 digits>` |
//! | long-term memory record (or the tombstone of an erased one) | `MEMORY#<user>` | `MEM#<kind>#<key>` |
//! | a session erased with what it taught | `MEMORY#<user>` | `FORGOTTEN#<session>` |
//! | when the user last erased everything | `MEMORY#<user>` | `GUARD` |
//!
//! Ids are percent-encoded (`%`, `#`) in keys ([`keys::encode`]). The marker sorts after every
//! message, so [`load_window`](SessionStore::load_window) is one descending Query that returns
//! the marker (existence check, version) and the newest messages; a turn is one
//! `TransactWriteItems` guarded by the header's version, which also sets the marker's, so the
//! two always agree. All reads are strongly consistent: a turn stored by the previous request
//! is always seen by the next one. Every read leaves out items whose `expires_at` has passed
//! (TTL deletes them late, and one by one): an expired marker or header is a session that is
//! gone; the domain chooses a valid window from what is left.

pub mod errors;
mod idempotency;
pub mod items;
pub mod keys;
mod long_term;
mod purge;
mod turn;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnConsumedCapacity, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use self::errors::{malformed, unavailable, unserializable};
use self::items::Item;
use self::keys::{PK, SK};
use crate::domain::{model::Usage, trace::TurnTrace};
use crate::ports::{
    self, ClaimOutcome, IdempotencyClaim, IdempotencyRecord, Page, PageRequest, SessionHeader,
    SessionStore, SessionWindow, StoreError, StoredMessage, TurnCommit, UserUsage,
};
use std::time::Duration;

pub use self::long_term::DynamoLongTermMemory;

/// Seconds in a day, for TTLs.
const DAY_SECONDS: i64 = 24 * 3600;

/// Times a turn's transaction is sent again after another transaction held one of its items.
const TURN_CONFLICT_RETRIES: u32 = 3;

/// A few milliseconds of jitter, so two turns that collided do not collide again in step.
fn rand_jitter_ms() -> u64 {
    fastrand::u64(0..16)
}

/// A [`SessionStore`] on one DynamoDB table with the schema of the module docs.
///
/// Build the client from [`crate::aws::sdk_config`]: the SDK has no default HTTPS client.
/// Every item written gets `expires_at` = now + `ttl_days`, refreshed on the header and the
/// marker by every turn.
#[derive(Clone, Debug)]
pub struct DynamoSessionStore {
    client: Client,
    table: String,
    ttl_days: u32,
}

impl DynamoSessionStore {
    /// A store on `table_name` whose items expire `ttl_days` after their last write.
    pub fn new(client: Client, table_name: String, ttl_days: u32) -> Self {
        Self {
            client,
            table: table_name,
            ttl_days,
        }
    }

    /// When an item written at `now` expires (Unix seconds).
    fn expires_at(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp() + i64::from(self.ttl_days) * DAY_SECONDS
    }

    /// The header of a session, read consistently.
    async fn read_header(
        &self,
        operation: &str,
        user_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionHeader>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::key(
                keys::user_pk(user_id),
                keys::header_sk(session_id),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| unavailable(operation, &error))?;
        output
            .item()
            .filter(|item| !items::is_expired(item, Utc::now()))
            .map(|item| items::header(item).map_err(|error| malformed(operation, error)))
            .transpose()
    }

    /// One page of the live items of a partition whose sort key is between `from` and `to`
    /// (inclusive), oldest first: at most `limit` of them, and whether more may follow (the
    /// limit was reached, or DynamoDB's 1 MB page ended first).
    async fn query_page(
        &self,
        operation: &str,
        pk: String,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":from", AttributeValue::S(from.into()))
            .expression_attribute_values(":to", AttributeValue::S(to.into()))
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|error| unavailable(operation, &error))?;
        let more = output.last_evaluated_key().is_some();
        let now = Utc::now();
        let found = output
            .items()
            .iter()
            .filter(|item| !items::is_expired(item, now))
            .cloned()
            .collect();
        Ok((found, more))
    }
}

/// A page from items read one past the limit: the first `limit`, and where to go on.
fn page_from<T>(
    mut items: Vec<T>,
    more: bool,
    limit: usize,
    position: impl Fn(&T) -> u64,
) -> Page<T> {
    let more = more || items.len() > limit;
    items.truncate(limit);
    let next = if more {
        items.last().map(&position)
    } else {
        None
    };
    Page { items, next }
}

#[async_trait]
impl SessionStore for DynamoSessionStore {
    async fn create_session(
        &self,
        user_id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<SessionHeader, StoreError> {
        const OP: &str = "create_session";
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
        let marker = items::marker(user_id, session_id, now, header.expires_at);
        let mut actions = Vec::with_capacity(2);
        for item in [items::new_header(&header), marker] {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map_err(|_| unserializable(OP, "put"))?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => Ok(header),
            Err(error) if turn::create_conflict(&error) => Err(StoreError::AlreadyExists),
            Err(error) => Err(unavailable(OP, &error)),
        }
    }

    async fn load_window(
        &self,
        user_id: &str,
        session_id: &str,
        max_messages: usize,
    ) -> Result<SessionWindow, StoreError> {
        const OP: &str = "load_window";
        // One more than asked for the marker; at least one message to learn the version.
        let limit = i32::try_from(max_messages.max(1).saturating_add(1)).unwrap_or(i32::MAX);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(keys::session_pk(user_id, session_id)),
            )
            .expression_attribute_values(":from", AttributeValue::S(keys::MSG_PREFIX.into()))
            .expression_attribute_values(":to", AttributeValue::S(keys::MARKER_SK.into()))
            .scan_index_forward(false)
            .limit(limit)
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|error| unavailable(OP, &error))?;
        let read_units = output
            .consumed_capacity()
            .and_then(|consumed| consumed.capacity_units())
            .unwrap_or(0.0);
        let now = Utc::now();
        let found = output.items();
        let is_marker = |item: &Item| items::string(item, SK).is_ok_and(|sk| sk == keys::MARKER_SK);
        let Some(marker) = found.first().filter(|item| is_marker(item)) else {
            return Err(StoreError::NotFound);
        };
        if items::is_expired(marker, now) {
            return Err(StoreError::NotFound);
        }
        // A 1 MB page may hold fewer messages than asked: the window is then shorter.
        let mut messages = found[1..]
            .iter()
            .rev()
            .filter(|item| !items::is_expired(item, now))
            .map(items::stored_message)
            .collect::<Result<Vec<StoredMessage>, _>>()
            .map_err(|error| malformed(OP, error))?;
        // The version is the marker's (set with the header's by every turn); a marker written
        // before it carried one falls back to the newest message.
        let newest = found
            .get(1)
            .map(items::stored_message)
            .transpose()
            .ok()
            .flatten();
        let version = items::number(marker, items::attr::VERSION)
            .ok()
            .or(newest.as_ref().map(|m| m.seq))
            .unwrap_or(0);
        let last_turn = items::number(marker, items::attr::TURN)
            .ok()
            .or(newest.as_ref().map(|m| m.turn))
            .unwrap_or(0);
        let excess = messages.len().saturating_sub(max_messages);
        messages.drain(..excess);
        Ok(SessionWindow {
            version,
            last_turn,
            messages,
            // Markers written before sessions carried their cost count from 0.
            cost_usd: items::number(marker, items::attr::COST_USD).unwrap_or(0.0),
            read_units,
        })
    }

    async fn user_usage(&self, user_id: &str, now: DateTime<Utc>) -> Result<UserUsage, StoreError> {
        const OP: &str = "user_usage";
        let pk = keys::user_pk(user_id);
        let month_key = keys::key(pk.clone(), keys::usage_sk(&ports::usage_month(now)));
        let minute_key = keys::key(pk, keys::rate_sk(ports::usage_minute(now)));
        let keys_and_attributes = KeysAndAttributes::builder()
            .keys(month_key.clone())
            .keys(minute_key)
            .consistent_read(true)
            .build()
            .map_err(|_| unserializable(OP, "keys"))?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys_and_attributes)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|error| unavailable(OP, &error))?;
        if output
            .unprocessed_keys()
            .is_some_and(|unprocessed| !unprocessed.is_empty())
        {
            return Err(StoreError::Unavailable(format!(
                "{OP}: DynamoDB left keys unprocessed (throttled)"
            )));
        }
        let mut usage = UserUsage {
            read_units: output
                .consumed_capacity()
                .iter()
                .filter_map(|consumed| consumed.capacity_units())
                .sum(),
            ..UserUsage::default()
        };
        let found = output
            .responses()
            .and_then(|responses| responses.get(&self.table));
        for item in found.into_iter().flatten() {
            if items::is_expired(item, now) {
                continue;
            }
            let is_month = item.get(SK) == month_key.get(SK);
            if is_month {
                usage.month_cost_usd = items::number(item, items::attr::COST_USD).unwrap_or(0.0);
            } else {
                usage.minute_turns = items::number(item, items::attr::TURNS).unwrap_or(0);
            }
        }
        Ok(usage)
    }

    async fn append_turn(
        &self,
        user_id: &str,
        session_id: &str,
        commit: &TurnCommit,
    ) -> Result<(), StoreError> {
        let expires_at = self.expires_at(commit.now);
        let actions = turn::actions(&self.table, user_id, session_id, commit, expires_at)?;
        let mut attempt = 0;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                // Makes the SDK's retries of this call idempotent for DynamoDB (10 minutes).
                .client_request_token(uuid::Uuid::new_v4().to_string())
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(()),
                // Another transaction held one of the items (the user's counters, shared by
                // their sessions): the version condition makes sending it again safe.
                Err(error)
                    if attempt < TURN_CONFLICT_RETRIES
                        && turn::only_transaction_conflict(&error) =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(
                        20 * u64::from(attempt) + rand_jitter_ms(),
                    ))
                    .await;
                }
                Err(error) => return Err(turn::failure(&error, commit.expected_version)),
            }
        }
    }

    async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionHeader>, StoreError> {
        const OP: &str = "list_sessions";
        let found: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::user_pk(user_id)))
            .expression_attribute_values(":prefix", AttributeValue::S(keys::HEADER_PREFIX.into()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| unavailable(OP, &error))?;
        let now = Utc::now();
        let mut headers = found
            .iter()
            .filter(|item| !items::is_expired(item, now))
            .map(items::header)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| malformed(OP, error))?;
        sort_most_recent_first(&mut headers);
        Ok(headers)
    }

    async fn get_session(
        &self,
        user_id: &str,
        session_id: &str,
        page: PageRequest,
    ) -> Result<(SessionHeader, Page<StoredMessage>), StoreError> {
        const OP: &str = "get_session";
        let header = self
            .read_header(OP, user_id, session_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let limit = page.limit.max(1);
        let from = keys::message_sk(page.after.map_or(0, |after| after.saturating_add(1)));
        let (found, more) = self
            .query_page(
                OP,
                keys::session_pk(user_id, session_id),
                &from,
                keys::MSG_RANGE_END,
                limit + 1,
            )
            .await?;
        let messages = found
            .iter()
            .map(items::stored_message)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| malformed(OP, error))?;
        Ok((header, page_from(messages, more, limit, |m| m.seq)))
    }

    async fn get_traces(
        &self,
        user_id: &str,
        session_id: &str,
        page: PageRequest,
    ) -> Result<Page<TurnTrace>, StoreError> {
        const OP: &str = "get_traces";
        let limit = page.limit.max(1);
        let pk = keys::session_pk(user_id, session_id);
        // The first page starts at the marker (the existence check comes with it); a later
        // one checks the header.
        let from = match page.after {
            None => keys::MARKER_SK.to_owned(),
            Some(after) => {
                self.read_header(OP, user_id, session_id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                keys::trace_sk(after.saturating_add(1))
            }
        };
        let query_limit = limit + 1 + usize::from(page.after.is_none());
        let (mut found, more) = self
            .query_page(OP, pk, &from, keys::TRACE_RANGE_END, query_limit)
            .await?;
        if page.after.is_none() {
            let is_marker = found
                .first()
                .is_some_and(|item| items::string(item, SK).is_ok_and(|sk| sk == keys::MARKER_SK));
            if !is_marker {
                return Err(StoreError::NotFound);
            }
            found.remove(0);
        }
        let traces = found
            .iter()
            .map(items::turn_trace)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| malformed(OP, error))?;
        Ok(page_from(traces, more, limit, |t| t.turn))
    }

    async fn delete_session(&self, user_id: &str, session_id: &str) -> Result<(), StoreError> {
        let found = purge::delete_header(&self.client, &self.table, user_id, session_id).await?;
        // Also when the header is already gone: finishes a delete that stopped half-way.
        purge::purge_partition(
            &self.client,
            &self.table,
            &keys::session_pk(user_id, session_id),
        )
        .await?;
        if found {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn claim_idempotency(
        &self,
        user_id: &str,
        session_id: &str,
        claim: &IdempotencyClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        idempotency::claim(&self.client, &self.table, user_id, session_id, claim).await
    }

    async fn release_idempotency(
        &self,
        user_id: &str,
        session_id: &str,
        key: &str,
        token: &str,
    ) -> Result<(), StoreError> {
        idempotency::release(&self.client, &self.table, user_id, session_id, key, token).await
    }

    async fn get_idempotency(
        &self,
        user_id: &str,
        session_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        idempotency::get(&self.client, &self.table, user_id, session_id, key).await
    }
}

/// Sorts headers most recently updated first (then most recently created, then by id), the
/// order [`SessionStore::list_sessions`] promises.
pub fn sort_most_recent_first(headers: &mut [SessionHeader]) {
    headers.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then(b.created_at.cmp(&a.created_at))
            .then(a.session_id.cmp(&b.session_id))
    });
}
