//! An [`Answer`] as Chat Completions sends it: one `chat.completion` object, or the
//! `chat.completion.chunk` events of a stream.

use serde_json::{json, Value};

use crate::script::Answer;

/// Longest text piece sent in one content delta, in characters.
const TEXT_DELTA_CHARS: usize = 16;
/// Length of each tool-call `arguments` fragment, in characters.
const ARGUMENT_DELTA_CHARS: usize = 8;

/// What identifies one completion in its object or chunks.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// `chatcmpl-...`.
    pub id: &'a str,
    /// Unix seconds.
    pub created: u64,
    /// The model asked for.
    pub model: &'a str,
}

/// The `usage` object.
pub fn usage(answer: &Answer) -> Value {
    json!({
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    })
}

/// The `chat.completion` object.
pub fn completion(answer: &Answer, envelope: &Envelope<'_>) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": answer.content,
        "refusal": null,
        "annotations": [],
    });
    if !answer.tool_calls.is_empty() {
        message["tool_calls"] = answer
            .tool_calls
            .iter()
            .map(|call| {
                json!({"id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments}})
            })
            .collect();
    }
    json!({
        "id": envelope.id,
        "object": "chat.completion",
        "created": envelope.created,
        "model": envelope.model,
        "choices": [{"index": 0, "message": message, "logprobs": null,
            "finish_reason": answer.finish_reason}],
        "usage": usage(answer),
        "service_tier": "default",
        "system_fingerprint": "fp_standin",
    })
}

/// The stream's events, each a complete `data: ...\n\n` line: a delta with the role, the
/// text in several content deltas, each tool call as a first fragment with its id, type and
/// name and then its arguments over several fragments, a last delta with the finish reason,
/// a usage chunk with no choices when `include_usage`, then `data: [DONE]`.
pub fn stream_events(answer: &Answer, envelope: &Envelope<'_>, include_usage: bool) -> Vec<String> {
    let chunk = |delta: Value, finish_reason: Option<&str>| {
        let mut chunk = json!({
            "id": envelope.id,
            "object": "chat.completion.chunk",
            "created": envelope.created,
            "model": envelope.model,
            "system_fingerprint": "fp_standin",
            "choices": [{"index": 0, "delta": delta, "logprobs": null,
                "finish_reason": finish_reason}],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )];
    for piece in pieces(
        answer.content.as_deref().unwrap_or_default(),
        TEXT_DELTA_CHARS,
    ) {
        chunks.push(chunk(json!({"content": piece}), None));
    }
    for (index, call) in answer.tool_calls.iter().enumerate() {
        chunks.push(chunk(
            json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": ""}}]}),
            None,
        ));
        for piece in pieces(&call.arguments, ARGUMENT_DELTA_CHARS) {
            chunks.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                None,
            ));
        }
    }
    chunks.push(chunk(json!({}), Some(answer.finish_reason)));
    if include_usage {
        chunks.push(json!({
            "id": envelope.id,
            "object": "chat.completion.chunk",
            "created": envelope.created,
            "model": envelope.model,
            "system_fingerprint": "fp_standin",
            "choices": [],
            "usage": usage(answer),
        }));
    }
    let mut events: Vec<String> = chunks
        .iter()
        .map(|chunk| format!("data: {chunk}\n\n"))
        .collect();
    events.push("data: [DONE]\n\n".to_owned());
    events
}

/// A string cut into pieces of at most `size` characters.
fn pieces(s: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Call;

    fn answer() -> Answer {
        Answer {
            content: Some("Let me calculate that, naïvely.".into()),
            tool_calls: vec![Call {
                id: "call_0123456789abcdef".into(),
                name: "calculator".into(),
                arguments: r#"{"expression":"(2+3)*4"}"#.into(),
            }],
            finish_reason: "tool_calls",
            prompt_tokens: 40,
            completion_tokens: 7,
            cached_tokens: 0,
            sleep_ms: None,
            failure: None,
        }
    }

    const ENVELOPE: Envelope<'static> = Envelope {
        id: "chatcmpl-1",
        created: 1,
        model: "gpt-4o-mini",
    };

    #[test]
    fn the_completion_has_the_message_finish_reason_and_usage() {
        let body = completion(&answer(), &ENVELOPE);
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(
            choice["message"]["tool_calls"][0]["function"]["name"],
            "calculator"
        );
        assert_eq!(body["usage"]["total_tokens"], 47);
        assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    }

    #[test]
    fn the_stream_splits_text_and_arguments_and_ends_with_usage_and_done() {
        let events = stream_events(&answer(), &ENVELOPE, true);
        assert_eq!(events.last().map(String::as_str), Some("data: [DONE]\n\n"));
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap().trim_end()).unwrap())
            .collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Let me calculate that, naïvely.");
        let fragments: Vec<&str> = chunks
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert!(fragments.len() > 2, "{fragments:?}");
        assert_eq!(fragments.concat(), r#"{"expression":"(2+3)*4"}"#);
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
        let usage = &chunks[chunks.len() - 1];
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["prompt_tokens"], 40);
        assert!(stream_events(&answer(), &ENVELOPE, false)
            .iter()
            .all(|e| !e.contains("\"usage\"")));
    }
}
