//! Search providers behind one trait, [`SearchProvider`]: Tavily and Brave Search. Each turns a
//! query into one HTTP request and the provider's answer into [`SearchResult`]s.
//!
//! A 401 or 403 is [`ProviderError::Unauthorized`], so the caller can read the key again (it
//! may have been rotated). Errors carry the status, never the key or the request headers.

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;

use shared::https::{Client as HttpClient, HttpError, HttpResponse};

use shared::adapters::secrets::ApiKey;

/// One search result, the same for every provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The page title.
    pub title: String,
    /// The page URL.
    pub url: String,
    /// A short excerpt of the page.
    pub snippet: String,
    /// When the page was published, as the provider states it, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider rejected the API key (HTTP 401 or 403).
    #[error("the search provider rejected the API key (HTTP {status})")]
    Unauthorized {
        /// The status code.
        status: u16,
    },
    /// The provider answered with another error status.
    #[error("the search provider answered HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// The provider could not be reached.
    #[error("could not reach the search provider: {0}")]
    Transport(#[from] HttpError),
    /// The answer is not the JSON the provider documents.
    #[error("unreadable answer from the search provider: {0}")]
    Malformed(String),
    /// The request cannot be made (bad base URL, key not a valid header value).
    #[error("invalid search request: {0}")]
    Request(String),
}

/// A web search API.
#[async_trait]
pub trait SearchProvider: Send + Sync {
    /// The provider's name, for results and logs.
    fn name(&self) -> &'static str;

    /// At most `max_results` results for `query`, authenticated with `api_key` when given.
    async fn search(
        &self,
        query: &str,
        max_results: u8,
        api_key: Option<&ApiKey>,
    ) -> Result<Vec<SearchResult>, ProviderError>;
}

/// A header carrying the key, marked sensitive so it is never printed.
fn key_header(name: HeaderName, value: String) -> Result<(HeaderName, HeaderValue), ProviderError> {
    let mut value = HeaderValue::try_from(value)
        .map_err(|_| ProviderError::Request("the API key is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// `base` with `path` appended (the base may itself have a path).
fn endpoint(base: &Url, path: &str) -> Result<Url, ProviderError> {
    let joined = format!("{}{path}", base.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|error| ProviderError::Request(error.to_string()))
}

/// Maps an error status to an error; passes a success through.
fn check_status(response: HttpResponse) -> Result<Bytes, ProviderError> {
    match response.status {
        200..=299 => Ok(response.body),
        401 | 403 => Err(ProviderError::Unauthorized {
            status: response.status,
        }),
        status => Err(ProviderError::Status { status }),
    }
}

/// Tavily: `POST {base}/search` with a bearer key.
#[derive(Clone, Debug)]
pub struct Tavily {
    base: Url,
    http: HttpClient,
}

impl Tavily {
    /// The production base URL.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.tavily.com";

    /// A client of the Tavily API at `base`.
    pub fn new(base: Url, http: HttpClient) -> Self {
        Self { base, http }
    }
}

#[derive(Deserialize)]
struct TavilyResponse {
    #[serde(default)]
    results: Vec<TavilyItem>,
}

#[derive(Deserialize)]
struct TavilyItem {
    #[serde(default)]
    title: String,
    url: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    published_date: Option<String>,
}

/// Normalizes a Tavily answer.
pub fn parse_tavily(body: &[u8], max_results: u8) -> Result<Vec<SearchResult>, ProviderError> {
    let response: TavilyResponse = serde_json::from_slice(body)
        .map_err(|error| ProviderError::Malformed(error.to_string()))?;
    Ok(response
        .results
        .into_iter()
        .take(usize::from(max_results))
        .map(|item| SearchResult {
            title: item.title,
            url: item.url,
            snippet: item.content,
            published: item.published_date.filter(|date| !date.is_empty()),
        })
        .collect())
}

#[async_trait]
impl SearchProvider for Tavily {
    fn name(&self) -> &'static str {
        "tavily"
    }

    async fn search(
        &self,
        query: &str,
        max_results: u8,
        api_key: Option<&ApiKey>,
    ) -> Result<Vec<SearchResult>, ProviderError> {
        let url = endpoint(&self.base, "/search")?;
        let mut headers = Vec::new();
        if let Some(key) = api_key {
            headers.push(key_header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", key.expose()),
            )?);
        }
        let body = json!({ "query": query, "max_results": max_results }).to_string();
        let response = self
            .http
            .send(Method::POST, &url, headers, Some(Bytes::from(body)))
            .await?;
        parse_tavily(&check_status(response)?, max_results)
    }
}

/// Brave Search: `GET {base}/res/v1/web/search?q=..&count=..` with `X-Subscription-Token`.
#[derive(Clone, Debug)]
pub struct Brave {
    base: Url,
    http: HttpClient,
}

impl Brave {
    /// The production base URL.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.search.brave.com";

    /// A client of the Brave Search API at `base`.
    pub fn new(base: Url, http: HttpClient) -> Self {
        Self { base, http }
    }
}

#[derive(Deserialize)]
struct BraveResponse {
    #[serde(default)]
    web: Option<BraveWeb>,
}

#[derive(Deserialize)]
struct BraveWeb {
    #[serde(default)]
    results: Vec<BraveItem>,
}

#[derive(Deserialize)]
struct BraveItem {
    #[serde(default)]
    title: String,
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    page_age: Option<String>,
    #[serde(default)]
    age: Option<String>,
}

/// Brave marks the query's words with `<strong>`; the snippet is plain text.
fn strip_emphasis(text: &str) -> String {
    text.replace("<strong>", "").replace("</strong>", "")
}

/// Normalizes a Brave Search answer.
pub fn parse_brave(body: &[u8], max_results: u8) -> Result<Vec<SearchResult>, ProviderError> {
    let response: BraveResponse = serde_json::from_slice(body)
        .map_err(|error| ProviderError::Malformed(error.to_string()))?;
    Ok(response
        .web
        .map(|web| web.results)
        .unwrap_or_default()
        .into_iter()
        .take(usize::from(max_results))
        .map(|item| SearchResult {
            title: strip_emphasis(&item.title),
            url: item.url,
            snippet: strip_emphasis(&item.description),
            published: item.page_age.or(item.age).filter(|age| !age.is_empty()),
        })
        .collect())
}

#[async_trait]
impl SearchProvider for Brave {
    fn name(&self) -> &'static str {
        "brave"
    }

    async fn search(
        &self,
        query: &str,
        max_results: u8,
        api_key: Option<&ApiKey>,
    ) -> Result<Vec<SearchResult>, ProviderError> {
        let mut url = endpoint(&self.base, "/res/v1/web/search")?;
        url.query_pairs_mut()
            .append_pair("q", query)
            .append_pair("count", &max_results.to_string());
        let mut headers = Vec::new();
        if let Some(key) = api_key {
            headers.push(key_header(
                HeaderName::from_static("x-subscription-token"),
                key.expose().to_owned(),
            )?);
        }
        let response = self.http.send(Method::GET, &url, headers, None).await?;
        parse_brave(&check_status(response)?, max_results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tavily_results_become_title_url_snippet_published() {
        let body = br#"{"query":"q","results":[
            {"title":"A","url":"https://a.example","content":"about a","published_date":"2026-01-02","score":0.9},
            {"title":"B","url":"https://b.example","content":"about b"},
            {"title":"C","url":"https://c.example","content":"about c"}]}"#;
        let results = parse_tavily(body, 2).unwrap();
        assert_eq!(
            results,
            vec![
                SearchResult {
                    title: "A".into(),
                    url: "https://a.example".into(),
                    snippet: "about a".into(),
                    published: Some("2026-01-02".into()),
                },
                SearchResult {
                    title: "B".into(),
                    url: "https://b.example".into(),
                    snippet: "about b".into(),
                    published: None,
                },
            ]
        );
    }

    #[test]
    fn brave_results_become_title_url_snippet_published_without_emphasis() {
        let body = br#"{"type":"search","web":{"results":[
            {"title":"<strong>Rust</strong> lang","url":"https://r.example","description":"the <strong>Rust</strong> book","page_age":"2025-05-01T00:00:00"},
            {"title":"Other","url":"https://o.example","description":"o","age":"3 days ago"},
            {"title":"Bare","url":"https://b.example"}]}}"#;
        let results = parse_brave(body, 5).unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].title, "Rust lang");
        assert_eq!(results[0].snippet, "the Rust book");
        assert_eq!(results[0].published.as_deref(), Some("2025-05-01T00:00:00"));
        assert_eq!(results[1].published.as_deref(), Some("3 days ago"));
        assert_eq!(results[2].snippet, "");
        assert_eq!(results[2].published, None);
    }

    #[test]
    fn a_brave_answer_without_web_results_is_no_results() {
        assert!(parse_brave(br#"{"type":"search"}"#, 5).unwrap().is_empty());
    }

    #[test]
    fn a_non_json_answer_is_malformed() {
        assert!(matches!(
            parse_tavily(b"<html>", 5),
            Err(ProviderError::Malformed(_))
        ));
    }

    #[test]
    fn the_endpoint_is_appended_to_a_base_with_or_without_a_path() {
        let base = Url::parse("http://127.0.0.1:9/").unwrap();
        assert_eq!(
            endpoint(&base, "/search").unwrap().as_str(),
            "http://127.0.0.1:9/search"
        );
        let base = Url::parse("http://127.0.0.1:9/proxy/").unwrap();
        assert_eq!(
            endpoint(&base, "/search").unwrap().as_str(),
            "http://127.0.0.1:9/proxy/search"
        );
    }

    #[test]
    fn rejected_keys_are_unauthorized_and_other_errors_keep_their_status() {
        let response = |status| HttpResponse {
            status,
            body: Bytes::new(),
        };
        assert!(matches!(
            check_status(response(401)),
            Err(ProviderError::Unauthorized { status: 401 })
        ));
        assert!(matches!(
            check_status(response(403)),
            Err(ProviderError::Unauthorized { status: 403 })
        ));
        assert!(matches!(
            check_status(response(500)),
            Err(ProviderError::Status { status: 500 })
        ));
    }
}
