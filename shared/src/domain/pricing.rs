//! Dollar cost of model calls, from per-million-token prices.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{catalog, model::Usage};

/// On-demand prices of one model, in US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    /// Price of a million input tokens (not read from or written to the prompt cache).
    pub input_usd_per_mtok: f64,
    /// Price of a million output tokens.
    pub output_usd_per_mtok: f64,
    /// Price of a million input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_write_usd_per_mtok: f64,
    /// Price of a million input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_usd_per_mtok: f64,
}

/// What some tokens cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Input tokens' share (cache reads and writes included).
    pub input_usd: f64,
    /// Output tokens' share.
    pub output_usd: f64,
    /// The sum.
    pub total_usd: f64,
}

impl Cost {
    /// Adds another cost to this one.
    pub fn add(&mut self, other: Cost) {
        self.input_usd += other.input_usd;
        self.output_usd += other.output_usd;
        self.total_usd += other.total_usd;
    }
}

impl Pricing {
    /// Input and output prices only; cache writes and reads priced as input.
    pub fn flat(input_usd_per_mtok: f64, output_usd_per_mtok: f64) -> Self {
        Self {
            input_usd_per_mtok,
            output_usd_per_mtok,
            cache_write_usd_per_mtok: input_usd_per_mtok,
            cache_read_usd_per_mtok: input_usd_per_mtok,
        }
    }

    /// The built-in price of a model id, inference profile id or ARN, if we know it (with the
    /// regional premium of a geographic or in-region endpoint, see [`catalog`]).
    pub fn for_model(model_id: &str) -> Option<Self> {
        catalog::lookup(model_id).map(|info| info.price_for(model_id))
    }

    /// Every price times `factor`.
    pub fn scaled(&self, factor: f64) -> Self {
        // Rounded to a millionth of a dollar per million tokens, so 1.1 × 1.00 is 1.10.
        let round = |value: f64| (value * factor * 1e6).round() / 1e6;
        Self {
            input_usd_per_mtok: round(self.input_usd_per_mtok),
            output_usd_per_mtok: round(self.output_usd_per_mtok),
            cache_write_usd_per_mtok: round(self.cache_write_usd_per_mtok),
            cache_read_usd_per_mtok: round(self.cache_read_usd_per_mtok),
        }
    }

    /// What the given usage costs at these prices.
    pub fn cost(&self, usage: Usage) -> Cost {
        let per = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        let input_usd = per(usage.input_tokens, self.input_usd_per_mtok)
            + per(usage.cache_write_tokens, self.cache_write_usd_per_mtok)
            + per(usage.cache_read_tokens, self.cache_read_usd_per_mtok);
        let output_usd = per(usage.output_tokens, self.output_usd_per_mtok);
        Cost {
            input_usd,
            output_usd,
            total_usd: input_usd + output_usd,
        }
    }
}

/// The price of every model a deployment may call: configured prices first, then the built-in
/// table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceBook {
    overrides: BTreeMap<String, Pricing>,
}

impl PriceBook {
    /// A price book with these configured prices, by exact model id.
    pub fn new(overrides: BTreeMap<String, Pricing>) -> Self {
        Self { overrides }
    }

    /// The price of calls through `model_id`, when configured or known.
    pub fn price(&self, model_id: &str) -> Option<Pricing> {
        self.overrides
            .get(model_id)
            .copied()
            .or_else(|| Pricing::for_model(model_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_profile_ids_are_priced_as_their_base_model() {
        let direct = Pricing::for_model("anthropic.claude-3-5-haiku-20241022-v1:0");
        let profile = Pricing::for_model("us.anthropic.claude-3-5-haiku-20241022-v1:0");
        assert_eq!(direct, profile);
        assert!(direct.is_some());
    }

    #[test]
    fn unknown_models_have_no_price_unless_configured() {
        assert_eq!(Pricing::for_model("acme.mystery-model"), None);
        let book = PriceBook::new(BTreeMap::from([(
            "acme.mystery-model".to_owned(),
            Pricing::flat(1.0, 2.0),
        )]));
        assert_eq!(
            book.price("acme.mystery-model"),
            Some(Pricing::flat(1.0, 2.0))
        );
        assert_eq!(
            book.price("amazon.nova-lite-v1:0"),
            Pricing::for_model("amazon.nova-lite-v1:0")
        );
    }

    #[test]
    fn cost_is_tokens_times_price_per_million_with_cache_tokens_at_their_own_rates() {
        let pricing = Pricing {
            input_usd_per_mtok: 0.80,
            output_usd_per_mtok: 4.00,
            cache_write_usd_per_mtok: 1.00,
            cache_read_usd_per_mtok: 0.08,
        };
        let cost = pricing.cost(Usage {
            input_tokens: 1_000_000,
            output_tokens: 500_000,
            cache_write_tokens: 2_000_000,
            cache_read_tokens: 10_000_000,
        });
        assert!((cost.input_usd - (0.80 + 2.00 + 0.80)).abs() < 1e-9);
        assert!((cost.output_usd - 2.00).abs() < 1e-12);
        assert!((cost.total_usd - 5.60).abs() < 1e-9);
    }
}
