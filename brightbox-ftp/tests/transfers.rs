//! Resume, downloads, segments, listings and file management against a real in-process FTPS
//! server (libunftp, which lists `MLSD` and `REST STREAM` in `FEAT`).

mod common;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use brightbox_ftp::{
    DownloadOptions, EntryKind, FtpError, FtpsClient, ImageFormat, Progress, ProgressSink,
    UploadOptions,
};
use common::{TestServer, local_names, random_file, sha256_file, sha256_hex};
use tokio::io::{AsyncRead, ReadBuf};

const TWO_MIB: usize = 2 * 1024 * 1024 + 777;

/// Records every progress report.
fn recording_sink() -> (ProgressSink, Arc<Mutex<Vec<Progress>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let sink = ProgressSink::callback(move |progress| {
        record.lock().expect("progress lock").push(*progress);
    });
    (sink, seen)
}

fn assert_monotone_and_final(reports: &[Progress], total: u64) {
    assert!(!reports.is_empty(), "no progress report");
    for pair in reports.windows(2) {
        if let [before, after] = pair {
            assert!(
                after.bytes_done >= before.bytes_done,
                "progress went back: {reports:?}"
            );
        }
    }
    let last = reports.last().expect("a final report");
    assert_eq!(
        last.bytes_done, total,
        "final report equals the file length"
    );
}

/// Yields `data`, then fails with a connection reset once `fail_after` bytes were read.
struct FailingReader {
    data: Vec<u8>,
    position: usize,
    fail_after: usize,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.position >= self.fail_after {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "source went away",
            )));
        }
        let end = (self.position + buf.remaining())
            .min(self.fail_after)
            .min(self.data.len());
        let chunk = &self.data[self.position..end];
        buf.put_slice(chunk);
        self.position = end;
        Poll::Ready(Ok(()))
    }
}

fn pseudo_random(length: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = random_file(dir.path(), "bytes", length);
    std::fs::read(path).expect("read random bytes")
}

#[tokio::test]
async fn upload_reader_from_memory() {
    let server = TestServer::start().await;
    let data = pseudo_random(TWO_MIB);
    let (sink, reports) = recording_sink();

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let upload = client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            "incoming",
            "memory.img",
            &UploadOptions::default().progress(sink),
        )
        .await
        .expect("upload from a reader");

    assert_eq!(upload.remote_path, "incoming/memory.img");
    assert_eq!(upload.bytes, TWO_MIB as u64);
    assert_eq!(upload.resumed_from, 0);
    assert_eq!(upload.sha256, sha256_hex(&data));
    assert_eq!(
        sha256_file(&server.path("incoming/memory.img")),
        upload.sha256
    );
    let reports = reports.lock().expect("progress lock").clone();
    assert_monotone_and_final(&reports, TWO_MIB as u64);
    assert!(
        reports.iter().all(|report| report.total.is_none()),
        "a reader has no known total"
    );
}

#[tokio::test]
async fn upload_resumes_partial_temp_file() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", TWO_MIB);
    let prefix = 1_234_567_usize;
    let bytes = std::fs::read(&local).expect("read local");
    std::fs::write(server.path("incoming/.disk.img.part"), &bytes[..prefix])
        .expect("seed partial upload");
    let (sink, reports) = recording_sink();

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let upload = client
        .upload_file_with(
            &local,
            "incoming",
            "disk.img",
            &UploadOptions::default().resume(true).progress(sink),
        )
        .await
        .expect("resumed upload");

    assert_eq!(upload.resumed_from, prefix as u64);
    assert_eq!(upload.bytes, TWO_MIB as u64);
    assert_eq!(upload.sha256, local_sha, "hash covers the resumed prefix");
    assert_eq!(sha256_file(&server.path("incoming/disk.img")), local_sha);
    assert_eq!(local_names(&server.path("incoming")), vec!["disk.img"]);

    let reports = reports.lock().expect("progress lock").clone();
    assert_monotone_and_final(&reports, TWO_MIB as u64);
    let first = reports.first().expect("a first report");
    assert_eq!(
        first.bytes_done, prefix as u64,
        "the prefix was not sent again"
    );
    assert_eq!(first.total, Some(TWO_MIB as u64));
}

#[tokio::test]
async fn upload_resume_restarts_when_partial_is_longer() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", 300_000);
    std::fs::write(server.path("incoming/.disk.img.part"), vec![7_u8; 400_000])
        .expect("seed a longer partial file");

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let upload = client
        .upload_file_with(
            &local,
            "incoming",
            "disk.img",
            &UploadOptions::default().resume(true),
        )
        .await
        .expect("upload");

    assert_eq!(
        upload.resumed_from, 0,
        "a longer partial file is not appended to"
    );
    assert_eq!(upload.sha256, local_sha);
    assert_eq!(sha256_file(&server.path("incoming/disk.img")), local_sha);
}

#[tokio::test]
async fn failed_upload_removes_partial_by_default() {
    let server = TestServer::start().await;
    let data = pseudo_random(TWO_MIB);
    let reader = FailingReader {
        data,
        position: 0,
        fail_after: 1024 * 1024 + 10,
    };

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let error = client
        .upload_reader(reader, "incoming", "disk.img", &UploadOptions::default())
        .await
        .expect_err("the reader fails");

    assert!(matches!(error, FtpError::Stream { .. }), "{error:?}");
    assert!(error.to_string().contains("source went away"), "{error}");
    assert!(
        local_names(&server.path("incoming")).is_empty(),
        "partial file removed"
    );
    // The session stays usable.
    assert!(client.list("incoming").await.expect("list").is_empty());
}

#[tokio::test]
async fn kept_partial_upload_resumes() {
    let server = TestServer::start().await;
    let data = pseudo_random(TWO_MIB);
    let reader = FailingReader {
        data: data.clone(),
        position: 0,
        fail_after: 1024 * 1024 + 10,
    };

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    client
        .upload_reader(
            reader,
            "incoming",
            "disk.img",
            &UploadOptions::default().keep_partial_on_error(true),
        )
        .await
        .expect_err("the reader fails");

    assert_eq!(
        local_names(&server.path("incoming")),
        vec![".disk.img.part"],
        "partial file kept"
    );
    let kept = std::fs::metadata(server.path("incoming/.disk.img.part"))
        .expect("partial file")
        .len();
    assert!(kept <= TWO_MIB as u64);

    let upload = client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            "incoming",
            "disk.img",
            &UploadOptions::default().resume(true),
        )
        .await
        .expect("resumed upload");
    assert_eq!(upload.resumed_from, kept);
    assert_eq!(upload.sha256, sha256_hex(&data));
    assert_eq!(
        sha256_file(&server.path("incoming/disk.img")),
        sha256_hex(&data)
    );
    assert_eq!(local_names(&server.path("incoming")), vec!["disk.img"]);
}

#[tokio::test]
async fn resume_with_short_reader_is_mismatch() {
    let server = TestServer::start().await;
    std::fs::write(server.path("incoming/.disk.img.part"), vec![1_u8; 5000])
        .expect("seed partial upload");

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let error = client
        .upload_reader(
            std::io::Cursor::new(vec![1_u8; 100]),
            "incoming",
            "disk.img",
            &UploadOptions::default().resume(true),
        )
        .await
        .expect_err("the reader is shorter than the partial file");

    match &error {
        FtpError::ResumeMismatch {
            partial, available, ..
        } => {
            assert_eq!(*partial, 5000);
            assert_eq!(*available, 100);
        }
        other => panic!("expected ResumeMismatch, got {other:?}"),
    }
    assert!(local_names(&server.path("incoming")).is_empty());
}

/// Writes `header` followed by pseudo-random bytes to the server as `incoming/name`.
fn seed_remote(server: &TestServer, name: &str, header: &[u8], length: usize) -> Vec<u8> {
    let mut data = pseudo_random(length);
    data[..header.len()].copy_from_slice(header);
    std::fs::write(server.path(&format!("incoming/{name}")), &data).expect("seed remote file");
    data
}

#[tokio::test]
async fn download_to_writer_detects_qcow2() {
    let server = TestServer::start().await;
    let data = seed_remote(&server, "disk.qcow2", b"QFI\xfb\x00\x00\x00\x03", 1_500_000);
    let (sink, receiver) = ProgressSink::watch();

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let mut received = Vec::new();
    let download = client
        .download_to(
            "incoming/disk.qcow2",
            &mut received,
            &DownloadOptions::default().progress(sink),
        )
        .await
        .expect("download");

    assert_eq!(received, data);
    assert_eq!(download.bytes, data.len() as u64);
    assert_eq!(download.sha256, sha256_hex(&data));
    assert_eq!(download.format, ImageFormat::Qcow2);
    assert_eq!(download.local_path, None);
    let last = *receiver.borrow();
    assert_eq!(
        last.bytes_done,
        data.len() as u64,
        "watch sees the final value"
    );
    assert_eq!(last.total, Some(data.len() as u64));
}

#[tokio::test]
async fn download_file_formats_and_hash() {
    let server = TestServer::start().await;
    let cases: [(&str, &[u8], ImageFormat); 3] = [
        ("disk.gz", &[0x1f, 0x8b, 0x08, 0x00], ImageFormat::Gzip),
        ("disk.lz4", &[0x04, 0x22, 0x4d, 0x18], ImageFormat::Lz4Frame),
        ("disk.raw", &[0xeb, 0x63, 0x90, 0x00], ImageFormat::Raw),
    ];
    let local_dir = tempfile::tempdir().expect("local dir");
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");

    for (name, header, format) in cases {
        let data = seed_remote(&server, name, header, 400_000);
        let local = local_dir.path().join(name);
        let download = client
            .download_file(
                &format!("incoming/{name}"),
                &local,
                &DownloadOptions::default(),
            )
            .await
            .unwrap_or_else(|error| panic!("download {name}: {error}"));

        assert_eq!(download.format, format, "format of {name}");
        assert_eq!(download.sha256, sha256_hex(&data), "hash of {name}");
        assert_eq!(download.local_path.as_deref(), Some(local.as_path()));
        assert_eq!(std::fs::read(&local).expect("read download"), data);
    }
    let mut names = local_names(local_dir.path());
    names.sort();
    assert_eq!(
        names,
        vec!["disk.gz", "disk.lz4", "disk.raw"],
        "no .part left"
    );
}

#[tokio::test]
async fn download_resumes_local_partial() {
    let server = TestServer::start().await;
    let data = seed_remote(&server, "disk.img", &[0x04, 0x22, 0x4d, 0x18], TWO_MIB);
    let local_dir = tempfile::tempdir().expect("local dir");
    let local = local_dir.path().join("disk.img");
    let prefix = 777_777;
    std::fs::write(local_dir.path().join(".disk.img.part"), &data[..prefix])
        .expect("seed local partial");
    let (sink, reports) = recording_sink();

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let download = client
        .download_file(
            "incoming/disk.img",
            &local,
            &DownloadOptions::default().resume(true).progress(sink),
        )
        .await
        .expect("resumed download");

    assert_eq!(download.resumed_from, prefix as u64);
    assert_eq!(download.bytes, data.len() as u64);
    assert_eq!(
        download.sha256,
        sha256_hex(&data),
        "hash covers the kept prefix"
    );
    assert_eq!(
        download.format,
        ImageFormat::Lz4Frame,
        "format from the kept prefix"
    );
    assert_eq!(std::fs::read(&local).expect("read download"), data);
    let reports = reports.lock().expect("progress lock").clone();
    assert_monotone_and_final(&reports, data.len() as u64);
    assert!(
        reports
            .iter()
            .all(|report| report.bytes_done >= prefix as u64),
        "the prefix was not fetched again: {reports:?}"
    );
}

#[tokio::test]
async fn segmented_download_four_ways() {
    let server = TestServer::start().await;
    let length = 16 * 1024 * 1024 + 5;
    let mut data = seed_remote(&server, "big.img", b"QFI\xfb", length);
    // A run of zeros that the writer skips, leaving a hole.
    data[5 * 1024 * 1024..7 * 1024 * 1024].fill(0);
    std::fs::write(server.path("incoming/big.img"), &data).expect("rewrite with zeros");
    let local_dir = tempfile::tempdir().expect("local dir");
    let local = local_dir.path().join("big.img");
    let (sink, reports) = recording_sink();

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let download = client
        .download_file(
            "incoming/big.img",
            &local,
            &DownloadOptions::default().segments(4).progress(sink),
        )
        .await
        .expect("segmented download");

    assert_eq!(download.bytes, length as u64);
    assert_eq!(download.sha256, sha256_hex(&data));
    assert_eq!(download.format, ImageFormat::Qcow2);
    assert_eq!(sha256_file(&local), sha256_hex(&data));
    {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(&local).expect("downloaded file");
        let allocated = metadata.blocks() * 512;
        assert!(
            // Allow for file system metadata and block rounding.
            allocated <= (length - 1024 * 1024) as u64,
            "the 2 MiB zero run is a hole: {allocated} bytes allocated for {length}"
        );
    }
    let reports = reports.lock().expect("progress lock").clone();
    assert_monotone_and_final(&reports, length as u64);

    // The session still works after the segments ran on their own connections.
    assert_eq!(
        client.size("incoming/big.img").await.expect("SIZE"),
        length as u64
    );
}

#[tokio::test]
async fn download_without_sha256_keeps_content() {
    let server = TestServer::start().await;
    let length = 4 * 1024 * 1024 + 17;
    let data = seed_remote(&server, "nohash.img", b"QFI\xfb", length);
    let local_dir = tempfile::tempdir().expect("local dir");
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");

    for segments in [1, 3] {
        let local = local_dir.path().join(format!("nohash-{segments}.img"));
        let download = client
            .download_file(
                "incoming/nohash.img",
                &local,
                &DownloadOptions::default().segments(segments).sha256(false),
            )
            .await
            .expect("download without hashing");

        assert_eq!(download.bytes, length as u64, "{segments} segments");
        assert_eq!(download.sha256, "", "{segments} segments");
        assert_eq!(download.format, ImageFormat::Qcow2, "{segments} segments");
        assert_eq!(
            sha256_file(&local),
            sha256_hex(&data),
            "{segments} segments"
        );
    }
}

#[tokio::test]
async fn download_missing_file_is_not_found() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");

    let error = client
        .download_file(
            "incoming/absent.img",
            &local_dir.path().join("absent.img"),
            &DownloadOptions::default(),
        )
        .await
        .expect_err("missing remote file");

    match &error {
        FtpError::NotFound {
            remote_path, host, ..
        } => {
            assert_eq!(remote_path, "incoming/absent.img");
            assert_eq!(host, "127.0.0.1");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(!error.is_retryable());
    assert!(local_names(local_dir.path()).is_empty());
}

#[tokio::test]
async fn zero_segments_is_invalid_option() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");

    let error = client
        .download_file(
            "incoming/disk.img",
            &local_dir.path().join("disk.img"),
            &DownloadOptions::default().segments(0),
        )
        .await
        .expect_err("0 segments");

    assert!(
        matches!(error, FtpError::InvalidOption { ref value, .. } if value == "0"),
        "{error:?}"
    );
}

#[tokio::test]
async fn list_uses_mlsd() {
    let server = TestServer::start().await;
    std::fs::write(server.path("incoming/disk one.img"), vec![5_u8; 4321]).expect("seed file");
    std::fs::create_dir(server.path("incoming/2025 backups")).expect("seed dir");

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let mut entries = client.list("incoming").await.expect("list");
    entries.sort_by(|a, b| a.name.cmp(&b.name));

    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[0].name, "2025 backups");
    assert_eq!(entries[0].kind, EntryKind::Directory);
    assert_eq!(entries[1].name, "disk one.img");
    assert_eq!(entries[1].kind, EntryKind::File);
    assert_eq!(entries[1].size, Some(4321));
    assert!(
        entries[1].raw.starts_with("type=file"),
        "{}",
        entries[1].raw
    );
    assert!(entries[1].modified.is_some());
}

#[tokio::test]
async fn mkdir_rename_modified_delete() {
    let server = TestServer::start().await;
    std::fs::write(server.path("incoming/a.img"), b"abc").expect("seed file");

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    client.mkdir("incoming/sub").await.expect("MKD");
    assert!(server.path("incoming/sub").is_dir());

    client
        .rename("incoming/a.img", "incoming/sub/b.img")
        .await
        .expect("rename");
    assert!(server.path("incoming/sub/b.img").is_file());
    assert!(!server.path("incoming/a.img").exists());

    let modified = client.modified("incoming/sub/b.img").await.expect("MDTM");
    let age = chrono::Utc::now() - modified;
    assert!(
        age.num_seconds().abs() < 300,
        "modification time {modified} is not recent"
    );

    client.delete("incoming/sub/b.img").await.expect("DELE");
    assert!(!server.path("incoming/sub/b.img").exists());

    let error = client
        .size("incoming/sub/b.img")
        .await
        .expect_err("deleted file");
    assert!(matches!(error, FtpError::NotFound { .. }), "{error:?}");
    let error = client
        .rename("incoming/missing.img", "incoming/x.img")
        .await
        .expect_err("rename of a missing file");
    assert!(matches!(error, FtpError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn upload_resumes_custom_temporary_name() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", TWO_MIB);
    let prefix = 1_000_000_usize;
    let bytes = std::fs::read(&local).expect("read local");
    std::fs::write(
        server.path("incoming/.disk.img.0123abcd.part"),
        &bytes[..prefix],
    )
    .expect("seed partial upload");
    // The default temporary name contains other data and must be neither continued nor touched.
    std::fs::write(server.path("incoming/.disk.img.part"), b"other data").expect("seed other");

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    let options = UploadOptions::default()
        .temporary_name(".disk.img.0123abcd.part")
        .resume(true);
    let upload = client
        .upload_file_with(&local, "incoming", "disk.img", &options)
        .await
        .expect("resumed upload");

    assert_eq!(upload.resumed_from, prefix as u64);
    assert_eq!(upload.sha256, local_sha, "hash covers the resumed prefix");
    assert_eq!(sha256_file(&server.path("incoming/disk.img")), local_sha);
    assert_eq!(
        local_names(&server.path("incoming")),
        vec![".disk.img.part", "disk.img"]
    );
}

#[tokio::test]
async fn temporary_name_equal_to_final_is_rejected() {
    let server = TestServer::start().await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, _) = random_file(local_dir.path(), "disk.img", 1000);
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");

    let options = UploadOptions::default().temporary_name("disk.img");
    let error = client
        .upload_file_with(&local, "incoming", "disk.img", &options)
        .await
        .expect_err("a temporary name equal to the final name");

    match error {
        FtpError::InvalidRemoteName { name, reason } => {
            assert_eq!(name, "disk.img");
            assert!(reason.contains("equals the remote name"), "{reason}");
        }
        other => panic!("expected InvalidRemoteName, got {other:?}"),
    }
    assert!(local_names(&server.path("incoming")).is_empty());
}
