//! Faults switched on through `Emulator::faults` and `EmulatorConfig`.

mod common;

use std::time::Duration;

use brightbox_emulator::{Emulator, EmulatorConfig};
use common::{call, error_messages, register_file, wait_for_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SHORT_DELAY: Duration = Duration::from_millis(200);

fn own_image_ids(emulator: &Emulator, list: &Value) -> Vec<String> {
    list.as_array()
        .expect("list is an array")
        .iter()
        .filter(|image| image["owner"] == emulator.account_id())
        .map(|image| image["id"].as_str().expect("id is a string").to_owned())
        .collect()
}

fn dir_entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("folder is readable")
        .map(|entry| {
            entry
                .expect("entry is readable")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

async fn register(
    http: &reqwest::Client,
    emulator: &Emulator,
    token: &str,
    name: &str,
) -> common::ApiResponse {
    std::fs::write(emulator.incoming_dir().join(name), b"raw disk").expect("upload is written");
    call(
        http,
        emulator,
        token,
        Method::POST,
        "images",
        Some(json!({"arch": "x86_64", "source": name})),
    )
    .await
}

#[tokio::test]
async fn register_after_create_fails_but_creates() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    emulator.faults().fail_next_register_after_create(502);

    let failed = register(&http, &emulator, &token, "disk.img").await;

    assert_eq!(failed.status, StatusCode::BAD_GATEWAY);
    assert_eq!(failed.body["error_name"], "bad_gateway");
    assert!(error_messages(&failed.body)[0].contains("the image was created"));
    assert!(dir_entries(&emulator.incoming_dir()).is_empty());
    let list = call(&http, &emulator, &token, Method::GET, "images", None).await;
    let created = own_image_ids(&emulator, &list.body);
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(dir_entries(&emulator.images_dir()), created);
    let image = &list.body.as_array().expect("list is an array")[2];
    assert_eq!(image["source"], "disk.img");

    let next = register(&http, &emulator, &token, "second.img").await;
    assert_eq!(next.status, StatusCode::CREATED, "the fault applies once");
}

#[tokio::test]
async fn register_fails_without_creating() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    emulator.faults().fail_next_register(503);

    let failed = register(&http, &emulator, &token, "disk.img").await;

    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failed.body["error_name"], "service_unavailable");
    assert!(error_messages(&failed.body)[0].contains("no image was created"));
    assert_eq!(dir_entries(&emulator.incoming_dir()), vec!["disk.img"]);
    assert!(dir_entries(&emulator.images_dir()).is_empty());
    let list = call(&http, &emulator, &token, Method::GET, "images", None).await;
    assert!(own_image_ids(&emulator, &list.body).is_empty());

    let retried = register(&http, &emulator, &token, "disk.img").await;
    assert_eq!(retried.status, StatusCode::CREATED);
}

#[tokio::test]
async fn register_fault_waits_for_valid_request() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    emulator.faults().fail_next_register_after_create(500);

    let rejected = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "images",
        Some(json!({"arch": "x86_64", "source": "missing.img"})),
    )
    .await;
    assert_eq!(rejected.status, StatusCode::UNPROCESSABLE_ENTITY);

    let failed = register(&http, &emulator, &token, "disk.img").await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed.body["error_name"], "internal_error");
}

#[tokio::test]
async fn snapshot_register_fault_creates_image() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let created = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "servers",
        Some(json!({"image": "img-noble"})),
    )
    .await;
    let server = created.body["id"]
        .as_str()
        .expect("id is a string")
        .to_owned();
    wait_for_status(&http, &emulator, &token, "servers", &server, "active").await;
    emulator.faults().fail_next_register_after_create(504);

    let failed = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "images",
        Some(json!({"server": server})),
    )
    .await;

    assert_eq!(failed.status, StatusCode::GATEWAY_TIMEOUT);
    let shown = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        &format!("servers/{server}"),
        None,
    )
    .await;
    let snapshots = shown.body["snapshots"]
        .as_array()
        .expect("snapshots is an array");
    assert_eq!(snapshots.len(), 1);
    assert_eq!(dir_entries(&emulator.images_dir()).len(), 1);
}

#[tokio::test]
async fn outcome_failed_marks_new_images() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let before = register_file(&http, &emulator, &token, "before.img", b"raw disk").await;
    let server = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "servers",
        Some(json!({"image": "img-noble"})),
    )
    .await;
    let server = server.body["id"]
        .as_str()
        .expect("id is a string")
        .to_owned();
    wait_for_status(&http, &emulator, &token, "servers", &server, "active").await;

    emulator.faults().registration_outcome_failed(true);
    let upload = register_file(&http, &emulator, &token, "upload.img", b"raw disk").await;
    let snapshot = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "images",
        Some(json!({"server": server})),
    )
    .await;
    assert_eq!(snapshot.status, StatusCode::CREATED);
    assert_eq!(snapshot.body["status"], "creating");
    let snapshot = snapshot.body["id"]
        .as_str()
        .expect("id is a string")
        .to_owned();

    let failed_upload =
        wait_for_status(&http, &emulator, &token, "images", &upload, "failed").await;
    assert_eq!(failed_upload["disk_size"], 0);
    wait_for_status(&http, &emulator, &token, "images", &snapshot, "failed").await;
    wait_for_status(&http, &emulator, &token, "images", &before, "available").await;

    emulator.faults().registration_outcome_failed(false);
    let after = register_file(&http, &emulator, &token, "after.img", b"raw disk").await;
    wait_for_status(&http, &emulator, &token, "images", &after, "available").await;
}

#[tokio::test]
async fn outcome_failed_from_config() {
    let emulator = Emulator::start_with(
        EmulatorConfig::default()
            .registration_delay(SHORT_DELAY)
            .registration_outcome_failed(true),
    )
    .await
    .expect("emulator starts");
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let id = register_file(&http, &emulator, &token, "disk.img", b"raw disk").await;

    wait_for_status(&http, &emulator, &token, "images", &id, "failed").await;
}

#[tokio::test]
async fn ftp_retired_returns_gone() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    emulator.faults().ftp_retired(true);

    for path in [
        format!("accounts/{}/reset_ftp_password", emulator.account_id()),
        "account/reset_ftp_password".to_owned(),
    ] {
        let response = call(&http, &emulator, &token, Method::POST, &path, None).await;

        assert_eq!(response.status, StatusCode::GONE, "{path}");
        assert_eq!(response.body["error_name"], "gone");
        let message = &error_messages(&response.body)[0];
        assert!(message.contains("retired"), "{message}");
        assert!(message.contains("http_url"), "{message}");
    }
    let account = call(&http, &emulator, &token, Method::GET, "account", None).await;
    let fields = account.body.as_object().expect("account is an object");
    for field in [
        "library_ftp_host",
        "library_ftp_user",
        "library_ftp_password",
    ] {
        assert!(!fields.contains_key(field), "{field} is absent");
    }

    emulator.faults().ftp_retired(false);
    let password = common::reset_ftp_password(&http, &emulator, &token).await;
    assert!(!password.is_empty());
}

#[tokio::test]
async fn ftp_retired_from_config() {
    let emulator = Emulator::start_with(EmulatorConfig::default().ftp_retired(true))
        .await
        .expect("emulator starts");
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let response = call(
        &http,
        &emulator,
        &token,
        Method::POST,
        "account/reset_ftp_password",
        None,
    )
    .await;

    assert_eq!(response.status, StatusCode::GONE);
    assert!(
        !emulator.reset_ftp_password().is_empty(),
        "the Rust method still works"
    );
}

#[tokio::test]
async fn requests_fail_then_recover() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    emulator.faults().fail_next_requests("/1.0/images", 503, 2);

    for attempt in 1..=2 {
        let response = call(&http, &emulator, &token, Method::GET, "images", None).await;

        assert_eq!(
            response.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "attempt {attempt}"
        );
        assert_eq!(response.body["error_name"], "service_unavailable");
        assert!(error_messages(&response.body)[0].contains("/1.0/images"));
        assert!(!response.headers.contains_key("retry-after"));
        assert!(response.headers.contains_key("x-request-id"));
    }
    let other = call(&http, &emulator, &token, Method::GET, "accounts", None).await;
    assert_eq!(other.status, StatusCode::OK, "other paths are not affected");
    let recovered = call(&http, &emulator, &token, Method::GET, "images", None).await;
    assert_eq!(recovered.status, StatusCode::OK);
}

#[tokio::test]
async fn requests_fail_with_retry_after() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    emulator.faults().fail_next_requests_with_retry_after(
        "/token",
        429,
        1,
        Duration::from_millis(2500),
    );

    // The fault applies before authentication, so even valid credentials get it.
    let limited = http
        .post(format!("{}token", emulator.api_url()))
        .basic_auth(emulator.client_id(), Some(emulator.client_secret()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request is sent");

    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = limited
        .headers()
        .get("retry-after")
        .expect("Retry-After is present")
        .to_str()
        .expect("Retry-After is ASCII")
        .to_owned();
    assert_eq!(retry_after, "2");
    let body: Value = limited.json().await.expect("body is JSON");
    assert_eq!(body["error_name"], "too_many_requests");
    assert!(!body.to_string().contains(emulator.client_secret()));

    let token = common::token(&http, &emulator).await;
    assert!(!token.is_empty());
}

#[tokio::test]
async fn invalid_fault_status_becomes_500() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    emulator.faults().fail_next_requests("/1.0/", 200, 1);

    let response = call(&http, &emulator, &token, Method::GET, "zones", None).await;

    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.body["error_name"], "internal_error");
}

#[tokio::test]
async fn registration_delay_changes_at_run_time() {
    let emulator = common::start(Duration::from_secs(30)).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let faults = emulator.faults();
    assert_eq!(faults.current_registration_delay(), Duration::from_secs(30));

    let slow = register_file(&http, &emulator, &token, "slow.img", b"raw disk").await;
    faults.registration_delay(Duration::ZERO);
    let fast = register_file(&http, &emulator, &token, "fast.img", b"raw disk").await;

    let fast = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        &format!("images/{fast}"),
        None,
    )
    .await;
    assert_eq!(fast.body["status"], "available");
    let slow = call(
        &http,
        &emulator,
        &token,
        Method::GET,
        &format!("images/{slow}"),
        None,
    )
    .await;
    assert_eq!(
        slow.body["status"], "creating",
        "earlier images keep their time"
    );
    assert_eq!(faults.current_registration_delay(), Duration::ZERO);
}

#[tokio::test]
async fn clear_removes_faults() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let faults = emulator.faults();
    faults.fail_next_requests("/1.0/", 503, 10);
    faults.fail_next_register(500);
    faults.ftp_retired(true);
    faults.registration_outcome_failed(true);

    faults.clear();

    let list = call(&http, &emulator, &token, Method::GET, "images", None).await;
    assert_eq!(list.status, StatusCode::OK);
    let id = register_file(&http, &emulator, &token, "disk.img", b"raw disk").await;
    wait_for_status(&http, &emulator, &token, "images", &id, "available").await;
    let password = common::reset_ftp_password(&http, &emulator, &token).await;
    assert!(!password.is_empty());
    assert_eq!(faults.current_registration_delay(), SHORT_DELAY);
}

#[tokio::test]
async fn requests_fail_with_retry_after_date() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    emulator.faults().fail_next_requests_with_retry_after_date(
        "/1.0/servers",
        503,
        1,
        Duration::from_secs(120),
    );

    let response = call(&http, &emulator, &token, Method::GET, "servers", None).await;

    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    let date = response
        .headers
        .get("retry-after")
        .expect("Retry-After is present")
        .to_str()
        .expect("Retry-After is ASCII")
        .to_owned();
    assert!(date.ends_with(" GMT"), "{date}");
    let at = chrono::DateTime::parse_from_rfc2822(&date).expect("Retry-After is an HTTP-date");
    let ahead = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        (100..=120).contains(&ahead.num_seconds()),
        "{date} is {ahead} ahead"
    );
}
