//! What fails on the wire, as the domain's [`ModelError`] kinds: what a retry may fix
//! (`Throttled`, `Timeout`, `Unavailable`) apart from what it cannot (`ContextOverflow`,
//! `Invalid`, `AccessDenied`).
//!
//! Only the status, the error's `code` and `type`, and for a refused request (400, 422) the
//! provider's message (cut to [`MAX_MESSAGE_CHARS`]) are kept: never the conversation, and
//! never the message of a 401 (OpenAI's names the presented key, masked) or a server error.

use serde::Deserialize;
use serde_json::Value;

use crate::ports::ModelError;

/// Characters of a provider's message kept in an `Invalid` or `ContextOverflow` error.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Phrases of providers' messages that mean the input is longer than the model's context
/// window (OpenAI's "This model's maximum context length is N tokens", vLLM's and others').
const OVERFLOW_PHRASES: &[&str] = &[
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "context window",
    "too many tokens",
    "prompt is too long",
    "input is too long",
];

/// The parts of an error body read: OpenAI's `{"error": {"message", "type", "code"}}`, and
/// the `{"error": "<text>"}`, `{"message"}` or `{"detail"}` of other compatible servers.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    detail: Option<Value>,
}

/// What an error says about itself.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Described {
    /// `error.message` (or the server's equivalent).
    pub message: Option<String>,
    /// `error.code`.
    pub code: Option<String>,
    /// `error.type`.
    pub kind: Option<String>,
}

impl Described {
    /// Reads an error object (`{"message", "type", "code"}`), or an error given as text.
    pub fn from_value(value: &Value) -> Self {
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        match value {
            Value::String(message) => Self {
                message: Some(message.clone()),
                ..Self::default()
            },
            Value::Object(error) => Self {
                message: text(error.get("message")),
                code: text(error.get("code")),
                kind: text(error.get("type")),
            },
            _ => Self::default(),
        }
    }

    fn from_body(body: &[u8]) -> Self {
        let Ok(body) = serde_json::from_slice::<ErrorBody>(body) else {
            return Self::default();
        };
        if let Some(error) = &body.error {
            return Self::from_value(error);
        }
        let message = body
            .message
            .or(body.detail)
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned));
        Self {
            message,
            ..Self::default()
        }
    }

    fn says_context_overflow(&self) -> bool {
        if self.code.as_deref() == Some("context_length_exceeded") {
            return true;
        }
        self.message.as_deref().is_some_and(|message| {
            let lower = message.to_ascii_lowercase();
            OVERFLOW_PHRASES.iter().any(|phrase| lower.contains(phrase))
        })
    }

    fn message_or(&self, fallback: impl FnOnce() -> String) -> String {
        self.message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map_or_else(fallback, cut)
    }
}

/// `message` cut to [`MAX_MESSAGE_CHARS`] characters.
fn cut(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}...", &message[..at]),
        None => message.to_owned(),
    }
}

/// Maps an error answer (`status`, not 2xx, and its body) to a [`ModelError`].
///
/// 401, 403 and 404 (an unknown model) are `AccessDenied`: configuration faults. 429 is
/// `Throttled`, except OpenAI's `insufficient_quota` (the account is out of credit: retrying
/// cannot help), which is `AccessDenied`. 408 is `Timeout`; 500, 502, 503, 504 and any other
/// 5xx are `Unavailable` naming only the status. 413, and a 400 or 422 whose code or message
/// says the context length is exceeded, are `ContextOverflow`; other 4xx are `Invalid` with
/// the provider's message.
pub fn map_status(status: u16, body: &[u8]) -> ModelError {
    let described = Described::from_body(body);
    match status {
        401 | 403 | 404 => ModelError::AccessDenied,
        429 if described.code.as_deref() == Some("insufficient_quota") => ModelError::AccessDenied,
        429 => ModelError::Throttled,
        408 => ModelError::Timeout,
        413 => ModelError::ContextOverflow(
            described.message_or(|| "the request is too large for the provider (HTTP 413)".into()),
        ),
        400..=499 if described.says_context_overflow() => {
            ModelError::ContextOverflow(described.message_or(|| "context length exceeded".into()))
        }
        400..=499 => ModelError::Invalid(
            described.message_or(|| format!("the provider refused the request (HTTP {status})")),
        ),
        500..=599 => ModelError::Unavailable(format!("HTTP {status}")),
        other => ModelError::Unavailable(format!("unexpected HTTP {other}")),
    }
}

/// Maps an `error` object sent inside a stream (the status was already 200).
pub fn map_stream_error(error: &Value) -> ModelError {
    let described = Described::from_value(error);
    if described.says_context_overflow() {
        return ModelError::ContextOverflow(
            described.message_or(|| "context length exceeded".into()),
        );
    }
    match described.code.as_deref() {
        Some("rate_limit_exceeded") => ModelError::Throttled,
        Some("insufficient_quota" | "invalid_api_key") => ModelError::AccessDenied,
        code => ModelError::Unavailable(format!(
            "the stream reported an error ({})",
            code.or(described.kind.as_deref()).unwrap_or("unknown")
        )),
    }
}

/// Maps a transport failure: the time limit is `Timeout`; not reaching the provider, or
/// losing the answer, `Unavailable` naming the kind only (never the URL's query, a header or
/// a body).
pub fn map_transport(error: &reqwest::Error) -> ModelError {
    if error.is_timeout() {
        ModelError::Timeout
    } else if error.is_connect() {
        ModelError::Unavailable("could not reach the model provider".into())
    } else if error.is_body() || error.is_decode() {
        ModelError::Unavailable("the model provider's answer could not be read".into())
    } else if error.is_builder() {
        ModelError::Invalid("the request could not be built".into())
    } else {
        ModelError::Unavailable("the exchange with the model provider failed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openai(message: &str, kind: &str, code: Option<&str>) -> Vec<u8> {
        serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn statuses_map_to_the_domain_kinds() {
        let server = openai("The server had an error", "server_error", None);
        for status in [500, 502, 503, 504, 529] {
            let error = map_status(status, &server);
            assert!(
                matches!(&error, ModelError::Unavailable(kind) if *kind == format!("HTTP {status}")),
                "{status}: {error:?}"
            );
            assert!(error.is_transient());
        }
        assert!(matches!(
            map_status(
                429,
                &openai(
                    "Rate limit reached",
                    "requests",
                    Some("rate_limit_exceeded")
                )
            ),
            ModelError::Throttled
        ));
        assert!(matches!(
            map_status(
                429,
                &openai(
                    "You exceeded your current quota",
                    "insufficient_quota",
                    Some("insufficient_quota")
                )
            ),
            ModelError::AccessDenied
        ));
        for status in [401, 403, 404] {
            assert!(
                matches!(map_status(status, b""), ModelError::AccessDenied),
                "{status}"
            );
        }
        assert!(matches!(map_status(408, b""), ModelError::Timeout));
        assert!(matches!(map_status(302, b""), ModelError::Unavailable(_)));
    }

    #[test]
    fn a_context_overflow_is_told_by_its_code_or_its_message() {
        let by_code = map_status(
            400,
            &openai(
                "too long",
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
        );
        assert!(matches!(by_code, ModelError::ContextOverflow(m) if m == "too long"));
        let vllm = br#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","code":400}"#;
        assert!(
            matches!(map_status(400, vllm), ModelError::ContextOverflow(m) if m.starts_with("This model's maximum"))
        );
        assert!(matches!(
            map_status(413, b"<html>"),
            ModelError::ContextOverflow(_)
        ));
        let invalid = map_status(
            400,
            &openai(
                "Unrecognized request argument supplied: thinking",
                "invalid_request_error",
                None,
            ),
        );
        assert!(
            matches!(invalid, ModelError::Invalid(m) if m == "Unrecognized request argument supplied: thinking")
        );
    }

    #[test]
    fn other_servers_error_shapes_and_unreadable_bodies_still_map() {
        assert!(
            matches!(map_status(422, br#"{"detail": "field required"}"#), ModelError::Invalid(m) if m == "field required")
        );
        assert!(
            matches!(map_status(400, br#"{"error": "bad tool"}"#), ModelError::Invalid(m) if m == "bad tool")
        );
        assert!(
            matches!(map_status(400, b"<html>oops</html>"), ModelError::Invalid(m) if m == "the provider refused the request (HTTP 400)")
        );
        let long = "x".repeat(1000);
        let cut = map_status(400, &openai(&long, "invalid_request_error", None));
        assert!(
            matches!(cut, ModelError::Invalid(m) if m.chars().count() == MAX_MESSAGE_CHARS + 3)
        );
    }

    #[test]
    fn a_401_or_server_error_message_is_never_kept() {
        let key_echo = openai(
            "Incorrect API key provided: sk-abc***wxyz.",
            "invalid_request_error",
            Some("invalid_api_key"),
        );
        assert_eq!(
            map_status(401, &key_echo).to_string(),
            "access to the model was denied"
        );
        let server = openai("internal details of the conversation", "server_error", None);
        assert_eq!(
            map_status(500, &server).to_string(),
            "the model is unavailable: HTTP 500"
        );
    }

    #[test]
    fn errors_inside_a_stream_map_by_code() {
        let error = |code: &str| serde_json::json!({"message": "m", "type": "t", "code": code});
        assert!(matches!(
            map_stream_error(&error("rate_limit_exceeded")),
            ModelError::Throttled
        ));
        assert!(matches!(
            map_stream_error(&error("context_length_exceeded")),
            ModelError::ContextOverflow(_)
        ));
        assert!(
            matches!(map_stream_error(&error("server_error")), ModelError::Unavailable(m) if m.contains("server_error"))
        );
    }
}
