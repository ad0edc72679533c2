use super::*;

fn config(vars: &[(&'static str, &str)]) -> Result<Option<OtelConfig>, OtelConfigError> {
    OtelConfig::read(|name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    })
}

#[test]
fn no_endpoint_is_no_exporter() {
    assert!(config(&[("OTEL_SERVICE_NAME", "x")]).unwrap().is_none());
    assert!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])
        .unwrap()
        .is_none());
}

#[test]
fn the_base_endpoint_gets_the_traces_path_and_the_traces_endpoint_is_taken_as_is() {
    let base = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")])
        .unwrap()
        .unwrap();
    assert_eq!(base.endpoint.as_str(), "http://127.0.0.1:4318/v1/traces");
    assert_eq!(base.timeout, DEFAULT_TIMEOUT);
    assert!(base.sigv4.is_none());
    assert!(!base.capture_content);
    let traces = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:9999/custom",
        ),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(traces.endpoint.as_str(), "http://collector:9999/custom");
}

#[test]
fn headers_timeout_service_and_content_are_read() {
    let config = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example.com"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-api-key=abc%3D%3D, x-team = blue",
        ),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "60000"),
        ("OTEL_SERVICE_NAME", "agent"),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "TRUE"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(config.headers.len(), 2);
    assert_eq!(config.headers[0].0, "x-api-key");
    assert_eq!(config.headers[0].1, "abc==");
    assert!(config.headers[0].1.is_sensitive());
    assert_eq!(config.headers[1].1, "blue");
    assert_eq!(config.timeout, MAX_TIMEOUT, "capped");
    assert_eq!(config.service_name, "agent");
    assert!(config.capture_content);
}

#[test]
fn bad_settings_name_their_variable_and_never_quote_a_header_value() {
    let error = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example.com"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer se\ncret",
        ),
    ])
    .unwrap_err();
    assert_eq!(error.name, "OTEL_EXPORTER_OTLP_HEADERS");
    assert!(!error.to_string().contains("se"), "{error}");
    for (name, value) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_SIGV4", "maybe"),
    ] {
        let error =
            config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"), (name, value)]).unwrap_err();
        assert_eq!(error.name, name);
    }
    let error = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x")]).unwrap_err();
    assert_eq!(error.name, "OTEL_EXPORTER_OTLP_ENDPOINT");
}

#[test]
fn sigv4_is_on_for_cloudwatch_by_default_with_the_endpoints_region() {
    let xray = config(&[(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "https://xray.eu-west-1.amazonaws.com/v1/traces",
    )])
    .unwrap()
    .unwrap();
    assert_eq!(
        xray.sigv4,
        Some(SigV4Target {
            region: "eu-west-1".into(),
            service: "xray".into()
        })
    );
    let off = config(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://xray.eu-west-1.amazonaws.com/v1/traces",
        ),
        ("OTEL_EXPORTER_OTLP_SIGV4", "off"),
    ])
    .unwrap()
    .unwrap();
    assert!(off.sigv4.is_none());
    let forced = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_EXPORTER_OTLP_SIGV4", "on"),
        ("AWS_REGION", "us-east-2"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(forced.sigv4.unwrap().region, "us-east-2");
    assert!(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_EXPORTER_OTLP_SIGV4", "on"),
    ])
    .is_err());
}
