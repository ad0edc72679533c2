//! Conversions between the domain's types and DynamoDB items.
//!
//! Messages and traces are stored as JSON strings; numbers as `N`;
//! timestamps as RFC 3339 strings (exact round trip). A malformed item is reported by the name
//! of the attribute at fault, never with its content.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use super::keys;
use crate::domain::{
    message::{ContentBlock, Message, Role},
    model::Usage,
    trace::TurnTrace,
};
use crate::ports::{SessionHeader, StoredMessage};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// An item that does not have the expected shape: names the attribute at fault.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed item (attribute `{0}`)")]
pub struct MalformedItem(pub &'static str);

/// Header attribute names.
pub mod attr {
    /// The owner.
    pub const USER_ID: &str = "user_id";
    /// The session id.
    pub const SESSION_ID: &str = "session_id";
    /// The session title.
    pub const TITLE: &str = "title";
    /// Messages stored (optimistic concurrency version).
    pub const VERSION: &str = "version";
    /// Turns stored.
    pub const TURNS: &str = "turns";
    /// Input tokens of all turns.
    pub const INPUT_TOKENS: &str = "input_tokens";
    /// Output tokens of all turns.
    pub const OUTPUT_TOKENS: &str = "output_tokens";
    /// Input tokens read from the prompt cache, all turns (absent on sessions that never
    /// used it).
    pub const CACHE_READ_TOKENS: &str = "cache_read_tokens";
    /// Input tokens written to the prompt cache, all turns (absent likewise).
    pub const CACHE_WRITE_TOKENS: &str = "cache_write_tokens";
    /// Dollars of all turns.
    pub const COST_USD: &str = "cost_usd";
    /// Creation time.
    pub const CREATED_AT: &str = "created_at";
    /// Last update time.
    pub const UPDATED_AT: &str = "updated_at";
    /// A message's position.
    pub const SEQ: &str = "seq";
    /// A message's or trace's turn.
    pub const TURN: &str = "turn";
    /// A message's role.
    pub const ROLE: &str = "role";
    /// A message's content (JSON).
    pub const CONTENT: &str = "content";
    /// A trace (JSON).
    pub const TRACE: &str = "trace";
    /// An idempotency record's request fingerprint.
    pub const REQUEST_HASH: &str = "request_hash";
    /// An idempotency record's response (JSON).
    pub const RESPONSE: &str = "response";
}

/// A timestamp as stored.
pub fn time(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A number attribute.
pub fn num(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A dollar amount as a DynamoDB number: non-finite or negligible amounts are stored as 0 so
/// the value is always a valid `N`.
pub fn dollars(value: f64) -> AttributeValue {
    if value.is_finite() && value.abs() >= 1e-12 {
        num(value)
    } else {
        num(0)
    }
}

/// The header item of a new, empty session.
pub fn new_header(header: &SessionHeader) -> Item {
    let mut item = keys::key(
        keys::user_pk(&header.user_id),
        keys::header_sk(&header.session_id),
    );
    item.extend([
        (
            attr::USER_ID.into(),
            AttributeValue::S(header.user_id.clone()),
        ),
        (
            attr::SESSION_ID.into(),
            AttributeValue::S(header.session_id.clone()),
        ),
        (attr::VERSION.into(), num(0)),
        (attr::TURNS.into(), num(0)),
        (attr::INPUT_TOKENS.into(), num(0)),
        (attr::OUTPUT_TOKENS.into(), num(0)),
        (attr::COST_USD.into(), num(0)),
        (attr::CREATED_AT.into(), time(header.created_at)),
        (attr::UPDATED_AT.into(), time(header.updated_at)),
        (keys::EXPIRES_AT.into(), num(header.expires_at)),
    ]);
    item
}

/// The marker item of a session.
pub fn marker(user_id: &str, session_id: &str, now: DateTime<Utc>, expires_at: i64) -> Item {
    let mut item = keys::key(
        keys::session_pk(user_id, session_id),
        keys::MARKER_SK.to_owned(),
    );
    item.insert(attr::CREATED_AT.into(), time(now));
    item.insert(keys::EXPIRES_AT.into(), num(expires_at));
    item.insert(attr::VERSION.into(), num(0));
    item.insert(attr::TURN.into(), num(0));
    item
}

/// A header from its item.
pub fn header(item: &Item) -> Result<SessionHeader, MalformedItem> {
    Ok(SessionHeader {
        user_id: string(item, attr::USER_ID)?.to_owned(),
        session_id: string(item, attr::SESSION_ID)?.to_owned(),
        title: item
            .get(attr::TITLE)
            .and_then(|value| value.as_s().ok())
            .cloned(),
        created_at: timestamp(item, attr::CREATED_AT)?,
        updated_at: timestamp(item, attr::UPDATED_AT)?,
        version: number(item, attr::VERSION)?,
        turns: number(item, attr::TURNS)?,
        usage: Usage {
            input_tokens: number(item, attr::INPUT_TOKENS)?,
            output_tokens: number(item, attr::OUTPUT_TOKENS)?,
            cache_read_tokens: optional_number(item, attr::CACHE_READ_TOKENS)?,
            cache_write_tokens: optional_number(item, attr::CACHE_WRITE_TOKENS)?,
        },
        cost_usd: number(item, attr::COST_USD)?,
        expires_at: number(item, keys::EXPIRES_AT)?,
    })
}

/// The item of one message (whose content was already fitted to the size cap).
pub fn message(
    pk: &str,
    stored: &StoredMessage,
    expires_at: i64,
) -> Result<Item, serde_json::Error> {
    let content = serde_json::to_string(&stored.message.content)?;
    let role = match stored.message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let mut item = keys::key(pk.to_owned(), keys::message_sk(stored.seq));
    item.extend([
        (attr::SEQ.into(), num(stored.seq)),
        (attr::TURN.into(), num(stored.turn)),
        (attr::ROLE.into(), AttributeValue::S(role.into())),
        (attr::CONTENT.into(), AttributeValue::S(content)),
        (attr::CREATED_AT.into(), time(stored.created_at)),
        (keys::EXPIRES_AT.into(), num(expires_at)),
    ]);
    Ok(item)
}

/// A stored message from its item.
pub fn stored_message(item: &Item) -> Result<StoredMessage, MalformedItem> {
    let role = match string(item, attr::ROLE)? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => return Err(MalformedItem(attr::ROLE)),
    };
    let content: Vec<ContentBlock> = serde_json::from_str(string(item, attr::CONTENT)?)
        .map_err(|_| MalformedItem(attr::CONTENT))?;
    Ok(StoredMessage {
        seq: number(item, attr::SEQ)?,
        turn: number(item, attr::TURN)?,
        message: Message { role, content },
        created_at: timestamp(item, attr::CREATED_AT)?,
    })
}

/// The item of a turn's trace.
pub fn trace(
    pk: &str,
    trace: &TurnTrace,
    turn: u64,
    now: DateTime<Utc>,
    expires_at: i64,
) -> Result<Item, serde_json::Error> {
    let mut item = keys::key(pk.to_owned(), keys::trace_sk(turn));
    item.extend([
        (attr::TURN.into(), num(turn)),
        (
            attr::TRACE.into(),
            AttributeValue::S(serde_json::to_string(trace)?),
        ),
        (attr::CREATED_AT.into(), time(now)),
        (keys::EXPIRES_AT.into(), num(expires_at)),
    ]);
    Ok(item)
}

/// A trace from its item.
pub fn turn_trace(item: &Item) -> Result<TurnTrace, MalformedItem> {
    serde_json::from_str(string(item, attr::TRACE)?).map_err(|_| MalformedItem(attr::TRACE))
}

/// True when an item's `expires_at` has passed: DynamoDB's TTL deletes such items late (up to
/// days), so every read leaves them out itself.
pub fn is_expired(item: &Item, now: DateTime<Utc>) -> bool {
    number::<i64>(item, keys::EXPIRES_AT).is_ok_and(|at| at <= now.timestamp())
}

/// An item's size as DynamoDB counts it (attribute names plus values), for the item and
/// transaction limits.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(items) | AttributeValue::Ns(items) => {
            items.iter().map(String::len).sum()
        }
        AttributeValue::Bs(items) => items.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// A string attribute.
pub fn string<'a>(item: &'a Item, name: &'static str) -> Result<&'a str, MalformedItem> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
        .ok_or(MalformedItem(name))
}

/// A number attribute parsed as `T`.
pub fn number<T: std::str::FromStr>(item: &Item, name: &'static str) -> Result<T, MalformedItem> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|text| text.parse().ok())
        .ok_or(MalformedItem(name))
}

/// A number attribute that may be absent (0 then).
fn optional_number(item: &Item, name: &'static str) -> Result<u64, MalformedItem> {
    match item.get(name) {
        None => Ok(0),
        Some(_) => number(item, name),
    }
}

/// A timestamp attribute.
pub fn timestamp(item: &Item, name: &'static str) -> Result<DateTime<Utc>, MalformedItem> {
    DateTime::parse_from_rfc3339(string(item, name)?)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| MalformedItem(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_messages_and_records_round_trip_through_items() {
        let now = DateTime::parse_from_rfc3339("2025-03-01T10:00:00.123456789Z")
            .map(|at| at.with_timezone(&Utc))
            .unwrap();
        let header_value = SessionHeader {
            user_id: "u#1".into(),
            session_id: "s%1".into(),
            title: None,
            created_at: now,
            updated_at: now,
            version: 0,
            turns: 0,
            usage: Usage::default(),
            cost_usd: 0.0,
            expires_at: 1_700_000_000,
        };
        assert_eq!(header(&new_header(&header_value)).unwrap(), header_value);

        let stored = StoredMessage {
            seq: 3,
            turn: 2,
            message: Message::assistant_text("hi \"there\""),
            created_at: now,
        };
        let item = message("USER#u#SESSION#s", &stored, 5).unwrap();
        assert_eq!(stored_message(&item).unwrap(), stored);
    }

    #[test]
    fn dollars_are_always_a_valid_number() {
        assert_eq!(dollars(f64::NAN), AttributeValue::N("0".into()));
        assert_eq!(dollars(1e-300), AttributeValue::N("0".into()));
        assert_eq!(dollars(0.25), AttributeValue::N("0.25".into()));
    }
}
