//! The session handler Lambda: wires the SDK clients once, then serves the HTTP API.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error, Request};
use shared::{
    adapters::lambda_tools::LambdaTools,
    adapters::{bedrock::BedrockModel, dynamodb::DynamoSessionStore},
    agent::Agent,
    config::Config,
    ports::ToolInvoker,
    tools::{tool_set::ToolSet, BuiltinTools},
};

use session_handler::handler::{handle, App};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();

    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let store = DynamoSessionStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
        config.session_ttl_days,
    );
    let model = BedrockModel::new(
        aws_sdk_bedrockruntime::Client::new(&sdk),
        config.model_id.clone(),
    );
    let remote: Option<Arc<dyn ToolInvoker>> = (!config.tool_functions.is_empty()).then(|| {
        Arc::new(LambdaTools::new(
            aws_sdk_lambda::Client::new(&sdk),
            config.tool_functions.clone(),
        )) as Arc<dyn ToolInvoker>
    });
    let app = App {
        agent: Agent::new(
            Arc::new(store),
            Arc::new(model),
            Arc::new(ToolSet::new(BuiltinTools::default(), remote)),
            config.agent.clone(),
        ),
        auth_mode: config.auth_mode,
        max_message_bytes: config.max_message_bytes,
        deadline_margin: config.deadline_margin,
    };
    let app = &app;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handle(app, request).await)
    }))
    .await
}
