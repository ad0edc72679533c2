//! What an executor logs for a tool call served through `tool_contract::handle`: one line with
//! the handler's trace id, session id and tool use id (so a turn can be followed across
//! functions), the outcome and the latency; never the user id or the tool's input. Alone in its
//! test binary so that its thread-local subscriber sees every callsite.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::{
    domain::message::ToolOutput,
    ports::CallContext,
    tool_contract::{handle, Tool},
};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Deserialize, JsonSchema)]
struct ShoutInput {
    /// What to shout.
    text: String,
}

struct Shout;

impl Tool for Shout {
    type Input = ShoutInput;
    const NAME: &'static str = "shout";
    const DESCRIPTION: &'static str = "Upper-cases its input.";

    async fn run(&self, input: ShoutInput, _: Option<&CallContext>) -> Result<ToolOutput, String> {
        tracing::info!("shouting");
        if input.text.is_empty() {
            return Err("nothing to shout".into());
        }
        Ok(ToolOutput::text(input.text.to_uppercase()))
    }
}

#[tokio::test]
async fn a_served_call_is_logged_with_the_turns_ids_and_without_the_user_or_the_input() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let context = json!({
        "user_id": "alice-sub-7f3a",
        "session_id": "5b0c3c2e-0000-4000-8000-000000000001",
        "tool_use_id": "tooluse_abc123",
        "trace_id": "trace-9d8e7f",
    });
    let ok = handle(
        &Shout,
        json!({"name": "shout", "arguments": {"text": "secret-input-text"}, "context": context}),
    )
    .await;
    assert_eq!(ok["content"][0]["text"], "SECRET-INPUT-TEXT");
    let failed = handle(
        &Shout,
        json!({"name": "shout", "arguments": {"text": ""}, "context": context}),
    )
    .await;
    assert_eq!(failed["isError"], true);

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let served: Vec<&Value> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "tool call served")
        .collect();
    assert_eq!(served.len(), 2, "{text}");
    assert_eq!(served[0]["fields"]["is_error"], false);
    assert_eq!(served[1]["fields"]["is_error"], true);
    for line in &served {
        assert_eq!(line["span"]["trace_id"], "trace-9d8e7f", "{line}");
        assert_eq!(line["span"]["tool_use_id"], "tooluse_abc123");
        assert_eq!(line["span"]["tool"], "shout");
        assert!(line["fields"]["latency_ms"].is_u64());
    }
    let shouting = lines
        .iter()
        .find(|line| line["fields"]["message"] == "shouting")
        .expect("the tool's own line");
    assert_eq!(
        shouting["span"]["trace_id"], "trace-9d8e7f",
        "the tool's own lines carry the ids too"
    );
    assert!(
        !text.contains("alice-sub-7f3a"),
        "the user id is not logged"
    );
    assert!(
        !text.contains("secret-input-text"),
        "the input is not logged"
    );
}
