//! Snapshot downloads: LZ4 frame decoding into sparse files, Range resume and checks.

mod common;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use brightbox_orbit::{DownloadOptions, OrbitClient, OrbitError};
use common::{
    ACCOUNT_PATH, TOKEN, assert_all_authenticated, client, client_for, md5_hex, mount_catch_all,
    pseudo_random,
};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const IMAGE: &str = "img-abcde";

/// Builds a raw disk with data, a 2 MiB hole in the middle and a 1 MiB hole at the end.
fn raw_disk() -> Vec<u8> {
    let mut disk = pseudo_random(200 * 1024, 10);
    disk.extend(std::iter::repeat_n(0u8, 2 << 20));
    disk.extend(pseudo_random(100 * 1024, 11));
    disk.extend(std::iter::repeat_n(0u8, 1 << 20));
    disk
}

fn lz4_frame(data: &[u8]) -> Vec<u8> {
    let info = lz4_flex::frame::FrameInfo::new().content_checksum(true);
    let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    encoder.write_all(data).expect("encode");
    encoder.finish().expect("finish frame")
}

fn object_path() -> String {
    format!("{ACCOUNT_PATH}/images/{IMAGE}")
}

fn part_of(local: &Path) -> std::path::PathBuf {
    local.with_file_name(format!(
        "{}.part",
        local.file_name().expect("name").to_string_lossy()
    ))
}

async fn mount_snapshot(server: &MockServer, body: &[u8], etag: &str) {
    Mock::given(method("GET"))
        .and(path(object_path()))
        .and(header("x-auth-token", TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", format!("\"{etag}\""))
                .set_body_bytes(body.to_vec()),
        )
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn snapshot_decodes_into_sparse_file() {
    let server = MockServer::start().await;
    let disk = raw_disk();
    let frame = lz4_frame(&disk);
    mount_snapshot(&server, &frame, &md5_hex(&frame)).await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("disk.raw");

    let options = DownloadOptions::default().expected_size(disk.len() as u64);
    let result = client(&server)
        .download_snapshot(IMAGE, &local, &options)
        .await
        .expect("download");
    assert_eq!(result.path, local);
    assert_eq!(result.size, disk.len() as u64);
    assert_eq!(result.compressed_bytes, frame.len() as u64);
    assert_eq!(result.attempts, 1);
    assert_eq!(result.etag.as_deref(), Some(md5_hex(&frame).as_str()));

    let written = std::fs::read(&local).expect("read output");
    assert!(written == disk, "decoded bytes differ from the source disk");
    let meta = std::fs::metadata(&local).expect("metadata");
    assert_eq!(meta.len(), disk.len() as u64);
    assert!(
        meta.blocks() * 512 < meta.len(),
        "file is not sparse: {} bytes allocated for {} bytes",
        meta.blocks() * 512,
        meta.len()
    );
    assert!(!part_of(&local).exists());
    assert_all_authenticated(&server).await;
}

#[tokio::test]
async fn keep_compressed_writes_frame() {
    let server = MockServer::start().await;
    let frame = lz4_frame(&raw_disk());
    mount_snapshot(&server, &frame, &md5_hex(&frame)).await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("disk.raw.lz4");

    let options = DownloadOptions::default().keep_compressed(true);
    let result = client(&server)
        .download_snapshot(IMAGE, &local, &options)
        .await
        .expect("download");
    assert_eq!(result.size, frame.len() as u64);
    assert!(std::fs::read(&local).expect("read") == frame);
}

#[tokio::test]
async fn decoded_size_mismatch_removes_file() {
    let server = MockServer::start().await;
    let disk = raw_disk();
    let frame = lz4_frame(&disk);
    mount_snapshot(&server, &frame, &md5_hex(&frame)).await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("disk.raw");

    let options = DownloadOptions::default().expected_size(10 << 30);
    let error = client(&server)
        .download_snapshot(IMAGE, &local, &options)
        .await
        .expect_err("size mismatch");
    match error {
        OrbitError::SizeMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, 10 << 30);
            assert_eq!(actual, disk.len() as u64);
        }
        other => panic!("expected SizeMismatch, got {other:?}"),
    }
    assert!(!local.exists());
    assert!(!part_of(&local).exists());
}

#[tokio::test]
async fn invalid_lz4_is_decode_error() {
    let server = MockServer::start().await;
    let body = b"this is a qcow2 image, not an LZ4 frame".to_vec();
    mount_snapshot(&server, &body, &md5_hex(&body)).await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("disk.raw");

    let error = client(&server)
        .download_snapshot(IMAGE, &local, &DownloadOptions::default())
        .await
        .expect_err("not LZ4");
    assert!(
        matches!(&error, OrbitError::Decode { object, .. } if object == IMAGE),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert!(!local.exists());
    assert!(!part_of(&local).exists());
}

#[tokio::test]
async fn corrupted_body_is_etag_mismatch() {
    let server = MockServer::start().await;
    let frame = lz4_frame(&raw_disk());
    mount_snapshot(&server, &frame, &md5_hex(b"different object")).await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("disk.raw");

    let error = client(&server)
        .download_snapshot(IMAGE, &local, &DownloadOptions::default())
        .await
        .expect_err("etag mismatch");
    assert!(
        matches!(error, OrbitError::EtagMismatch { .. }),
        "{error:?}"
    );
    assert!(!local.exists());
}

#[tokio::test]
async fn missing_snapshot_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(object_path()))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("disk.raw");

    let error = client(&server)
        .download_snapshot(IMAGE, &local, &DownloadOptions::default())
        .await
        .expect_err("missing");
    match error {
        OrbitError::NotFound { container, object } => {
            assert_eq!(container, "images");
            assert_eq!(object.as_deref(), Some(IMAGE));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(!part_of(&local).exists());
}

#[tokio::test]
async fn persistent_503_exhausts_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(object_path()))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .expect(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("disk.raw");

    let options = DownloadOptions::default().max_attempts(2);
    let error = client(&server)
        .download_snapshot(IMAGE, &local, &options)
        .await
        .expect_err("503 twice");
    match &error {
        OrbitError::Interrupted {
            attempts,
            received,
            source,
            ..
        } => {
            assert_eq!(*attempts, 2);
            assert_eq!(*received, 0);
            assert!(
                matches!(**source, OrbitError::Http { status: 503, .. }),
                "{source:?}"
            );
        }
        other => panic!("expected Interrupted, got {other:?}"),
    }
}

#[tokio::test]
async fn compressed_part_resumes_with_range() {
    let server = MockServer::start().await;
    let frame = lz4_frame(&raw_disk());
    let have = frame.len() / 3;
    let total = frame.len();
    Mock::given(method("GET"))
        .and(path(object_path()))
        .and(header("range", format!("bytes={have}-").as_str()))
        .respond_with(
            ResponseTemplate::new(206)
                .insert_header(
                    "content-range",
                    format!("bytes {have}-{}/{total}", total - 1),
                )
                .insert_header("etag", md5_hex(&frame))
                .set_body_bytes(frame[have..].to_vec()),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("disk.raw.lz4");
    std::fs::write(part_of(&local), &frame[..have]).expect("write partial file");

    let options = DownloadOptions::default().keep_compressed(true);
    let result = client(&server)
        .download_snapshot(IMAGE, &local, &options)
        .await
        .expect("resumed download");
    assert_eq!(result.resumed_from, have as u64);
    assert!(std::fs::read(&local).expect("read") == frame);
    assert!(!part_of(&local).exists());
}

/// How the first response of [`serve_broken_then_range`] breaks off.
#[derive(Clone, Copy)]
enum Break {
    /// Close the connection after `cut` bytes.
    Close,
    /// Keep the connection open and send nothing more after `cut` bytes.
    Stall,
}

/// Serves `body` over raw HTTP/1.1: the first response stops after `cut` bytes, and the second
/// serves the `Range` request with 206. Returns the base URL and a handle yielding the
/// request heads.
async fn serve_broken_then_range(
    body: Vec<u8>,
    cut: usize,
    first: Break,
) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let etag = md5_hex(&body);
    let handle = tokio::spawn(async move {
        let mut heads = Vec::new();
        let mut stalled = Vec::new();
        for connection in 0..2 {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                let read = socket.read(&mut byte).await.expect("read request");
                assert_eq!(read, 1, "client closed the connection mid-request");
                head.push(byte[0]);
            }
            let head = String::from_utf8(head)
                .expect("ASCII request")
                .to_ascii_lowercase();
            if connection == 0 {
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\netag: \"{etag}\"\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                socket
                    .write_all(response.as_bytes())
                    .await
                    .expect("write head");
                socket.write_all(&body[..cut]).await.expect("write part");
                if let Break::Stall = first {
                    heads.push(head);
                    stalled.push(socket);
                    continue;
                }
            } else {
                let start: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("range: bytes="))
                    .and_then(|range| range.trim_end_matches('-').parse().ok())
                    .expect("second request has a Range header");
                let response = format!(
                    "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {start}-{}/{}\r\netag: \"{etag}\"\r\nconnection: close\r\n\r\n",
                    body.len() - start,
                    body.len() - 1,
                    body.len()
                );
                socket
                    .write_all(response.as_bytes())
                    .await
                    .expect("write head");
                socket.write_all(&body[start..]).await.expect("write rest");
            }
            socket.shutdown().await.expect("shutdown");
            heads.push(head);
        }
        heads
    });
    (base, handle)
}

#[tokio::test]
async fn truncated_response_resumes_with_range() {
    let disk = raw_disk();
    let frame = lz4_frame(&disk);
    let cut = frame.len() / 2;
    let (base, server) = serve_broken_then_range(frame.clone(), cut, Break::Close).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("disk.raw");

    let options = DownloadOptions::default().expected_size(disk.len() as u64);
    let result = client_for(&base)
        .download_snapshot(IMAGE, &local, &options)
        .await
        .expect("download resumes");
    assert_eq!(result.attempts, 2);
    assert_eq!(result.compressed_bytes, frame.len() as u64);
    assert!(std::fs::read(&local).expect("read") == disk);

    let heads = server.await.expect("server task");
    assert_eq!(heads.len(), 2);
    assert!(heads[0].starts_with(&format!("get {}", object_path().to_ascii_lowercase())));
    assert!(!heads[0].contains("range:"), "{}", heads[0]);
    assert!(
        heads[1].contains(&format!("range: bytes={cut}-")),
        "{}",
        heads[1]
    );
    assert!(
        heads[1].contains(&format!("if-match: \"{}\"", md5_hex(&frame))),
        "{}",
        heads[1]
    );
    for head in &heads {
        assert!(head.contains(&format!("x-auth-token: {TOKEN}")), "{head}");
    }
}

#[tokio::test]
async fn stalled_response_resumes_after_read_timeout() {
    let disk = raw_disk();
    let frame = lz4_frame(&disk);
    let cut = frame.len() / 3;
    let (base, server) = serve_broken_then_range(frame.clone(), cut, Break::Stall).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("disk.raw");
    let client = OrbitClient::builder()
        .storage_url(format!("{base}{ACCOUNT_PATH}/").parse().expect("url"))
        .token(SecretString::from(TOKEN))
        .read_timeout(Duration::from_millis(300))
        .build()
        .expect("client");

    let started = Instant::now();
    let result = client
        .download_snapshot(IMAGE, &local, &DownloadOptions::default())
        .await
        .expect("download resumes after the stall");
    assert_eq!(result.attempts, 2);
    assert!(std::fs::read(&local).expect("read") == disk);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stall not detected in time"
    );

    let heads = server.await.expect("server task");
    assert!(
        heads[1].contains(&format!("range: bytes={cut}-")),
        "{}",
        heads[1]
    );
}
