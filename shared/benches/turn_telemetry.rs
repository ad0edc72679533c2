//! What a turn's cost ledger, metrics and spans add to it, together
//! (`cargo bench -p shared --features otel --bench turn_telemetry`).
//!
//! A tool-using turn is driven through the real state machine: 4 model calls (3 asking for
//! two `web_search` calls each, a 1 KB JSON result apiece), then the final answer. Measured:
//!
//! - `turn_telemetry/record_steps`: the whole state machine run, with the per-step ledger
//!   lines and the masking of each tool call's arguments and result (what the ledger adds
//!   inside the loop is the difference with `record_steps_bare`, the same run with empty tool
//!   results and inputs, so nothing to mask).
//! - `turn_telemetry/end_of_turn`: what runs once the turn is done: the whole ledger
//!   (`TurnState::whole_cost`: the handler's compute, the commit's write units from the
//!   items' sizes), the groundedness score, the EMF record and the OTLP body of its spans.
//!
//! Target (issue 10): spans, metrics and the ledger together under 50 µs per turn.

use std::{hint::black_box, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion};
use prost::Message as _;
use serde_json::json;
use shared::{
    domain::{
        context::ContextBudget,
        ledger::{CostModel, Ledger, ToolUsage},
        message::{ContentBlock, Message, Role, ToolOutput},
        model::{ModelRequest, ModelResponse, ModelStopReason, Usage},
        pricing::Pricing,
        redact,
        trace::TurnTrace,
        turn::{Action, AnsweredBy, StopReason, ToolRun, TurnCosts, TurnLimits, TurnState},
    },
    otel::{spans, turn_spans, TurnSpanContext},
    telemetry::emf,
};

const HAIKU: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

fn answered_by() -> AnsweredBy {
    AnsweredBy {
        model_id: HAIKU.into(),
        pricing: Pricing::for_model(HAIKU),
        failed: Vec::new(),
    }
}

fn usage() -> Usage {
    Usage {
        input_tokens: 400,
        output_tokens: 120,
        cache_read_tokens: 1500,
        cache_write_tokens: 0,
    }
}

fn search_result(step: usize, call: usize, with_content: bool) -> String {
    if !with_content {
        return String::new();
    }
    let results: Vec<_> = (0..5)
        .map(|i| {
            json!({
                "title": format!("Result {i} of step {step} call {call}"),
                "url": format!("https://example.com/{step}/{call}/{i}"),
                "snippet": "Rust on AWS Lambda starts in about 20 ms; the handler is 9 MB zipped.",
            })
        })
        .collect();
    json!({"query": "rust lambda", "provider": "tavily", "results": results}).to_string()
}

/// Runs the turn through the state machine.
fn run(with_content: bool, model: &CostModel) -> TurnState {
    let request = ModelRequest {
        system: Some("You are a test agent.".into()),
        ..ModelRequest::default()
    };
    let limits = TurnLimits {
        max_steps: 8,
        max_wall_time: Duration::from_secs(120),
        max_turn_tokens: None,
        max_cost_usd: Some(1.0),
    };
    let budget = ContextBudget {
        context_tokens: 200_000,
        output_tokens: 1024,
        tool_result_tokens: 8_000,
        step_tool_result_tokens: 24_000,
    };
    let mut state = TurnState::start(
        request,
        Message::user_text("What changed in Rust on Lambda this year?"),
        limits,
        budget,
    );
    for step in 0..4 {
        let _ = state.next_action(Duration::from_millis(step as u64 * 900));
        let response = if step < 3 {
            let mut content = vec![ContentBlock::Text {
                text: "Let me search.".into(),
            }];
            for call in 0..2 {
                content.push(ContentBlock::ToolUse {
                    tool_use_id: format!("tooluse_{step}_{call}_0123456789abcdef"),
                    name: "web_search".into(),
                    input: if with_content {
                        json!({"query": "rust lambda cold start 2026", "max_results": 5})
                    } else {
                        json!({})
                    },
                });
            }
            ModelResponse {
                message: Message {
                    role: Role::Assistant,
                    content,
                },
                stop_reason: ModelStopReason::ToolUse,
                usage: usage(),
            }
        } else {
            ModelResponse {
                message: Message::assistant_text(
                    "Rust on AWS Lambda starts in about 20 ms, and the handler is 9 MB zipped.",
                ),
                stop_reason: ModelStopReason::EndTurn,
                usage: usage(),
            }
        };
        state.record_model_response(response, Duration::from_millis(800), answered_by());
        if step < 3 {
            let calls = match state.next_action(Duration::from_millis(step as u64 * 900 + 800)) {
                Action::CallTools { calls, .. } => calls.to_vec(),
                other => panic!("expected tools, got {other:?}"),
            };
            let runs = calls
                .into_iter()
                .enumerate()
                .map(|(i, call)| {
                    let mut output = ToolOutput::text(search_result(step, i, with_content));
                    output.usage = ToolUsage {
                        search_queries: 1,
                        search_provider: Some("tavily".into()),
                        ..ToolUsage::default()
                    };
                    let mut cost = Ledger::default();
                    cost.add_lambda("tool-web-search", 128, 250, &model.prices);
                    cost.add_tool_usage(&output.usage, &model.prices);
                    ToolRun {
                        call,
                        output,
                        latency: Duration::from_millis(250),
                        cost,
                    }
                })
                .collect();
            state.record_tool_results(runs);
        }
    }
    let _ = state.next_action(Duration::from_millis(3_700));
    assert_eq!(state.stop_reason(), Some(StopReason::EndTurn));
    state
}

fn trace_of(state: &TurnState, cost: Ledger, groundedness: Option<f64>) -> TurnTrace {
    TurnTrace {
        turn: 3,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        started_at: "2026-12-02T10:00:00.123+00:00".into(),
        duration_ms: 3_750,
        stop_reason: StopReason::EndTurn,
        usage: state.usage(),
        cost: Some(cost),
        groundedness,
        steps: state.trace().to_vec(),
        omitted_tool_steps: 0,
    }
}

fn bench(c: &mut Criterion) {
    let model = CostModel::default();
    let state = run(true, &model);
    let context = TurnSpanContext {
        session_id: "0b9e6a4e-6a57-4c64-9f3b-2f1f0b3c2a10",
        agent_name: "lambda-agent",
        provider: "aws.bedrock",
        content: None,
    };
    let resource = [spans::string("service.name", "session-handler")];
    let end = TurnCosts {
        duration_ms: 3_750,
        read_units: 2.5,
        counters: true,
        replay_bytes: None,
    };
    let mut group = c.benchmark_group("turn_telemetry");
    group.bench_function("record_steps", |b| b.iter(|| black_box(run(true, &model))));
    group.bench_function("record_steps_bare", |b| {
        b.iter(|| black_box(run(false, &model)))
    });
    let cost = state.whole_cost(&model, &end);
    let trace = trace_of(&state, cost.clone(), None);
    let texts: Vec<String> = (0..6).map(|i| search_result(i / 2, i % 2, true)).collect();
    let input = json!({"query": "rust lambda cold start 2026", "max_results": 5});
    group.bench_function("part/masking", |b| {
        b.iter(|| {
            for text in &texts {
                black_box(redact::text(
                    black_box(text),
                    redact::MAX_TRACE_RESULT_BYTES,
                ));
                black_box(redact::json(black_box(&input)));
            }
        })
    });
    group.bench_function("part/whole_cost", |b| {
        b.iter(|| black_box(black_box(&state).whole_cost(&model, &end)))
    });
    group.bench_function("part/groundedness", |b| {
        b.iter(|| black_box(black_box(&state).groundedness()))
    });
    group.bench_function("part/emf", |b| {
        b.iter(|| {
            let metrics = emf::TurnMetrics::from_trace(black_box(&trace), "session-handler", false);
            black_box(emf::record_in("LambdaAgent", &metrics, 1_796_205_600_000))
        })
    });
    group.bench_function("part/spans", |b| {
        b.iter(|| {
            black_box(
                spans::export_request(turn_spans(black_box(&trace), &context), &resource)
                    .encode_to_vec(),
            )
        })
    });
    group.bench_function("end_of_turn", |b| {
        b.iter(|| {
            let cost = black_box(&state).whole_cost(&model, &end);
            let grounded = state.groundedness();
            let trace = trace_of(&state, cost, grounded);
            let metrics = emf::TurnMetrics::from_trace(&trace, "session-handler", false);
            let record = emf::record_in("LambdaAgent", &metrics, 1_796_205_600_000);
            let body =
                spans::export_request(turn_spans(&trace, &context), &resource).encode_to_vec();
            black_box((record, body))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
