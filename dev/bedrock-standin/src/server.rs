//! The serving parts every stand-in of `dev/` shares: a body of pre-built chunks, the accept
//! loop (one task per HTTP/1.1 connection), and the binary's `--listen` parsing, signal
//! handling and one-line readiness announcement.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A response body made of pre-built chunks; each chunk is sent as its own frame. Sized
/// bodies get a `content-length`, unsized ones are chunked.
#[derive(Debug)]
pub struct Body {
    chunks: VecDeque<Bytes>,
    sized: bool,
    /// Time between two chunks, and the wait under way.
    gap: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
}

impl Body {
    /// One chunk, with a `content-length`.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            chunks: VecDeque::from([bytes.into()]),
            sized: true,
            gap: None,
        }
    }

    /// These chunks, each its own frame, chunked.
    pub fn streamed(chunks: Vec<Bytes>) -> Self {
        Self {
            chunks: chunks.into(),
            sized: false,
            gap: None,
        }
    }

    /// These chunks, chunked, `gap` apart (the first at once), as a model's tokens arrive.
    pub fn streamed_with_gap(chunks: Vec<Bytes>, gap: Duration) -> Self {
        Self {
            chunks: chunks.into(),
            sized: false,
            gap: Some((gap, Box::pin(tokio::time::sleep(Duration::ZERO)))),
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let body = self.get_mut();
        if let Some((gap, sleep)) = &mut body.gap {
            if body.chunks.is_empty() {
                return Poll::Ready(None);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let next = tokio::time::Instant::now() + *gap;
            sleep.as_mut().reset(next);
        }
        Poll::Ready(body.chunks.pop_front().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        let len: usize = self.chunks.iter().map(Bytes::len).sum();
        match (self.sized, u64::try_from(len)) {
            (true, Ok(len)) => SizeHint::with_exact(len),
            _ => SizeHint::default(),
        }
    }
}

/// Serves `listener` forever with `handle`. Each connection runs on its own task (HTTP/1.1,
/// keep-alive); dropping the returned future stops the server and its connections. Transient
/// accept errors (aborted connections, out of file descriptors) are retried; others are
/// returned.
pub async fn accept_loop<H, F>(listener: TcpListener, handle: H) -> std::io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let handle = handle.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(handle);
            // A client hanging up mid-request is not the server's problem.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock)
        // EMFILE / ENFILE: out of file descriptors, worth waiting for.
        || matches!(e.raw_os_error(), Some(23 | 24))
}

/// The address to bind, from `--listen ADDR` / `--listen=ADDR` (default `127.0.0.1:0`, a
/// loopback address only); `None` for `--help`. Errors end with `usage`.
pub fn parse_listen(
    mut args: impl Iterator<Item = String>,
    usage: &str,
) -> Result<Option<SocketAddr>, String> {
    let mut listen = "127.0.0.1:0".to_string();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        } else if arg == "--listen" {
            listen = args
                .next()
                .ok_or_else(|| format!("--listen needs a value\n{usage}"))?;
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            listen = value.to_string();
        } else {
            return Err(format!("unknown argument {arg:?}\n{usage}"));
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

/// Installs the SIGTERM and SIGINT handlers now; the returned future resolves when either
/// signal arrives.
fn install_shutdown() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
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
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// The `main` of a stand-in binary named `name`: parses `--listen` (printing `usage` for
/// `--help`), reads its options, binds, installs the signal handlers, prints exactly one line
/// `<name> listening on http://<addr>` and flushes it, then serves until SIGTERM or SIGINT
/// (exit 0). Any failure before that exits 2 with a message on stderr.
pub async fn run_binary<O, S, F>(
    name: &str,
    usage: &str,
    options: impl FnOnce() -> Result<O, String>,
    serve: S,
) -> ExitCode
where
    S: FnOnce(TcpListener, O) -> F,
    F: Future<Output = std::io::Result<()>>,
{
    let fail = |message: String| {
        eprintln!("{name}: {message}");
        ExitCode::from(2)
    };
    let addr = match parse_listen(std::env::args().skip(1), usage) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(message) => return fail(message),
    };
    let options = match options() {
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
    // Install the signal handlers before announcing readiness.
    let shutdown = match install_shutdown() {
        Ok(shutdown) => shutdown,
        Err(e) => return fail(format!("cannot listen for signals: {e}")),
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{name} listening on http://{bound}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return fail("cannot write to stdout".to_string());
    }
    drop(stdout);

    tokio::select! {
        result = serve(listener, options) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("server stopped: {e}")),
        },
        () = shutdown => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_listen;
    use super::{Body, Bytes, Duration, Pin};

    #[tokio::test]
    async fn a_gapped_body_sends_each_chunk_a_gap_after_the_last() {
        use hyper::body::Body as _;
        let gap = Duration::from_millis(40);
        let mut body = Body::streamed_with_gap(
            vec![Bytes::from("a"), Bytes::from("b"), Bytes::from("c")],
            gap,
        );
        let started = tokio::time::Instant::now();
        let mut arrivals = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let data = frame.expect("infallible").into_data().expect("data");
            arrivals.push((data, started.elapsed()));
        }
        assert_eq!(arrivals.len(), 3);
        assert!(arrivals[0].1 < gap, "the first chunk goes at once");
        assert!(
            arrivals[1].1 >= gap && arrivals[2].1 >= gap * 2,
            "{arrivals:?}"
        );
    }

    fn parse(args: &[&str]) -> Result<String, String> {
        parse_listen(args.iter().map(|s| s.to_string()), "usage: x")
            .map(|a| a.map_or_else(|| "help".to_string(), |a| a.to_string()))
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
        assert!(parse(&["--listen", "localhost:80"]).is_err());
        assert!(parse(&["--port", "1"]).is_err());
        assert_eq!(parse(&["--help"]), Ok("help".into()));
    }
}
