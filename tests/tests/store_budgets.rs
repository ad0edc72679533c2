//! Budgets against DynamoDB Local: expiry filtered on every read, a window the model accepts
//! whatever TTL has deleted, the version from the marker, transactions checked before they are
//! sent, and whole sessions that stay usable (a capped 40-step turn of large tool errors, 200
//! turns that each read a 100 KB page) through the real Bedrock adapter and the stand-in,
//! which refuses an over-long input as Bedrock does.
//!
//! Needs `AWS_ENDPOINT_URL_DYNAMODB` (set by `make test`).

mod common;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use bedrock_standin::{Options, Standin};
use chrono::Utc;
use common::*;
use serde_json::json;
use shared::{
    adapters::bedrock::BedrockModel,
    agent::{Agent, AgentSettings, TurnRequest, TurnResult},
    domain::{
        context::ContextBudget,
        message::{Message, ToolCall, ToolOutput},
        model::ToolSpec,
        truncate::MAX_MESSAGE_CONTENT_BYTES,
    },
    ports::{CallContext, PageRequest, SessionStore, StoreError, ToolInvoker, ToolListError},
    store_conformance::{chat_turn, commit, new_id, tool_turn, ALL},
};

/// Sets an item's `expires_at` to a second ago, as if its TTL had passed and DynamoDB had not
/// deleted it yet.
async fn expire(h: &Harness, pk: &str, sk: &str) {
    h.client
        .update_item()
        .table_name(&h.table)
        .key("PK", AttributeValue::S(pk.into()))
        .key("SK", AttributeValue::S(sk.into()))
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(
            ":past",
            AttributeValue::N((Utc::now().timestamp() - 1).to_string()),
        )
        .send()
        .await
        .unwrap();
}

async fn delete(h: &Harness, pk: &str, sk: &str) {
    h.client
        .delete_item()
        .table_name(&h.table)
        .key("PK", AttributeValue::S(pk.into()))
        .key("SK", AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap();
}

/// A session of three tool turns (12 messages); returns (user, session, its partition key).
async fn three_tool_turns(h: &Harness) -> (String, String, String) {
    let (user, session) = (new_id("user"), new_id("session"));
    let now = Utc::now();
    h.store.create_session(&user, &session, now).await.unwrap();
    for turn in 1..=3u64 {
        let turn_commit = commit((turn - 1) * 4, turn, tool_turn(&format!("q{turn}")), now);
        h.store
            .append_turn(&user, &session, &turn_commit)
            .await
            .unwrap();
    }
    let pk = format!("USER#{user}#SESSION#{session}");
    (user, session, pk)
}

#[tokio::test]
async fn expired_items_are_left_out_of_every_read() {
    let h = harness().await;
    let (user, session, pk) = three_tool_turns(&h).await;
    for seq in 1..=4 {
        expire(&h, &pk, &format!("MSG#{seq:010}")).await;
    }
    expire(&h, &pk, "TRACE#0000000001").await;
    let window = h.store.load_window(&user, &session, 40).await.unwrap();
    let seqs: Vec<u64> = window.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (5..=12).collect::<Vec<u64>>());
    assert_eq!((window.version, window.last_turn), (12, 3));
    let (_, page) = h.store.get_session(&user, &session, ALL).await.unwrap();
    assert_eq!(page.items.first().map(|m| m.seq), Some(5));
    let traces = h.store.get_traces(&user, &session, ALL).await.unwrap();
    assert_eq!(
        traces.items.iter().map(|t| t.turn).collect::<Vec<_>>(),
        [2, 3]
    );

    // An expired marker and header: the session is gone for every read.
    expire(&h, &pk, "SESSION").await;
    expire(&h, &format!("USER#{user}"), &format!("SESSION#{session}")).await;
    let gone = h.store.load_window(&user, &session, 40).await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    let gone = h.store.get_session(&user, &session, ALL).await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    assert!(h.store.list_sessions(&user).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_version_is_the_markers_so_turns_go_on_when_the_newest_message_is_gone() {
    let h = harness().await;
    let (user, session, pk) = three_tool_turns(&h).await;
    delete(&h, &pk, "MSG#0000000012").await;
    let window = h.store.load_window(&user, &session, 40).await.unwrap();
    assert_eq!(
        (window.version, window.last_turn),
        (12, 3),
        "the header's version, not the newest message's"
    );
    let next = commit(window.version, 4, chat_turn("q4"), Utc::now());
    h.store.append_turn(&user, &session, &next).await.unwrap();
}

#[tokio::test]
async fn a_transaction_over_dynamodbs_limits_is_refused_before_it_is_sent() {
    let h = harness().await;
    let (user, session, _) = three_tool_turns(&h).await;
    h.requests.take();
    // 15 messages of 300 KB: 4.5 MB, over the 4 MB of one transaction.
    let big: Vec<Message> = (0..15)
        .map(|i| {
            let text = "z".repeat(MAX_MESSAGE_CONTENT_BYTES - 64);
            if i % 2 == 0 {
                Message::user_text(text)
            } else {
                Message::assistant_text(text)
            }
        })
        .collect();
    let result = h
        .store
        .append_turn(&user, &session, &commit(12, 4, big, Utc::now()))
        .await;
    assert!(matches!(result, Err(StoreError::TooLarge(_))), "{result:?}");
    // 120 messages: over the 100 actions of one transaction.
    let many: Vec<Message> = (0..60).flat_map(|i| chat_turn(&format!("m{i}"))).collect();
    let result = h
        .store
        .append_turn(&user, &session, &commit(12, 4, many, Utc::now()))
        .await;
    assert!(matches!(result, Err(StoreError::TooLarge(_))), "{result:?}");
    assert_eq!(h.requests.take(), counts(&[]), "nothing was sent");
}

/// One tool, answering every call with `output`.
struct FixedTool {
    name: &'static str,
    output: ToolOutput,
}

#[async_trait]
impl ToolInvoker for FixedTool {
    async fn specs(&self) -> Result<Vec<ToolSpec>, ToolListError> {
        Ok(vec![ToolSpec {
            name: self.name.into(),
            description: "Reads something large.".into(),
            input_schema: json!({"type": "object", "properties": {"query": {"type": "string"}}}),
        }])
    }

    async fn call(&self, _call: &ToolCall, _context: &CallContext) -> ToolOutput {
        self.output.clone()
    }
}

/// An agent on the DynamoDB store and the real Bedrock adapter to a stand-in whose window is
/// `window` tokens (and which the agent is told about).
async fn agent(h: &Harness, tool: FixedTool, window: u64, max_steps: u32) -> (Agent, Standin) {
    let standin = Standin::start(Options {
        context_tokens: Some(window),
        ..Options::default()
    })
    .await
    .expect("stand-in starts");
    let sdk = shared::aws::sdk_config().await;
    let config = aws_sdk_bedrockruntime::config::Builder::from(&sdk)
        .endpoint_url(standin.endpoint_url())
        .region(aws_sdk_bedrockruntime::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_bedrockruntime::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    let model = BedrockModel::new(
        aws_sdk_bedrockruntime::Client::from_conf(config),
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    );
    let settings = AgentSettings {
        max_steps,
        max_wall_time: Duration::from_secs(60),
        context: ContextBudget {
            context_tokens: window,
            output_tokens: 1024,
            tool_result_tokens: 2_000,
            step_tool_result_tokens: 4_000,
        },
        ..AgentSettings::default()
    };
    let agent = Agent::new(
        Arc::new(h.store.clone()),
        Arc::new(model),
        Arc::new(tool),
        settings,
    );
    (agent, standin)
}

async fn send(agent: &Agent, user: &str, session: &str, message: &str) -> TurnResult {
    agent
        .send_message(TurnRequest {
            user_id: user,
            session_id: session,
            message,
            idempotency_key: Some(&new_id("key")),
            role: shared::models::ModelRole::Reasoning,
            arrived: std::time::Instant::now(),
            time_left: None,
            sink: None,
        })
        .await
        .unwrap_or_else(|error| panic!("{message:.40}: {error}"))
}

#[tokio::test]
async fn a_capped_40_step_turn_of_large_tool_errors_is_stored_once_and_whole() {
    let h = harness().await;
    let tool = FixedTool {
        name: "big",
        output: ToolOutput::error(format!("failed: {}", "trace line\n".repeat(30_000))),
    };
    let (agent, _standin) = agent(&h, tool, 200_000, 40).await;
    let (user, session) = (new_id("user"), new_id("session"));
    h.store
        .create_session(&user, &session, Utc::now())
        .await
        .unwrap();
    let result = send(&agent, &user, &session, "[[standin:always-tool]] go").await;
    assert_eq!(
        (result.stop_reason.as_str(), result.steps),
        ("max_steps", 40)
    );
    let (header, _) = h.store.get_session(&user, &session, ALL).await.unwrap();
    assert_eq!(header.turns, 1);
    assert_eq!(
        header.version, 82,
        "question, 40 tool uses and results, closing note"
    );
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let (_, page) = h
            .store
            .get_session(&user, &session, PageRequest { after, limit: 500 })
            .await
            .unwrap();
        stored.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        stored.len(),
        82,
        "every message stored, read back across 1 MB pages"
    );
    let bytes: usize = stored
        .iter()
        .map(|m| serde_json::to_vec(&m.message.content).map_or(0, |b| b.len()))
        .sum();
    assert!(
        bytes <= 3 * 1024 * 1024,
        "the turn was fitted to 3 MB: {bytes}"
    );
    let traces = h.store.get_traces(&user, &session, ALL).await.unwrap();
    assert_eq!(
        traces.items[0].usage, result.usage,
        "the trace holds every step's usage"
    );
}

#[tokio::test]
async fn a_200_turn_session_that_reads_a_100_kb_page_every_turn_keeps_answering() {
    let h = harness().await;
    let tool = FixedTool {
        name: "web_search",
        output: ToolOutput::text("a page of readable text. ".repeat(4_000)),
    };
    // A 20 000-token window, refused past it by the stand-in as Bedrock does.
    let (agent, standin) = agent(&h, tool, 20_000, 8).await;
    let (user, session) = (new_id("user"), new_id("session"));
    h.store
        .create_session(&user, &session, Utc::now())
        .await
        .unwrap();
    for turn in 1..=200 {
        let result = send(&agent, &user, &session, &format!("Search for page {turn}")).await;
        assert_eq!(result.stop_reason, "end_turn", "turn {turn}: {result:?}");
        assert!(
            result.answer.contains("a page of readable text"),
            "turn {turn}"
        );
    }
    let (header, _) = h.store.get_session(&user, &session, ALL).await.unwrap();
    assert_eq!(header.turns, 200);
    assert_eq!(
        standin.stats().converse(),
        400,
        "two model calls a turn, none refused"
    );
}

#[tokio::test]
async fn a_turn_half_deleted_by_ttl_still_gives_a_window_the_model_accepts() {
    let h = harness().await;
    let tool = FixedTool {
        name: "web_search",
        output: ToolOutput::text("small result"),
    };
    let (agent, _standin) = agent(&h, tool, 200_000, 8).await;
    let (user, session) = (new_id("user"), new_id("session"));
    h.store
        .create_session(&user, &session, Utc::now())
        .await
        .unwrap();
    for turn in 1..=3 {
        send(&agent, &user, &session, &format!("Search for thing {turn}")).await;
    }
    // TTL deleted turn 2's tool use but not yet its result.
    let pk = format!("USER#{user}#SESSION#{session}");
    delete(&h, &pk, "MSG#0000000006").await;
    let result = send(&agent, &user, &session, "Search for thing 4").await;
    assert_eq!(result.stop_reason, "end_turn");
}

/// The same 200-turn session, for a user with 1,000 remembered records: every turn's
/// remembered context stays within `MEMORY_TOKENS`, and with it every request within the
/// window the stand-in enforces (it refuses a longer input as Bedrock does).
#[tokio::test]
async fn a_200_turn_session_of_a_user_with_1000_records_keeps_memory_and_history_in_budget() {
    use shared::adapters::dynamodb::DynamoLongTermMemory;
    use shared::domain::memory::{MemoryKind, MemoryRecord};
    use shared::learning::Recaller;
    use shared::ports::LongTermMemory;

    let h = harness().await;
    let tool = FixedTool {
        name: "web_search",
        output: ToolOutput::text("a page of readable text. ".repeat(4_000)),
    };
    let (agent, standin) = agent(&h, tool, 20_000, 8).await;
    let memory = Arc::new(DynamoLongTermMemory::new(h.client.clone(), h.table.clone()));
    let (user, session) = (new_id("user"), new_id("session"));
    let now = Utc::now();
    let records: Vec<MemoryRecord> = (0..1_000)
        .map(|i| MemoryRecord {
            id: format!("fact.page_fact_{i:04}"),
            kind: MemoryKind::Fact,
            key: format!("page_fact_{i:04}"),
            text: format!("The user once read page {i} and said it was about searching for pages of readable text."),
            sessions: vec!["earlier".into()],
            created_at: now,
            updated_at: now,
            changed_at: now,
            version: 0,
            vector: None,
        })
        .collect();
    for chunk in records.chunks(98) {
        memory
            .write_memories(&user, "earlier", now, chunk)
            .await
            .unwrap();
    }
    const MEMORY_TOKENS: u64 = 1_000;
    let agent = agent.with_memory(
        memory.clone(),
        Some(Recaller::new(memory.clone(), None, MEMORY_TOKENS)),
    );
    h.store
        .create_session(&user, &session, Utc::now())
        .await
        .unwrap();
    let remembered = |standin: &Standin| {
        let url = format!(
            "{}/__systems?contains=Remembered%20context",
            standin.endpoint_url()
        );
        async move {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let probe: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            probe["matches"].as_u64().unwrap()
        }
    };
    for turn in 1..=200 {
        let result = send(&agent, &user, &session, &format!("Search for page {turn}")).await;
        assert_eq!(result.stop_reason, "end_turn", "turn {turn}: {result:?}");
    }
    assert_eq!(
        standin.stats().converse(),
        400,
        "two model calls a turn, none refused for length"
    );
    // The stand-in keeps the last 500 requests: all 400 carried remembered context.
    assert_eq!(remembered(&standin).await, 400);
    // And the block itself holds within its budget (4 bytes a token, as the budget counts).
    let recall = Recaller::new(memory.clone(), None, MEMORY_TOKENS)
        .recall(&user, "Search for page 200", Utc::now())
        .await;
    let block = recall.block.expect("records chosen");
    assert!(
        block.len() as u64 <= MEMORY_TOKENS * 4,
        "{} bytes",
        block.len()
    );
    assert!(recall.chosen.len() > 5 && recall.chosen.len() < 1_000);
}
