//! Library FTP credentials: one password reset per `Library`, and one more
//! when the FTP server rejects a password that a later reset replaced.

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

fn library(emulator: &Emulator) -> Library {
    let api = Client::builder()
        .base_url(emulator.api_url())
        .client_credentials(emulator.client_id(), emulator.client_secret().to_owned())
        .build()
        .expect("client builds");
    Library::builder(api)
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
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(path, bytes).expect("write test file");
}

#[tokio::test]
async fn stale_ftp_password_is_reset_once() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let first = library(&emulator);
    let other = library(&emulator);

    let path = scratch.path().join("one.img");
    write_file(&path, 10_000);
    first
        .upload_and_register(&path, &ImageSpec::new("one", Arch::X86_64))
        .await
        .expect("first upload");

    // A second client resets the password, which invalidates the first one's.
    let path = scratch.path().join("two.img");
    write_file(&path, 10_000);
    other
        .upload_and_register(&path, &ImageSpec::new("two", Arch::X86_64))
        .await
        .expect("upload by the other library");

    let path = scratch.path().join("three.img");
    write_file(&path, 10_000);
    let image = first
        .upload_and_register(&path, &ImageSpec::new("three", Arch::X86_64))
        .await
        .expect("upload after the password changed");
    assert_eq!(image.status, ImageStatus::Available);
    emulator.shutdown().await;
}

#[tokio::test]
async fn concurrent_uploads_share_credentials() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);

    let mut jobs = Vec::new();
    for index in 0..3 {
        let path = scratch.path().join(format!("disk-{index}.img"));
        write_file(&path, 200_000 + index);
        let library = library.clone();
        jobs.push(tokio::spawn(async move {
            let spec = ImageSpec::new(format!("disk {index}"), Arch::X86_64);
            library.upload_and_register(&path, &spec).await
        }));
    }
    let mut ids = Vec::new();
    for job in jobs {
        let image = job.await.expect("task runs").expect("upload and register");
        ids.push(image.id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    emulator.shutdown().await;
}

#[tokio::test]
async fn wait_false_returns_creating_image() {
    let emulator =
        Emulator::start_with(EmulatorConfig::default().registration_delay(Duration::from_secs(30)))
            .await
            .expect("emulator starts");
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("nowait.img");
    write_file(&path, 4096);

    let spec = ImageSpec::new("no wait", Arch::X86_64).wait(false);
    let image = library(&emulator)
        .upload_and_register(&path, &spec)
        .await
        .expect("register without waiting");
    assert_eq!(image.status, ImageStatus::Creating);
    emulator.shutdown().await;
}

#[tokio::test]
async fn wait_timeout_reports_registered_image() {
    let emulator =
        Emulator::start_with(EmulatorConfig::default().registration_delay(Duration::from_secs(30)))
            .await
            .expect("emulator starts");
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("slow.img");
    write_file(&path, 4096);

    let spec = ImageSpec::new("slow", Arch::X86_64).wait_timeout(Duration::from_millis(300));
    let error = library(&emulator)
        .upload_and_register(&path, &spec)
        .await
        .expect_err("the image stays creating past the timeout");
    assert!(matches!(error, LibraryError::Wait { .. }), "{error:?}");
    let image_id = error.registered_image().expect("the error names the image");
    assert!(
        emulator.images_dir().join(image_id.to_string()).exists(),
        "images/{image_id} exists"
    );
    emulator.shutdown().await;
}
