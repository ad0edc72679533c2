//! The web console through the real handler: its files need no caller, the API still does.

mod common;

use lambda_http::{http::Request as HttpRequest, Body, Request};
use session_handler::handler::handle;
use shared::config::AuthMode;

async fn get(api: &common::Api, path: &str) -> lambda_http::Response<Body> {
    let request: Request = HttpRequest::builder()
        .method("GET")
        .uri(path)
        .body(Body::Empty)
        .expect("request builds");
    handle(&api.app, request).await
}

#[tokio::test]
async fn the_console_is_served_without_a_caller_and_the_api_still_wants_one() {
    let api = common::api_with(8, AuthMode::Jwt).await;
    let page = get(&api, "/lambda-url/session-handler/console").await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers().contains_key("content-security-policy"));

    let config = common::reply(get(&api, "/prod/console/config.json").await);
    assert_eq!(config.status, 200);
    assert_eq!(
        config.body,
        serde_json::json!({"stream_url": null, "auth_mode": "jwt"})
    );

    let script = get(&api, "/console/app.js").await;
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );

    let missing = common::reply(get(&api, "/console/missing.js").await);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/problem+json");

    let sessions = common::reply(get(&api, "/lambda-url/session-handler/sessions").await);
    assert_eq!(sessions.status, 401, "{:?}", sessions.body);
}
