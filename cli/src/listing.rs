//! The caller's sessions as a table, and the tools with their descriptions.

use std::fmt::Write as _;

use serde_json::Value;

use crate::format;
use crate::style::{Painter, Role};
use crate::wire::{SessionHeader, ToolSpec};

/// Longest title shown.
const TITLE_WIDTH: usize = 40;

/// The sessions as a table (id, title, turns, cost, updated), ending with a newline.
pub fn sessions(sessions: &[SessionHeader], paint: Painter) -> String {
    if sessions.is_empty() {
        return "no sessions yet: start one with `lambda-agent chat`\n".to_owned();
    }
    let rows: Vec<[String; 5]> = sessions
        .iter()
        .map(|s| {
            [
                s.session_id.clone(),
                crate::api::one_line(s.title.as_deref().unwrap_or("-"), TITLE_WIDTH),
                s.turns.to_string(),
                format::dollars(s.cost_usd),
                format::time(&s.updated_at),
            ]
        })
        .collect();
    let header = ["ID", "TITLE", "TURNS", "COST", "UPDATED"];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        // Numbers to the right, text to the left; no trailing spaces.
        let text = format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
        text.trim_end().to_owned()
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", paint.paint(Role::Strong, &line(header)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row.each_ref().map(String::as_str)));
    }
    out
}

/// The tools: name and parameters (`?` after an optional one), then the description.
pub fn tools(tools: &[ToolSpec], paint: Painter) -> String {
    if tools.is_empty() {
        return "no tools\n".to_owned();
    }
    let mut out = String::new();
    for (i, tool) in tools.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{}{}",
            paint.paint(Role::Strong, &tool.name),
            paint.paint(Role::Dim, &format!("({})", parameters(&tool.input_schema)))
        );
        for line in tool.description.trim().lines() {
            let _ = writeln!(out, "    {}", line.trim_end());
        }
    }
    out
}

/// `expression, precision?`: the schema's properties, the required ones first as listed.
fn parameters(schema: &Value) -> String {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return String::new();
    };
    let mut names: Vec<String> = required
        .iter()
        .filter(|name| properties.contains_key(**name))
        .map(|name| (*name).to_owned())
        .collect();
    names.extend(
        properties
            .keys()
            .filter(|name| !required.contains(&name.as_str()))
            .map(|name| format!("{name}?")),
    );
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sessions_line_up_in_columns() {
        let sessions: Vec<SessionHeader> = serde_json::from_value(json!([
            {"session_id": "0b6c7a4e-1111-4222-8333-944445555666", "title": "What is 12*7?",
             "created_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-01T10:05:00Z",
             "turns": 12, "messages": 40, "usage": {}, "cost_usd": 0.0123, "expires_at": 1},
            {"session_id": "9f000000-0000-4000-8000-000000000001", "title": null,
             "created_at": "2026-02-01T10:00:00Z", "updated_at": "2026-02-01T10:00:00Z",
             "turns": 0, "messages": 0, "usage": {}, "cost_usd": 0.0, "expires_at": 1}
        ]))
        .unwrap();
        assert_eq!(
            sessions_text(&sessions),
            "ID                                    TITLE          TURNS     COST  UPDATED\n\
             0b6c7a4e-1111-4222-8333-944445555666  What is 12*7?     12  $0.0123  2026-03-01 10:05 UTC\n\
             9f000000-0000-4000-8000-000000000001  -                  0  $0.0000  2026-02-01 10:00 UTC\n"
        );
        assert!(sessions_text(&[]).contains("lambda-agent chat"));
    }

    fn sessions_text(list: &[SessionHeader]) -> String {
        sessions(list, Painter::plain())
    }

    #[test]
    fn long_titles_are_cut_to_one_line() {
        let header = SessionHeader {
            session_id: "s".into(),
            title: Some(format!("first line\nsecond {}", "x".repeat(100))),
            ..SessionHeader::default()
        };
        let out = sessions(&[header], Painter::plain());
        let row = out.lines().nth(1).unwrap();
        assert!(row.contains("first line second xxx"), "{row}");
        assert!(row.contains('…'), "{row}");
    }

    #[test]
    fn tools_show_their_parameters_and_description() {
        let list: Vec<ToolSpec> = serde_json::from_value(json!([
            {"name": "calculator", "description": "Evaluates an arithmetic expression.",
             "input_schema": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}},
            {"name": "current_time", "description": "The current time.\nIn a time zone.",
             "input_schema": {"type": "object", "properties": {"timezone": {"type": "string"}}}}
        ]))
        .unwrap();
        assert_eq!(
            tools(&list, Painter::plain()),
            "calculator(expression)\n    Evaluates an arithmetic expression.\n\n\
             current_time(timezone?)\n    The current time.\n    In a time zone.\n"
        );
    }
}
