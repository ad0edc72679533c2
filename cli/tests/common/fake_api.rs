//! A FAKE of the session handler's HTTP contract (and of the streaming function's), served on
//! 127.0.0.1 for the CLI's tests. It is not the real server: it answers fixed data in the
//! contract's shapes (README "The HTTP API", the streaming events) and records what it was
//! sent. `local_stack.rs` runs the same chat against the real local stack.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bedrock_standin::server::{accept_loop, Body};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Value};

/// Path of the buffered API under the fake's address (as `cargo lambda watch` serves it).
pub const API_PREFIX: &str = "/lambda-url/session-handler";
/// Path of the streaming function.
pub const STREAM_PREFIX: &str = "/lambda-url/session-stream";
/// The session the fake knows from the start.
pub const KNOWN_SESSION: &str = "0b6c7a4e-1111-4222-8333-944445555666";
/// The session `POST /sessions` creates.
pub const NEW_SESSION: &str = "7d3e9f10-2222-4333-8444-a55556666777";
/// A message that makes the stream fail after its first text (an `error` event).
pub const FAIL_MID_STREAM: &str = "please fail mid-stream";
/// A message refused before the stream starts (503, `Retry-After: 5`).
pub const REFUSE: &str = "please refuse";

/// What `GET /console/config.json` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// The fake's streaming URL.
    Stream,
    /// `"stream_url": null`.
    NoStream,
    /// 404: an API without the console.
    Missing,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub user: Option<String>,
    pub authorization: Option<String>,
    pub accept: Option<String>,
    pub body: Value,
}

/// The running fake; it stops with the test process.
pub struct FakeApi {
    addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeApi {
    /// Serves the fake on 127.0.0.1 (a free port), on a thread of its own.
    pub fn start(config: Config) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("bound address");
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(State {
            addr,
            config,
            recorded: recorded.clone(),
        });
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let handle = move |request: Request<Incoming>| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(state.handle(request).await) }
                };
                let _ = accept_loop(listener, handle).await;
            });
        });
        Self { addr, recorded }
    }

    /// The buffered API's base URL.
    pub fn api_url(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    /// The streaming function's base URL.
    pub fn stream_url(&self) -> String {
        format!("http://{}{STREAM_PREFIX}", self.addr)
    }

    /// What it was sent so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().expect("not poisoned").clone()
    }

    /// The turns it was sent (buffered or streamed).
    pub fn turns(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
            .collect()
    }
}

struct State {
    addr: SocketAddr,
    config: Config,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl State {
    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let recorded = Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            user: header("x-user-id"),
            authorization: header("authorization"),
            accept: header("accept"),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        };
        self.recorded
            .lock()
            .expect("not poisoned")
            .push(recorded.clone());
        self.route(&recorded)
    }

    fn route(&self, request: &Recorded) -> Response<Body> {
        let method = request.method.as_str();
        if let Some(path) = request.path.strip_prefix(API_PREFIX) {
            if (method, path) == ("GET", "/console/config.json") {
                return match self.config {
                    Config::Stream => json_response(
                        StatusCode::OK,
                        &json!({"stream_url": format!("http://{}{STREAM_PREFIX}", self.addr), "auth_mode": "insecure-local"}),
                    ),
                    Config::NoStream => json_response(
                        StatusCode::OK,
                        &json!({"stream_url": null, "auth_mode": "insecure-local"}),
                    ),
                    Config::Missing => problem(StatusCode::NOT_FOUND, "Not Found", "no route"),
                };
            }
            if request.user.is_none() && request.authorization.is_none() {
                return problem(StatusCode::UNAUTHORIZED, "Unauthorized", "no caller");
            }
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            return match (method, segments.as_slice()) {
                ("POST", ["sessions"]) => json_response(
                    StatusCode::CREATED,
                    &json!({"session_id": NEW_SESSION, "created_at": "2026-03-01T10:00:00Z"}),
                ),
                ("GET", ["sessions"]) => json_response(StatusCode::OK, &session_list()),
                ("GET", ["tools"]) => json_response(StatusCode::OK, &tools()),
                (_, ["sessions", id, ..]) if *id != KNOWN_SESSION && *id != NEW_SESSION => problem(
                    StatusCode::NOT_FOUND,
                    "Not Found",
                    &format!("no session {id} for this user"),
                ),
                ("GET", ["sessions", id]) => json_response(
                    StatusCode::OK,
                    &json!({"session_id": id, "turns": 1, "messages": [], "next_cursor": null}),
                ),
                ("GET", ["sessions", id, "trace"]) => {
                    json_response(StatusCode::OK, &trace_page(id, &request.query))
                }
                ("POST", ["sessions", id, "messages"]) => match message(request) {
                    REFUSE => refused(),
                    _ => json_response(StatusCode::OK, &turn_result(id)),
                },
                _ => problem(StatusCode::NOT_FOUND, "Not Found", "no such route"),
            };
        }
        if let Some(path) = request.path.strip_prefix(STREAM_PREFIX) {
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            return match (method, segments.as_slice()) {
                ("POST", ["sessions", id, "messages"])
                    if *id == KNOWN_SESSION || *id == NEW_SESSION =>
                {
                    match message(request) {
                        REFUSE => refused(),
                        FAIL_MID_STREAM => sse(&[
                            ("text", json!({"delta": "Working on "})),
                            (
                                "error",
                                json!({"type": "tag:lambda-agent,2026:problem:model-throttled", "title": "Model throttled", "status": 503, "detail": "the model is throttled; try again in a few seconds"}),
                            ),
                        ]),
                        _ => sse(&[
                            ("text", json!({"delta": "Let me calculate. "})),
                            (
                                "tool_start",
                                json!({"tool_use_id": "tu-1", "name": "calculator", "input": {"expression": "12*7"}}),
                            ),
                            (
                                "tool_end",
                                json!({"tool_use_id": "tu-1", "status": "success", "latency_ms": 3}),
                            ),
                            ("text", json!({"delta": "12*7 = "})),
                            ("text", json!({"delta": "84."})),
                            ("done", turn_result(id)),
                        ]),
                    }
                }
                ("POST", ["sessions", id, "messages"]) => problem(
                    StatusCode::NOT_FOUND,
                    "Not Found",
                    &format!("no session {id} for this user"),
                ),
                _ => problem(StatusCode::NOT_FOUND, "Not Found", "no such route"),
            };
        }
        problem(StatusCode::NOT_FOUND, "Not Found", "no such route")
    }
}

fn message(request: &Recorded) -> &str {
    request.body["message"].as_str().unwrap_or_default()
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::full(body.to_string()))
        .expect("response")
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response<Body> {
    let body =
        json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail});
    Response::builder()
        .status(status)
        .header("content-type", "application/problem+json")
        .body(Body::full(body.to_string()))
        .expect("response")
}

fn refused() -> Response<Body> {
    let mut response = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Model unavailable",
        "the model is not available right now",
    );
    response
        .headers_mut()
        .insert("retry-after", http::HeaderValue::from_static("5"));
    response
}

/// A `text/event-stream` of these events, each its own chunk, a keep-alive comment first.
fn sse(events: &[(&str, Value)]) -> Response<Body> {
    let mut chunks = vec![Bytes::from_static(b": keep-alive\n\n")];
    chunks.extend(
        events
            .iter()
            .map(|(name, data)| Bytes::from(format!("event: {name}\ndata: {data}\n\n"))),
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .body(Body::streamed(chunks))
        .expect("response")
}

/// The turn's result: two model calls, $0.0014.
pub fn turn_result(session: &str) -> Value {
    json!({
        "session_id": session, "turn": 1, "answer": "Let me calculate. 12*7 = 84.",
        "stop_reason": "end_turn", "steps": 2,
        "usage": {"input_tokens": 1200, "output_tokens": 40, "cache_read_tokens": 300, "cache_write_tokens": 0},
        "cost": {"input_usd": 0.0012, "output_usd": 0.0002, "total_usd": 0.0014},
        "models": ["us.anthropic.claude-haiku-4-5", "us.anthropic.claude-haiku-4-5"],
        "trace_id": "1-fake-trace"
    })
}

fn trace_page(session: &str, query: &str) -> Value {
    json!({
        "session_id": session,
        "next_cursor": null,
        "query": query,
        "turns": [{
            "turn": 1, "trace_id": "1-fake-trace", "started_at": "2026-03-01T10:00:00Z",
            "duration_ms": 1600, "stop_reason": "end_turn",
            "usage": {"input_tokens": 1200, "output_tokens": 40, "cache_read_tokens": 300},
            "cost": {"input_usd": 0.0012, "output_usd": 0.0002, "total_usd": 0.0014},
            "steps": [
                {"kind": "model", "step": 1, "model_id": "us.anthropic.claude-haiku-4-5", "latency_ms": 800,
                 "usage": {"input_tokens": 600, "output_tokens": 20}, "cost": {"input_usd": 0.0006, "output_usd": 0.0001, "total_usd": 0.0007},
                 "stop_reason": "tool_use", "start_ms": 0},
                {"kind": "tool", "step": 1, "name": "calculator", "tool_use_id": "tu-1",
                 "latency_ms": 3, "status": "success", "start_ms": 810},
                {"kind": "model", "step": 2, "model_id": "us.anthropic.claude-haiku-4-5", "latency_ms": 780,
                 "usage": {"input_tokens": 600, "output_tokens": 20, "cache_read_tokens": 300}, "cost": {"input_usd": 0.0006, "output_usd": 0.0001, "total_usd": 0.0007},
                 "stop_reason": "end_turn", "start_ms": 820}
            ]
        }]
    })
}

fn session_list() -> Value {
    json!({"sessions": [
        {"session_id": NEW_SESSION, "title": "What is 12*7?", "created_at": "2026-03-01T10:00:00Z",
         "updated_at": "2026-03-01T10:05:00Z", "turns": 1, "messages": 4,
         "usage": {"input_tokens": 1200, "output_tokens": 40, "cache_read_tokens": 300, "cache_write_tokens": 0},
         "cost_usd": 0.0014, "expires_at": 1775000000},
        {"session_id": KNOWN_SESSION, "title": null, "created_at": "2026-02-01T09:00:00Z",
         "updated_at": "2026-02-01T09:00:00Z", "turns": 0, "messages": 0,
         "usage": {"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0},
         "cost_usd": 0.0, "expires_at": 1775000000}
    ]})
}

fn tools() -> Value {
    json!({"tools": [
        {"name": "calculator", "description": "Evaluates an arithmetic expression.",
         "input_schema": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}},
        {"name": "current_time", "description": "The current date and time in a time zone.",
         "input_schema": {"type": "object", "properties": {"timezone": {"type": "string"}}}}
    ]})
}
