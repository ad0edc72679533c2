//! SSRF refusals end to end, with the production configuration (loopback NOT allowed): every
//! refusal happens before any connection, which the local server and a recording dialer prove.

mod common;

use std::{net::SocketAddr, sync::Arc};

use common::{html, serve, RecordingDialer, Reply, ScriptedResolver};
use serde_json::json;
use shared::tool_contract::handle;
use tool_http_fetch::{FetchConfig, FetchError, Fetcher, HttpFetch, Refusal};

fn fetcher(resolver: ScriptedResolver, dialer: &Arc<RecordingDialer>) -> Fetcher {
    Fetcher::new(FetchConfig::default())
        .unwrap()
        .with_resolver(Arc::new(resolver))
        .with_dialer(dialer.clone())
}

async fn refusal(fetcher: &Fetcher, url: &str) -> String {
    match fetcher.fetch(url, None).await {
        Err(error @ FetchError::Refused(_)) => error.to_string(),
        other => panic!("{url}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_is_refused_by_default_and_the_server_sees_nothing() {
    let server = serve(|_| html("<p>secret</p>")).await;
    let tool = HttpFetch::new(Fetcher::new(FetchConfig::default()).unwrap());
    let response = handle(
        &tool,
        json!({"name": "http_fetch", "arguments": {"url": server.url("/")}}),
    )
    .await;
    assert_eq!(response["isError"], true);
    assert_eq!(
        response["content"][0]["text"],
        "refused: 127.0.0.1 is a loopback address"
    );
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn every_spelling_of_the_local_machine_is_refused_without_a_connection() {
    let server = serve(|_| html("<p>secret</p>")).await;
    let dialer = Arc::new(RecordingDialer::default());
    let fetcher = fetcher(ScriptedResolver::default(), &dialer);
    let port = server.addr.port();
    for host in [
        "127.0.0.1",
        "localhost",
        "LocalHost",
        "localhost.",
        "app.localhost",
        "[::1]",
        "0x7f000001",
        "2130706433",
        "127.1",
        "0177.0.0.1",
        "127.0.0.1.",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "0.0.0.0",
        "0",
        "[::]",
    ] {
        let message = refusal(&fetcher, &format!("http://{host}:{port}/")).await;
        assert!(message.starts_with("refused: "), "{host}: {message}");
    }
    assert_eq!(server.connections(), 0);
    assert!(dialer.dialed().is_empty());
}

#[tokio::test]
async fn every_blocked_range_is_refused_as_an_ip_literal() {
    let dialer = Arc::new(RecordingDialer::default());
    let fetcher = fetcher(ScriptedResolver::default(), &dialer);
    for (url, message) in [
        ("http://10.0.0.5/", "refused: 10.0.0.5 is a private address"),
        (
            "http://172.16.0.1/",
            "refused: 172.16.0.1 is a private address",
        ),
        (
            "https://192.168.1.1/",
            "refused: 192.168.1.1 is a private address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            "refused: 169.254.169.254 is a link-local address",
        ),
        (
            "http://[fe80::1]/",
            "refused: fe80::1 is a link-local address",
        ),
        (
            "http://100.64.0.1/",
            "refused: 100.64.0.1 is a carrier-grade NAT (shared) address",
        ),
        (
            "http://[fd00::1]/",
            "refused: fd00::1 is a unique-local address",
        ),
        (
            "http://224.0.0.1/",
            "refused: 224.0.0.1 is a multicast address",
        ),
        (
            "http://[ff02::1]/",
            "refused: ff02::1 is a multicast address",
        ),
        (
            "http://255.255.255.255/",
            "refused: 255.255.255.255 is a broadcast address",
        ),
        (
            "http://192.0.2.1/",
            "refused: 192.0.2.1 is a documentation address",
        ),
        (
            "http://[2001:db8::1]/",
            "refused: 2001:db8::1 is a documentation address",
        ),
        (
            "http://[::ffff:169.254.169.254]/",
            "refused: ::ffff:169.254.169.254 is a link-local address",
        ),
        (
            "http://[::ffff:10.0.0.5]:8080/",
            "refused: ::ffff:10.0.0.5 is a private address",
        ),
    ] {
        assert_eq!(refusal(&fetcher, url).await, message, "{url}");
    }
    assert!(dialer.dialed().is_empty());
}

#[tokio::test]
async fn a_name_that_resolves_to_a_blocked_address_is_refused_before_connecting() {
    let resolver = ScriptedResolver::fixed("internal.test", &["10.0.0.5"])
        .with("loopback.test", &[&["127.0.0.1"]])
        .with("metadata.test", &[&["169.254.169.254"]])
        .with("mapped.test", &[&["::ffff:127.0.0.1"]])
        .with("mixed.test", &[&["93.184.216.34", "127.0.0.1"]]);
    let dialer = Arc::new(RecordingDialer::default());
    let fetcher = fetcher(resolver, &dialer);
    for (url, message) in [
        (
            "http://internal.test/",
            "refused: internal.test resolves to 10.0.0.5, a private address",
        ),
        (
            "http://loopback.test:9001/",
            "refused: loopback.test resolves to 127.0.0.1, a loopback address",
        ),
        (
            "https://metadata.test/",
            "refused: metadata.test resolves to 169.254.169.254, a link-local address",
        ),
        (
            "http://mapped.test/",
            "refused: mapped.test resolves to ::ffff:127.0.0.1, a loopback address",
        ),
        (
            "http://mixed.test/",
            "refused: mixed.test resolves to 127.0.0.1, a loopback address",
        ),
    ] {
        assert_eq!(refusal(&fetcher, url).await, message, "{url}");
    }
    assert!(dialer.dialed().is_empty());
}

/// A server standing for a public host, a resolver that answers 93.184.216.34 for
/// `rebind.test` once and 127.0.0.1 afterwards, and a dialer that lets the public address stand
/// for the local server.
async fn rebinding_setup() -> (
    common::TestServer,
    SocketAddr,
    Arc<ScriptedResolver>,
    Arc<RecordingDialer>,
    Fetcher,
) {
    let server = serve(|path| match path {
        "/start" => html("<title>Public</title><p>hello</p>"),
        _ => Reply::Redirect(302, "/start".into()),
    })
    .await;
    let public: SocketAddr = format!("93.184.216.34:{}", server.addr.port())
        .parse()
        .unwrap();
    let resolver = Arc::new(
        ScriptedResolver::default().with("rebind.test", &[&["93.184.216.34"], &["127.0.0.1"]]),
    );
    let dialer = Arc::new(RecordingDialer {
        map: [(public, server.addr)].into(),
        ..RecordingDialer::default()
    });
    let fetcher = Fetcher::new(FetchConfig::default())
        .unwrap()
        .with_resolver(resolver.clone())
        .with_dialer(dialer.clone());
    (server, public, resolver, dialer, fetcher)
}

#[tokio::test]
async fn the_connected_address_is_the_checked_one_and_the_name_is_resolved_once() {
    let (server, public, resolver, dialer, fetcher) = rebinding_setup().await;
    let url = format!("http://rebind.test:{}/start", server.addr.port());
    let page = fetcher.fetch(&url, None).await.unwrap();
    assert_eq!(page.title.as_deref(), Some("Public"));
    assert_eq!(
        page.remote, public,
        "the connected address is the checked one"
    );
    assert_eq!(
        resolver.lookups_of("rebind.test"),
        1,
        "no second lookup at connect time"
    );
    assert_eq!(dialer.dialed(), vec![public]);
    assert_eq!(server.paths(), vec!["/start"]);
}

#[tokio::test]
async fn a_redirect_to_a_rebound_name_is_checked_again_and_refused() {
    let (server, public, resolver, dialer, fetcher) = rebinding_setup().await;
    let url = format!("http://rebind.test:{}/bounce", server.addr.port());
    let message = refusal(&fetcher, &url).await;
    assert_eq!(
        message,
        "refused: rebind.test resolves to 127.0.0.1, a loopback address"
    );
    assert_eq!(
        resolver.lookups_of("rebind.test"),
        2,
        "each hop resolves and checks anew"
    );
    assert_eq!(dialer.dialed(), vec![public], "127.0.0.1 was never dialed");
    assert_eq!(server.paths(), vec!["/bounce"]);
}

#[tokio::test]
async fn credentials_and_other_schemes_are_refused_with_a_clear_message() {
    let tool = HttpFetch::new(Fetcher::new(FetchConfig::default()).unwrap());
    for (url, message) in [
        (
            "http://user:pw@example.com/",
            "refused: URLs with credentials (user:password@) are not fetched",
        ),
        (
            "https://token@example.com/",
            "refused: URLs with credentials (user:password@) are not fetched",
        ),
        (
            "file:///etc/passwd",
            "refused: only http and https URLs are fetched, not file:",
        ),
        (
            "ftp://example.com/x",
            "refused: only http and https URLs are fetched, not ftp:",
        ),
        (
            "gopher://example.com/",
            "refused: only http and https URLs are fetched, not gopher:",
        ),
    ] {
        let response = handle(
            &tool,
            json!({"name": "http_fetch", "arguments": {"url": url}}),
        )
        .await;
        assert_eq!(response["isError"], true, "{url}");
        assert_eq!(response["content"][0]["text"], message, "{url}");
    }
    let relative = handle(
        &tool,
        json!({"name": "http_fetch", "arguments": {"url": "example.com"}}),
    )
    .await;
    assert_eq!(relative["isError"], true);
    assert!(relative["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("invalid URL"));
    assert!(matches!(
        Fetcher::new(FetchConfig::default())
            .unwrap()
            .fetch("http://user@example.com/", None)
            .await,
        Err(FetchError::Refused(Refusal::Credentials))
    ));
}
