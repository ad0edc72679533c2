//! A local stand-in for Lambda's DynamoDB Streams **event source mapping**: reads a table's
//! stream and invokes a function through the Lambda Invoke API
//! (`POST {AWS_ENDPOINT_URL_LAMBDA}/2015-03-31/functions/{name}/invocations`, RequestResponse),
//! with exactly the event Lambda sends, so that local runs and tests take the path the
//! deployed stack takes. Locally the table is DynamoDB Local's (which has Streams) and the
//! Invoke API is `cargo lambda watch`'s. Development and test tool only; never deployed.
//!
//! What it does, as the contract's mapping is configured (StartingPosition LATEST, BatchSize
//! 100, MaximumBatchingWindowInSeconds 2, BisectBatchOnFunctionError, MaximumRetryAttempts 3,
//! MaximumRecordAgeInSeconds 3600, ReportBatchItemFailures, an on-failure destination):
//!
//! - [`relay`]: finds the stream (DescribeTable's LatestStreamArn), reads every shard in order
//!   (DescribeStream, GetShardIterator, GetRecords), follows the shard lineage and new shards;
//! - [`filter`]: keeps the records that match the filter (the subset of Lambda's event
//!   filtering rules the project's patterns need; see there), before batching, as Lambda does;
//! - [`record`]: each record as Lambda's DynamoDB event record (`eventVersion` 1.1, images in
//!   DynamoDB JSON, `ApproximateCreationDateTime` in seconds, `eventSourceARN` the stream);
//! - [`batch`]: per shard, in order, up to `batch_size` records or the batching window;
//! - [`deliver`]: invoke, then function errors, partial batch failures, retries, bisection
//!   and the dead-letter file (JSON Lines, Lambda's on-failure destination record);
//! - [`invoke`]: the invoke itself, with `aws-sdk-lambda`; [`aws`]: the clients.
//!
//! It logs one line per invoke (shard, records, sequence numbers, outcome), never the records.
//! It keeps no checkpoint: a restarted relay starts from LATEST again (or TRIM_HORIZON).
//!
//! ```sh
//! stream-relay --table "$TABLE_NAME" --function memory-extractor \
//!   --filter functions/memory-extractor/stream-filter.json --dlq .dev/memory-dlq.jsonl
//! ```

pub mod aws;
pub mod batch;
pub mod deliver;
pub mod filter;
pub mod invoke;
pub mod record;
pub mod relay;

pub use aws::{Clients, Endpoints};
pub use deliver::{DeadLetterFile, DeadLetters, Invoker, Policy, Response};
pub use filter::Filter;
pub use invoke::LambdaInvoker;
pub use relay::{Relay, Settings};
