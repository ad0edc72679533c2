//! End to end, as a user runs it: `cargo lambda watch` serves the session handler (built from
//! this workspace), which talks to DynamoDB Local and the Bedrock stand-in over real
//! connections. The turn is read back through the API and straight from the table.
//!
//! Needs `E2E_API_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` and
//! `TABLE_NAME`, which `make test` sets after starting everything; without them the tests fail
//! and say so.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::api::{call, env, http, new_session, send_message, STANDIN_COUNTERS};
use serde_json::Value;

async fn model_calls() -> u64 {
    let stats: Value = http()
        .get(format!(
            "{}/__stats",
            env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
        ))
        .send()
        .await
        .expect("stand-in stats")
        .json()
        .await
        .expect("stats JSON");
    // The memory extractor calls the stand-in too, on its own model id (scripts/lib.sh), at
    // moments of its own: its calls are not the turn's.
    let extraction = stats["models"][env("E2E_EXTRACTION_MODEL_ID")]
        .as_u64()
        .unwrap_or_default();
    stats["converse"].as_u64().unwrap_or_default() - extraction
}

async fn dynamodb() -> aws_sdk_dynamodb::Client {
    // The same credentials and region as the function: DynamoDB Local keeps one database per
    // access key and region.
    let sdk = shared::aws::sdk_config().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(env("AWS_ENDPOINT_URL_DYNAMODB"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[tokio::test]
async fn a_tool_using_turn_through_cargo_lambda_watch_is_answered_and_stored() {
    let _counting = STANDIN_COUNTERS.lock().await;
    let user = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let session = new_session(&user).await;
    let calls_before = model_calls().await;
    let (status, turn) = send_message(&user, &session, "What is 12*(3+4)?").await;
    assert_eq!(status, 200, "{turn}");
    assert!(
        turn["answer"].as_str().unwrap_or_default().contains("84"),
        "{turn}"
    );
    assert_eq!(turn["stop_reason"], "end_turn");
    assert_eq!(turn["steps"], 2);
    assert_eq!(
        model_calls().await - calls_before,
        2,
        "two Converse calls reached the stand-in"
    );

    // Through the API.
    let (status, history) = call(
        reqwest::Method::GET,
        &format!("/sessions/{session}"),
        &user,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let messages = history["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 4, "{history}");
    assert_eq!(messages[1]["content"][1]["type"], "tool_use");
    assert_eq!(messages[1]["content"][1]["name"], "calculator");
    assert_eq!(messages[2]["content"][0]["type"], "tool_result");
    let (status, trace) = call(
        reqwest::Method::GET,
        &format!("/sessions/{session}/trace"),
        &user,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        trace["turns"][0]["steps"].as_array().map(Vec::len),
        Some(3),
        "{trace}"
    );

    // Straight from the table.
    let items = dynamodb()
        .await
        .query()
        .table_name(env("TABLE_NAME"))
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(format!("USER#{user}#SESSION#{session}")),
        )
        .send()
        .await
        .expect("query the table");
    let keys: Vec<String> = items
        .items()
        .iter()
        .filter_map(|item| item.get("SK").and_then(|sk| sk.as_s().ok()).cloned())
        .collect();
    assert_eq!(
        keys,
        [
            "MSG#0000000001",
            "MSG#0000000002",
            "MSG#0000000003",
            "MSG#0000000004",
            "SESSION",
            "TRACE#0000000001"
        ]
    );
    let tool_use = items.items()[1]
        .get("content")
        .and_then(|content| content.as_s().ok())
        .cloned()
        .unwrap_or_default();
    assert!(
        tool_use.contains("calculator") && tool_use.contains("12*(3+4)"),
        "{tool_use}"
    );

    // Another user sees nothing of it.
    let (status, _) = call(
        reqwest::Method::GET,
        &format!("/sessions/{session}"),
        "someone-else",
        None,
    )
    .await;
    assert_eq!(status, 404);
}

async fn searches_made() -> u64 {
    let stats: Value = http()
        .get(format!("{}/__stats", env("SEARCH_STANDIN_URL")))
        .send()
        .await
        .expect("search stand-in stats")
        .json()
        .await
        .expect("stats JSON");
    stats["searches"].as_u64().expect("a search count")
}

/// Every item of the table, printed.
async fn whole_table() -> String {
    let client = dynamodb().await;
    let mut pages = client
        .scan()
        .table_name(env("TABLE_NAME"))
        .into_paginator()
        .items()
        .send();
    let mut text = String::new();
    while let Some(item) = pages.next().await {
        text.push_str(&format!("{:?}\n", item.expect("scan the table")));
    }
    text
}

#[tokio::test]
async fn web_search_runs_through_its_executor_with_the_key_from_secrets_manager_then_from_the_cache(
) {
    let _counting = STANDIN_COUNTERS.lock().await;
    let user = format!("e2e-search-{}", uuid::Uuid::new_v4().simple());
    let (status, tools) = call(reqwest::Method::GET, "/tools", &user, None).await;
    assert_eq!(status, 200, "{tools}");
    assert!(
        tools.to_string().contains("\"web_search\""),
        "the executor's tool is listed: {tools}"
    );

    // A query nobody searched for yet, so the first answer cannot come from the cache.
    let topic = format!("serverless agents {}", uuid::Uuid::new_v4().simple());
    let message = format!("Search for {topic}");
    let mut turns = Vec::new();
    for round in 0..2 {
        let session = new_session(&user).await;
        let searches_before = searches_made().await;
        let (status, turn) = send_message(&user, &session, &message).await;
        assert_eq!(status, 200, "{turn}");
        let answer = turn["answer"].as_str().unwrap_or_default();
        assert!(
            answer.contains("The web_search tool says")
                && answer.contains(&format!("{topic} (result 1)")),
            "the answer carries the search result: {turn}"
        );
        assert_eq!(turn["steps"], 2, "{turn}");
        let searches = searches_made().await - searches_before;
        // The ledger prices what the executor reported: a query to the provider the first
        // time, none from the cache; and the executor's Lambda time either way.
        let items = turn["cost"]["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let of_kind = |kind: &str| items.iter().filter(|i| i["kind"] == kind).count();
        assert!(
            items
                .iter()
                .any(|i| i["kind"] == "lambda" && i["detail"] == "tool-web-search"),
            "{turn}"
        );
        if round == 0 {
            assert_eq!(searches, 1, "the first search reaches the provider once");
            assert!(!answer.contains("cached_at"), "{answer}");
            let search = items
                .iter()
                .find(|i| i["kind"] == "search")
                .expect("a search item");
            assert_eq!(search["detail"], "tavily");
            assert_eq!(search["quantity"], 1.0);
            assert!(
                (search["usd"].as_f64().unwrap() - 0.008).abs() < 1e-12,
                "{search}"
            );
        } else {
            assert_eq!(of_kind("search"), 0, "a cache hit is no query: {turn}");
            assert_eq!(
                searches, 0,
                "the same search again is served from the cache"
            );
            assert!(answer.contains("cached_at"), "{answer}");
        }
        let (_, history) = call(
            reqwest::Method::GET,
            &format!("/sessions/{session}"),
            &user,
            None,
        )
        .await;
        let (_, trace) = call(
            reqwest::Method::GET,
            &format!("/sessions/{session}/trace"),
            &user,
            None,
        )
        .await;
        turns.push(format!("{turn}\n{history}\n{trace}"));
    }

    // The key: the search stand-in accepted it (it accepts nothing else), so the executor read
    // it from moto; it is in nothing the agent wrote or answered.
    let key = env("E2E_SEARCH_API_KEY");
    assert!(key.len() >= 16, "a real key value to look for");
    let table = whole_table().await;
    assert!(
        table.contains("CACHE#web_search#"),
        "the cached result is in the table"
    );
    let logs = std::fs::read_to_string(env("E2E_WATCH_LOG")).expect("the functions' log");
    assert!(
        logs.contains("web search done"),
        "the executor's log lines are in the log searched"
    );
    for (what, text) in [("the table", &table), ("the functions' log", &logs)]
        .into_iter()
        .chain(turns.iter().map(|t| ("an API answer", t)))
    {
        assert!(!text.contains(&key), "the search API key is in {what}");
    }
}

#[tokio::test]
async fn a_turns_log_lines_name_the_request_session_turn_and_user_hash_never_the_user() {
    // Its model calls would count in the other tests' stand-in counters.
    let _counting = STANDIN_COUNTERS.lock().await;
    let user = format!("e2e-logs-{}@example.com", uuid::Uuid::new_v4().simple());
    let session = new_session(&user).await;
    let marker = format!("private-{}", uuid::Uuid::new_v4().simple());
    let message = format!("What is 6*(3+4)? My note: {marker}");
    let (status, turn) = send_message(&user, &session, &message).await;
    assert_eq!(status, 200, "{turn}");
    let trace_id = turn["trace_id"].as_str().expect("a trace id").to_owned();
    let logs = std::fs::read_to_string(env("E2E_WATCH_LOG")).expect("the functions' log");
    let hash = shared::telemetry::user_hash(&user);

    let lines: Vec<Value> = logs
        .lines()
        .filter(|line| line.contains(&trace_id))
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let tool_line = lines
        .iter()
        .find(|line| line["fields"]["message"] == "tool call")
        .unwrap_or_else(|| panic!("the calculator call's line for {trace_id}"));
    assert_eq!(tool_line["fields"]["step"], 1, "{tool_line}");
    let spans = tool_line["spans"].to_string();
    for (what, expected) in [
        ("the request id", "requestId"),
        ("the user hash", hash.as_str()),
        ("the session id", session.as_str()),
        ("the turn", "\"turn\":1"),
    ] {
        assert!(spans.contains(expected), "{what} missing in {spans}");
    }
    // The turn's EMF record: one JSON line with the trace id, no user or session.
    let emf = lines
        .iter()
        .find(|line| line.get("_aws").is_some())
        .expect("the turn's metrics record");
    assert!(emf["CostUSD"].as_f64().unwrap_or_default() > 0.0, "{emf}");
    assert!(!emf.to_string().contains(&session), "{emf}");

    for line in logs.lines() {
        assert!(!line.contains(&user), "the user id is logged: {line}");
        assert!(!line.contains(&marker), "message content is logged: {line}");
    }
}
