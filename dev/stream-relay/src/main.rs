//! `stream-relay --table T --function F [options]`: plays Lambda's DynamoDB Streams event
//! source mapping locally (see the library's documentation).
//!
//! Endpoints, region and credentials come from the standard environment
//! (`eval "$(scripts/services.sh env)"` sets DynamoDB Local's; `AWS_ENDPOINT_URL_LAMBDA` points
//! at `cargo lambda watch`, e.g. `http://127.0.0.1:9000`). Logs go to stderr (`RUST_LOG`,
//! default `info`). Runs until SIGINT or SIGTERM (exit 0). Bad arguments or an unreadable
//! filter exit 2; a table without a stream, or DynamoDB not answering, exit 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use stream_relay::{
    Clients, DeadLetterFile, DeadLetters, Endpoints, Filter, LambdaInvoker, Policy, Relay, Settings,
};

/// Reads a DynamoDB table's stream and invokes a Lambda function with its records, as Lambda's
/// event source mapping does (local development and tests).
#[derive(Debug, Parser)]
#[command(name = "stream-relay", version)]
struct Args {
    /// The table whose stream is read.
    #[arg(long, env = "TABLE_NAME")]
    table: String,
    /// The function to invoke (a name or an ARN), at AWS_ENDPOINT_URL_LAMBDA.
    #[arg(long)]
    function: String,
    /// Filter criteria: a JSON file with a pattern object (or Lambda's FilterCriteria).
    #[arg(long, value_name = "JSON FILE")]
    filter: Option<PathBuf>,
    /// Most records in one event.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10000))]
    batch_size: u32,
    /// Longest a record waits for its batch to fill, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    batching_window_ms: u64,
    /// Retries of a failed batch before it goes to the dead-letter file.
    #[arg(long, default_value_t = 3)]
    max_retries: u32,
    /// Records older than this (seconds) are not sent but dead-lettered; -1: no limit.
    #[arg(long, default_value_t = 3600, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-1..))]
    max_record_age_s: i64,
    /// Split a failed batch in two and retry each half (on by default; `--bisect false` to
    /// turn it off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    bisect: bool,
    /// The on-failure destination: a JSON Lines file, one entry per skipped batch.
    #[arg(long, value_name = "PATH")]
    dlq: Option<PathBuf>,
    /// Start from the oldest record of the stream (TRIM_HORIZON) instead of LATEST.
    #[arg(long)]
    from_start: bool,
    /// Wait between two reads of the stream, in milliseconds.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .init();

    let filter = match &args.filter {
        None => None,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(anyhow::Error::from)
            .and_then(|text| Filter::parse(&text))
        {
            Ok(filter) => Some(filter),
            Err(err) => {
                eprintln!("stream-relay: --filter {}: {err:#}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let dead_letters = args
        .dlq
        .map(|path| Arc::new(DeadLetterFile::new(path)) as Arc<dyn DeadLetters>);
    let settings = Settings {
        table: args.table,
        function: args.function.clone(),
        filter,
        batch_size: args.batch_size as usize,
        batching_window: Duration::from_millis(args.batching_window_ms),
        policy: Policy {
            max_retries: args.max_retries,
            max_record_age: u64::try_from(args.max_record_age_s)
                .ok()
                .map(Duration::from_secs),
            bisect: args.bisect,
            ..Policy::default()
        },
        from_start: args.from_start,
        poll_interval: Duration::from_millis(args.poll_ms),
        dead_letters,
    };
    let clients = Clients::new(&Endpoints::from_env()).await;
    let invoker = LambdaInvoker::new(clients.lambda.clone(), args.function);
    let relay = match Relay::connect(&clients, settings, invoker).await {
        Ok(relay) => relay,
        Err(err) => {
            eprintln!("stream-relay: {err:#}");
            return ExitCode::from(1);
        }
    };
    match relay.run(shutdown()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stream-relay: {err:#}");
            ExitCode::from(1)
        }
    }
}
