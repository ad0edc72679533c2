//! Long-term memory on DynamoDB Local: learning (a changed fact updated in place), recall
//! (order, budget), isolation between users, forgetting (one record, a session, everything)
//! safe against an extraction racing it, and the size of a 1,000-record partition.
//!
//! The extraction model here is a scripted `Model` answering the forced `record_memories`
//! call (the end-to-end test runs the real path through the Bedrock stand-in); the store is
//! the real adapter. Needs `AWS_ENDPOINT_URL_DYNAMODB` (set by `make test`).

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use common::*;
use serde_json::{json, Value};
use shared::adapters::dynamodb::DynamoLongTermMemory;
use shared::domain::memory::{MemoryKind, MemoryRecord, QuantizedVector};
use shared::domain::message::{ContentBlock, Message, Role};
use shared::domain::model::{ModelRequest, ModelResponse, ModelStopReason, ToolChoice, Usage};
use shared::learning::{Learner, Recaller, RECORD_MEMORIES};
use shared::models::ModelChain;
use shared::ports::{LongTermMemory, Model, ModelError, StoreError};
use shared::store_conformance::new_id;
use tokio::time::Instant;

/// Answers each forced `record_memories` call with the next scripted input.
struct Scripted {
    inputs: Mutex<VecDeque<Value>>,
    requests: Mutex<Vec<ModelRequest>>,
}

impl Scripted {
    fn new(inputs: Vec<Value>) -> Arc<Self> {
        Arc::new(Self {
            inputs: Mutex::new(inputs.into()),
            requests: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl Model for Scripted {
    fn model_id(&self) -> &str {
        "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    }

    async fn converse(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        assert_eq!(
            request.tool_choice,
            Some(ToolChoice::Tool(RECORD_MEMORIES.into()))
        );
        self.requests.lock().unwrap().push(request.clone());
        let input = self
            .inputs
            .lock()
            .unwrap()
            .pop_front()
            .expect("a scripted answer");
        Ok(ModelResponse {
            message: Message {
                role: Role::Assistant,
                content: vec![ContentBlock::ToolUse {
                    tool_use_id: "t1".into(),
                    name: RECORD_MEMORIES.into(),
                    input,
                }],
            },
            stop_reason: ModelStopReason::ToolUse,
            usage: Usage {
                input_tokens: 400,
                output_tokens: 60,
                ..Usage::default()
            },
        })
    }
}

async fn memory() -> Arc<DynamoLongTermMemory> {
    let h = harness().await;
    Arc::new(DynamoLongTermMemory::new(h.client, h.table))
}

fn learner(memory: &Arc<DynamoLongTermMemory>, model: Arc<Scripted>) -> Learner {
    Learner::new(ModelChain::single(model), memory.clone(), None)
}

fn fact(key: &str, text: &str) -> Value {
    json!({"kind": "fact", "key": key, "text": text})
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

async fn tell(
    learner: &Learner,
    user: &str,
    session: &str,
    at: DateTime<Utc>,
    text: &str,
) -> shared::learning::Learned {
    learner
        .learn(user, session, at, &[Message::user_text(text)], soon())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_told_fact_is_learned_and_a_changed_fact_is_updated_in_place() {
    let memory = memory().await;
    let user = new_id("user");
    let model = Scripted::new(vec![
        json!({"memories": [fact("favourite_colour", "The user's favourite colour is blue.")]}),
        json!({"memories": [fact("favourite_colour", "The user's favourite colour is green.")]}),
    ]);
    let learner = learner(&memory, model.clone());
    let first = tell(
        &learner,
        &user,
        "s1",
        Utc::now(),
        "My favourite colour is blue.",
    )
    .await;
    assert_eq!(first.written, 1);
    assert!(
        first.ledger.total_usd > 0.0,
        "the extraction call is priced"
    );
    let before = memory.memory(&user).await.unwrap().records;
    assert_eq!(before.len(), 1);

    tell(
        &learner,
        &user,
        "s2",
        Utc::now(),
        "Actually it is green now.",
    )
    .await;
    let after = memory.memory(&user).await.unwrap().records;
    assert_eq!(
        after.len(),
        1,
        "the same kind and key is one record: {after:?}"
    );
    let record = &after[0];
    assert_eq!(record.id, "fact.favourite_colour");
    assert_eq!(record.text, "The user's favourite colour is green.");
    assert_eq!(record.sessions, vec!["s1", "s2"]);
    assert_eq!(record.created_at, before[0].created_at);
    assert!(record.changed_at > before[0].changed_at);
    assert_eq!(record.version, 2);
    // The second call was shown what was already remembered, so it can reuse the key.
    let requests = model.requests.lock().unwrap();
    assert!(requests[1].messages[0]
        .text()
        .contains("- fact.favourite_colour: The user's favourite colour is blue."));
}

#[tokio::test]
async fn another_user_never_reads_the_records() {
    let memory = memory().await;
    let (alice, bob) = (new_id("alice"), new_id("bob"));
    let learner = learner(
        &memory,
        Scripted::new(vec![
            json!({"memories": [fact("home_city", "The user lives in Lisbon.")]}),
        ]),
    );
    tell(&learner, &alice, "s1", Utc::now(), "I live in Lisbon.").await;
    assert_eq!(memory.memory(&alice).await.unwrap().records.len(), 1);
    assert!(memory.memory(&bob).await.unwrap().records.is_empty());
    let recaller = Recaller::new(memory.clone(), None, 1_000);
    let recall = recaller.recall(&bob, "Where do I live?", Utc::now()).await;
    assert_eq!((recall.block, recall.records), (None, 0));
    let recall = recaller
        .recall(&alice, "Where do I live?", Utc::now())
        .await;
    assert!(recall.block.unwrap().contains("The user lives in Lisbon."));
    // Bob cannot erase Alice's record either.
    assert!(matches!(
        memory.forget(&bob, "fact.home_city", Utc::now()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(memory.memory(&alice).await.unwrap().records.len(), 1);
}

#[tokio::test]
async fn recall_ranks_the_relevant_record_first_within_the_budget() {
    let memory = memory().await;
    let user = new_id("user");
    let learner = learner(
        &memory,
        Scripted::new(vec![json!({"memories": [
            fact("home_city", "The user lives in Lisbon."),
            fact("favourite_colour", "The user's favourite colour is blue."),
            {"kind": "preference", "key": "prefers_metric_units", "text": "The user prefers metric units."},
            fact("pet", "The user has a dog called Rex."),
        ]})]),
    );
    tell(&learner, &user, "s1", Utc::now(), "...").await;
    let recall = Recaller::new(memory.clone(), None, 1_000)
        .recall(&user, "What is my favourite colour?", Utc::now())
        .await;
    assert_eq!(recall.records, 4);
    assert_eq!(recall.chosen[0], "fact.favourite_colour");
    assert_eq!(recall.chosen.len(), 4, "all fit in 1,000 tokens");
    let block = recall.block.unwrap();
    assert!(block.starts_with(shared::domain::memory::REMEMBERED_HEADING));
    // A budget of a heading and about one line keeps only the best.
    let tight = Recaller::new(memory.clone(), None, 75)
        .recall(&user, "What is my favourite colour?", Utc::now())
        .await;
    assert_eq!(tight.chosen, vec!["fact.favourite_colour"]);
}

#[tokio::test]
async fn a_stale_write_is_a_conflict() {
    let memory = memory().await;
    let user = new_id("user");
    let learner = learner(
        &memory,
        Scripted::new(vec![
            json!({"memories": [fact("home_city", "The user lives in Lisbon.")]}),
        ]),
    );
    tell(&learner, &user, "s1", Utc::now(), "I live in Lisbon.").await;
    let mut stale = memory.memory(&user).await.unwrap().records[0].clone();
    stale.version = 0; // as if it had not been read
    stale.text = "The user lives in Porto.".into();
    let written = memory
        .write_memories(&user, "s2", Utc::now(), &[stale])
        .await;
    assert!(
        matches!(written, Err(StoreError::Conflict { .. })),
        "{written:?}"
    );
    assert_eq!(
        memory.memory(&user).await.unwrap().records[0].text,
        "The user lives in Lisbon."
    );
}

#[tokio::test]
async fn forgetting_is_final_even_for_an_extraction_of_an_older_turn() {
    let memory = memory().await;
    let user = new_id("user");
    let told_at = Utc::now();
    let colour =
        || json!({"memories": [fact("favourite_colour", "The user's favourite colour is blue.")]});
    let learner = learner(
        &memory,
        Scripted::new(vec![
            colour(),
            colour(),
            json!({"memories": [fact("favourite_colour", "The user's favourite colour is red.")]}),
        ]),
    );
    tell(
        &learner,
        &user,
        "s1",
        told_at,
        "My favourite colour is blue.",
    )
    .await;
    memory
        .forget(&user, "fact.favourite_colour", Utc::now())
        .await
        .unwrap();
    assert!(memory.memory(&user).await.unwrap().records.is_empty());
    assert!(matches!(
        memory
            .forget(&user, "fact.favourite_colour", Utc::now())
            .await,
        Err(StoreError::NotFound)
    ));
    // The same turn delivered again (a retried batch) does not bring it back...
    let again = tell(
        &learner,
        &user,
        "s1",
        told_at,
        "My favourite colour is blue.",
    )
    .await;
    assert_eq!(again.written, 0);
    assert!(memory.memory(&user).await.unwrap().records.is_empty());
    // ...but what the user says later is learned.
    tell(
        &learner,
        &user,
        "s2",
        Utc::now(),
        "My favourite colour is red.",
    )
    .await;
    let records = memory.memory(&user).await.unwrap().records;
    assert_eq!(records[0].text, "The user's favourite colour is red.");
}

#[tokio::test]
async fn forgetting_a_session_erases_only_what_it_alone_taught() {
    let memory = memory().await;
    let user = new_id("user");
    let learner = learner(
        &memory,
        Scripted::new(vec![
            json!({"memories": [fact("home_city", "The user lives in Lisbon."), fact("pet", "The user has a dog.")]}),
            json!({"memories": [fact("home_city", "The user lives in Lisbon.")]}),
            json!({"memories": [fact("job", "The user is a nurse.")]}),
        ]),
    );
    let early = Utc::now();
    tell(&learner, &user, "s1", early, "...").await;
    tell(&learner, &user, "s2", Utc::now(), "...").await;
    let erased = memory
        .forget_session(&user, "s1", Utc::now())
        .await
        .unwrap();
    assert_eq!(erased, 1, "the dog came from s1 only");
    let records = memory.memory(&user).await.unwrap().records;
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["fact.home_city"]);
    assert_eq!(records[0].sessions, vec!["s2"]);
    // A late extraction of s1 learns nothing.
    let late = tell(&learner, &user, "s1", early, "...").await;
    assert_eq!((late.written, late.skipped), (0, Some("forgotten")));
}

#[tokio::test]
async fn forgetting_everything_leaves_nothing_to_recall() {
    let memory = memory().await;
    let user = new_id("user");
    let learner = learner(
        &memory,
        Scripted::new(vec![json!({"memories": [
            fact("home_city", "The user lives in Lisbon."),
            fact("pet", "The user has a dog."),
        ]})]),
    );
    let told_at = Utc::now();
    tell(&learner, &user, "s1", told_at, "...").await;
    assert_eq!(memory.forget_all(&user, Utc::now()).await.unwrap(), 2);
    assert!(memory.memory(&user).await.unwrap().records.is_empty());
    let recall = Recaller::new(memory.clone(), None, 1_000)
        .recall(&user, "Where do I live?", Utc::now())
        .await;
    assert_eq!(recall.block, None);
    let late = tell(&learner, &user, "s1", told_at, "...").await;
    assert_eq!(late.skipped, Some("forgotten"));
}

/// A record as large as real ones get: a sentence, two sessions and a 1,024-dimension vector.
fn large_record(i: usize, now: DateTime<Utc>) -> MemoryRecord {
    let key = format!("fact_number_{i:04}");
    MemoryRecord {
        id: format!("fact.{key}"),
        kind: MemoryKind::Fact,
        key,
        text: format!("The user mentioned a fact numbered {i} about their work, home, plans and the people they know well."),
        sessions: vec![uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string()],
        created_at: now,
        updated_at: now,
        changed_at: now,
        version: 0,
        vector: Some(QuantizedVector::quantize(
            &(0..1_024).map(|d| ((i * 31 + d) % 97) as f32 / 97.0 - 0.5).collect::<Vec<_>>(),
        )),
    }
}

#[tokio::test]
async fn a_thousand_records_are_read_in_at_most_two_query_pages() {
    let h = harness().await;
    let memory = DynamoLongTermMemory::new(h.client.clone(), h.table.clone());
    let user = new_id("user");
    let now = Utc::now();
    let records: Vec<MemoryRecord> = (0..1_000).map(|i| large_record(i, now)).collect();
    for chunk in records.chunks(98) {
        memory
            .write_memories(&user, "s1", now, chunk)
            .await
            .unwrap();
    }
    let pages = h
        .client
        .query()
        .table_name(&h.table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("MEMORY#{user}")))
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    let items: usize = pages
        .iter()
        .map(|page| page.as_ref().unwrap().items().len())
        .sum();
    assert_eq!(items, 1_000);
    assert!(pages.len() <= 2, "{} pages", pages.len());
    let read = memory.memory(&user).await.unwrap();
    assert_eq!(read.records.len(), 1_000);
    assert_eq!(read.records[7].vector, records[7].vector);
}
