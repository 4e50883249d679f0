//! User logins: the password grant, refresh tokens and two-factor codes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brightbox_api::secrecy::SecretString;
use brightbox_api::{Client, ClientBuilder, Error, RetryConfig};
use common::*;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const USERNAME: &str = "alex@example.com";
const PASSWORD: &str = "correct-horse-battery";
const REFRESH_TOKEN: &str = "rfr-7c6b5a49";
const OTP_CODE: &str = "493817";
/// `Basic` + base64 of `app-12345:mocbuipbiaa6k6c`, the Brightbox CLI's public application.
const CLI_APP_BASIC: &str = "Basic YXBwLTEyMzQ1Om1vY2J1aXBiaWFhNms2Yw==";
/// `Basic` + base64 of `app-own01:app-s3cret-value`.
const OWN_APP_BASIC: &str = "Basic YXBwLW93bjAxOmFwcC1zM2NyZXQtdmFsdWU=";

fn user_builder(server: &MockServer) -> ClientBuilder {
    Client::builder()
        .base_url(server.uri())
        .password_credentials(USERNAME, PASSWORD)
        .no_timeout()
        .pool_idle_timeout(None)
        .retry(
            RetryConfig::default()
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_millis(50)),
        )
}

fn user_token(token: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "refresh_token": REFRESH_TOKEN,
        "expires_in": expires_in,
        "scope": "infrastructure, orbit"
    }))
}

fn otp_required() -> ResponseTemplate {
    ResponseTemplate::new(401)
        .insert_header("x-brightbox-otp", "required")
        .set_body_json(
            json!({"error": "invalid_client", "error_description": "Two factor code required"}),
        )
}

async fn mount_accounts(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([fixture(ACCOUNT_JSON)])))
        .mount(server)
        .await;
}

/// Counts token requests whose form body contains `fragment`.
async fn count_token_bodies(server: &MockServer, fragment: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/token")
        .filter(|r| String::from_utf8_lossy(&r.body).contains(fragment))
        .count()
}

#[tokio::test]
async fn password_grant_uses_cli_application_by_default() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("authorization", CLI_APP_BASIC))
        .and(body_string_contains("grant_type=password"))
        .and(body_string_contains("username=alex%40example.com"))
        .and(body_string_contains("password=correct-horse-battery"))
        .respond_with(user_token(TOKEN, 7200))
        .expect(1)
        .mount(&server)
        .await;
    mount_accounts(&server).await;
    mount_catch_all(&server).await;

    let client = user_builder(&server).build().expect("client builds");
    let accounts = client.accounts().list().await.expect("list succeeds");

    assert_eq!(accounts.len(), 1);
    assert_eq!(client.client_id(), "app-12345");
}

#[tokio::test]
async fn password_grant_with_own_application() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("authorization", OWN_APP_BASIC))
        .and(body_string_contains("grant_type=password"))
        .respond_with(user_token(TOKEN, 7200))
        .expect(1)
        .mount(&server)
        .await;
    mount_accounts(&server).await;
    mount_catch_all(&server).await;

    let client = user_builder(&server)
        .application("app-own01", "app-s3cret-value")
        .build()
        .expect("client builds");
    client.accounts().list().await.expect("list succeeds");
}

#[tokio::test(start_paused = true)]
async fn expired_token_renewed_with_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=password"))
        .respond_with(user_token(TOKEN, 60))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(
            format!("refresh_token={REFRESH_TOKEN}").as_str(),
        ))
        .respond_with(user_token(SECOND_TOKEN, 7200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .and(header(
            "authorization",
            format!("Bearer {SECOND_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = user_builder(&server).build().expect("client builds");
    client.accounts().list().await.expect("first call");
    // The 60 s token is renewed 6 s before it expires.
    tokio::time::sleep(Duration::from_secs(55)).await;
    client.accounts().list().await.expect("call after renewal");

    assert_eq!(count_token_bodies(&server, "grant_type=password").await, 1);
    assert_eq!(
        count_token_bodies(&server, "grant_type=refresh_token").await,
        1
    );
}

#[tokio::test]
async fn rejected_token_replayed_after_refresh() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=password"))
        .respond_with(user_token(TOKEN, 7200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(user_token(SECOND_TOKEN, 7200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_token"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .and(header(
            "authorization",
            format!("Bearer {SECOND_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = user_builder(&server).build().expect("client builds");
    client
        .accounts()
        .list()
        .await
        .expect("replay with refreshed token");
}

#[tokio::test]
async fn rejected_refresh_token_falls_back_to_password() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=password"))
        .respond_with(user_token(TOKEN, 7200))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=password"))
        .respond_with(user_token(SECOND_TOKEN, 7200))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": "The refresh token has expired"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_token"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .and(header(
            "authorization",
            format!("Bearer {SECOND_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = user_builder(&server).build().expect("client builds");
    client
        .accounts()
        .list()
        .await
        .expect("password grant again");

    assert_eq!(count_token_bodies(&server, "grant_type=password").await, 2);
    assert_eq!(
        count_token_bodies(&server, "grant_type=refresh_token").await,
        1
    );
}

#[tokio::test]
async fn wrong_password_is_one_typed_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": "The provided authorization grant is invalid"
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = user_builder(&server)
        .build()
        .expect("client builds")
        .accounts()
        .list()
        .await
        .expect_err("password is wrong");

    let Error::Unauthenticated(api) = &error else {
        panic!("expected Error::Unauthenticated, got {error:?}");
    };
    assert_eq!(api.oauth_error.as_deref(), Some("invalid_grant"));
    let text = format!("{} {:?}", error_chain(&error), error);
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn otp_required_without_callback_is_typed_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(otp_required().insert_header("x-request-id", "req-otp-1"))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = user_builder(&server)
        .build()
        .expect("client builds")
        .accounts()
        .list()
        .await
        .expect_err("a code is required");

    match &error {
        Error::TwoFactorRequired {
            code_rejected,
            request_id,
        } => {
            assert!(!code_rejected);
            assert_eq!(request_id.as_deref(), Some("req-otp-1"));
        }
        other => panic!("expected Error::TwoFactorRequired, got {other:?}"),
    }
    assert!(error.to_string().contains("otp_callback"), "{error}");
}

#[tokio::test]
async fn otp_callback_code_sent_in_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("x-brightbox-otp", OTP_CODE))
        .respond_with(user_token(TOKEN, 7200))
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(otp_required())
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    mount_accounts(&server).await;
    mount_catch_all(&server).await;

    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let client = user_builder(&server)
        .otp_callback(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Some(SecretString::from(OTP_CODE))
            }
        })
        .build()
        .expect("client builds");

    // Concurrent calls share one token request, so the callback runs once.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let client = client.clone();
        tasks.spawn(async move { client.accounts().list().await.map(|a| a.len()) });
    }
    while let Some(joined) = tasks.join_next().await {
        assert_eq!(joined.expect("task completes").expect("list succeeds"), 1);
    }

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(count_requests(&server, "POST", "/token").await, 2);
}

#[tokio::test]
async fn blocking_otp_callback_works() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("x-brightbox-otp", OTP_CODE))
        .respond_with(user_token(TOKEN, 7200))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(otp_required())
        .with_priority(2)
        .mount(&server)
        .await;
    mount_accounts(&server).await;
    mount_catch_all(&server).await;

    let client = user_builder(&server)
        .otp_callback_blocking(|| Some(SecretString::from(OTP_CODE)))
        .build()
        .expect("client builds");
    client.accounts().list().await.expect("list succeeds");
}

#[tokio::test]
async fn rejected_otp_code_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(otp_required())
        .expect(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = user_builder(&server)
        .otp_callback(|| async { Some(SecretString::from("000000")) })
        .build()
        .expect("client builds")
        .accounts()
        .list()
        .await
        .expect_err("code is wrong");

    assert!(
        matches!(
            error,
            Error::TwoFactorRequired {
                code_rejected: true,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn declined_otp_callback_sends_no_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(otp_required())
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = user_builder(&server)
        .otp_callback(|| async { None })
        .build()
        .expect("client builds")
        .accounts()
        .list()
        .await
        .expect_err("no code available");

    assert!(
        matches!(
            error,
            Error::TwoFactorRequired {
                code_rejected: false,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn build_checks_user_credentials() {
    let error = Client::builder()
        .password_credentials(USERNAME, "")
        .build()
        .expect_err("empty password");
    assert!(
        matches!(
            error,
            Error::MissingCredentials {
                missing: "password"
            }
        ),
        "{error:?}"
    );

    let error = Client::builder()
        .password(PASSWORD)
        .build()
        .expect_err("no user name");
    assert!(
        matches!(
            error,
            Error::MissingCredentials {
                missing: "username"
            }
        ),
        "{error:?}"
    );

    let error = Client::builder()
        .password_credentials(USERNAME, PASSWORD)
        .application("cli-abc12", "secret")
        .build()
        .expect_err("an API client id is not an application id");
    assert!(
        matches!(&error, Error::InvalidId(e) if e.expected_prefix() == "app"),
        "{error:?}"
    );

    let error = Client::builder()
        .client_credentials("app-12345", "secret")
        .build()
        .expect_err("an application id is not an API client id");
    assert!(
        matches!(&error, Error::InvalidId(e) if e.expected_prefix() == "cli"),
        "{error:?}"
    );
}
