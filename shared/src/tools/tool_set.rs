//! Several tool sources as one: the built-in tools first, then the executor Lambdas. A remote
//! source that fails to list is left out (and logged); the built-in tools are still served.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    domain::{
        message::{ToolCall, ToolOutput},
        model::ToolSpec,
    },
    ports::{CallContext, ToolInvoker, ToolListError},
};

use super::BuiltinTools;

/// The built-in tools plus, optionally, a remote source; a call goes to the source that lists
/// the tool's name.
pub struct ToolSet {
    builtin: BuiltinTools,
    remote: Option<Arc<dyn ToolInvoker>>,
}

impl ToolSet {
    /// The built-in tools, and `remote` when configured.
    pub fn new(builtin: BuiltinTools, remote: Option<Arc<dyn ToolInvoker>>) -> Self {
        Self { builtin, remote }
    }
}

#[async_trait]
impl ToolInvoker for ToolSet {
    async fn specs(&self) -> Result<Vec<ToolSpec>, ToolListError> {
        let mut specs = BuiltinTools::tool_specs().to_vec();
        if let Some(remote) = &self.remote {
            // A remote source that cannot list leaves its tools out; it never fails the turn.
            let remote_specs = remote.specs().await.unwrap_or_else(|error| {
                tracing::warn!(%error, "remote tools left out of the listing");
                Vec::new()
            });
            for spec in remote_specs {
                if !specs.iter().any(|known| known.name == spec.name) {
                    specs.push(spec);
                }
            }
        }
        Ok(specs)
    }

    async fn call(&self, call: &ToolCall, context: &CallContext) -> ToolOutput {
        let builtin = BuiltinTools::serves(&call.name);
        match &self.remote {
            Some(remote) if !builtin => remote.call(call, context).await,
            _ => self.builtin.call(call, context).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Unlistable;

    #[async_trait]
    impl ToolInvoker for Unlistable {
        async fn specs(&self) -> Result<Vec<ToolSpec>, ToolListError> {
            Err(ToolListError("the executors are down".into()))
        }

        async fn call(&self, _: &ToolCall, _: &CallContext) -> ToolOutput {
            ToolOutput::error("down")
        }
    }

    #[tokio::test]
    async fn a_remote_source_that_cannot_list_leaves_the_builtin_tools_served() {
        let tools = ToolSet::new(BuiltinTools::default(), Some(Arc::new(Unlistable)));
        let specs = tools.specs().await.expect("the built-in tools are served");
        assert_eq!(specs, BuiltinTools::tool_specs().to_vec());
    }
}
