//! Per-turn metrics as CloudWatch Embedded Metric Format (EMF) records: JSON lines written to
//! stdout, from which CloudWatch Logs extracts metrics (Lambda sends stdout to the function's
//! log group; with the template's `LogFormat: JSON` a line that is already JSON is kept as is).
//!
//! Pure: [`record_in`] turns a [`TurnMetrics`] and a timestamp into text and does no I/O;
//! [`emit`] writes it to stdout. The namespace is `METRICS_NAMESPACE` (default
//! [`DEFAULT_NAMESPACE`]); `docs/metrics.md` lists every metric, and the dashboard and alarms of
//! `template.yaml` use them (`scripts/check-metrics.py` checks the names against [`METRICS`]).
//!
//! # One record per turn, and when there are more
//!
//! In EMF a dimension of a metric is a reference to a member of the record's root object, so a
//! record holds one value per dimension name: one `Model`, one `Tool`, one `ErrorKind`. A record
//! may hold several metric directives (`_aws.CloudWatchMetrics` is an array), each with its own
//! dimension sets over the same members, and that is how one record carries the turn's metrics
//! by `Function`, its `Turns` by `Function` and `StopReason`, and, when the turn used one model,
//! one tool and had one kind of error, those by `Function` and `Model`, `Tool` or `ErrorKind`.
//! A turn that used two models (a fallback) or two tools cannot say so in one record without
//! either putting the tool name in the metric name (a new metric per tool, which the dashboard
//! could not group) or a dimension name per tool (the same); so each model, tool or error kind
//! beyond the first of its kind gets a record of its own, with the `[Function, <kind>]`
//! dimension set and only its own figures:
//!
//! - the turn record: always one. Directive `[Function]` with the turn's totals; directive
//!   `[Function, StopReason]` with `Turns`; and, when the figures of the turn's only model (only
//!   tool, only error kind) are the turn's totals, directive `[Function, Model]` (`Tool`,
//!   `ErrorKind`) over the same members;
//! - otherwise, one record per model, per tool and per error kind, with `Function`, that
//!   dimension and its figures.
//!
//! A typical turn (one model, the calculator, no error) is therefore one line. Directives
//! never repeat a dimension value across records, so nothing is counted twice.
//!
//! A metric's value is a number or an array of at most [`MAX_VALUES_PER_METRIC`] numbers (a
//! distribution: each latency is a sample, so CloudWatch's percentiles are over calls, not
//! turns). A longer array (a turn of more than 100 tool calls) continues in further records
//! that repeat the dimensions and carry only the rest of that array. Metrics with no value
//! (the cost of an unpriced turn, the tool latency of a turn without tools) are left out of
//! the record and of its directives.
//!
//! No user or session id is in [`TurnMetrics`], so none can reach a record; the trace id is a
//! plain property (`TraceId`, not a dimension) to find the turn's logs and trace from a metric.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::Write as _,
    sync::{
        atomic::{AtomicBool, Ordering},
        OnceLock,
    },
};

use crate::domain::{
    ledger::Ledger,
    trace::{FailedAttempt, TraceStep, TurnTrace},
    turn::StopReason,
};

/// The namespace when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "LambdaAgent";
/// The environment variable naming the namespace.
pub const NAMESPACE_ENV: &str = "METRICS_NAMESPACE";
/// EMF: most metrics in one directive.
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;
/// EMF: most dimensions in one dimension set.
pub const MAX_DIMENSIONS_PER_SET: usize = 30;
/// EMF: most values in one metric's array.
pub const MAX_VALUES_PER_METRIC: usize = 100;
/// CloudWatch: longest dimension value.
pub const MAX_DIMENSION_VALUE_LEN: usize = 1024;
/// CloudWatch: longest namespace.
pub const MAX_NAMESPACE_LEN: usize = 256;

/// Dimension names.
pub mod dimension {
    /// The Lambda function (`AWS_LAMBDA_FUNCTION_NAME`).
    pub const FUNCTION: &str = "Function";
    /// The model that answered (or failed), as configured: a model id or inference profile id.
    pub const MODEL: &str = "Model";
    /// The tool called.
    pub const TOOL: &str = "Tool";
    /// What failed: a failed model attempt's kind (`throttled`, `unavailable`, ...).
    pub const ERROR_KIND: &str = "ErrorKind";
    /// Why the turn ended (`end_turn`, `max_steps`, ...).
    pub const STOP_REASON: &str = "StopReason";
}

const DIMS_FUNCTION: &[&str] = &[dimension::FUNCTION];
const DIMS_STOP_REASON: &[&str] = &[dimension::FUNCTION, dimension::STOP_REASON];
const DIMS_MODEL: &[&str] = &[dimension::FUNCTION, dimension::MODEL];
const DIMS_TOOL: &[&str] = &[dimension::FUNCTION, dimension::TOOL];
const DIMS_ERROR_KIND: &[&str] = &[dimension::FUNCTION, dimension::ERROR_KIND];

/// A metric: its name and CloudWatch unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    /// The metric name (also the record member holding its value).
    pub name: &'static str,
    /// A CloudWatch standard unit.
    pub unit: &'static str,
}

/// One metric as published: with one of its dimension sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricSpec {
    /// The metric name.
    pub name: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// The dimension set it is published with.
    pub dimensions: &'static [&'static str],
}

const fn metric(name: &'static str, unit: &'static str) -> Metric {
    Metric { name, unit }
}

/// Turns (1 per turn record).
pub const TURNS: Metric = metric("Turns", "Count");
/// 1 when the turn was the first of its execution environment, else 0.
pub const COLD_STARTS: Metric = metric("ColdStarts", "Count");
/// Model steps answered (the turn's `steps`).
pub const STEPS: Metric = metric("Steps", "Count");
/// Model requests made: answered steps plus failed attempts (retries and fallbacks).
pub const MODEL_CALLS: Metric = metric("ModelCalls", "Count");
/// Tool calls.
pub const TOOL_CALLS: Metric = metric("ToolCalls", "Count");
/// Tool calls that ended in an error result.
pub const TOOL_ERRORS: Metric = metric("ToolErrors", "Count");
/// Input tokens at the full input price.
pub const INPUT_TOKENS: Metric = metric("InputTokens", "Count");
/// Output tokens.
pub const OUTPUT_TOKENS: Metric = metric("OutputTokens", "Count");
/// Input tokens read from the prompt cache.
pub const CACHE_READ_TOKENS: Metric = metric("CacheReadTokens", "Count");
/// Input tokens written to the prompt cache.
pub const CACHE_WRITE_TOKENS: Metric = metric("CacheWriteTokens", "Count");
/// US dollars (CloudWatch has no currency unit).
pub const COST_USD: Metric = metric("CostUSD", "None");
/// Wall time of the turn.
pub const TURN_LATENCY: Metric = metric("TurnLatency", "Milliseconds");
/// Wall time of each model step, retries and back-off included (a value per step).
pub const MODEL_LATENCY: Metric = metric("ModelLatency", "Milliseconds");
/// Wall time of each tool call (a value per call).
pub const TOOL_LATENCY: Metric = metric("ToolLatency", "Milliseconds");
/// Guardrail interventions.
pub const GUARDRAIL_INTERVENTIONS: Metric = metric("GuardrailInterventions", "Count");
/// Errors (failed model attempts, and any the caller adds), by kind in `[Function, ErrorKind]`.
pub const ERRORS: Metric = metric("Errors", "Count");

const fn spec(metric: Metric, dimensions: &'static [&'static str]) -> MetricSpec {
    MetricSpec {
        name: metric.name,
        unit: metric.unit,
        dimensions,
    }
}

/// Every metric the records can carry, with each dimension set it is published with. The tests
/// check that the records publish exactly these; `scripts/check-metrics.py` reads this table
/// (keep one `spec(NAME, DIMS_...)` per line) to check `template.yaml` against it.
pub const METRICS: &[MetricSpec] = &[
    spec(TURNS, DIMS_FUNCTION),
    spec(COLD_STARTS, DIMS_FUNCTION),
    spec(STEPS, DIMS_FUNCTION),
    spec(MODEL_CALLS, DIMS_FUNCTION),
    spec(TOOL_CALLS, DIMS_FUNCTION),
    spec(TOOL_ERRORS, DIMS_FUNCTION),
    spec(INPUT_TOKENS, DIMS_FUNCTION),
    spec(OUTPUT_TOKENS, DIMS_FUNCTION),
    spec(CACHE_READ_TOKENS, DIMS_FUNCTION),
    spec(CACHE_WRITE_TOKENS, DIMS_FUNCTION),
    spec(COST_USD, DIMS_FUNCTION),
    spec(TURN_LATENCY, DIMS_FUNCTION),
    spec(MODEL_LATENCY, DIMS_FUNCTION),
    spec(TOOL_LATENCY, DIMS_FUNCTION),
    spec(GUARDRAIL_INTERVENTIONS, DIMS_FUNCTION),
    spec(ERRORS, DIMS_FUNCTION),
    spec(TURNS, DIMS_STOP_REASON),
    spec(MODEL_CALLS, DIMS_MODEL),
    spec(INPUT_TOKENS, DIMS_MODEL),
    spec(OUTPUT_TOKENS, DIMS_MODEL),
    spec(CACHE_READ_TOKENS, DIMS_MODEL),
    spec(CACHE_WRITE_TOKENS, DIMS_MODEL),
    spec(COST_USD, DIMS_MODEL),
    spec(MODEL_LATENCY, DIMS_MODEL),
    spec(TOOL_CALLS, DIMS_TOOL),
    spec(TOOL_ERRORS, DIMS_TOOL),
    spec(TOOL_LATENCY, DIMS_TOOL),
    spec(ERRORS, DIMS_ERROR_KIND),
];

/// What one turn did, as metrics. Holds no user or session id by design.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TurnMetrics {
    /// The Lambda function (the `Function` dimension); see [`lambda_function_name`].
    pub function: String,
    /// The turn's trace id, a plain property of the turn record (empty: left out).
    pub trace_id: String,
    /// Why the turn ended (`StopReason`, a dimension of `Turns`).
    pub stop_reason: String,
    /// Model steps answered.
    pub steps: u32,
    /// Model requests made, failed attempts included.
    pub model_calls: u32,
    /// Input tokens at the full input price, all model calls.
    pub input_tokens: u64,
    /// Output tokens, all model calls.
    pub output_tokens: u64,
    /// Tokens read from the prompt cache, all model calls.
    pub cache_read_tokens: u64,
    /// Tokens written to the prompt cache, all model calls.
    pub cache_write_tokens: u64,
    /// The turn's cost, when priced.
    pub cost_usd: Option<f64>,
    /// Wall time of each model step (failed ones included).
    pub model_latency_ms: Vec<u64>,
    /// By model id.
    pub models: BTreeMap<String, ModelStats>,
    /// By tool name.
    pub tools: BTreeMap<String, ToolStats>,
    /// Tool calls not in `tools` (left out of a stored trace for size): counted in the turn's
    /// `ToolCalls`, by no tool.
    pub unattributed_tool_calls: u32,
    /// Wall time of the turn.
    pub turn_latency_ms: u64,
    /// Guardrail interventions.
    pub guardrail_interventions: u32,
    /// Errors by kind.
    pub errors: BTreeMap<String, u32>,
    /// Whether this was the first turn of the execution environment ([`cold_start`]).
    pub cold_start: bool,
}

/// One model's share of a turn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelStats {
    /// Requests made to it: answered steps plus failed attempts.
    pub calls: u32,
    /// Input tokens at the full input price.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// What its answers cost, when every one of them was priced.
    pub cost_usd: Option<f64>,
    /// Wall time of each step it answered.
    pub latency_ms: Vec<u64>,
}

/// One tool's share of a turn.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolStats {
    /// Calls.
    pub calls: u32,
    /// Calls that ended in an error result.
    pub errors: u32,
    /// Wall time of each call.
    pub latency_ms: Vec<u64>,
}

/// The turn's total cost in dollars. The one place the trace's cost is read (with
/// [`step_cost_usd`]): when the trace's cost becomes an itemized ledger, adapt these two.
fn total_cost_usd(trace: &TurnTrace) -> Option<f64> {
    trace.cost.as_ref().map(|cost| cost.total_usd)
}

/// One model step's cost in dollars (see [`total_cost_usd`]).
fn step_cost_usd(cost: Option<&Ledger>) -> Option<f64> {
    cost.map(|cost| cost.total_usd)
}

impl TurnMetrics {
    /// Everything the stored trace says: steps, model calls, tokens and cost (in all and by
    /// model), latencies, tools, failed model attempts as errors by kind (those retried
    /// successfully included), guardrail interventions. Tool steps left out of the trace
    /// (`omitted_tool_steps`) count in `ToolCalls` by no tool.
    pub fn from_trace(trace: &TurnTrace, function: impl Into<String>, cold_start: bool) -> Self {
        let mut metrics = Self {
            function: function.into(),
            trace_id: trace.trace_id.clone(),
            stop_reason: trace.stop_reason.as_str().to_owned(),
            input_tokens: trace.usage.input_tokens,
            output_tokens: trace.usage.output_tokens,
            cache_read_tokens: trace.usage.cache_read_tokens,
            cache_write_tokens: trace.usage.cache_write_tokens,
            cost_usd: total_cost_usd(trace),
            unattributed_tool_calls: trace.omitted_tool_steps,
            turn_latency_ms: trace.duration_ms,
            cold_start,
            ..Self::default()
        };
        // Per model: the sum of its steps' costs, and whether one of them was unpriced.
        let mut costs: BTreeMap<&str, (f64, bool)> = BTreeMap::new();
        for step in &trace.steps {
            match step {
                TraceStep::Model {
                    model_id,
                    latency_ms,
                    usage,
                    cost,
                    stop_reason,
                    failed_attempts,
                    ..
                } => {
                    metrics.steps += 1;
                    metrics.model_calls += 1;
                    metrics.model_latency_ms.push(*latency_ms);
                    if stop_reason == StopReason::GuardrailIntervened.as_str() {
                        metrics.guardrail_interventions += 1;
                    }
                    let model = model_name(model_id);
                    let stats = metrics.models.entry(model.to_owned()).or_default();
                    stats.calls += 1;
                    stats.input_tokens += usage.input_tokens;
                    stats.output_tokens += usage.output_tokens;
                    stats.cache_read_tokens += usage.cache_read_tokens;
                    stats.cache_write_tokens += usage.cache_write_tokens;
                    stats.latency_ms.push(*latency_ms);
                    let entry = costs.entry(model).or_insert((0.0, false));
                    match step_cost_usd(cost.as_ref()) {
                        Some(usd) => entry.0 += usd,
                        None => entry.1 = true,
                    }
                    metrics.add_failed_attempts(failed_attempts);
                }
                TraceStep::ModelFailed {
                    latency_ms,
                    failed_attempts,
                    ..
                } => {
                    metrics.model_latency_ms.push(*latency_ms);
                    metrics.add_failed_attempts(failed_attempts);
                }
                TraceStep::Tool {
                    name,
                    latency_ms,
                    status,
                    ..
                } => {
                    let stats = metrics.tools.entry(name.clone()).or_default();
                    stats.calls += 1;
                    if status != "success" {
                        stats.errors += 1;
                    }
                    stats.latency_ms.push(*latency_ms);
                }
            }
        }
        for (model, (usd, unpriced)) in costs {
            if let Some(stats) = metrics.models.get_mut(model) {
                stats.cost_usd = (!unpriced).then_some(usd);
            }
        }
        if trace.stop_reason == StopReason::GuardrailIntervened {
            metrics.guardrail_interventions = metrics.guardrail_interventions.max(1);
        }
        metrics
    }

    fn add_failed_attempts(&mut self, attempts: &[FailedAttempt]) {
        for attempt in attempts {
            self.model_calls += 1;
            self.models
                .entry(model_name(&attempt.model_id).to_owned())
                .or_default()
                .calls += 1;
            *self.errors.entry(attempt.error.clone()).or_default() += 1;
        }
    }

    fn tool_calls(&self) -> u64 {
        self.tools
            .values()
            .map(|tool| u64::from(tool.calls))
            .sum::<u64>()
            + u64::from(self.unattributed_tool_calls)
    }

    fn tool_errors(&self) -> u64 {
        self.tools.values().map(|tool| u64::from(tool.errors)).sum()
    }

    fn error_count(&self) -> u64 {
        self.errors.values().map(|&count| u64::from(count)).sum()
    }

    /// Whether this model's figures are the turn's (its cost to a billionth of a dollar, so a
    /// total summed in another order still matches).
    fn is_all_of_turn(&self, model: &ModelStats) -> bool {
        let same_cost = match (model.cost_usd, self.cost_usd) {
            (Some(a), Some(b)) => a.is_finite() && b.is_finite() && (a - b).abs() < 1e-9,
            (None, None) => true,
            _ => false,
        };
        same_cost
            && model.calls == self.model_calls
            && model.input_tokens == self.input_tokens
            && model.output_tokens == self.output_tokens
            && model.cache_read_tokens == self.cache_read_tokens
            && model.cache_write_tokens == self.cache_write_tokens
            && model.latency_ms == self.model_latency_ms
    }
}

/// Traces stored before the model was recorded have an empty model id.
fn model_name(model_id: &str) -> &str {
    if model_id.is_empty() {
        "unknown"
    } else {
        model_id
    }
}

/// True on the first call in this process, false after: whether this turn is the execution
/// environment's first (a cold start, when called once per turn).
pub fn cold_start() -> bool {
    static FIRST: AtomicBool = AtomicBool::new(true);
    FIRST.swap(false, Ordering::Relaxed)
}

/// `AWS_LAMBDA_FUNCTION_NAME` (read once), or `local` outside Lambda.
pub fn lambda_function_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "local".to_owned())
    })
}

/// A namespace CloudWatch accepts: 1 to 256 of `A-Z a-z 0-9 . _ # : / -`, not starting with
/// `AWS/`.
pub fn valid_namespace(namespace: &str) -> bool {
    !namespace.is_empty()
        && namespace.len() <= MAX_NAMESPACE_LEN
        && !namespace.starts_with("AWS/")
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._#:/-".contains(&b))
}

/// The namespace from `METRICS_NAMESPACE` (unset or empty: [`DEFAULT_NAMESPACE`]); an error
/// naming the variable when CloudWatch would not accept it. Call it at start-up to fail early;
/// [`record`] reads the same variable.
pub fn namespace_from_env() -> Result<String, String> {
    match std::env::var(NAMESPACE_ENV) {
        Ok(value) if !value.is_empty() => {
            if valid_namespace(&value) {
                Ok(value)
            } else {
                Err(format!(
                    "{NAMESPACE_ENV} must be 1 to {MAX_NAMESPACE_LEN} of A-Z a-z 0-9 . _ # : / - and not start with AWS/, not '{value}'"
                ))
            }
        }
        _ => Ok(DEFAULT_NAMESPACE.to_owned()),
    }
}

/// The namespace of [`record`], read once: `METRICS_NAMESPACE`, or [`DEFAULT_NAMESPACE`] when
/// it is unset or invalid (a record cannot fail; check it at start-up with
/// [`namespace_from_env`]).
pub fn namespace() -> &'static str {
    static NAMESPACE: OnceLock<String> = OnceLock::new();
    NAMESPACE.get_or_init(|| namespace_from_env().unwrap_or_else(|_| DEFAULT_NAMESPACE.to_owned()))
}

/// The turn's EMF records in [`namespace`]: one JSON object per line, lines separated by `\n`,
/// no newline at the end. See the module documentation for the layout.
pub fn record(metrics: &TurnMetrics, timestamp_ms: i64) -> String {
    record_in(namespace(), metrics, timestamp_ms)
}

/// Writes the turn's records to stdout in one write, so no other log line splits them.
pub fn emit(metrics: &TurnMetrics, timestamp_ms: i64) {
    let mut text = record(metrics, timestamp_ms);
    text.push('\n');
    let mut out = std::io::stdout().lock();
    // Metrics are best effort: a closed stdout must not fail the turn.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// [`record`] in the given namespace (which must be [`valid_namespace`]).
pub fn record_in(namespace: &str, metrics: &TurnMetrics, timestamp_ms: i64) -> String {
    let mut out = String::with_capacity(2048);
    let writer = Writer {
        namespace,
        timestamp_ms,
        trace_id: &metrics.trace_id,
        function: dimension_value(&metrics.function),
    };

    let tool_latency: Vec<u64> = metrics
        .tools
        .values()
        .flat_map(|tool| tool.latency_ms.iter().copied())
        .collect();
    let cost = metrics.cost_usd.filter(|usd| usd.is_finite());
    let mut values = vec![
        (TURNS, Value::Int(1)),
        (COLD_STARTS, Value::Int(u64::from(metrics.cold_start))),
        (STEPS, Value::Int(u64::from(metrics.steps))),
        (MODEL_CALLS, Value::Int(u64::from(metrics.model_calls))),
        (TOOL_CALLS, Value::Int(metrics.tool_calls())),
        (TOOL_ERRORS, Value::Int(metrics.tool_errors())),
        (INPUT_TOKENS, Value::Int(metrics.input_tokens)),
        (OUTPUT_TOKENS, Value::Int(metrics.output_tokens)),
        (CACHE_READ_TOKENS, Value::Int(metrics.cache_read_tokens)),
        (CACHE_WRITE_TOKENS, Value::Int(metrics.cache_write_tokens)),
        (TURN_LATENCY, Value::Int(metrics.turn_latency_ms)),
        (
            GUARDRAIL_INTERVENTIONS,
            Value::Int(u64::from(metrics.guardrail_interventions)),
        ),
        (ERRORS, Value::Int(metrics.error_count())),
    ];
    if let Some(usd) = cost {
        values.push((COST_USD, Value::Float(usd)));
    }
    if !metrics.model_latency_ms.is_empty() {
        values.push((MODEL_LATENCY, Value::List(&metrics.model_latency_ms)));
    }
    if !tool_latency.is_empty() {
        values.push((TOOL_LATENCY, Value::List(&tool_latency)));
    }

    let stop_reason = dimension_value(&metrics.stop_reason);
    // The indices of those of `metrics` the turn record has a value of.
    let indices = |names: &[Metric]| -> Vec<usize> {
        names
            .iter()
            .filter_map(|name| values.iter().position(|(m, _)| m == name))
            .collect()
    };
    let all = (0..values.len()).collect();
    let mut directives = vec![(DIMS_FUNCTION, all), (DIMS_STOP_REASON, indices(&[TURNS]))];

    // The only model, tool or error kind rides in the turn record when its figures are the
    // turn's (so the members are shared); otherwise each gets a record of its own.
    let mut dimensions = vec![(dimension::STOP_REASON, stop_reason)];
    let sole_model = match metrics.models.iter().next() {
        Some((model, stats)) if metrics.models.len() == 1 && metrics.is_all_of_turn(stats) => {
            dimensions.push((dimension::MODEL, dimension_value(model)));
            let names: Vec<Metric> = model_metrics(stats).collect();
            directives.push((DIMS_MODEL, indices(&names)));
            true
        }
        _ => false,
    };
    let sole_tool = match metrics.tools.keys().next() {
        Some(tool) if metrics.tools.len() == 1 && metrics.unattributed_tool_calls == 0 => {
            dimensions.push((dimension::TOOL, dimension_value(tool)));
            directives.push((DIMS_TOOL, indices(&[TOOL_CALLS, TOOL_ERRORS, TOOL_LATENCY])));
            true
        }
        _ => false,
    };
    let sole_error = match metrics.errors.keys().next() {
        Some(kind) if metrics.errors.len() == 1 => {
            dimensions.push((dimension::ERROR_KIND, dimension_value(kind)));
            directives.push((DIMS_ERROR_KIND, indices(&[ERRORS])));
            true
        }
        _ => false,
    };
    let turn = Record {
        dimensions,
        directives,
        values,
    };
    writer.write(&mut out, &turn, true);

    if !sole_model {
        for (model, stats) in &metrics.models {
            let values = model_metrics(stats)
                .map(|m| (m, model_value(stats, m)))
                .collect();
            let record = Record::single(DIMS_MODEL, dimension_value(model), values);
            writer.write(&mut out, &record, false);
        }
    }
    if !sole_tool {
        for (tool, stats) in &metrics.tools {
            let mut values = vec![
                (TOOL_CALLS, Value::Int(u64::from(stats.calls))),
                (TOOL_ERRORS, Value::Int(u64::from(stats.errors))),
            ];
            if !stats.latency_ms.is_empty() {
                values.push((TOOL_LATENCY, Value::List(&stats.latency_ms)));
            }
            let record = Record::single(DIMS_TOOL, dimension_value(tool), values);
            writer.write(&mut out, &record, false);
        }
    }
    if !sole_error {
        for (kind, &count) in &metrics.errors {
            let values = vec![(ERRORS, Value::Int(u64::from(count)))];
            let record = Record::single(DIMS_ERROR_KIND, dimension_value(kind), values);
            writer.write(&mut out, &record, false);
        }
    }
    out
}

/// The metrics of a model's record, those with a value.
fn model_metrics(stats: &ModelStats) -> impl Iterator<Item = Metric> + '_ {
    [
        MODEL_CALLS,
        INPUT_TOKENS,
        OUTPUT_TOKENS,
        CACHE_READ_TOKENS,
        CACHE_WRITE_TOKENS,
        COST_USD,
        MODEL_LATENCY,
    ]
    .into_iter()
    .filter(|&m| match m {
        COST_USD => stats.cost_usd.is_some_and(f64::is_finite),
        MODEL_LATENCY => !stats.latency_ms.is_empty(),
        _ => true,
    })
}

fn model_value(stats: &ModelStats, metric: Metric) -> Value<'_> {
    match metric {
        MODEL_CALLS => Value::Int(u64::from(stats.calls)),
        INPUT_TOKENS => Value::Int(stats.input_tokens),
        OUTPUT_TOKENS => Value::Int(stats.output_tokens),
        CACHE_READ_TOKENS => Value::Int(stats.cache_read_tokens),
        CACHE_WRITE_TOKENS => Value::Int(stats.cache_write_tokens),
        COST_USD => Value::Float(stats.cost_usd.unwrap_or_default()),
        _ => Value::List(&stats.latency_ms),
    }
}

/// A dimension value CloudWatch accepts: printable ASCII (anything else becomes `_`), at least
/// one non-space character (else `unknown`), at most 1024 bytes.
fn dimension_value(value: &str) -> std::borrow::Cow<'_, str> {
    let printable = |b: u8| (0x20..0x7f).contains(&b);
    if value.len() <= MAX_DIMENSION_VALUE_LEN
        && value.bytes().all(printable)
        && value.bytes().any(|b| b != b' ')
    {
        return value.into();
    }
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_ascii() && printable(c as u8) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_DIMENSION_VALUE_LEN)
        .collect();
    if cleaned.trim().is_empty() {
        "unknown".into()
    } else {
        cleaned.into()
    }
}

#[derive(Clone, Copy)]
enum Value<'a> {
    Int(u64),
    Float(f64),
    List(&'a [u64]),
}

/// One record before it is written: its dimension members besides `Function`, its directives
/// (dimension set, indices of its metrics) and its metric members.
struct Record<'a> {
    dimensions: Vec<(&'static str, std::borrow::Cow<'a, str>)>,
    /// Dimension set and the indices in `values` of its metrics.
    directives: Vec<(&'static [&'static str], Vec<usize>)>,
    values: Vec<(Metric, Value<'a>)>,
}

impl<'a> Record<'a> {
    /// A record of one dimension set `[Function, name]` over all its values.
    fn single(
        dims: &'static [&'static str],
        value: std::borrow::Cow<'a, str>,
        values: Vec<(Metric, Value<'a>)>,
    ) -> Self {
        Self {
            dimensions: vec![(dims[1], value)],
            directives: vec![(dims, (0..values.len()).collect())],
            values,
        }
    }
}

struct Writer<'a> {
    namespace: &'a str,
    timestamp_ms: i64,
    trace_id: &'a str,
    function: std::borrow::Cow<'a, str>,
}

impl Writer<'_> {
    /// Writes the record (its lines preceded by `\n` unless `first`), then, while one of its
    /// arrays has values left past [`MAX_VALUES_PER_METRIC`], a continuation record of those.
    fn write(&self, out: &mut String, record: &Record<'_>, first: bool) {
        let longest = record
            .values
            .iter()
            .map(|(_, value)| match value {
                Value::List(list) => list.len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let chunks = longest.div_ceil(MAX_VALUES_PER_METRIC).max(1);
        for chunk in 0..chunks {
            if !(first && chunk == 0) {
                out.push('\n');
            }
            self.write_chunk(out, record, chunk);
        }
    }

    /// Chunk 0 is the whole record with each array's first values; chunk `n` only the arrays
    /// with values from `n * MAX_VALUES_PER_METRIC` on.
    fn write_chunk(&self, out: &mut String, record: &Record<'_>, chunk: usize) {
        let from = chunk * MAX_VALUES_PER_METRIC;
        let part = |index: usize| match record.values[index].1 {
            Value::List(list) if chunk > 0 => list.len() > from,
            _ => chunk == 0,
        };
        out.push_str("{\"_aws\":{\"Timestamp\":");
        push_i64(out, self.timestamp_ms);
        out.push_str(",\"CloudWatchMetrics\":[");
        let mut first_directive = true;
        for (dims, indices) in &record.directives {
            if !indices.iter().any(|&index| part(index)) {
                continue;
            }
            if !first_directive {
                out.push(',');
            }
            first_directive = false;
            out.push_str("{\"Namespace\":");
            push_json_str(out, self.namespace);
            out.push_str(",\"Dimensions\":[[");
            for (i, dim) in dims.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, dim);
            }
            out.push_str("]],\"Metrics\":[");
            let mut first_metric = true;
            for &index in indices.iter().filter(|&&index| part(index)) {
                let metric = record.values[index].0;
                if !first_metric {
                    out.push(',');
                }
                first_metric = false;
                out.push_str("{\"Name\":");
                push_json_str(out, metric.name);
                out.push_str(",\"Unit\":");
                push_json_str(out, metric.unit);
                out.push('}');
            }
            out.push_str("]}");
        }
        out.push_str("]},");
        push_member(out, dimension::FUNCTION);
        push_json_str(out, &self.function);
        for (name, value) in &record.dimensions {
            out.push(',');
            push_member(out, name);
            push_json_str(out, value);
        }
        if !self.trace_id.is_empty() {
            out.push_str(",\"TraceId\":");
            push_json_str(out, self.trace_id);
        }
        for (index, (metric, value)) in record.values.iter().enumerate() {
            if !part(index) {
                continue;
            }
            out.push(',');
            push_member(out, metric.name);
            match value {
                Value::Int(int) => push_u64(out, *int),
                // Finite (checked where it is put in); Display of an f64 is valid JSON.
                Value::Float(float) => {
                    let _ = write!(out, "{float}");
                }
                Value::List(list) => {
                    out.push('[');
                    let end = (from + MAX_VALUES_PER_METRIC).min(list.len());
                    for (i, int) in list[from..end].iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        push_u64(out, *int);
                    }
                    out.push(']');
                }
            }
        }
        out.push('}');
    }
}

fn push_member(out: &mut String, name: &str) {
    push_json_str(out, name);
    out.push(':');
}

/// `value` in decimal.
fn push_u64(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    // ASCII digits only.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or("0"));
}

fn push_i64(out: &mut String, value: i64) {
    if value < 0 {
        out.push('-');
    }
    push_u64(out, value.unsigned_abs());
}

/// `value` as a JSON string.
fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    if !value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(value);
        out.push('"');
        return;
    }
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[path = "emf_tests.rs"]
mod tests;
