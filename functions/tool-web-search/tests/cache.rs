//! The result cache, on the real table of the `make test` stack (DynamoDB Local): a repeated
//! search is answered from the table without a provider call or a key read, for the cache's
//! TTL only, and a broken cache never breaks a search.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use common::{result_cache, stack_env, tool, Moto, StandIn};
use serde_json::{json, Value};
use shared::{adapters::result_cache::ResultCache, tool_contract::handle};
use tool_web_search::{ProviderKind, WebSearch};

/// A successful call's output.
async fn call(tool: &WebSearch, arguments: Value) -> Value {
    let (is_error, text) = common::call(tool, arguments).await;
    assert!(!is_error, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// A query no other test (or earlier run on the same table) has searched for.
fn unique(label: &str) -> String {
    format!("{label} {}", uuid_like())
}

fn uuid_like() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

#[tokio::test]
async fn a_repeated_search_costs_no_provider_call_and_no_key_read() {
    let moto = Moto::start().await;
    let secret = moto.create_secret("cache", "cache-key").await;
    let standin = StandIn::start(Some("cache-key")).await;
    let tool = tool(ProviderKind::Tavily, &standin.base, Some((&moto, &secret)))
        .with_cache(result_cache(Duration::from_secs(3600)).await);
    let query = unique("Rust Lambda cold starts");

    let first = call(&tool, json!({"query": query, "max_results": 3})).await;
    assert_eq!(standin.calls(), 1);
    assert_eq!(first["results"].as_array().map(Vec::len), Some(3));
    assert!(first.get("cached_at").is_none(), "{first}");

    // The same search, in other case and spacing.
    let again = format!("  {}  ", query.to_uppercase().replace(' ', "   "));
    let second = call(&tool, json!({"query": again, "max_results": 3})).await;
    assert_eq!(standin.calls(), 1, "served from the cache");
    assert_eq!(tool.key_fetches(), 1, "no key needed for a cached answer");
    assert_eq!(second["results"], first["results"]);
    assert_eq!(
        second["query"],
        again.trim(),
        "the query as asked this time"
    );
    let cached_at = second["cached_at"].as_str().expect("cached_at");
    assert!(
        chrono::DateTime::parse_from_rfc3339(cached_at).is_ok(),
        "{cached_at}"
    );

    // Another result count is another search.
    call(&tool, json!({"query": query, "max_results": 2})).await;
    assert_eq!(standin.calls(), 2);
}

#[tokio::test]
async fn the_cached_item_is_keyed_by_a_hash_and_expires_with_the_table_ttl() {
    let standin = StandIn::start(None).await;
    let cache = result_cache(Duration::from_secs(600)).await;
    let tool = tool(ProviderKind::Brave, &standin.base, None).with_cache(cache.clone());
    let query = unique("alice@example.com question");
    call(&tool, json!({"query": query})).await;

    let key =
        cache.key(&json!({"provider": "brave", "query": query.to_lowercase(), "max_results": 5}));
    let item = common::dynamodb()
        .await
        .get_item()
        .table_name(stack_env("TABLE_NAME"))
        .key("PK", AttributeValue::S(key.clone()))
        .key("SK", AttributeValue::S("RESULT".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the result is stored under the hashed key");
    assert!(key.starts_with("CACHE#web_search#"), "{key}");
    assert!(
        !key.contains("alice"),
        "the key does not carry the query: {key}"
    );
    let mut attributes: Vec<&str> = item.keys().map(String::as_str).collect();
    attributes.sort_unstable();
    assert_eq!(
        attributes,
        ["PK", "SK", "expires_at", "stored_at", "tool", "value"],
        "no attribute holds the query (only the results may quote it)"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at: u64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    assert!(
        (now + 590..=now + 610).contains(&expires_at),
        "expires_at {expires_at} is now + the TTL"
    );
}

#[tokio::test]
async fn an_expired_result_is_not_served() {
    let standin = StandIn::start(None).await;
    let tool = tool(ProviderKind::Tavily, &standin.base, None)
        // Expiry is stored in whole seconds: a TTL of a few seconds keeps the second call
        // inside it on a loaded machine (with 1 s, a call 0.1 s later could already be past).
        .with_cache(result_cache(Duration::from_secs(4)).await);
    let query = unique("expiring");
    call(&tool, json!({"query": query})).await;
    call(&tool, json!({"query": query})).await;
    assert_eq!(standin.calls(), 1, "within the TTL: cached");
    // DynamoDB deletes expired items late (up to days): the read itself must refuse them.
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let fresh = call(&tool, json!({"query": query})).await;
    assert_eq!(standin.calls(), 2, "after the TTL: asked again");
    assert!(fresh.get("cached_at").is_none());
}

#[tokio::test]
async fn failed_searches_are_not_cached() {
    let standin = StandIn::start(None).await;
    let tool = tool(ProviderKind::Tavily, &standin.base, None)
        .with_cache(result_cache(Duration::from_secs(3600)).await);
    let query = unique("failing first");
    standin.set_failing(true);
    let response = handle(
        &tool,
        json!({"name": "web_search", "arguments": {"query": query}}),
    )
    .await;
    assert_eq!(response["isError"], true);
    standin.set_failing(false);
    let answer = call(&tool, json!({"query": query})).await;
    assert_eq!(
        standin.calls(),
        2,
        "the failure was not served from the cache"
    );
    assert!(answer["results"].as_array().is_some_and(|r| !r.is_empty()));
}

#[tokio::test]
async fn an_unreachable_cache_does_not_break_searches() {
    let standin = StandIn::start(None).await;
    // A DynamoDB endpoint where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let sdk = shared::aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build(),
    );
    let cache = ResultCache::new(client, "nowhere", "web_search", Duration::from_secs(60));
    let tool = tool(ProviderKind::Tavily, &standin.base, None).with_cache(cache);
    for _ in 0..2 {
        let answer = call(&tool, json!({"query": "still works"})).await;
        assert_eq!(answer["results"].as_array().map(Vec::len), Some(5));
    }
    assert_eq!(
        standin.calls(),
        2,
        "no cache, so every search asks the provider"
    );
}

#[tokio::test]
async fn a_cache_that_never_answers_is_a_miss_not_a_hung_search() {
    let standin = StandIn::start(None).await;
    // Accepts connections (the kernel does) but never answers a byte.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let sdk = shared::aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build(),
    );
    let cache = ResultCache::new(client, "silent", "web_search", Duration::from_secs(60));
    let tool = tool(ProviderKind::Tavily, &standin.base, None).with_cache(cache);
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        call(&tool, json!({"query": "silent cache"})),
    )
    .await
    .expect("the search answers although the cache never does");
    assert_eq!(answer["results"].as_array().map(Vec::len), Some(5));
    assert_eq!(standin.calls(), 1);
    drop(silent);
}
