//! What the trace keeps of tool arguments and results: personal data and secrets masked,
//! results capped.
//!
//! Masked: values under keys that name a secret (`password`, `token`, `api_key`,
//! `authorization`, ...), and in any text, email addresses, card-like and phone-like digit
//! runs, AWS access key ids, bearer tokens and JWTs. It is a pattern filter, cheap enough for
//! every tool call; the guardrails (Bedrock Guardrails, the PII filter) are the policy, this
//! keeps the trace from being a second copy of what they let through.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use super::truncate::shrink_text;

/// Longest tool result kept in a trace step.
pub const MAX_TRACE_RESULT_BYTES: usize = 2 * 1024;

/// Longest string kept in a tool argument.
pub const MAX_TRACE_ARGUMENT_BYTES: usize = 1024;

/// What replaces a masked value.
pub const MASK: &str = "[redacted]";

/// Keys (lowercased, `-` read as `_`) whose values are always masked.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "secret_key",
    "private_key",
    "authorization",
    "cookie",
    "credential",
    "credentials",
    "session_token",
    "x_api_key",
];

/// A pattern, its mask, and a cheap test that the text may hold a match at all.
struct Pattern {
    regex: Regex,
    mask: &'static str,
    may_match: fn(&str) -> bool,
}

/// A run of at least 13 digits, single spaces or dashes between them allowed.
fn may_hold_card(text: &str) -> bool {
    let (mut digits, mut after_separator) = (0, false);
    for byte in text.bytes() {
        if byte.is_ascii_digit() {
            digits += 1;
            after_separator = false;
            if digits >= 13 {
                return true;
            }
        } else if (byte == b' ' || byte == b'-') && digits > 0 && !after_separator {
            after_separator = true;
        } else {
            digits = 0;
            after_separator = false;
        }
    }
    false
}

/// Three digits, a space, dot or dash, three digits: the core of a phone number.
fn may_hold_phone(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(7).any(|w| {
        w[..3].iter().all(u8::is_ascii_digit)
            && matches!(w[3], b' ' | b'.' | b'-')
            && w[4..].iter().all(u8::is_ascii_digit)
    })
}

/// The patterns, each behind a test that skips it for text that cannot match (most tool
/// results hold no `@`, no `eyJ`, no `AKIA`): the benchmark's turn went from 1.5 ms with
/// `regex-lite` to a few tens of µs.
fn patterns() -> &'static [Pattern] {
    static PATTERNS: OnceLock<Vec<Pattern>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let pattern = |regex: &str, mask, may_match| Pattern {
            regex: Regex::new(regex).expect("a valid pattern"),
            mask,
            may_match,
        };
        vec![
            // A JWT: three base64url parts, the first a JSON header.
            pattern(
                r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
                "[jwt]",
                |t| t.contains("eyJ"),
            ),
            pattern(
                r"[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[A-Za-z0-9._~+/=-]{8,}",
                "Bearer [redacted]",
                |t| t.contains("earer") || t.contains("EARER"),
            ),
            pattern(
                r"(?-u:\b)(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)",
                "[aws-key]",
                |t| t.contains("AKIA") || t.contains("ASIA"),
            ),
            pattern(
                r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
                "[email]",
                |t| t.contains('@'),
            ),
            // 13 to 19 digits, spaces or dashes between: a card number.
            pattern(
                r"(?-u:\b)(?:[0-9][ -]?){12,18}[0-9](?-u:\b)",
                "[card]",
                may_hold_card,
            ),
            // A phone number: an optional +country code, then 9 to 12 digits in groups.
            pattern(
                r"(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{2,4}\)[ .-]?)?[0-9]{3,4}[ .-][0-9]{3,4}(?:[ .-][0-9]{2,4})?(?-u:\b)",
                "[phone]",
                may_hold_phone,
            ),
        ]
    })
}

/// The text with personal data and secrets masked, cut to `max_bytes`.
pub fn text(text: &str, max_bytes: usize) -> String {
    let cut = shrink_text(text, max_bytes);
    mask(&cut)
}

fn mask(text: &str) -> String {
    let mut out = std::borrow::Cow::Borrowed(text);
    for pattern in patterns() {
        if (pattern.may_match)(&out) && pattern.regex.is_match(&out) {
            out =
                std::borrow::Cow::Owned(pattern.regex.replace_all(&out, pattern.mask).into_owned());
        }
    }
    out.into_owned()
}

/// Tool arguments as the trace keeps them: secret-named keys masked, strings masked and cut.
pub fn json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let value = if is_secret_key(key) {
                        Value::String(MASK.to_owned())
                    } else {
                        json(value)
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::String(s) => Value::String(text(s, MAX_TRACE_ARGUMENT_BYTES)),
        other => other.clone(),
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('-', "_");
    SECRET_KEYS
        .iter()
        .any(|secret| key == *secret || key.ends_with(&format!("_{secret}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_data_and_secrets_are_masked_in_text() {
        let masked = text(
            "mail ada@example.com, card 4111 1111 1111 1111, call +1 415-555-0100, \
             key AKIAIOSFODNN7EXAMPLE, Authorization: Bearer abc.def-ghi_jkl, \
             jwt eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl",
            4096,
        );
        for leaked in [
            "ada@example.com",
            "4111",
            "555-0100",
            "AKIAIOSFODNN7EXAMPLE",
            "abc.def-ghi_jkl",
            "eyJzdWIiOiJhZGEifQ",
        ] {
            assert!(!masked.contains(leaked), "{leaked} in {masked}");
        }
        for mask in [
            "[email]",
            "[card]",
            "[phone]",
            "[aws-key]",
            "Bearer [redacted]",
            "[jwt]",
        ] {
            assert!(masked.contains(mask), "{mask} missing in {masked}");
        }
    }

    #[test]
    fn ordinary_text_and_numbers_are_kept() {
        let kept = "12*7 = 84; the year 2026 had 365 days; version 1.2.3";
        assert_eq!(text(kept, 4096), kept);
    }

    #[test]
    fn secret_keys_are_masked_whatever_their_value() {
        let args = json!({
            "url": "https://example.com/?q=rust",
            "api_key": "plain-looking",
            "headers": {"Authorization": "x", "X-Api-Key": "y", "accept": "text/html"},
            "nested": [{"password": 1}, "reach me at bob@example.org"]
        });
        let masked = json(&args);
        assert_eq!(masked["url"], "https://example.com/?q=rust");
        assert_eq!(masked["api_key"], MASK);
        assert_eq!(masked["headers"]["Authorization"], MASK);
        assert_eq!(masked["headers"]["X-Api-Key"], MASK);
        assert_eq!(masked["headers"]["accept"], "text/html");
        assert_eq!(masked["nested"][0]["password"], MASK);
        assert_eq!(masked["nested"][1], "reach me at [email]");
    }

    #[test]
    fn long_results_are_cut() {
        let long = "a".repeat(10 * 1024);
        assert!(text(&long, MAX_TRACE_RESULT_BYTES).len() <= MAX_TRACE_RESULT_BYTES + 64);
    }
}
