//! Logging set-up shared by every function: JSON lines for CloudWatch, level from `RUST_LOG`
//! (default `info`), no timestamp (Lambda adds its own); per-turn metrics in CloudWatch's
//! Embedded Metric Format ([`emf`]).

pub mod emf;

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// How a user appears in logs: 16 hex digits of SHA-256 over `USER_HASH_SALT` (set it per
/// deployment, a secret-less random string, so the hash of a guessable id such as an email
/// address cannot be looked up in a table made elsewhere) and the id. The same user always
/// hashes the same within a deployment, so their lines can be found; the id never appears.
pub fn user_hash(user_id: &str) -> String {
    static SALT: OnceLock<String> = OnceLock::new();
    let salt = SALT.get_or_init(|| std::env::var("USER_HASH_SALT").unwrap_or_default());
    hash_with(salt, user_id)
}

fn hash_with(salt: &str, user_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update([0u8])
        .chain_update(user_id.as_bytes())
        .finalize();
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Writes the turn's EMF record ([`emf`]) to stdout, from its stored trace.
pub fn emit_turn_metrics(trace: &crate::domain::trace::TurnTrace) {
    let metrics =
        emf::TurnMetrics::from_trace(trace, emf::lambda_function_name(), emf::cold_start());
    emf::emit(&metrics, chrono::Utc::now().timestamp_millis());
}

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

#[cfg(test)]
mod tests {
    use super::hash_with;

    #[test]
    fn a_user_hash_is_stable_salted_and_not_the_id() {
        let a = hash_with("salt", "alice@example.com");
        assert_eq!(a, hash_with("salt", "alice@example.com"));
        assert_eq!(a.len(), 16);
        assert!(!a.contains("alice"));
        assert_ne!(a, hash_with("other-salt", "alice@example.com"));
        assert_ne!(a, hash_with("salt", "bob@example.com"));
    }
}
