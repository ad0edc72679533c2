//! A turn's trace as a timeline in the terminal: one line per model or tool step, a bar as
//! long as its latency placed where it started (`start_ms`, the offset from the turn's start;
//! a step without one is placed after the step before it), then the turn's totals.

use std::fmt::Write as _;

use crate::format;
use crate::style::{Painter, Role};
use crate::wire::{FailedAttempt, TraceStep, TurnTrace};

/// Columns of the bar.
pub const BAR_WIDTH: usize = 32;
/// Columns of a step's label (its model or tool).
const LABEL_WIDTH: usize = 30;

struct Row {
    kind: &'static str,
    step: u32,
    label: String,
    start_ms: u64,
    latency_ms: u64,
    detail: String,
    role: Role,
}

/// The timeline of one turn, ending with a newline.
pub fn render(trace: &TurnTrace, paint: Painter) -> String {
    let (rows, unknown) = rows(trace);
    let span = rows
        .iter()
        .map(|row| row.start_ms + row.latency_ms)
        .chain([trace.duration_ms, 1])
        .max()
        .unwrap_or(1);

    let mut out = String::new();
    let mut heading = vec![
        format!("turn {}", trace.turn),
        format::time(&trace.started_at),
        format::millis(trace.duration_ms),
    ];
    if !trace.stop_reason.is_empty() {
        heading.push(trace.stop_reason.clone());
    }
    if !trace.trace_id.is_empty() {
        heading.push(format!("trace {}", trace.trace_id));
    }
    let _ = writeln!(out, "{}", paint.paint(Role::Strong, &heading.join(" · ")));

    for row in &rows {
        let (offset, length) = placement(row.start_ms, row.latency_ms, span, BAR_WIDTH);
        let bar = format!(
            "{}{}{}",
            paint.paint(Role::Dim, &"·".repeat(offset)),
            paint.paint(row.role, &"█".repeat(length)),
            paint.paint(Role::Dim, &"·".repeat(BAR_WIDTH - offset - length)),
        );
        let step = format!("#{}", row.step);
        let _ = writeln!(
            out,
            "  {:<6} {:<4} {:<label$} {bar} {:>9}  {}",
            row.kind,
            step,
            format::cut(&row.label, LABEL_WIDTH),
            format::millis(row.latency_ms),
            row.detail,
            label = LABEL_WIDTH,
        );
    }
    let mut notes = Vec::new();
    if trace.omitted_tool_steps > 0 {
        let steps = format::count(trace.omitted_tool_steps.into(), "tool step", "tool steps");
        notes.push(format!("({steps} left out of the stored trace)"));
    }
    if unknown > 0 {
        let steps = format::count(unknown, "step", "steps");
        notes.push(format!("({steps} of a kind this CLI does not know)"));
    }
    for note in notes {
        let _ = writeln!(out, "  {}", paint.paint(Role::Dim, &note));
    }

    let models = rows.iter().filter(|r| r.kind == "model").count() as u64;
    let tools = rows.iter().filter(|r| r.kind == "tool").count() as u64;
    let totals = format!(
        "{}, {}",
        format::count(models, "model call", "model calls"),
        format::count(tools, "tool call", "tool calls")
    );
    let _ = writeln!(
        out,
        "  {:<6} {:<4} {:<label$} {:bar$} {:>9}  {} {} · {}",
        "total",
        "",
        totals,
        "",
        format::millis(trace.duration_ms),
        format::tokens(trace.usage),
        format::cache(trace.usage),
        format::cost(trace.cost),
        label = LABEL_WIDTH,
        bar = BAR_WIDTH,
    );
    out
}

/// The rows of the steps, each placed: at its `start_ms`, else where the step before it
/// ended. Also how many steps were of an unknown kind.
fn rows(trace: &TurnTrace) -> (Vec<Row>, u64) {
    let mut rows = Vec::with_capacity(trace.steps.len());
    let mut unknown = 0;
    let mut cursor = 0;
    for step in &trace.steps {
        let (row, start) = match step {
            TraceStep::Model {
                step,
                model_id,
                latency_ms,
                usage,
                cost,
                stop_reason,
                failed_attempts,
                start_ms,
            } => {
                let mut tokens = format::tokens(*usage);
                if usage.cache_read_tokens + usage.cache_write_tokens > 0 {
                    tokens = format!("{tokens} {}", format::cache(*usage));
                }
                let mut detail = format!("{tokens} · {} · {stop_reason}", format::cost(*cost));
                if !failed_attempts.is_empty() {
                    detail.push_str(&format!(" · after {}", attempts(failed_attempts)));
                }
                let row = Row {
                    kind: "model",
                    step: *step,
                    label: model_id.clone(),
                    start_ms: 0,
                    latency_ms: *latency_ms,
                    detail,
                    role: Role::Model,
                };
                (row, *start_ms)
            }
            TraceStep::ModelFailed {
                step,
                latency_ms,
                failed_attempts,
                start_ms,
            } => {
                let row = Row {
                    kind: "failed",
                    step: *step,
                    label: "model call failed".to_owned(),
                    start_ms: 0,
                    latency_ms: *latency_ms,
                    detail: attempts(failed_attempts),
                    role: Role::Bad,
                };
                (row, *start_ms)
            }
            TraceStep::Tool {
                step,
                name,
                latency_ms,
                status,
                error,
                start_ms,
                ..
            } => {
                let ok = status == "success";
                let mut detail = status.clone();
                if let Some(error) = error {
                    detail.push_str(&format!(": {}", crate::api::one_line(error, 80)));
                }
                let row = Row {
                    kind: "tool",
                    step: *step,
                    label: name.clone(),
                    start_ms: 0,
                    latency_ms: *latency_ms,
                    detail,
                    role: if ok { Role::Good } else { Role::Bad },
                };
                (row, *start_ms)
            }
            TraceStep::Other => {
                unknown += 1;
                continue;
            }
        };
        let start_ms = start.unwrap_or(cursor);
        cursor = start_ms + row.latency_ms;
        rows.push(Row { start_ms, ..row });
    }
    (rows, unknown)
}

/// `throttled ×2 (m1), unavailable (m2)`: the failed attempts, repeats folded.
fn attempts(failed: &[FailedAttempt]) -> String {
    let mut groups: Vec<(&FailedAttempt, usize)> = Vec::new();
    for attempt in failed {
        match groups.last_mut() {
            Some((last, n)) if *last == attempt => *n += 1,
            _ => groups.push((attempt, 1)),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(attempt, n)| {
            let times = if *n > 1 {
                format!(" ×{n}")
            } else {
                String::new()
            };
            format!("{}{times} ({})", attempt.error, attempt.model_id)
        })
        .collect();
    if parts.is_empty() {
        "no attempt recorded".to_owned()
    } else {
        format!("failed: {}", parts.join(", "))
    }
}

/// Where a step's bar stands in `width` columns when the turn spans `span_ms`: its first
/// column and its length (at least one column, never past the end).
pub fn placement(start_ms: u64, latency_ms: u64, span_ms: u64, width: usize) -> (usize, usize) {
    let span = span_ms.max(1) as f64;
    let columns = width as f64;
    let offset = ((start_ms as f64 / span) * columns).floor() as usize;
    let offset = offset.min(width.saturating_sub(1));
    let length = ((latency_ms as f64 / span) * columns).round().max(1.0) as usize;
    (offset, length.min(width - offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trace(start_ms: bool) -> TurnTrace {
        let at = |ms: u64| if start_ms { json!(ms) } else { json!(null) };
        serde_json::from_value(json!({
            "turn": 1, "trace_id": "1-abc", "started_at": "2026-03-01T10:00:00Z",
            "duration_ms": 1600, "stop_reason": "end_turn",
            "usage": {"input_tokens": 2500, "output_tokens": 84},
            "cost": {"input_usd": 0.0025, "output_usd": 0.0004, "total_usd": 0.0029},
            "steps": [
                {"kind": "model", "step": 1, "model_id": "us.anthropic.claude-haiku-4-5", "latency_ms": 400,
                 "usage": {"input_tokens": 1200, "output_tokens": 40},
                 "cost": {"input_usd": 0.0012, "output_usd": 0.0002, "total_usd": 0.0014},
                 "stop_reason": "tool_use", "start_ms": at(0)},
                {"kind": "tool", "step": 1, "name": "calculator", "tool_use_id": "u1",
                 "latency_ms": 400, "status": "success", "start_ms": at(600)},
                {"kind": "model", "step": 2, "model_id": "us.anthropic.claude-haiku-4-5", "latency_ms": 600,
                 "usage": {"input_tokens": 1300, "output_tokens": 44}, "cost": null,
                 "stop_reason": "end_turn", "start_ms": at(1000)}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn steps_are_placed_by_start_ms_with_bars_as_long_as_their_latency() {
        let out = render(&trace(true), Painter::plain());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "turn 1 · 2026-03-01 10:00 UTC · 1.60 s · end_turn · trace 1-abc"
        );
        // 1600 ms over 32 columns: 50 ms a column.
        assert_eq!(
            lines[1],
            format!(
                "  model  #1   us.anthropic.claude-haiku-4-5  {}{}    400 ms  1,200 in / 40 out · $0.001400 · tool_use",
                "█".repeat(8),
                "·".repeat(24)
            )
        );
        assert_eq!(
            lines[2],
            format!(
                "  tool   #1   calculator                     {}{}{}    400 ms  success",
                "·".repeat(12),
                "█".repeat(8),
                "·".repeat(12)
            )
        );
        assert_eq!(
            lines[3],
            format!(
                "  model  #2   us.anthropic.claude-haiku-4-5  {}{}    600 ms  1,300 in / 44 out · cost unknown · end_turn",
                "·".repeat(20),
                "█".repeat(12)
            )
        );
        assert_eq!(
            lines[4],
            format!(
                "  total       2 model calls, 1 tool call     {}    1.60 s  2,500 in / 84 out (cache 0 read / 0 write) · $0.002900",
                " ".repeat(BAR_WIDTH)
            )
        );
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn without_start_ms_steps_follow_each_other() {
        let out = render(&trace(false), Painter::plain());
        let bars: Vec<&str> = out
            .lines()
            .skip(1)
            .take(3)
            .map(|line| line.split_whitespace().nth(3).unwrap())
            .collect();
        // 0-400, 400-800, 800-1400 of 1600 ms.
        assert_eq!(bars[0], format!("{}{}", "█".repeat(8), "·".repeat(24)));
        assert_eq!(
            bars[1],
            format!("{}{}{}", "·".repeat(8), "█".repeat(8), "·".repeat(16))
        );
        assert_eq!(
            bars[2],
            format!("{}{}{}", "·".repeat(16), "█".repeat(12), "·".repeat(4))
        );
    }

    #[test]
    fn failed_calls_tool_errors_and_unknown_steps_are_shown() {
        let trace: TurnTrace = serde_json::from_value(json!({
            "turn": 3, "duration_ms": 0, "stop_reason": "model_error",
            "steps": [
                {"kind": "tool", "step": 1, "name": "http_fetch", "latency_ms": 0, "status": "error",
                 "error": "refused: loopback\naddress"},
                {"kind": "model_failed", "step": 2, "latency_ms": 0, "failed_attempts": [
                    {"model_id": "m1", "error": "throttled"}, {"model_id": "m1", "error": "throttled"},
                    {"model_id": "m2", "error": "unavailable"}]},
                {"kind": "planning", "step": 2}
            ],
            "omitted_tool_steps": 2
        }))
        .unwrap();
        let out = render(&trace, Painter::plain());
        assert!(
            out.contains("http_fetch") && out.contains("error: refused: loopback address"),
            "{out}"
        );
        assert!(
            out.contains("failed: throttled ×2 (m1), unavailable (m2)"),
            "{out}"
        );
        assert!(
            out.contains("(2 tool steps left out of the stored trace)"),
            "{out}"
        );
        assert!(
            out.contains("(1 step of a kind this CLI does not know)"),
            "{out}"
        );
        assert!(out.contains("0 model calls, 1 tool call"), "{out}");
        assert!(out.contains("cost unknown"), "{out}");
        // Zero-length steps of a zero-length turn still get one column.
        assert!(
            out.contains(&format!("█{}", "·".repeat(BAR_WIDTH - 1))),
            "{out}"
        );
    }

    #[test]
    fn placement_keeps_every_bar_visible_and_inside() {
        assert_eq!(placement(0, 0, 1000, 10), (0, 1));
        assert_eq!(placement(1000, 0, 1000, 10), (9, 1));
        assert_eq!(placement(500, 5000, 1000, 10), (5, 5));
        assert_eq!(placement(0, 1000, 0, 10), (0, 10));
    }
}
