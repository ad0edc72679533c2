//! A turn through the whole handler on the OpenAI-compatible provider (`MODEL_PROVIDER=openai`):
//! the real handler and `OpenAiModel` against the Chat Completions stand-in over loopback,
//! streamed, with an API key and a fallback chain.

mod common;

use std::{sync::Arc, time::Duration};

use common::{settings, Api};
use openai_standin::{Options, Standin};
use serde_json::json;
use session_handler::handler::App;
use shared::{
    adapters::{memory::MemorySessionStore, openai::OpenAiModel, secrets::ApiKey},
    agent::{Agent, Models, RoleModels},
    config::AuthMode,
    domain::pricing::PriceBook,
    models::{ModelChain, ModelRole},
    ports::Model,
    tools::BuiltinTools,
};

const KEY: &str = "sk-local-handler-test-41d2";

fn model(standin: &Standin, id: &str) -> Arc<dyn Model> {
    let url = url::Url::parse(&standin.base_url()).expect("url");
    Arc::new(
        OpenAiModel::new(url, id, Some(ApiKey::new(KEY)), Duration::from_secs(10))
            .expect("model")
            .with_streaming(true),
    )
}

#[tokio::test]
async fn a_tool_turn_runs_on_an_openai_compatible_endpoint_and_falls_back_on_an_unknown_model() {
    let standin = Standin::start(Options {
        api_key: Some(KEY.into()),
        ..Options::default()
    })
    .await
    .expect("stand-in starts");
    let settings = settings();
    // The first model is not served (404): the chain moves to the next at once.
    let chain = ModelChain::new(
        vec![
            model(&standin, "no-such-model"),
            model(&standin, "gpt-4o-mini"),
        ],
        &PriceBook::default(),
    );
    let models = Models::default().with(
        ModelRole::Reasoning,
        RoleModels::new(chain, settings.context),
    );
    let app = App {
        agent: Agent::with_models(
            Arc::new(MemorySessionStore::default()),
            models,
            Arc::new(BuiltinTools::default()),
            settings,
        ),
        auth_mode: AuthMode::InsecureLocal,
        max_message_bytes: 16 * 1024,
        deadline_margin: Duration::from_secs(2),
        jwt: None,
        traces: None,
        console: Default::default(),
    };
    let api = Api {
        app,
        standin: bedrock_standin::Standin::start(bedrock_standin::Options::default())
            .await
            .expect("unused Bedrock stand-in"),
    };
    let session = api.create_session("alice").await;
    let reply = api.send("alice", &session, "What is 6*7?").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["steps"], 2);
    assert!(
        reply.body["answer"]
            .as_str()
            .is_some_and(|a| a.contains("42")),
        "{:?}",
        reply.body
    );
    assert_eq!(reply.body["models"], json!(["gpt-4o-mini", "gpt-4o-mini"]));
    assert!(reply.body["usage"]["input_tokens"].as_u64() > Some(0));
    assert_eq!(
        reply.body["cost"]["unpriced"],
        json!(["gpt-4o-mini"]),
        "a local model has no price, and the ledger says so"
    );
    let model_items = reply.body["cost"]["items"].as_array().map_or(0, |items| {
        items.iter().filter(|i| i["kind"] == "model").count()
    });
    assert_eq!(model_items, 0, "{:?}", reply.body["cost"]);
    let text = reply.body.to_string();
    assert!(!text.contains(KEY));
}
