//! Measurements, not checks: what every call pays before its script runs. A fresh engine
//! (runtime + context) in-process, and a whole call through its sandbox process (spawn, request,
//! engine, answer, reap). Run with `cargo test --release -p tool-code-interpreter --test
//! engine_start -- --nocapture --test-threads 1` to see the figures.

use std::time::{Duration, Instant};

use tool_code_interpreter::{execute, sandbox::Engine, supervisor, Limits};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
fn engine_start_and_a_trivial_run_are_measured() {
    let limits = Limits::default();
    let runs = 200;
    let start = median(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                let engine = Engine::start(&limits);
                let elapsed = started.elapsed();
                assert!(engine.is_ok());
                drop(engine);
                elapsed
            })
            .collect(),
    );
    let trivial = median(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                let execution = execute("1+1", &limits);
                let elapsed = started.elapsed();
                assert_eq!(execution.outcome, Ok(Some("2".into())));
                elapsed
            })
            .collect(),
    );
    println!("engine start (runtime + context), median of {runs}: {start:?}");
    println!("whole run of `1+1` (start, console, eval, teardown), median of {runs}: {trivial:?}");
    assert!(start < Duration::from_secs(1), "sanity only");
}

#[tokio::test]
async fn a_trivial_call_through_its_sandbox_process_is_measured() {
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_tool-code-interpreter"));
    let limits = Limits::default();
    let runs = 100;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let execution = supervisor::run(program, "1+1", &limits).await;
        samples.push(started.elapsed());
        assert_eq!(execution.outcome, Ok(Some("2".into())));
    }
    let fastest = samples.iter().min().copied().unwrap_or_default();
    let call = median(samples);
    println!("call of `1+1` in a sandbox process (spawn to reaped), median of {runs}: {call:?}, fastest {fastest:?}");
    assert!(call < Duration::from_secs(5), "sanity only");
}
