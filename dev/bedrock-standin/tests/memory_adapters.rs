//! The project's own memory adapters against the stand-in, on the official SDK client:
//! `BedrockEmbedder` (Titan Text Embeddings V2 over `InvokeModel`) and the learner's forced
//! `record_memories` request through `BedrockModel`, read back with `learning::candidates`.

mod common;

use common::{start, TestResult, MODEL};
use serde_json::{json, Value};
use shared::adapters::bedrock::{embed::BedrockEmbedder, BedrockModel};
use shared::learning::{candidates, extraction_request};
use shared::ports::{Embedder, Model, ModelError};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn titan_embeddings_are_normalized_deterministic_and_close_for_shared_words() -> TestResult {
    let (standin, client) = start().await?;
    let embedder = BedrockEmbedder::new(client.clone(), "amazon.titan-embed-text-v2:0", 256);
    let colour = embedder.embed("My favourite colour is blue").await?;
    assert_eq!(colour.vector.len(), 256);
    assert!((cosine(&colour.vector, &colour.vector) - 1.0).abs() < 1e-4);
    assert!(colour.input_tokens > 0);
    let question = embedder.embed("What is my favourite colour?").await?;
    let weather = embedder.embed("The weather in Lisbon").await?;
    assert!(cosine(&colour.vector, &question.vector) > cosine(&colour.vector, &weather.vector));
    assert_eq!(embedder.embed("My favourite colour is blue").await?, colour);
    assert_eq!(standin.stats().invoke(), 4);

    // Another dimension, and a refused one.
    let wide = BedrockEmbedder::new(client.clone(), "amazon.titan-embed-text-v2:0", 1024);
    assert_eq!(wide.embed("hello").await?.vector.len(), 1024);
    let odd = BedrockEmbedder::new(client.clone(), "amazon.titan-embed-text-v2:0", 300);
    assert!(matches!(
        odd.embed("hello").await,
        Err(ModelError::Invalid(_))
    ));
    let not_titan = BedrockEmbedder::new(client, MODEL, 256);
    assert!(matches!(
        not_titan.embed("hello").await,
        Err(ModelError::Invalid(_))
    ));
    Ok(())
}

#[tokio::test]
async fn the_forced_record_memories_call_is_answered_from_the_transcript() -> TestResult {
    let (_standin, client) = start().await?;
    let model = BedrockModel::new(client, MODEL);
    let request = extraction_request(
        "User: My favourite colour is blue. I live in Lisbon.\nAssistant: Noted.",
        &[],
    );
    let response = model.converse(&request).await?;
    let found = candidates(&response.message)?;
    let found: Vec<Value> = found
        .iter()
        .map(|c| json!([c.kind.as_str(), c.key, c.text]))
        .collect();
    assert_eq!(
        found,
        vec![
            json!([
                "fact",
                "favourite_colour",
                "The user's favourite colour is blue."
            ]),
            json!(["fact", "home_city", "The user lives in Lisbon."]),
            json!([
                "summary",
                "session",
                "The user talked about My favourite colour is blue. I live in Lisbon."
            ]),
        ]
    );
    Ok(())
}
