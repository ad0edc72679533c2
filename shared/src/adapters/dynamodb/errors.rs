//! Turning SDK failures into [`StoreError`]s that name the operation and the kind of failure
//! but never carry item contents.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::CancellationReason;

use super::items::MalformedItem;
use crate::ports::StoreError;

/// `StoreError::Unavailable` for a failed SDK call: `"<operation>: <error code or kind>"`.
/// The full error (which may carry the service's message) goes to the log only.
pub fn unavailable<E, R>(operation: &str, error: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let kind = match error {
        SdkError::ConstructionFailure(_) => "the request could not be built",
        SdkError::TimeoutError(_) => "timed out",
        SdkError::DispatchFailure(_) => "DynamoDB could not be reached",
        SdkError::ResponseError(_) => "the response could not be read",
        SdkError::ServiceError(service) => service.err().code().unwrap_or("service error"),
        _ => "unknown failure",
    };
    tracing::warn!(operation, kind, error = %DisplayErrorContext(error), "DynamoDB call failed");
    StoreError::Unavailable(format!("{operation}: {kind}"))
}

/// `StoreError::Unavailable` for an item that could not be read back.
pub fn malformed(operation: &str, error: MalformedItem) -> StoreError {
    tracing::error!(operation, %error, "malformed item in the session table");
    StoreError::Unavailable(format!("{operation}: {error}"))
}

/// `StoreError::Unavailable` for a value that could not be serialized.
pub fn unserializable(operation: &str, what: &str) -> StoreError {
    StoreError::Unavailable(format!("{operation}: the {what} could not be serialized"))
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
