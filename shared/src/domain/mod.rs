//! The domain: what an agent turn is, with no I/O and no AWS types.

pub mod caching;
pub mod catalog;
pub mod context;
pub mod cost_report;
pub mod grounding;
pub mod ledger;
pub mod memory;
pub mod message;
pub mod model;
pub mod pricing;
pub mod redact;
pub mod trace;
pub mod truncate;
pub mod turn;

#[cfg(test)]
mod context_tests;
#[cfg(test)]
mod turn_tests;
