//! Adapters: the ports implemented on AWS services and in memory.

pub mod bedrock;
pub mod dynamodb;
pub mod memory;
