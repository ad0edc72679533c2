//! Delivering one batch as the event source mapping does: invoke, read the answer, retry,
//! bisect, and send what cannot be delivered to the on-failure destination.
//!
//! - The answer is a **failed batch** when the invoke did not reach the function or the
//!   service failed (connection error, HTTP 5xx, any status other than 2xx), or when the
//!   function failed (header `X-Amz-Function-Error`).
//! - A 200 whose body is `{"batchItemFailures": [{"itemIdentifier": "<SequenceNumber>"}, ..]}`
//!   is a **partial failure**: the records before the lowest reported sequence number are done,
//!   the rest is retried as one batch (this counts as a retry; with bisect on, this is the
//!   "bisect at the failed record" of Lambda). An empty or null `batchItemFailures`, or a body
//!   that is not a JSON object, is a success. An item without a non-empty string
//!   `itemIdentifier`, or one that names no record of the batch, fails the whole batch.
//! - A failed batch of two or more records, with bisect on, is split in two halves, each
//!   delivered on its own (first half first); splitting does not count as a retry. Otherwise it
//!   is retried, up to `max_retries` times.
//! - A batch that has used up its retries, and before each invoke any record older than
//!   `max_record_age`, goes to the dead-letter sink as one entry shaped like Lambda's
//!   on-failure destination record for streams (condition `RetryAttemptsExhausted` or
//!   `RecordAgeExceeded`; only metadata, never the records) and is skipped.
//!
//! One log line per invoke: shard, records, first and last sequence numbers, outcome.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::record::{event, EventRecord};

/// The answer of one invoke, as far as the event source mapping looks at it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Response {
    /// HTTP status; 0 when no answer came (connection error, timeout).
    pub status: u16,
    /// `X-Amz-Function-Error` (`Unhandled`, `Handled`).
    pub function_error: Option<String>,
    /// `X-Amz-Executed-Version`.
    pub executed_version: Option<String>,
    /// The request id of the invoke, when the service gave one.
    pub request_id: Option<String>,
    /// The body, when it is JSON.
    pub body: Option<Value>,
    /// Why no answer came, or the service's error.
    pub error: Option<String>,
}

impl Response {
    /// A 200 with this JSON body.
    pub fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body: Some(body),
            ..Self::default()
        }
    }
}

/// Something that invokes the function with an event.
pub trait Invoker {
    /// Invokes the function (RequestResponse) with `event`.
    fn invoke(&self, event: &Value) -> impl Future<Output = Response> + Send;
}

/// Where the entries of undeliverable batches go.
pub trait DeadLetters: Send + Sync {
    /// Keeps one entry.
    fn write(&self, entry: &Value) -> std::io::Result<()>;
}

/// A JSON Lines file: one entry a line, appended.
#[derive(Debug)]
pub struct DeadLetterFile {
    path: PathBuf,
    lock: Mutex<()>,
}

impl DeadLetterFile {
    /// Entries appended to `path` (created when missing).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }
}

impl DeadLetters for DeadLetterFile {
    fn write(&self, entry: &Value) -> std::io::Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(format!("{entry}\n").as_bytes())
    }
}

/// Entries kept in memory (tests).
#[derive(Debug, Default)]
pub struct DeadLetterMemory(pub Mutex<Vec<Value>>);

impl DeadLetters for DeadLetterMemory {
    fn write(&self, entry: &Value) -> std::io::Result<()> {
        self.0.lock().unwrap().push(entry.clone());
        Ok(())
    }
}

/// What to do with failures: the event source mapping's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// MaximumRetryAttempts.
    pub max_retries: u32,
    /// MaximumRecordAgeInSeconds; `None` for no limit (-1 on Lambda).
    pub max_record_age: Option<Duration>,
    /// BisectBatchOnFunctionError.
    pub bisect: bool,
    /// Wait before a retry (doubled at each further retry of a batch, at most 5 s).
    pub retry_delay: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            max_record_age: Some(Duration::from_secs(3600)),
            bisect: true,
            retry_delay: Duration::from_millis(200),
        }
    }
}

/// What became of a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Invokes made.
    pub invocations: usize,
    /// Records the function took.
    pub delivered: usize,
    /// Records sent to the dead-letter sink (or dropped, without one).
    pub dead: usize,
}

/// The clock: now.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Delivers batches to one function.
pub struct Deliverer<I> {
    invoker: I,
    policy: Policy,
    dead_letters: Option<Arc<dyn DeadLetters>>,
    function_arn: String,
    stream_arn: String,
    clock: Clock,
}

/// How one invoke ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Done,
    /// Done up to this index; the rest failed.
    RetryFrom(usize),
    Failed(String),
}

struct Pending {
    records: Vec<EventRecord>,
    retries: u32,
    /// Invokes of these records in this form (the entry's `approximateInvokeCount`).
    attempts: u32,
    last: Option<Response>,
}

impl<I: Invoker> Deliverer<I> {
    /// A deliverer; `function_arn` and `stream_arn` name the two ends in dead-letter entries.
    pub fn new(
        invoker: I,
        policy: Policy,
        dead_letters: Option<Arc<dyn DeadLetters>>,
        function_arn: impl Into<String>,
        stream_arn: impl Into<String>,
    ) -> Self {
        Self {
            invoker,
            policy,
            dead_letters,
            function_arn: function_arn.into(),
            stream_arn: stream_arn.into(),
            clock: Arc::new(Utc::now),
        }
    }

    /// The same with another clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Delivers one batch of `shard_id` (records in sequence order) until every record is
    /// either taken by the function or dead-lettered. Fails only when the dead-letter file
    /// cannot be written.
    pub async fn deliver(
        &self,
        shard_id: &str,
        records: Vec<EventRecord>,
    ) -> std::io::Result<Report> {
        let mut report = Report::default();
        let mut queue = VecDeque::from([Pending {
            records,
            retries: 0,
            attempts: 0,
            last: None,
        }]);
        while let Some(mut pending) = queue.pop_front() {
            if let Some(max_age) = self.policy.max_record_age {
                let now = (self.clock)().timestamp();
                let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
                let old = pending
                    .records
                    .iter()
                    .take_while(|r| now.saturating_sub(r.created) > max_age)
                    .count();
                if old > 0 {
                    let rest = pending.records.split_off(old);
                    let expired = std::mem::replace(&mut pending.records, rest);
                    self.dead_letter(shard_id, &expired, "RecordAgeExceeded", &pending)?;
                    report.dead += expired.len();
                }
            }
            if pending.records.is_empty() {
                continue;
            }
            if pending.retries > 0 && pending.attempts > 0 {
                let delay = self
                    .policy
                    .retry_delay
                    .saturating_mul(1 << (pending.retries - 1).min(5))
                    .min(Duration::from_secs(5));
                tokio::time::sleep(delay).await;
            }
            let response = self.invoker.invoke(&event(&pending.records)).await;
            report.invocations += 1;
            pending.attempts += 1;
            let verdict = verdict(&response, &pending.records);
            let (first, last) = (
                &pending.records[0].sequence_number,
                &pending.records[pending.records.len() - 1].sequence_number,
            );
            let records = pending.records.len();
            let retry = pending.retries;
            match &verdict {
                Verdict::Done => tracing::info!(
                    shard = shard_id,
                    records,
                    first,
                    last,
                    retry,
                    "batch delivered"
                ),
                Verdict::RetryFrom(done) => tracing::warn!(
                    shard = shard_id,
                    records,
                    first,
                    last,
                    retry,
                    done,
                    "batch partly failed (batchItemFailures)"
                ),
                Verdict::Failed(why) => tracing::warn!(
                    shard = shard_id,
                    records,
                    first,
                    last,
                    retry,
                    "batch failed: {why}"
                ),
            }
            pending.last = Some(response);
            match verdict {
                Verdict::Done => report.delivered += pending.records.len(),
                Verdict::RetryFrom(done) => {
                    report.delivered += done;
                    pending.records.drain(..done);
                    self.retry_or_dead_letter(shard_id, pending, &mut queue, &mut report)?;
                }
                Verdict::Failed(_) if self.policy.bisect && pending.records.len() > 1 => {
                    let mut first = pending.records;
                    let second = first.split_off(first.len().div_ceil(2));
                    for half in [second, first] {
                        queue.push_front(Pending {
                            records: half,
                            retries: pending.retries,
                            attempts: 0,
                            last: pending.last.clone(),
                        });
                    }
                }
                Verdict::Failed(_) => {
                    self.retry_or_dead_letter(shard_id, pending, &mut queue, &mut report)?;
                }
            }
        }
        Ok(report)
    }

    fn retry_or_dead_letter(
        &self,
        shard_id: &str,
        mut pending: Pending,
        queue: &mut VecDeque<Pending>,
        report: &mut Report,
    ) -> std::io::Result<()> {
        if pending.retries < self.policy.max_retries {
            pending.retries += 1;
            queue.push_front(pending);
            return Ok(());
        }
        self.dead_letter(
            shard_id,
            &pending.records,
            "RetryAttemptsExhausted",
            &pending,
        )?;
        report.dead += pending.records.len();
        Ok(())
    }

    fn dead_letter(
        &self,
        shard_id: &str,
        records: &[EventRecord],
        condition: &str,
        pending: &Pending,
    ) -> std::io::Result<()> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        tracing::warn!(
            shard = shard_id,
            records = records.len(),
            first = first.sequence_number,
            last = last.sequence_number,
            condition,
            "batch skipped{}",
            if self.dead_letters.is_some() {
                ", sent to the dead-letter file"
            } else {
                " (no --dlq: dropped)"
            }
        );
        let Some(sink) = &self.dead_letters else {
            return Ok(());
        };
        let entry = dead_letter_entry(DeadLetter {
            shard_id,
            records,
            condition,
            attempts: pending.attempts,
            last: pending.last.as_ref(),
            function_arn: &self.function_arn,
            stream_arn: &self.stream_arn,
            now: (self.clock)(),
        });
        sink.write(&entry)
    }
}

fn verdict(response: &Response, records: &[EventRecord]) -> Verdict {
    if response.status == 0 {
        return Verdict::Failed(format!(
            "no answer ({})",
            response.error.as_deref().unwrap_or("connection error")
        ));
    }
    if !(200..300).contains(&response.status) {
        return Verdict::Failed(format!(
            "HTTP {}{}",
            response.status,
            response
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    if let Some(error) = &response.function_error {
        return Verdict::Failed(format!("function error ({error})"));
    }
    let failures = match response
        .body
        .as_ref()
        .and_then(|b| b.get("batchItemFailures"))
    {
        None | Some(Value::Null) => return Verdict::Done,
        Some(Value::Array(failures)) => failures,
        Some(_) => return Verdict::Failed("batchItemFailures is not an array".into()),
    };
    let mut first = None::<usize>;
    for failure in failures {
        let Some(id) = failure
            .get("itemIdentifier")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
        else {
            return Verdict::Failed("a batch item failure without an itemIdentifier".into());
        };
        let Some(index) = records.iter().position(|r| r.sequence_number == id) else {
            return Verdict::Failed(format!(
                "batch item failure {id:?} is not a record of the batch"
            ));
        };
        first = Some(first.map_or(index, |f| f.min(index)));
    }
    first.map_or(Verdict::Done, Verdict::RetryFrom)
}

struct DeadLetter<'a> {
    shard_id: &'a str,
    records: &'a [EventRecord],
    condition: &'a str,
    attempts: u32,
    last: Option<&'a Response>,
    function_arn: &'a str,
    stream_arn: &'a str,
    now: DateTime<Utc>,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn arrival(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The on-failure destination record of Lambda for a stream batch.
fn dead_letter_entry(d: DeadLetter<'_>) -> Value {
    let (first, last) = (&d.records[0], &d.records[d.records.len() - 1]);
    let response_context = d.last.map_or_else(
        || json!({}),
        |r| {
            let mut context = json!({
                "statusCode": r.status,
                "executedVersion": r.executed_version.as_deref().unwrap_or("$LATEST"),
            });
            if let Some(error) = &r.function_error {
                context["functionError"] = json!(error);
            }
            context
        },
    );
    json!({
        "requestContext": {
            "requestId": d.last
                .and_then(|r| r.request_id.clone())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            "functionArn": d.function_arn,
            "condition": d.condition,
            "approximateInvokeCount": d.attempts,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": rfc3339(d.now),
        "DDBStreamBatchInfo": {
            "shardId": d.shard_id,
            "startSequenceNumber": first.sequence_number,
            "endSequenceNumber": last.sequence_number,
            "approximateArrivalOfFirstRecord": arrival(first.created),
            "approximateArrivalOfLastRecord": arrival(last.created),
            "batchSize": d.records.len(),
            "streamArn": d.stream_arn,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const NOW: i64 = 1_800_000_000;

    /// Answers from a rule on the sequence numbers of each event; records the events.
    struct Fake<F> {
        rule: F,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl<F: Fn(&[String], usize) -> Response + Sync> Invoker for &Fake<F> {
        fn invoke(&self, event: &Value) -> impl Future<Output = Response> + Send {
            let seqs: Vec<String> = event["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned())
                .collect();
            let mut calls = self.calls.lock().unwrap();
            let response = (self.rule)(&seqs, calls.len());
            calls.push(seqs);
            std::future::ready(response)
        }
    }

    fn fake<F: Fn(&[String], usize) -> Response + Sync>(rule: F) -> Fake<F> {
        Fake {
            rule,
            calls: Mutex::default(),
        }
    }

    fn records(n: u32) -> Vec<EventRecord> {
        (1..=n)
            .map(|i| EventRecord {
                sequence_number: format!("{i:03}"),
                created: NOW - 10,
                json: json!({"dynamodb": {"SequenceNumber": format!("{i:03}")}}),
            })
            .collect()
    }

    fn function_error() -> Response {
        Response {
            status: 200,
            function_error: Some("Unhandled".into()),
            body: Some(json!({"errorMessage": "boom"})),
            ..Response::default()
        }
    }

    fn deliverer<'a, F: Fn(&[String], usize) -> Response + Sync>(
        fake: &'a Fake<F>,
        policy: Policy,
        dlq: &Arc<DeadLetterMemory>,
    ) -> Deliverer<&'a Fake<F>> {
        let sink: Arc<dyn DeadLetters> = dlq.clone();
        Deliverer::new(fake, policy, Some(sink), "arn:function", "arn:stream")
            .with_clock(Arc::new(|| DateTime::from_timestamp(NOW, 0).unwrap()))
    }

    fn policy() -> Policy {
        Policy {
            retry_delay: Duration::ZERO,
            ..Policy::default()
        }
    }

    /// The invokes, each as its sequence numbers joined with commas.
    fn calls<F>(fake: &Fake<F>) -> Vec<String> {
        fake.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.join(","))
            .collect()
    }

    #[tokio::test]
    async fn a_success_is_one_invoke() {
        let fake = fake(|_, _| Response::ok(json!(null)));
        let dlq = Arc::new(DeadLetterMemory::default());
        let report = deliverer(&fake, policy(), &dlq)
            .deliver("shard-1", records(3))
            .await
            .unwrap();
        assert_eq!(
            report,
            Report {
                invocations: 1,
                delivered: 3,
                dead: 0
            }
        );
        assert_eq!(calls(&fake), ["001,002,003"]);
        assert!(dlq.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn success_answers() {
        for body in [
            json!(null),
            json!({}),
            json!({"batchItemFailures": []}),
            json!({"batchItemFailures": null}),
            json!("done"),
        ] {
            let answer = body.clone();
            let fake = fake(move |_, _| Response::ok(answer.clone()));
            let dlq = Arc::new(DeadLetterMemory::default());
            let report = deliverer(&fake, policy(), &dlq)
                .deliver("s", records(2))
                .await
                .unwrap();
            assert_eq!((report.invocations, report.delivered), (1, 2), "{body}");
        }
    }

    #[tokio::test]
    async fn a_partial_failure_retries_from_the_first_failed_record() {
        // 003 and 002 reported the first time; then all is well.
        let fake = fake(|_, call| {
            if call == 0 {
                Response::ok(json!({"batchItemFailures": [
                    {"itemIdentifier": "003"}, {"itemIdentifier": "002"}
                ]}))
            } else {
                Response::ok(json!({"batchItemFailures": []}))
            }
        });
        let dlq = Arc::new(DeadLetterMemory::default());
        let report = deliverer(&fake, policy(), &dlq)
            .deliver("s", records(4))
            .await
            .unwrap();
        assert_eq!(calls(&fake), ["001,002,003,004", "002,003,004"]);
        assert_eq!(
            report,
            Report {
                invocations: 2,
                delivered: 4,
                dead: 0
            }
        );
    }

    #[tokio::test]
    async fn a_record_that_keeps_failing_partially_is_dead_lettered_with_what_follows() {
        let fake =
            fake(|_, _| Response::ok(json!({"batchItemFailures": [{"itemIdentifier": "002"}]})));
        let dlq = Arc::new(DeadLetterMemory::default());
        let report = deliverer(&fake, policy(), &dlq)
            .deliver("s", records(3))
            .await
            .unwrap();
        // The first invoke and three retries.
        assert_eq!(calls(&fake).len(), 4);
        assert_eq!(calls(&fake)[3], "002,003");
        assert_eq!(
            report,
            Report {
                invocations: 4,
                delivered: 1,
                dead: 2
            }
        );
        let entries = dlq.0.lock().unwrap();
        assert_eq!(entries.len(), 1);
        let info = &entries[0]["DDBStreamBatchInfo"];
        assert_eq!(
            (&info["startSequenceNumber"], &info["endSequenceNumber"]),
            (&json!("002"), &json!("003"))
        );
        assert_eq!(info["batchSize"], 2);
        assert_eq!(entries[0]["requestContext"]["approximateInvokeCount"], 4);
        assert_eq!(
            entries[0]["responseContext"],
            json!({"statusCode": 200, "executedVersion": "$LATEST"})
        );
    }

    #[tokio::test]
    async fn bisect_isolates_a_poison_record_then_retries_it() {
        let fake = fake(|seqs, _| {
            if seqs.iter().any(|s| s == "003") {
                function_error()
            } else {
                Response::ok(json!({}))
            }
        });
        let dlq = Arc::new(DeadLetterMemory::default());
        let report = deliverer(&fake, policy(), &dlq)
            .deliver("shard-7", records(5))
            .await
            .unwrap();
        assert_eq!(
            calls(&fake),
            [
                "001,002,003,004,005",
                "001,002,003",
                "001,002",
                "003",
                "003",
                "003",
                "003",
                "004,005",
            ]
        );
        assert_eq!(
            report,
            Report {
                invocations: 8,
                delivered: 4,
                dead: 1
            }
        );
        let entries = dlq.0.lock().unwrap();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(
            entry["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(entry["requestContext"]["functionArn"], "arn:function");
        assert_eq!(entry["requestContext"]["approximateInvokeCount"], 4);
        assert_eq!(
            entry["responseContext"],
            json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
        );
        assert_eq!(entry["version"], "1.0");
        assert_eq!(entry["timestamp"], "2027-01-15T08:00:00.000Z");
        assert_eq!(
            entry["DDBStreamBatchInfo"],
            json!({
                "shardId": "shard-7",
                "startSequenceNumber": "003",
                "endSequenceNumber": "003",
                "approximateArrivalOfFirstRecord": "2027-01-15T07:59:50Z",
                "approximateArrivalOfLastRecord": "2027-01-15T07:59:50Z",
                "batchSize": 1,
                "streamArn": "arn:stream"
            })
        );
        let keys: HashSet<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            HashSet::from([
                "requestContext",
                "responseContext",
                "version",
                "timestamp",
                "DDBStreamBatchInfo"
            ])
        );
    }

    #[tokio::test]
    async fn without_bisect_the_whole_batch_is_retried_then_dead_lettered() {
        let fake = fake(|_, _| Response {
            status: 0,
            error: Some("connection refused".into()),
            ..Response::default()
        });
        let dlq = Arc::new(DeadLetterMemory::default());
        let policy = Policy {
            bisect: false,
            max_retries: 2,
            ..policy()
        };
        let report = deliverer(&fake, policy, &dlq)
            .deliver("s", records(3))
            .await
            .unwrap();
        assert_eq!(calls(&fake), ["001,002,003"; 3]);
        assert_eq!(
            report,
            Report {
                invocations: 3,
                delivered: 0,
                dead: 3
            }
        );
        let entries = dlq.0.lock().unwrap();
        assert_eq!(entries[0]["DDBStreamBatchInfo"]["batchSize"], 3);
        assert_eq!(entries[0]["responseContext"]["statusCode"], 0);
    }

    #[tokio::test]
    async fn server_errors_and_refused_item_lists_fail_the_batch() {
        for (response, retried) in [
            (
                Response {
                    status: 502,
                    ..Response::default()
                },
                true,
            ),
            (
                Response {
                    status: 429,
                    ..Response::default()
                },
                true,
            ),
            (
                Response::ok(json!({"batchItemFailures": [{"itemIdentifier": ""}]})),
                true,
            ),
            (
                Response::ok(json!({"batchItemFailures": [{"itemIdentifier": null}]})),
                true,
            ),
            (
                Response::ok(json!({"batchItemFailures": [{"id": "001"}]})),
                true,
            ),
            (
                Response::ok(json!({"batchItemFailures": [{"itemIdentifier": "999"}]})),
                true,
            ),
            (Response::ok(json!({"batchItemFailures": "001"})), true),
            (
                Response {
                    status: 202,
                    ..Response::default()
                },
                false,
            ),
        ] {
            let first = response.clone();
            let fake = fake(move |_, call| {
                if call == 0 {
                    first.clone()
                } else {
                    Response::ok(json!({}))
                }
            });
            let dlq = Arc::new(DeadLetterMemory::default());
            let policy = Policy {
                bisect: false,
                ..policy()
            };
            let report = deliverer(&fake, policy, &dlq)
                .deliver("s", records(2))
                .await
                .unwrap();
            let expected = if retried { 2 } else { 1 };
            assert_eq!(report.invocations, expected, "{response:?}");
            assert_eq!(report.delivered, 2);
        }
    }

    #[tokio::test]
    async fn records_past_the_maximum_age_are_dead_lettered_without_an_invoke() {
        let fake = fake(|_, _| Response::ok(json!({})));
        let dlq = Arc::new(DeadLetterMemory::default());
        let mut batch = records(3);
        batch[0].created = NOW - 3601;
        batch[1].created = NOW - 3601;
        let report = deliverer(&fake, policy(), &dlq)
            .deliver("s", batch)
            .await
            .unwrap();
        assert_eq!(calls(&fake), ["003"]);
        assert_eq!(
            report,
            Report {
                invocations: 1,
                delivered: 1,
                dead: 2
            }
        );
        {
            let entries = dlq.0.lock().unwrap();
            assert_eq!(
                entries[0]["requestContext"]["condition"],
                "RecordAgeExceeded"
            );
            assert_eq!(entries[0]["requestContext"]["approximateInvokeCount"], 0);
            assert_eq!(entries[0]["responseContext"], json!({}));
            assert_eq!(entries[0]["DDBStreamBatchInfo"]["batchSize"], 2);
        }

        // No limit: nothing is too old.
        let fake2 = self::fake(|_, _| Response::ok(json!({})));
        let mut batch = records(1);
        batch[0].created = 0;
        let policy = Policy {
            max_record_age: None,
            ..policy()
        };
        let report = deliverer(&fake2, policy, &dlq)
            .deliver("s", batch)
            .await
            .unwrap();
        assert_eq!(report.delivered, 1);
    }

    #[tokio::test]
    async fn without_a_sink_undeliverable_records_are_dropped() {
        let fake = fake(|_, _| function_error());
        let policy = Policy {
            max_retries: 0,
            ..policy()
        };
        let deliverer = Deliverer::new(&fake, policy, None, "f", "s");
        let report = deliverer.deliver("s", records(2)).await.unwrap();
        // Two records: the batch, then each half once.
        assert_eq!(
            report,
            Report {
                invocations: 3,
                delivered: 0,
                dead: 2
            }
        );
    }

    #[test]
    fn the_file_sink_appends_lines() {
        let path =
            std::env::temp_dir().join(format!("stream-relay-dlq-{}.jsonl", uuid::Uuid::new_v4()));
        let sink = DeadLetterFile::new(&path);
        sink.write(&json!({"a": 1})).unwrap();
        sink.write(&json!({"b": 2})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        std::fs::remove_file(path).unwrap();
    }
}
