//! Where a request's prompt-cache points go.
//!
//! A provider's prompt cache keeps the prefix of a request up to a cache point; the next
//! request that starts with the same prefix reads it at a fraction of the input price. The
//! prefix is laid out as tools, then system prompt, then messages, so the points go after the
//! tool specs (which the agent sends in a stable order), after the system prompt, and after
//! the last message: step N+1 of a turn, and the next turn, start with everything step N sent,
//! so they read it from the cache and pay full price only for what is new. A point is placed
//! only where the model supports one and the prefix before it reaches the model's minimum
//! (a shorter one would not be cached).

use super::{
    catalog::CacheSupport,
    context::{message_tokens, overhead_tokens},
    model::ModelRequest,
};

/// The cache points of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CachePlan {
    /// A point after the tool specs.
    pub after_tools: bool,
    /// A point after the system prompt.
    pub after_system: bool,
    /// A point after the message at this index (the last one).
    pub after_message: Option<usize>,
}

impl CachePlan {
    /// How many points the plan places.
    pub fn points(&self) -> usize {
        usize::from(self.after_tools)
            + usize::from(self.after_system)
            + usize::from(self.after_message.is_some())
    }
}

/// The cache points for `request` on a model with `support` (none when the request does not
/// ask for prompt caching).
pub fn plan(request: &ModelRequest, support: &CacheSupport) -> CachePlan {
    if !request.prompt_caching || support.max_points == 0 {
        return CachePlan::default();
    }
    let min = support.min_tokens;
    let tools = overhead_tokens(None, &request.tools);
    let system = overhead_tokens(request.system.as_deref(), &[]);
    let messages: u64 = request.messages.iter().map(message_tokens).sum();
    let mut plan = CachePlan {
        after_tools: support.tools && !request.tools.is_empty() && tools >= min,
        after_system: request.system.is_some() && tools + system >= min,
        after_message: (!request.messages.is_empty() && tools + system + messages >= min)
            .then(|| request.messages.len() - 1),
    };
    // Keep the furthest points when the model takes fewer than three.
    let max = usize::from(support.max_points);
    if plan.points() > max && plan.after_tools {
        plan.after_tools = false;
    }
    if plan.points() > max && plan.after_system {
        plan.after_system = false;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{message::Message, model::ToolSpec};
    use serde_json::json;

    const CLAUDE: CacheSupport = CacheSupport {
        min_tokens: 1_024,
        max_points: 4,
        tools: true,
    };

    fn request(system_bytes: usize, tool_bytes: usize, messages: usize) -> ModelRequest {
        ModelRequest {
            system: Some("s".repeat(system_bytes)),
            tools: vec![ToolSpec {
                name: "search".into(),
                description: "d".repeat(tool_bytes),
                input_schema: json!({"type": "object"}),
            }],
            messages: (0..messages)
                .map(|i| Message::user_text(format!("message {i}")))
                .collect(),
            prompt_caching: true,
            ..ModelRequest::default()
        }
    }

    #[test]
    fn large_prefixes_get_a_point_after_tools_system_and_the_last_message() {
        let plan = plan(&request(6_000, 6_000, 3), &CLAUDE);
        assert_eq!(
            plan,
            CachePlan {
                after_tools: true,
                after_system: true,
                after_message: Some(2)
            }
        );
    }

    #[test]
    fn prefixes_under_the_minimum_get_no_point() {
        // Tools alone are under the minimum; tools and system together reach it.
        let plan = plan(&request(3_000, 600, 1), &CLAUDE);
        assert!(!plan.after_tools);
        assert!(plan.after_system);
        assert_eq!(plan.after_message, Some(0));
        assert_eq!(super::plan(&request(10, 10, 1), &CLAUDE).points(), 0);
    }

    #[test]
    fn models_that_do_not_cache_tools_and_requests_that_do_not_ask_get_none_there() {
        let nova = CacheSupport {
            tools: false,
            ..CLAUDE
        };
        assert!(!plan(&request(6_000, 6_000, 2), &nova).after_tools);
        let mut off = request(6_000, 6_000, 2);
        off.prompt_caching = false;
        assert_eq!(plan(&off, &CLAUDE), CachePlan::default());
        let two = CacheSupport {
            max_points: 2,
            ..CLAUDE
        };
        let limited = plan(&request(6_000, 6_000, 2), &two);
        assert_eq!(limited.points(), 2);
        assert_eq!(limited.after_message, Some(1));
    }
}
