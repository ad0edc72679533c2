//! A turn's OpenTelemetry GenAI spans, built from its [`TurnTrace`] after the turn: the loop
//! records what it did as it always does, and pays nothing for tracing while it runs.
//!
//! - `invoke_agent {agent}`: the turn, from the request's arrival to its end (the root);
//! - `chat {model}`: each model call, a child of the turn (retries and fallbacks are events);
//! - `execute_tool {tool}`: each tool call, a child of the turn.
//!
//! Span ids come from the trace id ([`span_ids`]), so the `traceparent` the driver sent a tool
//! executor names the very `execute_tool` span exported here.

use chrono::DateTime;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValue},
    resource::v1::Resource,
    trace::v1::{
        span::{Event, SpanKind},
        status::StatusCode,
        ResourceSpans, ScopeSpans, Span, Status,
    },
};
use serde_json::json;

use crate::domain::{
    model::Usage,
    trace::{span_ids, FailedAttempt, TraceStep, TurnTrace},
    turn::StopReason,
};

/// Who ran the turn, as the spans name it. Never the user id.
#[derive(Clone, Copy, Debug)]
pub struct TurnSpanContext<'a> {
    /// The session: `gen_ai.conversation.id`.
    pub session_id: &'a str,
    /// `gen_ai.agent.name`.
    pub agent_name: &'a str,
    /// `gen_ai.provider.name`: `aws.bedrock` or `openai` (see [`provider_name`]).
    pub provider: &'a str,
    /// The turn's messages, put on the turn's span only when capturing content is opted in
    /// (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`); `None` otherwise.
    pub content: Option<TurnContent<'a>>,
}

/// What was said in a turn.
#[derive(Clone, Copy, Debug)]
pub struct TurnContent<'a> {
    /// The user's message.
    pub input: &'a str,
    /// The answer.
    pub output: &'a str,
}

/// The `gen_ai.provider.name` of a configured provider.
pub fn provider_name(provider: &crate::config::ModelProvider) -> &'static str {
    match provider {
        crate::config::ModelProvider::Bedrock => "aws.bedrock",
        crate::config::ModelProvider::OpenAi { .. } => "openai",
    }
}

/// The instrumentation scope of the spans.
pub const SCOPE_NAME: &str = "lambda-agent";

/// The turn's spans: the turn's own first, then one per step, in the trace's order.
///
/// A trace whose id is not 32 hex digits (never one this crate made) gets no spans.
pub fn turn_spans(trace: &TurnTrace, context: &TurnSpanContext<'_>) -> Vec<Span> {
    let Some(trace_id) = trace_id_bytes(&trace.trace_id) else {
        return Vec::new();
    };
    let turn_start = DateTime::parse_from_rfc3339(&trace.started_at)
        .ok()
        .and_then(|start| start.timestamp_nanos_opt())
        .and_then(|nanos| u64::try_from(nanos).ok())
        .unwrap_or(0);
    let turn_end = turn_start.saturating_add(millis_to_nanos(trace.duration_ms));
    let at = |offset_ms: Option<u64>, latency_ms: u64| {
        let start = turn_start
            .saturating_add(millis_to_nanos(offset_ms.unwrap_or(0)))
            .min(turn_end);
        let end = start
            .saturating_add(millis_to_nanos(latency_ms))
            .min(turn_end);
        (start, end)
    };
    let turn_span_id = span_ids::turn(&trace.trace_id);
    let conversation = string("gen_ai.conversation.id", context.session_id);
    let provider = string("gen_ai.provider.name", context.provider);

    let mut spans = Vec::with_capacity(trace.steps.len() + 1);
    let first_model = trace.steps.iter().find_map(|step| match step {
        TraceStep::Model {
            model_id,
            failed_attempts,
            ..
        } => Some(requested_model(model_id, failed_attempts)),
        TraceStep::ModelFailed {
            failed_attempts, ..
        } => failed_attempts.first().map(|a| a.model_id.as_str()),
        TraceStep::Tool { .. } => None,
    });
    let mut attributes = vec![
        string("gen_ai.operation.name", "invoke_agent"),
        provider.clone(),
        string("gen_ai.agent.name", context.agent_name),
        conversation.clone(),
        strings(
            "gen_ai.response.finish_reasons",
            [trace.stop_reason.as_str()],
        ),
        int("lambda_agent.turn", trace.turn),
    ];
    if let Some(model) = first_model {
        attributes.push(string("gen_ai.request.model", model));
    }
    usage_attributes(&mut attributes, &trace.usage);
    if let Some(content) = &context.content {
        attributes.push(string(
            "gen_ai.input.messages",
            &json!([{"role": "user", "parts": [{"type": "text", "content": content.input}]}])
                .to_string(),
        ));
        attributes.push(string(
            "gen_ai.output.messages",
            &json!([{
                "role": "assistant",
                "parts": [{"type": "text", "content": content.output}],
                "finish_reason": trace.stop_reason.as_str(),
            }])
            .to_string(),
        ));
    }
    let turn_failed = trace.stop_reason == StopReason::ModelError;
    if turn_failed {
        let kind = trace.steps.iter().rev().find_map(|step| match step {
            TraceStep::ModelFailed {
                failed_attempts, ..
            } => failed_attempts.last().map(|a| a.error.as_str()),
            _ => None,
        });
        attributes.push(string("error.type", kind.unwrap_or("model_error")));
    }
    spans.push(Span {
        trace_id: trace_id.to_vec(),
        span_id: turn_span_id.to_be_bytes().to_vec(),
        name: format!("invoke_agent {}", context.agent_name),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: turn_start,
        end_time_unix_nano: turn_end,
        attributes,
        status: status(turn_failed, "the model failed part-way"),
        ..Span::default()
    });

    for (index, step) in trace.steps.iter().enumerate() {
        let span = match step {
            TraceStep::Model {
                start_ms,
                model_id,
                latency_ms,
                usage,
                stop_reason,
                failed_attempts,
                ..
            } => {
                let (start, end) = at(*start_ms, *latency_ms);
                let mut attributes = vec![
                    string("gen_ai.operation.name", "chat"),
                    provider.clone(),
                    string(
                        "gen_ai.request.model",
                        requested_model(model_id, failed_attempts),
                    ),
                    string("gen_ai.response.model", model_id),
                    strings("gen_ai.response.finish_reasons", [stop_reason.as_str()]),
                    conversation.clone(),
                ];
                usage_attributes(&mut attributes, usage);
                Span {
                    span_id: span_ids::model(&trace.trace_id, index)
                        .to_be_bytes()
                        .to_vec(),
                    name: format!("chat {model_id}"),
                    kind: SpanKind::Client as i32,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes,
                    events: attempt_events(failed_attempts, start),
                    ..Span::default()
                }
            }
            TraceStep::ModelFailed {
                start_ms,
                latency_ms,
                failed_attempts,
                ..
            } => {
                let (start, end) = at(*start_ms, *latency_ms);
                let model = failed_attempts
                    .first()
                    .map_or("unknown", |a| a.model_id.as_str());
                let kind = failed_attempts
                    .last()
                    .map_or("unknown", |a| a.error.as_str());
                Span {
                    span_id: span_ids::model(&trace.trace_id, index)
                        .to_be_bytes()
                        .to_vec(),
                    name: format!("chat {model}"),
                    kind: SpanKind::Client as i32,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes: vec![
                        string("gen_ai.operation.name", "chat"),
                        provider.clone(),
                        string("gen_ai.request.model", model),
                        conversation.clone(),
                        string("error.type", kind),
                    ],
                    events: attempt_events(failed_attempts, start),
                    status: status(true, kind),
                    ..Span::default()
                }
            }
            TraceStep::Tool {
                step,
                start_ms,
                name,
                tool_use_id,
                latency_ms,
                status: outcome,
                error,
                input,
                result,
                ..
            } => {
                let (start, end) = at(*start_ms, *latency_ms);
                let failed = outcome != "success";
                let mut attributes = vec![
                    string("gen_ai.operation.name", "execute_tool"),
                    string("gen_ai.tool.name", name),
                    string("gen_ai.tool.call.id", tool_use_id),
                    string("gen_ai.tool.type", "function"),
                    conversation.clone(),
                ];
                if failed {
                    attributes.push(string("error.type", "tool_error"));
                }
                // Arguments and result (as the trace keeps them: masked, capped) are content:
                // only when content is captured.
                if context.content.is_some() {
                    if let Some(input) = input {
                        attributes.push(string("gen_ai.tool.call.arguments", &input.to_string()));
                    }
                    if let Some(result) = result {
                        attributes.push(string("gen_ai.tool.call.result", result));
                    }
                }
                // A tool's error message may quote what it was given: content, so only when
                // content is captured.
                let message = match (&context.content, error) {
                    (Some(_), Some(error)) => error.as_str(),
                    _ => "the tool failed",
                };
                Span {
                    span_id: span_ids::tool(&trace.trace_id, *step, tool_use_id)
                        .to_be_bytes()
                        .to_vec(),
                    name: format!("execute_tool {name}"),
                    kind: SpanKind::Internal as i32,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes,
                    status: status(failed, message),
                    ..Span::default()
                }
            }
        };
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            parent_span_id: turn_span_id.to_be_bytes().to_vec(),
            ..span
        });
    }
    spans
}

/// The OTLP request carrying `spans`, under a resource of these attributes.
pub fn export_request(spans: Vec<Span>, resource: &[KeyValue]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource.to_vec(),
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// The model first asked for in a step: the first failed attempt's, or the one that answered.
fn requested_model<'a>(answered: &'a str, failed: &'a [FailedAttempt]) -> &'a str {
    failed.first().map_or(answered, |a| a.model_id.as_str())
}

/// The usage attributes: `input_tokens` counts every input token, cached ones included, as
/// the conventions say; the cache's shares are given apart.
fn usage_attributes(attributes: &mut Vec<KeyValue>, usage: &Usage) {
    attributes.push(int("gen_ai.usage.input_tokens", usage.all_input_tokens()));
    attributes.push(int("gen_ai.usage.output_tokens", usage.output_tokens));
    attributes.push(int(
        "gen_ai.usage.cache_read.input_tokens",
        usage.cache_read_tokens,
    ));
    attributes.push(int(
        "gen_ai.usage.cache_creation.input_tokens",
        usage.cache_write_tokens,
    ));
}

/// A failed attempt before the answer (a retry or a fallback), as an event at the span's start.
fn attempt_events(failed: &[FailedAttempt], at: u64) -> Vec<Event> {
    failed
        .iter()
        .map(|attempt| Event {
            time_unix_nano: at,
            name: "gen_ai.attempt.failed".to_owned(),
            attributes: vec![
                string("gen_ai.request.model", &attempt.model_id),
                string("error.type", &attempt.error),
            ],
            ..Event::default()
        })
        .collect()
}

fn status(failed: bool, message: &str) -> Option<Status> {
    failed.then(|| Status {
        message: message.to_owned(),
        code: StatusCode::Error as i32,
    })
}

/// The 16 bytes of a 32-hex-digit trace id, if it is one (and not all zeros).
pub fn trace_id_bytes(trace_id: &str) -> Option<[u8; 16]> {
    let value = u128::from_str_radix(trace_id, 16).ok()?;
    (trace_id.len() == 32 && value != 0).then(|| value.to_be_bytes())
}

fn millis_to_nanos(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

/// A string attribute.
pub fn string(key: &str, value: &str) -> KeyValue {
    attribute(key, Value::StringValue(value.to_owned()))
}

fn int(key: &str, value: u64) -> KeyValue {
    attribute(
        key,
        Value::IntValue(i64::try_from(value).unwrap_or(i64::MAX)),
    )
}

fn strings<'a>(key: &str, values: impl IntoIterator<Item = &'a str>) -> KeyValue {
    attribute(
        key,
        Value::ArrayValue(ArrayValue {
            values: values
                .into_iter()
                .map(|value| AnyValue {
                    value: Some(Value::StringValue(value.to_owned())),
                })
                .collect(),
        }),
    )
}

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Usage;

    pub(crate) fn sample_trace() -> TurnTrace {
        let usage = Usage {
            input_tokens: 100,
            output_tokens: 20,
            cache_read_tokens: 1000,
            cache_write_tokens: 50,
        };
        TurnTrace {
            turn: 3,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            started_at: "2026-01-01T00:00:00+00:00".into(),
            duration_ms: 1000,
            stop_reason: StopReason::EndTurn,
            usage,
            cost: None,
            groundedness: None,
            steps: vec![
                TraceStep::Model {
                    step: 1,
                    start_ms: Some(10),
                    model_id: "m2".into(),
                    latency_ms: 300,
                    usage,
                    cost: None,
                    stop_reason: "tool_use".into(),
                    failed_attempts: vec![FailedAttempt {
                        model_id: "m1".into(),
                        error: "throttled".into(),
                    }],
                },
                TraceStep::Tool {
                    step: 1,
                    start_ms: Some(310),
                    name: "calculator".into(),
                    tool_use_id: "tu1".into(),
                    latency_ms: 5,
                    status: "error".into(),
                    error: Some("bad expression 2+".into()),
                    input: Some(serde_json::json!({"expression": "2+"})),
                    result: None,
                    cost: None,
                },
                TraceStep::Model {
                    step: 2,
                    start_ms: Some(320),
                    model_id: "m2".into(),
                    latency_ms: 5000,
                    usage: Usage::default(),
                    cost: None,
                    stop_reason: "end_turn".into(),
                    failed_attempts: vec![],
                },
            ],
            omitted_tool_steps: 0,
        }
    }

    fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    fn context(content: Option<TurnContent<'static>>) -> TurnSpanContext<'static> {
        TurnSpanContext {
            session_id: "session-1",
            agent_name: "lambda-agent",
            provider: "aws.bedrock",
            content,
        }
    }

    #[test]
    fn a_turn_is_an_agent_span_over_its_chat_and_tool_spans() {
        let trace = sample_trace();
        let spans = turn_spans(&trace, &context(None));
        let names: Vec<_> = spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "invoke_agent lambda-agent",
                "chat m2",
                "execute_tool calculator",
                "chat m2"
            ]
        );
        let root = &spans[0];
        assert!(root.parent_span_id.is_empty());
        for span in &spans[1..] {
            assert_eq!(span.parent_span_id, root.span_id);
            assert_eq!(span.trace_id, root.trace_id);
            assert!(span.start_time_unix_nano >= root.start_time_unix_nano);
            assert!(
                span.end_time_unix_nano <= root.end_time_unix_nano,
                "clamped to the turn"
            );
        }
        assert_eq!(
            root.end_time_unix_nano - root.start_time_unix_nano,
            1_000_000_000
        );
        assert_eq!(
            spans[1].start_time_unix_nano - root.start_time_unix_nano,
            10_000_000
        );
        let chat = &spans[1];
        assert_eq!(
            attr(chat, "gen_ai.usage.input_tokens"),
            Some(&Value::IntValue(1150))
        );
        assert_eq!(
            attr(chat, "gen_ai.usage.cache_read.input_tokens"),
            Some(&Value::IntValue(1000))
        );
        assert_eq!(
            attr(chat, "gen_ai.request.model"),
            Some(&Value::StringValue("m1".into()))
        );
        assert_eq!(chat.events.len(), 1, "the failed attempt");
        let tool = &spans[2];
        assert_eq!(
            tool.span_id,
            span_ids::tool(&trace.trace_id, 1, "tu1").to_be_bytes()
        );
        assert_eq!(
            tool.status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
        assert_eq!(tool.status.as_ref().unwrap().message, "the tool failed");
        assert!(attr(root, "gen_ai.input.messages").is_none());
    }

    #[test]
    fn content_is_on_the_spans_only_when_given() {
        let trace = sample_trace();
        let spans = turn_spans(
            &trace,
            &context(Some(TurnContent {
                input: "What is 2+?",
                output: "It is not an expression.",
            })),
        );
        let Some(Value::StringValue(input)) = attr(&spans[0], "gen_ai.input.messages") else {
            panic!("no input messages");
        };
        assert!(input.contains("What is 2+?"));
        assert_eq!(
            spans[2].status.as_ref().unwrap().message,
            "bad expression 2+"
        );
    }

    #[test]
    fn a_trace_id_that_is_not_32_hex_digits_gets_no_spans() {
        let mut trace = sample_trace();
        trace.trace_id = "1-67a0b1c2-0123456789abcdef01234567".into();
        assert!(turn_spans(&trace, &context(None)).is_empty());
        assert!(trace_id_bytes("00000000000000000000000000000000").is_none());
    }
}
