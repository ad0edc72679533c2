//! Building AWS SDK configuration once per execution environment.
//!
//! Every client is built from [`sdk_config`], which reads the standard chain (`AWS_REGION`,
//! credentials, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), so a local emulator is one
//! environment variable away. The HTTPS client uses rustls with the `ring` provider: it
//! cross-compiles to arm64 with no C toolchain beyond `cc` and keeps the deployment zip small.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::{
    tls::{rustls_provider::CryptoMode, Provider},
    Builder,
};

/// Loads the shared SDK configuration from the environment with our HTTPS client.
pub async fn sdk_config() -> SdkConfig {
    let http_client = Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}
