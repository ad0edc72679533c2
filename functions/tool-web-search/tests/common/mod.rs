//! Real parts for the tests: a stand-in search provider (a hyper server on 127.0.0.1 speaking
//! the Tavily and Brave shapes, checking the key and counting calls) and Secrets Manager as
//! `moto_server` (the one named by `AWS_ENDPOINT_URL_SECRETSMANAGER`, or one started here).
#![allow(dead_code)]

use std::{
    convert::Infallible,
    io::Write,
    net::TcpListener as StdListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::{net::TcpListener, task::JoinHandle};
use tool_web_search::{KeyCache, ProviderKind, SearchConfig, SecretsManagerKeys, WebSearch};
use url::Url;

/// What the stand-in provider knows.
#[derive(Default)]
pub struct StandInState {
    /// The key it accepts; `None` accepts anything, keyless included.
    pub accepted: Mutex<Option<String>>,
    /// Requests answered.
    pub calls: AtomicUsize,
    /// The key of each request, in order.
    pub seen_keys: Mutex<Vec<Option<String>>>,
    /// Answer every request with HTTP 500.
    pub fail: AtomicBool,
}

/// A stand-in search provider on 127.0.0.1.
pub struct StandIn {
    /// Its base URL.
    pub base: Url,
    /// Its state.
    pub state: Arc<StandInState>,
    task: JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    /// Starts one accepting `accepted` (or anything when `None`).
    pub async fn start(accepted: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let state = Arc::new(StandInState {
            accepted: Mutex::new(accepted.map(str::to_owned)),
            ..StandInState::default()
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(state.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { base, state, task }
    }

    /// Accepts only `key` from now on (the old one was rotated out).
    pub fn accept(&self, key: &str) {
        *self.state.accepted.lock().unwrap() = Some(key.to_owned());
    }

    /// Requests answered.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The keys presented, in order.
    pub fn seen_keys(&self) -> Vec<Option<String>> {
        self.state.seen_keys.lock().unwrap().clone()
    }
}

fn respond(status: u16, body: Value) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap())
}

async fn answer(
    state: Arc<StandInState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let headers = request.headers().clone();
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| {
            headers
                .get("x-subscription-token")
                .and_then(|v| v.to_str().ok())
        })
        .map(str::to_owned);
    state.seen_keys.lock().unwrap().push(key.clone());
    if state.fail.load(Ordering::SeqCst) {
        return respond(500, json!({"error": "internal error"}));
    }
    let accepted = state.accepted.lock().unwrap().clone();
    if accepted.is_some() && key != accepted {
        return respond(
            401,
            json!({"detail": {"error": "Unauthorized: invalid API key"}}),
        );
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    match (method.as_str(), path.as_str()) {
        ("POST", "/search") => {
            let body: Value = serde_json::from_slice(&body).unwrap();
            let n = body["max_results"].as_u64().unwrap();
            let results: Vec<Value> = (1..=n)
                .map(|i| {
                    let mut item = json!({
                        "title": format!("T{i}"),
                        "url": format!("https://t{i}.example/"),
                        "content": format!("{} #{i}", body["query"].as_str().unwrap()),
                        "score": 0.5,
                    });
                    if i == 1 {
                        item["published_date"] = json!("2026-11-01");
                    }
                    item
                })
                .collect();
            respond(200, json!({"query": body["query"], "results": results}))
        }
        ("GET", "/res/v1/web/search") => {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let get = |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap()
            };
            let (q, n) = (get("q"), get("count").parse::<u64>().unwrap());
            let results: Vec<Value> = (1..=n)
                .map(|i| {
                    json!({
                        "title": format!("<strong>B</strong>{i}"),
                        "url": format!("https://b{i}.example/"),
                        "description": format!("<strong>{q}</strong> #{i}"),
                        "age": "2 days ago",
                    })
                })
                .collect();
            respond(200, json!({"type": "search", "web": {"results": results}}))
        }
        _ => respond(404, json!({"error": "not found"})),
    }
}

/// Secrets Manager for a test: moto, stopped on drop when this test started it.
pub struct Moto {
    /// Its endpoint.
    pub endpoint: String,
    child: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // Child::kill signals exactly this child's PID.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Moto {
    /// The moto named by `AWS_ENDPOINT_URL_SECRETSMANAGER`, or a new `moto_server` of the venv.
    pub async fn start() -> Self {
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_SECRETSMANAGER") {
            if !endpoint.is_empty() {
                return Self {
                    endpoint,
                    child: None,
                };
            }
        }
        let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
        assert!(
            binary.exists(),
            "moto_server is not installed at {}: run `make tools` (or `make test`) first, \
             or set AWS_ENDPOINT_URL_SECRETSMANAGER to a running moto",
            binary.display()
        );
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let moto = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer in 30s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    /// A Secrets Manager client of this moto, with dummy credentials.
    pub fn client(&self) -> aws_sdk_secretsmanager::Client {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&self.endpoint)
            .http_client(http)
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }

    /// Creates a uniquely named secret holding `value`; returns its name.
    pub async fn create_secret(&self, label: &str, value: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("web-search/{label}-{}-{nanos}", std::process::id());
        self.client()
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
        name
    }

    /// Puts a new current value into `name` (a rotation).
    pub async fn rotate(&self, name: &str, value: &str) {
        self.client()
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
}

/// A tool for `provider` at `base`, keyed by `secret` in `moto` (or keyless when `None`).
pub fn tool(provider: ProviderKind, base: &Url, secret: Option<(&Moto, &str)>) -> WebSearch {
    let config = SearchConfig {
        provider,
        base_url: base.clone(),
        secret_id: secret.map(|(_, id)| id.to_owned()),
        secret_ttl: Duration::from_secs(300),
        timeout: Duration::from_secs(5),
    };
    let keys = secret.map(|(moto, id)| {
        KeyCache::new(
            Arc::new(SecretsManagerKeys::new(moto.client(), id)),
            config.secret_ttl,
        )
    });
    WebSearch::new(WebSearch::provider_for(&config).unwrap(), keys)
}

/// A log buffer for a `tracing` subscriber.
#[derive(Clone, Default)]
pub struct LogBuffer(pub Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
