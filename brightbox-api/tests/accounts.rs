//! Account endpoints: get, list and the legacy FTP password reset.

mod common;

use brightbox_api::{AccountId, AccountStatus, Error};
use common::*;
use secrecy::ExposeSecret;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn account_id() -> AccountId {
    "acc-43ks4".parse().expect("valid id")
}

#[tokio::test]
async fn get_account_decodes_fields() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts/acc-43ks4"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ACCOUNT_JSON)))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let account = client(&server)
        .accounts()
        .get(&account_id())
        .await
        .expect("get succeeds");

    assert_eq!(account.id, account_id());
    assert_eq!(account.name.as_deref(), Some("Example Ltd"));
    assert_eq!(account.status, AccountStatus::Active);
    assert_eq!(account.ram_limit, Some(51200));
    assert_eq!(account.ram_used, Some(4096));
    assert_eq!(account.cloud_ips_limit, Some(5));
    assert_eq!(
        account.library_ftp_host.as_deref(),
        Some("ftp.library.gb1.brightbox.com")
    );
    assert_eq!(account.library_ftp_user.as_deref(), Some("acc-43ks4"));
    assert!(account.created_at.is_some());
}

#[tokio::test]
async fn list_accounts_keeps_unknown_status() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut second = fixture(ACCOUNT_JSON);
    second["id"] = json!("acc-xy9z0");
    second["status"] = json!("dormant");
    second["library_ftp_host"] = serde_json::Value::Null;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([fixture(ACCOUNT_JSON), second])),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let accounts = client(&server)
        .accounts()
        .list()
        .await
        .expect("list succeeds");

    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[1].id, "acc-xy9z0");
    assert_eq!(
        accounts[1].status,
        AccountStatus::Unknown("dormant".to_owned())
    );
    assert_eq!(accounts[1].library_ftp_host, None);
}

#[tokio::test]
async fn get_missing_account_is_not_found() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts/acc-43ks4"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("x-request-id", "req-404-acc")
                .set_body_json(
                    json!({"error_name": "missing_resource", "errors": ["Resource not found"]}),
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .accounts()
        .get(&account_id())
        .await
        .expect_err("account is missing");

    match &error {
        Error::NotFound { resource, api } => {
            assert_eq!(resource, "account acc-43ks4");
            assert_eq!(api.path, "/1.0/accounts/acc-43ks4");
            assert_eq!(api.request_id.as_deref(), Some("req-404-acc"));
            assert_eq!(api.error_name.as_deref(), Some("missing_resource"));
            assert_eq!(api.errors, vec!["Resource not found"]);
        }
        other => panic!("expected Error::NotFound, got {other:?}"),
    }
    assert_eq!(error.status(), Some(404));
}

#[tokio::test]
async fn reset_ftp_password_returns_credentials() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut body = fixture(ACCOUNT_JSON);
    body["library_ftp_host"] = json!("ftp.library.gb1.brightbox.com:2121");
    body["library_ftp_password"] = json!("Zq8-new-ftp-password");
    Mock::given(method("POST"))
        .and(path("/1.0/accounts/acc-43ks4/reset_ftp_password"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let credentials = client(&server)
        .accounts()
        .reset_ftp_password(&account_id())
        .await
        .expect("reset succeeds");

    assert_eq!(credentials.host, "ftp.library.gb1.brightbox.com:2121");
    assert_eq!(credentials.user, "acc-43ks4");
    assert_eq!(credentials.password.expose_secret(), "Zq8-new-ftp-password");
    let debug = format!("{credentials:?}");
    assert!(!debug.contains("Zq8-new-ftp-password"), "{debug}");
    assert!(debug.contains("acc-43ks4"), "{debug}");
}

#[tokio::test]
async fn reset_ftp_password_without_password_is_decode_error() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/accounts/acc-43ks4/reset_ftp_password"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ACCOUNT_JSON)))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .accounts()
        .reset_ftp_password(&account_id())
        .await
        .expect_err("the password is null");

    assert!(
        matches!(&error, Error::Decode { json_path, .. } if json_path == "library_ftp_password"),
        "{error:?}"
    );
}

#[tokio::test]
async fn reset_ftp_password_gone_is_service_retired() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/accounts/acc-43ks4/reset_ftp_password"))
        .respond_with(
            ResponseTemplate::new(410)
                .insert_header("x-request-id", "req-410-ftp")
                .set_body_json(
                    json!({"error_name": "gone", "errors": ["This feature has been removed"]}),
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .accounts()
        .reset_ftp_password(&account_id())
        .await
        .expect_err("the FTP service is retired");

    match &error {
        Error::FtpServiceRetired { account, api } => {
            assert_eq!(account.as_ref(), Some(&account_id()));
            assert_eq!(api.status, 410);
            assert_eq!(api.path, "/1.0/accounts/acc-43ks4/reset_ftp_password");
            assert_eq!(api.request_id.as_deref(), Some("req-410-ftp"));
            assert_eq!(api.error_name.as_deref(), Some("gone"));
            assert_eq!(api.errors, vec!["This feature has been removed"]);
        }
        other => panic!("expected Error::FtpServiceRetired, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("retired"), "{message}");
    assert!(message.contains("ImageSource::HttpUrl"), "{message}");
    assert!(message.contains("http_url"), "{message}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn current_account_uses_scoped_route() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ACCOUNT_JSON)))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let account = client(&server)
        .accounts()
        .current()
        .await
        .expect("current account");

    assert_eq!(account.id, account_id());
}

#[tokio::test]
async fn scoped_reset_gone_is_service_retired() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/account/reset_ftp_password"))
        .respond_with(ResponseTemplate::new(410).set_body_json(
            json!({"error_name": "gone", "errors": ["This feature has been removed"]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .accounts()
        .reset_ftp_password_current()
        .await
        .expect_err("the FTP service is retired");

    match &error {
        Error::FtpServiceRetired { account, api } => {
            assert_eq!(account, &None);
            assert_eq!(api.path, "/1.0/account/reset_ftp_password");
        }
        other => panic!("expected Error::FtpServiceRetired, got {other:?}"),
    }
    assert!(error.to_string().contains("http_url"), "{error}");
}

#[tokio::test]
async fn scoped_reset_returns_credentials() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut reset = fixture(ACCOUNT_JSON);
    reset["library_ftp_password"] = json!("fresh-ftp-pw");
    Mock::given(method("POST"))
        .and(path("/1.0/account/reset_ftp_password"))
        .respond_with(ResponseTemplate::new(200).set_body_json(reset))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let credentials = client(&server)
        .accounts()
        .reset_ftp_password_current()
        .await
        .expect("reset succeeds");

    assert_eq!(credentials.user, "acc-43ks4");
    assert_eq!(credentials.password.expose_secret(), "fresh-ftp-pw");
    assert!(!format!("{credentials:?}").contains("fresh-ftp-pw"));
}
