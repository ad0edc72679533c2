//! HTTP routing and the Converse / ConverseStream wire responses.
//!
//! Routes: `POST /model/{modelId}/converse`, `POST /model/{modelId}/converse-stream`,
//! `POST /model/{modelId}/invoke` (Titan Text Embeddings V2, see [`crate::embed`]),
//! `GET /__stats`, `GET /__systems?contains=..`, `GET /__health`. Errors follow Bedrock's REST-JSON shape:
//! status code, header `x-amzn-errortype: <Kind>` and body `{"message": ".."}`.

use crate::attempts::Attempts;
use crate::cache::{Cache, Layout};
use crate::embed::{self, EmbeddingRequest};
use crate::eventstream::{encode_event, encode_exception};
use crate::request::ConverseRequest;
use crate::script::{self, Answer, Call, OutBlock};
use crate::server::Body;
use crate::Stats;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Largest request body accepted (Bedrock's own limit is in the same range).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Longest text delta sent in one stream event, in characters.
const MAX_DELTA_CHARS: usize = 64;
/// Length of each tool-input JSON fragment sent in one stream event, in characters.
const INPUT_DELTA_CHARS: usize = 12;
/// The `ValidationException` message Bedrock gives for an input longer than the model's
/// context window (as reported against Bedrock in aws-samples/assessment-generator#2 — HTTP
/// 400, `ValidationException` — and aws-samples/bedrock-chat#95).
pub(crate) const INPUT_TOO_LONG: &str = "Input is too long for requested model.";

/// Per-server state shared by all connections.
#[derive(Debug)]
pub(crate) struct State {
    pub latency: Duration,
    pub context_tokens: Option<u64>,
    pub stats: Arc<Stats>,
    pub request_seq: AtomicU64,
    /// Calls per conversation, for `fail-first`.
    pub attempts: Mutex<Attempts>,
    /// Prompt-cache entries of every model.
    pub cache: Mutex<Cache>,
    /// Smallest prefix, in tokens, a cache point needs to count.
    pub cache_min_tokens: u64,
    /// The system text of the latest [`MAX_KEPT_SYSTEMS`] Converse / ConverseStream
    /// requests, oldest first (for `GET /__systems`).
    pub systems: Mutex<VecDeque<String>>,
}

/// How many requests' system texts `GET /__systems` looks at.
pub(crate) const MAX_KEPT_SYSTEMS: usize = 500;

/// The message Bedrock gives for a model id InvokeModel does not know.
const INVALID_MODEL: &str = "The provided model identifier is invalid.";

/// Which Bedrock operation a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Converse,
    ConverseStream,
    Invoke,
}

/// Serves one request; never fails (errors become Bedrock error responses).
pub(crate) async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let seq = state.request_seq.fetch_add(1, Ordering::Relaxed) + 1;
    let request_id = format!("00000000-0000-4000-8000-{seq:012x}");
    let mut response = route(&state, req).await;
    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    Ok(response)
}

async fn route(state: &State, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/__stats") => json_response(StatusCode::OK, &state.stats.to_json()),
        (&Method::GET, "/__health") => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/__systems") => {
            let contains = query_value(req.uri().query().unwrap_or(""), "contains");
            json_response(StatusCode::OK, &systems_json(state, &contains))
        }
        (&Method::POST, _) => match parse_model_path(&path) {
            Some(Ok((model_id, Operation::Invoke))) => invoke(state, &model_id, req).await,
            Some(Ok((model_id, op))) => model_call(state, &model_id, op, req).await,
            Some(Err(message)) => error(StatusCode::BAD_REQUEST, "ValidationException", &message),
            None => unknown_operation(&path),
        },
        _ => unknown_operation(&path),
    }
}

fn unknown_operation(path: &str) -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        &format!("No operation at {path}"),
    )
}

/// `/model/{id}/converse[-stream]` or `/model/{id}/invoke` → the decoded model id and
/// operation;
/// `None` for other paths, `Some(Err)` for a bad model id.
fn parse_model_path(path: &str) -> Option<Result<(String, Operation), String>> {
    let (encoded_id, op) = path.strip_prefix("/model/")?.rsplit_once('/')?;
    let op = match op {
        "converse" => Operation::Converse,
        "converse-stream" => Operation::ConverseStream,
        "invoke" => Operation::Invoke,
        _ => return None,
    };
    Some(match percent_decode(encoded_id) {
        Some(id) if !id.is_empty() => Ok((id, op)),
        _ => Err(format!(
            "The provided model identifier is invalid: {encoded_id}"
        )),
    })
}

/// The percent-decoded value of `key` in a query string (`+` read as a space); empty when
/// absent or undecodable.
fn query_value(query: &str, key: &str) -> String {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| percent_decode(&v.replace('+', " ")))
        .unwrap_or_default()
}

/// `{"matches": n, "kept": n}`: how many kept system texts contain `needle`.
fn systems_json(state: &State, needle: &str) -> Value {
    let systems = state.systems.lock().unwrap_or_else(PoisonError::into_inner);
    let matches = systems.iter().filter(|s| s.contains(needle)).count();
    json!({"matches": matches, "kept": systems.len()})
}

/// Keeps the request's system text (its `system` text blocks joined by newlines).
fn keep_system(state: &State, request: &ConverseRequest) {
    let text = request
        .raw
        .get("system")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let mut systems = state.systems.lock().unwrap_or_else(PoisonError::into_inner);
    if systems.len() >= MAX_KEPT_SYSTEMS {
        systems.pop_front();
    }
    systems.push_back(text);
}

/// InvokeModel: Titan Text Embeddings V2 for its model ids, a `ValidationException` for
/// any other.
async fn invoke(state: &State, model_id: &str, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    state.stats.record(Operation::Invoke, model_id);
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let message = format!("Could not read the request body: {e}");
            return error(StatusCode::BAD_REQUEST, "ValidationException", &message);
        }
    };
    if !embed::is_titan_v2(model_id) {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            INVALID_MODEL,
        );
    }
    let request = match EmbeddingRequest::parse(&body) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, "ValidationException", &message),
    };
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let (answer, tokens) = embed::response(&request);
    let mut response = json_response(StatusCode::OK, &answer);
    let latency_ms = started.elapsed().as_millis();
    let headers = response.headers_mut();
    headers.insert("x-amzn-bedrock-input-token-count", tokens.into());
    if let Ok(latency) = http::HeaderValue::from_str(&latency_ms.to_string()) {
        headers.insert("x-amzn-bedrock-invocation-latency", latency);
    }
    response
}

/// Decodes `%XX` escapes; `None` if an escape or the result is not valid.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

async fn model_call(
    state: &State,
    model_id: &str,
    op: Operation,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    state.stats.record(op, model_id);
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let message = format!("Could not read the request body: {e}");
            return error(StatusCode::BAD_REQUEST, "ValidationException", &message);
        }
    };
    let request = match ConverseRequest::parse(&body).and_then(|r| r.validate().map(|()| r)) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, "ValidationException", &message),
    };
    keep_system(state, &request);
    if state
        .context_tokens
        .is_some_and(|window| script::tokens(body.len()) > window)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            INPUT_TOO_LONG,
        );
    }
    let attempt = if script::triggers(&request)
        .fail_first_for(model_id)
        .is_some()
    {
        let key = conversation_key(model_id, &request);
        let mut attempts = state
            .attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        attempts.next(key)
    } else {
        0
    };
    let mut answer = script::respond(&request, body.len(), &Call { model_id, attempt });

    let delay = state.latency + Duration::from_millis(answer.triggers.sleep_ms.unwrap_or(0));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(failure) = &answer.failure {
        return error(
            failure.kind.status(),
            failure.kind.error_type(),
            &failure.message,
        );
    }
    if let (Some(kind), Operation::Converse) = (answer.in_stream, op) {
        return error(kind.status(), kind.error_type(), kind.message());
    }
    if answer.in_stream.is_none() {
        if let Some(layout) = Layout::of(&request.raw, model_id) {
            let mut cache = state.cache.lock().unwrap_or_else(PoisonError::into_inner);
            let used = cache.account(&layout, state.cache_min_tokens, Instant::now());
            answer.usage = answer.usage.with_cache(used);
        }
    }
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match op {
        // InvokeModel is answered by `invoke`, never here.
        Operation::Converse | Operation::Invoke => {
            json_response(StatusCode::OK, &converse_json(&answer, latency_ms))
        }
        Operation::ConverseStream => match stream_frames(&answer, latency_ms) {
            Ok(frames) => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")
                .body(match answer.triggers.stream_gap_ms {
                    Some(gap) => Body::streamed_with_gap(frames, Duration::from_millis(gap)),
                    None => Body::streamed(frames),
                })
                .unwrap_or_else(|_| internal_error()),
            Err(message) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                &message,
            ),
        },
    }
}

/// The `fail-first` conversation key: the model id and the request's `messages` as sent
/// (trigger text included), so a retry of the same request counts up and a later step
/// (more messages) starts again.
fn conversation_key(model_id: &str, request: &ConverseRequest) -> u128 {
    crate::hash::fnv128(&[model_id.as_bytes(), request.messages_json().as_bytes()])
}

/// The Converse response document.
fn converse_json(answer: &Answer, latency_ms: u64) -> Value {
    let content: Vec<Value> = answer.blocks.iter().map(OutBlock::to_json).collect();
    let mut response = json!({
        "output": { "message": { "role": "assistant", "content": content } },
        "stopReason": answer.stop_reason.as_str(),
        "usage": answer.usage.to_json(),
        "metrics": { "latencyMs": latency_ms },
    });
    if let (Some(tier), Some(map)) = (&answer.service_tier, response.as_object_mut()) {
        map.insert("serviceTier".into(), json!({ "type": tier }));
    }
    response
}

/// The ConverseStream event sequence, each event framed: messageStart; per
/// block an optional contentBlockStart (tool use only, as Bedrock does),
/// deltas (for reasoning: text pieces, then one signature delta) and contentBlockStop;
/// messageStop; metadata. With an in-stream failure:
/// messageStart, the first contentBlockDelta, then the exception event.
fn stream_frames(answer: &Answer, latency_ms: u64) -> Result<Vec<Bytes>, String> {
    let mut events = stream_events(answer, latency_ms);
    let exception = answer.in_stream.and_then(|kind| {
        let name = kind.stream_name()?;
        Some((kind, name))
    });
    if let Some((kind, name)) = exception {
        cut_after_first_delta(&mut events);
        let mut frames = frame_events(&events)?;
        frames.push(encode_exception(name, kind.message()).map_err(|e| e.to_string())?);
        return Ok(frames);
    }
    frame_events(&events)
}

fn frame_events(events: &[(&str, Value)]) -> Result<Vec<Bytes>, String> {
    events
        .iter()
        .map(|(kind, payload)| encode_event(kind, payload).map_err(|e| e.to_string()))
        .collect()
}

/// Keeps the events up to the first contentBlockDelta (adding an empty text delta if the
/// answer has none), so a stream failure comes after some output, as it does on Bedrock.
fn cut_after_first_delta(events: &mut Vec<(&str, Value)>) {
    match events
        .iter()
        .position(|(kind, _)| *kind == "contentBlockDelta")
    {
        Some(at) => events.truncate(at + 1),
        None => {
            events.truncate(1);
            let delta = json!({"contentBlockIndex": 0, "delta": {"text": ""}});
            events.push(("contentBlockDelta", delta));
        }
    }
}

/// The full ConverseStream event sequence, unframed.
fn stream_events(answer: &Answer, latency_ms: u64) -> Vec<(&'static str, Value)> {
    let mut events: Vec<(&str, Value)> = vec![("messageStart", json!({"role": "assistant"}))];
    for (index, block) in answer.blocks.iter().enumerate() {
        match block {
            OutBlock::Reasoning { text, signature } => {
                for piece in text_pieces(text) {
                    let delta = json!({"contentBlockIndex": index,
                        "delta": {"reasoningContent": {"text": piece}}});
                    events.push(("contentBlockDelta", delta));
                }
                let delta = json!({"contentBlockIndex": index,
                    "delta": {"reasoningContent": {"signature": signature}}});
                events.push(("contentBlockDelta", delta));
            }
            OutBlock::Text(text) => {
                for piece in text_pieces(text) {
                    let delta = json!({"contentBlockIndex": index, "delta": {"text": piece}});
                    events.push(("contentBlockDelta", delta));
                }
            }
            OutBlock::ToolUse { id, name, input } => {
                let start = json!({"contentBlockIndex": index,
                    "start": {"toolUse": {"toolUseId": id, "name": name}}});
                events.push(("contentBlockStart", start));
                for piece in char_pieces(&input.to_string(), INPUT_DELTA_CHARS) {
                    let delta =
                        json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}});
                    events.push(("contentBlockDelta", delta));
                }
            }
        }
        events.push(("contentBlockStop", json!({"contentBlockIndex": index})));
    }
    events.push((
        "messageStop",
        json!({"stopReason": answer.stop_reason.as_str()}),
    ));
    let mut metadata =
        json!({"usage": answer.usage.to_json(), "metrics": {"latencyMs": latency_ms}});
    if let (Some(tier), Some(map)) = (&answer.service_tier, metadata.as_object_mut()) {
        map.insert("serviceTier".into(), json!({ "type": tier }));
    }
    events.push(("metadata", metadata));
    events
}

/// Text split into words (each keeping its trailing whitespace), long words cut.
fn text_pieces(text: &str) -> Vec<String> {
    text.split_inclusive(char::is_whitespace)
        .flat_map(|word| char_pieces(word, MAX_DELTA_CHARS))
        .collect()
}

/// A string cut into pieces of at most `size` characters.
fn char_pieces(s: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::full(value.to_string()))
        .unwrap_or_else(|_| internal_error())
}

/// A Bedrock-style error: `x-amzn-errortype` header and `{"message": ..}`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let mut response = json_response(status, &json!({ "message": message }));
    if let Ok(value) = http::HeaderValue::from_str(kind) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

fn internal_error() -> Response<Body> {
    let mut response = Response::new(Body::full(r#"{"message":"internal error"}"#));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::ErrorKind;

    #[test]
    fn parses_model_paths() {
        let parsed =
            parse_model_path("/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse");
        assert_eq!(
            parsed,
            Some(Ok((
                "us.anthropic.claude-3-5-haiku-20241022-v1:0".to_string(),
                Operation::Converse
            )))
        );
        let arn = parse_model_path("/model/arn%3Aaws%3Abedrock%3A%3A%3Ax%2Fy/converse-stream");
        assert_eq!(
            arn,
            Some(Ok((
                "arn:aws:bedrock:::x/y".to_string(),
                Operation::ConverseStream
            )))
        );
        assert!(matches!(
            parse_model_path("/model/%zz/converse"),
            Some(Err(_))
        ));
        assert!(matches!(parse_model_path("/model//converse"), Some(Err(_))));
        assert_eq!(
            parse_model_path("/model/amazon.titan-embed-text-v2%3A0/invoke"),
            Some(Ok((
                "amazon.titan-embed-text-v2:0".to_string(),
                Operation::Invoke
            )))
        );
        assert_eq!(
            parse_model_path("/model/x/invoke-with-response-stream"),
            None
        );
        assert_eq!(parse_model_path("/other"), None);
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_value("a=1&contains=be%20brief+now", "contains"),
            "be brief now"
        );
        assert_eq!(query_value("contains", "contains"), "");
        assert_eq!(query_value("other=x", "contains"), "");
    }

    #[test]
    fn in_stream_failures_cut_the_stream_after_the_first_delta() {
        let mut events = vec![
            ("messageStart", json!({})),
            ("contentBlockDelta", json!({"n": 1})),
            ("contentBlockDelta", json!({"n": 2})),
            ("contentBlockStop", json!({})),
        ];
        cut_after_first_delta(&mut events);
        let kinds: Vec<&str> = events.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, ["messageStart", "contentBlockDelta"]);
        let mut bare = vec![("messageStart", json!({})), ("messageStop", json!({}))];
        cut_after_first_delta(&mut bare);
        assert_eq!(bare[1].0, "contentBlockDelta");
        assert_eq!(bare.len(), 2);
        assert!(ErrorKind::IN_STREAM
            .iter()
            .all(|k| k.stream_name().is_some()));
    }

    #[test]
    fn pieces_rebuild_the_original() {
        let text = "Let me calculate that, naïvely: ".to_string() + &"x".repeat(100);
        let pieces = text_pieces(&text);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_DELTA_CHARS));
        assert_eq!(pieces.concat(), text);
        assert_eq!(char_pieces("{\"a\":\"é\"}", 3).concat(), "{\"a\":\"é\"}");
    }
}
