//! Error responses as RFC 9457 `application/problem+json`, and JSON success responses.

use lambda_http::{http::StatusCode, Body, Response};
use serde::Serialize;
use serde_json::json;

/// A JSON response with this status.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    match serde_json::to_string(body) {
        Ok(text) => build(status, "application/json", text),
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the response could not be encoded",
        ),
    }
}

/// Prefix of our problem type URIs (RFC 9457 §3.1.1 suggests a `tag:` URI for types that are
/// not meant to be dereferenced); the README lists every type.
pub const PROBLEM_TYPE_PREFIX: &str = "tag:lambda-agent,2026:problem:";

/// A `problem+json` response: the status's reason as title, `detail` for the person reading it.
pub fn problem(status: StatusCode, detail: impl Into<String>) -> Response<Body> {
    problem_of(status, None, detail)
}

/// A `problem+json` response of a named problem type (`about:blank` when `kind` is `None`).
pub fn problem_of(
    status: StatusCode,
    kind: Option<&str>,
    detail: impl Into<String>,
) -> Response<Body> {
    build(
        status,
        "application/problem+json",
        problem_body(status, kind, detail).to_string(),
    )
}

/// The `problem+json` body of a named problem type (`about:blank` when `kind` is `None`).
pub fn problem_body(
    status: StatusCode,
    kind: Option<&str>,
    detail: impl Into<String>,
) -> serde_json::Value {
    json!({
        "type": kind.map_or_else(|| "about:blank".to_owned(), |kind| format!("{PROBLEM_TYPE_PREFIX}{kind}")),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail.into(),
    })
}

/// An empty response with this status.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}

fn build(status: StatusCode, content_type: &'static str, text: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static(content_type),
    );
    response
}
