//! Single-PUT and Static Large Object uploads against wiremock.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brightbox_orbit::{
    BoxError, OrbitClient, OrbitError, TokenProvider, TransferProgress, UploadOptions,
};
use common::{
    ACCOUNT_PATH, TOKEN, assert_all_authenticated, client, md5_hex, mount_catch_all, pseudo_random,
};
use md5::{Digest, Md5};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_bytes, body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SEGMENT: usize = 64 * 1024;
const LARGE: usize = 300 * 1024;

fn write_file(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, data).expect("write test file");
    file
}

fn segment_name(index: usize) -> String {
    format!("disk.img/segments/{LARGE}-{SEGMENT}/{index:08}")
}

fn slo_etag(segments: &[&[u8]]) -> String {
    let mut hasher = Md5::new();
    for segment in segments {
        hasher.update(md5_hex(segment).as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[tokio::test]
async fn small_file_single_put() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = pseudo_random(10_000, 1);
    let file = write_file(dir.path(), "small.img", &data);
    Mock::given(method("PUT"))
        .and(path(format!("{ACCOUNT_PATH}/uploads/small.img")))
        .and(header("x-auth-token", TOKEN))
        .and(header("content-length", "10000"))
        .and(body_bytes(data.clone()))
        .respond_with(
            ResponseTemplate::new(201).insert_header("etag", format!("\"{}\"", md5_hex(&data))),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let seen = Arc::new(Mutex::new(Vec::<TransferProgress>::new()));
    let recorder = Arc::clone(&seen);
    let options =
        UploadOptions::default().on_progress(move |p| recorder.lock().expect("lock").push(p));
    let uploaded = client(&server)
        .upload_file("uploads", "small.img", &file, &options)
        .await
        .expect("upload");
    assert_eq!(uploaded.size, 10_000);
    assert_eq!(uploaded.etag, md5_hex(&data));
    assert_eq!(uploaded.segments, 0);

    let seen = seen.lock().expect("lock").clone();
    let last = seen.last().expect("progress reported");
    assert_eq!(last.bytes_done, 10_000);
    assert_eq!(last.bytes_total, Some(10_000));
    assert!(seen.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
    assert_all_authenticated(&server).await;
}

#[tokio::test]
async fn single_put_etag_mismatch() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = pseudo_random(5_000, 2);
    let file = write_file(dir.path(), "bad.img", &data);
    Mock::given(method("PUT"))
        .and(path(format!("{ACCOUNT_PATH}/uploads/bad.img")))
        .respond_with(
            ResponseTemplate::new(201).insert_header("etag", "0123456789abcdef0123456789abcdef"),
        )
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let options = UploadOptions::default().max_attempts(1);
    let error = client(&server)
        .upload_file("uploads", "bad.img", &file, &options)
        .await
        .expect_err("mismatch");
    match &error {
        OrbitError::EtagMismatch {
            object,
            expected,
            actual,
        } => {
            assert_eq!(object, "bad.img");
            assert_eq!(expected, &md5_hex(&data));
            assert_eq!(actual, "0123456789abcdef0123456789abcdef");
        }
        other => panic!("expected EtagMismatch, got {other:?}"),
    }
    assert!(error.is_retryable());
}

/// Mounts a PUT for each segment that checks the exact bytes and returns their MD5 as the ETag.
async fn mount_segment_puts(server: &MockServer, data: &[u8], indexes: &[usize]) {
    for &index in indexes {
        let bytes = &data[index * SEGMENT..((index + 1) * SEGMENT).min(data.len())];
        Mock::given(method("PUT"))
            .and(path(format!(
                "{ACCOUNT_PATH}/uploads/{}",
                segment_name(index)
            )))
            .and(header("x-auth-token", TOKEN))
            .and(body_bytes(bytes.to_vec()))
            .respond_with(ResponseTemplate::new(201).insert_header("etag", md5_hex(bytes)))
            .expect(1)
            .mount(server)
            .await;
    }
}

fn expected_manifest(data: &[u8]) -> serde_json::Value {
    let entries: Vec<_> = data
        .chunks(SEGMENT)
        .enumerate()
        .map(|(index, bytes)| {
            json!({
                "path": format!("/uploads/{}", segment_name(index)),
                "etag": md5_hex(bytes),
                "size_bytes": bytes.len(),
            })
        })
        .collect();
    serde_json::Value::Array(entries)
}

async fn mount_manifest_put(server: &MockServer, data: &[u8]) {
    let segments: Vec<&[u8]> = data.chunks(SEGMENT).collect();
    Mock::given(method("PUT"))
        .and(path(format!("{ACCOUNT_PATH}/uploads/disk.img")))
        .and(query_param("multipart-manifest", "put"))
        .and(header("x-auth-token", TOKEN))
        .and(body_json(expected_manifest(data)))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("etag", format!("\"{}\"", slo_etag(&segments))),
        )
        .expect(1)
        .mount(server)
        .await;
}

async fn mount_listing(server: &MockServer, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT_PATH}/uploads")))
        .and(query_param("format", "json"))
        .and(query_param(
            "prefix",
            format!("disk.img/segments/{LARGE}-{SEGMENT}/"),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn large_file_uploads_segments_then_manifest() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = pseudo_random(LARGE, 3);
    let file = write_file(dir.path(), "disk.img", &data);
    mount_listing(&server, json!([])).await;
    mount_segment_puts(&server, &data, &[0, 1, 2, 3, 4]).await;
    mount_manifest_put(&server, &data).await;
    mount_catch_all(&server).await;

    let options = UploadOptions::default().segment_size(SEGMENT as u64);
    let uploaded = client(&server)
        .upload_file("uploads", "disk.img", &file, &options)
        .await
        .expect("segmented upload");
    assert_eq!(uploaded.segments, 5);
    assert_eq!(uploaded.segments_reused, 0);
    assert_eq!(uploaded.size, LARGE as u64);
    let segments: Vec<&[u8]> = data.chunks(SEGMENT).collect();
    assert_eq!(uploaded.etag, slo_etag(&segments));

    let requests = server.received_requests().await.expect("recording enabled");
    let last = requests.last().expect("requests sent");
    assert_eq!(
        last.url.query(),
        Some("multipart-manifest=put"),
        "manifest goes last"
    );
    assert_all_authenticated(&server).await;
}

#[tokio::test]
async fn resume_skips_matching_segments() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = pseudo_random(LARGE, 4);
    let file = write_file(dir.path(), "disk.img", &data);
    let segment = |i: usize| &data[i * SEGMENT..(i + 1) * SEGMENT];
    // Segments 0 and 1 are stored intact; 2 has the right size but other bytes; 4 is short.
    mount_listing(
        &server,
        json!([
            {"name": segment_name(0), "bytes": SEGMENT, "hash": md5_hex(segment(0)),
             "content_type": "application/octet-stream", "last_modified": "2026-12-01T10:00:00.000000"},
            {"name": segment_name(1), "bytes": SEGMENT, "hash": md5_hex(segment(1)).to_uppercase(),
             "content_type": "application/octet-stream", "last_modified": "2026-12-01T10:00:00.000000"},
            {"name": segment_name(2), "bytes": SEGMENT, "hash": md5_hex(b"other bytes"),
             "content_type": "application/octet-stream", "last_modified": "2026-12-01T10:00:00.000000"},
            {"name": segment_name(4), "bytes": 10, "hash": md5_hex(b"short"),
             "content_type": "application/octet-stream", "last_modified": "2026-12-01T10:00:00.000000"},
        ]),
    )
    .await;
    mount_segment_puts(&server, &data, &[2, 3, 4]).await;
    mount_manifest_put(&server, &data).await;
    mount_catch_all(&server).await;

    let progress = Arc::new(Mutex::new(0u64));
    let recorder = Arc::clone(&progress);
    let options = UploadOptions::default()
        .segment_size(SEGMENT as u64)
        .on_progress(move |p| *recorder.lock().expect("lock") = p.bytes_done);
    let uploaded = client(&server)
        .upload_file("uploads", "disk.img", &file, &options)
        .await
        .expect("resumed upload");
    assert_eq!(uploaded.segments, 5);
    assert_eq!(uploaded.segments_reused, 2);
    assert_eq!(*progress.lock().expect("lock"), LARGE as u64);
    // The expectations on each mock (one PUT per missing segment, none for 0 and 1)
    // are checked when the server drops.
}

#[tokio::test]
async fn segment_etag_mismatch_exhausts_retries() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = pseudo_random(LARGE, 5);
    let file = write_file(dir.path(), "disk.img", &data);
    mount_listing(&server, json!([])).await;
    Mock::given(method("PUT"))
        .and(path(format!("{ACCOUNT_PATH}/uploads/{}", segment_name(0))))
        .respond_with(ResponseTemplate::new(201).insert_header("etag", md5_hex(b"corrupted")))
        .expect(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let options = UploadOptions::default()
        .segment_size(SEGMENT as u64)
        .max_attempts(2)
        .retry_delay(Duration::from_millis(10));
    let error = client(&server)
        .upload_file("uploads", "disk.img", &file, &options)
        .await
        .expect_err("segment mismatch");
    match &error {
        OrbitError::RetriesExhausted {
            object,
            attempts,
            source,
        } => {
            assert_eq!(object, &segment_name(0));
            assert_eq!(*attempts, 2);
            assert!(
                matches!(&**source, OrbitError::EtagMismatch { object, .. } if object == &segment_name(0)),
                "{source:?}"
            );
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert!(error.is_retryable());
}

#[tokio::test]
async fn segment_503_retried_then_succeeds() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = pseudo_random(LARGE, 7);
    let file = write_file(dir.path(), "disk.img", &data);
    mount_listing(&server, json!([])).await;
    Mock::given(method("PUT"))
        .and(path(format!("{ACCOUNT_PATH}/uploads/{}", segment_name(2))))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_segment_puts(&server, &data, &[0, 1, 3, 4]).await;
    let segment_2 = &data[2 * SEGMENT..3 * SEGMENT];
    Mock::given(method("PUT"))
        .and(path(format!("{ACCOUNT_PATH}/uploads/{}", segment_name(2))))
        .and(body_bytes(segment_2.to_vec()))
        .respond_with(ResponseTemplate::new(201).insert_header("etag", md5_hex(segment_2)))
        .expect(1)
        .mount(&server)
        .await;
    mount_manifest_put(&server, &data).await;
    mount_catch_all(&server).await;

    let progress = Arc::new(Mutex::new(Vec::<u64>::new()));
    let recorder = Arc::clone(&progress);
    let options = UploadOptions::default()
        .segment_size(SEGMENT as u64)
        .retry_delay(Duration::from_millis(10))
        .on_progress(move |p| recorder.lock().expect("lock").push(p.bytes_done));
    let uploaded = client(&server)
        .upload_file("uploads", "disk.img", &file, &options)
        .await
        .expect("upload after one retry");
    assert_eq!(uploaded.segments, 5);
    let progress = progress.lock().expect("lock").clone();
    assert_eq!(progress.last().copied(), Some(LARGE as u64));
    assert!(
        progress.iter().all(|&done| done <= LARGE as u64),
        "progress overshoots the total"
    );
}

#[tokio::test]
async fn too_many_segments_rejected() {
    let server = MockServer::start().await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_file(dir.path(), "disk.img", &pseudo_random(1_001, 6));

    let options = UploadOptions::default().segment_size(1);
    let error = client(&server)
        .upload_file("uploads", "disk.img", &file, &options)
        .await
        .expect_err("1001 segments");
    match &error {
        OrbitError::TooManySegments {
            segments,
            max,
            min_segment_size,
            ..
        } => {
            assert_eq!(*segments, 1_001);
            assert_eq!(*max, 1_000);
            assert_eq!(*min_segment_size, 2);
        }
        other => panic!("expected TooManySegments, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("raise UploadOptions::segment_size")
    );
    let requests = server.received_requests().await.expect("recording enabled");
    assert!(requests.is_empty());
}

#[tokio::test]
async fn missing_local_file_is_io_error() {
    let server = MockServer::start().await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.img");

    let error = client(&server)
        .upload_file("uploads", "nope.img", &missing, &UploadOptions::default())
        .await
        .expect_err("missing file");
    match error {
        OrbitError::Io { path, source, .. } => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[tokio::test]
async fn upload_to_missing_container_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(format!("{ACCOUNT_PATH}/nowhere/a.img")))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_file(dir.path(), "a.img", b"abc");

    let error = client(&server)
        .upload_file("nowhere", "a.img", &file, &UploadOptions::default())
        .await
        .expect_err("no container");
    assert!(
        matches!(&error, OrbitError::NotFound { container, .. } if container == "nowhere"),
        "{error:?}"
    );
}

#[tokio::test]
async fn zero_segment_size_rejected() {
    let server = MockServer::start().await;
    mount_catch_all(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_file(dir.path(), "a.img", b"abc");

    let error = client(&server)
        .upload_file(
            "uploads",
            "a.img",
            &file,
            &UploadOptions::default().segment_size(0),
        )
        .await
        .expect_err("zero segment size");
    assert!(
        matches!(
            error,
            OrbitError::InvalidConfig {
                field: "UploadOptions::segment_size",
                ..
            }
        ),
        "{error:?}"
    );
}

/// Returns `stale` until the first refresh, then `fresh`.
struct RefreshingTokens {
    refreshed: AtomicBool,
}

#[async_trait::async_trait]
impl TokenProvider for RefreshingTokens {
    async fn token(&self) -> Result<SecretString, BoxError> {
        let fresh = self.refreshed.load(Ordering::SeqCst);
        Ok(SecretString::from(if fresh { "fresh" } else { "stale" }))
    }

    async fn refresh(&self) -> Result<SecretString, BoxError> {
        self.refreshed.store(true, Ordering::SeqCst);
        self.token().await
    }
}

#[tokio::test]
async fn upload_resends_body_after_401() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = pseudo_random(200_000, 8);
    let file = write_file(dir.path(), "disk.img", &data);
    let object_path = format!("{ACCOUNT_PATH}/uploads/disk.img");
    Mock::given(method("PUT"))
        .and(path(object_path.as_str()))
        .and(header("x-auth-token", "stale"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(object_path.as_str()))
        .and(header("x-auth-token", "fresh"))
        .and(body_bytes(data.clone()))
        .respond_with(ResponseTemplate::new(201).insert_header("etag", md5_hex(&data)))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = OrbitClient::builder()
        .storage_url(
            format!("{}{ACCOUNT_PATH}/", server.uri())
                .parse()
                .expect("url"),
        )
        .token_provider(Arc::new(RefreshingTokens {
            refreshed: AtomicBool::new(false),
        }))
        .build()
        .expect("client");
    let done = Arc::new(Mutex::new(0u64));
    let recorder = Arc::clone(&done);
    let options = UploadOptions::default()
        .on_progress(move |p| *recorder.lock().expect("lock") = p.bytes_done);
    let uploaded = client
        .upload_file("uploads", "disk.img", &file, &options)
        .await
        .expect("upload after token refresh");
    assert_eq!(uploaded.etag, md5_hex(&data));
    assert_eq!(*done.lock().expect("lock"), data.len() as u64);
}
