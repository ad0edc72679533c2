//! Reading what the caller sent: who they are, the session id, the message body and the
//! idempotency key. Each failure names what is wrong so the client can fix it.

use lambda_http::{request::RequestContext, Body, Request, RequestExt};
use serde_json::Value;

use shared::{config::AuthMode, models::ModelRole};

/// What is wrong with a request, and the status it answers.
#[derive(Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// 401: no identity.
    Unauthorized(String),
    /// 400: malformed.
    Invalid(String),
    /// 413: too large.
    TooLarge(String),
}

/// The caller's user id: the JWT `sub`, or the `x-user-id` header in local mode.
///
/// `#` and `%` are percent-encoded, so an id can never forge another user's storage key
/// (keys use `#` as separator).
pub fn caller(request: &Request, mode: AuthMode) -> Result<String, BadRequest> {
    let raw = match mode {
        AuthMode::Jwt => match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .authorizer
                .as_ref()
                .and_then(|authorizer| authorizer.jwt.as_ref())
                .and_then(|jwt| jwt.claims.get("sub"))
                .cloned(),
            _ => None,
        }
        .ok_or_else(|| {
            BadRequest::Unauthorized(
                "no authenticated caller: the request carries no JWT `sub` claim".into(),
            )
        })?,
        AuthMode::InsecureLocal => request
            .headers()
            .get("x-user-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                BadRequest::Unauthorized(
                    "local mode: send the caller's id in an x-user-id header".into(),
                )
            })?,
    };
    user_id(&raw)
}

/// A caller's id as storage keys use it: trimmed, 1 to 256 characters with no control
/// characters, `%` and `#` percent-encoded.
pub fn user_id(raw: &str) -> Result<String, BadRequest> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 256 || raw.chars().any(char::is_control) {
        return Err(BadRequest::Unauthorized(
            "the caller's id is empty, too long or has control characters".into(),
        ));
    }
    Ok(raw.replace('%', "%25").replace('#', "%23"))
}

/// A session id from the path: a UUID, in its canonical lowercase form.
pub fn session_id(raw: &str) -> Result<String, BadRequest> {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| {
            BadRequest::Invalid(format!(
                "'{}' is not a valid session id (a UUID)",
                truncate(raw, 64)
            ))
        })
}

/// The optional `Idempotency-Key` header: 1 to 128 visible ASCII characters.
pub fn idempotency_key(request: &Request) -> Result<Option<String>, BadRequest> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            BadRequest::Invalid(
                "header `Idempotency-Key` must be 1 to 128 visible ASCII characters".into(),
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// What a `POST /sessions/{id}/messages` body asks: `{"message": "...", "model": "fast"}`.
#[derive(Debug, PartialEq, Eq)]
pub struct SendBody {
    /// What the user said.
    pub message: String,
    /// The model role to answer with (`model`, default `reasoning`).
    pub role: ModelRole,
}

/// Reads a `POST /sessions/{id}/messages` body: `{"message": "..."}`, with an optional
/// `"model"` naming a model role (`reasoning`, `fast`, `extraction`).
pub fn message(body: &Body, max_bytes: usize) -> Result<SendBody, BadRequest> {
    let bytes: &[u8] = match body {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    // The JSON envelope may add a little; anything far beyond the limit is refused unread.
    if bytes.len() > max_bytes + 1024 {
        return Err(too_large(max_bytes));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BadRequest::Invalid(
            "the body is empty: send {\"message\": \"...\"}".into(),
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|error| BadRequest::Invalid(format!("the body is not valid JSON: {error}")))?;
    let Value::Object(fields) = value else {
        return Err(BadRequest::Invalid(
            "the body must be a JSON object: {\"message\": \"...\"}".into(),
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|key| !matches!(key.as_str(), "message" | "model"))
    {
        return Err(BadRequest::Invalid(format!(
            "unknown field `{}`: the body takes `message` and, optionally, `model`",
            truncate(unknown, 64)
        )));
    }
    let role = match fields.get("model") {
        None | Some(Value::Null) => ModelRole::Reasoning,
        Some(Value::String(name)) => name.parse().map_err(|reason: String| {
            BadRequest::Invalid(format!("field `model`: {}", truncate(&reason, 160)))
        })?,
        Some(_) => {
            return Err(BadRequest::Invalid(
                "field `model` must be a string: one of 'reasoning', 'fast', 'extraction'".into(),
            ))
        }
    };
    let message = match fields.get("message") {
        None => return Err(BadRequest::Invalid("field `message` is required".into())),
        Some(Value::String(text)) => text,
        Some(_) => {
            return Err(BadRequest::Invalid(
                "field `message` must be a string".into(),
            ))
        }
    };
    if message.trim().is_empty() {
        return Err(BadRequest::Invalid(
            "field `message` must not be empty".into(),
        ));
    }
    if message.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(SendBody {
        message: message.clone(),
        role,
    })
}

fn too_large(max_bytes: usize) -> BadRequest {
    BadRequest::TooLarge(format!(
        "field `message` is over the limit of {max_bytes} bytes"
    ))
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Body {
        Body::Text(text.to_owned())
    }

    #[test]
    fn a_well_formed_body_gives_its_message() {
        assert_eq!(
            message(&body(r#"{"message":"hi"}"#), 100),
            Ok(SendBody {
                message: "hi".to_owned(),
                role: ModelRole::Reasoning
            })
        );
        assert_eq!(
            message(&body(r#"{"message":"hi","model":"fast"}"#), 100).map(|b| b.role),
            Ok(ModelRole::Fast)
        );
    }

    #[test]
    fn each_malformed_body_names_what_is_wrong() {
        let cases = [
            ("", "empty"),
            ("{", "not valid JSON"),
            ("[1]", "JSON object"),
            ("{}", "field `message` is required"),
            (r#"{"message": 5}"#, "field `message` must be a string"),
            (r#"{"message": "  "}"#, "must not be empty"),
            (r#"{"message": "hi", "extra": 1}"#, "unknown field `extra`"),
            (
                r#"{"message": "hi", "model": "huge"}"#,
                "field `model`: 'huge' is not",
            ),
            (
                r#"{"message": "hi", "model": 3}"#,
                "field `model` must be a string",
            ),
        ];
        for (text, expected) in cases {
            match message(&body(text), 100) {
                Err(BadRequest::Invalid(detail)) => {
                    assert!(detail.contains(expected), "{text}: {detail}")
                }
                other => panic!("{text}: expected 400, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_oversized_message_is_413_whether_or_not_the_envelope_is_huge() {
        let just_over = format!(r#"{{"message":"{}"}}"#, "a".repeat(101));
        assert!(matches!(
            message(&body(&just_over), 100),
            Err(BadRequest::TooLarge(_))
        ));
        let huge = format!(r#"{{"message":"{}"}}"#, "a".repeat(10_000));
        assert!(matches!(
            message(&body(&huge), 100),
            Err(BadRequest::TooLarge(_))
        ));
        let exact = format!(r#"{{"message":"{}"}}"#, "a".repeat(100));
        assert!(message(&body(&exact), 100).is_ok());
    }

    #[test]
    fn session_ids_must_be_uuids() {
        assert!(session_id("0b9e6a4e-6a57-4c64-9f3b-2f1f0b3c2a10").is_ok());
        assert!(matches!(session_id("../etc"), Err(BadRequest::Invalid(_))));
        assert_eq!(
            session_id("0B9E6A4E-6A57-4C64-9F3B-2F1F0B3C2A10"),
            Ok("0b9e6a4e-6a57-4c64-9f3b-2f1f0b3c2a10".to_owned())
        );
    }
}
