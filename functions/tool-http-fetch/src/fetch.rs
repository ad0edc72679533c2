//! The fetcher: one GET per hop, redirects followed by hand, every hop checked.
//!
//! For each hop the URL is checked ([`check_url`]), a host name is resolved once through the
//! [`Resolve`] trait and *every* answer checked, and only the checked addresses are dialed
//! through the [`Dial`] trait; TLS and HTTP/1.1 then run over that very socket. No client
//! library resolves or connects on its own, no proxy is consulted, and a redirect starts the
//! whole check again, so neither a redirect nor a changing DNS answer reaches a blocked address.

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http::{
    header::{
        ACCEPT, ACCEPT_ENCODING, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, HOST, LOCATION,
        USER_AGENT,
    },
    Request, Response,
};
use http_body_util::Empty;
use hyper::body::Incoming;
use rustls::{pki_types::ServerName, ClientConfig};
use shared::https::{self, read_body, HttpError};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use url::Url;

use crate::{
    config::FetchConfig,
    content::{self, cap_bytes, Kind, Readable},
    error::{human, FetchError},
    ip_policy::IpPolicy,
    net::{default_tls_config, Dial, Resolve, SystemResolver, TcpDialer},
    page::{Page, MAX_CONTENT_TYPE_BYTES, MAX_URL_BYTES},
    target::{check_url, Refusal, Target, TargetHost},
};

/// Fetches URLs under a [`FetchConfig`], through replaceable resolver and dialer.
#[derive(Clone)]
pub struct Fetcher {
    config: FetchConfig,
    policy: IpPolicy,
    resolver: Arc<dyn Resolve>,
    dialer: Arc<dyn Dial>,
    tls: TlsConnector,
}

impl Fetcher {
    /// A fetcher with the system resolver, plain TCP and the production TLS configuration.
    pub fn new(config: FetchConfig) -> Result<Self, rustls::Error> {
        Ok(Self::with_tls(config, default_tls_config()?))
    }

    /// A fetcher with the system resolver, plain TCP and the TLS configuration `tls`.
    pub fn with_tls(config: FetchConfig, tls: Arc<ClientConfig>) -> Self {
        Self {
            policy: IpPolicy {
                allow_loopback: config.allow_loopback_for_tests,
            },
            config,
            resolver: Arc::new(SystemResolver),
            dialer: Arc::new(TcpDialer),
            tls: TlsConnector::from(tls),
        }
    }

    /// The same fetcher resolving names through `resolver`.
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The same fetcher connecting through `dialer`.
    pub fn with_dialer(mut self, dialer: Arc<dyn Dial>) -> Self {
        self.dialer = dialer;
        self
    }

    /// Its configuration.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Fetches `url` and returns at most `max_text_bytes` of text (capped by the
    /// configuration's own limit), within the configured time.
    pub async fn fetch(
        &self,
        url: &str,
        max_text_bytes: Option<usize>,
    ) -> Result<Page, FetchError> {
        let text_limit = max_text_bytes.map_or(self.config.max_text_bytes, |limit| {
            limit.min(self.config.max_text_bytes)
        });
        let parsed = Url::parse(url.trim()).map_err(|reason| FetchError::InvalidUrl {
            url: cap_bytes(url, MAX_URL_BYTES).into_owned(),
            reason,
        })?;
        timeout(self.config.timeout, self.follow(parsed, text_limit))
            .await
            .unwrap_or(Err(FetchError::Timeout(self.config.timeout)))
    }

    async fn follow(&self, mut url: Url, text_limit: usize) -> Result<Page, FetchError> {
        let mut redirects = 0;
        loop {
            let target = check_url(&url, &self.policy)?;
            let addresses = self.addresses(&target).await?;
            let exchange = self.open(&target, &addresses).await?;
            if let Some(location) = redirect_location(&exchange.exchange.response) {
                if redirects >= self.config.max_redirects {
                    return Err(Refusal::TooManyRedirects(self.config.max_redirects).into());
                }
                redirects += 1;
                url = url
                    .join(&location)
                    .map_err(|error| FetchError::BadRedirect {
                        from: cap_bytes(url.as_str(), MAX_URL_BYTES).into_owned(),
                        reason: error.to_string(),
                    })?;
                continue;
            }
            let Exchange {
                exchange: https::Exchange { response, .. },
                remote,
            } = exchange;
            let status = response.status();
            let encoding = content_encoding(response.headers());
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let host = host_of(&target);
            let (body, body_truncated) =
                read_body(response.into_body(), self.config.max_body_bytes)
                    .await
                    .map_err(|error| FetchError::from(HttpError::http(&host, error)))?;
            let readable = match encoding {
                // Asked for identity; a server that compresses anyway is not decoded.
                Some(encoding) => Readable {
                    kind: Kind::Binary,
                    title: None,
                    text: format!(
                        "[{encoding}-encoded content, {} bytes read, not shown]",
                        body.len()
                    ),
                },
                None => content::readable(content_type.as_deref(), &body),
            };
            let mut text = readable.text;
            let text_truncated = content::truncate(&mut text, text_limit);
            tracing::info!(%host, %remote, status = status.as_u16(), redirects, bytes = body.len(), "fetched");
            return Ok(Page {
                url,
                status,
                content_type: content_type
                    .map(|value| cap_bytes(&value, MAX_CONTENT_TYPE_BYTES).into_owned()),
                kind: readable.kind,
                title: readable.title,
                text,
                body_bytes: body.len(),
                body_truncated,
                text_truncated,
                redirects,
                remote,
            });
        }
    }

    /// The checked socket addresses of a target: its IP literal, or every answer for its name,
    /// all of which must be allowed.
    async fn addresses(&self, target: &Target) -> Result<Vec<SocketAddr>, FetchError> {
        let name = match &target.host {
            TargetHost::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, target.port)]),
            TargetHost::Name(name) => name,
        };
        let answers = self
            .resolver
            .resolve(name)
            .await
            .map_err(|error| FetchError::Resolve {
                host: name.clone(),
                reason: error.to_string(),
            })?;
        if answers.is_empty() {
            return Err(FetchError::Resolve {
                host: name.clone(),
                reason: "no addresses".into(),
            });
        }
        for ip in &answers {
            self.policy
                .check(*ip)
                .map_err(|range| Refusal::ResolvesTo {
                    host: name.clone(),
                    ip: *ip,
                    range,
                })?;
        }
        Ok(answers
            .into_iter()
            .map(|ip| SocketAddr::new(ip, target.port))
            .collect())
    }

    /// Connects to the first checked address that answers and sends the request.
    async fn open(
        &self,
        target: &Target,
        addresses: &[SocketAddr],
    ) -> Result<Exchange, FetchError> {
        let host = host_of(target);
        let mut last_error = String::from("no addresses");
        for &address in addresses {
            // Checked again right before dialing, whatever produced the list.
            self.policy
                .check(address.ip())
                .map_err(|range| Refusal::Address {
                    ip: address.ip(),
                    range,
                })?;
            let stream = match timeout(self.config.connect_timeout, self.dialer.dial(address)).await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    last_error = format!("{address}: {error}");
                    continue;
                }
                Err(_) => {
                    last_error = format!(
                        "{address}: no answer within {}",
                        human(self.config.connect_timeout)
                    );
                    continue;
                }
            };
            let request = self.request(target, &host)?;
            if !target.tls {
                return send(stream, request, address, &host).await;
            }
            let server_name = match &target.host {
                TargetHost::Ip(ip) => ServerName::from(*ip),
                TargetHost::Name(name) => ServerName::try_from(name.clone())
                    .map_err(|error| FetchError::from(HttpError::tls(&host, error)))?,
            };
            let tls = self
                .tls
                .connect(server_name, stream)
                .await
                .map_err(|error| FetchError::from(HttpError::tls(&host, error)))?;
            return send(tls, request, address, &host).await;
        }
        Err(HttpError::connect(&host, last_error).into())
    }

    fn request(&self, target: &Target, host: &str) -> Result<Request<Empty<Bytes>>, FetchError> {
        let (authority, path) = https::origin(&target.url);
        Request::get(path)
            .header(HOST, authority)
            .header(USER_AGENT, &self.config.user_agent)
            .header(
                ACCEPT,
                "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
            )
            .header(ACCEPT_ENCODING, "identity")
            .header(CONNECTION, "close")
            .body(Empty::new())
            .map_err(|error| FetchError::from(HttpError::http(host, error)))
    }
}

/// A response whose body may still be streaming, and the address it came from.
struct Exchange {
    exchange: https::Exchange<Empty<Bytes>>,
    remote: SocketAddr,
}

async fn send<S>(
    io: S,
    request: Request<Empty<Bytes>>,
    remote: SocketAddr,
    host: &str,
) -> Result<Exchange, FetchError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let exchange = https::exchange(io, request)
        .await
        .map_err(|error| FetchError::from(HttpError::http(host, error)))?;
    Ok(Exchange { exchange, remote })
}

/// The `Location` of a redirect that is to be followed.
fn redirect_location(response: &Response<Incoming>) -> Option<String> {
    let followed = [301, 302, 303, 307, 308].contains(&response.status().as_u16());
    let location = response.headers().get(LOCATION)?;
    followed.then(|| String::from_utf8_lossy(location.as_bytes()).into_owned())
}

fn host_of(target: &Target) -> String {
    target.url.host_str().unwrap_or_default().to_owned()
}

/// The `Content-Encoding` of a response, unless it is absent or `identity`.
fn content_encoding(headers: &http::HeaderMap) -> Option<String> {
    let encoding = headers
        .get(CONTENT_ENCODING)?
        .to_str()
        .unwrap_or("unknown")
        .trim();
    (!encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity"))
        .then(|| encoding.to_ascii_lowercase())
}
