//! End-to-end tests of `Library::upload_and_register` against the emulator:
//! a real API over HTTP and a real FTPS server on 127.0.0.1.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use brightbox_api::{Arch, Client, ImageStatus, WaitOptions};
use brightbox_emulator::{Emulator, EmulatorConfig};
use brightbox_library::{ImageSpec, Library, LibraryError};
use sha2::{Digest, Sha256};

async fn start_emulator() -> Emulator {
    Emulator::start_with(EmulatorConfig::default().registration_delay(Duration::from_millis(300)))
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

fn fast_wait() -> WaitOptions {
    WaitOptions {
        interval: Duration::from_millis(100),
        max_interval: Duration::from_millis(400),
        timeout: Duration::from_secs(30),
    }
}

fn library(emulator: &Emulator) -> Library {
    Library::builder(api_client(emulator))
        .add_root_certificate_pem(emulator.ca_certificate_pem())
        .expect("the emulator CA is valid PEM")
        .wait_options(fast_wait())
        .build()
}

/// Writes `len` bytes of a fixed pseudo-random pattern and returns their SHA-256.
fn write_test_image(path: &Path, len: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    std::fs::write(path, &bytes).expect("write test image");
    hex::encode(Sha256::digest(&bytes))
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(
        std::fs::read(path).expect("read stored image"),
    ))
}

fn dir_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[tokio::test]
async fn upload_and_register_makes_available_image() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("disk-1.img");
    let expected_sha256 = write_test_image(&source, 3 * 1024 * 1024 + 17);

    let sent = Arc::new(AtomicU64::new(0));
    let sent_by_callback = Arc::clone(&sent);
    let progress = move |bytes: u64| sent_by_callback.store(bytes, Ordering::Relaxed);
    let spec = ImageSpec::new("Test disk", Arch::X86_64).description("end-to-end test");
    let image = library(&emulator)
        .upload_and_register_with_progress(&source, &spec, Some(&progress))
        .await
        .expect("upload and register");

    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(image.name.as_deref(), Some("Test disk"));
    assert_eq!(image.description.as_deref(), Some("end-to-end test"));
    assert_eq!(image.arch, Arch::X86_64);
    assert_eq!(image.source.as_deref(), Some("disk-1.img"));
    assert_eq!(sent.load(Ordering::Relaxed), 3 * 1024 * 1024 + 17);

    let stored = emulator
        .storage_dir()
        .join("images")
        .join(image.id.to_string());
    assert_eq!(sha256_of(&stored), expected_sha256);
    let incoming = dir_entries(&emulator.storage_dir().join("incoming"));
    assert!(incoming.is_empty(), "incoming/ still holds {incoming:?}");

    emulator.shutdown().await;
}

#[tokio::test]
async fn upload_and_register_twice_reuses_credentials() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);

    let mut ids = Vec::new();
    for name in ["first.img", "second.img"] {
        let path = scratch.path().join(name);
        let sha256 = write_test_image(&path, 64 * 1024);
        let image = library
            .upload_and_register(&path, &ImageSpec::new(name, Arch::I686))
            .await
            .expect("upload and register");
        let stored = emulator
            .storage_dir()
            .join("images")
            .join(image.id.to_string());
        assert_eq!(sha256_of(&stored), sha256);
        ids.push(image.id);
    }
    assert_ne!(ids[0], ids[1]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn untrusted_ftps_certificate_registers_nothing() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("disk.img");
    write_test_image(&source, 4096);

    // No CA added: the emulator's self-made CA is not among the system roots.
    let library = Library::builder(api_client(&emulator))
        .wait_options(fast_wait())
        .build();
    let error = library
        .upload_and_register(&source, &ImageSpec::new("untrusted", Arch::X86_64))
        .await
        .expect_err("the certificate is not trusted");

    assert!(matches!(error, LibraryError::Upload { .. }), "{error:?}");
    let chain = error_chain(&error);
    assert!(chain.contains("not trusted"), "{chain}");
    assert!(dir_entries(&emulator.storage_dir().join("images")).is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn missing_or_empty_file_fails_before_upload() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let spec = ImageSpec::new("bad", Arch::X86_64);

    let missing = scratch.path().join("missing.img");
    let error = library
        .upload_and_register(&missing, &spec)
        .await
        .expect_err("missing");
    assert!(
        matches!(error, LibraryError::InvalidImageFile { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("missing.img"), "{error}");

    let empty = scratch.path().join("empty.img");
    std::fs::write(&empty, b"").expect("write empty file");
    let error = library
        .upload_and_register(&empty, &spec)
        .await
        .expect_err("empty");
    assert!(error.to_string().contains("empty"), "{error}");

    let error = library
        .upload_and_register(scratch.path(), &spec)
        .await
        .expect_err("dir");
    assert!(error.to_string().contains("not a regular file"), "{error}");

    let spaced = scratch.path().join("has space.img");
    write_test_image(&spaced, 512);
    let error = library
        .upload_and_register(&spaced, &spec)
        .await
        .expect_err("space");
    assert!(
        matches!(error, LibraryError::InvalidRemoteName { .. }),
        "{error:?}"
    );

    assert!(dir_entries(&emulator.storage_dir().join("incoming")).is_empty());
    emulator.shutdown().await;
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn preflight_rejects_bad_spec_before_upload() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let library = library(&emulator);
    let path = scratch.path().join("good.img");
    write_test_image(&path, 4096);

    let cases = [
        (
            ImageSpec::new("x", Arch::X86_64).remote_name("../escape.img"),
            "remote_name",
        ),
        (
            ImageSpec::new("x", Arch::Other("arm64".to_owned())),
            "arm64",
        ),
        (ImageSpec::new("   ", Arch::X86_64), "blank"),
    ];
    for (spec, expected) in cases {
        let error = library
            .upload_and_register(&path, &spec)
            .await
            .expect_err("invalid spec");
        assert!(error.to_string().contains(expected), "{error}");
    }

    let incoming = dir_entries(&emulator.storage_dir().join("incoming"));
    assert!(incoming.is_empty(), "incoming/ holds {incoming:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn builder_rejects_invalid_ca_pem() {
    let emulator = start_emulator().await;
    let error = Library::builder(api_client(&emulator))
        .add_root_certificate_pem(b"not a certificate".to_vec())
        .expect_err("not PEM");
    assert!(
        matches!(error, LibraryError::InvalidRootCertificate(_)),
        "{error:?}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn events_follow_the_workflow_steps() {
    use brightbox_library::JobEvent;
    use std::sync::Mutex;

    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("events.img");
    write_test_image(&source, 1024 * 1024);

    let events = Mutex::new(Vec::new());
    let record = |event: &JobEvent| events.lock().expect("lock").push(event.clone());
    let image = library(&emulator)
        .upload_and_register_with_events(&source, &ImageSpec::new("events", Arch::X86_64), &record)
        .await
        .expect("upload and register");
    let events = events.into_inner().expect("lock");

    let kinds: Vec<&str> = events
        .iter()
        .map(|event| match event {
            JobEvent::Checked { .. } => "checked",
            JobEvent::Uploading { .. } => "uploading",
            JobEvent::Uploaded { .. } => "uploaded",
            JobEvent::Registering { .. } => "registering",
            JobEvent::Registered { .. } => "registered",
            JobEvent::Waiting { .. } => "waiting",
            JobEvent::Done { .. } => "done",
            _ => "other",
        })
        .collect();
    let mut steps = kinds.clone();
    steps.dedup();
    assert_eq!(
        steps,
        [
            "checked",
            "uploading",
            "uploaded",
            "registering",
            "registered",
            "waiting",
            "done"
        ],
        "{kinds:?}"
    );

    let sent: Vec<u64> = events
        .iter()
        .filter_map(|event| match event {
            JobEvent::Uploading {
                bytes_sent, total, ..
            } => {
                assert_eq!(*total, 1024 * 1024);
                Some(*bytes_sent)
            }
            _ => None,
        })
        .collect();
    assert!(sent.windows(2).all(|pair| pair[0] <= pair[1]), "{sent:?}");
    assert_eq!(sent.last(), Some(&(1024 * 1024)));
    assert!(
        matches!(&events[events.len() - 1], JobEvent::Done { image_id } if *image_id == image.id)
    );
    emulator.shutdown().await;
}
