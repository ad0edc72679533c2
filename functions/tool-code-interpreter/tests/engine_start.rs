//! A measurement, not a check: how long a fresh engine (runtime + context) takes to start,
//! which every call pays. Run with `cargo test --release -p tool-code-interpreter --test
//! engine_start -- --nocapture` to see the figure.

use std::time::{Duration, Instant};

use tool_code_interpreter::{execute, sandbox::Engine, Limits};

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
