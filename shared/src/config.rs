//! The session handler's configuration: environment variables read once at start-up into one
//! typed value, with an error that names the variable when one is missing or malformed.

mod models;

use std::{collections::BTreeMap, str::FromStr, time::Duration};

pub use models::{ModelConfig, ModelProvider, RoleConfig, DEFAULT_MODEL_ID};

use crate::{
    adapters::lambda_tools::parse_tool_functions,
    agent::{AgentSettings, Budgets, MAX_STEPS_LIMIT},
    domain::{
        context::ContextBudget,
        ledger::{CostModel, ToolLambda},
        model::{GuardrailConfig, InferenceConfig},
    },
    models::ModelRole,
};

/// The fewest input tokens a configured context budget must leave.
const MIN_INPUT_TOKENS: u64 = 2_048;

/// How callers are identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// The JWT `sub` claim from the API Gateway authorizer. The only mode the SAM template uses.
    Jwt,
    /// An `x-user-id` header, for local runs only; never set in a deployment.
    InsecureLocal,
}

/// A configuration error, naming the variable.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// A variable's value cannot be used.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A variable whose value cannot be used, with the value and why (the tool executors' settings,
/// none of which is secret: a secret is named by its id, never given as a value).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}={value:?}: {reason}")]
pub struct InvalidVar {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Everything the session handler reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// The DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// The models: provider, roles and their chains, prices, retries (see [`ModelConfig`]).
    pub models: ModelConfig,
    /// Each role's context budget, from the smallest window of its chain.
    pub role_budgets: BTreeMap<ModelRole, ContextBudget>,
    /// How callers are identified (`AUTH_MODE`: `jwt`, the default, or `insecure-local`).
    pub auth_mode: AuthMode,
    /// Days a session lives after its last turn (`SESSION_TTL_DAYS`, default 30).
    pub session_ttl_days: u32,
    /// Largest accepted message, in bytes (`MAX_MESSAGE_BYTES`, default 16384).
    pub max_message_bytes: usize,
    /// Time kept free before the invocation's deadline to store the turn (`DEADLINE_MARGIN_MS`, default 3000).
    pub deadline_margin: Duration,
    /// Tools served by executor Lambdas, tool name -> function (`TOOL_FUNCTIONS`:
    /// `http_fetch=fn-a,run_javascript=fn-b`; empty: only the built-in tools).
    pub tool_functions: BTreeMap<String, String>,
    /// Longest wait for one executor's tool listing (`TOOL_LIST_TIMEOUT_MS`, default 3000).
    pub tool_list_timeout: Duration,
    /// Back-off before executors that failed to list are asked again: first and longest
    /// (`TOOL_LIST_RETRY_MS`, default 30000; `TOOL_LIST_RETRY_MAX_MS`, default 300000).
    pub tool_list_retry: (Duration, Duration),
    /// The longest a streamed turn may run (`STREAM_MAX_WALL_TIME_MS`, default 300000, at most
    /// 900000: Lambda's own limit). It replaces `MAX_WALL_TIME_MS` in the streaming function,
    /// which is not bound by API Gateway's 30 s.
    pub stream_max_wall_time: Duration,
    /// The agent's behaviour.
    pub agent: AgentSettings,
    /// Long-term memory: recall at turn start and how records are embedded.
    pub memory: MemorySettings,
}

/// Long-term memory's settings (docs/memory.md).
#[derive(Clone, Debug, PartialEq)]
pub struct MemorySettings {
    /// Tokens of remembered context added to the system prompt (`MEMORY_TOKENS`, default
    /// 1000; 0 turns recall off).
    pub tokens: u64,
    /// Rank by embeddings (`MEMORY_EMBEDDINGS=on`, the default) or by keywords (`off`).
    pub embeddings: bool,
    /// The embedding model (`EMBEDDING_MODEL_ID`, default `amazon.titan-embed-text-v2:0`).
    pub embedding_model_id: String,
    /// Its dimension (`EMBEDDING_DIMENSIONS`: 256, the default, 512 or 1024).
    pub embedding_dimensions: u32,
}

/// The default embedding model.
pub const DEFAULT_EMBEDDING_MODEL_ID: &str = "amazon.titan-embed-text-v2:0";

impl MemorySettings {
    /// Reads the settings through `get` (unset or empty values are the defaults).
    pub fn read(get: &impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        let embeddings = match get("MEMORY_EMBEDDINGS").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "MEMORY_EMBEDDINGS",
                    reason: format!("'{other}' is not one of 'on', 'off'"),
                })
            }
        };
        let embedding_dimensions: u32 = parse(get, "EMBEDDING_DIMENSIONS")?.unwrap_or(256);
        if !crate::adapters::bedrock::embed::TITAN_V2_DIMENSIONS.contains(&embedding_dimensions) {
            return Err(ConfigError::Invalid {
                name: "EMBEDDING_DIMENSIONS",
                reason: "must be 256, 512 or 1024 (what Titan Text Embeddings V2 offers)".into(),
            });
        }
        Ok(Self {
            tokens: parse(get, "MEMORY_TOKENS")?.unwrap_or(1_000),
            embeddings,
            embedding_model_id: get("EMBEDDING_MODEL_ID")
                .unwrap_or_else(|| DEFAULT_EMBEDDING_MODEL_ID.to_owned()),
            embedding_dimensions,
        })
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|value| !value.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let auth_mode = match get("AUTH_MODE").as_deref() {
            None | Some("jwt") => AuthMode::Jwt,
            Some("insecure-local") => AuthMode::InsecureLocal,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "AUTH_MODE",
                    reason: format!("'{other}' is not one of 'jwt', 'insecure-local'"),
                })
            }
        };
        let guardrail = match (get("GUARDRAIL_ID"), get("GUARDRAIL_VERSION")) {
            (Some(id), version) => Some(GuardrailConfig {
                id,
                version: version.unwrap_or_else(|| "DRAFT".to_owned()),
            }),
            (None, Some(_)) => return Err(ConfigError::Missing("GUARDRAIL_ID")),
            (None, None) => None,
        };
        let defaults = AgentSettings::default();
        let max_steps = parse(&get, "MAX_STEPS")?.unwrap_or(defaults.max_steps);
        if !(1..=MAX_STEPS_LIMIT).contains(&max_steps) {
            return Err(ConfigError::Invalid {
                name: "MAX_STEPS",
                reason: format!(
                    "must be between 1 and {MAX_STEPS_LIMIT} (a turn is stored in one transaction of at most 100 items)"
                ),
            });
        }
        let max_output_tokens: u32 = parse(&get, "MAX_OUTPUT_TOKENS")?.unwrap_or(1024);
        let models = models::read(
            &get,
            auth_mode == AuthMode::InsecureLocal,
            max_output_tokens,
        )?;
        let role_budgets = models
            .roles
            .iter()
            .map(|(role, config)| {
                context_budget(&get, config.context_tokens, max_output_tokens)
                    .map(|budget| (*role, budget))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let context = role_budgets[&ModelRole::Reasoning];
        let temperature: Option<f32> = parse(&get, "TEMPERATURE")?;
        check_thinking(&models, temperature)?;
        let retention_hours: u64 = parse(&get, "IDEMPOTENCY_TTL_HOURS")?.unwrap_or(24);
        if retention_hours == 0 {
            return Err(ConfigError::Invalid {
                name: "IDEMPOTENCY_TTL_HOURS",
                reason: "must be at least 1".into(),
            });
        }
        let tool_functions = parse_tool_functions(&get("TOOL_FUNCTIONS").unwrap_or_default())
            .map_err(|reason| ConfigError::Invalid {
                name: "TOOL_FUNCTIONS",
                reason,
            })?;
        let millis = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            let value = parse(&get, name)?.unwrap_or(default);
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "must be at least 1".into(),
                });
            }
            Ok(Duration::from_millis(value))
        };
        let tool_list_timeout = millis("TOOL_LIST_TIMEOUT_MS", 3_000)?;
        let tool_list_retry = (
            millis("TOOL_LIST_RETRY_MS", 30_000)?,
            millis("TOOL_LIST_RETRY_MAX_MS", 300_000)?,
        );
        let stream_max_wall_time: u64 = parse(&get, "STREAM_MAX_WALL_TIME_MS")?.unwrap_or(300_000);
        if !(1_000..=900_000).contains(&stream_max_wall_time) {
            return Err(ConfigError::Invalid {
                name: "STREAM_MAX_WALL_TIME_MS",
                reason: "must be between 1000 and 900000 (Lambda's 15 minutes)".into(),
            });
        }
        let budgets = budgets(&get)?;
        let memory = MemorySettings::read(&get)?;
        let table_name = required("TABLE_NAME")?;
        let cost_model = cost_model(&get, &tool_functions, &table_name)?;
        Ok(Self {
            stream_max_wall_time: Duration::from_millis(stream_max_wall_time),
            tool_functions,
            tool_list_timeout,
            tool_list_retry,
            table_name,
            auth_mode,
            session_ttl_days: parse(&get, "SESSION_TTL_DAYS")?.unwrap_or(30),
            max_message_bytes: parse(&get, "MAX_MESSAGE_BYTES")?.unwrap_or(16 * 1024),
            deadline_margin: Duration::from_millis(
                parse(&get, "DEADLINE_MARGIN_MS")?.unwrap_or(3_000),
            ),
            agent: AgentSettings {
                system_prompt: Some(
                    get("SYSTEM_PROMPT").unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.to_owned()),
                ),
                max_steps,
                max_wall_time: Duration::from_millis(
                    parse(&get, "MAX_WALL_TIME_MS")?.unwrap_or(120_000),
                ),
                history_messages: parse(&get, "HISTORY_MESSAGES")?.unwrap_or(40),
                tool_timeout: Duration::from_millis(
                    parse(&get, "TOOL_TIMEOUT_MS")?.unwrap_or(10_000),
                ),
                context,
                idempotency_retention: Duration::from_secs(retention_hours * 3600),
                inference: InferenceConfig {
                    max_tokens: Some(max_output_tokens),
                    temperature,
                    top_p: None,
                    stop_sequences: models.stop_sequences.clone(),
                },
                guardrail,
                retry: models.retry,
                max_turn_tokens: models.max_turn_tokens,
                prompt_caching: models.prompt_caching,
                tool_choice: models.tool_choice.clone(),
                cost_model: std::sync::Arc::new(cost_model),
                budgets,
            },
            models,
            role_budgets,
            memory,
        })
    }
}

/// `BUDGET_USER_MONTHLY_USD`, `BUDGET_SESSION_USD` (positive dollars) and
/// `RATE_LIMIT_PER_MINUTE` (at least 1); unset or empty is no cap.
fn budgets(get: &impl Fn(&'static str) -> Option<String>) -> Result<Budgets, ConfigError> {
    let dollars = |name: &'static str| -> Result<Option<f64>, ConfigError> {
        let value: Option<f64> = parse(get, name)?;
        match value {
            Some(usd) if !(usd.is_finite() && usd > 0.0) => Err(ConfigError::Invalid {
                name,
                reason: "must be a positive number of US dollars".into(),
            }),
            other => Ok(other),
        }
    };
    let rate: Option<u32> = parse(get, "RATE_LIMIT_PER_MINUTE")?;
    if rate == Some(0) {
        return Err(ConfigError::Invalid {
            name: "RATE_LIMIT_PER_MINUTE",
            reason: "must be at least 1 (unset it for no limit)".into(),
        });
    }
    Ok(Budgets {
        user_monthly_usd: dollars("BUDGET_USER_MONTHLY_USD")?,
        session_usd: dollars("BUDGET_SESSION_USD")?,
        rate_per_minute: rate,
    })
}

/// The ledger's view of the deployment: the handler's name and memory (Lambda's own
/// `AWS_LAMBDA_FUNCTION_NAME` and `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), and each tool executor's
/// memory, `TOOL_MEMORY_MB` = `tool=MB,...` (default 128 MB, the template's size).
fn cost_model(
    get: &impl Fn(&'static str) -> Option<String>,
    tool_functions: &BTreeMap<String, String>,
    table_name: &str,
) -> Result<CostModel, ConfigError> {
    let defaults = CostModel::default();
    let mut memory: BTreeMap<String, u32> = BTreeMap::new();
    for pair in get("TOOL_MEMORY_MB")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let invalid = || ConfigError::Invalid {
            name: "TOOL_MEMORY_MB",
            reason: format!("'{pair}' is not tool=MB (MB from 128 to 10240)"),
        };
        let (tool, mb) = pair.split_once('=').ok_or_else(invalid)?;
        let mb: u32 = mb.trim().parse().map_err(|_| invalid())?;
        if !(128..=10_240).contains(&mb) {
            return Err(invalid());
        }
        memory.insert(tool.trim().to_owned(), mb);
    }
    let handler_memory_mb: u32 =
        parse(get, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?.unwrap_or(defaults.handler_memory_mb);
    Ok(CostModel {
        handler_function: get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or(defaults.handler_function),
        handler_memory_mb,
        tool_lambdas: tool_functions
            .iter()
            .map(|(tool, function)| {
                let lambda = ToolLambda {
                    function: function.clone(),
                    memory_mb: memory.get(tool).copied().unwrap_or(128),
                };
                (tool.clone(), lambda)
            })
            .collect(),
        table: table_name.to_owned(),
        prices: defaults.prices,
    })
}

/// The context budget of a window of `context_tokens` (`MODEL_CONTEXT_TOKENS`, else the
/// model's window from the built-in table, else the default), `MAX_TOOL_RESULT_TOKENS`
/// (default 8000) and `MAX_STEP_TOOL_RESULT_TOKENS` (default 24000), checked to leave room
/// for the input.
fn context_budget(
    get: &impl Fn(&'static str) -> Option<String>,
    context_tokens: u64,
    max_output_tokens: u32,
) -> Result<ContextBudget, ConfigError> {
    let defaults = AgentSettings::default().context;
    let mut budget = ContextBudget {
        context_tokens,
        output_tokens: u64::from(max_output_tokens),
        tool_result_tokens: 0,
        step_tool_result_tokens: 0,
    };
    // The defaults shrink with a small window; a value set by hand must fit it.
    let half = budget.input_tokens() / 2;
    budget.step_tool_result_tokens = parse(get, "MAX_STEP_TOOL_RESULT_TOKENS")?
        .unwrap_or(defaults.step_tool_result_tokens.min(half));
    budget.tool_result_tokens = parse(get, "MAX_TOOL_RESULT_TOKENS")?.unwrap_or(
        defaults
            .tool_result_tokens
            .min(budget.step_tool_result_tokens),
    );
    let input = budget.input_tokens();
    if input < MIN_INPUT_TOKENS {
        return Err(ConfigError::Invalid {
            name: "MODEL_CONTEXT_TOKENS",
            reason: format!(
                "{} tokens less MAX_OUTPUT_TOKENS ({max_output_tokens}) and a 5% margin leaves {input} for the input; at least {MIN_INPUT_TOKENS} are needed",
                budget.context_tokens
            ),
        });
    }
    if budget.tool_result_tokens == 0 {
        return Err(ConfigError::Invalid {
            name: "MAX_TOOL_RESULT_TOKENS",
            reason: "must be at least 1".into(),
        });
    }
    if budget.step_tool_result_tokens == 0 || budget.step_tool_result_tokens > input / 2 {
        return Err(ConfigError::Invalid {
            name: "MAX_STEP_TOOL_RESULT_TOKENS",
            reason: format!(
                "must be between 1 and half the input budget ({})",
                input / 2
            ),
        });
    }
    Ok(budget)
}

/// Claude's extended thinking refuses a forced tool choice and any temperature but 1: say so
/// at start-up rather than on every turn.
fn check_thinking(models: &ModelConfig, temperature: Option<f32>) -> Result<(), ConfigError> {
    let thinking = models
        .reasoning()
        .additional_fields
        .as_ref()
        .and_then(|fields| fields.pointer("/thinking/type"))
        .is_some_and(|kind| kind == "enabled");
    if !thinking {
        return Ok(());
    }
    if models.tool_choice.is_some() {
        return Err(ConfigError::Invalid {
            name: "TOOL_CHOICE",
            reason: "a forced tool choice cannot be used with extended thinking \
                     (ADDITIONAL_MODEL_REQUEST_FIELDS.thinking): use auto"
                .into(),
        });
    }
    if temperature.is_some_and(|t| (t - 1.0).abs() > f32::EPSILON) {
        return Err(ConfigError::Invalid {
            name: "TEMPERATURE",
            reason: "extended thinking (ADDITIONAL_MODEL_REQUEST_FIELDS.thinking) takes only \
                     a temperature of 1: unset TEMPERATURE"
                .into(),
        });
    }
    Ok(())
}

/// The system prompt used when `SYSTEM_PROMPT` is not set.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant. Use the tools you are given \
    when they help: the calculator for any arithmetic, current_time for dates and times. \
    Answer concisely.";

fn parse<T: FromStr>(
    get: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    get(name)
        .map(|value| {
            value
                .trim()
                .parse::<T>()
                .map_err(|error| ConfigError::Invalid {
                    name,
                    reason: format!("'{value}': {error}"),
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_required_variables_are_set() {
        let config = config(&[
            ("TABLE_NAME", "t"),
            ("MODEL_ID", "us.anthropic.claude-3-5-haiku-20241022-v1:0"),
        ])
        .expect("valid");
        assert_eq!(config.auth_mode, AuthMode::Jwt);
        assert_eq!(config.agent.max_steps, 8);
        assert_eq!(config.max_message_bytes, 16 * 1024);
        assert_eq!(config.session_ttl_days, 30);
        assert_eq!(
            config.models.reasoning().model_id,
            "us.anthropic.claude-3-5-haiku-20241022-v1:0"
        );
    }

    #[test]
    fn a_missing_variable_is_named() {
        assert_eq!(
            config(&[("MODEL_ID", "m")]).err(),
            Some(ConfigError::Missing("TABLE_NAME"))
        );
        assert_eq!(
            config(&[("TABLE_NAME", "t")]).err(),
            Some(ConfigError::Missing("MODEL_ID"))
        );
    }

    #[test]
    fn a_malformed_variable_is_named_with_its_value() {
        let error = config(&[
            ("TABLE_NAME", "t"),
            ("MODEL_ID", "m"),
            ("MAX_STEPS", "eight"),
        ])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            error.contains("MAX_STEPS") && error.contains("'eight'"),
            "{error}"
        );
        let error = config(&[
            ("TABLE_NAME", "t"),
            ("MODEL_ID", "m"),
            ("AUTH_MODE", "none"),
        ])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(error.contains("AUTH_MODE"), "{error}");
    }

    #[test]
    fn extended_thinking_refuses_what_claude_refuses_with_it() {
        let thinking = (
            "ADDITIONAL_MODEL_REQUEST_FIELDS",
            r#"{"thinking": {"type": "enabled", "budget_tokens": 1024}}"#,
        );
        let base = [
            ("TABLE_NAME", "t"),
            ("MODEL_ID", "m"),
            ("MAX_OUTPUT_TOKENS", "4096"),
        ];
        assert!(config(&[base[0], base[1], base[2], thinking]).is_ok());
        for (pair, name) in [
            (("TOOL_CHOICE", "any"), "TOOL_CHOICE"),
            (("TEMPERATURE", "0.2"), "TEMPERATURE"),
        ] {
            let error = config(&[base[0], base[1], base[2], thinking, pair])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(name), "{pair:?}: {error}");
        }
    }

    #[test]
    fn a_streamed_turn_has_its_own_time_limit_within_lambdas() {
        let base = [("TABLE_NAME", "t"), ("MODEL_ID", "m")];
        assert_eq!(
            config(&base).expect("valid").stream_max_wall_time,
            Duration::from_secs(300)
        );
        let set = config(&[base[0], base[1], ("STREAM_MAX_WALL_TIME_MS", "600000")]);
        assert_eq!(
            set.expect("valid").stream_max_wall_time,
            Duration::from_secs(600)
        );
        for value in ["0", "900001", "soon"] {
            let error = config(&[base[0], base[1], ("STREAM_MAX_WALL_TIME_MS", value)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("STREAM_MAX_WALL_TIME_MS"),
                "{value}: {error}"
            );
        }
    }

    #[test]
    fn local_auth_must_be_asked_for_by_name() {
        let config = config(&[
            ("TABLE_NAME", "t"),
            ("MODEL_ID", "m"),
            ("AUTH_MODE", "insecure-local"),
        ])
        .expect("valid");
        assert_eq!(config.auth_mode, AuthMode::InsecureLocal);
    }
}
