//! The model settings of the configuration: provider, roles, fallbacks, prices, retries and
//! the request fields a serious agent sets (tool choice, stop sequences, service tiers,
//! provider fields).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{parse, ConfigError};
use crate::{
    domain::{
        catalog::{self, base_model_id},
        context::{known_context_tokens, DEFAULT_CONTEXT_TOKENS},
        model::{ServiceTier, ToolChoice},
        pricing::{PriceBook, Pricing},
    },
    models::{ModelRole, RetryPolicy},
};

/// The model of the `reasoning` role when `MODEL_ID` is not set: Claude Haiku 4.5 through the
/// US cross-region inference profile.
pub const DEFAULT_MODEL_ID: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

/// The base id of the model a Bedrock `fast` role defaults to.
const FAST_BASE_MODEL: &str = "anthropic.claude-haiku-4-5-20251001-v1:0";

/// Who serves the models.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelProvider {
    /// Amazon Bedrock's Converse API.
    Bedrock,
    /// An OpenAI-compatible Chat Completions endpoint (Ollama, vLLM, llama.cpp, ...).
    OpenAi {
        /// The endpoint, up to and including `/v1` (`OPENAI_BASE_URL`).
        base_url: String,
        /// The Secrets Manager secret holding the API key (`OPENAI_API_KEY_SECRET`).
        api_key_secret: Option<String>,
        /// An API key given in plain configuration (`OPENAI_API_KEY`): local mode only.
        local_api_key: Option<String>,
    },
}

/// One role's models and request settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleConfig {
    /// The role's model.
    pub model_id: String,
    /// Tried in order when the model fails (`FALLBACK_MODEL_IDS`, less the role's own model).
    pub fallbacks: Vec<String>,
    /// The smallest context window of the chain, in tokens.
    pub context_tokens: u64,
    /// The service tier asked for (`SERVICE_TIER`, `FAST_SERVICE_TIER`,
    /// `EXTRACTION_SERVICE_TIER`).
    pub service_tier: Option<ServiceTier>,
    /// Provider request fields (`ADDITIONAL_MODEL_REQUEST_FIELDS`, reasoning role only).
    pub additional_fields: Option<Value>,
}

impl RoleConfig {
    /// The role's model and its fallbacks, in order.
    pub fn chain(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.model_id.as_str()).chain(self.fallbacks.iter().map(String::as_str))
    }
}

/// Everything the configuration says about models.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Who serves them (`MODEL_PROVIDER`: `bedrock`, the default, or `openai`).
    pub provider: ModelProvider,
    /// Every role's models.
    pub roles: BTreeMap<ModelRole, RoleConfig>,
    /// Configured prices, over the built-in table (`MODEL_PRICES`,
    /// `MODEL_PRICE_INPUT_PER_MTOK` / `MODEL_PRICE_OUTPUT_PER_MTOK` for `MODEL_ID`).
    pub prices: PriceBook,
    /// Retries of failed calls (`MODEL_RETRY_ATTEMPTS`, `MODEL_RETRY_BASE_MS`,
    /// `MODEL_RETRY_MAX_MS`).
    pub retry: RetryPolicy,
    /// The tool choice of a turn's first call (`TOOL_CHOICE`: `auto`, `any`, `tool:<name>`).
    pub tool_choice: Option<ToolChoice>,
    /// Stop sequences (`STOP_SEQUENCES`, a JSON array of at most 4 strings).
    pub stop_sequences: Vec<String>,
    /// Prompt-cache points on requests (`PROMPT_CACHING`, default `true`).
    pub prompt_caching: bool,
    /// Token cap of one turn (`MAX_TURN_TOKENS`).
    pub max_turn_tokens: Option<u64>,
}

impl ModelConfig {
    /// The reasoning role (always configured).
    pub fn reasoning(&self) -> &RoleConfig {
        &self.roles[&ModelRole::Reasoning]
    }
}

/// Reads the model settings. `local` says whether the deployment is a local one
/// (`AUTH_MODE=insecure-local`), the only kind that may take an API key in plain text;
/// `max_output_tokens` is checked against a thinking budget.
pub(super) fn read(
    get: &impl Fn(&'static str) -> Option<String>,
    local: bool,
    max_output_tokens: u32,
) -> Result<ModelConfig, ConfigError> {
    let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
    let provider = match get("MODEL_PROVIDER").as_deref() {
        None | Some("bedrock") => ModelProvider::Bedrock,
        Some("openai") => {
            let base_url = get("OPENAI_BASE_URL").ok_or(ConfigError::Missing("OPENAI_BASE_URL"))?;
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err(invalid(
                    "OPENAI_BASE_URL",
                    format!("'{base_url}' is not an http:// or https:// URL"),
                ));
            }
            let local_api_key = get("OPENAI_API_KEY");
            if local_api_key.is_some() && !local {
                return Err(invalid(
                    "OPENAI_API_KEY",
                    "an API key in plain configuration is for local runs only \
                     (AUTH_MODE=insecure-local); deployed, put it in Secrets Manager and set \
                     OPENAI_API_KEY_SECRET"
                        .into(),
                ));
            }
            ModelProvider::OpenAi {
                base_url: base_url.trim_end_matches('/').to_owned(),
                api_key_secret: get("OPENAI_API_KEY_SECRET"),
                local_api_key,
            }
        }
        Some(other) => {
            return Err(invalid(
                "MODEL_PROVIDER",
                format!("'{other}' is not one of 'bedrock', 'openai'"),
            ))
        }
    };
    let bedrock = provider == ModelProvider::Bedrock;
    let model_id = get("MODEL_ID").ok_or(ConfigError::Missing("MODEL_ID"))?;
    check_model_id("MODEL_ID", &model_id, bedrock)?;
    let fast_id = match get("FAST_MODEL_ID") {
        Some(id) => {
            check_model_id("FAST_MODEL_ID", &id, bedrock)?;
            id
        }
        None => default_fast(&model_id, bedrock),
    };
    let extraction_id = match get("EXTRACTION_MODEL_ID") {
        Some(id) => {
            check_model_id("EXTRACTION_MODEL_ID", &id, bedrock)?;
            id
        }
        None => fast_id.clone(),
    };
    let fallbacks: Vec<String> = get("FALLBACK_MODEL_IDS")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    for id in &fallbacks {
        check_model_id("FALLBACK_MODEL_IDS", id, bedrock)?;
    }
    let window_override = parse::<u64>(get, "MODEL_CONTEXT_TOKENS")?;
    let window = |id: &str| {
        window_override
            .or_else(|| known_context_tokens(id))
            .unwrap_or(DEFAULT_CONTEXT_TOKENS)
    };
    let tier = |name: &'static str, default: Option<ServiceTier>| {
        get(name)
            .map(|value| {
                value
                    .parse::<ServiceTier>()
                    .map_err(|reason| invalid(name, reason))
            })
            .transpose()
            .map(|tier| tier.or(default))
    };
    let additional_fields = match get("ADDITIONAL_MODEL_REQUEST_FIELDS") {
        None => None,
        Some(text) => {
            let value: Value = serde_json::from_str(&text).map_err(|error| {
                invalid(
                    "ADDITIONAL_MODEL_REQUEST_FIELDS",
                    format!("not valid JSON: {error}"),
                )
            })?;
            if !value.is_object() {
                return Err(invalid(
                    "ADDITIONAL_MODEL_REQUEST_FIELDS",
                    "must be a JSON object".into(),
                ));
            }
            check_thinking_budget(&value, max_output_tokens)?;
            Some(value)
        }
    };
    let role = |model_id: String, service_tier, additional_fields| {
        let fallbacks: Vec<String> = fallbacks
            .iter()
            .filter(|id| **id != model_id)
            .cloned()
            .collect();
        let context_tokens = std::iter::once(model_id.as_str())
            .chain(fallbacks.iter().map(String::as_str))
            .map(window)
            .min()
            .unwrap_or(DEFAULT_CONTEXT_TOKENS);
        RoleConfig {
            model_id,
            fallbacks,
            context_tokens,
            service_tier,
            additional_fields,
        }
    };
    let roles = BTreeMap::from([
        (
            ModelRole::Reasoning,
            role(
                model_id.clone(),
                tier("SERVICE_TIER", None)?,
                additional_fields,
            ),
        ),
        (
            ModelRole::Fast,
            role(fast_id, tier("FAST_SERVICE_TIER", None)?, None),
        ),
        (
            ModelRole::Extraction,
            role(
                extraction_id,
                // Extraction can wait: the cheaper tier where the model offers it.
                tier("EXTRACTION_SERVICE_TIER", Some(ServiceTier::Flex))?,
                None,
            ),
        ),
    ]);
    let retry = retry_policy(get)?;
    let tool_choice = match get("TOOL_CHOICE").as_deref() {
        None | Some("auto") => None,
        Some("any") => Some(ToolChoice::Any),
        Some(other) => match other.strip_prefix("tool:").map(str::trim) {
            Some(name) if !name.is_empty() => Some(ToolChoice::Tool(name.to_owned())),
            _ => {
                return Err(invalid(
                    "TOOL_CHOICE",
                    format!("'{other}' is not one of 'auto', 'any', 'tool:<name>'"),
                ))
            }
        },
    };
    let stop_sequences = match get("STOP_SEQUENCES") {
        None => Vec::new(),
        Some(text) => {
            let list: Vec<String> = serde_json::from_str(&text).map_err(|error| {
                invalid(
                    "STOP_SEQUENCES",
                    format!("must be a JSON array of strings: {error}"),
                )
            })?;
            if list.len() > 4 || list.iter().any(|s| s.is_empty()) {
                return Err(invalid(
                    "STOP_SEQUENCES",
                    "at most 4 sequences, none empty".into(),
                ));
            }
            list
        }
    };
    let prompt_caching = parse::<bool>(get, "PROMPT_CACHING")?.unwrap_or(true);
    let max_turn_tokens = parse::<u64>(get, "MAX_TURN_TOKENS")?;
    if max_turn_tokens == Some(0) {
        return Err(invalid("MAX_TURN_TOKENS", "must be at least 1".into()));
    }
    Ok(ModelConfig {
        prices: prices(get, &model_id)?,
        provider,
        roles,
        retry,
        tool_choice,
        stop_sequences,
        prompt_caching,
        max_turn_tokens,
    })
}

/// A model id must be one Bedrock could take: no spaces, not absurdly long.
fn check_model_id(name: &'static str, id: &str, bedrock: bool) -> Result<(), ConfigError> {
    let bad = id.len() > 2048 || id.chars().any(|c| c.is_whitespace() || c.is_control());
    let arn_ok = !id.starts_with("arn:") || id.split(':').count() >= 6;
    if bad || (bedrock && !arn_ok) {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("'{id}' is not a model id, inference profile id or ARN"),
        });
    }
    Ok(())
}

/// The `fast` role's default: on Bedrock, Claude Haiku 4.5 through the same kind of endpoint as
/// `MODEL_ID` (its `us.`/`eu.`/`global.`… profile prefix, or none), unless `MODEL_ID` is an ARN
/// or unknown; otherwise `MODEL_ID` itself.
fn default_fast(model_id: &str, bedrock: bool) -> String {
    if !bedrock || model_id.starts_with("arn:") || catalog::lookup(model_id).is_none() {
        return model_id.to_owned();
    }
    let base = base_model_id(model_id);
    let prefix = &model_id[..model_id.len() - base.len()];
    format!("{prefix}{FAST_BASE_MODEL}")
}

/// Claude's extended thinking needs `max_tokens` above its budget.
fn check_thinking_budget(fields: &Value, max_output_tokens: u32) -> Result<(), ConfigError> {
    let Some(budget) = fields
        .pointer("/thinking/budget_tokens")
        .and_then(Value::as_u64)
    else {
        return Ok(());
    };
    if budget >= u64::from(max_output_tokens) {
        return Err(ConfigError::Invalid {
            name: "ADDITIONAL_MODEL_REQUEST_FIELDS",
            reason: format!(
                "thinking.budget_tokens ({budget}) must be below MAX_OUTPUT_TOKENS ({max_output_tokens})"
            ),
        });
    }
    Ok(())
}

fn retry_policy(get: &impl Fn(&'static str) -> Option<String>) -> Result<RetryPolicy, ConfigError> {
    let defaults = RetryPolicy::default();
    let attempts =
        parse::<u32>(get, "MODEL_RETRY_ATTEMPTS")?.unwrap_or(defaults.attempts_per_model);
    if !(1..=10).contains(&attempts) {
        return Err(ConfigError::Invalid {
            name: "MODEL_RETRY_ATTEMPTS",
            reason: "must be between 1 and 10".into(),
        });
    }
    let millis = |name: &'static str, default: std::time::Duration| {
        parse::<u64>(get, name).map(|value| value.map_or(default, std::time::Duration::from_millis))
    };
    let base_delay = millis("MODEL_RETRY_BASE_MS", defaults.base_delay)?;
    let max_delay = millis("MODEL_RETRY_MAX_MS", defaults.max_delay)?;
    if base_delay.is_zero() || max_delay < base_delay {
        return Err(ConfigError::Invalid {
            name: "MODEL_RETRY_MAX_MS",
            reason: "MODEL_RETRY_BASE_MS must be at least 1 and MODEL_RETRY_MAX_MS at least it"
                .into(),
        });
    }
    Ok(RetryPolicy {
        attempts_per_model: attempts,
        base_delay,
        max_delay,
        ..defaults
    })
}

/// One entry of `MODEL_PRICES`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    input: f64,
    output: f64,
    cache_write: Option<f64>,
    cache_read: Option<f64>,
}

/// Configured prices: `MODEL_PRICES` (`{"<model id>": {"input": 1.0, "output": 5.0,
/// "cache_write": 1.25, "cache_read": 0.1}}`, dollars per million tokens; cache prices default
/// to the input price) and, for `MODEL_ID`, `MODEL_PRICE_INPUT_PER_MTOK` with
/// `MODEL_PRICE_OUTPUT_PER_MTOK`.
fn prices(
    get: &impl Fn(&'static str) -> Option<String>,
    model_id: &str,
) -> Result<PriceBook, ConfigError> {
    let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
    let mut overrides = BTreeMap::new();
    if let Some(text) = get("MODEL_PRICES") {
        let entries: BTreeMap<String, PriceEntry> = serde_json::from_str(&text).map_err(|error| {
            invalid(
                "MODEL_PRICES",
                format!(
                    "must be a JSON object of model id to {{\"input\", \"output\", \"cache_write\", \"cache_read\"}} in dollars per million tokens: {error}"
                ),
            )
        })?;
        for (id, entry) in entries {
            let pricing = Pricing {
                input_usd_per_mtok: entry.input,
                output_usd_per_mtok: entry.output,
                cache_write_usd_per_mtok: entry.cache_write.unwrap_or(entry.input),
                cache_read_usd_per_mtok: entry.cache_read.unwrap_or(entry.input),
            };
            let values = [
                pricing.input_usd_per_mtok,
                pricing.output_usd_per_mtok,
                pricing.cache_write_usd_per_mtok,
                pricing.cache_read_usd_per_mtok,
            ];
            if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(invalid(
                    "MODEL_PRICES",
                    format!("the prices of '{id}' must be numbers of at least 0"),
                ));
            }
            overrides.insert(id, pricing);
        }
    }
    match (
        parse::<f64>(get, "MODEL_PRICE_INPUT_PER_MTOK")?,
        parse::<f64>(get, "MODEL_PRICE_OUTPUT_PER_MTOK")?,
    ) {
        (Some(input), Some(output)) => {
            overrides.insert(model_id.to_owned(), Pricing::flat(input, output));
        }
        (None, None) => {}
        _ => {
            return Err(invalid(
                "MODEL_PRICE_OUTPUT_PER_MTOK",
                "set both MODEL_PRICE_INPUT_PER_MTOK and MODEL_PRICE_OUTPUT_PER_MTOK, or neither"
                    .into(),
            ))
        }
    }
    Ok(PriceBook::new(overrides))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read_with(pairs: &[(&str, &str)]) -> Result<ModelConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        read(&|name: &'static str| map.get(name).cloned(), false, 1024)
    }

    #[test]
    fn roles_default_to_haiku_through_the_same_kind_of_endpoint() {
        let config = read_with(&[("MODEL_ID", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0")])
            .expect("valid");
        let fast = &config.roles[&ModelRole::Fast];
        assert_eq!(fast.model_id, "eu.anthropic.claude-haiku-4-5-20251001-v1:0");
        assert_eq!(config.roles[&ModelRole::Extraction].model_id, fast.model_id);
        assert_eq!(
            config.roles[&ModelRole::Extraction].service_tier,
            Some(ServiceTier::Flex)
        );
        assert_eq!(config.reasoning().context_tokens, 200_000);
        let unknown = read_with(&[("MODEL_ID", "acme.model-v1")]).expect("valid");
        assert_eq!(unknown.roles[&ModelRole::Fast].model_id, "acme.model-v1");
    }

    #[test]
    fn fallbacks_skip_the_roles_own_model_and_bound_the_context_window() {
        let config = read_with(&[
            ("MODEL_ID", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
            (
                "FALLBACK_MODEL_IDS",
                "us.anthropic.claude-haiku-4-5-20251001-v1:0, us.amazon.nova-micro-v1:0",
            ),
        ])
        .expect("valid");
        let reasoning = config.reasoning();
        assert_eq!(reasoning.fallbacks.len(), 2);
        assert_eq!(reasoning.context_tokens, 128_000, "Nova Micro's window");
        let fast = &config.roles[&ModelRole::Fast];
        assert_eq!(
            fast.chain().collect::<Vec<_>>(),
            [
                "us.anthropic.claude-haiku-4-5-20251001-v1:0",
                "us.amazon.nova-micro-v1:0"
            ]
        );
    }

    #[test]
    fn each_malformed_model_setting_is_named() {
        let base = ("MODEL_ID", DEFAULT_MODEL_ID);
        for (pair, name) in [
            (("MODEL_PROVIDER", "azure"), "MODEL_PROVIDER"),
            (("FAST_MODEL_ID", "two words"), "FAST_MODEL_ID"),
            (("FALLBACK_MODEL_IDS", "arn:aws"), "FALLBACK_MODEL_IDS"),
            (("SERVICE_TIER", "cheap"), "SERVICE_TIER"),
            (("EXTRACTION_SERVICE_TIER", "x"), "EXTRACTION_SERVICE_TIER"),
            (("TOOL_CHOICE", "tool:"), "TOOL_CHOICE"),
            (("STOP_SEQUENCES", "END"), "STOP_SEQUENCES"),
            (
                ("STOP_SEQUENCES", r#"["a","b","c","d","e"]"#),
                "STOP_SEQUENCES",
            ),
            (
                ("ADDITIONAL_MODEL_REQUEST_FIELDS", "[1]"),
                "ADDITIONAL_MODEL_REQUEST_FIELDS",
            ),
            (
                (
                    "ADDITIONAL_MODEL_REQUEST_FIELDS",
                    r#"{"thinking":{"type":"enabled","budget_tokens":4096}}"#,
                ),
                "ADDITIONAL_MODEL_REQUEST_FIELDS",
            ),
            (("MODEL_PRICES", r#"{"m": {"input": 1}}"#), "MODEL_PRICES"),
            (
                ("MODEL_PRICES", r#"{"m": {"input": -1, "output": 1}}"#),
                "MODEL_PRICES",
            ),
            (("MODEL_RETRY_ATTEMPTS", "0"), "MODEL_RETRY_ATTEMPTS"),
            (("MODEL_RETRY_MAX_MS", "1"), "MODEL_RETRY_MAX_MS"),
            (("MAX_TURN_TOKENS", "lots"), "MAX_TURN_TOKENS"),
            (("PROMPT_CACHING", "maybe"), "PROMPT_CACHING"),
        ] {
            let error = read_with(&[base, pair]).expect_err(pair.0);
            assert!(error.to_string().contains(name), "{pair:?}: {error}");
        }
    }

    #[test]
    fn an_openai_provider_needs_a_url_and_keeps_plain_keys_out_of_deployments() {
        let missing = read_with(&[("MODEL_ID", "llama3"), ("MODEL_PROVIDER", "openai")]);
        assert_eq!(missing.err(), Some(ConfigError::Missing("OPENAI_BASE_URL")));
        let deployed = read_with(&[
            ("MODEL_ID", "llama3"),
            ("MODEL_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1/"),
            ("OPENAI_API_KEY", "sk-local"),
        ]);
        let error = deployed.expect_err("plain key refused").to_string();
        assert!(
            error.contains("OPENAI_API_KEY") && !error.contains("sk-local"),
            "{error}"
        );
        let config = read_with(&[
            ("MODEL_ID", "llama3"),
            ("MODEL_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1/"),
            ("OPENAI_API_KEY_SECRET", "prod/openai"),
        ])
        .expect("valid");
        assert_eq!(
            config.provider,
            ModelProvider::OpenAi {
                base_url: "http://127.0.0.1:11434/v1".into(),
                api_key_secret: Some("prod/openai".into()),
                local_api_key: None
            }
        );
        assert_eq!(config.roles[&ModelRole::Fast].model_id, "llama3");
    }

    #[test]
    fn prices_are_configured_per_model_over_the_built_in_table() {
        let config = read_with(&[
            ("MODEL_ID", "acme.m"),
            (
                "MODEL_PRICES",
                r#"{"acme.m": {"input": 2, "output": 8, "cache_read": 0.2}}"#,
            ),
        ])
        .expect("valid");
        let price = config.prices.price("acme.m").expect("configured");
        assert_eq!(price.cache_read_usd_per_mtok, 0.2);
        assert_eq!(price.cache_write_usd_per_mtok, 2.0);
        assert!(config.prices.price(DEFAULT_MODEL_ID).is_some());
    }
}
