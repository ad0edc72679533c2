//! The errors Bedrock Runtime's `Converse` / `ConverseStream` can answer with, as the
//! stand-in's error triggers (`[[standin:fail=<Name>]]` and the others in the crate docs)
//! produce them: the HTTP status Bedrock uses for each (from the Bedrock Runtime API
//! reference's error list for Converse and its Smithy model), the `x-amzn-errortype` name,
//! and a message in Bedrock's words. `TooManyTokens` is not a Bedrock error name but a
//! second `ThrottlingException`, with the message Bedrock gives for token-rate throttling.
//!
//! The five errors ConverseStream can also send inside a started stream, as an exception
//! event, have a lowerCamel event name ([`ErrorKind::stream_name`]).
//!
//! `aws-sdk-bedrockruntime` maps each name to its own `ConverseError` /
//! `ConverseStreamError` variant, except `ServiceQuotaExceededException` (not in the
//! Converse operations' model: the SDK reports it as an unhandled error whose `code()` is
//! the name) and `ModelStreamErrorException` on `Converse` (same).

use http::StatusCode;

/// One Bedrock error kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 429: request rate or token quota exceeded.
    Throttling,
    /// 503: the service is temporarily unavailable.
    ServiceUnavailable,
    /// 429: the model is not ready to serve inference requests.
    ModelNotReady,
    /// 500: internal server error.
    InternalServer,
    /// 408: the model took too long.
    ModelTimeout,
    /// 424: the model failed while processing the request.
    ModelError,
    /// 400: the request fails Bedrock's constraints.
    Validation,
    /// 403: the caller may not use the model.
    AccessDenied,
    /// 404: the model (or other resource) does not exist.
    ResourceNotFound,
    /// 400: an account service quota is exceeded.
    ServiceQuotaExceeded,
    /// 424: the model's stream failed (`ConverseStream`).
    ModelStreamError,
    /// 429 `ThrottlingException` with Bedrock's token-rate wording (trigger name
    /// `TooManyTokens`).
    TooManyTokens,
}

impl ErrorKind {
    /// Every kind, in the order the crate docs list them.
    pub const ALL: [ErrorKind; 12] = [
        Self::Throttling,
        Self::ServiceUnavailable,
        Self::ModelNotReady,
        Self::InternalServer,
        Self::ModelTimeout,
        Self::ModelError,
        Self::Validation,
        Self::AccessDenied,
        Self::ResourceNotFound,
        Self::ServiceQuotaExceeded,
        Self::ModelStreamError,
        Self::TooManyTokens,
    ];

    /// The kinds ConverseStream can send as an in-stream exception event.
    pub const IN_STREAM: [ErrorKind; 5] = [
        Self::Throttling,
        Self::ServiceUnavailable,
        Self::ModelStreamError,
        Self::InternalServer,
        Self::Validation,
    ];

    /// The name the error triggers use, e.g. `ThrottlingException` or `TooManyTokens`:
    /// the Bedrock error name (as sent in `x-amzn-errortype`) for every kind but
    /// [`TooManyTokens`](Self::TooManyTokens).
    pub fn name(self) -> &'static str {
        match self {
            Self::Throttling => "ThrottlingException",
            Self::ServiceUnavailable => "ServiceUnavailableException",
            Self::ModelNotReady => "ModelNotReadyException",
            Self::InternalServer => "InternalServerException",
            Self::ModelTimeout => "ModelTimeoutException",
            Self::ModelError => "ModelErrorException",
            Self::Validation => "ValidationException",
            Self::AccessDenied => "AccessDeniedException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            Self::ModelStreamError => "ModelStreamErrorException",
            Self::TooManyTokens => "TooManyTokens",
        }
    }

    /// The wire name sent in `x-amzn-errortype`, e.g. `ThrottlingException` (also for
    /// [`TooManyTokens`](Self::TooManyTokens)).
    pub fn error_type(self) -> &'static str {
        match self {
            Self::TooManyTokens => Self::Throttling.name(),
            other => other.name(),
        }
    }

    /// The `:exception-type` of the in-stream exception event for this kind
    /// (`throttlingException`, `serviceUnavailableException`, `modelStreamErrorException`,
    /// `internalServerException`, `validationException`); `None` for the others.
    pub fn stream_name(self) -> Option<&'static str> {
        match self {
            Self::Throttling => Some("throttlingException"),
            Self::ServiceUnavailable => Some("serviceUnavailableException"),
            Self::ModelStreamError => Some("modelStreamErrorException"),
            Self::InternalServer => Some("internalServerException"),
            Self::Validation => Some("validationException"),
            _ => None,
        }
    }

    /// The kind whose [`stream_name`](Self::stream_name) is `name` (exact, case-sensitive).
    pub fn from_stream_name(name: &str) -> Option<Self> {
        Self::IN_STREAM
            .into_iter()
            .find(|kind| kind.stream_name() == Some(name))
    }

    /// The in-stream exception names, comma-separated (for error messages).
    pub fn known_stream_names() -> String {
        Self::IN_STREAM
            .iter()
            .filter_map(|kind| kind.stream_name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The HTTP status Bedrock answers this error with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Throttling | Self::ModelNotReady | Self::TooManyTokens => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InternalServer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ModelTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::ModelError | Self::ModelStreamError => StatusCode::FAILED_DEPENDENCY,
            Self::Validation | Self::ServiceQuotaExceeded => StatusCode::BAD_REQUEST,
            Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::ResourceNotFound => StatusCode::NOT_FOUND,
        }
    }

    /// The `message` of the error body.
    pub fn message(self) -> &'static str {
        match self {
            Self::Throttling => "Too many requests, please wait before trying again.",
            Self::ServiceUnavailable => "Bedrock is unable to process your request.",
            Self::ModelNotReady => "The model is not ready to serve inference requests.",
            Self::InternalServer => "The server encountered an internal error.",
            Self::ModelTimeout => "Model has timed out in processing the request.",
            Self::ModelError => "The model returned an error while processing the request.",
            Self::Validation => "The request failed validation.",
            Self::AccessDenied => "You don't have access to the model with the specified model ID.",
            Self::ResourceNotFound => "The requested model was not found.",
            Self::ServiceQuotaExceeded => {
                "Your request exceeds the service quota for your account."
            }
            Self::ModelStreamError => "The model stream failed while processing the request.",
            Self::TooManyTokens => "Too many tokens, please wait before trying again.",
        }
    }

    /// The kind whose trigger [`name`](Self::name) is `name` (exact, case-sensitive, e.g.
    /// `ServiceUnavailableException` or `TooManyTokens`); `None` for any other string.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The wire names of every kind, comma-separated (for error messages).
    pub fn known_names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

/// An error the stand-in answers a model call with: its kind and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind (status and `x-amzn-errortype`).
    pub kind: ErrorKind,
    /// The `message` of the error body.
    pub message: String,
}

impl From<ErrorKind> for Failure {
    fn from(kind: ErrorKind) -> Self {
        Self {
            kind,
            message: kind.message().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_statuses_match_bedrock() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.name()), Some(kind));
        }
        let statuses: Vec<(&str, u16)> = ErrorKind::ALL
            .iter()
            .map(|k| (k.name(), k.status().as_u16()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("ThrottlingException", 429),
                ("ServiceUnavailableException", 503),
                ("ModelNotReadyException", 429),
                ("InternalServerException", 500),
                ("ModelTimeoutException", 408),
                ("ModelErrorException", 424),
                ("ValidationException", 400),
                ("AccessDeniedException", 403),
                ("ResourceNotFoundException", 404),
                ("ServiceQuotaExceededException", 400),
                ("ModelStreamErrorException", 424),
                ("TooManyTokens", 429),
            ]
        );
        assert_eq!(ErrorKind::from_name("throttlingexception"), None);
        assert_eq!(ErrorKind::from_name("Throttling"), None);
        assert_eq!(ErrorKind::TooManyTokens.error_type(), "ThrottlingException");
        assert_eq!(
            ErrorKind::ServiceUnavailable.error_type(),
            "ServiceUnavailableException"
        );
    }

    #[test]
    fn in_stream_names_are_the_event_stream_exception_names() {
        for kind in ErrorKind::IN_STREAM {
            let name = kind.stream_name().unwrap_or_default();
            assert_eq!(ErrorKind::from_stream_name(name), Some(kind));
            let first = name.chars().next().unwrap_or_default();
            assert!(first.is_ascii_lowercase(), "{name}");
            assert!(kind.name().eq_ignore_ascii_case(name), "{name}");
        }
        assert_eq!(ErrorKind::from_stream_name("ThrottlingException"), None);
        assert_eq!(ErrorKind::ModelTimeout.stream_name(), None);
        assert_eq!(
            ErrorKind::known_stream_names(),
            "throttlingException, serviceUnavailableException, modelStreamErrorException, \
             internalServerException, validationException"
        );
    }
}
