//! Helpers shared by the integration tests: credentials, fixtures and standard mocks.

// Each test file compiles this module on its own and uses a different subset of it.
#![allow(dead_code)]

use std::time::Duration;

use brightbox_api::{Client, ClientBuilder, RetryConfig};
use serde_json::{Value, json};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) const CLIENT_ID: &str = "cli-tst01";
pub(crate) const CLIENT_SECRET: &str = "s3cr3t-client-secret";
/// `Basic` + base64 of `cli-tst01:s3cr3t-client-secret`.
pub(crate) const BASIC_AUTH: &str = "Basic Y2xpLXRzdDAxOnMzY3IzdC1jbGllbnQtc2VjcmV0";
pub(crate) const TOKEN: &str = "tok-first-9f8e7d6c";
pub(crate) const SECOND_TOKEN: &str = "tok-second-1a2b3c4d";

pub(crate) const IMAGE_JSON: &str = include_str!("../fixtures/image.json");
pub(crate) const IMAGE_SPARSE_JSON: &str = include_str!("../fixtures/image_sparse.json");
pub(crate) const ACCOUNT_JSON: &str = include_str!("../fixtures/account.json");
pub(crate) const SERVER_JSON: &str = include_str!("../fixtures/server.json");
pub(crate) const VOLUME_JSON: &str = include_str!("../fixtures/volume.json");
pub(crate) const SERVER_TYPES_JSON: &str = include_str!("../fixtures/server_types.json");
pub(crate) const ZONES_JSON: &str = include_str!("../fixtures/zones.json");

/// Parses a fixture; the fixtures are checked-in valid JSON.
pub(crate) fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is valid JSON")
}

/// Returns the image fixture with `id` and `status` replaced.
pub(crate) fn image_with(id: &str, status: &str) -> Value {
    let mut image = fixture(IMAGE_JSON);
    image["id"] = json!(id);
    image["url"] = json!(format!("https://api.gb1.brightbox.com/1.0/images/{id}"));
    image["status"] = json!(status);
    image
}

/// Returns the server fixture with `status` replaced.
pub(crate) fn server_with(status: &str) -> Value {
    let mut server = fixture(SERVER_JSON);
    server["status"] = json!(status);
    server
}

/// Returns the volume fixture with `status` replaced.
pub(crate) fn volume_with(status: &str) -> Value {
    let mut volume = fixture(VOLUME_JSON);
    volume["status"] = json!(status);
    volume
}

/// Builder pointed at `server` with the test credentials, no timers in the HTTP client, and fast retries.
///
/// The request timeout and the pool idle check are off because with paused tokio time the runtime jumps to the
/// next pending timer while it waits for the mock server, which runs on its own thread.
pub(crate) fn builder(server: &MockServer) -> ClientBuilder {
    Client::builder()
        .base_url(server.uri())
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .no_timeout()
        .pool_idle_timeout(None)
        .retry(
            RetryConfig::default()
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_millis(50)),
        )
}

pub(crate) fn client(server: &MockServer) -> Client {
    builder(server).build().expect("test client builds")
}

pub(crate) fn token_response(token: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "infrastructure, orbit"
    }))
}

/// Mounts a token endpoint that always returns [`TOKEN`] with a 2-hour lifetime.
pub(crate) async fn mount_token(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(TOKEN, 7200))
        .named("token")
        .mount(server)
        .await;
}

/// Mounts a mock that returns 500 for every request no other mock matches, so that stray requests fail.
///
/// Mount it after all other mocks.
pub(crate) async fn mount_catch_all(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500).set_body_string("no mock matches this request"))
        .with_priority(u8::MAX)
        .named("catch-all")
        .mount(server)
        .await;
}

/// Counts the requests the server received for `method` and `url_path`.
pub(crate) async fn count_requests(server: &MockServer, method: &str, url_path: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|request| request.method.as_str() == method && request.url.path() == url_path)
        .count()
}

/// Renders an error and all its sources, the way an application log shows it.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
