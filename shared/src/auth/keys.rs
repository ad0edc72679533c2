//! The issuer's signing keys: OpenID discovery, the JWKS, and the cache with its refetch rule.
//!
//! The keys are held for the life of the execution environment. A token whose `kid` is not
//! among them makes the keys be fetched again, at most once every [`REFETCH_INTERVAL`] (an
//! attempt, successful or not, holds the next one back; the first load of the process is not
//! counted), one fetch at a time: validations that need a fetch while one is running wait for
//! it and use what it brought. Keys older than [`MAX_KEY_AGE`] are fetched again under the
//! same rule, so a key the issuer withdrew stops being accepted; while the issuer cannot be
//! reached the keys already held keep being used.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{crypto::CryptoProvider, Algorithm, DecodingKey};
use reqwest::header::ACCEPT;
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::Value;
use url::Url;

use super::AuthError;

/// The shortest time between two fetches of the keys (the first load aside).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// How long fetched keys are used before they are fetched again (under the same rule).
pub const MAX_KEY_AGE: Duration = Duration::from_secs(60 * 60);
/// The time limit of each request to the issuer (the discovery document, the JWKS).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of a discovery document or a JWKS read at most.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// A public key of the issuer and the one algorithm it verifies.
pub(super) struct SigningKey {
    pub algorithm: Algorithm,
    pub decoding: DecodingKey,
}

type KeyMap = HashMap<String, Arc<SigningKey>>;

/// The keys held, and when they may be fetched again.
#[derive(Default)]
struct KeyCache {
    keys: KeyMap,
    /// The last successful fetch.
    loaded: Option<Instant>,
    /// No fetch before this.
    next_fetch: Option<Instant>,
    /// The last attempt failed.
    failed: bool,
}

/// What a validation does for a key id.
enum Lookup {
    Key(Arc<SigningKey>),
    Fetch,
    Unknown,
    Unavailable,
}

impl KeyCache {
    /// What to do for a token signed with `kid` at `now`; `may_fetch` is false once this
    /// validation has had its fetch.
    fn lookup(&self, kid: &str, now: Instant, may_fetch: bool) -> Lookup {
        let may_fetch = may_fetch && self.next_fetch.is_none_or(|at| now >= at);
        match self.keys.get(kid) {
            Some(key) => {
                let fresh = self
                    .loaded
                    .is_some_and(|at| now.saturating_duration_since(at) < MAX_KEY_AGE);
                if fresh || !may_fetch {
                    Lookup::Key(key.clone())
                } else {
                    Lookup::Fetch
                }
            }
            None if may_fetch => Lookup::Fetch,
            // After a failed attempt an unknown key may be one that could not be fetched.
            None if self.failed || self.loaded.is_none() => Lookup::Unavailable,
            None => Lookup::Unknown,
        }
    }

    /// Records an attempt made at `now`: the keys it brought, or `None` when it failed.
    fn record(&mut self, fetched: Option<KeyMap>, now: Instant) {
        if self.loaded.is_some() || fetched.is_none() {
            self.next_fetch = Some(now + REFETCH_INTERVAL);
        }
        match fetched {
            Some(keys) => {
                self.keys = keys;
                self.loaded = Some(now);
                self.failed = false;
            }
            None => self.failed = true,
        }
    }
}

/// The issuer's keys, fetched through its discovery document and held in a [`KeyCache`].
pub(super) struct KeySource {
    http: reqwest::Client,
    issuer: String,
    discovery: Url,
    cache: RwLock<KeyCache>,
    /// Held while the keys are fetched: one fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl KeySource {
    /// The keys of `issuer`, whose discovery document is at `discovery`.
    pub fn new(issuer: String, discovery: Url) -> Result<Self, String> {
        // Only `rust_crypto` is enabled, which makes it the default; should another crate of
        // the build enable `aws_lc_rs` too, there would be none, so name it.
        if CryptoProvider::try_get_default().is_none() {
            let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        }
        let http = crate::https::reqwest_builder()
            .map_err(|error| error.to_string())?
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("lambda-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| error.to_string())?;
        Ok(Self {
            http,
            issuer,
            discovery,
            cache: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The key with id `kid`, fetching the keys when the rule allows.
    pub async fn key(&self, kid: &str) -> Result<Arc<SigningKey>, AuthError> {
        if let Some(done) = self.lookup(kid, true) {
            return done;
        }
        let _fetching = self.fetching.lock().await;
        // The fetch this one waited for may have brought the key, or used up the allowance.
        if self.lookup(kid, true).is_none() {
            let fetched = match self.fetch().await {
                Ok(keys) => Some(keys),
                Err(reason) => {
                    tracing::warn!(issuer = %self.issuer, %reason, "the issuer's keys could not be fetched");
                    None
                }
            };
            self.write().record(fetched, Instant::now());
        }
        self.lookup(kid, false)
            .unwrap_or(Err(AuthError::KeysUnavailable))
    }

    /// The outcome for `kid` from the cache alone, or `None` when the keys are to be fetched.
    fn lookup(&self, kid: &str, may_fetch: bool) -> Option<Result<Arc<SigningKey>, AuthError>> {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        match cache.lookup(kid, Instant::now(), may_fetch) {
            Lookup::Key(key) => Some(Ok(key)),
            Lookup::Fetch => None,
            Lookup::Unknown => Some(Err(AuthError::UnknownKey)),
            Lookup::Unavailable => Some(Err(AuthError::KeysUnavailable)),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KeyCache> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The discovery document, then the JWKS it names; the usable keys by id.
    async fn fetch(&self) -> Result<KeyMap, String> {
        let discovery: Discovery = self.get_json(&self.discovery).await?;
        if discovery.issuer != self.issuer {
            return Err(format!(
                "the OpenID configuration names the issuer {:?}",
                discovery.issuer
            ));
        }
        let jwks_uri = Url::parse(&discovery.jwks_uri)
            .map_err(|error| format!("the jwks_uri is not a URL: {error}"))?;
        if !super::secure_url(&jwks_uri) {
            return Err(format!(
                "the jwks_uri {jwks_uri} is not https (plain http only to a loopback host)"
            ));
        }
        let set: JwkSet = self.get_json(&jwks_uri).await?;
        let keys = usable_keys(set.keys);
        if keys.is_empty() {
            return Err(format!("{jwks_uri} has no usable RS256 or ES256 key"));
        }
        Ok(keys)
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &Url) -> Result<T, String> {
        let response = self
            .http
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| format!("GET {url}: {error}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        let (body, truncated) = crate::https::read_response(response, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|error| format!("GET {url}: {error}"))?;
        if truncated {
            return Err(format!(
                "GET {url}: the answer is larger than {MAX_DOCUMENT_BYTES} bytes"
            ));
        }
        serde_json::from_slice(&body).map_err(|error| format!("GET {url}: {error}"))
    }
}

/// The fields read from `{issuer}/.well-known/openid-configuration`.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// A JWKS; each key is read on its own, so that one the validator cannot use (another key
/// type, an encryption key) does not hide the others.
#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Value>,
}

/// The members of a JWK that are read.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// The keys of `jwks` that verify RS256 or ES256 signatures, by id (the first of an id kept).
fn usable_keys(jwks: Vec<Value>) -> KeyMap {
    let mut keys = KeyMap::new();
    for value in jwks {
        let parsed = serde_json::from_value::<Jwk>(value)
            .map_err(|_| "not a JWK")
            .and_then(signing_key);
        match parsed {
            Ok((kid, key)) => {
                keys.entry(kid).or_insert_with(|| Arc::new(key));
            }
            Err(reason) => tracing::debug!(reason, "a key of the JWKS is not used"),
        }
    }
    keys
}

/// The key id and the key of `jwk`, or why it is not used.
fn signing_key(jwk: Jwk) -> Result<(String, SigningKey), &'static str> {
    let kid = jwk.kid.filter(|kid| !kid.is_empty()).ok_or("no kid")?;
    if jwk.usage.as_deref().is_some_and(|usage| usage != "sig") {
        return Err("not a signing key");
    }
    let (algorithm, decoding) = match jwk.kty.as_str() {
        "RSA" => {
            let (Some(n), Some(e)) = (jwk.n, jwk.e) else {
                return Err("an RSA key without n or e");
            };
            let modulus = URL_SAFE_NO_PAD
                .decode(&n)
                .map_err(|_| "n is not base64url")?;
            let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err("an RSA key shorter than 2048 bits");
            }
            let key = DecodingKey::from_rsa_components(&n, &e).map_err(|_| "a bad RSA key")?;
            (Algorithm::RS256, key)
        }
        "EC" => {
            if jwk.crv.as_deref() != Some("P-256") {
                return Err("an EC key not on P-256");
            }
            let (Some(x), Some(y)) = (jwk.x, jwk.y) else {
                return Err("an EC key without x or y");
            };
            let key = DecodingKey::from_ec_components(&x, &y).map_err(|_| "a bad EC key")?;
            (Algorithm::ES256, key)
        }
        _ => return Err("neither an RSA nor an EC key"),
    };
    if jwk.alg.is_some_and(|alg| alg != algorithm_name(algorithm)) {
        return Err("its alg is not the one its type allows (RS256 for RSA, ES256 for P-256)");
    }
    // Building a verifier checks the key itself (an EC point must be on the curve).
    let provider = CryptoProvider::try_get_default().ok_or("no crypto provider")?;
    (provider.verifier_factory)(&algorithm, &decoding).map_err(|_| "not a valid public key")?;
    Ok((
        kid,
        SigningKey {
            algorithm,
            decoding,
        },
    ))
}

/// The JOSE name of one of the two algorithms accepted.
fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::ES256 => "ES256",
        _ => "RS256",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key() -> Arc<SigningKey> {
        Arc::new(SigningKey {
            algorithm: Algorithm::ES256,
            decoding: DecodingKey::from_ec_der(&[]),
        })
    }

    fn loaded(now: Instant) -> KeyCache {
        let mut cache = KeyCache::default();
        cache.record(Some(KeyMap::from([("a".to_owned(), key())])), now);
        cache
    }

    /// What `cache` says for `kid` at `now`.
    fn outcome(cache: &KeyCache, kid: &str, now: Instant, may_fetch: bool) -> &'static str {
        match cache.lookup(kid, now, may_fetch) {
            Lookup::Key(_) => "key",
            Lookup::Fetch => "fetch",
            Lookup::Unknown => "unknown",
            Lookup::Unavailable => "unavailable",
        }
    }

    #[test]
    fn the_first_validation_fetches_and_the_first_load_does_not_hold_back_a_refetch() {
        let start = Instant::now();
        assert_eq!(outcome(&KeyCache::default(), "a", start, true), "fetch");
        let cache = loaded(start);
        assert_eq!(outcome(&cache, "a", start, true), "key");
        assert_eq!(outcome(&cache, "b", start, true), "fetch");
        assert_eq!(outcome(&cache, "b", start, false), "unknown");
    }

    #[test]
    fn a_refetch_holds_the_next_back_for_a_minute_whether_it_succeeded_or_not() {
        let start = Instant::now();
        let soon = start + REFETCH_INTERVAL - Duration::from_secs(1);
        let then = start + REFETCH_INTERVAL;
        for fetched in [Some(KeyMap::from([("a".to_owned(), key())])), None] {
            let mut cache = loaded(start);
            let unknown = if fetched.is_none() {
                "unavailable"
            } else {
                "unknown"
            };
            cache.record(fetched, start);
            assert_eq!(outcome(&cache, "b", soon, true), unknown);
            // The keys held before a failed attempt keep being used.
            assert_eq!(outcome(&cache, "a", soon, true), "key");
            assert_eq!(outcome(&cache, "b", then, true), "fetch");
        }
    }

    #[test]
    fn a_failed_first_load_holds_the_next_back_and_is_unavailable_meanwhile() {
        let start = Instant::now();
        let mut cache = KeyCache::default();
        cache.record(None, start);
        let soon = start + REFETCH_INTERVAL - Duration::from_secs(1);
        assert_eq!(outcome(&cache, "a", soon, true), "unavailable");
        assert_eq!(
            outcome(&cache, "a", start + REFETCH_INTERVAL, true),
            "fetch"
        );
    }

    #[test]
    fn old_keys_are_fetched_again_and_used_while_the_fetch_is_held_back_or_fails() {
        let start = Instant::now();
        let mut cache = loaded(start);
        let later = start + MAX_KEY_AGE;
        assert_eq!(outcome(&cache, "a", later, true), "fetch");
        cache.record(None, later);
        assert_eq!(outcome(&cache, "a", later, false), "key");
        assert_eq!(outcome(&cache, "a", later, true), "key");
    }

    fn rsa_jwk(modulus_bytes: usize) -> Value {
        let mut n = vec![0xc1_u8; modulus_bytes];
        n[modulus_bytes - 1] = 0x01;
        json!({
            "kty": "RSA", "kid": "r", "use": "sig", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB",
        })
    }

    #[test]
    fn rsa_keys_of_2048_bits_are_used_and_shorter_ones_or_other_kinds_are_not() {
        let keys = usable_keys(vec![rsa_jwk(256)]);
        assert_eq!(keys["r"].algorithm, Algorithm::RS256);
        assert!(usable_keys(vec![rsa_jwk(128)]).is_empty());

        let mut encryption = rsa_jwk(256);
        encryption["use"] = json!("enc");
        let mut wrong_alg = rsa_jwk(256);
        wrong_alg["alg"] = json!("RS512");
        let mut no_kid = rsa_jwk(256);
        no_kid.as_object_mut().unwrap().remove("kid");
        let secret = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
        let p384 = json!({"kty": "EC", "kid": "p", "crv": "P-384", "x": "AA", "y": "AA"});
        let off_curve = json!({
            "kty": "EC", "kid": "c", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode([1_u8; 32]), "y": URL_SAFE_NO_PAD.encode([2_u8; 32]),
        });
        let unusable = vec![
            encryption,
            wrong_alg,
            no_kid,
            secret,
            p384,
            off_curve,
            json!("x"),
        ];
        assert!(usable_keys(unusable).is_empty());
    }
}
