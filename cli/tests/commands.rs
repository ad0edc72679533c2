//! The built `lambda-agent` binary, stdin piped, against a FAKE of the API's contract on
//! 127.0.0.1 (tests/common/fake_api.rs): what a user sees for each command.

mod common;

use common::fake_api::{Config, FakeApi, FAIL_MID_STREAM, KNOWN_SESSION, NEW_SESSION, REFUSE};
use common::{lambda_agent, one_error_line, TempDir};

const QUESTION: &str = "What is 12*7?\n";

/// The turns the fake was sent: exactly one, to the new session under `prefix`.
fn one_turn_to(fake: &FakeApi, prefix: &str) -> Vec<common::fake_api::Recorded> {
    let turns = fake.turns();
    assert_eq!(turns.len(), 1, "{turns:?}");
    assert_eq!(
        turns[0].path,
        format!("{prefix}/sessions/{NEW_SESSION}/messages")
    );
    turns
}

#[test]
fn a_streamed_turn_prints_text_tool_calls_and_a_summary() {
    let fake = FakeApi::start(Config::Stream);
    let dir = TempDir::new("stream");
    let url = fake.api_url();
    let run = lambda_agent(
        &["--url", &url, "--user", "alice", "chat"],
        QUESTION,
        &dir.0,
        &[],
    );
    assert!(run.ok(), "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], format!("session {NEW_SESSION}"), "{run:?}");
    assert_eq!(lines[1], "Let me calculate. ", "{run:?}");
    assert_eq!(lines[2], r#"⚙ calculator {"expression":"12*7"}"#, "{run:?}");
    assert_eq!(lines[3], "✓ calculator 3 ms", "{run:?}");
    assert_eq!(lines[4], "12*7 = 84.", "{run:?}");
    let summary = lines[5];
    assert!(
        summary.starts_with(
            "── 2 steps · 1,200 in / 40 out tokens (cache 300 read / 0 write) · $0.001400 · "
        ) && summary.ends_with("(server 1.60 s)"),
        "{summary}"
    );
    assert_eq!(lines.len(), 6, "{run:?}");

    // The stream URL came from the API's console config; the turn went to it.
    let turns = one_turn_to(&fake, "/lambda-url/session-stream");
    assert_eq!(turns[0].user.as_deref(), Some("alice"));
    assert_eq!(turns[0].accept.as_deref(), Some("text/event-stream"));
    assert_eq!(
        turns[0].body,
        serde_json::json!({"message": "What is 12*7?"})
    );
}

#[test]
fn stream_url_model_and_token_are_sent_and_the_token_never_printed() {
    let fake = FakeApi::start(Config::Missing);
    let dir = TempDir::new("token");
    let (url, stream) = (fake.api_url(), fake.stream_url());
    let token = "eyJhbGciOi.secret-token-value.sig";
    let run = lambda_agent(
        &[
            "chat",
            "--url",
            &url,
            "--stream-url",
            &stream,
            "--session",
            KNOWN_SESSION,
            "--model",
            "fast",
        ],
        "first\n\n  \nsecond\n/quit\nnot sent\n",
        &dir.0,
        &[("LAMBDA_AGENT_TOKEN", token)],
    );
    assert!(run.ok(), "{run:?}");
    assert!(
        !run.stdout.contains("session "),
        "a given session is not announced: {run:?}"
    );
    assert_eq!(run.stdout.matches("12*7 = 84.").count(), 2, "{run:?}");
    assert!(!run.stdout.contains(token) && !run.stderr.contains(token));

    let turns = fake.turns();
    assert_eq!(turns.len(), 2, "blank lines are skipped, /quit stops");
    for (turn, message) in turns.iter().zip(["first", "second"]) {
        assert_eq!(
            turn.body,
            serde_json::json!({"message": message, "model": "fast"})
        );
        assert_eq!(
            turn.authorization.as_deref(),
            Some(format!("Bearer {token}").as_str())
        );
        assert_eq!(turn.user, None, "a token replaces x-user-id");
    }
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.path.ends_with("/console/config.json")),
        "--stream-url needs no config"
    );
}

#[test]
fn without_a_stream_url_the_buffered_answer_is_printed_whole() {
    for config in [Config::Missing, Config::NoStream] {
        let fake = FakeApi::start(config);
        let dir = TempDir::new("buffered");
        let url = fake.api_url();
        let run = lambda_agent(&["--url", &url, "chat"], QUESTION, &dir.0, &[]);
        assert!(run.ok(), "{config:?}: {run:?}");
        assert_eq!(run.stderr, "", "{config:?}: {run:?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines[0], format!("session {NEW_SESSION}"));
        // The tool call, from the turn's trace, then the whole answer.
        assert_eq!(lines[1], "✓ calculator 3 ms", "{config:?}: {run:?}");
        assert_eq!(
            lines[2], "Let me calculate. 12*7 = 84.",
            "{config:?}: {run:?}"
        );
        assert!(lines[3].starts_with("── 2 steps · ") && lines[3].contains("$0.001400"));
        assert_eq!(lines.len(), 4, "{config:?}: {run:?}");

        let turns = one_turn_to(&fake, "/lambda-url/session-handler");
        assert_eq!(
            turns[0].user.as_deref(),
            Some("local-user"),
            "the default user"
        );
    }
}

#[test]
fn an_unknown_session_is_one_error_line_and_a_failure() {
    let fake = FakeApi::start(Config::Stream);
    let dir = TempDir::new("unknown");
    let url = fake.api_url();
    let unknown = "11111111-2222-4333-8444-555555555555";
    let run = lambda_agent(
        &["--url", &url, "chat", "--session", unknown],
        QUESTION,
        &dir.0,
        &[],
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        one_error_line(&run),
        format!("lambda-agent: Not Found: no session {unknown} for this user (HTTP 404)")
    );
    assert_eq!(run.stdout, "");
    assert!(fake.turns().is_empty(), "checked before any turn");

    let run = lambda_agent(&["--url", &url, "trace", unknown], "", &dir.0, &[]);
    assert!(one_error_line(&run).contains("(HTTP 404)"), "{run:?}");
}

#[test]
fn a_failed_turn_in_a_pipe_stops_with_one_error_line() {
    let fake = FakeApi::start(Config::Stream);
    let dir = TempDir::new("failed");
    let url = fake.api_url();

    let run = lambda_agent(
        &["--url", &url, "chat"],
        &format!("{FAIL_MID_STREAM}\nnever sent\n"),
        &dir.0,
        &[],
    );
    assert_eq!(
        one_error_line(&run),
        "lambda-agent: Model throttled: the model is throttled; try again in a few seconds (HTTP 503)"
    );
    assert_eq!(
        run.stdout,
        format!("session {NEW_SESSION}\nWorking on \n"),
        "the partial answer's line is ended"
    );
    assert_eq!(fake.turns().len(), 1, "a script stops at its failed turn");

    let run = lambda_agent(
        &["--url", &url, "chat"],
        &format!("{REFUSE}\n"),
        &dir.0,
        &[],
    );
    assert_eq!(
        one_error_line(&run),
        "lambda-agent: Model unavailable: the model is not available right now (HTTP 503); retry after 5 s"
    );
}

#[test]
fn no_stack_file_and_no_url_tells_to_run_make_dev() {
    let dir = TempDir::new("nostack");
    assert!(
        dir.0
            .ancestors()
            .all(|d| !d.join(".dev/stack.json").exists()),
        "the test needs a directory with no stack file above it"
    );
    for command in ["chat", "sessions", "tools"] {
        let run = lambda_agent(&[command], QUESTION, &dir.0, &[]);
        assert_eq!(run.code, Some(1), "{run:?}");
        let line = one_error_line(&run);
        assert!(
            line.contains("run `make dev`") && line.contains("--url"),
            "{line}"
        );
    }
}

#[test]
fn the_stack_file_is_found_from_a_subdirectory() {
    let fake = FakeApi::start(Config::Missing);
    let root = TempDir::new("stack");
    std::fs::create_dir_all(root.0.join(".dev")).unwrap();
    std::fs::write(
        root.0.join(".dev/stack.json"),
        serde_json::json!({
            "api": fake.api_url(), "stream": fake.stream_url(),
            "console": "http://127.0.0.1:1/console", "auth_mode": "insecure-local"
        })
        .to_string(),
    )
    .unwrap();
    let deep = root.0.join("functions/session-handler/src");
    std::fs::create_dir_all(&deep).unwrap();

    let run = lambda_agent(&["chat"], QUESTION, &deep, &[]);
    assert!(run.ok(), "{run:?}");
    assert!(run.stdout.contains("⚙ calculator"), "streamed: {run:?}");

    // LAMBDA_AGENT_STACK names the file from anywhere.
    let elsewhere = TempDir::new("elsewhere");
    let stack = root.0.join(".dev/stack.json");
    let run = lambda_agent(
        &["tools"],
        "",
        &elsewhere.0,
        &[("LAMBDA_AGENT_STACK", stack.to_str().unwrap())],
    );
    assert!(run.ok(), "{run:?}");
    assert!(run.stdout.starts_with("calculator(expression)"), "{run:?}");
}

#[test]
fn sessions_are_a_table() {
    let fake = FakeApi::start(Config::Stream);
    let dir = TempDir::new("sessions");
    let run = lambda_agent(
        &["sessions"],
        "",
        &dir.0,
        &[("LAMBDA_AGENT_URL", &fake.api_url())],
    );
    assert!(run.ok(), "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "ID                                    TITLE          TURNS       COST  UPDATED\n\
             {NEW_SESSION}  What is 12*7?      1  $0.001400  2026-03-01 10:05 UTC\n\
             {KNOWN_SESSION}  -                  0    $0.0000  2026-02-01 09:00 UTC\n"
        )
    );
    assert_eq!(fake.requests()[0].user.as_deref(), Some("local-user"));
}

#[test]
fn trace_draws_each_turn_as_a_timeline() {
    let fake = FakeApi::start(Config::Stream);
    let dir = TempDir::new("trace");
    let url = fake.api_url();
    let run = lambda_agent(&["--url", &url, "trace", NEW_SESSION], "", &dir.0, &[]);
    assert!(run.ok(), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "turn 1 · 2026-03-01 10:00 UTC · 1.60 s · end_turn · trace 1-fake-trace"
    );
    // 1600 ms over 32 columns: 50 ms a column; the tool at 810 ms is in column 16.
    assert!(
        lines[1].starts_with("  model  #1   us.anthropic.claude-haiku-4-5  ████████████████················    800 ms  600 in / 20 out · $0.000700 · tool_use"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("  tool   #1   calculator                     ················█···············      3 ms  success"),
        "{}",
        lines[2]
    );
    assert!(lines[3].starts_with("  model  #2"), "{}", lines[3]);
    assert!(
        lines[3].contains("(cache 300 read / 0 write)"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].starts_with("  total       2 model calls, 1 tool call")
            && lines[4]
                .ends_with("1.60 s  1,200 in / 40 out (cache 300 read / 0 write) · $0.001400"),
        "{}",
        lines[4]
    );
    assert_eq!(lines.len(), 5);

    let run = lambda_agent(
        &["--url", &url, "trace", NEW_SESSION, "--turn", "1"],
        "",
        &dir.0,
        &[],
    );
    assert!(run.ok() && run.stdout.starts_with("turn 1 "), "{run:?}");
    let run = lambda_agent(
        &["--url", &url, "trace", NEW_SESSION, "--turn", "4"],
        "",
        &dir.0,
        &[],
    );
    assert_eq!(
        one_error_line(&run),
        format!("lambda-agent: session {NEW_SESSION} has no turn 4 (it has 1 turn)")
    );
}

#[test]
fn tools_are_listed_with_their_descriptions() {
    let fake = FakeApi::start(Config::Stream);
    let dir = TempDir::new("tools");
    let url = fake.api_url();
    let run = lambda_agent(&["--url", &url, "tools"], "", &dir.0, &[]);
    assert!(run.ok(), "{run:?}");
    assert_eq!(
        run.stdout,
        "calculator(expression)\n    Evaluates an arithmetic expression.\n\n\
         current_time(timezone?)\n    The current date and time in a time zone.\n"
    );
}

#[test]
fn an_unreachable_api_is_one_error_line() {
    let dir = TempDir::new("unreachable");
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/lambda-url/session-handler");
    let run = lambda_agent(&["--url", &url, "sessions"], "", &dir.0, &[]);
    let line = one_error_line(&run);
    assert!(
        line.contains(&format!("{url}/sessions: cannot connect")),
        "{line}"
    );

    let run = lambda_agent(&["--url", "127.0.0.1:9000", "tools"], "", &dir.0, &[]);
    assert!(one_error_line(&run).contains("is not"), "{run:?}");
}

#[test]
fn argument_errors_are_one_line_and_exit_2() {
    let dir = TempDir::new("args");
    let run = lambda_agent(&["trace"], "", &dir.0, &[]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let line = one_error_line(&run);
    assert!(
        line.contains("<SESSION>") && line.contains("--help"),
        "{run:?}"
    );
    let run = lambda_agent(&["chat", "--sesion", "x"], "", &dir.0, &[]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(one_error_line(&run).contains("--sesion"), "{run:?}");
    let run = lambda_agent(&["--help"], "", &dir.0, &[]);
    assert!(
        run.ok() && run.stdout.contains("LAMBDA_AGENT_URL"),
        "{run:?}"
    );
}
