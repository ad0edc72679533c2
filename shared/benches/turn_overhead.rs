//! Per-turn overhead of the agent loop (`cargo bench -p shared --bench turn_overhead`).
//!
//! One turn = 2 model calls + 1 tool call (the built-in calculator) on top of 40 messages of
//! history, the shape of the stand-in's `What is 12*(3+4)?` turn. Benchmarks:
//!
//! - `turn/drive_turn`: the state machine and the driver only, with an in-process model that
//!   answers at once (a tool use, then a final text). Target: median < 100 µs.
//! - `turn/agent_memory`: the same through `Agent::send_message` on `MemorySessionStore`
//!   (load the window, run the loop, append the turn).
//! - `turn/agent_memory_bedrock_standin`: the same through the real `BedrockModel` adapter over
//!   loopback HTTP to the in-process Bedrock stand-in. Written down, no target.
//! - `parts/*`: pieces of the turn (listing the built-in tools, loading the window from memory),
//!   to read the totals by.
//! - `turn_dynamodb/*`: `DynamoSessionStore` on DynamoDB Local (a table of its own, deleted at the
//!   end), with the in-process model and with the stand-in. Runs only when
//!   `AWS_ENDPOINT_URL_DYNAMODB` is set; otherwise it prints why it skipped.
//!
//! Sample counts and times are small so the whole file runs in about a minute on 2 cores.
//! These are measurements, not assertions: nothing here fails on a slow machine (a turn that
//! does not end as expected does fail, so a broken loop cannot pass for a fast one).

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bedrock_standin::{Options, Standin};
use chrono::Utc;
use criterion::{
    criterion_group, criterion_main, measurement::WallTime, BatchSize, BenchmarkGroup, Criterion,
};
use serde_json::json;
use shared::{
    adapters::{bedrock::BedrockModel, dynamodb::DynamoSessionStore, memory::MemorySessionStore},
    agent::{Agent, AgentSettings, TurnRequest, TurnResult},
    config::DEFAULT_SYSTEM_PROMPT,
    domain::{
        message::{ContentBlock, Message, Role, ToolResultContent, ToolStatus},
        model::{InferenceConfig, ModelRequest, ModelResponse, ModelStopReason, Usage},
        trace::{TraceStep, TurnTrace},
        turn::{StopReason, TurnLimits, TurnState},
    },
    driver::{drive_turn, TurnContext},
    models::{ModelChain, ModelRole, RetryPolicy},
    ports::{Model, ModelError, SessionStore, TurnCommit},
    tools::BuiltinTools,
};
use tokio::runtime::Runtime;

/// The model id the handler is deployed with (priced, so cost accounting runs too).
const MODEL_ID: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
/// Messages of history loaded for, and sent with, every turn.
const HISTORY_MESSAGES: usize = 40;
/// The question of every benchmarked turn.
const QUESTION: &str = "What is 12*(3+4)?";
/// Turns run on one session before the bench moves to a fresh one (untimed), so the store
/// does not grow without bound over many iterations.
const TURNS_PER_SESSION: u64 = 64;

/// A model that answers in no time: a calculator call for a user question, a final text once
/// the tool result is in. What it costs is part of the measured overhead, so it does little.
struct InstantModel;

#[async_trait]
impl Model for InstantModel {
    fn model_id(&self) -> &str {
        MODEL_ID
    }

    async fn converse(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let answered = request.messages.last().is_some_and(|message| {
            message
                .content
                .iter()
                .any(|block| matches!(block, ContentBlock::ToolResult { .. }))
        });
        let usage = Usage {
            input_tokens: 1200,
            output_tokens: 40,
            ..Usage::default()
        };
        Ok(if answered {
            ModelResponse {
                message: Message::assistant_text("12*(3+4) = 84."),
                stop_reason: ModelStopReason::EndTurn,
                usage,
            }
        } else {
            ModelResponse {
                message: Message {
                    role: Role::Assistant,
                    content: vec![
                        ContentBlock::Text {
                            text: "Let me calculate that.".into(),
                        },
                        ContentBlock::ToolUse {
                            tool_use_id: format!("tooluse_{:016x}", request.messages.len()),
                            name: "calculator".into(),
                            input: json!({ "expression": "12*(3+4)" }),
                        },
                    ],
                },
                stop_reason: ModelStopReason::ToolUse,
                usage,
            }
        })
    }
}

/// One past turn of the history: question, tool use, tool result, answer.
fn past_turn(turn: usize) -> Vec<Message> {
    let expression = format!("{turn}*(3+4)");
    let result = (turn * 7).to_string();
    let tool_use_id = format!("tooluse_{turn:016x}");
    vec![
        Message::user_text(format!("What is {expression}?")),
        Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Text {
                    text: "Let me calculate that.".into(),
                },
                ContentBlock::ToolUse {
                    tool_use_id: tool_use_id.clone(),
                    name: "calculator".into(),
                    input: json!({ "expression": expression }),
                },
            ],
        },
        Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id,
                status: ToolStatus::Success,
                content: vec![ToolResultContent::Json {
                    json: json!({ "expression": expression, "result": result }),
                }],
            }],
        },
        Message::assistant_text(format!("{expression} = {result}.")),
    ]
}

/// `HISTORY_MESSAGES` messages of past turns, oldest first.
fn history() -> Vec<Message> {
    (1..=HISTORY_MESSAGES / 4).flat_map(past_turn).collect()
}

/// The settings the handler runs with by default (see `shared::config`).
fn settings() -> AgentSettings {
    AgentSettings {
        system_prompt: Some(DEFAULT_SYSTEM_PROMPT.to_owned()),
        max_steps: 8,
        max_wall_time: Duration::from_secs(120),
        history_messages: HISTORY_MESSAGES,
        tool_timeout: Duration::from_secs(10),
        inference: InferenceConfig {
            max_tokens: Some(1024),
            ..InferenceConfig::default()
        },
        guardrail: None,
        ..AgentSettings::default()
    }
}

/// The tokio runtime `#[tokio::main]` gives the handler on a 2-vCPU machine.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Fails the bench when a turn did not go model -> calculator -> model -> answer.
fn check_turn(result: &TurnResult) {
    assert_eq!(result.steps, 2, "two model calls: {result:?}");
    assert_eq!(result.stop_reason, "end_turn", "{result:?}");
    assert!(
        result.answer.contains("84"),
        "the calculator's result: {result:?}"
    );
}

/// A session of a new user on `store`, holding `HISTORY_MESSAGES` messages of past turns.
async fn seeded_session(store: &dyn SessionStore) -> (String, String) {
    let user = format!("bench-user-{}", uuid::Uuid::new_v4());
    let session = uuid::Uuid::new_v4().to_string();
    store
        .create_session(&user, &session, Utc::now())
        .await
        .expect("create the session");
    let mut version = 0;
    for turn in 1..=HISTORY_MESSAGES / 4 {
        let messages = past_turn(turn);
        let next_version = version + messages.len() as u64;
        let commit = TurnCommit {
            expected_version: version,
            turn: turn as u64,
            usage: Usage::default(),
            cost_usd: 0.0,
            count_usage: false,
            trace: TurnTrace {
                turn: turn as u64,
                trace_id: format!("seed-{turn}"),
                started_at: Utc::now().to_rfc3339(),
                duration_ms: 0,
                stop_reason: StopReason::EndTurn,
                usage: Usage::default(),
                cost: None,
                groundedness: None,
                steps: Vec::new(),
                omitted_tool_steps: 0,
            },
            title: (turn == 1).then(|| "seeded".to_owned()),
            idempotency: None,
            now: Utc::now(),
            messages,
        };
        store
            .append_turn(&user, &session, &commit)
            .await
            .expect("seed the history");
        version = next_version;
    }
    (user, session)
}

/// Benchmarks whole turns as `name`: an agent on `store` with `model` and the built-in tools,
/// checked by one turn first; `cleanup` as for [`timed_turns`].
fn bench_turns(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    store: Arc<dyn SessionStore>,
    model: Arc<dyn Model>,
    cleanup: bool,
) {
    let agent = Agent::new(
        store.clone(),
        model,
        Arc::new(BuiltinTools::default()),
        settings(),
    );
    rt.block_on(sanity_turn(&agent, store.as_ref()));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| rt.block_on(timed_turns(&agent, store.as_ref(), iters, cleanup)))
    });
}

/// Times `iters` turns through `agent`, moving to a fresh seeded session every
/// `TURNS_PER_SESSION` turns (untimed). `cleanup` deletes finished sessions (memory store).
async fn timed_turns(
    agent: &Agent,
    store: &dyn SessionStore,
    iters: u64,
    cleanup: bool,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let (user, session) = seeded_session(store).await;
        let batch = TURNS_PER_SESSION.min(iters - done);
        for _ in 0..batch {
            let started = Instant::now();
            let result = agent
                .send_message(TurnRequest {
                    user_id: &user,
                    session_id: &session,
                    message: QUESTION,
                    idempotency_key: None,
                    role: ModelRole::Reasoning,
                    arrived: std::time::Instant::now(),
                    time_left: None,
                    sink: None,
                })
                .await
                .expect("the turn runs");
            total += started.elapsed();
            black_box(result);
        }
        done += batch;
        if cleanup {
            store
                .delete_session(&user, &session)
                .await
                .expect("delete the session");
        }
    }
    total
}

/// Runs one turn and checks it, so a broken setup fails before it is timed.
async fn sanity_turn(agent: &Agent, store: &dyn SessionStore) {
    let (user, session) = seeded_session(store).await;
    let result = agent
        .send_message(TurnRequest {
            user_id: &user,
            session_id: &session,
            message: QUESTION,
            idempotency_key: None,
            role: ModelRole::Reasoning,
            arrived: std::time::Instant::now(),
            time_left: None,
            sink: None,
        })
        .await
        .expect("the turn runs");
    check_turn(&result);
    let window = store
        .load_window(&user, &session, HISTORY_MESSAGES)
        .await
        .expect("load the window");
    assert_eq!(window.messages.len(), HISTORY_MESSAGES, "stored turn");
}

/// A `BedrockModel` whose client talks to `standin` (no retries, dummy credentials).
async fn standin_model(standin: &Standin) -> BedrockModel {
    use aws_sdk_bedrockruntime::config::{retry::RetryConfig, Builder, Credentials, Region};
    let sdk = shared::aws::sdk_config().await;
    let config = Builder::from(&sdk)
        .endpoint_url(standin.endpoint_url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .retry_config(RetryConfig::disabled())
        .build();
    BedrockModel::new(aws_sdk_bedrockruntime::Client::from_conf(config), MODEL_ID)
}

fn turn(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("turn");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    // (2) The state machine and the driver only.
    let model = InstantModel;
    let tools = BuiltinTools::default();
    let request = ModelRequest {
        system: Some(DEFAULT_SYSTEM_PROMPT.to_owned()),
        messages: history(),
        tools: BuiltinTools::tool_specs().to_vec(),
        inference: settings().inference,
        ..ModelRequest::default()
    };
    let limits = TurnLimits {
        max_steps: 8,
        max_wall_time: Duration::from_secs(120),
        max_turn_tokens: None,
        max_cost_usd: None,
    };
    let context = TurnContext {
        user_id: "bench-user".into(),
        session_id: "bench-session".into(),
        trace_id: "bench-trace".into(),
        tool_timeout: Duration::from_secs(10),
        started: tokio::time::Instant::now(),
        retry: RetryPolicy::default(),
        cost_model: Arc::default(),
    };
    let chain = ModelChain::single(Arc::new(model));
    let budget = AgentSettings::default().context;
    let run = |(request, context): (ModelRequest, TurnContext)| {
        rt.block_on(async {
            let mut state = TurnState::start(request, Message::user_text(QUESTION), limits, budget);
            drive_turn(&mut state, &chain, &tools, &context, None)
                .await
                .expect("the turn runs");
            state
        })
    };
    // The turn's clock starts with each iteration's set-up, as it starts with each request.
    let fresh = || {
        let context = TurnContext {
            started: tokio::time::Instant::now(),
            ..context.clone()
        };
        (request.clone(), context)
    };
    let state = run(fresh());
    assert_eq!(state.steps(), 2);
    assert_eq!(state.turn_messages().len(), 4);
    assert!(matches!(
        state.trace().get(1),
        Some(TraceStep::Tool { status, .. }) if status == "success"
    ));
    group.bench_function("drive_turn", |b| {
        b.iter_batched(fresh, &run, BatchSize::SmallInput)
    });

    // (1) Through the agent on the in-memory store.
    let store = Arc::new(MemorySessionStore::default());
    bench_turns(
        &mut group,
        &rt,
        "agent_memory",
        store.clone(),
        Arc::new(InstantModel),
        true,
    );

    // (3) Through the real Bedrock adapter, over loopback to the in-process stand-in.
    let standin = rt
        .block_on(Standin::start(Options::default()))
        .expect("the stand-in starts");
    let store = Arc::new(MemorySessionStore::default());
    bench_turns(
        &mut group,
        &rt,
        "agent_memory_bedrock_standin",
        store.clone(),
        Arc::new(rt.block_on(standin_model(&standin))),
        true,
    );
    group.finish();
    drop(standin);

    // Parts of the turn, to read the totals above by.
    let mut group = c.benchmark_group("parts");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    // Every turn lists the tools (the built-in specs are generated once per process).
    group.bench_function("tool_specs", |b| b.iter(BuiltinTools::tool_specs));
    let store = MemorySessionStore::default();
    let (user, session) = rt.block_on(seeded_session(&store));
    group.bench_function("memory_load_window", |b| {
        b.iter(|| {
            rt.block_on(store.load_window(&user, &session, HISTORY_MESSAGES))
                .expect("load the window")
        })
    });
    group.finish();
}

/// A DynamoDB client for DynamoDB Local at `endpoint`, with dummy credentials.
async fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{Builder, Credentials, Region};
    let sdk = shared::aws::sdk_config().await;
    let config = Builder::from(&sdk)
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn turn_dynamodb(c: &mut Criterion) {
    let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .ok()
        .filter(|value| !value.trim().is_empty())
    else {
        println!(
            "turn_dynamodb: skipped, AWS_ENDPOINT_URL_DYNAMODB is not set \
             (bench/run.sh starts DynamoDB Local and sets it)"
        );
        return;
    };
    let rt = runtime();
    let client = rt.block_on(dynamodb_client(&endpoint));
    let table = format!("bench-turns-{}", uuid::Uuid::new_v4().simple());
    rt.block_on(shared::store_conformance::create_table(&client, &table));
    let store = Arc::new(DynamoSessionStore::new(client.clone(), table.clone(), 1));

    let mut group = c.benchmark_group("turn_dynamodb");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));

    bench_turns(
        &mut group,
        &rt,
        "agent_dynamodb",
        store.clone(),
        Arc::new(InstantModel),
        false,
    );

    let standin = rt
        .block_on(Standin::start(Options::default()))
        .expect("the stand-in starts");
    bench_turns(
        &mut group,
        &rt,
        "agent_dynamodb_bedrock_standin",
        store.clone(),
        Arc::new(rt.block_on(standin_model(&standin))),
        false,
    );
    group.finish();

    drop(standin);
    if let Err(error) = rt.block_on(client.delete_table().table_name(&table).send()) {
        println!("turn_dynamodb: could not delete table {table}: {error}");
    }
}

criterion_group!(benches, turn, turn_dynamodb);
criterion_main!(benches);
