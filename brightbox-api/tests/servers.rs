//! Server endpoints: list, get, create, destroy, both snapshot routes and the status waiter.

mod common;

use std::time::Duration;

use brightbox_api::{
    CreateServer, Error, ImageId, Resource, ServerGroupId, ServerId, ServerStatus, VolumeEntry,
    WaitOptions,
};
use common::*;
use serde_json::json;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn server_id() -> ServerId {
    "srv-lv426".parse().expect("valid id")
}

fn image_id() -> ImageId {
    "img-3ikco".parse().expect("valid id")
}

#[tokio::test]
async fn get_server_decodes_nested_fields() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/servers/srv-lv426"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(SERVER_JSON)))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let found = client(&server)
        .servers()
        .get(&server_id())
        .await
        .expect("get succeeds");

    assert_eq!(found.id, server_id());
    assert_eq!(found.status, ServerStatus::Active);
    assert_eq!(found.name.as_deref(), Some("web-1"));
    assert_eq!(
        found.image.as_ref().map(|i| i.id.as_str()),
        Some("img-3ikco")
    );
    let server_type = found.server_type.as_ref().expect("server type present");
    assert_eq!(server_type.id, "typ-zx45f");
    assert_eq!(server_type.handle.as_deref(), Some("1gb.ssd"));
    assert_eq!(
        found.zone.as_ref().and_then(|z| z.handle.as_deref()),
        Some("gb1-a")
    );
    assert_eq!(found.snapshots_schedule.as_deref(), Some("0 3 * * *"));
    assert!(found.created_at.is_some());
    assert!(found.deleted_at.is_none());
}

#[tokio::test]
async fn list_servers_keeps_unknown_status() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut second = server_with("migrating");
    second["id"] = json!("srv-2bbbb");
    Mock::given(method("GET"))
        .and(path("/1.0/servers"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([fixture(SERVER_JSON), second])),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let servers = client(&server)
        .servers()
        .list()
        .await
        .expect("list succeeds");

    assert_eq!(servers.len(), 2);
    assert_eq!(
        servers[1].status,
        ServerStatus::Unknown("migrating".to_owned())
    );
}

#[tokio::test]
async fn create_sends_every_option() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let expected = json!({
        "image": "img-3ikco",
        "name": "web-2",
        "server_type": "typ-zx45f",
        "zone": "zon-328ds",
        "user_data": "I2Nsb3VkLWNvbmZpZwo=",
        "server_groups": ["grp-98v4n"],
        "cloud_ip": true,
        "snapshots_schedule": "0 3 * * *",
        "snapshots_retention": "7",
        "volumes": [{"size": 40960, "image": "img-3ikco"}]
    });
    Mock::given(method("POST"))
        .and(path("/1.0/servers"))
        .and(query_param("account_id", "acc-43ks4"))
        .and(body_json(&expected))
        .respond_with(ResponseTemplate::new(202).set_body_json(server_with("creating")))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = builder(&server)
        .account_id("acc-43ks4".parse().expect("valid id"))
        .build()
        .expect("client builds");
    let group: ServerGroupId = "grp-98v4n".parse().expect("valid id");
    let request = CreateServer::new(image_id())
        .name("web-2")
        .server_type("typ-zx45f".parse().expect("valid id"))
        .zone("zon-328ds".parse().expect("valid id"))
        .user_data(b"#cloud-config\n".to_vec())
        .server_group(group)
        .cloud_ip(true)
        .snapshots_schedule("0 3 * * *")
        .snapshots_retention("7")
        .volume(VolumeEntry::New {
            size: 40960,
            image: Some(image_id()),
        });
    let created = client
        .servers()
        .create(&request)
        .await
        .expect("create succeeds");

    assert_eq!(created.status, ServerStatus::Creating);
}

#[tokio::test]
async fn create_rejects_oversized_user_data_before_sending() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_catch_all(&server).await;

    let request = CreateServer::new(image_id()).user_data(vec![b'x'; 60 * 1024]);
    let error = client(&server)
        .servers()
        .create(&request)
        .await
        .expect_err("user data is too large");

    assert!(
        matches!(
            &error,
            Error::InvalidRequest {
                field: "user_data",
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("65536"), "{message}");
    assert!(message.contains("81920 after base64"), "{message}");
    assert_eq!(
        server.received_requests().await.unwrap_or_default().len(),
        0
    );
}

#[tokio::test]
async fn create_limit_reached_is_forbidden_with_details() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/servers"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-request-id", "req-403-ram")
                .set_body_json(json!({
                    "error_name": "forbidden",
                    "errors": ["RAM limit of 51200 MB exceeded"]
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .servers()
        .create(&CreateServer::new(image_id()))
        .await
        .expect_err("limit reached");

    let Error::Forbidden(api) = &error else {
        panic!("expected Error::Forbidden, got {error:?}");
    };
    assert_eq!(api.errors, vec!["RAM limit of 51200 MB exceeded"]);
    assert_eq!(api.request_id.as_deref(), Some("req-403-ram"));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn create_not_resent_after_502() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/servers"))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .servers()
        .create(&CreateServer::new(image_id()))
        .await
        .expect_err("gateway error");

    assert!(matches!(&error, Error::Server(api) if api.status == 502 && api.attempts == 1));
    // The server may exist after a 502 to a POST, so a blind retry is not safe.
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn destroy_accepts_202() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("DELETE"))
        .and(path("/1.0/servers/srv-lv426"))
        .respond_with(ResponseTemplate::new(202).set_body_json(server_with("deleting")))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    client(&server)
        .servers()
        .destroy(&server_id())
        .await
        .expect("destroy succeeds");
}

#[tokio::test]
async fn snapshot_posts_server_to_images() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut image = image_with("img-snap1", "creating");
    image["source"] = json!("srv-lv426");
    image["source_type"] = json!("snapshot");
    image["disk_size"] = json!(0);
    Mock::given(method("POST"))
        .and(path("/1.0/images"))
        .and(body_json(json!({"server": "srv-lv426"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(image))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let image = client(&server)
        .servers()
        .snapshot(&server_id())
        .await
        .expect("snapshot starts");

    assert_eq!(image.id, "img-snap1");
    assert_eq!(image.source.as_deref(), Some("srv-lv426"));
    assert_eq!(image.disk_size, Some(0));
}

#[tokio::test]
async fn legacy_snapshot_reads_link_header() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/servers/srv-lv426/snapshot"))
        .respond_with(ResponseTemplate::new(202).insert_header(
            "link",
            "<https://api.gb1.brightbox.com/1.0/images/img-k3p9x>; rel=snapshot",
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let image = client(&server)
        .servers()
        .snapshot_legacy(&server_id())
        .await
        .expect("snapshot starts");

    assert_eq!(image, "img-k3p9x");
}

#[tokio::test]
async fn legacy_snapshot_without_link_is_typed_error() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/servers/srv-lv426/snapshot"))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("x-request-id", "req-snap-nolink")
                .insert_header(
                    "link",
                    "<https://api.gb1.brightbox.com/1.0/servers/srv-lv426>; rel=self",
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .servers()
        .snapshot_legacy(&server_id())
        .await
        .expect_err("no snapshot link");

    match &error {
        Error::SnapshotLinkMissing {
            server,
            links,
            request_id,
        } => {
            assert_eq!(server, &server_id());
            assert_eq!(
                links,
                &["<https://api.gb1.brightbox.com/1.0/servers/srv-lv426>; rel=self"]
            );
            assert_eq!(request_id.as_deref(), Some("req-snap-nolink"));
        }
        other => panic!("expected Error::SnapshotLinkMissing, got {other:?}"),
    }
    assert!(error.to_string().contains("srv-lv426"), "{error}");
    assert!(error.to_string().contains("rel=self"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn wait_for_active_polls_until_active() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/servers/srv-lv426"))
        .respond_with(ResponseTemplate::new(200).set_body_json(server_with("creating")))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/servers/srv-lv426"))
        .respond_with(ResponseTemplate::new(200).set_body_json(server_with("active")))
        .with_priority(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let options = WaitOptions::default()
        .interval(Duration::from_secs(1))
        .timeout(Duration::from_secs(60));
    let active = client(&server)
        .servers()
        .wait_for_status(&server_id(), ServerStatus::Active, &options)
        .await
        .expect("server becomes active");

    assert_eq!(active.status, ServerStatus::Active);
    assert_eq!(
        count_requests(&server, "GET", "/1.0/servers/srv-lv426").await,
        4
    );
}

#[tokio::test(start_paused = true)]
async fn wait_for_active_fails_on_failed() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/servers/srv-lv426"))
        .respond_with(ResponseTemplate::new(200).set_body_json(server_with("failed")))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .servers()
        .wait_for_status(&server_id(), ServerStatus::Active, &WaitOptions::default())
        .await
        .expect_err("server failed");

    match &error {
        Error::WaitFailed { last, target } => {
            assert!(
                matches!(last.as_ref(), Resource::Server(s) if s.status == ServerStatus::Failed)
            );
            assert_eq!(target, "active");
        }
        other => panic!("expected Error::WaitFailed, got {other:?}"),
    }
    assert_eq!(
        count_requests(&server, "GET", "/1.0/servers/srv-lv426").await,
        1
    );
}

#[tokio::test(start_paused = true)]
async fn wait_for_deleted_passes_deleting() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/servers/srv-lv426"))
        .respond_with(ResponseTemplate::new(200).set_body_json(server_with("deleting")))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/servers/srv-lv426"))
        .respond_with(ResponseTemplate::new(200).set_body_json(server_with("deleted")))
        .with_priority(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let deleted = client(&server)
        .servers()
        .wait_for_status(&server_id(), ServerStatus::Deleted, &WaitOptions::default())
        .await
        .expect("server reaches deleted");

    assert_eq!(deleted.status, ServerStatus::Deleted);
    assert_eq!(
        count_requests(&server, "GET", "/1.0/servers/srv-lv426").await,
        3
    );
}
