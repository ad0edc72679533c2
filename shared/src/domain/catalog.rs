//! What we know about each Bedrock model: prices, context window and capabilities.
//!
//! One table, keyed by base model id (an inference profile's prefix and an ARN's path are
//! stripped by [`base_model_id`]), read by pricing, the context budget and the adapters (which
//! cache points and request fields a model takes). A model that is not here still works: it
//! has no price (unless one is configured), the default context window, and no prompt caching.
//!
//! # Sources of the prices
//!
//! On-demand prices in US dollars per million tokens, from the Amazon Bedrock pricing page
//! (<https://aws.amazon.com/bedrock/pricing/>) and, for Claude, Anthropic's pricing page
//! (<https://docs.anthropic.com/en/docs/about-claude/pricing>), which Bedrock's global
//! endpoints match; each row names the date of the price list it was taken from. They were
//! not fetched again on 2026-12-01 (this project's build machines cannot reach the web): check
//! them against the pricing page and override what changed (`MODEL_PRICES`).
//!
//! Claude Sonnet 4.5, Haiku 4.5, Opus 4.5 and later cost 10% more through a geographic (`us.`,
//! `eu.`, `apac.`, `jp.`, `au.`) or in-region endpoint than through a `global.` profile
//! ([`ModelInfo::regional_premium`]); the table holds the global price.

use serde::{Deserialize, Serialize};

use super::model::ServiceTier;
use super::pricing::Pricing;

/// Cross-region inference profile prefixes: they choose where a call runs, not which model.
const PROFILE_PREFIXES: &[&str] = &["us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au."];

/// The base model id of a model id, an inference profile id or a model or system inference
/// profile ARN (`us.anthropic.…` and `arn:aws:bedrock:…:inference-profile/us.anthropic.…` →
/// `anthropic.…`). An application inference profile ARN is returned as it is: it names no
/// model.
pub fn base_model_id(model_id: &str) -> &str {
    if model_id.contains(":application-inference-profile/") {
        return model_id;
    }
    let id = ["foundation-model/", "inference-profile/"]
        .iter()
        .find_map(|marker| {
            model_id
                .starts_with("arn:")
                .then(|| model_id.split_once(marker).map(|(_, id)| id))
                .flatten()
        })
        .unwrap_or(model_id);
    PROFILE_PREFIXES
        .iter()
        .find_map(|prefix| id.strip_prefix(prefix))
        .unwrap_or(id)
}

/// Where a model id sends a call, as far as its price is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A `global.` cross-region inference profile.
    Global,
    /// A geographic profile (`us.`, `eu.`, …) or the model id in one region.
    Regional,
}

/// The endpoint kind of a model id.
pub fn endpoint_of(model_id: &str) -> Endpoint {
    let id = model_id
        .split_once("inference-profile/")
        .map_or(model_id, |(_, id)| id);
    if id.starts_with("global.") {
        Endpoint::Global
    } else {
        Endpoint::Regional
    }
}

/// How a model takes prompt-cache points (Converse `cachePoint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSupport {
    /// Fewest tokens a cached prefix must have; a shorter one is not cached.
    pub min_tokens: u64,
    /// Most cache points one request may carry.
    pub max_points: u8,
    /// Whether a cache point may follow the tool specs (Claude: yes; Nova: no).
    pub tools: bool,
}

/// What we know about one model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelInfo {
    /// The base model id.
    pub id: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Context window, in tokens.
    pub context_tokens: u64,
    /// On-demand price (the global endpoint's, where the endpoints differ).
    pub price: Pricing,
    /// Geographic and in-region endpoints cost 10% more than `global.`.
    pub regional_premium: bool,
    /// Date of the price list the price was taken from.
    pub priced_on: &'static str,
    /// Prompt caching, when the model has it.
    pub cache: Option<CacheSupport>,
    /// Whether `toolChoice` `any` and `tool` are accepted (`auto` always is).
    pub tool_choice: bool,
    /// Service tiers other than `default` the model offers.
    pub service_tiers: &'static [ServiceTier],
}

const fn price(input: f64, output: f64, cache_write: f64, cache_read: f64) -> Pricing {
    Pricing {
        input_usd_per_mtok: input,
        output_usd_per_mtok: output,
        cache_write_usd_per_mtok: cache_write,
        cache_read_usd_per_mtok: cache_read,
    }
}

const fn claude(
    id: &'static str,
    name: &'static str,
    price: Pricing,
    regional_premium: bool,
    priced_on: &'static str,
    min_cache_tokens: u64,
) -> ModelInfo {
    ModelInfo {
        id,
        name,
        context_tokens: 200_000,
        price,
        regional_premium,
        priced_on,
        cache: Some(CacheSupport {
            min_tokens: min_cache_tokens,
            max_points: 4,
            tools: true,
        }),
        tool_choice: true,
        service_tiers: &[],
    }
}

const fn nova(
    id: &'static str,
    name: &'static str,
    context_tokens: u64,
    price: Pricing,
    priced_on: &'static str,
    service_tiers: &'static [ServiceTier],
) -> ModelInfo {
    ModelInfo {
        id,
        name,
        context_tokens,
        price,
        regional_premium: false,
        priced_on,
        // Nova caches system and messages, not tools; its minimum is 1K tokens per point.
        cache: Some(CacheSupport {
            min_tokens: 1_000,
            max_points: 4,
            tools: false,
        }),
        tool_choice: true,
        service_tiers,
    }
}

/// Claude's cache prices are 1.25× input to write and 0.1× input to read; Nova's reads cost a
/// quarter of input and its writes cost what input does.
const MODELS: &[ModelInfo] = &[
    claude(
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "Claude Haiku 4.5",
        price(1.00, 5.00, 1.25, 0.10),
        true,
        "2025-10-15",
        4_096,
    ),
    claude(
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "Claude Sonnet 4.5",
        price(3.00, 15.00, 3.75, 0.30),
        true,
        "2025-09-29",
        1_024,
    ),
    claude(
        "anthropic.claude-sonnet-4-6",
        "Claude Sonnet 4.6",
        price(3.00, 15.00, 3.75, 0.30),
        true,
        "2026-02-17",
        2_048,
    ),
    claude(
        "anthropic.claude-opus-4-5-20251101-v1:0",
        "Claude Opus 4.5",
        price(5.00, 25.00, 6.25, 0.50),
        true,
        "2025-11-24",
        4_096,
    ),
    claude(
        "anthropic.claude-opus-4-6-v1",
        "Claude Opus 4.6",
        price(5.00, 25.00, 6.25, 0.50),
        true,
        "2026-02-05",
        4_096,
    ),
    claude(
        "anthropic.claude-opus-4-1-20250805-v1:0",
        "Claude Opus 4.1",
        price(15.00, 75.00, 18.75, 1.50),
        false,
        "2025-08-05",
        1_024,
    ),
    claude(
        "anthropic.claude-opus-4-20250514-v1:0",
        "Claude Opus 4",
        price(15.00, 75.00, 18.75, 1.50),
        false,
        "2025-05-22",
        1_024,
    ),
    claude(
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "Claude Sonnet 4",
        price(3.00, 15.00, 3.75, 0.30),
        false,
        "2025-05-22",
        1_024,
    ),
    claude(
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "Claude 3.7 Sonnet",
        price(3.00, 15.00, 3.75, 0.30),
        false,
        "2025-04-07",
        1_024,
    ),
    claude(
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "Claude 3.5 Haiku",
        price(0.80, 4.00, 1.00, 0.08),
        false,
        "2025-04-07",
        2_048,
    ),
    ModelInfo {
        cache: None,
        ..claude(
            "anthropic.claude-3-haiku-20240307-v1:0",
            "Claude 3 Haiku",
            price(0.25, 1.25, 0.25, 0.25),
            false,
            "2024-03-13",
            0,
        )
    },
    nova(
        "amazon.nova-micro-v1:0",
        "Amazon Nova Micro",
        128_000,
        price(0.035, 0.14, 0.035, 0.00875),
        "2025-04-07",
        &[],
    ),
    nova(
        "amazon.nova-lite-v1:0",
        "Amazon Nova Lite",
        300_000,
        price(0.06, 0.24, 0.06, 0.015),
        "2025-04-07",
        &[],
    ),
    nova(
        "amazon.nova-pro-v1:0",
        "Amazon Nova Pro",
        300_000,
        price(0.80, 3.20, 0.80, 0.20),
        "2025-04-07",
        &[],
    ),
    nova(
        "amazon.nova-premier-v1:0",
        "Amazon Nova Premier",
        1_000_000,
        price(2.50, 12.50, 2.50, 0.625),
        "2025-04-30",
        &[],
    ),
    nova(
        "amazon.nova-2-lite-v1:0",
        "Amazon Nova 2 Lite",
        1_000_000,
        price(0.30, 2.50, 0.30, 0.075),
        "2025-12-02",
        &[ServiceTier::Priority, ServiceTier::Flex],
    ),
];

/// Every model we know.
pub fn models() -> &'static [ModelInfo] {
    MODELS
}

/// What we know about a model id, inference profile id or ARN.
pub fn lookup(model_id: &str) -> Option<&'static ModelInfo> {
    let base = base_model_id(model_id);
    MODELS.iter().find(|info| info.id == base)
}

impl ModelInfo {
    /// The price of a call through `model_id` (this model's id, profile or ARN): the global
    /// price, plus 10% for a geographic or in-region endpoint of a model that charges it.
    pub fn price_for(&self, model_id: &str) -> Pricing {
        if self.regional_premium && endpoint_of(model_id) == Endpoint::Regional {
            self.price.scaled(1.1)
        } else {
            self.price
        }
    }

    /// Whether the model takes this service tier.
    pub fn offers(&self, tier: ServiceTier) -> bool {
        tier == ServiceTier::Default || self.service_tiers.contains(&tier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_arns_name_their_base_model() {
        let base = "anthropic.claude-haiku-4-5-20251001-v1:0";
        for id in [
            base.to_owned(),
            format!("us.{base}"),
            format!("eu.{base}"),
            format!("apac.{base}"),
            format!("global.{base}"),
            format!("arn:aws:bedrock:us-east-1::foundation-model/{base}"),
            format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{base}"),
        ] {
            assert_eq!(base_model_id(&id), base, "{id}");
            assert_eq!(
                lookup(&id).map(|m| m.name),
                Some("Claude Haiku 4.5"),
                "{id}"
            );
        }
        let app = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3";
        assert_eq!(base_model_id(app), app);
        assert_eq!(lookup(app), None);
    }

    #[test]
    fn the_table_covers_the_models_the_project_documents() {
        for name in [
            "Claude Haiku 4.5",
            "Claude Sonnet 4.5",
            "Claude Sonnet 4.6",
            "Claude Opus 4.5",
            "Claude Opus 4.6",
            "Claude 3.5 Haiku",
            "Amazon Nova Micro",
            "Amazon Nova Lite",
            "Amazon Nova Pro",
            "Amazon Nova 2 Lite",
        ] {
            assert!(models().iter().any(|m| m.name == name), "{name}");
        }
        for model in models() {
            let p = model.price;
            assert!(p.input_usd_per_mtok > 0.0 && p.output_usd_per_mtok > p.input_usd_per_mtok);
            assert!(
                p.cache_read_usd_per_mtok <= p.input_usd_per_mtok,
                "{}",
                model.id
            );
            assert!(chrono::NaiveDate::parse_from_str(model.priced_on, "%Y-%m-%d").is_ok());
        }
    }

    #[test]
    fn regional_endpoints_of_recent_claude_models_cost_ten_percent_more() {
        let haiku = lookup("global.anthropic.claude-haiku-4-5-20251001-v1:0").expect("known");
        let global = haiku.price_for("global.anthropic.claude-haiku-4-5-20251001-v1:0");
        let us = haiku.price_for("us.anthropic.claude-haiku-4-5-20251001-v1:0");
        assert!((global.input_usd_per_mtok - 1.00).abs() < 1e-9);
        assert!((us.input_usd_per_mtok - 1.10).abs() < 1e-9);
        assert!((us.cache_read_usd_per_mtok - 0.11).abs() < 1e-9);
        let old = lookup("us.anthropic.claude-3-5-haiku-20241022-v1:0").expect("known");
        assert_eq!(
            old.price_for("us.anthropic.claude-3-5-haiku-20241022-v1:0"),
            old.price
        );
    }
}
