//! The HTTP API as the commands call it: who the caller is (a bearer token, or `x-user-id`
//! locally), JSON in and out, and `application/problem+json` errors turned into one line.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::{header, Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::wire::{ConsoleConfig, Problem};

/// Who the caller is. Deliberately not `Debug`: the token must never be printed.
pub enum Identity {
    /// `Authorization: Bearer <JWT>` (deployed).
    Bearer(String),
    /// `x-user-id: <user>` (a local stack, `AUTH_MODE=insecure-local`).
    User(String),
}

impl Identity {
    /// The token when one is given (`LAMBDA_AGENT_TOKEN`), else the local user.
    pub fn new(token: Option<String>, user: &str) -> Self {
        match token.filter(|t| !t.trim().is_empty()) {
            Some(token) => Self::Bearer(token.trim().to_owned()),
            None => Self::User(user.to_owned()),
        }
    }
}

/// A failed request, as one line.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    message: String,
}

impl ApiError {
    /// The error a `problem+json` body (or any other body) of `status` describes.
    pub fn from_body(status: StatusCode, body: &str, retry_after: Option<&str>) -> Self {
        let problem: Option<Problem> = serde_json::from_str(body).ok();
        let mut message = match problem {
            Some(p) if !p.title.is_empty() || !p.detail.is_empty() => {
                match (p.title.is_empty(), p.detail.is_empty()) {
                    (false, false) => format!("{}: {}", p.title, p.detail),
                    (false, true) => p.title,
                    _ => p.detail,
                }
            }
            _ => {
                let text = one_line(body, 200);
                let reason = status.canonical_reason().unwrap_or("error");
                if text.is_empty() {
                    reason.to_owned()
                } else {
                    format!("{reason}: {text}")
                }
            }
        };
        message = format!("{} (HTTP {})", one_line(&message, 500), status.as_u16());
        if let Some(seconds) = retry_after {
            message.push_str(&format!("; retry after {} s", one_line(seconds, 20)));
        }
        Self { status, message }
    }

    /// The error of a stream's `error` event (a problem body, without an HTTP status).
    pub fn from_event(data: &str) -> Self {
        let problem: Problem = serde_json::from_str(data).unwrap_or_default();
        let status = problem
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::from_body(status, data, None)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// `text` on one line, at most `max` characters (an ellipsis when cut).
pub fn one_line(text: &str, max: usize) -> String {
    crate::format::cut(&text.split_whitespace().collect::<Vec<_>>().join(" "), max)
}

/// A client of one deployment.
pub struct Api {
    http: reqwest::Client,
    base: Url,
    identity: Identity,
}

impl Api {
    /// A client of the API at `base`.
    pub fn new(base: &str, identity: Identity) -> Result<Self> {
        // reqwest is built with rustls and no crypto provider in this workspace: ring's is the
        // process default (a second install is refused, which is fine).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Between two reads: a turn may take minutes in all (the first request to a local
            // stack waits for `cargo lambda watch` to build), but not that long silent.
            .read_timeout(Duration::from_secs(600))
            .user_agent(concat!("lambda-agent-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self {
            http,
            base: base_url(base, "the API URL")?,
            identity,
        })
    }

    /// True when the caller is named by a token.
    pub fn has_token(&self) -> bool {
        matches!(self.identity, Identity::Bearer(_))
    }

    /// The API's URL of these path segments (each percent-encoded as needed).
    pub fn url(&self, segments: &[&str]) -> Url {
        join(&self.base, segments)
    }

    /// A request to `url` carrying the caller's identity.
    pub fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        let request = self.http.request(method, url.clone());
        match &self.identity {
            Identity::Bearer(token) => request.bearer_auth(token),
            Identity::User(user) => request.header("x-user-id", user),
        }
    }

    /// `GET url` as JSON.
    pub async fn get<T: DeserializeOwned>(&self, url: &Url) -> Result<T> {
        let response = self.send(self.request(Method::GET, url), url).await?;
        read_json(response, url).await
    }

    /// `GET url` as JSON, given up after `timeout`.
    pub async fn get_within<T: DeserializeOwned>(&self, url: &Url, timeout: Duration) -> Result<T> {
        let request = self.request(Method::GET, url).timeout(timeout);
        let response = self.send(request, url).await?;
        read_json(response, url).await
    }

    /// `POST url` with a JSON body (or none), answered with JSON.
    pub async fn post<T: DeserializeOwned>(&self, url: &Url, body: Option<&Value>) -> Result<T> {
        let mut request = self.request(Method::POST, url);
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = self.send(request, url).await?;
        read_json(response, url).await
    }

    /// Sends `request` (to `url`); a status that is not a success is an [`ApiError`].
    pub async fn send(&self, request: RequestBuilder, url: &Url) -> Result<Response> {
        let response = request.send().await.map_err(|e| transport_error(e, url))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        let mut error = ApiError::from_body(status, &body, retry_after.as_deref());
        if status == StatusCode::UNAUTHORIZED && !self.has_token() {
            error
                .message
                .push_str("; set LAMBDA_AGENT_TOKEN to a JWT for a deployed API");
        }
        Err(error.into())
    }

    /// The stream URL the API's public `/console/config.json` names; `None` when it names none
    /// or the API has no such route.
    pub async fn console_stream_url(&self) -> Result<Option<String>> {
        let url = self.url(&["console", "config.json"]);
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| transport_error(e, &url))?;
        if !response.status().is_success() {
            // 404: an API without the console (or an older one); anything else: no stream
            // either, the buffered route still answers.
            return Ok(None);
        }
        let config: ConsoleConfig = response.json().await.unwrap_or_default();
        Ok(config.stream_url.filter(|s| !s.trim().is_empty()))
    }

    /// The body of one turn's request.
    pub fn turn_body(message: &str, model: Option<&str>) -> Value {
        let mut body = json!({ "message": message });
        if let Some(model) = model {
            body["model"] = json!(model);
        }
        body
    }
}

/// `text` as the base URL of an API (`what` names it in the error): http or https.
pub fn base_url(text: &str, what: &str) -> Result<Url> {
    let url = Url::parse(text.trim())
        .map_err(|e| anyhow::anyhow!("{what} {text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        anyhow::bail!("{what} {text:?} is not an http(s) URL");
    }
    Ok(url)
}

/// `base` with these path segments added (each percent-encoded as needed).
pub fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

async fn read_json<T: DeserializeOwned>(response: Response, url: &Url) -> Result<T> {
    let text = response.text().await.map_err(|e| transport_error(e, url))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{url} answered something that is not the API's JSON ({e})"))
}

/// A request that got no answer: the URL and the innermost cause (`connection refused`, a
/// timeout, ...), on one line.
pub fn transport_error(error: reqwest::Error, url: &Url) -> anyhow::Error {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause: &dyn std::error::Error = &error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    anyhow::anyhow!("{url}: {what} ({})", one_line(&cause.to_string(), 200))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_its_title_and_detail_on_one_line() {
        let body = r#"{"type":"tag:lambda-agent,2026:problem:not-found","title":"Not Found","status":404,"detail":"no session 123\nfor this user"}"#;
        let error = ApiError::from_body(StatusCode::NOT_FOUND, body, None);
        assert_eq!(
            error.to_string(),
            "Not Found: no session 123 for this user (HTTP 404)"
        );
        let error = ApiError::from_body(StatusCode::SERVICE_UNAVAILABLE, body, Some("5"));
        assert!(error.to_string().ends_with("; retry after 5 s"), "{error}");
    }

    #[test]
    fn any_other_body_is_cut_to_one_short_line() {
        let body = format!("<html>\n{}\n</html>", "x".repeat(1000));
        let error = ApiError::from_body(StatusCode::BAD_GATEWAY, &body, None).to_string();
        assert!(error.starts_with("Bad Gateway: <html> xxx"), "{error}");
        assert!(
            !error.contains('\n') && error.chars().count() < 260,
            "{error}"
        );
        let error = ApiError::from_body(StatusCode::BAD_GATEWAY, "", None).to_string();
        assert_eq!(error, "Bad Gateway (HTTP 502)");
    }

    #[test]
    fn a_stream_error_event_takes_its_status_from_the_problem() {
        let error = ApiError::from_event(
            r#"{"type":"x","title":"Model throttled","status":503,"detail":"try later"}"#,
        );
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.to_string(), "Model throttled: try later (HTTP 503)");
    }

    #[test]
    fn urls_are_http_and_their_segments_are_encoded() {
        let base = base_url(
            "http://127.0.0.1:9/lambda-url/session-handler/",
            "the API URL",
        )
        .unwrap();
        assert_eq!(
            join(&base, &["sessions", "a/b?c", "trace"]).as_str(),
            "http://127.0.0.1:9/lambda-url/session-handler/sessions/a%2Fb%3Fc/trace"
        );
        let error = base_url("127.0.0.1:9000", "the API URL")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not an http(s) URL") || error.contains("not a URL"),
            "{error}"
        );
        assert!(base_url("nope", "--url")
            .unwrap_err()
            .to_string()
            .starts_with("--url \"nope\" is not a URL"));
    }

    #[test]
    fn the_turn_body_names_the_model_only_when_given() {
        assert_eq!(Api::turn_body("hi", None), json!({"message": "hi"}));
        assert_eq!(
            Api::turn_body("hi", Some("fast")),
            json!({"message": "hi", "model": "fast"})
        );
    }
}
