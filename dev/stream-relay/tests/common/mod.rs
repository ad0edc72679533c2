//! What the integration tests share: a fake Lambda Invoke endpoint, the DynamoDB Local
//! clients, tables with a stream, message items.
#![allow(dead_code)] // each test file uses part of it

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use serde_json::{json, Value};
use stream_relay::{Clients, Endpoints};

/// DynamoDB Local's endpoint; fails the test, saying how to start it, when unset.
pub fn dynamodb_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL_DYNAMODB is not set: these tests need DynamoDB Local. Run them with \
             `make test`, or start it with `SERVICES_MOTO=1 scripts/services.sh start; \
             eval \"$(scripts/services.sh env)\"` and run `cargo test -p stream-relay` again"
        )
    })
}

/// A unique name.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// One invoke the fake endpoint received.
#[derive(Clone, Debug)]
pub struct Call {
    pub function: String,
    pub invocation_type: Option<String>,
    pub event: Value,
}

impl Call {
    /// The event's records.
    pub fn records(&self) -> &Vec<Value> {
        self.event["Records"].as_array().expect("Records")
    }

    /// The `seq` of each record's NewImage.
    pub fn seqs(&self) -> Vec<u64> {
        self.records()
            .iter()
            .map(|r| {
                r["dynamodb"]["NewImage"]["seq"]["N"]
                    .as_str()
                    .expect("seq")
                    .parse()
                    .expect("a number")
            })
            .collect()
    }
}

/// What the fake endpoint answers: status, `X-Amz-Function-Error`, body.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub function_error: Option<&'static str>,
    pub body: Value,
}

impl Answer {
    pub fn ok(body: Value) -> Self {
        Self {
            status: 200,
            function_error: None,
            body,
        }
    }

    pub fn function_error(message: &str) -> Self {
        Self {
            status: 200,
            function_error: Some("Unhandled"),
            body: json!({"errorType": "Error", "errorMessage": message}),
        }
    }

    pub fn server_error() -> Self {
        Self {
            status: 500,
            function_error: None,
            body: json!({"Type": "Service", "message": "the fake endpoint failed"}),
        }
    }
}

type Rule = Box<dyn Fn(&Call, usize) -> Answer + Send + Sync>;

/// `POST /2015-03-31/functions/{name}/invocations` on 127.0.0.1, recording each event and
/// answering from a rule (the call and its index).
pub struct FakeLambda {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLambda {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLambda {
    pub async fn start(rule: impl Fn(&Call, usize) -> Answer + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Rule> = Arc::new(Box::new(rule));
        let recorded = calls.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (calls, rule) = (recorded.clone(), rule.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (calls, rule) = (calls.clone(), rule.clone());
                        async move { Ok::<_, Infallible>(answer(request, &calls, &rule).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, calls, task }
    }

    /// The invokes so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the calls (at most 30 s), then `settle` more, and returns
    /// the calls.
    pub async fn wait_for(&self, done: impl Fn(&[Call]) -> bool, settle: Duration) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&self.calls()) {
            assert!(
                Instant::now() < deadline,
                "timed out; calls so far: {:#?}",
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(settle).await;
        self.calls()
    }
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    calls: &Mutex<Vec<Call>>,
    rule: &Rule,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let function = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(str::to_owned);
    let (Some(function), true) = (function, request.method() == hyper::Method::POST) else {
        return Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
    };
    let invocation_type = request
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let call = Call {
        function,
        invocation_type,
        event: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let answer = {
        let mut calls = calls.lock().unwrap();
        let answer = rule(&call, calls.len());
        calls.push(call);
        answer
    };
    let mut response = Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .header("x-amz-executed-version", "$LATEST");
    if let Some(error) = answer.function_error {
        response = response.header("x-amz-function-error", error);
    }
    if answer.status >= 500 {
        response = response.header("x-amzn-errortype", "ServiceException");
    }
    response
        .body(Full::new(Bytes::from(answer.body.to_string())))
        .unwrap()
}

/// Clients on DynamoDB Local, invoking at `lambda`.
pub async fn clients(lambda: &str) -> Clients {
    Clients::new(&Endpoints {
        dynamodb: Some(dynamodb_endpoint()),
        dynamodb_streams: None,
        lambda: Some(lambda.to_owned()),
    })
    .await
}

/// A new table of the data model (PK, SK) with a NEW_IMAGE stream; its name.
pub async fn table_with_stream(clients: &Clients) -> String {
    let table = unique("relay-test");
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    clients
        .dynamodb
        .create_table()
        .table_name(&table)
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range))
        .attribute_definitions(attribute("PK"))
        .attribute_definitions(attribute("SK"))
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateTable on DynamoDB Local");
    table
}

pub fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A message item as the session store writes it (`shared::adapters::dynamodb::items`).
pub fn message(
    user: &str,
    session: &str,
    seq: u64,
    role: &str,
    text: &str,
) -> HashMap<String, AttributeValue> {
    let content = json!([{"type": "text", "text": text}]).to_string();
    HashMap::from([
        (
            "PK".to_owned(),
            s(&format!("USER#{user}#SESSION#{session}")),
        ),
        ("SK".to_owned(), s(&format!("MSG#{seq:010}"))),
        ("seq".to_owned(), n(seq)),
        ("turn".to_owned(), n(seq.div_ceil(2))),
        ("role".to_owned(), s(role)),
        ("content".to_owned(), s(&content)),
        ("created_at".to_owned(), s("2026-05-01T10:00:00Z")),
        ("expires_at".to_owned(), n(1_780_221_600)),
    ])
}

/// Writes one item.
pub async fn put(clients: &Clients, table: &str, item: HashMap<String, AttributeValue>) {
    clients
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .expect("PutItem");
}

/// The contract's filter file.
pub fn contract_filter() -> stream_relay::Filter {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../functions/memory-extractor/stream-filter.json"
    );
    stream_relay::Filter::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}
