//! What both entry points build once per execution environment: the SDK clients, the store,
//! the models of every role and the tools, wired into the [`App`].

use std::{sync::Arc, time::Duration};

use lambda_http::Error;
use shared::{
    adapters::lambda_tools::LambdaTools,
    adapters::{
        bedrock::{embed::BedrockEmbedder, BedrockModel},
        dynamodb::{DynamoLongTermMemory, DynamoSessionStore},
        openai::OpenAiModel,
        secrets::{ApiKey, KeyCache, SecretsManagerKeys},
    },
    agent::{Agent, Models, RoleModels},
    aws::timeouts,
    config::{Config, ModelProvider},
    learning::Recaller,
    models::ModelChain,
    otel::{provider_name, Exporter},
    ports::{Embedder, LongTermMemory, Model, ToolInvoker},
    tools::{tool_set::ToolSet, BuiltinTools},
};

use crate::{
    console::ConsoleSettings,
    handler::App,
    otel::{Traces, DEFAULT_AGENT_NAME},
};

/// Builds the app from the configuration, with `max_wall_time` as the turn's time limit.
pub async fn app(config: &Config, max_wall_time: Duration) -> Result<App, Error> {
    let mut config = config.clone();
    config.agent.max_wall_time = max_wall_time;
    let config = &config;
    let sdk = shared::aws::sdk_config().await;
    // Each client's timeouts come from the budget of what it does: a DynamoDB call must fit in
    // the margin kept to store the turn, a model call in the turn's wall time (and the driver
    // cuts it at the time actually left), a tool invocation in the tool timeout
    // (or the listing timeout, when longer).
    let margin = config.deadline_margin.max(Duration::from_secs(1));
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .timeout_config(timeouts(margin / 2, margin))
        .build();
    let dynamodb_client = aws_sdk_dynamodb::Client::from_conf(dynamodb);
    let store = DynamoSessionStore::new(
        dynamodb_client.clone(),
        config.table_name.clone(),
        config.session_ttl_days,
    );
    let models = models(config, &sdk)?;
    // The same client lists the tools, within their own (possibly longer) timeout; a call is
    // also cut at the tool timeout by the driver.
    let invoke_timeout = config.agent.tool_timeout.max(config.tool_list_timeout);
    let lambda = aws_sdk_lambda::config::Builder::from(&sdk)
        .timeout_config(timeouts(invoke_timeout, invoke_timeout))
        .build();
    let remote: Option<Arc<dyn ToolInvoker>> = (!config.tool_functions.is_empty()).then(|| {
        Arc::new(
            LambdaTools::new(
                aws_sdk_lambda::Client::from_conf(lambda),
                config.tool_functions.clone(),
            )
            .with_list_timeout(config.tool_list_timeout)
            .with_list_retry(config.tool_list_retry.0, config.tool_list_retry.1),
        ) as Arc<dyn ToolInvoker>
    });
    let agent = Agent::with_models(
        Arc::new(store),
        models,
        Arc::new(ToolSet::new(BuiltinTools::default(), remote)),
        config.agent.clone(),
    );
    Ok(App {
        agent: with_memory(agent, config, &sdk, dynamodb_client.clone(), margin),
        auth_mode: config.auth_mode,
        max_message_bytes: config.max_message_bytes,
        deadline_margin: config.deadline_margin,
        jwt: None,
        console: ConsoleSettings::from_env()?,
        traces: traces(config, &sdk)?,
    })
}

/// Long-term memory on the same table: listed and erased through the API, and with
/// `MEMORY_TOKENS` above 0 recalled into each turn's system prompt (by embeddings unless
/// `MEMORY_EMBEDDINGS=off`), within half the store's margin so a slow read never delays a turn.
fn with_memory(
    agent: Agent,
    config: &Config,
    sdk: &aws_config::SdkConfig,
    dynamodb: aws_sdk_dynamodb::Client,
    margin: Duration,
) -> Agent {
    let memory: Arc<dyn LongTermMemory> = Arc::new(DynamoLongTermMemory::new(
        dynamodb,
        config.table_name.clone(),
    ));
    let settings = &config.memory;
    let recaller = (settings.tokens > 0).then(|| {
        let embedder = settings.embeddings.then(|| {
            let bedrock = aws_sdk_bedrockruntime::config::Builder::from(sdk)
                .timeout_config(timeouts(margin / 2, margin / 2))
                .build();
            Arc::new(BedrockEmbedder::new(
                aws_sdk_bedrockruntime::Client::from_conf(bedrock),
                settings.embedding_model_id.clone(),
                settings.embedding_dimensions,
            )) as Arc<dyn Embedder>
        });
        Recaller::new(memory.clone(), embedder, settings.tokens).with_timeout(margin / 2)
    });
    agent.with_memory(memory, recaller)
}

/// The exporter of each turn's spans, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; otherwise nothing is built.
fn traces(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Option<Traces>, Error> {
    let Some(exporter) = Exporter::from_env(sdk.credentials_provider())? else {
        return Ok(None);
    };
    Ok(Some(Traces {
        exporter,
        agent_name: std::env::var("AGENT_NAME")
            .ok()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_AGENT_NAME.to_owned()),
        provider: provider_name(&config.models.provider),
    }))
}

/// How long the OpenAI-compatible provider's API key is kept before Secrets Manager is read
/// again.
const OPENAI_KEY_TTL: Duration = Duration::from_secs(300);

/// Builds the model of one id.
type ModelFactory = Box<dyn Fn(&str) -> Result<Arc<dyn Model>, Error>>;

/// Every role's chain of models, each call one attempt: the SDK's retries are off, because the
/// agent's retry layer retries within the turn's time left and falls back along the chain
/// (attempts would multiply otherwise). An attempt is bounded by the turn's wall time; the
/// driver also cuts it at the time actually left.
fn models(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Models, Error> {
    let wall = config.agent.max_wall_time;
    let model: ModelFactory = match &config.models.provider {
        ModelProvider::Bedrock => {
            let bedrock = aws_sdk_bedrockruntime::config::Builder::from(sdk)
                .timeout_config(timeouts(wall, wall))
                .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
                .build();
            let client = aws_sdk_bedrockruntime::Client::from_conf(bedrock);
            Box::new(move |id: &str| {
                Ok(Arc::new(BedrockModel::new(client.clone(), id)) as Arc<dyn Model>)
            })
        }
        ModelProvider::OpenAi {
            base_url,
            api_key_secret,
            local_api_key,
        } => {
            let url = url::Url::parse(base_url).map_err(|error| {
                format!("environment variable OPENAI_BASE_URL is invalid: {error}")
            })?;
            // The key is read from Secrets Manager through a cache, and read again after a
            // rejection (a rotated key); a plain key is accepted only in local mode (config).
            let keys = api_key_secret.as_ref().map(|secret| {
                let client = aws_sdk_secretsmanager::Client::new(sdk);
                Arc::new(KeyCache::new(
                    Arc::new(SecretsManagerKeys::new(client, secret.clone())),
                    OPENAI_KEY_TTL,
                ))
            });
            let local = local_api_key.clone().map(ApiKey::new);
            Box::new(move |id: &str| {
                let model = OpenAiModel::new(url.clone(), id, local.clone(), wall)?;
                let model = match &keys {
                    Some(keys) => model.with_key_cache(keys.clone())?,
                    None => model,
                };
                Ok(Arc::new(model) as Arc<dyn Model>)
            })
        }
    };
    let mut models = Models::default();
    for (role, role_config) in &config.models.roles {
        let chain = ModelChain::new(
            role_config
                .chain()
                .map(&model)
                .collect::<Result<Vec<_>, _>>()?,
            &config.models.prices,
        );
        let mut role_models = RoleModels::new(chain, config.role_budgets[role]);
        role_models.additional_fields = role_config.additional_fields.clone();
        role_models.service_tier = role_config.service_tier;
        models = models.with(*role, role_models);
    }
    Ok(models)
}
