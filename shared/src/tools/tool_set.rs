//! Several tool sources as one: the built-in tools first, then the executor Lambdas.

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
            for spec in remote.specs().await? {
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
