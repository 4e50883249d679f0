//! The password grant of `POST /token` for the emulated user, with its
//! two-factor code in `X-Brightbox-OTP`.

mod common;

use std::time::Duration;

use brightbox_emulator::{CLI_APP_ID, Emulator, USER_NAME, USER_OTP_CODE, USER_PASSWORD};
use reqwest::StatusCode;
use serde_json::Value;

/// Secret of the Brightbox CLI's public application, as its source publishes it.
const CLI_APP_SECRET: &str = "mocbuipbiaa6k6c";

/// Sends a password grant as the CLI's application, with an optional code.
async fn password_grant(
    http: &reqwest::Client,
    emulator: &Emulator,
    password: &str,
    code: Option<&str>,
) -> reqwest::Response {
    let mut request = http
        .post(format!("{}token", emulator.api_url()))
        .basic_auth(CLI_APP_ID, Some(CLI_APP_SECRET))
        .form(&[
            ("grant_type", "password"),
            ("username", USER_NAME),
            ("password", password),
        ]);
    if let Some(code) = code {
        request = request.header("X-Brightbox-OTP", code);
    }
    request.send().await.expect("token request is sent")
}

fn otp_header(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("x-brightbox-otp")
        .and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn password_grant_without_code_asks_for_one() {
    let emulator = common::start(Duration::from_millis(100)).await;
    let http = reqwest::Client::new();

    let response = password_grant(&http, &emulator, USER_PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(otp_header(&response), Some("required"));
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["error"], "invalid_grant");
    emulator.shutdown().await;
}

#[tokio::test]
async fn password_grant_with_code_issues_usable_token() {
    let emulator = common::start(Duration::from_millis(100)).await;
    let http = reqwest::Client::new();

    let response = password_grant(&http, &emulator, USER_PASSWORD, Some(USER_OTP_CODE)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().expect("access token");

    let accounts = http
        .get(format!("{}1.0/accounts", emulator.api_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("accounts request is sent");
    assert_eq!(accounts.status(), StatusCode::OK);
    emulator.shutdown().await;
}

#[tokio::test]
async fn password_grant_rejects_wrong_code_and_password() {
    let emulator = common::start(Duration::from_millis(100)).await;
    let http = reqwest::Client::new();

    let wrong_code = password_grant(&http, &emulator, USER_PASSWORD, Some("000000")).await;
    assert_eq!(wrong_code.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(otp_header(&wrong_code), Some("required"));

    let wrong_password =
        password_grant(&http, &emulator, "not-the-password", Some(USER_OTP_CODE)).await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(otp_header(&wrong_password), None);
    let body: Value = wrong_password.json().await.expect("JSON body");
    assert_eq!(body["error"], "invalid_grant");
    emulator.shutdown().await;
}

#[tokio::test]
async fn cli_application_cannot_use_client_credentials() {
    let emulator = common::start(Duration::from_millis(100)).await;
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{}token", emulator.api_url()))
        .basic_auth(CLI_APP_ID, Some(CLI_APP_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request is sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["error"], "invalid_client");
    emulator.shutdown().await;
}
