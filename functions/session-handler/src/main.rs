//! The session handler Lambda behind API Gateway: wires the SDK clients once, then serves the
//! HTTP API (buffered answers; streamed turns are the `session-stream` function's).

use lambda_http::{run, service_fn, Error, Request};
use shared::config::Config;

use session_handler::{handler::handle, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();

    let config = Config::from_env()?;
    let app = wiring::app(&config, config.agent.max_wall_time).await?;
    let app = &app;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handle(app, request).await)
    }))
    .await
}
