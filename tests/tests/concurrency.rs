//! The local stack serves a function's requests concurrently, as Lambda does: `cargo lambda
//! watch` runs several instances of each function (`DEV_CONCURRENCY`, at least 4), so two
//! requests in flight at once are served at once (with `--concurrency 1` the second waits for
//! the first, and this test fails).
//!
//! Shown without a timed assertion: two turns on two sessions, each held up 1.5 s in the
//! Bedrock stand-in (`[[standin:sleep-ms=1500]]`), sent together; the stored traces' intervals
//! (`started_at` .. `started_at + duration_ms`) overlap, i.e. the second began before the
//! first ended.
//!
//! Needs `E2E_API_URL` (set by `make test`); without it the test fails and says so.

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::api::{call, new_session, send_message};

/// One slow turn on `session`; the interval its stored trace covers.
async fn slow_turn(user: &str, session: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    let (status, turn) = send_message(user, session, "[[standin:sleep-ms=1500]] Say hello.").await;
    assert_eq!(status, 200, "{turn}");
    let trace_id = turn["trace_id"].as_str().expect("a trace id").to_owned();
    let (status, traces) = call(
        reqwest::Method::GET,
        &format!("/sessions/{session}/trace"),
        user,
        None,
    )
    .await;
    assert_eq!(status, 200, "{traces}");
    let trace = traces["turns"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|trace| trace["trace_id"] == trace_id.as_str())
        .unwrap_or_else(|| panic!("the turn's trace is stored: {traces}"));
    let started: DateTime<Utc> = trace["started_at"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .unwrap_or_else(|| panic!("an RFC 3339 start: {trace}"))
        .with_timezone(&Utc);
    let duration = trace["duration_ms"]
        .as_i64()
        .unwrap_or_else(|| panic!("a duration: {trace}"));
    assert!(duration >= 1500, "the stand-in held the turn up: {trace}");
    (started, started + TimeDelta::milliseconds(duration))
}

#[tokio::test]
async fn two_requests_in_flight_at_once_are_served_at_once() {
    let user = format!("concurrency-{}", uuid::Uuid::new_v4().simple());
    let first_session = new_session(&user).await;
    let second_session = new_session(&user).await;
    let (first, second) = tokio::join!(
        slow_turn(&user, &first_session),
        slow_turn(&user, &second_session)
    );
    // Whichever began first, the other began before it ended.
    let overlap = first.0 < second.1 && second.0 < first.1;
    assert!(
        overlap,
        "the two turns were served one after the other, not at once: {first:?} and {second:?} \
         (is cargo lambda watch running with --concurrency 1? see DEV_CONCURRENCY)"
    );
}
