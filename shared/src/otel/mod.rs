//! OpenTelemetry traces of the agent's turns (feature `otel`): GenAI spans built from a turn's
//! [`TurnTrace`] after it ends ([`spans`]) and exported over OTLP/HTTP protobuf, signed with
//! SigV4 for CloudWatch's OTLP endpoint ([`sigv4`]).
//!
//! Nothing is set up unless `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set: [`Exporter::from_env`] is then `None`. There is
//! no global pipeline, no batch processor and no background task: a turn's spans are one POST,
//! awaited by the handler before its invocation returns (Lambda freezes the environment after
//! that, so nothing may be left in flight), bounded by a short timeout; a failed export is a
//! warning in the log, never a failed turn.
//!
//! | variable | meaning |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | the traces URL, as is |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | the base URL: `/v1/traces` is appended |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TRACES_HEADERS` | `key=value,...` (values percent-decoded) sent with each export |
//! | `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` | milliseconds, default 2000, at most 10000 |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` | only `http/protobuf` |
//! | `OTEL_EXPORTER_OTLP_SIGV4` | `auto` (default: on for `*.amazonaws.com`), `on`, `off` |
//! | `OTEL_SERVICE_NAME` | the resource's `service.name` (default the function's name) |
//! | `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` | `true` puts the messages on the spans; off by default |

pub mod sigv4;
pub mod spans;

use std::{sync::Arc, time::Duration};

use aws_credential_types::provider::SharedCredentialsProvider;
use http::{HeaderName, HeaderValue};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message as _;
use url::Url;

pub use sigv4::SigV4Target;
pub use spans::{provider_name, turn_spans, TurnContent, TurnSpanContext};

use crate::domain::trace::TurnTrace;

/// The export timeout when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2000);

/// The longest export timeout accepted: an export holds the invocation open.
pub const MAX_TIMEOUT: Duration = Duration::from_millis(10_000);

/// The configuration of the exporter, as read from the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct OtelConfig {
    /// Where the spans are POSTed.
    pub endpoint: Url,
    /// Headers sent with each export (their values may be secrets: never logged).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The export's time limit.
    pub timeout: Duration,
    /// SigV4 signing, when on.
    pub sigv4: Option<SigV4Target>,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Whether messages go on the spans.
    pub capture_content: bool,
}

/// Why the OpenTelemetry settings are invalid.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name} is invalid: {reason}")]
pub struct OtelConfigError {
    /// The variable.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl OtelConfig {
    /// Reads the settings through `get`; `None` when no endpoint is set.
    pub fn read(
        get: impl Fn(&'static str) -> Option<String>,
    ) -> Result<Option<Self>, OtelConfigError> {
        let get = |name: &'static str| get(name).filter(|value| !value.trim().is_empty());
        let invalid = |name: &'static str, reason: String| OtelConfigError { name, reason };
        let (name, endpoint) = match (
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
            (None, Some(base)) => (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("{}/v1/traces", base.trim().trim_end_matches('/')),
            ),
            (None, None) => return Ok(None),
        };
        let endpoint = Url::parse(endpoint.trim())
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .ok_or_else(|| invalid(name, format!("'{endpoint}' is not an http(s) URL")))?;
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(protocol) = get(name) {
                if protocol.trim() != "http/protobuf" {
                    return Err(invalid(
                        name,
                        format!("'{protocol}' is not supported: traces are sent as http/protobuf"),
                    ));
                }
                break;
            }
        }
        let mut headers = Vec::new();
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(list) = get(name) {
                headers.extend(parse_headers(&list).map_err(|reason| invalid(name, reason))?);
            }
        }
        let timeout = match get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .map(|value| ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", value))
            .or_else(|| {
                get("OTEL_EXPORTER_OTLP_TIMEOUT").map(|v| ("OTEL_EXPORTER_OTLP_TIMEOUT", v))
            }) {
            None => DEFAULT_TIMEOUT,
            Some((name, value)) => match value.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms).min(MAX_TIMEOUT),
                _ => {
                    return Err(invalid(
                        name,
                        format!("'{value}' is not a positive number of milliseconds"),
                    ))
                }
            },
        };
        let host = endpoint.host_str().unwrap_or_default().to_ascii_lowercase();
        let on_aws = host.ends_with(".amazonaws.com");
        let sign = match get("OTEL_EXPORTER_OTLP_SIGV4").as_deref().map(str::trim) {
            None | Some("auto") => on_aws,
            Some("on" | "true") => true,
            Some("off" | "false") => false,
            Some(other) => {
                return Err(invalid(
                    "OTEL_EXPORTER_OTLP_SIGV4",
                    format!("'{other}' is not auto, on or off"),
                ))
            }
        };
        let sigv4 = if sign {
            // xray.<region>.amazonaws.com names its region; any other host signs for the
            // function's.
            let region = host
                .strip_prefix("xray.")
                .and_then(|rest| rest.strip_suffix(".amazonaws.com"))
                .map(str::to_owned)
                .or_else(|| get("AWS_REGION"))
                .ok_or_else(|| {
                    invalid(
                        "OTEL_EXPORTER_OTLP_SIGV4",
                        "signing needs a region: AWS_REGION is not set".into(),
                    )
                })?;
            Some(SigV4Target {
                region,
                service: "xray".into(),
            })
        } else {
            None
        };
        let capture = get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT");
        Ok(Some(Self {
            endpoint,
            headers,
            timeout,
            sigv4,
            service_name: get("OTEL_SERVICE_NAME")
                .or_else(|| get("AWS_LAMBDA_FUNCTION_NAME"))
                .unwrap_or_else(|| "lambda-agent".into()),
            capture_content: capture.is_some_and(|value| value.trim().eq_ignore_ascii_case("true")),
        }))
    }
}

/// `key=value,key2=value2` (the OTLP exporter's header list), values percent-decoded.
fn parse_headers(list: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut headers = Vec::new();
    for pair in list.split(',').filter(|pair| !pair.trim().is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err("each header is key=value, separated by commas".into());
        };
        let key = key.trim();
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| format!("'{key}' is not a header name"))?;
        let decoded: Vec<u8> =
            url::form_urlencoded::parse(format!("v={}", value.trim()).as_bytes())
                .next()
                .map(|(_, value)| value.into_owned().into_bytes())
                .unwrap_or_default();
        let mut value = HeaderValue::from_bytes(&decoded)
            // The value is not quoted: it may be a secret.
            .map_err(|_| format!("the value of header '{key}' is not a valid header value"))?;
        value.set_sensitive(true);
        headers.push((name, value));
    }
    Ok(headers)
}

/// Sends each turn's spans to the OTLP endpoint.
#[derive(Clone)]
pub struct Exporter {
    config: Arc<OtelConfig>,
    resource: Arc<[KeyValue]>,
    client: reqwest::Client,
    credentials: Option<SharedCredentialsProvider>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("endpoint", &self.config.endpoint.as_str())
            .field("signed", &self.config.sigv4.is_some())
            .finish_non_exhaustive()
    }
}

/// Why an exporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] OtelConfigError),
    /// The HTTP client could not be built.
    #[error("the OTLP client could not be built: {0}")]
    Client(String),
}

impl Exporter {
    /// The exporter the environment configures, or `None` when no endpoint is set (then
    /// nothing at all is built). Signing takes its credentials from `credentials` (the SDK
    /// configuration's provider).
    pub fn from_env(
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<Option<Self>, ExporterError> {
        let Some(config) = OtelConfig::read(|name| std::env::var(name).ok())? else {
            return Ok(None);
        };
        Self::new(config, credentials).map(Some)
    }

    /// An exporter of this configuration.
    pub fn new(
        config: OtelConfig,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<Self, ExporterError> {
        if config.sigv4.is_some() && credentials.is_none() {
            return Err(ExporterError::Client(
                "SigV4 signing is on but no AWS credentials are configured".into(),
            ));
        }
        let client = crate::https::reqwest_builder()
            .map_err(|error| ExporterError::Client(error.to_string()))?
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|error| ExporterError::Client(error.to_string()))?;
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut resource = vec![
            spans::string("service.name", &config.service_name),
            spans::string("cloud.provider", "aws"),
            spans::string("telemetry.sdk.name", spans::SCOPE_NAME),
            spans::string("telemetry.sdk.language", "rust"),
        ];
        if let Some(function) = get("AWS_LAMBDA_FUNCTION_NAME") {
            resource.push(spans::string("cloud.platform", "aws_lambda"));
            resource.push(spans::string("faas.name", &function));
        }
        if let Some(region) = get("AWS_REGION") {
            resource.push(spans::string("cloud.region", &region));
        }
        Ok(Self {
            config: Arc::new(config),
            resource: resource.into(),
            client,
            credentials,
        })
    }

    /// Whether the messages go on the spans (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`).
    pub fn captures_content(&self) -> bool {
        self.config.capture_content
    }

    /// The OTLP request body of a turn: its spans, protobuf-encoded. Content given in
    /// `context` is left out unless capturing it is on.
    pub fn encode_turn(&self, trace: &TurnTrace, context: &TurnSpanContext<'_>) -> Vec<u8> {
        let context = TurnSpanContext {
            content: context.content.filter(|_| self.config.capture_content),
            ..*context
        };
        spans::export_request(turn_spans(trace, &context), &self.resource).encode_to_vec()
    }

    /// Exports a turn's spans. Never fails: a failure is a warning in the log.
    pub async fn export_turn(&self, trace: &TurnTrace, context: &TurnSpanContext<'_>) {
        let started = std::time::Instant::now();
        let body = self.encode_turn(trace, context);
        let outcome = tokio::time::timeout(self.config.timeout, self.send(body)).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(Ok(())) => {
                tracing::debug!(trace_id = %trace.trace_id, latency_ms, "spans exported");
            }
            Ok(Err(error)) => {
                tracing::warn!(trace_id = %trace.trace_id, latency_ms, %error, "span export failed");
            }
            Err(_) => tracing::warn!(
                trace_id = %trace.trace_id,
                latency_ms,
                "span export timed out"
            ),
        }
    }

    async fn send(&self, body: Vec<u8>) -> Result<(), String> {
        let mut request = http::Request::post(self.config.endpoint.as_str())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .map_err(|error| format!("the request could not be built: {error}"))?;
        for (name, value) in &self.config.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        if let (Some(target), Some(provider)) = (&self.config.sigv4, &self.credentials) {
            let credentials = sigv4::credentials(provider).await?;
            sigv4::sign_request(
                &mut request,
                credentials,
                target,
                std::time::SystemTime::now(),
            )?;
        }
        let request = reqwest::Request::try_from(request)
            .map_err(|error| format!("the request could not be built: {error}"))?;
        let host = self
            .config
            .endpoint
            .host_str()
            .unwrap_or_default()
            .to_owned();
        let response = self
            .client
            .execute(request)
            .await
            // The error names the host and the failure: reqwest's message without its URL.
            .map_err(|error| format!("{host}: {}", error.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{host} answered {status}"))
        }
    }
}

#[cfg(test)]
mod tests;
