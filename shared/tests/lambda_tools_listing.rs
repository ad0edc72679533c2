//! Tool listing that cannot fail a turn: `LambdaTools::specs` against an in-process Lambda
//! Invoke API (`POST /2015-03-31/functions/{name}/invocations` on 127.0.0.1:0) whose functions
//! answer, fail (`X-Amz-Function-Error: Unhandled`), hang past the listing timeout, answer a
//! malformed list or leave a configured tool out. Every executor is asked at once, the failed
//! ones are left out (and logged), asked again only after the back-off, by one request at a
//! time, and served once they answer. The server counts the list requests per function.

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, header, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use shared::{
    adapters::lambda_tools::LambdaTools,
    domain::message::{ToolCall, ToolStatus},
    ports::{CallContext, ToolInvoker},
};
use tokio::{net::TcpListener, task::JoinHandle};

const INVOKE_PREFIX: &str = "/2015-03-31/functions/";

/// How a function of the in-process Invoke API answers.
#[derive(Clone, Debug)]
enum Behaviour {
    /// Lists these tools; a call answers "ok".
    Serve(Vec<&'static str>),
    /// A function error: `X-Amz-Function-Error: Unhandled`.
    Fail,
    /// Answers after a minute.
    Hang,
    /// 200 with `{"tools": "not a list"}`.
    Malformed,
}

#[derive(Default)]
struct State {
    behaviour: HashMap<String, Behaviour>,
    /// Function -> when each list request arrived.
    lists: HashMap<String, Vec<Instant>>,
    /// Function -> how many tool calls arrived.
    calls: HashMap<String, usize>,
}

/// A Lambda Invoke API on 127.0.0.1:0, stopped when dropped.
struct InvokeServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for InvokeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl InvokeServer {
    async fn start(functions: &[(&str, Behaviour)]) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State {
            behaviour: functions
                .iter()
                .map(|(name, behaviour)| ((*name).to_owned(), behaviour.clone()))
                .collect(),
            ..State::default()
        }));
        let shared = Arc::clone(&state);
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
                let state = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        respond(Arc::clone(&state), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    fn set(&self, function: &str, behaviour: Behaviour) {
        self.state
            .lock()
            .unwrap()
            .behaviour
            .insert(function.to_owned(), behaviour);
    }

    fn lists(&self, function: &str) -> Vec<Instant> {
        self.state
            .lock()
            .unwrap()
            .lists
            .get(function)
            .cloned()
            .unwrap_or_default()
    }

    fn list_count(&self, function: &str) -> usize {
        self.lists(function).len()
    }

    fn calls(&self, function: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(function)
            .copied()
            .unwrap_or_default()
    }

    /// A client built like the handler's, pointed at this server, with static credentials.
    async fn tools(&self, pairs: &[(&str, &str)]) -> LambdaTools {
        use aws_sdk_lambda::config::{Builder, Credentials, Region};
        let sdk = shared::aws::sdk_config().await;
        let config = Builder::from(&sdk)
            .endpoint_url(format!("http://{}", self.addr))
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "AKIDTESTEXAMPLE",
                "test-secret-key",
                None,
                None,
                "test",
            ))
            .build();
        let functions: BTreeMap<String, String> = pairs
            .iter()
            .map(|(tool, function)| ((*tool).to_owned(), (*function).to_owned()))
            .collect();
        LambdaTools::new(aws_sdk_lambda::Client::from_conf(config), functions)
    }
}

fn json_response(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

async fn respond(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let function = request
        .uri()
        .path()
        .strip_prefix(INVOKE_PREFIX)
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .unwrap_or_default()
        .to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let is_list = event["list"] == json!(true);
    let behaviour = {
        let mut state = state.lock().unwrap();
        if is_list {
            state
                .lists
                .entry(function.clone())
                .or_default()
                .push(Instant::now());
        } else {
            *state.calls.entry(function.clone()).or_default() += 1;
        }
        state.behaviour.get(&function).cloned()
    };
    let response = match behaviour {
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"Type": "User", "Message": "Function not found"}),
        ),
        Some(Behaviour::Hang) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            json_response(StatusCode::OK, json!({"tools": []}))
        }
        Some(Behaviour::Fail) => {
            let mut response = json_response(
                StatusCode::OK,
                json!({"errorType": "Panic", "errorMessage": "secret-payload-detail"}),
            );
            response.headers_mut().insert(
                "x-amz-function-error",
                header::HeaderValue::from_static("Unhandled"),
            );
            response
        }
        Some(Behaviour::Malformed) => json_response(StatusCode::OK, json!({"tools": "not a list"})),
        Some(Behaviour::Serve(tools)) if is_list => json_response(
            StatusCode::OK,
            json!({"tools": tools.iter().map(|name| json!({
                "name": name,
                "description": format!("the {name} tool"),
                "inputSchema": {"type": "object", "properties": {}},
            })).collect::<Vec<_>>()}),
        ),
        Some(Behaviour::Serve(_)) => json_response(
            StatusCode::OK,
            json!({"content": [{"type": "text", "text": "ok"}], "isError": false}),
        ),
    };
    Ok(response)
}

async fn names(tools: &LambdaTools) -> Vec<String> {
    tools
        .specs()
        .await
        .expect("listing never fails")
        .into_iter()
        .map(|spec| spec.name)
        .collect()
}

fn context() -> CallContext {
    CallContext {
        user_id: "alice".into(),
        session_id: "s".into(),
        tool_use_id: "tooluse_1".into(),
        trace_id: "trace".into(),
        traceparent: None,
    }
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON log line"))
            .collect()
    }
}

/// What every test of this binary logs, as JSON lines: the global subscriber (a thread-local
/// one would miss callsites first hit by the tests running alongside on other threads).
fn logs() -> LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        logs
    })
    .clone()
}

const TIMEOUT: Duration = Duration::from_millis(1000);
const BACK_OFF: Duration = Duration::from_millis(200);

#[tokio::test]
async fn failed_executors_are_left_out_asked_again_after_the_back_off_and_served_once_back() {
    let logs = logs();

    let server = InvokeServer::start(&[
        ("tool-good", Behaviour::Serve(vec!["alpha", "beta"])),
        ("tool-failing", Behaviour::Fail),
        ("tool-hanging", Behaviour::Hang),
        ("tool-hanging-too", Behaviour::Hang),
        ("tool-malformed", Behaviour::Malformed),
    ])
    .await;
    let tools = server
        .tools(&[
            ("alpha", "tool-good"),
            ("beta", "tool-good"),
            ("gamma", "tool-failing"),
            ("delta", "tool-hanging"),
            ("epsilon", "tool-hanging-too"),
            ("zeta", "tool-malformed"),
        ])
        .await
        .with_list_timeout(TIMEOUT)
        .with_list_retry(BACK_OFF, Duration::from_secs(5));

    // The first listing: all at once (two executors hang for the whole timeout, so asking them
    // in turn would take twice that), the good tools served, the others left out.
    let started = Instant::now();
    assert_eq!(names(&tools).await, ["alpha", "beta"]);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= TIMEOUT,
        "the hanging executors were waited for: {elapsed:?}"
    );
    assert!(
        elapsed < TIMEOUT * 2 - Duration::from_millis(100),
        "listed in parallel within the timeout plus slack: {elapsed:?}"
    );
    let all = [
        "tool-good",
        "tool-failing",
        "tool-hanging",
        "tool-hanging-too",
        "tool-malformed",
    ];
    for function in all {
        assert_eq!(server.list_count(function), 1, "{function} asked once");
    }

    // Each failure is logged with the function and its kind, never the payload.
    let lines = logs.lines();
    let left_out = |function: &str| -> String {
        lines
            .iter()
            .find(|line| {
                line["fields"]["function"] == function
                    && line["fields"]["message"] == "executor left out of the tool listing"
            })
            .and_then(|line| line["fields"]["failure"].as_str())
            .unwrap_or_else(|| panic!("no warning for {function}: {lines:?}"))
            .to_owned()
    };
    assert_eq!(left_out("tool-failing"), "function error");
    assert_eq!(left_out("tool-hanging"), "timed out");
    assert_eq!(left_out("tool-malformed"), "malformed list response");
    assert!(
        lines
            .iter()
            .all(|line| line["level"] != "WARN"
                || !line.to_string().contains("secret-payload-detail"))
    );
    assert!(
        lines.iter().any(|line| line["fields"]["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("tool listing incomplete"))
            && line["level"] == "WARN"),
        "{lines:#?}"
    );

    // Within the back-off: served from the cache, nobody asked again.
    assert_eq!(names(&tools).await, ["alpha", "beta"]);
    for function in all {
        assert_eq!(
            server.list_count(function),
            1,
            "{function} not asked again yet"
        );
    }

    // A call to a tool whose executor is missing from the listing is still invoked.
    server.set("tool-failing", Behaviour::Serve(vec!["gamma"]));
    let call = ToolCall {
        tool_use_id: "tooluse_1".into(),
        name: "gamma".into(),
        input: json!({}),
    };
    let output = tools.call(&call, &context()).await;
    assert_eq!(output.status, ToolStatus::Success, "{output:?}");
    assert_eq!(server.calls("tool-failing"), 1);

    // After the back-off, the missing executors (only they) are asked again, by one request;
    // those that answer now are served (specs come in function-name order: tool-failing,
    // tool-good, tool-hanging, ...).
    server.set("tool-hanging", Behaviour::Serve(vec!["delta"]));
    server.set("tool-malformed", Behaviour::Serve(vec!["zeta"]));
    tokio::time::sleep(BACK_OFF + Duration::from_millis(50)).await;
    let concurrent = futures::future::join_all((0..5).map(|_| names(&tools))).await;
    assert!(
        concurrent
            .iter()
            .any(|names| names == &["gamma", "alpha", "beta", "delta", "zeta"]),
        "the refreshing request serves the executors that are back: {concurrent:?}"
    );
    assert!(
        concurrent.iter().all(|names| names
            .iter()
            .filter(|name| *name == "alpha" || *name == "beta")
            .count()
            == 2),
        "{concurrent:?}"
    );
    assert_eq!(
        server.list_count("tool-good"),
        1,
        "a listed executor is kept"
    );
    for function in [
        "tool-failing",
        "tool-hanging",
        "tool-hanging-too",
        "tool-malformed",
    ] {
        assert_eq!(
            server.list_count(function),
            2,
            "{function} asked again once, not by every concurrent request"
        );
    }
    assert!(logs.lines().iter().any(|line| {
        line["fields"]["function"] == "tool-hanging"
            && line["fields"]["message"] == "executor listed its tools again"
    }));

    // The last one comes back at the next (doubled) back-off; then the listing is complete and
    // kept: nobody is asked again, however long it has been.
    server.set("tool-hanging-too", Behaviour::Serve(vec!["epsilon"]));
    tokio::time::sleep(BACK_OFF * 2 + Duration::from_millis(50)).await;
    assert_eq!(
        names(&tools).await,
        ["gamma", "alpha", "beta", "delta", "epsilon", "zeta"]
    );
    tokio::time::sleep(BACK_OFF * 4 + Duration::from_millis(50)).await;
    assert_eq!(names(&tools).await.len(), 6);
    assert_eq!(server.list_count("tool-good"), 1);
    assert_eq!(server.list_count("tool-hanging-too"), 3);
    for function in ["tool-failing", "tool-hanging", "tool-malformed"] {
        assert_eq!(server.list_count(function), 2, "{function}");
    }
}

#[tokio::test]
async fn the_back_off_doubles_up_to_its_maximum() {
    let server = InvokeServer::start(&[("tool-always-failing", Behaviour::Fail)]).await;
    let first = Duration::from_millis(100);
    let max = Duration::from_millis(300);
    let tools = server
        .tools(&[("gamma", "tool-always-failing")])
        .await
        .with_list_timeout(TIMEOUT)
        .with_list_retry(first, max);
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert!(names(&tools).await.is_empty(), "an empty listing is served");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lists = server.lists("tool-always-failing");
    let gaps: Vec<Duration> = lists.windows(2).map(|pair| pair[1] - pair[0]).collect();
    // 0, +100, +200, +300, +300: five lists in 0.9 s, the next at 1.2 s, then 1.5 s.
    assert!(gaps.len() >= 3, "asked again after each back-off: {gaps:?}");
    let expected = [100, 200, 300, 300, 300, 300];
    for (gap, expected) in gaps.iter().zip(expected) {
        assert!(
            *gap >= Duration::from_millis(expected),
            "waited at least {expected} ms: {gaps:?}"
        );
    }
    assert!(gaps.len() <= 6, "{gaps:?}");
}

#[tokio::test]
async fn a_tool_its_executor_does_not_serve_is_left_out_and_the_others_are_served() {
    let server = InvokeServer::start(&[("tool-good", Behaviour::Serve(vec!["alpha"]))]).await;
    let tools = server
        .tools(&[("alpha", "tool-good"), ("omega", "tool-good")])
        .await
        .with_list_timeout(TIMEOUT)
        .with_list_retry(BACK_OFF, BACK_OFF);
    assert_eq!(names(&tools).await, ["alpha"]);
    // Asked again after the back-off (a deploy may be rolling out); once it serves the tool,
    // it is listed.
    server.set("tool-good", Behaviour::Serve(vec!["alpha", "omega"]));
    assert_eq!(names(&tools).await, ["alpha"], "within the back-off");
    tokio::time::sleep(BACK_OFF + Duration::from_millis(50)).await;
    assert_eq!(names(&tools).await, ["alpha", "omega"]);
    assert_eq!(server.list_count("tool-good"), 2);
}

#[tokio::test]
async fn no_executors_is_an_empty_listing_asking_nobody() {
    let server = InvokeServer::start(&[]).await;
    let tools = server.tools(&[]).await;
    assert!(names(&tools).await.is_empty());
}
