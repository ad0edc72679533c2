//! The session handler: the HTTP API of the agent, behind API Gateway or a Function URL.

pub mod console;
pub mod handler;
pub mod otel;
pub mod page;
pub mod problem;
pub mod request;
pub mod routes;
pub mod status;
pub mod stream;
pub mod wiring;
