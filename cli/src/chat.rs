//! `lambda-agent chat`: each line read from stdin is a turn. The answer streams from the
//! streaming function when there is one, else it comes whole from the buffered route.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Result;
use reqwest::{header, Method, StatusCode, Url};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::api::{self, Api, ApiError};
use crate::render::{print_stream, summary, TurnPrinter};
use crate::style::{Painter, Role};
use crate::wire::{Created, TracePage, TraceStep, TurnResult, TurnTrace};

/// The server's view of a turn is read from its trace only while that is one small request:
/// for the first turns of a session (the page of traces up to this one).
const CHEAP_TRACE_TURNS: u64 = 20;
/// The longest wait for that trace; without it the summary shows the client's time alone.
const TRACE_TIMEOUT: Duration = Duration::from_secs(3);

/// What `chat` was asked for.
pub struct Chat {
    /// A session to go on with; a new one otherwise.
    pub session: Option<String>,
    /// The model role.
    pub model: Option<String>,
    /// The streaming function's base URL, when there is one.
    pub stream: Option<Url>,
}

/// Runs the chat until end of input, `/exit` or `/quit`.
pub async fn run(api: &Api, chat: Chat) -> Result<()> {
    let paint = Painter::for_stdout();
    let interactive = std::io::stdin().is_terminal();
    let mut stdout = std::io::stdout();

    let session = match chat.session {
        Some(id) => {
            // Fails now, before anything is typed, when the session is not the caller's.
            let mut url = api.url(&["sessions", &id]);
            url.query_pairs_mut().append_pair("limit", "1");
            api.get::<Value>(&url).await?;
            id
        }
        None => {
            let created: Created = api.post(&api.url(&["sessions"]), None).await?;
            writeln!(stdout, "session {}", created.session_id)?;
            created.session_id
        }
    };
    if interactive {
        let how = if chat.stream.is_some() {
            "answers stream as they come"
        } else {
            "no stream URL: answers are shown when complete"
        };
        writeln!(
            stdout,
            "{}",
            paint.paint(Role::Dim, &format!("{how}; /exit or Ctrl-D to stop"))
        )?;
    }

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        if interactive {
            write!(stdout, "> ")?;
            stdout.flush()?;
        }
        let Some(line) = lines.next_line().await? else {
            if interactive {
                writeln!(stdout)?;
            }
            break;
        };
        let message = line.trim();
        if message.is_empty() {
            continue;
        }
        if message == "/exit" || message == "/quit" {
            break;
        }

        let started = Instant::now();
        let mut printer = TurnPrinter::new(std::io::stdout(), paint);
        let body = Api::turn_body(message, chat.model.as_deref());
        let turn = match &chat.stream {
            Some(stream) => {
                streamed_turn(api, stream, &session, &body, &mut printer, started).await
            }
            None => buffered_turn(api, &session, &body, &mut printer, started).await,
        };
        let turn = match turn {
            Ok(done) => done,
            Err(error) => {
                printer.end_line()?;
                // A script's turn that failed ends the script; at a terminal the user may
                // try again, unless the session or the caller is refused outright.
                if !interactive || is_final(&error) {
                    return Err(error);
                }
                eprintln!(
                    "lambda-agent: {}",
                    api::one_line(&format!("{error:#}"), 2000)
                );
                continue;
            }
        };
        let server_ms = turn.trace.map(|t| t.duration_ms);
        writeln!(
            stdout,
            "{}",
            paint.paint(Role::Dim, &summary(&turn.result, turn.wall, server_ms))
        )?;
        stdout.flush()?;
    }
    Ok(())
}

/// A turn done: its result, its trace when it was cheap to get, and the client's wall time
/// (from sending the message to the end of the answer).
struct Turn {
    result: TurnResult,
    trace: Option<TurnTrace>,
    wall: Duration,
}

/// The turn through the streaming function: printed as it comes.
async fn streamed_turn(
    api: &Api,
    stream: &Url,
    session: &str,
    body: &Value,
    printer: &mut TurnPrinter<std::io::Stdout>,
    started: Instant,
) -> Result<Turn> {
    let url = api::join(stream, &["sessions", session, "messages"]);
    let request = api
        .request(Method::POST, &url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "text/event-stream")
        .body(body.to_string());
    let response = api.send(request, &url).await?;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let result = if is_json {
        // A stream URL that answered like the buffered route.
        let result: TurnResult = response
            .json()
            .await
            .map_err(|e| api::transport_error(e, &url))?;
        printer.answer(&result)?;
        result
    } else {
        print_stream(response.bytes_stream(), printer, |e| {
            api::transport_error(e, &url)
        })
        .await?
    };
    let wall = started.elapsed();
    let trace = server_trace(api, session, result.turn).await;
    Ok(Turn {
        result,
        trace,
        wall,
    })
}

/// The turn through the buffered route: its tool calls (from the trace, when cheap) and
/// its answer once it is complete.
async fn buffered_turn(
    api: &Api,
    session: &str,
    body: &Value,
    printer: &mut TurnPrinter<std::io::Stdout>,
    started: Instant,
) -> Result<Turn> {
    let url = api.url(&["sessions", session, "messages"]);
    let result: TurnResult = api.post(&url, Some(body)).await?;
    let wall = started.elapsed();
    let trace = server_trace(api, session, result.turn).await;
    for step in trace.iter().flat_map(|t| &t.steps) {
        if let TraceStep::Tool {
            name,
            latency_ms,
            status,
            error,
            ..
        } = step
        {
            printer.tool_end(name, status, Some(*latency_ms), error.as_deref())?;
        }
    }
    printer.answer(&result)?;
    Ok(Turn {
        result,
        trace,
        wall,
    })
}

/// The trace of `turn`, when it is cheap to get (see [`CHEAP_TRACE_TURNS`]); `None` on any
/// failure: it only adds the server's latency to the summary.
async fn server_trace(api: &Api, session: &str, turn: u64) -> Option<TurnTrace> {
    if turn == 0 || turn > CHEAP_TRACE_TURNS {
        return None;
    }
    let mut url = api.url(&["sessions", session, "trace"]);
    url.query_pairs_mut()
        .append_pair("limit", &turn.to_string());
    let page: TracePage = api.get_within(&url, TRACE_TIMEOUT).await.ok()?;
    page.turns.into_iter().find(|t| t.turn == turn)
}

/// True for errors no retry of the same request fixes: the caller or session refused, or the
/// request itself wrong.
fn is_final(error: &anyhow::Error) -> bool {
    error.downcast_ref::<ApiError>().is_some_and(|e| {
        matches!(
            e.status,
            StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
        )
    })
}
