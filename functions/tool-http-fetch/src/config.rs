//! The tool's limits, read once from the environment when the Lambda starts.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `HTTP_FETCH_MAX_BODY_BYTES` | 1048576 | bytes of response body read at most |
//! | `HTTP_FETCH_MAX_TEXT_BYTES` | 100000 | bytes of text returned at most |
//! | `HTTP_FETCH_TIMEOUT_MS` | 10000 | time for the whole fetch, redirects included |
//! | `HTTP_FETCH_CONNECT_TIMEOUT_MS` | 5000 | time for one TCP connection attempt |
//! | `HTTP_FETCH_MAX_REDIRECTS` | 5 | redirects followed at most |
//! | `HTTP_FETCH_USER_AGENT` | `agent-http-fetch/<version>` | the `User-Agent` header |
//! | `HTTP_FETCH_ALLOW_LOOPBACK_FOR_TESTS` | unset | `1` allows 127.0.0.0/8 and ::1: tests only |

use std::{str::FromStr, time::Duration};

/// Why the environment does not make a configuration.
pub use shared::config::InvalidVar as ConfigError;

/// Limits of one fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchConfig {
    /// Bytes of response body read at most; the rest is not downloaded.
    pub max_body_bytes: usize,
    /// Bytes of text returned at most (the caller may ask for less).
    pub max_text_bytes: usize,
    /// Time for the whole fetch: resolution, connections, redirects and body.
    pub timeout: Duration,
    /// Time for one TCP connection attempt.
    pub connect_timeout: Duration,
    /// Redirects followed at most.
    pub max_redirects: u32,
    /// The `User-Agent` header sent.
    pub user_agent: String,
    /// Allows loopback addresses. For this crate's tests only; never set in production.
    pub allow_loopback_for_tests: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_text_bytes: 100_000,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_redirects: 5,
            user_agent: concat!("agent-http-fetch/", env!("CARGO_PKG_VERSION")).to_owned(),
            allow_loopback_for_tests: false,
        }
    }
}

impl FetchConfig {
    /// The configuration from the process environment; unset variables keep their defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration from `lookup`, which returns a variable's value when it is set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Ok(Self {
            max_body_bytes: positive(
                &lookup,
                "HTTP_FETCH_MAX_BODY_BYTES",
                defaults.max_body_bytes,
            )?,
            max_text_bytes: positive(
                &lookup,
                "HTTP_FETCH_MAX_TEXT_BYTES",
                defaults.max_text_bytes,
            )?,
            timeout: Duration::from_millis(positive(
                &lookup,
                "HTTP_FETCH_TIMEOUT_MS",
                millis(defaults.timeout),
            )?),
            connect_timeout: Duration::from_millis(positive(
                &lookup,
                "HTTP_FETCH_CONNECT_TIMEOUT_MS",
                millis(defaults.connect_timeout),
            )?),
            max_redirects: parsed(&lookup, "HTTP_FETCH_MAX_REDIRECTS", defaults.max_redirects)?,
            user_agent: match lookup("HTTP_FETCH_USER_AGENT") {
                Some(agent) if agent.trim().is_empty() || !agent.is_ascii() => {
                    return Err(ConfigError {
                        name: "HTTP_FETCH_USER_AGENT",
                        value: agent,
                        reason: "expected non-empty ASCII text",
                    })
                }
                Some(agent) => agent.trim().to_owned(),
                None => defaults.user_agent,
            },
            allow_loopback_for_tests: match lookup("HTTP_FETCH_ALLOW_LOOPBACK_FOR_TESTS").as_deref()
            {
                None | Some("") | Some("0") | Some("false") => false,
                Some("1") | Some("true") => true,
                Some(other) => {
                    return Err(ConfigError {
                        name: "HTTP_FETCH_ALLOW_LOOPBACK_FOR_TESTS",
                        value: other.to_owned(),
                        reason: "expected 1 or 0",
                    })
                }
            },
        })
    }
}

fn parsed<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| ConfigError {
            name,
            value,
            reason: "expected a whole number",
        }),
    }
}

fn positive<T: FromStr + Default + PartialEq>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    let value = parsed(lookup, name, default)?;
    if value == T::default() {
        return Err(ConfigError {
            name,
            value: lookup(name).unwrap_or_default(),
            reason: "must be greater than zero",
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<FetchConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FetchConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn an_empty_environment_gives_the_documented_defaults() {
        let config = from(&[]).unwrap();
        assert_eq!(config, FetchConfig::default());
        assert_eq!(config.max_body_bytes, 1_048_576);
        assert_eq!(config.max_text_bytes, 100_000);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.max_redirects, 5);
        assert!(!config.allow_loopback_for_tests);
    }

    #[test]
    fn every_limit_is_read_from_its_variable() {
        let config = from(&[
            ("HTTP_FETCH_MAX_BODY_BYTES", "2048"),
            ("HTTP_FETCH_MAX_TEXT_BYTES", "512"),
            ("HTTP_FETCH_TIMEOUT_MS", "1500"),
            ("HTTP_FETCH_CONNECT_TIMEOUT_MS", "700"),
            ("HTTP_FETCH_MAX_REDIRECTS", "0"),
            ("HTTP_FETCH_USER_AGENT", "bot/1"),
            ("HTTP_FETCH_ALLOW_LOOPBACK_FOR_TESTS", "1"),
        ])
        .unwrap();
        assert_eq!(config.max_body_bytes, 2048);
        assert_eq!(config.max_text_bytes, 512);
        assert_eq!(config.timeout, Duration::from_millis(1500));
        assert_eq!(config.connect_timeout, Duration::from_millis(700));
        assert_eq!(config.max_redirects, 0);
        assert_eq!(config.user_agent, "bot/1");
        assert!(config.allow_loopback_for_tests);
    }

    #[test]
    fn malformed_or_zero_values_are_rejected_with_the_variable_name() {
        for (name, value) in [
            ("HTTP_FETCH_MAX_BODY_BYTES", "lots"),
            ("HTTP_FETCH_MAX_TEXT_BYTES", "0"),
            ("HTTP_FETCH_TIMEOUT_MS", "-1"),
            ("HTTP_FETCH_MAX_REDIRECTS", "five"),
            ("HTTP_FETCH_USER_AGENT", " "),
            ("HTTP_FETCH_ALLOW_LOOPBACK_FOR_TESTS", "yes"),
        ] {
            let error = from(&[(name, value)]).unwrap_err();
            assert_eq!(error.name, name);
            assert!(
                error.to_string().starts_with(&format!("invalid {name}=")),
                "{error}"
            );
        }
    }
}
