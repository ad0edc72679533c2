//! Idempotency records in the session's partition (`IDEMPOTENCY#<key>`): a claim taken by one
//! conditional `PutItem` before the turn runs, completed by the turn's transaction, given back
//! by a conditional `DeleteItem` when the turn fails.
//!
//! | attribute | claim | completed |
//! |---|---|---|
//! | `state` | `claimed` | `completed` |
//! | `request_hash`, `token` | yes | yes |
//! | `lease_until` (Unix ms) | when the claim lapses | |
//! | `response` (JSON), `session_id` | | the answer to replay |
//! | `expires_at` (TTL, Unix s) | lease + 1 hour | completion + retention |
//!
//! Expiry is checked on every read (DynamoDB deletes expired items up to days late): an expired
//! record and a lapsed claim count as free.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, TimeZone, Utc};

use super::errors::{malformed, unavailable, unserializable};
use super::items::{self, Item, MalformedItem};
use super::keys::{self, EXPIRES_AT, PK};
use super::turn::{checked_size, put_if};
use crate::ports::{
    ClaimOutcome, IdempotencyClaim, IdempotencyCompletion, IdempotencyRecord, StoreError,
};
use aws_sdk_dynamodb::types::TransactWriteItem;

const STATE: &str = "state";
const TOKEN: &str = "token";
const LEASE_UNTIL: &str = "lease_until";
const CLAIMED: &str = "claimed";
const COMPLETED: &str = "completed";

/// How long an abandoned claim stays in the table before TTL removes it.
const CLAIM_TTL_SECONDS: i64 = 3600;

/// Claims `claim.key` in the session's partition, or reports who holds it.
pub async fn claim(
    client: &Client,
    table: &str,
    user_id: &str,
    session_id: &str,
    claim: &IdempotencyClaim,
) -> Result<ClaimOutcome, StoreError> {
    const OP: &str = "claim_idempotency";
    let pk = keys::session_pk(user_id, session_id);
    let mut item = keys::key(pk, keys::idempotency_sk(&claim.key));
    item.extend([
        (STATE.into(), AttributeValue::S(CLAIMED.into())),
        (
            items::attr::REQUEST_HASH.into(),
            AttributeValue::S(claim.request_hash.clone()),
        ),
        (TOKEN.into(), AttributeValue::S(claim.token.clone())),
        (
            LEASE_UNTIL.into(),
            items::num(claim.lease_until.timestamp_millis()),
        ),
        (items::attr::CREATED_AT.into(), items::time(claim.now)),
        (
            EXPIRES_AT.into(),
            items::num(claim.lease_until.timestamp() + CLAIM_TTL_SECONDS),
        ),
    ]);
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(
            "attribute_not_exists(#pk) OR #exp <= :now_s OR (#state = :claimed AND #lease <= :now_ms)",
        )
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#exp", EXPIRES_AT)
        .expression_attribute_names("#state", STATE)
        .expression_attribute_names("#lease", LEASE_UNTIL)
        .expression_attribute_values(":now_s", items::num(claim.now.timestamp()))
        .expression_attribute_values(":now_ms", items::num(claim.now.timestamp_millis()))
        .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let error = match result {
        Ok(_) => return Ok(ClaimOutcome::Claimed),
        Err(error) => error,
    };
    let held = match error.as_service_error() {
        Some(PutItemError::ConditionalCheckFailedException(failed)) => failed.item().cloned(),
        _ => return Err(unavailable(OP, &error)),
    };
    // The condition failed, so the item exists and is live.
    let Some(held) = held else {
        return Err(StoreError::Unavailable(format!(
            "{OP}: the key is held but its record was not returned"
        )));
    };
    outcome(&held).map_err(|error| malformed(OP, error))
}

/// What a live idempotency item says.
fn outcome(item: &Item) -> Result<ClaimOutcome, MalformedItem> {
    match items::string(item, STATE)? {
        COMPLETED => Ok(ClaimOutcome::Completed(record(item)?)),
        CLAIMED => Ok(ClaimOutcome::InFlight {
            request_hash: items::string(item, items::attr::REQUEST_HASH)?.to_owned(),
            lease_until: millis(items::number(item, LEASE_UNTIL)?)
                .ok_or(MalformedItem(LEASE_UNTIL))?,
        }),
        _ => Err(MalformedItem(STATE)),
    }
}

/// Deletes the claim if `token` still holds it.
pub async fn release(
    client: &Client,
    table: &str,
    user_id: &str,
    session_id: &str,
    key: &str,
    token: &str,
) -> Result<(), StoreError> {
    const OP: &str = "release_idempotency";
    let result = client
        .delete_item()
        .table_name(table)
        .set_key(Some(keys::key(
            keys::session_pk(user_id, session_id),
            keys::idempotency_sk(key),
        )))
        .condition_expression("#state = :claimed AND #token = :token")
        .expression_attribute_names("#state", STATE)
        .expression_attribute_names("#token", TOKEN)
        .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
        .expression_attribute_values(":token", AttributeValue::S(token.into()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) => match error.as_service_error() {
            Some(e) if e.is_conditional_check_failed_exception() => Ok(()),
            _ => Err(unavailable(OP, &error)),
        },
    }
}

/// The completed, unexpired record of a key.
pub async fn get(
    client: &Client,
    table: &str,
    user_id: &str,
    session_id: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    const OP: &str = "get_idempotency";
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(keys::key(
            keys::session_pk(user_id, session_id),
            keys::idempotency_sk(key),
        )))
        .consistent_read(true)
        .send()
        .await
        .map_err(|error| unavailable(OP, &error))?;
    let Some(item) = output.item() else {
        return Ok(None);
    };
    if items::is_expired(item, Utc::now()) || items::string(item, STATE).ok() != Some(COMPLETED) {
        return Ok(None);
    }
    record(item).map(Some).map_err(|error| malformed(OP, error))
}

/// The transaction action that completes the claim of `completion.token` with its record,
/// and the record's size.
pub fn completion(
    table: &str,
    pk: &str,
    completion: &IdempotencyCompletion,
    now: DateTime<Utc>,
) -> Result<(TransactWriteItem, usize), StoreError> {
    const OP: &str = "append_turn";
    let record = &completion.record;
    let response = serde_json::to_string(&record.response)
        .map_err(|_| unserializable(OP, "idempotency record"))?;
    let mut item = keys::key(pk.to_owned(), keys::idempotency_sk(&record.key));
    item.extend([
        (STATE.into(), AttributeValue::S(COMPLETED.into())),
        (
            items::attr::REQUEST_HASH.into(),
            AttributeValue::S(record.request_hash.clone()),
        ),
        (TOKEN.into(), AttributeValue::S(completion.token.clone())),
        (
            items::attr::SESSION_ID.into(),
            AttributeValue::S(record.session_id.clone()),
        ),
        (items::attr::RESPONSE.into(), AttributeValue::S(response)),
        (items::attr::CREATED_AT.into(), items::time(now)),
        (EXPIRES_AT.into(), items::num(record.expires_at)),
    ]);
    let size = checked_size(&item, "the idempotency record")?;
    let action = put_if(
        table,
        item,
        "#state = :claimed AND #token = :token",
        &[("#state", STATE), ("#token", TOKEN)],
        vec![
            (":claimed", AttributeValue::S(CLAIMED.into())),
            (":token", AttributeValue::S(completion.token.clone())),
        ],
    )?;
    Ok((action, size))
}

/// A completed record from its item.
fn record(item: &Item) -> Result<IdempotencyRecord, MalformedItem> {
    let sk = items::string(item, keys::SK)?;
    let key = sk
        .strip_prefix(keys::IDEMPOTENCY_PREFIX)
        .map(keys::decode)
        .ok_or(MalformedItem(keys::SK))?;
    Ok(IdempotencyRecord {
        key,
        request_hash: items::string(item, items::attr::REQUEST_HASH)?.to_owned(),
        session_id: items::string(item, items::attr::SESSION_ID)?.to_owned(),
        response: serde_json::from_str(items::string(item, items::attr::RESPONSE)?)
            .map_err(|_| MalformedItem(items::attr::RESPONSE))?,
        expires_at: items::number(item, EXPIRES_AT)?,
    })
}

fn millis(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}
