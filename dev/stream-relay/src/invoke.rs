//! Invoking the function through the Lambda Invoke API (RequestResponse), as the event source
//! mapping does; locally, `cargo lambda watch` serves the same API.

use std::future::Future;

use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::operation::RequestId as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;

use crate::deliver::{Invoker, Response};

/// Invokes one function with `aws-sdk-lambda`.
#[derive(Clone, Debug)]
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaInvoker {
    /// Invokes `function` (a name or an ARN).
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        Self {
            client,
            function: function.into(),
        }
    }
}

impl Invoker for LambdaInvoker {
    fn invoke(&self, event: &Value) -> impl Future<Output = Response> + Send {
        let request = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(event.to_string()));
        async move {
            match request.send().await {
                Ok(output) => Response {
                    status: u16::try_from(output.status_code()).unwrap_or(0),
                    function_error: output.function_error().map(str::to_owned),
                    executed_version: output.executed_version().map(str::to_owned),
                    request_id: output.request_id().map(str::to_owned),
                    body: output
                        .payload()
                        .and_then(|body| serde_json::from_slice(body.as_ref()).ok()),
                    error: None,
                },
                Err(err) => {
                    let raw = err.raw_response();
                    Response {
                        status: raw.map_or(0, |r| r.status().as_u16()),
                        function_error: raw
                            .and_then(|r| r.headers().get("x-amz-function-error"))
                            .map(str::to_owned),
                        executed_version: None,
                        request_id: err.request_id().map(str::to_owned),
                        body: raw
                            .and_then(|r| r.body().bytes())
                            .and_then(|b| serde_json::from_slice(b).ok()),
                        error: Some(DisplayErrorContext(&err).to_string()),
                    }
                }
            }
        }
    }
}
