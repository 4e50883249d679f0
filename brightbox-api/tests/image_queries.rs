//! Client-side image queries: filters and "most recent" by creation time.

mod common;

use brightbox_api::{AccountId, Arch, ImageFilter, ImageStatus, NamePattern, SourceType};
use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Image list shaped like `GET /1.0/images`: official, public and own images, uploads and snapshots.
fn catalogue() -> Value {
    let mut images = Vec::new();
    let mut add = |id: &str, name: &str, owner: &str, created: &str, patch: Value| {
        let mut image = image_with(id, "available");
        image["name"] = json!(name);
        image["owner"] = json!(owner);
        image["created_at"] = json!(created);
        if let Value::Object(fields) = patch {
            for (key, value) in fields {
                image[key] = value;
            }
        }
        images.push(image);
    };
    add(
        "img-ub001",
        "ubuntu-noble-24.04-amd64",
        "acc-brbox",
        "2025-01-10T00:00:00Z",
        json!({"official": true, "public": true, "username": "ubuntu"}),
    );
    // A later release whose name sorts before the older one.
    add(
        "img-ub002",
        "ubuntu-noble-24.04.1-amd64",
        "acc-brbox",
        "2025-03-05T00:00:00Z",
        json!({"official": true, "public": true, "username": "ubuntu"}),
    );
    add(
        "img-ub003",
        "ubuntu-noble-24.04-i386",
        "acc-brbox",
        "2025-04-01T00:00:00Z",
        json!({"official": true, "public": true, "arch": "i686", "username": "ubuntu"}),
    );
    add(
        "img-snp01",
        "web-1 nightly",
        "acc-43ks4",
        "2025-05-01T03:00:00Z",
        json!({"source_type": "snapshot", "source_trigger": "schedule", "source": "srv-lv426"}),
    );
    add(
        "img-snp02",
        "web-1 manual",
        "acc-43ks4",
        "2025-05-02T12:00:00Z",
        json!({"source_type": "snapshot", "source_trigger": "manual", "source": "srv-lv426", "status": "creating"}),
    );
    add(
        "img-pub01",
        "community-alpine",
        "acc-other",
        "2025-06-01T00:00:00Z",
        json!({"public": true, "username": "alpine"}),
    );
    Value::Array(images)
}

async fn mount_catalogue(server: &MockServer) {
    mount_token(server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(200).set_body_json(catalogue()))
        .mount(server)
        .await;
}

fn ids(images: &[brightbox_api::Image]) -> Vec<&str> {
    images.iter().map(|i| i.id.as_str()).collect()
}

#[tokio::test]
async fn filter_official_glob_and_arch() {
    let server = MockServer::start().await;
    mount_catalogue(&server).await;
    mount_catch_all(&server).await;

    let filter = ImageFilter::new()
        .official(true)
        .arch(Arch::X86_64)
        .name(NamePattern::Glob("ubuntu-noble-*-amd64".to_owned()));
    let images = client(&server)
        .images()
        .list_filtered(&filter)
        .await
        .expect("list succeeds");

    assert_eq!(ids(&images), vec!["img-ub001", "img-ub002"]);
}

#[tokio::test]
async fn filter_snapshots_by_trigger_and_status() {
    let server = MockServer::start().await;
    mount_catalogue(&server).await;
    mount_catch_all(&server).await;
    let client = client(&server);

    let scheduled = ImageFilter::new()
        .source_type(SourceType::Snapshot)
        .source_trigger("schedule");
    let images = client
        .images()
        .list_filtered(&scheduled)
        .await
        .expect("list succeeds");
    assert_eq!(ids(&images), vec!["img-snp01"]);

    let creating = ImageFilter::new().status(ImageStatus::Creating);
    let images = client
        .images()
        .list_filtered(&creating)
        .await
        .expect("list succeeds");
    assert_eq!(ids(&images), vec!["img-snp02"]);
}

#[tokio::test]
async fn filter_owner_public_username_and_substring() {
    let server = MockServer::start().await;
    mount_catalogue(&server).await;
    mount_catch_all(&server).await;
    let client = client(&server);

    let owner: AccountId = "acc-other".parse().expect("valid id");
    let by_owner = ImageFilter::new().owner(owner).public(true);
    let images = client
        .images()
        .list_filtered(&by_owner)
        .await
        .expect("list succeeds");
    assert_eq!(ids(&images), vec!["img-pub01"]);

    let by_user = ImageFilter::new().username("ubuntu");
    let images = client
        .images()
        .list_filtered(&by_user)
        .await
        .expect("list succeeds");
    assert_eq!(images.len(), 3);

    let by_text = ImageFilter::new().name(NamePattern::Contains("web-1".to_owned()));
    let images = client
        .images()
        .list_filtered(&by_text)
        .await
        .expect("list succeeds");
    assert_eq!(ids(&images), vec!["img-snp01", "img-snp02"]);
}

#[tokio::test]
async fn mine_only_asks_for_current_account() {
    let server = MockServer::start().await;
    mount_catalogue(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ACCOUNT_JSON)))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let images = client(&server)
        .images()
        .list_filtered(&ImageFilter::new().mine_only(true))
        .await
        .expect("list succeeds");

    assert_eq!(ids(&images), vec!["img-snp01", "img-snp02"]);
}

#[tokio::test]
async fn mine_only_uses_configured_account() {
    let server = MockServer::start().await;
    mount_catalogue(&server).await;
    mount_catch_all(&server).await;

    let client = builder(&server)
        .account_id("acc-43ks4".parse().expect("valid id"))
        .build()
        .expect("client builds");
    let images = client
        .images()
        .list_filtered(&ImageFilter::new().mine_only(true))
        .await
        .expect("list succeeds");

    assert_eq!(images.len(), 2);
    assert_eq!(count_requests(&server, "GET", "/1.0/account").await, 0);
}

#[tokio::test]
async fn most_recent_orders_by_created_at_not_name() {
    let server = MockServer::start().await;
    mount_catalogue(&server).await;
    mount_catch_all(&server).await;

    let filter = ImageFilter::new().name(NamePattern::Glob("ubuntu-noble-*".to_owned()));
    let latest = client(&server)
        .images()
        .most_recent(&filter)
        .await
        .expect("list succeeds")
        .expect("an image matches");

    // img-ub003 is the newest; by name, "ubuntu-noble-24.04.1-amd64" would sort last.
    assert_eq!(latest.id, "img-ub003");

    let amd64 = filter.arch(Arch::X86_64);
    let latest = client(&server)
        .images()
        .most_recent(&amd64)
        .await
        .expect("list succeeds")
        .expect("an image matches");
    assert_eq!(latest.id, "img-ub002");
}

#[tokio::test]
async fn most_recent_without_match_is_none() {
    let server = MockServer::start().await;
    mount_catalogue(&server).await;
    mount_catch_all(&server).await;

    let filter = ImageFilter::new().name(NamePattern::Contains("windows".to_owned()));
    let latest = client(&server)
        .images()
        .most_recent(&filter)
        .await
        .expect("list succeeds");

    assert!(latest.is_none());
}

#[test]
fn mine_only_needs_an_account() {
    let image: brightbox_api::Image =
        serde_json::from_value(image_with("img-3ikco", "available")).expect("decodes");
    let filter = ImageFilter::new().mine_only(true);

    assert!(!filter.matches(&image, None));
    let mine: AccountId = "acc-43ks4".parse().expect("valid id");
    assert!(filter.matches(&image, Some(&mine)));
}
