//! The tool's configuration, read once from the environment when the Lambda starts.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SEARCH_PROVIDER` | `tavily` | `tavily` or `brave` |
//! | `SEARCH_BASE_URL` | the provider's API | base URL of the provider (tests: a local stand-in) |
//! | `SEARCH_API_KEY_SECRET` | unset | Secrets Manager secret id of the key; unset = local stand-in, no key |
//! | `SECRET_TTL_SECONDS` | 300 | how long a key read from the secret is reused |
//! | `SEARCH_TIMEOUT_MS` | 10000 | time for one provider request |
//! | `TABLE_NAME` | unset | the agent's table, where results are cached; unset = no cache |
//! | `CACHE_TTL_SECONDS` | 3600 | how long a result is served from the cache; 0 = no cache |

use std::time::Duration;

use url::Url;

use crate::provider::{Brave, Tavily};

/// Why the environment does not make a configuration.
pub use shared::config::InvalidVar as ConfigError;

/// Which provider answers searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// Tavily.
    Tavily,
    /// Brave Search.
    Brave,
}

/// Configuration of the executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchConfig {
    /// The provider.
    pub provider: ProviderKind,
    /// Its base URL.
    pub base_url: Url,
    /// The Secrets Manager secret holding the key; `None` runs keyless against a stand-in.
    pub secret_id: Option<String>,
    /// How long a key is reused before the secret is read again.
    pub secret_ttl: Duration,
    /// Time for one provider request.
    pub timeout: Duration,
    /// The table results are cached in, and for how long; `None` when caching is off.
    pub cache: Option<CacheConfig>,
}

/// Where and for how long search results are cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// The DynamoDB table.
    pub table: String,
    /// How long a result is served from the cache.
    pub ttl: Duration,
}

impl SearchConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (empty values count as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let provider = match get("SEARCH_PROVIDER").as_deref().map(str::trim) {
            None | Some("tavily") => ProviderKind::Tavily,
            Some("brave") => ProviderKind::Brave,
            Some(other) => {
                return Err(ConfigError {
                    name: "SEARCH_PROVIDER",
                    value: other.to_owned(),
                    reason: "expected tavily or brave",
                })
            }
        };
        let default_base = match provider {
            ProviderKind::Tavily => Tavily::DEFAULT_BASE_URL,
            ProviderKind::Brave => Brave::DEFAULT_BASE_URL,
        };
        let base = get("SEARCH_BASE_URL").unwrap_or_else(|| default_base.to_owned());
        let base_url = match Url::parse(base.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => url,
            _ => {
                return Err(ConfigError {
                    name: "SEARCH_BASE_URL",
                    value: base,
                    reason: "expected an http(s) URL",
                })
            }
        };
        let seconds = |name: &'static str, default: u64, factor: u64| {
            get(name).map_or(Ok(Duration::from_millis(default * factor)), |value| {
                value
                    .trim()
                    .parse::<u64>()
                    .map(|n| Duration::from_millis(n.saturating_mul(factor)))
                    .map_err(|_| ConfigError {
                        name,
                        value,
                        reason: "expected a whole number",
                    })
            })
        };
        let cache_ttl = seconds("CACHE_TTL_SECONDS", 3600, 1000)?;
        let cache = get("TABLE_NAME")
            .filter(|_| !cache_ttl.is_zero())
            .map(|table| CacheConfig {
                table: table.trim().to_owned(),
                ttl: cache_ttl,
            });
        Ok(Self {
            provider,
            base_url,
            secret_id: get("SEARCH_API_KEY_SECRET").map(|id| id.trim().to_owned()),
            secret_ttl: seconds("SECRET_TTL_SECONDS", 300, 1000)?,
            timeout: seconds("SEARCH_TIMEOUT_MS", 10_000, 1)?,
            cache,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<SearchConfig, ConfigError> {
        SearchConfig::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn defaults_are_tavily_keyless_with_a_five_minute_ttl() {
        let config = config(&[]).unwrap();
        assert_eq!(config.provider, ProviderKind::Tavily);
        assert_eq!(config.base_url.as_str(), "https://api.tavily.com/");
        assert_eq!(config.secret_id, None);
        assert_eq!(config.secret_ttl, Duration::from_secs(300));
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.cache, None, "no table, no cache");
    }

    #[test]
    fn results_are_cached_for_an_hour_in_the_table_unless_the_ttl_is_zero() {
        let cached = config(&[("TABLE_NAME", "agent")]).unwrap();
        assert_eq!(
            cached.cache,
            Some(CacheConfig {
                table: "agent".into(),
                ttl: Duration::from_secs(3600)
            })
        );
        let short = config(&[("TABLE_NAME", "agent"), ("CACHE_TTL_SECONDS", "60")]).unwrap();
        assert_eq!(short.cache.unwrap().ttl, Duration::from_secs(60));
        let off = config(&[("TABLE_NAME", "agent"), ("CACHE_TTL_SECONDS", "0")]).unwrap();
        assert_eq!(off.cache, None);
        assert_eq!(
            config(&[("CACHE_TTL_SECONDS", "-1")]).unwrap_err().name,
            "CACHE_TTL_SECONDS"
        );
    }

    #[test]
    fn brave_with_an_overridden_base_url_and_ttl() {
        let config = config(&[
            ("SEARCH_PROVIDER", "brave"),
            ("SEARCH_BASE_URL", "http://127.0.0.1:8080"),
            ("SEARCH_API_KEY_SECRET", "search/key"),
            ("SECRET_TTL_SECONDS", "60"),
        ])
        .unwrap();
        assert_eq!(config.provider, ProviderKind::Brave);
        assert_eq!(config.base_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.secret_id.as_deref(), Some("search/key"));
        assert_eq!(config.secret_ttl, Duration::from_secs(60));
    }

    #[test]
    fn unknown_providers_bad_urls_and_bad_numbers_are_errors() {
        assert_eq!(
            config(&[("SEARCH_PROVIDER", "bing")]).unwrap_err().name,
            "SEARCH_PROVIDER"
        );
        assert_eq!(
            config(&[("SEARCH_BASE_URL", "ftp://x")]).unwrap_err().name,
            "SEARCH_BASE_URL"
        );
        assert_eq!(
            config(&[("SECRET_TTL_SECONDS", "soon")]).unwrap_err().name,
            "SECRET_TTL_SECONDS"
        );
    }
}
