//! Real parts for the tests: the stand-in search provider (`dev/search-standin`, on 127.0.0.1,
//! speaking the Tavily and Brave shapes, checking the key and counting calls), Secrets Manager as
//! `moto_server` (the one named by `AWS_ENDPOINT_URL_SECRETS_MANAGER`, or one started here) and,
//! for the result cache, the DynamoDB Local table that `make test` names (`TABLE_NAME`,
//! `AWS_ENDPOINT_URL_DYNAMODB`).
#![allow(dead_code)]

use std::{
    io::Write,
    net::TcpListener as StdListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use serde_json::{json, Value};
use shared::{adapters::result_cache::ResultCache, tool_contract::handle};
use tool_web_search::{KeyCache, ProviderKind, SearchConfig, SecretsManagerKeys, WebSearch};
use url::Url;

/// The stand-in search provider of `dev/search-standin`, on 127.0.0.1, stopped on drop.
pub struct StandIn {
    /// Its base URL.
    pub base: Url,
    running: search_standin::Running,
}

impl StandIn {
    /// Starts one accepting `accepted` (or anything when `None`).
    pub async fn start(accepted: Option<&str>) -> Self {
        let running = search_standin::start(accepted).await.expect("stand-in");
        Self {
            base: running.base.clone(),
            running,
        }
    }

    /// Accepts only `key` from now on (the old one was rotated out).
    pub fn accept(&self, key: &str) {
        self.running.state.accept(key);
    }

    /// Search requests received.
    pub fn calls(&self) -> u64 {
        self.running.state.searches()
    }

    /// The keys presented, in order.
    pub fn seen_keys(&self) -> Vec<Option<String>> {
        self.running.state.seen_keys()
    }

    /// Makes every search fail with HTTP 500 (or work again).
    pub fn set_failing(&self, fail: bool) {
        self.running.state.set_failing(fail);
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
    /// The moto named by `AWS_ENDPOINT_URL_SECRETS_MANAGER`, or a new `moto_server` of the venv.
    pub async fn start() -> Self {
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER") {
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
             or set AWS_ENDPOINT_URL_SECRETS_MANAGER to a running moto",
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

/// Calls `web_search` through the tool contract: whether the result is an error, and its text.
pub async fn call(tool: &WebSearch, arguments: Value) -> (bool, String) {
    let response = handle(tool, json!({"name": "web_search", "arguments": arguments})).await;
    let text = response["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (response["isError"] == true, text)
}

/// A tool for `provider` at `base`, keyed by `secret` in `moto` (or keyless when `None`).
pub fn tool(provider: ProviderKind, base: &Url, secret: Option<(&Moto, &str)>) -> WebSearch {
    let config = SearchConfig {
        provider,
        base_url: base.clone(),
        secret_id: secret.map(|(_, id)| id.to_owned()),
        secret_ttl: Duration::from_secs(300),
        timeout: Duration::from_secs(5),
        cache: None,
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

/// A variable `make test` sets; the tests that need it fail and say so when it is not.
pub fn stack_env(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("{name} is not set: run these tests with `make test`, which starts DynamoDB Local and creates the table")
    })
}

/// A DynamoDB client of the `make test` stack (DynamoDB Local at `AWS_ENDPOINT_URL_DYNAMODB`,
/// with the stack's credentials: DynamoDB Local keeps one database per access key and region).
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    stack_env("AWS_ENDPOINT_URL_DYNAMODB");
    aws_sdk_dynamodb::Client::new(&shared::aws::sdk_config().await)
}

/// The web search result cache in the `make test` table, keeping results for `ttl`.
pub async fn result_cache(ttl: Duration) -> ResultCache {
    ResultCache::new(dynamodb().await, stack_env("TABLE_NAME"), "web_search", ttl)
}
