//! The DynamoDB session store: one table, keys `PK`/`SK`, TTL attribute `expires_at`.
//!
//! | item | PK | SK |
//! |---|---|---|
//! | session header | `USER#<user>` | `SESSION#<session>` |
//! | session marker (exists iff the session does) | `USER#<user>#SESSION#<session>` | `SESSION` |
//! | message | `USER#<user>#SESSION#<session>` | `MSG#<seq, 10 digits>` |
//! | turn trace | `USER#<user>#SESSION#<session>` | `TRACE#<turn, 10 digits>` |
//! | idempotency record | `USER#<user>#IDEMPOTENCY` | `<key>` |
//!
//! Ids are percent-encoded (`%`, `#`) in keys ([`keys::encode`]). The marker sorts after every
//! message, so [`load_window`](SessionStore::load_window) is one descending Query that returns
//! the marker (existence check) and the newest messages; a turn is one `TransactWriteItems`
//! guarded by the header's version. All reads are strongly consistent: a turn stored by the
//! previous request is always seen by the next one.

pub mod errors;
pub mod items;
pub mod keys;
mod purge;
pub mod rules;
mod turn;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use self::errors::{malformed, unavailable, unserializable};
use self::items::Item;
use self::keys::{PK, SK};
use crate::domain::{model::Usage, trace::TurnTrace};
use crate::ports::{
    IdempotencyRecord, SessionHeader, SessionStore, SessionWindow, StoreError, StoredMessage,
    TurnCommit,
};

/// Seconds in a day, for TTLs.
const DAY_SECONDS: i64 = 24 * 3600;

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
            .map(|item| items::header(item).map_err(|error| malformed(operation, error)))
            .transpose()
    }

    /// Every item of a partition whose sort key is between `from` and `to` (inclusive),
    /// oldest first, across pages.
    async fn query_range(
        &self,
        operation: &str,
        pk: String,
        from: &str,
        to: &str,
    ) -> Result<Vec<Item>, StoreError> {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":from", AttributeValue::S(from.into()))
            .expression_attribute_values(":to", AttributeValue::S(to.into()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| unavailable(operation, &error))
    }
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
            .send()
            .await
            .map_err(|error| unavailable(OP, &error))?;
        let found = output.items();
        let is_marker = |item: &Item| items::string(item, SK).is_ok_and(|sk| sk == keys::MARKER_SK);
        if !found.first().is_some_and(is_marker) {
            return Err(StoreError::NotFound);
        }
        // A 1 MB page may hold fewer messages than asked: the window is then shorter.
        let mut messages = found[1..]
            .iter()
            .rev()
            .map(items::stored_message)
            .collect::<Result<Vec<StoredMessage>, _>>()
            .map_err(|error| malformed(OP, error))?;
        let (version, last_turn) = messages.last().map_or((0, 0), |m| (m.seq, m.turn));
        let excess = messages.len().saturating_sub(max_messages);
        messages.drain(..excess);
        rules::trim_to_turn_start(&mut messages);
        Ok(SessionWindow {
            version,
            last_turn,
            messages,
        })
    }

    async fn append_turn(
        &self,
        user_id: &str,
        session_id: &str,
        commit: &TurnCommit,
    ) -> Result<(), StoreError> {
        let expires_at = self.expires_at(commit.now);
        let actions = turn::actions(&self.table, user_id, session_id, commit, expires_at)?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(actions))
            // Makes the SDK's retries of this call idempotent for DynamoDB (10 minutes).
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .map_err(|error| turn::failure(&error, commit.expected_version))?;
        Ok(())
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
        let mut headers = found
            .iter()
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
    ) -> Result<(SessionHeader, Vec<StoredMessage>), StoreError> {
        const OP: &str = "get_session";
        let header = self
            .read_header(OP, user_id, session_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let found = self
            .query_range(
                OP,
                keys::session_pk(user_id, session_id),
                keys::MSG_PREFIX,
                keys::MSG_RANGE_END,
            )
            .await?;
        let messages = found
            .iter()
            .map(items::stored_message)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| malformed(OP, error))?;
        Ok((header, messages))
    }

    async fn get_traces(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<Vec<TurnTrace>, StoreError> {
        const OP: &str = "get_traces";
        // From the marker (existence check) through every trace, in one range.
        let found = self
            .query_range(
                OP,
                keys::session_pk(user_id, session_id),
                keys::MARKER_SK,
                keys::TRACE_RANGE_END,
            )
            .await?;
        let Some((first, rest)) = found.split_first() else {
            return Err(StoreError::NotFound);
        };
        if items::string(first, SK).map_err(|error| malformed(OP, error))? != keys::MARKER_SK {
            return Err(StoreError::NotFound);
        }
        rest.iter()
            .map(items::turn_trace)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| malformed(OP, error))
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

    async fn get_idempotency(
        &self,
        user_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        const OP: &str = "get_idempotency";
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::key(
                keys::idempotency_pk(user_id),
                key.to_owned(),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| unavailable(OP, &error))?;
        output
            .item()
            .map(|item| items::idempotency_record(item).map_err(|error| malformed(OP, error)))
            .transpose()
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
