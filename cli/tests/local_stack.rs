//! The built `lambda-agent` binary against the REAL local stack: `cargo lambda watch` serving
//! the session handler and the streaming function, DynamoDB Local and the Bedrock stand-in.
//!
//! Needs `E2E_API_URL` (the buffered API) and `E2E_STREAM_URL` (the streaming function),
//! which `make test` sets after starting everything; without them the test fails and says so.

mod common;

use common::{lambda_agent, TempDir};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the end-to-end tests with `make test`, which starts the local stack")
    })
}

#[test]
fn a_streamed_calculator_turn_and_its_trace() {
    let api = env("E2E_API_URL");
    let stream = env("E2E_STREAM_URL");
    let user = format!("cli-e2e-{}", uuid::Uuid::new_v4().simple());
    let dir = TempDir::new("local-stack");

    let run = lambda_agent(
        &[
            "--url",
            &api,
            "--stream-url",
            &stream,
            "--user",
            &user,
            "chat",
        ],
        "What is 12*7?\n",
        &dir.0,
        &[],
    );
    assert!(run.ok(), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let session = lines
        .first()
        .and_then(|line| line.strip_prefix("session "))
        .unwrap_or_else(|| panic!("the new session is announced first: {run:?}"))
        .to_owned();
    assert!(run.stdout.contains("84"), "{run:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("⚙ calculator ")),
        "a tool start line: {run:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("✓ calculator ") && l.ends_with(" ms")),
        "a tool end line: {run:?}"
    );
    let summary = lines.last().copied().unwrap_or_default();
    assert!(
        summary.starts_with("── 2 steps · ") && summary.contains(" tokens "),
        "a summary line: {run:?}"
    );

    let run = lambda_agent(
        &["--url", &api, "--user", &user, "trace", &session],
        "",
        &dir.0,
        &[],
    );
    assert!(run.ok(), "{run:?}");
    let steps = |kind: &str| {
        run.stdout
            .lines()
            .filter(|l| l.starts_with(&format!("  {kind} ")))
            .count()
    };
    assert_eq!(steps("model"), 2, "{run:?}");
    assert_eq!(steps("tool"), 1, "{run:?}");
    assert!(run.stdout.contains("calculator"), "{run:?}");
}
