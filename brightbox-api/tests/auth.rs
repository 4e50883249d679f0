//! OAuth 2.0 token handling: the grant request, caching, renewal, replay after `invalid_token`, and token errors.

mod common;

use std::time::Duration;

use brightbox_api::{AccountId, Client, Error};
use common::*;
use serde_json::json;
use wiremock::matchers::{body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn mount_images_for(server: &MockServer, token: &str) {
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([fixture(IMAGE_JSON)])))
        .mount(server)
        .await;
}

#[tokio::test]
async fn token_request_uses_form_and_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("authorization", BASIC_AUTH))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("grant_type=client_credentials"))
        .respond_with(token_response(TOKEN, 7200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([fixture(IMAGE_JSON)])))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let images = client(&server)
        .images()
        .list()
        .await
        .expect("list succeeds");

    assert_eq!(images.len(), 1);
    assert_eq!(images[0].id, "img-3ikco");
}

#[tokio::test]
async fn token_cached_across_calls() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(TOKEN, 7200))
        .expect(1)
        .mount(&server)
        .await;
    mount_images_for(&server, TOKEN).await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([fixture(ACCOUNT_JSON)])))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = client(&server);
    let clone = client.clone();
    client.images().list().await.expect("first call");
    client.accounts().list().await.expect("second call");
    clone.images().list().await.expect("call through a clone");

    assert_eq!(count_requests(&server, "POST", "/token").await, 1);
    assert_eq!(count_requests(&server, "GET", "/1.0/images").await, 2);
}

#[tokio::test]
async fn concurrent_calls_share_one_token_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(TOKEN, 7200).set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&server)
        .await;
    mount_images_for(&server, TOKEN).await;
    mount_catch_all(&server).await;

    let client = client(&server);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let client = client.clone();
        tasks.spawn(async move { client.images().list().await.map(|images| images.len()) });
    }
    while let Some(joined) = tasks.join_next().await {
        let listed = joined.expect("task completes").expect("list succeeds");
        assert_eq!(listed, 1);
    }

    assert_eq!(count_requests(&server, "POST", "/token").await, 1);
    assert_eq!(count_requests(&server, "GET", "/1.0/images").await, 6);
}

#[tokio::test]
async fn token_renewed_before_expiry() {
    let server = MockServer::start().await;
    // The first token lives 3 s and is renewed 0.3 s before that; the second lives 2 hours.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(TOKEN, 3))
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
    mount_images_for(&server, TOKEN).await;
    mount_images_for(&server, SECOND_TOKEN).await;
    mount_catch_all(&server).await;

    let client = client(&server);
    client
        .images()
        .list()
        .await
        .expect("call with the first token");
    client
        .images()
        .list()
        .await
        .expect("second call with the first token");
    assert_eq!(count_requests(&server, "POST", "/token").await, 1);

    tokio::time::sleep(Duration::from_millis(2800)).await;
    client
        .images()
        .list()
        .await
        .expect("call after the renewal point");
    client
        .images()
        .list()
        .await
        .expect("call with the renewed token");

    assert_eq!(count_requests(&server, "POST", "/token").await, 2);
    let bearer_second = format!("Bearer {SECOND_TOKEN}");
    let requests = server.received_requests().await.unwrap_or_default();
    let with_second = requests
        .iter()
        .filter(|r| r.url.path() == "/1.0/images")
        .filter(|r| {
            r.headers
                .get("authorization")
                .is_some_and(|v| v == bearer_second.as_str())
        })
        .count();
    assert_eq!(with_second, 2);
}

#[tokio::test]
async fn invalid_token_refreshes_and_replays_once() {
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
        .and(path("/1.0/images/img-3ikco"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", "OAuth error=\"invalid_token\"")
                .set_body_json(json!({
                    "error": "invalid_token",
                    "error_description": "The OAuth token can not be found"
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/images/img-3ikco"))
        .and(header(
            "authorization",
            format!("Bearer {SECOND_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(IMAGE_JSON)))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let id = "img-3ikco".parse().expect("valid id");
    let image = client(&server)
        .images()
        .get(&id)
        .await
        .expect("replay succeeds");

    assert_eq!(image.id, id);
    assert_eq!(count_requests(&server, "POST", "/token").await, 2);
}

#[tokio::test]
async fn invalid_token_twice_is_auth_error() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_token",
            "error_description": "The OAuth token can not be found"
        })))
        .expect(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .list()
        .await
        .expect_err("token is always rejected");

    let Error::Unauthenticated(api) = &error else {
        panic!("expected Error::Unauthenticated, got {error:?}");
    };
    assert_eq!(api.status, 401);
    assert_eq!(api.oauth_error.as_deref(), Some("invalid_token"));
    assert_eq!(
        api.oauth_error_description.as_deref(),
        Some("The OAuth token can not be found")
    );
    assert_eq!(api.path, "/1.0/images");
    assert_eq!(count_requests(&server, "POST", "/token").await, 2);
}

#[tokio::test]
async fn invalid_client_is_typed_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("x-request-id", "req-token-401")
                .set_body_json(json!({
                    "error": "invalid_client",
                    "error_description": "Client authentication failed"
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .list()
        .await
        .expect_err("credentials are rejected");

    let Error::Unauthenticated(api) = &error else {
        panic!("expected Error::Unauthenticated, got {error:?}");
    };
    assert_eq!(api.status, 401);
    assert_eq!(api.path, "/token");
    assert_eq!(api.oauth_error.as_deref(), Some("invalid_client"));
    assert_eq!(
        api.oauth_error_description.as_deref(),
        Some("Client authentication failed")
    );
    assert_eq!(api.request_id.as_deref(), Some("req-token-401"));
    assert_eq!(error.request_id(), Some("req-token-401"));
    assert!(!error.is_retryable());
    let text = format!("{} {:?}", error_chain(&error), error);
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    assert_eq!(count_requests(&server, "POST", "/token").await, 1);
    assert_eq!(count_requests(&server, "GET", "/1.0/images").await, 0);
}

#[tokio::test]
async fn invalid_grant_is_typed_auth_error() {
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

    let error = client(&server)
        .accounts()
        .list()
        .await
        .expect_err("grant is rejected");

    assert!(
        matches!(&error, Error::Unauthenticated(api)
            if api.status == 400 && api.oauth_error.as_deref() == Some("invalid_grant")),
        "{error:?}"
    );
}

#[tokio::test]
async fn otp_required_has_own_variant() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("x-brightbox-otp", "required")
                .set_body_json(json!({"error": "invalid_client"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .list()
        .await
        .expect_err("OTP is required");

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
    assert!(error.to_string().contains("X-Brightbox-OTP"), "{error}");
}

#[tokio::test]
async fn account_id_sent_on_api_calls_only() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .and(query_param("account_id", "acc-43ks4"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let account: AccountId = "acc-43ks4".parse().expect("valid id");
    let client = builder(&server)
        .account_id(account.clone())
        .build()
        .expect("client builds");
    let images = client.images().list().await.expect("list succeeds");

    assert!(images.is_empty());
    assert_eq!(client.account_id(), Some(&account));
    let requests = server.received_requests().await.unwrap_or_default();
    let token_request = requests
        .iter()
        .find(|r| r.url.path() == "/token")
        .expect("token requested");
    assert_eq!(token_request.url.query(), None);
}

#[tokio::test]
async fn debug_output_hides_secret_and_token() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_images_for(&server, TOKEN).await;
    mount_catch_all(&server).await;

    let builder = builder(&server);
    let builder_debug = format!("{builder:?}");
    let client = builder.build().expect("client builds");
    client.images().list().await.expect("list succeeds");
    let client_debug = format!("{client:?}");

    for text in [&builder_debug, &client_debug] {
        assert!(text.contains(CLIENT_ID), "{text}");
        assert!(!text.contains(CLIENT_SECRET), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }
}

#[test]
fn build_without_credentials_fails() {
    let error = Client::builder()
        .build()
        .expect_err("credentials are required");
    assert!(
        matches!(
            error,
            Error::MissingCredentials {
                missing: "client_id"
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("client_credentials"), "{error}");

    let error = Client::builder()
        .client_credentials(CLIENT_ID, "")
        .build()
        .expect_err("an empty secret is rejected");
    assert!(
        matches!(
            error,
            Error::MissingCredentials {
                missing: "client_secret"
            }
        ),
        "{error:?}"
    );
}

#[test]
fn build_with_bad_base_url_fails() {
    for (value, shown) in [
        ("not a url", "not a url"),
        (
            "ftp://api.gb1.brightbox.com/",
            "ftp://api.gb1.brightbox.com/",
        ),
        (
            "https://cli-x:pw@api.gb1.brightbox.com/",
            "https://***@api.gb1.brightbox.com/",
        ),
    ] {
        let error = Client::builder()
            .base_url(value)
            .client_credentials(CLIENT_ID, CLIENT_SECRET)
            .build()
            .expect_err("bad base URL is rejected");
        assert!(
            matches!(&error, Error::InvalidBaseUrl { value: v, .. } if v == shown),
            "{error:?}"
        );
        assert!(error.to_string().contains(shown), "{error}");
        assert!(!format!("{error:?}").contains(":pw@"), "{error:?}");
    }
}

#[test]
fn base_url_normalised_with_trailing_slash() {
    let client = Client::builder()
        .base_url("http://127.0.0.1:9/brightbox")
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .build()
        .expect("client builds");
    assert_eq!(client.base_url().as_str(), "http://127.0.0.1:9/brightbox/");

    let default = Client::builder()
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .build()
        .expect("client builds");
    assert_eq!(default.base_url().as_str(), brightbox_api::DEFAULT_BASE_URL);
}
