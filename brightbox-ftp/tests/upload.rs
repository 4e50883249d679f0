//! Uploads against a real in-process FTPS server.

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use brightbox_ftp::{Channel, FtpError, FtpsClient, ProgressSink, UploadOptions};
use common::{TestServer, local_names, random_file, sha256_file, sha256_hex};

const THREE_MIB: usize = 3 * 1024 * 1024 + 12_345;

#[tokio::test]
async fn upload_three_mib_keeps_bytes() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", THREE_MIB);

    let reported = AtomicU64::new(0);
    let calls = AtomicU64::new(0);
    let monotonic = Mutex::new(true);
    let progress = |bytes: u64| {
        let previous = reported.swap(bytes, Ordering::SeqCst);
        if bytes < previous {
            *monotonic.lock().expect("progress lock") = false;
        }
        calls.fetch_add(1, Ordering::SeqCst);
    };

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let upload = client
        .upload_file(&local, "incoming", "disk.img", Some(&progress))
        .await
        .expect("upload");

    assert_eq!(upload.remote_path, "incoming/disk.img");
    assert_eq!(upload.bytes, THREE_MIB as u64);
    assert_eq!(upload.source_bytes, THREE_MIB as u64);
    assert_eq!(reported.load(Ordering::SeqCst), THREE_MIB as u64);
    assert!(
        calls.load(Ordering::SeqCst) >= 4,
        "one progress call per 1 MiB chunk"
    );
    assert!(
        *monotonic.lock().expect("progress lock"),
        "progress never goes back"
    );

    let stored = server.path("incoming/disk.img");
    assert_eq!(sha256_file(&stored), local_sha);
    assert_eq!(local_names(&server.path("incoming")), vec!["disk.img"]);

    assert_eq!(
        client.size("incoming/disk.img").await.expect("SIZE"),
        THREE_MIB as u64
    );
    client.quit().await.expect("quit");
}

#[tokio::test]
async fn upload_without_sha256_keeps_bytes() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "plain.img", THREE_MIB);

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let upload = client
        .upload_file_with(
            &local,
            "incoming",
            "plain.img",
            &UploadOptions::new().sha256(false),
        )
        .await
        .expect("upload");

    assert_eq!(upload.sha256, "");
    assert_eq!(upload.bytes, THREE_MIB as u64);
    assert_eq!(sha256_file(&server.path("incoming/plain.img")), local_sha);
    client.quit().await.expect("quit");
}

#[tokio::test]
async fn upload_replaces_existing_file() {
    let server = TestServer::start().await;
    std::fs::write(server.path("incoming/disk.img"), b"old contents").expect("seed old file");
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "new.img", 100_000);

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    client
        .upload_file(&local, "incoming/", "disk.img", None)
        .await
        .expect("upload");

    assert_eq!(sha256_file(&server.path("incoming/disk.img")), local_sha);
    assert_eq!(local_names(&server.path("incoming")), vec!["disk.img"]);
}

#[tokio::test]
async fn upload_empty_file() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let local = local_dir.path().join("empty.img");
    std::fs::write(&local, b"").expect("write empty file");

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let upload = client
        .upload_file(&local, "incoming", "empty.img", None)
        .await
        .expect("upload");

    assert_eq!(upload.bytes, 0);
    let stored = std::fs::metadata(server.path("incoming/empty.img")).expect("stored file");
    assert_eq!(stored.len(), 0);
}

#[tokio::test]
async fn list_names_returns_uploaded_files() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (first, _) = random_file(local_dir.path(), "a.img", 1000);
    let (second, _) = random_file(local_dir.path(), "b.img", 2000);

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    assert!(
        client
            .list_names("incoming")
            .await
            .expect("list")
            .is_empty()
    );
    client
        .upload_file(&first, "incoming", "a.img", None)
        .await
        .expect("upload a");
    client
        .upload_file(&second, "incoming", "b.img", None)
        .await
        .expect("upload b");

    let mut names = client.list_names("incoming").await.expect("list");
    names.sort();
    assert_eq!(names, vec!["a.img", "b.img"]);
    assert_eq!(client.size("incoming/b.img").await.expect("SIZE"), 2000);
}

#[tokio::test]
async fn upload_to_missing_directory_fails() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, _) = random_file(local_dir.path(), "disk.img", 1000);

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let error = client
        .upload_file(&local, "no-such-dir", "disk.img", None)
        .await
        .expect_err("upload into a missing directory");

    // vsftpd rejects STOR itself (553). libunftp first replies 150, then closes the data
    // connection and replies 550; the client reports that reply when it arrives in time and
    // the data connection failure otherwise.
    match &error {
        FtpError::NotFound {
            command,
            remote_path,
            code,
            ..
        } => {
            assert_eq!(command, "STOR no-such-dir/.disk.img.part");
            assert_eq!(remote_path, "no-such-dir/.disk.img.part");
            assert_eq!(*code, 550);
            assert!(!error.is_retryable(), "a missing directory is permanent");
        }
        FtpError::ServerReply { command, .. } => {
            assert_eq!(command, "STOR no-such-dir/.disk.img.part");
            assert!(!error.is_retryable(), "a missing directory is permanent");
        }
        FtpError::Network {
            channel, operation, ..
        } => {
            assert_eq!(*channel, Channel::Data);
            assert_eq!(operation, "STOR no-such-dir/.disk.img.part");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("STOR no-such-dir/.disk.img.part"),
        "{error}"
    );
    assert!(!server.path("no-such-dir").exists());

    // The session stays usable after a rejected command.
    assert!(
        client
            .list_names("incoming")
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn size_of_missing_file_is_550() {
    let server = TestServer::start().await;
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");

    let error = client
        .size("incoming/absent.img")
        .await
        .expect_err("SIZE of a missing file");

    assert_eq!(error.reply_code(), Some(550), "{error:?}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn missing_local_file_is_io_error() {
    let server = TestServer::start().await;
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let missing = Path::new("/nonexistent/brightbox/disk.img");

    let error = client
        .upload_file(missing, "incoming", "disk.img", None)
        .await
        .expect_err("missing local file");

    match &error {
        FtpError::Io { path, .. } => assert_eq!(path, missing),
        other => panic!("expected FtpError::Io, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("/nonexistent/brightbox/disk.img")
    );
    assert!(local_names(&server.path("incoming")).is_empty());
}

#[tokio::test]
async fn local_directory_is_rejected() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");

    let error = client
        .upload_file(local_dir.path(), "incoming", "disk.img", None)
        .await
        .expect_err("a directory is not a file");

    assert!(matches!(error, FtpError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("not a regular file"), "{error}");
}

#[tokio::test]
async fn connect_by_host_name_localhost() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", 50_000);

    let mut client = FtpsClient::connect(&server.config_for_host("localhost"))
        .await
        .expect("connect to localhost");
    client
        .upload_file(&local, "incoming", "disk.img", None)
        .await
        .expect("upload");

    assert_eq!(client.host(), "localhost");
    assert_eq!(sha256_file(&server.path("incoming/disk.img")), local_sha);
}

#[tokio::test]
async fn gzip_upload_shrinks_zero_image() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let length = 8 * 1024 * 1024;
    let (random_head, _) = random_file(local_dir.path(), "head.bin", 100_000);
    let mut image = std::fs::read(&random_head).expect("read random head");
    image.resize(length, 0);
    let local = local_dir.path().join("disk.img");
    std::fs::write(&local, &image).expect("write mostly-zero image");
    let image_sha = sha256_hex(&image);

    let reports = std::sync::Arc::new(Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&reports);
    let sink = ProgressSink::callback(move |progress| {
        record
            .lock()
            .expect("progress lock")
            .push(progress.bytes_done);
    });
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let upload = client
        .upload_file_with(
            &local,
            "incoming",
            "disk.img.gz",
            &UploadOptions::new().gzip(true).progress(sink),
        )
        .await
        .expect("gzip upload");

    let stored = std::fs::read(server.path("incoming/disk.img.gz")).expect("stored file");
    assert_eq!(upload.remote_path, "incoming/disk.img.gz");
    assert_eq!(upload.source_bytes, length as u64);
    assert_eq!(upload.bytes, stored.len() as u64);
    assert!(
        stored.len() < 200_000,
        "8 MiB of mostly zeros sent as {} bytes",
        stored.len()
    );
    assert_eq!(
        upload.sha256, image_sha,
        "SHA-256 of the uncompressed source"
    );
    assert_eq!(
        client.size("incoming/disk.img.gz").await.expect("SIZE"),
        stored.len() as u64
    );

    let mut decompressed = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(stored.as_slice()),
        &mut decompressed,
    )
    .expect("the stored file is valid gzip");
    assert_eq!(decompressed.len(), length);
    assert_eq!(sha256_hex(&decompressed), image_sha);

    let reports = reports.lock().expect("progress lock").clone();
    assert_eq!(
        reports.last().copied(),
        Some(length as u64),
        "progress counts source bytes: {reports:?}"
    );
    client.quit().await.expect("quit");
}

#[tokio::test]
async fn gzip_with_resume_is_invalid_option() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, _) = random_file(local_dir.path(), "disk.img", 1000);

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let error = client
        .upload_file_with(
            &local,
            "incoming",
            "disk.img.gz",
            &UploadOptions::new().gzip(true).resume(true),
        )
        .await
        .expect_err("gzip with resume");

    assert!(
        matches!(&error, FtpError::InvalidOption { name, .. } if name == "UploadOptions::gzip"),
        "{error:?}"
    );
    assert!(error.to_string().contains("resume"), "{error}");
    assert!(local_names(&server.path("incoming")).is_empty());
}
