//! `InvokeModel` for Amazon Titan Text Embeddings V2: the request body Bedrock accepts for
//! it, its validation (in the words Bedrock passes on from the model), and deterministic
//! vectors in which texts sharing words are close.
//!
//! A vector is built by feature hashing: the text's words (runs of letters and digits,
//! lower-cased, a trailing `s` taken off words longer than 3 characters so `colours` and
//! `colour` meet) each add ±1 to one of `dimensions` buckets, bucket and sign both taken
//! from the word's FNV-1a hash. It is then L2-normalised when `normalize` is true (the
//! default). A text with no word at all hashes as one word, itself trimmed.

use crate::hash::fnv64;
use serde_json::{json, Map, Value};

/// The model id prefix this module answers for (`amazon.titan-embed-text-v2:0`, also as
/// the last segment of an ARN).
pub const TITAN_V2_PREFIX: &str = "amazon.titan-embed-text-v2";

/// The `dimensions` Titan Text Embeddings V2 accepts.
pub const DIMENSIONS: [usize; 3] = [256, 512, 1024];

/// The default `dimensions`.
pub const DEFAULT_DIMENSIONS: usize = 1024;

/// The longest `inputText` accepted, in characters.
pub const MAX_INPUT_CHARS: usize = 50_000;

/// The members of the request body; any other is refused.
const FIELDS: [&str; 4] = ["inputText", "dimensions", "normalize", "embeddingTypes"];

/// Whether `model_id` (a plain id or an ARN ending `/<id>`) names Titan Text Embeddings V2.
pub fn is_titan_v2(model_id: &str) -> bool {
    let id = model_id.rsplit('/').next().unwrap_or(model_id);
    id.starts_with(TITAN_V2_PREFIX)
}

/// A validated embedding request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingRequest {
    /// The text to embed (1 to [`MAX_INPUT_CHARS`] characters).
    pub input_text: String,
    /// One of [`DIMENSIONS`].
    pub dimensions: usize,
    /// Whether the vector is L2-normalised.
    pub normalize: bool,
    /// Whether `embeddingsByType.float` is answered (the default when no types are given).
    pub float: bool,
    /// Whether `embeddingsByType.binary` is answered.
    pub binary: bool,
}

/// The `ValidationException` message Bedrock passes on from Titan for a bad body.
fn malformed(detail: &str) -> String {
    format!("Malformed input request: {detail}, please reformat your input and try again.")
}

/// The JSON Schema type name Titan's validator reports for a value.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "Integer",
        Value::Number(_) => "BigDecimal",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    }
}

fn wrong_type(path: &str, expected: &str, found: &Value) -> String {
    malformed(&format!(
        "#/{path}: expected type: {expected}, found: {}",
        type_name(found)
    ))
}

impl EmbeddingRequest {
    /// Parses and validates an InvokeModel body; the error is a `ValidationException`
    /// message.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| malformed(&format!("expected a JSON object: {e}")))?;
        let Value::Object(map) = value else {
            return Err(malformed(&format!(
                "#: expected type: JSONObject, found: {}",
                type_name(&value)
            )));
        };
        if let Some(extra) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(malformed(&format!(
                "extraneous key [{extra}] is not permitted"
            )));
        }
        let input_text = match map.get("inputText") {
            None => return Err(malformed("#: required key [inputText] not found")),
            Some(Value::String(text)) => text.clone(),
            Some(other) => return Err(wrong_type("inputText", "String", other)),
        };
        let chars = input_text.chars().count();
        if chars < 1 {
            return Err(malformed("#/inputText: expected minLength: 1, actual: 0"));
        }
        if chars > MAX_INPUT_CHARS {
            return Err(malformed(&format!(
                "#/inputText: expected maxLength: {MAX_INPUT_CHARS}, actual: {chars}"
            )));
        }
        let dimensions = dimensions(&map)?;
        let normalize = match map.get("normalize") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(wrong_type("normalize", "Boolean", other)),
        };
        let (float, binary) = embedding_types(&map)?;
        Ok(Self {
            input_text,
            dimensions,
            normalize,
            float,
            binary,
        })
    }
}

fn dimensions(map: &Map<String, Value>) -> Result<usize, String> {
    let Some(value) = map.get("dimensions") else {
        return Ok(DEFAULT_DIMENSIONS);
    };
    let Value::Number(n) = value else {
        return Err(wrong_type("dimensions", "Integer", value));
    };
    n.as_u64()
        .and_then(|d| usize::try_from(d).ok())
        .filter(|d| DIMENSIONS.contains(d))
        .ok_or_else(|| malformed(&format!("#/dimensions: {n} is not a valid enum value")))
}

/// `(float, binary)`: which `embeddingsByType` members to answer.
fn embedding_types(map: &Map<String, Value>) -> Result<(bool, bool), String> {
    let Some(value) = map.get("embeddingTypes") else {
        return Ok((true, false));
    };
    let Value::Array(types) = value else {
        return Err(wrong_type("embeddingTypes", "JSONArray", value));
    };
    if types.is_empty() {
        return Err(malformed(
            "#/embeddingTypes: expected minItems: 1, actual: 0",
        ));
    }
    let (mut float, mut binary) = (false, false);
    for (i, kind) in types.iter().enumerate() {
        match kind.as_str() {
            Some("float") => float = true,
            Some("binary") => binary = true,
            _ => {
                return Err(malformed(&format!(
                    "#/embeddingTypes/{i}: {kind} is not a valid enum value"
                )))
            }
        }
    }
    Ok((float, binary))
}

/// The words a vector is built from: runs of letters and digits, lower-cased, a trailing
/// `s` taken off words longer than 3 characters.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut word = w.to_lowercase();
            if word.chars().count() > 3 && word.ends_with('s') {
                word.pop();
            }
            word
        })
        .collect()
}

/// Input tokens: the number of words × 1.3, rounded up, at least 1.
pub fn token_count(text: &str) -> u64 {
    let words = u64::try_from(words(text).len()).unwrap_or(u64::MAX);
    words.saturating_mul(13).div_ceil(10).max(1)
}

/// The text's vector of `dimensions` values (see the module docs).
pub fn embed(text: &str, dimensions: usize, normalize: bool) -> Vec<f32> {
    let mut vector = vec![0f32; dimensions.max(1)];
    let mut words = words(text);
    if words.is_empty() {
        words.push(text.trim().to_string());
    }
    for word in &words {
        let h = fnv64(word.as_bytes());
        let bucket = usize::try_from(h % vector.len() as u64).unwrap_or(0);
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        vector[bucket] += sign;
    }
    if normalize {
        let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|v| *v /= norm);
        }
    }
    vector
}

/// The InvokeModel answer for a validated request and its input token count:
/// `{"embedding": [..], "inputTextTokenCount": n, "embeddingsByType": {"float": [..]}}`
/// (`binary`, one 0 or 1 per dimension, positive values 1, when asked for).
pub fn response(request: &EmbeddingRequest) -> (Value, u64) {
    let vector = embed(&request.input_text, request.dimensions, request.normalize);
    let tokens = token_count(&request.input_text);
    let mut by_type = Map::new();
    if request.float {
        by_type.insert("float".into(), json!(vector));
    }
    if request.binary {
        let bits: Vec<u8> = vector.iter().map(|v| u8::from(*v > 0.0)).collect();
        by_type.insert("binary".into(), json!(bits));
    }
    let body = json!({
        "embedding": vector,
        "inputTextTokenCount": tokens,
        "embeddingsByType": by_type,
    });
    (body, tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn texts_sharing_words_are_close() {
        let a = embed("My favourite colour is blue", 256, true);
        let b = embed("what is my favourite colour?", 256, true);
        let c = embed("the weather in Lisbon", 256, true);
        assert!(cosine(&a, &b) > 0.5, "{}", cosine(&a, &b));
        assert!(cosine(&a, &b) > cosine(&a, &c));
        assert_eq!(a, embed("My favourite colour is blue", 256, true));
        assert_eq!(
            words("Colours, dogs and cats!"),
            ["colour", "dog", "and", "cat"]
        );
        assert_eq!(words("is was"), ["is", "was"]);
        let norm: f32 = a.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(embed("...", 256, true).len(), 256);
        assert!(embed("...", 256, true).iter().any(|v| *v != 0.0));
    }

    #[test]
    fn token_counts_round_up() {
        assert_eq!(token_count("!"), 1);
        assert_eq!(token_count("one"), 2);
        assert_eq!(
            token_count("one two three four five six seven eight nine ten"),
            13
        );
    }

    #[test]
    fn requests_are_validated() {
        let parse = |v: Value| EmbeddingRequest::parse(v.to_string().as_bytes());
        let ok = parse(json!({"inputText": "hi"})).expect("valid");
        assert_eq!(
            (ok.dimensions, ok.normalize, ok.float, ok.binary),
            (1024, true, true, false)
        );
        assert!(parse(json!({})).is_err_and(|e| e.contains("required key [inputText]")));
        assert!(parse(json!({"inputText": ""})).is_err_and(|e| e.contains("minLength")));
        assert!(parse(json!({"inputText": "a", "dimensions": 300}))
            .is_err_and(|e| e.contains("#/dimensions: 300 is not a valid enum value")));
        assert!(parse(json!({"inputText": "a", "topK": 1}))
            .is_err_and(|e| e.contains("extraneous key [topK]")));
        assert!(parse(json!({"inputText": 3})).is_err_and(|e| e.contains("expected type: String")));
        assert!(is_titan_v2("amazon.titan-embed-text-v2:0"));
        assert!(is_titan_v2(
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
        ));
        assert!(!is_titan_v2("amazon.titan-embed-text-v1"));
    }
}
