//! HTTP/1.1 over TCP or TLS for the tool executors (feature `https`): hyper over tokio, TLS by
//! rustls with the `ring` provider and the Mozilla roots compiled in (no OpenSSL, no aws-lc, no
//! system certificate store to read at start-up).
//!
//! Two levels:
//! - building blocks for a caller that owns the socket ([`tls_config`], [`origin`],
//!   [`exchange`], [`read_body`]): `tool-http-fetch` resolves and checks every address itself
//!   and dials only checked ones, then runs TLS and HTTP over that very socket;
//! - [`Client`], a small client for JSON APIs (`tool-web-search`'s providers): one request per
//!   connection, a time limit on the whole exchange and a cap on the response body;
//! - with the feature `https-reqwest`, [`reqwest_builder`] and [`read_response`]: `reqwest`
//!   over the same TLS configuration, for the clients that keep connections alive or stream
//!   (the OpenAI adapter) and the JWKS fetches of `shared::auth`.
//!
//! Errors name the host and the failure, never a header or a body, so a key sent in a header
//! (marked sensitive by the caller) cannot reach a log line or a tool result through them.

use std::{net::IpAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{
    header::{ACCEPT, CONNECTION, CONTENT_TYPE, HOST, USER_AGENT},
    HeaderName, HeaderValue, Method, Request, Response,
};
use http_body_util::{BodyExt, Full};
use hyper::{
    body::{Body, Incoming},
    client::conn::http1,
};
use hyper_util::rt::TokioIo;
use rustls::{pki_types::ServerName, ClientConfig, RootCertStore};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    task::JoinHandle,
};
use tokio_rustls::TlsConnector;
use url::{Host, Position, Url};

/// The TLS client configuration of the executors: rustls with `ring`, the Mozilla roots,
/// HTTP/1.1 by ALPN.
pub fn tls_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    tls_config_with_roots(RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
}

/// A configuration like [`tls_config`] trusting only `roots` (tests use their own CA).
pub fn tls_config_with_roots(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// True when `url`'s host is a loopback address or `localhost`: the one kind of host that plain
/// `http` is accepted for where a secret or a trust decision rides on the exchange (local
/// stand-ins and test servers).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A `reqwest` client builder over [`tls_config`] (rustls with `ring`, the Mozilla roots),
/// following no redirects; the caller adds its time limits and builds.
///
/// `reqwest` is built with `rustls-no-provider`: it brings no crypto provider of its own, so
/// every client of the workspace must be given its TLS configuration like this.
#[cfg(feature = "https-reqwest")]
pub fn reqwest_builder() -> Result<reqwest::ClientBuilder, rustls::Error> {
    let tls = tls_config()?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .redirect(reqwest::redirect::Policy::none()))
}

/// Reads at most `limit` bytes of `response`'s body; true when there was more (the rest is not
/// read).
#[cfg(feature = "https-reqwest")]
pub async fn read_response(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut read = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if !append_capped(&mut read, &chunk, limit) {
            return Ok((read, true));
        }
    }
    Ok((read, false))
}

/// The `Host` header value (`host[:port]`, the port only when the URL names one) and the
/// request target (path and query, `/` when empty) of `url`.
pub fn origin(url: &Url) -> (String, &str) {
    let host = url.host_str().unwrap_or_default();
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let target = &url[Position::BeforePath..Position::AfterQuery];
    (authority, if target.is_empty() { "/" } else { target })
}

/// A response whose body may still be streaming, and what keeps its connection open; dropping
/// it closes the connection.
pub struct Exchange<B> {
    /// The response head and its streaming body.
    pub response: Response<Incoming>,
    _sender: http1::SendRequest<B>,
    _task: AbortOnDrop,
}

impl<B> std::fmt::Debug for Exchange<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("status", &self.response.status())
            .finish_non_exhaustive()
    }
}

/// Stops the connection task when the exchange is dropped (done, redirected, timed out).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `request` over `io` (a connected TCP or TLS stream) with HTTP/1.1 and returns the
/// response as soon as its head has arrived.
pub async fn exchange<S, B>(io: S, request: Request<B>) -> Result<Exchange<B>, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, connection) = http1::handshake(TokioIo::new(io)).await?;
    let task = AbortOnDrop(tokio::spawn(async move {
        // Errors surface through the response or its body.
        let _ = connection.await;
    }));
    let response = sender.send_request(request).await?;
    Ok(Exchange {
        response,
        _sender: sender,
        _task: task,
    })
}

/// Reads at most `limit` bytes of `body`; true when there was more (the rest is not read).
pub async fn read_body(mut body: Incoming, limit: usize) -> Result<(Vec<u8>, bool), hyper::Error> {
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if !append_capped(&mut read, &data, limit) {
            return Ok((read, true));
        }
    }
    Ok((read, false))
}

/// Appends `data` to `read` while `read` stays within `limit` bytes; false when not all of it
/// fitted (what did fit is appended).
fn append_capped(read: &mut Vec<u8>, data: &[u8], limit: usize) -> bool {
    let room = limit.saturating_sub(read.len());
    let fits = data.len() <= room;
    read.extend_from_slice(&data[..data.len().min(room)]);
    fits
}

/// Bytes of response body [`Client`] reads at most.
pub const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;

/// Why a [`Client`] exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL cannot be requested (scheme, host).
    #[error("invalid request URL: {0}")]
    Url(String),
    /// The TCP connection failed.
    #[error("could not connect to {host}: {reason}")]
    Connect {
        /// The host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The TLS handshake failed.
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// The host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The HTTP exchange failed (protocol, body too large).
    #[error("HTTP exchange with {host} failed: {reason}")]
    Http {
        /// The host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// No complete answer in time.
    #[error("no answer from {host} within {millis} ms")]
    Timeout {
        /// The host.
        host: String,
        /// The limit, in milliseconds.
        millis: u128,
    },
}

impl HttpError {
    /// The TCP connection to `host` failed.
    pub fn connect(host: &str, reason: impl std::fmt::Display) -> Self {
        Self::Connect {
            host: host.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// The TLS handshake with `host` failed.
    pub fn tls(host: &str, reason: impl std::fmt::Display) -> Self {
        Self::Tls {
            host: host.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// The HTTP exchange with `host` failed.
    pub fn http(host: &str, reason: impl std::fmt::Display) -> Self {
        Self::Http {
            host: host.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// A complete response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body (at most [`MAX_RESPONSE_BYTES`]).
    pub body: Bytes,
}

/// A client for JSON APIs over HTTP or HTTPS: one request per connection.
#[derive(Clone)]
pub struct Client {
    tls: TlsConnector,
    timeout: Duration,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client trusting the Mozilla roots, with `timeout` for each whole exchange, sending
    /// `user_agent`.
    pub fn new(timeout: Duration, user_agent: &'static str) -> Result<Self, rustls::Error> {
        Ok(Self {
            tls: TlsConnector::from(tls_config()?),
            timeout,
            user_agent: HeaderValue::from_static(user_agent),
        })
    }

    /// Sends `method url` with `headers` and an optional JSON `body`; reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Option<Bytes>,
    ) -> Result<HttpResponse, HttpError> {
        let host = url
            .host_str()
            .ok_or_else(|| HttpError::Url("no host".into()))?
            .to_owned();
        let sent = self.exchange(method, url, &host, headers, body);
        match tokio::time::timeout(self.timeout, sent).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout {
                host,
                millis: self.timeout.as_millis(),
            }),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        host: &str,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Option<Bytes>,
    ) -> Result<HttpResponse, HttpError> {
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(HttpError::Url(format!("unsupported scheme {other:?}"))),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| HttpError::Url("no port".into()))?;
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let (authority, target) = origin(url);
        let mut builder = Request::builder()
            .method(method)
            .uri(target)
            .header(HOST, authority)
            .header(USER_AGENT, self.user_agent.clone())
            .header(ACCEPT, "application/json")
            .header(CONNECTION, "close");
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|error| HttpError::Url(error.to_string()))?;

        let stream = TcpStream::connect((bare_host, port))
            .await
            .map_err(|error| HttpError::connect(host, error))?;
        let exchanged = if tls {
            let server_name = ServerName::try_from(bare_host.to_owned())
                .map_err(|error| HttpError::tls(host, error))?;
            let stream = self
                .tls
                .connect(server_name, stream)
                .await
                .map_err(|error| HttpError::tls(host, error))?;
            exchange(stream, request).await
        } else {
            exchange(stream, request).await
        };
        let response = exchanged
            .map_err(|error| HttpError::http(host, error))?
            .response;
        let status = response.status().as_u16();
        let (body, truncated) = read_body(response.into_body(), MAX_RESPONSE_BYTES)
            .await
            .map_err(|error| HttpError::http(host, error))?;
        if truncated {
            return Err(HttpError::http(
                host,
                format!("the response is larger than {MAX_RESPONSE_BYTES} bytes"),
            ));
        }
        Ok(HttpResponse {
            status,
            body: Bytes::from(body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_config_builds_with_ring_the_webpki_roots_and_http1_alpn() {
        let config = tls_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn origin_gives_the_host_header_and_the_request_target() {
        let url = Url::parse("https://api.example.com/v1/search?q=a%20b").unwrap();
        assert_eq!(
            origin(&url),
            ("api.example.com".to_owned(), "/v1/search?q=a%20b")
        );
        let url = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(origin(&url), ("127.0.0.1:8080".to_owned(), "/"));
        let url = Url::parse("http://[::1]:9/x").unwrap();
        assert_eq!(origin(&url), ("[::1]:9".to_owned(), "/x"));
    }

    #[test]
    fn loopback_hosts_are_the_loopback_addresses_and_localhost() {
        for url in [
            "http://127.0.0.1:8080/",
            "http://127.1.2.3/",
            "http://[::1]:9/",
            "http://LocalHost/x",
        ] {
            assert!(is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "http://10.0.0.1/",
            "http://localhost.example.com/",
            "http://[::2]/",
            "https://example.com/",
        ] {
            assert!(!is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
    }

    #[tokio::test]
    async fn a_url_without_http_scheme_is_refused_before_connecting() {
        let client = Client::new(Duration::from_secs(1), "test").unwrap();
        let url = Url::parse("ftp://example.com/x").unwrap();
        let error = client
            .send(Method::GET, &url, Vec::new(), None)
            .await
            .unwrap_err();
        assert!(matches!(error, HttpError::Url(_)), "{error}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error_naming_the_host() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/", closed.local_addr().unwrap())).unwrap();
        drop(closed);
        let client = Client::new(Duration::from_secs(5), "test").unwrap();
        let error = client
            .send(Method::GET, &url, Vec::new(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, HttpError::Connect { host, .. } if host == "127.0.0.1"),
            "{error}"
        );
    }
}
