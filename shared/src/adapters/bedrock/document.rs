//! The one bridge between `serde_json::Value` and `aws_smithy_types::Document`.
//!
//! Bedrock carries tool inputs, tool JSON results and input schemas as Smithy documents;
//! the domain speaks `serde_json::Value`. Numbers keep their kind: unsigned and negative
//! integers stay integers, everything else is a float.

use std::collections::HashMap;

use aws_smithy_types::{Document, Number};
use serde_json::{Map, Value};

/// Converts a JSON value to a Smithy document.
pub fn to_document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or(f64::NAN))
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(items) => Document::Array(items.iter().map(to_document).collect()),
        Value::Object(fields) => Document::Object(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), to_document(value)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// Converts a Smithy document to a JSON value. A non-finite float (which JSON cannot hold)
/// becomes `null`.
pub fn to_value(document: &Document) -> Value {
    match document {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Document::String(s) => Value::String(s.clone()),
        Document::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        Document::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), to_value(value)))
                .collect::<Map<_, _>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_json_type_round_trips() {
        let value = json!({
            "null": null,
            "true": true,
            "false": false,
            "zero": 0,
            "positive": 42,
            "big": u64::MAX,
            "negative": -7,
            "most_negative": i64::MIN,
            "float": 1.5,
            "negative_float": -0.25,
            "string": "héllo \"quoted\" \n",
            "empty_string": "",
            "array": [1, "two", null, [3.5], {"four": 4}],
            "empty_array": [],
            "object": {"nested": {"deeper": [true]}},
            "empty_object": {}
        });
        assert_eq!(to_value(&to_document(&value)), value);
    }

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(to_document(&json!(3)), Document::Number(Number::PosInt(3)));
        assert_eq!(
            to_document(&json!(-3)),
            Document::Number(Number::NegInt(-3))
        );
        assert_eq!(
            to_document(&json!(3.25)),
            Document::Number(Number::Float(3.25))
        );
    }

    #[test]
    fn non_finite_floats_become_null() {
        assert_eq!(
            to_value(&Document::Number(Number::Float(f64::NAN))),
            Value::Null
        );
        assert_eq!(
            to_value(&Document::Number(Number::Float(f64::INFINITY))),
            Value::Null
        );
    }

    #[test]
    fn documents_from_the_sdk_convert_to_the_same_json() {
        let document = Document::Object(HashMap::from([
            ("n".to_owned(), Document::Number(Number::NegInt(-1))),
            (
                "list".to_owned(),
                Document::Array(vec![Document::Bool(true), Document::Null]),
            ),
        ]));
        assert_eq!(to_value(&document), json!({"n": -1, "list": [true, null]}));
    }
}
