//! Setup shared by the workflow tests: an emulator, a library pointed at it,
//! test images and file checks.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use brightbox_api::{Arch, Client, Image, ImageId, WaitOptions};
use brightbox_emulator::{Emulator, EmulatorConfig};
use brightbox_library::{ImageSpec, Library};
use sha2::{Digest, Sha256};

pub(crate) async fn start_emulator() -> Emulator {
    Emulator::start_with(EmulatorConfig::default().registration_delay(Duration::from_millis(200)))
        .await
        .expect("emulator starts")
}

pub(crate) fn api_client(emulator: &Emulator) -> Client {
    Client::builder()
        .base_url(emulator.api_url())
        .client_credentials(emulator.client_id(), emulator.client_secret().to_owned())
        .build()
        .expect("client builds")
}

pub(crate) fn fast_wait() -> WaitOptions {
    WaitOptions {
        interval: Duration::from_millis(50),
        max_interval: Duration::from_millis(200),
        timeout: Duration::from_secs(30),
    }
}

pub(crate) fn library(emulator: &Emulator) -> Library {
    Library::builder(api_client(emulator))
        .add_root_certificate_pem(emulator.ca_certificate_pem())
        .expect("the emulator CA is valid PEM")
        .wait_options(fast_wait())
        .build()
}

/// Writes `len` bytes of a pseudo-random pattern seeded by `seed` and
/// returns their SHA-256.
pub(crate) fn write_test_image(path: &Path, len: usize, seed: u64) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed;
    let mut bytes = Vec::with_capacity(len + 8);
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

pub(crate) fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read file")))
}

pub(crate) fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
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

/// Uploads a fresh test image of `len` bytes named `name` and returns the
/// available image.
pub(crate) async fn upload_image(
    library: &Library,
    scratch: &Path,
    name: &str,
    len: usize,
) -> Image {
    let path = scratch.join(format!("{name}.img"));
    write_test_image(&path, len, name.len() as u64);
    library
        .upload_and_register(&path, &ImageSpec::new(name, Arch::X86_64))
        .await
        .expect("upload and register")
}

pub(crate) async fn get_image(emulator: &Emulator, id: &ImageId) -> Image {
    api_client(emulator)
        .images()
        .get(id)
        .await
        .expect("get image")
}
