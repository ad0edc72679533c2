//! API keys of third-party providers (the web search APIs, an OpenAI-compatible model), kept
//! in Secrets Manager (feature `secrets`): read once ([`read_api_key`], at start-up) or through
//! a [`KeyCache`] that reuses a key for a TTL and reads it again once when the provider rejects
//! it (the key was rotated).
//!
//! A secret's string is the raw key or a JSON object with an `api_key` string
//! ([`parse_secret`]). The key is an [`ApiKey`], whose `Debug` prints `***` and which has no
//! `Display`; nothing in this module formats a secret value into an error or a log line.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde_json::Value;
use tokio::sync::Mutex;

/// A provider API key. Its `Debug` prints `***`; read it only with [`ApiKey::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Why no key could be read. Messages never contain the secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager could not be asked or refused.
    #[error("could not read the API key secret: {0}")]
    Fetch(String),
    /// The secret has no string value (binary secret).
    #[error("the API key secret has no string value")]
    NoString,
    /// The secret is JSON without a usable `api_key`.
    #[error("the API key secret is JSON without a non-empty \"api_key\" string")]
    BadJson,
    /// The secret is empty.
    #[error("the API key secret is empty")]
    Empty,
}

/// Reads the current key from the secret's string: the raw key, or JSON `{"api_key": "..."}`.
pub fn parse_secret(secret: &str) -> Result<ApiKey, SecretError> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(SecretError::Empty);
    }
    if !secret.starts_with('{') {
        return Ok(ApiKey::new(secret));
    }
    let value: Value = serde_json::from_str(secret).map_err(|_| SecretError::BadJson)?;
    match value.get("api_key").and_then(Value::as_str).map(str::trim) {
        Some(key) if !key.is_empty() => Ok(ApiKey::new(key)),
        _ => Err(SecretError::BadJson),
    }
}

/// Where keys come from.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// Reads the current key.
    async fn fetch(&self) -> Result<ApiKey, SecretError>;
}

/// Keys read from one Secrets Manager secret.
#[derive(Clone, Debug)]
pub struct SecretsManagerKeys {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerKeys {
    /// Reads `secret_id` (a name or ARN) with `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl KeySource for SecretsManagerKeys {
    async fn fetch(&self) -> Result<ApiKey, SecretError> {
        read_api_key(&self.client, &self.secret_id).await
    }
}

/// Reads the key held by the secret `secret_id` (a name or ARN) once: for a caller that reads
/// it at start-up (the session handler's model provider). The secret's string is the raw key
/// or JSON `{"api_key": "..."}`.
pub async fn read_api_key(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<ApiKey, SecretError> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|error| SecretError::Fetch(DisplayErrorContext(&error).to_string()))?;
    parse_secret(output.secret_string().ok_or(SecretError::NoString)?)
}

/// A key cached for a TTL, shared by the calls of one execution environment.
pub struct KeyCache {
    source: Arc<dyn KeySource>,
    ttl: Duration,
    cached: Mutex<Option<(ApiKey, Instant)>>,
    fetches: AtomicU64,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("ttl", &self.ttl)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

impl KeyCache {
    /// A cache of `source`'s key, read again after `ttl`.
    pub fn new(source: Arc<dyn KeySource>, ttl: Duration) -> Self {
        Self {
            source,
            ttl,
            cached: Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many times the source was read.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The cached key, or a fresh one when there is none or it is older than the TTL.
    pub async fn get(&self) -> Result<ApiKey, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some((key, at)) = cached.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(key.clone());
            }
        }
        self.fetch_into(&mut cached).await
    }

    /// A key to retry with after the provider rejected `rejected`: the cached key when another
    /// call already replaced it, otherwise a fresh read of the source.
    pub async fn refresh_after_rejection(&self, rejected: &ApiKey) -> Result<ApiKey, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some((key, at)) = cached.as_ref() {
            if key != rejected && at.elapsed() < self.ttl {
                return Ok(key.clone());
            }
        }
        self.fetch_into(&mut cached).await
    }

    async fn fetch_into(
        &self,
        cached: &mut Option<(ApiKey, Instant)>,
    ) -> Result<ApiKey, SecretError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let key = self.source.fetch().await?;
        tracing::debug!(fetches = self.fetches(), "read the API key secret");
        *cached = Some((key.clone(), Instant::now()));
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting {
        keys: std::sync::Mutex<Vec<&'static str>>,
    }

    #[async_trait]
    impl KeySource for Counting {
        async fn fetch(&self) -> Result<ApiKey, SecretError> {
            let mut keys = self.keys.lock().unwrap();
            let key = if keys.len() > 1 {
                keys.remove(0)
            } else {
                keys[0]
            };
            Ok(ApiKey::new(key))
        }
    }

    fn cache(keys: Vec<&'static str>, ttl: Duration) -> KeyCache {
        KeyCache::new(
            Arc::new(Counting {
                keys: std::sync::Mutex::new(keys),
            }),
            ttl,
        )
    }

    #[test]
    fn the_secret_is_a_raw_key_or_json_with_api_key() {
        assert_eq!(parse_secret(" k-1\n").unwrap().expose(), "k-1");
        assert_eq!(
            parse_secret(r#"{"api_key": "k-2", "other": 1}"#)
                .unwrap()
                .expose(),
            "k-2"
        );
        assert!(matches!(
            parse_secret(r#"{"key": "k"}"#),
            Err(SecretError::BadJson)
        ));
        assert!(matches!(parse_secret("{oops"), Err(SecretError::BadJson)));
        assert!(matches!(parse_secret("  "), Err(SecretError::Empty)));
    }

    #[test]
    fn the_debug_output_of_a_key_hides_it() {
        let key = ApiKey::new("sk-very-secret");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert!(!format!("{:?}", Some(key)).contains("very-secret"));
    }

    #[tokio::test]
    async fn a_key_is_read_once_within_the_ttl() {
        let cache = cache(vec!["a", "b"], Duration::from_secs(60));
        assert_eq!(cache.get().await.unwrap().expose(), "a");
        assert_eq!(cache.get().await.unwrap().expose(), "a");
        assert_eq!(cache.fetches(), 1);
    }

    #[tokio::test]
    async fn a_key_older_than_the_ttl_is_read_again() {
        let cache = cache(vec!["a", "b"], Duration::ZERO);
        assert_eq!(cache.get().await.unwrap().expose(), "a");
        assert_eq!(cache.get().await.unwrap().expose(), "b");
        assert_eq!(cache.fetches(), 2);
    }

    #[tokio::test]
    async fn a_rejected_key_is_read_again_but_a_newer_cached_key_is_reused() {
        let cache = cache(vec!["old", "new"], Duration::from_secs(60));
        let old = cache.get().await.unwrap();
        let new = cache.refresh_after_rejection(&old).await.unwrap();
        assert_eq!(new.expose(), "new");
        // A second call that also saw "old" rejected reuses the already refreshed key.
        let again = cache.refresh_after_rejection(&old).await.unwrap();
        assert_eq!(again.expose(), "new");
        assert_eq!(cache.fetches(), 2);
    }
}
