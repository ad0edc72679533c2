//! Behaviour of the context budget: history selection, tool result caps, fitting a request
//! before each model call, and a turn that keeps within its budget whatever its tools return.

use std::time::Duration;

use serde_json::json;

use super::{
    context::{
        cap_tool_results, fit_request, message_tokens, messages_tokens, select_history,
        ContextBudget,
    },
    message::{ContentBlock, Message, Role, ToolOutput, ToolResultContent, ToolStatus},
    model::{ModelRequest, ModelResponse, ModelStopReason, Usage},
    turn::{Action, AnsweredBy, StopReason, ToolRun, TurnLimits, TurnState},
};

fn budget(context_tokens: u64) -> ContextBudget {
    ContextBudget {
        context_tokens,
        output_tokens: 1024,
        tool_result_tokens: 8_000,
        step_tool_result_tokens: 24_000,
    }
}

fn page(bytes: usize) -> String {
    "readable text of a page. ".repeat(bytes / 25 + 1)
}

/// A stored turn that fetched one page of `bytes` bytes.
fn fetch_turn(index: usize, bytes: usize) -> Vec<Message> {
    let id = format!("tooluse_{index}");
    vec![
        Message::user_text(format!("read page {index}")),
        Message {
            role: Role::Assistant,
            content: vec![ContentBlock::ToolUse {
                tool_use_id: id.clone(),
                name: "http_fetch".into(),
                input: json!({"url": format!("https://example.com/{index}")}),
            }],
        },
        Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id: id,
                status: ToolStatus::Success,
                content: vec![ToolResultContent::Text { text: page(bytes) }],
            }],
        },
        Message::assistant_text(format!("page {index} says hello")),
    ]
}

fn result_text(message: &Message) -> String {
    message
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::ToolResult { content, .. } => Some(content),
            _ => None,
        })
        .flatten()
        .map(|part| match part {
            ToolResultContent::Text { text } => text.clone(),
            ToolResultContent::Json { json } => json.to_string(),
        })
        .collect()
}

#[test]
fn a_200_turn_session_of_large_pages_gives_a_history_within_budget_of_whole_newest_turns() {
    let stored: Vec<Message> = (1..=200).flat_map(|i| fetch_turn(i, 100_000)).collect();
    let budget = budget(200_000);
    let room = 150_000;
    let history = select_history(stored, &budget, room);
    assert!(history.tokens <= room, "{} tokens", history.tokens);
    assert_eq!(history.tokens, messages_tokens(&history.messages));
    assert!(
        history.messages.len() >= 8,
        "kept {}",
        history.messages.len()
    );
    assert_eq!(history.messages.len() % 4, 0, "whole turns only");
    assert!(history.messages[0].starts_turn());
    assert_eq!(
        history.messages.last().map(Message::text).as_deref(),
        Some("page 200 says hello"),
        "the newest turn is kept"
    );
    assert_eq!(history.dropped_turns, 200 - history.messages.len() / 4);
    // Each 100 KB page is shown capped, with a note saying so.
    let shown = result_text(&history.messages[2]);
    assert!(shown.len() <= 8_000 * 3 + 300, "{} bytes", shown.len());
    assert!(shown.contains("the tool returned"), "no note");
}

#[test]
fn a_turn_that_is_not_a_valid_sequence_ends_the_history_there() {
    // Turn 2 lost its tool use (say, deleted by TTL before the rest of its items).
    let mut broken = fetch_turn(2, 100);
    broken.remove(1);
    let stored: Vec<Message> = [fetch_turn(1, 100), broken, fetch_turn(3, 100)].concat();
    let history = select_history(stored, &budget(200_000), 100_000);
    assert_eq!(history.messages, fetch_turn(3, 100));
    assert_eq!(history.dropped_turns, 2);

    // A window that starts inside a turn drops the partial turn.
    let mut cut: Vec<Message> = [fetch_turn(1, 100), fetch_turn(2, 100)].concat();
    cut.drain(..2);
    let history = select_history(cut, &budget(200_000), 100_000);
    assert_eq!(history.messages, fetch_turn(2, 100));
}

#[test]
fn small_results_stay_whole_and_a_steps_results_share_the_step_cap() {
    let mut budget = budget(200_000);
    budget.tool_result_tokens = 1_000;
    budget.step_tool_result_tokens = 2_000;
    let result = |id: &str, bytes: usize| ContentBlock::ToolResult {
        tool_use_id: id.into(),
        status: ToolStatus::Success,
        content: vec![ToolResultContent::Text {
            text: "x".repeat(bytes),
        }],
    };
    let mut content = vec![
        result("small", 100),
        result("big1", 50_000),
        result("big2", 50_000),
        result("big3", 50_000),
    ];
    cap_tool_results(&mut content, &budget);
    let sizes: Vec<usize> = content
        .iter()
        .map(|block| {
            result_text(&Message {
                role: Role::User,
                content: vec![block.clone()],
            })
            .len()
        })
        .collect();
    assert_eq!(sizes[0], 100, "the small result is whole");
    let total: usize = sizes.iter().sum();
    assert!(total <= 2_000 * 3 + 3 * 300, "step total {total}");
    assert!(
        sizes[1..].iter().all(|&s| s <= 1_000 * 3 + 300),
        "{sizes:?}"
    );
    let ids: Vec<&str> = content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::ToolResult { tool_use_id, .. } => Some(tool_use_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["small", "big1", "big2", "big3"], "ids and order kept");
}

#[test]
fn fitting_a_request_drops_history_turns_first_then_elides_the_turns_own_older_results() {
    let mut messages: Vec<Message> = [fetch_turn(1, 3_000), fetch_turn(2, 3_000)].concat();
    let mut turn_start = messages.len();
    messages.extend(fetch_turn(3, 3_000).into_iter().take(3));
    let total = messages_tokens(&messages);
    let turn_only = messages_tokens(&messages[turn_start..]);

    // Room for the turn and one history turn: the oldest goes.
    let one_turn = messages_tokens(&fetch_turn(2, 3_000));
    assert!(fit_request(
        &mut messages,
        &mut turn_start,
        turn_only + one_turn
    ));
    assert_eq!(turn_start, 4);
    assert_eq!(messages[0].text(), "read page 2");
    assert!(messages_tokens(&messages) < total);

    // Not even room for the turn: the history goes and nothing of the newest message is cut.
    let newest = message_tokens(messages.last().expect("results"));
    assert!(fit_request(&mut messages, &mut turn_start, turn_only));
    assert_eq!(turn_start, 0);
    assert_eq!(message_tokens(messages.last().expect("results")), newest);

    // Less than the newest message itself: it cannot fit.
    assert!(!fit_request(&mut messages, &mut turn_start, newest / 2));
}

fn tool_use(step: u32) -> ModelResponse {
    ModelResponse {
        message: Message {
            role: Role::Assistant,
            content: vec![ContentBlock::ToolUse {
                tool_use_id: format!("t{step}"),
                name: "http_fetch".into(),
                input: json!({"url": "https://example.com"}),
            }],
        },
        stop_reason: ModelStopReason::ToolUse,
        usage: Usage {
            input_tokens: 10,
            output_tokens: 10,
            ..Usage::default()
        },
    }
}

#[test]
fn every_model_request_of_a_long_tool_turn_fits_and_the_stored_turn_keeps_full_results() {
    let budget = budget(30_000);
    let history: Vec<Message> = (1..=20).flat_map(|i| fetch_turn(i, 20_000)).collect();
    let history = select_history(history, &budget, budget.input_tokens() / 2).messages;
    let mut state = TurnState::start(
        ModelRequest {
            messages: history,
            ..ModelRequest::default()
        },
        Message::user_text("read ten pages"),
        TurnLimits {
            max_steps: 12,
            max_wall_time: Duration::from_secs(60),
            max_turn_tokens: None,
            max_cost_usd: None,
        },
        budget,
    );
    let mut step = 0;
    loop {
        match state.next_action(Duration::ZERO) {
            Action::CallModel(request) => {
                let tokens = messages_tokens(&request.messages);
                assert!(
                    tokens <= budget.input_tokens(),
                    "step {step}: {tokens} tokens"
                );
                step += 1;
                state.record_model_response(tool_use(step), Duration::ZERO, AnsweredBy::default());
            }
            Action::CallTools { calls, .. } => {
                let runs = calls
                    .iter()
                    .map(|call| ToolRun {
                        call: call.clone(),
                        output: ToolOutput::text(page(100_000)),
                        latency: Duration::ZERO,
                        cost: Default::default(),
                    })
                    .collect();
                state.record_tool_results(runs);
            }
            Action::Done => break,
        }
    }
    assert_eq!(state.stop_reason(), Some(StopReason::MaxSteps));
    let stored = state.turn_messages();
    assert!(
        stored
            .iter()
            .filter(|m| result_text(m).len() > 100_000)
            .count()
            >= 10,
        "stored results are whole"
    );
}

#[test]
fn a_context_overflow_from_the_model_shrinks_the_budget_a_few_times_then_gives_up() {
    let mut state = TurnState::start(
        ModelRequest::default(),
        Message::user_text("hi"),
        TurnLimits {
            max_steps: 4,
            max_wall_time: Duration::from_secs(60),
            max_turn_tokens: None,
            max_cost_usd: None,
        },
        budget(200_000),
    );
    assert!(matches!(
        state.next_action(Duration::ZERO),
        Action::CallModel(_)
    ));
    assert!(state.record_context_overflow());
    assert!(state.record_context_overflow());
    assert!(state.record_context_overflow());
    assert!(!state.record_context_overflow());
    assert!(matches!(
        state.next_action(Duration::ZERO),
        Action::CallModel(_)
    ));
}

#[test]
fn a_message_that_cannot_fit_ends_the_turn_with_max_context_before_any_model_call() {
    let mut state = TurnState::start(
        ModelRequest::default(),
        Message::user_text("x".repeat(100_000)),
        TurnLimits {
            max_steps: 4,
            max_wall_time: Duration::from_secs(60),
            max_turn_tokens: None,
            max_cost_usd: None,
        },
        budget(20_000),
    );
    assert!(matches!(state.next_action(Duration::ZERO), Action::Done));
    assert_eq!(state.stop_reason(), Some(StopReason::MaxContext));
    assert_eq!(state.steps(), 0);
}
