//! Bad input for the emulator: its configuration, the API's registration and token endpoints,
//! malformed request bodies, and FTP paths that try to leave the storage folder. Each case
//! expects a typed error or a 4xx reply that names the value, and no image or file is created.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use brightbox_emulator::{Emulator, EmulatorConfig, EmulatorError};
use common::{call, error_messages, login, reset_ftp_password, token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn start_in(dir: impl Into<PathBuf>) -> Result<Emulator, EmulatorError> {
    let start = Emulator::start_with(EmulatorConfig::default().storage_dir(dir));
    tokio::time::timeout(Duration::from_secs(20), start)
        .await
        .expect("start returns within 20 s")
}

#[tokio::test]
async fn bad_storage_dirs() {
    let scratch = tempfile::tempdir().expect("scratch folder");
    let dir = scratch.path();
    let file = dir.join("file");
    std::fs::write(&file, b"not a folder").expect("write file");
    let fifo = dir.join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    let loop_a = dir.join("loop-a");
    std::os::unix::fs::symlink(dir.join("loop-b"), &loop_a).expect("symlink a");
    std::os::unix::fs::symlink(&loop_a, dir.join("loop-b")).expect("symlink b");

    for path in [file.clone(), PathBuf::from("/dev/zero"), fifo] {
        let error = start_in(&path).await.expect_err("not a folder");
        let EmulatorError::StorageNotADirectory { path: reported } = &error else {
            panic!(
                "{}: expected StorageNotADirectory, got {error:?}",
                path.display()
            );
        };
        assert_eq!(reported, &path);
        let text = error.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("pass a folder path"), "fix named: {text}");
    }

    for path in [loop_a, file.join("sub"), dir.join("n".repeat(300))] {
        let error = start_in(&path).await.expect_err("cannot be created");
        let EmulatorError::StorageDir { path: reported, .. } = &error else {
            panic!("{}: expected StorageDir, got {error:?}", path.display());
        };
        assert!(reported.starts_with(&path), "{}", reported.display());
        assert!(
            error
                .to_string()
                .contains("check that the parent folder exists"),
            "{error}"
        );
    }
    assert_eq!(std::fs::read(&file).expect("read"), b"not a folder");
}

#[tokio::test]
async fn unusual_but_valid_storage_dirs() {
    use std::os::unix::fs::PermissionsExt;

    let scratch = tempfile::tempdir().expect("scratch folder");

    // A non-UTF-8 folder name is a valid path.
    let non_utf8 = scratch.path().join(OsStr::from_bytes(b"store-\xff"));
    let emulator = start_in(&non_utf8).await.expect("non-UTF-8 path works");
    assert!(emulator.incoming_dir().is_dir());
    emulator.shutdown().await;

    // A folder without permissions: root creates the subfolders anyway, others get an error.
    let locked = scratch.path().join("locked");
    std::fs::create_dir(&locked).expect("create folder");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    let writable = std::fs::create_dir(locked.join("probe")).is_ok();
    let result = start_in(&locked).await;
    if writable {
        let emulator = result.expect("root writes a mode-000 folder");
        emulator.shutdown().await;
    } else {
        let error = result.expect_err("mode 000 blocks writing");
        assert!(
            matches!(&error, EmulatorError::StorageDir { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied),
            "{error:?}"
        );
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod back");
}

#[tokio::test]
async fn taken_ports() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();

    let error = Emulator::start_with(EmulatorConfig::default().api_port(port))
        .await
        .expect_err("API port taken");
    let EmulatorError::Bind {
        service,
        port: reported,
        ..
    } = &error
    else {
        panic!("expected Bind, got {error:?}");
    };
    assert_eq!(*service, "API");
    assert_eq!(*reported, port);
    assert!(error.to_string().contains("or 0 for a free one"), "{error}");

    let error = tokio::time::timeout(
        Duration::from_secs(30),
        Emulator::start_with(EmulatorConfig::default().ftp_port(port)),
    )
    .await
    .expect("start returns")
    .expect_err("FTP port taken");
    assert!(
        matches!(
            &error,
            EmulatorError::Bind { port: p, .. }
                | EmulatorError::FtpServer { port: p, .. }
                | EmulatorError::FtpNotReady { port: p, .. } if *p == port
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains(&port.to_string()), "{error}");
}

/// Returns the ids of the images the API lists.
async fn image_ids(http: &reqwest::Client, emulator: &Emulator, token: &str) -> Vec<String> {
    let response = call(http, emulator, token, Method::GET, "images", None).await;
    assert_eq!(response.status, 200);
    response
        .body
        .as_array()
        .expect("image list")
        .iter()
        .map(|image| image["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn registration_rejects_bad_bodies() {
    let emulator = common::start(Duration::from_millis(50)).await;
    let http = reqwest::Client::new();
    let token = token(&http, &emulator).await;
    std::fs::write(emulator.incoming_dir().join("disk.img"), b"raw disk").expect("upload");
    // A file beside the storage folder that a `..` path would reach.
    let outside = emulator.storage_dir().join("outside.img");
    std::fs::write(&outside, b"outside incoming").expect("write outside file");
    let before = image_ids(&http, &emulator, &token).await;
    let long_name = "a".repeat(300);
    let orbit_url = emulator.orbit_url();

    let cases: Vec<(Value, &str)> = vec![
        (json!({"arch": "x86_64", "source": ""}), "source \"\""),
        (
            json!({"arch": "x86_64", "source": "../outside.img"}),
            "../outside.img",
        ),
        (
            json!({"arch": "x86_64", "source": "incoming/disk.img"}),
            "incoming/disk.img",
        ),
        (
            json!({"arch": "x86_64", "source": "..\\outside.img"}),
            "outside.img",
        ),
        (json!({"arch": "x86_64", "source": ".."}), "\"..\""),
        (json!({"arch": "x86_64", "source": "."}), "\".\""),
        (
            json!({"arch": "x86_64", "source": "disk\u{0}.img"}),
            "disk\\0.img",
        ),
        (
            json!({"arch": "x86_64", "source": "disk\n.img"}),
            "disk\\n.img",
        ),
        (json!({"arch": "x86_64", "source": "dïsk.img"}), "dïsk.img"),
        (json!({"arch": "x86_64", "source": long_name}), "aaaa"),
        (json!({"arch": "x86_64", "source": 5}), "source"),
        (json!({"arch": "arm64", "source": "disk.img"}), "arm64"),
        (json!({"source": "disk.img", "arch": ""}), "arch"),
        (json!({"arch": "x86_64"}), "one of source, http_url"),
        (
            json!({"arch": "x86_64", "source": "disk.img", "server": "srv-abc12"}),
            "only one of",
        ),
        (
            json!({"arch": "x86_64", "http_url": "http://example.com/disk.img"}),
            "example.com",
        ),
        (
            json!({"arch": "x86_64", "http_url": "ftp://user:hunter2-in-url@127.0.0.1/disk.img"}),
            "user name or password",
        ),
        (
            json!({"arch": "x86_64", "http_url": "ftp://127.0.0.1/disk.img"}),
            "ftp://127.0.0.1/disk.img",
        ),
        (
            json!({"arch": "x86_64", "http_url": "not a url"}),
            "not a url",
        ),
        (
            json!({"arch": "x86_64", "http_url": format!("{orbit_url}../../token")}),
            "http_url",
        ),
        (
            json!({"arch": "x86_64", "http_url": format!("{}uploads/disk.img", orbit_url.replacen("http://", "http://user:hunter2-in-url@", 1))}),
            "user name or password",
        ),
        (json!({"arch": "x86_64", "server": "IMG-BAD"}), "IMG-BAD"),
    ];
    for (body, fragment) in cases {
        let response = call(
            &http,
            &emulator,
            &token,
            Method::POST,
            "images",
            Some(body.clone()),
        )
        .await;
        assert!(
            response.status.is_client_error(),
            "{body}: {} {}",
            response.status,
            response.body
        );
        let messages = error_messages(&response.body).join("; ");
        assert!(!messages.contains("hunter2-in-url"), "{messages}");
        assert!(messages.contains(fragment), "{body}: {messages}");
    }

    assert_eq!(image_ids(&http, &emulator, &token).await, before);
    assert_eq!(
        std::fs::read(emulator.incoming_dir().join("disk.img")).expect("still there"),
        b"raw disk"
    );
    assert_eq!(
        std::fs::read(&outside).expect("still there"),
        b"outside incoming"
    );
    emulator.shutdown().await;
}

/// Sends a raw body and returns the status and the body text.
async fn post_raw(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    content_type: &str,
    body: &'static [u8],
) -> (StatusCode, String) {
    let response = http
        .post(url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("request is sent");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn malformed_request_bodies() {
    let emulator = common::start(Duration::from_millis(50)).await;
    let http = reqwest::Client::new();
    let token = token(&http, &emulator).await;
    let url = format!("{}1.0/images", emulator.api_url());
    let before = image_ids(&http, &emulator, &token).await;

    let cases: [(&str, &'static [u8]); 6] = [
        ("application/json", b"{"),
        ("application/json", b""),
        ("application/json", b"[1, 2]"),
        ("application/json", b"\xff\xfe"),
        ("application/json", b"null"),
        (
            "text/plain",
            b"{\"arch\": \"x86_64\", \"source\": \"disk.img\"}",
        ),
    ];
    for (content_type, body) in cases {
        let (status, text) = post_raw(&http, &url, &token, content_type, body).await;
        assert!(
            status.is_client_error(),
            "{content_type} {:?}: {status} {text}",
            String::from_utf8_lossy(body)
        );
        let reply: Value = serde_json::from_str(&text).expect("the error reply is JSON");
        assert!(
            !error_messages(&reply).is_empty(),
            "{status}: the reply explains the problem: {text}"
        );
    }

    assert_eq!(image_ids(&http, &emulator, &token).await, before);
    emulator.shutdown().await;
}

#[tokio::test]
async fn bad_tokens_and_ids() {
    let emulator = common::start(Duration::from_millis(50)).await;
    let http = reqwest::Client::new();
    let token_url = format!("{}token", emulator.api_url());

    // Wrong secret, unknown client, no credentials at all.
    for (user, secret) in [
        (emulator.client_id(), "wrong-secret"),
        ("cli-nope1", emulator.client_secret()),
        ("", ""),
    ] {
        let response = http
            .post(&token_url)
            .basic_auth(user, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request is sent");
        assert!(
            response.status().is_client_error(),
            "{user:?}: {}",
            response.status()
        );
        let body: Value = response.json().await.expect("OAuth error body");
        assert!(body["error"].is_string(), "{body}");
    }
    let response = http
        .post(&token_url)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request is sent");
    assert!(response.status().is_client_error(), "{}", response.status());

    // Tokens the API never issued.
    for bad in ["garbage", "", "Bearer x", &"t".repeat(5000)] {
        let response = call(&http, &emulator, bad, Method::GET, "images", None).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{bad:?}");
    }

    // Ids of the wrong form or kind.
    let token = token(&http, &emulator).await;
    for id in [
        "IMG-BAD",
        "img-",
        "srv-abc12",
        "img-%00",
        "img-..",
        "img-a%2Fb",
    ] {
        let response = call(
            &http,
            &emulator,
            &token,
            Method::GET,
            &format!("images/{id}"),
            None,
        )
        .await;
        assert!(
            response.status == StatusCode::NOT_FOUND || response.status == StatusCode::BAD_REQUEST,
            "{id}: {} {}",
            response.status,
            response.body
        );
        let response = call(
            &http,
            &emulator,
            &token,
            Method::DELETE,
            &format!("images/{id}"),
            None,
        )
        .await;
        assert!(
            response.status.is_client_error(),
            "{id}: {}",
            response.status
        );
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn ftp_paths_stay_inside_the_storage_folder() {
    let scratch = tempfile::tempdir().expect("scratch folder");
    let storage = scratch.path().join("storage");
    let emulator = start_in(&storage).await.expect("emulator starts");
    let http = reqwest::Client::new();
    let token = token(&http, &emulator).await;
    let password = reset_ftp_password(&http, &emulator, &token).await;
    let mut ftp = login(&emulator, &password).await;

    for path in [
        "../escape.img",
        "incoming/../../escape.img",
        "/../escape.img",
        "images/planted.img",
    ] {
        let mut data: &[u8] = b"planted bytes";
        let result = ftp.put_file(path, &mut data).await;
        if result.is_ok() {
            // The server may resolve `..` at its root; the file then lands inside the storage folder.
            let landed = storage.join("escape.img");
            let stored = landed.exists() || storage.join("incoming/escape.img").exists();
            assert!(stored, "{path}: stored, but not inside the storage folder");
            let _ = std::fs::remove_file(landed);
        }
        assert!(
            !scratch.path().join("escape.img").exists(),
            "{path} escaped"
        );
    }
    assert!(
        !storage.join("images/planted.img").exists(),
        "images/ is read-only"
    );

    let _ = ftp.quit().await;
    emulator.shutdown().await;
}
