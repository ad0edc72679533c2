//! `run_javascript` through the tool contract, as the agent and MCP clients call it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::tool_contract::handle;
use tool_code_interpreter::{Limits, RunJavascript, TRUNCATION_MARKER};

/// The executor's binary, which runs each call's sandbox process (this test binary cannot).
const EXECUTOR: &str = env!("CARGO_BIN_EXE_tool-code-interpreter");

/// Short limits so the limit tests run quickly.
fn quick_tool() -> RunJavascript {
    RunJavascript::new(Limits {
        time: Duration::from_millis(300),
        ..Limits::default()
    })
    .with_program(EXECUTOR)
}

/// Calls the tool with `code`; returns `isError` and the `{output, result, error}` body.
async fn call(tool: &RunJavascript, code: &str) -> (bool, Value) {
    let response = handle(
        tool,
        json!({"name": "run_javascript", "arguments": {"code": code}}),
    )
    .await;
    let text = response["content"][0]["text"].as_str().unwrap_or_default();
    let body = serde_json::from_str(text).unwrap_or_else(|_| json!({ "raw": text }));
    (response["isError"] == true, body)
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_list_request_returns_the_spec_with_the_code_schema() {
    let listed = handle(&RunJavascript::default(), json!({"list": true})).await;
    let spec = &listed["tools"][0];
    assert_eq!(spec["name"], "run_javascript");
    assert!(spec["description"].as_str().unwrap().contains("sandbox"));
    assert_eq!(spec["inputSchema"]["required"], json!(["code"]));
    assert_eq!(spec["inputSchema"]["properties"]["code"]["type"], "string");
    assert!(spec["inputSchema"]["properties"]["code"]["description"]
        .as_str()
        .unwrap()
        .contains("console.log"));
}

#[tokio::test]
async fn returns_printed_output_and_the_last_expression_value() {
    let (is_error, body) = call(
        &quick_tool(),
        "const xs = [1, 2, 3];\nconsole.log('sum', xs.reduce((a, b) => a + b), {ok: true});\nprint('done');\nxs.map(x => x * 2)",
    )
    .await;
    assert!(!is_error);
    assert_eq!(
        body,
        json!({"output": "sum 6 {\"ok\":true}\ndone\n", "result": "[2,4,6]", "error": null})
    );
    let (_, body) = call(&quick_tool(), "6 * 7").await;
    assert_eq!(body["result"], "42");
    let (_, body) = call(&quick_tool(), "'text'").await;
    assert_eq!(body["result"], "\"text\"");
    let (_, body) = call(&quick_tool(), "let unused = 1").await;
    assert_eq!(body["result"], Value::Null);
}

#[tokio::test]
async fn top_level_await_and_a_final_promise_are_awaited() {
    let (is_error, body) = call(
        &quick_tool(),
        "const v = await Promise.resolve(20);\nPromise.resolve(v + 1)",
    )
    .await;
    assert!(!is_error);
    assert_eq!(body["result"], "21");
    let (is_error, body) = call(&quick_tool(), "await new Promise(() => {})").await;
    assert!(is_error);
    assert!(error_of(&body).contains("never settles"));
}

#[tokio::test]
async fn a_syntax_error_is_reported_with_its_line() {
    let (is_error, body) = call(&quick_tool(), "let a = 1;\nlet b = ;\n").await;
    assert!(is_error);
    let error = error_of(&body);
    assert!(error.starts_with("SyntaxError: "), "{error}");
    assert!(error.ends_with(" at line 2"), "{error}");
}

#[tokio::test]
async fn a_runtime_error_is_reported_with_its_line_after_the_output_so_far() {
    let (is_error, body) = call(
        &quick_tool(),
        "console.log('before');\nlet a = 1;\nx + a;\n",
    )
    .await;
    assert!(is_error);
    assert_eq!(body["output"], "before\n");
    assert_eq!(
        error_of(&body),
        "ReferenceError: x is not defined at line 3"
    );
    let (_, body) = call(
        &quick_tool(),
        "function f(o) {\n  return o.field;\n}\nf(null)",
    )
    .await;
    assert!(error_of(&body).starts_with("TypeError: "), "{body}");
    assert!(error_of(&body).ends_with(" at line 2"), "{body}");
    let (_, body) = call(&quick_tool(), "throw 'boom'").await;
    assert_eq!(error_of(&body), "uncaught exception: boom");
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_the_time_limit() {
    let started = Instant::now();
    let (is_error, body) = call(&quick_tool(), "while (true) {}").await;
    assert!(is_error);
    assert_eq!(
        error_of(&body),
        "stopped: the script exceeded its time limit of 300 ms"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "it stopped");
    let (_, body) = call(
        &quick_tool(),
        "try { while (true) {} } catch (e) { 'caught' }",
    )
    .await;
    assert!(
        error_of(&body).contains("time limit"),
        "the interrupt cannot be caught: {body}"
    );
    let (_, body) = call(
        &quick_tool(),
        "function spawn() { Promise.resolve().then(spawn); Promise.resolve().then(spawn) }\nspawn()",
    )
    .await;
    assert!(
        error_of(&body).contains("limit"),
        "a promise-job flood stops too: {body}"
    );
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_by_the_memory_limit() {
    let (is_error, body) = call(
        &quick_tool(),
        "let a = []; while (true) a.push(new Array(1e6).fill(1))",
    )
    .await;
    assert!(is_error);
    assert_eq!(
        error_of(&body),
        format!(
            "stopped: the script exceeded its memory limit of {} bytes",
            32 * 1024 * 1024
        )
    );
}

#[tokio::test]
async fn deep_recursion_is_a_range_error() {
    let (is_error, body) = call(&quick_tool(), "function f() { return f() + 1 }\nf()").await;
    assert!(is_error);
    assert!(
        error_of(&body).starts_with("RangeError: Maximum call stack size exceeded"),
        "{body}"
    );
}

#[tokio::test]
async fn an_output_flood_is_capped_with_a_marker_and_stopped() {
    let tool = quick_tool();
    let (is_error, body) = call(&tool, "while (true) console.log('x'.repeat(1000))").await;
    assert!(is_error, "the flood runs until the time limit");
    assert!(error_of(&body).contains("time limit"), "{body}");
    let output = body["output"].as_str().unwrap();
    assert!(output.ends_with(TRUNCATION_MARKER));
    assert!(output.len() <= tool.limits().output_bytes + TRUNCATION_MARKER.len());
    let (_, body) = call(&tool, "'y'.repeat(200000)").await;
    let result = body["result"].as_str().unwrap();
    assert!(
        result.ends_with(TRUNCATION_MARKER),
        "a huge result is capped too"
    );
    assert!(result.len() <= tool.limits().output_bytes + TRUNCATION_MARKER.len());
}

#[tokio::test]
async fn no_file_system_network_or_module_access_is_available() {
    let (is_error, body) = call(
        &quick_tool(),
        "[typeof require, typeof fetch, typeof std, typeof os, typeof process, typeof XMLHttpRequest, typeof setTimeout, typeof Deno, typeof scriptArgs]\n  .every(t => t === 'undefined')",
    )
    .await;
    assert!(!is_error);
    assert_eq!(body["result"], "true");
    let (is_error, body) = call(&quick_tool(), "await import('fs')").await;
    assert!(is_error);
    assert!(error_of(&body).contains("could not load module"), "{body}");
    let (is_error, body) = call(&quick_tool(), "import os from 'os';\nos").await;
    assert!(is_error);
    assert!(error_of(&body).starts_with("SyntaxError"), "{body}");
}

#[tokio::test]
async fn calls_share_no_state() {
    let tool = quick_tool();
    call(&tool, "globalThis.leak = 'secret'; var also = 1").await;
    let (_, body) = call(&tool, "[typeof leak, typeof also]").await;
    assert_eq!(body["result"], "[\"undefined\",\"undefined\"]");
}

#[tokio::test]
async fn the_same_tool_keeps_serving_after_every_limit_trips() {
    let tool = RunJavascript::default().with_program(EXECUTOR);
    for (code, expected) in [
        ("while (true) {}", "time limit of 2000 ms"),
        (
            "let a = []; while (true) a.push(new Array(1e6).fill(1))",
            "memory limit",
        ),
        ("while (true) console.log('x'.repeat(1000))", "time limit"),
        ("function f() { return f() }\nf()", "RangeError"),
    ] {
        let (is_error, body) = call(&tool, code).await;
        assert!(
            is_error && error_of(&body).contains(expected),
            "{code}: {body}"
        );
    }
    let (is_error, body) = call(&tool, "1+1").await;
    assert!(!is_error);
    assert_eq!(body, json!({"output": "", "result": "2", "error": null}));
}

#[tokio::test]
async fn malformed_arguments_are_an_error_naming_the_problem() {
    let response = handle(
        &quick_tool(),
        json!({"name": "run_javascript", "arguments": {"source": "1"}}),
    )
    .await;
    assert_eq!(response["isError"], true);
    assert!(response["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("code"));
}
