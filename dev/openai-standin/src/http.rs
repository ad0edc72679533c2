//! HTTP routing, the key check and the wire responses.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::request::ChatRequest;
use crate::wire::{self, Envelope};
use crate::{script, State};
use bedrock_standin::server::Body;

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Serves one request; never fails (errors become OpenAI error responses).
pub(crate) async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let seq = state.request_seq.fetch_add(1, Ordering::Relaxed) + 1;
    let mut response = route(&state, req, seq).await;
    if let Ok(value) = HeaderValue::from_str(&format!("req_standin{seq:012x}")) {
        response.headers_mut().insert("x-request-id", value);
    }
    Ok(response)
}

async fn route(state: &State, req: Request<Incoming>, seq: u64) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/__stats") => return json_response(StatusCode::OK, &state.stats.to_json()),
        (&Method::GET, "/__health") => {
            return json_response(StatusCode::OK, &json!({"status": "ok"}))
        }
        _ => {}
    }
    // The API lives under `/v1`; a client whose base URL already ends in `/v1` may also
    // leave it out.
    let api_path = path
        .strip_prefix("/v1")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(&path);
    let route = match (&method, api_path) {
        (&Method::POST, "/chat/completions") => Route::Chat,
        (&Method::GET, "/models") => Route::Models,
        (&Method::GET, p) if p.starts_with("/models/") => {
            Route::Model(p["/models/".len()..].to_owned())
        }
        _ => return error(&ApiError::unknown_route(method.as_str(), &path)),
    };
    if route == Route::Chat {
        state.stats.chat_completions.fetch_add(1, Ordering::SeqCst);
    } else {
        state.stats.models.fetch_add(1, Ordering::SeqCst);
    }
    if let Err(refused) = state.authorize(req.headers()) {
        state.stats.unauthorized.fetch_add(1, Ordering::SeqCst);
        return error(&refused);
    }
    match route {
        Route::Chat => chat(state, req, seq).await,
        Route::Models => {
            let data: Vec<Value> = state.models().iter().map(|id| model_object(id)).collect();
            json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
        }
        Route::Model(id) if state.serves(&id) => json_response(StatusCode::OK, &model_object(&id)),
        Route::Model(id) => error(&ApiError::unknown_model(&id)),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Chat,
    Models,
    Model(String),
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "openai-standin"})
}

impl State {
    /// Checks `Authorization: Bearer <key>` when a key is set.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let expected = self.api_key.lock().map(|k| k.clone()).unwrap_or_default();
        let Some(expected) = expected else {
            return Ok(());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match presented {
            None | Some("") => Err(ApiError::no_key()),
            Some(key) if key == expected => Ok(()),
            Some(key) => Err(ApiError::wrong_key(key)),
        }
    }
}

async fn chat(state: &State, req: Request<Incoming>, seq: u64) -> Response<Body> {
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return error(&ApiError::invalid(format!(
                "Could not read the request body: {e}"
            )))
        }
    };
    if let (Ok(mut last), Ok(value)) = (state.last_request.lock(), serde_json::from_slice(&body)) {
        *last = Some(value);
    }
    let request = match ChatRequest::parse(&body) {
        Ok(request) => request,
        Err(refused) => return error(&refused),
    };
    if request.stream {
        state
            .stats
            .chat_completions_stream
            .fetch_add(1, Ordering::SeqCst);
    }
    if !state.serves(&request.model) {
        return error(&ApiError::unknown_model(&request.model));
    }
    let tokens = bedrock_standin::script::tokens(body.len());
    if let Some(limit) = state.options.context_tokens.filter(|limit| tokens > *limit) {
        return error(&ApiError::context_length(limit, tokens));
    }
    let answer = script::respond(&request, body.len());
    let delay = state.options.latency + Duration::from_millis(answer.sleep_ms.unwrap_or(0));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(failure) = &answer.failure {
        return error(failure);
    }
    let id = format!("chatcmpl-standin{seq:012x}");
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let envelope = Envelope {
        id: &id,
        created,
        model: &request.model,
    };
    if !request.stream {
        return json_response(StatusCode::OK, &wire::completion(&answer, &envelope));
    }
    let events = wire::stream_events(&answer, &envelope, request.include_usage);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::streamed(
            events.into_iter().map(Bytes::from).collect(),
        ))
        .unwrap_or_else(|_| internal_error())
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::full(value.to_string()))
        .unwrap_or_else(|_| internal_error())
}

fn error(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.status, &error.to_json());
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        response
            .headers_mut()
            .insert("x-ratelimit-remaining-requests", HeaderValue::from(0));
    }
    response
}

fn internal_error() -> Response<Body> {
    let mut response = Response::new(Body::full(
        r#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#,
    ));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
