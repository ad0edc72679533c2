//! Helpers shared by the SDK tests: an in-process stand-in with an SDK client
//! pointed at it, conversions between JSON and the SDK's `Document`, and the
//! Converse calls and messages the tests build again and again.

// Each test file uses its own part of these helpers.
#![allow(dead_code)]

use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{Credentials, Region};
use aws_sdk_bedrockruntime::operation::converse::builders::ConverseFluentBuilder;
use aws_sdk_bedrockruntime::operation::converse::{ConverseError, ConverseOutput};
use aws_sdk_bedrockruntime::operation::converse_stream::builders::ConverseStreamFluentBuilder;
use aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, Message, Tool, ToolConfiguration, ToolInputSchema,
    ToolResultBlock, ToolResultContentBlock, ToolResultStatus, ToolSpecification, ToolUseBlock,
};
use aws_sdk_bedrockruntime::Client;
use aws_smithy_types::{Document, Number};
use bedrock_standin::{Options, Standin};
use serde_json::{json, Value};

/// A test's result: any error fails it.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A helper's error.
pub type BoxError = Box<dyn std::error::Error>;

/// The model id sent (any is accepted; this one needs URL-encoding).
pub const MODEL: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";

/// A second model id, as a fallback chain would use.
pub const FALLBACK: &str = "anthropic.claude-3-haiku-20240307-v1:0";

/// Starts a stand-in on 127.0.0.1:0 and an SDK client for it, built from the
/// project's `shared::aws::sdk_config()` with test credentials and no retries.
pub async fn start() -> Result<(Standin, Client), Box<dyn std::error::Error>> {
    start_with(Options::default()).await
}

/// [`start`] with the given options.
pub async fn start_with(options: Options) -> Result<(Standin, Client), Box<dyn std::error::Error>> {
    let standin = Standin::start(options).await?;
    let client = client_for(&standin, RetryConfig::disabled()).await;
    Ok((standin, client))
}

/// An SDK client for `standin` with the given retry policy.
pub async fn client_for(standin: &Standin, retry: RetryConfig) -> Client {
    let sdk = shared::aws::sdk_config().await;
    let config = aws_sdk_bedrockruntime::config::Builder::from(&sdk)
        .endpoint_url(standin.endpoint_url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(retry)
        .build();
    Client::from_conf(config)
}

/// JSON → SDK `Document`.
pub fn to_document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Document::Number(Number::PosInt(u)),
            (None, Some(i)) => Document::Number(Number::NegInt(i)),
            _ => Document::Number(Number::Float(n.as_f64().unwrap_or_default())),
        },
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        Value::Object(o) => {
            Document::Object(o.iter().map(|(k, v)| (k.clone(), to_document(v))).collect())
        }
    }
}

/// SDK `Document` → JSON.
pub fn to_json(doc: &Document) -> Value {
    match doc {
        Document::Null => Value::Null,
        Document::Bool(b) => json!(b),
        Document::Number(Number::PosInt(u)) => json!(u),
        Document::Number(Number::NegInt(i)) => json!(i),
        Document::Number(Number::Float(f)) => json!(f),
        Document::String(s) => json!(s),
        Document::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Document::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// A `toolConfig` offering the named tools with an empty object schema.
pub fn tools(names: &[&str]) -> Result<ToolConfiguration, Box<dyn std::error::Error>> {
    let schema = json!({"type": "object", "properties": {}});
    let mut builder = ToolConfiguration::builder();
    for name in names {
        let spec = ToolSpecification::builder()
            .name(*name)
            .description(format!("The {name} tool"))
            .input_schema(ToolInputSchema::Json(to_document(&schema)))
            .build()?;
        builder = builder.tools(Tool::ToolSpec(spec));
    }
    Ok(builder.build()?)
}

/// A user message with one text block.
pub fn user_text(text: &str) -> Result<Message, Box<dyn std::error::Error>> {
    Ok(Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.into()))
        .build()?)
}

/// The tool-use blocks of a message.
pub fn tool_uses(message: &Message) -> Vec<&ToolUseBlock> {
    message
        .content()
        .iter()
        .filter_map(|b| b.as_tool_use().ok())
        .collect()
}

/// The text blocks of a message, concatenated.
pub fn texts(message: &Message) -> String {
    message
        .content()
        .iter()
        .filter_map(|b| b.as_text().ok().cloned())
        .collect()
}

/// `(Converse, ConverseStream)` requests `standin` has received.
pub fn operation_counts(standin: &Standin) -> (u64, u64) {
    (
        standin.stats().converse(),
        standin.stats().converse_stream(),
    )
}

/// A Converse call to [`MODEL`] with `messages`.
pub fn converse(client: &Client, messages: Vec<Message>) -> ConverseFluentBuilder {
    client
        .converse()
        .model_id(MODEL)
        .set_messages(Some(messages))
}

/// A ConverseStream call to [`MODEL`] with `messages`.
pub fn converse_stream(client: &Client, messages: Vec<Message>) -> ConverseStreamFluentBuilder {
    client
        .converse_stream()
        .model_id(MODEL)
        .set_messages(Some(messages))
}

/// [`converse`] offering the named tools (see [`tools`]).
pub fn converse_with_tools(
    client: &Client,
    messages: Vec<Message>,
    names: &[&str],
) -> Result<ConverseFluentBuilder, BoxError> {
    Ok(converse(client, messages).tool_config(tools(names)?))
}

/// [`converse_stream`] offering the named tools (see [`tools`]).
pub fn converse_stream_with_tools(
    client: &Client,
    messages: Vec<Message>,
    names: &[&str],
) -> Result<ConverseStreamFluentBuilder, BoxError> {
    Ok(converse_stream(client, messages).tool_config(tools(names)?))
}

/// A Converse call to [`MODEL`] with one user message of `text`.
pub fn ask(client: &Client, text: &str) -> Result<ConverseFluentBuilder, BoxError> {
    Ok(converse(client, vec![user_text(text)?]))
}

/// A ConverseStream call to [`MODEL`] with one user message of `text`.
pub fn ask_stream(client: &Client, text: &str) -> Result<ConverseStreamFluentBuilder, BoxError> {
    Ok(converse_stream(client, vec![user_text(text)?]))
}

/// Sends a Converse call that must fail, and returns its service error; `why` is the
/// test's error when it succeeds.
pub async fn converse_refused(
    call: ConverseFluentBuilder,
    why: &str,
) -> Result<ConverseError, BoxError> {
    Ok(call.send().await.err().ok_or(why)?.into_service_error())
}

/// [`converse_refused`] for a ConverseStream call.
pub async fn converse_stream_refused(
    call: ConverseStreamFluentBuilder,
    why: &str,
) -> Result<ConverseStreamError, BoxError> {
    Ok(call.send().await.err().ok_or(why)?.into_service_error())
}

/// The assistant message of a Converse answer.
pub fn reply_of(output: &ConverseOutput) -> Result<&Message, BoxError> {
    Ok(output
        .output()
        .and_then(|o| o.as_message().ok())
        .ok_or("no message")?)
}

/// The id of `message`'s first tool use.
pub fn first_tool_use_id(message: &Message) -> Result<String, BoxError> {
    Ok(tool_uses(message)
        .first()
        .ok_or("no tool use")?
        .tool_use_id()
        .to_string())
}

/// A user message answering tool use `id` with the text `output`, with `status` if given.
pub fn tool_result(
    id: &str,
    output: &str,
    status: Option<ToolResultStatus>,
) -> Result<Message, BoxError> {
    let result = ToolResultBlock::builder()
        .tool_use_id(id)
        .content(ToolResultContentBlock::Text(output.into()))
        .set_status(status)
        .build()?;
    Ok(Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::ToolResult(result))
        .build()?)
}

/// A user message answering `reply`'s first tool use with `output`.
pub fn tool_result_for(reply: &Message, output: &str) -> Result<Message, BoxError> {
    tool_result(&first_tool_use_id(reply)?, output, None)
}

/// `message` with its content replaced.
pub fn with_content(message: &Message, content: Vec<ContentBlock>) -> Result<Message, BoxError> {
    Ok(Message::builder()
        .role(message.role().clone())
        .set_content(Some(content))
        .build()?)
}
