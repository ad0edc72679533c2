//! A fetched page and the text the model reads for it.
//!
//! Every field of that text is bounded: the URL at [`MAX_URL_BYTES`], the content type at
//! [`MAX_CONTENT_TYPE_BYTES`], the title at [`MAX_TITLE_CHARS`] characters, the text at the
//! limit given to [`Page::render`]; so a rendered page is at most that limit plus
//! [`RENDER_OVERHEAD_BYTES`].

use std::net::SocketAddr;

use http::StatusCode;
use url::Url;

pub use crate::html::MAX_TITLE_CHARS;

use crate::content::{self, cap_bytes, cap_chars, Kind};

/// Bytes of a URL shown at most (the final URL; a longer one is cut and ends with `…`).
pub const MAX_URL_BYTES: usize = 2048;

/// Bytes of the `Content-Type` shown at most (a longer one is cut and ends with `…`).
pub const MAX_CONTENT_TYPE_BYTES: usize = 256;

/// Bytes [`Page::render`] adds at most around the text: the header lines at their caps
/// (URL 2048, status line, content type 256, title 300 characters of up to 4 bytes each,
/// redirect count) and both truncation markers, about 3.8 KB, rounded up.
pub const RENDER_OVERHEAD_BYTES: usize = 4096;

/// A fetched page, already converted to text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The URL of the final response, after redirects.
    pub url: Url,
    /// Its status.
    pub status: StatusCode,
    /// Its `Content-Type` header.
    pub content_type: Option<String>,
    /// How its body was read.
    pub kind: Kind,
    /// The HTML title, when there is one.
    pub title: Option<String>,
    /// The text, at most the byte limit asked for.
    pub text: String,
    /// Body bytes read.
    pub body_bytes: usize,
    /// True when the body was longer than the read limit and only its start was read.
    pub body_truncated: bool,
    /// True when the text was cut at the text limit.
    pub text_truncated: bool,
    /// Redirects followed.
    pub redirects: u32,
    /// The address the final response came from.
    pub remote: SocketAddr,
}

impl Page {
    /// The text the model reads for the page: a short header, a blank line, then at most
    /// `max_text` bytes of the text, with a marker wherever something was left out. At most
    /// `max_text` + [`RENDER_OVERHEAD_BYTES`] bytes in all, whatever the fields hold.
    pub fn render(&self, max_text: usize) -> String {
        let mut out = format!(
            "URL: {}\nStatus: {}",
            cap_bytes(self.url.as_str(), MAX_URL_BYTES),
            self.status.as_u16()
        );
        if let Some(reason) = self.status.canonical_reason() {
            out.push(' ');
            out.push_str(reason);
        }
        if let Some(content_type) = &self.content_type {
            let content_type = cap_bytes(content_type, MAX_CONTENT_TYPE_BYTES);
            out.push_str(&format!("\nContent-Type: {content_type}"));
        }
        if let Some(title) = &self.title {
            let title = cap_chars(title, MAX_TITLE_CHARS);
            out.push_str(&format!("\nTitle: {title}"));
        }
        if self.redirects > 0 {
            out.push_str(&format!("\nRedirects: {}", self.redirects));
        }
        let mut text = self.text.clone();
        let cut_here = content::truncate(&mut text, max_text);
        out.push_str("\n\n");
        out.push_str(if text.is_empty() { "[no text]" } else { &text });
        if self.text_truncated || cut_here {
            out.push_str(&format!(
                "\n\n[truncated: showing the first {} bytes of text]",
                text.len()
            ));
        }
        if self.body_truncated {
            out.push_str(&format!(
                "\n\n[truncated: only the first {} bytes of the response were read]",
                self.body_bytes
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_capped_in_the_rendering() {
        let long_url = format!("https://example.com/{}", "p".repeat(100_000));
        let page = Page {
            url: Url::parse(&long_url).unwrap(),
            status: StatusCode::NETWORK_AUTHENTICATION_REQUIRED,
            content_type: Some(format!("text/html; {}", "x".repeat(100_000))),
            kind: Kind::Html,
            title: Some("€".repeat(100_000)),
            text: "t".repeat(100_000),
            body_bytes: usize::MAX,
            body_truncated: true,
            text_truncated: true,
            redirects: u32::MAX,
            remote: "93.184.216.34:443".parse().unwrap(),
        };
        for max_text in [0, 10, 1000, 100_000] {
            let rendered = page.render(max_text);
            assert!(
                rendered.len() <= max_text + RENDER_OVERHEAD_BYTES,
                "{max_text}: {} bytes",
                rendered.len()
            );
        }
        let rendered = page.render(1000);
        let line = |prefix: &str| {
            rendered
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap()
                .to_owned()
        };
        let url = line("URL: ");
        assert!(url.len() <= MAX_URL_BYTES && url.ends_with('…'), "{url}");
        assert!(url.starts_with("https://example.com/ppp"));
        let content_type = line("Content-Type: ");
        assert!(content_type.len() <= MAX_CONTENT_TYPE_BYTES && content_type.ends_with('…'));
        let title = line("Title: ");
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.ends_with('…'));
    }
}
