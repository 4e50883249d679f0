//! The `brightbox-emulator` binary: printed settings, a working API, a clean stop on SIGINT.

#![cfg(unix)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills the child process on drop so a failed assertion leaves no server behind.
struct RunningBinary(Child);

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `KEY=value` lines from the binary's stdout until the storage line appears.
fn read_settings(child: &mut Child) -> HashMap<String, String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut settings = HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout is UTF-8");
        if let Some((key, value)) = line.split_once('=') {
            settings.insert(key.to_owned(), value.to_owned());
        }
        if line.starts_with("BRIGHTBOX_STORAGE=") {
            break;
        }
    }
    settings
}

#[tokio::test]
async fn binary_prints_settings_and_stops_on_sigint() {
    let storage = tempfile::tempdir().expect("temporary folder is created");
    let child = Command::new(env!("CARGO_BIN_EXE_brightbox-emulator"))
        .arg("--storage")
        .arg(storage.path())
        .arg("--registration-delay-ms")
        .arg("50")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut binary = RunningBinary(child);

    let settings = read_settings(&mut binary.0);
    let api_url = &settings["BRIGHTBOX_API_URL"];
    assert!(api_url.starts_with("http://127.0.0.1:"), "{api_url}");
    assert_eq!(settings["BRIGHTBOX_CLIENT_ID"], "cli-emu01");
    assert_eq!(settings["BRIGHTBOX_ACCOUNT"], "acc-emu01");
    assert_eq!(
        settings["BRIGHTBOX_ORBIT_URL"],
        format!("{api_url}v1/acc-emu01/")
    );
    assert!(settings["BRIGHTBOX_FTP_ADDR"].starts_with("127.0.0.1:"));
    let ca =
        std::fs::read_to_string(&settings["BRIGHTBOX_FTP_CA_FILE"]).expect("CA file is readable");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(storage.path().join("incoming").is_dir());
    assert!(storage.path().join("images").is_dir());

    let response = reqwest::Client::new()
        .post(format!("{api_url}token"))
        .basic_auth(
            &settings["BRIGHTBOX_CLIENT_ID"],
            Some(&settings["BRIGHTBOX_CLIENT_SECRET"]),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request is sent");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("token body is JSON");
    assert!(body["access_token"].is_string());

    let pid = binary.0.id().to_string();
    let sent = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = binary.0.try_wait().expect("child status is readable") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the binary did not stop after SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        storage.path().join("incoming").is_dir(),
        "a given storage folder is kept"
    );
}

#[test]
fn binary_rejects_storage_file() {
    let parent = tempfile::tempdir().expect("temporary folder is created");
    let file = parent.path().join("plain-file");
    std::fs::write(&file, b"x").expect("file is written");

    let output = Command::new(env!("CARGO_BIN_EXE_brightbox-emulator"))
        .arg("--storage")
        .arg(&file)
        .env("RUST_LOG", "off")
        .output()
        .expect("binary runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("plain-file"), "{stderr}");
    assert!(stderr.contains("is not a folder"), "{stderr}");
}

#[tokio::test]
async fn binary_ftp_retired_flag() {
    let child = Command::new(env!("CARGO_BIN_EXE_brightbox-emulator"))
        .arg("--ftp-retired")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut binary = RunningBinary(child);
    let settings = read_settings(&mut binary.0);
    let api_url = &settings["BRIGHTBOX_API_URL"];
    let http = reqwest::Client::new();

    let token: Value = http
        .post(format!("{api_url}token"))
        .basic_auth(
            &settings["BRIGHTBOX_CLIENT_ID"],
            Some(&settings["BRIGHTBOX_CLIENT_SECRET"]),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request is sent")
        .json()
        .await
        .expect("token body is JSON");
    let token = token["access_token"]
        .as_str()
        .expect("access_token is a string");
    let reset = http
        .post(format!("{api_url}1.0/account/reset_ftp_password"))
        .bearer_auth(token)
        .send()
        .await
        .expect("reset request is sent");

    assert_eq!(reset.status(), 410);
    let body: Value = reset.json().await.expect("error body is JSON");
    assert_eq!(body["error_name"], "gone");
}
