//! Model roles, and the one retry and fallback layer every model call goes through.
//!
//! A deployment configures models by role ([`ModelRole`]): `reasoning` runs the loop, `fast`
//! is for turns that ask for it, `extraction` is for summaries and memory. Each role is a
//! [`ModelChain`]: the model first, then its fallbacks.
//!
//! A call ([`ModelChain::converse`]) tries the first model; a transient failure (throttling,
//! unavailable, not ready, internal error, a timed-out attempt) is retried with jittered
//! exponential back-off, a few times; then the next model of the chain is tried. A model that
//! is denied or does not exist is skipped at once. A request the model refuses as invalid (or
//! too long) is not retried anywhere: the same request would fail the same way. No attempt
//! starts, and no back-off is waited, past the deadline the caller gives (the turn's time
//! left), so under full throttling the turn fails while there is still time to answer 503 with
//! `Retry-After`. The SDK's own retries are turned off where the clients are built, so
//! attempts never multiply.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{
    domain::message::{ToolCall, ToolStatus},
    domain::{
        model::{ModelRequest, ModelResponse},
        pricing::{PriceBook, Pricing},
        trace::FailedAttempt,
        turn::AnsweredBy,
    },
    ports::{Model, ModelError, TurnSink},
};

/// What a model is configured for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelRole {
    /// The agent loop (`MODEL_ID`).
    Reasoning,
    /// Quick, cheap turns (`FAST_MODEL_ID`).
    Fast,
    /// Summaries and memory (`EXTRACTION_MODEL_ID`).
    Extraction,
}

impl ModelRole {
    /// Every role.
    pub const ALL: [ModelRole; 3] = [Self::Reasoning, Self::Fast, Self::Extraction];

    /// The name used in configuration and request bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reasoning => "reasoning",
            Self::Fast => "fast",
            Self::Extraction => "extraction",
        }
    }
}

impl std::str::FromStr for ModelRole {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == value)
            .ok_or_else(|| {
                format!("'{value}' is not a model role: one of 'reasoning', 'fast', 'extraction'")
            })
    }
}

/// How failed attempts are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per model before the chain moves on (at least 1).
    pub attempts_per_model: u32,
    /// Back-off before the first retry; it doubles with each retry of the same model.
    pub base_delay: Duration,
    /// Longest back-off.
    pub max_delay: Duration,
    /// Least time an attempt needs: none starts with less left before the deadline.
    pub min_attempt_time: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_per_model: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(4),
            min_attempt_time: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// The back-off before retry number `retry` (1-based) of one model: "equal jitter", half
    /// of the exponential delay plus a random part of the other half, so that callers
    /// throttled together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_delay);
        let half = exponential / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

/// A model call that succeeded: the answer, and who gave it ([`AnsweredBy`]: the model, its
/// price, the attempts that failed first).
#[derive(Clone, Debug)]
pub struct Answered {
    /// The model's response.
    pub response: ModelResponse,
    /// Who answered.
    pub by: AnsweredBy,
}

/// A model call that failed on every model it could try.
#[derive(Debug)]
pub struct ChainFailure {
    /// The last failure (the one that decides the answer's status).
    pub error: ModelError,
    /// Every failed attempt, in order.
    pub failed: Vec<FailedAttempt>,
}

/// One model of a chain, with its price.
#[derive(Clone)]
struct Link {
    model: Arc<dyn Model>,
    pricing: Option<Pricing>,
}

/// A model and its fallbacks, tried in order.
#[derive(Clone)]
pub struct ModelChain {
    links: Vec<Link>,
}

impl std::fmt::Debug for ModelChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.model_ids()).finish()
    }
}

impl ModelChain {
    /// A chain of these models (the first is the role's model), priced from `prices`.
    ///
    /// # Panics
    /// When `models` is empty: a role always has a model.
    pub fn new(models: Vec<Arc<dyn Model>>, prices: &PriceBook) -> Self {
        assert!(!models.is_empty(), "a model chain needs a model");
        Self {
            links: models
                .into_iter()
                .map(|model| Link {
                    pricing: prices.price(model.model_id()),
                    model,
                })
                .collect(),
        }
    }

    /// A chain of one model with no fallback, priced from the built-in table.
    pub fn single(model: Arc<dyn Model>) -> Self {
        Self::new(vec![model], &PriceBook::default())
    }

    /// The chain's model ids, in order.
    pub fn model_ids(&self) -> Vec<&str> {
        self.links
            .iter()
            .map(|link| link.model.model_id())
            .collect()
    }

    /// Calls the chain's models in turn until one answers, retrying transient failures,
    /// never past `deadline` (see the module docs).
    pub async fn converse(
        &self,
        request: &ModelRequest,
        deadline: Instant,
        policy: &RetryPolicy,
    ) -> Result<Answered, ChainFailure> {
        self.call(request, deadline, policy, None).await
    }

    /// [`ModelChain::converse`] with the answer's text streamed to `sink` as it is generated.
    ///
    /// A failed attempt is retried (or the next model tried) only while none of its text has
    /// reached the sink: once the reader has seen part of an answer, another attempt would
    /// send it a second, different one, so the failure ends the call.
    pub async fn converse_stream(
        &self,
        request: &ModelRequest,
        deadline: Instant,
        policy: &RetryPolicy,
        sink: &dyn TurnSink,
    ) -> Result<Answered, ChainFailure> {
        self.call(request, deadline, policy, Some(sink)).await
    }

    async fn call(
        &self,
        request: &ModelRequest,
        deadline: Instant,
        policy: &RetryPolicy,
        sink: Option<&dyn TurnSink>,
    ) -> Result<Answered, ChainFailure> {
        let sink = sink.map(Watched::new);
        let mut failed = Vec::new();
        let mut last = ModelError::Timeout;
        for link in &self.links {
            for attempt in 1..=policy.attempts_per_model.max(1) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left < policy.min_attempt_time {
                    return Err(ChainFailure {
                        error: last,
                        failed,
                    });
                }
                let call = async {
                    match &sink {
                        Some(sink) => link.model.converse_stream(request, sink).await,
                        None => link.model.converse(request).await,
                    }
                };
                let outcome = tokio::time::timeout(left, call).await;
                let error = match outcome {
                    Ok(Ok(response)) => {
                        return Ok(Answered {
                            response,
                            by: AnsweredBy {
                                model_id: link.model.model_id().to_owned(),
                                pricing: link.pricing,
                                failed,
                            },
                        })
                    }
                    Ok(Err(error)) => error,
                    Err(_) => ModelError::Timeout,
                };
                failed.push(FailedAttempt {
                    model_id: link.model.model_id().to_owned(),
                    error: error.kind().to_owned(),
                });
                tracing::warn!(
                    model_id = link.model.model_id(),
                    attempt,
                    kind = error.kind(),
                    "model call failed"
                );
                if sink.as_ref().is_some_and(Watched::emitted) {
                    // Part of this answer was streamed: no other attempt may follow it.
                    return Err(ChainFailure { error, failed });
                }
                match error {
                    // The same request fails the same way on any model: give up now.
                    ModelError::Invalid(_) | ModelError::ContextOverflow(_) => {
                        return Err(ChainFailure { error, failed })
                    }
                    // This model cannot be used: the next one may.
                    ModelError::AccessDenied => {
                        last = error;
                        break;
                    }
                    transient => last = transient,
                }
                if attempt == policy.attempts_per_model {
                    break;
                }
                let wait = policy.backoff(attempt);
                let left = deadline.saturating_duration_since(Instant::now());
                if wait + policy.min_attempt_time > left {
                    // No time for a retry of this model after the back-off: try the next
                    // model now, or give up.
                    break;
                }
                tokio::time::sleep(wait).await;
            }
        }
        Err(ChainFailure {
            error: last,
            failed,
        })
    }
}

/// A sink that remembers whether any text went through it.
struct Watched<'a> {
    inner: &'a dyn TurnSink,
    emitted: AtomicBool,
}

impl<'a> Watched<'a> {
    fn new(inner: &'a dyn TurnSink) -> Self {
        Self {
            inner,
            emitted: AtomicBool::new(false),
        }
    }

    fn emitted(&self) -> bool {
        self.emitted.load(Ordering::Relaxed)
    }
}

impl TurnSink for Watched<'_> {
    fn text(&self, delta: &str) {
        if !delta.is_empty() {
            self.emitted.store(true, Ordering::Relaxed);
            self.inner.text(delta);
        }
    }

    fn tool_start(&self, call: &ToolCall) {
        self.inner.tool_start(call);
    }

    fn tool_end(&self, tool_use_id: &str, status: ToolStatus, latency: Duration) {
        self.inner.tool_end(tool_use_id, status, latency);
    }

    fn started(&self) {
        self.inner.started();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_by_name() {
        for role in ModelRole::ALL {
            assert_eq!(role.as_str().parse::<ModelRole>(), Ok(role));
        }
        assert!("slow"
            .parse::<ModelRole>()
            .is_err_and(|e| e.contains("'slow'")));
    }

    #[test]
    fn backoff_doubles_within_its_jitter_and_stops_at_the_cap() {
        let policy = RetryPolicy::default();
        for _ in 0..200 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(800));
            let late = policy.backoff(30);
            assert!(late >= Duration::from_secs(2) && late <= Duration::from_secs(4));
        }
    }
}
