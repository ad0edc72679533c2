//! The event source mapping of a DynamoDB Stream, played locally: `stream-relay` reads
//! DynamoDB Local's stream of a table and invokes a function through the Lambda Invoke API
//! (`cargo lambda watch` serves it) with the event Lambda would send, so `make dev` and the
//! tests run the path AWS runs.
//!
//! What it does as Lambda does:
//! - **the event**: `{"Records": [...]}`, each record with `eventID`, `eventName`,
//!   `eventVersion` 1.1, `eventSource` `aws:dynamodb`, `awsRegion`, `eventSourceARN` and
//!   `dynamodb` (`ApproximateCreationDateTime` in seconds, `Keys`, `NewImage`/`OldImage` in
//!   DynamoDB JSON, `SequenceNumber`, `SizeBytes`, `StreamViewType`);
//! - **filter criteria**: a record is sent only if it matches the pattern (the subset of
//!   Lambda's event filtering rules patterns use here: objects nest, an array lists accepted
//!   values, each a string or number to equal, `{"prefix": "..."}` or `{"exists": bool}`);
//! - **batching**: per shard, in order, up to `--batch-size` records or the batching window;
//! - **failures**: an answer with `X-Amz-Function-Error` (or no answer) fails the batch; a
//!   `batchItemFailures` answer retries from the first failed record, the records before it
//!   being done; a failed batch is bisected (the halves keep the retries left), retried up to
//!   `--max-retries` times, and what still fails, or is older than `--max-record-age-s`, goes
//!   to the dead-letter file as Lambda's on-failure record for streams (one JSON line), never
//!   its contents.
//!
//! Not modelled: parallelization factor, tumbling windows, resharding beyond following new
//! shards as they appear.

use std::collections::VecDeque;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// Whether `value` (a record in the event's JSON shape) matches a filter `pattern`.
pub fn matches(pattern: &Value, value: Option<&Value>) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, inner)| {
            matches(
                inner,
                value.and_then(Value::as_object).and_then(|o| o.get(key)),
            )
        }),
        Value::Array(accepted) => accepted.iter().any(|rule| accepts(rule, value)),
        _ => false,
    }
}

fn accepts(rule: &Value, value: Option<&Value>) -> bool {
    match rule {
        Value::Object(rule) => {
            if let Some(prefix) = rule.get("prefix").and_then(Value::as_str) {
                value
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.starts_with(prefix))
            } else if let Some(exists) = rule.get("exists").and_then(Value::as_bool) {
                value.is_some() == exists
            } else {
                false
            }
        }
        Value::String(expected) => value.and_then(Value::as_str) == Some(expected.as_str()),
        Value::Number(expected) => value
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .is_some_and(|v| Some(v) == expected.as_f64()),
        _ => false,
    }
}

/// An attribute value in DynamoDB JSON (`{"S": ...}`, `{"N": ...}`, ...).
pub fn attribute(value: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    let b64 = |blob: &aws_smithy_types::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    match value {
        A::S(s) => json!({ "S": s }),
        A::N(n) => json!({ "N": n }),
        A::B(b) => json!({ "B": b64(b) }),
        A::Ss(v) => json!({ "SS": v }),
        A::Ns(v) => json!({ "NS": v }),
        A::Bs(v) => json!({ "BS": v.iter().map(b64).collect::<Vec<_>>() }),
        A::M(m) => json!({ "M": image(m) }),
        A::L(l) => json!({ "L": l.iter().map(attribute).collect::<Vec<_>>() }),
        A::Null(n) => json!({ "NULL": n }),
        A::Bool(b) => json!({ "BOOL": b }),
        _ => json!({ "NULL": true }),
    }
}

/// An item (or key) in DynamoDB JSON.
pub fn image(
    item: &std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect::<Map<_, _>>(),
    )
}

/// A stream record as Lambda puts it in the event.
pub fn event_record(
    record: &aws_sdk_dynamodbstreams::types::Record,
    region: &str,
    stream_arn: &str,
) -> Value {
    let mut dynamodb = Map::new();
    if let Some(change) = record.dynamodb() {
        if let Some(at) = change.approximate_creation_date_time() {
            dynamodb.insert(
                "ApproximateCreationDateTime".into(),
                json!(at.secs() as f64 + f64::from(at.subsec_nanos()) / 1e9),
            );
        }
        if let Some(keys) = change.keys() {
            dynamodb.insert("Keys".into(), image(keys));
        }
        if let Some(new) = change.new_image() {
            dynamodb.insert("NewImage".into(), image(new));
        }
        if let Some(old) = change.old_image() {
            dynamodb.insert("OldImage".into(), image(old));
        }
        if let Some(seq) = change.sequence_number() {
            dynamodb.insert("SequenceNumber".into(), json!(seq));
        }
        if let Some(size) = change.size_bytes() {
            dynamodb.insert("SizeBytes".into(), json!(size));
        }
        if let Some(view) = change.stream_view_type() {
            dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
        }
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

/// The sequence number of an event record.
pub fn sequence(record: &Value) -> &str {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap_or_default()
}

/// What the function answered to a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every record was processed.
    Done,
    /// Records from this sequence number on must be sent again.
    FailedFrom(String),
    /// The whole batch failed (a function error, or no answer).
    Failed(String),
}

/// Reads a function's answer: `function_error` is the `X-Amz-Function-Error` header.
pub fn outcome(function_error: Option<&str>, payload: &[u8]) -> Outcome {
    if let Some(error) = function_error {
        return Outcome::Failed(format!("function error: {error}"));
    }
    let answer: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let first = answer["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|failure| failure["itemIdentifier"].as_str())
        .min_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
    match first {
        Some(seq) => Outcome::FailedFrom(seq.to_owned()),
        None => Outcome::Done,
    }
}

/// Sends a batch to the function.
#[async_trait]
pub trait Invoke: Send + Sync {
    /// One invocation with `{"Records": batch}`.
    async fn invoke(&self, batch: &[Value]) -> Outcome;
}

/// Why records went to the dead-letter file.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// The records (never written out: only their positions).
    pub records: Vec<Value>,
    /// `RetryAttemptsExhausted` or `RecordAgeExceeded`.
    pub condition: &'static str,
    /// Invocations made for them.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
}

/// How failed batches are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries of a batch after its first attempt.
    pub max_retries: u32,
    /// Split a failed batch in two and retry each half.
    pub bisect: bool,
}

/// Delivers one batch with the event source mapping's retries; returns what could not be.
pub async fn deliver(
    invoker: &dyn Invoke,
    batch: Vec<Value>,
    policy: RetryPolicy,
) -> Vec<DeadLetter> {
    let mut dead = Vec::new();
    // (records, invocations made for them so far)
    let mut queue: VecDeque<(Vec<Value>, u32)> = VecDeque::from([(batch, 0)]);
    while let Some((records, attempts)) = queue.pop_front() {
        if records.is_empty() {
            continue;
        }
        let attempts = attempts + 1;
        let error = match invoker.invoke(&records).await {
            Outcome::Done => continue,
            Outcome::FailedFrom(seq) => {
                let from = records.iter().position(|r| sequence(r) == seq).unwrap_or(0);
                let rest = records[from..].to_vec();
                if attempts > policy.max_retries {
                    dead.push(DeadLetter {
                        records: rest,
                        condition: "RetryAttemptsExhausted",
                        attempts,
                        error: "batch item failures".into(),
                    });
                } else {
                    queue.push_front((rest, attempts));
                }
                continue;
            }
            Outcome::Failed(error) => error,
        };
        if attempts > policy.max_retries {
            dead.push(DeadLetter {
                records,
                condition: "RetryAttemptsExhausted",
                attempts,
                error,
            });
        } else if policy.bisect && records.len() > 1 {
            let mut first = records;
            let second = first.split_off(first.len() / 2);
            queue.push_front((second, attempts));
            queue.push_front((first, attempts));
        } else {
            queue.push_front((records, attempts));
        }
    }
    dead
}

/// Lambda's on-failure destination record for a stream batch that was given up.
pub fn dead_letter_record(
    dead: &DeadLetter,
    function: &str,
    shard_id: &str,
    stream_arn: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let arrival = |record: Option<&Value>| {
        record
            .and_then(|r| r["dynamodb"]["ApproximateCreationDateTime"].as_f64())
            .and_then(|secs| chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64))
            .map(|at| at.to_rfc3339())
    };
    json!({
        "requestContext": {
            "requestId": format!("{:032x}", now.timestamp_nanos_opt().unwrap_or_default()),
            "functionArn": format!("arn:aws:lambda:us-east-1:000000000000:function:{function}"),
            "condition": dead.condition,
            "approximateInvokeCount": dead.attempts,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": dead.error,
        },
        "version": "1.0",
        "timestamp": now.to_rfc3339(),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": dead.records.first().map(sequence),
            "endSequenceNumber": dead.records.last().map(sequence),
            "approximateArrivalOfFirstRecord": arrival(dead.records.first()),
            "approximateArrivalOfLastRecord": arrival(dead.records.last()),
            "batchSize": dead.records.len(),
            "streamArn": stream_arn,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn record(seq: u64, sk: &str, event: &str) -> Value {
        json!({
            "eventName": event,
            "dynamodb": {
                "SequenceNumber": seq.to_string(),
                "NewImage": { "PK": {"S": "USER#u#SESSION#s"}, "SK": {"S": sk} },
                "ApproximateCreationDateTime": 1_800_000_000.5,
            }
        })
    }

    #[test]
    fn the_memory_filter_lets_only_message_inserts_through() {
        let pattern: Value = serde_json::from_str(include_str!(
            "../../../functions/memory-extractor/stream-filter.json"
        ))
        .unwrap();
        assert!(matches(
            &pattern,
            Some(&record(1, "MSG#0000000001", "INSERT"))
        ));
        assert!(!matches(
            &pattern,
            Some(&record(2, "TRACE#0000000001", "INSERT"))
        ));
        assert!(!matches(
            &pattern,
            Some(&record(3, "MSG#0000000001", "MODIFY"))
        ));
        assert!(!matches(&pattern, Some(&json!({"eventName": "INSERT"}))));
        let exists = json!({"dynamodb": {"NewImage": {"text": [{"exists": false}]}}});
        assert!(matches(&exists, Some(&record(4, "MSG#1", "INSERT"))));
        let number = json!({"dynamodb": {"SequenceNumber": [5]}});
        assert!(matches(&number, Some(&record(5, "x", "INSERT"))));
    }

    #[test]
    fn an_answer_names_the_first_failed_record() {
        assert_eq!(outcome(None, b"null"), Outcome::Done);
        assert_eq!(
            outcome(None, br#"{"batchItemFailures": []}"#),
            Outcome::Done
        );
        assert_eq!(
            outcome(
                None,
                br#"{"batchItemFailures": [{"itemIdentifier": "300"}, {"itemIdentifier": "20"}]}"#
            ),
            Outcome::FailedFrom("20".into())
        );
        assert!(matches!(
            outcome(Some("Unhandled"), b""),
            Outcome::Failed(_)
        ));
    }

    /// Fails every batch holding a poisoned sequence number; records each batch's numbers.
    struct Poisoned {
        poison: u64,
        partial: bool,
        calls: Mutex<Vec<Vec<String>>>,
    }

    #[async_trait]
    impl Invoke for Poisoned {
        async fn invoke(&self, batch: &[Value]) -> Outcome {
            let seqs: Vec<String> = batch.iter().map(|r| sequence(r).to_owned()).collect();
            self.calls.lock().unwrap().push(seqs.clone());
            match seqs.iter().position(|s| *s == self.poison.to_string()) {
                None => Outcome::Done,
                Some(i) if self.partial => Outcome::FailedFrom(seqs[i].clone()),
                Some(_) => Outcome::Failed("Unhandled".into()),
            }
        }
    }

    #[tokio::test]
    async fn a_poisoned_record_is_bisected_out_and_dead_lettered_alone() {
        let invoker = Poisoned {
            poison: 3,
            partial: false,
            calls: Mutex::default(),
        };
        let batch: Vec<Value> = (1..=4).map(|i| record(i, "MSG#1", "INSERT")).collect();
        let dead = deliver(
            &invoker,
            batch,
            RetryPolicy {
                max_retries: 3,
                bisect: true,
            },
        )
        .await;
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].records.len(), 1);
        assert_eq!(sequence(&dead[0].records[0]), "3");
        assert_eq!(dead[0].condition, "RetryAttemptsExhausted");
        let calls = invoker.calls.lock().unwrap();
        assert_eq!(calls[0], ["1", "2", "3", "4"]);
        assert_eq!(calls[1], ["1", "2"]);
        assert_eq!(calls[2], ["3", "4"]);
        assert_eq!(calls[3], ["3"]);
        assert_eq!(calls[4], ["3"]);
        assert_eq!(calls[5], ["4"]);
        assert_eq!(
            calls.iter().filter(|c| c.as_slice() == ["3"]).count(),
            2,
            "3 retries in all for 3"
        );
        assert!(
            calls.iter().any(|c| c.as_slice() == ["4"]),
            "the good record after it is delivered"
        );

        let record = dead_letter_record(
            &dead[0],
            "memory-extractor",
            "shard-1",
            "arn:stream",
            chrono::Utc::now(),
        );
        assert_eq!(record["DDBStreamBatchInfo"]["startSequenceNumber"], "3");
        assert_eq!(record["DDBStreamBatchInfo"]["batchSize"], 1);
        assert!(
            !record.to_string().contains("USER#"),
            "no record contents: {record}"
        );
    }

    #[tokio::test]
    async fn partial_failures_resend_from_the_first_failed_record() {
        let invoker = Poisoned {
            poison: 2,
            partial: true,
            calls: Mutex::default(),
        };
        let batch: Vec<Value> = (1..=3).map(|i| record(i, "MSG#1", "INSERT")).collect();
        let dead = deliver(
            &invoker,
            batch,
            RetryPolicy {
                max_retries: 2,
                bisect: true,
            },
        )
        .await;
        let calls = invoker.calls.lock().unwrap();
        assert_eq!(calls[0], ["1", "2", "3"]);
        assert_eq!(calls[1], ["2", "3"], "record 1 was done");
        assert_eq!(calls.len(), 3);
        assert_eq!(dead[0].records.len(), 2);
    }
}
