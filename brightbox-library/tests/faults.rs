//! Workflow behaviour when the service fails part way, driven by the
//! emulator's fault injection.

use std::path::Path;
use std::time::Duration;

use brightbox_api::{Arch, Client, ImageStatus, WaitOptions};
use brightbox_emulator::{Emulator, EmulatorConfig};
use brightbox_library::{ImageSpec, Library, LibraryError};

async fn start_emulator() -> Emulator {
    Emulator::start_with(EmulatorConfig::default().registration_delay(Duration::from_millis(100)))
        .await
        .expect("emulator starts")
}

fn api_client(emulator: &Emulator) -> Client {
    Client::builder()
        .base_url(emulator.api_url())
        .client_credentials(emulator.client_id(), emulator.client_secret().to_owned())
        .build()
        .expect("client builds")
}

fn library(emulator: &Emulator) -> Library {
    Library::builder(api_client(emulator))
        .add_root_certificate_pem(emulator.ca_certificate_pem())
        .expect("the emulator CA is valid PEM")
        .wait_options(WaitOptions {
            interval: Duration::from_millis(50),
            max_interval: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
        })
        .build()
}

fn write_file(path: &Path, len: usize) {
    let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    std::fs::write(path, bytes).expect("write test file");
}

/// Ids of the images the emulator's account owns.
async fn own_images(emulator: &Emulator) -> Vec<String> {
    api_client(emulator)
        .images()
        .list()
        .await
        .expect("list images")
        .into_iter()
        .filter(|image| image.owner.as_deref() == Some(emulator.account_id()))
        .map(|image| image.id.to_string())
        .collect()
}

#[tokio::test]
async fn register_502_after_create_makes_one_image() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("once.img");
    write_file(&path, 8192);

    emulator.faults().fail_next_register_after_create(502);
    let image = library(&emulator)
        .upload_and_register(&path, &ImageSpec::new("once", Arch::X86_64))
        .await
        .expect("the workflow finds the image the failed request created");

    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(own_images(&emulator).await, vec![image.id.to_string()]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn register_503_without_create_is_sent_again() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("again.img");
    write_file(&path, 8192);

    emulator.faults().fail_next_register(503);
    let image = library(&emulator)
        .upload_and_register(&path, &ImageSpec::new("again", Arch::X86_64))
        .await
        .expect("the second request registers the image");

    assert_eq!(own_images(&emulator).await, vec![image.id.to_string()]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn register_422_is_not_sent_again() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("rejected.img");
    write_file(&path, 8192);

    emulator.faults().fail_next_register(422);
    let error = library(&emulator)
        .upload_and_register(&path, &ImageSpec::new("rejected", Arch::X86_64))
        .await
        .expect_err("a validation error is final");

    assert!(matches!(error, LibraryError::Register { .. }), "{error:?}");
    assert!(own_images(&emulator).await.is_empty());
    assert!(
        emulator.incoming_dir().join("rejected.img").exists(),
        "the uploaded file stays in incoming/, as the error says"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn failed_image_ends_wait_with_its_id() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("broken.img");
    write_file(&path, 8192);

    emulator.faults().registration_outcome_failed(true);
    let error = library(&emulator)
        .upload_and_register(&path, &ImageSpec::new("broken", Arch::X86_64))
        .await
        .expect_err("the image ends failed");

    assert!(matches!(error, LibraryError::Wait { .. }), "{error:?}");
    let image_id = error.registered_image().expect("the error names the image");
    assert_eq!(own_images(&emulator).await, vec![image_id.to_string()]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn retired_ftp_service_is_named() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("late.img");
    write_file(&path, 8192);

    emulator.faults().ftp_retired(true);
    let error = library(&emulator)
        .upload_and_register(&path, &ImageSpec::new("late", Arch::X86_64))
        .await
        .expect_err("the FTP service is retired");

    assert!(
        matches!(error, LibraryError::Credentials { .. }),
        "{error:?}"
    );
    let source = std::error::Error::source(&error).expect("API error source");
    let message = source.to_string();
    assert!(message.contains("retired"), "{message}");
    assert!(
        emulator
            .incoming_dir()
            .read_dir()
            .expect("incoming")
            .next()
            .is_none(),
        "nothing was uploaded"
    );
    emulator.shutdown().await;
}
