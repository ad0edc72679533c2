//! The monthly cost of a workload, computed with the ledger's own code ([`Ledger`]) and the
//! price tables the agent bills turns with, beside what AgentCore would charge for the same
//! work. `docs/cost.md` is this module's report (`make cost` prints it; a test keeps the
//! document equal to it).

use std::fmt::Write as _;

use super::{
    ledger::{transaction_write_units, CostKind, Ledger, ServicePrices},
    model::Usage,
    pricing::Pricing,
};

/// What a month of use looks like.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Sessions a month (one turn each).
    pub sessions: u64,
    /// Model calls per session (the turn's steps).
    pub steps: u64,
    /// Input tokens of each model call (system prompt, tools, history, the step's new input).
    pub context_tokens: u64,
    /// Of those, the prefix the prompt cache can hold (system prompt, tools, the turn so far).
    pub cacheable_tokens: u64,
    /// Output tokens of each model call.
    pub output_tokens: u64,
    /// Tool calls per session, each in its executor's Lambda.
    pub tool_calls: u64,
    /// Wall time of a tool call.
    pub tool_ms: u64,
    /// The executors' memory.
    pub tool_memory_mb: u32,
    /// The handler's memory.
    pub handler_memory_mb: u32,
    /// The handler's own time per turn besides waiting: loading, committing.
    pub handler_overhead_ms: u64,
    /// Size of each stored message, in bytes.
    pub message_bytes: usize,
    /// Size of the stored trace, in bytes.
    pub trace_bytes: usize,
    /// Read units of the turn's loads (the window query, the user's counters).
    pub read_units: f64,
}

impl Workload {
    /// The reference workload of the design: 1,000 sessions a month, 5 steps a session, 2,000
    /// tokens of context a step (1,500 of them a cacheable prefix), 200 output tokens a step,
    /// 4 tool calls of 400 ms on 128 MB executors, a 128 MB handler.
    pub fn reference() -> Self {
        Self {
            sessions: 1_000,
            steps: 5,
            context_tokens: 2_000,
            cacheable_tokens: 1_500,
            output_tokens: 200,
            tool_calls: 4,
            tool_ms: 400,
            tool_memory_mb: 128,
            handler_memory_mb: 128,
            handler_overhead_ms: 150,
            message_bytes: 1_024,
            trace_bytes: 6 * 1024,
            read_units: 2.0,
        }
    }

    /// Messages one session stores: the user's, one per step, one tool result message per
    /// step that called tools (the calls of a step share one message).
    fn messages(&self) -> u64 {
        1 + self.steps + self.tool_calls.min(self.steps.saturating_sub(1))
    }
}

/// A model the report prices, and how long one of its calls takes.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelCase {
    /// The name shown.
    pub name: &'static str,
    /// The model id (an inference profile as deployed).
    pub model_id: &'static str,
    /// Wall time of one call of the workload's size.
    pub call_ms: u64,
}

/// The models of `docs/cost.md`.
pub fn reference_models() -> Vec<ModelCase> {
    vec![
        ModelCase {
            name: "Claude Haiku 4.5",
            model_id: "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            call_ms: 1_500,
        },
        ModelCase {
            name: "Claude Sonnet 4.5",
            model_id: "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            call_ms: 3_500,
        },
        ModelCase {
            name: "Amazon Nova Micro",
            model_id: "us.amazon.nova-micro-v1:0",
            call_ms: 700,
        },
    ]
}

/// The month's ledger of `workload` on `model`, with or without prompt caching.
pub fn monthly(workload: &Workload, model: &ModelCase, caching: bool) -> Ledger {
    let prices = ServicePrices::default();
    let pricing = Pricing::for_model(model.model_id);
    let mut session = Ledger::default();
    for step in 0..workload.steps {
        let usage = if caching {
            // The first call writes the prefix to the cache, the others read it.
            let fresh = workload.context_tokens - workload.cacheable_tokens;
            Usage {
                input_tokens: fresh,
                output_tokens: workload.output_tokens,
                cache_write_tokens: if step == 0 {
                    workload.cacheable_tokens
                } else {
                    0
                },
                cache_read_tokens: if step == 0 {
                    0
                } else {
                    workload.cacheable_tokens
                },
            }
        } else {
            Usage {
                input_tokens: workload.context_tokens,
                output_tokens: workload.output_tokens,
                ..Usage::default()
            }
        };
        session.add_model_call(model.model_id, pricing, usage);
    }
    for _ in 0..workload.tool_calls {
        session.add_lambda(
            "tool executors",
            workload.tool_memory_mb,
            workload.tool_ms,
            &prices,
        );
    }
    let handler_ms = workload.steps * model.call_ms
        + workload.tool_calls * workload.tool_ms
        + workload.handler_overhead_ms;
    session.add_lambda(
        "session handler",
        workload.handler_memory_mb,
        handler_ms,
        &prices,
    );
    // The commit: each message, the trace, the header and marker, the user's two counters.
    let mut items = vec![workload.message_bytes; workload.messages() as usize];
    items.extend([workload.trace_bytes, 512, 256, 128, 128]);
    session.add_dynamodb(
        "sessions table",
        workload.read_units,
        transaction_write_units(items),
        &prices,
    );
    let mut month = Ledger::default();
    for item in session.items {
        month.add(super::ledger::CostItem {
            quantity: item.quantity * workload.sessions as f64,
            usd: item.usd * workload.sessions as f64,
            ..item
        });
    }
    month.unpriced = session.unpriced;
    month
}

/// AgentCore's published on-demand prices (us-east-1, as of December 2026), for the same work.
///
/// Sources: <https://aws.amazon.com/bedrock/agentcore/pricing/> — Runtime $0.0895 per
/// vCPU-hour and $0.00945 per GB-hour (CPU billed while it computes, memory while the
/// session is active), Memory $0.25 per 1,000 short-term events, Gateway $0.005 per 1,000
/// tool invocations (and per ListTools).
#[derive(Clone, Debug, PartialEq)]
pub struct AgentCorePrices {
    /// Runtime, per vCPU-hour of computing.
    pub vcpu_hour_usd: f64,
    /// Runtime, per GB-hour of an active session.
    pub gb_hour_usd: f64,
    /// Memory, per short-term event.
    pub memory_event_usd: f64,
    /// Gateway, per call (InvokeTool, ListTools).
    pub gateway_call_usd: f64,
}

impl Default for AgentCorePrices {
    fn default() -> Self {
        Self {
            vcpu_hour_usd: 0.0895,
            gb_hour_usd: 0.00945,
            memory_event_usd: 0.25 / 1_000.0,
            gateway_call_usd: 0.005 / 1_000.0,
        }
    }
}

/// The same month on AgentCore Runtime + Memory + Gateway, the model's tokens aside (the
/// same Bedrock prices either way): a 1 vCPU / 2 GB session active for the turn's wall time,
/// computing 10% of it; one Memory event per stored message; one Gateway call per tool call
/// and one ListTools per session.
pub fn agentcore_monthly(workload: &Workload, model: &ModelCase) -> Ledger {
    let prices = AgentCorePrices::default();
    let sessions = workload.sessions as f64;
    let active_s = (workload.steps * model.call_ms
        + workload.tool_calls * workload.tool_ms
        + workload.handler_overhead_ms) as f64
        / 1000.0;
    let mut month = Ledger::default();
    let mut line = |detail: &str, quantity: f64, unit: &str, usd: f64| {
        month.add(super::ledger::CostItem {
            kind: CostKind::Lambda,
            detail: detail.to_owned(),
            quantity,
            unit: unit.to_owned(),
            usd,
        });
    };
    let vcpu_hours = sessions * active_s * 0.10 / 3600.0;
    line(
        "AgentCore Runtime CPU",
        vcpu_hours,
        "vcpu_hours",
        vcpu_hours * prices.vcpu_hour_usd,
    );
    let gb_hours = sessions * active_s * 2.0 / 3600.0;
    line(
        "AgentCore Runtime memory",
        gb_hours,
        "gb_hours",
        gb_hours * prices.gb_hour_usd,
    );
    let events = sessions * workload.messages() as f64;
    line(
        "AgentCore Memory events",
        events,
        "events",
        events * prices.memory_event_usd,
    );
    let calls = sessions * (workload.tool_calls + 1) as f64;
    line(
        "AgentCore Gateway calls",
        calls,
        "calls",
        calls * prices.gateway_call_usd,
    );
    month
}

/// `docs/cost.md`'s tables: per model, with and without prompt caching, itemized; then
/// AgentCore for the same work.
pub fn report_markdown(workload: &Workload) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| model | prompt cache | model tokens | Lambda | DynamoDB | total / month | AgentCore Runtime + Memory + Gateway (tokens aside) |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    for model in reference_models() {
        let agentcore = agentcore_monthly(workload, &model).total_usd;
        for caching in [false, true] {
            let month = monthly(workload, &model, caching);
            let _ = writeln!(
                out,
                "| {} | {} | ${:.2} | ${:.4} | ${:.4} | **${:.2}** | ${:.2} |",
                model.name,
                if caching { "on" } else { "off" },
                month.usd_of(CostKind::Model),
                month.usd_of(CostKind::Lambda),
                month.usd_of(CostKind::Dynamodb),
                month.total_usd,
                agentcore,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn haiku() -> ModelCase {
        reference_models().remove(0)
    }

    #[test]
    fn the_reference_month_matches_a_hand_computation() {
        let workload = Workload::reference();
        let month = monthly(&workload, &haiku(), false);
        // Haiku 4.5 through `us.` (+10%): $1.10 / M in, $5.50 / M out.
        // 1,000 sessions × 5 steps × 2,000 in = 10 M → $11.00; × 200 out = 1 M → $5.50.
        assert!((month.usd_of(CostKind::Model) - 16.50).abs() < 1e-6);
        // Handler: 5 × 1.5 s + 4 × 0.4 s + 0.15 s = 9.25 s at 0.125 GB = 1.15625 GB-s a
        // session; executors: 4 × 0.4 s at 0.125 GB = 0.2 GB-s; 5 requests a session.
        let gb_s = 1_000.0 * (1.15625 + 0.2);
        let lambda = gb_s * 0.000_013_333_4 + 5_000.0 * 0.000_000_2;
        assert!((month.usd_of(CostKind::Lambda) - lambda).abs() < 1e-6);
        // DynamoDB: 2 read units; 10 messages of 1 KB (2 units each), a 6 KB trace (12),
        // header, marker and two counters (2 each): 40 write units a session.
        let dynamodb = 1_000.0 * (2.0 * 0.000_000_125 + 40.0 * 0.000_000_625);
        assert!((month.usd_of(CostKind::Dynamodb) - dynamodb).abs() < 1e-9);
        assert!((month.total_usd - (16.50 + lambda + dynamodb)).abs() < 1e-6);
    }

    #[test]
    fn prompt_caching_cuts_the_input_bill_and_nothing_is_unpriced() {
        let workload = Workload::reference();
        for model in reference_models() {
            let plain = monthly(&workload, &model, false);
            let cached = monthly(&workload, &model, true);
            assert!(plain.unpriced.is_empty(), "{} has a price", model.name);
            assert!(cached.usd_of(CostKind::Model) < plain.usd_of(CostKind::Model));
        }
    }

    #[test]
    fn agentcore_for_the_same_work_is_itemized() {
        let month = agentcore_monthly(&Workload::reference(), &haiku());
        // 10 events a session at $0.25 / 1,000: $2.50 a month.
        let memory = month
            .items
            .iter()
            .find(|i| i.detail == "AgentCore Memory events")
            .unwrap();
        assert!((memory.usd - 2.50).abs() < 1e-9);
        assert_eq!(month.items.len(), 4);
    }
}
