//! `web_search` end to end: the tool served through `handle`, a stand-in provider on 127.0.0.1
//! and the key in Secrets Manager (moto).

mod common;

use common::{call, tool, Moto, StandIn};
use serde_json::{json, Value};
use shared::tool_contract::handle;
use tool_web_search::{ProviderKind, LOCAL_NOTE};

#[tokio::test]
async fn tavily_results_are_normalized_and_the_key_from_secrets_manager_is_sent_once_cached() {
    let moto = Moto::start().await;
    let secret = moto.create_secret("tavily", "tvly-key-1").await;
    let standin = StandIn::start(Some("tvly-key-1")).await;
    let tool = tool(ProviderKind::Tavily, &standin.base, Some((&moto, &secret)));

    let (is_error, text) = call(&tool, json!({"query": "rust lambda", "max_results": 2})).await;
    assert!(!is_error, "{text}");
    let output: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        output,
        json!({
            "query": "rust lambda",
            "provider": "tavily",
            "results": [
                {
                    "title": "rust lambda (result 1)",
                    "url": "https://search-standin.example/result?q=rust+lambda&n=1",
                    "snippet": "Result 1 for \"rust lambda\" from the local search stand-in; not live.",
                    "published": "2026-11-01"
                },
                {
                    "title": "rust lambda (result 2)",
                    "url": "https://search-standin.example/result?q=rust+lambda&n=2",
                    "snippet": "Result 2 for \"rust lambda\" from the local search stand-in; not live."
                },
            ],
        })
    );
    let (is_error, _) = call(&tool, json!({"query": "again"})).await;
    assert!(!is_error);
    assert_eq!(
        standin.seen_keys(),
        vec![Some("tvly-key-1".into()), Some("tvly-key-1".into())]
    );
    assert_eq!(tool.key_fetches(), 1, "the key is cached within its TTL");
}

#[tokio::test]
async fn brave_results_are_normalized_and_a_json_secret_key_is_sent_as_the_subscription_token() {
    let moto = Moto::start().await;
    let secret = moto
        .create_secret("brave", r#"{"api_key": "brave-key-1"}"#)
        .await;
    let standin = StandIn::start(Some("brave-key-1")).await;
    let tool = tool(ProviderKind::Brave, &standin.base, Some((&moto, &secret)));

    let (is_error, text) = call(&tool, json!({"query": "a&b c"})).await;
    assert!(!is_error, "{text}");
    let output: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(output["provider"], "brave");
    let results = output["results"].as_array().unwrap();
    assert_eq!(results.len(), 5, "max_results defaults to 5");
    assert_eq!(
        results[0],
        json!({
            "title": "a&b c (result 1)",
            "url": "https://search-standin.example/result?q=a%26b+c&n=1",
            "snippet": "Result 1 for a&b c from the local search stand-in; not live.",
            "published": "2 days ago"
        })
    );
    assert_eq!(standin.seen_keys(), vec![Some("brave-key-1".into())]);
}

#[tokio::test]
async fn a_rotated_key_is_read_again_exactly_once_after_the_provider_rejects_the_old_one() {
    let moto = Moto::start().await;
    let secret = moto.create_secret("rotation", "old-key").await;
    let standin = StandIn::start(Some("old-key")).await;
    let tool = tool(ProviderKind::Tavily, &standin.base, Some((&moto, &secret)));
    assert!(!call(&tool, json!({"query": "before"})).await.0);
    assert_eq!(tool.key_fetches(), 1);

    moto.rotate(&secret, "new-key").await;
    standin.accept("new-key");
    let (is_error, text) = call(&tool, json!({"query": "after"})).await;
    assert!(!is_error, "{text}");
    assert_eq!(tool.key_fetches(), 2, "exactly one refetch");
    assert_eq!(
        standin.seen_keys(),
        vec![
            Some("old-key".into()),
            Some("old-key".into()),
            Some("new-key".into())
        ]
    );
    // The new key is cached: no further reads.
    assert!(!call(&tool, json!({"query": "later"})).await.0);
    assert_eq!(tool.key_fetches(), 2);
}

#[tokio::test]
async fn a_key_rejected_even_after_refetching_is_an_error_after_one_retry() {
    let moto = Moto::start().await;
    let secret = moto.create_secret("revoked", "revoked-key").await;
    let standin = StandIn::start(Some("some-other-key")).await;
    let tool = tool(ProviderKind::Brave, &standin.base, Some((&moto, &secret)));
    let (is_error, text) = call(&tool, json!({"query": "q"})).await;
    assert!(is_error);
    assert!(text.contains("rejected the API key"), "{text}");
    assert!(!text.contains("revoked-key"), "{text}");
    assert_eq!(standin.calls(), 2, "one try and one retry");
    assert_eq!(tool.key_fetches(), 2);
}

#[tokio::test]
async fn a_provider_500_is_an_error_result_without_the_key() {
    let moto = Moto::start().await;
    let secret = moto.create_secret("failing", "key-500").await;
    let standin = StandIn::start(Some("key-500")).await;
    standin.set_failing(true);
    let tool = tool(ProviderKind::Tavily, &standin.base, Some((&moto, &secret)));
    let (is_error, text) = call(&tool, json!({"query": "q"})).await;
    assert!(is_error);
    assert_eq!(
        text,
        "web_search failed: the search provider answered HTTP 500"
    );
    assert_eq!(standin.calls(), 1, "a 500 is not retried");
    assert_eq!(tool.key_fetches(), 1);
}

#[tokio::test]
async fn malformed_input_is_an_error_result_and_never_reaches_the_provider() {
    let standin = StandIn::start(None).await;
    let tool = tool(ProviderKind::Tavily, &standin.base, None);
    for (arguments, expected) in [
        (json!({}), "missing field `query`"),
        (json!({"query": 5}), "invalid type"),
        (
            json!({"query": "q", "max_results": 11}),
            "max_results must be 1 to 10",
        ),
        (
            json!({"query": "q", "max_results": 0}),
            "max_results must be 1 to 10",
        ),
        (json!({"query": "q", "max_results": 300}), "invalid value"),
        (json!({"query": "   "}), "query is empty"),
        (json!({"query": "q", "safe": true}), "unknown field `safe`"),
    ] {
        let (is_error, text) = call(&tool, arguments.clone()).await;
        assert!(is_error, "{arguments}");
        assert!(text.contains(expected), "{arguments}: {text}");
    }
    assert_eq!(standin.calls(), 0);
}

#[tokio::test]
async fn without_a_secret_the_tool_searches_keyless_and_says_results_are_not_live() {
    let standin = StandIn::start(None).await;
    let tool = tool(ProviderKind::Brave, &standin.base, None);
    let (is_error, text) = call(&tool, json!({"query": "local", "max_results": 1})).await;
    assert!(!is_error, "{text}");
    let output: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(output["note"], LOCAL_NOTE);
    assert_eq!(output["results"].as_array().unwrap().len(), 1);
    assert_eq!(standin.seen_keys(), vec![None]);
    assert_eq!(tool.key_fetches(), 0);
}

#[tokio::test]
async fn a_list_request_returns_web_search_with_its_schema() {
    let standin = StandIn::start(None).await;
    let tool = tool(ProviderKind::Tavily, &standin.base, None);
    let listed = handle(&tool, json!({"list": true})).await;
    assert_eq!(listed["tools"][0]["name"], "web_search");
    assert_eq!(
        listed["tools"][0]["inputSchema"]["required"],
        json!(["query"])
    );
}
