//! End-to-end tests through the official `aws-sdk-bedrockruntime` client (see
//! `common`), tool choice: `any` and `tool` force a call, `auto` may answer,
//! and a choice naming no offered tool is refused.

mod common;

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::types::{
    AnyToolChoice, AutoToolChoice, SpecificToolChoice, StopReason, ToolChoice as SdkToolChoice,
    ToolConfiguration,
};
use common::{
    ask, converse_refused, reply_of, start, texts, to_json, tool_uses, tools, BoxError, TestResult,
};
use serde_json::{json, Value};

/// `tools(names)` with a tool choice.
fn tools_choosing(names: &[&str], choice: SdkToolChoice) -> Result<ToolConfiguration, BoxError> {
    let config = tools(names)?;
    Ok(ToolConfiguration::builder()
        .set_tools(Some(config.tools().to_vec()))
        .tool_choice(choice)
        .build()?)
}

#[tokio::test]
async fn tool_choice_any_and_tool_force_calls_and_unknown_tools_are_refused() -> TestResult {
    let (_standin, client) = start().await?;
    let offered = ["web_search", "calculator"];
    let call = |choice: SdkToolChoice, text: &'static str| {
        let client = client.clone();
        async move {
            let output = ask(&client, text)?
                .tool_config(tools_choosing(&offered, choice)?)
                .send()
                .await?;
            let message = reply_of(&output)?.clone();
            let calls: Vec<(String, Value)> = tool_uses(&message)
                .iter()
                .map(|u| (u.name().to_string(), to_json(u.input())))
                .collect();
            Ok::<_, BoxError>((output.stop_reason().clone(), texts(&message), calls))
        }
    };
    let any = SdkToolChoice::Any(AnyToolChoice::builder().build());
    let (stop, text, calls) = call(any.clone(), "hello").await?;
    assert_eq!(stop, StopReason::ToolUse);
    assert_eq!(text, "", "a forced choice has no text before the call");
    assert_eq!(calls, [("web_search".into(), json!({"query": "hello"}))]);
    let (_, _, calls) = call(any, "what is 6*7").await?;
    assert_eq!(calls, [("calculator".into(), json!({"expression": "6*7"}))]);

    let calculator = SdkToolChoice::Tool(SpecificToolChoice::builder().name("calculator").build()?);
    let (stop, _, calls) = call(calculator, "search for rust").await?;
    assert_eq!(stop, StopReason::ToolUse);
    assert_eq!(calls, [("calculator".into(), json!({"expression": "1+1"}))]);

    let auto = SdkToolChoice::Auto(AutoToolChoice::builder().build());
    let (stop, text, calls) = call(auto, "hello").await?;
    assert_eq!(
        (stop, text.as_str(), calls.len()),
        (StopReason::EndTurn, "You said: hello", 0)
    );

    let unknown = SdkToolChoice::Tool(SpecificToolChoice::builder().name("current_time").build()?);
    let err = converse_refused(
        ask(&client, "hello")?.tool_config(tools_choosing(&offered, unknown)?),
        "a tool choice naming no offered tool must be refused",
    )
    .await?;
    assert!(err.is_validation_exception(), "{err:?}");
    assert_eq!(
        err.message(),
        Some(
            "The tool current_time in toolConfig.toolChoice is not one of the tools in \
             toolConfig.tools: web_search, calculator."
        )
    );
    Ok(())
}
