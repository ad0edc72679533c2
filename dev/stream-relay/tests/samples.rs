//! The files the relay is run with: the extractor's filter and the sample stream event.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use stream_relay::Filter;

fn file(path: &str) -> String {
    let path = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_extractor_filter_is_the_contracts_pattern() {
    let text = file("functions/memory-extractor/stream-filter.json");
    let pattern: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        pattern,
        json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"SK": {"S": [{"prefix": "MSG#"}]}}}})
    );
    Filter::parse(&text).unwrap();
}

#[test]
fn the_sample_memory_stream_event_is_one_committed_turn_that_passes_the_filter() {
    let event: Value = serde_json::from_str(&file("events/memory-stream.json")).unwrap();
    let filter = Filter::parse(&file("functions/memory-extractor/stream-filter.json")).unwrap();
    let records = event["Records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let pk = "USER#u-alice#SESSION#s-1";
    let mut texts = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let seq = i + 1;
        assert!(filter.matches(record), "record {seq} passes the filter");
        assert_eq!(record["eventVersion"], "1.1");
        assert_eq!(record["eventSource"], "aws:dynamodb");
        assert!(record["eventSourceARN"]
            .as_str()
            .is_some_and(|arn| arn.starts_with("arn:aws:dynamodb:") && arn.contains("/stream/")));
        let dynamodb = &record["dynamodb"];
        assert!(dynamodb["ApproximateCreationDateTime"].is_number());
        assert_eq!(dynamodb["StreamViewType"], "NEW_IMAGE");
        let sk = format!("MSG#{seq:010}");
        assert_eq!(dynamodb["Keys"], json!({"PK": {"S": pk}, "SK": {"S": sk}}));
        let image = &dynamodb["NewImage"];
        let names: BTreeSet<&str> = image
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            names,
            BTreeSet::from([
                "PK",
                "SK",
                "content",
                "created_at",
                "expires_at",
                "role",
                "seq",
                "turn"
            ]),
            "the attributes of a message item"
        );
        assert_eq!(image["seq"], json!({"N": seq.to_string()}));
        assert_eq!(image["turn"], json!({"N": "1"}));
        assert_eq!(
            image["role"]["S"],
            if seq == 1 { "user" } else { "assistant" }
        );
        assert!(
            chrono::DateTime::parse_from_rfc3339(image["created_at"]["S"].as_str().unwrap())
                .is_ok()
        );
        let content: Value = serde_json::from_str(image["content"]["S"].as_str().unwrap()).unwrap();
        assert_eq!(content[0]["type"], "text");
        texts.push(content[0]["text"].as_str().unwrap().to_owned());
    }
    assert_eq!(texts[0], "My favourite colour is blue. I live in Lisbon.");
    let typed: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(event).unwrap();
    assert_eq!(typed.records.len(), 2);
}
