//! Model prices, per million tokens (a call's dollars are `ledger::Ledger::add_model_call`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalog;

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
}
