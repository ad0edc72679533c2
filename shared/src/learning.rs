//! Long-term memory at work: learning records from a stored turn (the memory extractor) and
//! recalling the relevant ones at the start of a turn (the agent).
//!
//! Learning is one forced tool call (`record_memories`) on the extraction model, whose input
//! is merged with what is stored ([`memory::merge`]) and written in one conditional
//! transaction; a conflict (another extraction, or the user erasing something meanwhile) reads
//! again and merges again, without calling the model again. Recall is one Query of the user's
//! memory partition and, when embeddings are on, one embedding of the message, run together;
//! the records are ranked ([`memory::rank`]) and chosen within a token budget.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::time::Instant;

use crate::domain::{
    ledger::{Ledger, ServicePrices},
    memory::{self, Candidate, MemoryRecord, QuantizedVector, RankWeights, RecordMemories},
    message::{ContentBlock, Message, Role},
    model::{InferenceConfig, ModelRequest, ToolChoice, ToolSpec},
};
use crate::models::{ModelChain, RetryPolicy};
use crate::ports::{Embedder, LongTermMemory, ModelError, StoreError, UserMemory};

/// The extraction tool's name.
pub const RECORD_MEMORIES: &str = "record_memories";

/// Largest transcript sent for extraction, in bytes (the newest part is kept).
pub const MAX_TRANSCRIPT_BYTES: usize = 24_000;

/// Records shown to the extraction model so it reuses their keys (the most recently updated).
pub const KNOWN_RECORDS_SHOWN: usize = 40;

/// Records one turn may teach.
pub const MAX_CANDIDATES: usize = 20;

/// Times a write is merged again after a conflict.
const WRITE_ATTEMPTS: u32 = 4;

/// The extraction model's instructions.
pub const EXTRACTION_PROMPT: &str =
    "You maintain a long-term memory about one user of an assistant. \
From the conversation you are given, record what is worth remembering in later conversations: \
facts about the user (kind \"fact\"), the user's preferences (kind \"preference\"), and one short \
summary of this conversation (kind \"summary\"). Each record has a short stable snake_case key \
(for example favourite_colour, home_city, prefers_metric_units) and one sentence of text about \
the user. Reuse the key of an already remembered record when the user says something new about \
the same thing. Record only what the user said about themselves; never record secrets, \
passwords, payment card or account numbers. Call record_memories once, with an empty list when \
there is nothing to remember.";

/// The `record_memories` tool.
pub fn record_memories_spec() -> ToolSpec {
    ToolSpec {
        name: RECORD_MEMORIES.into(),
        description: "Records what was learned about the user in this conversation.".into(),
        input_schema: json!({
            "type": "object",
            "properties": {
                "memories": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "kind": { "type": "string", "enum": ["fact", "preference", "summary"] },
                            "key": { "type": "string", "description": "short stable snake_case key, e.g. favourite_colour" },
                            "text": { "type": "string", "description": "one sentence" }
                        },
                        "required": ["kind", "key", "text"]
                    }
                }
            },
            "required": ["memories"]
        }),
    }
}

/// The text of `messages` as `User: ...` / `Assistant: ...` lines (text blocks only: tool
/// calls and results are not the user's words), the newest [`MAX_TRANSCRIPT_BYTES`] kept.
pub fn transcript(messages: &[Message]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for message in messages {
        let who = match message.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
        };
        for block in &message.content {
            if let ContentBlock::Text { text } = block {
                let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                if !text.is_empty() {
                    lines.push(format!("{who}: {text}"));
                }
            }
        }
    }
    let mut kept = Vec::new();
    let mut bytes = 0;
    for line in lines.into_iter().rev() {
        bytes += line.len() + 1;
        if bytes > MAX_TRANSCRIPT_BYTES && !kept.is_empty() {
            break;
        }
        kept.push(crate::domain::truncate::shrink_text(
            &line,
            MAX_TRANSCRIPT_BYTES,
        ));
    }
    kept.reverse();
    kept.join("\n")
}

/// The forced `record_memories` call for a transcript, showing the known records' keys.
pub fn extraction_request(transcript: &str, known: &[MemoryRecord]) -> ModelRequest {
    let mut text = transcript.to_owned();
    let mut recent: Vec<&MemoryRecord> = known.iter().collect();
    recent.sort_by_key(|record| std::cmp::Reverse(record.updated_at));
    if !recent.is_empty() {
        text.push_str("\n\nAlready remembered:");
        for record in recent.into_iter().take(KNOWN_RECORDS_SHOWN) {
            text.push_str(&format!("\n- {}: {}", record.id, record.text));
        }
    }
    ModelRequest {
        system: Some(EXTRACTION_PROMPT.into()),
        messages: vec![Message::user_text(text)],
        tools: vec![record_memories_spec()],
        inference: InferenceConfig {
            max_tokens: Some(1024),
            temperature: Some(0.0),
            ..InferenceConfig::default()
        },
        tool_choice: Some(ToolChoice::Tool(RECORD_MEMORIES.into())),
        ..ModelRequest::default()
    }
}

/// The candidates of the model's `record_memories` call (at most [`MAX_CANDIDATES`]).
pub fn candidates(answer: &Message) -> Result<Vec<Candidate>, ModelError> {
    let input = answer
        .content
        .iter()
        .find_map(|block| match block {
            ContentBlock::ToolUse { name, input, .. } if name == RECORD_MEMORIES => Some(input),
            _ => None,
        })
        .ok_or_else(|| ModelError::Invalid("the model did not call record_memories".into()))?;
    let recorded: RecordMemories = serde_json::from_value(input.clone()).map_err(|error| {
        ModelError::Invalid(format!("record_memories input is malformed: {error}"))
    })?;
    let mut memories = recorded.memories;
    memories.truncate(MAX_CANDIDATES);
    Ok(memories)
}

/// Why learning from a turn failed (the batch is retried).
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The memory partition could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The extraction or embedding model failed.
    #[error("model: {0}")]
    Model(#[from] ModelError),
}

/// What learning from one turn did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Learned {
    /// Records written (new or changed).
    pub written: usize,
    /// Why nothing was learned, when nothing was (`"forgotten"`, `"empty"`).
    pub skipped: Option<&'static str>,
    /// What the model and embedding calls cost.
    pub ledger: Ledger,
}

/// Learns long-term records from stored turns.
pub struct Learner {
    model: ModelChain,
    memory: Arc<dyn LongTermMemory>,
    embedder: Option<Arc<dyn Embedder>>,
    retry: RetryPolicy,
    prices: ServicePrices,
}

impl Learner {
    /// A learner calling `model` (the extraction role's chain), writing to `memory`, embedding
    /// records with `embedder` when there is one.
    pub fn new(
        model: ModelChain,
        memory: Arc<dyn LongTermMemory>,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Self {
        Self {
            model,
            memory,
            embedder,
            retry: RetryPolicy::default(),
            prices: ServicePrices::default(),
        }
    }

    /// Learns from `messages`, a turn of `session_id` stored at `source_at`, before `deadline`.
    pub async fn learn(
        &self,
        user_id: &str,
        session_id: &str,
        source_at: DateTime<Utc>,
        messages: &[Message],
        deadline: Instant,
    ) -> Result<Learned, LearnError> {
        let mut learned = Learned::default();
        let mut stored = self.memory.memory(user_id).await?;
        if !stored.accepts(session_id, source_at) {
            learned.skipped = Some("forgotten");
            return Ok(learned);
        }
        let text = transcript(messages);
        if text.is_empty() {
            learned.skipped = Some("empty");
            return Ok(learned);
        }
        let request = extraction_request(&text, &stored.records);
        let answered = self
            .model
            .converse(&request, deadline, &self.retry)
            .await
            .map_err(|failure| failure.error)?;
        learned.ledger.add_model_call(
            &answered.by.model_id,
            answered.by.pricing,
            answered.response.usage,
        );
        let found = candidates(&answered.response.message)?;
        // Vectors by text, so a write merged again after a conflict embeds nothing twice.
        let mut vectors: HashMap<String, QuantizedVector> = HashMap::new();
        for _ in 0..WRITE_ATTEMPTS {
            let forgotten = stored.forgotten_since(source_at);
            let mut records =
                memory::merge(&stored.records, &found, session_id, Utc::now(), &forgotten);
            for record in records.iter_mut().filter(|r| r.vector.is_none()) {
                record.vector = self
                    .vector(&record.text, &mut vectors, &mut learned)
                    .await?;
            }
            match self
                .memory
                .write_memories(user_id, session_id, source_at, &records)
                .await
            {
                Ok(()) => {
                    learned.written = records.len();
                    return Ok(learned);
                }
                Err(StoreError::Conflict { .. }) => {
                    stored = self.memory.memory(user_id).await?;
                    if !stored.accepts(session_id, source_at) {
                        learned.skipped = Some("forgotten");
                        return Ok(learned);
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::Unavailable("the memory kept changing while it was written".into()).into())
    }

    async fn vector(
        &self,
        text: &str,
        cache: &mut HashMap<String, QuantizedVector>,
        learned: &mut Learned,
    ) -> Result<Option<QuantizedVector>, ModelError> {
        let Some(embedder) = &self.embedder else {
            return Ok(None);
        };
        if let Some(vector) = cache.get(text) {
            return Ok(Some(vector.clone()));
        }
        let embedding = embedder.embed(text).await?;
        learned
            .ledger
            .add_embeddings(embedder.model_id(), embedding.input_tokens, &self.prices);
        let vector = QuantizedVector::quantize(&embedding.vector);
        cache.insert(text.to_owned(), vector.clone());
        Ok(Some(vector))
    }
}

/// What recall found for one message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recall {
    /// The remembered-context block for the system prompt, when anything was chosen.
    pub block: Option<String>,
    /// The ids of the records chosen, best first.
    pub chosen: Vec<String>,
    /// Records the user has.
    pub records: usize,
    /// The embedding call's cost, when one was made.
    pub ledger: Ledger,
    /// Read or embedding failures (logged; recall then does without).
    pub degraded: Option<String>,
}

/// Recalls the records relevant to a message, within a token budget.
#[derive(Clone)]
pub struct Recaller {
    memory: Arc<dyn LongTermMemory>,
    embedder: Option<Arc<dyn Embedder>>,
    budget_tokens: u64,
    weights: RankWeights,
    prices: ServicePrices,
    timeout: Duration,
}

impl std::fmt::Debug for Recaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recaller")
            .field("budget_tokens", &self.budget_tokens)
            .field("embeddings", &self.embedder.is_some())
            .finish()
    }
}

impl Recaller {
    /// Recall from `memory` within `budget_tokens`, ranking by embeddings when `embedder` is
    /// given (by keywords otherwise).
    pub fn new(
        memory: Arc<dyn LongTermMemory>,
        embedder: Option<Arc<dyn Embedder>>,
        budget_tokens: u64,
    ) -> Self {
        Self {
            memory,
            embedder,
            budget_tokens,
            weights: RankWeights::default(),
            prices: ServicePrices::default(),
            timeout: Duration::from_secs(2),
        }
    }

    /// The longest recall may take; past it the turn goes on without remembered context.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The records of `user_id` most relevant to `message`, as of `now`. Never fails: a read
    /// or embedding failure (or a timeout) gives what could be had, and says so in `degraded`.
    pub async fn recall(&self, user_id: &str, message: &str, now: DateTime<Utc>) -> Recall {
        let read = self.memory.memory(user_id);
        let embed = async {
            match &self.embedder {
                Some(embedder) if !message.trim().is_empty() => Some((
                    embedder.model_id().to_owned(),
                    embedder.embed(message).await,
                )),
                _ => None,
            }
        };
        let Ok((stored, embedded)) =
            tokio::time::timeout(self.timeout, async { tokio::join!(read, embed) }).await
        else {
            return Recall {
                degraded: Some("recall timed out".into()),
                ..Recall::default()
            };
        };
        let mut recall = Recall::default();
        let stored: UserMemory = match stored {
            Ok(stored) => stored,
            Err(error) => {
                recall.degraded = Some(format!("memory could not be read: {error}"));
                return recall;
            }
        };
        let vector = match embedded {
            Some((model_id, Ok(embedding))) => {
                recall
                    .ledger
                    .add_embeddings(&model_id, embedding.input_tokens, &self.prices);
                Some(embedding.vector)
            }
            Some((_, Err(error))) => {
                recall.degraded = Some(format!("the message could not be embedded: {error}"));
                None
            }
            None => None,
        };
        recall.records = stored.records.len();
        let query = memory::Query {
            vector: vector.as_deref(),
            text: message,
        };
        let ranked = memory::rank(&stored.records, &query, now, self.weights);
        let chosen = memory::select(&stored.records, &ranked, self.budget_tokens);
        recall.chosen = chosen.iter().map(|record| record.id.clone()).collect();
        recall.block = memory::render(&chosen);
        recall
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::memory::MemoryKind;

    #[test]
    fn the_transcript_keeps_the_words_of_both_sides_and_not_the_tools() {
        let tool = Message {
            role: Role::Assistant,
            content: vec![ContentBlock::ToolUse {
                tool_use_id: "t1".into(),
                name: "calculator".into(),
                input: json!({"expression": "1+1"}),
            }],
        };
        let text = transcript(&[
            Message::user_text("My favourite colour is\n blue."),
            tool,
            Message::assistant_text("Noted."),
        ]);
        assert_eq!(
            text,
            "User: My favourite colour is blue.\nAssistant: Noted."
        );
        let long: Vec<Message> = (0..2_000)
            .map(|i| Message::user_text(format!("message number {i} with some words")))
            .collect();
        let text = transcript(&long);
        assert!(text.len() <= MAX_TRANSCRIPT_BYTES);
        assert!(text.ends_with("message number 1999 with some words"));
    }

    #[test]
    fn the_extraction_call_forces_record_memories_and_shows_known_keys() {
        let now = Utc::now();
        let known = MemoryRecord {
            id: "fact.home_city".into(),
            kind: MemoryKind::Fact,
            key: "home_city".into(),
            text: "The user lives in Lisbon.".into(),
            sessions: vec!["s0".into()],
            created_at: now,
            updated_at: now,
            changed_at: now,
            version: 1,
            vector: None,
        };
        let request = extraction_request("User: I moved to Porto.", &[known]);
        assert_eq!(
            request.tool_choice,
            Some(ToolChoice::Tool(RECORD_MEMORIES.into()))
        );
        assert_eq!(request.tools[0].name, RECORD_MEMORIES);
        let text = request.messages[0].text();
        assert!(text.contains("Already remembered:\n- fact.home_city: The user lives in Lisbon."));
    }

    #[test]
    fn candidates_come_from_the_forced_call_and_a_malformed_one_is_an_error() {
        let call = |input| Message {
            role: Role::Assistant,
            content: vec![ContentBlock::ToolUse {
                tool_use_id: "t".into(),
                name: RECORD_MEMORIES.into(),
                input,
            }],
        };
        let found = candidates(&call(json!({"memories": [
            {"kind": "fact", "key": "favourite_colour", "text": "The user's favourite colour is blue."}
        ]})))
        .unwrap();
        assert_eq!(found[0].key, "favourite_colour");
        assert!(candidates(&call(json!({"memories": [{"kind": "opinion"}]}))).is_err());
        assert!(candidates(&Message::assistant_text("no call")).is_err());
    }
}
