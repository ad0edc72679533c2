//! The shared crate of the agent: the domain (agent loop, messages, tools, pricing), the ports
//! it talks through, and the adapters that connect those ports to AWS and to memory.
//!
//! Dependency direction: adapters -> ports -> domain. Nothing in [`domain`] knows an AWS type.

pub mod adapters;
pub mod agent;
#[cfg(feature = "jwt")]
pub mod auth;
pub mod aws;
pub mod config;
pub mod domain;
pub mod driver;
#[cfg(feature = "https")]
pub mod https;
pub mod learning;
pub mod models;
#[cfg(feature = "otel")]
pub mod otel;
pub mod ports;
#[doc(hidden)]
pub mod store_conformance;
pub mod telemetry;
pub mod tool_contract;
pub mod tools;
