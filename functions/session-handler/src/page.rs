//! Paged reads: `limit` and an opaque `cursor` in the query string, `next_cursor` in the answer.
//!
//! A cursor is the position to continue after, tagged with what it pages (`m` messages, `t`
//! traces) and base64url-encoded, so a client treats it as opaque and a cursor of one list is
//! refused by the other.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use lambda_http::{Request, RequestExt};

use shared::ports::PageRequest;

use crate::request::BadRequest;

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 500;

/// What is paged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paged {
    /// A session's messages (by seq).
    Messages,
    /// A session's turn traces (by turn).
    Traces,
}

impl Paged {
    fn tag(self) -> char {
        match self {
            Self::Messages => 'm',
            Self::Traces => 't',
        }
    }
}

/// The page a request asks for: `?limit=1..=500&cursor=<from a previous answer>`.
pub fn page_request(request: &Request, paged: Paged) -> Result<PageRequest, BadRequest> {
    let limit = match parameter(request, "limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                BadRequest::Invalid(format!("limit must be a number from 1 to {MAX_LIMIT}"))
            })?,
    };
    let after = parameter(request, "cursor")
        .map(|cursor| decode(&cursor, paged))
        .transpose()?;
    Ok(PageRequest { after, limit })
}

/// A query string parameter: from the event's parsed parameters (API Gateway, Function URLs),
/// else from the URI's query (a request built by hand, as in tests). Neither of ours needs
/// percent-decoding: a limit is digits and a cursor base64url.
pub fn parameter(request: &Request, name: &str) -> Option<String> {
    let parsed = request.query_string_parameters();
    if let Some(value) = parsed.first(name) {
        return Some(value.to_owned());
    }
    request.uri().query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| value.to_owned())
    })
}

/// The cursor that continues after `position`.
pub fn encode(position: u64, paged: Paged) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}{position}", paged.tag()))
}

fn decode(cursor: &str, paged: Paged) -> Result<u64, BadRequest> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(paged.tag()).map(str::to_owned))
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| BadRequest::Invalid("cursor is not one this API gave for this list".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_refused_by_the_other_list() {
        let cursor = encode(42, Paged::Messages);
        assert_eq!(decode(&cursor, Paged::Messages).ok(), Some(42));
        assert!(decode(&cursor, Paged::Traces).is_err());
        assert!(decode("not a cursor", Paged::Messages).is_err());
        assert!(
            !cursor.contains('4'),
            "opaque, not the number itself: {cursor}"
        );
    }
}
