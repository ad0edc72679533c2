//! What the DynamoDB Local tests share: a client that counts its requests, the run's table,
//! a store on it.
#![allow(dead_code)] // each test file uses part of it

pub mod api;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use shared::adapters::dynamodb::DynamoSessionStore;
use shared::store_conformance::new_id;
use tokio::sync::OnceCell;

/// TTL the stores under test are built with.
pub const TTL_DAYS: u32 = 7;

/// The table shared by every test of this run.
static TABLE: OnceCell<String> = OnceCell::const_new();

/// Counts the requests sent, per DynamoDB operation (from the `x-amz-target` header).
#[derive(Clone, Debug, Default)]
pub struct RequestCounter(Arc<Mutex<BTreeMap<String, usize>>>);

impl RequestCounter {
    /// The counts so far, and a reset.
    pub fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self.0.lock().unwrap().entry(operation).or_default() += 1;
        Ok(())
    }
}

/// A store on the test table, its raw client, and the request counter of that client.
pub struct Harness {
    pub store: DynamoSessionStore,
    pub client: Client,
    pub table: String,
    pub requests: RequestCounter,
}

/// A client for DynamoDB Local that counts its requests; fails the test without an endpoint.
pub async fn client(requests: &RequestCounter) -> Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL_DYNAMODB is not set: run these tests with `make test`, which \
             starts DynamoDB Local and points the tests at it"
        )
    });
    let config = shared::aws::sdk_config().await;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&config)
        .endpoint_url(endpoint)
        .interceptor(requests.clone());
    if config.region().is_none() {
        builder = builder.region(Region::new("us-east-1"));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        builder =
            builder.credentials_provider(Credentials::new("test", "test", None, None, "test"));
    }
    Client::from_conf(builder.build())
}

/// Creates the table of the data model (PAY_PER_REQUEST, TTL on `expires_at`).
async fn create_table(client: &Client) -> String {
    let table = new_id("sessions-test");
    shared::store_conformance::create_table(client, &table).await;
    table
}

pub async fn harness() -> Harness {
    let requests = RequestCounter::default();
    let client = client(&requests).await;
    let table = TABLE.get_or_init(|| create_table(&client)).await.clone();
    requests.take();
    Harness {
        store: DynamoSessionStore::new(client.clone(), table.clone(), TTL_DAYS),
        client,
        table,
        requests,
    }
}

/// Counts as a map literal.
pub fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect()
}

/// All items of a partition, raw.
pub async fn partition(
    h: &Harness,
    pk: &str,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    h.client
        .query()
        .table_name(&h.table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items()
        .to_vec()
}
