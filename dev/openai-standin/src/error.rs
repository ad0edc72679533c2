//! Errors in OpenAI's shape: an HTTP status and
//! `{"error": {"message", "type", "param", "code"}}`, with the messages OpenAI gives for the
//! cases the stand-in reproduces.

use http::StatusCode;
use serde_json::{json, Value};

/// One error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `error.message`.
    pub message: String,
    /// `error.type` (`invalid_request_error`, `server_error`, `requests`, ...).
    pub kind: &'static str,
    /// `error.param`: the request field at fault, if any.
    pub param: Option<String>,
    /// `error.code` (`invalid_api_key`, `context_length_exceeded`, ...), if any.
    pub code: Option<&'static str>,
    /// Seconds for a `retry-after` header (rate limits).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// The same error naming the request field at fault.
    #[must_use]
    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// The same error with `error.code`.
    #[must_use]
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The same error with another status.
    #[must_use]
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// `Missing required parameter: '<param>'.`
    pub fn missing(param: &str) -> Self {
        Self::invalid(format!("Missing required parameter: '{param}'."))
            .param(param)
            .code("missing_required_parameter")
    }

    /// `Invalid type for '<param>': expected <expected>, but got <got> instead.`
    pub fn wrong_type(param: &str, expected: &str, got: &Value) -> Self {
        Self::invalid(format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            type_name(got)
        ))
        .param(param)
        .code("invalid_type")
    }

    /// `Invalid value: '<value>'. Supported values are: ...`
    pub fn bad_value(param: &str, value: &str, supported: &str) -> Self {
        Self::invalid(format!(
            "Invalid value: '{value}'. Supported values are: {supported}."
        ))
        .param(param)
        .code("invalid_value")
    }

    /// 401 for a request without a key.
    pub fn no_key() -> Self {
        Self::invalid(
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
        .status(StatusCode::UNAUTHORIZED)
    }

    /// 401 for a wrong key, showing it masked as OpenAI does (a few characters at each end).
    pub fn wrong_key(presented: &str) -> Self {
        Self::invalid(format!(
            "Incorrect API key provided: {}. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
            mask(presented)
        ))
        .status(StatusCode::UNAUTHORIZED)
        .code("invalid_api_key")
    }

    /// 404 for a model the stand-in does not serve.
    pub fn unknown_model(model: &str) -> Self {
        Self::invalid(format!(
            "The model `{model}` does not exist or you do not have access to it."
        ))
        .status(StatusCode::NOT_FOUND)
        .code("model_not_found")
    }

    /// 400 for a request longer than the context window.
    pub fn context_length(limit: u64, tokens: u64) -> Self {
        Self::invalid(format!(
            "This model's maximum context length is {limit} tokens. However, your messages \
             resulted in {tokens} tokens. Please reduce the length of the messages."
        ))
        .param("messages")
        .code("context_length_exceeded")
    }

    /// 404 for a path the API does not have.
    pub fn unknown_route(method: &str, path: &str) -> Self {
        Self::invalid(format!("Invalid URL ({method} {path})")).status(StatusCode::NOT_FOUND)
    }

    /// The error a `[[standin:fail=<status>]]` trigger answers with, in OpenAI's words where
    /// OpenAI has them (429 also carries `retry-after`).
    pub fn for_status(status: StatusCode) -> Self {
        let (kind, code, message) = match status.as_u16() {
            429 => (
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. \
                 Please try again in 1s.",
            ),
            500 => (
                "server_error",
                None,
                "The server had an error while processing your request. Sorry about that!",
            ),
            502 => ("server_error", None, "Bad gateway."),
            503 => (
                "server_error",
                None,
                "The engine is currently overloaded, please try again later.",
            ),
            504 => ("server_error", None, "Gateway timeout."),
            401 => (
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided.",
            ),
            403 => (
                "invalid_request_error",
                None,
                "You are not allowed to use this model.",
            ),
            404 => (
                "invalid_request_error",
                Some("model_not_found"),
                "The model does not exist or you do not have access to it.",
            ),
            s if s >= 500 => ("server_error", None, "The server had an error."),
            _ => (
                "invalid_request_error",
                None,
                "The stand-in refused the request as asked by a trigger.",
            ),
        };
        Self {
            status,
            message: message.to_owned(),
            kind,
            param: None,
            code,
            retry_after: (status == StatusCode::TOO_MANY_REQUESTS).then_some(1),
        }
    }

    /// The body: `{"error": {"message", "type", "param", "code"}}`.
    pub fn to_json(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

/// `sk-abc…wxyz` as OpenAI masks a presented key: the first three and last four characters,
/// stars between; a short key is all stars.
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// JSON's name for the type of `value`, as OpenAI's messages say it.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_key_is_masked_in_the_message() {
        let error = ApiError::wrong_key("sk-standin-secret-1234");
        assert_eq!(error.status, StatusCode::UNAUTHORIZED);
        assert_eq!(error.code, Some("invalid_api_key"));
        assert!(
            error.message.contains("sk-***************1234"),
            "{error:?}"
        );
        assert!(!error.message.contains("standin-secret"));
        assert_eq!(mask("short"), "*****");
    }

    #[test]
    fn errors_have_openais_shape() {
        let body = ApiError::context_length(10, 20).to_json();
        assert_eq!(body["error"]["code"], "context_length_exceeded");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "messages");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("This model's maximum context length is 10 tokens.")));
        let throttled = ApiError::for_status(StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(throttled.retry_after, Some(1));
        assert_eq!(throttled.to_json()["error"]["code"], "rate_limit_exceeded");
        assert_eq!(
            ApiError::for_status(StatusCode::BAD_GATEWAY).kind,
            "server_error"
        );
    }
}
