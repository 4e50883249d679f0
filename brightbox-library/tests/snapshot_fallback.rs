//! The snapshot route decision against a mocked API: which failures of
//! `POST /1.0/images {"server"}` lead to the legacy route, and which do not.

use std::time::Duration;

use brightbox_api::{Client, ImageStatus, ServerId, WaitOptions};
use brightbox_library::{Library, LibraryError, SnapshotOptions};
use serde_json::json;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SERVER: &str = "srv-abcde";

async fn api() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "test-token",
            "token_type": "Bearer",
            "expires_in": 7200
        })))
        .mount(&server)
        .await;
    server
}

fn library(server: &MockServer) -> Library {
    let api = Client::builder()
        .base_url(format!("{}/", server.uri()))
        .client_credentials("cli-test1", "secret".to_owned())
        .build()
        .expect("client builds");
    Library::builder(api)
        .wait_options(WaitOptions {
            interval: Duration::from_millis(20),
            max_interval: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
        })
        .build()
}

async fn mount_modern_rejection(server: &MockServer, status: u16, message: &str) {
    Mock::given(method("POST"))
        .and(path("/1.0/images"))
        .and(body_json(json!({ "server": SERVER })))
        .respond_with(ResponseTemplate::new(status).set_body_json(json!({
            "error_name": "unprocessable_entity",
            "errors": [message]
        })))
        .expect(1)
        .mount(server)
        .await;
}

async fn mount_legacy(server: &MockServer, calls: u64) {
    let link = format!("<{}/1.0/images/img-snap1>; rel=snapshot", server.uri());
    Mock::given(method("POST"))
        .and(path(format!("/1.0/servers/{SERVER}/snapshot")))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("link", link.as_str())
                .set_body_json(json!({ "id": SERVER, "status": "active" })),
        )
        .expect(calls)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/images/img-snap1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "img-snap1",
            "status": "available",
            "arch": "x86_64",
            "source": SERVER,
            "source_type": "snapshot"
        })))
        .mount(server)
        .await;
}

#[tokio::test]
async fn unsupported_server_parameter_uses_legacy_route() {
    let server = api().await;
    mount_modern_rejection(&server, 422, "server is not a supported parameter").await;
    mount_legacy(&server, 1).await;
    let server_id: ServerId = SERVER.parse().expect("server id");

    let image = library(&server)
        .snapshot_server(&server_id, &SnapshotOptions::new())
        .await
        .expect("snapshot through the legacy route");

    assert_eq!(image.id.as_str(), "img-snap1");
    assert_eq!(image.status, ImageStatus::Available);
}

#[tokio::test]
async fn unknown_server_422_does_not_use_legacy_route() {
    let server = api().await;
    mount_modern_rejection(&server, 422, "server srv-abcde was not found").await;
    mount_legacy(&server, 0).await;
    let server_id: ServerId = SERVER.parse().expect("server id");

    let error = library(&server)
        .snapshot_server(&server_id, &SnapshotOptions::new())
        .await
        .expect_err("unknown server");

    match error {
        LibraryError::Snapshot { server_id, source } => {
            assert_eq!(server_id.as_str(), SERVER);
            assert_eq!(source.status(), Some(422));
        }
        other => panic!("expected LibraryError::Snapshot, got {other:?}"),
    }
}

#[tokio::test]
async fn conflict_does_not_use_legacy_route() {
    let server = api().await;
    mount_modern_rejection(&server, 409, "server srv-abcde is creating").await;
    mount_legacy(&server, 0).await;
    let server_id: ServerId = SERVER.parse().expect("server id");

    let error = library(&server)
        .snapshot_server(&server_id, &SnapshotOptions::new())
        .await
        .expect_err("server not active");

    assert!(
        matches!(&error, LibraryError::Snapshot { source, .. } if source.status() == Some(409)),
        "{error:?}"
    );
}
