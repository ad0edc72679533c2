//! The cost ledger and the dollar and rate budgets, through the API: the handler, the Bedrock
//! adapter over loopback to the Converse stand-in, the built-in tools, the in-memory store.

mod common;

use common::*;
use serde_json::Value;
use shared::{
    agent::{AgentSettings, Budgets},
    config::AuthMode,
    domain::pricing::Pricing,
};

fn items<'a>(cost: &'a Value, kind: &str) -> Vec<&'a Value> {
    cost["items"]
        .as_array()
        .map(|items| items.iter().filter(|i| i["kind"] == kind).collect())
        .unwrap_or_default()
}

fn sum_of_items(cost: &Value) -> f64 {
    cost["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["usd"].as_f64()).sum())
        .unwrap_or_default()
}

async fn api_with_budgets(budgets: Budgets) -> Api {
    api_with_settings(
        AgentSettings {
            budgets,
            ..settings()
        },
        AuthMode::InsecureLocal,
        Default::default(),
    )
    .await
}

#[tokio::test]
async fn a_turn_answers_its_itemized_cost_and_the_trace_has_it_per_step() {
    let api = api().await;
    let session = api.create_session("alice").await;
    let reply = api.send("alice", &session, "What is 12*(3+4)?").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let cost = &reply.body["cost"];
    let usage = &reply.body["usage"];

    // The model's tokens, at the catalog's price for the model id, per token class.
    let price = Pricing::for_model(MODEL_ID).expect("a priced model");
    let model = items(cost, "model");
    let input = model
        .iter()
        .find(|i| i["unit"] == "input_tokens")
        .expect("an input line");
    assert_eq!(input["detail"], MODEL_ID);
    assert_eq!(input["quantity"].as_f64(), usage["input_tokens"].as_f64());
    let by_hand = usage["input_tokens"].as_f64().unwrap() * price.input_usd_per_mtok / 1e6;
    assert!((input["usd"].as_f64().unwrap() - by_hand).abs() < 1e-9);
    let output = model
        .iter()
        .find(|i| i["unit"] == "output_tokens")
        .expect("an output line");
    assert_eq!(output["quantity"].as_f64(), usage["output_tokens"].as_f64());

    // The handler's compute and request, and the store's write units for the commit.
    let lambda = items(cost, "lambda");
    let units: Vec<&str> = lambda.iter().filter_map(|i| i["unit"].as_str()).collect();
    assert_eq!(units, ["gb_seconds", "requests"], "{lambda:?}");
    assert_eq!(lambda[0]["detail"], "session-handler");
    let dynamodb = items(cost, "dynamodb");
    assert!(
        dynamodb
            .iter()
            .any(|i| i["unit"] == "write_units" && i["quantity"].as_f64() >= Some(10.0)),
        "a transactional commit of four messages, the trace, header and marker: {dynamodb:?}"
    );
    let total = cost["total_usd"].as_f64().unwrap();
    assert!((total - sum_of_items(cost)).abs() < 1e-12);

    let trace = api.trace("alice", &session).await;
    let turn = &trace.body["turns"][0];
    assert_eq!(turn["cost"], *cost, "the stored turn has the same ledger");
    let steps = turn["steps"].as_array().unwrap();
    let model_step_usd: f64 = steps
        .iter()
        .filter(|s| s["kind"] == "model")
        .map(|s| s["cost"]["total_usd"].as_f64().unwrap())
        .sum();
    let model_usd: f64 = model.iter().map(|i| i["usd"].as_f64().unwrap()).sum();
    assert!((model_step_usd - model_usd).abs() < 1e-12);
    let tool = steps.iter().find(|s| s["kind"] == "tool").unwrap();
    assert_eq!(tool["name"], "calculator");
    assert_eq!(tool["input"]["expression"], "12*(3+4)");
    assert!(tool["result"].as_str().unwrap().contains("84"), "{tool}");
    assert!(
        tool.get("cost").is_none(),
        "a built-in tool costs the handler's time only"
    );
    assert_eq!(
        turn["groundedness"], 1.0,
        "84 is in the calculator's result"
    );
}

#[tokio::test]
async fn a_session_over_its_budget_stops_at_the_next_step_then_refuses_with_402() {
    let api = api_with_budgets(Budgets {
        session_usd: Some(0.000_001),
        ..Budgets::default()
    })
    .await;
    let session = api.create_session("alice").await;
    let first = api.send("alice", &session, "What is 12*(3+4)?").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["stop_reason"], "budget_exceeded");
    assert_eq!(
        first.body["steps"], 1,
        "the tool ran, the second model call did not"
    );

    let refused = api.send("alice", &session, "and 6*7?").await;
    assert_eq!(refused.status, 402, "{:?}", refused.body);
    assert_eq!(
        refused.content_type, "application/problem+json",
        "{:?}",
        refused.headers
    );
    assert!(refused.body["type"]
        .as_str()
        .unwrap()
        .ends_with("budget-exceeded"));
    assert!(refused.body["detail"].as_str().unwrap().contains("session"));
    let history = api
        .call("GET", &format!("/sessions/{session}"), "alice", None, &[])
        .await;
    assert_eq!(history.body["turns"], 1, "the refused turn stored nothing");

    // Another session of the same user has its own budget.
    let other = api.create_session("alice").await;
    assert_eq!(api.send("alice", &other, "hello").await.status, 200);
}

#[tokio::test]
async fn a_user_over_the_monthly_budget_is_refused_in_every_session() {
    let api = api_with_budgets(Budgets {
        user_monthly_usd: Some(0.000_001),
        ..Budgets::default()
    })
    .await;
    let first = api.create_session("alice").await;
    assert_eq!(api.send("alice", &first, "hello").await.status, 200);
    let second = api.create_session("alice").await;
    let refused = api.send("alice", &second, "hello").await;
    assert_eq!(refused.status, 402, "{:?}", refused.body);
    assert!(refused.body["detail"].as_str().unwrap().contains("monthly"));
    // Bob's month is his own.
    let bobs = api.create_session("bob").await;
    assert_eq!(api.send("bob", &bobs, "hello").await.status, 200);
}

fn minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

#[tokio::test]
async fn turns_over_the_rate_limit_get_429_with_retry_after() {
    let api = api_with_budgets(Budgets {
        rate_per_minute: Some(2),
        ..Budgets::default()
    })
    .await;
    // Two turns a minute: the third in the same minute is refused. A run that straddles a
    // minute is done again (each attempt takes well under a second).
    for _attempt in 0..3 {
        let session = api.create_session("alice").await;
        let before = minute();
        let mut replies = Vec::new();
        for _ in 0..3 {
            replies.push(api.send("alice", &session, "hello").await);
        }
        if minute() != before {
            continue;
        }
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        if statuses[0] == 429 {
            // The previous attempt's turns are still in this minute.
            continue;
        }
        assert_eq!(statuses, [200, 200, 429]);
        let limited = &replies[2];
        let retry_after: u64 = limited.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert!(limited.body["type"]
            .as_str()
            .unwrap()
            .ends_with("rate-limited"));
        let history = api
            .call("GET", &format!("/sessions/{session}"), "alice", None, &[])
            .await;
        assert_eq!(history.body["turns"], 2, "the refused turn stored nothing");
        let bobs = api.create_session("bob").await;
        assert_eq!(api.send("bob", &bobs, "hello").await.status, 200);
        return;
    }
    panic!("three attempts each straddled a minute");
}
