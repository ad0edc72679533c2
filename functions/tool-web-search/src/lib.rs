//! `web_search`: a tool executor that searches the web through one provider API (Tavily or
//! Brave Search, [`provider`]) and returns normalized results (`title`, `url`, `snippet`,
//! `published`) as JSON text.
//!
//! The provider's API key lives in Secrets Manager ([`shared::adapters::secrets`]); it is cached for a TTL and read
//! again once when the provider rejects it, so a rotated key works without a redeploy. The key is
//! never in a result, an error, a log line or `Debug` output. Without a configured secret (local
//! `make dev`), searches go keyless to the configured base URL and say that results are not live.
//!
//! Results are cached in the agent's table ([`shared::adapters::result_cache`]) for
//! `CACHE_TTL_SECONDS`, keyed by the provider, the normalized query (case and spacing do not
//! count) and the result count: a repeated search costs no provider call and no key read. The
//! cache is best effort: when DynamoDB fails, the search goes to the provider.
//!
//! The logic lives here so tests can drive it; `main.rs` only serves [`WebSearch`] through
//! [`shared::tool_contract::handle`].

pub mod config;
pub mod provider;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use shared::{
    adapters::result_cache::ResultCache, domain::ledger::ToolUsage, domain::message::ToolOutput,
    ports::CallContext, tool_contract::Tool,
};

pub use config::{CacheConfig, ConfigError, ProviderKind, SearchConfig};
pub use provider::{Brave, ProviderError, SearchProvider, SearchResult, Tavily};
pub use shared::adapters::secrets::{ApiKey, KeyCache, KeySource, SecretError, SecretsManagerKeys};

use shared::https::Client as HttpClient;

/// The `User-Agent` sent to providers.
pub const USER_AGENT: &str = concat!("agent-web-search/", env!("CARGO_PKG_VERSION"));
/// Results returned when the input does not say.
pub const DEFAULT_MAX_RESULTS: u8 = 5;
/// Results returned at most.
pub const MAX_RESULTS_LIMIT: u8 = 10;
/// Characters of query accepted at most.
pub const MAX_QUERY_CHARS: usize = 400;
/// The note added to results of the keyless local stand-in.
pub const LOCAL_NOTE: &str = "local stand-in: results are not live";

/// Input of `web_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSearchInput {
    /// What to search the web for, as you would type it into a search engine.
    pub query: String,
    /// How many results to return, from 1 to 10 (default 5).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    pub max_results: Option<u8>,
}

/// Why a search failed. Messages never contain the key.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The key could not be read.
    #[error(transparent)]
    Key(#[from] SecretError),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Why the executor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// The `web_search` tool: a provider and, in production, the cached key and the result cache.
pub struct WebSearch {
    provider: Box<dyn SearchProvider>,
    keys: Option<KeyCache>,
    cache: Option<ResultCache>,
}

impl std::fmt::Debug for WebSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSearch")
            .field("provider", &self.provider.name())
            .field("keys", &self.keys)
            .field("cache", &self.cache.as_ref().map(ResultCache::ttl))
            .finish()
    }
}

impl WebSearch {
    /// A tool searching with `provider`; `keys` is `None` for the keyless local stand-in.
    pub fn new(provider: Box<dyn SearchProvider>, keys: Option<KeyCache>) -> Self {
        Self {
            provider,
            keys,
            cache: None,
        }
    }

    /// The same tool, answering repeated searches from `cache`.
    #[must_use]
    pub fn with_cache(mut self, cache: ResultCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The provider named by `config`, with an HTTPS client and its time limit.
    pub fn provider_for(config: &SearchConfig) -> Result<Box<dyn SearchProvider>, BuildError> {
        let http = HttpClient::new(config.timeout, USER_AGENT)?;
        let base = config.base_url.clone();
        Ok(match config.provider {
            ProviderKind::Tavily => Box::new(Tavily::new(base, http)),
            ProviderKind::Brave => Box::new(Brave::new(base, http)),
        })
    }

    /// The production tool: the configured provider, the key read from Secrets Manager when a
    /// secret is configured, and the result cache when a table is, with the shared SDK
    /// configuration.
    pub async fn from_config(config: &SearchConfig) -> Result<Self, BuildError> {
        let provider = Self::provider_for(config)?;
        if config.secret_id.is_none() && config.cache.is_none() {
            // Keyless and uncached (local runs): no AWS client, so no SDK set-up at start.
            return Ok(Self::new(provider, None));
        }
        let sdk = shared::aws::sdk_config().await;
        let keys = config.secret_id.as_ref().map(|secret_id| {
            let client = aws_sdk_secretsmanager::Client::new(&sdk);
            let source = SecretsManagerKeys::new(client, secret_id.clone());
            KeyCache::new(Arc::new(source), config.secret_ttl)
        });
        let tool = Self::new(provider, keys);
        Ok(match &config.cache {
            Some(cache) => tool.with_cache(ResultCache::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                cache.table.clone(),
                <Self as Tool>::NAME,
                cache.ttl,
            )),
            None => tool,
        })
    }

    /// How many times the key secret was read (0 when keyless).
    pub fn key_fetches(&self) -> u64 {
        self.keys.as_ref().map_or(0, KeyCache::fetches)
    }

    /// Searches, reading the key again and retrying once if the provider rejects it.
    pub async fn search(
        &self,
        query: &str,
        max_results: u8,
    ) -> Result<Vec<SearchResult>, SearchError> {
        let Some(keys) = &self.keys else {
            return Ok(self.provider.search(query, max_results, None).await?);
        };
        let key = keys.get().await?;
        match self.provider.search(query, max_results, Some(&key)).await {
            Err(ProviderError::Unauthorized { status }) => {
                tracing::warn!(
                    provider = self.provider.name(),
                    status,
                    "the search provider rejected the cached API key; reading the secret again"
                );
                let fresh = keys.refresh_after_rejection(&key).await?;
                Ok(self
                    .provider
                    .search(query, max_results, Some(&fresh))
                    .await?)
            }
            other => Ok(other?),
        }
    }
}

/// What makes two searches the same: the provider, the query without case and extra spacing,
/// and the result count.
fn cache_request(provider: &str, query: &str, max_results: u8) -> serde_json::Value {
    let query = query
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ");
    json!({ "provider": provider, "query": query, "max_results": max_results })
}

/// `seconds` since the epoch as an RFC 3339 UTC time.
fn rfc3339(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Checks the input; returns the trimmed query and the result count.
fn validate(input: &WebSearchInput) -> Result<(&str, u8), String> {
    let query = input.query.trim();
    if query.is_empty() {
        return Err("invalid input for web_search: query is empty".into());
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(format!(
            "invalid input for web_search: query is longer than {MAX_QUERY_CHARS} characters"
        ));
    }
    let max_results = input.max_results.unwrap_or(DEFAULT_MAX_RESULTS);
    if !(1..=MAX_RESULTS_LIMIT).contains(&max_results) {
        return Err(format!(
            "invalid input for web_search: max_results must be 1 to {MAX_RESULTS_LIMIT}, not {max_results}"
        ));
    }
    Ok((query, max_results))
}

impl Tool for WebSearch {
    type Input = WebSearchInput;
    const NAME: &'static str = "web_search";
    const DESCRIPTION: &'static str = "Searches the web and returns the top results (title, url, \
        snippet, published date when known) as JSON. Use it for current events or facts you do \
        not know; fetch a result's url with http_fetch to read the page.";

    async fn run(
        &self,
        input: WebSearchInput,
        _context: Option<&CallContext>,
    ) -> Result<ToolOutput, String> {
        let (query, max_results) = validate(&input)?;
        let provider = self.provider.name();
        let cache_request = cache_request(provider, query, max_results);
        let mut output = json!({ "query": query, "provider": provider });
        if self.keys.is_none() {
            output["note"] = json!(LOCAL_NOTE);
        }
        if let Some(cache) = &self.cache {
            match cache.get(&cache_request).await {
                Ok(Some(hit)) => {
                    tracing::info!(
                        provider,
                        cache = "hit",
                        "web search answered from the cache"
                    );
                    output["results"] = hit.value;
                    output["cached_at"] = json!(rfc3339(hit.stored_at));
                    return Ok(ToolOutput::json(output));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "result cache unreadable; asking the provider");
                }
            }
        }
        let key_fetches = self.key_fetches();
        match self.search(query, max_results).await {
            Ok(results) => {
                tracing::info!(provider, results = results.len(), "web search done");
                output["results"] = json!(results);
                if let Some(cache) = &self.cache {
                    if let Err(error) = cache.put(&cache_request, &output["results"]).await {
                        tracing::warn!(%error, "result not cached");
                    }
                }
                // What the caller's cost ledger prices: one query to the provider, and the
                // secret reads it took (none while the key is cached). A cache hit is neither.
                let mut answer = ToolOutput::json(output);
                answer.usage = ToolUsage {
                    search_queries: 1,
                    search_provider: Some(provider.to_owned()),
                    secrets_calls: u32::try_from(self.key_fetches() - key_fetches)
                        .unwrap_or(u32::MAX),
                    ..ToolUsage::default()
                };
                Ok(answer)
            }
            Err(error) => {
                tracing::warn!(provider, error = %error, "web search failed");
                Err(format!("web_search failed: {error}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(query: &str, max_results: Option<u8>) -> WebSearchInput {
        WebSearchInput {
            query: query.into(),
            max_results,
        }
    }

    #[test]
    fn the_query_is_trimmed_and_max_results_defaults_to_five() {
        assert_eq!(validate(&input("  rust  ", None)).unwrap(), ("rust", 5));
        assert_eq!(validate(&input("rust", Some(10))).unwrap(), ("rust", 10));
    }

    #[test]
    fn empty_or_long_queries_and_out_of_range_counts_are_refused() {
        assert!(validate(&input("   ", None)).unwrap_err().contains("empty"));
        let long = "x".repeat(MAX_QUERY_CHARS + 1);
        assert!(validate(&input(&long, None))
            .unwrap_err()
            .contains("longer"));
        assert!(validate(&input("q", Some(0)))
            .unwrap_err()
            .contains("max_results"));
        assert!(validate(&input("q", Some(11)))
            .unwrap_err()
            .contains("max_results"));
    }

    #[test]
    fn searches_differing_only_in_case_or_spacing_are_the_same_search() {
        assert_eq!(
            cache_request("tavily", "Rust  Lambda", 5),
            cache_request("tavily", "rust lambda", 5)
        );
        assert_ne!(
            cache_request("tavily", "rust lambda", 5),
            cache_request("tavily", "rust lambda", 6)
        );
        assert_ne!(
            cache_request("tavily", "rust lambda", 5),
            cache_request("brave", "rust lambda", 5)
        );
    }

    #[test]
    fn cached_at_is_an_rfc3339_utc_time() {
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn the_schema_documents_the_query_and_the_result_range() {
        let schema = shared::tools::input_schema::<WebSearchInput>();
        assert_eq!(schema["required"], json!(["query"]));
        assert!(schema["properties"]["query"]["description"].is_string());
        assert_eq!(schema["properties"]["max_results"]["maximum"], 10);
    }
}
