//! The API harness of the handler's tests: the real handler, the real Bedrock adapter over
//! loopback to the Converse stand-in, the built-in tools, and the in-memory session store.
#![allow(dead_code)] // each test file uses part of it

use std::{sync::Arc, time::Duration};

use bedrock_standin::{Options, Standin};
use lambda_http::{http::Request as HttpRequest, Body, Request, Response};
use serde_json::{json, Value};
use session_handler::handler::{handle, App};
use shared::{
    adapters::{bedrock::BedrockModel, memory::MemorySessionStore},
    agent::{Agent, AgentSettings, Models, RoleModels},
    config::AuthMode,
    domain::{model::InferenceConfig, pricing::PriceBook},
    models::{ModelChain, ModelRole},
    ports::Model,
    tools::BuiltinTools,
};

pub const MODEL_ID: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";

pub struct Api {
    pub app: App,
    pub standin: Standin,
}

pub async fn api_with(max_steps: u32, auth_mode: AuthMode) -> Api {
    api_with_settings(
        AgentSettings {
            max_steps,
            ..settings()
        },
        auth_mode,
        Options::default(),
    )
    .await
}

/// The settings of the tests: a test prompt, 30 s wall time, 512 output tokens.
pub fn settings() -> AgentSettings {
    AgentSettings {
        system_prompt: Some("You are a test agent.".into()),
        max_wall_time: Duration::from_secs(30),
        tool_timeout: Duration::from_secs(5),
        inference: InferenceConfig {
            max_tokens: Some(512),
            ..InferenceConfig::default()
        },
        ..AgentSettings::default()
    }
}

/// An API with these settings, against a stand-in started with `options`.
pub async fn api_with_settings(
    settings: AgentSettings,
    auth_mode: AuthMode,
    options: Options,
) -> Api {
    api_with_roles(
        settings,
        auth_mode,
        options,
        &[(ModelRole::Reasoning, &[MODEL_ID])],
    )
    .await
}

/// A Bedrock model of this id on the stand-in, as deployed: one attempt per call (no SDK
/// retries).
pub fn bedrock_model(
    sdk: &aws_config::SdkConfig,
    standin: &Standin,
    model_id: &str,
) -> Arc<dyn Model> {
    let config = aws_sdk_bedrockruntime::config::Builder::from(sdk)
        .endpoint_url(standin.endpoint_url())
        .region(aws_sdk_bedrockruntime::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_bedrockruntime::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
        .build();
    Arc::new(BedrockModel::new(
        aws_sdk_bedrockruntime::Client::from_conf(config),
        model_id,
    ))
}

/// An API whose roles are these chains of model ids, all on one stand-in.
pub async fn api_with_roles(
    settings: AgentSettings,
    auth_mode: AuthMode,
    options: Options,
    roles: &[(ModelRole, &[&str])],
) -> Api {
    let standin = Standin::start(options).await.expect("stand-in starts");
    let sdk = shared::aws::sdk_config().await;
    let mut models = Models::default();
    for (role, chain) in roles {
        let chain = chain
            .iter()
            .map(|id| bedrock_model(&sdk, &standin, id))
            .collect();
        models = models.with(
            *role,
            RoleModels::new(
                ModelChain::new(chain, &PriceBook::default()),
                settings.context,
            ),
        );
    }
    Api {
        app: App {
            agent: Agent::with_models(
                Arc::new(MemorySessionStore::default()),
                models,
                Arc::new(BuiltinTools::default()),
                settings,
            ),
            auth_mode,
            max_message_bytes: 16 * 1024,
            deadline_margin: Duration::from_secs(2),
            jwt: None,
            traces: None,
            console: Default::default(),
        },
        standin,
    }
}

pub async fn api() -> Api {
    api_with(8, AuthMode::InsecureLocal).await
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Value,
}

impl Api {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        user: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut builder = HttpRequest::builder()
            .method(method)
            .uri(path)
            .header("x-user-id", user);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request: Request = builder
            .body(body.map_or(Body::Empty, |text| Body::Text(text.to_owned())))
            .expect("request builds");
        reply(handle(&self.app, request).await)
    }

    pub async fn create_session(&self, user: &str) -> String {
        let reply = self.call("POST", "/sessions", user, None, &[]).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body["session_id"]
            .as_str()
            .expect("session id")
            .to_owned()
    }

    /// `GET /sessions/{session}/trace` as `user`.
    pub async fn trace(&self, user: &str, session: &str) -> Reply {
        self.call(
            "GET",
            &format!("/sessions/{session}/trace"),
            user,
            None,
            &[],
        )
        .await
    }

    pub async fn send(&self, user: &str, session: &str, message: &str) -> Reply {
        let body = json!({ "message": message }).to_string();
        self.call(
            "POST",
            &format!("/sessions/{session}/messages"),
            user,
            Some(&body),
            &[],
        )
        .await
    }
}

pub fn reply(response: Response<Body>) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("JSON body"),
        Body::Binary(bytes) => serde_json::from_slice(bytes).expect("JSON body"),
        _ => Value::Null,
    };
    Reply {
        status,
        content_type,
        headers,
        body,
    }
}
