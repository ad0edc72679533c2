//! The overhead of one warm tool invocation (`cargo bench -p shared --bench tool_invoke`).
//!
//! Target (issue 3): a warm tool invocation adds under 5 ms of our own overhead beyond the
//! Invoke round trip. An in-process HTTP/1.1 server on 127.0.0.1:0 speaks the Lambda Invoke API
//! (`POST /2015-03-31/functions/{name}/invocations` -> 200 with a canned tool-contract
//! response), so the bench needs no external service. Benchmarks, per response size (`small`:
//! `{"content":[{"type":"text","text":"ok"}],"isError":false}`; `100k`: 100,000 bytes of text,
//! the most `http_fetch` returns by default):
//!
//! - `tool_invoke_<size>/raw_round_trip`: the floor. The same request body POSTed with bare
//!   hyper on one kept-alive connection, the response body read in full; no signing, no JSON.
//! - `tool_invoke_<size>/sdk_invoke`: `aws-sdk-lambda` `Invoke` alone (endpoint resolution,
//!   SigV4 signing, retry and timeout machinery, the pooled HTTP client), payload already
//!   serialized, response bytes not parsed.
//! - `tool_invoke_<size>/lambda_tools_call`: what the handler does per tool call:
//!   `LambdaTools::call` through the `ToolInvoker` port (build and serialize the request,
//!   Invoke, parse the response into a `ToolOutput`).
//!
//! Our overhead is `lambda_tools_call - raw_round_trip`. On the executor's side:
//!
//! - `executor/handle_call`: `tool_contract::handle` on a trivial tool (parse the request,
//!   validate the input against the type, run a no-op, serialize the response), `Value` in and
//!   out, as `lambda_runtime` hands it over.
//! - `executor/handle_call_logged`: `handle_call` with the executors' JSON log subscriber
//!   installed, so the "tool call served" line is formatted (and written to a byte counter).
//! - `executor/handle_call_bytes`: the same as `handle_call` from the event's bytes to the
//!   response's bytes (the JSON (de)serialization `lambda_runtime` does around the handler).
//! - `executor/handle_list`: `{"list": true}` (the schema is generated per call).
//!
//! Measurements, not assertions: nothing here fails on a slow machine; a call that does not
//! return the canned result (or was not signed) does fail.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    hint::black_box,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use aws_sdk_lambda::primitives::Blob;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::{
    adapters::lambda_tools::LambdaTools,
    domain::message::{ToolCall, ToolOutput, ToolResultContent, ToolStatus},
    ports::{CallContext, ToolInvoker},
    tool_contract::{handle, Tool, ToolRequest},
};
use tokio::{net::TcpListener, runtime::Runtime, task::JoinHandle};

/// The tool the handler calls, and the two functions serving it (one per response size).
const TOOL: &str = "bench_tool";
const SMALL_FUNCTION: &str = "tool-bench-small";
const LARGE_FUNCTION: &str = "tool-bench-100k";
/// The canned response of the small function.
const SMALL_RESPONSE: &str = r#"{"content":[{"type":"text","text":"ok"}],"isError":false}"#;
/// Text bytes in the large response.
const LARGE_TEXT_BYTES: usize = 100_000;
/// The Invoke API's path prefix.
const INVOKE_PREFIX: &str = "/2015-03-31/functions/";

/// What the in-process Invoke server saw.
#[derive(Debug, Default)]
struct Seen {
    requests: AtomicU64,
    signed: AtomicU64,
}

/// A minimal Lambda Invoke API on 127.0.0.1:0, stopped when dropped.
struct InvokeServer {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl Drop for InvokeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl InvokeServer {
    async fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let seen = Arc::new(Seen::default());
        let large = Bytes::from(
            serde_json::to_vec(&json!({
                "content": [{"type": "text", "text": large_text()}],
                "isError": false,
            }))
            .expect("serialize"),
        );
        let state = (Arc::clone(&seen), large);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                    Some(_) = connections.join_next() => continue,
                };
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let (seen, large) = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        respond(Arc::clone(&seen), large.clone(), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, seen, task }
    }

    fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// 100,000 bytes of plain text (words, no characters JSON must escape).
fn large_text() -> String {
    let sentence = "The quick brown fox jumps over the lazy dog near the river bank. ";
    sentence
        .chars()
        .cycle()
        .take(LARGE_TEXT_BYTES)
        .collect::<String>()
}

/// Answers an Invoke: 200 with the canned response of the function named in the path.
async fn respond(
    seen: Arc<Seen>,
    large: Bytes,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    seen.requests.fetch_add(1, Ordering::Relaxed);
    if request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("AWS4-HMAC-SHA256 "))
    {
        seen.signed.fetch_add(1, Ordering::Relaxed);
    }
    let function = request
        .uri()
        .path()
        .strip_prefix(INVOKE_PREFIX)
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(str::to_owned);
    let is_post = request.method() == Method::POST;
    // Read the request body in full, as a server must before answering on a kept-alive
    // connection; it is not parsed (the floor and the SDK send the same bytes).
    let _ = request.into_body().collect().await;
    let body = match (is_post, function.as_deref()) {
        (true, Some(SMALL_FUNCTION)) => Bytes::from_static(SMALL_RESPONSE.as_bytes()),
        (true, Some(LARGE_FUNCTION)) => large,
        _ => {
            return Ok(Response::builder()
                .status(StatusCode::NOT_FOUND)
                .header(header::CONTENT_TYPE, "application/json")
                .header("x-amzn-errortype", "ResourceNotFoundException")
                .body(Full::new(Bytes::from_static(
                    br#"{"Type":"User","Message":"Function not found"}"#,
                )))
                .expect("response"))
        }
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-amz-executed-version", "$LATEST")
        .header("x-amzn-requestid", "5b1a1f0e-0000-4000-8000-000000000000")
        .body(Full::new(body))
        .expect("response"))
}

/// The tokio runtime `#[tokio::main]` gives the handler on a 2-vCPU machine.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn context() -> CallContext {
    CallContext {
        user_id: "bench-user".into(),
        session_id: "0b9e6a4e-6a57-4c64-9f3b-2f1f0b3c2a10".into(),
        tool_use_id: "tooluse_0123456789abcdef".into(),
        trace_id: "1-67a0b1c2-0123456789abcdef01234567".into(),
        traceparent: None,
    }
}

/// The model's tool call: arguments the size of an `http_fetch` call.
fn tool_call() -> ToolCall {
    ToolCall {
        tool_use_id: "tooluse_0123456789abcdef".into(),
        name: TOOL.into(),
        input: json!({ "url": "https://example.com/some/page.html", "max_bytes": 20000 }),
    }
}

/// The bytes `LambdaTools` sends for `tool_call()`: the floor sends the same.
fn request_body() -> Bytes {
    let call = tool_call();
    let request = ToolRequest {
        name: call.name,
        arguments: call.input,
        context: Some(context()),
    };
    Bytes::from(serde_json::to_vec(&request).expect("serialize"))
}

/// An `aws-sdk-lambda` client built like the handler's (`shared::aws::sdk_config`, default
/// retry and timeouts), pointed at `endpoint` with static test credentials.
async fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    use aws_sdk_lambda::config::{Builder, Credentials, Region};
    let sdk = shared::aws::sdk_config().await;
    let config = Builder::from(&sdk)
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDBENCHEXAMPLE",
            "bench-secret-key",
            Some("bench-session-token".into()),
            None,
            "bench",
        ))
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

/// The floor: one kept-alive HTTP/1.1 connection, bare hyper.
struct RawClient {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
    _connection: JoinHandle<()>,
}

impl RawClient {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Self {
            sender,
            host: addr.to_string(),
            _connection: connection,
        }
    }

    /// POSTs `body` to the function's Invoke path; returns the response body.
    async fn invoke(&mut self, function: &str, body: &Bytes) -> Bytes {
        self.sender.ready().await.expect("connection ready");
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{INVOKE_PREFIX}{function}/invocations"))
            .header(header::HOST, &self.host)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .body(Full::new(body.clone()))
            .expect("request");
        let response = self.sender.send_request(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        response
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes()
    }
}

fn output_text(output: &ToolOutput) -> String {
    output
        .content
        .iter()
        .map(|part| match part {
            ToolResultContent::Text { text } => text.clone(),
            ToolResultContent::Json { json } => json.to_string(),
        })
        .collect()
}

/// Times `iters` runs of `f` inside one `block_on` (no per-iteration runtime entry).
fn timed<F, Fut, T>(rt: &Runtime, iters: u64, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    rt.block_on(async {
        let started = Instant::now();
        for _ in 0..iters {
            black_box(f().await);
        }
        started.elapsed()
    })
}

/// Times `iters` calls of `handle` on `event`, each with a fresh clone of it (the clone, which
/// `lambda_runtime` does not make, is outside the timed part).
fn time_handle(rt: &Runtime, event: &Value, iters: u64) -> Duration {
    rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let event = event.clone();
            let started = Instant::now();
            black_box(handle(&Noop, event).await);
            total += started.elapsed();
        }
        total
    })
}

fn invoke(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(InvokeServer::start());
    let client = rt.block_on(lambda_client(&server.endpoint_url()));
    let mut raw = rt.block_on(RawClient::connect(server.addr));
    let body = request_body();
    let context = context();
    let call = tool_call();

    for (size, function, expected_len) in [
        ("small", SMALL_FUNCTION, 2),
        ("100k", LARGE_FUNCTION, LARGE_TEXT_BYTES),
    ] {
        let tools = LambdaTools::new(
            client.clone(),
            BTreeMap::from([(TOOL.to_owned(), function.to_owned())]),
        );

        // Sanity: every path returns the canned response, and the SDK's requests are signed.
        let raw_body = rt.block_on(raw.invoke(function, &body));
        let parsed: Value = serde_json::from_slice(&raw_body).expect("JSON from the server");
        assert_eq!(parsed["isError"], false);
        let signed_before = server.seen.signed.load(Ordering::Relaxed);
        let output = rt.block_on(tools.call(&call, &context));
        assert_eq!(output.status, ToolStatus::Success, "{output:?}");
        let text = output_text(&output);
        assert_eq!(text.len(), expected_len, "the canned text");
        let sdk_output = rt
            .block_on(
                client
                    .invoke()
                    .function_name(function)
                    .payload(Blob::new(body.to_vec()))
                    .send(),
            )
            .expect("Invoke");
        assert_eq!(sdk_output.status_code(), 200);
        assert_eq!(
            sdk_output.payload().map(|payload| payload.as_ref().len()),
            Some(raw_body.len())
        );
        assert_eq!(
            server.seen.signed.load(Ordering::Relaxed),
            signed_before + 2,
            "the SDK's requests carry a SigV4 Authorization header"
        );

        let mut group = c.benchmark_group(format!("tool_invoke_{size}"));
        group
            .sample_size(50)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        group.bench_function("raw_round_trip", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        black_box(raw.invoke(function, &body).await);
                    }
                    started.elapsed()
                })
            })
        });
        group.bench_function("sdk_invoke", |b| {
            b.iter_custom(|iters| {
                timed(&rt, iters, || async {
                    client
                        .invoke()
                        .function_name(function)
                        .payload(Blob::new(body.to_vec()))
                        .send()
                        .await
                        .expect("Invoke")
                })
            })
        });
        group.bench_function("lambda_tools_call", |b| {
            b.iter_custom(|iters| timed(&rt, iters, || tools.call(&call, &context)))
        });
        group.finish();
    }
    println!(
        "tool_invoke: the Invoke server answered {} requests, {} of them SigV4-signed",
        server.seen.requests.load(Ordering::Relaxed),
        server.seen.signed.load(Ordering::Relaxed)
    );
}

/// Counts the bytes of log written; stands in for stdout.
struct CountingWriter(Arc<AtomicU64>);

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The input of the trivial executor tool: the shape of an `http_fetch` call.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by serde only
struct NoopInput {
    /// A URL.
    url: String,
    /// At most this many bytes.
    #[serde(default)]
    max_bytes: Option<u32>,
}

/// A tool that does nothing: what remains is the executor's contract handling.
struct Noop;

impl Tool for Noop {
    type Input = NoopInput;
    const NAME: &'static str = TOOL;
    const DESCRIPTION: &'static str = "Does nothing; answers ok.";

    async fn run(&self, input: NoopInput, _: Option<&CallContext>) -> Result<ToolOutput, String> {
        black_box(&input);
        Ok(ToolOutput::text("ok"))
    }
}

fn executor(c: &mut Criterion) {
    let rt = runtime();
    let body = request_body();
    let event: Value = serde_json::from_slice(&body).expect("JSON");
    let list = json!({"list": true});

    // Sanity: the executor answers the canned response to the handler's request.
    let response = rt.block_on(handle(&Noop, event.clone()));
    assert_eq!(
        response,
        serde_json::from_str::<Value>(SMALL_RESPONSE).expect("JSON")
    );
    let listed = rt.block_on(handle(&Noop, list.clone()));
    assert_eq!(
        listed["tools"][0]["inputSchema"]["required"],
        json!(["url"])
    );

    let mut group = c.benchmark_group("executor");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("handle_call", |b| {
        b.iter_custom(|iters| time_handle(&rt, &event, iters))
    });
    // As deployed: the executor's JSON log subscriber (`shared::telemetry::init_logging`'s
    // settings) formatting the "tool call served" line, written to a byte counter instead of
    // stdout (the write itself, a pipe to Lambda's log collector, is not ours to measure).
    let logged = Arc::new(AtomicU64::new(0));
    let subscriber = {
        let logged = Arc::clone(&logged);
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_current_span(false)
            .without_time()
            .with_writer(move || CountingWriter(Arc::clone(&logged)))
            .finish()
    };
    {
        let _logging = tracing::subscriber::set_default(subscriber);
        rt.block_on(handle(&Noop, event.clone()));
        let per_call = logged.load(Ordering::Relaxed);
        assert!(per_call > 0, "the executor logs each served call");
        println!("executor: {per_call} bytes of JSON log per served call");
        group.bench_function("handle_call_logged", |b| {
            b.iter_custom(|iters| time_handle(&rt, &event, iters))
        });
    }
    group.bench_function("handle_call_bytes", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                let event: Value = serde_json::from_slice(&body).expect("JSON");
                serde_json::to_vec(&handle(&Noop, event).await).expect("serialize")
            })
        })
    });
    group.bench_function("handle_list", |b| {
        b.iter_custom(|iters| time_handle(&rt, &list, iters))
    });
    group.finish();
}

criterion_group!(benches, invoke, executor);
criterion_main!(benches);
