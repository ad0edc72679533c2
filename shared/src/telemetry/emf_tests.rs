use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use super::*;
use crate::domain::{
    ledger::Ledger,
    model::Usage,
    trace::{FailedAttempt, TraceStep, TurnTrace},
    turn::StopReason,
};

const NS: &str = "LambdaAgent";
const TS: i64 = 1_767_225_600_000;
const FUNCTION: &str = "stack-SessionHandlerFunction-AbC123";
const HAIKU: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";
const SONNET: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// CloudWatch's standard units.
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

fn usage(input: u64, output: u64, read: u64, write: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: read,
        cache_write_tokens: write,
    }
}

fn cost(total: f64) -> Ledger {
    Ledger {
        total_usd: total,
        ..Ledger::default()
    }
}

fn model_step(step: u32, model: &str, latency: u64, usage: Usage, usd: Option<f64>) -> TraceStep {
    TraceStep::Model {
        step,
        start_ms: Some(0),
        model_id: model.to_owned(),
        latency_ms: latency,
        usage,
        cost: usd.map(cost),
        stop_reason: "tool_use".to_owned(),
        failed_attempts: Vec::new(),
    }
}

fn tool_step(step: u32, name: &str, latency: u64, ok: bool) -> TraceStep {
    TraceStep::Tool {
        step,
        start_ms: Some(0),
        name: name.to_owned(),
        tool_use_id: format!("tooluse_{step}_{latency}"),
        latency_ms: latency,
        status: if ok { "success" } else { "error" }.to_owned(),
        error: (!ok).then(|| "failed".to_owned()),
        input: None,
        result: None,
        cost: None,
    }
}

fn trace(steps: Vec<TraceStep>, stop_reason: StopReason, usd: Option<f64>) -> TurnTrace {
    let mut total = Usage::default();
    for step in &steps {
        if let TraceStep::Model { usage, .. } = step {
            total.add(*usage);
        }
    }
    TurnTrace {
        turn: 3,
        trace_id: "1-6789abcd-0123456789abcdef01234567".to_owned(),
        started_at: "2026-01-01T00:00:00Z".to_owned(),
        duration_ms: 1234,
        stop_reason,
        usage: total,
        cost: usd.map(cost),
        groundedness: None,
        steps,
        omitted_tool_steps: 0,
    }
}

/// The stand-in's calculator turn: two Haiku steps, one tool call.
fn calculator_trace() -> TurnTrace {
    trace(
        vec![
            model_step(1, HAIKU, 400, usage(1200, 40, 2000, 300), Some(0.002)),
            tool_step(1, "calculator", 3, true),
            model_step(2, HAIKU, 350, usage(100, 20, 2300, 0), Some(0.001)),
        ],
        StopReason::EndTurn,
        Some(0.003),
    )
}

/// A busy turn: Sonnet throttled and Haiku answering (a fallback), Sonnet answering later,
/// two tools (one failing), a step that failed on both models.
fn busy_trace() -> TurnTrace {
    let mut fallback = model_step(1, HAIKU, 900, usage(1000, 50, 0, 0), Some(0.001));
    if let TraceStep::Model {
        failed_attempts, ..
    } = &mut fallback
    {
        failed_attempts.push(FailedAttempt {
            model_id: SONNET.to_owned(),
            error: "throttled".to_owned(),
        });
    }
    trace(
        vec![
            fallback,
            tool_step(1, "web_search", 800, true),
            tool_step(1, "http_fetch", 1200, false),
            tool_step(1, "web_search", 600, true),
            model_step(2, SONNET, 2000, usage(3000, 200, 500, 100), Some(0.02)),
            TraceStep::ModelFailed {
                step: 3,
                start_ms: Some(5000),
                latency_ms: 4000,
                failed_attempts: vec![
                    FailedAttempt {
                        model_id: SONNET.to_owned(),
                        error: "unavailable".to_owned(),
                    },
                    FailedAttempt {
                        model_id: HAIKU.to_owned(),
                        error: "throttled".to_owned(),
                    },
                ],
            },
        ],
        StopReason::ModelError,
        Some(0.021),
    )
}

/// Parses each line and checks it is valid EMF: `_aws` with a timestamp and directives; each
/// directive's namespace, dimension sets (at most 30 keys, each a string member) and metrics
/// (at most 100, units from the standard set, each a number or 1 to 100 numbers).
fn parse_valid(text: &str) -> Vec<Json> {
    assert!(!text.ends_with('\n'), "no newline at the end");
    text.lines()
        .map(|line| {
            let record: Json = serde_json::from_str(line).expect("each line is one JSON object");
            let root = record.as_object().expect("an object");
            let aws = root["_aws"].as_object().expect("_aws");
            assert_eq!(aws["Timestamp"].as_i64(), Some(TS));
            let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
            assert!(!directives.is_empty());
            for directive in directives {
                let ns = directive["Namespace"].as_str().expect("namespace");
                assert!(valid_namespace(ns));
                let sets = directive["Dimensions"].as_array().expect("dimension sets");
                assert!(!sets.is_empty());
                for set in sets {
                    let set = set.as_array().expect("a dimension set");
                    assert!(set.len() <= MAX_DIMENSIONS_PER_SET);
                    for key in set {
                        let key = key.as_str().expect("a dimension key");
                        let value = root[key].as_str().unwrap_or_else(|| {
                            panic!("dimension {key} is a string member: {line}")
                        });
                        assert!(!value.trim().is_empty() && value.len() <= 1024);
                        assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)));
                    }
                }
                let metrics = directive["Metrics"].as_array().expect("metrics");
                assert!(!metrics.is_empty() && metrics.len() <= MAX_METRICS_PER_DIRECTIVE);
                for metric in metrics {
                    let name = metric["Name"].as_str().expect("a name");
                    let unit = metric["Unit"].as_str().expect("a unit");
                    assert!(UNITS.contains(&unit), "unit {unit}");
                    match &root.get(name) {
                        Some(Json::Number(_)) => {}
                        Some(Json::Array(values)) => {
                            assert!(!values.is_empty() && values.len() <= MAX_VALUES_PER_METRIC);
                            assert!(values.iter().all(Json::is_number));
                        }
                        other => panic!("metric {name} has a value member, not {other:?}"),
                    }
                }
            }
            record
        })
        .collect()
}

/// (metric, unit, dimension keys, dimension values) -> values, over all records; panics if
/// one is published twice.
type Published = BTreeMap<(String, String, Vec<String>, Vec<String>), Vec<f64>>;

fn published(records: &[Json]) -> Published {
    let mut out = Published::new();
    let mut seen_in_record = BTreeSet::new();
    for (i, record) in records.iter().enumerate() {
        for directive in record["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for set in directive["Dimensions"].as_array().unwrap() {
                let keys: Vec<String> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap().to_owned())
                    .collect();
                let values: Vec<String> = keys
                    .iter()
                    .map(|k| record[k].as_str().unwrap().to_owned())
                    .collect();
                for metric in directive["Metrics"].as_array().unwrap() {
                    let name = metric["Name"].as_str().unwrap().to_owned();
                    let unit = metric["Unit"].as_str().unwrap().to_owned();
                    let key = (name.clone(), unit, keys.clone(), values.clone());
                    assert!(
                        seen_in_record.insert((i, key.clone())),
                        "published twice in one record: {key:?}"
                    );
                    let samples: Vec<f64> = match &record[&name] {
                        Json::Array(list) => list.iter().map(|v| v.as_f64().unwrap()).collect(),
                        value => vec![value.as_f64().unwrap()],
                    };
                    let entry = out.entry(key.clone()).or_default();
                    // Only a continuation record (arrays past 100 values) may add to a key.
                    assert!(
                        entry.is_empty() || entry.len() % MAX_VALUES_PER_METRIC == 0,
                        "{key:?} published by two records"
                    );
                    entry.extend(samples);
                }
            }
        }
    }
    out
}

fn get(published: &Published, name: &str, dims: &[(&str, &str)]) -> Option<Vec<f64>> {
    let mut keys = vec!["Function".to_owned()];
    let mut values = vec![FUNCTION.to_owned()];
    for (k, v) in dims {
        keys.push((*k).to_owned());
        values.push((*v).to_owned());
    }
    published
        .iter()
        .find(|((n, _, k, v), _)| n == name && *k == keys && *v == values)
        .map(|(_, samples)| samples.clone())
}

fn one(published: &Published, name: &str, dims: &[(&str, &str)]) -> f64 {
    let samples = get(published, name, dims).unwrap_or_else(|| panic!("{name} {dims:?}"));
    assert_eq!(samples.len(), 1, "{name} {dims:?}");
    samples[0]
}

#[test]
fn a_calculator_turn_is_one_valid_record_with_its_figures() {
    let metrics = TurnMetrics::from_trace(&calculator_trace(), FUNCTION, true);
    let text = record_in(NS, &metrics, TS);
    let records = parse_valid(&text);
    assert_eq!(records.len(), 1, "{text}");
    assert!(text.len() < 2048, "a small line: {} bytes", text.len());
    let record = &records[0];
    assert_eq!(record["Function"], FUNCTION);
    assert_eq!(record["Model"], HAIKU);
    assert_eq!(record["Tool"], "calculator");
    assert_eq!(record["StopReason"], "end_turn");
    assert_eq!(record["TraceId"], "1-6789abcd-0123456789abcdef01234567");
    assert!(record.get("ErrorKind").is_none());

    let p = published(&records);
    for (name, value) in [
        ("Turns", 1.0),
        ("ColdStarts", 1.0),
        ("Steps", 2.0),
        ("ModelCalls", 2.0),
        ("ToolCalls", 1.0),
        ("ToolErrors", 0.0),
        ("InputTokens", 1300.0),
        ("OutputTokens", 60.0),
        ("CacheReadTokens", 4300.0),
        ("CacheWriteTokens", 300.0),
        ("CostUSD", 0.003),
        ("TurnLatency", 1234.0),
        ("GuardrailInterventions", 0.0),
        ("Errors", 0.0),
    ] {
        assert_eq!(one(&p, name, &[]), value, "{name}");
    }
    assert_eq!(get(&p, "ModelLatency", &[]).unwrap(), vec![400.0, 350.0]);
    assert_eq!(get(&p, "ToolLatency", &[]).unwrap(), vec![3.0]);
    assert_eq!(one(&p, "Turns", &[("StopReason", "end_turn")]), 1.0);
    let model = [("Model", HAIKU)];
    assert_eq!(one(&p, "ModelCalls", &model), 2.0);
    assert_eq!(one(&p, "InputTokens", &model), 1300.0);
    assert_eq!(one(&p, "CostUSD", &model), 0.003);
    assert_eq!(get(&p, "ModelLatency", &model).unwrap(), vec![400.0, 350.0]);
    let tool = [("Tool", "calculator")];
    assert_eq!(one(&p, "ToolCalls", &tool), 1.0);
    assert_eq!(get(&p, "ToolLatency", &tool).unwrap(), vec![3.0]);
    // Turn-level metrics are not published by model or tool.
    assert!(get(&p, "TurnLatency", &model).is_none());
    assert!(get(&p, "Turns", &tool).is_none());
}

#[test]
fn a_turn_of_several_models_tools_and_errors_adds_a_record_for_each() {
    let metrics = TurnMetrics::from_trace(&busy_trace(), FUNCTION, false);
    let text = record_in(NS, &metrics, TS);
    let records = parse_valid(&text);
    // The turn, two models, two tools, two error kinds.
    assert_eq!(records.len(), 7, "{text}");
    let p = published(&records);

    assert_eq!(one(&p, "Steps", &[]), 2.0);
    // 2 answered + 1 throttled before the fallback + 2 failed in step 3.
    assert_eq!(one(&p, "ModelCalls", &[]), 5.0);
    assert_eq!(one(&p, "ColdStarts", &[]), 0.0);
    assert_eq!(one(&p, "ToolCalls", &[]), 3.0);
    assert_eq!(one(&p, "ToolErrors", &[]), 1.0);
    assert_eq!(one(&p, "Errors", &[]), 3.0);
    assert_eq!(one(&p, "Turns", &[("StopReason", "model_error")]), 1.0);
    assert_eq!(
        get(&p, "ModelLatency", &[]).unwrap(),
        vec![900.0, 2000.0, 4000.0]
    );

    let haiku = [("Model", HAIKU)];
    let sonnet = [("Model", SONNET)];
    assert_eq!(one(&p, "ModelCalls", &haiku), 2.0);
    assert_eq!(one(&p, "ModelCalls", &sonnet), 3.0);
    assert_eq!(one(&p, "InputTokens", &haiku), 1000.0);
    assert_eq!(one(&p, "InputTokens", &sonnet), 3000.0);
    assert_eq!(one(&p, "CacheWriteTokens", &sonnet), 100.0);
    assert_eq!(one(&p, "CostUSD", &haiku), 0.001);
    assert_eq!(one(&p, "CostUSD", &sonnet), 0.02);
    assert_eq!(get(&p, "ModelLatency", &haiku).unwrap(), vec![900.0]);
    assert_eq!(get(&p, "ModelLatency", &sonnet).unwrap(), vec![2000.0]);

    let search = [("Tool", "web_search")];
    let fetch = [("Tool", "http_fetch")];
    assert_eq!(one(&p, "ToolCalls", &search), 2.0);
    assert_eq!(one(&p, "ToolErrors", &search), 0.0);
    assert_eq!(get(&p, "ToolLatency", &search).unwrap(), vec![800.0, 600.0]);
    assert_eq!(one(&p, "ToolCalls", &fetch), 1.0);
    assert_eq!(one(&p, "ToolErrors", &fetch), 1.0);

    assert_eq!(one(&p, "Errors", &[("ErrorKind", "throttled")]), 2.0);
    assert_eq!(one(&p, "Errors", &[("ErrorKind", "unavailable")]), 1.0);

    // By model, the tokens add up to the turn's.
    for name in [
        "InputTokens",
        "OutputTokens",
        "CacheReadTokens",
        "CacheWriteTokens",
    ] {
        let by_model = one(&p, name, &haiku) + one(&p, name, &sonnet);
        assert_eq!(by_model, one(&p, name, &[]), "{name}");
    }
    // Every extra record carries the trace id and the function, and one dimension of its own.
    for record in &records[1..] {
        assert_eq!(record["Function"], FUNCTION);
        assert_eq!(record["TraceId"], "1-6789abcd-0123456789abcdef01234567");
        assert!(record.get("Turns").is_none());
    }
}

#[test]
fn the_records_publish_exactly_the_metrics_table() {
    let mut seen = BTreeSet::new();
    for metrics in [
        TurnMetrics::from_trace(&calculator_trace(), FUNCTION, true),
        TurnMetrics::from_trace(&busy_trace(), FUNCTION, false),
    ] {
        for ((name, unit, keys, _), _) in published(&parse_valid(&record_in(NS, &metrics, TS))) {
            seen.insert((name, unit, keys));
        }
    }
    let table: BTreeSet<_> = METRICS
        .iter()
        .map(|spec| {
            (
                spec.name.to_owned(),
                spec.unit.to_owned(),
                spec.dimensions.iter().map(|d| (*d).to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(table.len(), METRICS.len(), "no duplicate in METRICS");
    assert_eq!(seen, table);
}

#[test]
fn no_user_or_session_id_reaches_a_record() {
    // Ids a turn's trace might mention (a tool's error message, say): none is a field of
    // TurnMetrics, so none can be in a record.
    const USER: &str = "alice@example.com";
    const SESSION: &str = "0f8c2d3e-5b6a-4c1d-9e8f-7a6b5c4d3e2f";
    let mut trace = busy_trace();
    for step in &mut trace.steps {
        if let TraceStep::Tool {
            error, tool_use_id, ..
        } = step
        {
            *error = Some(format!("failed for {USER} in session {SESSION}"));
            *tool_use_id = format!("{SESSION}-{USER}");
        }
    }
    let metrics = TurnMetrics::from_trace(&trace, FUNCTION, false);
    let text = record_in(NS, &metrics, TS);
    assert!(!text.contains(USER) && !text.contains(SESSION), "{text}");
    let lower = text.to_lowercase();
    for key in [
        "session_id",
        "sessionid",
        "user_id",
        "userid",
        "\"user\"",
        "\"session\"",
    ] {
        assert!(!lower.contains(key), "{key} in {text}");
    }
    let metric_names: BTreeSet<&str> = METRICS.iter().map(|spec| spec.name).collect();
    let allowed = [
        "_aws",
        "Function",
        "Model",
        "Tool",
        "ErrorKind",
        "StopReason",
        "TraceId",
    ];
    for record in parse_valid(&text) {
        for key in record.as_object().unwrap().keys() {
            assert!(
                allowed.contains(&key.as_str()) || metric_names.contains(key.as_str()),
                "unexpected member {key}"
            );
        }
    }
}

#[test]
fn an_unpriced_turn_has_no_cost_and_a_turn_without_tools_no_tool_latency() {
    let mut trace = trace(
        vec![model_step(
            1,
            "some-custom-model",
            500,
            usage(10, 5, 0, 0),
            None,
        )],
        StopReason::EndTurn,
        None,
    );
    trace.trace_id = String::new();
    let metrics = TurnMetrics::from_trace(&trace, FUNCTION, false);
    assert_eq!(metrics.models["some-custom-model"].cost_usd, None);
    let text = record_in(NS, &metrics, TS);
    let records = parse_valid(&text);
    assert_eq!(records.len(), 1);
    assert!(!text.contains("CostUSD"), "{text}");
    assert!(!text.contains("ToolLatency"), "{text}");
    assert!(!text.contains("TraceId"), "{text}");
    assert!(records[0].get("Tool").is_none());
    let p = published(&records);
    assert_eq!(one(&p, "ToolCalls", &[]), 0.0);
    assert_eq!(
        one(&p, "InputTokens", &[("Model", "some-custom-model")]),
        10.0
    );
}

#[test]
fn a_guardrail_intervention_counts() {
    let mut step = model_step(1, HAIKU, 300, usage(10, 5, 0, 0), Some(0.0001));
    if let TraceStep::Model { stop_reason, .. } = &mut step {
        *stop_reason = "guardrail_intervened".to_owned();
    }
    let trace = trace(vec![step], StopReason::GuardrailIntervened, Some(0.0001));
    let metrics = TurnMetrics::from_trace(&trace, FUNCTION, false);
    assert_eq!(metrics.guardrail_interventions, 1);
    let p = published(&parse_valid(&record_in(NS, &metrics, TS)));
    assert_eq!(one(&p, "GuardrailInterventions", &[]), 1.0);
    assert_eq!(
        one(&p, "Turns", &[("StopReason", "guardrail_intervened")]),
        1.0
    );
}

#[test]
fn more_than_a_hundred_latencies_continue_in_further_records() {
    let mut steps = vec![model_step(1, HAIKU, 100, usage(10, 5, 0, 0), Some(0.001))];
    steps.extend((0..250).map(|i| tool_step(1, "calculator", i, true)));
    let metrics = TurnMetrics::from_trace(
        &trace(steps, StopReason::EndTurn, Some(0.001)),
        FUNCTION,
        false,
    );
    let records = parse_valid(&record_in(NS, &metrics, TS));
    // The turn record with the first 100, two continuation records of 100 and 50.
    assert_eq!(records.len(), 3);
    let p = published(&records);
    let expected: Vec<f64> = (0..250).map(f64::from).collect();
    assert_eq!(get(&p, "ToolLatency", &[]).unwrap(), expected);
    assert_eq!(
        get(&p, "ToolLatency", &[("Tool", "calculator")]).unwrap(),
        expected
    );
    assert_eq!(one(&p, "ToolCalls", &[("Tool", "calculator")]), 250.0);
    // Continuations carry only the array, not the counts again.
    for record in &records[1..] {
        assert!(record.get("Turns").is_none() && record.get("ToolCalls").is_none());
    }
}

#[test]
fn omitted_tool_steps_count_in_the_turn_but_by_no_tool() {
    let mut trace = calculator_trace();
    trace.omitted_tool_steps = 4;
    let metrics = TurnMetrics::from_trace(&trace, FUNCTION, false);
    let records = parse_valid(&record_in(NS, &metrics, TS));
    assert_eq!(records.len(), 2, "the tool has a record of its own");
    let p = published(&records);
    assert_eq!(one(&p, "ToolCalls", &[]), 5.0);
    assert_eq!(one(&p, "ToolCalls", &[("Tool", "calculator")]), 1.0);
}

#[test]
fn dimension_values_and_strings_are_made_acceptable() {
    let mut metrics = TurnMetrics::from_trace(&calculator_trace(), "", false);
    metrics.trace_id = "a \"quoted\" \\ id\n".to_owned();
    let tools = std::mem::take(&mut metrics.tools);
    metrics
        .tools
        .insert("rechner_é".to_owned(), tools["calculator"].clone());
    metrics.stop_reason = "x".repeat(2000);
    let text = record_in(NS, &metrics, TS);
    let records = parse_valid(&text);
    let record = &records[0];
    assert_eq!(record["Function"], "unknown");
    assert_eq!(record["Tool"], "rechner__");
    assert_eq!(record["StopReason"].as_str().unwrap().len(), 1024);
    assert_eq!(record["TraceId"], "a \"quoted\" \\ id\n");
}

#[test]
fn a_non_finite_cost_is_left_out() {
    let mut metrics = TurnMetrics::from_trace(&calculator_trace(), FUNCTION, false);
    metrics.cost_usd = Some(f64::NAN);
    let text = record_in(NS, &metrics, TS);
    let records = parse_valid(&text);
    // The model's cost (finite) no longer equals the turn's: it gets a record of its own.
    assert_eq!(records.len(), 2);
    let p = published(&records);
    assert!(get(&p, "CostUSD", &[]).is_none());
    assert_eq!(one(&p, "CostUSD", &[("Model", HAIKU)]), 0.003);
}

#[test]
fn namespaces_are_checked() {
    assert!(valid_namespace("LambdaAgent"));
    assert!(valid_namespace("my-stack/agent.v2#1:x_y"));
    assert!(!valid_namespace(""));
    assert!(!valid_namespace("AWS/Lambda"));
    assert!(!valid_namespace("has space"));
    assert!(!valid_namespace(&"a".repeat(257)));
    let text = record_in("Other/Namespace", &TurnMetrics::default(), TS);
    let records = parse_valid(&text);
    assert_eq!(
        records[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Other/Namespace"
    );
}

#[test]
fn cold_start_is_true_once() {
    // The only caller in this test binary.
    assert!(cold_start());
    assert!(!cold_start());
    assert!(!cold_start());
}

#[test]
fn the_default_metrics_are_a_valid_record() {
    let records = parse_valid(&record_in(NS, &TurnMetrics::default(), TS));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["Turns"], 1);
}
