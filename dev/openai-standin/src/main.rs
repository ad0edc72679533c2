//! `openai-standin [--listen 127.0.0.1:0]`: runs the OpenAI Chat Completions stand-in on a
//! loopback address.
//!
//! After binding it prints exactly one line to stdout,
//! `openai-standin listening on http://127.0.0.1:<port>` (the API base URL is that plus
//! `/v1`), flushes it, then serves until SIGTERM or SIGINT (exit 0). Bad arguments, a
//! non-loopback address, a bad `OPENAI_STANDIN_*` variable or a bind failure exit 2 with a
//! message on stderr. The key (`OPENAI_STANDIN_API_KEY`) is read from the environment, never
//! from the command line, and never printed.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use openai_standin::{serve_with, Options};
use tokio::net::TcpListener;

const USAGE: &str = "usage: openai-standin [--listen 127.0.0.1:0]";

/// The address to bind, from `--listen ADDR` / `--listen=ADDR`; `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<SocketAddr>, String> {
    let mut listen = "127.0.0.1:0".to_owned();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        } else if arg == "--listen" {
            listen = args
                .next()
                .ok_or_else(|| format!("--listen needs a value\n{USAGE}"))?;
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            listen = value.to_owned();
        } else {
            return Err(format!("unknown argument {arg:?}\n{USAGE}"));
        }
    }
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| format!("--listen {listen:?} is not an IP:port address: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--listen {addr} is not a loopback address; refusing to bind it"
        ));
    }
    Ok(Some(addr))
}

/// Installs the SIGTERM and SIGINT handlers now; the future resolves on either.
fn install_shutdown() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let fail = |message: String| {
        eprintln!("openai-standin: {message}");
        ExitCode::from(2)
    };
    let addr = match parse_args(std::env::args().skip(1)) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => return fail(message),
    };
    let options = match Options::from_env() {
        Ok(options) => options,
        Err(message) => return fail(message),
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => return fail(format!("cannot bind {addr}: {e}")),
    };
    let bound = match listener.local_addr() {
        Ok(bound) => bound,
        Err(e) => return fail(format!("cannot read the bound address: {e}")),
    };
    let shutdown = match install_shutdown() {
        Ok(shutdown) => shutdown,
        Err(e) => return fail(format!("cannot listen for signals: {e}")),
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "openai-standin listening on http://{bound}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return fail("cannot write to stdout".to_owned());
    }
    drop(stdout);

    tokio::select! {
        result = serve_with(listener, options) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("server stopped: {e}")),
        },
        () = shutdown => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    fn parse(args: &[&str]) -> Result<String, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
            .map(|a| a.map_or_else(|| "help".to_owned(), |a| a.to_string()))
    }

    #[test]
    fn parses_listen_and_refuses_non_loopback() {
        assert_eq!(parse(&[]), Ok("127.0.0.1:0".into()));
        assert_eq!(
            parse(&["--listen", "127.0.0.1:8080"]),
            Ok("127.0.0.1:8080".into())
        );
        assert_eq!(parse(&["--listen=[::1]:9"]), Ok("[::1]:9".into()));
        assert!(parse(&["--listen", "0.0.0.0:80"]).is_err());
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--port", "1"]).is_err());
        assert_eq!(parse(&["--help"]), Ok("help".into()));
    }
}
