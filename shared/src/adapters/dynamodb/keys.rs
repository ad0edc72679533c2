//! The table's keys: every partition key starts with the owner, so no query can reach another
//! user's items.
//!
//! Ids are opaque strings, so `%` and `#` in them are percent-encoded before they go into a
//! key: `#` then only ever separates segments, and user `a#SESSION#b` with session `c` can never
//! share a partition with user `a` and session `b#SESSION#c`.

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// Partition key attribute.
pub const PK: &str = "PK";
/// Sort key attribute.
pub const SK: &str = "SK";
/// TTL attribute (Unix seconds).
pub const EXPIRES_AT: &str = "expires_at";
/// Sort key of the session marker; sorts after every `MSG#` key and before every `TRACE#` key.
pub const MARKER_SK: &str = "SESSION";
/// Prefix of message sort keys.
pub const MSG_PREFIX: &str = "MSG#";
/// Prefix of trace sort keys.
pub const TRACE_PREFIX: &str = "TRACE#";
/// Prefix of session header sort keys.
pub const HEADER_PREFIX: &str = "SESSION#";
/// Prefix of idempotency record sort keys (in the session's partition; sorts before `MSG#`).
pub const IDEMPOTENCY_PREFIX: &str = "IDEMPOTENCY#";
/// Upper bound of the message range: `$` is the byte after `#`.
pub const MSG_RANGE_END: &str = "MSG$";
/// Upper bound of the trace range: `$` is the byte after `#`.
pub const TRACE_RANGE_END: &str = "TRACE$";

/// Percent-encodes `%` and `#` so an id is one key segment.
pub fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for ch in id.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            other => out.push(other),
        }
    }
    out
}

/// The id [`encode`] was given.
pub fn decode(segment: &str) -> String {
    segment.replace("%23", "#").replace("%25", "%")
}

/// `USER#<user>`: the partition of a user's session headers.
pub fn user_pk(user_id: &str) -> String {
    format!("USER#{}", encode(user_id))
}

/// `USAGE#<month>`: the sort key of a user's spend in a month (in the user's partition).
pub fn usage_sk(month: &str) -> String {
    format!("USAGE#{month}")
}

/// `RATE#<minute>`: the sort key of a user's turn count in a minute (Unix seconds / 60).
pub fn rate_sk(minute: i64) -> String {
    format!("RATE#{minute:012}")
}

/// `SESSION#<session>`: the sort key of a session header.
pub fn header_sk(session_id: &str) -> String {
    format!("{HEADER_PREFIX}{}", encode(session_id))
}

/// `USER#<user>#SESSION#<session>`: the partition of a session's marker, messages and traces.
pub fn session_pk(user_id: &str, session_id: &str) -> String {
    format!("USER#{}#SESSION#{}", encode(user_id), encode(session_id))
}

/// `IDEMPOTENCY#<key>`: the sort key of an idempotency record, in its session's partition
/// (so deleting the session deletes it, and its key is scoped to the session).
pub fn idempotency_sk(key: &str) -> String {
    format!("{IDEMPOTENCY_PREFIX}{}", encode(key))
}

/// `MEMORY#<user>`: the partition of what is remembered about a user. It does not start with
/// `USER#` so that an IAM `dynamodb:LeadingKeys` pattern `MEMORY#*` reaches memory partitions
/// only (`USER#*#MEMORY` would also match the partition of a session named `MEMORY`).
pub fn memory_pk(user_id: &str) -> String {
    format!("{MEMORY_PK_PREFIX}{}", encode(user_id))
}

/// Prefix of memory partition keys.
pub const MEMORY_PK_PREFIX: &str = "MEMORY#";
/// Prefix of memory record sort keys.
pub const MEMORY_RECORD_PREFIX: &str = "MEM#";
/// Prefix of the sort keys of sessions erased with what they taught.
pub const FORGOTTEN_SESSION_PREFIX: &str = "FORGOTTEN#";
/// Sort key of the item that says when the user last erased everything.
pub const MEMORY_GUARD_SK: &str = "GUARD";

/// `MEM#<kind>#<key>`: the sort key of the record with id `<kind>.<key>`.
pub fn memory_sk(kind: &str, key: &str) -> String {
    format!("{MEMORY_RECORD_PREFIX}{kind}#{}", encode(key))
}

/// `FORGOTTEN#<session>`.
pub fn forgotten_session_sk(session_id: &str) -> String {
    format!("{FORGOTTEN_SESSION_PREFIX}{}", encode(session_id))
}

/// `MSG#<seq, 10 digits>`.
pub fn message_sk(seq: u64) -> String {
    format!("{MSG_PREFIX}{seq:010}")
}

/// `TRACE#<turn, 10 digits>`.
pub fn trace_sk(turn: u64) -> String {
    format!("{TRACE_PREFIX}{turn:010}")
}

/// A key map from a partition and a sort key.
pub fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk)),
        (SK.to_owned(), AttributeValue::S(sk)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_data_model_and_sort_in_the_required_order() {
        assert_eq!(user_pk("u1"), "USER#u1");
        assert_eq!(header_sk("s1"), "SESSION#s1");
        assert_eq!(session_pk("u1", "s1"), "USER#u1#SESSION#s1");
        assert_eq!(idempotency_sk("k#1"), "IDEMPOTENCY#k%231");
        assert!(idempotency_sk("~").as_str() < MSG_PREFIX);
        assert_eq!(message_sk(42), "MSG#0000000042");
        assert_eq!(trace_sk(7), "TRACE#0000000007");
        assert_eq!(memory_pk("u#1"), "MEMORY#u%231");
        assert_eq!(
            memory_sk("fact", "favourite_colour"),
            "MEM#fact#favourite_colour"
        );
        assert!(!session_pk("u", "MEMORY").starts_with(MEMORY_PK_PREFIX));
        assert!(message_sk(u32::MAX.into()).as_str() < MARKER_SK);
        assert!(MARKER_SK < trace_sk(0).as_str());
        assert!(trace_sk(9_999_999_999).as_str() < TRACE_RANGE_END);
    }

    #[test]
    fn ids_with_separators_cannot_collide_across_users() {
        assert_ne!(
            session_pk("a#SESSION#b", "c"),
            session_pk("a", "b#SESSION#c")
        );
        assert_ne!(session_pk("a%23", "b"), session_pk("a#", "b"));
        assert_eq!(encode("a#b%c"), "a%23b%25c");
        for id in ["a#b%c", "%2523", "%23#"] {
            assert_eq!(decode(&encode(id)), id);
        }
    }
}
