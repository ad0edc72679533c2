//! The turn's OpenTelemetry spans, end to end in process: the real handler (buffered and
//! streamed), the Bedrock adapter against the Converse stand-in, and a local OTLP/HTTP
//! receiver (`tests/otel/receiver.py`) that decodes each export with the official protobuf
//! definitions (PyPI `opentelemetry-proto`, installed into `.venv/` by `make test`) and writes
//! what it decoded as JSON lines.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    pin::Pin,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use bedrock_standin::{Options, Standin};
use common::{bedrock_model, settings, Api, MODEL_ID};
use http_body::Body as _;
use lambda_http::{http::Request as HttpRequest, Body, Request};
use serde_json::{json, Value};
use session_handler::{handler::App, otel::Traces};
use shared::{
    adapters::memory::MemorySessionStore,
    agent::{Agent, Models, RoleModels},
    config::AuthMode,
    domain::{message::ToolCall, message::ToolOutput, model::ToolSpec, pricing::PriceBook},
    models::{ModelChain, ModelRole},
    otel::{Exporter, OtelConfig},
    ports::{CallContext, ToolInvoker, ToolListError},
    tool_contract::ToolRequest,
    tools::BuiltinTools,
};

/// The receiver, stopped by its process id when dropped.
struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Receiver {
    /// Starts it from the venv's Python, or `None` (with a note) when there is no venv.
    fn start(name: &str) -> Option<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join(".venv/bin/python3");
        if !python.exists() {
            eprintln!(
                "SKIPPED: {} is missing; `make tools` (or `make test`) installs it with \
                 opentelemetry-proto",
                python.display()
            );
            return None;
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let out =
            std::env::temp_dir().join(format!("otel-{name}-{}-{nanos}.jsonl", std::process::id()));
        let mut child = Command::new(python)
            .arg(root.join("tests/otel/receiver.py"))
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the receiver's port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("the receiver did not start (is opentelemetry-proto installed?): {line:?}")
            });
        Some(Self { child, port, out })
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }

    /// The spans of one trace.
    fn trace(&self, trace_id: &str) -> Vec<Value> {
        self.spans()
            .into_iter()
            .filter(|span| span["trace_id"] == trace_id)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.out);
    }
}

/// The built-in tools, each call's context recorded as a tool executor receives it (the
/// contract's JSON request, read back).
#[derive(Default)]
struct RecordingTools {
    tools: BuiltinTools,
    received: Mutex<Vec<CallContext>>,
}

#[async_trait]
impl ToolInvoker for RecordingTools {
    async fn specs(&self) -> Result<Vec<ToolSpec>, ToolListError> {
        self.tools.specs().await
    }

    async fn call(&self, call: &ToolCall, context: &CallContext) -> ToolOutput {
        let wire = serde_json::to_value(ToolRequest {
            name: call.name.clone(),
            arguments: call.input.clone(),
            context: Some(context.clone()),
        })
        .unwrap();
        let request: ToolRequest = serde_json::from_value(wire).unwrap();
        self.received.lock().unwrap().push(request.context.unwrap());
        self.tools.call(call, context).await
    }
}

/// An API exporting to `endpoint`, with these extra settings, and its tools.
async fn api(endpoint: &str, extra: &[(&'static str, &str)]) -> (Api, Arc<RecordingTools>) {
    let standin = Standin::start(Options::default())
        .await
        .expect("stand-in starts");
    let sdk = shared::aws::sdk_config().await;
    let settings = settings();
    let chain = ModelChain::new(
        vec![bedrock_model(&sdk, &standin, MODEL_ID)],
        &PriceBook::default(),
    );
    let models = Models::default().with(
        ModelRole::Reasoning,
        RoleModels::new(chain, settings.context),
    );
    let tools = Arc::new(RecordingTools::default());
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-test-header=present"),
        ("OTEL_SERVICE_NAME", "otel-test"),
    ];
    vars.extend_from_slice(extra);
    let config = OtelConfig::read(|name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    })
    .expect("valid settings")
    .expect("an endpoint");
    let app = App {
        agent: Agent::with_models(
            Arc::new(MemorySessionStore::default()),
            models,
            tools.clone(),
            settings,
        ),
        auth_mode: AuthMode::InsecureLocal,
        max_message_bytes: 16 * 1024,
        deadline_margin: std::time::Duration::from_secs(2),
        jwt: None,
        console: Default::default(),
        traces: Some(Traces {
            exporter: Exporter::new(config, None).expect("an exporter"),
            agent_name: "test-agent".into(),
            provider: "aws.bedrock",
        }),
    };
    (Api { app, standin }, tools)
}

fn now_nanos() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

fn named<'a>(spans: &'a [Value], prefix: &str) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|span| span["name"].as_str().unwrap().starts_with(prefix))
        .collect()
}

const QUESTION: &str = "What is 12*(3+4)?";

#[tokio::test]
async fn a_turn_is_exported_as_genai_spans_without_content_by_default() {
    let Some(receiver) = Receiver::start("default") else {
        return;
    };
    let (api, tools) = api(&receiver.endpoint(), &[]).await;
    let session = api.create_session("alice").await;
    let before = now_nanos();
    let reply = api.send("alice", &session, QUESTION).await;
    let after = now_nanos();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let trace_id = reply.body["trace_id"].as_str().unwrap();
    // The export is awaited before the handler answers: the spans are there now.
    let spans = receiver.trace(trace_id);

    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "invoke_agent test-agent".to_owned(),
            format!("chat {MODEL_ID}"),
            "execute_tool calculator".to_owned(),
            format!("chat {MODEL_ID}"),
        ],
        "{spans:#?}"
    );
    let root = &spans[0];
    assert_eq!(root["parent_span_id"], "");
    assert_eq!(root["scope"], "lambda-agent");
    assert_eq!(root["resource"]["service.name"], "otel-test");
    assert_eq!(root["headers"]["x-test-header"], "present");
    assert_eq!(root["headers"]["content-type"], "application/x-protobuf");
    assert!(root["headers"].get("authorization").is_none(), "not signed");
    let (start, end) = (
        root["start_time_unix_nano"].as_u64().unwrap(),
        root["end_time_unix_nano"].as_u64().unwrap(),
    );
    // The turn's clock starts at the request's arrival; a millisecond of rounding either way.
    assert!(start + 1_000_000 >= before && end <= after + 1_000_000 && start < end);
    for span in &spans {
        assert_eq!(span["trace_id"], trace_id);
        assert_eq!(attr(span, "gen_ai.conversation.id"), session.as_str());
        assert_eq!(span["span_id"].as_str().unwrap().len(), 16);
        if span != root {
            assert_eq!(span["parent_span_id"], root["span_id"]);
            let (s, e) = (
                span["start_time_unix_nano"].as_u64().unwrap(),
                span["end_time_unix_nano"].as_u64().unwrap(),
            );
            assert!(start <= s && s <= e && e <= end, "{span}");
        }
    }
    let ids: std::collections::BTreeSet<_> = spans.iter().map(|s| s["span_id"].as_str()).collect();
    assert_eq!(ids.len(), spans.len(), "distinct span ids");

    assert_eq!(attr(root, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(attr(root, "gen_ai.provider.name"), "aws.bedrock");
    assert_eq!(attr(root, "gen_ai.agent.name"), "test-agent");
    assert_eq!(attr(root, "gen_ai.request.model"), MODEL_ID);
    assert_eq!(
        attr(root, "gen_ai.response.finish_reasons"),
        &json!(["end_turn"])
    );
    let usage = &reply.body["usage"];
    let all_input = usage["input_tokens"].as_u64().unwrap()
        + usage["cache_read_tokens"].as_u64().unwrap_or(0)
        + usage["cache_write_tokens"].as_u64().unwrap_or(0);
    assert_eq!(attr(root, "gen_ai.usage.input_tokens"), all_input);
    assert_eq!(
        attr(root, "gen_ai.usage.output_tokens"),
        &usage["output_tokens"]
    );

    let chats = named(&spans, "chat ");
    let mut summed = (0, 0);
    for chat in &chats {
        assert_eq!(chat["kind"], 3, "client");
        assert_eq!(attr(chat, "gen_ai.operation.name"), "chat");
        assert_eq!(attr(chat, "gen_ai.provider.name"), "aws.bedrock");
        assert_eq!(attr(chat, "gen_ai.request.model"), MODEL_ID);
        assert_eq!(attr(chat, "gen_ai.response.model"), MODEL_ID);
        assert!(attr(chat, "gen_ai.usage.cache_read.input_tokens").is_i64());
        assert!(attr(chat, "gen_ai.usage.cache_creation.input_tokens").is_i64());
        summed.0 += attr(chat, "gen_ai.usage.input_tokens").as_u64().unwrap();
        summed.1 += attr(chat, "gen_ai.usage.output_tokens").as_u64().unwrap();
        assert_eq!(chat["status"]["code"], 0, "unset");
    }
    assert_eq!(
        summed,
        (all_input, usage["output_tokens"].as_u64().unwrap())
    );
    assert_eq!(
        attr(chats[0], "gen_ai.response.finish_reasons"),
        &json!(["tool_use"])
    );
    assert_eq!(
        attr(chats[1], "gen_ai.response.finish_reasons"),
        &json!(["end_turn"])
    );

    let tool = named(&spans, "execute_tool")[0];
    assert_eq!(attr(tool, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(attr(tool, "gen_ai.tool.name"), "calculator");
    let received = tools.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(
        attr(tool, "gen_ai.tool.call.id"),
        received[0].tool_use_id.as_str()
    );
    // The executor was told the execute_tool span as its parent.
    assert_eq!(
        received[0].traceparent.as_deref(),
        Some(format!("00-{trace_id}-{}-01", tool["span_id"].as_str().unwrap()).as_str())
    );

    // No content, and never the user id.
    let text = serde_json::to_string(&spans).unwrap();
    for span in &spans {
        assert!(span["attributes"].get("gen_ai.input.messages").is_none());
        assert!(span["attributes"].get("gen_ai.output.messages").is_none());
    }
    assert!(!text.contains("12*(3+4)"), "no prompt or tool arguments");
    let answer = reply.body["answer"].as_str().unwrap();
    assert!(!text.contains(answer), "no answer");
    assert!(!text.contains("alice"), "no user id");
}

#[tokio::test]
async fn content_is_exported_when_opted_in() {
    let Some(receiver) = Receiver::start("content") else {
        return;
    };
    let (api, _) = api(
        &receiver.endpoint(),
        &[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")],
    )
    .await;
    let session = api.create_session("alice").await;
    let reply = api.send("alice", &session, QUESTION).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let spans = receiver.trace(reply.body["trace_id"].as_str().unwrap());
    let root = &spans[0];
    let input: Value =
        serde_json::from_str(attr(root, "gen_ai.input.messages").as_str().unwrap()).unwrap();
    assert_eq!(input[0]["role"], "user");
    assert_eq!(input[0]["parts"][0]["content"], QUESTION);
    let output: Value =
        serde_json::from_str(attr(root, "gen_ai.output.messages").as_str().unwrap()).unwrap();
    assert_eq!(output[0]["parts"][0]["content"], reply.body["answer"]);
    assert!(!serde_json::to_string(&spans).unwrap().contains("alice"));
}

#[tokio::test]
async fn a_streamed_turn_is_exported_before_its_stream_ends() {
    let Some(receiver) = Receiver::start("stream") else {
        return;
    };
    let (api, _) = api(&receiver.endpoint(), &[]).await;
    let session = api.create_session("alice").await;
    let app: &'static App = Box::leak(Box::new(api.app.clone()));
    let request: Request = HttpRequest::builder()
        .method("POST")
        .uri(format!("/sessions/{session}/messages"))
        .header("x-user-id", "alice")
        .body(Body::Text(json!({ "message": QUESTION }).to_string()))
        .unwrap();
    let response = session_handler::stream::handle(app, request).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut text = String::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        text.push_str(std::str::from_utf8(&frame.unwrap().into_data().unwrap()).unwrap());
    }
    let done = text
        .split_terminator("\n\n")
        .find_map(|block| block.strip_prefix("event: done\ndata: "))
        .expect("a done event");
    let done: Value = serde_json::from_str(done).unwrap();
    let spans = receiver.trace(done["trace_id"].as_str().unwrap());
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[0], "invoke_agent test-agent");
    assert_eq!(names[2], "execute_tool calculator");
}

#[tokio::test]
async fn an_export_that_fails_never_fails_the_turn() {
    // A port nothing listens on: the export fails at once, the turn is answered as usual.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (api, _) = api(&closed, &[]).await;
    let session = api.create_session("alice").await;
    let reply = api.send("alice", &session, QUESTION).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(reply.body["answer"].as_str().unwrap().contains("84"));
}
