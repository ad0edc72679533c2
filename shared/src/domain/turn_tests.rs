//! Behaviour of the turn state machine, driven by hand with no mock and no I/O.

use std::time::Duration;

use serde_json::json;

use super::{
    context::ContextBudget,
    message::{ContentBlock, Message, Role, ToolCall, ToolOutput, ToolStatus},
    model::{ModelRequest, ModelResponse, ModelStopReason, Usage},
    pricing::Pricing,
    turn::{Action, AnsweredBy, StopReason, ToolRun, TurnLimits, TurnState},
};

/// Nova Lite answered, at its built-in price.
fn nova() -> AnsweredBy {
    AnsweredBy {
        model_id: "amazon.nova-lite-v1:0".into(),
        pricing: Pricing::for_model("amazon.nova-lite-v1:0"),
        failed: Vec::new(),
    }
}

fn limits(max_steps: u32) -> TurnLimits {
    TurnLimits {
        max_steps,
        max_wall_time: Duration::from_secs(30),
        max_turn_tokens: None,
        max_cost_usd: None,
    }
}

fn tool_use_response(id: &str) -> ModelResponse {
    ModelResponse {
        message: Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Text {
                    text: "Let me calculate.".into(),
                },
                ContentBlock::ToolUse {
                    tool_use_id: id.into(),
                    name: "calculator".into(),
                    input: json!({"expression": "6*7"}),
                },
            ],
        },
        stop_reason: ModelStopReason::ToolUse,
        usage: Usage {
            input_tokens: 100,
            output_tokens: 20,
            ..Usage::default()
        },
    }
}

fn final_response(text: &str) -> ModelResponse {
    ModelResponse {
        message: Message::assistant_text(text),
        stop_reason: ModelStopReason::EndTurn,
        usage: Usage {
            input_tokens: 150,
            output_tokens: 10,
            ..Usage::default()
        },
    }
}

fn run_tools(state: &mut TurnState, elapsed: Duration) {
    let calls = match state.next_action(elapsed) {
        Action::CallTools { calls, .. } => calls.to_vec(),
        other => panic!("expected tool calls, got {other:?}"),
    };
    let runs = calls
        .into_iter()
        .map(|call| ToolRun {
            call,
            output: ToolOutput::text("42"),
            latency: Duration::from_millis(3),
            cost: Default::default(),
        })
        .collect();
    state.record_tool_results(runs);
}

fn start(history: Vec<Message>, max_steps: u32) -> TurnState {
    TurnState::start(
        ModelRequest {
            messages: history,
            ..ModelRequest::default()
        },
        Message::user_text("What is 6*7?"),
        limits(max_steps),
        budget(),
    )
}

fn budget() -> ContextBudget {
    ContextBudget {
        context_tokens: 200_000,
        output_tokens: 1024,
        tool_result_tokens: 8_000,
        step_tool_result_tokens: 24_000,
    }
}

#[test]
fn a_tool_using_turn_calls_the_model_runs_the_tool_and_answers() {
    let mut state = start(vec![], 8);
    assert!(
        matches!(state.next_action(Duration::ZERO), Action::CallModel(request) if request.messages.len() == 1)
    );
    state.record_model_response(tool_use_response("t1"), Duration::from_millis(5), nova());
    run_tools(&mut state, Duration::from_millis(6));
    match state.next_action(Duration::from_millis(7)) {
        Action::CallModel(request) => {
            let last = request.messages.last().expect("tool results message");
            assert_eq!(last.role, Role::User);
            assert!(
                matches!(&last.content[0], ContentBlock::ToolResult { tool_use_id, status: ToolStatus::Success, .. } if tool_use_id == "t1")
            );
        }
        other => panic!("expected a model call, got {other:?}"),
    }
    state.record_model_response(
        final_response("6*7 is 42."),
        Duration::from_millis(5),
        nova(),
    );
    assert!(matches!(
        state.next_action(Duration::from_millis(8)),
        Action::Done
    ));
    assert_eq!(state.stop_reason(), Some(StopReason::EndTurn));
    assert_eq!(state.answer(), "6*7 is 42.");
    assert_eq!(state.steps(), 2);
    assert_eq!(state.turn_messages().len(), 4);
    assert_eq!(state.usage().total_tokens(), 280);
    assert!(state.cost().total_usd > 0.0);
    assert_eq!(state.trace().len(), 3);
}

#[test]
fn the_step_cap_ends_the_turn_keeps_the_work_and_closes_with_an_assistant_message() {
    let mut state = start(vec![], 2);
    for id in ["t1", "t2"] {
        assert!(matches!(
            state.next_action(Duration::ZERO),
            Action::CallModel(_)
        ));
        state.record_model_response(tool_use_response(id), Duration::ZERO, nova());
        run_tools(&mut state, Duration::ZERO);
    }
    assert!(matches!(state.next_action(Duration::ZERO), Action::Done));
    assert_eq!(state.stop_reason(), Some(StopReason::MaxSteps));
    let messages = state.turn_messages();
    assert_eq!(
        messages.len(),
        6,
        "user, 2 x (tool use, tool result), closing note"
    );
    assert_eq!(messages.last().map(|m| m.role), Some(Role::Assistant));
    assert!(state.answer().contains("limit of 2 steps"));
}

#[test]
fn the_wall_time_cap_before_tools_marks_them_not_run_and_stops() {
    let mut state = start(vec![], 8);
    assert!(matches!(
        state.next_action(Duration::ZERO),
        Action::CallModel(_)
    ));
    state.record_model_response(tool_use_response("t1"), Duration::ZERO, nova());
    assert!(matches!(
        state.next_action(Duration::from_secs(31)),
        Action::Done
    ));
    assert_eq!(state.stop_reason(), Some(StopReason::MaxWallTime));
    let messages = state.turn_messages();
    assert!(matches!(
        &messages[2].content[0],
        ContentBlock::ToolResult {
            status: ToolStatus::Error,
            ..
        }
    ));
    assert_eq!(messages.last().map(|m| m.role), Some(Role::Assistant));
}

#[test]
fn the_wall_time_cap_before_the_first_model_call_keeps_the_question_and_says_why() {
    let mut state = start(vec![], 8);
    assert!(matches!(
        state.next_action(Duration::from_secs(60)),
        Action::Done
    ));
    assert_eq!(state.stop_reason(), Some(StopReason::MaxWallTime));
    assert_eq!(state.turn_messages().len(), 2);
    assert!(state.answer().contains("time limit"));
}

#[test]
fn tools_get_the_time_that_is_left() {
    let mut state = start(vec![], 8);
    let _ = state.next_action(Duration::ZERO);
    state.record_model_response(tool_use_response("t1"), Duration::ZERO, nova());
    match state.next_action(Duration::from_secs(25)) {
        Action::CallTools { timeout, .. } => assert_eq!(timeout, Duration::from_secs(5)),
        other => panic!("expected tool calls, got {other:?}"),
    }
}

#[test]
fn a_tool_use_cut_off_by_max_tokens_is_not_kept_unanswered() {
    let mut state = start(vec![], 8);
    let _ = state.next_action(Duration::ZERO);
    let mut response = tool_use_response("t1");
    response.stop_reason = ModelStopReason::MaxTokens;
    state.record_model_response(response, Duration::ZERO, nova());
    assert!(matches!(state.next_action(Duration::ZERO), Action::Done));
    assert_eq!(state.stop_reason(), Some(StopReason::MaxTokens));
    let last = state
        .turn_messages()
        .last()
        .cloned()
        .expect("assistant message");
    assert!(last.tool_calls().is_empty());
    assert_eq!(state.answer(), "Let me calculate.");
}

#[test]
fn history_is_sent_to_the_model_but_not_part_of_the_turn() {
    let history = vec![Message::user_text("hi"), Message::assistant_text("hello")];
    let mut state = start(history, 8);
    assert!(
        matches!(state.next_action(Duration::ZERO), Action::CallModel(request) if request.messages.len() == 3)
    );
    state.record_model_response(final_response("42"), Duration::ZERO, nova());
    assert_eq!(state.turn_messages().len(), 2);
}

#[test]
fn the_state_round_trips_through_json_with_its_format_version() {
    let mut state = start(vec![], 8);
    let _ = state.next_action(Duration::ZERO);
    state.record_model_response(tool_use_response("t1"), Duration::ZERO, nova());
    let json = serde_json::to_value(&state).expect("serializes");
    assert_eq!(json["format_version"], super::turn::TURN_STATE_VERSION);
    let back: TurnState = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, state);
}

#[test]
fn tool_calls_carry_the_models_ids_in_order() {
    let call = ToolCall {
        tool_use_id: "a".into(),
        name: "calculator".into(),
        input: json!({}),
    };
    let message = Message {
        role: Role::Assistant,
        content: vec![ContentBlock::ToolUse {
            tool_use_id: call.tool_use_id.clone(),
            name: call.name.clone(),
            input: call.input.clone(),
        }],
    };
    assert_eq!(message.tool_calls(), vec![call]);
}

#[test]
fn the_turn_token_cap_lowers_the_output_cap_then_ends_the_turn_keeping_its_work() {
    let mut state = TurnState::start(
        ModelRequest {
            inference: super::model::InferenceConfig {
                max_tokens: Some(1024),
                ..Default::default()
            },
            ..ModelRequest::default()
        },
        Message::user_text("What is 6*7?"),
        TurnLimits {
            max_turn_tokens: Some(400),
            max_cost_usd: None,
            ..limits(8)
        },
        budget(),
    );
    // First call: the whole cap is left, less the request; the output cap is lowered to fit.
    match state.next_action(Duration::ZERO) {
        Action::CallModel(request) => {
            let max = request.inference.max_tokens.expect("capped");
            assert!(max < 400 && max > 300, "{max}");
        }
        other => panic!("expected a model call, got {other:?}"),
    }
    // 120 tokens used; the second call may use what is left.
    state.record_model_response(tool_use_response("t1"), Duration::ZERO, nova());
    run_tools(&mut state, Duration::ZERO);
    match state.next_action(Duration::ZERO) {
        Action::CallModel(request) => {
            let max = request.inference.max_tokens.expect("capped");
            assert!(max < 280, "{max}");
        }
        other => panic!("expected a model call, got {other:?}"),
    }
    let mut big = tool_use_response("t2");
    big.usage.input_tokens = 250;
    state.record_model_response(big, Duration::ZERO, nova());
    run_tools(&mut state, Duration::ZERO);
    assert!(matches!(state.next_action(Duration::ZERO), Action::Done));
    assert_eq!(state.stop_reason(), Some(StopReason::MaxTurnTokens));
    assert_eq!(state.steps(), 2);
    assert!(state.answer().contains("token budget"));
    assert_eq!(
        state.turn_messages().last().map(|m| m.role),
        Some(Role::Assistant)
    );
}

#[test]
fn a_forced_tool_choice_applies_to_the_first_step_only() {
    let mut state = TurnState::start(
        ModelRequest {
            tool_choice: Some(super::model::ToolChoice::Tool("calculator".into())),
            ..ModelRequest::default()
        },
        Message::user_text("What is 6*7?"),
        limits(8),
        budget(),
    );
    assert!(matches!(
        state.next_action(Duration::ZERO),
        Action::CallModel(request) if request.tool_choice.is_some()
    ));
    state.record_model_response(tool_use_response("t1"), Duration::ZERO, nova());
    run_tools(&mut state, Duration::ZERO);
    assert!(matches!(
        state.next_action(Duration::ZERO),
        Action::CallModel(request) if request.tool_choice.is_none()
    ));
}

#[test]
fn each_step_is_priced_and_named_by_the_model_that_answered_it() {
    let mut state = start(vec![], 8);
    let _ = state.next_action(Duration::ZERO);
    let haiku = AnsweredBy {
        model_id: "us.anthropic.claude-haiku-4-5-20251001-v1:0".into(),
        pricing: Pricing::for_model("us.anthropic.claude-haiku-4-5-20251001-v1:0"),
        failed: vec![super::trace::FailedAttempt {
            model_id: "us.anthropic.claude-sonnet-4-5-20250929-v1:0".into(),
            error: "throttled".into(),
        }],
    };
    state.record_model_response(tool_use_response("t1"), Duration::ZERO, haiku);
    run_tools(&mut state, Duration::ZERO);
    let _ = state.next_action(Duration::ZERO);
    state.record_model_response(final_response("42"), Duration::ZERO, nova());
    assert_eq!(
        state.step_models(),
        [
            "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "amazon.nova-lite-v1:0"
        ]
    );
    // Haiku 4.5 through `us.`: 100 in at $1.10, 20 out at $5.50; Nova Lite: 150 at $0.06, 10 at $0.24.
    let expected = (100.0 * 1.10 + 20.0 * 5.50 + 150.0 * 0.06 + 10.0 * 0.24) / 1e6;
    let cost = state.cost();
    assert!(cost.unpriced.is_empty(), "both priced");
    assert!((cost.total_usd - expected).abs() < 1e-12, "{cost:?}");
    match &state.trace()[0] {
        super::trace::TraceStep::Model {
            model_id,
            failed_attempts,
            ..
        } => {
            assert_eq!(model_id, "us.anthropic.claude-haiku-4-5-20251001-v1:0");
            assert_eq!(failed_attempts.len(), 1);
        }
        other => panic!("expected a model step, got {other:?}"),
    }
}

#[test]
fn a_step_of_unknown_price_names_its_model_and_adds_nothing() {
    let mut state = start(vec![], 8);
    let _ = state.next_action(Duration::ZERO);
    state.record_model_response(tool_use_response("t1"), Duration::ZERO, nova());
    run_tools(&mut state, Duration::ZERO);
    let _ = state.next_action(Duration::ZERO);
    let unknown = AnsweredBy {
        model_id: "acme.unpriced".into(),
        ..AnsweredBy::default()
    };
    let before = state.cost().total_usd;
    state.record_model_response(final_response("42"), Duration::ZERO, unknown);
    assert_eq!(state.cost().unpriced, vec!["acme.unpriced".to_owned()]);
    assert_eq!(state.cost().total_usd, before);
}

#[test]
fn each_trace_step_says_when_it_started_for_the_timeline() {
    let mut state = start(vec![], 8);
    let _ = state.next_action(Duration::from_millis(120));
    state.record_model_response(tool_use_response("t1"), Duration::from_millis(400), nova());
    run_tools(&mut state, Duration::from_millis(530));
    let _ = state.next_action(Duration::from_millis(560));
    state.record_model_response(final_response("42"), Duration::from_millis(300), nova());
    let starts: Vec<(&str, Option<u64>)> = state
        .trace()
        .iter()
        .map(|step| match step {
            super::trace::TraceStep::Model { start_ms, .. } => ("model", *start_ms),
            super::trace::TraceStep::Tool { start_ms, .. } => ("tool", *start_ms),
            super::trace::TraceStep::ModelFailed { start_ms, .. } => ("failed", *start_ms),
        })
        .collect();
    assert_eq!(
        starts,
        [
            ("model", Some(120)),
            ("tool", Some(530)),
            ("model", Some(560))
        ]
    );
}

#[test]
fn the_commits_size_estimate_is_within_a_fifth_of_the_serialized_size() {
    let mut state = start(vec![], 8);
    let _ = state.next_action(Duration::ZERO);
    state.record_model_response(tool_use_response("t1"), Duration::ZERO, nova());
    run_tools(&mut state, Duration::ZERO);
    let _ = state.next_action(Duration::ZERO);
    state.record_model_response(final_response("42"), Duration::ZERO, nova());
    let serialized: usize = state
        .turn_messages()
        .iter()
        .map(|m| serde_json::to_vec(m).unwrap().len())
        .sum();
    let estimated: usize = state
        .turn_messages()
        .iter()
        .map(super::turn::approx_message_bytes)
        .sum();
    let ratio = estimated as f64 / serialized as f64;
    assert!(
        (0.8..=1.25).contains(&ratio),
        "messages {estimated} vs {serialized}"
    );
    let serialized = serde_json::to_vec(state.trace()).unwrap().len();
    let estimated: usize = state
        .trace()
        .iter()
        .map(super::turn::approx_step_bytes)
        .sum();
    let ratio = estimated as f64 / serialized as f64;
    assert!(
        (0.8..=1.25).contains(&ratio),
        "trace {estimated} vs {serialized}"
    );
}
