//! Reading the table's stream as the event source mapping does: every shard, in order,
//! following the shard lineage (a child shard is read once its parent has ended) and picking
//! up new shards as the stream makes them.
//!
//! At start, with LATEST, each open shard is read from its latest record and closed shards
//! are skipped; with TRIM_HORIZON (`--from-start`), every shard from its oldest record, parents
//! first. A shard found later is read from its start. After an expired iterator the shard is
//! read again after its last record seen. No checkpoint is kept: a restarted relay starts
//! anew.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::types::{Shard as StreamShard, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client as StreamsClient;

use crate::aws::Clients;
use crate::batch::Batcher;
use crate::deliver::{DeadLetters, Deliverer, Invoker, Policy};
use crate::filter::Filter;
use crate::record::event_record;

/// Most records one GetRecords returns (the API's limit).
const PAGE: i32 = 1000;

/// Rounds between two DescribeStream calls (looking for new shards).
const DISCOVER_EVERY: u32 = 8;

/// The event source mapping's settings.
#[derive(Clone)]
pub struct Settings {
    /// The table whose stream is read.
    pub table: String,
    /// The function invoked (a name or an ARN).
    pub function: String,
    /// Only records that match are sent; `None` sends all.
    pub filter: Option<Filter>,
    /// BatchSize.
    pub batch_size: usize,
    /// MaximumBatchingWindowInSeconds.
    pub batching_window: Duration,
    /// Retries, bisect, record age.
    pub policy: Policy,
    /// TRIM_HORIZON instead of LATEST.
    pub from_start: bool,
    /// Wait between two reads of the stream.
    pub poll_interval: Duration,
    /// The on-failure destination; `None` drops what cannot be delivered.
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
}

impl Settings {
    /// The contract's settings for `table` and `function`, with no filter and no destination.
    pub fn new(table: impl Into<String>, function: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            function: function.into(),
            filter: None,
            batch_size: 100,
            batching_window: Duration::from_secs(2),
            policy: Policy::default(),
            from_start: false,
            poll_interval: Duration::from_millis(250),
            dead_letters: None,
        }
    }
}

#[derive(Debug)]
enum State {
    /// Not read yet (its parent has not ended), then from this position.
    Waiting(ShardIteratorType),
    Reading(String),
    /// No more records: what waits is sent, then the shard is done.
    Ended,
    Done,
}

#[derive(Debug)]
struct Shard {
    id: String,
    parent: Option<String>,
    state: State,
    start: ShardIteratorType,
    last_sequence_number: Option<String>,
    batcher: Batcher,
}

/// A relay connected to the stream, ready to run.
pub struct Relay<I> {
    streams: StreamsClient,
    stream_arn: String,
    region: String,
    filter: Option<Filter>,
    batch_size: usize,
    window: Duration,
    poll_interval: Duration,
    deliverer: Deliverer<I>,
    shards: Vec<Shard>,
    rounds: u32,
}

/// The ARN of a function given by name, as the dead-letter entries name it.
pub fn function_arn(function: &str, region: &str) -> String {
    if function.starts_with("arn:") {
        function.to_owned()
    } else {
        format!("arn:aws:lambda:{region}:000000000000:function:{function}")
    }
}

/// The stream of `table` (DescribeTable's LatestStreamArn), and its view type.
pub async fn stream_arn(clients: &Clients, table: &str) -> Result<(String, String)> {
    let described = clients
        .dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))
        .with_context(|| format!("DescribeTable {table}"))?;
    let table_description = described
        .table()
        .ok_or_else(|| anyhow!("DescribeTable {table}: no table in the answer"))?;
    let specification = table_description.stream_specification();
    let arn = table_description
        .latest_stream_arn()
        .filter(|_| specification.is_some_and(|s| s.stream_enabled()))
        .ok_or_else(|| {
            anyhow!(
                "table {table} has no stream: create it with scripts/create-table.py \
                 (StreamSpecification NEW_IMAGE)"
            )
        })?;
    let view = specification
        .and_then(|s| s.stream_view_type())
        .map_or("", |v| v.as_str());
    Ok((arn.to_owned(), view.to_owned()))
}

impl<I: Invoker + Sync> Relay<I> {
    /// Finds the table's stream and positions every shard (LATEST iterators are taken here,
    /// so whatever is written after this returns is seen).
    pub async fn connect(clients: &Clients, settings: Settings, invoker: I) -> Result<Self> {
        let (stream_arn, view) = stream_arn(clients, &settings.table).await?;
        let deliverer = Deliverer::new(
            invoker,
            settings.policy.clone(),
            settings.dead_letters.clone(),
            function_arn(&settings.function, &clients.region),
            stream_arn.clone(),
        );
        let mut relay = Self {
            streams: clients.streams.clone(),
            stream_arn,
            region: clients.region.clone(),
            filter: settings.filter,
            batch_size: settings.batch_size,
            window: settings.batching_window,
            poll_interval: settings.poll_interval,
            deliverer,
            shards: Vec::new(),
            rounds: 0,
        };
        let start = if settings.from_start {
            ShardIteratorType::TrimHorizon
        } else {
            ShardIteratorType::Latest
        };
        for shard in relay.describe_shards().await? {
            let Some(id) = shard.shard_id() else { continue };
            let open = shard
                .sequence_number_range()
                .is_none_or(|r| r.ending_sequence_number().is_none());
            let state = match &start {
                ShardIteratorType::Latest if !open => State::Done,
                ShardIteratorType::Latest => {
                    State::Reading(relay.iterator(id, ShardIteratorType::Latest, None).await?)
                }
                _ => State::Waiting(ShardIteratorType::TrimHorizon),
            };
            relay
                .shards
                .push(relay.shard(&shard, id, state, start.clone()));
        }
        tracing::info!(
            table = settings.table,
            stream = relay.stream_arn,
            view,
            function = settings.function,
            shards = relay.shards.len(),
            start = start.as_str(),
            "relaying the table's stream"
        );
        Ok(relay)
    }

    /// The stream's ARN.
    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// Reads and delivers until `shutdown` completes. Fails only when the dead-letter file
    /// cannot be written; stream errors are logged and retried.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        loop {
            let full = tokio::select! {
                () = &mut shutdown => return Ok(()),
                round = self.round() => round?,
            };
            if !full {
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(self.poll_interval) => {}
                }
            }
        }
    }

    /// One pass over the shards; true when a read returned a full page (read again at once).
    async fn round(&mut self) -> Result<bool> {
        if self.rounds % DISCOVER_EVERY == DISCOVER_EVERY - 1 {
            if let Err(err) = self.discover().await {
                tracing::warn!("DescribeStream failed: {err:#}");
            }
        }
        self.rounds = self.rounds.wrapping_add(1);
        let mut full = false;
        let mut ended = false;
        for index in 0..self.shards.len() {
            self.start_if_ready(index).await;
            full |= self.read(index).await;
            let shard = &mut self.shards[index];
            let flush = matches!(shard.state, State::Ended);
            while let Some(batch) = shard.batcher.next(Instant::now(), flush) {
                self.deliverer
                    .deliver(&shard.id, batch)
                    .await
                    .context("writing the dead-letter file")?;
            }
            if flush && shard.batcher.is_empty() {
                tracing::info!(shard = shard.id, "shard ended");
                shard.state = State::Done;
                ended = true;
            }
        }
        if ended {
            // Its children, if the stream has made them already.
            self.rounds = DISCOVER_EVERY - 1;
        }
        Ok(full)
    }

    /// Takes an iterator for a waiting shard whose parent is done (or unknown).
    async fn start_if_ready(&mut self, index: usize) {
        let State::Waiting(position) = &self.shards[index].state else {
            return;
        };
        let position = position.clone();
        let parent_pending = self.shards[index].parent.as_ref().is_some_and(|parent| {
            self.shards
                .iter()
                .any(|s| &s.id == parent && !matches!(s.state, State::Done))
        });
        if parent_pending {
            return;
        }
        let id = self.shards[index].id.clone();
        let after = self.shards[index].last_sequence_number.clone();
        match self.iterator(&id, position, after).await {
            Ok(iterator) => self.shards[index].state = State::Reading(iterator),
            Err(err) => tracing::warn!(shard = id, "GetShardIterator failed: {err:#}"),
        }
    }

    /// One GetRecords on a shard being read: its records, filtered, to the batcher; true when
    /// the page was full.
    async fn read(&mut self, index: usize) -> bool {
        let State::Reading(iterator) = &self.shards[index].state else {
            return false;
        };
        let answer = self
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(PAGE)
            .send()
            .await;
        let shard = &mut self.shards[index];
        let output = match answer {
            Ok(output) => output,
            Err(err) => {
                let position = match err.as_service_error() {
                    Some(GetRecordsError::ExpiredIteratorException(_)) => {
                        Some(if shard.last_sequence_number.is_some() {
                            ShardIteratorType::AfterSequenceNumber
                        } else {
                            shard.start.clone()
                        })
                    }
                    Some(GetRecordsError::TrimmedDataAccessException(_)) => {
                        shard.last_sequence_number = None;
                        Some(ShardIteratorType::TrimHorizon)
                    }
                    Some(GetRecordsError::ResourceNotFoundException(_)) => {
                        shard.state = State::Ended;
                        None
                    }
                    _ => None,
                };
                tracing::warn!(
                    shard = shard.id,
                    "GetRecords failed: {}",
                    aws_sdk_dynamodbstreams::error::DisplayErrorContext(&err)
                );
                if let Some(position) = position {
                    shard.state = State::Waiting(position);
                }
                return false;
            }
        };
        let now = Instant::now();
        let (mut kept, mut skipped) = (0usize, 0usize);
        for record in output.records() {
            let record = match event_record(record, &self.region, &self.stream_arn) {
                Ok(record) => record,
                Err(err) => {
                    tracing::warn!(shard = shard.id, "record skipped: {err:#}");
                    continue;
                }
            };
            shard.last_sequence_number = Some(record.sequence_number.clone());
            if self.filter.as_ref().is_none_or(|f| f.matches(&record.json)) {
                shard.batcher.push(record, now);
                kept += 1;
            } else {
                skipped += 1;
            }
        }
        if kept + skipped > 0 {
            tracing::debug!(shard = shard.id, kept, skipped, "records read");
        }
        shard.state = match output.next_shard_iterator() {
            Some(next) => State::Reading(next.to_owned()),
            None => State::Ended,
        };
        output.records().len() >= PAGE as usize
    }

    /// Adds the shards the stream has made since the last look (read from their start).
    async fn discover(&mut self) -> Result<()> {
        for shard in self.describe_shards().await? {
            let Some(id) = shard.shard_id() else { continue };
            if self.shards.iter().any(|s| s.id == id) {
                continue;
            }
            tracing::info!(shard = id, parent = shard.parent_shard_id(), "new shard");
            let state = State::Waiting(ShardIteratorType::TrimHorizon);
            let new = self.shard(&shard, id, state, ShardIteratorType::TrimHorizon);
            self.shards.push(new);
        }
        Ok(())
    }

    fn shard(
        &self,
        shard: &StreamShard,
        id: &str,
        state: State,
        start: ShardIteratorType,
    ) -> Shard {
        Shard {
            id: id.to_owned(),
            parent: shard.parent_shard_id().map(str::to_owned),
            state,
            start,
            last_sequence_number: None,
            batcher: Batcher::new(self.batch_size, self.window),
        }
    }

    /// Every shard of the stream (DescribeStream, all pages), parents before children.
    async fn describe_shards(&self) -> Result<Vec<StreamShard>> {
        let mut shards = Vec::new();
        let mut start = None::<String>;
        loop {
            let page = self
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| {
                    anyhow!(aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())
                })
                .context("DescribeStream")?;
            let description = page
                .stream_description()
                .ok_or_else(|| anyhow!("DescribeStream: no description"))?;
            shards.extend(description.shards().iter().cloned());
            match description.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_owned()),
                None => break,
            }
        }
        Ok(lineage_order(shards))
    }

    async fn iterator(
        &self,
        shard_id: &str,
        position: ShardIteratorType,
        after: Option<String>,
    ) -> Result<String> {
        let after = after.filter(|_| position == ShardIteratorType::AfterSequenceNumber);
        let answer = self
            .streams
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard_id)
            .shard_iterator_type(position)
            .set_sequence_number(after)
            .send()
            .await
            .map_err(
                |e| anyhow!(aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string()),
            )
            .with_context(|| format!("GetShardIterator {shard_id}"))?;
        answer
            .shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("GetShardIterator {shard_id}: no iterator (shard ended)"))
    }
}

/// Shards ordered so that a parent comes before its children (stable otherwise).
fn lineage_order(shards: Vec<StreamShard>) -> Vec<StreamShard> {
    let ids: HashMap<String, usize> = shards
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((s.shard_id()?.to_owned(), i)))
        .collect();
    let depth = |mut index: usize| {
        let mut depth = 0;
        while let Some(parent) = shards[index].parent_shard_id().and_then(|p| ids.get(p)) {
            depth += 1;
            index = *parent;
            if depth > shards.len() {
                break;
            }
        }
        depth
    };
    let mut order: Vec<(usize, usize)> = (0..shards.len()).map(|i| (depth(i), i)).collect();
    order.sort();
    let mut shards: Vec<Option<StreamShard>> = shards.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|(_, i)| shards[i].take())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parent: Option<&str>) -> StreamShard {
        StreamShard::builder()
            .shard_id(id)
            .set_parent_shard_id(parent.map(str::to_owned))
            .build()
    }

    #[test]
    fn parents_come_before_children() {
        let shards = vec![
            shard("c", Some("b")),
            shard("x", None),
            shard("b", Some("a")),
            shard("a", Some("gone")),
        ];
        let ids: Vec<_> = lineage_order(shards)
            .iter()
            .map(|s| s.shard_id().unwrap().to_owned())
            .collect();
        assert_eq!(ids, ["x", "a", "b", "c"]);
    }

    #[test]
    fn functions_are_named_by_arn() {
        assert_eq!(
            function_arn("memory-extractor", "us-east-1"),
            "arn:aws:lambda:us-east-1:000000000000:function:memory-extractor"
        );
        assert_eq!(function_arn("arn:aws:lambda:x", "y"), "arn:aws:lambda:x");
    }
}
