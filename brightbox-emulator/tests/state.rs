//! The state folder in one process: what a second start with the same folders reloads,
//! the file modes, and the settings it rejects.

mod common;

use std::path::Path;
use std::time::Duration;

use brightbox_emulator::{Emulator, EmulatorConfig, EmulatorError};
use common::{call, login, register_file, token, wait_for_status};
use reqwest::{Method, StatusCode};
use serde_json::json;

const DELAY: Duration = Duration::from_millis(100);

fn config(storage: &Path, state: &Path) -> EmulatorConfig {
    EmulatorConfig::default()
        .storage_dir(storage)
        .state_dir(state)
        .registration_delay(DELAY)
}

async fn start(storage: &Path, state: &Path) -> Emulator {
    Emulator::start_with(config(storage, state))
        .await
        .expect("emulator starts with a state folder")
}

#[tokio::test]
async fn restart_keeps_credentials_ca_and_records() {
    let storage = tempfile::tempdir().expect("storage folder is created");
    let state = tempfile::tempdir().expect("state folder is created");
    let http = reqwest::Client::new();

    let first = start(storage.path(), state.path()).await;
    let secret = first.client_secret().to_owned();
    let ca = first.ca_certificate_pem().to_owned();
    let first_token = token(&http, &first).await;
    let available = register_file(&http, &first, &first_token, "ready.img", &[7; 4096]).await;
    wait_for_status(
        &http,
        &first,
        &first_token,
        "images",
        &available,
        "available",
    )
    .await;
    let server = call(
        &http,
        &first,
        &first_token,
        Method::POST,
        "servers",
        Some(json!({"image": available, "name": "kept"})),
    )
    .await;
    assert_eq!(server.status, StatusCode::ACCEPTED, "{}", server.body);
    let server_id = server.body["id"].as_str().expect("server id").to_owned();
    // Still `creating` when the emulator stops; it must finish after the restart.
    first
        .faults()
        .registration_delay(Duration::from_millis(1500));
    let creating = register_file(&http, &first, &first_token, "late.img", &[9; 4096]).await;
    let password = first.reset_ftp_password();
    first.shutdown().await;

    let second = start(storage.path(), state.path()).await;
    assert_eq!(second.client_secret(), secret);
    assert_eq!(second.ca_certificate_pem(), ca);
    let mut ftp = login(&second, &password).await;
    ftp.quit().await.expect("QUIT is accepted");

    let second_token = token(&http, &second).await;
    let image = call(
        &http,
        &second,
        &second_token,
        Method::GET,
        &format!("images/{available}"),
        None,
    )
    .await;
    assert_eq!(image.status, StatusCode::OK, "{}", image.body);
    assert_eq!(image.body["status"], "available");
    assert_eq!(image.body["source"], "ready.img");
    assert!(storage.path().join("images").join(&available).is_file());
    wait_for_status(
        &http,
        &second,
        &second_token,
        "images",
        &creating,
        "available",
    )
    .await;
    let server = wait_for_status(
        &http,
        &second,
        &second_token,
        "servers",
        &server_id,
        "active",
    )
    .await;
    assert_eq!(server["image"]["id"], available.as_str());

    let list = call(&http, &second, &second_token, Method::GET, "images", None).await;
    let ids: Vec<&str> = list
        .body
        .as_array()
        .expect("image list is an array")
        .iter()
        .filter_map(|image| image["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "img-noble",
            "img-bookw",
            available.as_str(),
            creating.as_str()
        ]
    );
    second.shutdown().await;
}

#[tokio::test]
async fn first_start_without_state_files_generates_them() {
    let storage = tempfile::tempdir().expect("storage folder is created");
    let state = tempfile::tempdir().expect("state folder is created");
    let folder = state.path().join("new");

    let emulator = start(storage.path(), &folder).await;
    assert!(emulator.ca_certificate_path().starts_with(&folder));
    for file in ["credentials.json", "tls/ca.pem"] {
        assert!(folder.join(file).is_file(), "{file} is missing");
    }
    let credentials =
        std::fs::read_to_string(folder.join("credentials.json")).expect("credentials readable");
    assert!(credentials.contains(emulator.client_secret()));
    emulator.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn state_files_are_private() {
    use std::os::unix::fs::PermissionsExt;

    let storage = tempfile::tempdir().expect("storage folder is created");
    let state = tempfile::tempdir().expect("state folder is created");
    // A wider mode from before the first start is narrowed.
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755))
        .expect("mode is set");
    let emulator = start(storage.path(), state.path()).await;
    let http = reqwest::Client::new();
    let token = token(&http, &emulator).await;
    register_file(&http, &emulator, &token, "disk.img", &[1; 1024]).await;
    emulator.shutdown().await;

    let mode = |path: &Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    for folder in ["", "tls", "disks"] {
        let path = state.path().join(folder);
        assert_eq!(mode(&path), 0o700, "{}", path.display());
    }
    for file in [
        "catalog.json",
        "credentials.json",
        "tls/ca.pem",
        "tls/server-chain.pem",
        "tls/server-key.pem",
    ] {
        let path = state.path().join(file);
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[tokio::test]
async fn state_inside_storage_is_rejected() {
    let storage = tempfile::tempdir().expect("storage folder is created");
    let state = storage.path().join("incoming").join("state");

    let error = Emulator::start_with(config(storage.path(), &state))
        .await
        .expect_err("a state folder inside the FTP root is rejected");
    assert!(
        matches!(error, EmulatorError::StateInsideStorage { .. }),
        "{error:?}"
    );
    assert!(!state.exists(), "the rejected state folder was created");
    let message = error.to_string();
    assert!(message.contains("state"), "{message}");
    assert!(message.contains("outside"), "{message}");
}

#[tokio::test]
async fn state_without_storage_is_rejected() {
    let state = tempfile::tempdir().expect("state folder is created");

    let error = Emulator::start_with(EmulatorConfig::default().state_dir(state.path()))
        .await
        .expect_err("a state folder needs a storage folder");
    assert!(
        matches!(error, EmulatorError::StateWithoutStorage { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_catalog_is_rejected() {
    let storage = tempfile::tempdir().expect("storage folder is created");
    let state = tempfile::tempdir().expect("state folder is created");
    let catalog = state.path().join("catalog.json");
    std::fs::write(
        &catalog,
        r#"{"version": 1, "images": [{"id": 5}], "servers": []}"#,
    )
    .expect("catalog is written");

    let error = Emulator::start_with(config(storage.path(), state.path()))
        .await
        .expect_err("an invalid catalog is rejected");
    let EmulatorError::StateInvalid { path, reason } = &error else {
        panic!("unexpected error: {error:?}");
    };
    assert!(path.ends_with("catalog.json"), "{}", path.display());
    assert!(reason.contains("images[0].id"), "{reason}");
}

#[tokio::test]
async fn newer_layout_version_is_rejected() {
    let storage = tempfile::tempdir().expect("storage folder is created");
    let state = tempfile::tempdir().expect("state folder is created");
    std::fs::write(
        state.path().join("catalog.json"),
        r#"{"version": 2, "images": [], "servers": []}"#,
    )
    .expect("catalog is written");

    let error = Emulator::start_with(config(storage.path(), state.path()))
        .await
        .expect_err("an unknown layout version is rejected");
    let EmulatorError::StateInvalid { reason, .. } = &error else {
        panic!("unexpected error: {error:?}");
    };
    assert!(reason.contains("version 2"), "{reason}");
}
