//! A minimal HTTPS client for the provider APIs: one request per connection, hyper HTTP/1.1 over
//! tokio, TLS by rustls with the `ring` provider and the Mozilla roots compiled in (no OpenSSL,
//! no aws-lc), a time limit on the whole exchange and a cap on the response body.
//!
//! Header values are marked sensitive by the caller where they carry a key, so hyper never
//! prints them; errors here name the host and the failure, never headers.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{
    header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT},
    HeaderName, HeaderValue, Method, Request,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::{pki_types::ServerName, ClientConfig, RootCertStore};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;
use url::{Position, Url};

/// Bytes of response body read at most.
pub const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;

/// The `User-Agent` sent to providers.
pub const USER_AGENT_VALUE: &str = concat!("agent-web-search/", env!("CARGO_PKG_VERSION"));

/// Why an HTTP exchange failed.
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

/// A complete response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body (at most [`MAX_RESPONSE_BYTES`]).
    pub body: Bytes,
}

/// Sends one request per connection over HTTP or HTTPS.
#[derive(Clone)]
pub struct HttpClient {
    tls: TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client trusting the Mozilla roots, with `timeout` for each whole exchange.
    pub fn new(timeout: Duration) -> Result<Self, rustls::Error> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
            timeout,
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
        match tokio::time::timeout(
            self.timeout,
            self.exchange(method, url, &host, headers, body),
        )
        .await
        {
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
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let path = &url[Position::BeforePath..Position::AfterQuery];
        let mut builder = Request::builder()
            .method(method)
            .uri(if path.is_empty() { "/" } else { path })
            .header(HOST, authority)
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(http::header::ACCEPT, "application/json")
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
            .map_err(|error| HttpError::Connect {
                host: host.to_owned(),
                reason: error.to_string(),
            })?;
        if !tls {
            return send(stream, request, host).await;
        }
        let server_name =
            ServerName::try_from(bare_host.to_owned()).map_err(|error| HttpError::Tls {
                host: host.to_owned(),
                reason: error.to_string(),
            })?;
        let stream = self
            .tls
            .connect(server_name, stream)
            .await
            .map_err(|error| HttpError::Tls {
                host: host.to_owned(),
                reason: error.to_string(),
            })?;
        send(stream, request, host).await
    }
}

async fn send<S>(
    io: S,
    request: Request<Full<Bytes>>,
    host: &str,
) -> Result<HttpResponse, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_error = |reason: String| HttpError::Http {
        host: host.to_owned(),
        reason,
    };
    let (mut sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|error| http_error(error.to_string()))?;
    let task = tokio::spawn(async move {
        // Errors surface through the response or its body.
        let _ = connection.await;
    });
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| http_error(error.to_string()))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| http_error(error.to_string()))?
            .to_bytes();
        Ok(HttpResponse { status, body })
    }
    .await;
    task.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_builds_with_ring_and_the_webpki_roots() {
        assert!(HttpClient::new(Duration::from_secs(1)).is_ok());
    }

    #[tokio::test]
    async fn a_url_without_http_scheme_is_refused_before_connecting() {
        let client = HttpClient::new(Duration::from_secs(1)).unwrap();
        let url = Url::parse("ftp://example.com/x").unwrap();
        let error = client
            .send(Method::GET, &url, Vec::new(), None)
            .await
            .unwrap_err();
        assert!(matches!(error, HttpError::Url(_)), "{error}");
    }
}
