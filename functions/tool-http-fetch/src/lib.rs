//! `http_fetch`: a tool executor that fetches a public web page and returns its readable text
//! (HTML converted to text, with title, final URL, status and content type), within byte, time
//! and redirect limits.
//!
//! The core of the tool is that it cannot be turned against its own network (SSRF): only
//! `http`/`https` URLs without credentials are fetched, and every address connected to — the
//! first hop and each redirect, IP literals and resolved names alike — must be a public unicast
//! address ([`ip_policy`]). Names are resolved once per hop and only the checked answers are
//! dialed ([`net`]), so DNS rebinding cannot slip a private address in between.
//!
//! Every field of the answer is capped (see [`page`]): the text at the asked-for and
//! configured limits, the title at [`page::MAX_TITLE_CHARS`] characters, the URL at
//! [`page::MAX_URL_BYTES`], the content type at [`page::MAX_CONTENT_TYPE_BYTES`], a failure
//! message at [`MAX_ERROR_BYTES`]; an answer is at most `HTTP_FETCH_MAX_TEXT_BYTES` +
//! [`page::RENDER_OVERHEAD_BYTES`] bytes of text.
//!
//! The logic lives here so tests can drive it; `main.rs` only serves [`HttpFetch`] through
//! [`shared::tool_contract::handle`].

pub mod config;
pub mod content;
mod entities;
pub mod error;
pub mod fetch;
pub mod html;
pub mod ip_policy;
pub mod net;
pub mod page;
pub mod target;

use schemars::JsonSchema;
use serde::Deserialize;
use shared::{domain::message::ToolOutput, ports::CallContext, tool_contract::Tool};

pub use config::{ConfigError, FetchConfig};
pub use error::FetchError;
pub use fetch::Fetcher;
pub use page::Page;
pub use target::Refusal;

/// Bytes of page text quoted in the result of an HTTP error status (4xx, 5xx).
pub const ERROR_EXCERPT_BYTES: usize = 1000;

/// Bytes of a failure message returned at most (it may quote the URL asked for).
pub const MAX_ERROR_BYTES: usize = 4096;

/// Input of `http_fetch`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpFetchInput {
    /// The absolute http:// or https:// URL to fetch. Only public internet addresses are
    /// allowed; URLs with credentials (user:password@) are refused.
    pub url: String,
    /// Maximum bytes of page text to return (default and upper limit: 100000). Use a smaller
    /// value when only the start of the page matters.
    #[serde(default)]
    pub max_bytes: Option<u32>,
}

/// Why the tool could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The environment holds an invalid setting.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// The `http_fetch` tool.
#[derive(Clone)]
pub struct HttpFetch {
    fetcher: Fetcher,
}

impl HttpFetch {
    /// The tool fetching through `fetcher`.
    pub fn new(fetcher: Fetcher) -> Self {
        Self { fetcher }
    }

    /// The tool configured from the environment (see [`config`]).
    pub fn from_env() -> Result<Self, SetupError> {
        Ok(Self::new(Fetcher::new(FetchConfig::from_env()?)?))
    }

    /// Its fetcher.
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }
}

impl Tool for HttpFetch {
    type Input = HttpFetchInput;

    const NAME: &'static str = "http_fetch";

    const DESCRIPTION: &'static str = "Fetches a public web page or text resource by http(s) URL \
        and returns its readable text (HTML converted to plain text) with the page title, the \
        final URL after redirects, the HTTP status and the content type. Long pages are \
        truncated. Local, private and cloud-internal addresses are refused.";

    async fn run(
        &self,
        input: HttpFetchInput,
        _: Option<&CallContext>,
    ) -> Result<ToolOutput, String> {
        let max_bytes = input
            .max_bytes
            .map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX));
        match self.fetcher.fetch(&input.url, max_bytes).await {
            Ok(page) if page.status.is_client_error() || page.status.is_server_error() => {
                Ok(ToolOutput::error(page.render(ERROR_EXCERPT_BYTES)))
            }
            Ok(page) => Ok(ToolOutput::text(
                page.render(self.fetcher.config().max_text_bytes),
            )),
            Err(error) => {
                tracing::warn!(%error, "fetch failed");
                Err(content::cap_bytes(&error.to_string(), MAX_ERROR_BYTES).into_owned())
            }
        }
    }
}
