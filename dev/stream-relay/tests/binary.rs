//! The `stream-relay` binary: its options, its refusals, and a run against DynamoDB Local and a
//! fake Invoke endpoint (needs `AWS_ENDPOINT_URL_DYNAMODB`, as the tests in `relay.rs`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_stream-relay");

#[test]
fn help_lists_the_mapping_settings() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for option in [
        "--table",
        "--function",
        "--filter",
        "--batch-size",
        "--batching-window-ms",
        "--max-retries",
        "--max-record-age-s",
        "--bisect",
        "--dlq",
        "--from-start",
        "--poll-ms",
    ] {
        assert!(help.contains(option), "{option} in {help}");
    }
}

#[test]
fn a_bad_filter_exits_2_and_says_why() {
    let path = std::env::temp_dir().join(format!("{}.json", unique("bad-filter")));
    std::fs::write(&path, r#"{"eventName": [{"anything-but": ["REMOVE"]}]}"#).unwrap();
    let out = Command::new(BIN)
        .args(["--table", "t", "--function", "f", "--filter"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("unsupported filter operator `anything-but`"),
        "{stderr}"
    );
    let out = Command::new(BIN).args(["--table", "t"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no --function");
}

#[tokio::test]
async fn the_binary_relays_message_inserts_and_stops_on_sigterm() {
    let fake = FakeLambda::start(|_, _| Answer::ok(json!({"batchItemFailures": []}))).await;
    let clients = clients(&fake.url).await;
    let table = table_with_stream(&clients).await;
    let filter = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../functions/memory-extractor/stream-filter.json"
    );
    let mut child = Command::new(BIN)
        .args([
            "--table",
            &table,
            "--function",
            "memory-extractor",
            "--filter",
            filter,
        ])
        .args(["--batching-window-ms", "200", "--poll-ms", "100"])
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint())
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
        .env("AWS_ENDPOINT_URL_LAMBDA", &fake.url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ready (LATEST iterators taken) once it says it relays.
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut log = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.recv())
            .await
            .expect("a log line in time")
            .unwrap_or_else(|| panic!("the relay exited: {log:#?}"));
        let ready = line.contains("relaying the table's stream");
        log.push(line);
        if ready {
            break;
        }
    }
    put(
        &clients,
        &table,
        message("u-fay", "s-6", 1, "user", "hello"),
    )
    .await;
    let header = std::collections::HashMap::from([
        ("PK".to_owned(), s("USER#u-fay")),
        ("SK".to_owned(), s("SESSION#s-6")),
    ]);
    put(&clients, &table, header).await;
    let calls = fake
        .wait_for(|calls| !calls.is_empty(), Duration::from_millis(800))
        .await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].function, "memory-extractor");
    assert_eq!(calls[0].seqs(), [1]);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
    // One line per batch, with its outcome, and never the record's content.
    while let Ok(line) = lines.try_recv() {
        log.push(line);
    }
    let batch_lines: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("batch delivered"))
        .collect();
    assert_eq!(batch_lines.len(), 1, "{log:#?}");
    assert!(batch_lines[0].contains("records=1"), "{log:#?}");
    assert!(log.iter().all(|l| !l.contains("hello")), "{log:#?}");
}
