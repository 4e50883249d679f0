//! End-to-end tests of `latest_image`, `publish` and `prune` against the
//! emulator.
//!
//! The emulator stores `created_at` with whole seconds, so tests that depend
//! on the order of images pause a little over a second between them.

mod common;

use std::time::Duration;

use brightbox_api::{Arch, ImageStatus, NamePattern};
use brightbox_library::{ImageSpec, KeepReason, LibraryError, PruneOptions, PublishOptions};
use common::{api_client, get_image, library, start_emulator, upload_image, write_test_image};

const SECOND_TICK: Duration = Duration::from_millis(1100);

#[tokio::test]
async fn latest_image_picks_newest_own_image() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let pattern = NamePattern::Glob("web-*".to_owned());

    assert_eq!(library.latest_image(&pattern).await.expect("latest"), None);
    let older = upload_image(&library, scratch.path(), "web-2", 1024).await;
    tokio::time::sleep(SECOND_TICK).await;
    let newer = upload_image(&library, scratch.path(), "web-1", 1024).await;
    let _other = upload_image(&library, scratch.path(), "db-1", 1024).await;

    let latest = library.latest_image(&pattern).await.expect("latest");
    assert_eq!(latest.map(|image| image.id), Some(newer.id.clone()));

    // Official images never count, whatever their name.
    let official = library
        .latest_image(&NamePattern::Contains("Ubuntu".to_owned()))
        .await
        .expect("latest");
    assert_eq!(official, None);
    assert_ne!(older.id, newer.id);

    emulator.shutdown().await;
}

#[tokio::test]
async fn publish_deprecates_older_and_locks_new() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let spec = ImageSpec::new("app", Arch::X86_64);

    let first_path = scratch.path().join("app-1.img");
    write_test_image(&first_path, 4096, 1);
    let first = library
        .publish(&first_path, &spec, &PublishOptions::new())
        .await
        .expect("first publish");
    assert!(first.locked);
    assert!(first.image.locked);
    assert!(first.deprecated.is_empty());

    let unrelated = upload_image(&library, scratch.path(), "app-tools", 1024).await;
    tokio::time::sleep(SECOND_TICK).await;
    let second_path = scratch.path().join("app-2.img");
    write_test_image(&second_path, 4096, 2);
    let second = library
        .publish(&second_path, &spec, &PublishOptions::new())
        .await
        .expect("second publish");

    assert_eq!(second.deprecated, vec![first.image.id.clone()]);
    assert!(second.image.locked);
    assert_eq!(second.image.status, ImageStatus::Available);
    let first_now = get_image(&emulator, &first.image.id).await;
    assert_eq!(first_now.status, ImageStatus::Deprecated);
    assert!(first_now.locked, "deprecating keeps the lock");
    assert_eq!(
        get_image(&emulator, &unrelated.id).await.status,
        ImageStatus::Available
    );

    let latest = library
        .latest_image(&NamePattern::Glob("app".to_owned()))
        .await
        .expect("latest");
    assert_eq!(latest.map(|image| image.id), Some(second.image.id));

    emulator.shutdown().await;
}

#[tokio::test]
async fn publish_without_options_changes_nothing_else() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let spec = ImageSpec::new("plain", Arch::X86_64);
    let older = upload_image(&library, scratch.path(), "plain", 1024).await;

    let path = scratch.path().join("plain-2.img");
    write_test_image(&path, 2048, 5);
    let options = PublishOptions::new().deprecate_older(false).lock(false);
    let published = library
        .publish(&path, &spec, &options)
        .await
        .expect("publish");

    assert!(!published.locked);
    assert!(published.deprecated.is_empty());
    assert_eq!(
        get_image(&emulator, &older.id).await.status,
        ImageStatus::Available
    );

    emulator.shutdown().await;
}

#[tokio::test]
async fn prune_keeps_latest_and_locked() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let oldest = upload_image(&library, scratch.path(), "nightly-a", 1024).await;
    let locked = upload_image(&library, scratch.path(), "nightly-b", 1024).await;
    api_client(&emulator)
        .images()
        .lock(&locked.id)
        .await
        .expect("lock");
    tokio::time::sleep(SECOND_TICK).await;
    let newest = upload_image(&library, scratch.path(), "nightly-c", 1024).await;
    let other = upload_image(&library, scratch.path(), "release-1", 1024).await;

    let options =
        PruneOptions::new(1, Duration::ZERO).name(NamePattern::Glob("nightly-*".to_owned()));
    let dry = library
        .prune(&options.clone().dry_run(true))
        .await
        .expect("dry run");
    assert_eq!(dry.removed.len(), 1);
    assert_eq!(
        get_image(&emulator, &oldest.id).await.status,
        ImageStatus::Available
    );

    let report = library.prune(&options).await.expect("prune");

    let removed: Vec<_> = report
        .removed
        .iter()
        .map(|image| image.id.clone())
        .collect();
    assert_eq!(removed, vec![oldest.id.clone()]);
    let kept: Vec<_> = report
        .kept
        .iter()
        .map(|kept| (kept.image.id.clone(), kept.reason))
        .collect();
    assert_eq!(
        kept,
        vec![
            (newest.id.clone(), KeepReason::Latest),
            (locked.id.clone(), KeepReason::Locked),
        ]
    );
    let remaining: Vec<_> = api_client(&emulator)
        .images()
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|image| image.id)
        .collect();
    assert!(!remaining.contains(&oldest.id));
    assert!(remaining.contains(&locked.id));
    assert!(remaining.contains(&other.id));
    assert!(!emulator.images_dir().join(oldest.id.as_str()).exists());

    emulator.shutdown().await;
}

#[tokio::test]
async fn prune_keeps_recent_images() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let first = upload_image(&library, scratch.path(), "fresh-1", 1024).await;
    let second = upload_image(&library, scratch.path(), "fresh-2", 1024).await;

    let report = library
        .prune(&PruneOptions::new(0, Duration::from_secs(3600)))
        .await
        .expect("prune");

    assert!(report.removed.is_empty());
    assert_eq!(report.kept.len(), 2);
    assert!(
        report
            .kept
            .iter()
            .all(|kept| kept.reason == KeepReason::TooRecent)
    );
    for id in [&first.id, &second.id] {
        assert_eq!(
            get_image(&emulator, id).await.status,
            ImageStatus::Available
        );
    }

    emulator.shutdown().await;
}

#[tokio::test]
async fn prune_list_failure_is_typed() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    // Resolve the account first, so the fault hits the image listing.
    let _ = library
        .latest_image(&NamePattern::Contains(String::new()))
        .await
        .expect("latest");

    emulator.faults().fail_next_requests("/1.0/images", 500, 1);
    let error = library
        .prune(&PruneOptions::new(0, Duration::ZERO))
        .await
        .expect_err("listing fails");

    assert!(
        matches!(error, LibraryError::ListImages(ref source) if source.status() == Some(500)),
        "{error:?}"
    );

    emulator.shutdown().await;
}

#[tokio::test]
async fn publish_failure_names_new_image() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let older = upload_image(&library, scratch.path(), "svc", 1024).await;

    emulator
        .faults()
        .fail_next_requests(&format!("/1.0/images/{}", older.id), 500, 1);
    let path = scratch.path().join("svc-2.img");
    write_test_image(&path, 2048, 9);
    let error = library
        .publish(
            &path,
            &ImageSpec::new("svc", Arch::X86_64),
            &PublishOptions::new(),
        )
        .await
        .expect_err("deprecating fails");

    let LibraryError::Publish { image_id, source } = &error else {
        panic!("expected LibraryError::Publish, got {error:?}");
    };
    assert_ne!(image_id, &older.id);
    assert_eq!(error.registered_image(), Some(image_id));
    assert_eq!(
        get_image(&emulator, image_id).await.status,
        ImageStatus::Available
    );
    match source.as_ref() {
        LibraryError::ImageUpdate {
            image_id: failed,
            action,
            ..
        } => {
            assert_eq!(failed, &older.id);
            assert_eq!(*action, "deprecating");
        }
        other => panic!("expected ImageUpdate, got {other:?}"),
    }

    emulator.shutdown().await;
}

#[tokio::test]
async fn prune_keeps_image_rejected_with_409() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let contested = upload_image(&library, scratch.path(), "batch-a", 1024).await;
    let plain = upload_image(&library, scratch.path(), "batch-b", 1024).await;

    emulator
        .faults()
        .fail_next_requests(&format!("/1.0/images/{}", contested.id), 409, 1);
    let report = library
        .prune(&PruneOptions::new(0, Duration::ZERO).name(NamePattern::Glob("batch-*".to_owned())))
        .await
        .expect("prune");

    let removed: Vec<_> = report
        .removed
        .iter()
        .map(|image| image.id.clone())
        .collect();
    assert_eq!(removed, vec![plain.id.clone()]);
    assert_eq!(report.kept.len(), 1);
    assert_eq!(report.kept[0].image.id, contested.id);
    assert_eq!(report.kept[0].reason, KeepReason::Locked);
    assert_eq!(
        get_image(&emulator, &contested.id).await.status,
        ImageStatus::Available
    );

    emulator.shutdown().await;
}
