//! Fetching from a local server with the test setting that allows loopback: conversion,
//! redirects, and the byte, time and redirect limits.

mod common;

use std::{sync::Arc, time::Duration};

use common::{html, loopback_config, serve, RecordingDialer, Reply};
use serde_json::json;
use shared::tool_contract::handle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tool_http_fetch::{
    content::Kind,
    page::{MAX_CONTENT_TYPE_BYTES, MAX_TITLE_CHARS, MAX_URL_BYTES, RENDER_OVERHEAD_BYTES},
    FetchConfig, FetchError, Fetcher, HttpFetch, MAX_ERROR_BYTES,
};

const PAGE: &str = "<!doctype html><html><head><title>Test &amp; Page</title>\
    <script>alert('x')</script><style>h1{}</style></head><body><h1>Welcome</h1>\
    <p>First paragraph with <a href=\"/x\">a link</a>.</p><ul><li>one</li><li>two</li></ul></body></html>";

fn fetcher(config: FetchConfig) -> Fetcher {
    Fetcher::new(config).unwrap()
}

#[tokio::test]
async fn html_comes_back_as_text_with_title_url_status_and_content_type() {
    let server = serve(|_| html(PAGE)).await;
    let tool = HttpFetch::new(fetcher(loopback_config()));
    let response = handle(
        &tool,
        json!({"name": "http_fetch", "arguments": {"url": server.url("/page?q=1#frag")}}),
    )
    .await;
    assert_eq!(response["isError"], false);
    let expected = format!(
        "URL: {}\nStatus: 200 OK\nContent-Type: text/html; charset=utf-8\nTitle: Test & Page\n\n\
         # Welcome\n\nFirst paragraph with a link.\n\n- one\n- two",
        server.url("/page?q=1#frag")
    );
    assert_eq!(response["content"][0]["text"], expected);
    assert_eq!(
        server.paths(),
        vec!["/page?q=1"],
        "the fragment is not sent"
    );
    assert_eq!(
        server.hosts.lock().unwrap().clone(),
        vec![server.addr.to_string()]
    );
}

#[tokio::test]
async fn the_list_request_describes_the_input_from_its_doc_comments() {
    let tool = HttpFetch::new(fetcher(FetchConfig::default()));
    let listed = handle(&tool, json!({"list": true})).await;
    let spec = &listed["tools"][0];
    assert_eq!(spec["name"], "http_fetch");
    assert_eq!(spec["inputSchema"]["required"], json!(["url"]));
    let url_doc = spec["inputSchema"]["properties"]["url"]["description"]
        .as_str()
        .unwrap();
    assert!(url_doc.contains("http://"), "{url_doc}");
    assert!(spec["inputSchema"]["properties"]["max_bytes"]["description"].is_string());
}

#[tokio::test]
async fn redirects_are_followed_to_the_final_url() {
    let server = serve(|path| match path {
        "/a" => Reply::Redirect(302, "/b".into()),
        "/b" => Reply::Redirect(301, "c?x=1".into()),
        _ => Reply::Body(200, "text/plain", "final".into()),
    })
    .await;
    let page = fetcher(loopback_config())
        .fetch(&server.url("/a"), None)
        .await
        .unwrap();
    assert_eq!(page.url.as_str(), server.url("/c?x=1"));
    assert_eq!(
        (page.redirects, page.text.as_str(), page.kind),
        (2, "final", Kind::Text)
    );
    assert_eq!(server.paths(), vec!["/a", "/b", "/c?x=1"]);
    assert!(page.render(usize::MAX).contains("\nRedirects: 2\n"));
}

#[tokio::test]
async fn a_redirect_chain_longer_than_the_limit_is_refused() {
    let server = serve(|path| {
        let n: u32 = path.trim_start_matches("/r/").parse().unwrap_or(0);
        Reply::Redirect(307, format!("/r/{}", n + 1))
    })
    .await;
    let error = fetcher(loopback_config())
        .fetch(&server.url("/r/0"), None)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "refused: more than 5 redirects");
    assert_eq!(
        server.paths().len(),
        6,
        "the first request and five redirects"
    );

    let none = FetchConfig {
        max_redirects: 0,
        ..loopback_config()
    };
    let error = fetcher(none)
        .fetch(&server.url("/r/0"), None)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "refused: more than 0 redirects");
}

#[tokio::test]
async fn a_redirect_to_the_metadata_address_is_refused_and_never_contacted() {
    let server =
        serve(|_| Reply::Redirect(302, "http://169.254.169.254/latest/meta-data/".into())).await;
    let dialer = Arc::new(RecordingDialer::default());
    let fetcher = fetcher(loopback_config()).with_dialer(dialer.clone());
    let error = fetcher.fetch(&server.url("/"), None).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "refused: 169.254.169.254 is a link-local address"
    );
    assert_eq!(
        dialer.dialed(),
        vec![server.addr],
        "only the test server was dialed"
    );
}

#[tokio::test]
async fn redirects_to_other_schemes_or_private_addresses_are_refused() {
    for (location, message) in [
        (
            "file:///etc/passwd",
            "refused: only http and https URLs are fetched, not file:",
        ),
        (
            "ftp://example.com/pub",
            "refused: only http and https URLs are fetched, not ftp:",
        ),
        (
            "http://admin:pw@example.com/",
            "refused: URLs with credentials (user:password@) are not fetched",
        ),
        ("http://10.0.0.5/", "refused: 10.0.0.5 is a private address"),
        (
            "http://[fd00::5]/",
            "refused: fd00::5 is a unique-local address",
        ),
    ] {
        let server = serve(move |_| Reply::Redirect(301, location.into())).await;
        let error = fetcher(loopback_config())
            .fetch(&server.url("/"), None)
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), message, "{location}");
    }
}

#[tokio::test]
async fn a_body_larger_than_the_read_cap_is_truncated_with_a_marker() {
    let server = serve(|_| Reply::Body(200, "text/plain", "x".repeat(5000))).await;
    let config = FetchConfig {
        max_body_bytes: 1000,
        ..loopback_config()
    };
    let page = fetcher(config).fetch(&server.url("/"), None).await.unwrap();
    assert!(page.body_truncated);
    assert_eq!((page.body_bytes, page.text.len()), (1000, 1000));
    assert!(page
        .render(usize::MAX)
        .ends_with("\n\n[truncated: only the first 1000 bytes of the response were read]"));
}

#[tokio::test]
async fn text_beyond_max_bytes_is_cut_with_a_marker() {
    let server = serve(|_| html(&format!("<p>{}</p>", "word ".repeat(1000)))).await;
    let tool = HttpFetch::new(fetcher(loopback_config()));
    let arguments = json!({"url": server.url("/"), "max_bytes": 100});
    let response = handle(&tool, json!({"name": "http_fetch", "arguments": arguments})).await;
    let text = response["content"][0]["text"].as_str().unwrap();
    assert!(
        text.ends_with("\n\n[truncated: showing the first 100 bytes of text]"),
        "{text}"
    );
    let config = FetchConfig {
        max_text_bytes: 50,
        ..loopback_config()
    };
    let page = fetcher(config)
        .fetch(&server.url("/"), Some(100_000))
        .await
        .unwrap();
    assert!(
        page.text_truncated && page.text.len() <= 50,
        "the configured limit is a ceiling"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_trips_the_time_cap() {
    let server = serve(|_| Reply::Hang).await;
    let config = FetchConfig {
        timeout: Duration::from_millis(300),
        ..loopback_config()
    };
    let started = std::time::Instant::now();
    let error = fetcher(config)
        .fetch(&server.url("/"), None)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Timeout(_)));
    assert_eq!(error.to_string(), "timed out after 300 ms");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_body_that_trickles_forever_trips_the_time_cap() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).await;
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
        let _ = stream.write_all(head.as_bytes()).await;
        while stream.write_all(b"1\r\nx\r\n").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let config = FetchConfig {
        timeout: Duration::from_millis(400),
        ..loopback_config()
    };
    let error = fetcher(config)
        .fetch(&format!("http://{addr}/"), None)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Timeout(_)), "{error}");
}

#[tokio::test]
async fn error_statuses_are_error_results_with_only_a_short_excerpt() {
    let body = format!("<title>Missing</title><p>{}</p>", "not here ".repeat(500));
    let server = serve(move |_| Reply::Body(404, "text/html", body.clone())).await;
    let tool = HttpFetch::new(fetcher(loopback_config()));
    let response = handle(
        &tool,
        json!({"name": "http_fetch", "arguments": {"url": server.url("/gone")}}),
    )
    .await;
    assert_eq!(response["isError"], true);
    let text = response["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("Status: 404 Not Found\n") && text.contains("Title: Missing\n"),
        "{text}"
    );
    assert!(
        text.ends_with("[truncated: showing the first 1000 bytes of text]"),
        "{text}"
    );
    assert!(text.len() < 1300, "{}", text.len());
}

#[tokio::test]
async fn binary_content_is_described_not_returned() {
    let server = serve(|_| Reply::Body(200, "image/png", "\u{89}PNG\r\n".into())).await;
    let page = fetcher(loopback_config())
        .fetch(&server.url("/logo.png"), None)
        .await
        .unwrap();
    assert_eq!(page.kind, Kind::Binary);
    assert_eq!(
        page.text,
        "[binary content (image/png), 7 bytes read, not shown]"
    );
}

#[tokio::test]
async fn a_compressed_body_sent_despite_identity_is_described_not_garbled() {
    let server = serve(|_| Reply::Encoded("gzip", "\u{1f}\u{8b}...".into())).await;
    let page = fetcher(loopback_config())
        .fetch(&server.url("/"), None)
        .await
        .unwrap();
    assert_eq!(page.kind, Kind::Binary);
    assert_eq!(page.text, "[gzip-encoded content, 6 bytes read, not shown]");
}

#[tokio::test]
async fn a_port_nobody_listens_on_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = fetcher(loopback_config())
        .fetch(&format!("http://{addr}/"), None)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("could not connect to 127.0.0.1: "),
        "{error}"
    );
}

/// The value of the answer's header line starting with `prefix`.
fn header_line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {:?}", &text[..200.min(text.len())]))
}

#[tokio::test]
async fn an_unclosed_title_before_a_megabyte_gives_a_capped_title_and_capped_text() {
    let page = format!(
        "<html><head><title>{}",
        "Endless title words ".repeat(50_000)
    );
    assert!(page.len() > 1_000_000);
    let server = serve(move |_| html(&page)).await;
    let tool = HttpFetch::new(fetcher(loopback_config()));
    let response = handle(
        &tool,
        json!({"name": "http_fetch", "arguments": {"url": server.url("/")}}),
    )
    .await;
    assert_eq!(response["isError"], false);
    let text = response["content"][0]["text"].as_str().unwrap();
    let title = header_line(text, "Title: ");
    assert!(title.chars().count() <= MAX_TITLE_CHARS, "{title}");
    assert!(
        title.starts_with("Endless title words Endless") && title.ends_with("title…"),
        "cut after a word: {title}"
    );
    let (_, body) = text.split_once("\n\n").unwrap();
    // The text goes on where the title stopped: nothing is swallowed.
    assert!(
        body.starts_with("words Endless title words"),
        "{}",
        &body[..100]
    );
    assert!(
        text.contains("\n\n[truncated: showing the first 100000 bytes of text]"),
        "{}",
        &text[text.len() - 200..]
    );
    assert!(
        text.len() <= 100_000 + RENDER_OVERHEAD_BYTES,
        "{}",
        text.len()
    );
}

#[tokio::test]
async fn the_answer_for_a_worst_case_page_is_within_the_text_cap_plus_the_overhead() {
    let final_path = format!("/final/{}", "p".repeat(5000));
    let location = final_path.clone();
    let server = serve(move |path| {
        if path == "/start" {
            Reply::Redirect(302, location.clone())
        } else {
            Reply::Typed(
                format!("text/html; charset=utf-8; x={}", "y".repeat(5000)),
                format!(
                    "<title>{}\n<p>{}</p>",
                    "€".repeat(400_000),
                    "word ".repeat(400_000)
                ),
            )
        }
    })
    .await;
    let config = FetchConfig {
        max_text_bytes: 10_000,
        ..loopback_config()
    };
    let tool = HttpFetch::new(fetcher(config));
    let response = handle(
        &tool,
        json!({"name": "http_fetch", "arguments": {"url": server.url("/start")}}),
    )
    .await;
    assert_eq!(response["isError"], false);
    assert_eq!(server.paths(), vec!["/start".to_string(), final_path]);
    let text = response["content"][0]["text"].as_str().unwrap();
    assert!(
        text.len() <= 10_000 + RENDER_OVERHEAD_BYTES,
        "{}",
        text.len()
    );
    let serialized = serde_json::to_string(&response).unwrap();
    assert!(
        serialized.len() <= 10_000 + RENDER_OVERHEAD_BYTES + 512,
        "{}",
        serialized.len()
    );

    let url = header_line(text, "URL: ");
    assert!(url.len() <= MAX_URL_BYTES && url.ends_with('…'), "{url}");
    assert!(url.starts_with(&server.url("/final/ppp")), "{url}");
    let content_type = header_line(text, "Content-Type: ");
    assert!(
        content_type.len() <= MAX_CONTENT_TYPE_BYTES
            && content_type.starts_with("text/html; charset=utf-8; x=yyy")
            && content_type.ends_with('…'),
        "{content_type}"
    );
    let title = header_line(text, "Title: ");
    assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
    assert!(title.starts_with("€€€") && title.ends_with('…'), "{title}");
    assert_eq!(header_line(text, "Redirects: "), "1");
    assert!(
        text.contains("\n\n[truncated: showing the first "),
        "text cap marker"
    );
    assert!(
        text.ends_with("\n\n[truncated: only the first 1048576 bytes of the response were read]"),
        "body cap marker"
    );
}

#[tokio::test]
async fn a_failure_message_is_capped_even_for_a_huge_url() {
    let tool = HttpFetch::new(fetcher(loopback_config()));
    let url = format!("http://exa mple.com/{}", "q".repeat(200_000));
    let response = handle(
        &tool,
        json!({"name": "http_fetch", "arguments": {"url": url}}),
    )
    .await;
    assert_eq!(response["isError"], true);
    let text = response["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("invalid URL \"http://exa mple.com/qqq"),
        "{text}"
    );
    assert!(text.len() <= MAX_ERROR_BYTES, "{}", text.len());
}
