//! Lambda event filtering, the subset that the project's patterns need.
//!
//! A pattern is a JSON object matched against one event record (the record as the function
//! receives it: `eventName`, `dynamodb.NewImage` in DynamoDB JSON, ..). Supported:
//!
//! - nested objects: `{"dynamodb": {"NewImage": {..}}}`; every key of the pattern must match
//!   (AND), and a pattern object matches only an object in the record;
//! - at a leaf, an array of matchers, any of which may match (OR):
//!   - a string: the record's value is that exact string;
//!   - a number: the record's value is a JSON number equal to it (`{"N": "5"}` is a string in
//!     DynamoDB JSON, so it is matched with `"5"`, as on Lambda);
//!   - `null`: the record's value is `null`;
//!   - `{"prefix": "<string>"}`: the record's value is a string that starts with it;
//!   - `{"exists": true | false}`: the key is (or is not) in the record, whatever its value;
//! - a record value that is an array matches when one of its elements matches.
//!
//! Anything else (`anything-but`, `numeric`, `suffix`, `equals-ignore-case`, `wildcard`, `$or`,
//! a leaf that is not an array, ..) is refused when the filter is loaded, never silently
//! ignored.
//!
//! A filter file holds either one pattern object (as the contract writes it) or Lambda's
//! `FilterCriteria`, `{"Filters": [{"Pattern": "<pattern as a JSON string>"}, ..]}`, where a
//! record is kept when any pattern matches.

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{Map, Value};

/// One or more patterns; a record passes when any of them matches.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    patterns: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Object(Vec<(String, Node)>),
    Leaf(Vec<Matcher>),
}

#[derive(Clone, Debug, PartialEq)]
enum Matcher {
    String(String),
    Number(f64),
    Null,
    Prefix(String),
    Exists(bool),
}

impl Filter {
    /// A filter from the text of a filter file: a pattern, or `FilterCriteria`.
    pub fn parse(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text).context("the filter is not JSON")?;
        Self::from_value(&value)
    }

    /// A filter from a pattern object, or from `FilterCriteria`.
    pub fn from_value(value: &Value) -> Result<Self> {
        let object = value
            .as_object()
            .ok_or_else(|| anyhow!("a filter is a JSON object"))?;
        if let Some(filters) = criteria(object) {
            let patterns = filters
                .iter()
                .enumerate()
                .map(|(i, filter)| {
                    let text = filter["Pattern"]
                        .as_str()
                        .ok_or_else(|| anyhow!("Filters[{i}].Pattern is not a string"))?;
                    let pattern: Value = serde_json::from_str(text)
                        .with_context(|| format!("Filters[{i}].Pattern is not JSON"))?;
                    pattern_node(&pattern).with_context(|| format!("Filters[{i}].Pattern"))
                })
                .collect::<Result<Vec<_>>>()?;
            if patterns.is_empty() {
                bail!("FilterCriteria without any filter");
            }
            return Ok(Self { patterns });
        }
        Ok(Self {
            patterns: vec![pattern_node(value)?],
        })
    }

    /// True when the record matches one of the patterns.
    pub fn matches(&self, record: &Value) -> bool {
        self.patterns
            .iter()
            .any(|pattern| node_matches(pattern, Some(record)))
    }
}

/// The `Filters` array when the object is `FilterCriteria` (objects with a `Pattern` key).
fn criteria(object: &Map<String, Value>) -> Option<&Vec<Value>> {
    let filters = object.get("Filters")?.as_array()?;
    (object.len() == 1
        && filters
            .iter()
            .all(|f| f.as_object().is_some_and(|f| f.contains_key("Pattern"))))
    .then_some(filters)
}

fn pattern_node(value: &Value) -> Result<Node> {
    match value {
        Value::Object(_) => node(value, "$"),
        _ => bail!("a pattern is a JSON object"),
    }
}

fn node(value: &Value, path: &str) -> Result<Node> {
    match value {
        Value::Object(fields) => {
            if fields.is_empty() {
                bail!("{path}: an empty object matches nothing");
            }
            fields
                .iter()
                .map(|(key, child)| Ok((key.clone(), node(child, &format!("{path}.{key}"))?)))
                .collect::<Result<Vec<_>>>()
                .map(Node::Object)
        }
        Value::Array(items) => {
            if items.is_empty() {
                bail!("{path}: an empty array matches nothing");
            }
            items
                .iter()
                .map(|item| matcher(item, path))
                .collect::<Result<Vec<_>>>()
                .map(Node::Leaf)
        }
        _ => bail!("{path}: a pattern value is an array of matchers or an object"),
    }
}

fn matcher(item: &Value, path: &str) -> Result<Matcher> {
    Ok(match item {
        Value::String(s) => Matcher::String(s.clone()),
        Value::Number(n) => Matcher::Number(
            n.as_f64()
                .ok_or_else(|| anyhow!("{path}: number {n} out of range"))?,
        ),
        Value::Null => Matcher::Null,
        Value::Object(op) if op.len() == 1 => match op.iter().next() {
            Some((name, Value::String(prefix))) if name == "prefix" => {
                Matcher::Prefix(prefix.clone())
            }
            Some((name, Value::Bool(exists))) if name == "exists" => Matcher::Exists(*exists),
            Some((name, _)) if name == "prefix" || name == "exists" => {
                bail!("{path}: `{name}` takes a string (prefix) or a boolean (exists)")
            }
            Some((name, _)) => bail!("{path}: unsupported filter operator `{name}`"),
            None => unreachable!("one entry"),
        },
        Value::Object(_) => bail!("{path}: a matcher object has exactly one operator"),
        Value::Bool(_) | Value::Array(_) => {
            bail!("{path}: unsupported matcher {item} (strings, numbers, null, prefix, exists)")
        }
    })
}

fn node_matches(node: &Node, value: Option<&Value>) -> bool {
    match node {
        Node::Object(fields) => match value {
            Some(Value::Object(map)) => fields
                .iter()
                .all(|(key, child)| node_matches(child, map.get(key))),
            _ => false,
        },
        Node::Leaf(matchers) => matchers.iter().any(|m| matcher_matches(m, value)),
    }
}

fn matcher_matches(matcher: &Matcher, value: Option<&Value>) -> bool {
    match (matcher, value) {
        (Matcher::Exists(exists), value) => value.is_some() == *exists,
        (_, None) => false,
        (_, Some(Value::Array(items))) => items.iter().any(|item| scalar_matches(matcher, item)),
        (_, Some(value)) => scalar_matches(matcher, value),
    }
}

fn scalar_matches(matcher: &Matcher, value: &Value) -> bool {
    match (matcher, value) {
        (Matcher::String(want), Value::String(got)) => want == got,
        (Matcher::Number(want), Value::Number(got)) => got.as_f64() == Some(*want),
        (Matcher::Null, Value::Null) => true,
        (Matcher::Prefix(prefix), Value::String(got)) => got.starts_with(prefix.as_str()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contract() -> Filter {
        Filter::from_value(&json!({
            "eventName": ["INSERT"],
            "dynamodb": {"NewImage": {"SK": {"S": [{"prefix": "MSG#"}]}}}
        }))
        .unwrap()
    }

    fn record(event: &str, sk: &str) -> Value {
        json!({"eventName": event, "dynamodb": {"NewImage": {"SK": {"S": sk}, "seq": {"N": "1"}}}})
    }

    #[test]
    fn the_contract_pattern_keeps_message_inserts_only() {
        let filter = contract();
        assert!(filter.matches(&record("INSERT", "MSG#0000000001")));
        assert!(!filter.matches(&record("MODIFY", "MSG#0000000001")));
        assert!(!filter.matches(&record("INSERT", "SESSION")));
        assert!(!filter.matches(&record("INSERT", "TRACE#0000000001")));
        assert!(!filter.matches(&record("INSERT", "msg#1")));
        // A REMOVE under NEW_IMAGE has no NewImage at all.
        assert!(!filter.matches(&json!({"eventName": "INSERT", "dynamodb": {"Keys": {}}})));
        // SK stored as a number is not a string with the prefix.
        assert!(!filter.matches(&json!({
            "eventName": "INSERT", "dynamodb": {"NewImage": {"SK": {"N": "5"}}}
        })));
    }

    #[test]
    fn exact_values_are_alternatives_and_typed() {
        let filter = Filter::from_value(&json!({"a": ["x", 5, null]})).unwrap();
        assert!(filter.matches(&json!({"a": "x"})));
        assert!(filter.matches(&json!({"a": 5})));
        assert!(filter.matches(&json!({"a": 5.0})));
        assert!(filter.matches(&json!({"a": null})));
        assert!(!filter.matches(&json!({"a": "5"})));
        assert!(!filter.matches(&json!({"a": "y"})));
        assert!(!filter.matches(&json!({"b": "x"})));
        assert!(!filter.matches(&json!({"a": {"x": 1}})));
        // An array in the record matches when one element does.
        assert!(filter.matches(&json!({"a": ["z", "x"]})));
        assert!(!filter.matches(&json!({"a": ["z"]})));
    }

    #[test]
    fn exists_tests_presence() {
        let present = Filter::from_value(&json!({"d": {"OldImage": [{"exists": true}]}})).unwrap();
        let absent = Filter::from_value(&json!({"d": {"OldImage": [{"exists": false}]}})).unwrap();
        let with = json!({"d": {"OldImage": {"a": {"S": "b"}}}});
        let without = json!({"d": {"NewImage": {}}});
        assert!(present.matches(&with) && !present.matches(&without));
        assert!(absent.matches(&without) && !absent.matches(&with));
        // The parent object itself must be there.
        assert!(!absent.matches(&json!({"e": 1})));
    }

    #[test]
    fn every_key_must_match() {
        let filter =
            Filter::from_value(&json!({"a": ["1"], "b": {"c": [{"prefix": "x"}]}})).unwrap();
        assert!(filter.matches(&json!({"a": "1", "b": {"c": "xyz"}, "other": true})));
        assert!(!filter.matches(&json!({"a": "1", "b": {"c": "yz"}})));
        assert!(!filter.matches(&json!({"a": "2", "b": {"c": "xyz"}})));
        assert!(!filter.matches(&json!({"a": "1", "b": "xyz"})));
    }

    #[test]
    fn filter_criteria_is_any_of_its_patterns() {
        let text = json!({"Filters": [
            {"Pattern": json!({"eventName": ["INSERT"]}).to_string()},
            {"Pattern": json!({"eventName": ["REMOVE"]}).to_string()},
        ]})
        .to_string();
        let filter = Filter::parse(&text).unwrap();
        assert!(filter.matches(&json!({"eventName": "INSERT"})));
        assert!(filter.matches(&json!({"eventName": "REMOVE"})));
        assert!(!filter.matches(&json!({"eventName": "MODIFY"})));
    }

    #[test]
    fn unsupported_rules_are_refused() {
        for pattern in [
            json!({"a": [{"anything-but": ["x"]}]}),
            json!({"a": [{"numeric": [">", 1]}]}),
            json!({"a": [{"prefix": 1}]}),
            json!({"a": [{"exists": "yes"}]}),
            json!({"a": [{"prefix": "x", "exists": true}]}),
            json!({"a": "x"}),
            json!({"a": []}),
            json!({"a": [true]}),
            json!({"$or": [{"a": ["x"]}]}),
            json!(["x"]),
        ] {
            assert!(Filter::from_value(&pattern).is_err(), "{pattern}");
        }
        let err = Filter::from_value(&json!({"a": {"b": [{"suffix": "x"}]}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "$.a.b: unsupported filter operator `suffix`"
        );
        assert!(Filter::parse("not json").is_err());
    }
}
