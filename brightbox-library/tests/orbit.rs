//! The route of today's Brightbox, end to end on the emulator: stage the
//! image in Orbit, register it by temp URL, wait until it is available.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use brightbox_api::{Arch, Client, ImageStatus, WaitOptions};
use brightbox_emulator::{Emulator, EmulatorConfig};
use brightbox_library::{ImageSpec, Library, OrbitTransport};
use sha2::{Digest, Sha256};

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

fn orbit_library(emulator: &Emulator, transport: OrbitTransport) -> Library {
    Library::builder(api_client(emulator))
        .transport(Arc::new(transport))
        .wait_options(WaitOptions {
            interval: Duration::from_millis(50),
            max_interval: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
        })
        .build()
}

fn write_file(path: &Path, len: usize) -> String {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(path, &bytes).expect("write test file");
    hex::encode(Sha256::digest(&bytes))
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(
        std::fs::read(path).expect("read stored image"),
    ))
}

#[tokio::test]
async fn orbit_upload_registers_by_temp_url() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("orbit-disk.img");
    let expected = write_file(&path, 300 * 1024);

    let api = api_client(&emulator);
    let storage_url = emulator.orbit_url().parse().expect("orbit URL");
    let transport = OrbitTransport::from_api(&api, storage_url)
        .expect("transport builds")
        .segment_size(64 * 1024);
    let image = orbit_library(&emulator, transport)
        .upload_and_register(&path, &ImageSpec::new("orbit disk", Arch::X86_64))
        .await
        .expect("upload and register through Orbit");

    assert_eq!(image.status, ImageStatus::Available);
    let stored = emulator.images_dir().join(image.id.to_string());
    assert_eq!(sha256_of(&stored), expected);
    let source = image.source.clone().unwrap_or_default();
    assert!(source.contains("image-uploads"), "{source}");
    assert!(
        !source.contains("temp_url_sig"),
        "the signature was stored: {source}"
    );
    assert!(
        std::fs::read_dir(emulator.incoming_dir())
            .expect("incoming")
            .next()
            .is_none(),
        "nothing went through FTP"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn orbit_staging_object_removed_when_asked() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("staged.img");
    write_file(&path, 4096);

    let api = api_client(&emulator);
    let storage_url = emulator.orbit_url().parse().expect("orbit URL");
    let transport = OrbitTransport::from_api(&api, storage_url)
        .expect("transport builds")
        .remove_after_registration(true);
    let image = orbit_library(&emulator, transport)
        .upload_and_register(&path, &ImageSpec::new("staged", Arch::X86_64))
        .await
        .expect("upload and register");
    assert_eq!(image.status, ImageStatus::Available);

    let orbit = reqwest::Client::new();
    let token = api.access_token().await.expect("token");
    let listing = orbit
        .get(format!("{}image-uploads?format=json", emulator.orbit_url()))
        .header("X-Auth-Token", secrecy::ExposeSecret::expose_secret(&token))
        .send()
        .await
        .expect("list staging container")
        .text()
        .await
        .expect("listing body");
    assert!(!listing.contains("staged.img"), "{listing}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn orbit_download_decodes_lz4_snapshot() {
    use brightbox_library::DownloadImageOptions;

    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("roundtrip.img");
    // Long zero runs, as in a real disk image, next to patterned data.
    let mut bytes = vec![0_u8; 512 * 1024];
    bytes.extend((0..200_000_u32).map(|i| (i % 241) as u8));
    bytes.extend(vec![0_u8; 256 * 1024]);
    std::fs::write(&path, &bytes).expect("write test image");
    let expected = hex::encode(Sha256::digest(&bytes));

    let api = api_client(&emulator);
    let storage_url = emulator.orbit_url().parse().expect("orbit URL");
    let transport = OrbitTransport::from_api(&api, storage_url).expect("transport builds");
    let library = orbit_library(&emulator, transport);
    let image = library
        .upload_and_register(&path, &ImageSpec::new("roundtrip", Arch::X86_64))
        .await
        .expect("upload and register");

    let target = scratch.path().join("downloaded.raw");
    let downloaded = library
        .download_image(&image.id, &target, &DownloadImageOptions::default())
        .await
        .expect("download from the images container");

    assert_eq!(downloaded.bytes, bytes.len() as u64);
    assert_eq!(downloaded.sha256, expected);
    assert_eq!(sha256_of(&target), expected);
    emulator.shutdown().await;
}

#[tokio::test]
async fn orbit_segment_failure_is_retried() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("flaky.img");
    let expected = write_file(&path, 256 * 1024);

    // The first segment PUT of four fails once with a 503, as an overloaded
    // proxy in front of Orbit would return.
    let segment_prefix = "/v1/acc-emu01/image-uploads/flaky.img/segments/";
    let api = api_client(&emulator);
    let storage_url = emulator.orbit_url().parse().expect("orbit URL");
    let transport = OrbitTransport::from_api(&api, storage_url)
        .expect("transport builds")
        .segment_size(64 * 1024);
    let library = orbit_library(&emulator, transport);
    emulator.faults().fail_next_requests(segment_prefix, 503, 1);

    let image = library
        .upload_and_register(&path, &ImageSpec::new("flaky", Arch::X86_64))
        .await
        .expect("the failed segment is sent again");

    assert_eq!(image.status, ImageStatus::Available);
    let stored = emulator.images_dir().join(image.id.to_string());
    assert_eq!(sha256_of(&stored), expected);
    emulator.shutdown().await;
}
