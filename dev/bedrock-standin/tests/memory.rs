//! End-to-end tests through the official `aws-sdk-bedrockruntime` client (see `common`),
//! long-term memory: InvokeModel embeddings of Titan Text Embeddings V2, forced
//! `record_memories` and `write_summary` calls, and the `/__systems` probe.

mod common;

use aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_bedrockruntime::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    ContentBlockDelta, ContentBlockStart, ConverseStreamOutput, SpecificToolChoice, StopReason,
    SystemContentBlock, ToolChoice, ToolConfiguration,
};
use aws_sdk_bedrockruntime::Client;
use common::{ask, ask_stream, reply_of, start, to_json, tool_uses, tools, BoxError, TestResult};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const EMBEDDING_MODEL: &str = "amazon.titan-embed-text-v2:0";

/// Records one response header of the calls it is attached to.
#[derive(Debug, Clone)]
struct Header {
    name: &'static str,
    seen: Arc<Mutex<Option<String>>>,
}

impl Intercept for Header {
    fn name(&self) -> &'static str {
        "Header"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let value = context
            .response()
            .headers()
            .get(self.name)
            .map(str::to_string);
        *self.seen.lock().map_err(|e| e.to_string())? = value;
        Ok(())
    }
}

/// An embedding call's JSON answer and its `x-amzn-bedrock-input-token-count` header.
async fn invoke(
    client: &Client,
    model: &str,
    body: &Value,
) -> Result<(Value, Option<String>), BoxError> {
    let header = Header {
        name: "x-amzn-bedrock-input-token-count",
        seen: Arc::default(),
    };
    let output = client
        .invoke_model()
        .model_id(model)
        .content_type("application/json")
        .accept("application/json")
        .body(Blob::new(body.to_string()))
        .customize()
        .interceptor(header.clone())
        .send()
        .await?;
    assert_eq!(output.content_type(), "application/json");
    let answer: Value = serde_json::from_slice(output.body().as_ref())?;
    let seen = header.seen.lock().map_err(|e| e.to_string())?.clone();
    Ok((answer, seen))
}

/// The `embedding` of an answer.
fn vector(answer: &Value) -> Vec<f64> {
    answer["embedding"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (norm(a) * norm(b))
}

#[tokio::test]
async fn invoke_model_embeds_with_titan_v2_deterministically() -> TestResult {
    let (standin, client) = start().await?;
    let embed = |text: &str| json!({"inputText": text, "dimensions": 256, "normalize": true});

    let (colour, tokens) = invoke(
        &client,
        EMBEDDING_MODEL,
        &embed("my favourite colour is blue"),
    )
    .await?;
    let colour_vector = vector(&colour);
    assert_eq!(colour_vector.len(), 256);
    assert!((norm(&colour_vector) - 1.0).abs() < 1e-4, "normalised");
    // 5 words × 1.3 = 6.5, rounded up.
    assert_eq!(colour["inputTextTokenCount"], json!(7));
    assert_eq!(tokens.as_deref(), Some("7"));
    assert_eq!(colour["embeddingsByType"]["float"], colour["embedding"]);

    let (question, _) = invoke(
        &client,
        EMBEDDING_MODEL,
        &embed("what is my favourite colour"),
    )
    .await?;
    let (weather, _) = invoke(&client, EMBEDDING_MODEL, &embed("the weather in Lisbon")).await?;
    let near = cosine(&colour_vector, &vector(&question));
    let far = cosine(&colour_vector, &vector(&weather));
    assert!(
        near > far,
        "texts sharing words are closer: {near} vs {far}"
    );
    assert!(near > 0.5, "{near}");

    let (again, _) = invoke(
        &client,
        EMBEDDING_MODEL,
        &embed("my favourite colour is blue"),
    )
    .await?;
    assert_eq!(again, colour, "deterministic");

    // Defaults: 1024 dimensions, normalised; an ARN works; normalize false keeps counts.
    let arn = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0";
    let (default, _) = invoke(&client, arn, &json!({"inputText": "hello world"})).await?;
    assert_eq!(vector(&default).len(), 1024);
    assert!((norm(&vector(&default)) - 1.0).abs() < 1e-4);
    let (raw, _) = invoke(
        &client,
        EMBEDDING_MODEL,
        &json!({"inputText": "blue blue blue", "dimensions": 512, "normalize": false,
            "embeddingTypes": ["float", "binary"]}),
    )
    .await?;
    let raw_vector = vector(&raw);
    assert_eq!(raw_vector.len(), 512);
    assert!(
        (norm(&raw_vector) - 3.0).abs() < 1e-6,
        "{}",
        norm(&raw_vector)
    );
    let binary = raw["embeddingsByType"]["binary"]
        .as_array()
        .ok_or("no binary")?;
    assert_eq!(binary.len(), 512);
    assert!(binary.iter().all(|b| b == 0 || b == 1));

    assert_eq!(standin.stats().invoke(), 6);
    assert_eq!(standin.stats().calls(EMBEDDING_MODEL), 5);
    assert_eq!(standin.stats().calls(arn), 1);
    assert_eq!(standin.stats().converse(), 0);
    Ok(())
}

#[tokio::test]
async fn invoke_model_refuses_bad_bodies_and_other_models() -> TestResult {
    let (standin, client) = start().await?;
    let refused = |model: &'static str, body: Value| {
        let client = client.clone();
        async move {
            let err = client
                .invoke_model()
                .model_id(model)
                .content_type("application/json")
                .body(Blob::new(body.to_string()))
                .send()
                .await
                .err()
                .ok_or("must be refused")?
                .into_service_error();
            assert!(err.is_validation_exception(), "{err:?}");
            Ok::<_, BoxError>(err.message().unwrap_or_default().to_string())
        }
    };
    let missing = refused(EMBEDDING_MODEL, json!({"dimensions": 256})).await?;
    assert_eq!(
        missing,
        "Malformed input request: #: required key [inputText] not found, please reformat \
         your input and try again."
    );
    let dims = refused(
        EMBEDDING_MODEL,
        json!({"inputText": "a", "dimensions": 300}),
    )
    .await?;
    assert!(
        dims.contains("#/dimensions: 300 is not a valid enum value"),
        "{dims}"
    );
    let extra = refused(EMBEDDING_MODEL, json!({"inputText": "a", "texts": ["a"]})).await?;
    assert!(
        extra.contains("extraneous key [texts] is not permitted"),
        "{extra}"
    );
    let empty = refused(EMBEDDING_MODEL, json!({"inputText": ""})).await?;
    assert!(empty.contains("expected minLength: 1"), "{empty}");
    let long = refused(EMBEDDING_MODEL, json!({"inputText": "a".repeat(50_001)})).await?;
    assert!(long.contains("expected maxLength: 50000"), "{long}");
    let kinds = refused(
        EMBEDDING_MODEL,
        json!({"inputText": "a", "embeddingTypes": ["int8"]}),
    )
    .await?;
    assert!(kinds.contains("#/embeddingTypes/0"), "{kinds}");
    let model = refused(
        "anthropic.claude-3-haiku-20240307-v1:0",
        json!({"inputText": "a"}),
    )
    .await?;
    assert_eq!(model, "The provided model identifier is invalid.");
    assert_eq!(standin.stats().invoke(), 7, "refused calls count too");
    Ok(())
}

/// `tools(names)` forcing the tool `name`.
fn forcing(names: &[&str], name: &str) -> Result<ToolConfiguration, BoxError> {
    let config = tools(names)?;
    let choice = ToolChoice::Tool(SpecificToolChoice::builder().name(name).build()?);
    Ok(ToolConfiguration::builder()
        .set_tools(Some(config.tools().to_vec()))
        .tool_choice(choice)
        .build()?)
}

const TRANSCRIPT: &str = "User: My favourite colour is blue.\n\
    Assistant: Blue is a fine colour! What is 2+2 to you?\n\
    User: I live in Lisbon and I prefer window seats on trains.\n\
    Already remembered:\n\
    - fact.home_city: The user lives in Porto.";

#[tokio::test]
async fn forced_record_memories_extracts_from_the_transcript() -> TestResult {
    let (_standin, client) = start().await?;
    let offered = ["calculator", "record_memories"];
    let output = ask(&client, TRANSCRIPT)?
        .tool_config(forcing(&offered, "record_memories")?)
        .send()
        .await?;
    assert_eq!(output.stop_reason(), &StopReason::ToolUse);
    let reply = reply_of(&output)?;
    let uses = tool_uses(reply);
    assert_eq!(uses.len(), 1, "{reply:?}");
    assert_eq!(uses[0].name(), "record_memories");
    let expected = json!({"memories": [
        {"kind": "fact", "key": "favourite_colour", "text": "The user's favourite colour is blue."},
        {"kind": "fact", "key": "home_city", "text": "The user lives in Lisbon."},
        {"kind": "preference", "key": "prefers_window_seats",
            "text": "The user prefers window seats on trains."},
        {"kind": "summary", "key": "session",
            "text": "The user talked about My favourite colour is blue."},
    ]});
    assert_eq!(to_json(uses[0].input()), expected);
    let usage = output.usage().ok_or("no usage")?;
    assert!(usage.input_tokens() > 0 && usage.output_tokens() > 0);

    // Nothing to remember: an empty list, still one call.
    let output = ask(&client, "Assistant: Hello!\nUser: hi")?
        .tool_config(forcing(&offered, "record_memories")?)
        .send()
        .await?;
    let uses = tool_uses(reply_of(&output)?)
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(
        uses.iter().map(|u| to_json(u.input())).collect::<Vec<_>>(),
        [json!({"memories": [{"kind": "summary", "key": "session",
            "text": "The user talked about hi."}]})]
    );
    let output = ask(&client, "Assistant: Hello!")?
        .tool_config(forcing(&offered, "record_memories")?)
        .send()
        .await?;
    let input = tool_uses(reply_of(&output)?)
        .first()
        .map(|u| to_json(u.input()));
    assert_eq!(input, Some(json!({"memories": []})));

    // The same through ConverseStream.
    let mut stream = ask_stream(&client, TRANSCRIPT)?
        .tool_config(forcing(&offered, "record_memories")?)
        .send()
        .await?;
    let (mut name, mut input, mut stop) = (None, String::new(), None);
    while let Some(event) = stream.stream.recv().await? {
        match event {
            ConverseStreamOutput::ContentBlockStart(e) => {
                if let Some(ContentBlockStart::ToolUse(start)) = e.start() {
                    name = Some(start.name().to_string());
                }
            }
            ConverseStreamOutput::ContentBlockDelta(e) => {
                if let Some(ContentBlockDelta::ToolUse(delta)) = e.delta() {
                    input.push_str(delta.input());
                }
            }
            ConverseStreamOutput::MessageStop(e) => stop = Some(e.stop_reason().clone()),
            _ => {}
        }
    }
    assert_eq!(name.as_deref(), Some("record_memories"));
    assert_eq!(serde_json::from_str::<Value>(&input)?, expected);
    assert_eq!(stop, Some(StopReason::ToolUse));
    Ok(())
}

#[tokio::test]
async fn forced_write_summary_extends_the_summary_so_far() -> TestResult {
    let (_standin, client) = start().await?;
    let text = "Summary so far: The user is planning a trip to Rome.\n\
        User: Find me a hotel near the Colosseum, please!\n\
        Assistant: Here are three hotels.\n\
        User: The second one looks good";
    let output = ask(&client, text)?
        .tool_config(forcing(&["write_summary"], "write_summary")?)
        .send()
        .await?;
    assert_eq!(output.stop_reason(), &StopReason::ToolUse);
    let uses = tool_uses(reply_of(&output)?)
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].name(), "write_summary");
    assert_eq!(
        to_json(uses[0].input()),
        json!({"summary": "The user is planning a trip to Rome. \
            The user said: Find me a hotel near the Colosseum, please. \
            The user said: The second one looks good."})
    );
    Ok(())
}

#[tokio::test]
async fn the_systems_probe_counts_kept_system_prompts() -> TestResult {
    let (standin, client) = start().await?;
    for system in [
        "You are terse. Remember: the user likes blue.",
        "You are chatty.",
    ] {
        ask(&client, "hello")?
            .system(SystemContentBlock::Text(system.into()))
            .system(SystemContentBlock::Text("Second block.".into()))
            .send()
            .await?;
    }
    ask(&client, "no system")?.send().await?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let probe = |contains: &str| {
        let url = format!("{}/__systems?contains={contains}", standin.endpoint_url());
        let http = http.clone();
        async move { Ok::<Value, BoxError>(http.get(url).send().await?.json().await?) }
    };
    assert_eq!(
        probe("likes%20blue").await?,
        json!({"matches": 1, "kept": 3})
    );
    assert_eq!(probe("You+are").await?, json!({"matches": 2, "kept": 3}));
    assert_eq!(
        probe("chatty.%0ASecond").await?,
        json!({"matches": 1, "kept": 3})
    );
    assert_eq!(probe("nowhere").await?, json!({"matches": 0, "kept": 3}));
    Ok(())
}
