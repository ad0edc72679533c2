//! A stand-in web search provider on a loopback address, for `make dev` and the tests.
//!
//! It answers the two request shapes `tool-web-search` sends, as the providers document them:
//!
//! - Tavily: `POST /search` with `{"query", "max_results"}` and `Authorization: Bearer <key>`;
//!   answers `{"query", "results": [{"title", "url", "content", "score", "published_date"?}]}`.
//! - Brave Search: `GET /res/v1/web/search?q=..&count=..` with `X-Subscription-Token: <key>`;
//!   answers `{"type": "search", "web": {"results": [{"title", "url", "description", "age"}]}}`,
//!   with `<strong>` highlighting as Brave sends it.
//!
//! Results are made up from the query and say so ("not live"). With an accepted key set, any
//! other key (or none) gets a 401 like the real APIs; without one, everything is accepted.
//! `GET /__stats` answers `{"searches": n}`: the search requests received, so a test can prove
//! that a cached search cost no provider call. Keys are never logged or reported.

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::{net::TcpListener, task::JoinHandle};
use url::Url;

/// What the stand-in knows and counts.
#[derive(Debug, Default)]
pub struct State {
    accepted: Mutex<Option<String>>,
    searches: AtomicU64,
    seen_keys: Mutex<Vec<Option<String>>>,
    fail: AtomicBool,
}

impl State {
    /// A state accepting only `key`, or any key (and none) when `None`.
    pub fn accepting(key: Option<&str>) -> Arc<Self> {
        let state = Self::default();
        *state.accepted.lock().expect("lock") = key.map(str::to_owned);
        Arc::new(state)
    }

    /// Accepts only `key` from now on (the old one was rotated out).
    pub fn accept(&self, key: &str) {
        *self.accepted.lock().expect("lock") = Some(key.to_owned());
    }

    /// Search requests received (answered or refused).
    pub fn searches(&self) -> u64 {
        self.searches.load(Ordering::SeqCst)
    }

    /// The key presented with each search request, in order (for in-process tests only; never
    /// served over HTTP).
    pub fn seen_keys(&self) -> Vec<Option<String>> {
        self.seen_keys.lock().expect("lock").clone()
    }

    /// Makes every search answer HTTP 500 (`true`) or work again (`false`).
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }
}

/// A stand-in serving on a task of the current runtime; stopped when dropped.
#[derive(Debug)]
pub struct Running {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub base: Url,
    /// Its state.
    pub state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a stand-in on `127.0.0.1:0` accepting `key` (any key when `None`).
pub async fn start(key: Option<&str>) -> std::io::Result<Running> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = base_url(&listener)?;
    let state = State::accepting(key);
    let task = tokio::spawn(serve(listener, state.clone()));
    Ok(Running { base, state, task })
}

/// The base URL of a bound listener.
pub fn base_url(listener: &TcpListener) -> std::io::Result<Url> {
    let address = listener.local_addr()?;
    Url::parse(&format!("http://{address}"))
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))
}

/// Serves connections from `listener` until the task is dropped or accepting fails.
pub async fn serve(listener: TcpListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(state.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(status: u16, body: &Value) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn presented_key(request: &Request<Incoming>) -> Option<String> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .or_else(|| header("x-subscription-token"))
        .map(str::to_owned)
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    if (method.as_str(), path.as_str()) == ("GET", "/__stats") {
        return respond(200, &json!({ "searches": state.searches() }));
    }
    let search = matches!(
        (method.as_str(), path.as_str()),
        ("POST", "/search") | ("GET", "/res/v1/web/search")
    );
    if !search {
        return respond(404, &json!({"error": format!("no route {method} {path}")}));
    }
    state.searches.fetch_add(1, Ordering::SeqCst);
    let key = presented_key(&request);
    state.seen_keys.lock().expect("lock").push(key.clone());
    if state.fail.load(Ordering::SeqCst) {
        return respond(
            500,
            &json!({"error": "internal error (stand-in told to fail)"}),
        );
    }
    let accepted = state.accepted.lock().expect("lock").clone();
    if accepted.is_some() && key != accepted {
        return respond(
            401,
            &json!({"detail": {"error": "Unauthorized: missing or invalid API key."}}),
        );
    }
    if method == "POST" {
        let body = request
            .into_body()
            .collect()
            .await
            .map(|body| body.to_bytes())
            .unwrap_or_default();
        match serde_json::from_slice::<Value>(&body) {
            Ok(body) => match (body["query"].as_str(), body["max_results"].as_u64()) {
                (Some(query), count) => respond(200, &tavily(query, count.unwrap_or(5))),
                (None, _) => respond(400, &json!({"detail": {"error": "query is required"}})),
            },
            Err(_) => respond(400, &json!({"detail": {"error": "body is not JSON"}})),
        }
    } else {
        let query = request.uri().query().unwrap_or_default();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        match get("q") {
            Some(q) => {
                let count = get("count").and_then(|c| c.parse().ok()).unwrap_or(20);
                respond(200, &brave(q, count))
            }
            None => respond(
                422,
                &json!({"type": "ErrorResponse", "error": {"detail": "q is required"}}),
            ),
        }
    }
}

/// A made-up result URL for the `i`th result of `query`.
fn result_url(i: u64, query: &str) -> String {
    let mut url = Url::parse("https://search-standin.example/result").expect("static URL");
    url.query_pairs_mut()
        .append_pair("q", query)
        .append_pair("n", &i.to_string());
    url.into()
}

/// The Tavily answer for `query`: `count` results, the first with a published date.
pub fn tavily(query: &str, count: u64) -> Value {
    let results: Vec<Value> = (1..=count.min(20))
        .map(|i| {
            let mut item = json!({
                "title": format!("{query} (result {i})"),
                "url": result_url(i, query),
                "content": format!("Result {i} for \"{query}\" from the local search stand-in; not live."),
                "score": 1.0 / (i as f64),
            });
            if i == 1 {
                item["published_date"] = json!("2026-11-01");
            }
            item
        })
        .collect();
    json!({"query": query, "results": results, "response_time": 0.01})
}

/// The Brave Search answer for `query`: `count` results with `<strong>` highlighting.
pub fn brave(query: &str, count: u64) -> Value {
    let results: Vec<Value> = (1..=count.min(20))
        .map(|i| {
            json!({
                "title": format!("<strong>{query}</strong> (result {i})"),
                "url": result_url(i, query),
                "description": format!("Result {i} for <strong>{query}</strong> from the local search stand-in; not live."),
                "age": "2 days ago",
            })
        })
        .collect();
    json!({"type": "search", "web": {"type": "search", "results": results}})
}
