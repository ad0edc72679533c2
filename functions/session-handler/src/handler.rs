//! The HTTP handler: parse, authorize, call the agent, map the result to a response.

use std::time::{Duration, Instant, SystemTime};

use lambda_http::{http::StatusCode, Body, Request, RequestExt, Response};
use serde_json::json;
use tracing::Instrument;

use shared::{
    agent::{Agent, AgentError, TurnRequest},
    config::AuthMode,
    ports::SessionHeader,
};

use crate::{
    console::{self, ConsoleSettings},
    page::{self, Paged},
    problem::{empty, json, problem, problem_of},
    request::{self, BadRequest},
    routes::{route, NoRoute, Route},
    status,
};

/// What the handler needs, built once per execution environment.
#[derive(Clone)]
pub struct App {
    /// The agent.
    pub agent: Agent,
    /// How callers are identified.
    pub auth_mode: AuthMode,
    /// Largest accepted message, in bytes.
    pub max_message_bytes: usize,
    /// Time kept free before the invocation's deadline.
    pub deadline_margin: Duration,
    /// Validates bearer tokens in code, where no API Gateway authorizer did (the streaming
    /// function's Function URL, in `jwt` mode).
    pub jwt: Option<shared::auth::JwtValidator>,
    /// What the web console is told (`STREAM_URL`).
    pub console: ConsoleSettings,
    /// Exports each turn's OpenTelemetry spans, when an OTLP endpoint is configured.
    pub traces: Option<crate::otel::Traces>,
}

/// Handles one HTTP request. Never fails: every error is a `problem+json` response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    // The turn's clock starts here: everything before the loop counts against its time.
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match route(&method, &path) {
        // Before the caller check: the console's files need no caller, its API calls carry one.
        Ok(Route::Console(page)) => {
            console::serve(&app.console, app.auth_mode, page, request.headers())
        }
        Ok(route) => dispatch(app, &request, route, started).await,
        Err(NoRoute::NotFound) => problem(StatusCode::NOT_FOUND, "no such route"),
        Err(NoRoute::MethodNotAllowed(allowed)) => method_not_allowed(allowed),
    };
    tracing::info!(
        method = %method,
        status = response.status().as_u16(),
        latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

/// 405 with the `Allow` header of the route's methods.
pub fn method_not_allowed(allowed: &str) -> Response<Body> {
    let mut response = problem(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("this route accepts {allowed}"),
    );
    if let Ok(value) = allowed.parse() {
        response.headers_mut().insert("allow", value);
    }
    response
}

async fn dispatch(
    app: &App,
    request: &Request,
    route: Route<'_>,
    arrived: Instant,
) -> Response<Body> {
    let user = match request::caller(request, app.auth_mode) {
        Ok(user) => user,
        Err(bad) => return bad_request(bad),
    };
    routed(app, request, route, arrived, &user)
        .instrument(caller_span(&user))
        .await
}

async fn routed(
    app: &App,
    request: &Request,
    route: Route<'_>,
    arrived: Instant,
    user: &str,
) -> Response<Body> {
    let result = match route {
        Route::CreateSession => app.agent.create_session(user).await.map(|header| {
            let mut response = json(
                StatusCode::CREATED,
                &json!({"session_id": header.session_id, "created_at": header.created_at}),
            );
            if let Ok(location) = format!("sessions/{}", header.session_id).parse() {
                response.headers_mut().insert("location", location);
            }
            response
        }),
        Route::ListSessions => app.agent.list_sessions(user).await.map(|sessions| {
            let sessions: Vec<_> = sessions.iter().map(header_view).collect();
            json(StatusCode::OK, &json!({ "sessions": sessions }))
        }),
        Route::GetSession(raw) => {
            let (id, page) = match request::session_id(raw)
                .and_then(|id| Ok((id, page::page_request(request, Paged::Messages)?)))
            {
                Ok(parsed) => parsed,
                Err(bad) => return bad_request(bad),
            };
            app.agent
                .get_session(user, &id, page)
                .await
                .map(|(header, page)| {
                    let mut view = header_view(&header);
                    view["next_cursor"] =
                        json!(page.next.map(|next| page::encode(next, Paged::Messages)));
                    view["messages"] = json!(page
                        .items
                        .iter()
                        .map(|m| json!({
                            "seq": m.seq,
                            "turn": m.turn,
                            "role": m.message.role,
                            "content": m.message.content,
                            "created_at": m.created_at,
                        }))
                        .collect::<Vec<_>>());
                    json(StatusCode::OK, &view)
                })
        }
        Route::GetTrace(raw) => {
            let (id, page) = match request::session_id(raw)
                .and_then(|id| Ok((id, page::page_request(request, Paged::Traces)?)))
            {
                Ok(parsed) => parsed,
                Err(bad) => return bad_request(bad),
            };
            app.agent.get_traces(user, &id, page).await.map(|page| {
                json(
                    StatusCode::OK,
                    &json!({
                        "session_id": id,
                        "turns": page.items,
                        "next_cursor": page.next.map(|next| page::encode(next, Paged::Traces)),
                    }),
                )
            })
        }
        Route::DeleteSession(raw) => {
            let id = match request::session_id(raw) {
                Ok(id) => id,
                Err(bad) => return bad_request(bad),
            };
            let forget = match page::parameter(request, "forget").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => {
                    return bad_request(BadRequest::Invalid(
                        "query parameter `forget` must be `true` or `false`".into(),
                    ))
                }
            };
            if forget {
                app.agent
                    .delete_session_and_forget(user, &id)
                    .await
                    .map(|_| empty(StatusCode::NO_CONTENT))
            } else {
                app.agent
                    .delete_session(user, &id)
                    .await
                    .map(|()| empty(StatusCode::NO_CONTENT))
            }
        }
        Route::ListMemory => app
            .agent
            .memories(user)
            .await
            .map(|records| json(StatusCode::OK, &json!({ "memories": records }))),
        Route::Forget(id) => match app.agent.forget(user, id).await {
            Err(shared::agent::AgentError::NotFound) => {
                return problem(StatusCode::NOT_FOUND, "no such memory record")
            }
            other => other.map(|()| empty(StatusCode::NO_CONTENT)),
        },
        Route::ForgetAll => app
            .agent
            .forget_all(user)
            .await
            .map(|forgotten| json(StatusCode::OK, &json!({ "forgotten": forgotten }))),
        // Served by `handle`, before the caller check.
        Route::Console(_) => return problem(StatusCode::NOT_FOUND, "no such route"),
        Route::ListTools => app
            .agent
            .tool_specs()
            .await
            .map(|tools| json(StatusCode::OK, &json!({ "tools": tools }))),
        Route::SendMessage(raw) => {
            let input = match turn_input(app, request, raw) {
                Ok(input) => input,
                Err(bad) => return bad_request(bad),
            };
            let turn = input.turn(user, arrived, time_left(request, app.deadline_margin), None);
            let outcome = app.agent.send_message(turn).await;
            if let Ok(result) = &outcome {
                log_turn(result);
                crate::otel::export_turn(app, result, &input).await;
            }
            outcome.map(|result| json(StatusCode::OK, &result))
        }
    };
    result.unwrap_or_else(agent_error)
}

/// The span every line logged for a caller runs in: it names them by hash, never by id.
pub fn caller_span(user: &str) -> tracing::Span {
    tracing::info_span!("caller", user = %shared::telemetry::user_hash(user))
}

/// The log line and the EMF metrics record of a finished turn.
pub fn log_turn(result: &shared::agent::TurnResult) {
    if let Some(trace) = result.trace.get() {
        shared::telemetry::emit_turn_metrics(trace);
    }
    tracing::info!(
        session_id = %result.session_id,
        trace_id = %result.trace_id,
        steps = result.steps,
        stop_reason = %result.stop_reason,
        input_tokens = result.usage.input_tokens,
        output_tokens = result.usage.output_tokens,
        cache_read_tokens = result.usage.cache_read_tokens,
        cache_write_tokens = result.usage.cache_write_tokens,
        models = ?result.models,
        cost_usd = result.cost.as_ref().map_or(0.0, |c| c.total_usd),
        "turn"
    );
}

/// A message request once read: the session, the body and the idempotency key.
pub struct TurnInput {
    /// The session id, canonical.
    pub session_id: String,
    /// The body.
    pub body: request::SendBody,
    /// The `Idempotency-Key`, if sent.
    pub key: Option<String>,
}

impl TurnInput {
    /// The agent's request for this input.
    pub fn turn<'a>(
        &'a self,
        user: &'a str,
        arrived: Instant,
        time_left: Option<Duration>,
        sink: Option<&'a dyn shared::ports::TurnSink>,
    ) -> TurnRequest<'a> {
        TurnRequest {
            user_id: user,
            session_id: &self.session_id,
            message: &self.body.message,
            role: self.body.role,
            idempotency_key: self.key.as_deref(),
            arrived,
            time_left,
            sink,
        }
    }
}

/// Reads a `POST /sessions/{id}/messages`: the same checks, in the same order, for the
/// buffered and the streamed route.
pub fn turn_input(app: &App, request: &Request, raw_id: &str) -> Result<TurnInput, BadRequest> {
    let session_id = request::session_id(raw_id)?;
    let body = request::message(request.body(), app.max_message_bytes)?;
    let key = request::idempotency_key(request)?;
    Ok(TurnInput {
        session_id,
        body,
        key,
    })
}

/// Time left in this invocation less the margin; `None` outside Lambda.
pub fn time_left(request: &Request, margin: Duration) -> Option<Duration> {
    let context = request.lambda_context_ref()?;
    budget(context.deadline, SystemTime::now(), margin)
}

/// The turn's time budget from the invocation deadline (Unix milliseconds).
///
/// A deadline that is not in the future is not a real one (Lambda never invokes past its
/// deadline; `cargo lambda watch` sends a fixed placeholder): the turn then runs on its own
/// `MAX_WALL_TIME_MS` cap alone.
pub fn budget(deadline_ms: u64, now: SystemTime, margin: Duration) -> Option<Duration> {
    let deadline = SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(deadline_ms))?;
    let left = deadline
        .duration_since(now)
        .ok()
        .filter(|left| !left.is_zero())?;
    Some(left.saturating_sub(margin))
}

fn header_view(header: &SessionHeader) -> serde_json::Value {
    json!({
        "session_id": header.session_id,
        "title": header.title,
        "created_at": header.created_at,
        "updated_at": header.updated_at,
        "turns": header.turns,
        "messages": header.version,
        "usage": header.usage,
        "cost_usd": header.cost_usd,
        "expires_at": header.expires_at,
    })
}

/// The answer to a request refused as it was read.
pub fn bad_request(bad: BadRequest) -> Response<Body> {
    match bad {
        BadRequest::Unauthorized(detail) => problem(StatusCode::UNAUTHORIZED, detail),
        BadRequest::Invalid(detail) => problem(StatusCode::BAD_REQUEST, detail),
        BadRequest::TooLarge(detail) => problem(StatusCode::PAYLOAD_TOO_LARGE, detail),
    }
}

/// The answer to a request the agent refused or failed.
pub fn agent_error(error: AgentError) -> Response<Body> {
    let failure = status::failure(&error);
    if failure.status.is_server_error() {
        tracing::error!(%error, kind = failure.kind, status = failure.status.as_u16(), "request failed");
    }
    let mut response = problem_of(failure.status, Some(failure.kind), failure.detail);
    if let Some(seconds) = failure.retry_after {
        if let Ok(value) = seconds.to_string().parse() {
            response.headers_mut().insert("retry-after", value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_deadline_leaves_the_time_to_it_less_the_margin() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let deadline_ms = 1_800_000_000_000 + 30_000;
        assert_eq!(
            budget(deadline_ms, now, Duration::from_secs(3)),
            Some(Duration::from_secs(27))
        );
        assert_eq!(
            budget(deadline_ms, now, Duration::from_secs(60)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_deadline_in_the_past_or_a_placeholder_is_no_deadline() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(budget(600_000, now, Duration::from_secs(3)), None);
        assert_eq!(budget(0, now, Duration::from_secs(3)), None);
    }
}
