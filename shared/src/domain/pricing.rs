//! Dollar cost of model calls, from per-million-token prices.

use serde::{Deserialize, Serialize};

use super::model::{base_model_id, Usage};

/// On-demand prices of one model, in US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    /// Price of a million input tokens.
    pub input_usd_per_mtok: f64,
    /// Price of a million output tokens.
    pub output_usd_per_mtok: f64,
}

/// What some tokens cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Input tokens' share.
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

/// Published on-demand prices (us-east-1) of the models we know, by base model id.
const KNOWN_PRICES: &[(&str, f64, f64)] = &[
    ("anthropic.claude-3-haiku-20240307-v1:0", 0.25, 1.25),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", 0.80, 4.00),
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", 3.00, 15.00),
    ("anthropic.claude-3-5-sonnet-20241022-v2:0", 3.00, 15.00),
    ("anthropic.claude-3-7-sonnet-20250219-v1:0", 3.00, 15.00),
    ("anthropic.claude-sonnet-4-20250514-v1:0", 3.00, 15.00),
    ("amazon.nova-micro-v1:0", 0.035, 0.14),
    ("amazon.nova-lite-v1:0", 0.06, 0.24),
    ("amazon.nova-pro-v1:0", 0.80, 3.20),
];

impl Pricing {
    /// The built-in price of a model id or inference profile id, if we know it.
    pub fn for_model(model_id: &str) -> Option<Self> {
        let base = base_model_id(model_id);
        KNOWN_PRICES
            .iter()
            .find(|(id, _, _)| *id == base)
            .map(|&(_, input, output)| Self {
                input_usd_per_mtok: input,
                output_usd_per_mtok: output,
            })
    }

    /// What the given usage costs at these prices.
    pub fn cost(&self, usage: Usage) -> Cost {
        let input_usd = usage.input_tokens as f64 * self.input_usd_per_mtok / 1_000_000.0;
        let output_usd = usage.output_tokens as f64 * self.output_usd_per_mtok / 1_000_000.0;
        Cost {
            input_usd,
            output_usd,
            total_usd: input_usd + output_usd,
        }
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
    fn unknown_models_have_no_price() {
        assert_eq!(Pricing::for_model("acme.mystery-model"), None);
    }

    #[test]
    fn cost_is_tokens_times_price_per_million() {
        let pricing = Pricing {
            input_usd_per_mtok: 0.80,
            output_usd_per_mtok: 4.00,
        };
        let cost = pricing.cost(Usage {
            input_tokens: 1_000_000,
            output_tokens: 500_000,
        });
        assert!((cost.input_usd - 0.80).abs() < 1e-12);
        assert!((cost.output_usd - 2.00).abs() < 1e-12);
        assert!((cost.total_usd - 2.80).abs() < 1e-12);
    }
}
