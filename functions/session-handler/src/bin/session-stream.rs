//! The streaming session handler Lambda, behind a Function URL in `RESPONSE_STREAM` mode:
//! `POST /sessions/{id}/messages` answers `text/event-stream` (see `session_handler::stream`).
//! A streamed turn may run up to `STREAM_MAX_WALL_TIME_MS`, past API Gateway's 30 s.

use lambda_http::{run_with_streaming_response, service_fn, Error, Request};
use shared::{
    auth::{JwtConfig, JwtValidator},
    config::{AuthMode, Config},
};

use session_handler::{stream, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();

    let config = Config::from_env()?;
    let mut app = wiring::app(&config, config.stream_max_wall_time).await?;
    // No API Gateway authorizer stands in front of a Function URL: tokens are validated here,
    // against the issuer's keys (JWT_ISSUER, JWT_AUDIENCE).
    if config.auth_mode == AuthMode::Jwt {
        app.jwt = Some(JwtValidator::new(JwtConfig::from_env()?)?);
    }
    // Each turn runs in a task of its own, which outlives the request if the client leaves:
    // the app lives as long as the execution environment.
    let app: &'static _ = Box::leak(Box::new(app));
    run_with_streaming_response(service_fn(move |request: Request| async move {
        Ok::<_, Error>(stream::handle(app, request).await)
    }))
    .await
}
