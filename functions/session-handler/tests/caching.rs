//! Prompt caching through the whole agent: the real handler and Bedrock adapter against the
//! Converse stand-in, which accounts for the cache as Bedrock does (a write the first time a
//! prefix is seen, reads after).

mod common;

use bedrock_standin::Options;
use common::{api_with_roles, settings, Api};
use serde_json::Value;
use shared::{agent::AgentSettings, config::AuthMode, models::ModelRole};

const HAIKU: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

/// A system prompt of about 6 000 tokens: above Haiku 4.5's 4 096-token minimum per cache
/// point, as a production prompt with instructions and examples is.
fn long_system_prompt() -> String {
    (0..400)
        .map(|i| format!("Rule {i}: answer precisely, cite the tool you used, stay brief. "))
        .collect()
}

async fn api(prompt_caching: bool) -> Api {
    api_with_roles(
        AgentSettings {
            system_prompt: Some(long_system_prompt()),
            max_steps: 5,
            prompt_caching,
            ..settings()
        },
        AuthMode::InsecureLocal,
        Options::default(),
        &[(ModelRole::Reasoning, &[HAIKU])],
    )
    .await
}

/// Runs a five-step tool turn (the stand-in calls a tool at every step) and returns its usage
/// and cost.
async fn five_step_turn(api: &Api) -> (Value, Value) {
    let session = api.create_session("alice").await;
    let reply = api
        .send("alice", &session, "[[standin:always-tool]] What is 6*7?")
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["steps"], 5);
    (reply.body["usage"].clone(), reply.body["cost"].clone())
}

fn tokens(usage: &Value, field: &str) -> u64 {
    usage[field].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_five_step_turn_bills_at_least_60_percent_fewer_full_price_input_tokens_with_cache_points(
) {
    let (cached, cached_cost) = five_step_turn(&api(true).await).await;
    let (plain, plain_cost) = five_step_turn(&api(false).await).await;
    let full_cached = tokens(&cached, "input_tokens");
    let full_plain = tokens(&plain, "input_tokens");
    println!(
        "five-step turn, full-price input tokens: {full_cached} with cache points \
         (read {}, written {}), {full_plain} without; cost {} vs {} USD",
        tokens(&cached, "cache_read_tokens"),
        tokens(&cached, "cache_write_tokens"),
        cached_cost["total_usd"],
        plain_cost["total_usd"],
    );
    assert_eq!(tokens(&plain, "cache_read_tokens"), 0);
    assert!(tokens(&cached, "cache_write_tokens") > 0, "{cached}");
    assert!(tokens(&cached, "cache_read_tokens") > 0, "{cached}");
    assert!(
        full_cached * 10 <= full_plain * 4,
        "{full_cached} is not 60% fewer than {full_plain}"
    );
    // About the same tokens in all (the cache points themselves add a few); the cached turn
    // costs less.
    let all = |usage: &Value| {
        tokens(usage, "input_tokens")
            + tokens(usage, "cache_read_tokens")
            + tokens(usage, "cache_write_tokens")
    };
    let (a, b) = (all(&cached), all(&plain));
    assert!(a.abs_diff(b) * 20 < b, "{a} vs {b}");
    assert!(cached_cost["total_usd"].as_f64() < plain_cost["total_usd"].as_f64());
}

#[tokio::test]
async fn the_next_turn_reads_the_conversation_so_far_from_the_cache() {
    let api = api(true).await;
    let session = api.create_session("alice").await;
    let first = api.send("alice", &session, "What is 6*7?").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let second = api.send("alice", &session, "And 7*8?").await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    let usage = &second.body["usage"];
    let first_all = tokens(&first.body["usage"], "input_tokens")
        + tokens(&first.body["usage"], "cache_write_tokens");
    assert!(
        tokens(usage, "cache_read_tokens") >= first_all / 2,
        "the second turn read the first's prefix: {usage} after {}",
        first.body["usage"]
    );
}
