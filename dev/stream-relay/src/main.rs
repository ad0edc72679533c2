//! `stream-relay`: the event source mapping of a DynamoDB Local stream (see the crate docs).
//!
//!   AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:9000 \
//!     stream-relay --table agent-dev --function memory-extractor \
//!       --filter functions/memory-extractor/stream-filter.json --dlq .dev/logs/memory-dlq.jsonl
//!
//! DynamoDB Streams is reached at `AWS_ENDPOINT_URL_DYNAMODB_STREAMS`, else at DynamoDB's
//! endpoint (DynamoDB Local serves both).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use clap::Parser;
use serde_json::{json, Value};
use stream_relay::{
    dead_letter_record, deliver, event_record, matches, outcome, Invoke, Outcome, RetryPolicy,
};

#[derive(Parser, Debug)]
#[command(
    about = "Reads a DynamoDB Local stream and invokes a Lambda function with the events the event source mapping would send"
)]
struct Args {
    /// The table whose stream is read.
    #[arg(long)]
    table: String,
    /// The function invoked (by name, through AWS_ENDPOINT_URL_LAMBDA).
    #[arg(long)]
    function: String,
    /// A JSON file with the filter pattern (as in FilterCriteria.Filters[].Pattern).
    #[arg(long)]
    filter: Option<PathBuf>,
    /// Most records per invocation.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Longest wait to fill a batch, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    batching_window_ms: u64,
    /// Retries of a failed batch.
    #[arg(long, default_value_t = 3)]
    max_retries: u32,
    /// Records older than this many seconds are given up.
    #[arg(long, default_value_t = 3_600)]
    max_record_age_s: u64,
    /// Split failed batches in two.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    bisect: bool,
    /// Where given-up batches are written, one JSON line each.
    #[arg(long)]
    dlq: Option<PathBuf>,
    /// Start from the oldest record (TRIM_HORIZON) instead of the newest (LATEST).
    #[arg(long)]
    from_start: bool,
    /// Time between reads of a shard, in milliseconds.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
}

struct Lambda {
    client: aws_sdk_lambda::Client,
    function: String,
}

#[async_trait]
impl Invoke for Lambda {
    async fn invoke(&self, batch: &[Value]) -> Outcome {
        let payload = json!({ "Records": batch }).to_string();
        match self
            .client
            .invoke()
            .function_name(&self.function)
            .payload(aws_smithy_types::Blob::new(payload))
            .send()
            .await
        {
            Ok(answer) => outcome(
                answer.function_error(),
                answer.payload().map(|p| p.as_ref()).unwrap_or_default(),
            ),
            Err(error) => Outcome::Failed(format!(
                "invoke failed: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&error)
            )),
        }
    }
}

/// One shard being read: where, and the records waiting for a batch.
struct Shard {
    iterator: Option<String>,
    pending: Vec<Value>,
    since: Option<Instant>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "stream_relay=info".into()),
        )
        .init();
    let args = Args::parse();
    let filter: Option<Value> = match &args.filter {
        Some(path) => Some(serde_json::from_str(&std::fs::read_to_string(path)?)?),
        None => None,
    };
    let sdk = shared::aws::sdk_config().await;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let mut streams_config = aws_sdk_dynamodbstreams::config::Builder::from(&sdk);
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB_STREAMS").is_none() {
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            streams_config = streams_config.endpoint_url(url);
        }
    }
    let streams = aws_sdk_dynamodbstreams::Client::from_conf(streams_config.build());
    let lambda = Lambda {
        client: aws_sdk_lambda::Client::new(&sdk),
        function: args.function.clone(),
    };
    let policy = RetryPolicy {
        max_retries: args.max_retries,
        bisect: args.bisect,
    };

    let table = dynamodb
        .describe_table()
        .table_name(&args.table)
        .send()
        .await?;
    let stream_arn = table
        .table()
        .and_then(|t| t.latest_stream_arn())
        .ok_or_else(|| {
            format!(
                "table {} has no stream (create it with scripts/create-table.py)",
                args.table
            )
        })?
        .to_owned();
    tracing::info!(table = %args.table, function = %args.function, stream = %stream_arn, "relaying");

    let mut shards: BTreeMap<String, Shard> = BTreeMap::new();
    let mut first_listing = true;
    let mut listed_at = Instant::now() - Duration::from_secs(60);
    loop {
        // New shards (DynamoDB Local rolls them over): read from their start; at start-up,
        // from the newest record unless asked otherwise.
        if listed_at.elapsed() >= Duration::from_secs(2) {
            listed_at = Instant::now();
            let described = streams
                .describe_stream()
                .stream_arn(&stream_arn)
                .send()
                .await?;
            for shard in described
                .stream_description()
                .map(|d| d.shards())
                .unwrap_or_default()
            {
                let Some(id) = shard.shard_id() else { continue };
                if shards.contains_key(id) {
                    continue;
                }
                let open = shard
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .is_none();
                let kind = if first_listing && !args.from_start {
                    if !open {
                        // A closed shard at start-up holds only what came before us.
                        shards.insert(
                            id.to_owned(),
                            Shard {
                                iterator: None,
                                pending: Vec::new(),
                                since: None,
                            },
                        );
                        continue;
                    }
                    ShardIteratorType::Latest
                } else {
                    ShardIteratorType::TrimHorizon
                };
                let iterator = streams
                    .get_shard_iterator()
                    .stream_arn(&stream_arn)
                    .shard_id(id)
                    .shard_iterator_type(kind)
                    .send()
                    .await?
                    .shard_iterator()
                    .map(str::to_owned);
                shards.insert(
                    id.to_owned(),
                    Shard {
                        iterator,
                        pending: Vec::new(),
                        since: None,
                    },
                );
            }
            first_listing = false;
        }
        for (shard_id, shard) in shards.iter_mut() {
            if let Some(iterator) = shard.iterator.take() {
                let read = streams
                    .get_records()
                    .shard_iterator(iterator)
                    .send()
                    .await?;
                shard.iterator = read.next_shard_iterator().map(str::to_owned);
                for record in read.records() {
                    let event = event_record(record, &region, &stream_arn);
                    if filter.as_ref().is_none_or(|f| matches(f, Some(&event))) {
                        shard.since.get_or_insert_with(Instant::now);
                        shard.pending.push(event);
                    }
                }
            }
            let full = shard.pending.len() >= args.batch_size;
            let waited = shard
                .since
                .is_some_and(|t| t.elapsed() >= Duration::from_millis(args.batching_window_ms));
            let closed = shard.iterator.is_none() && !shard.pending.is_empty();
            if !(full || waited || closed) {
                continue;
            }
            let take = shard.pending.len().min(args.batch_size);
            let batch: Vec<Value> = shard.pending.drain(..take).collect();
            shard.since = (!shard.pending.is_empty()).then(Instant::now);
            let (fresh, old): (Vec<Value>, Vec<Value>) = batch.into_iter().partition(|r| {
                let created = r["dynamodb"]["ApproximateCreationDateTime"]
                    .as_f64()
                    .unwrap_or(0.0);
                chrono::Utc::now().timestamp() as f64 - created <= args.max_record_age_s as f64
            });
            let count = fresh.len();
            let mut dead = deliver(&lambda, fresh, policy).await;
            if !old.is_empty() {
                dead.push(stream_relay::DeadLetter {
                    records: old,
                    condition: "RecordAgeExceeded",
                    attempts: 0,
                    error: "record older than the maximum age".into(),
                });
            }
            let given_up: usize = dead.iter().map(|d| d.records.len()).sum();
            tracing::info!(shard = %shard_id, records = count, given_up, "batch delivered");
            for letter in &dead {
                let line = dead_letter_record(
                    letter,
                    &args.function,
                    shard_id,
                    &stream_arn,
                    chrono::Utc::now(),
                );
                match &args.dlq {
                    Some(path) => {
                        let mut file = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(path)?;
                        writeln!(file, "{line}")?;
                    }
                    None => tracing::warn!(%line, "batch given up (no --dlq file)"),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
    }
}
