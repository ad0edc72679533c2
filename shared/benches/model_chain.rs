//! What the retry and fallback layer adds to a model call that succeeds first time
//! (`cargo bench -p shared --bench model_chain`).
//!
//! - `model_chain/direct`: the model's `converse`, called directly.
//! - `model_chain/through_chain`: the same call through a three-model [`ModelChain`] (deadline
//!   check, the timeout wrapper, the answer's attribution and price). Target: the difference
//!   under 10 µs.
//!
//! The model answers at once with a fixed response (cloned per call), so what is measured is
//! the layer, not a network.

use std::{hint::black_box, sync::Arc, time::Duration};

use async_trait::async_trait;
use criterion::{criterion_group, criterion_main, Criterion};
use shared::{
    domain::{
        message::Message,
        model::{ModelRequest, ModelResponse, ModelStopReason, Usage},
        pricing::PriceBook,
    },
    models::{ModelChain, RetryPolicy},
    ports::{Model, ModelError},
};

struct Instant(&'static str, ModelResponse);

#[async_trait]
impl Model for Instant {
    fn model_id(&self) -> &str {
        self.0
    }

    async fn converse(&self, _request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        Ok(self.1.clone())
    }
}

fn model(id: &'static str) -> Arc<dyn Model> {
    Arc::new(Instant(
        id,
        ModelResponse {
            message: Message::assistant_text("84."),
            stop_reason: ModelStopReason::EndTurn,
            usage: Usage {
                input_tokens: 1200,
                output_tokens: 40,
                ..Usage::default()
            },
        },
    ))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let request = ModelRequest {
        messages: vec![Message::user_text("What is 12*(3+4)?")],
        ..ModelRequest::default()
    };
    let primary = model("us.anthropic.claude-sonnet-4-5-20250929-v1:0");
    let chain = ModelChain::new(
        vec![
            primary.clone(),
            model("us.anthropic.claude-haiku-4-5-20251001-v1:0"),
            model("us.amazon.nova-lite-v1:0"),
        ],
        &PriceBook::default(),
    );
    let policy = RetryPolicy::default();
    let mut group = c.benchmark_group("model_chain");
    group
        .sample_size(100)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("direct", |b| {
        b.iter(|| rt.block_on(async { black_box(primary.converse(&request).await) }))
    });
    group.bench_function("through_chain", |b| {
        b.iter(|| {
            rt.block_on(async {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                black_box(chain.converse(&request, deadline, &policy).await)
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
