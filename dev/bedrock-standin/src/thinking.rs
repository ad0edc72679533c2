//! Extended thinking as Claude on Bedrock does it: the `thinking` request field, the
//! reasoning text the fake model writes, and its signature.
//!
//! A signature is the base64 of two FNV-1a 128-bit hashes of the reasoning text and a
//! fixed key, so the stand-in can tell a reasoning block it wrote, sent back unchanged,
//! from one whose text was altered or whose signature was made up.

use crate::hash::{base64, fnv128};

/// The fixed key mixed into every signature.
const SIGNATURE_KEY: &[u8] = b"bedrock-standin reasoning signature key v1";

/// The smallest `budget_tokens` Claude accepts.
pub const MIN_BUDGET_TOKENS: u64 = 1024;

/// Where Anthropic's messages about thinking send the reader.
pub const DOCS: &str = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking";

/// `{"thinking": {"type": "enabled", "budget_tokens": N}}` from
/// `additionalModelRequestFields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thinking {
    /// The thinking budget in tokens (at least [`MIN_BUDGET_TOKENS`]).
    pub budget_tokens: u64,
}

/// The signature of a reasoning text.
pub fn signature(text: &str) -> String {
    let first = fnv128(&[SIGNATURE_KEY, text.as_bytes()]);
    let second = fnv128(&[text.as_bytes(), SIGNATURE_KEY]);
    let mut bytes = first.to_be_bytes().to_vec();
    bytes.extend_from_slice(&second.to_be_bytes());
    base64(&bytes)
}

/// Whether `signature` is the one the stand-in gives `text`.
pub fn verify(text: &str, signature: &str) -> bool {
    self::signature(text) == signature
}

/// A message of the model (Anthropic) as Bedrock passes it on.
pub fn model_error(message: &str) -> String {
    format!("The model returned the following errors: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_deterministic_and_bound_to_the_text() {
        let sig = signature("The user asked: hi. I will answer directly.");
        assert_eq!(
            sig,
            signature("The user asked: hi. I will answer directly.")
        );
        assert_eq!(sig.len(), 44);
        assert!(verify("The user asked: hi. I will answer directly.", &sig));
        assert!(!verify(
            "The user asked: hi. I will answer indirectly.",
            &sig
        ));
        assert!(!verify(
            "The user asked: hi. I will answer directly.",
            "c2lnbmF0dXJl"
        ));
        assert_ne!(signature("a"), signature("b"));
    }
}
