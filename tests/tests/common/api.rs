//! The API of the local stack (`cargo lambda watch`, at `E2E_API_URL`) as the end-to-end tests
//! call it.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;

/// Held by a test that reads the stand-ins' counters before and after its turn, so that the
/// tests of one file, which run in parallel against the same stand-ins, do not count each
/// other's calls.
pub static STANDIN_COUNTERS: Mutex<()> = Mutex::const_new(());

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the end-to-end tests with `make test`, which starts the local stack")
    })
}

pub fn http() -> reqwest::Client {
    // reqwest has rustls but no crypto provider of its own in this workspace: use ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        // The first request may wait for `cargo lambda watch` to compile the function.
        .timeout(Duration::from_secs(600))
        .build()
        .expect("HTTP client")
}

pub async fn call(
    method: reqwest::Method,
    path: &str,
    user: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http()
        .request(method, format!("{}{path}", env("E2E_API_URL")))
        .header("x-user-id", user);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A new session of `user`; its id.
pub async fn new_session(user: &str) -> String {
    let (status, created) = call(reqwest::Method::POST, "/sessions", user, None).await;
    assert_eq!(status, 201, "{created}");
    created["session_id"]
        .as_str()
        .expect("session id")
        .to_owned()
}

/// One turn: `message` sent to `session`.
pub async fn send_message(user: &str, session: &str, message: &str) -> (u16, Value) {
    call(
        reqwest::Method::POST,
        &format!("/sessions/{session}/messages"),
        user,
        Some(json!({ "message": message })),
    )
    .await
}
