//! Server type endpoints: list, get and lookup by handle.

mod common;

use brightbox_api::{Error, ServerTypeId, ServerTypeStatus};
use common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn mount_list(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/1.0/server_types"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(SERVER_TYPES_JSON)))
        .mount(server)
        .await;
}

#[tokio::test]
async fn list_keeps_unknown_status() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_list(&server).await;
    mount_catch_all(&server).await;

    let types = client(&server)
        .server_types()
        .list()
        .await
        .expect("list succeeds");

    assert_eq!(types.len(), 3);
    assert_eq!(types[0].status, Some(ServerTypeStatus::Available));
    assert_eq!(
        types[2].status,
        Some(ServerTypeStatus::Unknown("retired-soon".to_owned()))
    );
    assert_eq!(types[1].ram, Some(2048));
}

#[tokio::test]
async fn get_by_id() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let types = fixture(SERVER_TYPES_JSON);
    Mock::given(method("GET"))
        .and(path("/1.0/server_types/typ-8fych"))
        .respond_with(ResponseTemplate::new(200).set_body_json(types[1].clone()))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let id: ServerTypeId = "typ-8fych".parse().expect("valid id");
    let found = client(&server)
        .server_types()
        .get(&id)
        .await
        .expect("get succeeds");

    assert_eq!(found.handle.as_deref(), Some("2gb.ssd"));
    assert_eq!(found.disk_size, Some(61440));
}

#[tokio::test]
async fn find_by_handle_returns_match() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_list(&server).await;
    mount_catch_all(&server).await;

    let found = client(&server)
        .server_types()
        .find_by_handle("1gb.ssd")
        .await
        .expect("handle exists");

    assert_eq!(found.id, "typ-zx45f");
}

#[tokio::test]
async fn find_by_unknown_handle_lists_known_ones() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_list(&server).await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .server_types()
        .find_by_handle("64gb.ssd")
        .await
        .expect_err("handle is unknown");

    assert!(
        matches!(&error, Error::InvalidRequest { field: "server_type", value, .. } if value == "64gb.ssd"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("1gb.ssd, 2gb.ssd, nano"), "{message}");
}
