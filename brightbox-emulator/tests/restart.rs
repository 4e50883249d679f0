//! Restarts of the `brightbox-emulator` binary with a state folder. Each case kills the
//! process with SIGKILL during an `upload_and_register` job, starts it again with the same
//! storage folder, state folder and ports, and checks that the job's image ends
//! verified and registered once.

#![cfg(unix)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brightbox_api::{Arch, Client, Image, ImageStatus, RetryConfig, WaitOptions};
use brightbox_library::{ImageSpec, JobEvent, Library, LibraryError};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tracing_subscriber::fmt::MakeWriter;

/// Length of the test image. 16 MiB is more than loopback socket buffers take in at once, so
/// progress reports pass 40 % while bytes are still moving and the kill lands mid-transfer.
const IMAGE_LEN: usize = 16 * 1024 * 1024;
/// Share of the file, in percent, sent when the first case kills the emulator.
const KILL_AT_PERCENT: u64 = 40;
/// Upper bound on one job, so a hang fails the test instead of blocking it.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a start may retry while the ports of a killed process are still bound.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One emulator process. Dropping it kills the process, so a failed assertion leaves no
/// server behind.
struct RunningEmulator {
    child: Child,
    settings: HashMap<String, String>,
}

impl RunningEmulator {
    /// Sends SIGKILL and reaps the process.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn setting(&self, key: &str) -> &str {
        self.settings
            .get(key)
            .unwrap_or_else(|| panic!("the emulator printed no {key}"))
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The folders and ports that every start of the emulator in one test shares.
struct Rig {
    storage: TempDir,
    state: TempDir,
    logs: TempDir,
    api_port: u16,
    ftp_port: u16,
    registration_delay_ms: u64,
}

impl Rig {
    fn new(registration_delay_ms: u64) -> Self {
        Rig {
            storage: tempfile::tempdir().expect("storage folder is created"),
            state: tempfile::tempdir().expect("state folder is created"),
            logs: tempfile::tempdir().expect("log folder is created"),
            api_port: free_port(),
            ftp_port: free_port(),
            registration_delay_ms,
        }
    }

    fn incoming(&self) -> PathBuf {
        self.storage.path().join("incoming")
    }

    fn images(&self) -> PathBuf {
        self.storage.path().join("images")
    }

    /// Returns the stderr of every start so far, oldest first.
    fn emulator_logs(&self) -> String {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.logs.path())
            .expect("log folder is readable")
            .map(|entry| entry.expect("log entry is readable").path())
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default())
            .collect()
    }

    /// Starts the binary and waits until it prints its settings. A killed emulator's
    /// ports can stay bound for a moment, so a start that fails is tried again.
    async fn start(&self) -> RunningEmulator {
        let command = StartCommand {
            storage: self.storage.path().to_owned(),
            state: self.state.path().to_owned(),
            logs: self.logs.path().to_owned(),
            api_port: self.api_port,
            ftp_port: self.ftp_port,
            registration_delay_ms: self.registration_delay_ms,
        };
        // Reading stdout blocks, and a job may be running on this test's runtime.
        tokio::task::spawn_blocking(move || command.run_until_ready())
            .await
            .expect("the start task does not panic")
    }
}

/// The arguments of one start, owned so that a blocking task can run it.
struct StartCommand {
    storage: PathBuf,
    state: PathBuf,
    logs: PathBuf,
    api_port: u16,
    ftp_port: u16,
    registration_delay_ms: u64,
}

impl StartCommand {
    fn run_until_ready(&self) -> RunningEmulator {
        let started = Instant::now();
        for attempt in 0.. {
            let log_path = self.logs.join(format!(
                "{:020}-{attempt}.log",
                started.elapsed().as_nanos() + log_sequence()
            ));
            let log = std::fs::File::create(&log_path).expect("log file is created");
            let mut child = Command::new(env!("CARGO_BIN_EXE_brightbox-emulator"))
                .arg("--storage")
                .arg(&self.storage)
                .arg("--state")
                .arg(&self.state)
                .arg("--api-port")
                .arg(self.api_port.to_string())
                .arg("--ftp-port")
                .arg(self.ftp_port.to_string())
                .arg("--registration-delay-ms")
                .arg(self.registration_delay_ms.to_string())
                .env("RUST_LOG", "info")
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .expect("the binary starts");
            let settings = read_settings(&mut child);
            if settings.contains_key("BRIGHTBOX_STORAGE") {
                return RunningEmulator { child, settings };
            }
            let _ = child.wait();
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the emulator did not start within {START_TIMEOUT:?}; its last log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        unreachable!("the loop returns or fails its assertion")
    }
}

/// Returns a number that grows with each call, so log files sort by start.
fn log_sequence() -> u128 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    u128::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Reads `KEY=value` lines from stdout until the storage line, or until the process ends.
fn read_settings(child: &mut Child) -> HashMap<String, String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut settings = HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some((key, value)) = line.split_once('=') {
            settings.insert(key.to_owned(), value.to_owned());
        }
        if line.starts_with("BRIGHTBOX_STORAGE=") {
            break;
        }
    }
    settings
}

/// Returns a port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port exists")
        .port()
}

/// Builds a library for the emulator's printed settings, as a new process would. The
/// API client retries long enough to ride out a restart.
fn library_for(emulator: &RunningEmulator) -> Library {
    library_waiting(emulator, library_wait())
}

/// Like [`library_for`], with `wait` as the library's wait options.
fn library_waiting(emulator: &RunningEmulator, wait: WaitOptions) -> Library {
    let retry = RetryConfig::default()
        .max_attempts(10)
        .initial_backoff(Duration::from_millis(200))
        .max_backoff(Duration::from_secs(1));
    let client = Client::builder()
        .base_url(emulator.setting("BRIGHTBOX_API_URL"))
        .client_credentials(
            emulator.setting("BRIGHTBOX_CLIENT_ID"),
            emulator.setting("BRIGHTBOX_CLIENT_SECRET").to_owned(),
        )
        .retry(retry)
        .build()
        .expect("client builds");
    let ca = std::fs::read(emulator.setting("BRIGHTBOX_FTP_CA_FILE")).expect("CA file is readable");
    Library::builder(client)
        .add_root_certificate_pem(ca)
        .expect("the emulator CA is valid PEM")
        .wait_options(wait)
        .build()
}

/// Writes `len` bytes of a pseudo-random pattern and returns their SHA-256.
fn write_test_image(path: &Path, len: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    std::fs::write(path, &bytes).expect("test image is written");
    hex::encode(Sha256::digest(&bytes))
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(
        std::fs::read(path).expect("file is readable"),
    ))
}

/// Returns the files in `dir` that have a final name (not `.<name>.part`) and a length
/// other than `expected_len`.
fn partial_final_files(dir: &Path, expected_len: u64) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("folder is readable")
        .map(|entry| entry.expect("entry is readable"))
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .filter(|entry| entry.metadata().map(|m| m.len()).ok() != Some(expected_len))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Returns the images named `name`, listed through a fresh client.
async fn images_named(library: &Library, name: &str) -> Vec<Image> {
    library
        .api()
        .images()
        .list()
        .await
        .expect("images are listed")
        .into_iter()
        .filter(|image| image.name.as_deref() == Some(name))
        .collect()
}

/// Checks what every case promises once its job has completed: the image is available,
/// its stored file has the source's SHA-256, no file under a final name is partial, and
/// exactly one image has the job's name.
async fn check_verified(rig: &Rig, library: &Library, image: &Image, name: &str, sha: &str) {
    assert_eq!(image.status, ImageStatus::Available);
    let stored = rig.images().join(image.id.to_string());
    assert_eq!(
        sha256_of(&stored),
        sha,
        "images/{} differs from the source",
        image.id
    );
    let partial_incoming = partial_final_files(&rig.incoming(), IMAGE_LEN as u64);
    assert!(
        partial_incoming.is_empty(),
        "partial files in incoming/: {partial_incoming:?}"
    );
    let partial_images = partial_final_files(&rig.images(), IMAGE_LEN as u64);
    assert!(
        partial_images.is_empty(),
        "partial files in images/: {partial_images:?}"
    );
    let named = images_named(library, name).await;
    let ids: Vec<String> = named.iter().map(|image| image.id.to_string()).collect();
    assert_eq!(ids, [image.id.to_string()], "images named {name}");
}

/// Log sink for the job's `tracing` records.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .map(|buffer| buffer.clone())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn clear(&self) {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.clear();
        }
    }
}

impl std::io::Write for CapturedLogs {
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

/// Captures this thread's `tracing` records at info level. The tests run on Tokio's
/// current-thread runtime, so the job's records land here.
fn capture_logs() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (logs, guard)
}

/// Returns the `resumed_from` value of each `upload complete` record in `logs`.
fn resumed_offsets(logs: &str) -> Vec<u64> {
    logs.lines()
        .filter(|line| line.contains("upload complete"))
        .filter_map(|line| {
            let (_, rest) = line.split_once("resumed_from=")?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[tokio::test]
async fn upload_killed_midway_completes_after_restart() {
    let (logs, _guard) = capture_logs();
    let rig = Rig::new(300);
    let source_dir = tempfile::tempdir().expect("source folder is created");
    let source = source_dir.path().join("restart-upload.img");
    let sha = write_test_image(&source, IMAGE_LEN);
    let spec = ImageSpec::new("restart-upload", Arch::X86_64);

    let first = rig.start().await;
    let library = library_for(&first);
    let secret = first.setting("BRIGHTBOX_CLIENT_SECRET").to_owned();
    let ca = std::fs::read_to_string(first.setting("BRIGHTBOX_FTP_CA_FILE"))
        .expect("CA file is readable");
    let first = Mutex::new(first);
    let killed_at = AtomicU64::new(0);
    let on_event = |event: &JobEvent| {
        let JobEvent::Uploading {
            bytes_sent, total, ..
        } = event
        else {
            return;
        };
        if *bytes_sent * 100 >= *total * KILL_AT_PERCENT && killed_at.load(Ordering::SeqCst) == 0 {
            first.lock().expect("emulator lock").kill();
            killed_at.store(*bytes_sent, Ordering::SeqCst);
        }
    };
    let outcome = tokio::time::timeout(
        JOB_TIMEOUT,
        library.upload_and_register_with_events(&source, &spec, &on_event),
    )
    .await
    .expect("the first run ends");

    let killed_at = killed_at.load(Ordering::SeqCst);
    assert!(
        killed_at > 0,
        "the emulator was not killed during the upload"
    );
    assert!(killed_at < IMAGE_LEN as u64, "killed at byte {killed_at}");
    let error = outcome.expect_err("the first run fails while the emulator is down");
    assert!(
        matches!(error, LibraryError::Upload { .. }),
        "the first run failed in another step: {error:?}"
    );
    assert!(
        !rig.incoming().join("restart-upload.img").exists(),
        "a partial upload stands under its final name"
    );
    drop(first);

    let second = rig.start().await;
    assert_eq!(second.setting("BRIGHTBOX_CLIENT_SECRET"), secret);
    let ca_again = std::fs::read_to_string(second.setting("BRIGHTBOX_FTP_CA_FILE"))
        .expect("CA file is readable");
    assert_eq!(ca_again, ca, "the restarted emulator has another CA");

    logs.clear();
    let library = library_for(&second);
    let image = tokio::time::timeout(JOB_TIMEOUT, library.upload_and_register(&source, &spec))
        .await
        .expect("the re-run ends")
        .expect("the re-run completes");
    check_verified(&rig, &library, &image, &spec.name, &sha).await;

    // The re-run continues the temporary file the killed run left, so it sends fewer
    // bytes than the file has.
    let offsets = resumed_offsets(&logs.text());
    assert_eq!(offsets.len(), 1, "one upload complete record: {offsets:?}");
    let resumed_from = offsets[0];
    assert!(resumed_from > 0, "the re-run sent the whole file again");
    assert!(
        resumed_from < IMAGE_LEN as u64,
        "the re-run sent nothing: {resumed_from}"
    );
    eprintln!(
        "killed at byte {killed_at}; the re-run resumed from byte {resumed_from} of {IMAGE_LEN}"
    );
}

#[tokio::test]
async fn registration_in_flight_finishes_after_restart() {
    let _logs = capture_logs();
    // Long enough that the kill, the restart and the reload all happen while `creating`.
    let rig = Rig::new(4000);
    let source_dir = tempfile::tempdir().expect("source folder is created");
    let source = source_dir.path().join("restart-register.img");
    let sha = write_test_image(&source, IMAGE_LEN);
    let spec = ImageSpec::new("restart-register", Arch::X86_64);

    let first = rig.start().await;
    let library = library_for(&first);
    let first = Mutex::new(first);
    let registered = Mutex::new(None);
    let killed = AtomicBool::new(false);
    let on_event = |event: &JobEvent| {
        if let JobEvent::Registered { image_id } = event {
            first.lock().expect("emulator lock").kill();
            *registered.lock().expect("id lock") = Some(image_id.to_string());
            killed.store(true, Ordering::SeqCst);
        }
    };
    let restart = async {
        while !killed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rig.start().await
    };
    let (outcome, second) = tokio::time::timeout(JOB_TIMEOUT, async {
        tokio::join!(
            library.upload_and_register_with_events(&source, &spec, &on_event),
            restart
        )
    })
    .await
    .expect("the job ends");

    let registered = registered
        .lock()
        .expect("id lock")
        .clone()
        .expect("the job registered an image");
    let fresh = library_for(&second);
    // The waiter polls through the outage, so the job itself completes across the restart.
    let image = outcome.expect("the job completes across the restart");
    assert_eq!(image.id.to_string(), registered);
    check_verified(&rig, &fresh, &image, &spec.name, &sha).await;
    let logs = rig.emulator_logs();
    assert!(
        logs.contains("state loaded") && logs.contains("resumed=1"),
        "the restarted emulator did not resume the creating image:\n{logs}"
    );
}

#[tokio::test]
async fn rerun_after_restart_during_registration() {
    let _logs = capture_logs();
    let rig = Rig::new(3000);
    let source_dir = tempfile::tempdir().expect("source folder is created");
    let source = source_dir.path().join("restart-rerun.img");
    let sha = write_test_image(&source, IMAGE_LEN);
    let spec = ImageSpec::new("restart-rerun", Arch::X86_64);
    // The API dates images in whole seconds, and the re-run reuses the image only when its
    // `created_at` is at or after the file's last change, so the registration must fall
    // in a later second than the write.
    wait_for_next_second().await;

    let first = rig.start().await;
    // A waiter polls through a down API until its deadline, so a short one ends the first
    // run sooner.
    let library = library_waiting(
        &first,
        WaitOptions {
            timeout: Duration::from_secs(8),
            ..library_wait()
        },
    );
    let first = Mutex::new(first);
    let registered = Mutex::new(None);
    let killed = AtomicBool::new(false);
    let on_event = |event: &JobEvent| {
        if let JobEvent::Registered { image_id } = event {
            first.lock().expect("emulator lock").kill();
            *registered.lock().expect("id lock") = Some(image_id.clone());
            killed.store(true, Ordering::SeqCst);
        }
    };
    // The emulator stays down until the job gives up.
    let outcome = tokio::time::timeout(
        JOB_TIMEOUT,
        library.upload_and_register_with_events(&source, &spec, &on_event),
    )
    .await
    .expect("the first run ends");
    let registered = registered
        .lock()
        .expect("id lock")
        .clone()
        .expect("the job registered an image");
    assert!(killed.load(Ordering::SeqCst));
    match outcome {
        Err(LibraryError::Wait { image_id, .. }) => assert_eq!(image_id, registered),
        other => panic!("the first run should fail while waiting: {other:?}"),
    }
    drop(first);

    let second = rig.start().await;
    let library = library_for(&second);
    let finished = library
        .api()
        .images()
        .wait_until_available(&registered, &library_wait())
        .await
        .expect("the restarted emulator finishes the image");
    assert_eq!(
        sha256_of(&rig.images().join(registered.to_string())),
        sha,
        "the stored image differs from the source"
    );
    assert_eq!(finished.status, ImageStatus::Available);

    let rerun = tokio::time::timeout(JOB_TIMEOUT, library.upload_and_register(&source, &spec))
        .await
        .expect("the re-run ends")
        .expect("the re-run completes");
    assert_eq!(sha256_of(&rig.images().join(rerun.id.to_string())), sha);
    // The re-run finds the image of the unchanged file and neither uploads nor registers.
    assert_eq!(rerun.id, registered);
    let named = images_named(&library, &spec.name).await;
    let ids: Vec<String> = named.iter().map(|image| image.id.to_string()).collect();
    assert_eq!(ids, [registered.to_string()], "images named {}", spec.name);
    let leftovers: Vec<String> = std::fs::read_dir(rig.incoming())
        .expect("incoming/ is readable")
        .map(|entry| {
            entry
                .expect("entry is readable")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(leftovers.is_empty(), "files in incoming/: {leftovers:?}");
}

/// Sleeps until the wall clock has entered the next whole second.
async fn wait_for_next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    let rest = Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()));
    tokio::time::sleep(rest + Duration::from_millis(20)).await;
}

/// Polls often, so the tests spend their time on the restart, not on waiting.
fn library_wait() -> WaitOptions {
    WaitOptions {
        interval: Duration::from_millis(100),
        max_interval: Duration::from_millis(300),
        timeout: Duration::from_secs(60),
    }
}
