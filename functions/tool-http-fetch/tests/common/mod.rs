//! Test doubles: a local hyper server that records what reached it, a dialer that records
//! (and may redirect) what it is asked to dial, and a resolver with scripted answers.

#![allow(dead_code)]

use std::{
    collections::HashMap,
    convert::Infallible,
    io,
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tool_http_fetch::{
    net::{BoxFuture, Dial, Resolve},
    FetchConfig,
};

/// What the test server answers for a path.
pub enum Reply {
    /// A status, content type and body.
    Body(u16, &'static str, String),
    /// A redirect with this status to this location.
    Redirect(u16, String),
    /// An HTML body sent with this `Content-Encoding`.
    Encoded(&'static str, String),
    /// Never answers (for a minute).
    Hang,
    /// A 200 with this `Content-Type` (any length) and body.
    Typed(String, String),
}

/// An HTML page.
pub fn html(body: &str) -> Reply {
    Reply::Body(200, "text/html; charset=utf-8", body.to_owned())
}

/// A running test server.
pub struct TestServer {
    /// Its address, on 127.0.0.1.
    pub addr: SocketAddr,
    /// Paths requested, in order.
    pub paths: Arc<Mutex<Vec<String>>>,
    /// `Host` headers received, in order.
    pub hosts: Arc<Mutex<Vec<String>>>,
    /// TCP connections accepted.
    pub connections: Arc<AtomicUsize>,
}

impl TestServer {
    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The paths requested so far.
    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }

    /// The connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Starts a plain HTTP server answering with `route`.
pub async fn serve(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> TestServer {
    start(Arc::new(route), None).await
}

/// Starts an HTTPS server answering with `route`.
pub async fn serve_tls(
    route: impl Fn(&str) -> Reply + Send + Sync + 'static,
    acceptor: TlsAcceptor,
) -> TestServer {
    start(Arc::new(route), Some(acceptor)).await
}

type Route = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

async fn start(route: Route, tls: Option<TlsAcceptor>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = TestServer {
        addr: listener.local_addr().unwrap(),
        paths: Arc::default(),
        hosts: Arc::default(),
        connections: Arc::default(),
    };
    let (paths, hosts, connections) = (
        server.paths.clone(),
        server.hosts.clone(),
        server.connections.clone(),
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            connections.fetch_add(1, Ordering::SeqCst);
            let (route, paths, hosts, tls) =
                (route.clone(), paths.clone(), hosts.clone(), tls.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let path = request
                        .uri()
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_owned();
                    let host = request
                        .headers()
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    paths.lock().unwrap().push(path.clone());
                    hosts.lock().unwrap().push(host);
                    let reply = route(&path);
                    async move { Ok::<_, Infallible>(respond(reply).await) }
                });
                let builder = http1::Builder::new();
                match tls {
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                }
            });
        }
    });
    server
}

async fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let builder = Response::builder();
    match reply {
        Reply::Body(status, content_type, body) => builder
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body))),
        Reply::Redirect(status, location) => builder
            .status(status)
            .header("location", location)
            .body(Full::new(Bytes::from_static(b"<p>moved</p>"))),
        Reply::Encoded(encoding, body) => builder
            .status(200)
            .header("content-type", "text/html")
            .header("content-encoding", encoding)
            .body(Full::new(Bytes::from(body))),
        Reply::Typed(content_type, body) => builder
            .status(200)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body))),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            builder.status(200).body(Full::new(Bytes::new()))
        }
    }
    .unwrap()
}

/// Dials as asked, except addresses in `map`, which go to where they map (a public address
/// standing for the local test server); records every address it was asked for.
#[derive(Default)]
pub struct RecordingDialer {
    /// Addresses asked for, in order.
    pub dialed: Mutex<Vec<SocketAddr>>,
    /// Stand-ins: asked-for address to real address.
    pub map: HashMap<SocketAddr, SocketAddr>,
}

impl RecordingDialer {
    /// The addresses asked for so far.
    pub fn dialed(&self) -> Vec<SocketAddr> {
        self.dialed.lock().unwrap().clone()
    }
}

impl Dial for RecordingDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<TcpStream>> {
        self.dialed.lock().unwrap().push(addr);
        let real = self.map.get(&addr).copied().unwrap_or(addr);
        Box::pin(async move { TcpStream::connect(real).await })
    }
}

/// Answers from a script: the n-th lookup of a name gets its n-th answer (the last answer
/// repeats); unknown names fail.
#[derive(Default)]
pub struct ScriptedResolver {
    /// Name to successive answers.
    pub answers: HashMap<String, Vec<Vec<IpAddr>>>,
    /// Lookups so far, per name.
    pub lookups: Mutex<HashMap<String, usize>>,
}

impl ScriptedResolver {
    /// A resolver that always answers `ips` for `name`.
    pub fn fixed(name: &str, ips: &[&str]) -> Self {
        Self::default().with(name, &[ips])
    }

    /// The same resolver answering `answers` in turn for `name`.
    pub fn with(mut self, name: &str, answers: &[&[&str]]) -> Self {
        let parsed = answers
            .iter()
            .map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect())
            .collect();
        self.answers.insert(name.to_owned(), parsed);
        self
    }

    /// How often `name` was looked up.
    pub fn lookups_of(&self, name: &str) -> usize {
        self.lookups.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

impl Resolve for ScriptedResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        let mut lookups = self.lookups.lock().unwrap();
        let count = lookups.entry(host.to_owned()).or_default();
        let answer = self
            .answers
            .get(host)
            .map(|answers| answers[(*count).min(answers.len() - 1)].clone());
        *count += 1;
        Box::pin(async move {
            answer.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown test name"))
        })
    }
}

/// The default limits with loopback allowed: the configuration of tests that fetch from the
/// local server.
pub fn loopback_config() -> FetchConfig {
    FetchConfig {
        allow_loopback_for_tests: true,
        ..FetchConfig::default()
    }
}
