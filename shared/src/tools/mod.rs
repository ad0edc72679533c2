//! Tools that run in-process, inside the session handler: `calculator` and `current_time`.
//!
//! Each tool's input is a Rust type; its JSON schema is generated from that type, and the
//! model's arguments are parsed into it, so a malformed call gets a precise error result.

pub mod calculator;
pub mod current_time;
pub mod tool_set;

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::{
    domain::{
        message::{ToolCall, ToolOutput},
        model::ToolSpec,
    },
    ports::{CallContext, ToolInvoker, ToolListError},
};

/// The JSON schema of a tool's input type, as the model API expects it.
pub fn input_schema<T: JsonSchema>() -> Value {
    let mut schema = schemars::schema_for!(T).to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
    }
    schema
}

/// Parses a tool's arguments into its input type, or explains what is wrong with them.
pub fn parse_input<T: DeserializeOwned>(tool: &str, input: &Value) -> Result<T, String> {
    serde_json::from_value(input.clone())
        .map_err(|error| format!("invalid input for {tool}: {error}"))
}

/// The in-process tools.
#[derive(Clone, Debug)]
pub struct BuiltinTools {
    clock: fn() -> DateTime<Utc>,
}

impl Default for BuiltinTools {
    fn default() -> Self {
        Self { clock: Utc::now }
    }
}

impl BuiltinTools {
    /// Built-in tools reading the time from `clock` (tests pin it).
    pub fn with_clock(clock: fn() -> DateTime<Utc>) -> Self {
        Self { clock }
    }

    /// The specs of the built-in tools, generated once per process (every turn offers them).
    pub fn tool_specs() -> &'static [ToolSpec] {
        static SPECS: LazyLock<Vec<ToolSpec>> = LazyLock::new(BuiltinTools::generate_specs);
        &SPECS
    }

    /// True when `name` is one of the built-in tools.
    pub fn serves(name: &str) -> bool {
        Self::tool_specs().iter().any(|spec| spec.name == name)
    }

    fn generate_specs() -> Vec<ToolSpec> {
        vec![
            ToolSpec {
                name: "calculator".into(),
                description: "Evaluates an arithmetic expression exactly and returns the number. \
                              Use it for any arithmetic instead of computing in your head."
                    .into(),
                input_schema: input_schema::<calculator::CalculatorInput>(),
            },
            ToolSpec {
                name: "current_time".into(),
                description: "Returns the current date and time in UTC, and in an IANA time zone \
                              when one is given."
                    .into(),
                input_schema: input_schema::<current_time::CurrentTimeInput>(),
            },
        ]
    }

    fn run(&self, call: &ToolCall) -> ToolOutput {
        match call.name.as_str() {
            "calculator" => {
                let input: calculator::CalculatorInput = match parse_input(&call.name, &call.input)
                {
                    Ok(input) => input,
                    Err(error) => return ToolOutput::error(error),
                };
                match calculator::evaluate(&input.expression) {
                    Ok(value) => ToolOutput::json(json!({
                        "expression": input.expression,
                        "result": calculator::format_number(value),
                    })),
                    Err(error) => ToolOutput::error(format!(
                        "cannot evaluate '{}': {error}",
                        input.expression
                    )),
                }
            }
            "current_time" => {
                let input: current_time::CurrentTimeInput =
                    match parse_input(&call.name, &call.input) {
                        Ok(input) => input,
                        Err(error) => return ToolOutput::error(error),
                    };
                match current_time::describe((self.clock)(), input.timezone.as_deref()) {
                    Ok(value) => ToolOutput::json(value),
                    Err(error) => ToolOutput::error(error),
                }
            }
            other => ToolOutput::error(format!("unknown tool '{other}'")),
        }
    }
}

#[async_trait]
impl ToolInvoker for BuiltinTools {
    async fn specs(&self) -> Result<Vec<ToolSpec>, ToolListError> {
        Ok(Self::tool_specs().to_vec())
    }

    async fn call(&self, call: &ToolCall, _context: &CallContext) -> ToolOutput {
        self.run(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::{ToolResultContent, ToolStatus};

    fn call(name: &str, input: Value) -> ToolCall {
        ToolCall {
            tool_use_id: "t".into(),
            name: name.into(),
            input,
        }
    }

    #[test]
    fn specs_carry_schemas_generated_from_the_input_types() {
        let specs = BuiltinTools::tool_specs();
        let calculator = &specs[0];
        assert_eq!(calculator.input_schema["type"], "object");
        assert_eq!(calculator.input_schema["required"], json!(["expression"]));
        assert_eq!(
            calculator.input_schema["properties"]["expression"]["type"],
            "string"
        );
        assert!(calculator.input_schema.get("$schema").is_none());
        let time = &specs[1];
        assert!(time.input_schema["properties"]["timezone"].is_object());
    }

    #[test]
    fn the_calculator_returns_the_result_as_json() {
        let output =
            BuiltinTools::default().run(&call("calculator", json!({"expression": "12*(3+4)"})));
        assert_eq!(output.status, ToolStatus::Success);
        assert_eq!(
            output.content,
            vec![ToolResultContent::Json {
                json: json!({"expression": "12*(3+4)", "result": "84"})
            }]
        );
    }

    #[test]
    fn malformed_arguments_become_an_error_the_model_can_read() {
        let tools = BuiltinTools::default();
        let missing = tools.run(&call("calculator", json!({})));
        assert_eq!(missing.status, ToolStatus::Error);
        assert!(
            matches!(&missing.content[0], ToolResultContent::Text { text } if text.contains("missing field `expression`"))
        );
        let bad = tools.run(&call("calculator", json!({"expression": "2 +* 3"})));
        assert!(
            matches!(&bad.content[0], ToolResultContent::Text { text } if text.contains("position 4"))
        );
        let unknown = tools.run(&call("teleport", json!({})));
        assert_eq!(unknown.status, ToolStatus::Error);
    }

    #[test]
    fn current_time_reads_the_clock() {
        fn fixed() -> DateTime<Utc> {
            DateTime::from_timestamp(0, 0).unwrap_or_default()
        }
        let output = BuiltinTools::with_clock(fixed).run(&call("current_time", json!({})));
        assert!(
            matches!(&output.content[0], ToolResultContent::Json { json } if json["utc"] == "1970-01-01T00:00:00Z")
        );
    }
}
