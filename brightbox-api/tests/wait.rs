//! The image waiter, run with paused tokio time so that waits of minutes take milliseconds.

mod common;

use std::time::Duration;

use brightbox_api::{Error, ImageId, ImageStatus, Resource, WaitOptions};
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
        Error::WaitFailed { last, target } => {
            let Resource::Image(image) = last.as_ref() else {
                panic!("expected an image, got {last:?}");
            };
            assert_eq!(image.id, image_id());
            assert_eq!(image.status, ImageStatus::Failed);
            assert_eq!(target, "available");
        }
        other => panic!("expected Error::WaitFailed, got {other:?}"),
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
            matches!(&error, Error::WaitFailed { last, .. } if last.status() == status),
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
            last,
            elapsed,
            polls,
            ..
        } => {
            assert_eq!(last.id(), image_id().as_str());
            assert_eq!(last.status(), "creating");
            assert!(*elapsed >= Duration::from_secs(20), "{elapsed:?}");
            assert!((5..=10).contains(polls), "{polls} polls");
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

/// Mounts one response per status, in order; the last one repeats.
async fn mount_sequence(server: &MockServer, steps: &[serde_json::Value]) {
    for (index, body) in steps.iter().enumerate() {
        let priority = u8::try_from(index + 1).expect("few steps");
        let mock = Mock::given(method("GET"))
            .and(path(IMAGE_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(body.clone()))
            .with_priority(priority);
        let mock = if index + 1 < steps.len() {
            mock.up_to_n_times(1)
        } else {
            mock
        };
        mock.mount(server).await;
    }
}

fn creating_with_size(disk_size: u64) -> serde_json::Value {
    let mut image = image_with("img-w41t0", "creating");
    image["disk_size"] = serde_json::json!(disk_size);
    image
}

#[tokio::test(start_paused = true)]
async fn progress_callback_sees_disk_size_grow() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_sequence(
        &server,
        &[
            creating_with_size(0),
            creating_with_size(512),
            creating_with_size(1536),
            image_with("img-w41t0", "available"),
        ],
    )
    .await;
    mount_catch_all(&server).await;

    let mut seen = Vec::new();
    let image = client(&server)
        .images()
        .wait_until_available_with_progress(&image_id(), &options(), |progress| {
            seen.push((
                progress.poll,
                progress.current.status.as_str().to_owned(),
                progress.current.disk_size,
            ));
        })
        .await
        .expect("image becomes available");

    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(
        seen,
        vec![
            (1, "creating".to_owned(), Some(0)),
            (2, "creating".to_owned(), Some(512)),
            (3, "creating".to_owned(), Some(1536)),
            (4, "available".to_owned(), Some(2048)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn poll_schedule_doubles_up_to_max() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_status(&server, "creating", Some(5), 1).await;
    mount_status(&server, "available", None, 2).await;
    mount_catch_all(&server).await;

    let options = WaitOptions::default()
        .interval(Duration::from_secs(1))
        .max_interval(Duration::from_secs(4))
        .timeout(Duration::from_secs(600));
    let mut poll_times = Vec::new();
    client(&server)
        .images()
        .wait_until_available_with_progress(&image_id(), &options, |progress| {
            poll_times.push(progress.elapsed);
        })
        .await
        .expect("image becomes available");

    // Pauses of 1, 2, 4, 4, 4 s, each with up to 10 % jitter added.
    let gaps: Vec<f64> = poll_times
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).as_secs_f64())
        .collect();
    for (gap, base) in gaps.iter().zip([1.0, 2.0, 4.0, 4.0, 4.0]) {
        assert!(
            (base..=base * 1.1 + 0.01).contains(gap),
            "gap {gap} for base {base}: {gaps:?}"
        );
    }
    assert_eq!(gaps.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn wait_replays_after_invalid_token_with_few_token_requests() {
    let server = MockServer::start().await;
    // Tokens live 3 s. The third poll gets 401 invalid_token once.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(TOKEN, 3))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(IMAGE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(image_with("img-w41t0", "creating")))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(IMAGE_PATH))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", "OAuth error=\"invalid_token\"")
                .set_body_json(serde_json::json!({
                    "error": "invalid_token",
                    "error_description": "The OAuth token can not be found"
                })),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(IMAGE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(image_with("img-w41t0", "creating")))
        .up_to_n_times(4)
        .with_priority(3)
        .mount(&server)
        .await;
    mount_status(&server, "available", None, 4).await;
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
    // 2 + 1 rejected + 4 + 1 = 8 GET requests for 7 polls.
    assert_eq!(count_requests(&server, "GET", IMAGE_PATH).await, 8);
    let token_requests = count_requests(&server, "POST", "/token").await;
    assert!(
        (2..=6).contains(&token_requests),
        "{token_requests} token requests for 7 polls over about 7 s"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_for_deleted_status_after_destroy() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_status(&server, "deleting", Some(2), 1).await;
    mount_status(&server, "deleted", None, 2).await;
    mount_catch_all(&server).await;

    let image = client(&server)
        .images()
        .wait_for_status(&image_id(), ImageStatus::Deleted, &options())
        .await
        .expect("image reaches deleted");

    assert_eq!(image.status, ImageStatus::Deleted);
    assert_eq!(count_requests(&server, "GET", IMAGE_PATH).await, 3);
}

#[tokio::test(start_paused = true)]
async fn wait_rides_out_api_outage() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    // Ten 503s outlast the client's four attempts per poll, so the waiter itself must poll again.
    Mock::given(method("GET"))
        .and(path(IMAGE_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(10)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_status(&server, "available", None, 2).await;
    mount_catch_all(&server).await;

    let image = client(&server)
        .images()
        .wait_until_available(&image_id(), &options())
        .await
        .expect("the wait outlasts the outage");

    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(count_requests(&server, "GET", IMAGE_PATH).await, 11);
}

#[tokio::test(start_paused = true)]
async fn wait_outage_past_deadline_fails() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path(IMAGE_PATH))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .wait_until_available(&image_id(), &options().timeout(Duration::from_secs(60)))
        .await
        .expect_err("the API never recovers");

    assert!(error.is_retryable(), "expected the last 503, got {error:?}");
    assert_eq!(error.api_error().map(|api| api.status), Some(503));
}
