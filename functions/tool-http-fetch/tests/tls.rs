//! HTTPS with rustls and the `ring` provider, against a local server whose certificate for
//! `secure.test` is signed by a test CA.
//!
//! The fixtures were made once with openssl (P-256, valid until 2126): a CA with
//! `basicConstraints=CA:TRUE`, and a leaf for `DNS:secure.test` with `extendedKeyUsage=serverAuth`.
//! The key is a test key and protects nothing.

mod common;

use std::sync::Arc;

use common::{html, loopback_config, serve_tls, ScriptedResolver};
use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    RootCertStore, ServerConfig,
};
use shared::https::HttpError;
use tokio_rustls::TlsAcceptor;
use tool_http_fetch::{net::tls_config_with_roots, FetchError, Fetcher};

const CA: &[u8] = include_bytes!("fixtures/test-ca.pem");
const CERT: &[u8] = include_bytes!("fixtures/secure.test.pem");
const KEY: &[u8] = include_bytes!("fixtures/secure.test.key.pem");

fn acceptor() -> TlsAcceptor {
    let certs = CertificateDer::pem_slice_iter(CERT)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

fn test_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(CA) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

fn resolver() -> Arc<ScriptedResolver> {
    Arc::new(
        ScriptedResolver::fixed("secure.test", &["127.0.0.1"])
            .with("other.test", &[&["127.0.0.1"]]),
    )
}

#[tokio::test]
async fn https_pages_are_fetched_over_rustls_with_ring() {
    let server = serve_tls(|_| html("<title>Secure</title><p>over TLS</p>"), acceptor()).await;
    let fetcher = Fetcher::with_tls(
        loopback_config(),
        tls_config_with_roots(test_roots()).unwrap(),
    )
    .with_resolver(resolver());
    let url = format!("https://secure.test:{}/page", server.addr.port());
    let page = fetcher.fetch(&url, None).await.unwrap();
    assert_eq!(
        (page.title.as_deref(), page.text.as_str()),
        (Some("Secure"), "over TLS")
    );
    assert_eq!(page.url.as_str(), url);
    assert_eq!(server.paths(), vec!["/page"]);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_rejected() {
    let server = serve_tls(|_| html("<p>wrong host</p>"), acceptor()).await;
    let fetcher = Fetcher::with_tls(
        loopback_config(),
        tls_config_with_roots(test_roots()).unwrap(),
    )
    .with_resolver(resolver());
    let url = format!("https://other.test:{}/", server.addr.port());
    let error = fetcher.fetch(&url, None).await.unwrap_err();
    assert!(
        matches!(error, FetchError::Transport(HttpError::Tls { .. })),
        "{error}"
    );
    assert!(server.paths().is_empty());
}

#[tokio::test]
async fn the_production_roots_do_not_trust_an_unknown_ca() {
    let server = serve_tls(|_| html("<p>untrusted</p>"), acceptor()).await;
    let fetcher = Fetcher::new(loopback_config())
        .unwrap()
        .with_resolver(resolver());
    let url = format!("https://secure.test:{}/", server.addr.port());
    let error = fetcher.fetch(&url, None).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("TLS with secure.test failed: "),
        "{error}"
    );
    assert!(server.paths().is_empty());
}
