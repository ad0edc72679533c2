//! `lambda-agent`: the agent's command line. Chat with streamed answers, list your sessions,
//! see each turn's model and tool calls on a timeline, list the tools.
//!
//! Errors are one line on stderr and a non-zero exit; a token is never printed.

mod api;
mod args;
mod chat;
mod endpoints;
mod format;
mod listing;
mod render;
mod style;
mod timeline;
mod wire;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use api::{Api, Identity};
use args::{Args, Command};
use style::Painter;
use wire::{SessionList, ToolList, TracePage, TurnTrace};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => return usage_error(&error),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let outcome = runtime.block_on(run(args));
    // stdin's reader thread may be blocked in a read: do not wait for it.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // `lambda-agent sessions | head`: the reader is gone, nothing is wrong.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// `--help` and `--version` as clap prints them; a wrong argument as one line, exit 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let rendered = error.render().to_string();
    let what = rendered.split("\n\nUsage:").next().unwrap_or(&rendered);
    let what = what.trim().trim_start_matches("error:").trim();
    eprintln!(
        "lambda-agent: {} (lambda-agent --help shows the usage)",
        api::one_line(what, 2000)
    );
    ExitCode::from(2)
}

fn fail(error: &anyhow::Error) -> ExitCode {
    let _ = std::io::stdout().flush();
    eprintln!(
        "lambda-agent: {}",
        api::one_line(&format!("{error:#}"), 2000)
    );
    ExitCode::FAILURE
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

async fn run(args: Args) -> Result<()> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let endpoints = endpoints::resolve(
        args.url.as_deref(),
        args.stream_url.as_deref(),
        &cwd,
        std::env::var_os("LAMBDA_AGENT_STACK").map(PathBuf::from),
    )?;
    let token = std::env::var("LAMBDA_AGENT_TOKEN").ok();
    let api = Api::new(&endpoints.api, Identity::new(token, &args.user))?;
    let paint = Painter::for_stdout();
    let mut out = std::io::stdout();

    match args.command {
        Command::Chat { session, model } => {
            let stream = match endpoints.stream {
                Some(url) => Some(url),
                None if endpoints.ask_config => api.console_stream_url().await?,
                None => None,
            };
            let stream = stream
                .map(|url| api::base_url(&url, "the stream URL"))
                .transpose()?;
            chat::run(
                &api,
                chat::Chat {
                    session,
                    model,
                    stream,
                },
            )
            .await
        }
        Command::Sessions => {
            let list: SessionList = api.get(&api.url(&["sessions"])).await?;
            out.write_all(listing::sessions(&list.sessions, paint).as_bytes())?;
            Ok(())
        }
        Command::Trace { session, turn } => {
            let turns = traces(&api, &session).await?;
            let shown: Vec<&TurnTrace> = turns
                .iter()
                .filter(|t| turn.is_none_or(|n| t.turn == n))
                .collect();
            match (turn, shown.is_empty()) {
                (Some(n), true) => bail!(
                    "session {session} has no turn {n} (it has {})",
                    format::count(turns.len() as u64, "turn", "turns")
                ),
                (None, true) => {
                    writeln!(out, "session {session} has no turns yet")?;
                }
                _ => {
                    for (i, trace) in shown.iter().enumerate() {
                        if i > 0 {
                            writeln!(out)?;
                        }
                        out.write_all(timeline::render(trace, paint).as_bytes())?;
                    }
                }
            }
            Ok(())
        }
        Command::Tools => {
            let list: ToolList = api.get(&api.url(&["tools"])).await?;
            out.write_all(listing::tools(&list.tools, paint).as_bytes())?;
            Ok(())
        }
    }
}

/// Every turn's trace of `session`, page after page.
async fn traces(api: &Api, session: &str) -> Result<Vec<TurnTrace>> {
    let mut turns = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = api.url(&["sessions", session, "trace"]);
        if let Some(cursor) = &cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        let page: TracePage = api.get(&url).await?;
        let got = page.turns.len();
        turns.extend(page.turns);
        match page.next_cursor {
            Some(next) if got > 0 && cursor.as_ref() != Some(&next) => cursor = Some(next),
            _ => return Ok(turns),
        }
    }
}
