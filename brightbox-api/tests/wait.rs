//! The image waiter, run with paused tokio time so that waits of minutes take milliseconds.

mod common;

use std::time::Duration;

use brightbox_api::{Error, ImageId, ImageStatus, WaitOptions};
use common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const IMAGE_PATH: &str = "/1.0/images/img-w41t0";

fn image_id() -> ImageId {
    "img-w41t0".parse().expect("valid id")
}

/// Mounts responses so that the first `times` polls see `status`, after the mocks mounted before it.
async fn mount_status(server: &MockServer, status: &str, times: Option<u64>, priority: u8) {
    let mock = Mock::given(method("GET"))
        .and(path(IMAGE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(image_with("img-w41t0", status)))
        .with_priority(priority);
    let mock = match times {
        Some(times) => mock.up_to_n_times(times),
        None => mock,
    };
    mock.mount(server).await;
}

fn options() -> WaitOptions {
    WaitOptions::default()
        .interval(Duration::from_secs(2))
        .max_interval(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
}

#[tokio::test(start_paused = true)]
async fn wait_succeeds_after_creating_polls() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_status(&server, "creating", Some(3), 1).await;
    mount_status(&server, "available", None, 2).await;
    mount_catch_all(&server).await;

    let image = client(&server)
        .images()
        .wait_until_available(&image_id(), &options())
        .await
        .expect("image becomes available");

    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(count_requests(&server, "GET", IMAGE_PATH).await, 4);
    assert_eq!(count_requests(&server, "POST", "/token").await, 1);
}

#[tokio::test(start_paused = true)]
async fn wait_continues_through_unavailable_and_unknown() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_status(&server, "creating", Some(1), 1).await;
    mount_status(&server, "unavailable", Some(1), 2).await;
    mount_status(&server, "pondering", Some(1), 3).await;
    mount_status(&server, "available", None, 4).await;
    mount_catch_all(&server).await;

    let image = client(&server)
        .images()
        .wait_until_available(&image_id(), &options())
        .await
        .expect("image becomes available");

    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(count_requests(&server, "GET", IMAGE_PATH).await, 4);
}

#[tokio::test(start_paused = true)]
async fn wait_ends_with_image_failed() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_status(&server, "creating", Some(2), 1).await;
    mount_status(&server, "failed", None, 2).await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .wait_until_available(&image_id(), &options())
        .await
        .expect_err("image fails");

    match &error {
        Error::ImageFailed { image } => {
            assert_eq!(image.id, image_id());
            assert_eq!(image.status, ImageStatus::Failed);
        }
        other => panic!("expected Error::ImageFailed, got {other:?}"),
    }
    assert!(error.to_string().contains("failed"), "{error}");
    assert_eq!(count_requests(&server, "GET", IMAGE_PATH).await, 3);
}

#[tokio::test(start_paused = true)]
async fn wait_ends_on_deleting_and_deleted() {
    for status in ["deleting", "deleted"] {
        let server = MockServer::start().await;
        mount_token(&server).await;
        mount_status(&server, "creating", Some(1), 1).await;
        mount_status(&server, status, None, 2).await;
        mount_catch_all(&server).await;

        let error = client(&server)
            .images()
            .wait_until_available(&image_id(), &options())
            .await
            .expect_err("image is going away");

        assert!(
            matches!(&error, Error::ImageFailed { image } if image.status.as_str() == status),
            "{status}: {error:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn wait_times_out_with_last_status() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_status(&server, "creating", None, 1).await;
    mount_catch_all(&server).await;

    let options = WaitOptions::default()
        .interval(Duration::from_secs(1))
        .max_interval(Duration::from_secs(4))
        .timeout(Duration::from_secs(20));
    let started = tokio::time::Instant::now();
    let error = client(&server)
        .images()
        .wait_until_available(&image_id(), &options)
        .await
        .expect_err("image stays creating");

    match &error {
        Error::WaitTimedOut {
            id,
            last_status,
            elapsed,
        } => {
            assert_eq!(id, &image_id());
            assert_eq!(last_status, &ImageStatus::Creating);
            assert!(*elapsed >= Duration::from_secs(20), "{elapsed:?}");
        }
        other => panic!("expected Error::WaitTimedOut, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(20));
    // Pauses of about 1, 2, 4, 4, 4, 4 s and a last one cut to the deadline: 7 or 8 polls, not dozens.
    let polls = count_requests(&server, "GET", IMAGE_PATH).await;
    assert!((5..=10).contains(&polls), "{polls} polls");
}

#[tokio::test(start_paused = true)]
async fn wait_stops_on_not_found() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path(IMAGE_PATH))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .wait_until_available(&image_id(), &options())
        .await
        .expect_err("image does not exist");

    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    assert_eq!(count_requests(&server, "GET", IMAGE_PATH).await, 1);
}

#[tokio::test(start_paused = true)]
async fn wait_with_short_token_renews_a_few_times() {
    let server = MockServer::start().await;
    // Tokens live 3 s; polls are about 1 s apart, so the token is renewed every third poll or so.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(TOKEN, 3))
        .mount(&server)
        .await;
    mount_status(&server, "creating", Some(6), 1).await;
    mount_status(&server, "available", None, 2).await;
    mount_catch_all(&server).await;

    let options = WaitOptions::default()
        .interval(Duration::from_secs(1))
        .max_interval(Duration::from_secs(1))
        .timeout(Duration::from_secs(60));
    let image = client(&server)
        .images()
        .wait_until_available(&image_id(), &options)
        .await
        .expect("image becomes available");

    assert_eq!(image.status, ImageStatus::Available);
    let token_requests = count_requests(&server, "POST", "/token").await;
    assert!(
        (2..=5).contains(&token_requests),
        "{token_requests} token requests for 7 polls"
    );
}

#[test]
fn wait_options_defaults() {
    let options = WaitOptions::default();
    assert_eq!(options.interval, Duration::from_secs(2));
    assert_eq!(options.max_interval, Duration::from_secs(10));
    assert_eq!(options.timeout, Duration::from_secs(30 * 60));
}
