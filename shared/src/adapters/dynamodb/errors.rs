//! Turning SDK failures into [`StoreError`]s that name the operation and the kind of failure
//! but never carry item contents.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::CancellationReason;

use super::items::MalformedItem;
use crate::ports::StoreError;

/// DynamoDB error codes a retry may fix: throttling, capacity, internal and transient errors.
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
    "TransactionCanceledException",
    "LimitExceededException",
];

/// DynamoDB error codes that mean a request was too large.
const TOO_LARGE_CODES: &[&str] = &["ItemCollectionSizeLimitExceededException"];

/// The [`StoreError`] for a failed SDK call, named `"<operation>: <error code or kind>"`:
/// [`StoreError::Unavailable`] when a retry may fix it (a timeout, the network, throttling, a
/// service fault), [`StoreError::TooLarge`] or [`StoreError::Rejected`] when it cannot (a
/// validation error, a missing table, denied access). The full error (which may carry the
/// service's message) goes to the log only.
pub fn unavailable<E, R>(operation: &str, error: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (kind, transient) = match error {
        SdkError::ConstructionFailure(_) => ("the request could not be built", false),
        SdkError::TimeoutError(_) => ("timed out", true),
        SdkError::DispatchFailure(_) => ("DynamoDB could not be reached", true),
        SdkError::ResponseError(_) => ("the response could not be read", true),
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("service error");
            (code, TRANSIENT_CODES.contains(&code))
        }
        _ => ("unknown failure", true),
    };
    tracing::warn!(operation, kind, transient, error = %DisplayErrorContext(error), "DynamoDB call failed");
    let what = format!("{operation}: {kind}");
    if transient {
        StoreError::Unavailable(what)
    } else if TOO_LARGE_CODES.contains(&kind) {
        StoreError::TooLarge(what)
    } else {
        StoreError::Rejected(what)
    }
}

/// `StoreError::Rejected` for an item that could not be read back (retrying reads it again).
pub fn malformed(operation: &str, error: MalformedItem) -> StoreError {
    tracing::error!(operation, %error, "malformed item in the session table");
    StoreError::Rejected(format!("{operation}: {error}"))
}

/// `StoreError::Rejected` for a value that could not be serialized.
pub fn unserializable(operation: &str, what: &str) -> StoreError {
    StoreError::Rejected(format!("{operation}: the {what} could not be serialized"))
}

/// True when a transaction's cancellation reason is a failed condition.
pub fn condition_failed(reason: Option<&CancellationReason>) -> bool {
    reason.and_then(CancellationReason::code) == Some("ConditionalCheckFailed")
}

/// True when a transaction was cancelled because another transaction held one of its items.
pub fn transaction_conflict(reasons: &[CancellationReason]) -> bool {
    reasons
        .iter()
        .any(|reason| reason.code() == Some("TransactionConflict"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    fn service(code: &str) -> SdkError<GetItemError, ()> {
        SdkError::service_error(
            GetItemError::generic(ErrorMetadata::builder().code(code).build()),
            (),
        )
    }

    #[test]
    fn every_sdk_error_kind_is_transient_or_not_as_a_retry_would_find() {
        let transient = |error: StoreError| matches!(error, StoreError::Unavailable(_));
        for code in TRANSIENT_CODES {
            assert!(transient(unavailable("op", &service(code))), "{code}");
        }
        for code in [
            "ValidationException",
            "ResourceNotFoundException",
            "AccessDeniedException",
            "UnrecognizedClientException",
        ] {
            let error = unavailable("op", &service(code));
            assert!(
                matches!(error, StoreError::Rejected(ref what) if what == &format!("op: {code}")),
                "{code}: {error:?}"
            );
        }
        let error = unavailable("op", &service("ItemCollectionSizeLimitExceededException"));
        assert!(matches!(error, StoreError::TooLarge(_)), "{error:?}");
        let timeout: SdkError<GetItemError, ()> = SdkError::timeout_error("slow");
        assert!(transient(unavailable("op", &timeout)));
        let dispatch: SdkError<GetItemError, ()> =
            SdkError::dispatch_failure(ConnectorError::io("refused".into()));
        assert!(transient(unavailable("op", &dispatch)));
    }
}
