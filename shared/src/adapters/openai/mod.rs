//! The `Model` port on an OpenAI-compatible Chat Completions API (feature `openai`):
//! `POST {base_url}/chat/completions` with tool calls, buffered or streamed.
//!
//! The mapping both ways is in [`wire`], the stream's assembly in [`stream`], the error
//! kinds in [`errors`]. One call is one attempt, as with Bedrock: the agent's retry layer
//! retries what [`ModelError::is_transient`] says may succeed. The one retry made here is
//! after a 401 when the key comes from a [`KeyCache`]: the secret is read again (the key was
//! rotated) and the call made once more.
//!
//! The HTTP client is `reqwest` over the executors' TLS configuration
//! ([`crate::https::tls_config`]: rustls with `ring` and the Mozilla roots): it keeps
//! connections alive between the calls of a turn and across warm invocations (a TLS
//! handshake saved per model call), reads a streamed body as it arrives, and follows no
//! redirects (a redirect must not carry the key elsewhere).
//!
//! The key is sent only as `Authorization: Bearer` (a header marked sensitive); it is never
//! logged, never in an error (a 401's message, which names the key masked, is dropped, and
//! any error text that contains the key is cut out), and `Debug` shows `***`. A key is sent
//! over plain HTTP only to a loopback host (a local stand-in or server).

pub mod errors;
pub mod stream;
pub mod wire;

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::{header, Client, Response, StatusCode};
use url::Url;

use crate::{
    adapters::secrets::{ApiKey, KeyCache, SecretError},
    domain::model::{ModelRequest, ModelResponse},
    ports::{Model, ModelError, TurnSink},
};

use errors::{map_status, map_transport};
use stream::{SseDecoder, StreamAssembler, StreamDelta};

/// The `User-Agent` sent.
pub const USER_AGENT: &str = concat!("lambda-agent/", env!("CARGO_PKG_VERSION"));
/// Bytes of an answer read at most (a buffered completion, or a whole stream).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Bytes of an error answer read at most.
const MAX_ERROR_BYTES: usize = 64 * 1024;
/// The longest a connection is set up for, within the call's time limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection is kept for the next call.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why an [`OpenAiModel`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiConfigError {
    /// The base URL is not an `http` or `https` URL with a host.
    #[error("the OpenAI base URL is not usable: {0}")]
    Url(String),
    /// A key would go over plain HTTP to a host that is not loopback.
    #[error(
        "the OpenAI base URL is plain http to {0}: an API key is sent only over https, or over \
         http to a loopback host"
    )]
    InsecureKey(String),
    /// The HTTP client could not be built (TLS configuration).
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
}

/// Where the key comes from.
enum Credential {
    /// No key (a local server that needs none).
    None,
    /// A key read once.
    Key(ApiKey),
    /// A key read through a cache, read again after a rejection.
    Cached(Arc<KeyCache>),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Key(_) => "key(***)",
            Self::Cached(_) => "cached secret",
        })
    }
}

/// A model behind an OpenAI-compatible Chat Completions API.
pub struct OpenAiModel {
    client: Client,
    endpoint: Url,
    model: String,
    credential: Credential,
    streaming: bool,
}

impl fmt::Debug for OpenAiModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("endpoint", &self.endpoint.as_str())
            .field("model", &self.model)
            .field("credential", &self.credential)
            .field("streaming", &self.streaming)
            .finish_non_exhaustive()
    }
}

/// What one attempt ended with, before the key retry.
enum Attempt {
    Done(ModelResponse),
    /// HTTP 401: the key was refused.
    Unauthorized,
    Failed(ModelError),
}

impl OpenAiModel {
    /// `model` (e.g. `gpt-4o-mini`) at `base_url` (e.g. `https://api.openai.com/v1`: the
    /// calls go to `{base_url}/chat/completions`, a query kept), authenticated with `api_key`
    /// when given, each call limited to `timeout` (the whole exchange, a stream included).
    pub fn new(
        base_url: Url,
        model: impl Into<String>,
        api_key: Option<ApiKey>,
        timeout: Duration,
    ) -> Result<Self, OpenAiConfigError> {
        let endpoint = endpoint(&base_url)?;
        let credential = match api_key {
            Some(key) => {
                check_key_transport(&endpoint)?;
                Credential::Key(key)
            }
            None => Credential::None,
        };
        let client = crate::https::reqwest_builder()
            .map_err(|error| OpenAiConfigError::Client(error.to_string()))?
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|error| OpenAiConfigError::Client(error.to_string()))?;
        Ok(Self {
            client,
            endpoint,
            model: model.into(),
            credential,
            streaming: false,
        })
    }

    /// The same model taking its key from `keys` (a Secrets Manager secret behind a TTL
    /// cache) instead: after a 401 the secret is read again and the call made once more, so
    /// a rotated key works without a restart.
    pub fn with_key_cache(mut self, keys: Arc<KeyCache>) -> Result<Self, OpenAiConfigError> {
        check_key_transport(&self.endpoint)?;
        self.credential = Credential::Cached(keys);
        Ok(self)
    }

    /// The same model, asking for streamed answers (`stream: true` with
    /// `stream_options.include_usage`) when `streaming`, assembled into the same response.
    #[must_use]
    pub fn with_streaming(mut self, streaming: bool) -> Self {
        self.streaming = streaming;
        self
    }

    /// Where the calls go.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    async fn key(&self) -> Result<Option<ApiKey>, ModelError> {
        match &self.credential {
            Credential::None => Ok(None),
            Credential::Key(key) => Ok(Some(key.clone())),
            Credential::Cached(keys) => keys.get().await.map(Some).map_err(secret_error),
        }
    }

    async fn attempt(
        &self,
        body: &Bytes,
        key: Option<&ApiKey>,
        sink: Option<&dyn TurnSink>,
    ) -> Attempt {
        let streaming = self.streaming || sink.is_some();
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::ACCEPT,
                if streaming {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .body(body.clone());
        if let Some(key) = key {
            // `bearer_auth` marks the header sensitive: it is never printed.
            request = request.bearer_auth(key.expose());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Attempt::Failed(map_transport(&error)),
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Attempt::Unauthorized;
        }
        if !status.is_success() {
            let body = read_capped(response, MAX_ERROR_BYTES)
                .await
                .unwrap_or_default();
            return Attempt::Failed(map_status(status.as_u16(), &body));
        }
        let event_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let answer = if event_stream {
            read_stream(response, sink).await
        } else {
            // A buffered answer, also when a server ignored `stream: true`.
            match read_capped(response, MAX_RESPONSE_BYTES).await {
                Ok(body) => wire::from_completion(&body),
                Err(error) => Err(error),
            }
        };
        match answer {
            Ok(response) => Attempt::Done(response),
            Err(error) => Attempt::Failed(error),
        }
    }
}

#[async_trait]
impl Model for OpenAiModel {
    fn model_id(&self) -> &str {
        &self.model
    }

    async fn converse(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        self.call(request, None).await
    }

    async fn converse_stream(
        &self,
        request: &ModelRequest,
        sink: &dyn TurnSink,
    ) -> Result<ModelResponse, ModelError> {
        self.call(request, Some(sink)).await
    }
}

impl OpenAiModel {
    /// One call, streamed (its text to `sink`) when a sink is given or streaming is on.
    async fn call(
        &self,
        request: &ModelRequest,
        sink: Option<&dyn TurnSink>,
    ) -> Result<ModelResponse, ModelError> {
        let streaming = self.streaming || sink.is_some();
        let body = wire::chat_body(&self.model, request, streaming)?;
        let body = Bytes::from(
            serde_json::to_vec(&body).map_err(|error| ModelError::Invalid(error.to_string()))?,
        );
        let key = self.key().await?;
        let outcome = match (
            self.attempt(&body, key.as_ref(), sink).await,
            &self.credential,
            &key,
        ) {
            (Attempt::Unauthorized, Credential::Cached(keys), Some(rejected)) => {
                tracing::warn!(
                    model = %self.model,
                    "the model provider rejected the cached API key; reading the secret again"
                );
                let fresh = keys
                    .refresh_after_rejection(rejected)
                    .await
                    .map_err(secret_error)?;
                self.attempt(&body, Some(&fresh), sink).await
            }
            (outcome, _, _) => outcome,
        };
        match outcome {
            Attempt::Done(response) => Ok(response),
            Attempt::Unauthorized => Err(ModelError::AccessDenied),
            Attempt::Failed(error) => Err(match &key {
                Some(key) => scrub(error, key),
                None => error,
            }),
        }
    }
}

/// `{base_url}/chat/completions`, keeping the base URL's query.
fn endpoint(base_url: &Url) -> Result<Url, OpenAiConfigError> {
    if !matches!(base_url.scheme(), "http" | "https") || base_url.host().is_none() {
        return Err(OpenAiConfigError::Url(format!(
            "{}: an http or https URL with a host is needed",
            base_url.scheme()
        )));
    }
    if !base_url.username().is_empty() || base_url.password().is_some() {
        return Err(OpenAiConfigError::Url(
            "credentials in the URL are not accepted; use the API key secret".into(),
        ));
    }
    let mut endpoint = base_url.clone();
    endpoint
        .path_segments_mut()
        .map_err(|()| OpenAiConfigError::Url("the URL cannot be a base".into()))?
        .pop_if_empty()
        .extend(["chat", "completions"]);
    Ok(endpoint)
}

/// A key goes over https, or over http to a loopback host only.
fn check_key_transport(endpoint: &Url) -> Result<(), OpenAiConfigError> {
    if endpoint.scheme() == "https" || crate::https::is_loopback(endpoint) {
        Ok(())
    } else {
        Err(OpenAiConfigError::InsecureKey(
            endpoint.host_str().unwrap_or_default().to_owned(),
        ))
    }
}

/// A key that cannot be read: Secrets Manager failing may pass (`Unavailable`); a secret
/// without a usable key is a configuration fault (`AccessDenied`).
fn secret_error(error: SecretError) -> ModelError {
    tracing::warn!(error = %error, "the model provider's API key could not be read");
    match error {
        SecretError::Fetch(_) => {
            ModelError::Unavailable("the API key secret could not be read".into())
        }
        SecretError::NoString | SecretError::BadJson | SecretError::Empty => {
            ModelError::AccessDenied
        }
    }
}

/// The error with any copy of the key cut out of its text (defence in depth: providers'
/// messages for refused requests do not name the key).
fn scrub(error: ModelError, key: &ApiKey) -> ModelError {
    let key = key.expose();
    if key.is_empty() {
        return error;
    }
    let clean = |text: String| text.replace(key, "***");
    match error {
        ModelError::Invalid(text) => ModelError::Invalid(clean(text)),
        ModelError::ContextOverflow(text) => ModelError::ContextOverflow(clean(text)),
        ModelError::Unavailable(text) => ModelError::Unavailable(clean(text)),
        other => other,
    }
}

/// The body, at most `limit` bytes (more is `Unavailable`).
async fn read_capped(response: Response, limit: usize) -> Result<Vec<u8>, ModelError> {
    match crate::https::read_response(response, limit)
        .await
        .map_err(|e| map_transport(&e))?
    {
        (body, false) => Ok(body),
        (_, true) => Err(ModelError::Unavailable(format!(
            "the model provider's answer is larger than {limit} bytes"
        ))),
    }
}

/// A streamed answer, read and assembled as it arrives (its text handed to `sink`); the
/// stream stops being read at `[DONE]`.
async fn read_stream(
    mut response: Response,
    sink: Option<&dyn TurnSink>,
) -> Result<ModelResponse, ModelError> {
    let forward = |deltas: Vec<StreamDelta>| {
        if let Some(sink) = sink {
            for delta in deltas {
                if let StreamDelta::Text(text) = delta {
                    sink.text(&text);
                }
            }
        }
    };
    let mut decoder = SseDecoder::default();
    let mut assembler = StreamAssembler::default();
    let mut read = 0usize;
    while !assembler.is_done() {
        let Some(chunk) = response.chunk().await.map_err(|e| map_transport(&e))? else {
            for event in decoder.finish() {
                forward(assembler.push(&event)?);
            }
            break;
        };
        read += chunk.len();
        if read > MAX_RESPONSE_BYTES {
            return Err(ModelError::Unavailable(format!(
                "the model provider's stream is larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        for event in decoder.push(&chunk) {
            forward(assembler.push(&event)?);
        }
    }
    assembler.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn the_endpoint_is_the_base_url_with_chat_completions_and_its_query() {
        let at = |base: &str| endpoint(&url(base)).unwrap().to_string();
        assert_eq!(
            at("https://api.openai.com/v1"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            at("https://api.openai.com/v1/"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            at("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/chat/completions"
        );
        assert_eq!(
            at("https://x.example/openai/v1?api-version=2024-10-21"),
            "https://x.example/openai/v1/chat/completions?api-version=2024-10-21"
        );
        assert!(endpoint(&url("ftp://x.example/")).is_err());
        assert!(endpoint(&url("https://user:pw@x.example/v1")).is_err());
    }

    #[test]
    fn a_key_goes_over_https_or_to_loopback_only() {
        let key = || Some(ApiKey::new("sk-test"));
        let build = |base: &str, key| OpenAiModel::new(url(base), "m", key, Duration::from_secs(5));
        assert!(build("https://api.openai.com/v1", key()).is_ok());
        assert!(build("http://127.0.0.1:1/v1", key()).is_ok());
        assert!(build("http://[::1]:1/v1", key()).is_ok());
        assert!(build("http://localhost:1/v1", key()).is_ok());
        let remote = build("http://models.internal:8000/v1", key()).unwrap_err();
        assert!(
            matches!(&remote, OpenAiConfigError::InsecureKey(host) if host == "models.internal"),
            "{remote}"
        );
        assert!(
            build("http://models.internal:8000/v1", None).is_ok(),
            "no key, nothing to leak"
        );
    }

    #[test]
    fn the_debug_output_shows_no_key() {
        let model = OpenAiModel::new(
            url("https://api.openai.com/v1"),
            "gpt-4o-mini",
            Some(ApiKey::new("sk-do-not-print-me")),
            Duration::from_secs(5),
        )
        .unwrap()
        .with_streaming(true);
        let debug = format!("{model:?}");
        assert!(!debug.contains("do-not-print"), "{debug}");
        assert!(
            debug.contains("key(***)")
                && debug.contains("gpt-4o-mini")
                && debug.contains("streaming: true"),
            "{debug}"
        );
    }

    #[test]
    fn an_error_text_holding_the_key_has_it_cut_out() {
        let key = ApiKey::new("sk-leaky-123");
        let error = scrub(
            ModelError::Invalid("bad key sk-leaky-123 given".into()),
            &key,
        );
        assert_eq!(
            error.to_string(),
            "the model rejected the request: bad key *** given"
        );
    }
}
