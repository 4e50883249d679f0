//! Server, server type and zone routes, and snapshots by both routes.

mod common;

use std::time::Duration;

use brightbox_emulator::{Emulator, EmulatorConfig};
use common::{call, error_messages, register_file, wait_for_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SHORT_DELAY: Duration = Duration::from_millis(200);
const DISK_BYTES: &[u8] = b"the bytes of a small raw disk";

/// Registers a raw disk, waits until it is available and returns its id.
async fn available_image(http: &reqwest::Client, emulator: &Emulator, token: &str) -> String {
    let id = register_file(http, emulator, token, "disk.img", DISK_BYTES).await;
    wait_for_status(http, emulator, token, "images", &id, "available").await;
    id
}

/// Creates a server from `image` and returns its id.
async fn create_server(
    http: &reqwest::Client,
    emulator: &Emulator,
    token: &str,
    image: &str,
) -> String {
    let response = call(
        http,
        emulator,
        token,
        Method::POST,
        "servers",
        Some(json!({"image": image, "name": "test server"})),
    )
    .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    response.body["id"]
        .as_str()
        .expect("server id is a string")
        .to_owned()
}

/// Creates a server from a fresh upload, waits until it is active and returns
/// `(image id, server id)`.
async fn active_server(
    http: &reqwest::Client,
    emulator: &Emulator,
    token: &str,
) -> (String, String) {
    let image = available_image(http, emulator, token).await;
    let server = create_server(http, emulator, token, &image).await;
    wait_for_status(http, emulator, token, "servers", &server, "active").await;
    (image, server)
}

fn ids_of(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("list is an array")
        .iter()
        .map(|item| item["id"].as_str().expect("id is a string").to_owned())
        .collect()
}

#[tokio::test]
async fn server_types_by_id_and_handle() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let list = call(&http, &emulator, &token, Method::GET, "server_types", None).await;
    assert_eq!(list.status, StatusCode::OK);
    let types = list.body.as_array().expect("list is an array");
    assert_eq!(types.len(), 5);
    let handles: Vec<&str> = types
        .iter()
        .map(|t| t["handle"].as_str().expect("handle is a string"))
        .collect();
    assert!(handles.contains(&"1gb.ssd"), "{handles:?}");
    assert!(handles.contains(&"2gb.ssd"), "{handles:?}");
    for server_type in types {
        assert_eq!(server_type["resource_type"], "server_type");
        assert!(
            server_type["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("typ-"))
        );
        assert!(server_type["ram"].as_u64().is_some_and(|ram| ram >= 512));
        assert!(
            server_type["disk_size"]
                .as_u64()
                .is_some_and(|disk| disk > 0)
        );
        assert!(server_type["cores"].as_u64().is_some_and(|cores| cores > 0));
    }

    let by_handle = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        "server_types/2gb.ssd",
        None,
    )
    .await;
    assert_eq!(by_handle.status, StatusCode::OK);
    assert_eq!(by_handle.body["ram"], 2048);
    let id = by_handle.body["id"].as_str().expect("id is a string");
    let by_id = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        &format!("server_types/{id}"),
        None,
    )
    .await;
    assert_eq!(by_id.body, by_handle.body);
    assert_eq!(
        by_id.body["url"],
        format!("{}1.0/server_types/{id}", emulator.api_url())
    );

    let missing = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        "server_types/typ-zzzzz",
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error_name"], "missing_resource");
}

#[tokio::test]
async fn zones_by_id_and_handle() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let list = call(&http, &emulator, &token, Method::GET, "zones", None).await;
    assert_eq!(list.status, StatusCode::OK);
    let handles: Vec<&str> = list
        .body
        .as_array()
        .expect("list is an array")
        .iter()
        .map(|zone| zone["handle"].as_str().expect("handle is a string"))
        .collect();
    assert_eq!(handles, vec!["gb1-a", "gb1-b"]);

    let by_handle = call(&http, &emulator, &token, Method::GET, "zones/gb1-b", None).await;
    assert_eq!(by_handle.status, StatusCode::OK);
    assert_eq!(by_handle.body["resource_type"], "zone");
    let id = by_handle.body["id"].as_str().expect("id is a string");
    assert!(id.starts_with("zon-"), "{id}");
    let by_id = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        &format!("zones/{id}"),
        None,
    )
    .await;
    assert_eq!(by_id.body, by_handle.body);

    let missing = call(&http, &emulator, &token, Method::GET, "zones/gb9-z", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn create_server_becomes_active() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let image = available_image(&http, &emulator, &token).await;

    let created = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "servers",
        Some(json!({
            "image": image,
            "name": "web",
            "server_type": "2gb.ssd",
            "zone": "gb1-b",
            "user_data": "IyEvYmluL3NoCmVjaG8gaGk=",
        })),
    )
    .await;

    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    let server = &created.body;
    let id = server["id"].as_str().expect("id is a string").to_owned();
    assert!(id.starts_with("srv-"), "{id}");
    assert_eq!(server["resource_type"], "server");
    assert_eq!(
        server["url"],
        format!("{}1.0/servers/{id}", emulator.api_url())
    );
    assert_eq!(server["status"], "creating");
    assert_eq!(server["name"], "web");
    assert_eq!(server["hostname"], id.as_str());
    assert_eq!(server["fqdn"], format!("{id}.gb1.brightbox.com"));
    assert_eq!(server["image"]["id"], image.as_str());
    assert_eq!(server["image"]["resource_type"], "image");
    assert_eq!(server["image"]["arch"], "x86_64");
    assert_eq!(server["server_type"]["handle"], "2gb.ssd");
    assert!(
        server["server_type"]["id"]
            .as_str()
            .is_some_and(|t| t.starts_with("typ-"))
    );
    assert_eq!(server["zone"]["handle"], "gb1-b");
    assert_eq!(server["user_data"], "IyEvYmluL3NoCmVjaG8gaGk=");
    assert_eq!(server["snapshots"], json!([]));
    assert_eq!(server["cloud_ips"], json!([]));
    assert_eq!(server["interfaces"], json!([]));
    assert_eq!(server["volumes"], json!([]));
    assert!(server["snapshots_schedule"].is_null());
    assert!(server["snapshots_retention"].is_null());
    assert_eq!(server["locked"], false);
    assert_eq!(server["compatibility_mode"], false);
    assert!(server["created_at"].is_string());
    assert!(server["started_at"].is_null());
    assert!(server["deleted_at"].is_null());

    let active = wait_for_status(&http, &emulator, &token, "servers", &id, "active").await;
    assert!(active["started_at"].is_string());
    assert!(active["deleted_at"].is_null());

    let list = call(&http, &emulator, &token, Method::GET, "servers", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(ids_of(&list.body), vec![id.clone()]);
    let account = call(&http, &emulator, &token, Method::GET, "account", None).await;
    assert_eq!(account.body["servers_used"], 1);
    assert_eq!(account.body["ram_used"], 2048);
}

#[tokio::test]
async fn create_server_defaults_and_ids() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let types = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        "server_types/4gb.ssd",
        None,
    )
    .await;
    let type_id = types.body["id"]
        .as_str()
        .expect("id is a string")
        .to_owned();
    let zone = call(&http, &emulator, &token, Method::GET, "zones/gb1-b", None).await;
    let zone_id = zone.body["id"].as_str().expect("id is a string").to_owned();

    let defaults = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "servers",
        Some(json!({"image": "img-noble"})),
    )
    .await;
    assert_eq!(defaults.status, StatusCode::ACCEPTED, "{}", defaults.body);
    assert_eq!(defaults.body["server_type"]["handle"], "1gb.ssd");
    assert_eq!(defaults.body["zone"]["handle"], "gb1-a");
    assert!(defaults.body["user_data"].is_null());
    assert_eq!(defaults.body["image"]["name"], "Ubuntu Noble 24.04 server");

    let by_ids = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "servers",
        Some(json!({"image": "img-bookw", "server_type": type_id, "zone": zone_id})),
    )
    .await;
    assert_eq!(by_ids.status, StatusCode::ACCEPTED, "{}", by_ids.body);
    assert_eq!(by_ids.body["server_type"]["handle"], "4gb.ssd");
    assert_eq!(by_ids.body["zone"]["handle"], "gb1-b");
}

#[tokio::test]
async fn create_server_from_deprecated_image() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let image = available_image(&http, &emulator, &token).await;
    let deprecated = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &format!("images/{image}"),
        Some(json!({"status": "deprecated"})),
    )
    .await;
    assert_eq!(deprecated.body["status"], "deprecated");

    let server = create_server(&http, &emulator, &token, &image).await;
    assert!(server.starts_with("srv-"), "{server}");
}

#[tokio::test]
async fn create_server_rejects_bad_requests() {
    let emulator = common::start(Duration::from_secs(30)).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let creating = register_file(&http, &emulator, &token, "slow.img", DISK_BYTES).await;
    // Images registered from here on are available at once; the first one stays creating.
    emulator.faults().registration_delay(Duration::ZERO);
    // A 30 GiB disk does not fit the 10 GiB disk of 512mb.ssd.
    let big = register_file(
        &http,
        &emulator,
        &token,
        "big.qcow2",
        &common::qcow2_file(30 * 1024 * 1024 * 1024, 512),
    )
    .await;

    let cases = [
        (json!({"name": "no image"}), "image is missing"),
        (
            json!({"image": "img-zzzzz"}),
            "image img-zzzzz was not found",
        ),
        (json!({"image": 42}), "image must be an image id string"),
        (
            json!({"image": creating}),
            &format!("image {creating} is creating") as &str,
        ),
        (
            json!({"image": "img-noble", "user_data": "not base64!"}),
            "user_data is not valid base64",
        ),
        (
            json!({"image": "img-noble", "user_data": 12}),
            "user_data must be a base64 string",
        ),
        (
            json!({"image": "img-noble", "user_data": "A".repeat(64 * 1024 + 4)}),
            "user_data is 65540 bytes after base64 encoding",
        ),
        (
            json!({"image": "img-noble", "server_type": "3gb.ssd"}),
            "server_type \"3gb.ssd\" was not found",
        ),
        (
            json!({"image": "img-noble", "zone": "gb2-a"}),
            "zone \"gb2-a\" was not found",
        ),
        (
            json!({"image": "img-noble", "name": ["x"]}),
            "name must be a string",
        ),
        (
            json!({"image": "img-noble", "compatibility_mode": "yes"}),
            "compatibility_mode must be true or false",
        ),
        (
            json!({"image": "img-noble", "volumes": [{"volume": "vol-abcde"}]}),
            "volumes is not supported",
        ),
    ];
    for (request, expected) in cases {
        let response = call(
            &http,
            &emulator,
            &token,
            Method::POST,
            "servers",
            Some(request.clone()),
        )
        .await;

        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{request}"
        );
        assert_eq!(response.body["error_name"], "unprocessable_entity");
        let errors = error_messages(&response.body);
        assert!(
            errors.iter().any(|error| error.starts_with(expected)),
            "{request} -> {errors:?}"
        );
    }

    wait_for_status(&http, &emulator, &token, "images", &big, "available").await;
    let too_big = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "servers",
        Some(json!({"image": big, "server_type": "512mb.ssd"})),
    )
    .await;
    assert_eq!(too_big.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = &error_messages(&too_big.body)[0];
    assert!(message.contains("30720 MB disk"), "{message}");
    assert!(message.contains("512mb.ssd"), "{message}");

    let invalid_json = http
        .post(format!("{}1.0/servers", emulator.api_url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .expect("request is sent");
    assert_eq!(invalid_json.status(), StatusCode::BAD_REQUEST);

    let list = call(&http, &emulator, &token, Method::GET, "servers", None).await;
    assert_eq!(list.body, json!([]), "rejected requests create no server");
}

#[tokio::test]
async fn delete_server_goes_deleting_then_deleted() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let (_, server) = active_server(&http, &emulator, &token).await;
    let path = format!("servers/{server}");

    let deleting = call(&http, &emulator, &token, Method::DELETE, &path, None).await;
    assert_eq!(deleting.status, StatusCode::ACCEPTED);
    assert_eq!(deleting.body["status"], "deleting");
    assert!(deleting.body["deleted_at"].is_null());

    let again = call(&http, &emulator, &token, Method::DELETE, &path, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["error_name"], "resource_conflict");
    let snapshot = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        &format!("{path}/snapshot"),
        None,
    )
    .await;
    assert_eq!(snapshot.status, StatusCode::CONFLICT);
    assert!(error_messages(&snapshot.body)[0].contains("is deleting"));

    let deleted = wait_for_status(&http, &emulator, &token, "servers", &server, "deleted").await;
    assert!(deleted["deleted_at"].is_string());
    let list = call(&http, &emulator, &token, Method::GET, "servers", None).await;
    assert_eq!(
        ids_of(&list.body),
        vec![server.clone()],
        "deleted servers stay listed"
    );
    let account = call(&http, &emulator, &token, Method::GET, "account", None).await;
    assert_eq!(account.body["servers_used"], 0);

    let missing = call(
        &http,
        &emulator,
        &token,
        Method::DELETE,
        "servers/srv-zzzzz",
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error_name"], "missing_resource");
}

#[tokio::test]
async fn locked_server_cannot_be_deleted() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let server = create_server(&http, &emulator, &token, "img-noble").await;
    let path = format!("servers/{server}");

    let locked = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &format!("{path}/lock_resource"),
        None,
    )
    .await;
    assert_eq!(locked.status, StatusCode::OK);
    assert_eq!(locked.body["locked"], true);

    let refused = call(&http, &emulator, &token, Method::DELETE, &path, None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(error_messages(&refused.body)[0].contains("locked"));

    let unlocked = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &format!("{path}/unlock_resource"),
        None,
    )
    .await;
    assert_eq!(unlocked.body["locked"], false);
    let deleted = call(&http, &emulator, &token, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn snapshot_through_images_route() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let (image, server) = active_server(&http, &emulator, &token).await;

    let created = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "images",
        Some(json!({"server": server, "name": "nightly"})),
    )
    .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let snapshot = &created.body;
    let id = snapshot["id"].as_str().expect("id is a string").to_owned();
    assert_ne!(id, image);
    assert_eq!(snapshot["name"], "nightly");
    assert_eq!(snapshot["status"], "creating");
    assert_eq!(snapshot["source"], server.as_str());
    assert_eq!(snapshot["source_type"], "snapshot");
    assert_eq!(snapshot["source_trigger"], "manual");
    assert_eq!(snapshot["owner"], emulator.account_id());
    assert_eq!(snapshot["arch"], "x86_64");
    assert_eq!(snapshot["username"], "core");
    assert_eq!(snapshot["ancestor"]["id"], image.as_str());
    let file = emulator.images_dir().join(&id);
    assert_eq!(
        std::fs::read(&file).expect("snapshot file exists"),
        DISK_BYTES
    );

    wait_for_status(&http, &emulator, &token, "images", &id, "available").await;
    let shown = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        &format!("servers/{server}"),
        None,
    )
    .await;
    assert_eq!(ids_of(&shown.body["snapshots"]), vec![id.clone()]);
    assert_eq!(shown.body["snapshots"][0]["status"], "available");
}

#[tokio::test]
async fn snapshot_keeps_bytes_after_image_deleted() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let (image, server) = active_server(&http, &emulator, &token).await;
    let deleted = call(
        &http,
        &emulator,
        &token,
        Method::DELETE,
        &format!("images/{image}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert!(!emulator.images_dir().join(&image).exists());

    let created = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "images",
        Some(json!({"server": server})),
    )
    .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id is a string");
    assert_eq!(created.body["name"], format!("Snapshot of {server}"));
    assert_eq!(
        std::fs::read(emulator.images_dir().join(id)).expect("snapshot file exists"),
        DISK_BYTES
    );
    let shown = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        &format!("servers/{server}"),
        None,
    )
    .await;
    assert_eq!(shown.body["image"]["id"], image.as_str());
    assert_eq!(shown.body["image"]["status"], "deleted");
}

#[tokio::test]
async fn legacy_snapshot_sends_link_header() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let (_, server) = active_server(&http, &emulator, &token).await;

    let response = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        &format!("servers/{server}/snapshot"),
        None,
    )
    .await;

    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    assert_eq!(response.body["resource_type"], "server");
    assert_eq!(response.body["id"], server.as_str());
    let link = response
        .headers
        .get("link")
        .expect("Link header is present")
        .to_str()
        .expect("Link header is ASCII");
    let prefix = format!("<{}1.0/images/", emulator.api_url());
    let image_id = link
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(">; rel=snapshot"))
        .unwrap_or_else(|| panic!("unexpected Link header {link}"));
    assert!(image_id.starts_with("img-"), "{link}");
    assert_eq!(
        ids_of(&response.body["snapshots"]),
        vec![image_id.to_owned()]
    );

    let image = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        &format!("images/{image_id}"),
        None,
    )
    .await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.body["source"], server.as_str());
    assert_eq!(image.body["source_type"], "snapshot");
    assert_eq!(
        std::fs::read(emulator.images_dir().join(image_id)).expect("snapshot file exists"),
        DISK_BYTES
    );
    wait_for_status(&http, &emulator, &token, "images", image_id, "available").await;
}

#[tokio::test]
async fn snapshot_of_official_image_server_is_placeholder() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let server = create_server(&http, &emulator, &token, "img-noble").await;
    wait_for_status(&http, &emulator, &token, "servers", &server, "active").await;
    let official = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        "images/img-noble",
        None,
    )
    .await;

    let created = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "images",
        Some(json!({"server": server})),
    )
    .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id is a string");
    let bytes = std::fs::read(emulator.images_dir().join(id)).expect("snapshot file exists");
    assert!(
        bytes.starts_with(b"QFI\xfb"),
        "the placeholder is a qcow2 header"
    );
    assert!(bytes.len() <= 4096, "{} bytes", bytes.len());
    assert_eq!(created.body["format"], "qcow2");
    assert_eq!(created.body["virtual_size"], official.body["virtual_size"]);
    assert_eq!(created.body["username"], "ubuntu");
    let ready = wait_for_status(&http, &emulator, &token, "images", id, "available").await;
    assert_eq!(ready["official"], false);
}

#[tokio::test]
async fn snapshot_of_server_not_active_conflicts() {
    let emulator =
        Emulator::start_with(EmulatorConfig::default().registration_delay(Duration::from_secs(30)))
            .await
            .expect("emulator starts");
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let server = create_server(&http, &emulator, &token, "img-noble").await;

    let by_images = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "images",
        Some(json!({"server": server})),
    )
    .await;
    let legacy = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        &format!("servers/{server}/snapshot"),
        None,
    )
    .await;

    for response in [&by_images, &legacy] {
        assert_eq!(response.status, StatusCode::CONFLICT, "{}", response.body);
        assert_eq!(response.body["error_name"], "resource_conflict");
        let message = &error_messages(&response.body)[0];
        assert!(message.contains("is creating"), "{message}");
        assert!(message.contains(&server), "{message}");
    }
    assert!(!legacy.headers.contains_key("link"));
    let images = call(&http, &emulator, &token, Method::GET, "images", None).await;
    assert_eq!(
        images.body.as_array().map(Vec::len),
        Some(2),
        "only the official images exist"
    );
}

#[tokio::test]
async fn snapshot_of_unknown_server() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let legacy = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "servers/srv-zzzzz/snapshot",
        None,
    )
    .await;
    assert_eq!(legacy.status, StatusCode::NOT_FOUND);
    assert_eq!(legacy.body["error_name"], "missing_resource");

    let by_images = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "images",
        Some(json!({"server": "srv-zzzzz"})),
    )
    .await;
    assert_eq!(by_images.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_messages(&by_images.body)[0].contains("srv-zzzzz"));

    let bad_arch = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "images",
        Some(json!({"server": "srv-zzzzz", "arch": "arm64"})),
    )
    .await;
    assert_eq!(bad_arch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_messages(&bad_arch.body)[0].starts_with("arch"));
}

#[tokio::test]
async fn new_routes_need_a_token() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();

    let requests = [
        (Method::GET, "servers"),
        (Method::POST, "servers"),
        (Method::GET, "servers/srv-zzzzz"),
        (Method::DELETE, "servers/srv-zzzzz"),
        (Method::POST, "servers/srv-zzzzz/snapshot"),
        (Method::PUT, "servers/srv-zzzzz/lock_resource"),
        (Method::GET, "server_types"),
        (Method::GET, "zones/gb1-a"),
        (Method::PUT, "images/img-noble"),
        (Method::PUT, "images/img-noble/lock_resource"),
    ];
    for (method, path) in requests {
        let response = http
            .request(method.clone(), format!("{}1.0/{path}", emulator.api_url()))
            .send()
            .await
            .expect("request is sent");

        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        let body: Value = response.json().await.expect("body is JSON");
        assert_eq!(body["error"], "invalid_token");
    }
}

#[tokio::test]
async fn wrong_method_is_api_error() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let response = call(&http, &emulator, &token, Method::PATCH, "servers", None).await;

    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.body["error_name"], "method_not_allowed");
    assert!(error_messages(&response.body)[0].contains("PATCH"));
}
