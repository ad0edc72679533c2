//! SigV4 for CloudWatch's OTLP endpoint (`https://xray.<region>.amazonaws.com/v1/traces`,
//! service `xray`), with the function's own credentials: no collector in between.

use std::time::SystemTime;

use aws_credential_types::{provider::ProvideCredentials, Credentials};
use aws_sigv4::{
    http_request::{sign, SignableBody, SignableRequest, SigningSettings},
    sign::v4,
};

/// Where and as what a request is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigV4Target {
    /// The endpoint's region.
    pub region: String,
    /// The signing name: `xray`.
    pub service: String,
}

/// Signs `request` in place: `x-amz-date`, `authorization` and, with temporary credentials
/// (as Lambda's are), `x-amz-security-token`. Errors say what failed, never a credential.
pub fn sign_request(
    request: &mut http::Request<Vec<u8>>,
    credentials: Credentials,
    target: &SigV4Target,
    time: SystemTime,
) -> Result<(), String> {
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name(&target.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| format!("signing parameters: {error}"))?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|error| format!("the request cannot be signed: {error}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|error| format!("signing failed: {error}"))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// The function's current credentials from its provider (on Lambda, the environment's).
pub async fn credentials(provider: &dyn ProvideCredentials) -> Result<Credentials, String> {
    provider
        .provide_credentials()
        .await
        .map_err(|error| format!("no credentials to sign with: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_carries_a_sigv4_authorization_for_xray() {
        let mut request = http::Request::post("https://xray.eu-west-1.amazonaws.com/v1/traces")
            .header("content-type", "application/x-protobuf")
            .body(vec![1, 2, 3])
            .unwrap();
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token".into()),
            None,
            "test",
        );
        let target = SigV4Target {
            region: "eu-west-1".into(),
            service: "xray".into(),
        };
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600);
        sign_request(&mut request, credentials, &target, time).unwrap();
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let authorization = header("authorization");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/eu-west-1/xray/aws4_request, SignedHeaders="
            ),
            "{authorization}"
        );
        assert!(authorization.contains("content-type"), "{authorization}");
        assert!(authorization.contains("host"), "{authorization}");
        assert!(authorization.contains(", Signature="), "{authorization}");
        assert!(
            !authorization.contains("wJalrXUtnFEMI"),
            "the secret key never appears"
        );
        assert_eq!(header("x-amz-date"), "20260101T000000Z");
        assert_eq!(header("x-amz-security-token"), "session-token");
    }
}
