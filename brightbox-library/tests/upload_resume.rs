//! FTPS uploads that find a partial file in `incoming/` from an earlier run: the same source
//! continues its own, and any other source starts from byte 0 and removes the stale ones.
//!
//! Each test places the partial file in the emulator's storage folder, as a crashed process
//! leaves it, and then uploads through `FtpsTransport` against the emulator on 127.0.0.1.
//! `fault_matrix.rs` covers partial files left by real failures (U17, U18).

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use brightbox_emulator::Emulator;
use brightbox_library::{FtpsTransport, Transport, upload_temporary_name};
use support::{ftps_config, library_via, sha256_of, write_test_image};

const IMAGE_LEN: usize = 4 * 1024 * 1024;

/// Bytes of the source that the earlier, failed run stored: 60 % of the image.
const KEPT: usize = IMAGE_LEN * 6 / 10;

fn transport(emulator: &Emulator) -> FtpsTransport {
    FtpsTransport::new(ftps_config(emulator, emulator.ftp_addr().port()))
}

fn incoming_names(emulator: &Emulator) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(emulator.incoming_dir())
        .expect("read incoming/")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Writes the first `len` bytes of `source` to `incoming/<name>`.
fn place_partial(emulator: &Emulator, name: &str, source: &Path, len: usize) {
    let bytes = std::fs::read(source).expect("read source");
    std::fs::write(emulator.incoming_dir().join(name), &bytes[..len]).expect("write partial");
}

#[tokio::test]
async fn rerun_continues_own_partial() {
    let emulator = Emulator::start().await.expect("emulator starts");
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("disk.img");
    let source_sha256 = write_test_image(&source, IMAGE_LEN, 1);
    let temporary = upload_temporary_name(&source, "disk.img")
        .await
        .expect("temporary name");
    place_partial(&emulator, &temporary, &source, KEPT);

    let reported = AtomicU64::new(u64::MAX);
    let on_progress = |bytes: u64| {
        reported.fetch_min(bytes, Ordering::Relaxed);
    };
    let uploaded = transport(&emulator)
        .upload(&source, "disk.img", Some(&on_progress))
        .await
        .expect("upload");

    assert_eq!(uploaded.resumed_from, KEPT as u64);
    assert_eq!(uploaded.bytes, IMAGE_LEN as u64);
    assert_eq!(uploaded.source, "disk.img");
    assert_eq!(uploaded.remote_path, "incoming/disk.img");
    assert_eq!(
        uploaded.sha256.as_deref(),
        Some(source_sha256.as_str()),
        "the SHA-256 covers the kept prefix too"
    );
    assert_eq!(
        reported.load(Ordering::Relaxed),
        KEPT as u64,
        "progress starts at the kept prefix"
    );
    assert_eq!(
        sha256_of(&emulator.incoming_dir().join("disk.img")),
        source_sha256
    );
    assert_eq!(incoming_names(&emulator), vec!["disk.img".to_owned()]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn other_file_ignores_partial() {
    let emulator = Emulator::start().await.expect("emulator starts");
    let scratch = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(scratch.path().join("a")).expect("mkdir a");
    std::fs::create_dir(scratch.path().join("b")).expect("mkdir b");
    // Two files with the same name and length but different bytes.
    let first = scratch.path().join("a/disk.img");
    let second = scratch.path().join("b/disk.img");
    write_test_image(&first, IMAGE_LEN, 1);
    let second_sha256 = write_test_image(&second, IMAGE_LEN, 2);

    let first_temporary = upload_temporary_name(&first, "disk.img")
        .await
        .expect("first temporary name");
    let second_temporary = upload_temporary_name(&second, "disk.img")
        .await
        .expect("second temporary name");
    assert_ne!(first_temporary, second_temporary);
    place_partial(&emulator, &first_temporary, &first, KEPT);
    // The unfingerprinted temporary name of earlier versions, of unknown origin.
    place_partial(&emulator, ".disk.img.part", &first, KEPT);
    // A partial upload of another name stays.
    place_partial(&emulator, ".keep.img.0123456789abcdef.part", &first, 1024);

    let uploaded = transport(&emulator)
        .upload(&second, "disk.img", None)
        .await
        .expect("upload");

    assert_eq!(
        uploaded.resumed_from, 0,
        "the other file's partial was continued"
    );
    assert_eq!(uploaded.sha256.as_deref(), Some(second_sha256.as_str()));
    assert_eq!(
        sha256_of(&emulator.incoming_dir().join("disk.img")),
        second_sha256
    );
    assert_eq!(
        incoming_names(&emulator),
        vec![
            ".keep.img.0123456789abcdef.part".to_owned(),
            "disk.img".to_owned()
        ],
        "the stale partial files of disk.img are deleted"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn longer_partial_starts_over() {
    let emulator = Emulator::start().await.expect("emulator starts");
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("disk.img");
    let source_sha256 = write_test_image(&source, IMAGE_LEN, 3);
    let temporary = upload_temporary_name(&source, "disk.img")
        .await
        .expect("temporary name");
    std::fs::write(
        emulator.incoming_dir().join(&temporary),
        vec![0xee_u8; IMAGE_LEN + 4096],
    )
    .expect("write partial");

    let uploaded = transport(&emulator)
        .upload(&source, "disk.img", None)
        .await
        .expect("upload");

    assert_eq!(uploaded.resumed_from, 0);
    assert_eq!(uploaded.bytes, IMAGE_LEN as u64);
    assert_eq!(
        sha256_of(&emulator.incoming_dir().join("disk.img")),
        source_sha256
    );
    assert_eq!(incoming_names(&emulator), vec!["disk.img".to_owned()]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn touched_file_starts_over() {
    let emulator = Emulator::start().await.expect("emulator starts");
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("disk.img");
    let source_sha256 = write_test_image(&source, IMAGE_LEN, 4);
    let before = upload_temporary_name(&source, "disk.img")
        .await
        .expect("temporary name");
    place_partial(&emulator, &before, &source, KEPT);

    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&source)
        .and_then(|file| file.set_modified(later))
        .expect("set modification time");

    let uploaded = transport(&emulator)
        .upload(&source, "disk.img", None)
        .await
        .expect("upload");

    assert_eq!(uploaded.resumed_from, 0);
    assert_eq!(uploaded.sha256.as_deref(), Some(source_sha256.as_str()));
    assert_eq!(incoming_names(&emulator), vec!["disk.img".to_owned()]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn clean_incoming_removes_fingerprinted_partial() {
    let emulator = Emulator::start().await.expect("emulator starts");
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("disk.img");
    write_test_image(&source, IMAGE_LEN, 5);
    let temporary = upload_temporary_name(&source, "disk.img")
        .await
        .expect("temporary name");
    place_partial(&emulator, &temporary, &source, KEPT);

    let library = library_via(&emulator, emulator.ftp_addr().port(), None);
    let removed = library.clean_incoming().await.expect("clean incoming");

    assert_eq!(removed, vec![temporary]);
    assert!(incoming_names(&emulator).is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn invalid_name_touches_nothing() {
    let emulator = Emulator::start().await.expect("emulator starts");
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("disk.img");
    write_test_image(&source, 1024, 6);
    std::fs::write(emulator.incoming_dir().join(".keep.part"), b"partial").expect("write");

    let error = transport(&emulator)
        .upload(&source, "../keep", None)
        .await
        .expect_err("a name with `/` is invalid");

    match error {
        brightbox_library::TransportError::Ftp(error) => assert!(
            matches!(*error, brightbox_ftp::FtpError::InvalidRemoteName { ref name, .. } if name == "../keep"),
            "{error:?}"
        ),
        other => panic!("expected an FTP error, got {other:?}"),
    }
    assert_eq!(incoming_names(&emulator), vec![".keep.part".to_owned()]);
    emulator.shutdown().await;
}
