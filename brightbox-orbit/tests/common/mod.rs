//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use brightbox_orbit::OrbitClient;
use md5::{Digest, Md5};
use secrecy::SecretString;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Token the tests' clients send; the mocks match on it.
pub const TOKEN: &str = "test-token-5f2a9c";
/// Account path the tests' storage URLs use.
pub const ACCOUNT_PATH: &str = "/v1/acc-12345";

/// Returns a client for `server`'s account URL using [`TOKEN`].
pub fn client(server: &MockServer) -> OrbitClient {
    client_for(&server.uri())
}

/// Returns a client for the account under `base` (scheme, host and port).
pub fn client_for(base: &str) -> OrbitClient {
    let url = format!("{base}{ACCOUNT_PATH}/")
        .parse()
        .expect("valid test URL");
    OrbitClient::builder()
        .storage_url(url)
        .token(SecretString::from(TOKEN))
        .build()
        .expect("client builds")
}

/// Mounts a catch-all 500 with the lowest priority, so any request no other mock expects fails loudly.
pub async fn mount_catch_all(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500).set_body_string("unexpected request in test"))
        .with_priority(u8::MAX)
        .mount(server)
        .await;
}

/// Asserts every request `server` received carried `X-Auth-Token: TOKEN`.
pub async fn assert_all_authenticated(server: &MockServer) {
    let requests = server.received_requests().await.expect("recording enabled");
    assert!(!requests.is_empty(), "the server received no requests");
    for request in requests {
        let token = request
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok());
        assert_eq!(
            token,
            Some(TOKEN),
            "{} {} lacks the token",
            request.method,
            request.url
        );
    }
}

/// Returns `len` deterministic bytes that do not compress well.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// Returns the hex MD5 of `data`.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}
