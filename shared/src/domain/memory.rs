//! Long-term memory: what is learned about a user, how it is merged, ranked and shown to the
//! model. No I/O here: the store ([`crate::ports::LongTermMemory`]) keeps the records, the
//! extractor Lambda learns them, the agent retrieves them.
//!
//! - A record is one sentence of one [`MemoryKind`] under a short stable key
//!   (`favourite_colour`). Its id is `<kind>.<key>`, so a record with the same kind and key is
//!   the same record: a changed fact replaces the old text in place ([`merge`]), keeping when
//!   it changed; a near-duplicate under another key is merged into the one it repeats.
//! - Each record keeps the ids of the sessions it was learned from, so forgetting a session
//!   forgets what was learned only from it.
//! - Retrieval ([`rank`], [`select`]) scores every record of the user by relevance to the
//!   message (cosine of embeddings, or keyword overlap when embeddings are off) combined with
//!   recency, then keeps the best within a token budget. Vectors are stored quantized to one
//!   byte per dimension ([`QuantizedVector`]), a quarter of the `f32` size, which keeps a
//!   thousand records of a user within one or two Query pages.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::context::estimate_tokens;

/// What a record says about the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// A fact about the user (their name, their city).
    Fact,
    /// One of the user's preferences.
    Preference,
    /// A summary of one session.
    Summary,
}

impl MemoryKind {
    /// Every kind.
    pub const ALL: [MemoryKind; 3] = [Self::Fact, Self::Preference, Self::Summary];

    /// The name used in ids, items and the `record_memories` tool.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fact => "fact",
            Self::Preference => "preference",
            Self::Summary => "summary",
        }
    }

    /// The kind of a name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Longest key kept (longer ones are cut).
pub const MAX_KEY_CHARS: usize = 64;

/// Longest record text kept, in bytes (a sentence, not a document).
pub const MAX_TEXT_BYTES: usize = 1_000;

/// One remembered thing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryRecord {
    /// `<kind>.<key>`.
    pub id: String,
    /// What it says about the user.
    pub kind: MemoryKind,
    /// Its short stable key.
    pub key: String,
    /// One sentence.
    pub text: String,
    /// The sessions it was learned from, sorted.
    pub sessions: Vec<String>,
    /// When it was first learned.
    pub created_at: DateTime<Utc>,
    /// When it was last confirmed or changed.
    pub updated_at: DateTime<Utc>,
    /// When its text last changed.
    pub changed_at: DateTime<Utc>,
    /// The store's version of the record (0 for a record not stored yet), for conditional
    /// writes.
    #[serde(skip)]
    pub version: u64,
    /// Its embedding, when embeddings are on.
    #[serde(skip)]
    pub vector: Option<QuantizedVector>,
}

/// The id of a record of `kind` under `key`.
pub fn record_id(kind: MemoryKind, key: &str) -> String {
    format!("{}.{key}", kind.as_str())
}

/// The kind and key of an id, if it is one.
pub fn parse_id(id: &str) -> Option<(MemoryKind, &str)> {
    let (kind, key) = id.split_once('.')?;
    let kind = MemoryKind::parse(kind)?;
    (normalize_key(key).as_deref() == Some(key)).then_some((kind, key))
}

/// A key as stored: lower-case snake case of ASCII letters and digits, at most
/// [`MAX_KEY_CHARS`]; `None` when nothing is left.
pub fn normalize_key(raw: &str) -> Option<String> {
    let mut key = String::with_capacity(raw.len());
    for ch in raw.chars() {
        if ch.is_ascii_alphanumeric() {
            key.push(ch.to_ascii_lowercase());
        } else if !key.is_empty() && !key.ends_with('_') {
            key.push('_');
        }
        if key.len() >= MAX_KEY_CHARS {
            break;
        }
    }
    let key = key.trim_end_matches('_').to_owned();
    (!key.is_empty()).then_some(key)
}

/// What the extraction model proposed: one entry of `record_memories`' input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Its kind.
    pub kind: MemoryKind,
    /// Its key, as the model wrote it.
    pub key: String,
    /// Its sentence.
    pub text: String,
}

/// The input of the `record_memories` tool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMemories {
    /// What to remember.
    #[serde(default)]
    pub memories: Vec<Candidate>,
}

/// Word overlap (Jaccard, 0 to 1) at or above which two records of one kind are the same
/// memory under two keys.
pub const DUPLICATE_WORD_OVERLAP: f64 = 0.8;

/// The records to write after learning `candidates` from `session` at `now`, given what is
/// stored (`existing`). A candidate with the kind and key of a record updates it (a changed
/// text replaces the old one and moves `changed_at`); one that repeats another record of its
/// kind nearly word for word is merged into it; others are new records. A summary is keyed by
/// its session (one summary per session). Records that do not change are not returned;
/// `forgotten` keys (records the user erased after the turn was stored) are skipped.
pub fn merge(
    existing: &[MemoryRecord],
    candidates: &[Candidate],
    session: &str,
    now: DateTime<Utc>,
    forgotten: &BTreeSet<String>,
) -> Vec<MemoryRecord> {
    let mut out: Vec<MemoryRecord> = Vec::new();
    for candidate in candidates {
        let text = clean_text(&candidate.text);
        let key = match candidate.kind {
            MemoryKind::Summary => normalize_key(&format!("session_{session}")),
            _ => normalize_key(&candidate.key),
        };
        let (Some(key), false) = (key, text.is_empty()) else {
            continue;
        };
        let id = record_id(candidate.kind, &key);
        if forgotten.contains(&id) {
            continue;
        }
        // What this batch already changed comes first, then what is stored.
        let known = out
            .iter()
            .find(|record| record.id == id)
            .cloned()
            .or_else(|| existing.iter().find(|record| record.id == id).cloned())
            .or_else(|| {
                let words = keywords(&text);
                out.iter()
                    .chain(existing)
                    .filter(|record| record.kind == candidate.kind)
                    .find(|record| {
                        word_overlap(&words, &keywords(&record.text)) >= DUPLICATE_WORD_OVERLAP
                    })
                    .cloned()
            });
        let record = match known {
            Some(mut record) => {
                let changed = record.text != text;
                let new_session = !record.sessions.iter().any(|s| s == session);
                if !changed && !new_session {
                    continue;
                }
                if changed {
                    record.text = text;
                    record.changed_at = now;
                    record.vector = None;
                }
                if new_session {
                    record.sessions.push(session.to_owned());
                    record.sessions.sort();
                }
                record.updated_at = now;
                record
            }
            None => MemoryRecord {
                id,
                kind: candidate.kind,
                key,
                text,
                sessions: vec![session.to_owned()],
                created_at: now,
                updated_at: now,
                changed_at: now,
                version: 0,
                vector: None,
            },
        };
        match out.iter_mut().find(|r| r.id == record.id) {
            Some(slot) => *slot = record,
            None => out.push(record),
        }
    }
    out
}

/// A record's text as stored: one line, trimmed, at most [`MAX_TEXT_BYTES`].
fn clean_text(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    super::truncate::shrink_text(&line, MAX_TEXT_BYTES)
}

/// Words too common to say what a text is about (sorted: looked up by binary search).
const STOP_WORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "but", "by", "do", "does", "for", "from",
    "has", "have", "he", "her", "his", "i", "in", "is", "it", "its", "me", "my", "of", "on", "or",
    "our", "she", "so", "that", "the", "their", "them", "they", "this", "to", "user", "user's",
    "users", "was", "we", "what", "which", "who", "with", "you", "your",
];

/// The distinct content words of a text: lower case, letters and digits, stop words out, a
/// plural `s` dropped.
pub fn keywords(text: &str) -> BTreeSet<String> {
    words(text).map(std::borrow::Cow::into_owned).collect()
}

/// The content words of a text, in order, with repeats: borrowed where the text is already
/// lower-case ASCII, so ranking allocates nothing for most records.
fn words(text: &str) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    text.split(|ch: char| !ch.is_alphanumeric())
        // A lone letter is the tail of a possessive or an initial, not a subject.
        .filter(|word| word.len() > 1 || word.bytes().any(|b| b.is_ascii_digit()))
        .map(|word| {
            if word
                .bytes()
                .any(|b| !b.is_ascii() || b.is_ascii_uppercase())
            {
                Cow::Owned(word.to_lowercase())
            } else {
                Cow::Borrowed(word)
            }
        })
        .filter(|word| STOP_WORDS.binary_search(&word.as_ref()).is_err())
        .map(|word| {
            let stem_len = match word.strip_suffix('s') {
                Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => Some(stem.len()),
                _ => None,
            };
            match (stem_len, word) {
                (Some(len), Cow::Borrowed(w)) => Cow::Borrowed(&w[..len]),
                (Some(len), Cow::Owned(mut w)) => {
                    w.truncate(len);
                    Cow::Owned(w)
                }
                (None, word) => word,
            }
        })
}

/// Jaccard overlap of two word sets (0 when both are empty).
pub fn word_overlap(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// An embedding stored at one signed byte per dimension: `values[i] * scale` is the `i`th
/// component. Cosine against a full-precision query loses well under 1% of its value.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedVector {
    /// The value of one step.
    pub scale: f32,
    /// The components, in steps.
    pub values: Vec<i8>,
}

impl QuantizedVector {
    /// Quantizes `vector` (scaled so its largest component is 127 steps).
    pub fn quantize(vector: &[f32]) -> Self {
        let max = vector.iter().fold(0.0f32, |max, v| max.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        Self {
            scale,
            values: vector
                .iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8)
                .collect(),
        }
    }

    /// As stored: the scale (4 bytes, little-endian), then one byte per component.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(4 + self.values.len());
        bytes.extend_from_slice(&self.scale.to_le_bytes());
        bytes.extend(self.values.iter().map(|v| *v as u8));
        bytes
    }

    /// From its stored bytes; `None` when they are not a vector.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (scale, values) = bytes.split_first_chunk::<4>()?;
        let scale = f32::from_le_bytes(*scale);
        (scale.is_finite() && scale > 0.0 && !values.is_empty()).then(|| Self {
            scale,
            values: values.iter().map(|v| *v as i8).collect(),
        })
    }

    /// Cosine similarity with a full-precision vector (0 when the sizes differ or either is
    /// zero).
    pub fn cosine(&self, query: &[f32]) -> f64 {
        let norm = query.iter().map(|q| q * q).sum::<f32>().sqrt();
        self.cosine_with_norm(query, norm)
    }

    /// [`QuantizedVector::cosine`] with the query's norm computed once for many records.
    pub fn cosine_with_norm(&self, query: &[f32], query_norm: f32) -> f64 {
        if query.len() != self.values.len() || query_norm <= 0.0 {
            return 0.0;
        }
        // Eight lanes each, so the compiler can vectorize both sums (a float sum in one
        // accumulator must keep its order and cannot).
        let (mut dot, mut own) = ([0.0f32; 8], [0i32; 8]);
        let mut values = self.values.chunks_exact(8);
        let mut queries = query.chunks_exact(8);
        for (v, q) in (&mut values).zip(&mut queries) {
            for lane in 0..8 {
                dot[lane] += f32::from(v[lane]) * q[lane];
                own[lane] += i32::from(v[lane]) * i32::from(v[lane]);
            }
        }
        let (mut dot, mut own) = (dot.iter().sum::<f32>(), own.iter().sum::<i32>());
        for (&v, &q) in values.remainder().iter().zip(queries.remainder()) {
            dot += f32::from(v) * q;
            own += i32::from(v) * i32::from(v);
        }
        if own == 0 {
            return 0.0;
        }
        f64::from(dot) / (f64::from(own).sqrt() * f64::from(query_norm))
    }
}

/// How relevance and recency are combined.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankWeights {
    /// Weight of relevance to the message (0 to 1); recency gets the rest.
    pub relevance: f64,
    /// Days after which recency counts half.
    pub half_life_days: f64,
}

impl Default for RankWeights {
    fn default() -> Self {
        Self {
            relevance: 0.8,
            half_life_days: 30.0,
        }
    }
}

/// What a message is matched against records with.
#[derive(Clone, Debug, Default)]
pub struct Query<'a> {
    /// The message's embedding (cosine relevance), when embeddings are on.
    pub vector: Option<&'a [f32]>,
    /// The message (keyword relevance, when there is no vector or a record has none).
    pub text: &'a str,
}

/// The indexes of `records` best first, with their scores: relevance (cosine when both the
/// query and the record have a vector, keyword overlap otherwise) weighted with recency (of
/// `updated_at`). Ties go to the more recent record, then the id.
pub fn rank(
    records: &[MemoryRecord],
    query: &Query<'_>,
    now: DateTime<Utc>,
    weights: RankWeights,
) -> Vec<(usize, f64)> {
    let query_words = keywords(query.text);
    let query_words: Vec<&str> = query_words.iter().map(String::as_str).collect();
    let query_norm = query
        .vector
        .map(|v| v.iter().map(|x| x * x).sum::<f32>().sqrt());
    let mut scored: Vec<(usize, f64)> = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let relevance = match (query.vector, &record.vector) {
                (Some(vector), Some(stored)) => stored
                    .cosine_with_norm(vector, query_norm.unwrap_or_default())
                    .max(0.0),
                _ => keyword_relevance(&query_words, &record.text),
            };
            let age_days = (now - record.updated_at).num_seconds().max(0) as f64 / 86_400.0;
            let recency = 0.5f64.powf(age_days / weights.half_life_days);
            (
                index,
                weights.relevance * relevance + (1.0 - weights.relevance) * recency,
            )
        })
        .collect();
    scored.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(records[b.0].updated_at.cmp(&records[a.0].updated_at))
            .then(records[a.0].id.cmp(&records[b.0].id))
    });
    scored
}

/// The share of the message's words found in a record's text.
fn keyword_relevance(query: &[&str], text: &str) -> f64 {
    if query.is_empty() {
        return 0.0;
    }
    // Which of the (at most 64 counted) query words the text has.
    let mut found = 0u64;
    for word in words(text) {
        if let Some(index) = query.iter().position(|q| *q == word.as_ref()) {
            found |= 1 << index.min(63);
        }
    }
    f64::from(found.count_ones()) / query.len().min(64) as f64
}

/// The heading of the remembered context in the system prompt.
pub const REMEMBERED_HEADING: &str = "Remembered context (what earlier sessions with this user taught; use it where it helps, and prefer what the user says now when they differ):";

/// The records of `ranked` (best first) that fit in `budget_tokens` as rendered lines, best
/// first.
pub fn select<'r>(
    records: &'r [MemoryRecord],
    ranked: &[(usize, f64)],
    budget_tokens: u64,
) -> Vec<&'r MemoryRecord> {
    let mut left = budget_tokens.saturating_sub(estimate_tokens(REMEMBERED_HEADING.len() + 2));
    let mut chosen = Vec::new();
    for &(index, _) in ranked {
        let record = &records[index];
        let cost = estimate_tokens(line_len(record) + 1);
        if cost > left {
            continue;
        }
        left -= cost;
        chosen.push(record);
    }
    chosen
}

/// The length of [`line`], without formatting it (the date is always 10 bytes).
fn line_len(record: &MemoryRecord) -> usize {
    "- [".len()
        + record.kind.as_str().len()
        + "] ".len()
        + record.text.len()
        + " (as of ".len()
        + 10
        + 1
}

/// One record as the model sees it.
fn line(record: &MemoryRecord) -> String {
    format!(
        "- [{}] {} (as of {})",
        record.kind.as_str(),
        record.text,
        record.changed_at.format("%Y-%m-%d")
    )
}

/// The remembered-context block of the system prompt; `None` when nothing was chosen.
pub fn render(chosen: &[&MemoryRecord]) -> Option<String> {
    if chosen.is_empty() {
        return None;
    }
    let mut block = String::from(REMEMBERED_HEADING);
    for record in chosen {
        block.push('\n');
        block.push_str(&line(record));
    }
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-{day:02}T10:00:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn candidate(kind: MemoryKind, key: &str, text: &str) -> Candidate {
        Candidate {
            kind,
            key: key.into(),
            text: text.into(),
        }
    }

    fn record(key: &str, text: &str, day: u32) -> MemoryRecord {
        merge(
            &[],
            &[candidate(MemoryKind::Fact, key, text)],
            "s0",
            at(day),
            &BTreeSet::new(),
        )
        .remove(0)
    }

    #[test]
    fn keys_are_snake_case_and_ids_round_trip() {
        assert_eq!(
            normalize_key("Favourite Colour!").as_deref(),
            Some("favourite_colour")
        );
        assert_eq!(normalize_key("--"), None);
        assert_eq!(
            normalize_key(&"x".repeat(200)).unwrap().len(),
            MAX_KEY_CHARS
        );
        let id = record_id(MemoryKind::Preference, "likes_tea");
        assert_eq!(id, "preference.likes_tea");
        assert_eq!(parse_id(&id), Some((MemoryKind::Preference, "likes_tea")));
        assert_eq!(parse_id("fact.Bad Key"), None);
        assert_eq!(parse_id("opinion.x"), None);
    }

    #[test]
    fn a_changed_fact_is_updated_in_place_keeping_when_it_changed() {
        let old = record(
            "favourite_colour",
            "The user's favourite colour is green.",
            1,
        );
        let new = merge(
            std::slice::from_ref(&old),
            &[candidate(
                MemoryKind::Fact,
                "favourite_colour",
                "The user's favourite colour is blue.",
            )],
            "s1",
            at(5),
            &BTreeSet::new(),
        );
        assert_eq!(new.len(), 1);
        let new = &new[0];
        assert_eq!(new.id, old.id);
        assert_eq!(new.text, "The user's favourite colour is blue.");
        assert_eq!(new.created_at, at(1));
        assert_eq!(new.changed_at, at(5));
        assert_eq!(new.sessions, vec!["s0", "s1"]);
        // The same fact again from the same session changes nothing.
        let again = merge(
            std::slice::from_ref(new),
            &[candidate(
                MemoryKind::Fact,
                "favourite_colour",
                "The user's favourite colour is blue.",
            )],
            "s1",
            at(6),
            &BTreeSet::new(),
        );
        assert!(again.is_empty());
    }

    #[test]
    fn near_duplicates_under_another_key_are_merged() {
        let old = record("home_city", "The user lives in Lyon, France.", 1);
        let merged = merge(
            std::slice::from_ref(&old),
            &[candidate(
                MemoryKind::Fact,
                "city",
                "The user lives in Lyon France",
            )],
            "s2",
            at(3),
            &BTreeSet::new(),
        );
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].id, "fact.home_city");
        assert_eq!(merged[0].sessions, vec!["s0", "s2"]);
    }

    #[test]
    fn summaries_are_keyed_by_session_and_forgotten_ids_are_skipped() {
        let learned = merge(
            &[],
            &[
                candidate(MemoryKind::Summary, "anything", "Talked about paint."),
                candidate(MemoryKind::Fact, "name", "The user is called Ada."),
                candidate(MemoryKind::Fact, "", "no key"),
                candidate(MemoryKind::Fact, "blank", "   "),
            ],
            "S-1",
            at(2),
            &BTreeSet::from(["fact.name".to_owned()]),
        );
        let ids: Vec<_> = learned.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["summary.session_s_1"]);
    }

    #[test]
    fn quantized_vectors_round_trip_and_keep_the_cosine() {
        let vector: Vec<f32> = (0..256)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let other: Vec<f32> = (0..256)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
            .collect();
        let quantized = QuantizedVector::quantize(&vector);
        assert_eq!(
            QuantizedVector::from_bytes(&quantized.to_bytes()),
            Some(quantized.clone())
        );
        assert_eq!(quantized.to_bytes().len(), 260);
        assert!((quantized.cosine(&vector) - 1.0).abs() < 0.001);
        let exact = {
            let dot: f32 = vector.iter().zip(&other).map(|(a, b)| a * b).sum();
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            f64::from(dot / (norm(&vector) * norm(&other)))
        };
        assert!((quantized.cosine(&other) - exact).abs() < 0.01);
        assert_eq!(QuantizedVector::from_bytes(&[0, 0]), None);
        assert_eq!(quantized.cosine(&[1.0]), 0.0);
    }

    #[test]
    fn ranking_puts_the_relevant_first_and_breaks_ties_by_recency() {
        let records = vec![
            record("pet", "The user has a dog called Rex.", 1),
            record(
                "favourite_colour",
                "The user's favourite colour is green.",
                2,
            ),
            record("home_city", "The user lives in Lyon.", 20),
        ];
        let ranked = rank(
            &records,
            &Query {
                vector: None,
                text: "What colour should I paint the kitchen?",
            },
            at(21),
            RankWeights::default(),
        );
        let order: Vec<_> = ranked
            .iter()
            .map(|(i, _)| records[*i].key.as_str())
            .collect();
        // Colour matches; of the others, the more recent comes first.
        assert_eq!(order, vec!["favourite_colour", "home_city", "pet"]);
    }

    #[test]
    fn embeddings_rank_by_cosine_when_both_sides_have_them() {
        let mut records = vec![record("a", "alpha", 1), record("b", "beta", 1)];
        records[0].vector = Some(QuantizedVector::quantize(&[1.0, 0.0, 0.0]));
        records[1].vector = Some(QuantizedVector::quantize(&[0.0, 1.0, 0.0]));
        let ranked = rank(
            &records,
            &Query {
                vector: Some(&[0.1, 0.9, 0.0]),
                text: "alpha",
            },
            at(1),
            RankWeights::default(),
        );
        assert_eq!(records[ranked[0].0].key, "b");
    }

    #[test]
    fn selection_holds_the_token_budget() {
        let records: Vec<_> = (0..200)
            .map(|i| {
                record(
                    &format!("k{i}"),
                    &format!("The user said thing number {i} at length."),
                    1,
                )
            })
            .collect();
        let ranked = rank(&records, &Query::default(), at(2), RankWeights::default());
        let chosen = select(&records, &ranked, 300);
        let block = render(&chosen).unwrap();
        assert!(estimate_tokens(block.len()) <= 300, "{}", block.len());
        assert!(chosen.len() > 5);
        assert!(block.starts_with(REMEMBERED_HEADING));
        assert!(select(&records, &ranked, 0).is_empty());
        assert_eq!(render(&[]), None);
    }

    #[test]
    fn a_lines_length_is_known_without_formatting_it_and_words_lower_and_stem() {
        let r = record("home_city", "The User lives in Lisboa, near the docks.", 3);
        assert_eq!(line_len(&r), line(&r).len());
        let words: Vec<String> = words("The User's DOGS and cats, Straße")
            .map(|w| w.into_owned())
            .collect();
        assert_eq!(words, vec!["dog", "cat", "straße"]);
        assert!(
            STOP_WORDS.windows(2).all(|w| w[0] < w[1]),
            "sorted, for binary search"
        );
        let long: Vec<f32> = (0..21).map(|i| (i as f32 - 10.0) / 10.0).collect();
        let lq = QuantizedVector::quantize(&long);
        assert!(
            (lq.cosine(&long) - 1.0).abs() < 1e-3,
            "lanes and remainder both count"
        );
        let q = QuantizedVector::quantize(&[0.6, 0.8]);
        assert!((q.cosine(&[0.6, 0.8]) - q.cosine_with_norm(&[0.6, 0.8], 1.0)).abs() < 1e-9);
    }
}
