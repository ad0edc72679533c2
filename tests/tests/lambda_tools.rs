//! Tools served by executor Lambdas, invoked through the real Lambda Invoke API that
//! `cargo lambda watch` serves for every function of this workspace.
//!
//! Needs `E2E_API_URL` (set by `make test`, which starts `cargo lambda watch`); without it
//! the tests fail and say so.

use std::collections::BTreeMap;

use serde_json::json;
use shared::{
    adapters::lambda_tools::LambdaTools,
    domain::message::{ToolCall, ToolResultContent, ToolStatus},
    ports::{CallContext, ToolInvoker},
};

/// The Invoke API endpoint: the watch's address, without the function URL path.
fn invoke_endpoint() -> String {
    let api = std::env::var("E2E_API_URL").unwrap_or_else(|_| {
        panic!("E2E_API_URL is not set: run these tests with `make test`, which starts cargo lambda watch")
    });
    api.split("/lambda-url/").next().unwrap_or(&api).to_owned()
}

async fn tools(pairs: &[(&str, &str)]) -> LambdaTools {
    let sdk = shared::aws::sdk_config().await;
    let config = aws_sdk_lambda::config::Builder::from(&sdk)
        .endpoint_url(invoke_endpoint())
        .build();
    let functions: BTreeMap<String, String> = pairs
        .iter()
        .map(|(tool, function)| ((*tool).to_owned(), (*function).to_owned()))
        .collect();
    LambdaTools::new(aws_sdk_lambda::Client::from_conf(config), functions)
}

fn context() -> CallContext {
    CallContext {
        user_id: "alice".into(),
        session_id: "s".into(),
        tool_use_id: "tooluse_1".into(),
        trace_id: "trace".into(),
        traceparent: None,
    }
}

fn text(content: &[ToolResultContent]) -> String {
    content
        .iter()
        .map(|part| match part {
            ToolResultContent::Text { text } => text.clone(),
            ToolResultContent::Json { json } => json.to_string(),
        })
        .collect()
}

const EXECUTORS: [(&str, &str); 2] = [
    ("run_javascript", "tool-code-interpreter"),
    ("http_fetch", "tool-http-fetch"),
];

#[tokio::test]
async fn executor_specs_are_listed_over_the_invoke_api() {
    let tools = tools(&EXECUTORS).await;
    let specs = tools.specs().await.expect("the executors list their tools");
    let names: Vec<&str> = specs.iter().map(|spec| spec.name.as_str()).collect();
    assert_eq!(names, ["run_javascript", "http_fetch"]);
    assert_eq!(specs[0].input_schema["required"], json!(["code"]));
    assert_eq!(specs[1].input_schema["required"], json!(["url"]));
}

#[tokio::test]
async fn a_call_runs_in_the_executor_and_comes_back_as_a_tool_result() {
    let tools = tools(&EXECUTORS).await;
    let call = ToolCall {
        tool_use_id: "tooluse_1".into(),
        name: "run_javascript".into(),
        input: json!({"code": "console.log('hi'); 6 * 7"}),
    };
    let output = tools.call(&call, &context()).await;
    assert_eq!(output.status, ToolStatus::Success, "{output:?}");
    let text = text(&output.content);
    assert!(text.contains("42") && text.contains("hi"), "{text}");
}

#[tokio::test]
async fn an_executor_refusal_is_an_error_result_not_a_failed_call() {
    let tools = tools(&EXECUTORS).await;
    let call = ToolCall {
        tool_use_id: "tooluse_2".into(),
        name: "http_fetch".into(),
        input: json!({"url": "http://169.254.169.254/latest/meta-data/"}),
    };
    let output = tools.call(&call, &context()).await;
    assert_eq!(output.status, ToolStatus::Error);
    assert!(text(&output.content).contains("refused"), "{output:?}");
}

#[tokio::test]
async fn a_tool_mapped_to_the_wrong_executor_is_left_out_and_the_others_are_served() {
    let tools = tools(&[
        ("run_javascript", "tool-http-fetch"),
        ("http_fetch", "tool-http-fetch"),
    ])
    .await;
    let specs = tools
        .specs()
        .await
        .expect("a misconfigured tool is left out, not an error");
    let names: Vec<&str> = specs.iter().map(|spec| spec.name.as_str()).collect();
    assert_eq!(names, ["http_fetch"]);
    let unknown = ToolCall {
        tool_use_id: "t".into(),
        name: "teleport".into(),
        input: json!({}),
    };
    assert_eq!(
        tools.call(&unknown, &context()).await.status,
        ToolStatus::Error
    );
}

#[tokio::test]
async fn an_executor_that_does_not_exist_is_left_out_and_the_others_are_served() {
    let tools = tools(&[
        ("run_javascript", "tool-code-interpreter"),
        ("teleport", "tool-that-does-not-exist"),
    ])
    .await;
    let specs = tools
        .specs()
        .await
        .expect("a missing executor is left out, not an error");
    let names: Vec<&str> = specs.iter().map(|spec| spec.name.as_str()).collect();
    assert_eq!(names, ["run_javascript"]);
}
