//! A chat turn as the user sees it: the answer's text as it streams, a line when each tool
//! call starts and ends, and one summary line after the turn.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{one_line, ApiError};
use crate::format;
use crate::style::{Painter, Role};
use crate::wire::{TextDelta, ToolEnd, ToolStart, TurnResult};

/// Longest tool input shown on a tool's start line.
const MAX_INPUT_CHARS: usize = 160;

/// Writes one turn's events to `out` as they come.
pub struct TurnPrinter<W: Write> {
    out: W,
    paint: Painter,
    at_line_start: bool,
    text_seen: bool,
    tool_names: HashMap<String, String>,
}

impl<W: Write> TurnPrinter<W> {
    /// A printer of one turn.
    pub fn new(out: W, paint: Painter) -> Self {
        Self {
            out,
            paint,
            at_line_start: true,
            text_seen: false,
            tool_names: HashMap::new(),
        }
    }

    /// The writer back.
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }

    /// One server-sent event: prints what it carries; the turn's result on `done`; an
    /// `error` event is the turn's error. Unknown events are passed over.
    pub fn event(&mut self, name: &str, data: &str) -> Result<Option<TurnResult>> {
        match name {
            "text" => {
                let text: TextDelta = parse(name, data)?;
                if !text.delta.is_empty() {
                    self.text(&text.delta)?;
                }
            }
            "tool_start" => {
                let start: ToolStart = parse(name, data)?;
                self.tool_start(&start)?;
            }
            "tool_end" => {
                let end: ToolEnd = parse(name, data)?;
                let name = self
                    .tool_names
                    .get(&end.tool_use_id)
                    .cloned()
                    .unwrap_or_else(|| "tool".to_owned());
                self.tool_end(&name, &end.status, end.latency_ms, None)?;
            }
            "done" => {
                let result: TurnResult = parse(name, data)?;
                self.answer(&result)?;
                return Ok(Some(result));
            }
            "error" => {
                self.end_line()?;
                return Err(ApiError::from_event(data).into());
            }
            _ => {}
        }
        Ok(None)
    }

    /// Prints the turn's answer unless its text already streamed, and ends the line.
    pub fn answer(&mut self, result: &TurnResult) -> Result<()> {
        if !self.text_seen && !result.answer.is_empty() {
            self.text(&result.answer)?;
        }
        self.end_line()
    }

    /// A tool call's end: `✓ calculator 3 ms`, or `✗ http_fetch error 12 ms: why`.
    pub fn tool_end(
        &mut self,
        name: &str,
        status: &str,
        latency_ms: Option<u64>,
        error: Option<&str>,
    ) -> Result<()> {
        self.end_line()?;
        let ok = status == "success";
        let mut line = if ok {
            self.paint.paint(Role::Good, &format!("✓ {name}"))
        } else {
            let status = if status.is_empty() { "error" } else { status };
            self.paint.paint(Role::Bad, &format!("✗ {name} {status}"))
        };
        if let Some(ms) = latency_ms {
            line.push(' ');
            line.push_str(&self.paint.paint(Role::Dim, &format::millis(ms)));
        }
        if let Some(error) = error {
            line.push_str(&format!(": {}", one_line(error, MAX_INPUT_CHARS)));
        }
        writeln!(self.out, "{line}")?;
        self.out.flush()?;
        Ok(())
    }

    /// Ends the current line if text was left on it.
    pub fn end_line(&mut self) -> Result<()> {
        if !self.at_line_start {
            writeln!(self.out)?;
            self.at_line_start = true;
        }
        self.out.flush()?;
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<()> {
        write!(self.out, "{text}")?;
        self.out.flush()?;
        self.text_seen = true;
        self.at_line_start = text.ends_with('\n');
        Ok(())
    }

    fn tool_start(&mut self, start: &ToolStart) -> Result<()> {
        self.end_line()?;
        self.tool_names
            .insert(start.tool_use_id.clone(), start.name.clone());
        let mut line = self.paint.paint(Role::Tool, &format!("⚙ {}", start.name));
        let input = match &start.input {
            Value::Null => String::new(),
            Value::Object(map) if map.is_empty() => String::new(),
            input => one_line(&input.to_string(), MAX_INPUT_CHARS),
        };
        if !input.is_empty() {
            line.push(' ');
            line.push_str(&self.paint.paint(Role::Dim, &input));
        }
        writeln!(self.out, "{line}")?;
        self.out.flush()?;
        Ok(())
    }
}

fn parse<T: DeserializeOwned>(event: &str, data: &str) -> Result<T> {
    serde_json::from_str(data)
        .with_context(|| format!("the stream's `{event}` event is not the API's JSON"))
}

/// Reads a server-sent event stream of byte chunks (cut anywhere) to its `done` event,
/// printing as it goes. `transport` names a failure of the underlying stream.
pub async fn print_stream<S, B, E, W>(
    bytes: S,
    printer: &mut TurnPrinter<W>,
    transport: impl Fn(E) -> anyhow::Error,
) -> Result<TurnResult>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Display,
    W: Write,
{
    let mut events = bytes.eventsource();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(EventStreamError::Transport(e)) => return Err(transport(e)),
            Err(e) => anyhow::bail!("the answer's event stream is malformed ({e})"),
        };
        if let Some(result) = printer.event(&event.event, &event.data)? {
            return Ok(result);
        }
    }
    anyhow::bail!("the answer's stream ended before the turn did (no `done` event)")
}

/// The line after a turn: steps, tokens, cost and latency (the client's wall time, and the
/// server's from the trace when known).
pub fn summary(result: &TurnResult, wall: Duration, server_ms: Option<u64>) -> String {
    let mut parts = vec![
        format::count(u64::from(result.steps), "step", "steps"),
        format!(
            "{} tokens {}",
            format::tokens(result.usage),
            format::cache(result.usage)
        ),
        format::cost(result.cost),
    ];
    let wall_ms = u64::try_from(wall.as_millis()).unwrap_or(u64::MAX);
    parts.push(match server_ms {
        Some(server) => format!(
            "{} (server {})",
            format::millis(wall_ms),
            format::millis(server)
        ),
        None => format::millis(wall_ms),
    });
    if !result.stop_reason.is_empty() && result.stop_reason != "end_turn" {
        let mut stopped = format!("stopped: {}", result.stop_reason);
        if let Some(error) = &result.error {
            stopped.push_str(&format!(
                " ({}: {})",
                error.kind,
                one_line(&error.detail, 200)
            ));
        }
        parts.push(stopped);
    }
    format!("── {}", parts.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Usage;
    use serde_json::json;

    fn done_json() -> String {
        json!({
            "session_id": "s", "turn": 1, "answer": "12*7 is 84.", "stop_reason": "end_turn",
            "steps": 2,
            "usage": {"input_tokens": 1200, "output_tokens": 40, "cache_read_tokens": 0, "cache_write_tokens": 0},
            "cost": {"input_usd": 0.0012, "output_usd": 0.0002, "total_usd": 0.0014},
            "models": ["m", "m"], "trace_id": "t"
        })
        .to_string()
    }

    fn printed(events: &[(&str, &str)]) -> (String, Result<Option<TurnResult>>) {
        let mut printer = TurnPrinter::new(Vec::new(), Painter::plain());
        let mut last = Ok(None);
        for (name, data) in events {
            last = printer.event(name, data);
            if !matches!(last, Ok(None)) {
                break;
            }
        }
        (String::from_utf8(printer.into_inner()).unwrap(), last)
    }

    #[test]
    fn text_and_tool_events_print_as_they_come() {
        let done = done_json();
        let (out, result) = printed(&[
            ("text", r#"{"delta":"Let me "}"#),
            ("text", r#"{"delta":"compute."}"#),
            (
                "tool_start",
                r#"{"tool_use_id":"u1","name":"calculator","input":{"expression":"12*7"}}"#,
            ),
            (
                "tool_end",
                r#"{"tool_use_id":"u1","status":"success","latency_ms":3}"#,
            ),
            ("text", r#"{"delta":"12*7 is 84."}"#),
            ("done", &done),
        ]);
        assert_eq!(
            out,
            "Let me compute.\n⚙ calculator {\"expression\":\"12*7\"}\n✓ calculator 3 ms\n12*7 is 84.\n"
        );
        let result = result.unwrap().unwrap();
        assert_eq!(result.steps, 2);
        assert_eq!(result.answer, "12*7 is 84.");
    }

    #[test]
    fn a_failed_tool_and_unknown_events() {
        let (out, result) = printed(&[
            (
                "tool_start",
                r#"{"tool_use_id":"u1","name":"http_fetch","input":{}}"#,
            ),
            ("message", r#"{"what":"ever"}"#),
            (
                "tool_end",
                r#"{"tool_use_id":"u1","status":"error","latency_ms":12}"#,
            ),
            ("tool_end", r#"{"tool_use_id":"u9","status":"error"}"#),
        ]);
        assert_eq!(
            out,
            "⚙ http_fetch\n✗ http_fetch error 12 ms\n✗ tool error\n"
        );
        assert!(matches!(result, Ok(None)));
    }

    #[test]
    fn done_without_streamed_text_prints_the_whole_answer() {
        let done = done_json();
        let (out, _) = printed(&[("done", &done)]);
        assert_eq!(out, "12*7 is 84.\n");
    }

    #[test]
    fn an_error_event_ends_the_line_and_is_the_turns_error() {
        let (out, result) = printed(&[
            ("text", r#"{"delta":"partial"}"#),
            (
                "error",
                r#"{"type":"tag:lambda-agent,2026:problem:model-throttled","title":"Model throttled","status":503,"detail":"try again in a few seconds"}"#,
            ),
        ]);
        assert_eq!(out, "partial\n");
        assert_eq!(
            result.unwrap_err().to_string(),
            "Model throttled: try again in a few seconds (HTTP 503)"
        );
    }

    #[test]
    fn a_malformed_event_says_which_event() {
        let (_, result) = printed(&[("tool_start", "not json")]);
        let error = format!("{:#}", result.unwrap_err());
        assert!(error.contains("`tool_start` event"), "{error}");
    }

    #[tokio::test]
    async fn the_byte_stream_is_parsed_wherever_its_chunks_are_cut() {
        let body = format!(
            ": keep-alive\n\nevent: text\ndata: {{\"delta\":\"Hel\"}}\n\nevent: text\r\ndata: {{\"delta\":\"lo \\u00e9\"}}\r\n\r\nevent: done\ndata: {}\n\nevent: text\ndata: {{\"delta\":\"after done\"}}\n\n",
            done_json()
        );
        let bytes = body.as_bytes();
        for cut in [1, 3, 7, 50, bytes.len()] {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                bytes.chunks(cut).map(|c| Ok(c.to_vec())).collect();
            let mut printer = TurnPrinter::new(Vec::new(), Painter::plain());
            let result = print_stream(futures::stream::iter(chunks), &mut printer, |e| {
                anyhow::anyhow!("transport: {e}")
            })
            .await
            .unwrap();
            assert_eq!(result.turn, 1);
            assert_eq!(
                String::from_utf8(printer.into_inner()).unwrap(),
                "Hello é\n",
                "chunks of {cut}"
            );
        }
    }

    #[tokio::test]
    async fn a_stream_that_stops_before_done_is_an_error() {
        let chunks: Vec<Result<&[u8], std::io::Error>> =
            vec![Ok(b"event: text\ndata: {\"delta\":\"x\"}\n\n")];
        let mut printer = TurnPrinter::new(Vec::new(), Painter::plain());
        let error = print_stream(futures::stream::iter(chunks), &mut printer, |e| {
            anyhow::anyhow!("transport: {e}")
        })
        .await
        .unwrap_err();
        assert!(error.to_string().contains("no `done` event"), "{error}");
    }

    #[test]
    fn the_summary_has_steps_tokens_cost_and_latency() {
        let mut result: TurnResult = serde_json::from_str(&done_json()).unwrap();
        assert_eq!(
            summary(&result, Duration::from_millis(1520), Some(1400)),
            "── 2 steps · 1,200 in / 40 out tokens (cache 0 read / 0 write) · $0.001400 · 1.52 s (server 1.40 s)"
        );
        result.cost = None;
        result.steps = 1;
        result.usage = Usage {
            cache_read_tokens: 900,
            ..result.usage
        };
        result.stop_reason = "model_error".into();
        result.error =
            serde_json::from_value(json!({"kind": "throttled", "detail": "Bedrock throttled"}))
                .ok();
        assert_eq!(
            summary(&result, Duration::from_millis(80), None),
            "── 1 step · 1,200 in / 40 out tokens (cache 900 read / 0 write) · cost unknown · 80 ms · stopped: model_error (throttled: Bedrock throttled)"
        );
    }
}
