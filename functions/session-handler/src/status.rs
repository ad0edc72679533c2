//! What each failure tells the client: status, problem type, `Retry-After`, and a `detail` that
//! says what to do. One table, so a failure no retry can fix is never a 503 "retry shortly", and
//! every transient one says when to come back.

use lambda_http::http::StatusCode;

use shared::{
    agent::AgentError,
    ports::{ModelError, StoreError},
};

/// The answer to one failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status.
    pub status: StatusCode,
    /// The problem type's short name (the `type` URI ends with it).
    pub kind: &'static str,
    /// Seconds after which a retry may succeed; `None` when retrying the same request cannot.
    pub retry_after: Option<u64>,
    /// What happened and what to do.
    pub detail: String,
}

/// Maps an agent failure to its answer.
pub fn failure(error: &AgentError) -> Failure {
    use StatusCode as S;
    let (status, kind, retry_after, detail): (StatusCode, &'static str, Option<u64>, String) =
        match error {
            AgentError::NotFound => (S::NOT_FOUND, "not-found", None, "no such session".into()),
            AgentError::Conflict => (
                S::CONFLICT,
                "conflict",
                Some(1),
                error.to_string() + "; send it again",
            ),
            AgentError::IdempotencyKeyReused => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                None,
                error.to_string(),
            ),
            AgentError::InFlight { retry_after } => (
                S::CONFLICT,
                "request-in-progress",
                Some(retry_after.as_secs().max(1)),
                "a request with this Idempotency-Key is still running; retry with the same key \
                 to get its answer once it is done"
                    .into(),
            ),
            AgentError::BudgetExceeded { .. } => (
                S::PAYMENT_REQUIRED,
                "budget-exceeded",
                None,
                error.to_string()
                    + "; no model was called. The budget resets with the month (monthly) or \
                       needs a new session (session), or a raised cap.",
            ),
            AgentError::RateLimited { retry_after, .. } => (
                S::TOO_MANY_REQUESTS,
                "rate-limited",
                Some(retry_after.as_secs().max(1)),
                error.to_string(),
            ),
            AgentError::ContextTooLong | AgentError::Model(ModelError::ContextOverflow(_)) => (
                S::UNPROCESSABLE_ENTITY,
                "context-too-long",
                None,
                "the message does not fit in the model's context window even without the \
                 history: send a shorter message (or raise MODEL_CONTEXT_TOKENS if the model's \
                 window is larger); nothing was stored"
                    .into(),
            ),
            AgentError::RoleNotConfigured(role) => (
                S::BAD_REQUEST,
                "model-role-not-configured",
                None,
                format!(
                    "field `model`: the role '{}' is not configured in this deployment",
                    role.as_str()
                ),
            ),
            AgentError::Model(model) => model_failure(model),
            AgentError::Tools(_) => (
                S::BAD_GATEWAY,
                "tools-unavailable",
                Some(30),
                "the tools could not be listed; nothing was stored".into(),
            ),
            AgentError::Store(store) => store_failure(store),
        };
    Failure {
        status,
        kind,
        retry_after,
        detail,
    }
}

fn parts(failure: Failure) -> (StatusCode, &'static str, Option<u64>, String) {
    (
        failure.status,
        failure.kind,
        failure.retry_after,
        failure.detail,
    )
}

fn model_failure(error: &ModelError) -> (StatusCode, &'static str, Option<u64>, String) {
    use StatusCode as S;
    match error {
        ModelError::Throttled => (
            S::SERVICE_UNAVAILABLE,
            "model-throttled",
            Some(5),
            "the model is busy; nothing was stored, retry shortly".into(),
        ),
        ModelError::Unavailable(_) => (
            S::SERVICE_UNAVAILABLE,
            "model-unavailable",
            Some(5),
            "the model is unavailable for the moment; nothing was stored, retry shortly".into(),
        ),
        ModelError::Timeout => (
            S::GATEWAY_TIMEOUT,
            "model-timeout",
            Some(2),
            "the model did not answer in time; nothing was stored, retry shortly".into(),
        ),
        ModelError::AccessDenied => (
            S::BAD_GATEWAY,
            "model-access-denied",
            None,
            "the model cannot be used: check MODEL_ID and that access to it is enabled in the \
             Bedrock console and allowed by the function's role; nothing was stored"
                .into(),
        ),
        ModelError::Invalid(_) | ModelError::ContextOverflow(_) => (
            S::BAD_GATEWAY,
            "model-rejected-request",
            None,
            "the model refused the request as invalid, and would refuse it again; nothing was \
             stored"
                .into(),
        ),
    }
}

fn store_failure(error: &StoreError) -> (StatusCode, &'static str, Option<u64>, String) {
    use StatusCode as S;
    match error {
        StoreError::TooLarge(_) => (
            S::INTERNAL_SERVER_ERROR,
            "storage-limit",
            None,
            "the turn could not be stored within the table's limits; this is a bug, and \
             retrying will not help"
                .into(),
        ),
        StoreError::Rejected(_) => (
            S::INTERNAL_SERVER_ERROR,
            "storage-rejected",
            None,
            "the table refused the request; retrying will not help".into(),
        ),
        // `AgentError::from` turns these into their own variants; answered the same here.
        StoreError::NotFound => parts(failure(&AgentError::NotFound)),
        StoreError::Conflict { .. } | StoreError::AlreadyExists => {
            parts(failure(&AgentError::Conflict))
        }
        StoreError::Unavailable(_) => (
            S::SERVICE_UNAVAILABLE,
            "storage-unavailable",
            Some(1),
            "storage is unavailable for the moment; retry shortly".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_its_status_type_and_retry_after() {
        use StatusCode as S;
        let cases: Vec<(AgentError, StatusCode, &str, Option<u64>)> = vec![
            (AgentError::NotFound, S::NOT_FOUND, "not-found", None),
            (
                AgentError::BudgetExceeded {
                    scope: shared::agent::BudgetScope::Session,
                    limit_usd: 1.0,
                    spent_usd: 1.2,
                },
                S::PAYMENT_REQUIRED,
                "budget-exceeded",
                None,
            ),
            (
                AgentError::RateLimited {
                    limit: 5,
                    retry_after: std::time::Duration::from_secs(17),
                },
                S::TOO_MANY_REQUESTS,
                "rate-limited",
                Some(17),
            ),
            (
                AgentError::RoleNotConfigured(shared::models::ModelRole::Fast),
                S::BAD_REQUEST,
                "model-role-not-configured",
                None,
            ),
            (AgentError::Conflict, S::CONFLICT, "conflict", Some(1)),
            (
                AgentError::IdempotencyKeyReused,
                S::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                None,
            ),
            (
                AgentError::InFlight {
                    retry_after: std::time::Duration::from_secs(4),
                },
                S::CONFLICT,
                "request-in-progress",
                Some(4),
            ),
            (
                AgentError::ContextTooLong,
                S::UNPROCESSABLE_ENTITY,
                "context-too-long",
                None,
            ),
            (
                AgentError::Model(ModelError::ContextOverflow("long".into())),
                S::UNPROCESSABLE_ENTITY,
                "context-too-long",
                None,
            ),
            (
                AgentError::Model(ModelError::Throttled),
                S::SERVICE_UNAVAILABLE,
                "model-throttled",
                Some(5),
            ),
            (
                AgentError::Model(ModelError::Unavailable("ModelNotReadyException".into())),
                S::SERVICE_UNAVAILABLE,
                "model-unavailable",
                Some(5),
            ),
            (
                AgentError::Model(ModelError::Timeout),
                S::GATEWAY_TIMEOUT,
                "model-timeout",
                Some(2),
            ),
            (
                AgentError::Model(ModelError::Invalid("bad".into())),
                S::BAD_GATEWAY,
                "model-rejected-request",
                None,
            ),
            (
                AgentError::Model(ModelError::AccessDenied),
                S::BAD_GATEWAY,
                "model-access-denied",
                None,
            ),
            (
                AgentError::Store(StoreError::Unavailable("timed out".into())),
                S::SERVICE_UNAVAILABLE,
                "storage-unavailable",
                Some(1),
            ),
            (
                AgentError::Store(StoreError::TooLarge("4 MB".into())),
                S::INTERNAL_SERVER_ERROR,
                "storage-limit",
                None,
            ),
            (
                AgentError::Store(StoreError::Rejected("ValidationException".into())),
                S::INTERNAL_SERVER_ERROR,
                "storage-rejected",
                None,
            ),
        ];
        for (error, status, kind, retry_after) in cases {
            let failure = failure(&error);
            assert_eq!(
                (failure.status, failure.kind, failure.retry_after),
                (status, kind, retry_after),
                "{error:?}"
            );
            // A failure no retry can fix is never a 503.
            if retry_after.is_none() {
                assert_ne!(failure.status, S::SERVICE_UNAVAILABLE, "{error:?}");
            }
        }
    }
}
