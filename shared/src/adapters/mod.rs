//! Adapters: the ports implemented on AWS services and in memory.

pub mod bedrock;
pub mod dynamodb;
pub mod lambda_tools;
pub mod memory;
#[cfg(feature = "openai")]
pub mod openai;
pub mod result_cache;
#[cfg(feature = "secrets")]
pub mod secrets;
