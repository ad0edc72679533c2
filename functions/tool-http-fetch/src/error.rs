//! Why a fetch fails, in words for the model. No message ever carries a response body.

use std::time::Duration;

use shared::https::HttpError;

use crate::target::Refusal;

/// Why a fetch failed. The messages are for the model: they never contain a response body.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL, a redirect, or an address is not allowed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The URL does not parse.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// The parser's complaint.
        reason: url::ParseError,
    },
    /// A redirect's `Location` is unusable.
    #[error("invalid redirect from {from}: {reason}")]
    BadRedirect {
        /// The URL that redirected.
        from: String,
        /// What is wrong with the location.
        reason: String,
    },
    /// The whole fetch took longer than allowed.
    #[error("timed out after {}", human(*.0))]
    Timeout(Duration),
    /// The name did not resolve.
    #[error("could not resolve {host}: {reason}")]
    Resolve {
        /// The name.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// Connecting, TLS or the HTTP exchange failed.
    #[error(transparent)]
    Transport(#[from] HttpError),
}

/// `10 s` or `250 ms`.
pub(crate) fn human(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 1000 == 0 {
        format!("{} s", millis / 1000)
    } else {
        format!("{millis} ms")
    }
}
