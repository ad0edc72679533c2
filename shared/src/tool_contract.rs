//! The tool contract: MCP-shaped JSON that every tool executor Lambda takes and returns, so the
//! same executor serves the agent, the MCP gateway and any MCP client unchanged.
//!
//! ```text
//! request : {"name": "web_search", "arguments": {...}, "context": {"user_id", "session_id", "tool_use_id", "trace_id", "traceparent"}}
//! response: {"content": [{"type": "text", "text": "..."}], "isError": false,
//!            "_meta": {"usage": {"search_queries": 1, "search_provider": "tavily", "secrets_calls": 0}}}
//! list    : {"list": true} -> {"tools": [{"name", "description", "inputSchema"}]}
//! ```
//!
//! An executor is an input type that derives its JSON schema, an async function, and a
//! one-line `main` calling [`handle`] through `lambda_runtime`.

use std::future::Future;

use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::{
    domain::{
        ledger::ToolUsage,
        message::{ToolOutput, ToolResultContent, ToolStatus},
        model::ToolSpec,
        truncate::shrink_text,
    },
    ports::CallContext,
    tools::{input_schema, parse_input},
};

/// A call of one tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolRequest {
    /// The tool's name.
    pub name: String,
    /// Its arguments, a JSON object.
    #[serde(default)]
    pub arguments: Value,
    /// Who is calling, when the caller is the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<CallContext>,
}

/// A piece of a tool response, as MCP shapes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ContentItem {
    /// Text (JSON results are sent as their text).
    Text {
        /// The text.
        text: String,
    },
}

/// What a tool call returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolResponse {
    /// The result.
    pub content: Vec<ContentItem>,
    /// True when the tool failed; the content says why.
    #[serde(rename = "isError", default)]
    pub is_error: bool,
    /// MCP's `_meta`: what the call used, for the caller's cost ledger (absent when nothing
    /// billable was used).
    #[serde(
        rename = "_meta",
        default,
        skip_serializing_if = "ResponseMeta::is_empty"
    )]
    pub meta: ResponseMeta,
}

/// The `_meta` of a tool response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMeta {
    /// What the call used.
    #[serde(default, skip_serializing_if = "ToolUsage::is_empty")]
    pub usage: ToolUsage,
}

impl ResponseMeta {
    fn is_empty(&self) -> bool {
        self.usage.is_empty()
    }
}

/// A tool spec as MCP lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListedTool {
    /// The name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON schema of its arguments.
    #[serde(rename = "inputSchema")]
    pub input_schema: Value,
}

impl From<ListedTool> for ToolSpec {
    fn from(tool: ListedTool) -> Self {
        Self {
            name: tool.name,
            description: tool.description,
            input_schema: tool.input_schema,
        }
    }
}

impl From<ToolOutput> for ToolResponse {
    fn from(output: ToolOutput) -> Self {
        Self {
            is_error: output.status == ToolStatus::Error,
            meta: ResponseMeta {
                usage: output.usage,
            },
            content: output
                .content
                .into_iter()
                .map(|part| ContentItem::Text {
                    text: match part {
                        ToolResultContent::Text { text } => text,
                        ToolResultContent::Json { json } => json.to_string(),
                    },
                })
                .collect(),
        }
    }
}

impl From<ToolResponse> for ToolOutput {
    fn from(response: ToolResponse) -> Self {
        Self {
            status: if response.is_error {
                ToolStatus::Error
            } else {
                ToolStatus::Success
            },
            content: response
                .content
                .into_iter()
                .map(|ContentItem::Text { text }| ToolResultContent::Text { text })
                .collect(),
            usage: response.meta.usage,
        }
    }
}

/// One tool served by an executor: a typed input and an async function.
pub trait Tool: Send + Sync {
    /// The input type; its JSON schema is the tool's input schema.
    type Input: DeserializeOwned + JsonSchema + Send;

    /// The name the model uses.
    const NAME: &'static str;

    /// What the tool does, for the model.
    const DESCRIPTION: &'static str;

    /// Runs one call. An `Err` is a message for the model (never a secret).
    fn run(
        &self,
        input: Self::Input,
        context: Option<&CallContext>,
    ) -> impl Future<Output = Result<ToolOutput, String>> + Send;
}

/// The spec of a tool, for `{"list": true}`.
pub fn listed<T: Tool>() -> ListedTool {
    ListedTool {
        name: T::NAME.to_owned(),
        description: T::DESCRIPTION.to_owned(),
        input_schema: input_schema::<T::Input>(),
    }
}

/// Longest error message about a malformed request (serde's messages quote the input).
const MAX_ERROR_BYTES: usize = 2048;

/// Handles one executor request: a list request or a call. Never fails: a malformed request
/// or a failing tool is an `isError` response.
pub async fn handle<T: Tool>(tool: &T, request: Value) -> Value {
    if request.get("list").and_then(Value::as_bool) == Some(true) {
        return json!({ "tools": [listed::<T>()] });
    }
    let response: ToolResponse = match serde_json::from_value::<ToolRequest>(request) {
        Err(error) => ToolOutput::error(shrink_text(
            &format!("malformed tool request: {error}"),
            MAX_ERROR_BYTES,
        ))
        .into(),
        Ok(request) if request.name != T::NAME => ToolOutput::error(shrink_text(
            &format!("this executor serves '{}', not '{}'", T::NAME, request.name),
            MAX_ERROR_BYTES,
        ))
        .into(),
        Ok(request) => {
            let context = request.context.as_ref();
            // The handler's trace id and tool use id on every line the tool logs, so one turn
            // can be followed across functions. Not the user id: it is personal data.
            let span = tracing::info_span!(
                "tool_call",
                tool = T::NAME,
                trace_id = context.map(|c| c.trace_id.as_str()),
                session_id = context.map(|c| c.session_id.as_str()),
                tool_use_id = context.map(|c| c.tool_use_id.as_str()),
                traceparent = context.and_then(|c| c.traceparent.as_deref()),
            );
            let started = std::time::Instant::now();
            let output = match parse_input::<T::Input>(T::NAME, &request.arguments) {
                Err(error) => ToolOutput::error(shrink_text(&error, MAX_ERROR_BYTES)),
                Ok(input) => match tool.run(input, context).instrument(span.clone()).await {
                    Ok(output) => output,
                    Err(message) => ToolOutput::error(message),
                },
            };
            span.in_scope(|| {
                tracing::info!(
                    is_error = output.status == ToolStatus::Error,
                    latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "tool call served"
                );
            });
            output.into()
        }
    };
    serde_json::to_value(response).unwrap_or_else(|_| json!({"content": [], "isError": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, JsonSchema)]
    struct EchoInput {
        /// What to echo.
        text: String,
    }

    struct Echo;

    impl Tool for Echo {
        type Input = EchoInput;
        const NAME: &'static str = "echo";
        const DESCRIPTION: &'static str = "Echoes its input.";

        async fn run(
            &self,
            input: EchoInput,
            _: Option<&CallContext>,
        ) -> Result<ToolOutput, String> {
            if input.text == "fail" {
                Err("asked to fail".into())
            } else {
                Ok(ToolOutput::text(input.text))
            }
        }
    }

    #[tokio::test]
    async fn a_list_request_returns_the_spec_with_the_generated_schema() {
        let listed = handle(&Echo, json!({"list": true})).await;
        assert_eq!(listed["tools"][0]["name"], "echo");
        assert_eq!(
            listed["tools"][0]["inputSchema"]["required"],
            json!(["text"])
        );
    }

    #[tokio::test]
    async fn a_call_returns_mcp_shaped_content() {
        let response = handle(
            &Echo,
            json!({"name": "echo", "arguments": {"text": "hi"}, "context": {"user_id": "u", "session_id": "s", "tool_use_id": "t", "trace_id": "x"}}),
        )
        .await;
        assert_eq!(
            response,
            json!({"content": [{"type": "text", "text": "hi"}], "isError": false})
        );
    }

    #[tokio::test]
    async fn failures_and_malformed_requests_are_error_responses() {
        let failed = handle(
            &Echo,
            json!({"name": "echo", "arguments": {"text": "fail"}}),
        )
        .await;
        assert_eq!(failed["isError"], true);
        assert_eq!(failed["content"][0]["text"], "asked to fail");
        let wrong_args = handle(&Echo, json!({"name": "echo", "arguments": {}})).await;
        assert!(wrong_args["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("missing field `text`"));
        let wrong_tool = handle(&Echo, json!({"name": "other"})).await;
        assert_eq!(wrong_tool["isError"], true);
        let garbage = handle(&Echo, json!([1, 2])).await;
        assert_eq!(garbage["isError"], true);
    }
}
