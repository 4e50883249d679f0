//! Rig of the fault matrix: an emulator, a TCP fault proxy, a library wired through it,
//! captured logs and the checks every case makes on the emulator's storage.

#![allow(dead_code)]

pub(crate) mod plain_ftp;
pub(crate) mod proxy;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brightbox_api::{Client, WaitOptions};
use brightbox_emulator::Emulator;
use brightbox_ftp::FtpsConfig;
use brightbox_library::{FtpsTransport, Library};
use sha2::{Digest, Sha256};
use tracing_subscriber::fmt::MakeWriter;

/// Timeout of each FTPS connect and of each read or write in the rig, short so that a
/// silent server fails a case in seconds.
pub(crate) const RIG_IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Log sink that appends every formatted event to a shared buffer.
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Returns everything written so far.
    pub(crate) fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .map(|buffer| buffer.clone())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Empties the buffer.
    pub(crate) fn clear(&self) {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.clear();
        }
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Returns an API client of the emulator's account, with its base URL replaced by
/// `api_url` when given (a proxy in front of the API).
pub(crate) fn api_client(emulator: &Emulator, api_url: Option<&str>) -> Client {
    Client::builder()
        .base_url(api_url.unwrap_or(emulator.api_url()))
        .client_credentials(emulator.client_id(), emulator.client_secret().to_owned())
        .build()
        .expect("client builds")
}

/// Polls quickly so that each case spends its time on the fault, not on waiting.
pub(crate) fn fast_wait() -> WaitOptions {
    WaitOptions {
        interval: Duration::from_millis(50),
        max_interval: Duration::from_millis(200),
        timeout: Duration::from_secs(30),
    }
}

/// Returns an FTPS configuration for the emulator's library at `port` on 127.0.0.1 (the
/// emulator's own port or a proxy's), with a fresh password and short timeouts.
pub(crate) fn ftps_config(emulator: &Emulator, port: u16) -> FtpsConfig {
    FtpsConfig::new(
        "127.0.0.1",
        emulator.ftp_user(),
        emulator.reset_ftp_password(),
    )
    .port(port)
    .add_root_certificate_pem(emulator.ca_certificate_pem().as_bytes())
    .expect("the emulator CA is valid PEM")
    .use_system_roots(false)
    .connect_timeout(RIG_IO_TIMEOUT)
    .io_timeout(RIG_IO_TIMEOUT)
    .final_reply_timeout(Duration::from_secs(5))
}

/// Returns a library whose FTPS transport connects to `ftp_port` and whose API client
/// uses `api_url` when given.
pub(crate) fn library_via(emulator: &Emulator, ftp_port: u16, api_url: Option<&str>) -> Library {
    let transport = FtpsTransport::new(ftps_config(emulator, ftp_port));
    Library::builder(api_client(emulator, api_url))
        .wait_options(fast_wait())
        .transport(Arc::new(transport))
        .build()
}

/// Writes `len` bytes of a pseudo-random pattern seeded by `seed` and returns their SHA-256.
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

/// Returns the SHA-256 of a file as lowercase hex.
pub(crate) fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read file")))
}

/// Returns the names in `dir` that are not temporary (`.<name>.part`) files and whose
/// length differs from `expected_len`: files that stand under a final name but are partial.
pub(crate) fn partial_final_files(dir: &Path, expected_len: u64) -> Vec<String> {
    let mut partial = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("dir entry");
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue;
        }
        let len = entry.metadata().expect("metadata").len();
        if len != expected_len {
            partial.push(format!("{file_name} ({len} bytes)"));
        }
    }
    partial
}

/// Returns the value of `key=<number>` in the last log line that contains `message`.
pub(crate) fn logged_number(logs: &str, message: &str, key: &str) -> Option<u64> {
    let line = logs.lines().rev().find(|line| line.contains(message))?;
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
