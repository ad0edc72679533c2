//! The sample events of `events/` are what API Gateway sends: they parse, route, and carry
//! their query string to the pager the way a deployed request does.

use lambda_http::{http::Method, request::from_str};
use session_handler::{
    page::{page_request, Paged},
    routes::{route, ConsoleRoute, Route},
};

fn event(name: &str) -> lambda_http::Request {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    from_str(&text).unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"))
}

#[test]
fn the_paged_sample_events_ask_for_a_page_of_fifty() {
    for (name, paged) in [
        ("get-session.json", Paged::Messages),
        ("get-trace.json", Paged::Traces),
    ] {
        let request = event(name);
        assert_eq!(request.method(), Method::GET);
        let page = page_request(&request, paged).expect("a valid page request");
        assert_eq!((page.limit, page.after), (50, None), "{name}");
    }
    let request = event("get-trace.json");
    let path = request.uri().path().to_owned();
    assert!(matches!(
        route(request.method(), &path),
        Ok(Route::GetTrace(_))
    ));
}

#[test]
fn the_send_message_samples_carry_a_valid_body_one_of_them_for_the_fast_role() {
    for (name, role) in [
        ("send-message.json", shared::models::ModelRole::Reasoning),
        ("send-message-fast.json", shared::models::ModelRole::Fast),
    ] {
        let request = event(name);
        let path = request.uri().path().to_owned();
        assert!(
            matches!(route(request.method(), &path), Ok(Route::SendMessage(_))),
            "{name}"
        );
        let body = session_handler::request::message(request.body(), 16 * 1024)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(body.role, role, "{name}");
    }
}

#[test]
fn the_function_url_sample_is_a_turn_for_the_streaming_function() {
    let request = event("stream-send-message.json");
    let path = request.uri().path().to_owned();
    assert!(matches!(
        route(request.method(), &path),
        Ok(Route::SendMessage("0b9e6a4e-6a57-4c64-9f3b-2f1f0b3c2a10"))
    ));
    let body = session_handler::request::message(request.body(), 16 * 1024).expect("a body");
    assert_eq!(body.message, "What is 12*7?");
    assert_eq!(
        session_handler::request::caller(&request, shared::config::AuthMode::InsecureLocal),
        Ok("user-123".to_owned())
    );
}

#[test]
fn the_console_sample_routes_to_the_page_and_carries_no_claims() {
    let request = event("console.json");
    let path = request.uri().path().to_owned();
    assert_eq!(
        route(request.method(), &path),
        Ok(Route::Console(ConsoleRoute::Page))
    );
    assert!(!request.headers().contains_key("authorization"));
}
