//! The relay against real DynamoDB Local (its stream) and a real HTTP Invoke endpoint (a fake
//! Lambda on 127.0.0.1): filtering, the event's shape, batching, retries, bisection, partial
//! batch failures and the dead-letter file.
//!
//! Needs `AWS_ENDPOINT_URL_DYNAMODB` (set by `make test`); without it every test here fails and
//! says how to start DynamoDB Local. Each test makes its own table.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use stream_relay::{Clients, DeadLetterFile, DeadLetters, LambdaInvoker, Policy, Relay, Settings};
use tokio::sync::oneshot;

const FUNCTION: &str = "memory-extractor";

/// A running relay; stopped when dropped.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    stream_arn: String,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap().unwrap();
    }
}

async fn start(clients: &Clients, settings: Settings) -> Running {
    let invoker = LambdaInvoker::new(clients.lambda.clone(), FUNCTION);
    let relay = Relay::connect(clients, settings, invoker)
        .await
        .expect("the relay connects to the stream");
    let stream_arn = relay.stream_arn().to_owned();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    Running {
        stop: Some(stop),
        task,
        stream_arn,
    }
}

fn settings(table: &str) -> Settings {
    Settings {
        poll_interval: Duration::from_millis(100),
        policy: Policy {
            retry_delay: Duration::from_millis(10),
            ..Policy::default()
        },
        ..Settings::new(table, FUNCTION)
    }
}

fn dlq_path() -> PathBuf {
    std::env::temp_dir().join(format!("{}.jsonl", unique("stream-relay-dlq")))
}

fn dlq_lines(path: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect()
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn total(calls: &[Call]) -> usize {
    calls.iter().map(|c| c.records().len()).sum()
}

#[tokio::test]
async fn only_message_inserts_go_in_one_event_per_window_shaped_as_lambdas() {
    let fake = FakeLambda::start(|_, _| Answer::ok(json!({"batchItemFailures": []}))).await;
    let clients = clients(&fake.url).await;
    let table = table_with_stream(&clients).await;
    let relay = start(
        &clients,
        Settings {
            filter: Some(contract_filter()),
            batching_window: Duration::from_millis(1500),
            ..settings(&table)
        },
    )
    .await;

    let (user, session) = ("u-alice", "s-1");
    let header = std::collections::HashMap::from([
        ("PK".to_owned(), s(&format!("USER#{user}"))),
        ("SK".to_owned(), s(&format!("SESSION#{session}"))),
        ("version".to_owned(), n(0)),
    ]);
    put(&clients, &table, header).await;
    let texts = [
        "My favourite colour is blue. I live in Lisbon.",
        "Noted.",
        "And you?",
        "Fine.",
    ];
    for (i, text) in texts.iter().enumerate() {
        let seq = i as u64 + 1;
        let role = if seq % 2 == 1 { "user" } else { "assistant" };
        put(&clients, &table, message(user, session, seq, role, text)).await;
    }
    let pk = format!("USER#{user}#SESSION#{session}");
    put(
        &clients,
        &table,
        std::collections::HashMap::from([
            ("PK".to_owned(), s(&pk)),
            ("SK".to_owned(), s("TRACE#0000000001")),
            ("turn".to_owned(), n(1)),
        ]),
    )
    .await;
    // A MODIFY of a message and a REMOVE of one: not INSERTs, filtered out.
    put(
        &clients,
        &table,
        message(user, session, 1, "user", "edited"),
    )
    .await;
    clients
        .dynamodb
        .delete_item()
        .table_name(&table)
        .key("PK", s(&pk))
        .key("SK", s("MSG#0000000002"))
        .send()
        .await
        .unwrap();

    let calls = fake
        .wait_for(|calls| total(calls) >= 4, Duration::from_millis(2500))
        .await;
    let relay_stream_arn = relay.stream_arn.clone();
    relay.stop().await;
    assert_eq!(calls.len(), 1, "one event for the window: {calls:#?}");
    let call = &calls[0];
    assert_eq!(call.function, FUNCTION);
    assert_eq!(call.invocation_type.as_deref(), Some("RequestResponse"));
    assert_eq!(call.seqs(), [1, 2, 3, 4]);
    assert_eq!(keys(&call.event), BTreeSet::from(["Records"]));

    let described = clients
        .dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let stream_arn = described.table().unwrap().latest_stream_arn().unwrap();
    assert_eq!(relay_arn(&relay_arn_of(&calls)), stream_arn);
    assert_eq!(relay_stream_arn, stream_arn);
    let now = chrono::Utc::now().timestamp();
    let mut sequence_numbers = Vec::new();
    for (record, text) in call.records().iter().zip(texts) {
        assert_eq!(
            keys(record),
            BTreeSet::from([
                "awsRegion",
                "dynamodb",
                "eventID",
                "eventName",
                "eventSource",
                "eventSourceARN",
                "eventVersion"
            ])
        );
        assert_eq!(record["eventName"], "INSERT");
        assert_eq!(record["eventVersion"], "1.1");
        assert_eq!(record["eventSource"], "aws:dynamodb");
        assert_eq!(record["awsRegion"], clients.region.as_str());
        assert_eq!(record["eventSourceARN"], stream_arn);
        assert!(record["eventID"].as_str().is_some_and(|id| !id.is_empty()));
        let dynamodb = &record["dynamodb"];
        assert_eq!(
            keys(dynamodb),
            BTreeSet::from([
                "ApproximateCreationDateTime",
                "Keys",
                "NewImage",
                "SequenceNumber",
                "SizeBytes",
                "StreamViewType"
            ])
        );
        let created = dynamodb["ApproximateCreationDateTime"]
            .as_i64()
            .expect("seconds");
        assert!((now - created).abs() < 300, "{created} vs {now}");
        assert!(dynamodb["SizeBytes"].as_u64().is_some_and(|size| size > 0));
        assert_eq!(dynamodb["StreamViewType"], "NEW_IMAGE");
        let image = &dynamodb["NewImage"];
        let seq = image["seq"]["N"].as_str().unwrap();
        let sk = format!("MSG#{:010}", seq.parse::<u64>().unwrap());
        assert_eq!(dynamodb["Keys"], json!({"PK": {"S": pk}, "SK": {"S": sk}}));
        assert_eq!(image["PK"], json!({"S": pk}));
        assert_eq!(image["SK"], json!({"S": sk}));
        assert_eq!(
            image["content"]["S"],
            json!([{"type": "text", "text": text}]).to_string()
        );
        assert_eq!(image["expires_at"], json!({"N": "1780221600"}));
        assert_eq!(
            keys(image),
            BTreeSet::from([
                "PK",
                "SK",
                "content",
                "created_at",
                "expires_at",
                "role",
                "seq",
                "turn"
            ])
        );
        sequence_numbers.push(
            dynamodb["SequenceNumber"]
                .as_str()
                .unwrap()
                .parse::<u128>()
                .unwrap(),
        );
    }
    assert!(
        sequence_numbers.windows(2).all(|w| w[0] < w[1]),
        "{sequence_numbers:?}"
    );
    // The function's own event type reads it.
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(call.event.clone()).unwrap();
    assert_eq!(event.records.len(), 4);
}

fn relay_arn_of(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .flat_map(|c| {
            c.records()
                .iter()
                .map(|r| r["eventSourceARN"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn relay_arn(arns: &[String]) -> String {
    let unique: BTreeSet<&String> = arns.iter().collect();
    assert_eq!(unique.len(), 1, "{arns:?}");
    arns[0].clone()
}

#[tokio::test]
async fn without_a_filter_every_record_goes_in_batches_of_batch_size() {
    let fake = FakeLambda::start(|_, _| Answer::ok(json!(null))).await;
    let clients = clients(&fake.url).await;
    let table = table_with_stream(&clients).await;
    let relay = start(
        &clients,
        Settings {
            batch_size: 2,
            batching_window: Duration::from_secs(2),
            ..settings(&table)
        },
    )
    .await;
    for seq in 1..=5 {
        put(&clients, &table, message("u-bob", "s-2", seq, "user", "hi")).await;
    }
    let calls = fake
        .wait_for(|calls| total(calls) >= 5, Duration::from_millis(500))
        .await;
    assert_eq!(
        calls.iter().map(Call::seqs).collect::<Vec<_>>(),
        [vec![1, 2], vec![3, 4], vec![5]]
    );
    assert_eq!(relay_arn(&relay_arn_of(&calls)), relay.stream_arn);
    relay.stop().await;
}

#[tokio::test]
async fn a_failing_record_is_bisected_out_retried_and_dead_lettered() {
    let fake = FakeLambda::start(|call, _| {
        let poisoned = call.records().iter().any(|r| {
            r["dynamodb"]["NewImage"]["content"]["S"]
                .as_str()
                .is_some_and(|c| c.contains("poison"))
        });
        if poisoned {
            Answer::function_error("cannot read this one")
        } else {
            Answer::ok(json!({"batchItemFailures": []}))
        }
    })
    .await;
    let clients = clients(&fake.url).await;
    let table = table_with_stream(&clients).await;
    let dlq = dlq_path();
    let relay = start(
        &clients,
        Settings {
            filter: Some(contract_filter()),
            batching_window: Duration::from_millis(1500),
            policy: Policy {
                max_retries: 2,
                retry_delay: Duration::from_millis(10),
                ..Policy::default()
            },
            dead_letters: Some(Arc::new(DeadLetterFile::new(&dlq)) as Arc<dyn DeadLetters>),
            ..settings(&table)
        },
    )
    .await;
    for (seq, text) in [(1, "a"), (2, "b"), (3, "poison"), (4, "d")] {
        put(
            &clients,
            &table,
            message("u-carol", "s-3", seq, "user", text),
        )
        .await;
    }
    let calls = fake
        .wait_for(|calls| calls.len() >= 7, Duration::from_millis(1000))
        .await;
    relay.stop().await;
    assert_eq!(
        calls.iter().map(Call::seqs).collect::<Vec<_>>(),
        [
            vec![1, 2, 3, 4],
            vec![1, 2],
            vec![3, 4],
            vec![3],
            vec![3],
            vec![3],
            vec![4]
        ],
        "the batch, its halves, the poison record and its two retries, the last record"
    );
    let poison_seq = calls[3].records()[0]["dynamodb"]["SequenceNumber"].clone();
    let arrival = calls[3].records()[0]["dynamodb"]["ApproximateCreationDateTime"]
        .as_i64()
        .unwrap();
    let lines = dlq_lines(&dlq);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let entry = &lines[0];
    assert_eq!(
        keys(entry),
        BTreeSet::from([
            "DDBStreamBatchInfo",
            "requestContext",
            "responseContext",
            "timestamp",
            "version"
        ])
    );
    assert_eq!(entry["version"], "1.0");
    assert_eq!(
        entry["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(entry["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(
        entry["requestContext"]["functionArn"],
        format!(
            "arn:aws:lambda:{}:000000000000:function:{FUNCTION}",
            clients.region
        )
    );
    assert!(entry["requestContext"]["requestId"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(
        entry["responseContext"],
        json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
    );
    let info = &entry["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["startSequenceNumber"], poison_seq);
    assert_eq!(info["endSequenceNumber"], poison_seq);
    assert_eq!(info["streamArn"], relay_arn(&relay_arn_of(&calls)));
    assert!(info["shardId"].as_str().is_some_and(|id| !id.is_empty()));
    let arrival = chrono::DateTime::from_timestamp(arrival, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(info["approximateArrivalOfFirstRecord"], arrival);
    assert_eq!(info["approximateArrivalOfLastRecord"], arrival);
    assert!(chrono::DateTime::parse_from_rfc3339(entry["timestamp"].as_str().unwrap()).is_ok());
    std::fs::remove_file(dlq).unwrap();
}

#[tokio::test]
async fn server_errors_and_batch_item_failures_are_retried_from_the_failed_record() {
    let fake = FakeLambda::start(|call, index| match index {
        0 => Answer::server_error(),
        1 => Answer::ok(json!({"batchItemFailures": [
            {"itemIdentifier": call.records()[1]["dynamodb"]["SequenceNumber"]}
        ]})),
        _ => Answer::ok(json!({})),
    })
    .await;
    let clients = clients(&fake.url).await;
    let table = table_with_stream(&clients).await;
    let dlq = dlq_path();
    let relay = start(
        &clients,
        Settings {
            batching_window: Duration::from_millis(1500),
            policy: Policy {
                bisect: false,
                retry_delay: Duration::from_millis(10),
                ..Policy::default()
            },
            dead_letters: Some(Arc::new(DeadLetterFile::new(&dlq)) as Arc<dyn DeadLetters>),
            ..settings(&table)
        },
    )
    .await;
    for seq in 1..=3 {
        put(&clients, &table, message("u-dan", "s-4", seq, "user", "x")).await;
    }
    let calls = fake
        .wait_for(|calls| calls.len() >= 3, Duration::from_millis(1000))
        .await;
    relay.stop().await;
    assert_eq!(
        calls.iter().map(Call::seqs).collect::<Vec<_>>(),
        [vec![1, 2, 3], vec![1, 2, 3], vec![2, 3]],
        "the 500 retried whole; the partial failure from record 2"
    );
    assert!(dlq_lines(&dlq).is_empty(), "nothing dead-lettered");
}

#[tokio::test]
async fn an_unreachable_function_dead_letters_the_batch_after_its_retries() {
    // A port with nothing listening: connection refused.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let clients = clients(&closed).await;
    let table = table_with_stream(&clients).await;
    let dlq = dlq_path();
    let relay = start(
        &clients,
        Settings {
            batching_window: Duration::from_millis(300),
            policy: Policy {
                bisect: false,
                max_retries: 1,
                retry_delay: Duration::from_millis(10),
                ..Policy::default()
            },
            dead_letters: Some(Arc::new(DeadLetterFile::new(&dlq)) as Arc<dyn DeadLetters>),
            ..settings(&table)
        },
    )
    .await;
    put(&clients, &table, message("u-erin", "s-5", 1, "user", "x")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while dlq_lines(&dlq).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no dead-letter entry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relay.stop().await;
    let lines = dlq_lines(&dlq);
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(lines[0]["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(lines[0]["responseContext"]["statusCode"], 0);
    assert_eq!(lines[0]["DDBStreamBatchInfo"]["batchSize"], 1);
    std::fs::remove_file(dlq).unwrap();
}
