//! Reading a user's text: `[[standin:...]]` triggers, arithmetic expressions,
//! IANA time zones, time/date words and search queries.
//!
//! Everything here is plain string scanning (no regex), deterministic, and
//! works on any UTF-8 input: only ASCII is ever matched, so byte offsets taken
//! from an ASCII-lowercased copy are valid in the original text.

use crate::fault::ErrorKind;

/// Test triggers found in a user text; see the crate docs for their meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triggers {
    /// `[[standin:fail-throttle]]`: answer 429 `ThrottlingException`.
    pub fail_throttle: bool,
    /// `[[standin:fail=<Name>]]`: answer every model call with that Bedrock error.
    pub fail: Option<ErrorKind>,
    /// `[[standin:fail-after-tools=<Name>]]`: answer normally until the last message
    /// carries tool results, then with that Bedrock error.
    pub fail_after_tools: Option<ErrorKind>,
    /// A `fail=` or `fail-after-tools=` marker whose name is not a Bedrock error: the
    /// marker's text (between `[[standin:` and `]]`), answered with a `ValidationException`
    /// so a typo does not pass silently.
    pub unknown_error: Option<String>,
    /// `[[standin:always-tool]]`: always call the first offered tool.
    pub always_tool: bool,
    /// `[[standin:max-tokens]]`: stop with `max_tokens`.
    pub max_tokens: bool,
    /// `[[standin:sleep-ms=N]]`: sleep N milliseconds before answering.
    pub sleep_ms: Option<u64>,
}

const TRIGGER_OPEN: &str = "[[standin:";
const TRIGGER_CLOSE: &str = "]]";

/// Splits the triggers out of `text`, returning them and the text without them
/// (trimmed). Unknown `[[standin:...]]` markers are removed and ignored.
pub fn take_triggers(text: &str) -> (Triggers, String) {
    let mut triggers = Triggers::default();
    let mut rest = text;
    let mut clean = String::with_capacity(text.len());
    while let Some(start) = rest.find(TRIGGER_OPEN) {
        let after = &rest[start + TRIGGER_OPEN.len()..];
        let Some(end) = after.find(TRIGGER_CLOSE) else {
            break;
        };
        clean.push_str(&rest[..start]);
        match after[..end].trim() {
            "fail-throttle" => triggers.fail_throttle = true,
            "always-tool" => triggers.always_tool = true,
            "max-tokens" => triggers.max_tokens = true,
            other => {
                if let Some(n) = other.strip_prefix("sleep-ms=") {
                    triggers.sleep_ms = n.trim().parse().ok();
                } else if let Some(name) = other.strip_prefix("fail=") {
                    match ErrorKind::from_name(name.trim()) {
                        Some(kind) => triggers.fail = Some(kind),
                        None => triggers.unknown_error = Some(other.to_string()),
                    }
                } else if let Some(name) = other.strip_prefix("fail-after-tools=") {
                    match ErrorKind::from_name(name.trim()) {
                        Some(kind) => triggers.fail_after_tools = Some(kind),
                        None => triggers.unknown_error = Some(other.to_string()),
                    }
                }
            }
        }
        rest = &after[end + TRIGGER_CLOSE.len()..];
    }
    clean.push_str(rest);
    (triggers, clean.trim().to_string())
}

/// Words (ASCII alphanumeric runs, lowercased) with their byte offsets.
fn words(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_ascii_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, text[s..i].to_ascii_lowercase()));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Whether the text asks about the time or date.
pub fn mentions_time(text: &str) -> bool {
    const WORDS: [&str; 5] = ["time", "date", "clock", "today", "timezone"];
    words(text).iter().any(|(_, w)| WORDS.contains(&w.as_str()))
}

/// The first IANA-looking zone name (`Area/City`, e.g. `Europe/Paris` or
/// `America/Argentina/Buenos_Aires`), else `UTC` if that word appears.
pub fn timezone(text: &str) -> Option<String> {
    let trim = |c: char| !(c.is_ascii_alphanumeric() || c == '_');
    let zone = text
        .split_whitespace()
        .map(|t| t.trim_matches(trim))
        .find(|token| {
            let mut parts = token.split('/');
            let area_ok = parts.next().is_some_and(|a| {
                a.starts_with(|c: char| c.is_ascii_uppercase())
                    && a.chars().all(|c| c.is_ascii_alphabetic())
            });
            let rest: Vec<&str> = parts.collect();
            area_ok
                && !rest.is_empty()
                && rest.iter().all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
                })
        });
    match zone {
        Some(z) => Some(z.to_string()),
        None => words(text)
            .iter()
            .any(|(_, w)| w == "utc")
            .then(|| "UTC".to_string()),
    }
}

/// If the text asks to search or look something up, the query: the text after
/// `search [for|about]` / `look up` / `lookup`, up to `?`, `!`, `;`, a newline
/// or ` and `; the whole text if that is empty.
pub fn search_query(text: &str) -> Option<String> {
    let words = words(text);
    let mut end_of_keyword = None;
    for (k, (offset, word)) in words.iter().enumerate() {
        let next = words.get(k + 1);
        let keyword_end = match word.as_str() {
            "search" | "lookup" => Some(offset + word.len()),
            "look" => next.filter(|(_, w)| w == "up").map(|(o, w)| o + w.len()),
            _ => None,
        };
        if let Some(mut end) = keyword_end {
            let skip = words.iter().find(|(o, _)| *o > end);
            if let Some((o, w)) = skip.filter(|(_, w)| ["for", "about", "up"].contains(&w.as_str()))
            {
                end = o + w.len();
            }
            end_of_keyword = Some(end);
            break;
        }
    }
    let rest = &text[end_of_keyword?..];
    let lower = rest.to_ascii_lowercase();
    let cut = ["?", "!", ";", "\n", " and "]
        .iter()
        .filter_map(|stop| lower.find(stop))
        .min()
        .unwrap_or(rest.len());
    let query = rest[..cut].trim_matches(|c: char| c.is_whitespace() || ".,:\"'".contains(c));
    Some(if query.is_empty() {
        text.trim().to_string()
    } else {
        query.to_string()
    })
}

const EXPR_CHARS: &str = "0123456789+-*/().%^ ";
const OPERATORS: &str = "+-*/%^";

/// Arithmetic expressions in the text, in order: maximal runs of digits,
/// spaces and `+ - * / ( ) . % ^`, trimmed of dangling operators and
/// unbalanced parentheses, that contain a binary operator between operands.
pub fn expressions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        if EXPR_CHARS.contains(c) {
            run.push(c);
        } else {
            if let Some(expr) = clean_expression(&run) {
                out.push(expr);
            }
            run.clear();
        }
    }
    out
}

fn clean_expression(run: &str) -> Option<String> {
    let mut s = run.trim();
    loop {
        let before = s.len();
        s = s.trim_start_matches(|c: char| "+*/^%.)".contains(c) || c == ' ');
        s = s.trim_end_matches(|c: char| "+-*/^(.".contains(c) || c == ' ');
        let opens = s.matches('(').count();
        let closes = s.matches(')').count();
        if closes > opens {
            if let Some(stripped) = s.strip_suffix(')') {
                s = stripped;
            }
        } else if opens > closes {
            if let Some(stripped) = s.strip_prefix('(') {
                s = stripped;
            }
        }
        if s.len() == before {
            break;
        }
    }
    has_binary_operator(s).then(|| s.to_string())
}

/// An operator preceded by an operand (digit or `)`) and followed by one
/// (digit or `(`).
fn has_binary_operator(s: &str) -> bool {
    let mut seen_operand = false;
    for (i, c) in s.char_indices() {
        if c.is_ascii_digit() || c == ')' {
            seen_operand = true;
        } else if OPERATORS.contains(c)
            && seen_operand
            && s[i + 1..].contains(|d: char| d.is_ascii_digit() || d == '(')
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_are_found_and_removed() {
        let (t, clean) = take_triggers("[[standin:sleep-ms=250]] hi [[standin:always-tool]]");
        assert_eq!(t.sleep_ms, Some(250));
        assert!(t.always_tool && !t.fail_throttle && !t.max_tokens);
        assert_eq!(clean, "hi");
        let (t, clean) = take_triggers("x [[standin:fail-throttle]][[standin:max-tokens]] [[oops");
        assert!(t.fail_throttle && t.max_tokens);
        assert_eq!(clean, "x  [[oops");
    }

    #[test]
    fn error_triggers_name_bedrock_errors() {
        let (t, clean) = take_triggers("hi [[standin:fail=ServiceUnavailableException]]");
        assert_eq!(t.fail, Some(ErrorKind::ServiceUnavailable));
        assert_eq!((t.fail_after_tools, t.unknown_error), (None, None));
        assert_eq!(clean, "hi");
        let (t, clean) =
            take_triggers("[[standin:fail-after-tools= ModelTimeoutException ]] what is 1+1");
        assert_eq!(t.fail_after_tools, Some(ErrorKind::ModelTimeout));
        assert_eq!(t.fail, None);
        assert_eq!(clean, "what is 1+1");
        for kind in ErrorKind::ALL {
            let (t, _) = take_triggers(&format!("[[standin:fail={}]]", kind.name()));
            assert_eq!(t.fail, Some(kind));
        }
        let (t, clean) = take_triggers("[[standin:fail=Throttling]] x");
        assert_eq!(t.fail, None);
        assert_eq!(t.unknown_error.as_deref(), Some("fail=Throttling"));
        assert_eq!(clean, "x");
        let (t, _) = take_triggers("[[standin:fail-after-tools=]]");
        assert_eq!(t.unknown_error.as_deref(), Some("fail-after-tools="));
        let (t, _) = take_triggers("[[standin:fail-throttle]]");
        assert!(t.fail_throttle && t.fail.is_none());
    }

    #[test]
    fn finds_expressions() {
        assert_eq!(expressions("What is 6 * 7?"), ["6 * 7"]);
        assert_eq!(expressions("Compute (2+3)*4."), ["(2+3)*4"]);
        assert_eq!(expressions("(what is 12.5/5)"), ["12.5/5"]);
        assert_eq!(
            expressions("2^10 and 7 % 3, then 1 - -1"),
            ["2^10", "7 % 3", "1 - -1"]
        );
        assert!(expressions("I am 42 years old, 50% sure, in Europe/Paris").is_empty());
        assert!(expressions("Etc/GMT+2 at 10:30").is_empty());
        assert!(expressions("héllo wörld").is_empty());
    }

    #[test]
    fn finds_time_zone_and_time_words() {
        assert!(mentions_time("What time is it?"));
        assert!(mentions_time("today's date"));
        assert!(!mentions_time("sometimes I update things"));
        assert_eq!(
            timezone("time in Europe/Paris?").as_deref(),
            Some("Europe/Paris")
        );
        assert_eq!(
            timezone("in America/Argentina/Buenos_Aires.").as_deref(),
            Some("America/Argentina/Buenos_Aires")
        );
        assert_eq!(timezone("what time is it in UTC").as_deref(), Some("UTC"));
        assert_eq!(timezone("6/3 and/or 4"), None);
    }

    #[test]
    fn finds_search_queries() {
        assert_eq!(
            search_query("Search for rust async traits").as_deref(),
            Some("rust async traits")
        );
        assert_eq!(
            search_query("please look up the weather in Paris and tell me").as_deref(),
            Some("the weather in Paris")
        );
        assert_eq!(search_query("lookup: tokio?").as_deref(), Some("tokio"));
        assert_eq!(search_query("search").as_deref(), Some("search"));
        assert_eq!(search_query("do some research"), None);
    }
}
