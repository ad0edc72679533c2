//! Batching of one shard's records, in order: a batch is sent when it holds `batch_size`
//! records, when its first record has waited `window`, when the next record would take the
//! event past Lambda's 6 MB synchronous payload, or when the shard has ended.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::record::EventRecord;

/// Lambda's synchronous invocation payload limit (6 MB), less the `{"Records":[]}` envelope.
pub const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024 - 16;

/// The records of one shard waiting to be sent.
#[derive(Debug)]
pub struct Batcher {
    batch_size: usize,
    window: Duration,
    max_bytes: usize,
    pending: VecDeque<EventRecord>,
    bytes: usize,
    /// When the oldest pending record started waiting.
    since: Option<Instant>,
}

impl Batcher {
    /// A batcher of at most `batch_size` records (at least 1) per batch.
    pub fn new(batch_size: usize, window: Duration) -> Self {
        Self::with_max_bytes(batch_size, window, MAX_EVENT_BYTES)
    }

    /// The same with another payload limit.
    pub fn with_max_bytes(batch_size: usize, window: Duration, max_bytes: usize) -> Self {
        Self {
            batch_size: batch_size.max(1),
            window,
            max_bytes,
            pending: VecDeque::new(),
            bytes: 0,
            since: None,
        }
    }

    /// Adds a record that arrived at `now`.
    pub fn push(&mut self, record: EventRecord, now: Instant) {
        self.bytes += record.size();
        self.pending.push_back(record);
        self.since.get_or_insert(now);
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// True when a batch is due at `now` (or, with `flush`, whenever records wait).
    pub fn ready(&self, now: Instant, flush: bool) -> bool {
        match self.since {
            None => false,
            Some(since) => {
                flush
                    || self.pending.len() >= self.batch_size
                    || self.bytes > self.max_bytes
                    || now.saturating_duration_since(since) >= self.window
            }
        }
    }

    /// The next batch when one is due: the oldest records, up to the batch size and the
    /// payload limit (always at least one record).
    pub fn next(&mut self, now: Instant, flush: bool) -> Option<Vec<EventRecord>> {
        if !self.ready(now, flush) {
            return None;
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(record) = self.pending.front() {
            let size = record.size();
            if batch.len() == self.batch_size
                || (!batch.is_empty() && bytes + size > self.max_bytes)
            {
                break;
            }
            bytes += size;
            batch.extend(self.pending.pop_front());
        }
        self.bytes -= bytes;
        // What is left starts a new window.
        self.since = (!self.pending.is_empty()).then_some(now);
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(seq: u32) -> EventRecord {
        EventRecord {
            sequence_number: seq.to_string(),
            created: 0,
            json: json!({"dynamodb": {"SequenceNumber": seq.to_string()}}),
        }
    }

    fn seqs(batch: &[EventRecord]) -> Vec<&str> {
        batch.iter().map(|r| r.sequence_number.as_str()).collect()
    }

    #[test]
    fn a_full_batch_goes_at_once_in_order() {
        let t0 = Instant::now();
        let mut batcher = Batcher::new(3, Duration::from_secs(2));
        for seq in 1..=7 {
            batcher.push(record(seq), t0);
        }
        assert_eq!(seqs(&batcher.next(t0, false).unwrap()), ["1", "2", "3"]);
        assert_eq!(seqs(&batcher.next(t0, false).unwrap()), ["4", "5", "6"]);
        // One left: it waits for its window.
        assert!(batcher.next(t0, false).is_none());
        assert_eq!(batcher.len(), 1);
        assert!(batcher
            .next(t0 + Duration::from_millis(1999), false)
            .is_none());
        let last = batcher.next(t0 + Duration::from_secs(2), false).unwrap();
        assert_eq!(seqs(&last), ["7"]);
        assert!(batcher.is_empty());
        assert!(batcher.next(t0 + Duration::from_secs(9), true).is_none());
    }

    #[test]
    fn the_window_runs_from_the_first_waiting_record() {
        let t0 = Instant::now();
        let mut batcher = Batcher::new(100, Duration::from_secs(2));
        batcher.push(record(1), t0);
        batcher.push(record(2), t0 + Duration::from_secs(1));
        assert!(batcher
            .next(t0 + Duration::from_millis(1500), false)
            .is_none());
        let batch = batcher.next(t0 + Duration::from_secs(2), false).unwrap();
        assert_eq!(seqs(&batch), ["1", "2"]);
        // A new record after that waits a window of its own.
        let t1 = t0 + Duration::from_secs(5);
        batcher.push(record(3), t1);
        assert!(batcher.next(t1 + Duration::from_secs(1), false).is_none());
        assert_eq!(seqs(&batcher.next(t1, true).unwrap()), ["3"], "flush");
    }

    #[test]
    fn a_zero_window_sends_what_there_is() {
        let t0 = Instant::now();
        let mut batcher = Batcher::new(10, Duration::ZERO);
        batcher.push(record(1), t0);
        batcher.push(record(2), t0);
        assert_eq!(seqs(&batcher.next(t0, false).unwrap()), ["1", "2"]);
    }

    #[test]
    fn the_payload_limit_cuts_batches() {
        let t0 = Instant::now();
        let size = record(1).size();
        let mut batcher = Batcher::with_max_bytes(100, Duration::from_secs(60), size * 2);
        for seq in 1..=3 {
            batcher.push(record(seq), t0);
        }
        // Over the limit: due before the window, two records at a time.
        assert_eq!(seqs(&batcher.next(t0, false).unwrap()), ["1", "2"]);
        assert!(batcher.next(t0, false).is_none());
        // A record bigger than the limit still goes, alone.
        let mut batcher = Batcher::with_max_bytes(100, Duration::ZERO, 1);
        batcher.push(record(1), t0);
        batcher.push(record(2), t0);
        assert_eq!(seqs(&batcher.next(t0, false).unwrap()), ["1"]);
        assert_eq!(seqs(&batcher.next(t0, false).unwrap()), ["2"]);
    }
}
