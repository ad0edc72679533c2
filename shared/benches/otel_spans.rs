//! What a turn's OpenTelemetry spans cost to build once it has ended
//! (`cargo bench -p shared --features otel --bench otel_spans`): no network, only our work.
//!
//! - `otel_spans/build`: `turn_spans` of a tool-using turn's trace (4 model calls, 6 tool
//!   calls, a retried call): 11 spans with their GenAI attributes.
//! - `otel_spans/build_and_encode`: the same, wrapped in the OTLP request and
//!   protobuf-encoded: the body the exporter POSTs.
//!
//! Target (issue 10): spans, metrics and the usage ledger together under 50 µs per turn.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use prost::Message as _;
use shared::{
    domain::{
        model::Usage,
        trace::{FailedAttempt, TraceStep, TurnTrace},
        turn::StopReason,
    },
    otel::{spans, turn_spans, TurnSpanContext},
};

fn trace() -> TurnTrace {
    let usage = Usage {
        input_tokens: 1200,
        output_tokens: 180,
        cache_read_tokens: 4096,
        cache_write_tokens: 512,
    };
    let mut steps = Vec::new();
    let mut at = 12;
    for step in 1..=4u32 {
        steps.push(TraceStep::Model {
            step,
            start_ms: Some(at),
            model_id: "us.anthropic.claude-haiku-4-5-20251001-v1:0".into(),
            latency_ms: 800,
            usage,
            cost: None,
            stop_reason: if step == 4 { "end_turn" } else { "tool_use" }.into(),
            failed_attempts: if step == 2 {
                vec![FailedAttempt {
                    model_id: "us.anthropic.claude-sonnet-4-5-20250929-v1:0".into(),
                    error: "throttled".into(),
                }]
            } else {
                Vec::new()
            },
        });
        at += 800;
        if step < 4 {
            for call in 0..2 {
                steps.push(TraceStep::Tool {
                    step,
                    start_ms: Some(at),
                    name: "web_search".into(),
                    tool_use_id: format!("tooluse_{step}_{call}_0123456789abcdef"),
                    latency_ms: 250,
                    status: "success".into(),
                    error: None,
                    input: Some(serde_json::json!({"query": "rust lambda cold start"})),
                    result: Some("[{\"title\": \"...\", \"url\": \"https://example.com\"}]".into()),
                    cost: None,
                });
            }
            at += 250;
        }
    }
    TurnTrace {
        turn: 7,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        started_at: "2026-12-02T10:00:00.123+00:00".into(),
        duration_ms: at + 20,
        stop_reason: StopReason::EndTurn,
        usage,
        cost: None,
        groundedness: Some(1.0),
        steps,
        omitted_tool_steps: 0,
    }
}

fn bench(c: &mut Criterion) {
    let trace = trace();
    let context = TurnSpanContext {
        session_id: "0b9e6a4e-6a57-4c64-9f3b-2f1f0b3c2a10",
        agent_name: "lambda-agent",
        provider: "aws.bedrock",
        content: None,
    };
    let resource = [
        spans::string("service.name", "session-handler"),
        spans::string("cloud.provider", "aws"),
    ];
    let mut group = c.benchmark_group("otel_spans");
    group.bench_function("build", |b| {
        b.iter(|| black_box(turn_spans(black_box(&trace), &context)))
    });
    group.bench_function("build_and_encode", |b| {
        b.iter(|| {
            let spans = turn_spans(black_box(&trace), &context);
            black_box(spans::export_request(spans, &resource).encode_to_vec())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
