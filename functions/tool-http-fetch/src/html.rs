//! HTML to readable text, without a browser engine: a small tokenizer that drops markup,
//! scripts, styles and comments, turns block elements into line breaks, list items into
//! `- ` lines, headings into `#` lines and table cells into `|`-separated rows, keeps `<pre>`
//! as written, decodes character references and collapses whitespace.
//!
//! The title is at most [`MAX_TITLE_CHARS`] characters. A `<title>` that is never closed does
//! not swallow the page (as it would in a browser, where the title runs to the end of the
//! document): its title is the text after it up to the first tag, line break or
//! [`MAX_TITLE_CHARS`] characters, and everything after that is read as the page's text.

use crate::{content, entities};

/// Characters of title kept at most; a longer title is cut and ends with `…`.
pub const MAX_TITLE_CHARS: usize = 300;

/// The readable content of an HTML document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HtmlText {
    /// The `<title>`, whitespace collapsed, at most [`MAX_TITLE_CHARS`] characters.
    pub title: Option<String>,
    /// The visible text.
    pub text: String,
}

/// Elements whose content is never shown as text.
const HIDDEN: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
    "textarea", "select", "noembed", "noframes", "xmp",
];

/// Elements that end a line.
const LINE: &[&str] = &[
    "div",
    "li",
    "tr",
    "dt",
    "dd",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "main",
    "form",
    "fieldset",
    "figure",
    "figcaption",
    "address",
    "details",
    "summary",
    "caption",
    "legend",
    "center",
    "body",
    "html",
];

/// Elements that end a paragraph (a blank line).
const PARAGRAPH: &[&str] = &["p", "blockquote", "pre", "table", "ul", "ol", "dl", "hr"];

/// Converts `html` to its title and readable text.
pub fn to_text(html: &str) -> HtmlText {
    let mut title = None;
    // Once a `<title>` has no end tag after it, no later one has: not searched again.
    let mut title_unclosed = false;
    let mut out = Writer::default();
    let mut pre = 0usize;
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            out.text(rest, pre > 0);
            break;
        };
        out.text(&rest[..lt], pre > 0);
        rest = &rest[lt..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let Some(tag) = Tag::parse(rest) else {
            out.text("<", pre > 0);
            rest = &rest[1..];
            continue;
        };
        rest = &rest[tag.len..];
        let name = tag.name.as_str();
        if !tag.closing && name == "title" {
            let closed = if title_unclosed {
                None
            } else {
                closed_content(rest, name)
            };
            let (content, after, cut) = closed.map_or_else(
                || {
                    title_unclosed = true;
                    unclosed_title(rest)
                },
                |(content, after)| (content, after, false),
            );
            if title.is_none() {
                title = title_text(content, cut);
            }
            rest = after;
            continue;
        }
        if !tag.closing && HIDDEN.contains(&name) {
            rest = closed_content(rest, name).map_or("", |(_, after)| after);
            continue;
        }
        if PARAGRAPH.contains(&name) {
            out.block(2);
        } else if LINE.contains(&name) {
            out.block(1);
        }
        match name {
            "br" => out.line_break(),
            "pre" if tag.closing => pre = pre.saturating_sub(1),
            "pre" => pre += 1,
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                out.block(2);
                if !tag.closing {
                    let level = usize::from(name.as_bytes()[1] - b'0');
                    out.prefix(&"#".repeat(level));
                }
            }
            "li" if !tag.closing => {
                out.block(1);
                out.prefix("-");
            }
            "tr" => {
                out.block(1);
                out.cells = 0;
            }
            "td" | "th" if !tag.closing => {
                if out.cells > 0 {
                    out.prefix(" |");
                }
                out.cells += 1;
            }
            _ => {}
        }
    }
    HtmlText {
        title,
        text: out.finish(),
    }
}

/// A start or end tag, or a declaration / processing instruction (`name` `!`).
struct Tag {
    name: String,
    closing: bool,
    len: usize,
}

impl Tag {
    /// The tag at the start of `s` (which starts with `<`), or `None` when the `<` is text.
    fn parse(s: &str) -> Option<Tag> {
        let bytes = s.as_bytes();
        let (closing, start) = match bytes.get(1) {
            Some(b'/') => (true, 2),
            Some(b'!' | b'?') => {
                let len = s.find('>').map_or(s.len(), |end| end + 1);
                return Some(Tag {
                    name: "!".into(),
                    closing: false,
                    len,
                });
            }
            _ => (false, 1),
        };
        if !bytes.get(start).is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        let name_len = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'_'))
            .count();
        let name = s[start..start + name_len].to_ascii_lowercase();
        // Find the closing `>` outside quoted attribute values.
        let mut quote = None;
        let mut previous = b' ';
        let mut end = s.len();
        for (i, &b) in bytes.iter().enumerate().skip(start + name_len) {
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if (b == b'"' || b == b'\'') && previous == b'=' => quote = Some(b),
                None if b == b'>' => {
                    end = i + 1;
                    break;
                }
                None => {}
            }
            if !b.is_ascii_whitespace() {
                previous = b;
            }
        }
        Some(Tag {
            name,
            closing,
            len: end,
        })
    }
}

/// The raw content of element `name` up to its end tag, and what follows the end tag;
/// `None` when there is no end tag.
fn closed_content<'a>(s: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    let needle = format!("</{name}");
    let start = s
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))?;
    let after = &s[start..];
    let close = after.find('>').map_or(after.len(), |end| end + 1);
    Some((&s[..start], &after[close..]))
}

/// The content of a `<title>` that is never closed, what follows it, and whether it was cut:
/// after leading whitespace, up to the first `<` or line break within [`MAX_TITLE_CHARS`]
/// characters; past that, up to the last whitespace before the cap (or at the cap, less one
/// character for the ellipsis, when there is none).
fn unclosed_title(s: &str) -> (&str, &str, bool) {
    let start = s.len() - s.trim_start().len();
    let run = &s[start..];
    for (count, (i, c)) in run.char_indices().enumerate() {
        if c == '<' || c == '\n' || c == '\r' {
            return (&s[..start + i], &s[start + i..], false);
        }
        if count == MAX_TITLE_CHARS {
            let window_end = run
                .char_indices()
                .nth(MAX_TITLE_CHARS - 1)
                .map_or(i, |(j, _)| j);
            let window = &run[..window_end];
            let end = window
                .rfind(char::is_whitespace)
                .filter(|&j| j > 0)
                .unwrap_or(window_end);
            return (&s[..start + end], &s[start + end..], true);
        }
    }
    (s, "", false)
}

/// A title from the raw content of `<title>`: decoded, whitespace collapsed, capped at
/// [`MAX_TITLE_CHARS`], ending with `…` when it was `cut` before; `None` when that leaves
/// nothing.
fn title_text(raw: &str, cut: bool) -> Option<String> {
    let decoded = entities::decode(raw);
    let mut collapsed = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    if cut && !collapsed.is_empty() {
        collapsed.push(content::ELLIPSIS);
    }
    let capped = content::cap_chars(&collapsed, MAX_TITLE_CHARS).into_owned();
    Some(capped).filter(|t| !t.is_empty())
}

/// Accumulates text, inserting line breaks and spaces only between visible words.
#[derive(Default)]
struct Writer {
    out: String,
    newlines: usize,
    space: bool,
    cells: usize,
}

impl Writer {
    fn block(&mut self, lines: usize) {
        self.newlines = self.newlines.max(lines);
    }

    fn line_break(&mut self) {
        self.newlines = (self.newlines + 1).min(2);
    }

    fn flush(&mut self) {
        if self.out.is_empty() {
            // Nothing before: leading breaks and spaces are dropped.
        } else if self.newlines > 0 {
            let trimmed = self.out.trim_end_matches([' ', '\t']).len();
            self.out.truncate(trimmed);
            let existing = self.out.len() - self.out.trim_end_matches('\n').len();
            for _ in existing..self.newlines {
                self.out.push('\n');
            }
        } else if self.space {
            self.out.push(' ');
        }
        self.newlines = 0;
        self.space = false;
    }

    /// Starts a list item, heading or cell marker; the next word follows after one space.
    fn prefix(&mut self, prefix: &str) {
        self.space = false;
        self.flush();
        self.out.push_str(prefix);
        self.space = true;
    }

    fn text(&mut self, raw: &str, pre: bool) {
        if raw.is_empty() {
            return;
        }
        let decoded = entities::decode(raw);
        if pre {
            self.flush();
            self.out
                .push_str(&decoded.replace("\r\n", "\n").replace('\u{a0}', " "));
            return;
        }
        for c in decoded.chars() {
            if c.is_whitespace() {
                self.space = true;
            } else {
                self.flush();
                self.out.push(c);
            }
        }
    }

    fn finish(self) -> String {
        self.out.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_scripts_styles_and_comments_are_dropped() {
        let page = to_text(
            "<!DOCTYPE html><html><head><title> Hello &amp;\n World </title>\
             <style>p { color: red }</style><script>var x = '</p>';</script></head>\
             <body><!-- secret --><p>First <b>bold</b> para.</p><p>Second</p>\
             <noscript>enable js</noscript><svg><title>icon</title></svg></body></html>",
        );
        assert_eq!(page.title.as_deref(), Some("Hello & World"));
        assert_eq!(page.text, "First bold para.\n\nSecond");
    }

    #[test]
    fn structure_becomes_lines_lists_headings_and_rows() {
        let page = to_text(
            "<h1>Title</h1><h2>Sub</h2><ul>\n  <li>one</li>\n  <li> two </li>\n</ul>\
             line<br>break<div>div</div><table>\n<tr><th>a</th> <th> b</th></tr>\
             <tr><td>1</td><td>2</td></tr></table>",
        );
        assert_eq!(
            page.text,
            "# Title\n\n## Sub\n\n- one\n- two\n\nline\nbreak\ndiv\n\na | b\n1 | 2"
        );
    }

    #[test]
    fn whitespace_collapses_except_in_pre() {
        let page = to_text("<p>  a \n\t b  </p><pre>  x\n    y</pre><p>c&nbsp;&nbsp;d</p>");
        assert_eq!(page.text, "a b\n\n  x\n    y\n\nc d");
    }

    #[test]
    fn stray_angle_brackets_and_quoted_attributes_do_not_confuse_the_tokenizer() {
        let page = to_text("<p title=\"a > b\" data-x='<p>'>1 < 2 and 3 > 2</p><a href=x>link</a>");
        assert_eq!(page.text, "1 < 2 and 3 > 2\n\nlink");
        assert_eq!(to_text("unterminated <b").text, "unterminated");
        assert_eq!(to_text("<script>never closed").text, "");
        assert_eq!(to_text("").title, None);
    }

    #[test]
    fn a_long_title_is_capped_with_an_ellipsis() {
        let page = to_text(&format!(
            "<title>{}</title><p>body</p>",
            "long title ".repeat(100_000)
        ));
        let title = page.title.unwrap();
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.starts_with("long title long title"), "{title}");
        assert!(title.ends_with('…'), "{title}");
        assert_eq!(page.text, "body");
    }

    #[test]
    fn an_unclosed_title_ends_at_a_tag_a_line_break_or_the_cap() {
        let page = to_text("<head><title> My &amp; page <meta x><body><p>Text</p>");
        assert_eq!(
            (page.title.as_deref(), page.text.as_str()),
            (Some("My & page"), "Text")
        );
        let page = to_text("<title>\n  First line\nsecond line<p>more</p>");
        assert_eq!(
            (page.title.as_deref(), page.text.as_str()),
            (Some("First line"), "second line\n\nmore")
        );
        // One long line: the title takes its first words, the rest is text.
        let page = to_text(&format!("<title>{}", "word ".repeat(200_000)));
        let title = page.title.unwrap();
        assert!(
            title.starts_with("word word ") && title.ends_with("word…"),
            "{title}"
        );
        assert!(title.chars().count() <= MAX_TITLE_CHARS);
        assert_eq!(title.len(), 59 * 5 - 1 + '…'.len_utf8(), "59 words");
        assert_eq!(page.text.len(), (200_000 - 59) * 5 - 1);
        // No space at all: cut at the cap.
        let page = to_text(&format!("<title>{}", "x".repeat(1_000_000)));
        let title = page.title.unwrap();
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.ends_with('…'));
        assert_eq!(page.text.len(), 1_000_000 - (MAX_TITLE_CHARS - 1));
        // Many unclosed titles: the first one counts, none swallows the page.
        let page = to_text(&"<title>t<p>p</p>".repeat(50_000));
        assert_eq!(page.title.as_deref(), Some("t"));
        assert!(page.text.starts_with("p\n\np\n\np"), "{}", &page.text[..20]);
        assert_eq!(page.text.len(), 50_000 * 3 - 2);
    }
}
