//! Which offered tools the fake model calls for a user text, and with what
//! input: `calculator`, `current_time` and `web_search` are recognised by name, and the
//! memory tools `record_memories` and `write_summary` get scripted inputs when forced.

use crate::text;
use serde_json::{json, Value};

/// Tool calls the text asks for, restricted to the offered tools: one
/// `calculator` call per expression, then `current_time`, then `web_search`.
pub fn plan_calls<'a>(tools: &[&'a str], text: &str) -> Vec<(&'a str, Value)> {
    let offered = |name: &str| tools.iter().copied().find(|t| *t == name);
    let mut calls = Vec::new();
    if let Some(name) = offered("calculator") {
        for expression in text::expressions(text) {
            calls.push((name, json!({ "expression": expression })));
        }
    }
    if let Some(name) = offered("current_time").filter(|_| text::mentions_time(text)) {
        calls.push((name, time_input(text)));
    }
    if let (Some(name), Some(query)) = (offered("web_search"), text::search_query(text)) {
        calls.push((name, json!({ "query": query })));
    }
    calls
}

fn time_input(text: &str) -> Value {
    match text::timezone(text) {
        Some(zone) => json!({ "timezone": zone }),
        None => json!({}),
    }
}

/// Input for a forced call (`[[standin:always-tool]]` or a forcing `toolChoice`) of `name`.
pub fn scripted_input(name: &str, text: &str) -> Value {
    match name {
        "calculator" => {
            let expression = text::expressions(text).into_iter().next();
            json!({ "expression": expression.unwrap_or_else(|| "1+1".to_string()) })
        }
        "current_time" => time_input(text),
        "web_search" => {
            let query = text::search_query(text).unwrap_or_else(|| text.to_string());
            json!({ "query": query })
        }
        "record_memories" => crate::memory::record_memories(text),
        "write_summary" => crate::memory::write_summary(text),
        _ => json!({}),
    }
}

pub fn intro_for(name: &str) -> &'static str {
    match name {
        "calculator" => "Let me calculate that.",
        "current_time" => "Let me check the time.",
        "web_search" => "Let me search for that.",
        _ => "Let me use a tool.",
    }
}
