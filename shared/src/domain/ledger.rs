//! The cost ledger: what a turn cost, itemized by what was paid for.
//!
//! Every turn carries a [`Ledger`]: model tokens by model and token class (cache reads and
//! writes at their own rates), the Lambda compute of the handler and of each tool executor
//! (GB-seconds from the memory size and the measured duration, plus the request), DynamoDB
//! request units, search queries, Secrets Manager calls. The same shape is stored per step in
//! the trace, returned with the turn, and summed on the session and per user per month.
//!
//! Prices are US dollars, on-demand, us-east-1, in [`ServicePrices`] with their sources; the
//! models' prices are the catalog's ([`super::catalog`]) or configured ones.

use serde::{Deserialize, Serialize};

use super::{model::Usage, pricing::Pricing};

/// What a cost item paid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostKind {
    /// Model tokens.
    Model,
    /// Lambda compute and requests.
    Lambda,
    /// DynamoDB request units.
    Dynamodb,
    /// Web search queries at the provider's price.
    Search,
    /// Secrets Manager API calls.
    Secrets,
    /// Embedding tokens.
    Embeddings,
}

impl CostKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Lambda => "lambda",
            Self::Dynamodb => "dynamodb",
            Self::Search => "search",
            Self::Secrets => "secrets",
            Self::Embeddings => "embeddings",
        }
    }
}

/// One line of a ledger: a quantity of something at its price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostItem {
    /// What was paid for.
    pub kind: CostKind,
    /// Which one: the model id, the function, the table, the search provider.
    pub detail: String,
    /// How much of it.
    pub quantity: f64,
    /// In what: `input_tokens`, `gb_seconds`, `requests`, `read_units`, `queries`, ...
    pub unit: String,
    /// What it cost, in US dollars.
    pub usd: f64,
}

/// What something cost, itemized.
///
/// Items with the same kind, detail and unit are merged (quantities and dollars summed), so a
/// turn's ledger has one line per model and token class however many steps it took.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// The sum of the items.
    #[serde(default)]
    pub total_usd: f64,
    /// The items, in the order first seen.
    #[serde(default)]
    pub items: Vec<CostItem>,
    /// Models whose tokens were used but have no known price: their tokens are not in the
    /// total, which is then a lower bound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpriced: Vec<String>,
}

impl Ledger {
    /// Adds an item (merged into an item of the same kind, detail and unit).
    pub fn add(&mut self, item: CostItem) {
        self.total_usd += item.usd;
        if let Some(existing) = self
            .items
            .iter_mut()
            .find(|i| i.kind == item.kind && i.unit == item.unit && i.detail == item.detail)
        {
            existing.quantity += item.quantity;
            existing.usd += item.usd;
        } else {
            self.items.push(item);
        }
    }

    /// Adds every item of another ledger.
    pub fn merge(&mut self, other: &Ledger) {
        for item in &other.items {
            self.add(item.clone());
        }
        for model in &other.unpriced {
            self.note_unpriced(model);
        }
    }

    /// Records that `model_id` had no price.
    pub fn note_unpriced(&mut self, model_id: &str) {
        if !self.unpriced.iter().any(|m| m == model_id) {
            self.unpriced.push(model_id.to_owned());
        }
    }

    /// The dollars of one kind.
    pub fn usd_of(&self, kind: CostKind) -> f64 {
        self.items
            .iter()
            .filter(|item| item.kind == kind)
            .map(|item| item.usd)
            .sum()
    }

    /// True when it has no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.unpriced.is_empty()
    }

    /// An embedding call of `input_tokens` on `model_id`.
    pub fn add_embeddings(&mut self, model_id: &str, input_tokens: u64, prices: &ServicePrices) {
        self.add(CostItem {
            kind: CostKind::Embeddings,
            detail: model_id.to_owned(),
            quantity: input_tokens as f64,
            unit: "input_tokens".into(),
            usd: input_tokens as f64 / 1_000.0 * prices.embedding_usd_per_1k_tokens,
        });
    }

    /// The tokens of a model call at its price: one item per token class used. A model with
    /// no price is noted in `unpriced`.
    pub fn model_call(model_id: &str, pricing: Option<Pricing>, usage: Usage) -> Self {
        let mut ledger = Self::default();
        ledger.add_model_call(model_id, pricing, usage);
        ledger
    }

    /// Adds the tokens of a model call (see [`Ledger::model_call`]).
    pub fn add_model_call(&mut self, model_id: &str, pricing: Option<Pricing>, usage: Usage) {
        let Some(pricing) = pricing else {
            if usage != Usage::default() {
                self.note_unpriced(model_id);
            }
            return;
        };
        let classes = [
            (
                "input_tokens",
                usage.input_tokens,
                pricing.input_usd_per_mtok,
            ),
            (
                "output_tokens",
                usage.output_tokens,
                pricing.output_usd_per_mtok,
            ),
            (
                "cache_read_tokens",
                usage.cache_read_tokens,
                pricing.cache_read_usd_per_mtok,
            ),
            (
                "cache_write_tokens",
                usage.cache_write_tokens,
                pricing.cache_write_usd_per_mtok,
            ),
        ];
        for (unit, tokens, usd_per_mtok) in classes {
            if tokens > 0 {
                self.add(CostItem {
                    kind: CostKind::Model,
                    detail: model_id.to_owned(),
                    quantity: tokens as f64,
                    unit: unit.to_owned(),
                    usd: tokens as f64 * usd_per_mtok / 1_000_000.0,
                });
            }
        }
    }

    /// Adds one Lambda invocation of `function`: its GB-seconds (memory times duration, as
    /// Lambda bills them: the duration rounded up to the millisecond) and its request.
    pub fn add_lambda(
        &mut self,
        function: &str,
        memory_mb: u32,
        duration_ms: u64,
        prices: &ServicePrices,
    ) {
        let gb_seconds = f64::from(memory_mb) / 1024.0 * duration_ms as f64 / 1000.0;
        self.add(CostItem {
            kind: CostKind::Lambda,
            detail: function.to_owned(),
            quantity: gb_seconds,
            unit: "gb_seconds".to_owned(),
            usd: gb_seconds * prices.lambda_gb_second_usd,
        });
        self.add(CostItem {
            kind: CostKind::Lambda,
            detail: function.to_owned(),
            quantity: 1.0,
            unit: "requests".to_owned(),
            usd: prices.lambda_request_usd,
        });
    }

    /// Adds DynamoDB request units on `table` (on-demand capacity).
    pub fn add_dynamodb(
        &mut self,
        table: &str,
        read_units: f64,
        write_units: f64,
        prices: &ServicePrices,
    ) {
        if read_units > 0.0 {
            self.add(CostItem {
                kind: CostKind::Dynamodb,
                detail: table.to_owned(),
                quantity: read_units,
                unit: "read_units".to_owned(),
                usd: read_units * prices.dynamodb_read_unit_usd,
            });
        }
        if write_units > 0.0 {
            self.add(CostItem {
                kind: CostKind::Dynamodb,
                detail: table.to_owned(),
                quantity: write_units,
                unit: "write_units".to_owned(),
                usd: write_units * prices.dynamodb_write_unit_usd,
            });
        }
    }

    /// Adds what a tool executor reported it used: search queries, secret reads, DynamoDB
    /// units of its result cache.
    pub fn add_tool_usage(&mut self, usage: &ToolUsage, prices: &ServicePrices) {
        if usage.search_queries > 0 {
            let provider = usage.search_provider.as_deref().unwrap_or("search");
            let quantity = f64::from(usage.search_queries);
            self.add(CostItem {
                kind: CostKind::Search,
                detail: provider.to_owned(),
                quantity,
                unit: "queries".to_owned(),
                usd: quantity * prices.search_query_usd(provider),
            });
        }
        if usage.secrets_calls > 0 {
            let quantity = f64::from(usage.secrets_calls);
            self.add(CostItem {
                kind: CostKind::Secrets,
                detail: "GetSecretValue".to_owned(),
                quantity,
                unit: "requests".to_owned(),
                usd: quantity * prices.secrets_call_usd,
            });
        }
        if let Some(table) = &usage.dynamodb_table {
            self.add_dynamodb(
                table,
                usage.dynamodb_read_units,
                usage.dynamodb_write_units,
                prices,
            );
        }
    }
}

/// What a tool executor reports it used in one call (MCP `_meta.usage` of its response), for
/// the ledger to price. Tools that run in the handler report nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolUsage {
    /// Queries sent to a paid search provider (cache hits are not queries).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub search_queries: u32,
    /// The provider queried (`tavily`, `brave`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_provider: Option<String>,
    /// Secrets Manager `GetSecretValue` calls made (a cached key costs none).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub secrets_calls: u32,
    /// The DynamoDB table the executor read or wrote (its result cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamodb_table: Option<String>,
    /// Read units it consumed there.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub dynamodb_read_units: f64,
    /// Write units it consumed there.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub dynamodb_write_units: f64,
}

impl ToolUsage {
    /// True when nothing was reported.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

fn is_zero_f64(value: &f64) -> bool {
    *value == 0.0
}

/// The prices of everything but the models, in US dollars (on-demand, us-east-1, December
/// 2026).
///
/// Sources:
/// - Lambda, arm64: $0.0000133334 per GB-second (first 7.5 billion GB-seconds a month) and
///   $0.20 per million requests — <https://aws.amazon.com/lambda/pricing/>.
/// - DynamoDB on-demand: $0.625 per million write request units, $0.125 per million read
///   request units (since the November 2024 price cut); a transactional write costs two write
///   units per KB, a strongly consistent read one read unit per 4 KB —
///   <https://aws.amazon.com/dynamodb/pricing/on-demand/>.
/// - Secrets Manager: $0.05 per 10,000 API calls —
///   <https://aws.amazon.com/secrets-manager/pricing/>.
/// - Tavily: $0.008 per API credit pay-as-you-go, a basic search is one credit —
///   <https://docs.tavily.com/documentation/api-credits>.
/// - Brave Search API: $5 per 1,000 queries (the Base AI plan) —
///   <https://brave.com/search/api/>.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServicePrices {
    /// Lambda compute, per GB-second (arm64).
    pub lambda_gb_second_usd: f64,
    /// Lambda, per request.
    pub lambda_request_usd: f64,
    /// DynamoDB on-demand, per read request unit.
    pub dynamodb_read_unit_usd: f64,
    /// DynamoDB on-demand, per write request unit.
    pub dynamodb_write_unit_usd: f64,
    /// Secrets Manager, per API call.
    pub secrets_call_usd: f64,
    /// Tavily, per query.
    pub tavily_query_usd: f64,
    /// Brave Search, per query.
    pub brave_query_usd: f64,
    /// Amazon Titan Text Embeddings V2, per 1,000 input tokens (on-demand, us-east-1:
    /// <https://aws.amazon.com/bedrock/pricing/>).
    #[serde(default = "titan_embeddings_usd_per_1k")]
    pub embedding_usd_per_1k_tokens: f64,
}

fn titan_embeddings_usd_per_1k() -> f64 {
    0.000_02
}

impl Default for ServicePrices {
    fn default() -> Self {
        Self {
            lambda_gb_second_usd: 0.000_013_333_4,
            lambda_request_usd: 0.20 / 1_000_000.0,
            dynamodb_read_unit_usd: 0.125 / 1_000_000.0,
            dynamodb_write_unit_usd: 0.625 / 1_000_000.0,
            secrets_call_usd: 0.05 / 10_000.0,
            tavily_query_usd: 0.008,
            brave_query_usd: 0.005,
            embedding_usd_per_1k_tokens: titan_embeddings_usd_per_1k(),
        }
    }
}

impl ServicePrices {
    /// The price of one query to `provider` (an unknown provider is priced as Tavily, the
    /// dearer of the two, so the ledger errs high).
    pub fn search_query_usd(&self, provider: &str) -> f64 {
        match provider {
            "brave" => self.brave_query_usd,
            _ => self.tavily_query_usd,
        }
    }
}

/// What the ledger needs to know of the deployment: prices, and the memory of each function.
#[derive(Clone, Debug, PartialEq)]
pub struct CostModel {
    /// Prices of the services.
    pub prices: ServicePrices,
    /// The handler's function name (as the ledger names it).
    pub handler_function: String,
    /// The handler's memory size, in MB.
    pub handler_memory_mb: u32,
    /// The executor of each tool run in its own Lambda, by tool name; tools not listed run
    /// in the handler and add no Lambda item.
    pub tool_lambdas: std::collections::BTreeMap<String, ToolLambda>,
    /// The DynamoDB table of sessions (as the ledger names it).
    pub table: String,
}

impl Default for CostModel {
    fn default() -> Self {
        Self {
            prices: ServicePrices::default(),
            handler_function: "session-handler".to_owned(),
            handler_memory_mb: 256,
            tool_lambdas: std::collections::BTreeMap::new(),
            table: "sessions".to_owned(),
        }
    }
}

/// A tool executor's Lambda, as the ledger costs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolLambda {
    /// The function's name.
    pub function: String,
    /// Its memory size, in MB.
    pub memory_mb: u32,
}

/// Write units of a transactional write of items of these sizes: two per KB (rounded up) of
/// each item, as DynamoDB bills transactions.
pub fn transaction_write_units(item_bytes: impl IntoIterator<Item = usize>) -> f64 {
    item_bytes
        .into_iter()
        .map(|bytes| 2.0 * bytes.max(1).div_ceil(1024) as f64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn haiku() -> Pricing {
        Pricing {
            input_usd_per_mtok: 1.00,
            output_usd_per_mtok: 5.00,
            cache_write_usd_per_mtok: 1.25,
            cache_read_usd_per_mtok: 0.10,
        }
    }

    #[test]
    fn a_turn_matches_a_hand_computation_to_the_millionth_of_a_dollar() {
        let prices = ServicePrices::default();
        let mut ledger = Ledger::default();
        // Two model calls of Haiku 4.5.
        ledger.add_model_call(
            "haiku",
            Some(haiku()),
            Usage {
                input_tokens: 1_800,
                output_tokens: 120,
                cache_read_tokens: 0,
                cache_write_tokens: 1_500,
            },
        );
        ledger.add_model_call(
            "haiku",
            Some(haiku()),
            Usage {
                input_tokens: 400,
                output_tokens: 200,
                cache_read_tokens: 1_500,
                cache_write_tokens: 0,
            },
        );
        // The handler: 256 MB for 2.5 s; a search executor: 128 MB for 800 ms.
        ledger.add_lambda("session-handler", 256, 2_500, &prices);
        ledger.add_lambda("tool-web-search", 128, 800, &prices);
        ledger.add_dynamodb("sessions", 2.5, 14.0, &prices);
        ledger.add_tool_usage(
            &ToolUsage {
                search_queries: 1,
                search_provider: Some("tavily".into()),
                secrets_calls: 1,
                ..ToolUsage::default()
            },
            &prices,
        );
        // By hand:
        // model: input 2,200 × $1/M = 0.0022; output 320 × $5/M = 0.0016;
        //        cache write 1,500 × $1.25/M = 0.001875; cache read 1,500 × $0.10/M = 0.00015
        // lambda: 0.25 GB × 2.5 s = 0.625 GB-s; 0.125 GB × 0.8 s = 0.1 GB-s;
        //        0.725 GB-s × 0.0000133334 = 0.000009666715; 2 requests × $0.0000002
        // dynamodb: 2.5 × $0.000000125 + 14 × $0.000000625 = 0.0000090625
        // search: 1 × $0.008; secrets: 1 × $0.000005
        let by_hand = 0.0022
            + 0.0016
            + 0.001875
            + 0.00015
            + 0.000_009_666_715
            + 0.000_000_4
            + 0.000_009_062_5
            + 0.008
            + 0.000_005;
        assert!(
            (ledger.total_usd - by_hand).abs() < 1e-6,
            "{} vs {by_hand}",
            ledger.total_usd
        );
        assert!((ledger.total_usd - by_hand).abs() < 1e-12);
        let model_lines: Vec<_> = ledger
            .items
            .iter()
            .filter(|i| i.kind == CostKind::Model)
            .map(|i| (i.unit.as_str(), i.quantity))
            .collect();
        assert_eq!(
            model_lines,
            vec![
                ("input_tokens", 2_200.0),
                ("output_tokens", 320.0),
                ("cache_write_tokens", 1_500.0),
                ("cache_read_tokens", 1_500.0),
            ]
        );
        let sum: f64 = ledger.items.iter().map(|i| i.usd).sum();
        assert!((sum - ledger.total_usd).abs() < 1e-15);
    }

    #[test]
    fn cost_is_tokens_times_price_per_million_with_cache_tokens_at_their_own_rates() {
        let pricing = Pricing {
            input_usd_per_mtok: 0.80,
            output_usd_per_mtok: 4.00,
            cache_write_usd_per_mtok: 1.00,
            cache_read_usd_per_mtok: 0.08,
        };
        let cost = Ledger::model_call(
            "m",
            Some(pricing),
            Usage {
                input_tokens: 1_000_000,
                output_tokens: 500_000,
                cache_write_tokens: 2_000_000,
                cache_read_tokens: 10_000_000,
            },
        );
        let output_usd: f64 = cost
            .items
            .iter()
            .filter(|i| i.unit == "output_tokens")
            .map(|i| i.usd)
            .sum();
        assert!((cost.total_usd - output_usd - (0.80 + 2.00 + 0.80)).abs() < 1e-9);
        assert!((output_usd - 2.00).abs() < 1e-12);
        assert!((cost.total_usd - 5.60).abs() < 1e-9);
    }

    #[test]
    fn an_unpriced_model_is_named_and_adds_nothing() {
        let ledger = Ledger::model_call(
            "acme.mystery",
            None,
            Usage {
                input_tokens: 10,
                output_tokens: 1,
                ..Usage::default()
            },
        );
        assert_eq!(ledger.total_usd, 0.0);
        assert!(ledger.items.is_empty());
        assert_eq!(ledger.unpriced, vec!["acme.mystery".to_owned()]);
    }

    #[test]
    fn the_wire_shape_is_total_and_items() {
        let mut ledger = Ledger::default();
        ledger.add_lambda("session-handler", 1024, 1000, &ServicePrices::default());
        let json = serde_json::to_value(&ledger).unwrap();
        assert_eq!(json["items"][0]["kind"], "lambda");
        assert_eq!(json["items"][0]["unit"], "gb_seconds");
        assert_eq!(json["items"][0]["quantity"], 1.0);
        assert_eq!(json["items"][1]["unit"], "requests");
        assert!(json.get("unpriced").is_none());
        // A cost stored before the ledger ({input_usd, output_usd, total_usd}) still reads.
        let old: Ledger = serde_json::from_value(serde_json::json!(
            {"input_usd": 0.001, "output_usd": 0.002, "total_usd": 0.003}
        ))
        .unwrap();
        assert_eq!(old.total_usd, 0.003);
        assert!(old.items.is_empty());
    }

    #[test]
    fn transactional_writes_cost_two_units_per_started_kilobyte() {
        assert_eq!(
            transaction_write_units([1, 1024, 1025, 4096]),
            2.0 + 2.0 + 4.0 + 8.0
        );
    }
}
