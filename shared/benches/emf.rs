//! What one turn's metrics cost (`cargo bench -p shared --bench emf`).
//!
//! - `emf/calculator_turn`: `TurnMetrics::from_trace` and `record_in` for the stand-in's
//!   calculator turn (two model steps, one tool call): one record.
//! - `emf/busy_turn`: the same for a turn of eight steps on two models (a fallback after a
//!   throttled attempt), fourteen calls of two tools (two failing): the turn record (with the
//!   one error kind) and a record per model and per tool (five lines).
//! - `emf/record_only/*`: `record_in` alone, `TurnMetrics` already built.
//!
//! Target (issue 10): spans + metrics + the cost ledger under 50 µs per turn; this is the
//! metrics' share. Nothing is written to stdout.

use std::{hint::black_box, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion};
use shared::{
    domain::{
        ledger::Ledger,
        model::Usage,
        trace::{FailedAttempt, TraceStep, TurnTrace},
        turn::StopReason,
    },
    telemetry::emf::{record_in, TurnMetrics},
};

const HAIKU: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";
const SONNET: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const FUNCTION: &str = "lambda-agent-SessionHandlerFunction-AbCdEf123456";

fn cost(total_usd: f64) -> Option<Ledger> {
    Some(Ledger {
        total_usd,
        ..Ledger::default()
    })
}

fn model(step: u32, model_id: &str, latency_ms: u64) -> TraceStep {
    TraceStep::Model {
        step,
        start_ms: Some(u64::from(step) * 1000),
        model_id: model_id.to_owned(),
        latency_ms,
        usage: Usage {
            input_tokens: 1200,
            output_tokens: 40,
            cache_read_tokens: 2000,
            cache_write_tokens: 300,
        },
        cost: cost(0.0021),
        stop_reason: "tool_use".to_owned(),
        failed_attempts: Vec::new(),
    }
}

fn tool(step: u32, name: &str, latency_ms: u64, ok: bool) -> TraceStep {
    TraceStep::Tool {
        step,
        start_ms: Some(u64::from(step) * 1000 + 500),
        name: name.to_owned(),
        tool_use_id: format!("tooluse_{step}_{latency_ms}"),
        latency_ms,
        status: if ok { "success" } else { "error" }.to_owned(),
        error: (!ok).then(|| "connection refused".to_owned()),
        input: None,
        result: None,
        cost: None,
    }
}

fn trace(steps: Vec<TraceStep>) -> TurnTrace {
    let models = steps
        .iter()
        .filter(|step| matches!(step, TraceStep::Model { .. }))
        .count() as u64;
    TurnTrace {
        turn: 7,
        trace_id: "1-6789abcd-0123456789abcdef01234567".to_owned(),
        started_at: "2026-12-02T10:00:00Z".to_owned(),
        duration_ms: 4321,
        stop_reason: StopReason::EndTurn,
        usage: Usage {
            input_tokens: 1200 * models,
            output_tokens: 40 * models,
            cache_read_tokens: 2000 * models,
            cache_write_tokens: 300 * models,
        },
        cost: cost(0.0021 * models as f64),
        groundedness: None,
        steps,
        omitted_tool_steps: 0,
    }
}

fn calculator_turn() -> TurnTrace {
    trace(vec![
        model(1, HAIKU, 420),
        tool(1, "calculator", 1, true),
        model(2, HAIKU, 380),
    ])
}

fn busy_turn() -> TurnTrace {
    let mut steps = Vec::new();
    for step in 1..=8 {
        let mut answered = model(step, if step % 2 == 0 { SONNET } else { HAIKU }, 900);
        if step == 1 {
            if let TraceStep::Model {
                failed_attempts, ..
            } = &mut answered
            {
                failed_attempts.push(FailedAttempt {
                    model_id: SONNET.to_owned(),
                    error: "throttled".to_owned(),
                });
            }
        }
        steps.push(answered);
        if step < 8 {
            for (i, name) in ["web_search", "http_fetch"].iter().enumerate() {
                steps.push(tool(
                    step,
                    name,
                    300 + step as u64 * 10 + i as u64,
                    step != 3,
                ));
            }
        }
    }
    trace(steps)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("emf");
    group
        .sample_size(100)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, trace) in [
        ("calculator_turn", calculator_turn()),
        ("busy_turn", busy_turn()),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let metrics = TurnMetrics::from_trace(black_box(&trace), FUNCTION, false);
                black_box(record_in("LambdaAgent", &metrics, 1_796_205_600_000))
            })
        });
        let metrics = TurnMetrics::from_trace(&trace, FUNCTION, false);
        let text = record_in("LambdaAgent", &metrics, 1_796_205_600_000);
        eprintln!(
            "emf/{name}: {} bytes in {} lines",
            text.len(),
            text.lines().count()
        );
        group.bench_function(format!("record_only/{name}"), |b| {
            b.iter(|| {
                black_box(record_in(
                    "LambdaAgent",
                    black_box(&metrics),
                    1_796_205_600_000,
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
