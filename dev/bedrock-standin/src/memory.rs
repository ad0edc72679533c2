//! Scripted inputs of the long-term memory tools, read from a transcript (lines
//! `User: <text>` / `Assistant: <text>`, optionally an `Already remembered:` section of
//! `- <kind>.<key>: <text>` lines, and for the summary a `Summary so far: <text>` line):
//! `record_memories` finds facts and preferences in the user's lines, `write_summary`
//! extends the running summary. The rules are in the crate docs.

use serde_json::{json, Value};

/// The prefix of a user line.
const USER: &str = "User: ";
/// The prefix of the running summary line.
const SUMMARY_SO_FAR: &str = "Summary so far: ";
/// The header of the section of what is already remembered.
const ALREADY: &str = "Already remembered:";
/// Longest summary `write_summary` gives, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1200;

/// The text of the `User: ` lines of `text` (prefix removed), outside the
/// `Already remembered:` section.
fn user_lines(text: &str) -> Vec<&str> {
    source_lines(text)
        .into_iter()
        .filter_map(|l| l.strip_prefix(USER))
        .collect()
}

/// The lines of `text` outside the `Already remembered:` section (its header and the
/// `- ..` and blank lines after it), each trimmed at the start.
fn source_lines(text: &str) -> Vec<&str> {
    let mut in_section = false;
    let mut lines = Vec::new();
    for line in text.lines().map(str::trim_start) {
        if line.trim_end() == ALREADY {
            in_section = true;
            continue;
        }
        if in_section && (line.starts_with("- ") || line.trim().is_empty()) {
            continue;
        }
        in_section = false;
        lines.push(line);
    }
    lines
}

/// `text` trimmed, cut to `max` characters, without trailing `.`, `!` or `?`.
fn clip(text: &str, max: usize) -> String {
    let cut: String = text.trim().chars().take(max).collect();
    cut.trim_end()
        .trim_end_matches(['.', '!', '?'])
        .trim_end()
        .to_string()
}

/// Words in snake_case: lower-cased, letters and digits only, joined by `_`.
fn snake_case<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words
        .into_iter()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// The value starting at `rest`: up to `.`, `,`, `!`, `?`, ` and ` (any case) or the end,
/// trimmed; `None` when empty.
fn value(rest: &str) -> Option<&str> {
    let lower = rest.to_ascii_lowercase();
    let end = [
        rest.find(['.', ',', '!', '?']),
        lower.find(" and "),
        Some(rest.len()),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(rest.len());
    Some(rest[..end].trim()).filter(|v| !v.is_empty())
}

/// Byte offsets just after each case-insensitive occurrence of the phrase `phrase`
/// (lower-case ASCII, ending with a space) in `line` that starts at a word boundary.
fn after_phrase(line: &str, phrase: &str) -> Vec<usize> {
    let lower = line.to_ascii_lowercase();
    lower
        .match_indices(phrase)
        .filter(|(at, _)| {
            line[..*at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric())
        })
        .map(|(at, _)| at + phrase.len())
        .collect()
}

/// One memory the extraction finds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Memory {
    kind: &'static str,
    key: String,
    text: String,
}

/// The facts and preferences of one line, in the order the rules are listed.
fn memories_of(line: &str) -> Vec<Memory> {
    let mut found = Vec::new();
    // `my <words> is|are <value>`, at most 4 words.
    for start in after_phrase(line, "my ") {
        let rest = &line[start..];
        let mut words = Vec::new();
        let mut offset = 0;
        for word in rest.split(' ') {
            let lower = word.to_ascii_lowercase();
            if (lower == "is" || lower == "are") && !words.is_empty() {
                let after = (start + offset + word.len() + 1).min(line.len());
                if let Some(value) = value(&line[after..]) {
                    let key = snake_case(words.iter().copied());
                    if !key.is_empty() {
                        found.push(Memory {
                            kind: "fact",
                            key,
                            text: format!("The user's {} {lower} {value}.", words.join(" ")),
                        });
                    }
                }
                break;
            }
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_alphanumeric() || "'-".contains(c));
            if !plain || words.len() == 4 {
                break;
            }
            words.push(word);
            offset += word.len() + 1;
        }
    }
    for start in after_phrase(line, "i live in ") {
        if let Some(place) = value(&line[start..]) {
            found.push(Memory {
                kind: "fact",
                key: "home_city".into(),
                text: format!("The user lives in {place}."),
            });
        }
    }
    for (phrase, verb) in [
        ("i prefer ", "prefers"),
        ("i like ", "likes"),
        ("i love ", "loves"),
    ] {
        for start in after_phrase(line, phrase) {
            let Some(thing) = value(&line[start..]) else {
                continue;
            };
            let key = snake_case(thing.split_whitespace().take(2));
            if key.is_empty() {
                continue;
            }
            found.push(Memory {
                kind: "preference",
                key: format!("prefers_{key}"),
                text: format!("The user {verb} {thing}."),
            });
        }
    }
    found
}

/// The input of a forced `record_memories` call: `{"memories": [..]}` from the user lines
/// of the transcript (or the whole text when it has none), a later memory of the same kind
/// and key replacing an earlier one in place, then the session summary.
pub fn record_memories(text: &str) -> Value {
    let users = user_lines(text);
    let lines = if users.is_empty() {
        source_lines(text)
    } else {
        users.clone()
    };
    let mut memories: Vec<Memory> = Vec::new();
    for memory in lines.iter().flat_map(|l| memories_of(l)) {
        match memories
            .iter_mut()
            .find(|m| m.kind == memory.kind && m.key == memory.key)
        {
            Some(earlier) => *earlier = memory,
            None => memories.push(memory),
        }
    }
    if let Some(first) = users.iter().map(|l| clip(l, 80)).find(|l| !l.is_empty()) {
        memories.push(Memory {
            kind: "summary",
            key: "session".into(),
            text: format!("The user talked about {first}."),
        });
    }
    let memories: Vec<Value> = memories
        .into_iter()
        .map(|m| json!({"kind": m.kind, "key": m.key, "text": m.text}))
        .collect();
    json!({ "memories": memories })
}

/// The input of a forced `write_summary` call: `{"summary": ".."}`, the `Summary so far`
/// kept, then `The user said: <line, up to 60 characters>.` per user line, at most
/// [`MAX_SUMMARY_CHARS`] characters (`No user messages yet.` when there is nothing).
pub fn write_summary(text: &str) -> Value {
    let mut parts: Vec<String> = text
        .lines()
        .map(str::trim_start)
        .filter_map(|l| l.strip_prefix(SUMMARY_SO_FAR))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(1)
        .map(str::to_string)
        .collect();
    for line in user_lines(text) {
        let said = clip(line, 60);
        if !said.is_empty() {
            parts.push(format!("The user said: {said}."));
        }
    }
    let summary = if parts.is_empty() {
        "No user messages yet.".to_string()
    } else {
        parts.join(" ").chars().take(MAX_SUMMARY_CHARS).collect()
    };
    json!({ "summary": summary })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_facts_preferences_and_the_session() {
        let transcript = "User: My favourite colour is blue.\n\
             Assistant: Noted! My name is Standin.\n\
             User: I live in Lisbon and I like green tea, mostly. my kids are Ana and Rui\n\
             User: what is my favourite colour?\n\
             Already remembered:\n\
             - fact.home_city: The user lives in Porto.\n";
        assert_eq!(
            record_memories(transcript),
            json!({"memories": [
                {"kind": "fact", "key": "favourite_colour", "text": "The user's favourite colour is blue."},
                {"kind": "fact", "key": "kids", "text": "The user's kids are Ana."},
                {"kind": "fact", "key": "home_city", "text": "The user lives in Lisbon."},
                {"kind": "preference", "key": "prefers_green_tea", "text": "The user likes green tea."},
                {"kind": "summary", "key": "session", "text": "The user talked about My favourite colour is blue."},
            ]})
        );
        // A later value of the same fact replaces the earlier one in place.
        let changed = record_memories(
            "User: my favourite colour is blue\nUser: My favourite colour is green!",
        );
        assert_eq!(
            changed["memories"][0]["text"],
            "The user's favourite colour is green."
        );
        assert_eq!(changed["memories"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn nothing_found_is_an_empty_list() {
        assert_eq!(record_memories("Assistant: hi"), json!({"memories": []}));
        assert_eq!(
            record_memories("I prefer dark mode"),
            json!({"memories": [{"kind": "preference", "key": "prefers_dark_mode",
                "text": "The user prefers dark mode."}]})
        );
    }

    #[test]
    fn summaries_extend_the_one_so_far() {
        let got = write_summary("Summary so far: The user is planning a trip.\nUser: Book a hotel in Rome!\nAssistant: Done.\nUser: thanks");
        assert_eq!(
            got,
            json!({"summary": "The user is planning a trip. The user said: Book a hotel in Rome. The user said: thanks."})
        );
        let long = format!("User: {}", "word ".repeat(1000));
        let many = vec![long; 40].join("\n");
        let summary = write_summary(&many)["summary"].as_str().map(str::len);
        assert_eq!(summary, Some(MAX_SUMMARY_CHARS));
    }
}
