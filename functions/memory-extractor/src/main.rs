//! The memory extractor Lambda: builds its clients once, then learns from each batch of the
//! table's stream (see the crate docs). Configuration: the session handler's (`TABLE_NAME`,
//! `EXTRACTION_MODEL_ID` and its fallbacks, prices) and memory's (`MEMORY_EMBEDDINGS`,
//! `EMBEDDING_MODEL_ID`, `EMBEDDING_DIMENSIONS`); docs/memory.md.

use std::{sync::Arc, time::Duration};

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::{
    adapters::{
        bedrock::{embed::BedrockEmbedder, BedrockModel},
        dynamodb::DynamoLongTermMemory,
    },
    aws::timeouts,
    config::{Config, ModelProvider},
    learning::Learner,
    models::{ModelChain, ModelRole},
    ports::{Embedder, Model},
};
use tokio::time::Instant;

/// Time kept before the invocation's deadline to write what was learned.
const MARGIN: Duration = Duration::from_secs(5);

/// The function's timeout in template.yaml.
const DEPLOYED_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();
    let config = Config::from_env()?;
    if !matches!(config.models.provider, ModelProvider::Bedrock) {
        return Err("the memory extractor calls Bedrock: MODEL_PROVIDER must be bedrock".into());
    }
    let sdk = shared::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .timeout_config(timeouts(Duration::from_secs(5), Duration::from_secs(10)))
        .build();
    let memory = Arc::new(DynamoLongTermMemory::new(
        aws_sdk_dynamodb::Client::from_conf(dynamodb),
        config.table_name.clone(),
    ));
    // One attempt per call: the chain retries and falls back within the time left.
    let bedrock = aws_sdk_bedrockruntime::config::Builder::from(&sdk)
        .timeout_config(timeouts(Duration::from_secs(30), Duration::from_secs(30)))
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_bedrockruntime::Client::from_conf(bedrock);
    let extraction = &config.models.roles[&ModelRole::Extraction];
    let chain = ModelChain::new(
        extraction
            .chain()
            .map(|id| Arc::new(BedrockModel::new(client.clone(), id)) as Arc<dyn Model>)
            .collect(),
        &config.models.prices,
    );
    let embedder = config.memory.embeddings.then(|| {
        Arc::new(BedrockEmbedder::new(
            client.clone(),
            config.memory.embedding_model_id.clone(),
            config.memory.embedding_dimensions,
        )) as Arc<dyn Embedder>
    });
    let learner = Learner::new(chain, memory, embedder);
    let learner = &learner;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        // A deadline that is not in the future is not a real one (`cargo lambda watch` sends
        // a fixed placeholder): the batch then gets the deployed timeout's budget.
        let left = event
            .context
            .deadline()
            .duration_since(std::time::SystemTime::now())
            .ok()
            .filter(|left| !left.is_zero())
            .unwrap_or(DEPLOYED_TIMEOUT);
        let deadline = Instant::now() + left.saturating_sub(MARGIN);
        Ok::<_, Error>(memory_extractor::handle(learner, event.payload, deadline).await)
    }))
    .await
}
