//! Prompt caching as Bedrock accounts it for Converse `cachePoint` blocks.
//!
//! A request is read in Bedrock's prefix order: the entries of `toolConfig.tools`, then the
//! entries of `system`, then every message's content blocks. Each entry or block that is
//! not a `cachePoint` is an *item*; a `cachePoint` stands at the boundary after the items
//! before it. The prefix at a boundary is the items before it: its key is a hash of the
//! model id and the items' compact JSON (a message block as `{"<role>": <block>}`, so the
//! role is part of it), and its size in tokens is [`crate::script::tokens`] of the sum of
//! the items' JSON lengths (bytes / 4).
//!
//! Rules ([`Cache::account`]): a cache point whose prefix is below the minimum is ignored.
//! The read is the longest live cached prefix found at any boundary from a valid cache
//! point back to [`LOOKBACK_BLOCKS`] items before it; the write is the tokens from the end
//! of the read to the furthest valid cache point, if that is beyond the read; then every
//! valid cache point's prefix is stored (or refreshed). Entries live for the TTL, refreshed
//! when read; at most [`MAX_CACHE_ENTRIES`] are held.

use crate::hash::Fnv128;
use crate::script::tokens;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Most `cachePoint` blocks one request may carry.
pub const MAX_CACHE_POINTS: usize = 4;
/// How many items before a cache point are searched for a cached prefix (Anthropic's
/// lookback).
pub const LOOKBACK_BLOCKS: usize = 20;
/// Default minimum prefix, in tokens, for a cache point to count (Claude's 1024).
pub const DEFAULT_CACHE_MIN_TOKENS: u64 = 1024;
/// Default life of a cache entry (Bedrock's five minutes), refreshed on every read.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Most cache entries held (all models together); when full, expired entries go first,
/// then the one closest to expiring.
pub const MAX_CACHE_ENTRIES: usize = 10_000;

/// The cache tokens of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheUsage {
    /// Tokens read from the cache.
    pub read: u64,
    /// Tokens written to the cache.
    pub write: u64,
}

/// One entry of the request in prefix order.
enum Entry<'a> {
    /// An item: its section tag and compact JSON.
    Item(u8, String),
    /// A `cachePoint` block: its value and its Smithy-style member path.
    CachePoint(&'a Value, String),
}

/// Walks `raw` in Bedrock's prefix order (tools, system, messages).
fn walk<'a>(raw: &'a Value, mut visit: impl FnMut(Entry<'a>)) {
    let array = |v: Option<&'a Value>| v.and_then(Value::as_array).into_iter().flatten();
    let tools = array(raw.get("toolConfig").and_then(|c| c.get("tools")));
    for (i, entry) in tools.enumerate() {
        match entry.get("cachePoint") {
            Some(point) => visit(Entry::CachePoint(
                point,
                format!("toolConfig.tools.{}.member.cachePoint", i + 1),
            )),
            None => visit(Entry::Item(b't', entry.to_string())),
        }
    }
    for (i, entry) in array(raw.get("system")).enumerate() {
        match entry.get("cachePoint") {
            Some(point) => visit(Entry::CachePoint(
                point,
                format!("system.{}.member.cachePoint", i + 1),
            )),
            None => visit(Entry::Item(b's', entry.to_string())),
        }
    }
    for (i, message) in array(raw.get("messages")).enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        for (j, block) in array(message.get("content")).enumerate() {
            match block.get("cachePoint") {
                Some(point) => visit(Entry::CachePoint(
                    point,
                    format!(
                        "messages.{}.member.content.{}.member.cachePoint",
                        i + 1,
                        j + 1
                    ),
                )),
                None => {
                    let mut wrapped = serde_json::Map::new();
                    wrapped.insert(role.to_string(), block.clone());
                    visit(Entry::Item(b'm', Value::Object(wrapped).to_string()));
                }
            }
        }
    }
}

/// Checks the request's `cachePoint` blocks as Bedrock does: `type` must be `default`,
/// `ttl` (optional) `5m` or `1h`, and there may be at most [`MAX_CACHE_POINTS`].
pub fn validate(raw: &Value) -> Result<(), String> {
    let mut problem = None;
    let mut count = 0usize;
    walk(raw, |entry| {
        let Entry::CachePoint(point, path) = entry else {
            return;
        };
        count += 1;
        if problem.is_some() {
            return;
        }
        problem = match point.get("type") {
            None | Some(Value::Null) => Some(format!(
                "1 validation error detected: Value null at '{path}.type' failed to satisfy \
                 constraint: Member must not be null"
            )),
            Some(Value::String(t)) if t == "default" => None,
            Some(other) => Some(enum_error(other, &format!("{path}.type"), "[default]")),
        }
        .or_else(|| match point.get("ttl") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if t == "5m" || t == "1h" => None,
            Some(other) => Some(enum_error(other, &format!("{path}.ttl"), "[5m, 1h]")),
        });
    });
    if let Some(problem) = problem {
        return Err(problem);
    }
    if count > MAX_CACHE_POINTS {
        return Err(format!(
            "The model returned the following errors: A maximum of {MAX_CACHE_POINTS} blocks \
             with cache_control may be provided. Found {count}."
        ));
    }
    Ok(())
}

fn enum_error(value: &Value, path: &str, allowed: &str) -> String {
    let shown = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string);
    format!(
        "1 validation error detected: Value '{shown}' at '{path}' failed to satisfy \
         constraint: Member must satisfy enum value set: {allowed}"
    )
}

/// A request seen as cache prefixes: the size and key of the prefix at every item
/// boundary, and where the cache points stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `bytes[k]`: JSON bytes of the first `k` items (`bytes[0]` = 0).
    bytes: Vec<u64>,
    /// `keys[k]`: the key of that prefix, seeded with the model id.
    keys: Vec<u128>,
    /// The boundaries (item counts) where cache points stand, in request order.
    points: Vec<usize>,
}

impl Layout {
    /// The layout of a request to `model_id`; `None` when it has no cache point (then
    /// Bedrock reports no cache fields at all).
    pub fn of(raw: &Value, model_id: &str) -> Option<Self> {
        let mut any = false;
        walk(raw, |entry| any |= matches!(entry, Entry::CachePoint(..)));
        if !any {
            return None;
        }
        let mut hash = Fnv128::default();
        hash.write(model_id.as_bytes());
        hash.write(&[0xff]);
        let mut layout = Self {
            bytes: vec![0],
            keys: vec![hash.finish()],
            points: Vec::new(),
        };
        let mut total = 0u64;
        walk(raw, |entry| match entry {
            Entry::Item(section, json) => {
                hash.write(&[section]);
                hash.write(json.as_bytes());
                hash.write(&[0xff]);
                total = total.saturating_add(u64::try_from(json.len()).unwrap_or(u64::MAX));
                layout.bytes.push(total);
                layout.keys.push(hash.finish());
            }
            Entry::CachePoint(..) => layout.points.push(layout.bytes.len() - 1),
        });
        Some(layout)
    }

    /// Tokens of the prefix at boundary `k` (0 for the empty prefix).
    fn tokens_at(&self, k: usize) -> u64 {
        match self.bytes.get(k) {
            Some(0) | None => 0,
            Some(bytes) => tokens(usize::try_from(*bytes).unwrap_or(usize::MAX)),
        }
    }

    /// The number of the cache points.
    pub fn cache_points(&self) -> usize {
        self.points.len()
    }
}

/// The prompt caches of every model: prefix keys (which include the model id) and when
/// each entry expires.
#[derive(Debug)]
pub struct Cache {
    entries: HashMap<u128, Instant>,
    ttl: Duration,
    cap: usize,
}

impl Cache {
    /// An empty cache whose entries live `ttl`, holding at most `cap` entries (at least 1).
    pub fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            entries: HashMap::new(),
            ttl,
            cap: cap.max(1),
        }
    }

    /// Reads, writes and stores the prefixes of one request (see the module docs);
    /// cache points below `min_tokens` are ignored.
    pub fn account(&mut self, layout: &Layout, min_tokens: u64, now: Instant) -> CacheUsage {
        let valid: Vec<usize> = layout
            .points
            .iter()
            .copied()
            .filter(|&p| layout.tokens_at(p) > 0 && layout.tokens_at(p) >= min_tokens)
            .collect();
        let read_at = valid
            .iter()
            .filter_map(|&p| {
                (p.saturating_sub(LOOKBACK_BLOCKS)..=p)
                    .rev()
                    .find(|&b| layout.tokens_at(b) > 0 && self.is_live(layout.keys[b], now))
            })
            .max();
        let read = read_at.map_or(0, |b| layout.tokens_at(b));
        if let Some(b) = read_at {
            self.entries.insert(layout.keys[b], now + self.ttl);
        }
        let furthest = valid.iter().copied().max();
        let write = match (furthest, read_at) {
            (Some(f), Some(r)) if f <= r => 0,
            (Some(f), _) => layout.tokens_at(f).saturating_sub(read),
            (None, _) => 0,
        };
        for p in valid {
            self.store(layout.keys[p], now);
        }
        CacheUsage { read, write }
    }

    fn is_live(&self, key: u128, now: Instant) -> bool {
        self.entries.get(&key).is_some_and(|expires| *expires > now)
    }

    fn store(&mut self, key: u128, now: Instant) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.cap {
            self.entries.retain(|_, expires| *expires > now);
            if self.entries.len() >= self.cap {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, expires)| **expires)
                    .map(|(k, _)| *k);
                if let Some(soonest) = soonest {
                    self.entries.remove(&soonest);
                }
            }
        }
        self.entries.insert(key, now + self.ttl);
    }

    /// Number of entries held (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POINT: fn() -> Value = || json!({"cachePoint": {"type": "default"}});

    /// A user text block of about `bytes` bytes.
    fn text(bytes: usize, tag: &str) -> Value {
        json!({"text": format!("{tag}{}", "x".repeat(bytes))})
    }

    fn account(cache: &mut Cache, raw: &Value, model: &str, now: Instant) -> Option<CacheUsage> {
        Layout::of(raw, model).map(|layout| cache.account(&layout, 1024, now))
    }

    #[test]
    fn validates_types_and_the_count() {
        let ok = json!({"system": [text(10, "s"), POINT()], "messages": [
            {"role": "user", "content": [text(10, "a"), {"cachePoint": {"type": "default", "ttl": "1h"}}]}
        ]});
        assert_eq!(validate(&ok), Ok(()));
        let bad_type = json!({"messages": [
            {"role": "user", "content": [text(10, "a"), {"cachePoint": {"type": "ephemeral"}}]}
        ]});
        assert_eq!(
            validate(&bad_type),
            Err("1 validation error detected: Value 'ephemeral' at \
                 'messages.1.member.content.2.member.cachePoint.type' failed to satisfy \
                 constraint: Member must satisfy enum value set: [default]"
                .into())
        );
        let no_type = json!({"toolConfig": {"tools": [{"cachePoint": {}}]}});
        assert!(validate(&no_type).is_err_and(
            |e| e.contains("Value null at 'toolConfig.tools.1.member.cachePoint.type'")
        ));
        let bad_ttl = json!({"system": [{"cachePoint": {"type": "default", "ttl": "2h"}}]});
        assert!(validate(&bad_ttl).is_err_and(
            |e| e.contains("'system.1.member.cachePoint.ttl'") && e.contains("[5m, 1h]")
        ));
        let five = json!({"system": [POINT(), POINT(), POINT()], "toolConfig": {"tools": [POINT()]},
            "messages": [{"role": "user", "content": [text(1, "a"), POINT()]}]});
        assert_eq!(
            validate(&five),
            Err(
                "The model returned the following errors: A maximum of 4 blocks with \
                 cache_control may be provided. Found 5."
                    .into()
            )
        );
    }

    #[test]
    fn layout_follows_tools_system_messages_order() {
        let raw = json!({
            "messages": [{"role": "user", "content": [text(1, "m"), POINT()]}],
            "system": [text(1, "s"), POINT()],
            "toolConfig": {"tools": [{"toolSpec": {"name": "a"}}, POINT()]},
        });
        let layout = Layout::of(&raw, "m1").expect("has points");
        assert_eq!(layout.points, [1, 2, 3]);
        let tool = json!({"toolSpec": {"name": "a"}}).to_string().len() as u64;
        let system = text(1, "s").to_string().len() as u64;
        let message = json!({"user": text(1, "m")}).to_string().len() as u64;
        assert_eq!(
            layout.bytes,
            [0, tool, tool + system, tool + system + message]
        );
        assert_ne!(
            Layout::of(&raw, "m2").map(|l| l.keys),
            Some(layout.keys.clone())
        );
        assert_eq!(
            Layout::of(
                &json!({"messages": [{"role": "user", "content": [text(1, "m")]}]}),
                "m"
            ),
            None
        );
        // The role is part of the key.
        let as_assistant = json!({
            "messages": [{"role": "assistant", "content": [text(1, "m"), POINT()]}],
            "system": [text(1, "s"), POINT()],
            "toolConfig": {"tools": [{"toolSpec": {"name": "a"}}, POINT()]},
        });
        let other = Layout::of(&as_assistant, "m1").expect("has points");
        assert_eq!(other.keys[2], layout.keys[2]);
        assert_ne!(other.keys[3], layout.keys[3]);
    }

    #[test]
    fn writes_then_reads_and_grows() {
        let mut cache = Cache::new(DEFAULT_CACHE_TTL, 100);
        let now = Instant::now();
        let step1 = json!({"system": [text(8000, "s"), POINT()],
            "messages": [{"role": "user", "content": [text(10, "q")]}]});
        let prefix = tokens(text(8000, "s").to_string().len());
        assert_eq!(
            account(&mut cache, &step1, "m", now),
            Some(CacheUsage {
                read: 0,
                write: prefix
            })
        );
        assert_eq!(
            account(&mut cache, &step1, "m", now),
            Some(CacheUsage {
                read: prefix,
                write: 0
            })
        );
        // Another model does not share it.
        assert_eq!(
            account(&mut cache, &step1, "other", now),
            Some(CacheUsage {
                read: 0,
                write: prefix
            })
        );
        // A point on the last message: reads the system prefix, writes the rest.
        let step2 = json!({"system": [text(8000, "s"), POINT()],
            "messages": [{"role": "user", "content": [text(10, "q"), text(6000, "more"), POINT()]}]});
        let layout = Layout::of(&step2, "m").expect("points");
        let usage = cache.account(&layout, 1024, now);
        assert_eq!(usage.read, prefix);
        assert_eq!(usage.write, layout.tokens_at(3) - prefix);
        // The same request again reads it all.
        let again = cache.account(&layout, 1024, now);
        assert_eq!(
            again,
            CacheUsage {
                read: layout.tokens_at(3),
                write: 0
            }
        );
    }

    #[test]
    fn ignores_points_below_the_minimum() {
        let mut cache = Cache::new(DEFAULT_CACHE_TTL, 100);
        let now = Instant::now();
        let small = json!({"system": [text(100, "s"), POINT()],
            "messages": [{"role": "user", "content": [text(10, "q")]}]});
        for _ in 0..2 {
            assert_eq!(
                account(&mut cache, &small, "m", now),
                Some(CacheUsage::default())
            );
        }
        assert!(cache.is_empty());
    }

    #[test]
    fn looks_back_at_most_twenty_blocks() {
        let block = |i: usize| text(400, &format!("b{i}-"));
        let request = |n: usize, point_at: usize| {
            let mut content: Vec<Value> = (0..n).map(block).collect();
            content.insert(point_at, POINT());
            json!({"messages": [{"role": "user", "content": content}]})
        };
        let now = Instant::now();
        for (extra, expect_read) in [(20, true), (21, false)] {
            let mut cache = Cache::new(DEFAULT_CACHE_TTL, 100);
            let first = request(20, 20);
            let written = account(&mut cache, &first, "m", now).expect("points").write;
            assert!(written > 0);
            let later = request(20 + extra, 20 + extra);
            let usage = account(&mut cache, &later, "m", now).expect("points");
            assert_eq!(
                usage.read > 0,
                expect_read,
                "{extra} blocks later: {usage:?}"
            );
            if expect_read {
                assert_eq!(usage.read, written);
            }
        }
    }

    #[test]
    fn entries_expire_unless_read_and_the_size_is_bounded() {
        let ttl = Duration::from_secs(300);
        let mut cache = Cache::new(ttl, 2);
        let start = Instant::now();
        let req = |tag: &str| {
            json!({"system": [text(8000, tag), POINT()],
                "messages": [{"role": "user", "content": [text(10, "q")]}]})
        };
        let write = account(&mut cache, &req("a"), "m", start)
            .expect("points")
            .write;
        // Read at 4 minutes refreshes it: still there at 8 minutes.
        let four = start + Duration::from_secs(240);
        assert_eq!(
            account(&mut cache, &req("a"), "m", four).map(|u| u.read),
            Some(write)
        );
        let eight = start + Duration::from_secs(480);
        assert_eq!(
            account(&mut cache, &req("a"), "m", eight).map(|u| u.read),
            Some(write)
        );
        // Not read for more than the TTL: gone.
        let late = eight + ttl + Duration::from_secs(1);
        assert_eq!(
            account(&mut cache, &req("a"), "m", late),
            Some(CacheUsage { read: 0, write })
        );
        // At most two entries: a third evicts the one closest to expiring.
        account(&mut cache, &req("b"), "m", late + Duration::from_secs(1));
        account(&mut cache, &req("c"), "m", late + Duration::from_secs(2));
        assert_eq!(cache.len(), 2);
        let later = late + Duration::from_secs(3);
        assert_eq!(
            account(&mut cache, &req("a"), "m", later).map(|u| u.read),
            Some(0)
        );
    }
}
