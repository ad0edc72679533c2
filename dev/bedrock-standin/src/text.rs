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
    /// `[[standin:fail@<model-id>=<Name>]]`: answer every call to that model id with that
    /// error, in the order found (the first for a model id wins).
    pub fail_models: Vec<(String, ErrorKind)>,
    /// `[[standin:fail-first=<N>=<Name>]]` and `[[standin:fail-first=<N>@<model-id>=<Name>]]`:
    /// the first N calls of a conversation (to that model) fail with that error.
    pub fail_first: Vec<FailFirst>,
    /// `[[standin:fail-after-tools=<Name>]]`: answer normally until the last message
    /// carries tool results, then with that Bedrock error.
    pub fail_after_tools: Option<ErrorKind>,
    /// `[[standin:fail-in-stream=<name>]]`: ConverseStream answers 200, starts the message,
    /// then sends this exception event; Converse answers with the matching HTTP error.
    pub fail_in_stream: Option<ErrorKind>,
    /// A malformed error trigger, or one naming no known error: the whole
    /// `ValidationException` message to answer with, so a typo does not pass silently.
    pub bad_trigger: Option<String>,
    /// `[[standin:always-tool]]`: always call the first offered tool.
    pub always_tool: bool,
    /// `[[standin:max-tokens]]`: stop with `max_tokens`.
    pub max_tokens: bool,
    /// `[[standin:sleep-ms=N]]`: sleep N milliseconds before answering.
    pub sleep_ms: Option<u64>,
    /// `[[standin:stream-gap-ms=N]]`: ConverseStream sends its events N milliseconds apart.
    pub stream_gap_ms: Option<u64>,
}

/// A `[[standin:fail-first=<N>[@<model-id>]=<Name>]]` trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailFirst {
    /// How many calls of each conversation fail.
    pub calls: u64,
    /// The model id it applies to (exact); `None`: any model.
    pub model: Option<String>,
    /// The error those calls answer with.
    pub kind: ErrorKind,
}

impl Triggers {
    /// The `fail@` error for `model_id`, if any.
    pub fn fail_for_model(&self, model_id: &str) -> Option<ErrorKind> {
        self.fail_models
            .iter()
            .find(|(model, _)| model == model_id)
            .map(|(_, kind)| *kind)
    }

    /// The `fail-first` trigger that applies to `model_id`: the first naming it, else the
    /// first for any model.
    pub fn fail_first_for(&self, model_id: &str) -> Option<&FailFirst> {
        let named = self
            .fail_first
            .iter()
            .find(|f| f.model.as_deref() == Some(model_id));
        named.or_else(|| self.fail_first.iter().find(|f| f.model.is_none()))
    }
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
        let marker = after[..end].trim();
        if let Err(message) = apply_trigger(&mut triggers, marker) {
            triggers.bad_trigger = Some(message);
        }
        rest = &after[end + TRIGGER_CLOSE.len()..];
    }
    clean.push_str(rest);
    (triggers, clean.trim().to_string())
}

/// Records one marker (the text between `[[standin:` and `]]`); an error trigger that
/// is malformed or names no known error is the `ValidationException` message.
fn apply_trigger(triggers: &mut Triggers, marker: &str) -> Result<(), String> {
    match marker {
        "fail-throttle" => triggers.fail_throttle = true,
        "always-tool" => triggers.always_tool = true,
        "max-tokens" => triggers.max_tokens = true,
        other => {
            if let Some(n) = other.strip_prefix("sleep-ms=") {
                triggers.sleep_ms = n.trim().parse().ok();
            } else if let Some(n) = other.strip_prefix("stream-gap-ms=") {
                triggers.stream_gap_ms = n.trim().parse().ok();
            } else if let Some(name) = other.strip_prefix("fail=") {
                triggers.fail = Some(error_name(marker, name)?);
            } else if let Some(name) = other.strip_prefix("fail-after-tools=") {
                triggers.fail_after_tools = Some(error_name(marker, name)?);
            } else if let Some(spec) = other.strip_prefix("fail@") {
                let (model, name) = spec
                    .rsplit_once('=')
                    .map(|(m, n)| (m.trim(), n))
                    .filter(|(m, _)| !m.is_empty())
                    .ok_or_else(|| malformed(marker, "fail@<model-id>=<ErrorName>"))?;
                let kind = error_name(marker, name)?;
                triggers.fail_models.push((model.to_string(), kind));
            } else if let Some(spec) = other.strip_prefix("fail-first=") {
                triggers.fail_first.push(fail_first(marker, spec)?);
            } else if let Some(name) = other.strip_prefix("fail-in-stream=") {
                let kind = ErrorKind::from_stream_name(name.trim()).ok_or_else(|| {
                    format!(
                        "Unknown stand-in trigger [[standin:{marker}]]: the in-stream error name \
                         must be one of {}",
                        ErrorKind::known_stream_names()
                    )
                })?;
                triggers.fail_in_stream = Some(kind);
            }
        }
    }
    Ok(())
}

const FAIL_FIRST_FORMS: &str =
    "fail-first=<N>=<ErrorName> or fail-first=<N>@<model-id>=<ErrorName> \
                                (N a whole number)";

/// `<N>=<Name>` or `<N>@<model-id>=<Name>`.
fn fail_first(marker: &str, spec: &str) -> Result<FailFirst, String> {
    let spec = spec.trim_start();
    let digits = spec.len() - spec.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let calls: u64 = spec[..digits]
        .parse()
        .map_err(|_| malformed(marker, FAIL_FIRST_FORMS))?;
    let rest = spec[digits..].trim_start();
    let (model, name) = if let Some(name) = rest.strip_prefix('=') {
        (None, name)
    } else if let Some((model, name)) = rest.strip_prefix('@').and_then(|r| r.rsplit_once('=')) {
        let model = model.trim();
        if model.is_empty() {
            return Err(malformed(marker, FAIL_FIRST_FORMS));
        }
        (Some(model.to_string()), name)
    } else {
        return Err(malformed(marker, FAIL_FIRST_FORMS));
    };
    Ok(FailFirst {
        calls,
        model,
        kind: error_name(marker, name)?,
    })
}

/// The error kind a trigger names, or the message for an unknown name.
fn error_name(marker: &str, name: &str) -> Result<ErrorKind, String> {
    ErrorKind::from_name(name.trim()).ok_or_else(|| {
        format!(
            "Unknown stand-in trigger [[standin:{marker}]]: the error name must be one of {}",
            ErrorKind::known_names()
        )
    })
}

fn malformed(marker: &str, forms: &str) -> String {
    format!("Malformed stand-in trigger [[standin:{marker}]]: expected {forms}")
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
        assert_eq!((t.fail_after_tools, t.bad_trigger), (None, None));
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
        let message = t.bad_trigger.unwrap_or_default();
        assert!(
            message.starts_with(
                "Unknown stand-in trigger [[standin:fail=Throttling]]: the error name must be \
                 one of ThrottlingException, "
            ),
            "{message}"
        );
        assert_eq!(clean, "x");
        let (t, _) = take_triggers("[[standin:fail-after-tools=]]");
        assert!(t.bad_trigger.is_some_and(
            |m| m.starts_with("Unknown stand-in trigger [[standin:fail-after-tools=]]")
        ));
        let (t, _) = take_triggers("[[standin:fail-throttle]]");
        assert!(t.fail_throttle && t.fail.is_none());
    }

    #[test]
    fn per_model_and_fail_first_triggers() {
        let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x.y-v1:0";
        let text = format!(
            "[[standin:fail@us.anthropic.claude-3-5-haiku-20241022-v1:0=ThrottlingException]] \
             [[standin:fail@{arn}=TooManyTokens]] hi \
             [[standin:fail-first=2@{arn}=ServiceUnavailableException]] \
             [[standin:fail-first=1=ModelNotReadyException]]"
        );
        let (t, clean) = take_triggers(&text);
        assert_eq!(clean, "hi");
        assert_eq!(t.bad_trigger, None);
        assert_eq!(
            t.fail_for_model("us.anthropic.claude-3-5-haiku-20241022-v1:0"),
            Some(ErrorKind::Throttling)
        );
        assert_eq!(t.fail_for_model(arn), Some(ErrorKind::TooManyTokens));
        assert_eq!(t.fail_for_model("us.anthropic.claude-3-5-haiku"), None);
        assert_eq!(
            t.fail_first_for(arn),
            Some(&FailFirst {
                calls: 2,
                model: Some(arn.to_string()),
                kind: ErrorKind::ServiceUnavailable
            })
        );
        assert_eq!(
            t.fail_first_for("other"),
            Some(&FailFirst {
                calls: 1,
                model: None,
                kind: ErrorKind::ModelNotReady
            })
        );
        let (t, _) = take_triggers("[[standin:fail-first=3@m=ModelTimeoutException]]");
        assert_eq!(t.fail_first_for("other"), None);
    }

    #[test]
    fn in_stream_triggers_use_the_event_names() {
        let (t, clean) = take_triggers("[[standin:fail-in-stream=throttlingException]] hi");
        assert_eq!(t.fail_in_stream, Some(ErrorKind::Throttling));
        assert_eq!(clean, "hi");
        let (t, _) = take_triggers("[[standin:fail-in-stream=ThrottlingException]]");
        assert_eq!(t.fail_in_stream, None);
        assert_eq!(
            t.bad_trigger.as_deref(),
            Some(
                "Unknown stand-in trigger [[standin:fail-in-stream=ThrottlingException]]: the \
                 in-stream error name must be one of throttlingException, \
                 serviceUnavailableException, modelStreamErrorException, \
                 internalServerException, validationException"
            )
        );
    }

    #[test]
    fn malformed_error_triggers_say_what_is_wrong() {
        for (marker, start) in [
            ("fail@=ThrottlingException", "Malformed"),
            ("fail@model", "Malformed"),
            ("fail@model=Nope", "Unknown"),
            ("fail-first=x=ThrottlingException", "Malformed"),
            ("fail-first==ThrottlingException", "Malformed"),
            ("fail-first=2", "Malformed"),
            ("fail-first=2@=ThrottlingException", "Malformed"),
            ("fail-first=2:ThrottlingException", "Malformed"),
            ("fail-first=2=Nope", "Unknown"),
            ("fail-first=2@m=Nope", "Unknown"),
        ] {
            let (t, _) = take_triggers(&format!("[[standin:{marker}]] hi"));
            let message = t.bad_trigger.unwrap_or_default();
            let expected = format!("{start} stand-in trigger [[standin:{marker}]]: ");
            assert!(message.starts_with(&expected), "{marker}: {message}");
            assert!(
                t.fail_models.is_empty() && t.fail_first.is_empty(),
                "{marker}"
            );
        }
        let (t, _) = take_triggers("[[standin:fail-first=2]]");
        assert_eq!(
            t.bad_trigger.as_deref(),
            Some(
                "Malformed stand-in trigger [[standin:fail-first=2]]: expected \
                 fail-first=<N>=<ErrorName> or fail-first=<N>@<model-id>=<ErrorName> \
                 (N a whole number)"
            )
        );
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
