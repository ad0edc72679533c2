//! Which operation a method and path ask for.
//!
//! The path is matched from its first `sessions`, `tools`, `memory` or `console` segment, so the same
//! function serves API Gateway (with or without a stage prefix) and `cargo lambda watch`'s
//! `/lambda-url/<function>/` prefix unchanged.

use lambda_http::http::Method;

/// An operation of the HTTP API.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST /sessions`
    CreateSession,
    /// `GET /sessions`
    ListSessions,
    /// `GET /sessions/{id}`
    GetSession(&'a str),
    /// `DELETE /sessions/{id}`
    DeleteSession(&'a str),
    /// `POST /sessions/{id}/messages`
    SendMessage(&'a str),
    /// `GET /sessions/{id}/trace`
    GetTrace(&'a str),
    /// `GET /tools`
    ListTools,
    /// `GET /memory`: what is remembered about the caller.
    ListMemory,
    /// `DELETE /memory/{id}`: forget one record.
    Forget(&'a str),
    /// `DELETE /memory`: forget everything.
    ForgetAll,
    /// `GET /console...`: the web console, which needs no caller (its API calls carry one).
    Console(ConsoleRoute<'a>),
}

/// A path of the web console.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsoleRoute<'a> {
    /// `/console`: the page.
    Page,
    /// `/console/`: sent on to `/console`, against which the page's relative URLs resolve.
    TrailingSlash,
    /// `/console/config.json`: what the page needs to know of this deployment.
    Config,
    /// `/console/{name}`: one of the page's assets.
    Asset(&'a str),
}

/// Why a request matches no operation.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// No such path.
    NotFound,
    /// The path exists with other methods.
    MethodNotAllowed(&'static str),
}

/// Matches a method and path to a route.
pub fn route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, NoRoute> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let start = segments
        .iter()
        .position(|s| matches!(*s, "sessions" | "tools" | "console" | "memory"))
        .ok_or(NoRoute::NotFound)?;
    let method = method.clone();
    let console = |route| match method {
        Method::GET => Ok(Route::Console(route)),
        _ => Err(NoRoute::MethodNotAllowed("GET")),
    };
    match segments[start..] {
        ["console"] if path.ends_with('/') => console(ConsoleRoute::TrailingSlash),
        ["console"] => console(ConsoleRoute::Page),
        ["console", "config.json"] => console(ConsoleRoute::Config),
        ["console", name] => console(ConsoleRoute::Asset(name)),
        ["tools"] => match method {
            Method::GET => Ok(Route::ListTools),
            _ => Err(NoRoute::MethodNotAllowed("GET")),
        },
        ["memory"] => match method {
            Method::GET => Ok(Route::ListMemory),
            Method::DELETE => Ok(Route::ForgetAll),
            _ => Err(NoRoute::MethodNotAllowed("GET, DELETE")),
        },
        ["memory", id] => match method {
            Method::DELETE => Ok(Route::Forget(id)),
            _ => Err(NoRoute::MethodNotAllowed("DELETE")),
        },
        ["sessions"] => match method {
            Method::POST => Ok(Route::CreateSession),
            Method::GET => Ok(Route::ListSessions),
            _ => Err(NoRoute::MethodNotAllowed("GET, POST")),
        },
        ["sessions", id] => match method {
            Method::GET => Ok(Route::GetSession(id)),
            Method::DELETE => Ok(Route::DeleteSession(id)),
            _ => Err(NoRoute::MethodNotAllowed("GET, DELETE")),
        },
        ["sessions", id, "messages"] => match method {
            Method::POST => Ok(Route::SendMessage(id)),
            _ => Err(NoRoute::MethodNotAllowed("POST")),
        },
        ["sessions", id, "trace"] => match method {
            Method::GET => Ok(Route::GetTrace(id)),
            _ => Err(NoRoute::MethodNotAllowed("GET")),
        },
        _ => Err(NoRoute::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_matches_with_or_without_a_prefix() {
        assert_eq!(route(&Method::POST, "/sessions"), Ok(Route::CreateSession));
        assert_eq!(
            route(&Method::GET, "/prod/sessions"),
            Ok(Route::ListSessions)
        );
        assert_eq!(
            route(&Method::GET, "/sessions/abc"),
            Ok(Route::GetSession("abc"))
        );
        assert_eq!(
            route(&Method::DELETE, "/sessions/abc/"),
            Ok(Route::DeleteSession("abc"))
        );
        assert_eq!(
            route(
                &Method::POST,
                "/lambda-url/session-handler/sessions/abc/messages"
            ),
            Ok(Route::SendMessage("abc"))
        );
        assert_eq!(
            route(&Method::GET, "/sessions/abc/trace"),
            Ok(Route::GetTrace("abc"))
        );
        assert_eq!(route(&Method::GET, "/tools"), Ok(Route::ListTools));
        assert_eq!(route(&Method::GET, "/prod/memory"), Ok(Route::ListMemory));
        assert_eq!(route(&Method::DELETE, "/memory"), Ok(Route::ForgetAll));
        assert_eq!(
            route(&Method::DELETE, "/memory/fact.home_city"),
            Ok(Route::Forget("fact.home_city"))
        );
        assert_eq!(
            route(&Method::GET, "/memory/fact.home_city"),
            Err(NoRoute::MethodNotAllowed("DELETE"))
        );
        // A session named `memory` is a session.
        assert_eq!(
            route(&Method::GET, "/sessions/memory"),
            Ok(Route::GetSession("memory"))
        );
    }

    #[test]
    fn the_console_matches_with_or_without_a_prefix() {
        let console = |route| Ok(Route::Console(route));
        assert_eq!(route(&Method::GET, "/console"), console(ConsoleRoute::Page));
        assert_eq!(
            route(&Method::GET, "/lambda-url/session-handler/console"),
            console(ConsoleRoute::Page)
        );
        assert_eq!(
            route(&Method::GET, "/prod/console/"),
            console(ConsoleRoute::TrailingSlash)
        );
        assert_eq!(
            route(
                &Method::GET,
                "/lambda-url/session-handler/console/config.json"
            ),
            console(ConsoleRoute::Config)
        );
        assert_eq!(
            route(&Method::GET, "/prod/console/app.js"),
            console(ConsoleRoute::Asset("app.js"))
        );
        // From the first matching segment: a session id or asset named `console` is just that.
        assert_eq!(
            route(&Method::GET, "/sessions/console"),
            Ok(Route::GetSession("console"))
        );
        assert_eq!(
            route(&Method::GET, "/console/sessions"),
            console(ConsoleRoute::Asset("sessions"))
        );
    }

    #[test]
    fn the_console_is_read_only_and_one_level_deep() {
        assert_eq!(
            route(&Method::POST, "/console"),
            Err(NoRoute::MethodNotAllowed("GET"))
        );
        assert_eq!(
            route(&Method::DELETE, "/console/app.js"),
            Err(NoRoute::MethodNotAllowed("GET"))
        );
        assert_eq!(
            route(&Method::GET, "/console/a/b.js"),
            Err(NoRoute::NotFound)
        );
    }

    #[test]
    fn unknown_paths_and_wrong_methods_are_told_apart() {
        assert_eq!(route(&Method::GET, "/nope"), Err(NoRoute::NotFound));
        assert_eq!(
            route(&Method::GET, "/sessions/a/b/c"),
            Err(NoRoute::NotFound)
        );
        assert_eq!(
            route(&Method::PUT, "/sessions"),
            Err(NoRoute::MethodNotAllowed("GET, POST"))
        );
        assert_eq!(
            route(&Method::GET, "/sessions/a/messages"),
            Err(NoRoute::MethodNotAllowed("POST"))
        );
    }
}
