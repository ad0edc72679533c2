//! Checking a URL before anything is resolved or connected: scheme, credentials, host.
//!
//! The URL parser (WHATWG rules, as browsers apply them) already turns every IPv4 spelling
//! into an address: `0x7f000001`, `2130706433`, `127.1` and `0177.0.0.1` all become
//! `127.0.0.1`, so IP-literal hosts are checked as addresses here, without any resolution.

use std::net::IpAddr;

use url::{Host, Url};

use crate::ip_policy::{BlockedRange, IpPolicy};

/// Why a URL, or an address it leads to, is not fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not `http` or `https`.
    #[error("refused: only http and https URLs are fetched, not {0}:")]
    Scheme(String),
    /// The URL carries a user name or password.
    #[error("refused: URLs with credentials (user:password@) are not fetched")]
    Credentials,
    /// The URL has no host.
    #[error("refused: the URL has no host")]
    NoHost,
    /// A name reserved for the local machine (`localhost`, `*.localhost`).
    #[error("refused: {0} is the local machine")]
    LocalName(String),
    /// An IP-literal host in a forbidden range.
    #[error("refused: {ip} is {range}")]
    Address {
        /// The address.
        ip: IpAddr,
        /// Its range.
        range: BlockedRange,
    },
    /// A host name with an address in a forbidden range.
    #[error("refused: {host} resolves to {ip}, {range}")]
    ResolvesTo {
        /// The name.
        host: String,
        /// The forbidden address among its answers.
        ip: IpAddr,
        /// Its range.
        range: BlockedRange,
    },
    /// The redirect chain is longer than allowed.
    #[error("refused: more than {0} redirects")]
    TooManyRedirects(u32),
}

/// Where a checked URL points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetHost {
    /// An IP literal, already checked.
    Ip(IpAddr),
    /// A name, to be resolved and checked.
    Name(String),
}

/// A URL that passed the checks that need no network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL.
    pub url: Url,
    /// Its host.
    pub host: TargetHost,
    /// Its port, explicit or the scheme's default.
    pub port: u16,
    /// True for `https`.
    pub tls: bool,
}

/// Checks `url` under `policy`: an http(s) URL without credentials whose host is a name
/// (checked once resolved) or an allowed address.
pub fn check_url(url: &Url, policy: &IpPolicy) -> Result<Target, Refusal> {
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(Refusal::Scheme(other.to_owned())),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Credentials);
    }
    let host = match url.host() {
        None => return Err(Refusal::NoHost),
        Some(Host::Ipv4(ip)) => TargetHost::Ip(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => TargetHost::Ip(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err(Refusal::NoHost);
            }
            match name.parse::<IpAddr>() {
                Ok(ip) => TargetHost::Ip(ip),
                Err(_) => {
                    let local = name == "localhost" || name.ends_with(".localhost");
                    if local && !policy.allow_loopback {
                        return Err(Refusal::LocalName(name));
                    }
                    TargetHost::Name(name)
                }
            }
        }
    };
    if let TargetHost::Ip(ip) = host {
        policy
            .check(ip)
            .map_err(|range| Refusal::Address { ip, range })?;
    }
    let port = url.port_or_known_default().ok_or(Refusal::NoHost)?;
    Ok(Target {
        url: url.clone(),
        host,
        port,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<Target, Refusal> {
        check_url(&Url::parse(url).unwrap(), &IpPolicy::default())
    }

    #[test]
    fn the_url_parser_turns_every_ipv4_spelling_into_an_address() {
        for spelling in [
            "http://0x7f000001/",
            "http://2130706433/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://127.0.0.1./",
            "http://%31%32%37.0.0.1/",
        ] {
            let url = Url::parse(spelling).unwrap();
            assert_eq!(
                url.host(),
                Some(Host::Ipv4([127, 0, 0, 1].into())),
                "{spelling}"
            );
            assert!(
                matches!(
                    check(spelling),
                    Err(Refusal::Address {
                        range: BlockedRange::Loopback,
                        ..
                    })
                ),
                "{spelling}"
            );
        }
    }

    #[test]
    fn ip_literal_hosts_in_blocked_ranges_are_refused_with_the_range() {
        for (url, message) in [
            ("http://10.0.0.5/", "refused: 10.0.0.5 is a private address"),
            ("http://[::1]:8080/", "refused: ::1 is a loopback address"),
            (
                "http://[::ffff:127.0.0.1]/",
                "refused: ::ffff:127.0.0.1 is a loopback address",
            ),
            (
                "http://169.254.169.254/latest/meta-data/",
                "refused: 169.254.169.254 is a link-local address",
            ),
            (
                "http://0.0.0.0/",
                "refused: 0.0.0.0 is an unspecified address",
            ),
            ("http://[::]/", "refused: :: is an unspecified address"),
            (
                "https://[fd00::1]/",
                "refused: fd00::1 is a unique-local address",
            ),
            (
                "http://100.64.1.1/",
                "refused: 100.64.1.1 is a carrier-grade NAT (shared) address",
            ),
        ] {
            assert_eq!(check(url).unwrap_err().to_string(), message, "{url}");
        }
    }

    #[test]
    fn schemes_other_than_http_and_https_are_refused() {
        for url in [
            "file:///etc/passwd",
            "ftp://example.com/",
            "gopher://example.com/",
            "data:text/html,hi",
            "javascript:alert(1)",
            "ws://example.com/",
        ] {
            assert!(matches!(check(url), Err(Refusal::Scheme(_))), "{url}");
        }
        assert_eq!(
            check("file:///etc/passwd").unwrap_err().to_string(),
            "refused: only http and https URLs are fetched, not file:"
        );
    }

    #[test]
    fn urls_with_credentials_are_refused() {
        for url in [
            "http://user:pass@example.com/",
            "http://user@example.com/",
            "https://:pw@example.com/",
        ] {
            assert_eq!(check(url), Err(Refusal::Credentials), "{url}");
        }
    }

    #[test]
    fn localhost_names_are_refused_before_any_resolution() {
        for url in [
            "http://localhost/",
            "http://LOCALHOST:9001/",
            "http://localhost./",
            "http://api.localhost/",
        ] {
            assert!(matches!(check(url), Err(Refusal::LocalName(_))), "{url}");
        }
    }

    #[test]
    fn public_names_and_addresses_pass_with_their_port() {
        let target = check("https://Example.COM./path?q=1").unwrap();
        assert_eq!(target.host, TargetHost::Name("example.com".into()));
        assert_eq!((target.port, target.tls), (443, true));
        let target = check("http://93.184.216.34:8080/").unwrap();
        assert_eq!(target.host, TargetHost::Ip([93, 184, 216, 34].into()));
        assert_eq!((target.port, target.tls), (8080, false));
    }
}
