//! Zone endpoints: list, get and lookup by handle.

mod common;

use brightbox_api::{Error, ZoneId};
use common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn find_by_handle_returns_match() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/zones"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ZONES_JSON)))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let zone = client(&server)
        .zones()
        .find_by_handle("gb1-b")
        .await
        .expect("handle exists");

    assert_eq!(zone.id, "zon-4dgyo");
}

#[tokio::test]
async fn find_by_unknown_handle_is_invalid_request() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/zones"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ZONES_JSON)))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .zones()
        .find_by_handle("gb1s-a")
        .await
        .expect_err("handle is unknown");

    assert!(
        matches!(&error, Error::InvalidRequest { field: "zone", .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("gb1-a, gb1-b"), "{error}");
}

#[tokio::test]
async fn get_by_id() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let zones = fixture(ZONES_JSON);
    Mock::given(method("GET"))
        .and(path("/1.0/zones/zon-328ds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(zones[0].clone()))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let id: ZoneId = "zon-328ds".parse().expect("valid id");
    let zone = client(&server)
        .zones()
        .get(&id)
        .await
        .expect("get succeeds");

    assert_eq!(zone.handle.as_deref(), Some("gb1-a"));
}
