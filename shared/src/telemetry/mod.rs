//! Logging set-up shared by every function: JSON lines for CloudWatch, level from `RUST_LOG`
//! (default `info`), no timestamp (Lambda adds its own); per-turn metrics in CloudWatch's
//! Embedded Metric Format ([`emf`]).

pub mod emf;

/// Installs the JSON `tracing` subscriber; call once at the top of `main`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
}
