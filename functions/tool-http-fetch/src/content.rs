//! Turning a response body into text: picking the character set, converting HTML, leaving
//! other text as it is, describing binary content instead of returning it, and capping the
//! text at a byte limit on a character boundary.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8};

use crate::html;

/// What a body holds, as far as the reader is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// HTML, converted to text.
    Html,
    /// Other text (plain, JSON, XML, CSS, JavaScript, ...), returned as is.
    Text,
    /// Anything else: described, not returned.
    Binary,
}

/// The readable form of a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readable {
    /// How the body was read.
    pub kind: Kind,
    /// The HTML title, when there is one.
    pub title: Option<String>,
    /// The text (for binary content, a one-line description).
    pub text: String,
}

/// The readable form of `body`, served with the `Content-Type` header `content_type`.
pub fn readable(content_type: Option<&str>, body: &[u8]) -> Readable {
    let essence = content_type
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase());
    let kind = match essence.as_deref() {
        Some("text/html" | "application/xhtml+xml") => Kind::Html,
        Some(e) if is_textual(e) => Kind::Text,
        Some(e) if !e.is_empty() && e != "application/octet-stream" => Kind::Binary,
        _ => sniff(body),
    };
    if kind == Kind::Binary {
        let described = essence
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "unknown type".into());
        return Readable {
            kind,
            title: None,
            text: format!(
                "[binary content ({described}), {} bytes read, not shown]",
                body.len()
            ),
        };
    }
    let label = content_type
        .and_then(charset_param)
        .or_else(|| (kind == Kind::Html).then(|| meta_charset(body)).flatten());
    let encoding = label
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .unwrap_or(UTF_8);
    let (decoded, _, _) = encoding.decode(body);
    match kind {
        Kind::Html => {
            let page = html::to_text(&decoded);
            Readable {
                kind,
                title: page.title,
                text: page.text,
            }
        }
        _ => Readable {
            kind,
            title: None,
            text: decoded.replace("\r\n", "\n").trim().to_owned(),
        },
    }
}

fn is_textual(essence: &str) -> bool {
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/ecmascript"
                | "application/x-javascript"
                | "application/x-ndjson"
                | "application/yaml"
                | "application/x-yaml"
                | "application/toml"
                | "application/x-www-form-urlencoded"
        )
}

/// The kind of an untyped body, from its first bytes.
fn sniff(body: &[u8]) -> Kind {
    let head = &body[..body.len().min(1024)];
    if head.contains(&0) {
        return Kind::Binary;
    }
    let start = String::from_utf8_lossy(head)
        .trim_start()
        .to_ascii_lowercase();
    if start.starts_with("<!doctype html") || start.starts_with("<html") || start.contains("<body")
    {
        Kind::Html
    } else {
        match std::str::from_utf8(head) {
            // A character cut at the 1024-byte mark is still text.
            Ok(_) => Kind::Text,
            Err(error) if error.error_len().is_none() => Kind::Text,
            Err(_) => Kind::Binary,
        }
    }
}

/// The `charset` parameter of a `Content-Type` value.
fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).to_owned())
    })
}

/// The charset declared by a `<meta>` tag in the first 1024 bytes of an HTML body.
fn meta_charset(body: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let value = head[at..].trim_start_matches(['"', '\'']);
    let end = value
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.')))
        .unwrap_or(value.len());
    Some(value[..end].to_owned()).filter(|label| !label.is_empty())
}

/// The mark ending a field that was cut.
pub const ELLIPSIS: char = '…';

/// `text` if it has at most `max_chars` characters; otherwise its first `max_chars - 1`
/// characters and [`ELLIPSIS`], so `max_chars` in all.
pub fn cap_chars(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep = max_chars.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            let mut out = String::with_capacity(end + ELLIPSIS.len_utf8());
            out.push_str(&text[..end]);
            if max_chars > 0 {
                out.push(ELLIPSIS);
            }
            Cow::Owned(out)
        }
    }
}

/// `text` if it has at most `max_bytes` bytes; otherwise its start, cut on a character
/// boundary, and [`ELLIPSIS`], `max_bytes` bytes at most in all.
pub fn cap_bytes(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    match max_bytes.checked_sub(ELLIPSIS.len_utf8()) {
        Some(room) => {
            truncate(&mut out, room);
            out.push(ELLIPSIS);
        }
        None => {
            truncate(&mut out, max_bytes);
        }
    }
    Cow::Owned(out)
}

/// Shortens `text` to at most `limit` bytes, on a character boundary. True when it was cut.
pub fn truncate(text: &mut String, limit: usize) -> bool {
    if text.len() <= limit {
        return false;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_converted_and_its_title_kept() {
        let page = readable(
            Some("text/html; charset=utf-8"),
            b"<title>T</title><p>Hello</p>",
        );
        assert_eq!(
            (page.kind, page.title.as_deref(), page.text.as_str()),
            (Kind::Html, Some("T"), "Hello")
        );
    }

    #[test]
    fn the_declared_charset_is_used_from_the_header_or_the_meta_tag() {
        let latin1 = b"<p>caf\xe9</p>";
        assert_eq!(
            readable(Some("text/html; charset=ISO-8859-1"), latin1).text,
            "café"
        );
        let meta = b"<meta charset=\"windows-1252\"><p>caf\xe9 \x93q\x94</p>";
        assert_eq!(readable(Some("text/html"), meta).text, "café “q”");
        assert_eq!(
            readable(Some("text/plain"), "plain ✓".as_bytes()).text,
            "plain ✓"
        );
    }

    #[test]
    fn other_text_is_returned_as_is_and_binary_is_described() {
        let json = readable(Some("application/json"), br#"{"a": "<b>"}"#);
        assert_eq!(
            (json.kind, json.text.as_str()),
            (Kind::Text, r#"{"a": "<b>"}"#)
        );
        let png = readable(Some("image/png"), b"\x89PNG\r\n\x1a\n\0\0");
        assert_eq!(png.kind, Kind::Binary);
        assert_eq!(
            png.text,
            "[binary content (image/png), 10 bytes read, not shown]"
        );
        assert_eq!(readable(None, b"\0\x01\x02").kind, Kind::Binary);
        assert_eq!(
            readable(None, b"  <!DOCTYPE html><p>x</p>").kind,
            Kind::Html
        );
        assert_eq!(
            readable(Some("application/octet-stream"), b"just text").kind,
            Kind::Text
        );
    }

    #[test]
    fn caps_cut_on_characters_and_end_with_an_ellipsis() {
        assert_eq!(cap_chars("short", 5), "short");
        assert_eq!(cap_chars("héllo wörld", 5), "héll…");
        assert_eq!(cap_chars("héllo wörld", 5).chars().count(), 5);
        assert_eq!(cap_chars("abc", 0), "");
        assert_eq!(cap_bytes("abc", 3), "abc");
        // 'é' is 2 bytes and '…' 3: 7 bytes leave room for "aé" + "…" (6).
        assert_eq!(cap_bytes("aéééé", 7), "aé…");
        assert!(cap_bytes(&"€".repeat(1000), 2048).len() <= 2048);
        assert_eq!(cap_bytes("abcdef", 2), "ab");
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let mut text = String::from("aé€");
        assert!(truncate(&mut text, 4));
        assert_eq!(text, "aé");
        let mut short = String::from("ok");
        assert!(!truncate(&mut short, 2));
    }
}
