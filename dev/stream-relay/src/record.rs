//! Stream records as Lambda hands them to a function: the DynamoDB event's record, with the
//! images in DynamoDB JSON.

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde_json::{json, Map, Value};

/// One record of the event, with what the relay needs to know about it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// `dynamodb.SequenceNumber` (the `itemIdentifier` of a batch item failure).
    pub sequence_number: String,
    /// `dynamodb.ApproximateCreationDateTime`, whole seconds since the epoch.
    pub created: i64,
    /// The record as it goes into `Records`.
    pub json: Value,
}

impl EventRecord {
    /// Its size in the event's JSON (with the separating comma).
    pub fn size(&self) -> usize {
        self.json.to_string().len() + 1
    }
}

/// The event of a batch: `{"Records": [..]}`.
pub fn event(records: &[EventRecord]) -> Value {
    json!({ "Records": records.iter().map(|r| r.json.clone()).collect::<Vec<_>>() })
}

/// An attribute value in DynamoDB JSON (`{"S": ..}`, `{"N": ..}`, `{"B": <base64>}`, ..).
pub fn attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": STANDARD.encode(b.as_ref()) }),
        AttributeValue::Ss(set) => json!({ "SS": set }),
        AttributeValue::Ns(set) => json!({ "NS": set }),
        AttributeValue::Bs(set) => {
            json!({ "BS": set.iter().map(|b| STANDARD.encode(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::L(list) => json!({ "L": list.iter().map(attribute).collect::<Vec<_>>() }),
        AttributeValue::M(map) => json!({ "M": image(map) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        // A type this SDK does not know: nothing faithful can be sent.
        _ => Value::Null,
    }
}

/// An item (keys or image) in DynamoDB JSON.
pub fn image(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect::<Map<_, _>>(),
    )
}

/// The event record of a stream record: what Lambda sends for it, with `awsRegion` and
/// `eventSourceARN` as given.
pub fn event_record(record: &Record, region: &str, stream_arn: &str) -> Result<EventRecord> {
    let stream = record
        .dynamodb()
        .ok_or_else(|| anyhow!("a stream record without `dynamodb`"))?;
    let sequence_number = stream
        .sequence_number()
        .ok_or_else(|| anyhow!("a stream record without a sequence number"))?
        .to_owned();
    let created = stream
        .approximate_creation_date_time()
        .map_or(0, |at| at.secs());
    let mut dynamodb = Map::new();
    dynamodb.insert("ApproximateCreationDateTime".into(), json!(created));
    if let Some(keys) = stream.keys() {
        dynamodb.insert("Keys".into(), image(keys));
    }
    if let Some(new_image) = stream.new_image() {
        dynamodb.insert("NewImage".into(), image(new_image));
    }
    if let Some(old_image) = stream.old_image() {
        dynamodb.insert("OldImage".into(), image(old_image));
    }
    dynamodb.insert("SequenceNumber".into(), json!(sequence_number));
    if let Some(size) = stream.size_bytes() {
        dynamodb.insert("SizeBytes".into(), json!(size));
    }
    if let Some(view) = stream.stream_view_type() {
        dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
    }
    let mut json = Map::new();
    json.insert(
        "eventID".into(),
        json!(record
            .event_id()
            .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)),
    );
    json.insert(
        "eventName".into(),
        json!(record.event_name().map_or("", |name| name.as_str())),
    );
    json.insert("eventVersion".into(), json!("1.1"));
    json.insert("eventSource".into(), json!("aws:dynamodb"));
    json.insert("awsRegion".into(), json!(region));
    json.insert("dynamodb".into(), Value::Object(dynamodb));
    if let Some(identity) = record.user_identity() {
        // TTL deletions: {"type": "Service", "principalId": "dynamodb.amazonaws.com"}.
        json.insert(
            "userIdentity".into(),
            json!({"type": identity.r#type(), "principalId": identity.principal_id()}),
        );
    }
    json.insert("eventSourceARN".into(), json!(stream_arn));
    Ok(EventRecord {
        sequence_number,
        created,
        json: Value::Object(json),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{Identity, OperationType, StreamRecord, StreamViewType};
    use aws_smithy_types::{Blob, DateTime};

    #[test]
    fn every_attribute_type_in_dynamodb_json() {
        let nested = HashMap::from([("k".to_owned(), AttributeValue::N("1.5".into()))]);
        let cases = [
            (AttributeValue::S("hé".into()), json!({"S": "hé"})),
            (AttributeValue::N("-12.5e3".into()), json!({"N": "-12.5e3"})),
            (
                AttributeValue::B(Blob::new(vec![0u8, 1, 254, 255])),
                json!({"B": "AAH+/w=="}),
            ),
            (
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
                json!({"SS": ["a", "b"]}),
            ),
            (
                AttributeValue::Ns(vec!["1".into(), "2".into()]),
                json!({"NS": ["1", "2"]}),
            ),
            (
                AttributeValue::Bs(vec![Blob::new(b"hi".to_vec())]),
                json!({"BS": ["aGk="]}),
            ),
            (
                AttributeValue::L(vec![
                    AttributeValue::Bool(false),
                    AttributeValue::Null(true),
                ]),
                json!({"L": [{"BOOL": false}, {"NULL": true}]}),
            ),
            (AttributeValue::M(nested), json!({"M": {"k": {"N": "1.5"}}})),
            (AttributeValue::Bool(true), json!({"BOOL": true})),
        ];
        for (value, expected) in cases {
            assert_eq!(attribute(&value), expected, "{value:?}");
        }
    }

    fn stream_record() -> Record {
        Record::builder()
            .event_id("e-1")
            .event_name(OperationType::Insert)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("ddblocal")
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(DateTime::from_secs(1_800_000_000))
                    .keys("PK", AttributeValue::S("USER#u#SESSION#s".into()))
                    .keys("SK", AttributeValue::S("MSG#0000000001".into()))
                    .new_image("PK", AttributeValue::S("USER#u#SESSION#s".into()))
                    .new_image("SK", AttributeValue::S("MSG#0000000001".into()))
                    .new_image("seq", AttributeValue::N("1".into()))
                    .sequence_number("000000000000000000101")
                    .size_bytes(77)
                    .stream_view_type(StreamViewType::NewImage)
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_record_as_lambda_sends_it() {
        let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-01-01T00:00:00.000";
        let record = event_record(&stream_record(), "us-east-1", arn).unwrap();
        assert_eq!(record.sequence_number, "000000000000000000101");
        assert_eq!(record.created, 1_800_000_000);
        assert_eq!(
            record.json,
            json!({
                "eventID": "e-1",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_800_000_000,
                    "Keys": {"PK": {"S": "USER#u#SESSION#s"}, "SK": {"S": "MSG#0000000001"}},
                    "NewImage": {
                        "PK": {"S": "USER#u#SESSION#s"},
                        "SK": {"S": "MSG#0000000001"},
                        "seq": {"N": "1"}
                    },
                    "SequenceNumber": "000000000000000000101",
                    "SizeBytes": 77,
                    "StreamViewType": "NEW_IMAGE"
                },
                "eventSourceARN": arn
            })
        );
        assert_eq!(record.size(), record.json.to_string().len() + 1);
        // The function's own event type reads it.
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(event(&[record])).unwrap();
        assert_eq!(event.records.len(), 1);
        assert_eq!(
            event.records[0].change.sequence_number.as_deref(),
            Some("000000000000000000101")
        );
    }

    #[test]
    fn a_ttl_deletion_names_the_service() {
        let mut record = stream_record();
        record.event_name = Some(OperationType::Remove);
        record.user_identity = Some(
            Identity::builder()
                .r#type("Service")
                .principal_id("dynamodb.amazonaws.com")
                .build(),
        );
        let record = event_record(&record, "us-east-1", "arn").unwrap();
        assert_eq!(record.json["eventName"], "REMOVE");
        assert_eq!(
            record.json["userIdentity"],
            json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"})
        );
    }
}
