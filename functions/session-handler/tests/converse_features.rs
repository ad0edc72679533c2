//! The Converse features a serious agent uses, through the whole handler against the stand-in:
//! extended thinking in a tool loop, a forced tool choice, stop sequences and the per-turn
//! token cap.

mod common;

use std::sync::Arc;

use bedrock_standin::{Options, Standin};
use common::{bedrock_model, settings, Api};
use serde_json::{json, Value};
use session_handler::handler::App;
use shared::{
    adapters::memory::MemorySessionStore,
    agent::{Agent, AgentSettings, Models, RoleModels},
    config::AuthMode,
    domain::{
        model::{InferenceConfig, ToolChoice},
        pricing::PriceBook,
    },
    models::{ModelChain, ModelRole},
    tools::BuiltinTools,
};

const HAIKU: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

/// An API whose reasoning role is Haiku 4.5 with these request fields.
async fn api(settings: AgentSettings, additional_fields: Option<Value>) -> Api {
    let standin = Standin::start(Options::default())
        .await
        .expect("stand-in starts");
    let sdk = shared::aws::sdk_config().await;
    let chain = ModelChain::new(
        vec![bedrock_model(&sdk, &standin, HAIKU)],
        &PriceBook::default(),
    );
    let mut role = RoleModels::new(chain, settings.context);
    role.additional_fields = additional_fields;
    Api {
        app: App {
            agent: Agent::with_models(
                Arc::new(MemorySessionStore::default()),
                Models::default().with(ModelRole::Reasoning, role),
                Arc::new(BuiltinTools::default()),
                settings,
            ),
            auth_mode: AuthMode::InsecureLocal,
            max_message_bytes: 16 * 1024,
            deadline_margin: std::time::Duration::from_secs(2),
            jwt: None,
            traces: None,
            console: Default::default(),
        },
        standin,
    }
}

async fn history(api: &Api, session: &str) -> Value {
    api.call("GET", &format!("/sessions/{session}"), "alice", None, &[])
        .await
        .body
}

#[tokio::test]
async fn extended_thinking_works_in_a_tool_loop_and_its_reasoning_is_kept_as_returned() {
    let thinking = json!({"thinking": {"type": "enabled", "budget_tokens": 1024}});
    let settings = AgentSettings {
        inference: InferenceConfig {
            max_tokens: Some(4096),
            ..InferenceConfig::default()
        },
        ..settings()
    };
    let api = api(settings, Some(thinking)).await;
    let session = api.create_session("alice").await;
    // The stand-in refuses step 2 unless step 1's reasoning block comes back unchanged.
    let reply = api.send("alice", &session, "What is 6*7?").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["steps"], 2);
    assert!(reply.body["answer"]
        .as_str()
        .is_some_and(|a| a.contains("42")));
    let stored = history(&api, &session).await;
    let tool_use_message = &stored["messages"][1];
    let first = &tool_use_message["content"][0];
    assert_eq!(first["type"], "reasoning", "{tool_use_message}");
    assert!(first["signature"].as_str().is_some_and(|s| !s.is_empty()));
    // A second turn sends the first turn's reasoning back too, and is accepted.
    let again = api.send("alice", &session, "And 7*8?").await;
    assert_eq!(again.status, 200, "{:?}", again.body);
}

#[tokio::test]
async fn a_forced_tool_choice_makes_the_first_step_call_the_tool_and_frees_the_next() {
    let settings = AgentSettings {
        tool_choice: Some(ToolChoice::Tool("current_time".into())),
        ..settings()
    };
    let api = api(settings, None).await;
    let session = api.create_session("alice").await;
    let reply = api.send("alice", &session, "hello there").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["steps"], 2, "{:?}", reply.body);
    assert_eq!(reply.body["stop_reason"], "end_turn");
    let stored = history(&api, &session).await;
    let content = stored["messages"][1]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        content
            .iter()
            .any(|b| b["type"] == "tool_use" && b["name"] == "current_time"),
        "{content:?}"
    );
}

#[tokio::test]
async fn a_stop_sequence_ends_the_answer_before_it() {
    let settings = AgentSettings {
        inference: InferenceConfig {
            max_tokens: Some(512),
            stop_sequences: vec!["STOP".into()],
            ..InferenceConfig::default()
        },
        ..settings()
    };
    let api = api(settings, None).await;
    let session = api.create_session("alice").await;
    let reply = api
        .send("alice", &session, "first part STOP second part")
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["stop_reason"], "stop_sequence");
    let answer = reply.body["answer"].as_str().unwrap_or_default();
    assert!(
        answer.contains("first part") && !answer.contains("second part"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_turn_token_cap_ends_a_looping_turn_with_max_turn_tokens_and_keeps_its_steps() {
    let settings = AgentSettings {
        max_steps: 20,
        max_turn_tokens: Some(3_000),
        ..settings()
    };
    let api = api(settings, None).await;
    let session = api.create_session("alice").await;
    let reply = api
        .send("alice", &session, "[[standin:always-tool]] What is 6*7?")
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["stop_reason"], "max_turn_tokens");
    let steps = reply.body["steps"].as_u64().unwrap_or_default();
    assert!((1..20).contains(&steps), "{steps}");
    let usage = &reply.body["usage"];
    let total = usage["input_tokens"].as_u64().unwrap_or(0)
        + usage["output_tokens"].as_u64().unwrap_or(0)
        + usage["cache_read_tokens"].as_u64().unwrap_or(0)
        + usage["cache_write_tokens"].as_u64().unwrap_or(0);
    assert!(total <= 3_000, "{usage}");
    assert_eq!(
        history(&api, &session).await["turns"],
        1,
        "the turn is stored"
    );
}
