//! Deleting every item of a session's partition: keys-only consistent Query, `BatchWriteItem`
//! in chunks of 25 with backed-off retries of unprocessed items, and the marker last.
//!
//! The marker goes last so that a delete interrupted half-way leaves a marker behind: the
//! session id then stays taken (create says `AlreadyExists`) instead of a new session
//! inheriting old messages, and the next delete finishes the job.

use std::time::Duration;

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use super::errors::{unavailable, unserializable};
use super::items::{self, Item};
use super::keys::{self, PK, SK};
use crate::ports::StoreError;

/// DynamoDB's cap on the requests of one `BatchWriteItem`.
pub const BATCH_SIZE: usize = 25;
/// Retries of unprocessed items before giving up.
const MAX_RETRIES: u32 = 8;
/// Name of the operation in errors.
const OP: &str = "delete_session";

/// Deletes a session's header if it exists; false when it did not. Retried while a turn's
/// transaction holds the header (`TransactionConflictException`), which ends in milliseconds.
pub async fn delete_header(
    client: &Client,
    table: &str,
    user_id: &str,
    session_id: &str,
) -> Result<bool, StoreError> {
    let mut attempt = 0;
    loop {
        let result = client
            .delete_item()
            .table_name(table)
            .set_key(Some(keys::key(
                keys::user_pk(user_id),
                keys::header_sk(session_id),
            )))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(true),
            Err(error) => error,
        };
        match error.as_service_error() {
            Some(e) if e.is_conditional_check_failed_exception() => return Ok(false),
            Some(e) if e.is_transaction_conflict_exception() && attempt < MAX_RETRIES => {
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
            _ => return Err(unavailable(OP, &error)),
        }
    }
}

/// Deletes every item of the partition `pk`, the marker last.
pub async fn purge_partition(client: &Client, table: &str, pk: &str) -> Result<(), StoreError> {
    let found: Vec<Item> = client
        .query()
        .table_name(table)
        .key_condition_expression("#pk = :pk")
        .projection_expression("#pk, #sk")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#sk", SK)
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| unavailable(OP, &error))?;
    let (markers, others): (Vec<Item>, Vec<Item>) = found
        .into_iter()
        .partition(|item| items::string(item, SK).is_ok_and(|sk| sk == keys::MARKER_SK));
    for chunk in others.chunks(BATCH_SIZE) {
        delete_batch(client, table, chunk).await?;
    }
    delete_batch(client, table, &markers).await
}

/// Deletes up to 25 items, retrying unprocessed ones with exponential backoff.
pub async fn delete_batch(client: &Client, table: &str, keys: &[Item]) -> Result<(), StoreError> {
    let mut pending = keys
        .iter()
        .map(|key| {
            DeleteRequest::builder()
                .set_key(Some(key.clone()))
                .build()
                .map(|delete| WriteRequest::builder().delete_request(delete).build())
                .map_err(|_| unserializable(OP, "delete request"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut attempt = 0;
    while !pending.is_empty() {
        let output = client
            .batch_write_item()
            .request_items(table, pending)
            .send()
            .await
            .map_err(|error| unavailable(OP, &error))?;
        pending = output
            .unprocessed_items()
            .and_then(|unprocessed| unprocessed.get(table))
            .cloned()
            .unwrap_or_default();
        if pending.is_empty() {
            break;
        }
        attempt += 1;
        if attempt > MAX_RETRIES {
            return Err(StoreError::Unavailable(format!(
                "{OP}: {} items stayed unprocessed after {MAX_RETRIES} retries",
                pending.len()
            )));
        }
        tokio::time::sleep(backoff(attempt)).await;
    }
    Ok(())
}

/// 50 ms doubled per attempt, capped at 2 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(6)).min(2_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(30), Duration::from_millis(2_000));
    }
}
