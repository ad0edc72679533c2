//! The OpenAI provider's key read from Secrets Manager (moto: the one named by
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER`, or the venv's `moto_server` started here) and used
//! against a stand-in that requires it; a rotated key read again after one 401.

use std::{
    net::TcpListener as StdListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use openai_standin::{Options, Standin};
use shared::{
    adapters::{
        openai::OpenAiModel,
        secrets::{read_api_key, KeyCache, SecretError, SecretsManagerKeys},
    },
    domain::message::Message,
    domain::model::ModelRequest,
    ports::{Model, ModelError},
};
use url::Url;

/// Secrets Manager for a test: moto, stopped on drop when this test started it.
struct Moto {
    endpoint: String,
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
    async fn start() -> Self {
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER") {
            if !endpoint.is_empty() {
                return Self {
                    endpoint,
                    child: None,
                };
            }
        }
        let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
        assert!(
            binary.exists(),
            "moto_server is not installed at {}: run `make tools` first, or set \
             AWS_ENDPOINT_URL_SECRETS_MANAGER to a running moto",
            binary.display()
        );
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
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

    fn client(&self) -> aws_sdk_secretsmanager::Client {
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
    async fn create_secret(&self, label: &str, value: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("openai/{label}-{}-{nanos}", std::process::id());
        self.client()
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .expect("secret created");
        name
    }

    async fn rotate(&self, name: &str, value: &str) {
        self.client()
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .expect("secret rotated");
    }
}

fn hello() -> ModelRequest {
    ModelRequest {
        messages: vec![Message::user_text("hello")],
        ..ModelRequest::default()
    }
}

fn base(standin: &Standin) -> Url {
    Url::parse(&standin.base_url()).expect("url")
}

#[tokio::test]
async fn a_key_read_from_secrets_manager_is_accepted_by_a_provider_that_requires_it() {
    let moto = Moto::start().await;
    let client = moto.client();
    for (label, secret, key) in [
        ("raw", "sk-raw-key-31d4", "sk-raw-key-31d4"),
        (
            "json",
            r#"{"api_key": "sk-json-key-8c2e", "note": "x"}"#,
            "sk-json-key-8c2e",
        ),
    ] {
        let id = moto.create_secret(label, secret).await;
        let standin = Standin::start(Options {
            api_key: Some(key.into()),
            ..Options::default()
        })
        .await
        .expect("stand-in");
        let read = read_api_key(&client, &id).await.expect("read");
        assert_eq!(format!("{read:?}"), "ApiKey(***)");
        let model = OpenAiModel::new(
            base(&standin),
            "gpt-4o-mini",
            Some(read),
            Duration::from_secs(5),
        )
        .expect("model");
        let answer = model.converse(&hello()).await.expect("accepted");
        assert_eq!(answer.message.text(), "You said: hello", "{label}");
        assert_eq!(standin.stats().unauthorized(), 0);
    }
    let missing = read_api_key(&client, "openai/no-such-secret")
        .await
        .unwrap_err();
    assert!(matches!(missing, SecretError::Fetch(_)), "{missing:?}");
    let bad = moto.create_secret("bad", r#"{"key": "x"}"#).await;
    assert!(matches!(
        read_api_key(&client, &bad).await,
        Err(SecretError::BadJson)
    ));
}

#[tokio::test]
async fn a_rotated_key_is_read_again_once_after_the_provider_rejects_the_old_one() {
    let moto = Moto::start().await;
    let id = moto.create_secret("rotation", "sk-old-key-1111").await;
    let standin = Standin::start(Options {
        api_key: Some("sk-old-key-1111".into()),
        ..Options::default()
    })
    .await
    .expect("stand-in");
    let keys = Arc::new(KeyCache::new(
        Arc::new(SecretsManagerKeys::new(moto.client(), id.clone())),
        Duration::from_secs(300),
    ));
    let model = OpenAiModel::new(base(&standin), "gpt-4o-mini", None, Duration::from_secs(5))
        .expect("model")
        .with_key_cache(Arc::clone(&keys))
        .expect("loopback")
        .with_streaming(true);
    model.converse(&hello()).await.expect("old key");
    model.converse(&hello()).await.expect("cached key");
    assert_eq!(keys.fetches(), 1);

    moto.rotate(&id, "sk-new-key-2222").await;
    standin.set_api_key(Some("sk-new-key-2222"));
    model.converse(&hello()).await.expect("rotated key");
    assert_eq!(keys.fetches(), 2, "read again once");
    assert_eq!(standin.stats().unauthorized(), 1, "one rejected call");
    assert_eq!(standin.stats().chat_completions(), 4);

    standin.set_api_key(Some("sk-nobody-has-this"));
    let error = model.converse(&hello()).await.unwrap_err();
    assert!(matches!(error, ModelError::AccessDenied), "{error:?}");
    assert_eq!(keys.fetches(), 3, "one more read, then it gives up");
    assert_eq!(standin.stats().unauthorized(), 3);
}
