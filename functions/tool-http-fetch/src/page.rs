//! A fetched page and the text the model reads for it.

use std::net::SocketAddr;

use http::StatusCode;
use url::Url;

use crate::content::{self, Kind};

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
    /// `max_text` bytes of the text, with a marker wherever something was left out.
    pub fn render(&self, max_text: usize) -> String {
        let mut out = format!("URL: {}\nStatus: {}", self.url, self.status.as_u16());
        if let Some(reason) = self.status.canonical_reason() {
            out.push(' ');
            out.push_str(reason);
        }
        if let Some(content_type) = &self.content_type {
            out.push_str(&format!("\nContent-Type: {content_type}"));
        }
        if let Some(title) = &self.title {
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
