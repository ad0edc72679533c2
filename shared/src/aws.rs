//! Building AWS SDK configuration once per execution environment.
//!
//! Every client is built from [`sdk_config`], which reads the standard chain (`AWS_REGION`,
//! credentials, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), so a local emulator is one
//! environment variable away. The HTTPS client uses rustls with the `ring` provider: it
//! cross-compiles to arm64 with no C toolchain beyond `cc` and keeps the deployment zip small.

use std::time::Duration;

use aws_config::{timeout::TimeoutConfig, BehaviorVersion, SdkConfig};
use aws_smithy_http_client::{
    tls::{rustls_provider::CryptoMode, Provider},
    Builder,
};

/// Longest wait for a connection to any AWS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Loads the shared SDK configuration from the environment with our HTTPS client, and a
/// connect timeout and default operation timeouts (30 s per attempt, 60 s in all) that every
/// client narrows to its own budget with [`timeouts`].
pub async fn sdk_config() -> SdkConfig {
    let http_client = Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(timeouts(Duration::from_secs(30), Duration::from_secs(60)))
        .load()
        .await
}

/// Timeouts of a client: each attempt at most `attempt`, the whole operation (retries and
/// their back-off included) at most `operation`, connecting at most [`CONNECT_TIMEOUT`].
pub fn timeouts(attempt: Duration, operation: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(attempt))
        .operation_attempt_timeout(attempt.min(operation))
        .operation_timeout(operation)
        .build()
}
