//! The memory extractor: the table's DynamoDB Stream (new images of committed messages, by the
//! event source mapping's filter) in, long-term records of each turn's user out.
//!
//! A batch is grouped into turns (user, session, turn), each learned from with one forced
//! `record_memories` call ([`shared::learning::Learner`]), several at once. A turn that fails
//! is reported in `batchItemFailures` by the sequence number of its first record, so the event
//! source mapping retries from there (and bisects, and finally sends the rest to the
//! dead-letter queue); records that are not messages, or cannot be read, are skipped and
//! counted, since a retry could not read them either. Nothing of the conversation is logged.

use std::collections::BTreeMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use shared::domain::message::{ContentBlock, Message, Role};
use shared::learning::Learner;
use tokio::time::Instant;

/// Turns learned from at once.
pub const CONCURRENT_TURNS: usize = 8;

/// A turn's messages from one batch, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnMessages {
    /// The owner.
    pub user_id: String,
    /// The session.
    pub session_id: String,
    /// The turn.
    pub turn: u64,
    /// When its first message was stored.
    pub stored_at: DateTime<Utc>,
    /// Its messages, by seq.
    pub messages: Vec<Message>,
    /// The sequence number of its first record in the stream.
    pub first_sequence: String,
}

/// The message item's attributes that matter here (the session table's schema).
#[derive(Deserialize)]
struct MessageImage {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    seq: u64,
    turn: u64,
    role: String,
    content: String,
    created_at: String,
}

/// Why a record was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// Not a message item (another kind of item, a removal).
    NotAMessage,
    /// A message item that could not be read.
    Malformed,
}

/// The user and session of a session partition key (`USER#<user>#SESSION#<session>`).
fn owner(pk: &str) -> Option<(String, String)> {
    let rest = pk.strip_prefix("USER#")?;
    let (user, session) = rest.split_once("#SESSION#")?;
    let decode = shared::adapters::dynamodb::keys::decode;
    Some((decode(user), decode(session)))
}

fn message(record: &EventRecord) -> Result<(MessageImage, Message, String), Skipped> {
    if record.event_name != "INSERT" || record.change.new_image.is_empty() {
        return Err(Skipped::NotAMessage);
    }
    let image: MessageImage = serde_dynamo::from_item(record.change.new_image.clone())
        .map_err(|_| Skipped::NotAMessage)?;
    if !image.sk.starts_with("MSG#") {
        return Err(Skipped::NotAMessage);
    }
    let role = match image.role.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => return Err(Skipped::Malformed),
    };
    let content: Vec<ContentBlock> =
        serde_json::from_str(&image.content).map_err(|_| Skipped::Malformed)?;
    let sequence = record
        .change
        .sequence_number
        .clone()
        .ok_or(Skipped::Malformed)?;
    Ok((image, Message { role, content }, sequence))
}

/// The batch's turns in stream order, and what was skipped.
pub fn turns(event: &Event) -> (Vec<TurnMessages>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    // (user, session, turn) -> (index of its first record, messages by seq, the turn)
    type Gathered = (usize, Vec<(u64, Message)>, TurnMessages);
    let mut by_turn: BTreeMap<(String, String, u64), Gathered> = BTreeMap::new();
    for (index, record) in event.records.iter().enumerate() {
        let (image, message, sequence) = match message(record) {
            Ok(found) => found,
            Err(why) => {
                skipped.push(why);
                continue;
            }
        };
        let (Some((user_id, session_id)), Ok(stored_at)) = (
            owner(&image.pk),
            DateTime::parse_from_rfc3339(&image.created_at).map(|at| at.with_timezone(&Utc)),
        ) else {
            skipped.push(Skipped::Malformed);
            continue;
        };
        let entry = by_turn
            .entry((user_id.clone(), session_id.clone(), image.turn))
            .or_insert_with(|| {
                (
                    index,
                    Vec::new(),
                    TurnMessages {
                        user_id,
                        session_id,
                        turn: image.turn,
                        stored_at,
                        messages: Vec::new(),
                        first_sequence: sequence,
                    },
                )
            });
        entry.2.stored_at = entry.2.stored_at.min(stored_at);
        entry.1.push((image.seq, message));
    }
    let mut found: Vec<(usize, TurnMessages)> = by_turn
        .into_values()
        .map(|(index, mut messages, mut turn)| {
            messages.sort_by_key(|(seq, _)| *seq);
            turn.messages = messages.into_iter().map(|(_, m)| m).collect();
            (index, turn)
        })
        .collect();
    found.sort_by_key(|(index, _)| *index);
    (found.into_iter().map(|(_, turn)| turn).collect(), skipped)
}

/// Learns from every turn of `event` before `deadline`; the failed turns' first records are
/// the batch item failures.
pub async fn handle(learner: &Learner, event: Event, deadline: Instant) -> DynamoDbEventResponse {
    let (found, skipped) = turns(&event);
    if !skipped.is_empty() {
        tracing::info!(
            skipped = skipped.len(),
            "records that are not readable messages skipped"
        );
    }
    let outcomes: Vec<(String, Result<shared::learning::Learned, String>)> =
        futures::stream::iter(found.iter())
            .map(|turn| async move {
                let outcome = learner
                    .learn(
                        &turn.user_id,
                        &turn.session_id,
                        turn.stored_at,
                        &turn.messages,
                        deadline,
                    )
                    .await
                    .map_err(|error| error.to_string());
                (turn.first_sequence.clone(), outcome)
            })
            .buffer_unordered(CONCURRENT_TURNS)
            .collect()
            .await;
    let mut response = DynamoDbEventResponse::default();
    let (mut written, mut cost) = (0, 0.0);
    for (sequence, outcome) in outcomes {
        match outcome {
            Ok(learned) => {
                written += learned.written;
                cost += learned.ledger.total_usd;
            }
            Err(error) => {
                tracing::warn!(%error, "learning from a turn failed; the batch is retried from it");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence);
                response.batch_item_failures.push(failure);
            }
        }
    }
    tracing::info!(
        turns = found.len(),
        failed = response.batch_item_failures.len(),
        records_written = written,
        cost_usd = cost,
        "batch learned"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        serde_json::from_str(include_str!("../../../events/memory-stream.json")).expect("sample")
    }

    #[test]
    fn the_sample_event_is_one_turn_of_its_user_and_session() {
        let (found, skipped) = turns(&sample());
        assert!(skipped.is_empty());
        assert_eq!(found.len(), 1);
        let turn = &found[0];
        assert_eq!(
            (turn.user_id.as_str(), turn.session_id.as_str(), turn.turn),
            ("u-alice", "s-1", 1)
        );
        assert_eq!(turn.messages.len(), 2);
        assert_eq!(
            turn.messages[0].text(),
            "My favourite colour is blue. I live in Lisbon."
        );
        assert_eq!(turn.messages[1].role, Role::Assistant);
        assert_eq!(turn.first_sequence, "100000000000000000001");
    }

    #[test]
    fn other_items_and_unreadable_messages_are_skipped_and_ids_are_decoded() {
        let mut event = sample();
        event.records[1].change.new_image.insert(
            "SK".into(),
            serde_dynamo::AttributeValue::S("TRACE#0000000001".into()),
        );
        event.records[0].change.new_image.insert(
            "PK".into(),
            serde_dynamo::AttributeValue::S("USER#a%23b#SESSION#s%231".into()),
        );
        let (found, skipped) = turns(&event);
        assert_eq!(skipped, vec![Skipped::NotAMessage]);
        assert_eq!(
            (found[0].user_id.as_str(), found[0].session_id.as_str()),
            ("a#b", "s#1")
        );
        let mut broken = sample();
        broken.records[0].change.new_image.insert(
            "content".into(),
            serde_dynamo::AttributeValue::S("not json".into()),
        );
        assert_eq!(turns(&broken).1, vec![Skipped::Malformed]);
    }
}
