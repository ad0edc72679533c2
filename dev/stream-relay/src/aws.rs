//! The SDK clients, configured from the standard environment.
//!
//! Region, credentials and endpoints come from the usual chain (`AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_LAMBDA`, ..). DynamoDB
//! Streams has an endpoint of its own (`AWS_ENDPOINT_URL_DYNAMODB_STREAMS`); when it is unset,
//! the DynamoDB endpoint is used, which is where DynamoDB Local serves its streams. Without a
//! region, `us-east-1`; without `AWS_ACCESS_KEY_ID` or `AWS_PROFILE`, the static credentials
//! `local`/`local` (a development tool: DynamoDB Local and `cargo lambda watch` accept any).

use std::time::Duration;

use aws_config::{retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_http_client::{
    tls::{rustls_provider::CryptoMode, Provider},
    Builder,
};

/// Longest an invoke may take: Lambda's 15 minutes, and a minute to spare (the first invoke
/// through `cargo lambda watch` waits for the function to compile).
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(16 * 60);

/// Endpoint overrides; `None` leaves the SDK's own resolution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// DynamoDB (DescribeTable).
    pub dynamodb: Option<String>,
    /// DynamoDB Streams; defaults to `dynamodb`.
    pub dynamodb_streams: Option<String>,
    /// Lambda (Invoke).
    pub lambda: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Endpoints {
    /// `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_DYNAMODB_STREAMS` (default: the
    /// DynamoDB one), `AWS_ENDPOINT_URL_LAMBDA`, each also falling back to `AWS_ENDPOINT_URL`.
    pub fn from_env() -> Self {
        let global = var("AWS_ENDPOINT_URL");
        let dynamodb = var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| global.clone());
        Self {
            dynamodb_streams: var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS").or_else(|| dynamodb.clone()),
            dynamodb,
            lambda: var("AWS_ENDPOINT_URL_LAMBDA").or(global),
        }
    }
}

/// The three clients the relay uses, and the region they are in.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub region: String,
}

impl Clients {
    /// Clients from the environment, with these endpoints.
    pub async fn new(endpoints: &Endpoints) -> Self {
        let http_client = Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
        if var("AWS_ACCESS_KEY_ID").is_none() && var("AWS_PROFILE").is_none() {
            loader = loader.credentials_provider(Credentials::new(
                "local",
                "local",
                None,
                None,
                "stream-relay",
            ));
        }
        let mut config = loader.load().await;
        if config.region().is_none() {
            config = config
                .into_builder()
                .region(Region::new("us-east-1"))
                .build();
        }
        let region = config
            .region()
            .map_or("us-east-1".into(), |r| r.to_string());
        let requests = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(30))
            .operation_timeout(Duration::from_secs(90))
            .build();

        let mut dynamodb =
            aws_sdk_dynamodb::config::Builder::from(&config).timeout_config(requests.clone());
        if let Some(url) = &endpoints.dynamodb {
            dynamodb = dynamodb.endpoint_url(url);
        }
        let mut streams =
            aws_sdk_dynamodbstreams::config::Builder::from(&config).timeout_config(requests);
        if let Some(url) = endpoints
            .dynamodb_streams
            .as_ref()
            .or(endpoints.dynamodb.as_ref())
        {
            streams = streams.endpoint_url(url);
        }
        // One invoke is one attempt: the relay's retries are the event source mapping's.
        let mut lambda = aws_sdk_lambda::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_timeout(INVOKE_TIMEOUT)
                    .build(),
            );
        if let Some(url) = &endpoints.lambda {
            lambda = lambda.endpoint_url(url);
        }
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            streams: aws_sdk_dynamodbstreams::Client::from_conf(streams.build()),
            lambda: aws_sdk_lambda::Client::from_conf(lambda.build()),
            region,
        }
    }
}
