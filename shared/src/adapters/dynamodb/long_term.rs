//! Long-term memory on the session table: a partition per user (`MEMORY#<user>`), one item per
//! record (`MEM#<kind>#<key>`), read in one Query.
//!
//! Erasing is safe against an extraction running at the same time, which read the partition
//! before the user erased something and writes after:
//! - an erased record is replaced by a tombstone at the same key (no text, `forgotten_ms`,
//!   expiring after [`TOMBSTONE_DAYS`]), so the extractor's conditional write of that key fails
//!   and, reading again, it learns the record was erased after the turn it learns from;
//! - a session erased with what it taught leaves `FORGOTTEN#<session>`, and erasing everything
//!   stamps `GUARD`: every extraction write checks both in the same transaction.
//!
//! Times compared in conditions are Unix milliseconds (`N`), not the RFC 3339 strings, whose
//! variable width does not sort.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::errors::{condition_failed, malformed, unavailable};
use super::items::{self, Item, MalformedItem};
use super::keys::{self, EXPIRES_AT, PK, SK};
use super::purge::{delete_batch, BATCH_SIZE};
use crate::domain::memory::{parse_id, record_id, MemoryKind, MemoryRecord, QuantizedVector};
use crate::ports::{LongTermMemory, StoreError, UserMemory};

/// Days a tombstone is kept: longer than any extraction can lag behind its turn (the event
/// source mapping drops records older than an hour).
pub const TOMBSTONE_DAYS: i64 = 2;

/// Records one extraction may write: a transaction holds 100 items, two are condition checks.
pub const MAX_RECORDS_PER_WRITE: usize = 98;

/// Times a write is sent again when another transaction held one of its items.
const CONFLICT_RETRIES: u32 = 3;

mod attr {
    pub const KIND: &str = "kind";
    pub const KEY: &str = "key";
    pub const TEXT: &str = "text";
    pub const SESSIONS: &str = "sessions";
    pub const CREATED_AT: &str = "created_at";
    pub const UPDATED_AT: &str = "updated_at";
    pub const CHANGED_AT: &str = "changed_at";
    pub const VERSION: &str = "version";
    pub const VECTOR: &str = "vector";
    pub const FORGOTTEN_MS: &str = "forgotten_ms";
}

/// [`LongTermMemory`] on one DynamoDB table (the session table).
#[derive(Clone, Debug)]
pub struct DynamoLongTermMemory {
    client: Client,
    table: String,
}

impl DynamoLongTermMemory {
    /// Memory on `table_name`.
    pub fn new(client: Client, table_name: String) -> Self {
        Self {
            client,
            table: table_name,
        }
    }

    /// Every live item of the user's memory partition, in as few pages as DynamoDB allows.
    async fn items(&self, operation: &str, user_id: &str) -> Result<Vec<Item>, StoreError> {
        let now = Utc::now();
        let found: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::memory_pk(user_id)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| unavailable(operation, &error))?;
        Ok(found
            .into_iter()
            .filter(|item| !items::is_expired(item, now))
            .collect())
    }

    async fn put(&self, operation: &str, put: Put) -> Result<(), StoreError> {
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|error| transact_error(operation, &error))
    }
}

/// Unix milliseconds.
fn millis(at: DateTime<Utc>) -> AttributeValue {
    items::num(at.timestamp_millis())
}

/// The item of a record, at `version`.
fn record_item(user_id: &str, record: &MemoryRecord, version: u64) -> Item {
    let mut item = keys::key(
        keys::memory_pk(user_id),
        keys::memory_sk(record.kind.as_str(), &record.key),
    );
    item.insert(
        attr::KIND.into(),
        AttributeValue::S(record.kind.as_str().into()),
    );
    item.insert(attr::KEY.into(), AttributeValue::S(record.key.clone()));
    item.insert(attr::TEXT.into(), AttributeValue::S(record.text.clone()));
    item.insert(
        attr::SESSIONS.into(),
        AttributeValue::Ss(record.sessions.clone()),
    );
    item.insert(attr::CREATED_AT.into(), items::time(record.created_at));
    item.insert(attr::UPDATED_AT.into(), items::time(record.updated_at));
    item.insert(attr::CHANGED_AT.into(), items::time(record.changed_at));
    item.insert(attr::VERSION.into(), items::num(version));
    if let Some(vector) = &record.vector {
        item.insert(
            attr::VECTOR.into(),
            AttributeValue::B(vector.to_bytes().into()),
        );
    }
    item
}

/// A tombstone item at `sk`: no content, when it was erased, and when it goes.
fn tombstone(pk: String, sk: String, now: DateTime<Utc>) -> Item {
    let mut item = keys::key(pk, sk);
    item.insert(attr::FORGOTTEN_MS.into(), millis(now));
    item.insert(
        EXPIRES_AT.into(),
        items::num(now.timestamp() + TOMBSTONE_DAYS * 86_400),
    );
    item
}

fn record(item: &Item) -> Result<MemoryRecord, MalformedItem> {
    let kind =
        MemoryKind::parse(items::string(item, attr::KIND)?).ok_or(MalformedItem(attr::KIND))?;
    let key = items::string(item, attr::KEY)?.to_owned();
    let mut sessions = item
        .get(attr::SESSIONS)
        .and_then(|value| value.as_ss().ok())
        .cloned()
        .ok_or(MalformedItem(attr::SESSIONS))?;
    sessions.sort();
    let vector = match item.get(attr::VECTOR) {
        None => None,
        Some(value) => Some(
            value
                .as_b()
                .ok()
                .and_then(|bytes| QuantizedVector::from_bytes(bytes.as_ref()))
                .ok_or(MalformedItem(attr::VECTOR))?,
        ),
    };
    Ok(MemoryRecord {
        id: record_id(kind, &key),
        kind,
        key,
        text: items::string(item, attr::TEXT)?.to_owned(),
        sessions,
        created_at: items::timestamp(item, attr::CREATED_AT)?,
        updated_at: items::timestamp(item, attr::UPDATED_AT)?,
        changed_at: items::timestamp(item, attr::CHANGED_AT)?,
        version: items::number(item, attr::VERSION)?,
        vector,
    })
}

fn forgotten_at(item: &Item) -> Result<DateTime<Utc>, MalformedItem> {
    let ms: i64 = items::number(item, attr::FORGOTTEN_MS)?;
    DateTime::from_timestamp_millis(ms).ok_or(MalformedItem(attr::FORGOTTEN_MS))
}

/// The user's memory from the items of their partition.
fn user_memory(items: &[Item]) -> Result<UserMemory, MalformedItem> {
    let mut memory = UserMemory::default();
    for item in items {
        let sk = items::string(item, SK)?;
        if let Some(rest) = sk.strip_prefix(keys::MEMORY_RECORD_PREFIX) {
            if item.contains_key(attr::FORGOTTEN_MS) {
                let (kind, key) = rest.split_once('#').ok_or(MalformedItem(SK))?;
                let kind = MemoryKind::parse(kind).ok_or(MalformedItem(SK))?;
                memory
                    .forgotten
                    .insert(record_id(kind, &keys::decode(key)), forgotten_at(item)?);
            } else {
                memory.records.push(record(item)?);
            }
        } else if let Some(session) = sk.strip_prefix(keys::FORGOTTEN_SESSION_PREFIX) {
            memory.forgotten_sessions.insert(keys::decode(session));
        } else if sk == keys::MEMORY_GUARD_SK {
            memory.forgotten_all_at = Some(forgotten_at(item)?);
        }
    }
    memory.records.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(memory)
}

/// Maps a failed transaction: a failed condition is a [`StoreError::Conflict`].
fn transact_error<R: std::fmt::Debug>(
    operation: &str,
    error: &SdkError<TransactWriteItemsError, R>,
) -> StoreError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.as_service_error()
    {
        if cancelled
            .cancellation_reasons()
            .iter()
            .any(|reason| condition_failed(Some(reason)))
        {
            return StoreError::Conflict { expected: 0 };
        }
    }
    unavailable(operation, error)
}

/// Whether only another transaction got in the way (sending again may succeed): the turn
/// commit's test, and a transaction still in progress.
fn held_by_another<R>(error: &SdkError<TransactWriteItemsError, R>) -> bool {
    super::turn::only_transaction_conflict(error)
        || matches!(
            error.as_service_error(),
            Some(TransactWriteItemsError::TransactionInProgressException(_))
        )
}

#[async_trait]
impl LongTermMemory for DynamoLongTermMemory {
    async fn memory(&self, user_id: &str) -> Result<UserMemory, StoreError> {
        const OP: &str = "memory";
        let items = self.items(OP, user_id).await?;
        user_memory(&items).map_err(|error| malformed(OP, error))
    }

    async fn write_memories(
        &self,
        user_id: &str,
        session_id: &str,
        source_at: DateTime<Utc>,
        records: &[MemoryRecord],
    ) -> Result<(), StoreError> {
        const OP: &str = "write_memories";
        if records.is_empty() {
            return Ok(());
        }
        if records.len() > MAX_RECORDS_PER_WRITE {
            return Err(StoreError::TooLarge(format!(
                "{OP}: {} records, over {MAX_RECORDS_PER_WRITE} in one transaction",
                records.len()
            )));
        }
        let pk = keys::memory_pk(user_id);
        let source = millis(source_at);
        let guard = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(keys::key(pk.clone(), keys::MEMORY_GUARD_SK.into())))
            .condition_expression("attribute_not_exists(#f) OR #f < :source")
            .expression_attribute_names("#f", attr::FORGOTTEN_MS)
            .expression_attribute_values(":source", source.clone())
            .build()
            .map_err(|_| super::errors::unserializable(OP, "guard check"))?;
        let session = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(keys::key(
                pk.clone(),
                keys::forgotten_session_sk(session_id),
            )))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|_| super::errors::unserializable(OP, "session check"))?;
        let mut transaction = vec![
            TransactWriteItem::builder().condition_check(guard).build(),
            TransactWriteItem::builder()
                .condition_check(session)
                .build(),
        ];
        for record in records {
            let item = record_item(user_id, record, record.version + 1);
            super::turn::checked_size(&item, "a memory record")?;
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .expression_attribute_names("#pk", PK);
            let put = if record.version == 0 {
                // New: the key is free, or holds a tombstone older than the turn.
                put.condition_expression("attribute_not_exists(#pk) OR #f < :source")
                    .expression_attribute_names("#f", attr::FORGOTTEN_MS)
                    .expression_attribute_values(":source", source.clone())
            } else {
                put.condition_expression(
                    "attribute_exists(#pk) AND attribute_not_exists(#f) AND #v = :v",
                )
                .expression_attribute_names("#f", attr::FORGOTTEN_MS)
                .expression_attribute_names("#v", attr::VERSION)
                .expression_attribute_values(":v", items::num(record.version))
            };
            let put = put
                .build()
                .map_err(|_| super::errors::unserializable(OP, "record put"))?;
            transaction.push(TransactWriteItem::builder().put(put).build());
        }
        let mut attempt = 0;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(transaction.clone()))
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(()),
                Err(error) if held_by_another(&error) && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(
                        10 * u64::from(attempt) + fastrand::u64(0..10),
                    ))
                    .await;
                }
                Err(error) => return Err(transact_error(OP, &error)),
            }
        }
    }

    async fn forget(&self, user_id: &str, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        const OP: &str = "forget";
        let (kind, key) = parse_id(id).ok_or(StoreError::NotFound)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(tombstone(
                keys::memory_pk(user_id),
                keys::memory_sk(kind.as_str(), key),
                now,
            )))
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#f)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#f", attr::FORGOTTEN_MS)
            .build()
            .map_err(|_| super::errors::unserializable(OP, "tombstone"))?;
        match self.put(OP, put).await {
            Err(StoreError::Conflict { .. }) => Err(StoreError::NotFound),
            other => other,
        }
    }

    async fn forget_all(&self, user_id: &str, now: DateTime<Utc>) -> Result<usize, StoreError> {
        const OP: &str = "forget_all";
        let pk = keys::memory_pk(user_id);
        // The guard first: from here on no extraction of an earlier turn can write.
        let mut guard = keys::key(pk.clone(), keys::MEMORY_GUARD_SK.into());
        guard.insert(attr::FORGOTTEN_MS.into(), millis(now));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(guard))
            .send()
            .await
            .map_err(|error| unavailable(OP, &error))?;
        let found = self.items(OP, user_id).await?;
        let mut erased = 0;
        let doomed: Vec<Item> = found
            .iter()
            .filter_map(|item| {
                let sk = items::string(item, SK).ok()?;
                sk.starts_with(keys::MEMORY_RECORD_PREFIX).then(|| {
                    if !item.contains_key(attr::FORGOTTEN_MS) {
                        erased += 1;
                    }
                    keys::key(pk.clone(), sk.to_owned())
                })
            })
            .collect();
        for chunk in doomed.chunks(BATCH_SIZE) {
            delete_batch(&self.client, &self.table, chunk).await?;
        }
        Ok(erased)
    }

    async fn forget_session(
        &self,
        user_id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        const OP: &str = "forget_session";
        let pk = keys::memory_pk(user_id);
        // The session's tombstone first: its turns still on the stream will not be learned.
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(tombstone(
                pk.clone(),
                keys::forgotten_session_sk(session_id),
                now,
            )))
            .send()
            .await
            .map_err(|error| unavailable(OP, &error))?;
        let mut erased = 0;
        for _ in 0..=CONFLICT_RETRIES {
            let memory = self.memory(user_id).await?;
            let mut conflicted = false;
            for record in memory
                .records
                .iter()
                .filter(|record| record.sessions.iter().any(|s| s == session_id))
            {
                let sk = keys::memory_sk(record.kind.as_str(), &record.key);
                let put = if record.sessions.len() == 1 {
                    Put::builder().set_item(Some(tombstone(pk.clone(), sk, now)))
                } else {
                    let mut kept = record.clone();
                    kept.sessions.retain(|s| s != session_id);
                    kept.updated_at = now;
                    Put::builder().set_item(Some(record_item(user_id, &kept, record.version + 1)))
                };
                let put = put
                    .table_name(&self.table)
                    .condition_expression("attribute_not_exists(#f) AND #v = :v")
                    .expression_attribute_names("#f", attr::FORGOTTEN_MS)
                    .expression_attribute_names("#v", attr::VERSION)
                    .expression_attribute_values(":v", items::num(record.version))
                    .build()
                    .map_err(|_| super::errors::unserializable(OP, "record put"))?;
                match self.put(OP, put).await {
                    Ok(()) if record.sessions.len() == 1 => erased += 1,
                    Ok(()) => {}
                    // Changed since it was read (an extraction, or another erase): read again.
                    Err(StoreError::Conflict { .. }) => conflicted = true,
                    Err(error) => return Err(error),
                }
            }
            if !conflicted {
                return Ok(erased);
            }
        }
        Err(StoreError::Unavailable(format!(
            "{OP}: the records kept changing while they were erased"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn records_round_trip_through_items_and_tombstones_hold_no_text() {
        let now = at("2026-12-01T10:00:00.5Z");
        let stored = MemoryRecord {
            id: "fact.favourite_colour".into(),
            kind: MemoryKind::Fact,
            key: "favourite_colour".into(),
            text: "The user's favourite colour is blue.".into(),
            sessions: vec!["s1".into(), "s#2".into()],
            created_at: now,
            updated_at: now,
            changed_at: now,
            version: 3,
            vector: Some(QuantizedVector::quantize(&[0.5, -0.5, 0.25])),
        };
        let item = record_item("u#1", &stored, 3);
        let mut back = record(&item).unwrap();
        let mut expected = stored.clone();
        expected.sessions.sort();
        back.sessions.sort();
        assert_eq!(back.text, expected.text);
        assert_eq!(back.sessions, expected.sessions);
        assert_eq!(back.version, 3);
        assert_eq!(back.vector, expected.vector);
        assert_eq!(back.changed_at, now);

        let gone = tombstone(
            keys::memory_pk("u#1"),
            keys::memory_sk("fact", "favourite_colour"),
            now,
        );
        assert!(!gone.contains_key(attr::TEXT));
        let memory = user_memory(&[item.clone(), gone]).unwrap();
        // The tombstone and the record share a key in the table; here both were given.
        assert_eq!(memory.forgotten.get("fact.favourite_colour"), Some(&now));
        assert_eq!(memory.records.len(), 1);
    }

    #[test]
    fn guards_and_erased_sessions_are_read_back() {
        let now = at("2026-12-01T10:00:00Z");
        let pk = keys::memory_pk("u");
        let mut guard = keys::key(pk.clone(), keys::MEMORY_GUARD_SK.into());
        guard.insert(attr::FORGOTTEN_MS.into(), millis(now));
        let session = tombstone(pk, keys::forgotten_session_sk("s#1"), now);
        let memory = user_memory(&[guard, session]).unwrap();
        assert_eq!(memory.forgotten_all_at, Some(now));
        assert!(memory.forgotten_sessions.contains("s#1"));
        assert!(!memory.accepts("s2", now));
        assert!(memory.accepts("s2", at("2026-12-01T10:00:01Z")));
        assert!(!memory.accepts("s#1", at("2026-12-01T10:00:01Z")));
    }

    #[test]
    fn a_malformed_item_names_its_attribute() {
        let mut item = keys::key(keys::memory_pk("u"), keys::memory_sk("fact", "k"));
        item.insert(attr::KIND.into(), AttributeValue::S("opinion".into()));
        assert_eq!(user_memory(&[item]).unwrap_err(), MalformedItem(attr::KIND));
    }
}
