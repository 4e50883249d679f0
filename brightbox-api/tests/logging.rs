//! Log output at TRACE level never contains the client secret, access tokens or the FTP password.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use brightbox_api::AccountId;
use common::*;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FTP_PASSWORD: &str = "Zq8-logged-ftp-password";

/// Log sink that appends every formatted event to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .map(|buffer| buffer.clone())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn trace_logs_contain_no_secrets() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(TOKEN, 7200))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(SECOND_TOKEN, 7200))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts/acc-43ks4"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_token"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts/acc-43ks4"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ACCOUNT_JSON)))
        .mount(&server)
        .await;
    let mut reset = fixture(ACCOUNT_JSON);
    reset["library_ftp_password"] = json!(FTP_PASSWORD);
    Mock::given(method("POST"))
        .and(path("/1.0/accounts/acc-43ks4/reset_ftp_password"))
        .respond_with(ResponseTemplate::new(200).set_body_json(reset))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let account: AccountId = "acc-43ks4".parse().expect("valid id");
    let client = client(&server);
    client
        .accounts()
        .get(&account)
        .await
        .expect("get succeeds after a replay");
    client
        .accounts()
        .reset_ftp_password(&account)
        .await
        .expect("reset succeeds");

    let logs = captured.text();
    assert!(logs.contains("obtained an access token"), "{logs}");
    assert!(logs.contains("replaying the request once"), "{logs}");
    for secret in [
        CLIENT_SECRET,
        TOKEN,
        SECOND_TOKEN,
        FTP_PASSWORD,
        &BASIC_AUTH[6..],
    ] {
        assert!(
            !logs.contains(secret),
            "{secret} appears in the logs:\n{logs}"
        );
    }
}
