//! Truncation with a visible marker: how a message, a turn or a text is made to fit a byte
//! budget. Pure functions; the store's item limits and the model's context budget both use them.
//!
//! The rule is always the same: the largest values are cut first, each keeps its beginning and
//! ends with `…[truncated N bytes]`, and the shape of the conversation (roles, block order,
//! tool-use ids, so every tool use stays paired with its result) never changes.

use serde_json::{json, Value};

use crate::domain::message::{ContentBlock, Message, ToolResultContent};

/// Largest serialized content (JSON bytes) a stored message may have: 300 KB, well under
/// DynamoDB's 400 KB item limit once keys and other attributes are added.
pub const MAX_MESSAGE_CONTENT_BYTES: usize = 300 * 1024;

/// Largest serialized content of all the messages of one turn together: 3 MB, so that a
/// turn's one transaction (messages, trace, header, marker, idempotency record) stays under
/// DynamoDB's 4 MB per `TransactWriteItems`.
pub const MAX_TURN_CONTENT_BYTES: usize = 3 * 1024 * 1024;

/// Upper bound of the length of a truncation marker (`…[truncated N bytes]` with N ≤ u64::MAX).
const MARKER_MAX_BYTES: usize = 48;

/// Extra bytes a truncated tool-use input costs: it becomes the object `{"truncated":"…"}`.
const TOOL_USE_WRAPPER_BYTES: usize = r#"{"truncated":}"#.len();

/// Returns the message unchanged when its serialized content fits in `max_bytes`; otherwise
/// truncates its largest text and JSON blocks, largest first, until it fits.
///
/// A truncated text keeps its beginning and ends with `…[truncated N bytes]`. A truncated JSON
/// tool result becomes a text block holding the beginning of the JSON and the marker; a
/// truncated tool-use input becomes `{"truncated": "<beginning of the JSON>…[truncated N bytes]"}`
/// (still an object, as Bedrock requires). Block order, roles and tool-use ids are kept, so
/// tool uses stay paired with their results. A message made of so many tiny blocks that no
/// truncation can make it fit is returned with every block truncated; the store then reports
/// the write failure.
pub fn fit_message(message: &Message, max_bytes: usize) -> Message {
    let mut fitted = [message.clone()];
    fit_all(&mut fitted, max_bytes);
    let [fitted] = fitted;
    fitted
}

/// The messages of one turn as they are stored: each fitted to [`MAX_MESSAGE_CONTENT_BYTES`],
/// then, if all of them together exceed [`MAX_TURN_CONTENT_BYTES`], the largest values of the
/// whole turn cut first until the turn fits.
pub fn fit_turn(messages: &[Message]) -> Vec<Message> {
    let mut fitted: Vec<Message> = messages
        .iter()
        .map(|message| fit_message(message, MAX_MESSAGE_CONTENT_BYTES))
        .collect();
    fit_all(&mut fitted, MAX_TURN_CONTENT_BYTES);
    fitted
}

/// Cuts the largest leaves of all `messages` together until their serialized contents add up
/// to at most `max_bytes`.
fn fit_all(messages: &mut [Message], max_bytes: usize) {
    let mut total: usize = messages.iter().map(|m| content_size(&m.content)).sum();
    if total <= max_bytes {
        return;
    }
    // Reasoning cannot be cut (its signature covers it whole): it goes first, whole. Later
    // turns do not need it; only the tool-use loop that produced it does.
    if messages
        .iter()
        .any(|m| m.content.iter().any(ContentBlock::is_reasoning))
    {
        for message in messages.iter_mut() {
            message.content.retain(|block| !block.is_reasoning());
            if message.content.is_empty() {
                message.content.push(ContentBlock::Text {
                    text: "(reasoning omitted)".to_owned(),
                });
            }
        }
        total = messages.iter().map(|m| content_size(&m.content)).sum();
        if total <= max_bytes {
            return;
        }
    }
    let mut found: Vec<(usize, Leaf)> = messages
        .iter()
        .enumerate()
        .flat_map(|(index, message)| {
            leaves(&message.content)
                .into_iter()
                .map(move |leaf| (index, leaf))
        })
        .collect();
    found.sort_by_key(|(_, leaf)| std::cmp::Reverse(leaf.cost));
    for (index, leaf) in found {
        if total <= max_bytes {
            break;
        }
        let Some(message) = messages.get_mut(index) else {
            continue;
        };
        let before = content_size(&message.content);
        let target = leaf.cost.saturating_sub(total - max_bytes);
        truncate_leaf(&mut message.content, &leaf, target);
        total = total - before + content_size(&message.content);
    }
}

/// `text` itself when it is at most `max_bytes` long; otherwise its longest prefix (on a char
/// boundary) that leaves room for the marker, followed by `…[truncated N bytes]`: at most
/// `max_bytes` long in all (raw bytes, not JSON-escaped).
pub fn shrink_text(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut keep = max_bytes.saturating_sub(MARKER_MAX_BYTES).min(text.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}…[truncated {} bytes]", &text[..keep], text.len() - keep)
}

/// Serialized size of a message's content, as stored.
pub fn content_size(content: &[ContentBlock]) -> usize {
    serde_json::to_vec(content).map_or(usize::MAX, |bytes| bytes.len())
}

/// Where a truncatable value sits in a message's content.
#[derive(Debug)]
struct Leaf {
    /// Index of the content block.
    block: usize,
    /// Index within a tool result's content, when the leaf is inside one.
    item: Option<usize>,
    /// Bytes the value takes in the serialized content.
    cost: usize,
}

/// Every text and JSON value of the content with its serialized cost.
fn leaves(content: &[ContentBlock]) -> Vec<Leaf> {
    let mut found = Vec::new();
    for (block, value) in content.iter().enumerate() {
        match value {
            ContentBlock::Text { text } => found.push(Leaf {
                block,
                item: None,
                cost: string_cost(text),
            }),
            ContentBlock::ToolUse { input, .. } => found.push(Leaf {
                block,
                item: None,
                cost: json_cost(input),
            }),
            ContentBlock::ToolResult { content, .. } => {
                for (item, part) in content.iter().enumerate() {
                    let cost = match part {
                        ToolResultContent::Text { text } => string_cost(text),
                        ToolResultContent::Json { json } => json_cost(json),
                    };
                    found.push(Leaf {
                        block,
                        item: Some(item),
                        cost,
                    });
                }
            }
            ContentBlock::Reasoning { .. } | ContentBlock::RedactedReasoning { .. } => {}
        }
    }
    found
}

/// Replaces one leaf by a truncated version whose serialized cost is at most `target` (or just
/// the marker when `target` is smaller than that).
fn truncate_leaf(content: &mut [ContentBlock], leaf: &Leaf, target: usize) {
    let Some(block) = content.get_mut(leaf.block) else {
        return;
    };
    // A string value costs its escaped length plus two quotes.
    let string_budget = target.saturating_sub(2);
    match (block, leaf.item) {
        (ContentBlock::Text { text }, None) => *text = shrink(text, string_budget),
        (ContentBlock::ToolUse { input, .. }, None) => {
            let serialized = input.to_string();
            let budget = string_budget.saturating_sub(TOOL_USE_WRAPPER_BYTES);
            *input = json!({ "truncated": shrink(&serialized, budget) });
        }
        (ContentBlock::ToolResult { content, .. }, Some(item)) => {
            let Some(part) = content.get_mut(item) else {
                return;
            };
            // `{"type":"json","json":…}` and `{"type":"text","text":…}` have the same wrapper.
            let text = match part {
                ToolResultContent::Text { text } => shrink(text, string_budget),
                ToolResultContent::Json { json } => shrink(&json.to_string(), string_budget),
            };
            *part = ToolResultContent::Text { text };
        }
        _ => {}
    }
}

/// The longest prefix of `text` (on a char boundary) whose JSON-escaped length plus the marker
/// fits in `budget`, followed by the marker `…[truncated N bytes]`.
fn shrink(text: &str, budget: usize) -> String {
    let room = budget.saturating_sub(MARKER_MAX_BYTES);
    let mut used = 0;
    let mut keep = 0;
    for (index, ch) in text.char_indices() {
        let cost = escaped_len(ch);
        if used + cost > room {
            break;
        }
        used += cost;
        keep = index + ch.len_utf8();
    }
    let removed = text.len() - keep;
    format!("{}…[truncated {removed} bytes]", &text[..keep])
}

/// Bytes a string takes in JSON, quotes included.
fn string_cost(text: &str) -> usize {
    text.chars().map(escaped_len).sum::<usize>() + 2
}

/// Bytes a JSON value takes when serialized.
fn json_cost(value: &Value) -> usize {
    value.to_string().len()
}

/// Bytes one char takes inside a JSON string, as serde_json writes it.
fn escaped_len(ch: char) -> usize {
    match ch {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::{Role, ToolStatus};

    fn huge(len: usize) -> String {
        "é\"x\n".repeat(len / 5 + 1)
    }

    #[test]
    fn a_message_under_the_cap_is_returned_unchanged() {
        let message = Message::user_text("hello");
        assert_eq!(fit_message(&message, MAX_MESSAGE_CONTENT_BYTES), message);
    }

    #[test]
    fn an_oversized_text_is_cut_with_a_visible_marker_and_fits() {
        let message = Message::user_text(huge(500 * 1024));
        let fitted = fit_message(&message, MAX_MESSAGE_CONTENT_BYTES);
        let size = content_size(&fitted.content);
        assert!(size <= MAX_MESSAGE_CONTENT_BYTES, "{size}");
        assert!(
            size > MAX_MESSAGE_CONTENT_BYTES - 1024,
            "cut too much: {size}"
        );
        let text = fitted.text();
        assert!(text.contains("…[truncated "), "no marker");
        assert!(message
            .text()
            .starts_with(text.split('…').next().unwrap_or("")));
    }

    #[test]
    fn the_largest_blocks_are_cut_first_and_small_ones_kept() {
        let message = Message {
            role: Role::User,
            content: vec![
                ContentBlock::ToolResult {
                    tool_use_id: "t1".into(),
                    status: ToolStatus::Success,
                    content: vec![
                        ToolResultContent::Text {
                            text: "small".into(),
                        },
                        ToolResultContent::Json {
                            json: json!({ "rows": vec!["a\"b"; 60_000] }),
                        },
                    ],
                },
                ContentBlock::ToolResult {
                    tool_use_id: "t2".into(),
                    status: ToolStatus::Success,
                    content: vec![ToolResultContent::Text {
                        text: "z".repeat(200 * 1024),
                    }],
                },
            ],
        };
        let fitted = fit_message(&message, MAX_MESSAGE_CONTENT_BYTES);
        assert!(content_size(&fitted.content) <= MAX_MESSAGE_CONTENT_BYTES);
        let ContentBlock::ToolResult {
            tool_use_id,
            content,
            ..
        } = &fitted.content[0]
        else {
            panic!("block kind changed");
        };
        assert_eq!(tool_use_id, "t1");
        assert_eq!(
            content[0],
            ToolResultContent::Text {
                text: "small".into()
            }
        );
        let ToolResultContent::Text { text } = &content[1] else {
            panic!("a truncated JSON result becomes text");
        };
        assert!(text.starts_with(r#"{"rows":["a\"b""#) && text.contains("…[truncated "));
        // The second block was not needed to fit once the largest was cut.
        assert_eq!(fitted.content[1], message.content[1]);
    }

    #[test]
    fn a_truncated_tool_use_input_stays_an_object() {
        let message = Message {
            role: Role::Assistant,
            content: vec![ContentBlock::ToolUse {
                tool_use_id: "t1".into(),
                name: "write".into(),
                input: json!({ "body": "q".repeat(400 * 1024) }),
            }],
        };
        let fitted = fit_message(&message, MAX_MESSAGE_CONTENT_BYTES);
        assert!(content_size(&fitted.content) <= MAX_MESSAGE_CONTENT_BYTES);
        let ContentBlock::ToolUse { input, name, .. } = &fitted.content[0] else {
            panic!("block kind changed");
        };
        assert_eq!(name, "write");
        let kept = input["truncated"].as_str().unwrap_or_default();
        assert!(kept.starts_with(r#"{"body":"qqq"#) && kept.contains("…[truncated "));
    }
}
