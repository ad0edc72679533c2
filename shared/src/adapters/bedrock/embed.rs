//! The [`Embedder`] port on Amazon Titan Text Embeddings V2, through `InvokeModel`.
//!
//! The request asks for a normalized vector of the configured dimension (256, 512 or 1024);
//! the answer's `inputTextTokenCount` is what is billed. Failures map like Converse's
//! ([`super::map_error`]) and never carry the text.

use async_trait::async_trait;
use aws_sdk_bedrockruntime::{primitives::Blob, Client};
use serde::Deserialize;
use serde_json::json;

use super::map_error;
use crate::ports::{Embedder, Embedding, ModelError};

/// The dimensions Titan Text Embeddings V2 offers.
pub const TITAN_V2_DIMENSIONS: [u32; 3] = [256, 512, 1024];

/// Longest input Titan Text Embeddings V2 takes, in characters (50,000); longer texts are cut.
pub const MAX_INPUT_CHARS: usize = 50_000;

/// Titan Text Embeddings V2 on Bedrock.
#[derive(Clone, Debug)]
pub struct BedrockEmbedder {
    client: Client,
    model_id: String,
    dimensions: u32,
}

impl BedrockEmbedder {
    /// An embedder of `model_id` giving vectors of `dimensions` (one of [`TITAN_V2_DIMENSIONS`]).
    pub fn new(client: Client, model_id: impl Into<String>, dimensions: u32) -> Self {
        Self {
            client,
            model_id: model_id.into(),
            dimensions,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    embedding: Vec<f32>,
    #[serde(default)]
    input_text_token_count: u64,
}

#[async_trait]
impl Embedder for BedrockEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn embed(&self, text: &str) -> Result<Embedding, ModelError> {
        let text: String = text.chars().take(MAX_INPUT_CHARS).collect();
        if text.trim().is_empty() {
            return Err(ModelError::Invalid("nothing to embed".into()));
        }
        let body = json!({ "inputText": text, "dimensions": self.dimensions, "normalize": true });
        let output = self
            .client
            .invoke_model()
            .model_id(&self.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(body.to_string()))
            .send()
            .await
            .map_err(|error| map_error(&error))?;
        let answer: Answer = serde_json::from_slice(output.body().as_ref())
            .map_err(|_| ModelError::Unavailable("the embedding could not be read".into()))?;
        if answer.embedding.len() != self.dimensions as usize {
            return Err(ModelError::Unavailable(format!(
                "the embedding has {} dimensions, not {}",
                answer.embedding.len(),
                self.dimensions
            )));
        }
        Ok(Embedding {
            vector: answer.embedding,
            input_tokens: answer.input_text_token_count,
        })
    }
}
