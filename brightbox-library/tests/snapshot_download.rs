//! End-to-end tests of `snapshot_server` and `download_image` against the
//! emulator: the API over HTTP and the image files over FTPS.

mod common;

use std::time::Duration;

use brightbox_api::{Arch, ImageStatus, ServerId, SourceType};
use brightbox_ftp::ImageFormat;
use brightbox_library::{
    DownloadImageOptions, ImageSpec, LibraryError, ServerSpec, SnapshotOptions,
};
use common::{
    dir_entries, get_image, library, sha256_of, start_emulator, upload_image, write_test_image,
};

#[tokio::test]
async fn snapshot_download_matches_stored_bytes() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let uploaded_path = scratch.path().join("base.img");
    let uploaded_sha256 = write_test_image(&uploaded_path, 2 * 1024 * 1024 + 5, 7);
    let base = library
        .upload_and_register(&uploaded_path, &ImageSpec::new("base", Arch::X86_64))
        .await
        .expect("upload and register");
    let server = library
        .create_server(&base.id, &ServerSpec::new().name("builder"))
        .await
        .expect("create server");

    let snapshot = library
        .snapshot_server(&server.id, &SnapshotOptions::new().name("base snapshot"))
        .await
        .expect("snapshot server");
    assert_eq!(snapshot.status, ImageStatus::Available);
    assert_eq!(snapshot.name.as_deref(), Some("base snapshot"));
    assert_eq!(snapshot.source.as_deref(), Some(server.id.as_str()));
    assert_eq!(snapshot.source_type, Some(SourceType::Snapshot));

    let local = scratch.path().join("downloads").join("snapshot.img");
    std::fs::create_dir(local.parent().expect("parent")).expect("create downloads");
    let downloaded = library
        .download_image(&snapshot.id, &local, &DownloadImageOptions::new())
        .await
        .expect("download image");

    let stored = emulator.images_dir().join(snapshot.id.as_str());
    assert_eq!(downloaded.sha256, sha256_of(&stored));
    assert_eq!(downloaded.sha256, uploaded_sha256);
    assert_eq!(sha256_of(&local), uploaded_sha256);
    assert_eq!(downloaded.bytes, 2 * 1024 * 1024 + 5);
    assert_eq!(downloaded.format, ImageFormat::Raw);
    assert_eq!(downloaded.path, local);
    assert_eq!(downloaded.resumed_from, 0);
    let local_files = dir_entries(local.parent().expect("parent"));
    assert_eq!(local_files, vec!["snapshot.img".to_owned()]);

    emulator.shutdown().await;
}

#[tokio::test]
async fn snapshot_falls_back_to_legacy_route_on_405() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let base = upload_image(&library, scratch.path(), "legacy-base", 4096).await;
    let server = library
        .create_server(&base.id, &ServerSpec::new())
        .await
        .expect("create server");

    emulator.faults().fail_next_requests("/1.0/images", 405, 1);
    let snapshot = library
        .snapshot_server(&server.id, &SnapshotOptions::new().description("legacy"))
        .await
        .expect("snapshot through the legacy route");

    assert_eq!(snapshot.status, ImageStatus::Available);
    assert_eq!(snapshot.source.as_deref(), Some(server.id.as_str()));
    assert_eq!(snapshot.description.as_deref(), Some("legacy"));
    let stored = emulator.images_dir().join(snapshot.id.as_str());
    assert_eq!(
        sha256_of(&stored),
        sha256_of(&emulator.images_dir().join(base.id.as_str()))
    );

    emulator.shutdown().await;
}

#[tokio::test]
async fn snapshot_after_500_does_not_fall_back() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let base = upload_image(&library, scratch.path(), "no-fallback", 4096).await;
    let server = library
        .create_server(&base.id, &ServerSpec::new())
        .await
        .expect("create server");
    let images_before = dir_entries(&emulator.images_dir());

    emulator.faults().fail_next_requests("/1.0/images", 500, 1);
    let error = library
        .snapshot_server(&server.id, &SnapshotOptions::new())
        .await
        .expect_err("a 500 fails the snapshot");

    match &error {
        LibraryError::Snapshot { server_id, source } => {
            assert_eq!(server_id, &server.id);
            assert_eq!(source.status(), Some(500));
        }
        other => panic!("expected LibraryError::Snapshot, got {other:?}"),
    }
    assert!(error.to_string().contains(server.id.as_str()));
    assert_eq!(dir_entries(&emulator.images_dir()), images_before);

    emulator.shutdown().await;
}

#[tokio::test]
async fn snapshot_of_unknown_server_names_it() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let missing: ServerId = "srv-zzzzz".parse().expect("server id");

    let error = library
        .snapshot_server(&missing, &SnapshotOptions::new())
        .await
        .expect_err("unknown server");

    assert!(matches!(&error, LibraryError::Snapshot { server_id, .. } if *server_id == missing));
    assert!(error.to_string().contains("srv-zzzzz"), "{error}");

    emulator.shutdown().await;
}

#[tokio::test]
async fn download_continues_partial_file() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let image = upload_image(&library, scratch.path(), "resumable", 300_000).await;
    let stored = std::fs::read(emulator.images_dir().join(image.id.as_str())).expect("stored");

    let local = scratch.path().join("copy.img");
    std::fs::write(scratch.path().join(".copy.img.part"), &stored[..100_000]).expect("part");
    let downloaded = library
        .download_image(&image.id, &local, &DownloadImageOptions::new())
        .await
        .expect("download");

    assert_eq!(downloaded.resumed_from, 100_000);
    assert_eq!(downloaded.bytes, 300_000);
    assert_eq!(std::fs::read(&local).expect("local"), stored);
    assert!(!scratch.path().join(".copy.img.part").exists());

    emulator.shutdown().await;
}

#[tokio::test]
async fn download_after_password_reset_elsewhere() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let image = upload_image(&library, scratch.path(), "reset", 10_000).await;

    // Another client resets the password, so the library's one is rejected.
    let _ = emulator.reset_ftp_password();
    let local = scratch.path().join("after-reset.img");
    let downloaded = library
        .download_image(&image.id, &local, &DownloadImageOptions::new())
        .await
        .expect("download with a renewed password");

    assert_eq!(
        downloaded.sha256,
        sha256_of(&emulator.images_dir().join(image.id.as_str()))
    );

    emulator.shutdown().await;
}

#[tokio::test]
async fn download_rejects_bad_destinations() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let image = upload_image(&library, scratch.path(), "dest", 1000).await;

    let existing = scratch.path().join("exists.img");
    std::fs::write(&existing, b"keep me").expect("write");
    let missing_folder = scratch.path().join("no-such-folder").join("x.img");
    for path in [
        existing.clone(),
        missing_folder,
        scratch.path().to_path_buf(),
    ] {
        let error = library
            .download_image(&image.id, &path, &DownloadImageOptions::new())
            .await
            .expect_err("bad destination");
        assert!(
            matches!(&error, LibraryError::InvalidDownloadPath { path: given, .. } if *given == path),
            "{path:?}: {error:?}"
        );
    }
    assert_eq!(std::fs::read(&existing).expect("read"), b"keep me");

    let replaced = library
        .download_image(
            &image.id,
            &existing,
            &DownloadImageOptions::new().overwrite(true),
        )
        .await
        .expect("overwrite");
    assert_eq!(replaced.bytes, 1000);

    emulator.shutdown().await;
}

#[tokio::test]
async fn download_of_creating_image_is_not_ready() {
    let emulator = start_emulator().await;
    emulator
        .faults()
        .registration_delay(Duration::from_secs(30));
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let path = scratch.path().join("slow.img");
    write_test_image(&path, 2048, 3);
    let image = library
        .upload_and_register(&path, &ImageSpec::new("slow", Arch::X86_64).wait(false))
        .await
        .expect("register without waiting");

    let error = library
        .download_image(
            &image.id,
            scratch.path().join("slow-copy.img"),
            &DownloadImageOptions::new(),
        )
        .await
        .expect_err("creating image");

    match &error {
        LibraryError::ImageNotReady {
            image_id, status, ..
        } => {
            assert_eq!(image_id, &image.id);
            assert_eq!(status, &ImageStatus::Creating);
        }
        other => panic!("expected ImageNotReady, got {other:?}"),
    }
    assert_eq!(
        get_image(&emulator, &image.id).await.status,
        ImageStatus::Creating
    );

    emulator.shutdown().await;
}
