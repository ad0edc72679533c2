//! The streamed turn: `POST /sessions/{id}/messages` on the `session-stream` function (a
//! Function URL in `RESPONSE_STREAM` mode) answers `text/event-stream`.
//!
//! Every check that can refuse the request runs before the stream starts and answers with the
//! same status as the buffered route: the caller, the session id, the body, the idempotency
//! key (400, 401, 413), then the agent's own (404 unknown or foreign session, 409 a turn in
//! flight, 422 a reused key, 400 an unconfigured role, 503 the store). Only once the agent says
//! the turn is under way ([`TurnSink::started`]) does the answer become `200` with events:
//!
//! - `text` `{"delta"}`: more of the answer, as the model generates it;
//! - `tool_start` `{"tool_use_id","name","input"}` and `tool_end`
//!   `{"tool_use_id","status","latency_ms"}`;
//! - `done`: the turn's result, the same body as the buffered route's `200`;
//! - `error`: a `problem+json` body, when the turn failed after it started.
//!
//! The turn runs in a task of its own, which the response's body only listens to: a client
//! that disconnects stops reading, and the turn still runs to its end and is stored.

use std::{
    convert::Infallible,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Mutex,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use futures::FutureExt;
use http_body::{Body as HttpBody, Frame, SizeHint};
use lambda_http::{
    http::{header, HeaderValue, StatusCode},
    Body, Request, Response,
};
use serde::Serialize;
use serde_json::json;
use shared::{
    agent::{AgentError, TurnResult},
    auth::JwtValidator,
    config::AuthMode,
    domain::message::{ToolCall, ToolStatus},
    ports::TurnSink,
};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::{
    handler::{
        agent_error, bad_request, caller_span, log_turn, method_not_allowed, time_left, turn_input,
        App,
    },
    problem::{problem, problem_body, problem_of},
    request,
    routes::{route, NoRoute, Route},
};

/// The body of a streaming function's response: a whole body (a refusal), or the events of
/// a turn as they are sent.
#[derive(Debug)]
pub enum StreamBody {
    /// A body sent at once (what is left of it).
    Whole(Option<Bytes>),
    /// Events, until the turn's task drops its sender.
    Events(mpsc::UnboundedReceiver<Bytes>),
}

impl HttpBody for StreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Whole(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Self::Events(events) => events
                .poll_recv(cx)
                .map(|event| event.map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |bytes| bytes.len() as u64))
            }
            Self::Events(_) => SizeHint::default(),
        }
    }
}

/// A buffered response as a streaming function's.
pub fn whole(response: Response<Body>) -> Response<StreamBody> {
    response.map(|body| {
        StreamBody::Whole(match body {
            Body::Empty => None,
            Body::Text(text) => Some(Bytes::from(text)),
            Body::Binary(bytes) => Some(Bytes::from(bytes)),
            _ => None,
        })
    })
}

/// One server-sent event: `event: <name>` and its JSON on one `data:` line (JSON text never
/// holds a raw line break).
pub fn event<T: Serialize + ?Sized>(name: &str, data: &T) -> Bytes {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(b"event: ");
    bytes.extend_from_slice(name.as_bytes());
    bytes.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut bytes, data).is_err() {
        bytes.extend_from_slice(b"null");
    }
    bytes.extend_from_slice(b"\n\n");
    Bytes::from(bytes)
}

/// How the turn's task tells the handler what to answer.
enum Ready {
    /// The turn is under way: stream it.
    Started,
    /// The turn was answered without running (an idempotent replay): stream its `done`.
    Answered,
    /// The agent refused the turn before it started: answer with that status.
    Refused(AgentError),
}

/// The turn's sink: events go to the response body's channel as server-sent events; the
/// first sign of the turn's fate goes to the waiting handler.
pub struct EventSink {
    events: mpsc::UnboundedSender<Bytes>,
    ready: Mutex<Option<oneshot::Sender<Ready>>>,
}

impl EventSink {
    fn new(events: mpsc::UnboundedSender<Bytes>, ready: oneshot::Sender<Ready>) -> Self {
        Self {
            events,
            ready: Mutex::new(Some(ready)),
        }
    }

    /// A sink and the receiving end of its events, for a caller with no handler waiting
    /// (benchmarks).
    pub fn detached() -> (Self, mpsc::UnboundedReceiver<Bytes>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let (ready, _) = oneshot::channel();
        (Self::new(events, ready), receiver)
    }

    fn send(&self, bytes: Bytes) {
        // A closed channel is a client that went away: the turn goes on regardless.
        let _ = self.events.send(bytes);
    }

    /// The handler's end of the ready signal, if no one has used it yet.
    fn take_ready(&self) -> Option<oneshot::Sender<Ready>> {
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Tells the waiting handler, once.
    fn signal(&self, ready: Ready) {
        if let Some(sender) = self.take_ready() {
            let _ = sender.send(ready);
        }
    }

    fn done(&self, result: &TurnResult) {
        self.signal(Ready::Answered);
        self.send(event("done", result));
    }

    /// A failed turn: a refusal for the handler to answer while the stream has not started,
    /// else the stream's last event.
    fn fail(&self, error: AgentError) {
        if let Some(sender) = self.take_ready() {
            let _ = sender.send(Ready::Refused(error));
            return;
        }
        let failure = crate::status::failure(&error);
        if failure.status.is_server_error() {
            tracing::error!(%error, kind = failure.kind, "streamed turn failed");
        }
        self.send(event(
            "error",
            &problem_body(failure.status, Some(failure.kind), failure.detail),
        ));
    }
}

impl TurnSink for EventSink {
    fn text(&self, delta: &str) {
        self.send(event("text", &json!({ "delta": delta })));
    }

    fn tool_start(&self, call: &ToolCall) {
        self.send(event(
            "tool_start",
            &json!({"tool_use_id": call.tool_use_id, "name": call.name, "input": call.input}),
        ));
    }

    fn tool_end(&self, tool_use_id: &str, status: ToolStatus, latency: std::time::Duration) {
        self.send(event(
            "tool_end",
            &json!({
                "tool_use_id": tool_use_id,
                "status": status,
                "latency_ms": u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            }),
        ));
    }

    fn started(&self) {
        self.signal(Ready::Started);
    }
}

/// Handles one request to the streaming function. Never fails: a refusal is a
/// `problem+json` response, a failure after the start an `error` event.
pub async fn handle(app: &'static App, request: Request) -> Response<StreamBody> {
    let arrived = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match route(&method, &path) {
        Ok(Route::SendMessage(raw)) => send(app, &request, raw, arrived).await,
        Ok(_) | Err(NoRoute::NotFound) => whole(problem(
            StatusCode::NOT_FOUND,
            "the streaming endpoint serves POST /sessions/{id}/messages; every other route is on the API",
        )),
        Err(NoRoute::MethodNotAllowed(allowed)) => whole(method_not_allowed(allowed)),
    };
    tracing::info!(
        method = %method,
        status = response.status().as_u16(),
        streamed = matches!(response.body(), StreamBody::Events(_)),
        latency_ms = u64::try_from(arrived.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

async fn send(
    app: &'static App,
    request: &Request,
    raw_id: &str,
    arrived: Instant,
) -> Response<StreamBody> {
    let user = match caller(app, request).await {
        Ok(user) => user,
        Err(refused) => return whole(refused),
    };
    let input = match turn_input(app, request, raw_id) {
        Ok(input) => input,
        Err(bad) => return whole(bad_request(bad)),
    };
    let time_left = time_left(request, app.deadline_margin);
    let (events, receiver) = mpsc::unbounded_channel();
    let (ready, is_ready) = oneshot::channel();
    // The task owns the only sender: the body ends when the turn's task does. It runs in the
    // invocation's span (its request id) and the caller's (their hash, never their id).
    let span = caller_span(&user);
    tokio::spawn(
        async move {
            let sink = EventSink::new(events, ready);
            let turn = input.turn(&user, arrived, time_left, Some(&sink));
            let outcome = AssertUnwindSafe(app.agent.send_message(turn))
                .catch_unwind()
                .await;
            match outcome {
                Ok(Ok(result)) => {
                    log_turn(&result);
                    sink.done(&result);
                    // After `done` (the client has its answer), before the stream ends (the
                    // invocation, after which Lambda may freeze the environment).
                    crate::otel::export_turn(app, &result, &input).await;
                }
                Ok(Err(error)) => sink.fail(error),
                Err(_panic) => {
                    tracing::error!("the streamed turn panicked");
                    sink.send(event(
                        "error",
                        &problem_body(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            None,
                            "the turn failed unexpectedly",
                        ),
                    ));
                }
            }
        }
        .instrument(span),
    );
    match is_ready.await {
        Ok(Ready::Started | Ready::Answered) => events_response(receiver),
        Ok(Ready::Refused(error)) => whole(agent_error(error)),
        // The task ended without a word: it panicked before the turn started.
        Err(_) => whole(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the turn failed unexpectedly",
        )),
    }
}

/// The caller: the bearer token's `sub` once the token is validated (`jwt` mode: no API
/// Gateway authorizer stands in front of a Function URL), or the `x-user-id` header locally.
async fn caller(app: &App, request: &Request) -> Result<String, Response<Body>> {
    if app.auth_mode == AuthMode::InsecureLocal {
        return request::caller(request, app.auth_mode).map_err(bad_request);
    }
    let Some(validator) = &app.jwt else {
        tracing::error!("jwt mode without a token validator: JWT_ISSUER is not configured");
        return Err(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this endpoint is not configured to validate tokens",
        ));
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(JwtValidator::bearer);
    let Some(token) = token else {
        return Err(unauthorized(
            "send the caller's token in an Authorization: Bearer <JWT> header",
        ));
    };
    match validator.validate(token).await {
        Ok(claims) => request::user_id(&claims.sub).map_err(bad_request),
        Err(error) if error.is_unavailable() => {
            tracing::error!(%error, "the issuer's signing keys are unavailable");
            let mut response = problem_of(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("identity-unavailable"),
                "the identity provider's signing keys could not be read; retry shortly",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            Err(response)
        }
        Err(error) => Err(unauthorized(&format!("the token was refused: {error}"))),
    }
}

/// A 401 with the RFC 6750 challenge.
fn unauthorized(detail: &str) -> Response<Body> {
    let mut response = problem(StatusCode::UNAUTHORIZED, detail);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

fn events_response(receiver: mpsc::UnboundedReceiver<Bytes>) -> Response<StreamBody> {
    let mut response = Response::new(StreamBody::Events(receiver));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies that buffer (nginx) pass the events on as they come.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_named_line_of_json_and_a_blank_line() {
        let bytes = event("text", &json!({"delta": "two\nlines"}));
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "event: text\ndata: {\"delta\":\"two\\nlines\"}\n\n"
        );
    }

    #[tokio::test]
    async fn a_sink_whose_reader_left_drops_events_and_the_turn_goes_on() {
        let (sink, receiver) = EventSink::detached();
        drop(receiver);
        sink.text("nobody reads this");
        sink.started();
        sink.fail(AgentError::NotFound);
    }

    #[tokio::test]
    async fn a_refusal_before_the_start_goes_to_the_handler_and_after_it_is_an_event() {
        let (events, mut receiver) = mpsc::unbounded_channel();
        let (ready, is_ready) = oneshot::channel();
        let sink = EventSink::new(events, ready);
        sink.fail(AgentError::NotFound);
        assert!(matches!(
            is_ready.await,
            Ok(Ready::Refused(AgentError::NotFound))
        ));
        assert!(receiver.try_recv().is_err(), "no event for a refusal");

        let (events, mut receiver) = mpsc::unbounded_channel();
        let (ready, is_ready) = oneshot::channel();
        let sink = EventSink::new(events, ready);
        sink.started();
        sink.text("par");
        sink.fail(AgentError::Conflict);
        assert!(matches!(is_ready.await, Ok(Ready::Started)));
        let first = receiver.try_recv().unwrap();
        assert!(first.starts_with(b"event: text\n"));
        let last = String::from_utf8(receiver.try_recv().unwrap().to_vec()).unwrap();
        assert!(last.starts_with("event: error\ndata: {"), "{last}");
        assert!(last.contains("\"status\":409"), "{last}");
    }
}
