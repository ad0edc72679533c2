//! The `ToolInvoker` port on AWS Lambda: each tool is an executor function speaking the tool
//! contract (`crate::tool_contract`), invoked synchronously with `aws-sdk-lambda`.
//!
//! Which tools the agent may use is configuration (tool name -> function name). Specs are
//! listed from the executors once per execution environment and cached. An invoke error, a
//! function error or a malformed response becomes an error result the model reads; it never
//! fails the turn. Timeouts are the driver's (one per call).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_lambda::{primitives::Blob, Client};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::{
    domain::{
        message::{ToolCall, ToolOutput},
        model::ToolSpec,
    },
    ports::{CallContext, ToolInvoker, ToolListError},
    tool_contract::{ListedTool, ToolRequest, ToolResponse},
};

/// Tools served by executor Lambdas.
#[derive(Debug)]
pub struct LambdaTools {
    client: Client,
    functions: BTreeMap<String, String>,
    specs: OnceCell<Vec<ToolSpec>>,
}

/// Parses `name=function,name=function` (the `TOOL_FUNCTIONS` setting).
pub fn parse_tool_functions(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut functions = BTreeMap::new();
    for pair in text
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let (name, function) = pair
            .split_once('=')
            .map(|(name, function)| (name.trim(), function.trim()))
            .filter(|(name, function)| !name.is_empty() && !function.is_empty())
            .ok_or_else(|| format!("'{pair}' is not of the form tool_name=function_name"))?;
        if functions
            .insert(name.to_owned(), function.to_owned())
            .is_some()
        {
            return Err(format!("tool '{name}' is configured twice"));
        }
    }
    Ok(functions)
}

impl LambdaTools {
    /// Tools served by these functions (tool name -> function name or ARN).
    pub fn new(client: Client, functions: BTreeMap<String, String>) -> Self {
        Self {
            client,
            functions,
            specs: OnceCell::new(),
        }
    }

    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, String> {
        let body = serde_json::to_vec(payload).map_err(|error| error.to_string())?;
        let output = self
            .client
            .invoke()
            .function_name(function)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|error| {
                tracing::warn!(function, error = %aws_sdk_lambda::error::DisplayErrorContext(&error), "invoke failed");
                "the executor could not be invoked".to_owned()
            })?;
        if let Some(kind) = output.function_error() {
            tracing::warn!(function, kind, "executor failed");
            return Err("the executor failed".to_owned());
        }
        let payload = output.payload().map(Blob::as_ref).unwrap_or_default();
        serde_json::from_slice(payload)
            .map_err(|_| "the executor's response is not JSON".to_owned())
    }

    async fn list(&self) -> Result<Vec<ToolSpec>, ToolListError> {
        let mut specs = Vec::new();
        let mut by_function: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (tool, function) in &self.functions {
            by_function
                .entry(function.as_str())
                .or_default()
                .push(tool.as_str());
        }
        for (function, tools) in by_function {
            let listed = self
                .invoke(function, &json!({"list": true}))
                .await
                .map_err(|error| ToolListError(format!("{function}: {error}")))?;
            let listed: Vec<ListedTool> = serde_json::from_value(listed["tools"].clone())
                .map_err(|_| ToolListError(format!("{function}: malformed list response")))?;
            for tool in tools {
                let spec = listed
                    .iter()
                    .find(|listed| listed.name == tool)
                    .cloned()
                    .ok_or_else(|| {
                        ToolListError(format!("{function} does not serve the tool '{tool}'"))
                    })?;
                specs.push(spec.into());
            }
        }
        Ok(specs)
    }
}

#[async_trait]
impl ToolInvoker for LambdaTools {
    async fn specs(&self) -> Result<Vec<ToolSpec>, ToolListError> {
        self.specs.get_or_try_init(|| self.list()).await.cloned()
    }

    async fn call(&self, call: &ToolCall, context: &CallContext) -> ToolOutput {
        let Some(function) = self.functions.get(&call.name) else {
            return ToolOutput::error(format!("unknown tool '{}'", call.name));
        };
        let request = ToolRequest {
            name: call.name.clone(),
            arguments: call.input.clone(),
            context: Some(context.clone()),
        };
        let payload = match serde_json::to_value(&request) {
            Ok(payload) => payload,
            Err(error) => return ToolOutput::error(error.to_string()),
        };
        match self.invoke(function, &payload).await {
            Err(error) => {
                ToolOutput::error(format!("the tool '{}' is unavailable: {error}", call.name))
            }
            Ok(response) => match serde_json::from_value::<ToolResponse>(response) {
                Ok(response) => response.into(),
                Err(_) => ToolOutput::error(format!(
                    "the tool '{}' returned a malformed response",
                    call.name
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_functions_are_parsed_from_name_equals_function_pairs() {
        let parsed = parse_tool_functions(" http_fetch = agent-fetch , run_javascript=agent-js,")
            .expect("valid");
        assert_eq!(
            parsed.get("http_fetch").map(String::as_str),
            Some("agent-fetch")
        );
        assert_eq!(
            parsed.get("run_javascript").map(String::as_str),
            Some("agent-js")
        );
        assert!(parse_tool_functions("").expect("empty is fine").is_empty());
    }

    #[test]
    fn malformed_tool_functions_are_named() {
        assert!(parse_tool_functions("http_fetch")
            .unwrap_err()
            .contains("'http_fetch'"));
        assert!(parse_tool_functions("a=b,a=c")
            .unwrap_err()
            .contains("twice"));
        assert!(parse_tool_functions("=b").is_err());
    }
}
