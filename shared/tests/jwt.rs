//! `shared::auth` against a local issuer: an OpenID discovery document and a JWKS served on
//! 127.0.0.1, and tokens signed in the test with keys generated in the test (RSA 2048 and
//! P-256; no private key is stored anywhere). Each test asserts what the caller is told.

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use bedrock_standin::server::{accept_loop, Body};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts, Generate};
use serde_json::{json, Value};
use shared::auth::{AuthError, Claims, JwtConfig, JwtValidator};
use tokio::{net::TcpListener, task::JoinHandle};

const AUDIENCE: &str = "app-client-1";

/// A signing key of the test issuer: the private half signs, the public half is published.
struct TestKey {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An RSA 2048 key (generated once per run: it takes a while in a debug build).
fn rsa_key(kid: &str) -> TestKey {
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    let private = KEY.get_or_init(|| rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap());
    TestKey {
        kid: kid.to_owned(),
        algorithm: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes()),
        jwk: json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64(&private.n_bytes()), "e": b64(&private.e_bytes()),
        }),
    }
}

/// A fresh P-256 key.
fn ec_key(kid: &str) -> TestKey {
    let private = p256::ecdsa::SigningKey::try_generate_from_rng(&mut getrandom::SysRng).unwrap();
    let point = private.verifying_key().to_sec1_point(false);
    TestKey {
        kid: kid.to_owned(),
        algorithm: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(private.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({
            "kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        }),
    }
}

/// What the test issuer serves, and how often its JWKS was asked for.
struct Served {
    url: String,
    discovery: Mutex<Option<Value>>,
    jwks: Mutex<Value>,
    jwks_hits: AtomicUsize,
}

impl Served {
    fn answer(&self, path: &str) -> Response<Body> {
        let body = match path {
            "/.well-known/openid-configuration" => {
                self.discovery.lock().unwrap().clone().unwrap_or_else(
                    || json!({"issuer": self.url, "jwks_uri": format!("{}/jwks.json", self.url)}),
                )
            }
            "/jwks.json" => {
                self.jwks_hits.fetch_add(1, Ordering::SeqCst);
                self.jwks.lock().unwrap().clone()
            }
            _ => {
                return Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Body::full("not found"))
                    .unwrap()
            }
        };
        Response::builder()
            .header("content-type", "application/json")
            .body(Body::full(body.to_string()))
            .unwrap()
    }
}

/// An OpenID issuer on 127.0.0.1, stopped when dropped.
struct Issuer {
    served: Arc<Served>,
    server: JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Issuer {
    async fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let served = Arc::new(Served {
            url: format!("http://{}", listener.local_addr().unwrap()),
            discovery: Mutex::new(None),
            jwks: Mutex::new(Value::Null),
            jwks_hits: AtomicUsize::new(0),
        });
        let state = served.clone();
        let handle = move |request: Request<Incoming>| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(state.answer(request.uri().path())) }
        };
        let server = tokio::spawn(async move {
            let _ = accept_loop(listener, handle).await;
        });
        let issuer = Self { served, server };
        issuer.publish(keys);
        issuer
    }

    /// Serves these keys from now on.
    fn publish(&self, keys: &[&TestKey]) {
        self.publish_jwks(
            json!({"keys": keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>()}),
        );
    }

    fn publish_jwks(&self, jwks: Value) {
        *self.served.jwks.lock().unwrap() = jwks;
    }

    fn url(&self) -> &str {
        &self.served.url
    }

    fn jwks_hits(&self) -> usize {
        self.served.jwks_hits.load(Ordering::SeqCst)
    }

    fn validator(&self) -> JwtValidator {
        validator_for(self.url())
    }

    /// Validates a token of `key` with this issuer's valid claims.
    async fn signed_by(
        &self,
        validator: &JwtValidator,
        key: &TestKey,
    ) -> Result<Claims, AuthError> {
        check(validator, &sign(key, &self.claims())).await
    }

    /// Claims that are valid for this issuer.
    fn claims(&self) -> Value {
        json!({
            "iss": self.url(), "sub": "user-1", "aud": AUDIENCE,
            "iat": now(), "exp": now() + 600, "scope": "openid agent/chat",
        })
    }
}

fn validator_for(issuer: &str) -> JwtValidator {
    JwtValidator::new(JwtConfig {
        issuer: issuer.to_owned(),
        audience: vec!["other-client".to_owned(), AUDIENCE.to_owned()],
        leeway: Duration::from_secs(30),
    })
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(key.algorithm);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// `claims` with these members replaced (`null` removes one).
fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// A token whose header and claims are written by hand, with this signature part.
fn hand_built(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// Validates `token` and checks that the error (when there is one) does not repeat it.
async fn check(validator: &JwtValidator, token: &str) -> Result<Claims, AuthError> {
    let result = validator.validate(token).await;
    if let Err(error) = &result {
        for text in [error.to_string(), format!("{error:?}")] {
            for part in token.split('.').filter(|part| part.len() >= 8) {
                assert!(!text.contains(part), "{text:?} repeats the token");
            }
        }
    }
    result
}

/// An issuer publishing one P-256 key, and a validator for it.
struct OneKey {
    key: TestKey,
    issuer: Issuer,
    validator: JwtValidator,
}

impl OneKey {
    async fn start() -> Self {
        let key = ec_key("ec-1");
        let issuer = Issuer::start(&[&key]).await;
        let validator = issuer.validator();
        Self {
            key,
            issuer,
            validator,
        }
    }

    /// Validates a token of the key whose claims are the issuer's valid ones with `changes`.
    async fn validate_with(&self, changes: Value) -> Result<Claims, AuthError> {
        let token = sign(&self.key, &with(self.issuer.claims(), changes));
        check(&self.validator, &token).await
    }
}

#[tokio::test]
async fn a_valid_rs256_token_gives_its_claims() {
    let key = rsa_key("rsa-1");
    let issuer = Issuer::start(&[&key]).await;
    let token = sign(&key, &with(issuer.claims(), json!({"tenant": "acme"})));

    let claims = check(&issuer.validator(), &token).await.unwrap();
    assert_eq!(claims.sub, "user-1");
    assert_eq!(claims.scopes, ["openid", "agent/chat"]);
    assert!(claims.has_scope("agent/chat"));
    assert_eq!(claims.raw["tenant"], "acme");
    assert!(claims.expires_at > now());
    assert_eq!(issuer.jwks_hits(), 1);
}

#[tokio::test]
async fn a_valid_es256_token_gives_its_claims() {
    let key = ec_key("ec-1");
    let issuer = Issuer::start(&[&rsa_key("rsa-1"), &key]).await;
    let validator = issuer.validator();

    let claims = issuer.signed_by(&validator, &key).await.unwrap();
    assert_eq!(claims.sub, "user-1");
    // The keys are held: a second token needs no fetch.
    issuer.signed_by(&validator, &key).await.unwrap();
    assert_eq!(issuer.jwks_hits(), 1);
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let key = ec_key("ec-1");
    let issuer = Issuer::start(&[&key, &rsa_key("rsa-1")]).await;
    let validator = issuer.validator();

    // Signed by another key under a published kid.
    let impostor = ec_key("ec-1");
    let forged = sign(&impostor, &issuer.claims());
    assert_eq!(
        check(&validator, &forged).await,
        Err(AuthError::BadSignature)
    );

    // A genuine token whose claims were changed afterwards.
    let genuine = sign(&rsa_key("rsa-1"), &issuer.claims());
    let parts: Vec<&str> = genuine.split('.').collect();
    let changed = b64(with(issuer.claims(), json!({"sub": "admin"}))
        .to_string()
        .as_bytes());
    let tampered = format!("{}.{changed}.{}", parts[0], parts[2]);
    assert_eq!(
        check(&validator, &tampered).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn expiry_is_checked_with_the_leeway() {
    let one = OneKey::start().await;
    let expired = one.validate_with(json!({"exp": now() - 60})).await;
    assert_eq!(expired, Err(AuthError::Expired));
    let within_leeway = one.validate_with(json!({"exp": now() - 10})).await;
    within_leeway.unwrap();
    let no_exp = one.validate_with(json!({"exp": null})).await;
    assert_eq!(no_exp, Err(AuthError::MissingClaim("exp")));
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused_beyond_the_leeway() {
    let one = OneKey::start().await;
    let early = one.validate_with(json!({"nbf": now() + 120})).await;
    assert_eq!(early, Err(AuthError::NotYetValid));
    let within_leeway = one.validate_with(json!({"nbf": now() + 10})).await;
    within_leeway.unwrap();
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let one = OneKey::start().await;
    for aud in [json!("someone-else"), json!(["a", "b"]), json!([])] {
        let refused = one.validate_with(json!({"aud": aud})).await;
        assert_eq!(refused, Err(AuthError::WrongAudience), "{aud}");
    }
    let several = one.validate_with(json!({"aud": ["x", AUDIENCE]})).await;
    several.unwrap();
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let one = OneKey::start().await;
    let ours = one.issuer.url();
    let elsewhere = [
        json!("https://evil.example.com"),
        json!(format!("{ours}/")),
        json!([ours]),
    ];
    for iss in elsewhere {
        let refused = one.validate_with(json!({"iss": iss})).await;
        assert_eq!(refused, Err(AuthError::WrongIssuer), "{iss}");
    }
    let no_iss = one.validate_with(json!({"iss": null})).await;
    assert_eq!(no_iss, Err(AuthError::MissingClaim("iss")));
}

#[tokio::test]
async fn the_subject_is_required_and_not_empty() {
    let one = OneKey::start().await;
    let no_sub = one.validate_with(json!({"sub": null})).await;
    assert_eq!(no_sub, Err(AuthError::MissingClaim("sub")));
    let empty = one.validate_with(json!({"sub": ""})).await;
    assert_eq!(empty, Err(AuthError::InvalidClaim("sub")));
}

#[tokio::test]
async fn alg_none_is_refused_before_any_key_is_fetched() {
    let one = OneKey::start().await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": "ec-1"});
        for signature in ["", "c2lnbmF0dXJl"] {
            let token = hand_built(&header, &one.issuer.claims(), signature);
            let refused = check(&one.validator, &token).await;
            assert_eq!(refused, Err(AuthError::AlgorithmNotAllowed), "{alg}");
        }
    }
    assert_eq!(one.issuer.jwks_hits(), 0);
}

#[tokio::test]
async fn hmac_tokens_are_refused_even_keyed_with_the_public_key_or_a_published_secret() {
    let rsa = rsa_key("rsa-1");
    let issuer = Issuer::start(&[&rsa]).await;
    // The issuer (wrongly) also publishes a symmetric key: it is never used.
    let mut jwks = json!({"keys": [rsa.jwk.clone()]});
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "kid": "shared-secret", "alg": "HS256", "k": b64(b"secret")}));
    issuer.publish_jwks(jwks);
    let validator = issuer.validator();
    issuer.signed_by(&validator, &rsa).await.unwrap();

    // The classic confusion: HMAC keyed with the bytes of the RSA public key.
    let modulus = URL_SAFE_NO_PAD
        .decode(rsa.jwk["n"].as_str().unwrap())
        .unwrap();
    let secrets: [(&[u8], &str); 2] = [(&modulus, "rsa-1"), (b"secret", "shared-secret")];
    for algorithm in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        for (secret, kid) in secrets {
            let mut header = Header::new(algorithm);
            header.kid = Some(kid.to_owned());
            let token = jsonwebtoken::encode(
                &header,
                &issuer.claims(),
                &EncodingKey::from_secret(secret).unwrap(),
            )
            .unwrap();
            assert_eq!(
                check(&validator, &token).await,
                Err(AuthError::AlgorithmNotAllowed),
                "{algorithm:?} {kid}"
            );
        }
    }
}

#[tokio::test]
async fn a_token_whose_alg_is_not_its_keys_is_refused() {
    let rsa = rsa_key("rsa-1");
    let ec = ec_key("ec-1");
    let issuer = Issuer::start(&[&rsa, &ec]).await;
    let validator = issuer.validator();

    // Signed with the EC key, but naming the RSA key.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("rsa-1".to_owned());
    let token = jsonwebtoken::encode(&header, &issuer.claims(), &ec.encoding).unwrap();
    assert_eq!(
        check(&validator, &token).await,
        Err(AuthError::AlgorithmNotAllowed)
    );
    // Other RSA algorithms are refused too.
    let mut header = Header::new(Algorithm::RS512);
    header.kid = Some("rsa-1".to_owned());
    let token = jsonwebtoken::encode(&header, &issuer.claims(), &rsa.encoding).unwrap();
    assert_eq!(
        check(&validator, &token).await,
        Err(AuthError::AlgorithmNotAllowed)
    );
}

#[tokio::test]
async fn a_signed_token_with_an_unknown_critical_extension_is_refused() {
    let one = OneKey::start().await;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".to_owned());
    header.crit = Some(vec!["x-must-understand".to_owned()]);
    header.extras.insert("x-must-understand", true);
    let token = jsonwebtoken::encode(&header, &one.issuer.claims(), &one.key.encoding).unwrap();
    let refused = check(&one.validator, &token).await;
    assert!(
        matches!(refused, Err(AuthError::Malformed(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_unknown_keys_do_not_refetch_within_a_minute() {
    let old = ec_key("key-2024");
    let issuer = Issuer::start(&[&old]).await;
    let validator = issuer.validator();
    issuer.signed_by(&validator, &old).await.unwrap();
    assert_eq!(issuer.jwks_hits(), 1);

    // The issuer rotates: a new key with a new kid.
    let new = ec_key("key-2025");
    issuer.publish(&[&old, &new]);
    issuer.signed_by(&validator, &new).await.unwrap();
    assert_eq!(
        issuer.jwks_hits(),
        2,
        "the new kid made the keys be fetched"
    );

    // Another unknown kid within the minute: refused without asking the issuer.
    let stranger = ec_key("key-unknown");
    assert_eq!(
        issuer.signed_by(&validator, &stranger).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(issuer.jwks_hits(), 2);
    // The keys held still work.
    issuer.signed_by(&validator, &old).await.unwrap();
    assert_eq!(issuer.jwks_hits(), 2);
}

#[tokio::test]
async fn concurrent_validations_with_a_new_kid_share_one_fetch() {
    let old = ec_key("old");
    let issuer = Issuer::start(&[&old]).await;
    let validator = issuer.validator();
    issuer.signed_by(&validator, &old).await.unwrap();

    let new = ec_key("new");
    issuer.publish(&[&old, &new]);
    let token = sign(&new, &issuer.claims());
    let validations: Vec<_> = (0..8)
        .map(|_| {
            let validator = validator.clone();
            let token = token.clone();
            tokio::spawn(async move { validator.validate(&token).await })
        })
        .collect();
    for validation in validations {
        validation.await.unwrap().unwrap();
    }
    assert_eq!(issuer.jwks_hits(), 2);
}

#[tokio::test]
async fn a_cognito_access_token_matches_by_client_id() {
    let key = rsa_key("rsa-1");
    let issuer = Issuer::start(&[&key]).await;
    let validator = issuer.validator();
    let access = json!({
        "iss": issuer.url(), "sub": "5f1c-user", "token_use": "access",
        "client_id": AUDIENCE, "scope": "aws.cognito.signin.user.admin agent/chat",
        "username": "alice", "auth_time": now(), "iat": now(), "exp": now() + 3600,
        "jti": "0b7e", "origin_jti": "9d3a", "event_id": "e1",
    });

    let claims = check(&validator, &sign(&key, &access)).await.unwrap();
    assert_eq!(claims.sub, "5f1c-user");
    assert_eq!(claims.token_use.as_deref(), Some("access"));
    assert_eq!(claims.client_id.as_deref(), Some(AUDIENCE));
    assert!(claims.has_scope("agent/chat"));

    let other_client = with(access.clone(), json!({"client_id": "someone-else"}));
    assert_eq!(
        check(&validator, &sign(&key, &other_client)).await,
        Err(AuthError::WrongAudience)
    );
    // An ID token is matched by `aud`, never by `client_id`.
    let id_token = with(access.clone(), json!({"token_use": "id"}));
    assert_eq!(
        check(&validator, &sign(&key, &id_token)).await,
        Err(AuthError::WrongAudience)
    );
    let id_token = with(
        access,
        json!({"token_use": "id", "client_id": null, "aud": AUDIENCE}),
    );
    let claims = check(&validator, &sign(&key, &id_token)).await.unwrap();
    assert_eq!(claims.token_use.as_deref(), Some("id"));
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_a_bad_token() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let validator = validator_for(&url);
    let key = ec_key("ec-1");
    let token = sign(
        &key,
        &json!({"iss": url, "sub": "u", "aud": AUDIENCE, "exp": now() + 600}),
    );

    let error = check(&validator, &token).await.unwrap_err();
    assert_eq!(error, AuthError::KeysUnavailable);
    assert!(error.is_unavailable());
    assert_eq!(error.to_string(), "issuer keys unavailable");
    // Within the minute the issuer is not asked again: the answer is immediate.
    let again = tokio::time::timeout(Duration::from_secs(1), validator.validate(&token)).await;
    assert_eq!(again.unwrap(), Err(AuthError::KeysUnavailable));
}

#[tokio::test]
async fn issuer_documents_that_cannot_be_trusted_or_are_too_large_make_the_keys_unavailable() {
    let key = ec_key("ec-1");
    let cases = [
        (
            "another issuer",
            json!({"issuer": "https://evil.example.com"}),
        ),
        (
            "a jwks_uri in plain http to another host",
            json!({"jwks_uri": "http://example.com/jwks.json"}),
        ),
    ];
    for (case, change) in cases {
        let issuer = Issuer::start(&[&key]).await;
        let discovery =
            json!({"issuer": issuer.url(), "jwks_uri": format!("{}/jwks.json", issuer.url())});
        *issuer.served.discovery.lock().unwrap() = Some(with(discovery, change));
        let error = issuer.signed_by(&issuer.validator(), &key).await;
        assert_eq!(error, Err(AuthError::KeysUnavailable), "{case}");
        assert_eq!(issuer.jwks_hits(), 0, "{case}");
    }

    let issuer = Issuer::start(&[&key]).await;
    let padding = "x".repeat(shared::auth::keys::MAX_DOCUMENT_BYTES);
    issuer.publish_jwks(json!({"keys": [key.jwk.clone()], "padding": padding}));
    let error = issuer.signed_by(&issuer.validator(), &key).await;
    assert_eq!(
        error,
        Err(AuthError::KeysUnavailable),
        "a JWKS over the size limit"
    );

    let issuer = Issuer::start(&[]).await;
    let error = issuer.signed_by(&issuer.validator(), &key).await;
    assert_eq!(
        error,
        Err(AuthError::KeysUnavailable),
        "a JWKS with no usable key"
    );
}

#[tokio::test]
async fn error_texts_never_contain_the_token() {
    let OneKey {
        key,
        issuer,
        validator,
    } = OneKey::start().await;
    let secretish = "eyJzZWNyZXQiOiJkby1ub3QtZWNobyJ9";
    let claims = with(issuer.claims(), json!({"note": secretish}));
    let tokens = [
        sign(&key, &with(claims.clone(), json!({"exp": now() - 3600}))),
        sign(&key, &with(claims.clone(), json!({"aud": secretish}))),
        sign(&key, &with(claims.clone(), json!({"iss": secretish}))),
        sign(&ec_key("ec-1"), &claims),
        sign(&ec_key(secretish), &claims),
        hand_built(
            &json!({"alg": secretish, "kid": "ec-1"}),
            &claims,
            secretish,
        ),
        format!("{secretish}.{secretish}.{secretish}"),
        format!("{secretish}{secretish}"),
    ];
    for token in &tokens {
        let error = check(&validator, token).await.unwrap_err();
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains(secretish), "{text}");
            assert!(!text.contains(token.as_str()), "{text}");
        }
    }
}
