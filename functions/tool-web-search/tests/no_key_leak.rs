//! The key never leaks: not in tool results, error messages, `Debug` output or any log line
//! (ours and the SDK's, at TRACE). Alone in its test binary so that the thread-local `tracing`
//! subscriber sees every callsite (parallel tests in one process race on callsite interest).

mod common;

use common::{call, tool, LogBuffer, Moto, StandIn};
use serde_json::json;
use tool_web_search::ProviderKind;

#[tokio::test]
async fn the_key_appears_in_no_output_error_debug_output_or_log_line() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (old, new) = ("sk-OLD-6f1d2c", "sk-NEW-9a8b7c");
    let moto = Moto::start().await;
    let secret = moto.create_secret("leak", old).await;
    let standin = StandIn::start(Some(old)).await;
    let tool = tool(ProviderKind::Tavily, &standin.base, Some((&moto, &secret)));
    let mut texts = Vec::new();
    texts.push(call(&tool, json!({"query": "ok"})).await.1);
    moto.rotate(&secret, new).await;
    standin.accept(new);
    texts.push(call(&tool, json!({"query": "rotated"})).await.1);
    standin.accept("nobody-has-this");
    texts.push(call(&tool, json!({"query": "rejected"})).await.1);
    standin.set_failing(true);
    texts.push(call(&tool, json!({"query": "failing"})).await.1);
    texts.push(format!("{tool:?}"));

    let logs = logs.text();
    assert!(logs.contains("rejected the cached API key"), "logs: {logs}");
    assert!(logs.contains("web search failed"), "logs: {logs}");
    assert!(logs.contains("read the API key secret"), "logs: {logs}");
    assert!(
        logs.contains("GetSecretValue"),
        "SDK traces are captured too"
    );
    for key in [old, new] {
        assert!(!logs.contains(key), "the key {key} is in the logs");
        for text in &texts {
            assert!(!text.contains(key), "the key {key} is in {text}");
        }
    }
    assert_eq!(
        standin
            .seen_keys()
            .iter()
            .flatten()
            .filter(|k| *k == new)
            .count(),
        4,
        "the provider did receive the new key (rotated, rejected + retried, failing)"
    );
}
