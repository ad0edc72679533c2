//! The context budget: what one model call may send, and how the history is chosen to fit it.
//!
//! Every model call sends the system prompt, the tool specs, the history (earlier turns) and
//! the turn so far. Their size is estimated in tokens ([`estimate_tokens`]: bytes / 3, which
//! over-counts English and code and is close for other scripts) and kept within the model's
//! context window less the output cap and a margin ([`ContextBudget::input_tokens`]):
//!
//! - the history is whole turns, newest first, as many as fit ([`select_history`]); a turn that
//!   is not a sequence the model API accepts (a turn cut by expiry, a tool use without its
//!   result) ends the history there, so a window is always valid;
//! - each tool result is capped for the model ([`ContextBudget::tool_result_tokens`]), and all
//!   the results of one step together ([`ContextBudget::step_tool_result_tokens`]), with a note
//!   saying how much was cut; the stored turn keeps the full text (up to the item limits);
//! - before every model call the request is fitted again ([`fit_request`]): older history turns
//!   go first, then the oldest tool results of the turn itself are replaced by a note. A tool
//!   use and its result always stay or go together.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::message::{ContentBlock, Message, Role, ToolResultContent};
use super::model::{base_model_id, ToolSpec};
use super::truncate::shrink_text;

/// Bytes counted as one token. Real tokenizers average ~4 bytes per token on English prose and
/// ~3 on code and JSON; 3 keeps the estimate on the safe side.
pub const BYTES_PER_TOKEN: u64 = 3;

/// Tokens counted for the framing of each message and each content block.
const FRAMING_TOKENS: u64 = 4;

/// The model's context window and how it is shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextBudget {
    /// The model's context window, in tokens.
    pub context_tokens: u64,
    /// Tokens kept for the model's answer (the output cap).
    pub output_tokens: u64,
    /// Most tokens of one tool result the model is shown.
    pub tool_result_tokens: u64,
    /// Most tokens of all the tool results of one step together.
    pub step_tool_result_tokens: u64,
}

impl ContextBudget {
    /// Tokens one request may carry: the window less the output cap and a margin of 5% for the
    /// estimate's error.
    pub fn input_tokens(&self) -> u64 {
        self.context_tokens
            .saturating_sub(self.output_tokens)
            .saturating_sub(self.context_tokens / 20)
    }
}

/// Context windows of model families, for models not in the catalog, by the start of their base model id (after any
/// inference profile prefix such as `us.` or `global.`), from each provider's model card.
const KNOWN_WINDOWS: &[(&str, u64)] = &[
    ("anthropic.claude", 200_000),
    ("amazon.nova-micro", 128_000),
    ("amazon.nova-lite", 300_000),
    ("amazon.nova-pro", 300_000),
    ("amazon.nova-premier", 1_000_000),
    ("amazon.nova-2-lite", 1_000_000),
    ("meta.llama3-1", 128_000),
    ("meta.llama3-2", 128_000),
    ("meta.llama3-3", 128_000),
    ("mistral.mistral-large", 128_000),
];

/// The window assumed for a model we do not know: small enough for any current model.
pub const DEFAULT_CONTEXT_TOKENS: u64 = 32_000;

/// The context window of a model id or inference profile id, when we know it.
pub fn known_context_tokens(model_id: &str) -> Option<u64> {
    if let Some(info) = super::catalog::lookup(model_id) {
        return Some(info.context_tokens);
    }
    let base = base_model_id(model_id);
    KNOWN_WINDOWS
        .iter()
        .find(|(prefix, _)| base.starts_with(prefix))
        .map(|&(_, tokens)| tokens)
}

/// Estimated tokens of `bytes` bytes of text.
pub fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(BYTES_PER_TOKEN)
}

/// Estimated tokens of one message. Walks its strings without serializing anything, so it is
/// cheap enough to run on every message before every model call.
pub fn message_tokens(message: &Message) -> u64 {
    let bytes: usize = message
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text { text } => text.len(),
            ContentBlock::ToolUse {
                tool_use_id,
                name,
                input,
            } => tool_use_id.len() + name.len() + json_bytes(input),
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                ..
            } => tool_use_id.len() + result_bytes(content),
            ContentBlock::Reasoning { text, signature } => {
                text.len() + signature.as_ref().map_or(0, String::len)
            }
            ContentBlock::RedactedReasoning { data } => data.len(),
        })
        .sum();
    estimate_tokens(bytes) + FRAMING_TOKENS * (1 + message.content.len() as u64)
}

/// Estimated tokens of the parts of a request other than its messages.
pub fn overhead_tokens(system: Option<&str>, tools: &[ToolSpec]) -> u64 {
    let tools: usize = tools
        .iter()
        .map(|tool| tool.name.len() + tool.description.len() + json_bytes(&tool.input_schema))
        .sum();
    estimate_tokens(system.map_or(0, str::len) + tools) + FRAMING_TOKENS
}

/// Estimated tokens of a list of messages.
pub fn messages_tokens(messages: &[Message]) -> u64 {
    messages.iter().map(message_tokens).sum()
}

/// The earlier turns chosen for a turn's model calls.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The messages, oldest first; empty or starting with a user text message.
    pub messages: Vec<Message>,
    /// Their estimated tokens.
    pub tokens: u64,
    /// Turns left out: over the budget, or not a valid sequence.
    pub dropped_turns: usize,
}

/// Chooses the history from the most recent stored messages (oldest first): whole turns,
/// newest first, while they fit in `budget_tokens`, each turn's tool results capped for the
/// model. The history stops at the first turn (going back) that is not a sequence the model API
/// accepts, and leading messages that do not open a turn are left out.
pub fn select_history(
    mut messages: Vec<Message>,
    budget: &ContextBudget,
    budget_tokens: u64,
) -> History {
    let turns = turn_starts(&messages);
    let mut tokens = 0;
    let mut keep_from = messages.len();
    let mut kept = 0;
    for (index, &start) in turns.iter().enumerate().rev() {
        let end = turns.get(index + 1).copied().unwrap_or(messages.len());
        let turn = &mut messages[start..end];
        if !is_valid_turn(turn) {
            break;
        }
        for message in turn.iter_mut() {
            cap_tool_results(&mut message.content, budget);
        }
        let turn_tokens = messages_tokens(&messages[start..end]);
        if tokens + turn_tokens > budget_tokens {
            break;
        }
        tokens += turn_tokens;
        keep_from = start;
        kept += 1;
    }
    messages.drain(..keep_from);
    History {
        messages,
        tokens,
        dropped_turns: turns.len() - kept,
    }
}

/// Fits a request's messages into `budget_tokens` before a model call: drops the oldest
/// history turns (the messages before `turn_start`, which is moved accordingly), then replaces
/// the oldest tool results of the current turn, and large tool-use inputs, by a short note.
/// Returns false when even that is not enough.
pub fn fit_request(
    messages: &mut Vec<Message>,
    turn_start: &mut usize,
    budget_tokens: u64,
) -> bool {
    let mut total = messages_tokens(messages);
    while total > budget_tokens && *turn_start > 0 {
        let end = (1..*turn_start)
            .find(|&index| messages[index].starts_turn())
            .unwrap_or(*turn_start);
        total -= messages_tokens(&messages[..end]);
        messages.drain(..end);
        *turn_start -= end;
    }
    // The newest message is what the model must answer now: it is never elided.
    let last = messages.len().saturating_sub(1);
    for message in messages.iter_mut().take(last).skip(*turn_start + 1) {
        if total <= budget_tokens {
            break;
        }
        let before = message_tokens(message);
        elide(message);
        total = total - before + message_tokens(message);
    }
    total <= budget_tokens
}

/// Caps the tool results of one message (one step's results) for the model: each at
/// [`ContextBudget::tool_result_tokens`] and all together at
/// [`ContextBudget::step_tool_result_tokens`], shared out so that small results stay whole and
/// the largest are cut most. A cut result ends with a note saying how much was cut.
pub fn cap_tool_results(content: &mut [ContentBlock], budget: &ContextBudget) {
    let per_result = bytes_of(budget.tool_result_tokens);
    let mut sizes: Vec<(usize, usize)> = content
        .iter()
        .enumerate()
        .filter_map(|(index, block)| match block {
            ContentBlock::ToolResult { content, .. } => Some((index, result_bytes(content))),
            _ => None,
        })
        .collect();
    let total: usize = sizes.iter().map(|(_, size)| size).sum();
    if sizes.iter().all(|&(_, size)| size <= per_result)
        && total <= bytes_of(budget.step_tool_result_tokens)
    {
        return;
    }
    // Water-filling: the smallest results first, each given at most an equal share of what is left.
    sizes.sort_by_key(|&(_, size)| size);
    let mut left = bytes_of(budget.step_tool_result_tokens);
    let count = sizes.len();
    for (done, (index, size)) in sizes.into_iter().enumerate() {
        let share = left / (count - done);
        let allowed = size.min(per_result).min(share);
        left -= allowed;
        if allowed < size {
            if let Some(ContentBlock::ToolResult { content, .. }) = content.get_mut(index) {
                cut_result(content, allowed, size);
            }
        }
    }
}

/// Bytes of `tokens` tokens.
fn bytes_of(tokens: u64) -> usize {
    usize::try_from(tokens.saturating_mul(BYTES_PER_TOKEN)).unwrap_or(usize::MAX)
}

/// Cuts a tool result's parts to about `allowed` bytes, in order, and adds the note.
fn cut_result(parts: &mut Vec<ToolResultContent>, allowed: usize, total: usize) {
    let mut left = allowed;
    let mut cut = Vec::with_capacity(parts.len() + 1);
    for part in parts.drain(..) {
        if left == 0 {
            break;
        }
        let text = match part {
            ToolResultContent::Text { text } => text,
            ToolResultContent::Json { json } if json_bytes(&json) <= left => {
                left -= json_bytes(&json);
                cut.push(ToolResultContent::Json { json });
                continue;
            }
            ToolResultContent::Json { json } => json.to_string(),
        };
        let kept = shrink_text(&text, left);
        left = left.saturating_sub(kept.len());
        cut.push(ToolResultContent::Text { text: kept });
    }
    cut.push(ToolResultContent::Text {
        text: format!(
            "[the tool returned {total} bytes; only the first {allowed} are shown, to fit the \
             model's context. Ask for less (a narrower query, a smaller range) to see the rest.]"
        ),
    });
    *parts = cut;
}

/// Replaces a message's tool results and large tool-use inputs by a short note, keeping ids.
fn elide(message: &mut Message) {
    for block in &mut message.content {
        match block {
            ContentBlock::ToolResult { content, .. } => {
                let bytes = result_bytes(content);
                *content = vec![ToolResultContent::Text {
                    text: format!(
                        "[this result ({bytes} bytes) was removed from the context to make room]"
                    ),
                }];
            }
            ContentBlock::ToolUse { input, .. } if json_bytes(input) > 256 => {
                *input =
                    serde_json::json!({ "elided": "input removed from the context to make room" });
            }
            _ => {}
        }
    }
}

/// Indexes of the messages that open a turn.
fn turn_starts(messages: &[Message]) -> Vec<usize> {
    messages
        .iter()
        .enumerate()
        .filter(|(_, message)| message.starts_turn())
        .map(|(index, _)| index)
        .collect()
}

/// True when a turn is a sequence Converse accepts: it opens with user text, roles alternate,
/// it ends with the assistant, no message is empty, and every tool use is answered by exactly
/// one result in the next message (and every result answers a use of the message before).
fn is_valid_turn(turn: &[Message]) -> bool {
    let Some(last) = turn.last() else {
        return false;
    };
    if last.role != Role::Assistant || !turn[0].starts_turn() {
        return false;
    }
    for (index, message) in turn.iter().enumerate() {
        let expected = if index % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        if message.role != expected || message.content.is_empty() {
            return false;
        }
        let mut uses: Vec<&str> = tool_use_ids(message).collect();
        let mut answers: Vec<&str> = turn
            .get(index + 1)
            .map(|next| tool_result_ids(next).collect())
            .unwrap_or_default();
        uses.sort_unstable();
        answers.sort_unstable();
        if uses != answers {
            return false;
        }
        if index == 0 && tool_result_ids(message).next().is_some() {
            return false;
        }
    }
    true
}

fn tool_use_ids(message: &Message) -> impl Iterator<Item = &str> {
    message.content.iter().filter_map(|block| match block {
        ContentBlock::ToolUse { tool_use_id, .. } => Some(tool_use_id.as_str()),
        _ => None,
    })
}

fn tool_result_ids(message: &Message) -> impl Iterator<Item = &str> {
    message.content.iter().filter_map(|block| match block {
        ContentBlock::ToolResult { tool_use_id, .. } => Some(tool_use_id.as_str()),
        _ => None,
    })
}

/// Bytes of a tool result's parts.
fn result_bytes(parts: &[ToolResultContent]) -> usize {
    parts
        .iter()
        .map(|part| match part {
            ToolResultContent::Text { text } => text.len(),
            ToolResultContent::Json { json } => json_bytes(json),
        })
        .sum()
}

/// Approximate serialized size of a JSON value, without serializing it.
fn json_bytes(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|item| json_bytes(item) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(key, item)| key.len() + 4 + json_bytes(item))
                .sum::<usize>()
        }
    }
}
