//! The Orbit (Swift) subset: auth, account, containers, objects, Range, Static Large
//! Objects, temp URLs, the read-only `images` container and registration by `http_url`.

mod common;

use std::io::Read;
use std::time::Duration;

use brightbox_emulator::Emulator;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DELAY: Duration = Duration::from_millis(50);

/// A started emulator with an HTTP client and an OAuth token.
struct Orbit {
    emulator: Emulator,
    http: reqwest::Client,
    token: String,
}

impl Orbit {
    async fn start() -> Self {
        let emulator = common::start(DELAY).await;
        let http = reqwest::Client::new();
        let token = common::token(&http, &emulator).await;
        Orbit {
            emulator,
            http,
            token,
        }
    }

    /// Returns `{orbit_url}{path}`.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.orbit_url())
    }

    /// Builds a request to `{orbit_url}{path}` with the token.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("X-Auth-Token", &self.token)
    }

    async fn send(&self, method: Method, path: &str) -> reqwest::Response {
        self.request(method, path)
            .send()
            .await
            .expect("Orbit request is sent")
    }

    async fn create_container(&self, name: &str) {
        let response = self.send(Method::PUT, name).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    async fn put_object(&self, path: &str, bytes: &[u8]) -> reqwest::Response {
        self.request(Method::PUT, path)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("PUT is sent")
    }

    async fn set_temp_url_key(&self, key: &str) {
        let response = self
            .request(Method::POST, "")
            .header("X-Account-Meta-Temp-Url-Key", key)
            .send()
            .await
            .expect("POST is sent");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    /// Returns a temp URL for `path` under the account, signed for `method` with `key`.
    fn temp_url(&self, key: &str, method: &str, path: &str, expires: i64) -> String {
        let signed_path = format!("/v1/{}/{path}", self.emulator.account_id());
        let signature = hmac_sha1_hex(key, &format!("{method}\n{expires}\n{signed_path}"));
        format!(
            "{}?temp_url_sig={signature}&temp_url_expires={expires}",
            self.url(path)
        )
    }

    async fn register(&self, body: Value) -> common::ApiResponse {
        common::call(
            &self.http,
            &self.emulator,
            &self.token,
            Method::POST,
            "images",
            Some(body),
        )
        .await
    }
}

fn hmac_sha1_hex(key: &str, text: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| panic!("header {name} is present and text"))
}

/// Bytes that differ at every offset modulo 251, so a misplaced range shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn orbit_url_names_the_account() {
    let orbit = Orbit::start().await;
    assert_eq!(
        orbit.emulator.orbit_url(),
        format!("{}v1/acc-emu01/", orbit.emulator.api_url())
    );
}

#[tokio::test]
async fn swift_v1_auth_issues_shared_token() {
    let orbit = Orbit::start().await;
    let response = orbit
        .http
        .get(format!("{}v1/auth", orbit.emulator.api_url()))
        .header("X-Auth-User", orbit.emulator.client_id())
        .header("X-Auth-Key", orbit.emulator.client_secret())
        .send()
        .await
        .expect("auth request is sent");
    assert_eq!(response.status(), StatusCode::OK);
    let storage_url = header(&response, "x-storage-url").to_owned();
    assert_eq!(format!("{storage_url}/"), orbit.emulator.orbit_url());
    let token = header(&response, "x-auth-token").to_owned();
    assert_eq!(header(&response, "x-storage-token"), token);

    let account = orbit
        .http
        .head(&storage_url)
        .header("X-Auth-Token", &token)
        .send()
        .await
        .expect("HEAD is sent");
    assert_eq!(account.status(), StatusCode::NO_CONTENT);

    let images = common::call(
        &orbit.http,
        &orbit.emulator,
        &token,
        Method::GET,
        "images",
        None,
    )
    .await;
    assert_eq!(images.status, StatusCode::OK);
}

#[tokio::test]
async fn swift_v1_auth_rejects_wrong_key() {
    let orbit = Orbit::start().await;
    let response = orbit
        .http
        .get(format!("{}v1/auth", orbit.emulator.api_url()))
        .header("X-Auth-User", orbit.emulator.client_id())
        .header("X-Auth-Key", "not-the-secret")
        .send()
        .await
        .expect("auth request is sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("x-auth-token").is_none());
    let body = response.text().await.expect("body is text");
    assert!(body.contains("X-Auth-Key is wrong"), "{body}");
    assert!(!body.contains(orbit.emulator.client_secret()), "{body}");

    let missing = orbit
        .http
        .get(format!("{}v1/auth", orbit.emulator.api_url()))
        .send()
        .await
        .expect("auth request is sent");
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn swift_v1_auth_accepts_account_prefix() {
    let orbit = Orbit::start().await;
    let user = format!(
        "{}:{}",
        orbit.emulator.account_id(),
        orbit.emulator.client_id()
    );
    let response = orbit
        .http
        .get(format!("{}auth/v1.0", orbit.emulator.api_url()))
        .header("X-Storage-User", user)
        .header("X-Storage-Pass", orbit.emulator.client_secret())
        .send()
        .await
        .expect("auth request is sent");
    assert_eq!(response.status(), StatusCode::OK);
    let token = header(&response, "x-auth-token").to_owned();

    let account = orbit
        .http
        .get(orbit.url("?format=json"))
        .header("X-Storage-Token", &token)
        .send()
        .await
        .expect("GET is sent");
    assert_eq!(account.status(), StatusCode::OK);

    let other_account = orbit
        .http
        .get(format!("{}v1/auth", orbit.emulator.api_url()))
        .header(
            "X-Auth-User",
            format!("acc-other:{}", orbit.emulator.client_id()),
        )
        .header("X-Auth-Key", orbit.emulator.client_secret())
        .send()
        .await
        .expect("auth request is sent");
    assert_eq!(other_account.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn requests_need_a_valid_token() {
    let orbit = Orbit::start().await;

    let missing = orbit
        .http
        .head(orbit.url(""))
        .send()
        .await
        .expect("HEAD is sent");
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&missing, "www-authenticate"),
        "Swift realm=\"orbit\""
    );

    let unknown = orbit
        .http
        .get(orbit.url("uploads?format=json"))
        .header("X-Auth-Token", "not-a-token")
        .send()
        .await
        .expect("GET is sent");
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let body = unknown.text().await.expect("body is text");
    assert!(
        body.contains("X-Auth-Token is missing, unknown or expired"),
        "{body}"
    );

    let other_account = orbit
        .http
        .head(format!("{}v1/acc-other", orbit.emulator.api_url()))
        .header("X-Auth-Token", &orbit.token)
        .send()
        .await
        .expect("HEAD is sent");
    assert_eq!(other_account.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn account_sets_and_removes_temp_url_key() {
    let orbit = Orbit::start().await;
    let before = orbit.send(Method::HEAD, "").await;
    assert!(
        before
            .headers()
            .get("x-account-meta-temp-url-key")
            .is_none()
    );

    orbit.set_temp_url_key("secret-key-1").await;
    let after = orbit.send(Method::HEAD, "").await;
    assert_eq!(after.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&after, "x-account-meta-temp-url-key"),
        "secret-key-1"
    );

    let removal = orbit
        .request(Method::POST, "")
        .header("X-Remove-Account-Meta-Temp-Url-Key", "x")
        .send()
        .await
        .expect("POST is sent");
    assert_eq!(removal.status(), StatusCode::NO_CONTENT);
    let removed = orbit.send(Method::HEAD, "").await;
    assert!(
        removed
            .headers()
            .get("x-account-meta-temp-url-key")
            .is_none()
    );
}

#[tokio::test]
async fn account_lists_containers() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    orbit.put_object("uploads/a.img", b"12345").await;

    let head = orbit.send(Method::HEAD, "").await;
    assert_eq!(header(&head, "x-account-container-count"), "2");
    assert_eq!(header(&head, "x-account-object-count"), "1");
    assert_eq!(header(&head, "x-account-bytes-used"), "5");

    let listing: Value = orbit
        .send(Method::GET, "?format=json")
        .await
        .json()
        .await
        .expect("listing is JSON");
    let names: Vec<&str> = listing
        .as_array()
        .expect("listing is an array")
        .iter()
        .map(|entry| entry["name"].as_str().expect("name is a string"))
        .collect();
    assert_eq!(names, ["images", "uploads"]);
    assert_eq!(listing[1]["count"], 1);
    assert_eq!(listing[1]["bytes"], 5);

    let plain = orbit.send(Method::GET, "").await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        plain.text().await.expect("body is text"),
        "images\nuploads\n"
    );
}

#[tokio::test]
async fn container_lifecycle() {
    let orbit = Orbit::start().await;
    assert_eq!(
        orbit.send(Method::PUT, "uploads").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        orbit.send(Method::PUT, "uploads").await.status(),
        StatusCode::ACCEPTED
    );
    orbit.put_object("uploads/disk.img", b"abc").await;

    let head = orbit.send(Method::HEAD, "uploads").await;
    assert_eq!(head.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&head, "x-container-object-count"), "1");
    assert_eq!(header(&head, "x-container-bytes-used"), "3");

    let not_empty = orbit.send(Method::DELETE, "uploads").await;
    assert_eq!(not_empty.status(), StatusCode::CONFLICT);
    let body = not_empty.text().await.expect("body is text");
    assert!(body.contains("container uploads is not empty"), "{body}");

    assert_eq!(
        orbit
            .send(Method::DELETE, "uploads/disk.img")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        orbit.send(Method::DELETE, "uploads").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        orbit.send(Method::HEAD, "uploads").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        orbit.send(Method::DELETE, "uploads").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn container_listing_json_and_prefix() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    let response = orbit
        .request(Method::PUT, "uploads/disk.img")
        .header("Content-Type", "application/x-qemu-disk")
        .body(b"disk bytes".to_vec())
        .send()
        .await
        .expect("PUT is sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    orbit.put_object("uploads/segments/000001", b"one").await;
    orbit.put_object("uploads/segments/000002", b"two").await;

    let all: Value = orbit
        .send(Method::GET, "uploads?format=json")
        .await
        .json()
        .await
        .expect("listing is JSON");
    let all = all.as_array().expect("listing is an array");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["name"], "disk.img");
    assert_eq!(all[0]["bytes"], 10);
    assert_eq!(all[0]["hash"], md5_hex(b"disk bytes"));
    assert_eq!(all[0]["content_type"], "application/x-qemu-disk");
    let modified = all[0]["last_modified"]
        .as_str()
        .expect("last_modified is text");
    assert!(
        chrono::NaiveDateTime::parse_from_str(modified, "%Y-%m-%dT%H:%M:%S%.6f").is_ok(),
        "{modified}"
    );

    let segments: Value = orbit
        .send(Method::GET, "uploads?format=json&prefix=segments/")
        .await
        .json()
        .await
        .expect("listing is JSON");
    let names: Vec<&str> = segments
        .as_array()
        .expect("listing is an array")
        .iter()
        .map(|entry| entry["name"].as_str().expect("name is a string"))
        .collect();
    assert_eq!(names, ["segments/000001", "segments/000002"]);

    let grouped: Value = orbit
        .send(Method::GET, "uploads?format=json&delimiter=/")
        .await
        .json()
        .await
        .expect("listing is JSON");
    assert_eq!(grouped[1]["subdir"], "segments/");
}

#[tokio::test]
async fn object_put_get_head_delete() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    let content = pattern(70_000, 3);

    let put = orbit
        .request(Method::PUT, "uploads/disk.img")
        .header("X-Object-Meta-Purpose", "test")
        .body(content.clone())
        .send()
        .await
        .expect("PUT is sent");
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(header(&put, "etag"), md5_hex(&content));

    let head = orbit.send(Method::HEAD, "uploads/disk.img").await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), "70000");
    assert_eq!(header(&head, "etag"), md5_hex(&content));
    assert_eq!(header(&head, "x-object-meta-purpose"), "test");

    let get = orbit.send(Method::GET, "uploads/disk.img").await;
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.bytes().await.expect("body is read").to_vec(), content);
    let stored = std::fs::read(orbit.emulator.orbit_dir().join("uploads").join("disk.img"))
        .expect("the object is a file under orbit/");
    assert_eq!(stored, content);

    assert_eq!(
        orbit
            .send(Method::DELETE, "uploads/disk.img")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let after_delete = orbit.send(Method::GET, "uploads/disk.img").await;
    assert_eq!(after_delete.status(), StatusCode::NOT_FOUND);
    let body = after_delete.text().await.expect("body is text");
    assert!(
        body.contains("object uploads/disk.img was not found"),
        "{body}"
    );
    assert_eq!(
        orbit
            .send(Method::DELETE, "uploads/disk.img")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn object_larger_than_form_limits() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    let content = pattern(5 * 1024 * 1024 + 17, 5);

    let put = orbit.put_object("uploads/big.img", &content).await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(header(&put, "etag"), md5_hex(&content));
    let get = orbit.send(Method::GET, "uploads/big.img").await;
    assert_eq!(header(&get, "content-length"), content.len().to_string());
    let body = get.bytes().await.expect("body");
    assert_eq!(md5_hex(&body), md5_hex(&content));
}

#[tokio::test]
async fn object_put_needs_container() {
    let orbit = Orbit::start().await;
    let response = orbit.put_object("missing/disk.img", b"abc").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.text().await.expect("body is text");
    assert!(body.contains("container missing was not found"), "{body}");
}

#[tokio::test]
async fn object_put_checks_etag() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;

    let good = orbit
        .request(Method::PUT, "uploads/good")
        .header("ETag", format!("\"{}\"", md5_hex(b"payload")))
        .body(b"payload".to_vec())
        .send()
        .await
        .expect("PUT is sent");
    assert_eq!(good.status(), StatusCode::CREATED);

    let bad = orbit
        .request(Method::PUT, "uploads/bad")
        .header("ETag", md5_hex(b"other payload"))
        .body(b"payload".to_vec())
        .send()
        .await
        .expect("PUT is sent");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = bad.text().await.expect("body is text");
    assert!(body.contains(&md5_hex(b"payload")), "{body}");
    assert_eq!(
        orbit.send(Method::HEAD, "uploads/bad").await.status(),
        StatusCode::NOT_FOUND
    );
    let temp_files = std::fs::read_dir(orbit.emulator.orbit_dir().join(".tmp"))
        .expect("temp folder exists")
        .count();
    assert_eq!(temp_files, 0);
}

#[tokio::test]
async fn object_range_requests() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    let content = pattern(1000, 7);
    orbit.put_object("uploads/disk.img", &content).await;

    let tail = orbit
        .request(Method::GET, "uploads/disk.img")
        .header("Range", "bytes=600-")
        .send()
        .await
        .expect("GET is sent");
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&tail, "content-range"), "bytes 600-999/1000");
    assert_eq!(tail.bytes().await.expect("body").to_vec(), content[600..]);

    let middle = orbit
        .request(Method::GET, "uploads/disk.img")
        .header("Range", "bytes=10-19")
        .send()
        .await
        .expect("GET is sent");
    assert_eq!(middle.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        middle.bytes().await.expect("body").to_vec(),
        content[10..20]
    );

    let beyond = orbit
        .request(Method::GET, "uploads/disk.img")
        .header("Range", "bytes=1000-")
        .send()
        .await
        .expect("GET is sent");
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&beyond, "content-range"), "bytes */1000");
}

/// Uploads three segments and returns their contents and the manifest JSON.
async fn upload_segments(orbit: &Orbit) -> (Vec<Vec<u8>>, Value) {
    orbit.create_container("segments").await;
    let parts = vec![pattern(4000, 1), pattern(4000, 2), pattern(1500, 3)];
    let mut manifest = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let path = format!("segments/disk.img/{index:06}");
        assert_eq!(
            orbit.put_object(&path, part).await.status(),
            StatusCode::CREATED
        );
        manifest.push(json!({
            "path": format!("/{path}"),
            "etag": md5_hex(part),
            "size_bytes": part.len(),
        }));
    }
    (parts, Value::Array(manifest))
}

#[tokio::test]
async fn slo_put_get_and_delete() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    let (parts, manifest) = upload_segments(&orbit).await;
    let whole: Vec<u8> = parts.concat();

    let put = orbit
        .request(Method::PUT, "uploads/disk.img?multipart-manifest=put")
        .json(&manifest)
        .send()
        .await
        .expect("manifest PUT is sent");
    assert_eq!(put.status(), StatusCode::CREATED);
    let joined: String = parts.iter().map(|part| md5_hex(part)).collect();
    assert_eq!(
        header(&put, "etag"),
        format!("\"{}\"", md5_hex(joined.as_bytes()))
    );

    let head = orbit.send(Method::HEAD, "uploads/disk.img").await;
    assert_eq!(header(&head, "x-static-large-object"), "True");
    assert_eq!(header(&head, "content-length"), whole.len().to_string());

    let get = orbit.send(Method::GET, "uploads/disk.img").await;
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.bytes().await.expect("body").to_vec(), whole);

    let across = orbit
        .request(Method::GET, "uploads/disk.img")
        .header("Range", "bytes=3990-8009")
        .send()
        .await
        .expect("GET is sent");
    assert_eq!(across.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        across.bytes().await.expect("body").to_vec(),
        whole[3990..8010]
    );

    let raw: Value = orbit
        .send(Method::GET, "uploads/disk.img?multipart-manifest=get")
        .await
        .json()
        .await
        .expect("the stored manifest is JSON");
    assert_eq!(raw[0]["name"], "/segments/disk.img/000000");
    assert_eq!(raw[2]["bytes"], 1500);

    let delete: Value = orbit
        .send(Method::DELETE, "uploads/disk.img?multipart-manifest=delete")
        .await
        .json()
        .await
        .expect("bulk delete reply is JSON");
    assert_eq!(delete["Number Deleted"], 4);
    assert_eq!(delete["Number Not Found"], 0);
    let left: Value = orbit
        .send(Method::GET, "segments?format=json")
        .await
        .json()
        .await
        .expect("listing is JSON");
    assert_eq!(left, json!([]));
    assert_eq!(
        orbit.send(Method::HEAD, "uploads/disk.img").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn slo_manifest_mismatch_is_rejected() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    let (_, mut manifest) = upload_segments(&orbit).await;
    manifest[0]["etag"] = json!(md5_hex(b"something else"));
    manifest[1]["size_bytes"] = json!(1);
    manifest[2]["path"] = json!("/segments/never-uploaded");

    let response = orbit
        .request(Method::PUT, "uploads/disk.img?multipart-manifest=put")
        .json(&manifest)
        .send()
        .await
        .expect("manifest PUT is sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.expect("body is text");
    assert!(
        body.contains("segment 0: /segments/disk.img/000000 has ETag"),
        "{body}"
    );
    assert!(
        body.contains("segment 1: /segments/disk.img/000001 has 4000 bytes, not 1"),
        "{body}"
    );
    assert!(
        body.contains("segment 2: /segments/never-uploaded was not found"),
        "{body}"
    );
    assert_eq!(
        orbit.send(Method::HEAD, "uploads/disk.img").await.status(),
        StatusCode::NOT_FOUND
    );

    let empty = orbit
        .request(Method::PUT, "uploads/disk.img?multipart-manifest=put")
        .json(&json!([]))
        .send()
        .await
        .expect("manifest PUT is sent");
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn slo_get_fails_after_segment_change() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    let (_, manifest) = upload_segments(&orbit).await;
    let put = orbit
        .request(Method::PUT, "uploads/disk.img?multipart-manifest=put")
        .json(&manifest)
        .send()
        .await
        .expect("manifest PUT is sent");
    assert_eq!(put.status(), StatusCode::CREATED);
    orbit
        .put_object("segments/disk.img/000001", b"replaced")
        .await;

    let get = orbit.send(Method::GET, "uploads/disk.img").await;
    assert_eq!(get.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn temp_url_authorises_get_head_and_put() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    orbit
        .put_object("uploads/disk.img", b"temp url bytes")
        .await;
    orbit.set_temp_url_key("mykey").await;
    let expires = now_unix() + 600;

    let get_url = orbit.temp_url("mykey", "GET", "uploads/disk.img", expires);
    let get = orbit.http.get(&get_url).send().await.expect("GET is sent");
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(&get.bytes().await.expect("body")[..], b"temp url bytes");

    let head = orbit
        .http
        .head(&get_url)
        .send()
        .await
        .expect("HEAD is sent");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), "14");

    let put_url = orbit.temp_url("mykey", "PUT", "uploads/new.img", expires);
    let put = orbit
        .http
        .put(&put_url)
        .body(b"uploaded without a token".to_vec())
        .send()
        .await
        .expect("PUT is sent");
    assert_eq!(put.status(), StatusCode::CREATED);
    let stored = orbit.send(Method::GET, "uploads/new.img").await;
    assert_eq!(
        &stored.bytes().await.expect("body")[..],
        b"uploaded without a token"
    );

    let known_answer = brightbox_emulator::temp_url_signature(
        "mykey",
        "GET",
        1_700_000_000,
        "/v1/acc-12345/images/img-abcde",
    );
    assert_eq!(known_answer, "1458109d74c2a2cd23558686b38d282180800477");
}

#[tokio::test]
async fn temp_url_rejects_bad_or_expired() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    orbit.put_object("uploads/disk.img", b"bytes").await;

    let expires = now_unix() + 600;
    let no_key = orbit.temp_url("mykey", "GET", "uploads/disk.img", expires);
    let response = orbit.http.get(&no_key).send().await.expect("GET is sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.expect("body is text");
    assert!(body.contains("the account has no temp URL key"), "{body}");

    orbit.set_temp_url_key("mykey").await;
    let cases = [
        (
            orbit.temp_url("wrongkey", "GET", "uploads/disk.img", expires),
            "temp_url_sig does not match",
        ),
        (
            orbit
                .temp_url("mykey", "GET", "uploads/other.img", expires)
                .replace("other.img", "disk.img"),
            "temp_url_sig does not match",
        ),
        (
            orbit.temp_url("mykey", "GET", "uploads/disk.img", now_unix() - 1),
            "the temp URL expired",
        ),
        (
            format!("{}?temp_url_sig=abc", orbit.url("uploads/disk.img")),
            "no temp_url_expires query parameter",
        ),
    ];
    for (url, expected) in cases {
        let response = orbit.http.get(&url).send().await.expect("GET is sent");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{expected}");
        let body = response.text().await.expect("body is text");
        assert!(body.contains(expected), "{expected}: {body}");
    }

    let delete_url = orbit.temp_url("mykey", "DELETE", "uploads/disk.img", expires);
    let delete = orbit
        .http
        .delete(&delete_url)
        .send()
        .await
        .expect("DELETE is sent");
    assert_eq!(delete.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        orbit.send(Method::HEAD, "uploads/disk.img").await.status(),
        StatusCode::OK
    );

    // A new key invalidates URLs signed with the old one.
    let signed = orbit.temp_url("mykey", "GET", "uploads/disk.img", expires);
    orbit.set_temp_url_key("rotated").await;
    let rotated = orbit.http.get(&signed).send().await.expect("GET is sent");
    assert_eq!(rotated.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn images_container_serves_lz4() {
    let orbit = Orbit::start().await;
    let content = pattern(200_000, 9);
    let image_id = common::register_file(
        &orbit.http,
        &orbit.emulator,
        &orbit.token,
        "disk.img",
        &content,
    )
    .await;
    common::wait_for_status(
        &orbit.http,
        &orbit.emulator,
        &orbit.token,
        "images",
        &image_id,
        "available",
    )
    .await;

    let listing: Value = orbit
        .send(Method::GET, "images?format=json")
        .await
        .json()
        .await
        .expect("listing is JSON");
    let entries = listing.as_array().expect("listing is an array");
    assert_eq!(entries.len(), 1, "{listing}");
    assert_eq!(entries[0]["name"], image_id.as_str());

    let get = orbit.send(Method::GET, &format!("images/{image_id}")).await;
    assert_eq!(get.status(), StatusCode::OK);
    let etag = header(&get, "etag").to_owned();
    let frame = get.bytes().await.expect("body").to_vec();
    assert_eq!(entries[0]["bytes"], frame.len());
    assert_eq!(entries[0]["hash"], md5_hex(&frame));
    assert_eq!(etag, md5_hex(&frame));
    let mut decoded = Vec::new();
    lz4_flex::frame::FrameDecoder::new(&frame[..])
        .read_to_end(&mut decoded)
        .expect("the body is an LZ4 frame");
    assert_eq!(decoded, content);

    let put = orbit.put_object(&format!("images/{image_id}"), b"x").await;
    assert_eq!(put.status(), StatusCode::FORBIDDEN);
    let delete = orbit
        .send(Method::DELETE, &format!("images/{image_id}"))
        .await;
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        orbit.send(Method::PUT, "images").await.status(),
        StatusCode::FORBIDDEN
    );
    let missing = orbit.send(Method::GET, "images/img-zzzzz").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let removed = common::call(
        &orbit.http,
        &orbit.emulator,
        &orbit.token,
        Method::DELETE,
        &format!("images/{image_id}"),
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::ACCEPTED);
    let after = orbit.send(Method::GET, &format!("images/{image_id}")).await;
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn images_container_lists_only_usable_images() {
    let emulator = common::start(Duration::from_secs(30)).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    common::register_file(&http, &emulator, &token, "slow.img", b"still creating").await;

    let listing: Value = http
        .get(format!("{}images?format=json", emulator.orbit_url()))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .expect("GET is sent")
        .json()
        .await
        .expect("listing is JSON");
    assert_eq!(listing, json!([]));
}

#[tokio::test]
async fn images_container_by_temp_url() {
    let orbit = Orbit::start().await;
    let content = pattern(5000, 4);
    let image_id = common::register_file(
        &orbit.http,
        &orbit.emulator,
        &orbit.token,
        "disk.img",
        &content,
    )
    .await;
    common::wait_for_status(
        &orbit.http,
        &orbit.emulator,
        &orbit.token,
        "images",
        &image_id,
        "available",
    )
    .await;
    orbit.set_temp_url_key("download-key").await;

    let url = orbit.temp_url(
        "download-key",
        "GET",
        &format!("images/{image_id}"),
        now_unix() + 60,
    );
    let frame = orbit
        .http
        .get(&url)
        .send()
        .await
        .expect("GET is sent")
        .bytes()
        .await
        .expect("body");
    let decoded = lz4_flex::frame::FrameDecoder::new(&frame[..])
        .bytes()
        .collect::<Result<Vec<u8>, _>>()
        .expect("the body is an LZ4 frame");
    assert_eq!(decoded, content);
}

#[tokio::test]
async fn http_url_registers_object() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    let content = common::qcow2_file(3 * 1024 * 1024 * 1024, 4096);
    orbit.put_object("uploads/disk.qcow2", &content).await;
    orbit.set_temp_url_key("register-key").await;
    let url = orbit.temp_url(
        "register-key",
        "GET",
        "uploads/disk.qcow2",
        now_unix() + 600,
    );

    let created = orbit
        .register(json!({"arch": "x86_64", "http_url": url}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "creating");
    assert_eq!(created.body["name"], "disk.qcow2");
    let source = created.body["source"].as_str().expect("source is text");
    assert_eq!(source, orbit.url("uploads/disk.qcow2"));
    let image_id = created.body["id"].as_str().expect("id is text").to_owned();

    let image = common::wait_for_status(
        &orbit.http,
        &orbit.emulator,
        &orbit.token,
        "images",
        &image_id,
        "available",
    )
    .await;
    assert_eq!(image["format"], "qcow2");
    assert_eq!(image["virtual_size"], 3 * 1024);
    let stored =
        std::fs::read(orbit.emulator.images_dir().join(&image_id)).expect("image file exists");
    assert_eq!(stored, content);

    // The Orbit object stays, as the real service leaves the source in place.
    assert_eq!(
        orbit
            .send(Method::HEAD, "uploads/disk.qcow2")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn http_url_registers_slo() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    let (parts, manifest) = upload_segments(&orbit).await;
    let put = orbit
        .request(Method::PUT, "uploads/disk.img?multipart-manifest=put")
        .json(&manifest)
        .send()
        .await
        .expect("manifest PUT is sent");
    assert_eq!(put.status(), StatusCode::CREATED);
    orbit.set_temp_url_key("register-key").await;
    let url = orbit.temp_url("register-key", "GET", "uploads/disk.img", now_unix() + 600);

    let created = orbit
        .register(json!({"arch": "x86_64", "name": "Large disk", "http_url": url}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let image_id = created.body["id"].as_str().expect("id is text").to_owned();
    let image = common::wait_for_status(
        &orbit.http,
        &orbit.emulator,
        &orbit.token,
        "images",
        &image_id,
        "available",
    )
    .await;
    assert_eq!(image["name"], "Large disk");
    assert_eq!(image["format"], "raw");
    let stored =
        std::fs::read(orbit.emulator.images_dir().join(&image_id)).expect("image file exists");
    assert_eq!(stored, parts.concat());
}

#[tokio::test]
async fn http_url_expired_ends_failed() {
    let orbit = Orbit::start().await;
    orbit.create_container("uploads").await;
    orbit.put_object("uploads/disk.img", b"raw disk").await;
    orbit.set_temp_url_key("register-key").await;
    let expired = orbit.temp_url("register-key", "GET", "uploads/disk.img", now_unix() - 5);
    let unsigned = orbit.url("uploads/disk.img");
    let wrong_key = orbit.temp_url("other-key", "GET", "uploads/disk.img", now_unix() + 600);
    let missing = orbit.temp_url(
        "register-key",
        "GET",
        "uploads/missing.img",
        now_unix() + 600,
    );

    for url in [expired, unsigned, wrong_key, missing] {
        let created = orbit
            .register(json!({"arch": "x86_64", "http_url": url}))
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{url}: {}",
            created.body
        );
        let image_id = created.body["id"].as_str().expect("id is text").to_owned();
        common::wait_for_status(
            &orbit.http,
            &orbit.emulator,
            &orbit.token,
            "images",
            &image_id,
            "failed",
        )
        .await;
        assert!(
            !orbit.emulator.images_dir().join(&image_id).exists(),
            "{url}"
        );
    }
}

#[tokio::test]
async fn http_url_other_host_is_rejected() {
    let orbit = Orbit::start().await;
    let api = url::Url::parse(orbit.emulator.api_url()).expect("API URL parses");
    let other_port = api.port().expect("API URL has a port").wrapping_add(1);
    let cases = [
        (
            "http://192.0.2.10/v1/acc-emu01/uploads/disk.img?temp_url_sig=ab&temp_url_expires=1",
            "http_url points at 192.0.2.10:80, which is not this emulator",
        ),
        (
            &*format!("http://127.0.0.1:{other_port}/v1/acc-emu01/uploads/disk.img"),
            "which is not this emulator",
        ),
        (
            &*format!(
                "https://127.0.0.1:{}/v1/acc-emu01/uploads/disk.img",
                api.port().unwrap_or(0)
            ),
            "uses https",
        ),
        (
            &*format!("{}1.0/images", orbit.emulator.api_url()),
            "http_url path /1.0/images is not an object",
        ),
        ("not a url", "http_url \"not a url\" is not a valid URL"),
    ];
    for (url, expected) in cases {
        let response = orbit
            .register(json!({"arch": "x86_64", "http_url": url}))
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let errors = common::error_messages(&response.body);
        assert!(
            errors.iter().any(|error| error.contains(expected)),
            "{url}: {errors:?}"
        );
        assert!(
            errors
                .iter()
                .all(|error| !error.contains("temp_url_sig=ab")),
            "{errors:?}"
        );
    }
    let images = common::call(
        &orbit.http,
        &orbit.emulator,
        &orbit.token,
        Method::GET,
        "images",
        None,
    )
    .await;
    assert_eq!(
        images.body.as_array().map(Vec::len),
        Some(2),
        "only the official images exist"
    );
}

#[tokio::test]
async fn orbit_request_faults() {
    let orbit = Orbit::start().await;
    orbit.emulator.faults().fail_next_requests("/v1/", 503, 1);
    let failed = orbit.send(Method::HEAD, "").await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    let recovered = orbit.send(Method::HEAD, "").await;
    assert_eq!(recovered.status(), StatusCode::NO_CONTENT);
}
