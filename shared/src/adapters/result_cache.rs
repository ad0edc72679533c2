//! A cache of tool results in the session table, for executors whose answers may be reused for
//! a while (a web search costs money and time; the same search a minute later can be answered
//! from here).
//!
//! One item per cached answer: `PK = CACHE#<tool>#<sha256 of the versioned, canonical request>`,
//! `SK = RESULT`, the answer as JSON text, when it was stored, and `expires_at` (the table's TTL
//! attribute). DynamoDB deletes expired items lazily, so a read also checks `expires_at` itself.
//! The key is a hash: the request (which may carry personal data, such as a search query) is not
//! stored in the key, and an executor's IAM policy can be limited to its own `CACHE#<tool>#`
//! prefix with `dynamodb:LeadingKeys`.
//!
//! The cache is an optimisation: callers treat its errors as misses and carry on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::{types::AttributeValue, Client};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ports::StoreError;

const SORT_KEY: &str = "RESULT";
/// Time for one cache read or write, retries included. A read normally takes milliseconds; a
/// cache that takes longer is treated as a miss rather than holding up the tool.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// Bumped when the meaning of a cached answer changes, so old items are never read back.
const FORMAT_VERSION: &str = "v1";

/// Why a cache read or write failed: the operation and the kind of failure, never item contents.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("result cache: {0}")]
pub struct CacheError(pub String);

/// An answer read from the cache.
#[derive(Clone, Debug, PartialEq)]
pub struct Cached {
    /// The answer as stored.
    pub value: Value,
    /// When it was stored (seconds since the epoch).
    pub stored_at: u64,
}

/// The results of one tool, cached in a DynamoDB table for a fixed time.
#[derive(Clone, Debug)]
pub struct ResultCache {
    client: Client,
    table: String,
    tool: String,
    ttl: Duration,
}

/// Seconds since the epoch, now.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl ResultCache {
    /// A cache of `tool`'s results in `table`, each kept for `ttl`.
    pub fn new(client: Client, table: impl Into<String>, tool: &str, ttl: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            tool: tool.to_owned(),
            ttl,
        }
    }

    /// How long an answer is kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The partition key for `request`, which must already be canonical (the caller normalises
    /// what should not make a difference, such as case and spacing in a search query).
    pub fn key(&self, request: &Value) -> String {
        partition_key(&self.tool, request)
    }

    /// The unexpired answer to `request`, if one is stored.
    pub async fn get(&self, request: &Value) -> Result<Option<Cached>, CacheError> {
        let read = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(self.key(request)))
            .key("SK", AttributeValue::S(SORT_KEY.to_owned()))
            .send();
        let output = tokio::time::timeout(CALL_TIMEOUT, read)
            .await
            .map_err(|_| timed_out("GetItem"))?
            .map_err(|error| failed("GetItem", &error))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let number = |name: &str| {
            item.get(name)
                .and_then(|value| value.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
        };
        let malformed = |what: &str| CacheError(format!("GetItem: malformed item ({what})"));
        let expires_at = number("expires_at").ok_or_else(|| malformed("expires_at"))?;
        if expires_at <= now() {
            return Ok(None);
        }
        let stored_at = number("stored_at").ok_or_else(|| malformed("stored_at"))?;
        let value = item
            .get("value")
            .and_then(|value| value.as_s().ok())
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| malformed("value"))?;
        Ok(Some(Cached { value, stored_at }))
    }

    /// Stores `value` as the answer to `request` for the cache's TTL.
    pub async fn put(&self, request: &Value, value: &Value) -> Result<(), CacheError> {
        let stored_at = now();
        let expires_at = stored_at.saturating_add(self.ttl.as_secs().max(1));
        let write = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", AttributeValue::S(self.key(request)))
            .item("SK", AttributeValue::S(SORT_KEY.to_owned()))
            .item("tool", AttributeValue::S(self.tool.clone()))
            .item("value", AttributeValue::S(value.to_string()))
            .item("stored_at", AttributeValue::N(stored_at.to_string()))
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .send();
        tokio::time::timeout(CALL_TIMEOUT, write)
            .await
            .map_err(|_| timed_out("PutItem"))?
            .map_err(|error| failed("PutItem", &error))?;
        Ok(())
    }
}

/// `CACHE#<tool>#<hex sha256 of "v1\n" + canonical JSON of request>`. serde_json writes object
/// keys in sorted order (no `preserve_order`), so equal requests hash equally.
pub fn partition_key(tool: &str, request: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(FORMAT_VERSION.as_bytes());
    hasher.update(b"\n");
    hasher.update(request.to_string().as_bytes());
    let digest = hasher.finalize();
    let mut key = format!("CACHE#{tool}#");
    for byte in digest.iter() {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

fn timed_out(operation: &str) -> CacheError {
    tracing::warn!(operation, "result cache call timed out");
    CacheError(format!(
        "{operation}: no answer within {} ms",
        CALL_TIMEOUT.as_millis()
    ))
}

fn failed<E, R>(
    operation: &'static str,
    error: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> CacheError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match super::dynamodb::errors::unavailable(operation, error) {
        StoreError::Unavailable(what) => CacheError(what),
        other => CacheError(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equal_requests_share_a_key_whatever_the_order_of_their_fields() {
        let a = partition_key("web_search", &json!({"query": "rust", "max_results": 5}));
        let b = partition_key("web_search", &json!({"max_results": 5, "query": "rust"}));
        assert_eq!(a, b);
        assert!(a.starts_with("CACHE#web_search#"), "{a}");
        assert_eq!(a.len(), "CACHE#web_search#".len() + 64);
    }

    #[test]
    fn any_difference_in_the_request_or_the_tool_is_another_key() {
        let base = partition_key("web_search", &json!({"query": "rust", "max_results": 5}));
        for other in [
            partition_key("web_search", &json!({"query": "rust", "max_results": 4})),
            partition_key("web_search", &json!({"query": "rust ", "max_results": 5})),
            partition_key("http_fetch", &json!({"query": "rust", "max_results": 5})),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn the_key_does_not_carry_the_request() {
        let key = partition_key("web_search", &json!({"query": "alice@example.com"}));
        assert!(!key.contains("alice"), "{key}");
    }
}
