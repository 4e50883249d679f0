//! The HTTP API against a running emulator: tokens, accounts and image registration.

mod common;

use std::time::Duration;

use brightbox_emulator::{Emulator, EmulatorConfig, EmulatorError};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SHORT_DELAY: Duration = Duration::from_millis(300);

async fn post_image(
    http: &reqwest::Client,
    emulator: &Emulator,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = http
        .post(format!("{}1.0/images", emulator.api_url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("image request is sent");
    let status = response.status();
    (
        status,
        response.json().await.expect("image response is JSON"),
    )
}

async fn get_json(http: &reqwest::Client, url: String, token: &str) -> (StatusCode, Value) {
    let response = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET is sent");
    let status = response.status();
    (status, response.json().await.expect("response is JSON"))
}

fn errors_of(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .expect("errors is an array")
        .iter()
        .map(|error| error.as_str().expect("each error is a string").to_owned())
        .collect()
}

fn incoming_is_empty(emulator: &Emulator) -> bool {
    std::fs::read_dir(emulator.incoming_dir())
        .expect("incoming/ is readable")
        .next()
        .is_none()
}

#[tokio::test]
async fn token_form_with_basic_auth() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{}token", emulator.api_url()))
        .basic_auth(emulator.client_id(), Some(emulator.client_secret()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request is sent");

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.expect("body is JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    let token = body["access_token"]
        .as_str()
        .expect("access_token is a string");
    assert!(token.len() >= 32, "{token}");
    assert_ne!(token, emulator.client_secret());
}

#[tokio::test]
async fn token_json_body_credentials() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{}token/", emulator.api_url()))
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": emulator.client_id(),
            "client_secret": emulator.client_secret(),
        }))
        .send()
        .await
        .expect("token request is sent");

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("body is JSON");
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn token_bad_client_is_unauthorized() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();

    for (client_id, secret) in [
        (emulator.client_id(), "wrong-secret"),
        ("cli-other", emulator.client_secret()),
    ] {
        let response = http
            .post(format!("{}token", emulator.api_url()))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request is sent");

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{client_id}");
        let body: Value = response.json().await.expect("body is JSON");
        assert_eq!(body["error"], "invalid_client");
        let description = body["error_description"]
            .as_str()
            .expect("description is a string");
        assert!(
            !description.contains(emulator.client_secret()),
            "{description}"
        );
    }
}

#[tokio::test]
async fn token_without_credentials_is_unauthorized() {
    let emulator = common::start(SHORT_DELAY).await;
    let response = reqwest::Client::new()
        .post(format!("{}token", emulator.api_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request is sent");

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("body is JSON");
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn token_other_grant_types_rejected() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{}token", emulator.api_url()))
        .basic_auth(emulator.client_id(), Some(emulator.client_secret()))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .expect("token request is sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("body is JSON");
    assert_eq!(body["error"], "unsupported_grant_type");

    let response = http
        .post(format!("{}token", emulator.api_url()))
        .basic_auth(emulator.client_id(), Some(emulator.client_secret()))
        .form(&[("scope", "infrastructure")])
        .send()
        .await
        .expect("token request is sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("body is JSON");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn api_without_token_is_unauthorized() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();

    for request in [
        http.get(format!("{}1.0/accounts", emulator.api_url())),
        http.get(format!("{}1.0/images", emulator.api_url()))
            .bearer_auth("not-an-issued-token"),
        http.post(format!(
            "{}1.0/accounts/{}/reset_ftp_password",
            emulator.api_url(),
            emulator.account_id()
        ))
        .basic_auth(emulator.client_id(), Some(emulator.client_secret())),
    ] {
        let response = request.send().await.expect("request is sent");

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["www-authenticate"],
            "OAuth error=\"invalid_token\""
        );
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.expect("body is JSON");
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(
            body["error_description"],
            "The OAuth token can not be found"
        );
    }
}

#[tokio::test]
async fn token_expires_after_lifetime() {
    let emulator =
        Emulator::start_with(EmulatorConfig::default().token_lifetime(Duration::from_secs(1)))
            .await
            .expect("emulator starts");
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let (status, _) = get_json(&http, format!("{}1.0/accounts", emulator.api_url()), &token).await;
    assert_eq!(status, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) =
        get_json(&http, format!("{}1.0/accounts", emulator.api_url()), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn accounts_list_and_show() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let (status, list) = get_json(
        &http,
        format!(
            "{}1.0/accounts?account_id={}",
            emulator.api_url(),
            emulator.account_id()
        ),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let accounts = list.as_array().expect("accounts is an array");
    assert_eq!(accounts.len(), 1);
    let account = &accounts[0];
    assert_eq!(account["id"], emulator.account_id());
    assert_eq!(account["resource_type"], "account");
    assert_eq!(account["status"], "active");
    assert_eq!(
        account["url"],
        format!(
            "{}1.0/accounts/{}",
            emulator.api_url(),
            emulator.account_id()
        )
    );
    assert!(account["ram_limit"].is_u64());
    assert!(account["cloud_ips_limit"].is_u64());
    assert!(account["created_at"].is_string());
    assert!(account["library_ftp_password"].is_null());

    let (status, shown) = get_json(
        &http,
        format!(
            "{}1.0/accounts/{}",
            emulator.api_url(),
            emulator.account_id()
        ),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["id"], emulator.account_id());

    let (status, missing) = get_json(
        &http,
        format!("{}1.0/accounts/acc-zzzzz", emulator.api_url()),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error_name"], "missing_resource");
    assert!(errors_of(&missing)[0].contains("acc-zzzzz"));
}

#[tokio::test]
async fn reset_ftp_password_returns_new_password() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let url = format!(
        "{}1.0/accounts/{}/reset_ftp_password",
        emulator.api_url(),
        emulator.account_id()
    );

    let mut passwords = Vec::new();
    for _ in 0..2 {
        let response = http
            .post(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("reset is sent");
        assert_eq!(response.status(), StatusCode::OK);
        let account: Value = response.json().await.expect("body is JSON");
        assert_eq!(account["id"], emulator.account_id());
        assert_eq!(
            account["library_ftp_host"],
            format!("127.0.0.1:{}", emulator.ftp_addr().port())
        );
        assert_eq!(account["library_ftp_user"], emulator.account_id());
        let password = account["library_ftp_password"]
            .as_str()
            .expect("password is a string")
            .to_owned();
        assert!(password.len() >= 16, "{password}");
        passwords.push(password);
    }
    assert_ne!(passwords[0], passwords[1]);

    let (_, account) = get_json(
        &http,
        format!(
            "{}1.0/accounts/{}",
            emulator.api_url(),
            emulator.account_id()
        ),
        &token,
    )
    .await;
    assert!(account["library_ftp_password"].is_null());

    let response = http
        .post(format!(
            "{}1.0/accounts/acc-zzzzz/reset_ftp_password",
            emulator.api_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("reset is sent");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn register_rejects_bad_arch() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    std::fs::write(emulator.incoming_dir().join("disk.img"), b"raw").expect("file is written");

    for arch in [json!("arm64"), Value::Null] {
        let (status, body) = post_image(
            &http,
            &emulator,
            &token,
            json!({"name": "x", "arch": arch, "source": "disk.img"}),
        )
        .await;

        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{arch}");
        assert_eq!(body["error_name"], "unprocessable_entity");
        let errors = errors_of(&body);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("arch"), "{errors:?}");
    }
    let (_, body) = post_image(
        &http,
        &emulator,
        &token,
        json!({"arch": "arm64", "source": "disk.img"}),
    )
    .await;
    assert!(errors_of(&body)[0].contains("arch is not included in the list"));
    assert!(emulator.incoming_dir().join("disk.img").is_file());
}

#[tokio::test]
async fn register_rejects_missing_or_extra_sources() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let cases = [
        (
            json!({"arch": "x86_64"}),
            "one of source, http_url, server or volume is required",
        ),
        (
            json!({"arch": "x86_64", "source": "a.img", "http_url": "http://127.0.0.1/a"}),
            "only one of source, http_url, server or volume may be given, got source, http_url",
        ),
        (
            json!({"arch": "x86_64", "http_url": "http://127.0.0.1/a.img"}),
            "http_url points at 127.0.0.1:80, which is not this emulator",
        ),
        (
            json!({"arch": "x86_64", "server": "srv-abcde"}),
            "server srv-abcde was not found",
        ),
        (
            json!({"arch": "x86_64", "volume": "vol-abcde"}),
            "volume is not supported by the emulator",
        ),
    ];
    for (request, expected) in cases {
        let (status, body) = post_image(&http, &emulator, &token, request.clone()).await;

        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{request}");
        let errors = errors_of(&body);
        assert!(
            errors.iter().any(|error| error.starts_with(expected)),
            "{request} -> {errors:?}"
        );
    }
}

#[tokio::test]
async fn register_rejects_absent_file() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;

    let (status, body) = post_image(
        &http,
        &emulator,
        &token,
        json!({"arch": "x86_64", "source": "never-uploaded.img"}),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = errors_of(&body);
    assert!(errors[0].contains("\"never-uploaded.img\""), "{errors:?}");
    assert!(errors[0].contains("incoming/"), "{errors:?}");
}

#[tokio::test]
async fn register_rejects_bad_source_characters() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    std::fs::create_dir(emulator.incoming_dir().join("sub")).expect("folder is created");
    std::fs::write(emulator.incoming_dir().join("sub").join("a.img"), b"raw")
        .expect("file is written");

    for source in ["sub/a.img", "../images/x", "a b.img", "", "ünï.img"] {
        let (status, body) = post_image(
            &http,
            &emulator,
            &token,
            json!({"arch": "i686", "source": source}),
        )
        .await;

        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{source:?}");
        let errors = errors_of(&body);
        assert!(errors[0].contains(&format!("{source:?}")), "{errors:?}");
        assert!(errors[0].contains("-_+.~^"), "{errors:?}");
    }
}

#[tokio::test]
async fn register_rejects_folders_and_symlinks() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    std::fs::create_dir(emulator.incoming_dir().join("folder")).expect("folder is created");
    let outside = emulator.storage_dir().join("outside.img");
    std::fs::write(&outside, b"raw").expect("file is written");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, emulator.incoming_dir().join("link.img"))
        .expect("symlink is created");

    for source in ["folder", "link.img", "..", "."] {
        let (status, body) = post_image(
            &http,
            &emulator,
            &token,
            json!({"arch": "x86_64", "source": source}),
        )
        .await;

        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{source}");
        assert!(
            errors_of(&body)[0].contains("not found as a regular file"),
            "{body}"
        );
    }
    assert!(outside.is_file());
}

#[tokio::test]
async fn register_rejects_invalid_json() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let url = format!("{}1.0/images", emulator.api_url());

    for (body, expected) in [
        ("{not json", "not valid JSON"),
        ("", "empty"),
        ("[1, 2]", "must be a JSON object"),
        (r#"{"arch": 64, "source": "a.img"}"#, "arch"),
        (
            r#"{"arch": "x86_64", "source": "a.img", "min_ram": "lots"}"#,
            "min_ram",
        ),
    ] {
        let response = http
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request is sent");

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let reply: Value = response.json().await.expect("body is JSON");
        assert_eq!(reply["error_name"], "bad_request");
        assert!(errors_of(&reply)[0].contains(expected), "{body} -> {reply}");
    }
}

#[tokio::test]
async fn register_qcow2_becomes_available() {
    let delay = Duration::from_millis(600);
    let emulator = common::start(delay).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let virtual_size = 2 * 1024 * 1024 * 1024 + 1;
    let file = common::qcow2_file(virtual_size, 1024 * 1024 + 512);
    std::fs::write(emulator.incoming_dir().join("focal.qcow2"), &file).expect("file is written");

    let (status, created) = post_image(
        &http,
        &emulator,
        &token,
        json!({
            "name": "Focal",
            "description": "test image",
            "username": "ubuntu",
            "arch": "x86_64",
            "source": "focal.qcow2",
            "min_ram": 1024,
        }),
    )
    .await;

    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id is a string").to_owned();
    assert_eq!(id.len(), 9, "{id}");
    assert!(id.starts_with("img-"), "{id}");
    assert!(
        id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
        "{id}"
    );
    assert_eq!(created["status"], "creating");
    assert_eq!(created["disk_size"], 0);
    assert_eq!(created["virtual_size"], 2049);
    assert_eq!(created["owner"], emulator.account_id());
    assert_eq!(created["source"], "focal.qcow2");
    assert_eq!(created["source_type"], "upload");
    assert_eq!(created["arch"], "x86_64");
    assert_eq!(created["name"], "Focal");
    assert_eq!(created["description"], "test image");
    assert_eq!(created["username"], "ubuntu");
    assert_eq!(created["min_ram"], 1024);
    assert_eq!(created["official"], false);
    assert_eq!(created["public"], false);
    assert_eq!(created["compatibility_mode"], false);
    assert_eq!(created["resource_type"], "image");
    assert_eq!(created["format"], "qcow2");
    assert!(created["ancestor"].is_null());
    assert!(created["licence_name"].is_null());
    assert_eq!(
        created["url"],
        format!("{}1.0/images/{id}", emulator.api_url())
    );
    let created_at = created["created_at"]
        .as_str()
        .expect("created_at is a string");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "{created_at}"
    );

    let stored = emulator.images_dir().join(&id);
    assert_eq!(std::fs::read(&stored).expect("image file is stored"), file);
    assert!(incoming_is_empty(&emulator));

    let image_url = format!("{}1.0/images/{id}", emulator.api_url());
    let (_, polled) = get_json(&http, image_url.clone(), &token).await;
    assert_eq!(polled["status"], "creating");

    tokio::time::sleep(delay + Duration::from_millis(100)).await;
    let (status, ready) = get_json(&http, image_url, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["status"], "available");
    assert_eq!(ready["disk_size"], 2);
    assert_eq!(ready["virtual_size"], 2049);

    let (_, list) = get_json(&http, format!("{}1.0/images", emulator.api_url()), &token).await;
    let own_ids: Vec<&str> = list
        .as_array()
        .expect("images is an array")
        .iter()
        .filter(|image| image["owner"] == emulator.account_id())
        .filter_map(|image| image["id"].as_str())
        .collect();
    assert_eq!(own_ids, vec![id.as_str()]);
}

#[tokio::test]
async fn register_same_file_twice_fails() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    std::fs::write(emulator.incoming_dir().join("once.img"), b"raw bytes")
        .expect("file is written");
    let request = json!({"arch": "x86_64", "source": "once.img"});

    let (first, _) = post_image(&http, &emulator, &token, request.clone()).await;
    let (second, body) = post_image(&http, &emulator, &token, request).await;

    assert_eq!(first, StatusCode::CREATED);
    assert_eq!(second, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(errors_of(&body)[0].contains("\"once.img\""));
}

#[tokio::test]
async fn register_corrupt_images_fail() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let mut bad_version = common::qcow2_file(1024 * 1024, 4096);
    bad_version[4..8].copy_from_slice(&9_u32.to_be_bytes());
    std::fs::write(emulator.incoming_dir().join("bad.qcow2"), &bad_version)
        .expect("file is written");
    std::fs::write(emulator.incoming_dir().join("empty.img"), b"").expect("file is written");

    let mut ids = Vec::new();
    for source in ["bad.qcow2", "empty.img"] {
        let (status, created) = post_image(
            &http,
            &emulator,
            &token,
            json!({"arch": "x86_64", "source": source}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{source}");
        assert_eq!(created["status"], "creating");
        ids.push(created["id"].as_str().expect("id is a string").to_owned());
    }

    tokio::time::sleep(SHORT_DELAY + Duration::from_millis(100)).await;
    for id in ids {
        let (_, image) = get_json(
            &http,
            format!("{}1.0/images/{id}", emulator.api_url()),
            &token,
        )
        .await;
        assert_eq!(image["status"], "failed", "{image}");
        assert_eq!(image["disk_size"], 0);
    }
}

#[tokio::test]
async fn register_gzip_reads_trailer_size() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    // A gzip header, a few bytes standing for the deflate stream, then CRC32 and ISIZE.
    let mut file = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    file.extend_from_slice(&[0x63, 0x60, 0x18, 0x05]);
    file.extend_from_slice(&0_u32.to_le_bytes());
    file.extend_from_slice(&(5 * 1024 * 1024_u32).to_le_bytes());
    std::fs::write(emulator.incoming_dir().join("disk.gz"), &file).expect("file is written");

    let (status, created) = post_image(
        &http,
        &emulator,
        &token,
        json!({"arch": "i686", "source": "disk.gz"}),
    )
    .await;

    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["format"], "gzip");
    assert_eq!(created["virtual_size"], 5);
    assert_eq!(created["arch"], "i686");
    assert_eq!(created["name"], "disk.gz");
}

#[tokio::test]
async fn image_show_unknown_and_delete() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    std::fs::write(emulator.incoming_dir().join("gone.img"), b"raw bytes")
        .expect("file is written");
    let (_, created) = post_image(
        &http,
        &emulator,
        &token,
        json!({"arch": "x86_64", "source": "gone.img"}),
    )
    .await;
    let id = created["id"].as_str().expect("id is a string").to_owned();
    let url = format!("{}1.0/images/{id}", emulator.api_url());

    let response = http
        .delete(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("delete is sent");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let deleted: Value = response.json().await.expect("body is JSON");
    assert_eq!(deleted["id"], id.as_str());
    assert_eq!(deleted["status"], "deleted");
    assert!(!emulator.images_dir().join(&id).exists());

    let (status, missing) = get_json(&http, url, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error_name"], "missing_resource");
    assert!(errors_of(&missing)[0].contains(&id));
}

#[tokio::test]
async fn unknown_route_is_not_found() {
    let emulator = common::start(SHORT_DELAY).await;
    let response = reqwest::Client::new()
        .get(format!("{}2.0/things", emulator.api_url()))
        .send()
        .await
        .expect("request is sent");

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.expect("body is JSON");
    assert_eq!(body["error_name"], "missing_resource");
}

#[tokio::test]
async fn request_ids_differ() {
    let emulator = common::start(SHORT_DELAY).await;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = http
            .get(format!("{}1.0/accounts", emulator.api_url()))
            .send()
            .await
            .expect("request is sent");
        ids.push(response.headers()["x-request-id"].clone());
    }
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn storage_dir_is_kept_and_prepared() {
    let parent = tempfile::tempdir().expect("temporary folder is created");
    let storage = parent.path().join("library");

    let emulator = Emulator::start_with(EmulatorConfig::default().storage_dir(&storage))
        .await
        .expect("emulator starts");
    assert!(storage.join("incoming").is_dir());
    assert!(storage.join("images").is_dir());
    assert_eq!(
        emulator.storage_dir(),
        storage.canonicalize().expect("storage folder exists")
    );
    emulator.shutdown().await;

    assert!(storage.join("incoming").is_dir());
}

#[tokio::test]
async fn temporary_storage_removed_on_drop() {
    let emulator = common::start(SHORT_DELAY).await;
    let storage = emulator.storage_dir().to_owned();
    let ca_path = emulator.ca_certificate_path().to_owned();
    assert!(storage.is_dir());
    assert!(ca_path.is_file());

    drop(emulator);

    assert!(!storage.exists());
    assert!(!ca_path.exists());
}

#[tokio::test]
async fn storage_path_that_is_a_file_is_rejected() {
    let parent = tempfile::tempdir().expect("temporary folder is created");
    let file = parent.path().join("not-a-folder");
    std::fs::write(&file, b"x").expect("file is written");

    let error = Emulator::start_with(EmulatorConfig::default().storage_dir(&file))
        .await
        .expect_err("a file is not a storage folder");

    assert!(
        matches!(&error, EmulatorError::StorageNotADirectory { path } if *path == file),
        "{error:?}"
    );
    assert!(error.to_string().contains("not-a-folder"), "{error}");
}

#[tokio::test]
async fn api_port_in_use_is_a_bind_error() {
    let port_holder = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port binds");
    let port = port_holder
        .local_addr()
        .expect("probe has an address")
        .port();

    let error = Emulator::start_with(EmulatorConfig::default().api_port(port))
        .await
        .expect_err("a taken port cannot be bound");

    assert!(
        matches!(&error, EmulatorError::Bind { service: "API", port: p, .. } if *p == port),
        "{error:?}"
    );
    assert!(std::error::Error::source(&error).is_some());
    assert!(error.to_string().contains(&port.to_string()), "{error}");
}

#[tokio::test]
async fn ftp_port_in_use_is_a_bind_error() {
    let port_holder = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port binds");
    let port = port_holder
        .local_addr()
        .expect("probe has an address")
        .port();

    let error = Emulator::start_with(EmulatorConfig::default().ftp_port(port))
        .await
        .expect_err("a taken port cannot be bound");

    assert!(
        matches!(&error, EmulatorError::Bind { service: "FTP", port: p, .. } if *p == port),
        "{error:?}"
    );
}

#[tokio::test]
async fn fixed_ftp_port_is_used() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port binds");
    let port = probe.local_addr().expect("probe has an address").port();
    drop(probe);

    let emulator = Emulator::start_with(EmulatorConfig::default().ftp_port(port))
        .await
        .expect("emulator starts");

    assert_eq!(
        emulator.ftp_addr(),
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    );
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let (_, account) = get_json(&http, format!("{}1.0/account", emulator.api_url()), &token).await;
    assert_eq!(account["library_ftp_host"], format!("127.0.0.1:{port}"));
}

#[test]
fn emulator_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Emulator>();
    assert_send_sync::<EmulatorConfig>();
    assert_send_sync::<EmulatorError>();
}

#[tokio::test]
async fn fixed_api_port_is_used() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port binds");
    let port = probe.local_addr().expect("probe has an address").port();
    drop(probe);

    let emulator = Emulator::start_with(EmulatorConfig::default().api_port(port))
        .await
        .expect("emulator starts");

    assert_eq!(emulator.api_url(), format!("http://127.0.0.1:{port}/"));
}

#[tokio::test]
async fn debug_output_hides_secret() {
    let emulator = common::start(SHORT_DELAY).await;
    let debug = format!("{emulator:?}");
    assert!(!debug.contains(emulator.client_secret()), "{debug}");
    assert!(debug.contains(emulator.account_id()), "{debug}");
}
