//! Ranking a user's long-term memory at the start of a turn
//! (`cargo bench -p shared --bench memory_rank`).
//!
//! 1,000 records of one user, each with a 256-dimension quantized vector (the default
//! `EMBEDDING_DIMENSIONS`) and one with 1,024 dimensions, ranked against a message's
//! embedding, then chosen within the default 1,000-token budget and rendered:
//!
//! - `memory/rank_select_1000_x256` and `memory/rank_select_1000_x1024`: by cosine and recency.
//!   Target: median < 2 ms.
//! - `memory/rank_select_1000_keywords`: by keywords (`MEMORY_EMBEDDINGS=off`).

use std::hint::black_box;

use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use shared::domain::memory::{
    rank, render, select, MemoryKind, MemoryRecord, QuantizedVector, Query, RankWeights,
};

fn vector(seed: usize, dims: usize) -> Vec<f32> {
    let mut state = (seed as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1);
    let raw: Vec<f32> = (0..dims)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as f32 / u32::MAX as f32) - 0.25
        })
        .collect();
    let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
    raw.into_iter().map(|v| v / norm).collect()
}

fn records(dims: usize) -> Vec<MemoryRecord> {
    let now = Utc::now();
    (0..1_000)
        .map(|i| {
            let key = format!("topic_{i:04}");
            let at = now - Duration::hours(i as i64);
            MemoryRecord {
                id: format!("fact.{key}"),
                kind: MemoryKind::Fact,
                key,
                text: format!(
                    "The user mentioned topic {i}: their work, their home town, a trip they plan and a book."
                ),
                sessions: vec![format!("session-{}", i % 50)],
                created_at: at,
                updated_at: at,
                changed_at: at,
                version: 1,
                vector: Some(QuantizedVector::quantize(&vector(i, dims))),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let now = Utc::now();
    for dims in [256, 1_024] {
        let stored = records(dims);
        let message = vector(7, dims);
        c.bench_function(&format!("memory/rank_select_1000_x{dims}"), |b| {
            b.iter(|| {
                let query = Query {
                    vector: Some(&message),
                    text: "Which book did I say I was reading on my trip?",
                };
                let ranked = rank(black_box(&stored), &query, now, RankWeights::default());
                let chosen = select(&stored, &ranked, 1_000);
                black_box(render(&chosen))
            })
        });
    }
    let mut stored = records(256);
    for record in &mut stored {
        record.vector = None;
    }
    c.bench_function("memory/rank_select_1000_keywords", |b| {
        b.iter(|| {
            let query = Query {
                vector: None,
                text: "Which book did I say I was reading on my trip?",
            };
            let ranked = rank(black_box(&stored), &query, now, RankWeights::default());
            let chosen = select(&stored, &ranked, 1_000);
            black_box(render(&chosen))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
