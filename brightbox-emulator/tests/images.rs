//! Image routes beyond registration: listing order, official images, updates, locks
//! and deletion.

mod common;

use std::time::Duration;

use common::{call, error_messages, register_file};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SHORT_DELAY: Duration = Duration::from_millis(200);

fn ids_of(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("list is an array")
        .iter()
        .map(|item| item["id"].as_str().expect("id is a string").to_owned())
        .collect()
}

#[tokio::test]
async fn list_is_oldest_first_with_official_images() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let first = register_file(&http, &emulator, &token, "first.img", b"first disk").await;
    let second = register_file(&http, &emulator, &token, "second.img", b"second disk").await;
    let list = call(&http, &emulator, &token, Method::GET, "images", None).await;

    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        ids_of(&list.body),
        vec![
            "img-noble".to_owned(),
            "img-bookw".to_owned(),
            first,
            second
        ]
    );
    let created: Vec<&str> = list
        .body
        .as_array()
        .expect("list is an array")
        .iter()
        .map(|image| {
            image["created_at"]
                .as_str()
                .expect("created_at is a string")
        })
        .collect();
    let mut sorted = created.clone();
    sorted.sort_unstable();
    assert_eq!(created, sorted);
}

#[tokio::test]
async fn official_image_fields() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let noble = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        "images/img-noble",
        None,
    )
    .await;

    assert_eq!(noble.status, StatusCode::OK);
    let image = &noble.body;
    assert_eq!(image["name"], "Ubuntu Noble 24.04 server");
    assert_eq!(image["official"], true);
    assert_eq!(image["public"], true);
    assert_eq!(image["status"], "available");
    assert_eq!(image["owner"], "acc-brbox");
    assert_eq!(image["username"], "ubuntu");
    assert_eq!(image["arch"], "x86_64");
    assert_eq!(image["source_type"], "upload");
    assert_eq!(image["source_trigger"], "manual");
    assert_eq!(image["locked"], false);
    assert!(image["ancestor"].is_null());
    assert!(
        image["virtual_size"]
            .as_u64()
            .expect("virtual_size is a number")
            > 0
    );
    assert!(!emulator.images_dir().join("img-noble").exists());

    let account = call(&http, &emulator, &token, Method::GET, "account", None).await;
    let owned = ids_of(&account.body["images"]);
    assert!(owned.is_empty(), "{owned:?}");
}

#[tokio::test]
async fn update_changes_every_field() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let id = register_file(&http, &emulator, &token, "disk.img", b"raw disk").await;
    common::wait_for_status(&http, &emulator, &token, "images", &id, "available").await;

    let changes = json!({
        "name": "renamed",
        "description": "a test image",
        "username": "admin",
        "arch": "i686",
        "public": true,
        "compatibility_mode": true,
        "min_ram": 2048,
        "official": true,
        "unknown_field": {},
    });
    let updated = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &format!("images/{id}"),
        Some(changes),
    )
    .await;

    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let shown = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        &format!("images/{id}"),
        None,
    )
    .await;
    for body in [&updated.body, &shown.body] {
        assert_eq!(body["name"], "renamed");
        assert_eq!(body["description"], "a test image");
        assert_eq!(body["username"], "admin");
        assert_eq!(body["arch"], "i686");
        assert_eq!(body["public"], true);
        assert_eq!(body["compatibility_mode"], true);
        assert_eq!(body["min_ram"], 2048);
        assert_eq!(body["official"], false, "official is read-only");
        assert_eq!(body["status"], "available");
    }

    let cleared = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &format!("images/{id}"),
        Some(json!({"description": null, "min_ram": null})),
    )
    .await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert!(cleared.body["description"].is_null());
    assert!(cleared.body["min_ram"].is_null());
    assert_eq!(cleared.body["name"], "renamed");
}

#[tokio::test]
async fn update_deprecates_and_restores() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let id = register_file(&http, &emulator, &token, "disk.img", b"raw disk").await;
    common::wait_for_status(&http, &emulator, &token, "images", &id, "available").await;
    let path = format!("images/{id}");

    let deprecated = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &path,
        Some(json!({"status": "deprecated"})),
    )
    .await;
    assert_eq!(deprecated.status, StatusCode::OK);
    assert_eq!(deprecated.body["status"], "deprecated");
    assert!(
        deprecated.body["disk_size"]
            .as_u64()
            .is_some_and(|size| size > 0)
    );

    let list = call(&http, &emulator, &token, Method::GET, "images", None).await;
    let listed = list
        .body
        .as_array()
        .expect("list is an array")
        .iter()
        .find(|image| image["id"] == id.as_str())
        .cloned()
        .expect("the owner still sees a deprecated image");
    assert_eq!(listed["status"], "deprecated");

    let restored = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &path,
        Some(json!({"status": "available"})),
    )
    .await;
    assert_eq!(restored.status, StatusCode::OK);
    assert_eq!(restored.body["status"], "available");
}

#[tokio::test]
async fn update_rejects_bad_values() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let id = register_file(&http, &emulator, &token, "disk.img", b"raw disk").await;
    let path = format!("images/{id}");

    let cases = [
        (json!({"arch": "arm64"}), "arch is not included in the list"),
        (
            json!({"status": "deleted"}),
            "status \"deleted\" cannot be set",
        ),
        (
            json!({"status": "creating"}),
            "status \"creating\" cannot be set",
        ),
        (json!({"public": "yes"}), "public must be true or false"),
        (
            json!({"compatibility_mode": 1}),
            "compatibility_mode must be true or false",
        ),
        (json!({"min_ram": -5}), "min_ram must be a whole number"),
        (json!({"min_ram": 1.5}), "min_ram must be a whole number"),
        (json!({"name": null}), "name must be a string"),
        (json!({"username": 7}), "username must be a string or null"),
    ];
    for (request, expected) in cases {
        let response = call(
            &http,
            &emulator,
            &token,
            Method::PUT,
            &path,
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
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with(expected), "{request} -> {errors:?}");
    }

    let several = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &path,
        Some(json!({"arch": "arm64", "public": "no", "name": "kept?"})),
    )
    .await;
    assert_eq!(several.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_messages(&several.body).len(), 2);
    let shown = call(&http, &emulator, &token, Method::GET, &path, None).await;
    assert_eq!(
        shown.body["name"], "disk.img",
        "a rejected update changes nothing"
    );
}

#[tokio::test]
async fn update_rejects_invalid_json_and_unknown_id() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let invalid = http
        .put(format!("{}1.0/images/img-noble", emulator.api_url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request is sent");
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);

    let missing = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        "images/img-zzzzz",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error_name"], "missing_resource");
    assert!(error_messages(&missing.body)[0].contains("img-zzzzz"));
}

#[tokio::test]
async fn status_change_while_creating_conflicts() {
    let emulator = common::start(Duration::from_secs(30)).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let id = register_file(&http, &emulator, &token, "disk.img", b"raw disk").await;

    let response = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &format!("images/{id}"),
        Some(json!({"status": "deprecated"})),
    )
    .await;

    assert_eq!(response.status, StatusCode::CONFLICT);
    assert_eq!(response.body["error_name"], "resource_conflict");
    assert!(error_messages(&response.body)[0].contains("is creating"));

    let renamed = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &format!("images/{id}"),
        Some(json!({"name": "still creating"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK);
    assert_eq!(renamed.body["status"], "creating");
}

#[tokio::test]
async fn official_images_cannot_change() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let attempts = [
        (
            Method::PUT,
            "images/img-noble",
            Some(json!({"name": "mine"})),
        ),
        (Method::PUT, "images/img-noble/lock_resource", None),
        (Method::PUT, "images/img-noble/unlock_resource", None),
        (Method::DELETE, "images/img-noble", None),
    ];
    for (method, path, body) in attempts {
        let response = call(&http, &emulator, &token, method.clone(), path, body).await;

        assert_eq!(response.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(response.body["error_name"], "forbidden");
        assert!(error_messages(&response.body)[0].contains("acc-brbox"));
    }
    let shown = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        "images/img-noble",
        None,
    )
    .await;
    assert_eq!(shown.body["name"], "Ubuntu Noble 24.04 server");
}

#[tokio::test]
async fn lock_blocks_delete() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let id = register_file(&http, &emulator, &token, "disk.img", b"raw disk").await;
    let path = format!("images/{id}");
    let file = emulator.images_dir().join(&id);

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
    assert_eq!(refused.body["error_name"], "resource_conflict");
    let message = &error_messages(&refused.body)[0];
    assert!(message.contains("locked"), "{message}");
    assert!(message.contains("unlock_resource"), "{message}");
    assert!(file.is_file(), "a locked image keeps its file");
    let shown = call(&http, &emulator, &token, Method::GET, &path, None).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["locked"], true);

    let unlocked = call(
        &http,
        &emulator,
        &token,
        Method::PUT,
        &format!("{path}/unlock_resource"),
        None,
    )
    .await;
    assert_eq!(unlocked.status, StatusCode::OK);
    assert_eq!(unlocked.body["locked"], false);

    let deleted = call(&http, &emulator, &token, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(deleted.body["status"], "deleted");
    assert!(!file.exists());
    let gone = call(&http, &emulator, &token, Method::GET, &path, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lock_unknown_image_is_not_found() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    for path in [
        "images/img-zzzzz/lock_resource",
        "images/img-zzzzz/unlock_resource",
    ] {
        let response = call(&http, &emulator, &token, Method::PUT, path, None).await;

        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.body["error_name"], "missing_resource");
    }
}

#[tokio::test]
async fn disk_size_grows_while_creating() {
    let emulator = common::start(Duration::from_secs(2)).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let four_mib = vec![7_u8; 4 * 1024 * 1024];
    std::fs::write(emulator.incoming_dir().join("disk.img"), &four_mib).expect("upload is written");

    let created = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "images",
        Some(json!({"arch": "x86_64", "source": "disk.img"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["status"], "creating");
    assert_eq!(created.body["disk_size"], 0);
    let id = created.body["id"]
        .as_str()
        .expect("id is a string")
        .to_owned();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let halfway = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        &format!("images/{id}"),
        None,
    )
    .await;
    assert_eq!(halfway.body["status"], "creating");
    let size = halfway.body["disk_size"]
        .as_u64()
        .expect("disk_size is a number");
    assert!((1..=3).contains(&size), "disk_size {size} halfway through");

    let ready = common::wait_for_status(&http, &emulator, &token, "images", &id, "available").await;
    assert_eq!(ready["disk_size"], 4);
}
