//! The two network steps the fetcher takes, as small traits so tests can replace them:
//! resolving a name ([`Resolve`]) and opening a TCP connection to one address ([`Dial`]).
//!
//! The fetcher resolves each host exactly once per request, checks every answer, and then dials
//! only those checked addresses; nothing resolves the name a second time, so a DNS answer that
//! changes between check and connect (rebinding) is never used.

use std::{
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
};

use tokio::net::TcpStream;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Resolves host names to addresses.
pub trait Resolve: Send + Sync {
    /// The addresses of `host` (a name, never an IP literal), in preference order.
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// Opens TCP connections.
pub trait Dial: Send + Sync {
    /// A connection to exactly `addr`.
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<TcpStream>>;
}

/// The system resolver (`getaddrinfo` through tokio).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let mut addresses: Vec<IpAddr> = Vec::new();
            for address in tokio::net::lookup_host((host, 0)).await? {
                if !addresses.contains(&address.ip()) {
                    addresses.push(address.ip());
                }
            }
            Ok(addresses)
        })
    }
}

/// Plain TCP connections that verify the socket's peer is the address asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpDialer;

impl Dial for TcpDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<TcpStream>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            let peer = stream.peer_addr()?;
            if peer.ip() != addr.ip() || peer.port() != addr.port() {
                return Err(io::Error::other(format!(
                    "connected to {peer}, not the checked {addr}"
                )));
            }
            stream.set_nodelay(true)?;
            Ok(stream)
        })
    }
}

pub use shared::https::{tls_config as default_tls_config, tls_config_with_roots};

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tcp_dialer_connects_to_exactly_the_address_given() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = TcpDialer.dial(addr).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);
    }

    #[tokio::test]
    async fn the_system_resolver_answers_ip_strings_without_the_network() {
        let answers = SystemResolver.resolve("127.0.0.1").await.unwrap();
        assert_eq!(answers, vec![IpAddr::from([127, 0, 0, 1])]);
    }
}
