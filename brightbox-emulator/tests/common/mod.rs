//! Helpers shared by the integration tests: a started emulator, an API token and an
//! FTPS session that trusts the emulator's CA.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use brightbox_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::tokio_rustls::rustls::pki_types::CertificateDer;
use suppaftp::tokio_rustls::rustls::pki_types::pem::PemObject;
use suppaftp::tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use suppaftp::types::FileType;

/// Starts an emulator whose images stay `creating` for `delay`.
pub async fn start(delay: Duration) -> Emulator {
    Emulator::start_with(EmulatorConfig::default().registration_delay(delay))
        .await
        .expect("emulator starts")
}

/// Requests an access token with HTTP Basic client authentication.
pub async fn token(http: &reqwest::Client, emulator: &Emulator) -> String {
    let response = http
        .post(format!("{}token", emulator.api_url()))
        .basic_auth(emulator.client_id(), Some(emulator.client_secret()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request is sent");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("token body is JSON");
    body["access_token"]
        .as_str()
        .expect("access_token is a string")
        .to_owned()
}

/// Calls `POST /1.0/accounts/{id}/reset_ftp_password` and returns the new password.
pub async fn reset_ftp_password(
    http: &reqwest::Client,
    emulator: &Emulator,
    token: &str,
) -> String {
    let response = http
        .post(format!(
            "{}1.0/accounts/{}/reset_ftp_password",
            emulator.api_url(),
            emulator.account_id()
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("reset request is sent");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("account body is JSON");
    body["library_ftp_password"]
        .as_str()
        .expect("library_ftp_password is a string")
        .to_owned()
}

/// A TLS connector that trusts only the PEM certificates in `ca_pem`.
pub fn connector(ca_pem: &str) -> AsyncRustlsConnector {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(certificate.expect("CA PEM parses"))
            .expect("CA certificate is accepted as a root");
    }
    connector_with_roots(roots)
}

/// A TLS connector with the given trust anchors and the aws-lc-rs provider.
pub fn connector_with_roots(roots: RootCertStore) -> AsyncRustlsConnector {
    let config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions are supported")
    .with_root_certificates(roots)
    .with_no_client_auth();
    AsyncRustlsConnector::from(suppaftp::tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Connects, upgrades the control connection with AUTH TLS, but does not log in.
pub async fn secure_session(emulator: &Emulator) -> AsyncRustlsFtpStream {
    AsyncRustlsFtpStream::connect(emulator.ftp_addr())
        .await
        .expect("control connection opens")
        .into_secure(connector(emulator.ca_certificate_pem()), "127.0.0.1")
        .await
        .expect("TLS handshake succeeds with the emulator CA")
}

/// Connects over TLS, logs in with `password` and switches to binary transfers.
pub async fn login(emulator: &Emulator, password: &str) -> AsyncRustlsFtpStream {
    let mut ftp = secure_session(emulator).await;
    ftp.login(emulator.ftp_user(), password)
        .await
        .expect("login succeeds");
    ftp.transfer_type(FileType::Binary)
        .await
        .expect("binary mode is accepted");
    ftp
}

/// Returns the FTP reply code carried by an error, if the server sent one.
///
/// suppaftp maps codes it has no name for (such as 534) to 0, so the code is read from
/// the reply text.
pub fn reply_code(error: &suppaftp::FtpError) -> Option<u32> {
    match error {
        suppaftp::FtpError::UnexpectedResponse(response) => String::from_utf8_lossy(&response.body)
            .get(..3)
            .and_then(|code| code.parse().ok()),
        _ => None,
    }
}

/// Builds a qcow2 file: a version-3 header with `virtual_size` and zero padding up to `len`.
pub fn qcow2_file(virtual_size: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0_u8; len.max(32)];
    bytes[..4].copy_from_slice(b"QFI\xfb");
    bytes[4..8].copy_from_slice(&3_u32.to_be_bytes());
    bytes[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    bytes
}

/// A JSON API response: status, headers and body (`Value::Null` when the body is empty).
pub struct ApiResponse {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// Sends `method` to `{api_url}1.0/{path}` with the token and an optional JSON body.
pub async fn call(
    http: &reqwest::Client,
    emulator: &Emulator,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> ApiResponse {
    let mut request = http
        .request(method, format!("{}1.0/{path}", emulator.api_url()))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("API request is sent");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("API body is read");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("API body is JSON")
    };
    ApiResponse {
        status,
        headers,
        body,
    }
}

/// Writes `bytes` to `incoming/<name>` and registers it; returns the new image id.
pub async fn register_file(
    http: &reqwest::Client,
    emulator: &Emulator,
    token: &str,
    name: &str,
    bytes: &[u8],
) -> String {
    std::fs::write(emulator.incoming_dir().join(name), bytes).expect("upload is written");
    let response = call(
        http,
        emulator,
        token,
        reqwest::Method::POST,
        "images",
        Some(serde_json::json!({"arch": "x86_64", "source": name, "username": "core"})),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.body);
    response.body["id"]
        .as_str()
        .expect("image id is a string")
        .to_owned()
}

/// Polls `GET /1.0/{collection}/{id}` every 50 ms until its status is `status`, for up
/// to five seconds, and returns the last body.
pub async fn wait_for_status(
    http: &reqwest::Client,
    emulator: &Emulator,
    token: &str,
    collection: &str,
    id: &str,
    status: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = call(
            http,
            emulator,
            token,
            reqwest::Method::GET,
            &format!("{collection}/{id}"),
            None,
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
        if response.body["status"] == status {
            return response.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{collection}/{id} is still {} instead of {status}",
            response.body["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Returns the `errors` array of an API error body as strings.
pub fn error_messages(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .expect("errors is an array")
        .iter()
        .map(|error| error.as_str().expect("each error is a string").to_owned())
        .collect()
}
