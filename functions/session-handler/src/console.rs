//! The web console: one page, its scripts and its style, compiled into the binary and served at
//! `GET /console` with no caller check (every API call the page makes carries the caller's
//! credentials, and is checked as any other).
//!
//! Caching: the assets change only with a deployment and their names carry no version, so a
//! `max-age` would let a browser run yesterday's script against today's API, or mix an old
//! script with a new page. Every asset is therefore `no-cache` with a strong `ETag` (a hash of
//! its bytes, computed at compile time): the browser asks again on each load and gets a
//! bodiless `304` while nothing changed.
//!
//! The page's `content-security-policy` allows scripts, styles and images from this origin only
//! (no inline script or style), and connections to this origin and the streaming function's.

use lambda_http::{
    http::{header, HeaderMap, HeaderValue, StatusCode},
    Body, Response,
};
use serde_json::json;

use shared::config::AuthMode;

use crate::{
    problem::{empty, json, problem},
    routes::ConsoleRoute,
};

/// What the console is told of this deployment, read once at start-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsoleSettings {
    stream_url: Option<String>,
    stream_origin: Option<String>,
}

impl ConsoleSettings {
    /// From the environment: `STREAM_URL`, the base URL of the streaming function (unset or
    /// empty: the console sends turns to this API, buffered).
    pub fn from_env() -> Result<Self, String> {
        Self::new(std::env::var("STREAM_URL").ok().as_deref())
    }

    /// With this streaming base URL, which must be an absolute `http(s)` URL.
    pub fn new(stream_url: Option<&str>) -> Result<Self, String> {
        let Some(raw) = stream_url.map(str::trim).filter(|raw| !raw.is_empty()) else {
            return Ok(Self::default());
        };
        let invalid =
            |reason: &str| format!("environment variable STREAM_URL is invalid: {reason}");
        let url = url::Url::parse(raw).map_err(|error| invalid(&error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid("it must be an http(s) URL with a host"));
        }
        Ok(Self {
            stream_url: Some(raw.trim_end_matches('/').to_owned()),
            stream_origin: Some(url.origin().ascii_serialization()),
        })
    }

    /// The streaming function's base URL, without a trailing slash.
    pub fn stream_url(&self) -> Option<&str> {
        self.stream_url.as_deref()
    }

    /// The page's content security policy.
    pub fn content_security_policy(&self) -> String {
        let stream = self
            .stream_origin
            .as_deref()
            .map_or_else(String::new, |origin| format!(" {origin}"));
        format!(
            "default-src 'self'; connect-src 'self'{stream}; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'; object-src 'none'"
        )
    }
}

/// A file of the console.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/console/`.
    pub name: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
    etag: u64,
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("../console/", $name)),
            etag: fnv1a(include_str!(concat!("../console/", $name)).as_bytes()),
        }
    };
}

/// The page, served at `/console` (its asset URLs are relative to that: `console/app.js`).
pub static PAGE: Asset = asset!("index.html", "text/html; charset=utf-8");

/// The page's assets, served at `/console/{name}`.
pub static ASSETS: &[Asset] = &[
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("sse.js", "text/javascript; charset=utf-8"),
    asset!("trace.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
];

/// FNV-1a, 64 bits: a stable hash for the `ETag`s, evaluated at compile time.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Answers one console route; `headers` are the request's (for `If-None-Match`).
pub fn serve(
    settings: &ConsoleSettings,
    auth_mode: AuthMode,
    route: ConsoleRoute<'_>,
    headers: &HeaderMap,
) -> Response<Body> {
    let mut response = match route {
        ConsoleRoute::Page => {
            let mut response = file(&PAGE, headers);
            if let Ok(policy) = settings.content_security_policy().parse() {
                response
                    .headers_mut()
                    .insert("content-security-policy", policy);
            }
            response
                .headers_mut()
                .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            response
        }
        ConsoleRoute::TrailingSlash => {
            let mut response = empty(StatusCode::PERMANENT_REDIRECT);
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("../console"));
            response
        }
        ConsoleRoute::Config => {
            let mut response = json(
                StatusCode::OK,
                &json!({
                    "stream_url": settings.stream_url(),
                    "auth_mode": match auth_mode {
                        AuthMode::InsecureLocal => "insecure-local",
                        AuthMode::Jwt => "jwt",
                    },
                }),
            );
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        ConsoleRoute::Asset(name) => match ASSETS.iter().find(|asset| asset.name == name) {
            Some(asset) => file(asset, headers),
            None => problem(
                StatusCode::NOT_FOUND,
                format!(
                    "the console has no asset '{}'",
                    name.chars().take(64).collect::<String>()
                ),
            ),
        },
    };
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// An asset, or `304` when the browser holds it already.
fn file(asset: &Asset, headers: &HeaderMap) -> Response<Body> {
    let etag = format!("\"{:016x}\"", asset.etag);
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*");
    let mut response = if fresh {
        empty(StatusCode::NOT_MODIFIED)
    } else {
        let mut response = Response::new(Body::Text(asset.body.to_owned()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = etag.parse() {
        headers.insert(header::ETAG, etag);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(route: ConsoleRoute<'_>, settings: &ConsoleSettings) -> Response<Body> {
        serve(settings, AuthMode::InsecureLocal, route, &HeaderMap::new())
    }

    fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    fn body(response: &Response<Body>) -> &str {
        match response.body() {
            Body::Text(text) => text,
            _ => "",
        }
    }

    #[test]
    fn the_page_is_html_with_a_strict_policy() {
        let response = get(ConsoleRoute::Page, &ConsoleSettings::default());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        assert!(header(&response, "etag").starts_with('"'));
        let policy = header(&response, "content-security-policy");
        assert!(
            policy.starts_with("default-src 'self'; connect-src 'self';"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe"), "{policy}");
        assert!(body(&response).contains("console/app.js"));
    }

    #[test]
    fn the_policy_lets_the_page_connect_to_the_streaming_origin() {
        let settings =
            ConsoleSettings::new(Some("https://abc.lambda-url.us-east-1.on.aws/stream/")).unwrap();
        let response = get(ConsoleRoute::Page, &settings);
        assert!(
            header(&response, "content-security-policy")
                .contains("connect-src 'self' https://abc.lambda-url.us-east-1.on.aws;"),
            "{}",
            header(&response, "content-security-policy")
        );
    }

    #[test]
    fn every_asset_has_its_content_type() {
        for (name, content_type) in [
            ("app.js", "text/javascript; charset=utf-8"),
            ("sse.js", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("icon.svg", "image/svg+xml"),
        ] {
            let response = get(ConsoleRoute::Asset(name), &ConsoleSettings::default());
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(header(&response, "content-type"), content_type, "{name}");
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
            assert_eq!(header(&response, "cache-control"), "no-cache");
            assert!(!body(&response).is_empty());
        }
    }

    #[test]
    fn a_known_etag_is_answered_with_304() {
        let app_js = |if_none_match: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(tags) = if_none_match {
                headers.insert(header::IF_NONE_MATCH, tags.parse().unwrap());
            }
            let settings = ConsoleSettings::default();
            serve(
                &settings,
                AuthMode::Jwt,
                ConsoleRoute::Asset("app.js"),
                &headers,
            )
        };
        let first = app_js(None);
        let etag = header(&first, "etag").to_owned();
        let again = app_js(Some(&format!("\"other\", W/{etag}")));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, "etag"), etag);
        assert!(matches!(again.body(), Body::Empty));
        assert_eq!(app_js(Some("\"other\"")).status(), StatusCode::OK);
        assert_eq!(app_js(Some("*")).status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn assets_have_distinct_etags() {
        let mut etags: Vec<u64> = ASSETS.iter().map(|asset| asset.etag).collect();
        etags.push(PAGE.etag);
        etags.sort_unstable();
        etags.dedup();
        assert_eq!(etags.len(), ASSETS.len() + 1);
    }

    #[test]
    fn config_names_the_stream_url_and_the_auth_mode() {
        let config = |settings: &ConsoleSettings, mode| {
            let response = serve(settings, mode, ConsoleRoute::Config, &HeaderMap::new());
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(header(&response, "content-type"), "application/json");
            assert_eq!(header(&response, "cache-control"), "no-store");
            serde_json::from_str::<serde_json::Value>(body(&response)).unwrap()
        };
        assert_eq!(
            config(&ConsoleSettings::default(), AuthMode::InsecureLocal),
            json!({"stream_url": null, "auth_mode": "insecure-local"})
        );
        let settings = ConsoleSettings::new(Some("http://127.0.0.1:9001/stream/")).unwrap();
        assert_eq!(
            config(&settings, AuthMode::Jwt),
            json!({"stream_url": "http://127.0.0.1:9001/stream", "auth_mode": "jwt"})
        );
    }

    #[test]
    fn a_stream_url_must_be_absolute_http() {
        assert_eq!(ConsoleSettings::new(None), Ok(ConsoleSettings::default()));
        assert_eq!(
            ConsoleSettings::new(Some("  ")),
            Ok(ConsoleSettings::default())
        );
        for bad in ["/stream", "ftp://example.com", "not a url"] {
            let error = ConsoleSettings::new(Some(bad)).unwrap_err();
            assert!(error.contains("STREAM_URL"), "{bad}: {error}");
        }
    }

    #[test]
    fn an_unknown_asset_is_a_404_problem() {
        for name in ["nope.js", "index.html", "config.json.bak"] {
            let response = get(ConsoleRoute::Asset(name), &ConsoleSettings::default());
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{name}");
            assert_eq!(
                header(&response, "content-type"),
                "application/problem+json"
            );
            assert!(body(&response).contains(name));
        }
    }

    #[test]
    fn a_trailing_slash_is_sent_to_the_page() {
        let response = get(ConsoleRoute::TrailingSlash, &ConsoleSettings::default());
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(header(&response, "location"), "../console");
    }

    #[test]
    fn the_console_weighs_under_100_kb() {
        let total: usize = ASSETS
            .iter()
            .chain([&PAGE])
            .map(|asset| asset.body.len())
            .sum();
        assert!(total < 100 * 1024, "the console weighs {total} bytes");
    }

    #[test]
    fn every_file_in_the_console_folder_is_served() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/console");
        let mut files: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut served: Vec<String> = ASSETS
            .iter()
            .chain([&PAGE])
            .map(|asset| asset.name.to_owned())
            .collect();
        served.sort();
        assert_eq!(files, served);
    }
}
