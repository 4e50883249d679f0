//! Log, `Debug` and `Display` output never contains a client secret, password, token, two-factor code or FTP
//! password.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use brightbox_api::secrecy::SecretString;
use brightbox_api::{AccountId, Client, RetryConfig};
use common::*;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use wiremock::matchers::{body_string_contains, header, method, path};
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

const USER_PASSWORD: &str = "pw-Logged-7731";
const REFRESH_TOKEN: &str = "rfr-logged-55aa";
const OTP_CODE: &str = "771204";
const APP_SECRET: &str = "app-secret-logged-9c";

#[tokio::test(start_paused = true)]
async fn user_login_secrets_stay_out_of_output() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    let token_body = |token: &str, expires_in: u64| {
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": token,
            "refresh_token": REFRESH_TOKEN,
            "expires_in": expires_in
        }))
    };
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(token_body(SECOND_TOKEN, 7200))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("x-brightbox-otp", OTP_CODE))
        .respond_with(token_body(TOKEN, 30))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("x-brightbox-otp", "required")
                .set_body_json(json!({"error": "invalid_client"})),
        )
        .with_priority(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error_name": "internal"})))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let builder = Client::builder()
        .base_url(server.uri())
        .password_credentials("alex@example.com", USER_PASSWORD)
        .application("app-own01", APP_SECRET)
        .otp_callback(|| async { Some(SecretString::from(OTP_CODE)) })
        .no_timeout()
        .pool_idle_timeout(None)
        .retry(RetryConfig::disabled());
    let builder_debug = format!("{builder:?}");
    let client = builder.build().expect("client builds");
    client.accounts().list().await.expect("login with a code");
    // The 30 s token is renewed with the refresh token.
    tokio::time::sleep(Duration::from_secs(29)).await;
    client.accounts().list().await.expect("call after renewal");
    let error = client.images().list().await.expect_err("server error");

    assert_eq!(count_requests(&server, "POST", "/token").await, 3);
    let logs = captured.text();
    assert!(logs.contains("asking the callback"), "{logs}");
    let outputs = [
        logs,
        builder_debug,
        format!("{client:?}"),
        format!("{error:?}"),
        error_chain(&error),
    ];
    for output in &outputs {
        for secret in [
            USER_PASSWORD,
            REFRESH_TOKEN,
            OTP_CODE,
            APP_SECRET,
            TOKEN,
            SECOND_TOKEN,
        ] {
            assert!(
                !output.contains(secret),
                "{secret} appears in output:\n{output}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn unknown_wait_status_logged_as_warning() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images/img-3ikco"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(image_with("img-3ikco", "pondering")),
        )
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/images/img-3ikco"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(image_with("img-3ikco", "available")),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let id = "img-3ikco".parse().expect("valid id");
    client(&server)
        .images()
        .wait_until_available(&id, &brightbox_api::WaitOptions::default())
        .await
        .expect("image becomes available");

    let logs = captured.text();
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("unknown status while waiting"), "{logs}");
    assert!(logs.contains("status=\"pondering\""), "{logs}");
    // Three polls saw the same unknown status; only the first is a warning.
    assert_eq!(
        logs.matches("unknown status while waiting").count(),
        1,
        "{logs}"
    );
}
