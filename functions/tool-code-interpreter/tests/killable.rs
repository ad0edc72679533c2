//! Scripts the engine cannot stop (native string search never polls its interrupt handler) are
//! stopped anyway: each call answers within its time limit plus a grace, with the time-limit
//! error, and afterwards nothing of it runs: no sandbox process is left (not even a zombie)
//! and this process, the executor, spends no CPU.
//!
//! The tests run one at a time (a lock), so that one test's sandbox processes and CPU use are
//! not another's.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::tool_contract::handle;
use tokio::sync::Mutex;
use tool_code_interpreter::{Limits, RunJavascript};

/// The executor's binary, which runs each call's sandbox process (this test binary cannot).
const EXECUTOR: &str = env!("CARGO_BIN_EXE_tool-code-interpreter");

const LIMIT: Duration = Duration::from_millis(300);
const TIME_LIMIT_ERROR: &str = "stopped: the script exceeded its time limit of 300 ms";

/// How long past its limit a call may take to answer: generous, CI is a loaded 2-core machine.
const GRACE: Duration = Duration::from_secs(2);

/// A 2 MiB haystack of `a` and a 1 MiB needle of `a` ending in `b`: every naive search is
/// about 2^40 character comparisons, hours of CPU.
const STRINGS: &str = "const h = 'a'.repeat(1 << 21), n = 'a'.repeat(1 << 20) + 'b';\n";

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn tool(limit: Duration) -> RunJavascript {
    RunJavascript::new(Limits {
        time: limit,
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

/// The processes whose parent is this one, with their state (`Z` for a zombie).
fn children() -> Vec<(u32, char)> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let parent: u32 = fields.next()?.parse().ok()?;
            (parent == me).then_some((pid, state))
        })
        .collect()
}

/// CPU time (user and system) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is a valid value, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the duration of the call.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(status, 0, "getrusage");
    let micros = |time: libc::timeval| {
        Duration::from_secs(time.tv_sec.unsigned_abs())
            + Duration::from_micros(time.tv_usec.unsigned_abs())
    };
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// Runs `code` under `limit`: it must answer with the time-limit error within the limit plus
/// the grace, leave no process behind, leave this process idle, and the next call must work.
async fn assert_stopped_and_gone(code: &str, limit: Duration, error: &str) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let tool = tool(limit);
    let started = Instant::now();
    let (is_error, body) = call(&tool, code).await;
    let took = started.elapsed();
    assert!(is_error, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(
        took < limit + GRACE,
        "answered after {took:?}, past {limit:?} + {GRACE:?}"
    );
    assert_eq!(children(), [], "the sandbox process is gone, not a zombie");
    let before = cpu_time();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = cpu_time().saturating_sub(before);
    assert!(
        spent < Duration::from_millis(250),
        "{spent:?} of CPU in the second after the answer"
    );
    let (is_error, body) = call(&tool, "1+1").await;
    assert!(!is_error && body["result"] == "2", "the next call: {body}");
}

#[tokio::test]
async fn index_of_a_needle_that_is_not_there_is_killed_at_the_limit() {
    let code = format!("{STRINGS}h.indexOf(n)");
    assert_stopped_and_gone(&code, LIMIT, TIME_LIMIT_ERROR).await;
}

#[tokio::test]
async fn last_index_of_is_killed_at_the_limit() {
    let code = format!("{STRINGS}h.lastIndexOf(n)");
    assert_stopped_and_gone(&code, LIMIT, TIME_LIMIT_ERROR).await;
}

#[tokio::test]
async fn includes_is_killed_at_the_limit() {
    let code = format!("{STRINGS}h.includes(n)");
    assert_stopped_and_gone(&code, LIMIT, TIME_LIMIT_ERROR).await;
}

#[tokio::test]
async fn split_is_killed_at_the_limit() {
    let code = format!("{STRINGS}h.split(n).length");
    assert_stopped_and_gone(&code, LIMIT, TIME_LIMIT_ERROR).await;
}

#[tokio::test]
async fn replace_with_a_string_pattern_is_killed_at_the_limit() {
    let code = format!("{STRINGS}h.replace(n, 'x').length");
    assert_stopped_and_gone(&code, LIMIT, TIME_LIMIT_ERROR).await;
}

#[tokio::test]
async fn catastrophic_regex_backtracking_on_a_long_input_is_stopped_at_the_limit() {
    let code = "/(a+)+b/.test('a'.repeat(1 << 16))";
    assert_stopped_and_gone(code, LIMIT, TIME_LIMIT_ERROR).await;
}

#[tokio::test]
async fn the_payload_of_the_issue_is_killed_at_the_default_limit() {
    let code = format!("{STRINGS}h.indexOf(n)");
    let limit = Limits::default().time;
    assert_stopped_and_gone(
        &code,
        limit,
        "stopped: the script exceeded its time limit of 2000 ms",
    )
    .await;
}

#[tokio::test]
async fn a_running_call_is_seen_as_a_child_process_and_is_gone_after_its_answer() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let call = tokio::spawn(async { call(&tool(LIMIT), "while (true) {}").await });
    tokio::time::sleep(LIMIT / 3).await;
    let running = children();
    let (is_error, body) = call.await.unwrap_or((false, Value::Null));
    assert_eq!(
        running.len(),
        1,
        "one sandbox process while it runs: {running:?}"
    );
    assert!(is_error && body["error"] == TIME_LIMIT_ERROR, "{body}");
    assert_eq!(children(), [], "and none once it has answered");
}
