//! Dropping a workflow future half way, and removing what it leaves behind
//! with `clean_incoming`.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use brightbox_api::Arch;
use brightbox_library::{DownloadImageOptions, ImageSpec, JobEvent};
use common::{api_client, dir_entries, library, sha256_of, start_emulator, write_test_image};
use tokio::sync::oneshot;

/// Large enough that a debug build is still sending when the test aborts.
const LARGE: usize = 32 * 1024 * 1024;

async fn own_image_count(emulator: &brightbox_emulator::Emulator) -> usize {
    api_client(emulator)
        .images()
        .list()
        .await
        .expect("list images")
        .into_iter()
        .filter(|image| image.owner.as_deref() == Some(emulator.account_id()))
        .count()
}

#[tokio::test]
async fn aborted_upload_leaves_no_final_file() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let path = scratch.path().join("large.img");
    write_test_image(&path, LARGE, 11);

    let (first_bytes, sending) = oneshot::channel::<u64>();
    let first_bytes = Mutex::new(Some(first_bytes));
    let task = tokio::spawn({
        let library = library.clone();
        let path = path.clone();
        async move {
            let on_event = |event: &JobEvent| {
                if let JobEvent::Uploading { bytes_sent, .. } = event
                    && *bytes_sent > 0
                    && let Some(sender) = first_bytes.lock().expect("lock").take()
                {
                    let _ = sender.send(*bytes_sent);
                }
            };
            library
                .upload_and_register_with_events(
                    &path,
                    &ImageSpec::new("aborted", Arch::X86_64),
                    &on_event,
                )
                .await
        }
    });

    let sent = sending.await.expect("the upload reports progress");
    assert!(sent < LARGE as u64, "the upload finished before the abort");
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    // Give the FTPS server time to notice the closed data connection.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let incoming = dir_entries(&emulator.incoming_dir());
    assert!(!incoming.contains(&"large.img".to_owned()), "{incoming:?}");
    let partial = brightbox_library::upload_temporary_name(&path, "large.img")
        .await
        .expect("temporary name");
    assert_eq!(incoming, vec![partial.clone()]);
    assert_eq!(own_image_count(&emulator).await, 0);

    let removed = library.clean_incoming().await.expect("clean incoming");
    assert_eq!(removed, vec![partial]);
    assert!(dir_entries(&emulator.incoming_dir()).is_empty());

    emulator.shutdown().await;
}

#[tokio::test]
async fn timed_out_upload_leaves_no_final_file() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let path = scratch.path().join("timeout.img");
    write_test_image(&path, LARGE, 12);

    let spec = ImageSpec::new("timed out", Arch::X86_64);
    let outcome = tokio::time::timeout(
        Duration::from_millis(400),
        library.upload_and_register(&path, &spec),
    )
    .await;
    assert!(outcome.is_err(), "the upload finished within the timeout");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let incoming = dir_entries(&emulator.incoming_dir());
    assert!(
        !incoming.contains(&"timeout.img".to_owned()),
        "{incoming:?}"
    );
    assert_eq!(own_image_count(&emulator).await, 0);

    library.clean_incoming().await.expect("clean incoming");
    assert!(dir_entries(&emulator.incoming_dir()).is_empty());

    emulator.shutdown().await;
}

#[tokio::test]
async fn clean_incoming_keeps_other_files() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    // A finished upload waiting to be registered, and two leftovers.
    std::fs::write(emulator.incoming_dir().join("ready.img"), b"ready").expect("write");
    std::fs::write(emulator.incoming_dir().join(".old.img.part"), b"partial").expect("write");
    std::fs::write(
        emulator.incoming_dir().join(".other.qcow2.part"),
        b"partial",
    )
    .expect("write");

    let mut removed = library.clean_incoming().await.expect("clean incoming");
    removed.sort();

    assert_eq!(
        removed,
        vec![".old.img.part".to_owned(), ".other.qcow2.part".to_owned()]
    );
    assert_eq!(
        dir_entries(&emulator.incoming_dir()),
        vec!["ready.img".to_owned()]
    );
    let again = library
        .clean_incoming()
        .await
        .expect("clean incoming again");
    assert!(again.is_empty());

    emulator.shutdown().await;
}

#[tokio::test]
async fn aborted_download_resumes_later() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let source = scratch.path().join("source.img");
    let expected_sha256 = write_test_image(&source, LARGE, 13);
    let image = library
        .upload_and_register(&source, &ImageSpec::new("download", Arch::X86_64))
        .await
        .expect("upload and register");
    let local = scratch.path().join("copy.img");
    let partial = scratch.path().join(".copy.img.part");

    let (first_bytes, receiving) = oneshot::channel::<u64>();
    let first_bytes = Mutex::new(Some(first_bytes));
    let task = tokio::spawn({
        let library = library.clone();
        let image_id = image.id.clone();
        let local = local.clone();
        async move {
            let progress = |bytes: u64| {
                if bytes > 0
                    && let Some(sender) = first_bytes.lock().expect("lock").take()
                {
                    let _ = sender.send(bytes);
                }
            };
            library
                .download_image_with_progress(
                    &image_id,
                    &local,
                    &DownloadImageOptions::new(),
                    Some(&progress),
                )
                .await
        }
    });

    let received = receiving.await.expect("the download reports progress");
    assert!(
        received < LARGE as u64,
        "the download finished before the abort"
    );
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    // The file writer thread may still flush its last buffers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!local.exists(), "the destination exists after the abort");
    assert!(partial.exists(), "no partial file to resume");

    let downloaded = library
        .download_image(&image.id, &local, &DownloadImageOptions::new())
        .await
        .expect("resumed download");

    assert!(downloaded.resumed_from > 0);
    assert_eq!(downloaded.bytes, LARGE as u64);
    assert_eq!(downloaded.sha256, expected_sha256);
    assert_eq!(sha256_of(&local), expected_sha256);
    assert!(!partial.exists());

    emulator.shutdown().await;
}
