//! End-to-end tests of `create_server` against the emulator.

mod common;

use brightbox_api::{ImageId, ServerStatus};
use brightbox_library::{LibraryError, ServerSpec};
use common::{library, start_emulator, upload_image};

#[tokio::test]
async fn create_server_waits_until_active() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let image = upload_image(&library, scratch.path(), "server-base", 8192).await;

    let spec = ServerSpec::new()
        .name("web-1")
        .server_type("2gb.ssd")
        .zone("gb1-b")
        .user_data("#cloud-config\nhostname: web-1\n");
    let server = library
        .create_server(&image.id, &spec)
        .await
        .expect("create server");

    assert_eq!(server.status, ServerStatus::Active);
    assert_eq!(server.name.as_deref(), Some("web-1"));
    let image_ref = server.image.as_ref().expect("image reference");
    assert_eq!(image_ref.id, image.id);
    let server_type = server.server_type.as_ref().expect("server type");
    assert_eq!(server_type.handle.as_deref(), Some("2gb.ssd"));
    let zone = server.zone.as_ref().expect("zone");
    assert_eq!(zone.handle.as_deref(), Some("gb1-b"));
    assert_eq!(
        server.user_data.as_deref(),
        Some("I2Nsb3VkLWNvbmZpZwpob3N0bmFtZTogd2ViLTEK")
    );

    emulator.shutdown().await;
}

#[tokio::test]
async fn create_server_takes_ids() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let official: ImageId = "img-noble".parse().expect("image id");

    let server = library
        .create_server(
            &official,
            &ServerSpec::new().server_type("typ-zx45f").zone("zon-4cq3b"),
        )
        .await
        .expect("create server");

    assert_eq!(server.status, ServerStatus::Active);
    let server_type = server.server_type.as_ref().expect("server type");
    assert_eq!(server_type.id.as_str(), "typ-zx45f");
    assert_eq!(server.zone.as_ref().expect("zone").id.as_str(), "zon-4cq3b");

    emulator.shutdown().await;
}

#[tokio::test]
async fn unknown_server_type_handle_is_rejected() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let official: ImageId = "img-noble".parse().expect("image id");

    let error = library
        .create_server(&official, &ServerSpec::new().server_type("3gb.ssd"))
        .await
        .expect_err("unknown handle");

    match &error {
        LibraryError::InvalidServerSpec {
            field,
            value,
            source,
        } => {
            assert_eq!(*field, "server_type");
            assert_eq!(value, "3gb.ssd");
            assert!(source.to_string().contains("1gb.ssd"), "{source}");
        }
        other => panic!("expected InvalidServerSpec, got {other:?}"),
    }
    assert!(error.to_string().contains("3gb.ssd"));

    emulator.shutdown().await;
}

#[tokio::test]
async fn create_server_from_unknown_image_fails() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let missing: ImageId = "img-zzzzz".parse().expect("image id");

    let error = library
        .create_server(&missing, &ServerSpec::new())
        .await
        .expect_err("unknown image");

    assert!(
        matches!(&error, LibraryError::CreateServer { image_id, .. } if *image_id == missing),
        "{error:?}"
    );
    assert!(error.to_string().contains("img-zzzzz"));
    assert!(error.created_server().is_none());

    emulator.shutdown().await;
}
