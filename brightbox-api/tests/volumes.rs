//! Volume endpoints: list, get and the status waiter.

mod common;

use std::time::Duration;

use brightbox_api::{Error, Resource, VolumeId, VolumeStatus, WaitOptions};
use common::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const VOLUME_PATH: &str = "/1.0/volumes/vol-po5we";

fn volume_id() -> VolumeId {
    "vol-po5we".parse().expect("valid id")
}

#[tokio::test]
async fn get_volume_decodes_fields() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path(VOLUME_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(VOLUME_JSON)))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let volume = client(&server)
        .volumes()
        .get(&volume_id())
        .await
        .expect("get succeeds");

    assert_eq!(volume.id, volume_id());
    assert_eq!(volume.status, VolumeStatus::Attached);
    assert_eq!(volume.size, Some(30720));
    assert!(volume.boot);
    assert_eq!(
        volume.server.as_ref().map(|s| s.id.as_str()),
        Some("srv-lv426")
    );
    assert_eq!(
        volume.image.as_ref().map(|i| i.id.as_str()),
        Some("img-3ikco")
    );
}

#[tokio::test]
async fn list_volumes_with_bad_size_names_path() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut broken = fixture(VOLUME_JSON);
    broken["size"] = json!("large");
    Mock::given(method("GET"))
        .and(path("/1.0/volumes"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([fixture(VOLUME_JSON), broken])),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .volumes()
        .list()
        .await
        .expect_err("size is not a number");

    assert!(
        matches!(&error, Error::Decode { json_path, .. } if json_path == "[1].size"),
        "{error:?}"
    );
}

#[tokio::test]
async fn get_missing_volume_is_not_found() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path(VOLUME_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"error_name": "missing_resource", "errors": ["Resource not found"]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .volumes()
        .get(&volume_id())
        .await
        .expect_err("volume is missing");

    assert!(
        matches!(&error, Error::NotFound { resource, .. } if resource == "volume vol-po5we"),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_for_detached_passes_unknown_status() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path(VOLUME_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(volume_with("creating")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(VOLUME_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(volume_with("resizing")))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(VOLUME_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(volume_with("detached")))
        .with_priority(3)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let options = WaitOptions::default().interval(Duration::from_secs(1));
    let volume = client(&server)
        .volumes()
        .wait_for_status(&volume_id(), VolumeStatus::Detached, &options)
        .await
        .expect("volume becomes detached");

    assert_eq!(volume.status, VolumeStatus::Detached);
    assert_eq!(count_requests(&server, "GET", VOLUME_PATH).await, 3);
}

#[tokio::test(start_paused = true)]
async fn wait_for_volume_times_out_with_last_poll() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path(VOLUME_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(volume_with("creating")))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let options = WaitOptions::default()
        .interval(Duration::from_secs(1))
        .max_interval(Duration::from_secs(2))
        .timeout(Duration::from_secs(10));
    let error = client(&server)
        .volumes()
        .wait_for_status(&volume_id(), VolumeStatus::Attached, &options)
        .await
        .expect_err("volume stays creating");

    let Some(Resource::Volume(last)) = error.last_poll() else {
        panic!("expected the last volume poll, got {error:?}");
    };
    assert_eq!(last.status, VolumeStatus::Creating);
    assert!(matches!(error, Error::WaitTimedOut { .. }), "{error:?}");
}
