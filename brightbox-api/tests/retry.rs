//! Retries of idempotent requests: 429 with `Retry-After`, 5xx, and connection failures.

mod common;

use std::time::{Duration, Instant};

use brightbox_api::{Client, Error, RetryConfig};
use common::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn get_429_with_retry_after_then_200() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error_name": "too_many_requests", "errors": ["Slow down"]})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([fixture(IMAGE_JSON)])))
        .with_priority(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = client(&server);
    let started = Instant::now();
    let images = client.images().list().await.expect("retry succeeds");

    assert_eq!(images.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(count_requests(&server, "GET", "/1.0/images").await, 2);
}

#[tokio::test]
async fn get_503_exhausts_attempts() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images/img-3ikco"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("x-request-id", "req-503-last")
                .set_body_string("Api currently unavailable"),
        )
        .expect(3)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = builder(&server)
        .retry(
            RetryConfig::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(5)),
        )
        .build()
        .expect("client builds");
    let id = "img-3ikco".parse().expect("valid id");
    let error = client
        .images()
        .get(&id)
        .await
        .expect_err("server stays unavailable");

    let Error::Server(api) = &error else {
        panic!("expected Error::Server, got {error:?}");
    };
    assert_eq!(api.status, 503);
    assert_eq!(api.attempts, 3);
    assert_eq!(
        api.body_excerpt.as_deref(),
        Some("Api currently unavailable")
    );
    assert_eq!(api.request_id.as_deref(), Some("req-503-last"));
    assert!(error.is_retryable());
    assert!(error.to_string().contains("after 3 attempts"), "{error}");
}

#[tokio::test]
async fn retry_after_beyond_limit_is_not_waited() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let started = Instant::now();
    let error = client(&server)
        .images()
        .list()
        .await
        .expect_err("rate limited for an hour");

    let Error::RateLimited(api) = &error else {
        panic!("expected Error::RateLimited, got {error:?}");
    };
    assert_eq!(api.status, 429);
    assert_eq!(api.retry_after, Some(Duration::from_secs(3600)));
    assert!(error.to_string().contains("retry after 3600 s"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn client_error_status_not_retried() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error_name": "Forbidden",
            "errors": ["You do not have permission to access this resource"]
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .accounts()
        .list()
        .await
        .expect_err("forbidden");

    assert_eq!(error.status(), Some(403));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn connection_refused_is_retryable_transport_error() {
    // Reserve a port on 127.0.0.1 and close it again, so connections to it are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let address = listener.local_addr().expect("local address");
    drop(listener);

    let client = Client::builder()
        .base_url(format!("http://{address}/"))
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .timeout(Duration::from_secs(5))
        .retry(
            RetryConfig::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(5)),
        )
        .build()
        .expect("client builds");
    let error = client.images().list().await.expect_err("nothing listens");

    match &error {
        Error::Transport { attempts, path, .. } => {
            assert_eq!(*attempts, 2);
            assert_eq!(path, "/token");
        }
        other => panic!("expected Error::Transport, got {other:?}"),
    }
    assert!(error.is_retryable());
    assert!(error.to_string().contains("connection failed"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_two_seconds_is_waited() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([fixture(IMAGE_JSON)])))
        .with_priority(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let started = tokio::time::Instant::now();
    let images = client(&server)
        .images()
        .list()
        .await
        .expect("retry succeeds");

    assert_eq!(images.len(), 1);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn rate_limit_exhausted_reports_retry_after_and_attempts() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .insert_header("x-request-id", "req-429-4"),
        )
        .expect(4)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let started = tokio::time::Instant::now();
    let error = client(&server)
        .images()
        .list()
        .await
        .expect_err("always rate limited");

    let Error::RateLimited(api) = &error else {
        panic!("expected Error::RateLimited, got {error:?}");
    };
    assert_eq!(api.attempts, 4);
    assert_eq!(api.retry_after, Some(Duration::from_secs(2)));
    assert!(api.elapsed >= Duration::from_secs(6), "{:?}", api.elapsed);
    assert!(started.elapsed() >= Duration::from_secs(6));
    let message = error.to_string();
    assert!(message.contains("after 4 attempts"), "{message}");
    assert!(message.contains("retry after 2 s"), "{message}");
    assert!(error.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn post_resent_after_429_only() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture(IMAGE_SPARSE_JSON)))
        .with_priority(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let source = brightbox_api::ImageSource::HttpUrl(
        "https://example.com/disk.img".parse().expect("valid URL"),
    );
    let request = brightbox_api::RegisterImage::new("disk", brightbox_api::Arch::X86_64, source);
    let image = client(&server)
        .images()
        .register(&request)
        .await
        .expect("second attempt succeeds");

    assert_eq!(image.id, "img-9xq2m");
    assert_eq!(count_requests(&server, "POST", "/1.0/images").await, 2);
}

#[tokio::test]
async fn transport_error_reports_elapsed_time() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let address = listener.local_addr().expect("local address");
    drop(listener);

    let client = Client::builder()
        .base_url(format!("http://{address}/"))
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .connect_timeout(Duration::from_secs(2))
        .retry(
            RetryConfig::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(20)),
        )
        .build()
        .expect("client builds");
    let error = client.images().list().await.expect_err("nothing listens");

    let Error::Transport {
        attempts, elapsed, ..
    } = &error
    else {
        panic!("expected Error::Transport, got {error:?}");
    };
    assert_eq!(*attempts, 3);
    // Two backoff pauses of at least 15 ms and 30 ms (20 ms and 40 ms minus up to a quarter).
    assert!(*elapsed >= Duration::from_millis(45), "{elapsed:?}");
    assert!(error.to_string().contains("3 attempt(s)"), "{error}");
}
