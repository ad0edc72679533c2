//! Bearer tokens validated in code (feature `jwt`), as strictly as API Gateway's JWT
//! authorizer does, for the entry points that are not behind one (the session handler's
//! Function URL; later an MCP gateway).
//!
//! A token is accepted when:
//! - it is a JWS in compact form whose header names `alg` RS256 or ES256 (`none`, the HMAC
//!   algorithms and every other one are refused) and a `kid` that is one of the issuer's
//!   keys, of that very algorithm (keys and `jku`/`jwk`/`x5u` carried in the token are never
//!   used);
//! - the signature verifies with that key;
//! - `iss` is the configured issuer, exactly; `exp` is present and not past, `nbf` (when
//!   present) not in the future, both with [`JwtConfig::leeway`]; `sub` is a non-empty string;
//! - `aud` names one of the configured audiences or, for a Cognito access token (which carries
//!   no `aud`), `token_use` is `access` and `client_id` is one of them.
//!
//! The issuer's keys come from its OpenID discovery document and JWKS (see [`keys`] for the
//! cache and its refetch rule). Errors say what was wrong in words that are safe to send back
//! in a 401 body: never the token, a claim's value or key material. The issuer's keys being
//! unreachable is told apart ([`AuthError::is_unavailable`]): a server-side fault, not a bad
//! token.

pub mod keys;

use std::{fmt, sync::Arc, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{errors::ErrorKind, Algorithm, Validation};
use serde_json::{Map, Value};
use url::Url;

use crate::config::ConfigError;

/// The issuer, as it stands in the tokens' `iss` (e.g.
/// `https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf`).
pub const ISSUER_VAR: &str = "JWT_ISSUER";
/// The accepted audiences (app client ids), comma-separated.
pub const AUDIENCE_VAR: &str = "JWT_AUDIENCE";
/// The default clock leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Whose tokens are accepted, and for whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtConfig {
    /// The issuer: `https`, or plain `http` to a loopback host (tests, local runs).
    pub issuer: String,
    /// The audiences accepted (at least one): matched against `aud`, or `client_id` for a
    /// Cognito access token.
    pub audience: Vec<String>,
    /// How far past `exp` (and before `nbf`) a token is still accepted, for clock skew.
    pub leeway: Duration,
}

impl JwtConfig {
    /// Reads `JWT_ISSUER` and `JWT_AUDIENCE` from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads `JWT_ISSUER` and `JWT_AUDIENCE` through `lookup`; the leeway is
    /// [`DEFAULT_LEEWAY`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let issuer = get(ISSUER_VAR)?;
        let audience = get(AUDIENCE_VAR)?
            .split(',')
            .map(str::trim)
            .filter(|audience| !audience.is_empty())
            .map(str::to_owned)
            .collect();
        let config = Self {
            issuer,
            audience,
            leeway: DEFAULT_LEEWAY,
        };
        config.discovery_url()?;
        Ok(config)
    }

    /// Where the issuer's OpenID configuration is; an error when the configuration cannot be
    /// used.
    fn discovery_url(&self) -> Result<Url, ConfigError> {
        if self.audience.is_empty() {
            return Err(ConfigError::Invalid {
                name: AUDIENCE_VAR,
                reason: "names no audience".into(),
            });
        }
        let invalid = |reason: &str| ConfigError::Invalid {
            name: ISSUER_VAR,
            reason: reason.to_owned(),
        };
        let issuer = Url::parse(&self.issuer).map_err(|error| invalid(&error.to_string()))?;
        if !secure_url(&issuer) {
            return Err(invalid(
                "must be an https URL (plain http only to a loopback host)",
            ));
        }
        if issuer.query().is_some() || issuer.fragment().is_some() || !issuer.username().is_empty()
        {
            return Err(invalid("must not have a query, a fragment or credentials"));
        }
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        Url::parse(&discovery).map_err(|error| invalid(&error.to_string()))
    }
}

/// True for an `https` URL with a host, or a plain `http` one to a loopback host.
fn secure_url(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => crate::https::is_loopback(url),
        _ => false,
    }
}

/// Why a [`JwtValidator`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client for the issuer's keys could not be built.
    #[error("the HTTP client for the issuer's keys could not be built: {0}")]
    Client(String),
}

/// Why a token was not accepted. The text is safe to send to the caller: it never holds the
/// token, a claim's value or key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a JWS in compact form, or a part that does not decode.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not RS256 or ES256 (`none` and HMAC included), or not the algorithm of the
    /// key named by `kid`.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// `kid` names none of the issuer's keys.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("signature invalid")]
    BadSignature,
    /// `exp` is past, beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// Neither `aud` nor (for a Cognito access token) `client_id` is an accepted audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is absent.
    #[error("missing claim: {0}")]
    MissingClaim(&'static str),
    /// A claim has the wrong type, or `sub` is empty.
    #[error("invalid claim: {0}")]
    InvalidClaim(&'static str),
    /// The issuer's keys could not be fetched: a server-side fault (answer 503), not the
    /// caller's.
    #[error("issuer keys unavailable")]
    KeysUnavailable,
}

impl AuthError {
    /// True when the token could not be checked because the issuer's keys are unavailable
    /// (a 503); every other error is a token refused (a 401).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::KeysUnavailable)
    }
}

/// The claims of an accepted token.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    /// The subject: the caller's stable id.
    pub sub: String,
    /// The scopes granted (`scope`, space-separated, or `scp`); empty when none.
    pub scopes: Vec<String>,
    /// The OAuth client (`client_id`, Cognito's access tokens), when present.
    pub client_id: Option<String>,
    /// Cognito's `token_use` (`access` or `id`), when present.
    pub token_use: Option<String>,
    /// `exp`, in seconds since the epoch.
    pub expires_at: u64,
    /// Every claim of the token.
    pub raw: Map<String, Value>,
}

impl Claims {
    /// True when the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }
}

/// Validates bearer tokens against one issuer's keys. Cheap to clone: the clones share the
/// keys held for the life of the process.
#[derive(Clone)]
pub struct JwtValidator {
    inner: Arc<Inner>,
}

struct Inner {
    config: JwtConfig,
    keys: keys::KeySource,
}

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidator")
            .field("issuer", &self.inner.config.issuer)
            .field("audience", &self.inner.config.audience)
            .finish_non_exhaustive()
    }
}

impl JwtValidator {
    /// A validator for `config`; the keys are fetched at the first validation.
    pub fn new(config: JwtConfig) -> Result<Self, SetupError> {
        let discovery = config.discovery_url()?;
        let keys =
            keys::KeySource::new(config.issuer.clone(), discovery).map_err(SetupError::Client)?;
        Ok(Self {
            inner: Arc::new(Inner { config, keys }),
        })
    }

    /// The claims of `token` when it is valid (see the module's documentation).
    pub async fn validate(&self, token: &str) -> Result<Claims, AuthError> {
        let header = TokenHeader::parse(token)?;
        let key = self.inner.keys.key(&header.kid).await?;
        if key.algorithm != header.algorithm {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let config = &self.inner.config;
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[&config.issuer]);
        // Checked by `claims`: Cognito's access tokens carry `client_id` instead.
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(decode_error)?;
        claims(data.claims, config)
    }

    /// The token of an `Authorization` header value `Bearer <token>` (the scheme in any case).
    pub fn bearer(header_value: &str) -> Option<&str> {
        let (scheme, token) = header_value.trim().split_once(' ')?;
        let token = token.trim_start();
        (scheme.eq_ignore_ascii_case("bearer")
            && !token.is_empty()
            && !token.contains(char::is_whitespace))
        .then_some(token)
    }
}

/// What is read of the header before any key is looked up.
#[derive(Debug)]
struct TokenHeader {
    algorithm: Algorithm,
    kid: String,
}

impl TokenHeader {
    fn parse(token: &str) -> Result<Self, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("not three dot-separated parts"));
        };
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|json| serde_json::from_slice::<Map<String, Value>>(&json).ok())
            .ok_or(AuthError::Malformed("the header is not base64url JSON"))?;
        let algorithm = match header.get("alg").and_then(Value::as_str) {
            Some("RS256") => Algorithm::RS256,
            Some("ES256") => Algorithm::ES256,
            Some(_) => return Err(AuthError::AlgorithmNotAllowed),
            None => return Err(AuthError::Malformed("no alg in the header")),
        };
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .filter(|kid| !kid.is_empty())
            .ok_or(AuthError::Malformed("no kid in the header"))?;
        Ok(Self {
            algorithm,
            kid: kid.to_owned(),
        })
    }
}

/// The library's error as the caller is told it.
fn decode_error(error: jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            AuthError::AlgorithmNotAllowed
        }
        ErrorKind::MissingRequiredClaim(name) => AuthError::MissingClaim(claim_name(name)),
        ErrorKind::InvalidClaimFormat(name) => AuthError::InvalidClaim(claim_name(name)),
        ErrorKind::Base64(_) => AuthError::Malformed("a part is not base64url"),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => AuthError::Malformed("a part is not JSON"),
        _ => AuthError::Malformed("not a JWS the validator accepts"),
    }
}

/// `name` as a static string, when it is one of the registered claims checked.
fn claim_name(name: &str) -> &'static str {
    ["exp", "nbf", "iss", "sub", "aud"]
        .into_iter()
        .find(|known| *known == name)
        .unwrap_or("registered claim")
}

/// The claims of a token whose signature, `exp`, `nbf` and `iss` the library has checked.
fn claims(raw: Map<String, Value>, config: &JwtConfig) -> Result<Claims, AuthError> {
    // The library also takes an array of issuers that holds ours; `iss` is one string.
    if raw.get("iss").and_then(Value::as_str) != Some(config.issuer.as_str()) {
        return Err(AuthError::WrongIssuer);
    }
    let sub = match raw.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        Some(_) => return Err(AuthError::InvalidClaim("sub")),
        None => return Err(AuthError::MissingClaim("sub")),
    };
    let token_use = optional_string(&raw, "token_use")?;
    let client_id = optional_string(&raw, "client_id")?;
    check_audience(
        raw.get("aud"),
        token_use.as_deref(),
        client_id.as_deref(),
        &config.audience,
    )?;
    let expires_at = raw
        .get("exp")
        .and_then(|exp| exp.as_u64().or_else(|| exp.as_f64().map(|exp| exp as u64)))
        .ok_or(AuthError::InvalidClaim("exp"))?;
    Ok(Claims {
        sub,
        scopes: scopes(&raw)?,
        client_id,
        token_use,
        expires_at,
        raw,
    })
}

/// The string claim `name`, when present.
fn optional_string(
    raw: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, AuthError> {
    match raw.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(AuthError::InvalidClaim(name)),
    }
}

/// `aud` (a string or an array of strings) names one of `audiences`; a token without `aud`
/// matches only as a Cognito access token whose `client_id` is one of them (an ID token,
/// `token_use` `id`, always carries `aud`).
fn check_audience(
    aud: Option<&Value>,
    token_use: Option<&str>,
    client_id: Option<&str>,
    audiences: &[String],
) -> Result<(), AuthError> {
    let accepted = |value: &str| audiences.iter().any(|audience| audience == value);
    let matched = match aud {
        Some(Value::String(aud)) => accepted(aud),
        Some(Value::Array(items)) => {
            let mut matched = false;
            for item in items {
                matched |= accepted(item.as_str().ok_or(AuthError::InvalidClaim("aud"))?);
            }
            matched
        }
        Some(_) => return Err(AuthError::InvalidClaim("aud")),
        None => token_use == Some("access") && client_id.is_some_and(accepted),
    };
    if matched {
        Ok(())
    } else {
        Err(AuthError::WrongAudience)
    }
}

/// The scopes: OAuth's `scope` (space-separated), or `scp` (space-separated or an array).
fn scopes(raw: &Map<String, Value>) -> Result<Vec<String>, AuthError> {
    let split = |text: &str| text.split_whitespace().map(str::to_owned).collect();
    match (raw.get("scope"), raw.get("scp")) {
        (Some(Value::String(scope)), _) => Ok(split(scope)),
        (Some(_), _) => Err(AuthError::InvalidClaim("scope")),
        (None, Some(Value::String(scp))) => Ok(split(scp)),
        (None, Some(Value::Array(items))) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(AuthError::InvalidClaim("scp"))
            })
            .collect(),
        (None, Some(_)) => Err(AuthError::InvalidClaim("scp")),
        (None, None) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_configuration_reads_the_issuer_and_a_comma_separated_audience() {
        let config = JwtConfig::from_lookup(lookup(&[
            (
                ISSUER_VAR,
                " https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab ",
            ),
            (AUDIENCE_VAR, "client-a, client-b,,"),
        ]))
        .unwrap();
        assert_eq!(
            config,
            JwtConfig {
                issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab".into(),
                audience: vec!["client-a".into(), "client-b".into()],
                leeway: DEFAULT_LEEWAY,
            }
        );
        assert_eq!(
            config.discovery_url().unwrap().as_str(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab/.well-known/openid-configuration"
        );
        let slash = JwtConfig {
            issuer: "https://issuer.example.com/".into(),
            ..config
        };
        assert_eq!(
            slash.discovery_url().unwrap().as_str(),
            "https://issuer.example.com/.well-known/openid-configuration"
        );
    }

    #[test]
    fn configuration_errors_name_the_variable() {
        let issuer = (ISSUER_VAR, "https://issuer.example.com");
        let audience = (AUDIENCE_VAR, "client");
        assert_eq!(
            JwtConfig::from_lookup(lookup(&[audience])),
            Err(ConfigError::Missing(ISSUER_VAR))
        );
        assert_eq!(
            JwtConfig::from_lookup(lookup(&[issuer, (AUDIENCE_VAR, "  ")])),
            Err(ConfigError::Missing(AUDIENCE_VAR))
        );
        let error = JwtConfig::from_lookup(lookup(&[issuer, (AUDIENCE_VAR, " , ")])).unwrap_err();
        assert!(
            matches!(
                error,
                ConfigError::Invalid {
                    name: AUDIENCE_VAR,
                    ..
                }
            ),
            "{error}"
        );
        for bad in [
            "http://issuer.example.com",
            "http://10.0.0.1:8080",
            "ftp://issuer.example.com",
            "issuer.example.com",
            "https://issuer.example.com/?x=1",
            "https://user@issuer.example.com",
        ] {
            let error = JwtConfig::from_lookup(lookup(&[(ISSUER_VAR, bad), audience])).unwrap_err();
            assert!(
                matches!(
                    error,
                    ConfigError::Invalid {
                        name: ISSUER_VAR,
                        ..
                    }
                ),
                "{bad}: {error}"
            );
        }
        for loopback in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/pool",
            "http://[::1]:1",
        ] {
            JwtConfig::from_lookup(lookup(&[(ISSUER_VAR, loopback), audience])).unwrap();
        }
    }

    #[test]
    fn bearer_takes_the_token_of_a_bearer_header_in_any_case() {
        assert_eq!(
            JwtValidator::bearer("Bearer abc.def.ghi"),
            Some("abc.def.ghi")
        );
        assert_eq!(JwtValidator::bearer("bearer  abc"), Some("abc"));
        assert_eq!(JwtValidator::bearer(" BEARER abc "), Some("abc"));
        for refused in [
            "Basic abc",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Bearer a b",
            "abc",
        ] {
            assert_eq!(JwtValidator::bearer(refused), None, "{refused}");
        }
    }

    fn encoded(header: &Value) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()))
    }

    #[test]
    fn only_rs256_and_es256_with_a_kid_pass_the_header_check() {
        for alg in ["RS256", "ES256"] {
            TokenHeader::parse(&encoded(&json!({"alg": alg, "kid": "k"}))).unwrap();
        }
        for alg in [
            "none", "None", "HS256", "HS384", "HS512", "RS512", "PS256", "ES384", "EdDSA",
        ] {
            assert_eq!(
                TokenHeader::parse(&encoded(&json!({"alg": alg, "kid": "k"}))).unwrap_err(),
                AuthError::AlgorithmNotAllowed,
                "{alg}"
            );
        }
        for malformed in [
            encoded(&json!({"kid": "k"})),
            encoded(&json!({"alg": "RS256"})),
            encoded(&json!({"alg": "RS256", "kid": ""})),
            "a.b".to_owned(),
            "a.b.c.d.e".to_owned(),
            "!!.e30.c2ln".to_owned(),
            "x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(
                matches!(TokenHeader::parse(&malformed), Err(AuthError::Malformed(_))),
                "{malformed:.40}"
            );
        }
    }

    #[test]
    fn the_audience_is_aud_or_a_cognito_access_tokens_client_id() {
        let audiences = ["client-a".to_owned(), "client-b".to_owned()];
        let check = |aud: Option<Value>, token_use, client_id| {
            check_audience(aud.as_ref(), token_use, client_id, &audiences)
        };
        assert_eq!(check(Some(json!("client-b")), None, None), Ok(()));
        assert_eq!(check(Some(json!(["x", "client-a"])), None, None), Ok(()));
        assert_eq!(check(None, Some("access"), Some("client-a")), Ok(()));
        let wrong = Err(AuthError::WrongAudience);
        assert_eq!(check(Some(json!("client-c")), None, None), wrong);
        assert_eq!(check(Some(json!([])), None, None), wrong);
        assert_eq!(check(None, Some("access"), Some("client-c")), wrong);
        assert_eq!(check(None, Some("id"), Some("client-a")), wrong);
        assert_eq!(check(None, None, Some("client-a")), wrong);
        // An `aud` that is present decides, even on an access token.
        assert_eq!(
            check(Some(json!("client-c")), Some("access"), Some("client-a")),
            wrong
        );
        assert_eq!(
            check(Some(json!(7)), None, None),
            Err(AuthError::InvalidClaim("aud"))
        );
        assert_eq!(
            check(Some(json!(["client-a", 7])), None, None),
            Err(AuthError::InvalidClaim("aud"))
        );
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let raw = |value: Value| value.as_object().unwrap().clone();
        assert_eq!(
            scopes(&raw(json!({"scope": "openid  agent/chat"}))).unwrap(),
            ["openid", "agent/chat"]
        );
        assert_eq!(
            scopes(&raw(json!({"scp": ["a", "b"]}))).unwrap(),
            ["a", "b"]
        );
        assert_eq!(scopes(&raw(json!({"scp": "a b"}))).unwrap(), ["a", "b"]);
        assert!(scopes(&raw(json!({}))).unwrap().is_empty());
        assert!(scopes(&raw(json!({"scope": ["a"]}))).is_err());
    }

    #[test]
    fn only_unavailable_keys_are_a_server_side_error() {
        assert!(AuthError::KeysUnavailable.is_unavailable());
        for refused in [
            AuthError::Expired,
            AuthError::UnknownKey,
            AuthError::BadSignature,
            AuthError::Malformed("x"),
        ] {
            assert!(!refused.is_unavailable());
        }
    }
}
