//! The streaming handler in process: the real `stream::handle`, the Bedrock adapter's
//! ConverseStream over loopback to the stand-in, the in-memory store. What a client reading the
//! events would see when the model fails before or during its answer.

mod common;

use std::pin::Pin;

use common::{api, Api};
use http_body::Body as _;
use lambda_http::{http::Request as HttpRequest, Body, Request};
use serde_json::{json, Value};
use session_handler::stream::{handle, StreamBody};

/// What the streaming handler answered: status, content type, events (name, data).
struct Streamed {
    status: u16,
    content_type: String,
    events: Vec<(String, Value)>,
}

impl Streamed {
    fn names(&self) -> Vec<&str> {
        self.events.iter().map(|(name, _)| name.as_str()).collect()
    }

    fn last(&self) -> &Value {
        &self.events.last().expect("an event").1
    }
}

async fn stream(api: &Api, user: &str, session: &str, message: &str) -> Streamed {
    stream_with(api, session, message, &[("x-user-id", user)]).await
}

async fn stream_with(
    api: &Api,
    session: &str,
    message: &str,
    headers: &[(&str, &str)],
) -> Streamed {
    // A streamed turn's task outlives the request: the handler takes an app that lives as
    // long as the process, as the binary's does.
    let app: &'static _ = Box::leak(Box::new(api.app.clone()));
    let mut request = HttpRequest::builder()
        .method("POST")
        .uri(format!("/sessions/{session}/messages"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request: Request = request
        .body(Body::Text(json!({ "message": message }).to_string()))
        .expect("request builds");
    let response = handle(app, request).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut body: StreamBody = response.into_body();
    let mut text = String::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let data = frame.expect("infallible").into_data().expect("data");
        text.push_str(std::str::from_utf8(&data).expect("UTF-8"));
    }
    let events = if content_type.starts_with("text/event-stream") {
        text.split_terminator("\n\n")
            .map(|block| {
                let name = block
                    .lines()
                    .find_map(|l| l.strip_prefix("event: "))
                    .expect("a named event");
                let data = block
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("data");
                (name.to_owned(), serde_json::from_str(data).expect("JSON"))
            })
            .collect()
    } else {
        vec![(
            "body".to_owned(),
            serde_json::from_str(&text).expect("JSON"),
        )]
    };
    Streamed {
        status,
        content_type,
        events,
    }
}

#[tokio::test]
async fn a_model_refusing_the_first_attempt_is_retried_and_the_client_sees_one_answer() {
    let api = api().await;
    let session = api.create_session("ann").await;
    let turn = stream(
        &api,
        "ann",
        &session,
        "[[standin:fail-first=1=ThrottlingException]] What is 6*7?",
    )
    .await;
    assert_eq!(turn.status, 200);
    assert_eq!(turn.names().last(), Some(&"done"), "{:?}", turn.names());
    assert!(turn.last()["answer"]
        .as_str()
        .unwrap_or_default()
        .contains("42"));
    // Each step's throttled first attempt (before any text) was retried: the client saw one
    // answer per step, not the refusals.
    assert_eq!(
        api.standin.stats().converse_stream(),
        4,
        "2 steps, each refused once"
    );
    assert_eq!(
        api.standin.stats().converse(),
        0,
        "streamed turns use ConverseStream"
    );
    let starts = turn.names().iter().filter(|n| **n == "tool_start").count();
    assert_eq!(starts, 1);
}

#[tokio::test]
async fn a_stream_that_fails_after_some_text_ends_with_an_error_event_and_stores_nothing() {
    let api = api().await;
    let session = api.create_session("ann").await;
    let turn = stream(
        &api,
        "ann",
        &session,
        "[[standin:fail-in-stream=throttlingException]] hello there",
    )
    .await;
    assert_eq!(turn.status, 200, "the stream had started");
    assert_eq!(turn.names(), ["text", "error"], "{:?}", turn.events);
    let problem = turn.last();
    assert_eq!(problem["status"], 503, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("model-throttled")),
        "{problem}"
    );
    // Part of the answer was seen: no second attempt followed it.
    assert_eq!(api.standin.stats().converse_stream(), 1);
    // A failure before any step stores nothing: the client can send it again.
    let reply = api
        .call("GET", &format!("/sessions/{session}"), "ann", None, &[])
        .await;
    assert_eq!(reply.body["turns"], 0, "{:?}", reply.body);
}

#[tokio::test]
async fn a_refusal_before_the_stream_is_a_plain_problem_response() {
    let api = api().await;
    let session = api.create_session("ann").await;
    let foreign = stream(&api, "bob", &session, "hi").await;
    assert_eq!(foreign.status, 404);
    assert!(foreign.content_type.starts_with("application/problem+json"));
    assert_eq!(foreign.last()["status"], 404);
    assert_eq!(api.standin.stats().converse_stream(), 0, "no model call");
}

/// A sink that keeps the text it is given.
#[derive(Default)]
struct Collect(std::sync::Mutex<Vec<String>>);

impl shared::ports::TurnSink for Collect {
    fn text(&self, delta: &str) {
        self.0.lock().unwrap().push(delta.to_owned());
    }
}

#[tokio::test]
async fn converse_stream_assembles_what_converse_answers() {
    use shared::domain::{
        message::Message,
        model::{InferenceConfig, ModelRequest, ToolSpec},
    };
    let standin = bedrock_standin::Standin::start(bedrock_standin::Options::default())
        .await
        .expect("stand-in");
    let sdk = shared::aws::sdk_config().await;
    let model = common::bedrock_model(&sdk, &standin, common::MODEL_ID);
    let thinking = common::bedrock_model(
        &sdk,
        &standin,
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    );
    let ask = |text: &str| ModelRequest {
        system: Some("You are a test agent.".into()),
        messages: vec![Message::user_text(text)],
        tools: vec![ToolSpec {
            name: "calculator".into(),
            description: "Arithmetic".into(),
            input_schema: json!({"type": "object"}),
        }],
        inference: InferenceConfig {
            max_tokens: Some(2048),
            ..InferenceConfig::default()
        },
        ..ModelRequest::default()
    };
    let mut with_thinking = ask("What is 6*7?");
    with_thinking.additional_fields =
        Some(json!({"thinking": {"type": "enabled", "budget_tokens": 1024}}));
    let cases = [
        (&model, ask("What is 12*(3+4)?")),
        (&model, ask("Just chatting about the weather")),
        (
            &model,
            ask("[[standin:max-tokens]] a long answer cut short"),
        ),
        (&thinking, with_thinking),
    ];
    for (model, request) in cases {
        let buffered = model.converse(&request).await.expect("converse");
        let sink = Collect::default();
        let streamed = model
            .converse_stream(&request, &sink)
            .await
            .expect("converse stream");
        assert_eq!(streamed.message, buffered.message, "{:?}", request.messages);
        assert_eq!(streamed.stop_reason, buffered.stop_reason);
        assert_eq!(streamed.usage, buffered.usage);
        assert_eq!(sink.0.lock().unwrap().concat(), buffered.message.text());
        if request.additional_fields.is_some() {
            assert!(
                matches!(
                    &streamed.message.content[0],
                    shared::domain::message::ContentBlock::Reasoning {
                        signature: Some(_),
                        ..
                    }
                ),
                "signed reasoning streamed: {:?}",
                streamed.message
            );
        }
    }
    assert_eq!(standin.stats().converse_stream(), 4);
}

#[tokio::test]
async fn in_jwt_mode_the_stream_validates_the_bearer_token_itself() {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use shared::auth::{JwtConfig, JwtValidator, DEFAULT_LEEWAY};
    let mut api = api().await;
    let session = api.create_session("ann").await;
    api.app.auth_mode = shared::config::AuthMode::Jwt;
    // An issuer nothing listens on: a token that needs its keys finds them unavailable.
    api.app.jwt = Some(
        JwtValidator::new(JwtConfig {
            issuer: "http://127.0.0.1:9/issuer".into(),
            audience: vec!["console".into()],
            leeway: DEFAULT_LEEWAY,
        })
        .expect("validator"),
    );
    let token = |header: Value| {
        let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let claims = json!({"sub": "ann", "iss": "http://127.0.0.1:9/issuer", "aud": "console", "exp": 4_102_444_800u64});
        format!(
            "{}.{}.{}",
            part(&header),
            part(&claims),
            URL_SAFE_NO_PAD.encode(b"sig")
        )
    };
    let none = format!("Bearer {}", token(json!({"alg": "none", "typ": "JWT"})));
    let hmac = format!("Bearer {}", token(json!({"alg": "HS256", "kid": "k1"})));
    let rs256 = format!("Bearer {}", token(json!({"alg": "RS256", "kid": "k1"})));
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);
    let cases: [Case; 6] = [
        ("no token", vec![], 401),
        (
            "an x-user-id is not an identity here",
            vec![("x-user-id", "ann")],
            401,
        ),
        (
            "not a JWT",
            vec![("authorization", "Bearer not-a-jwt")],
            401,
        ),
        ("alg none", vec![("authorization", none.as_str())], 401),
        ("HMAC", vec![("authorization", hmac.as_str())], 401),
        (
            "keys unavailable",
            vec![("authorization", rs256.as_str())],
            503,
        ),
    ];
    for (what, headers, status) in cases {
        let answer = stream_with(&api, &session, "hi", &headers).await;
        assert_eq!(answer.status, status, "{what}: {:?}", answer.events);
        assert!(
            answer.content_type.starts_with("application/problem+json"),
            "{what}"
        );
        let detail = answer.last()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            !detail.contains("c2ln") && !detail.contains("eyJ"),
            "{what}: {detail}"
        );
    }
    assert_eq!(api.standin.stats().converse_stream(), 0, "no turn ran");
}

/// An OpenID issuer on 127.0.0.1 with one ES256 key generated here; signs tokens for a `sub`.
struct Issuer {
    url: String,
    key: jsonwebtoken::EncodingKey,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Issuer {
    async fn start() -> Self {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        use p256::{elliptic_curve::Generate, pkcs8::EncodePrivateKey};
        let private =
            p256::ecdsa::SigningKey::try_generate_from_rng(&mut getrandom::SysRng).unwrap();
        let point = private.verifying_key().to_sec1_point(false);
        let jwks = json!({"keys": [{
            "kty": "EC", "kid": "k1", "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        }]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks.json")});
        let handle = move |request: hyper::Request<hyper::body::Incoming>| {
            let body = match request.uri().path() {
                "/.well-known/openid-configuration" => discovery.to_string(),
                _ => jwks.to_string(),
            };
            async move {
                Ok::<_, std::convert::Infallible>(
                    hyper::Response::builder()
                        .header("content-type", "application/json")
                        .body(bedrock_standin::server::Body::full(body))
                        .unwrap(),
                )
            }
        };
        let server = tokio::spawn(async move {
            let _ = bedrock_standin::server::accept_loop(listener, handle).await;
        });
        Self {
            url,
            key: jsonwebtoken::EncodingKey::from_ec_der(private.to_pkcs8_der().unwrap().as_bytes()),
            server,
        }
    }

    fn token(&self, sub: &str, audience: &str) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".into());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims =
            json!({"sub": sub, "iss": self.url, "aud": audience, "iat": now, "exp": now + 300});
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

#[tokio::test]
async fn a_valid_token_streams_the_turn_of_its_subject_and_no_one_else_s() {
    use shared::auth::{JwtConfig, JwtValidator, DEFAULT_LEEWAY};
    let issuer = Issuer::start().await;
    let mut api = api().await;
    api.app.auth_mode = shared::config::AuthMode::Jwt;
    api.app.jwt = Some(
        JwtValidator::new(JwtConfig {
            issuer: issuer.url.clone(),
            audience: vec!["console".into()],
            leeway: DEFAULT_LEEWAY,
        })
        .expect("validator"),
    );
    let session = api
        .app
        .agent
        .create_session("ann")
        .await
        .expect("a session of ann")
        .session_id;
    let bearer = |sub: &str, audience: &str| format!("Bearer {}", issuer.token(sub, audience));

    let ann = bearer("ann", "console");
    let turn = stream_with(&api, &session, "What is 6*7?", &[("authorization", &ann)]).await;
    assert_eq!(turn.status, 200, "{:?}", turn.events);
    assert_eq!(turn.names().last(), Some(&"done"));
    assert!(turn.last()["answer"]
        .as_str()
        .unwrap_or_default()
        .contains("42"));

    // Another subject's valid token does not reach ann's session; a token for another
    // audience is refused; the x-user-id header names no one in jwt mode.
    let bob = bearer("bob", "console");
    let foreign = stream_with(&api, &session, "hi", &[("authorization", &bob)]).await;
    assert_eq!(foreign.status, 404, "{:?}", foreign.events);
    let elsewhere = bearer("ann", "another-app");
    let wrong = stream_with(&api, &session, "hi", &[("authorization", &elsewhere)]).await;
    assert_eq!(wrong.status, 401, "{:?}", wrong.events);
    assert!(wrong.last()["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("audience"));
    let header = stream_with(&api, &session, "hi", &[("x-user-id", "ann")]).await;
    assert_eq!(header.status, 401);
    assert_eq!(
        api.standin.stats().converse_stream(),
        2,
        "only ann's turn ran"
    );
}
