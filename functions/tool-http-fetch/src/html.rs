//! HTML to readable text, without a browser engine: a small tokenizer that drops markup,
//! scripts, styles and comments, turns block elements into line breaks, list items into
//! `- ` lines, headings into `#` lines and table cells into `|`-separated rows, keeps `<pre>`
//! as written, decodes character references and collapses whitespace.

use crate::entities;

/// The readable content of an HTML document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HtmlText {
    /// The `<title>`, whitespace collapsed.
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
        if !tag.closing && (name == "title" || HIDDEN.contains(&name)) {
            let (content, after) = raw_content(rest, name);
            if name == "title" && title.is_none() {
                let decoded = entities::decode(content);
                let collapsed = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
                title = Some(collapsed).filter(|t| !t.is_empty());
            }
            rest = after;
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

/// The raw content of element `name` up to its end tag, and what follows the end tag.
fn raw_content<'a>(s: &'a str, name: &str) -> (&'a str, &'a str) {
    let needle = format!("</{name}");
    let found = s
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()));
    match found {
        None => (s, ""),
        Some(start) => {
            let after = &s[start..];
            let close = after.find('>').map_or(after.len(), |end| end + 1);
            (&s[..start], &after[close..])
        }
    }
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
}
