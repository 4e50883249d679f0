//! Bad input for every public entry point: the builder, container and object names, local files,
//! options, temp URL expiry, rejected tokens and malformed listings. Each case expects a typed
//! error that names the value, and wiremock's `expect(0)` shows nothing was sent.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use brightbox_orbit::{
    BoxError, DownloadOptions, MAX_SEGMENT_SIZE, MAX_SEGMENTS, OrbitClient, OrbitError,
    TempUrlMethod, TokenProvider, UploadOptions,
};
use common::{ACCOUNT_PATH, TOKEN, client, mount_catch_all};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LEAK_MARKER: &str = "must-not-leak-91c2";

/// Mounts a mock that fails the test when any request arrives.
async fn forbid_requests(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .named("no request may be sent")
        .mount(server)
        .await;
}

#[test]
fn builder_table() {
    let url = |text: &str| text.parse().expect("test URL parses");
    let token = || SecretString::from(LEAK_MARKER);

    let cases: Vec<(Result<OrbitClient, OrbitError>, &str, &str)> = vec![
        (
            OrbitClient::builder().token(token()).build(),
            "storage_url",
            "pass the account URL",
        ),
        (
            OrbitClient::builder()
                .storage_url(url("ftp://orbit.example.com/v1/acc-12345/"))
                .token(token())
                .build(),
            "storage_url",
            "not http or https",
        ),
        (
            OrbitClient::builder()
                .storage_url(url(
                    "https://orbit.example.com/v1/acc-12345/?temp_url_sig=x",
                ))
                .token(token())
                .build(),
            "storage_url",
            "query",
        ),
        (
            OrbitClient::builder()
                .storage_url(url(&format!(
                    "https://user:{LEAK_MARKER}@orbit.example.com/v1/acc-12345/"
                )))
                .token(token())
                .build(),
            "storage_url",
            "user name or password",
        ),
        (
            OrbitClient::builder()
                .storage_url(url("https://orbit.example.com/v1/acc-12345/"))
                .build(),
            "token",
            "call token()",
        ),
    ];
    for (result, field, reason_part) in cases {
        let error = result.expect_err(field);
        let OrbitError::InvalidConfig {
            field: reported,
            reason,
        } = &error
        else {
            panic!("{field}: expected InvalidConfig, got {error:?}");
        };
        assert_eq!(*reported, field);
        assert!(reason.contains(reason_part), "{field}: {reason}");
        assert!(
            !format!("{error} {error:?}").contains(LEAK_MARKER),
            "{error}"
        );
    }
}

#[tokio::test]
async fn token_with_line_break_sends_nothing() {
    let server = MockServer::start().await;
    forbid_requests(&server).await;
    let orbit = OrbitClient::builder()
        .storage_url(
            format!("{}{ACCOUNT_PATH}/", server.uri())
                .parse()
                .expect("valid URL"),
        )
        .token(SecretString::from(format!("{LEAK_MARKER}\r\nX-Other: 1")))
        .build()
        .expect("the token is checked when used");

    let error = orbit
        .head_account()
        .await
        .expect_err("invalid header value");

    assert!(matches!(error, OrbitError::Token { .. }), "{error:?}");
    let chain = format!(
        "{error}: {}",
        std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(chain.contains("not allowed in an HTTP header"), "{chain}");
    assert!(!format!("{chain} {error:?}").contains(LEAK_MARKER));
}

#[tokio::test]
async fn names_rejected_before_sending() {
    let server = MockServer::start().await;
    forbid_requests(&server).await;
    let orbit = client(&server);
    let key = SecretString::from(LEAK_MARKER);
    let scratch = tempfile::tempdir().expect("scratch folder");
    let local = scratch.path().join("disk.img");
    std::fs::write(&local, b"raw disk").expect("write file");

    let long_container = "c".repeat(300);
    let containers: Vec<(&str, &str)> = vec![
        ("", "empty"),
        ("a/b", "'/'"),
        (".", "'.' or '..'"),
        ("..", "'.' or '..'"),
        ("uploads\0", "control characters"),
        ("up\nloads", "control characters"),
        (&long_container, "256 bytes"),
    ];
    for (container, reason_part) in containers {
        let errors = vec![
            orbit.ensure_container(container).await.map(|_| ()),
            orbit.head_object(container, "disk.img").await.map(|_| ()),
            orbit.delete_object(container, "disk.img").await,
            orbit.list_objects(container, "").await.map(|_| ()),
            orbit
                .upload_file(container, "disk.img", &local, &UploadOptions::default())
                .await
                .map(|_| ()),
            orbit
                .temp_url_at_unix(
                    TempUrlMethod::Get,
                    container,
                    "disk.img",
                    &key,
                    4_102_444_800,
                )
                .map(|_| ()),
            orbit
                .download_snapshot(
                    "img-abc12",
                    &scratch.path().join("copy.raw"),
                    &DownloadOptions::default().container(container),
                )
                .await
                .map(|_| ()),
        ];
        for (index, result) in errors.into_iter().enumerate() {
            let error = result.expect_err(&format!("{container:?} is rejected"));
            let OrbitError::InvalidName {
                kind,
                value,
                reason,
            } = &error
            else {
                panic!("{container:?} #{index}: expected InvalidName, got {error:?}");
            };
            assert_eq!(*kind, "container");
            assert_eq!(value, container);
            assert!(reason.contains(reason_part), "{container:?}: {reason}");
            assert!(
                error.to_string().contains(&format!("{container:?}")),
                "{error}"
            );
        }
    }

    let long_object = "o".repeat(1100);
    let objects: Vec<(&str, &str)> = vec![
        ("", "empty"),
        ("/disk.img", "start with '/'"),
        ("..", "'.' or '..'"),
        ("a/../disk.img", "'.' or '..'"),
        ("a/./disk.img", "'.' or '..'"),
        ("disk\0.img", "control characters"),
        ("disk\r\n.img", "control characters"),
        (&long_object, "1024 bytes"),
    ];
    for (object, reason_part) in objects {
        let errors = vec![
            orbit.head_object("uploads", object).await.map(|_| ()),
            orbit.delete_object("uploads", object).await,
            orbit
                .upload_file("uploads", object, &local, &UploadOptions::default())
                .await
                .map(|_| ()),
            orbit
                .temp_url_at_unix(TempUrlMethod::Put, "uploads", object, &key, 4_102_444_800)
                .map(|_| ()),
            orbit
                .download_snapshot(
                    object,
                    &scratch.path().join("copy.raw"),
                    &DownloadOptions::default(),
                )
                .await
                .map(|_| ()),
        ];
        for (index, result) in errors.into_iter().enumerate() {
            let error = result.expect_err(&format!("{object:?} is rejected"));
            let OrbitError::InvalidName {
                kind,
                value,
                reason,
            } = &error
            else {
                panic!("{object:?} #{index}: expected InvalidName, got {error:?}");
            };
            assert_eq!(*kind, "object");
            assert_eq!(value, object);
            assert!(reason.contains(reason_part), "{object:?}: {reason}");
        }
    }
    assert!(!scratch.path().join("copy.raw").exists());
}

#[tokio::test]
async fn upload_rejects_bad_local_files() {
    let server = MockServer::start().await;
    forbid_requests(&server).await;
    let orbit = client(&server);
    let scratch = tempfile::tempdir().expect("scratch folder");
    let dir = scratch.path();

    let fifo = dir.join("fifo.img");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    let loop_a = dir.join("loop-a.img");
    std::os::unix::fs::symlink(dir.join("loop-b.img"), &loop_a).expect("symlink a");
    std::os::unix::fs::symlink(&loop_a, dir.join("loop-b.img")).expect("symlink b");

    // (path, expect InvalidConfig for a file that is not regular, or Io for one that cannot be read)
    let cases: Vec<(PathBuf, bool)> = vec![
        (dir.join("missing.img"), false),
        (dir.to_path_buf(), true),
        (PathBuf::from("/dev/zero"), true),
        (fifo, true),
        (loop_a, false),
        (dir.join("n".repeat(300)), false),
        (dir.join(OsStr::from_bytes(b"disk-\xff.img")), false),
    ];
    for (local, not_regular) in cases {
        let options = UploadOptions::default();
        let upload = orbit.upload_file("uploads", "disk.img", &local, &options);
        let error = tokio::time::timeout(Duration::from_secs(10), upload)
            .await
            .unwrap_or_else(|_| panic!("{}: upload hangs", local.display()))
            .expect_err("not a readable file");

        match &error {
            OrbitError::InvalidConfig { field, reason } if not_regular => {
                assert_eq!(*field, "local");
                assert!(reason.contains(&local.display().to_string()), "{reason}");
                assert!(reason.contains("not a regular file"), "{reason}");
            }
            OrbitError::Io { path, .. } if !not_regular => {
                assert_eq!(path, &local);
                assert!(
                    error.to_string().contains(&format!("{:?}", local)),
                    "{error}"
                );
            }
            other => panic!("{}: unexpected {other:?}", local.display()),
        }
        assert!(!error.is_retryable());
    }
}

#[tokio::test]
async fn upload_rejects_bad_options() {
    let server = MockServer::start().await;
    forbid_requests(&server).await;
    let orbit = client(&server);
    let scratch = tempfile::tempdir().expect("scratch folder");
    let local = scratch.path().join("disk.img");
    std::fs::write(&local, vec![1_u8; 1001]).expect("write file");

    let cases = [
        (
            UploadOptions::default().max_attempts(0),
            "UploadOptions::max_attempts",
        ),
        (
            UploadOptions::default().segment_size(0),
            "UploadOptions::segment_size",
        ),
        (
            UploadOptions::default().segment_size(MAX_SEGMENT_SIZE + 1),
            "UploadOptions::segment_size",
        ),
        (
            UploadOptions::default().segment_size(u64::MAX),
            "UploadOptions::segment_size",
        ),
    ];
    for (options, field) in cases {
        let error = orbit
            .upload_file("uploads", "disk.img", &local, &options)
            .await
            .expect_err("invalid options");
        assert!(
            matches!(&error, OrbitError::InvalidConfig { field: reported, .. } if *reported == field),
            "{field}: {error:?}"
        );
    }

    // 1001 one-byte segments are one more than a manifest may list.
    let error = orbit
        .upload_file(
            "uploads",
            "disk.img",
            &local,
            &UploadOptions::default().segment_size(1),
        )
        .await
        .expect_err("too many segments");
    let OrbitError::TooManySegments {
        segments,
        max,
        min_segment_size,
        ..
    } = &error
    else {
        panic!("expected TooManySegments, got {error:?}");
    };
    assert_eq!(*segments, 1001);
    assert_eq!(*max, MAX_SEGMENTS);
    assert_eq!(*min_segment_size, 2);
    assert!(
        error
            .to_string()
            .contains("raise UploadOptions::segment_size to at least 2 bytes"),
        "{error}"
    );
}

#[tokio::test]
async fn download_rejects_bad_arguments() {
    let server = MockServer::start().await;
    forbid_requests(&server).await;
    let orbit = client(&server);
    let scratch = tempfile::tempdir().expect("scratch folder");
    let folder = scratch.path().join("existing");
    std::fs::create_dir(&folder).expect("create folder");

    let cases = [
        (
            PathBuf::from("/"),
            DownloadOptions::default(),
            "local",
            "no file name",
        ),
        (
            scratch.path().join(".."),
            DownloadOptions::default(),
            "local",
            "no file name",
        ),
        (
            folder.clone(),
            DownloadOptions::default(),
            "local",
            "is a folder",
        ),
        (
            scratch.path().join("copy.raw"),
            DownloadOptions::default().max_attempts(0),
            "DownloadOptions::max_attempts",
            "at least 1",
        ),
    ];
    for (local, options, field, reason_part) in cases {
        let error = orbit
            .download_snapshot("img-abc12", &local, &options)
            .await
            .expect_err("unusable argument");
        let OrbitError::InvalidConfig {
            field: reported,
            reason,
        } = &error
        else {
            panic!("{}: expected InvalidConfig, got {error:?}", local.display());
        };
        assert_eq!(*reported, field);
        assert!(reason.contains(reason_part), "{reason}");
    }
    assert!(
        std::fs::read_dir(&folder)
            .expect("read folder")
            .next()
            .is_none()
    );
}

#[test]
fn temp_url_expiry_before_epoch() {
    let orbit = common::client_for("http://127.0.0.1:9");
    let key = SecretString::from(LEAK_MARKER);

    let error = orbit
        .temp_url(
            TempUrlMethod::Get,
            "uploads",
            "disk.img",
            &key,
            UNIX_EPOCH - Duration::from_secs(1),
        )
        .expect_err("before 1970");
    assert!(
        matches!(&error, OrbitError::InvalidConfig { field: "expires_at", reason } if reason.contains("SystemTime::now()")),
        "{error:?}"
    );

    // The largest expiry is representable and signs without overflow.
    let url = orbit
        .temp_url_at_unix(TempUrlMethod::Get, "uploads", "disk.img", &key, u64::MAX)
        .expect("u64::MAX expiry");
    assert!(
        url.query()
            .is_some_and(|query| query.contains(&format!("temp_url_expires={}", u64::MAX))),
        "{url}"
    );
    assert!(!url.as_str().contains(LEAK_MARKER));
}

/// Token provider that counts how often it was asked and never gets a token Orbit accepts.
struct CountingProvider {
    calls: AtomicUsize,
}

#[async_trait]
impl TokenProvider for CountingProvider {
    async fn token(&self) -> Result<SecretString, BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(SecretString::from(TOKEN))
    }
}

#[tokio::test]
async fn repeated_401_refreshes_once() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(format!("{ACCOUNT_PATH}/uploads/disk.img")))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let provider = Arc::new(CountingProvider {
        calls: AtomicUsize::new(0),
    });
    let orbit = OrbitClient::builder()
        .storage_url(
            format!("{}{ACCOUNT_PATH}/", server.uri())
                .parse()
                .expect("valid URL"),
        )
        .token_provider(provider.clone())
        .build()
        .expect("client builds");
    let scratch = tempfile::tempdir().expect("scratch folder");
    let local = scratch.path().join("disk.img");
    std::fs::write(&local, b"raw disk").expect("write file");

    let error = orbit
        .upload_file(
            "uploads",
            "disk.img",
            &local,
            &UploadOptions::default().max_attempts(5),
        )
        .await
        .expect_err("Orbit keeps rejecting the token");

    let OrbitError::Unauthorized { operation, .. } = &error else {
        panic!("expected Unauthorized, got {error:?}");
    };
    assert_eq!(*operation, "PUT object");
    assert!(
        error.to_string().contains("orbit scope"),
        "fix named: {error}"
    );
    assert!(!error.is_retryable());
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn malformed_listings() {
    let full_page: Vec<serde_json::Value> = (0..10_000)
        .map(|index| json!({"name": format!("seg/{index:08}"), "bytes": 1, "hash": "00"}))
        .collect();
    let cases: Vec<(ResponseTemplate, &str)> = vec![
        (
            ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
            "JSON array",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"name": "x"})),
            "JSON array",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_json(json!([{"name": "x", "bytes": -1, "hash": ""}])),
            "JSON array",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!([{"bytes": 1, "hash": ""}])),
            "JSON array",
        ),
        // A server that ignores `marker` returns the same full page forever.
        (
            ResponseTemplate::new(200).set_body_json(&full_page),
            "ignored the marker",
        ),
    ];
    for (response, reason_part) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("{ACCOUNT_PATH}/uploads")))
            .respond_with(response)
            .up_to_n_times(3)
            .mount(&server)
            .await;
        mount_catch_all(&server).await;

        let orbit = client(&server);
        let listing = orbit.list_objects("uploads", "");
        let error = tokio::time::timeout(Duration::from_secs(20), listing)
            .await
            .expect("the listing ends")
            .expect_err("malformed listing");

        let OrbitError::InvalidResponse { operation, reason } = &error else {
            panic!("{reason_part}: expected InvalidResponse, got {error:?}");
        };
        assert_eq!(*operation, "GET container listing");
        assert!(reason.contains(reason_part), "{reason}");
    }
}

#[tokio::test]
async fn missing_object_and_container() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let orbit = client(&server);

    let error = orbit
        .head_object("uploads", "no-such.img")
        .await
        .expect_err("missing object");
    assert!(
        matches!(&error, OrbitError::NotFound { container, object: Some(object) } if container == "uploads" && object == "no-such.img"),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"no-such.img\""), "{error}");

    let scratch = tempfile::tempdir().expect("scratch folder");
    let local = scratch.path().join("copy.raw");
    let error = orbit
        .download_snapshot("img-nope1", &local, &DownloadOptions::default())
        .await
        .expect_err("missing snapshot");
    assert!(matches!(error, OrbitError::NotFound { .. }), "{error:?}");
    assert!(!local.exists());
    assert!(!Path::new(&format!("{}.part", local.display())).exists());
}
