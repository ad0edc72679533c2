//! Choosing the history of a turn under the context budget
//! (`cargo bench -p shared --bench context_window`).
//!
//! The input is what the store hands the agent for a 200-turn session in which every turn read
//! a 100 KB page (user question, tool use, the page as a tool result, an answer):
//!
//! - `context/select_history_window_40`: the 40 newest messages (`HISTORY_MESSAGES`, what one
//!   window Query loads), 1 MB of text: the handler's case. Target: median < 200 µs.
//! - `context/select_history_all_800`: all 800 messages (80 MB), a bound on the worst case.
//! - `context/fit_request_step`: fitting a grown request again before a model call (done
//!   before every call of a turn).
//!
//! The window is cloned outside the timed part (`iter_batched`), as the store gives the agent
//! an owned window.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::json;
use shared::{
    agent::AgentSettings,
    domain::{
        context::{fit_request, select_history},
        message::{ContentBlock, Message, Role, ToolResultContent, ToolStatus},
    },
};

/// One stored turn that read a page of `bytes` bytes.
fn page_turn(index: usize, bytes: usize) -> Vec<Message> {
    let id = format!("tooluse_{index:016x}");
    vec![
        Message::user_text(format!("Read https://example.com/{index} and summarize it")),
        Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Text {
                    text: "Let me read that page.".into(),
                },
                ContentBlock::ToolUse {
                    tool_use_id: id.clone(),
                    name: "http_fetch".into(),
                    input: json!({"url": format!("https://example.com/{index}")}),
                },
            ],
        },
        Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id: id,
                status: ToolStatus::Success,
                content: vec![ToolResultContent::Text {
                    text: "Readable text of a long page, sentence after sentence. "
                        .repeat(bytes / 56),
                }],
            }],
        },
        Message::assistant_text(format!("Page {index} is about many things; in short: ...")),
    ]
}

fn bench(c: &mut Criterion) {
    let session: Vec<Message> = (1..=200).flat_map(|i| page_turn(i, 100_000)).collect();
    let window: Vec<Message> = session[session.len() - 40..].to_vec();
    let budget = AgentSettings::default().context;
    let room = budget.input_tokens() - 2_000;
    let mut group = c.benchmark_group("context");
    group.sample_size(30);
    group.bench_function("select_history_window_40", |b| {
        b.iter_batched(
            || window.clone(),
            |window| black_box(select_history(window, &budget, room)),
            BatchSize::LargeInput,
        );
    });
    group.sample_size(10);
    group.bench_function("select_history_all_800", |b| {
        b.iter_batched(
            || session.clone(),
            |session| black_box(select_history(session, &budget, room)),
            BatchSize::LargeInput,
        );
    });
    let history = select_history(window.clone(), &budget, room).messages;
    group.sample_size(30);
    group.bench_function("fit_request_step", |b| {
        b.iter_batched(
            || (history.clone(), history.len()),
            |(mut messages, mut start)| black_box(fit_request(&mut messages, &mut start, room)),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
