//! The single `TransactWriteItems` that stores a turn, and the reading of its cancellation
//! reasons.
//!
//! Action order is fixed, and the failure mapping relies on it: 0 = header update (version
//! check, `ALL_OLD` on failure), 1 = marker update (the same version, so the window read from
//! the marker always agrees with the header), then one put per message, then the trace, then
//! the idempotency record if any (completing this attempt's claim), then, when the commit
//! counts usage, the user's month and minute counters (`USER#<user>` / `USAGE#<month>` and
//! `RATE#<minute>`): a concurrent turn of the same user in another session touching them
//! cancels the transaction with `TransactionConflict`, which the adapter retries (the version
//! condition keeps a retry from storing a turn twice).
//!
//! The transaction is checked against DynamoDB's limits before it is sent (100 actions, 4 MB,
//! 400 KB per item): the agent fits a turn to them by design (`domain::truncate::fit_turn`,
//! `TurnTrace::fitted`, `MAX_STEPS` ≤ 40), so a turn over them is a bug, reported as
//! [`StoreError::TooLarge`], never sent and never retried.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use std::collections::HashMap;

use super::errors::{condition_failed, transaction_conflict, unavailable, unserializable};
use super::idempotency;
use super::items::{self, attr, item_size, Item};
use super::keys::{self, EXPIRES_AT, PK};
use crate::domain::truncate::{fit_message, MAX_MESSAGE_CONTENT_BYTES};
use crate::ports::{StoreError, StoredMessage, TurnCommit};

/// DynamoDB's cap on the actions of one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// DynamoDB's cap on the total size of one transaction.
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;

/// DynamoDB's cap on the size of one item.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Bytes counted for each update action (header, marker): their keys and a few numbers.
const UPDATE_ACTION_BYTES: usize = 1024;

/// Name of the operation in errors.
const OP: &str = "append_turn";

/// The actions that store `commit`, in the order [`failure`] expects.
pub fn actions(
    table: &str,
    user_id: &str,
    session_id: &str,
    commit: &TurnCommit,
    expires_at: i64,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let pk = keys::session_pk(user_id, session_id);
    let expected = commit.expected_version;
    let stored: Vec<StoredMessage> = (expected + 1..)
        .zip(&commit.messages)
        .map(|(seq, message)| StoredMessage {
            seq,
            turn: commit.turn,
            message: fit_message(message, MAX_MESSAGE_CONTENT_BYTES),
            created_at: commit.now,
        })
        .collect();
    let count = stored.len()
        + 3
        + usize::from(commit.idempotency.is_some())
        + 2 * usize::from(commit.count_usage);
    if count > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::TooLarge(format!(
            "{OP}: a turn of {} messages needs {count} actions, over DynamoDB's {MAX_TRANSACTION_ITEMS}",
            stored.len()
        )));
    }
    let new_version = expected + stored.len() as u64;
    let mut total_bytes = 2 * UPDATE_ACTION_BYTES;

    let mut actions = Vec::with_capacity(count);
    actions.push(header_update(
        table,
        user_id,
        session_id,
        commit,
        new_version,
        expires_at,
    )?);
    let marker = Update::builder()
        .table_name(table)
        .set_key(Some(keys::key(pk.clone(), keys::MARKER_SK.to_owned())))
        .update_expression("SET #exp = :exp, #version = :new, #turn = :turn ADD #cost :cost")
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#exp", EXPIRES_AT)
        .expression_attribute_names("#version", attr::VERSION)
        .expression_attribute_names("#turn", attr::TURN)
        .expression_attribute_names("#cost", attr::COST_USD)
        .expression_attribute_values(":exp", items::num(expires_at))
        .expression_attribute_values(":new", items::num(new_version))
        .expression_attribute_values(":turn", items::num(commit.turn))
        .expression_attribute_values(":cost", items::dollars(commit.cost_usd))
        .build()
        .map_err(|_| unserializable(OP, "marker update"))?;
    actions.push(TransactWriteItem::builder().update(marker).build());
    for message in &stored {
        let item =
            items::message(&pk, message, expires_at).map_err(|_| unserializable(OP, "message"))?;
        total_bytes += checked_size(&item, "a message")?;
        actions.push(put(table, item, true)?);
    }
    let trace = items::trace(&pk, &commit.trace, commit.turn, commit.now, expires_at)
        .map_err(|_| unserializable(OP, "trace"))?;
    total_bytes += checked_size(&trace, "the trace")?;
    actions.push(put(table, trace, false)?);
    if let Some(completion) = &commit.idempotency {
        let (action, size) = idempotency::completion(table, &pk, completion, commit.now)?;
        total_bytes += size;
        actions.push(action);
    }
    if commit.count_usage {
        actions.extend(usage_updates(table, user_id, commit)?);
        total_bytes += 2 * UPDATE_ACTION_BYTES;
    }
    if total_bytes > MAX_TRANSACTION_BYTES {
        return Err(StoreError::TooLarge(format!(
            "{OP}: the turn's transaction is {total_bytes} bytes, over DynamoDB's {MAX_TRANSACTION_BYTES}"
        )));
    }
    Ok(actions)
}

/// How long a minute's turn counter is kept: long enough for any clock skew between handlers.
const RATE_ITEM_TTL_SECONDS: i64 = 300;

/// How long a month's spend is kept: a year and a month, for the monthly reports.
const USAGE_ITEM_TTL_SECONDS: i64 = 400 * 24 * 3600;

/// The user's counters, bumped with the turn: the month's dollars and turns, the minute's
/// turns.
fn usage_updates(
    table: &str,
    user_id: &str,
    commit: &TurnCommit,
) -> Result<[TransactWriteItem; 2], StoreError> {
    let pk = keys::user_pk(user_id);
    let now = commit.now.timestamp();
    let month = Update::builder()
        .table_name(table)
        .set_key(Some(keys::key(
            pk.clone(),
            keys::usage_sk(&crate::ports::usage_month(commit.now)),
        )))
        .update_expression("SET #exp = :exp ADD #cost :cost, #turns :one")
        .expression_attribute_names("#exp", EXPIRES_AT)
        .expression_attribute_names("#cost", attr::COST_USD)
        .expression_attribute_names("#turns", attr::TURNS)
        .expression_attribute_values(":exp", items::num(now + USAGE_ITEM_TTL_SECONDS))
        .expression_attribute_values(":cost", items::dollars(commit.cost_usd))
        .expression_attribute_values(":one", items::num(1))
        .build()
        .map_err(|_| unserializable(OP, "usage update"))?;
    let minute = Update::builder()
        .table_name(table)
        .set_key(Some(keys::key(
            pk,
            keys::rate_sk(crate::ports::usage_minute(commit.now)),
        )))
        .update_expression("SET #exp = :exp ADD #turns :one")
        .expression_attribute_names("#exp", EXPIRES_AT)
        .expression_attribute_names("#turns", attr::TURNS)
        .expression_attribute_values(":exp", items::num(now + RATE_ITEM_TTL_SECONDS))
        .expression_attribute_values(":one", items::num(1))
        .build()
        .map_err(|_| unserializable(OP, "rate update"))?;
    Ok([
        TransactWriteItem::builder().update(month).build(),
        TransactWriteItem::builder().update(minute).build(),
    ])
}

/// True when a failed turn transaction was cancelled only by another transaction on one of
/// its items (no condition failed): sending it again is safe and may succeed.
pub fn only_transaction_conflict<R>(error: &SdkError<TransactWriteItemsError, R>) -> bool {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let reasons = cancelled.cancellation_reasons();
            transaction_conflict(reasons)
                && !reasons.iter().any(|reason| condition_failed(Some(reason)))
        }
        _ => false,
    }
}

/// The size of an item, if it is within DynamoDB's item limit.
pub fn checked_size(item: &Item, what: &str) -> Result<usize, StoreError> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge(format!(
            "{OP}: {what} is {size} bytes, over DynamoDB's {MAX_ITEM_BYTES} per item"
        )));
    }
    Ok(size)
}

/// The header update: bumps version and totals if the header is still at the expected version.
fn header_update(
    table: &str,
    user_id: &str,
    session_id: &str,
    commit: &TurnCommit,
    new_version: u64,
    expires_at: i64,
) -> Result<TransactWriteItem, StoreError> {
    let mut set = "SET #version = :new, #turns = :turn, #updated = :now, #exp = :exp".to_owned();
    let mut names = HashMap::from([
        ("#pk".to_owned(), PK.to_owned()),
        ("#version".to_owned(), attr::VERSION.to_owned()),
        ("#turns".to_owned(), attr::TURNS.to_owned()),
        ("#updated".to_owned(), attr::UPDATED_AT.to_owned()),
        ("#exp".to_owned(), EXPIRES_AT.to_owned()),
        ("#in".to_owned(), attr::INPUT_TOKENS.to_owned()),
        ("#out".to_owned(), attr::OUTPUT_TOKENS.to_owned()),
        ("#cost".to_owned(), attr::COST_USD.to_owned()),
        ("#cread".to_owned(), attr::CACHE_READ_TOKENS.to_owned()),
        ("#cwrite".to_owned(), attr::CACHE_WRITE_TOKENS.to_owned()),
    ]);
    let mut values: HashMap<String, AttributeValue> = HashMap::from([
        (":new".to_owned(), items::num(new_version)),
        (":expected".to_owned(), items::num(commit.expected_version)),
        (":turn".to_owned(), items::num(commit.turn)),
        (":now".to_owned(), items::time(commit.now)),
        (":exp".to_owned(), items::num(expires_at)),
        (":in".to_owned(), items::num(commit.usage.input_tokens)),
        (":out".to_owned(), items::num(commit.usage.output_tokens)),
        (":cost".to_owned(), items::dollars(commit.cost_usd)),
        (
            ":cread".to_owned(),
            items::num(commit.usage.cache_read_tokens),
        ),
        (
            ":cwrite".to_owned(),
            items::num(commit.usage.cache_write_tokens),
        ),
    ]);
    if let Some(title) = &commit.title {
        set.push_str(", #title = if_not_exists(#title, :title)");
        names.insert("#title".to_owned(), attr::TITLE.to_owned());
        values.insert(":title".to_owned(), AttributeValue::S(title.clone()));
    }
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(keys::key(
            keys::user_pk(user_id),
            keys::header_sk(session_id),
        )))
        .update_expression(format!(
            "{set} ADD #in :in, #out :out, #cost :cost, #cread :cread, #cwrite :cwrite"
        ))
        .condition_expression("attribute_exists(#pk) AND #version = :expected")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|_| unserializable(OP, "header update"))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// A put action, conditioned on the item being new when `new_only`.
pub fn put(table: &str, item: Item, new_only: bool) -> Result<TransactWriteItem, StoreError> {
    if new_only {
        return put_if(
            table,
            item,
            "attribute_not_exists(#pk)",
            &[("#pk", PK)],
            Vec::new(),
        );
    }
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(|_| unserializable(OP, "put"))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A put action under a condition with its names and values.
pub fn put_if(
    table: &str,
    item: Item,
    condition: &str,
    names: &[(&str, &str)],
    values: Vec<(&str, AttributeValue)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut builder = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition);
    for (name, attribute) in names {
        builder = builder.expression_attribute_names(*name, *attribute);
    }
    for (name, value) in values {
        builder = builder.expression_attribute_values(name, value);
    }
    let put = builder.build().map_err(|_| unserializable(OP, "put"))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// What a failed turn transaction means: `Conflict` when the header moved on (or another turn
/// or an idempotency key got there first), `NotFound` when the session is gone.
pub fn failure<R: std::fmt::Debug>(
    error: &SdkError<TransactWriteItemsError, R>,
    expected: u64,
) -> StoreError {
    let reasons = match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            cancelled.cancellation_reasons()
        }
        _ => return unavailable(OP, error),
    };
    let header = reasons.first();
    if condition_failed(header) {
        // ALL_OLD: the header's old image is returned only when the header still exists.
        return match header.and_then(|reason| reason.item()) {
            Some(_) => StoreError::Conflict { expected },
            None => StoreError::NotFound,
        };
    }
    if condition_failed(reasons.get(1)) {
        return StoreError::NotFound;
    }
    if reasons.iter().skip(2).any(|r| condition_failed(Some(r))) || transaction_conflict(reasons) {
        return StoreError::Conflict { expected };
    }
    // DynamoDB's reason for an item over 400 KB (or another invalid item): no retry fixes it.
    if reasons.iter().any(|r| r.code() == Some("ValidationError")) {
        tracing::error!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(error), "a turn's transaction was refused as invalid");
        return StoreError::TooLarge(format!(
            "{OP}: DynamoDB refused an item of the turn as invalid"
        ));
    }
    unavailable(OP, error)
}

/// True when a failed create transaction means the session id is taken (a failed
/// `attribute_not_exists`, or a concurrent transaction on the same keys).
pub fn create_conflict<R: std::fmt::Debug>(error: &SdkError<TransactWriteItemsError, R>) -> bool {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let reasons = cancelled.cancellation_reasons();
            reasons.iter().any(|reason| condition_failed(Some(reason)))
                || transaction_conflict(reasons)
        }
        _ => false,
    }
}
