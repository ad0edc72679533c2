//! Our own overhead on a streamed turn: from one ConverseStream text delta, as the SDK hands
//! it over, to the bytes of its server-sent event as the response body gives them to the
//! runtime. The path is the production one: the Bedrock adapter's assembler, the handler's
//! event sink (SSE encoding, the channel) and the streaming body.
//!
//! Run: `cargo bench -p session-handler --bench stream_overhead`.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use aws_sdk_bedrockruntime::types::{
    ContentBlockDelta, ContentBlockDeltaEvent, ConverseStreamOutput,
};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body::Body as _;
use session_handler::stream::{EventSink, StreamBody};
use shared::adapters::bedrock::stream::Assembler;

fn delta(text: &str) -> ConverseStreamOutput {
    ConverseStreamOutput::ContentBlockDelta(
        ContentBlockDeltaEvent::builder()
            .content_block_index(0)
            .delta(ContentBlockDelta::Text(text.into()))
            .build()
            .expect("a delta"),
    )
}

fn event_to_bytes(c: &mut Criterion) {
    let (sink, receiver) = EventSink::detached();
    let mut body = StreamBody::Events(receiver);
    let mut assembler = Assembler::default();
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    // A typical Claude text delta: a few words.
    let text = "The calculator says 84, ";
    c.bench_function("stream: model text delta -> SSE bytes out", |b| {
        let mut pushed = 0u32;
        b.iter(|| {
            // An answer of a thousand deltas, then the next one (the assembler keeps the text).
            pushed += 1;
            if pushed % 1000 == 0 {
                assembler = Assembler::default();
            }
            assembler
                .push(delta(std::hint::black_box(text)), &sink)
                .expect("a text delta");
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => std::hint::black_box(frame),
                other => panic!("expected a frame, got {other:?}"),
            }
        });
    });
}

criterion_group!(benches, event_to_bytes);
criterion_main!(benches);
