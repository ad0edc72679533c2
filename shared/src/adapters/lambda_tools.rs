//! The `ToolInvoker` port on AWS Lambda: each tool is an executor function speaking the tool
//! contract (`crate::tool_contract`), invoked synchronously with `aws-sdk-lambda`.
//!
//! Which tools the agent may use is configuration (tool name -> function name). An invoke
//! error, a function error or a malformed response becomes an error result the model reads; it
//! never fails the turn. Timeouts of calls are the driver's (one per call).
//!
//! Listing cannot fail a turn either. Every executor is asked for its tools (`{"list": true}`)
//! at once, each bounded by a listing timeout ([`DEFAULT_LIST_TIMEOUT`]). An executor that
//! cannot be invoked, fails, times out, answers something that is not a tool list, or does not
//! serve a tool configured on it is left out (a `warn` line names the function and the kind of
//! failure, never a payload), and the tools of the others are served. A complete listing is
//! kept for the life of the execution environment. An incomplete one is served as is, and the
//! executors missing from it are asked again only after a back-off (30 s, doubling up to 5 min
//! by default), by the first request after it; one refresh runs at a time, and requests that
//! arrive meanwhile are served what is cached. A call to a tool whose executor is missing from
//! the listing is still invoked: the function may be back.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use aws_sdk_lambda::{primitives::Blob, Client};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::{
    domain::{
        message::{ToolCall, ToolOutput},
        model::ToolSpec,
    },
    ports::{CallContext, ToolInvoker, ToolListError},
    tool_contract::{ListedTool, ToolRequest, ToolResponse},
};

/// How long one executor may take to list its tools, unless set with
/// [`LambdaTools::with_list_timeout`].
pub const DEFAULT_LIST_TIMEOUT: Duration = Duration::from_secs(3);
/// The first wait before executors missing from the listing are asked again, unless set with
/// [`LambdaTools::with_list_retry`].
pub const DEFAULT_LIST_RETRY: Duration = Duration::from_secs(30);
/// The longest wait between two askings of executors missing from the listing (the wait
/// doubles up to it), unless set with [`LambdaTools::with_list_retry`].
pub const DEFAULT_LIST_RETRY_MAX: Duration = Duration::from_secs(300);

/// Tools served by executor Lambdas.
#[derive(Debug)]
pub struct LambdaTools {
    client: Client,
    functions: BTreeMap<String, String>,
    /// Function -> the tools configured on it (in tool-name order).
    by_function: BTreeMap<String, Vec<String>>,
    list_timeout: Duration,
    retry_first: Duration,
    retry_max: Duration,
    listing: Mutex<Listing>,
    /// Held by the request that lists; one listing at a time.
    refreshing: tokio::sync::Mutex<()>,
}

/// What the executors listed so far.
#[derive(Debug, Default)]
struct Listing {
    /// Whether the first listing has finished.
    done: bool,
    /// Function -> the specs of the configured tools it serves.
    specs: BTreeMap<String, Vec<ToolSpec>>,
    /// The functions to ask again (they failed, or left a configured tool out), and when.
    retry: Option<Retry>,
}

#[derive(Debug)]
struct Retry {
    functions: BTreeSet<String>,
    at: Instant,
    /// The wait that led to `at`; the next one is twice as long (up to the maximum).
    wait: Duration,
}

/// Why an invocation did not produce a JSON response.
#[derive(Debug)]
enum InvokeError {
    /// The Invoke API call failed (the detail is the SDK's error, not a payload).
    Invoke(String),
    /// The function ran and failed (`X-Amz-Function-Error`: `Unhandled`, ...).
    Function(String),
    /// The function's response is not JSON.
    NotJson,
}

impl InvokeError {
    /// What the model reads in the error result of a call.
    fn message(&self) -> &'static str {
        match self {
            Self::Invoke(_) => "the executor could not be invoked",
            Self::Function(_) => "the executor failed",
            Self::NotJson => "the executor's response is not JSON",
        }
    }
}

/// One executor's answer to `{"list": true}`: the specs of the configured tools it serves, and
/// whether that is all of them.
struct Listed {
    specs: Vec<ToolSpec>,
    complete: bool,
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
    /// Tools served by these functions (tool name -> function name or ARN), with the default
    /// listing timeout and back-off.
    pub fn new(client: Client, functions: BTreeMap<String, String>) -> Self {
        let mut by_function: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (tool, function) in &functions {
            by_function
                .entry(function.clone())
                .or_default()
                .push(tool.clone());
        }
        Self {
            client,
            functions,
            by_function,
            list_timeout: DEFAULT_LIST_TIMEOUT,
            retry_first: DEFAULT_LIST_RETRY,
            retry_max: DEFAULT_LIST_RETRY_MAX,
            listing: Mutex::new(Listing::default()),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// How long one executor may take to list its tools before it is left out of the listing
    /// (default [`DEFAULT_LIST_TIMEOUT`]).
    #[must_use]
    pub fn with_list_timeout(mut self, timeout: Duration) -> Self {
        self.list_timeout = timeout;
        self
    }

    /// The back-off before executors missing from the listing are asked again: `first` after
    /// the first failed listing, then twice the previous wait, at most `max` (defaults
    /// [`DEFAULT_LIST_RETRY`] and [`DEFAULT_LIST_RETRY_MAX`]).
    #[must_use]
    pub fn with_list_retry(mut self, first: Duration, max: Duration) -> Self {
        self.retry_first = first;
        self.retry_max = max.max(first);
        self
    }

    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        let body = serde_json::to_vec(payload).map_err(|_| InvokeError::NotJson)?;
        let output = self
            .client
            .invoke()
            .function_name(function)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|error| {
                InvokeError::Invoke(aws_sdk_lambda::error::DisplayErrorContext(&error).to_string())
            })?;
        if let Some(kind) = output.function_error() {
            return Err(InvokeError::Function(kind.to_owned()));
        }
        let payload = output.payload().map(Blob::as_ref).unwrap_or_default();
        serde_json::from_slice(payload).map_err(|_| InvokeError::NotJson)
    }

    /// Asks one executor for its tools, within the listing timeout. Failures are logged here.
    async fn list_function(&self, function: &str) -> Listed {
        let failed = Listed {
            specs: Vec::new(),
            complete: false,
        };
        let answer = tokio::time::timeout(
            self.list_timeout,
            self.invoke(function, &json!({"list": true})),
        )
        .await;
        let response = match answer {
            Err(_) => {
                tracing::warn!(
                    function,
                    failure = "timed out",
                    timeout_ms = u64::try_from(self.list_timeout.as_millis()).unwrap_or(u64::MAX),
                    "executor left out of the tool listing"
                );
                return failed;
            }
            Ok(Err(error)) => {
                let (failure, detail) = match &error {
                    InvokeError::Invoke(detail) => ("invoke failed", Some(detail.as_str())),
                    InvokeError::Function(kind) => ("function error", Some(kind.as_str())),
                    InvokeError::NotJson => ("malformed list response", None),
                };
                tracing::warn!(
                    function,
                    failure,
                    detail,
                    "executor left out of the tool listing"
                );
                return failed;
            }
            Ok(Ok(response)) => response,
        };
        let Ok(listed) = serde_json::from_value::<Vec<ListedTool>>(response["tools"].clone())
        else {
            tracing::warn!(
                function,
                failure = "malformed list response",
                "executor left out of the tool listing"
            );
            return failed;
        };
        let mut specs = Vec::new();
        let mut complete = true;
        for tool in self.by_function.get(function).into_iter().flatten() {
            match listed.iter().find(|listed| &listed.name == tool) {
                Some(spec) => specs.push(spec.clone().into()),
                None => {
                    tracing::warn!(
                        function,
                        tool = tool.as_str(),
                        failure = "does not serve the tool",
                        "tool left out of the tool listing"
                    );
                    complete = false;
                }
            }
        }
        Listed { specs, complete }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Listing> {
        self.listing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The functions to ask now: every one before the first listing, those missing from it
    /// once their back-off is over, none otherwise.
    fn due(&self, now: Instant) -> Option<Vec<String>> {
        let state = self.state();
        if !state.done {
            return Some(self.by_function.keys().cloned().collect());
        }
        state
            .retry
            .as_ref()
            .filter(|retry| retry.at <= now)
            .map(|retry| retry.functions.iter().cloned().collect())
    }

    /// The specs listed so far: by function name, each function's in tool-name order.
    fn cached(&self) -> Vec<ToolSpec> {
        let state = self.state();
        self.by_function
            .keys()
            .filter_map(|function| state.specs.get(function))
            .flatten()
            .cloned()
            .collect()
    }

    /// Asks `functions` (all at once) and records what they listed and when to ask the ones
    /// still missing again.
    async fn refresh(&self, functions: Vec<String>) {
        let answers = futures::future::join_all(
            functions
                .iter()
                .map(|function| self.list_function(function)),
        )
        .await;
        let now = Instant::now();
        let mut state = self.state();
        let first = !state.done;
        let mut missing = BTreeSet::new();
        for (function, listed) in functions.into_iter().zip(answers) {
            if !listed.complete {
                missing.insert(function.clone());
            } else if !first {
                tracing::info!(
                    function = function.as_str(),
                    "executor listed its tools again"
                );
            }
            // A retry that fails keeps what the function listed before, if anything.
            if listed.complete || !listed.specs.is_empty() {
                state.specs.insert(function, listed.specs);
            }
        }
        state.done = true;
        state.retry = if missing.is_empty() {
            None
        } else {
            let wait = match &state.retry {
                None => self.retry_first,
                Some(previous) => previous.wait.saturating_mul(2).min(self.retry_max),
            };
            tracing::warn!(
                missing = missing.len(),
                executors = self.by_function.len(),
                functions = ?missing,
                retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "tool listing incomplete; the missing executors are asked again after the back-off"
            );
            Some(Retry {
                functions: missing,
                at: now + wait,
                wait,
            })
        };
    }
}

#[async_trait]
impl ToolInvoker for LambdaTools {
    /// Never an error: executors that cannot list are left out (an empty listing is served).
    async fn specs(&self) -> Result<Vec<ToolSpec>, ToolListError> {
        if self.due(Instant::now()).is_none() {
            return Ok(self.cached());
        }
        let first = !self.state().done;
        // The first listing is awaited by every request (there is nothing to serve yet); a
        // retry is run by one request while the others are served what is cached.
        let _refreshing = if first {
            self.refreshing.lock().await
        } else {
            match self.refreshing.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(self.cached()),
            }
        };
        // Another request may have listed while this one waited.
        if let Some(functions) = self.due(Instant::now()) {
            self.refresh(functions).await;
        }
        Ok(self.cached())
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
                match &error {
                    InvokeError::Invoke(detail) => {
                        tracing::warn!(
                            function = function.as_str(),
                            error = detail.as_str(),
                            "invoke failed"
                        );
                    }
                    InvokeError::Function(kind) => {
                        tracing::warn!(
                            function = function.as_str(),
                            kind = kind.as_str(),
                            "executor failed"
                        );
                    }
                    InvokeError::NotJson => {}
                }
                ToolOutput::error(format!(
                    "the tool '{}' is unavailable: {}",
                    call.name,
                    error.message()
                ))
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
