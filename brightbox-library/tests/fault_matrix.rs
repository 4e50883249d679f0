//! Fault-injection matrix of the whole job: `upload_and_register` and `download_image`
//! against the emulator, with a TCP fault proxy in front of its FTPS control port or its API,
//! or with the emulator's own API faults.
//!
//! Every case checks the same guarantees. The job completes with a verified image or fails
//! with the expected [`LibraryError`] variant. No file under a final name in `incoming/`,
//! `images/` or the download folder is partial, and no image is registered twice. A failed
//! job's re-run completes. `docs/reliability.md` lists the same table; the test
//! `docs_list_every_case` fails when the two differ.
//!
//! An upload re-run that the table marks as resuming must continue the partial file that the
//! failed run left and send fewer bytes than the file contains. Of what the failed run had
//! already written to its data connection, it may repeat at most [`MAX_RESENT_BYTES`].

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use brightbox_api::{Arch, Image, ImageStatus};
use brightbox_emulator::{Emulator, EmulatorConfig};
use brightbox_library::{DownloadImageOptions, ImageSpec, Library, LibraryError};
use support::proxy::{FaultProxy, Faults, ResetHandle};
use support::{CapturedLogs, library_via, logged_number, partial_final_files, sha256_of};

/// Length of every test image: small enough for a debug build, large enough that a
/// transfer spans many progress reports.
const IMAGE_LEN: usize = 4 * 1024 * 1024;

/// Upper bound on the bytes that the failed run wrote to its data connection and that a
/// resuming re-run sends again: one 1 MiB chunk, the unit in which the FTP client writes and
/// reports progress.
///
/// The data connection goes straight to the emulator, not through the fault proxy, so the
/// proxy buffers none of these bytes. A dropped future closes the data connection with a FIN
/// and the control reset of U17 leaves it open, so the emulator stores every byte the client
/// wrote. In five runs of U17 and U18 on a 2-core machine with a debug build, the partial
/// file contained at least as many bytes as the client had reported, and 0 bytes were sent again.
const MAX_RESENT_BYTES: u64 = 1024 * 1024;

/// The job a case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Upload,
    Download,
}

/// What the rig breaks.
#[derive(Debug, Clone, Copy)]
enum Inject {
    /// Resets the first FTPS control flow after this many bytes from the client.
    ControlResetUpstream(u64),
    /// Resets the FTPS control flow when the transfer reaches this percentage of the file.
    ControlResetAtPercent(u64),
    /// Resets the first FTPS control flow once it carried nothing for this many milliseconds.
    ControlIdleKill(u64),
    /// Resets the FTPS control flow when the transfer reaches this percentage of the file;
    /// every later connection is silent, so the job's own retries fail.
    ControlResetAtPercentThenSilent(u64),
    /// Limits the FTPS control flow to this many bytes per second each way.
    ControlThrottle(u64),
    /// The FTPS endpoint accepts connections and never sends a byte: on this many flows, or on
    /// every flow with `None`.
    Silent(Option<u64>),
    /// The API rejects this many requests under `/1.0/images` with this status.
    ApiStatus { status: u16, count: u32 },
    /// As `ApiStatus`, with `Retry-After` in seconds.
    ApiRetryAfter {
        status: u16,
        count: u32,
        seconds: u64,
    },
    /// `POST /1.0/images` creates the image but returns 502.
    RegisterCreatedThen502,
    /// The caller drops the job's future when the transfer reaches this percentage of the
    /// file, as a killed process or a `tokio::time::timeout` does.
    CancelAtPercent(u64),
    /// Access tokens expire after this many milliseconds, shorter than the job.
    TokenLifetime(u64),
    /// Resets the first API connection after this many bytes from the API.
    ApiResetDownstream(u64),
}

/// How the job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The job completes with a verified image.
    Completes,
    /// The job fails with this [`LibraryError`] variant.
    Fails(&'static str),
    /// The rig dropped the job's future.
    Cancelled,
}

/// What a second run of the same job does after the fault cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rerun {
    /// The first run completed, so there is no re-run.
    NotNeeded,
    /// The re-run completes and sends the whole file again.
    CompletesFromStart,
    /// The re-run completes and continues the partial file the failed run left.
    CompletesResumed,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    id: &'static str,
    job: Job,
    fault: &'static str,
    place: &'static str,
    inject: Inject,
    outcome: Outcome,
    rerun: Rerun,
}

const CASES: &[Case] = &[
    Case {
        id: "U1",
        job: Job::Upload,
        fault: "control connection reset",
        place: "client byte 5 (`AUTH TLS`)",
        inject: Inject::ControlResetUpstream(5),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U2",
        job: Job::Upload,
        fault: "control connection reset",
        place: "client byte 300 (TLS handshake)",
        inject: Inject::ControlResetUpstream(300),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U3",
        job: Job::Upload,
        fault: "control connection reset",
        place: "client byte 540 (login)",
        inject: Inject::ControlResetUpstream(540),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U4",
        job: Job::Upload,
        fault: "control connection reset",
        place: "10 % of the file sent",
        inject: Inject::ControlResetAtPercent(10),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U5",
        job: Job::Upload,
        fault: "control connection reset",
        place: "60 % of the file sent",
        inject: Inject::ControlResetAtPercent(60),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U6",
        job: Job::Upload,
        fault: "control connection reset",
        place: "99 % of the file sent",
        inject: Inject::ControlResetAtPercent(99),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U7",
        job: Job::Upload,
        fault: "control connection reset",
        place: "100 % sent, before the final reply",
        inject: Inject::ControlResetAtPercent(100),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U8",
        job: Job::Upload,
        fault: "idle control connection killed",
        place: "after 80 ms without traffic (during the data transfer)",
        inject: Inject::ControlIdleKill(80),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U9",
        job: Job::Upload,
        fault: "control connection throttled",
        place: "4 KB/s each way",
        inject: Inject::ControlThrottle(4_000),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U10",
        job: Job::Upload,
        fault: "server accepts, then stays silent",
        place: "first connection",
        inject: Inject::Silent(Some(1)),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U11",
        job: Job::Upload,
        fault: "server accepts, then stays silent",
        place: "every connection",
        inject: Inject::Silent(None),
        outcome: Outcome::Fails("Upload"),
        rerun: Rerun::CompletesFromStart,
    },
    Case {
        id: "U12",
        job: Job::Upload,
        fault: "API 503 burst",
        place: "3 requests under `/1.0/images`",
        inject: Inject::ApiStatus {
            status: 503,
            count: 3,
        },
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U13",
        job: Job::Upload,
        fault: "API 429 burst",
        place: "2 requests under `/1.0/images`, `Retry-After: 1`",
        inject: Inject::ApiRetryAfter {
            status: 429,
            count: 2,
            seconds: 1,
        },
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U14",
        job: Job::Upload,
        fault: "registration returns 502 after creating the image",
        place: "`POST /1.0/images`",
        inject: Inject::RegisterCreatedThen502,
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U15",
        job: Job::Upload,
        fault: "access token expires mid-job",
        place: "token lifetime 1 s, registration 2.5 s",
        inject: Inject::TokenLifetime(1_000),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U16",
        job: Job::Upload,
        fault: "API connection reset",
        place: "first connection (`POST /token`), API byte 100",
        inject: Inject::ApiResetDownstream(100),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "U17",
        job: Job::Upload,
        fault: "control connection reset, then the server stays silent",
        place: "60 % of the file sent; every later connection",
        inject: Inject::ControlResetAtPercentThenSilent(60),
        outcome: Outcome::Fails("Upload"),
        rerun: Rerun::CompletesResumed,
    },
    Case {
        id: "U18",
        job: Job::Upload,
        fault: "job stopped by the caller",
        place: "60 % of the file sent",
        inject: Inject::CancelAtPercent(60),
        outcome: Outcome::Cancelled,
        rerun: Rerun::CompletesResumed,
    },
    Case {
        id: "D1",
        job: Job::Download,
        fault: "control connection reset",
        place: "60 % of the file received",
        inject: Inject::ControlResetAtPercent(60),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "D2",
        job: Job::Download,
        fault: "server accepts, then stays silent",
        place: "every connection",
        inject: Inject::Silent(None),
        outcome: Outcome::Fails("Download"),
        rerun: Rerun::CompletesFromStart,
    },
    Case {
        id: "D3",
        job: Job::Download,
        fault: "control connection reset",
        place: "client byte 300 (TLS handshake)",
        inject: Inject::ControlResetUpstream(300),
        outcome: Outcome::Completes,
        rerun: Rerun::NotNeeded,
    },
    Case {
        id: "D4",
        job: Job::Download,
        fault: "job stopped by the caller",
        place: "20 % of the file received",
        inject: Inject::CancelAtPercent(20),
        outcome: Outcome::Cancelled,
        rerun: Rerun::CompletesResumed,
    },
];

/// Where a case's proxy sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rig {
    /// In front of the FTPS control port.
    FtpsProxy,
    /// In front of the API port.
    ApiProxy,
    /// No proxy; the emulator's own fault switches or settings.
    Emulator,
    /// No proxy; the test drops the job's future.
    Caller,
}

impl Inject {
    fn rig(self) -> Rig {
        match self {
            Inject::ControlResetUpstream(_)
            | Inject::ControlResetAtPercent(_)
            | Inject::ControlResetAtPercentThenSilent(_)
            | Inject::ControlIdleKill(_)
            | Inject::ControlThrottle(_)
            | Inject::Silent(_) => Rig::FtpsProxy,
            Inject::ApiResetDownstream(_) => Rig::ApiProxy,
            Inject::ApiStatus { .. }
            | Inject::ApiRetryAfter { .. }
            | Inject::RegisterCreatedThen502
            | Inject::TokenLifetime(_) => Rig::Emulator,
            Inject::CancelAtPercent(_) => Rig::Caller,
        }
    }

    /// Returns the proxy faults for this injection; percentage resets use `reset_now`.
    fn proxy_faults(self) -> Faults {
        match self {
            Inject::ControlResetUpstream(bytes) => Faults {
                reset_after_upstream: Some(bytes),
                faulty_flows: Some(1),
                ..Faults::default()
            },
            Inject::ControlIdleKill(ms) => Faults {
                idle_reset: Some(Duration::from_millis(ms)),
                faulty_flows: Some(1),
                ..Faults::default()
            },
            Inject::ControlThrottle(rate) => Faults {
                throttle_bytes_per_second: Some(rate),
                ..Faults::default()
            },
            Inject::Silent(flows) => Faults {
                silent: true,
                faulty_flows: flows,
                ..Faults::default()
            },
            Inject::ControlResetAtPercentThenSilent(_) => Faults {
                silent_from_flow: Some(1),
                ..Faults::default()
            },
            Inject::ApiResetDownstream(bytes) => Faults {
                reset_after_downstream: Some(bytes),
                faulty_flows: Some(1),
                ..Faults::default()
            },
            _ => Faults::default(),
        }
    }
}

impl Rig {
    fn label(self) -> &'static str {
        match self {
            Rig::FtpsProxy => "proxy → FTPS",
            Rig::ApiProxy => "proxy → API",
            Rig::Emulator => "emulator faults",
            Rig::Caller => "caller drops the future",
        }
    }
}

impl Outcome {
    fn label(self) -> String {
        match self {
            Outcome::Completes => "completes, verified".to_owned(),
            Outcome::Fails(variant) => format!("fails: `LibraryError::{variant}`"),
            Outcome::Cancelled => "stopped (future dropped)".to_owned(),
        }
    }
}

impl Rerun {
    fn label(self) -> &'static str {
        match self {
            Rerun::NotNeeded => "not needed",
            Rerun::CompletesFromStart => "completes from byte 0",
            Rerun::CompletesResumed => "completes, resumes",
        }
    }
}

impl Case {
    /// Returns the case as a row of the matrix in `docs/reliability.md`.
    fn row(&self) -> String {
        let job = match self.job {
            Job::Upload => "upload_and_register",
            Job::Download => "download_image",
        };
        format!(
            "| {} | `{job}` | {} | {} | {} | {} | {} |",
            self.id,
            self.fault,
            self.place,
            self.inject.rig().label(),
            self.outcome.label(),
            self.rerun.label()
        )
    }
}

/// What one run of a job produced.
struct RunResult {
    /// The job's result, or `None` when the rig dropped the job's future.
    outcome: Option<Result<(), LibraryError>>,
    /// Bytes of a partial file that the last transfer attempt continued, from the logs.
    resumed_from: u64,
    /// Highest byte count the job reported as transferred, a resumed prefix included.
    max_progress: u64,
}

/// Everything a case needs: the emulator, the optional proxy and the files.
struct Bench {
    emulator: Emulator,
    rig: Rig,
    proxy: Option<FaultProxy>,
    scratch: tempfile::TempDir,
    source: PathBuf,
    source_sha256: String,
    name: String,
    /// Name of the upload's temporary file in `incoming/`, which carries the source's
    /// fingerprint.
    upload_temporary: String,
}

impl Bench {
    async fn start(case: &Case) -> Bench {
        let mut config = EmulatorConfig::default().registration_delay(Duration::from_millis(100));
        if let Inject::TokenLifetime(ms) = case.inject {
            config = config
                .token_lifetime(Duration::from_millis(ms))
                .registration_delay(Duration::from_millis(2_500));
        }
        let emulator = Emulator::start_with(config).await.expect("emulator starts");
        let proxy = match case.inject.rig() {
            Rig::FtpsProxy => {
                Some(FaultProxy::start(emulator.ftp_addr(), case.inject.proxy_faults()).await)
            }
            Rig::ApiProxy => {
                let api: std::net::SocketAddr = emulator
                    .api_url()
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .parse()
                    .expect("API address");
                Some(FaultProxy::start(api, case.inject.proxy_faults()).await)
            }
            Rig::Emulator | Rig::Caller => None,
        };
        let scratch = tempfile::tempdir().expect("tempdir");
        let name = format!("matrix-{}", case.id.to_ascii_lowercase());
        let source = scratch.path().join(format!("{name}.img"));
        let source_sha256 = support::write_test_image(&source, IMAGE_LEN, case.id.len() as u64);
        let upload_temporary =
            brightbox_library::upload_temporary_name(&source, &format!("{name}.img"))
                .await
                .expect("upload temporary name");
        Bench {
            emulator,
            rig: case.inject.rig(),
            proxy,
            scratch,
            source,
            source_sha256,
            name,
            upload_temporary,
        }
    }

    /// Returns a library wired through the proxy (with `faulty` set) or straight to the
    /// emulator.
    fn library(&self, faulty: bool) -> Library {
        let ftp_port = match (&self.proxy, faulty) {
            (Some(proxy), true) if self.rig == Rig::FtpsProxy => proxy.address.port(),
            _ => self.emulator.ftp_addr().port(),
        };
        let api_url = match (&self.proxy, faulty) {
            (Some(proxy), true) if self.rig == Rig::ApiProxy => {
                Some(format!("http://{}/", proxy.address))
            }
            _ => None,
        };
        library_via(&self.emulator, ftp_port, api_url.as_deref())
    }

    /// Returns the temporary file that grows during the job:
    /// `incoming/.<name>.<fingerprint>.part` on the server for uploads, the local
    /// `.<name>.part` for downloads.
    fn temporary_path(&self, job: Job) -> PathBuf {
        match job {
            Job::Upload => self.emulator.incoming_dir().join(&self.upload_temporary),
            Job::Download => self
                .scratch
                .path()
                .join(format!(".{}.download.part", self.name)),
        }
    }

    fn spec(&self) -> ImageSpec {
        ImageSpec::new(&self.name, Arch::X86_64)
    }

    fn download_path(&self) -> PathBuf {
        self.scratch.path().join(format!("{}.download", self.name))
    }

    async fn images_named(&self) -> Vec<Image> {
        support::api_client(&self.emulator, None)
            .images()
            .list()
            .await
            .expect("list images")
            .into_iter()
            .filter(|image| image.name.as_deref() == Some(self.name.as_str()))
            .collect()
    }
}

/// Runs one job with the fault armed and returns its result and resume offset.
async fn run_job(
    bench: &Bench,
    case: &Case,
    library: &Library,
    logs: &CapturedLogs,
    faulty: bool,
) -> RunResult {
    logs.clear();
    let total = IMAGE_LEN as u64;
    // The transfer of a few MiB takes about 100 ms, faster than progress reports arrive, so
    // the trigger watches the temporary file grow: `incoming/.<name>.part` on the server for
    // uploads, the local `.<name>.part` for downloads.
    let trigger = match (faulty, case.inject, &bench.proxy) {
        (
            true,
            Inject::ControlResetAtPercent(percent)
            | Inject::ControlResetAtPercentThenSilent(percent),
            Some(proxy),
        ) => {
            let threshold = (total * percent / 100).max(1);
            Some(tokio::spawn(reset_when_file_reaches(
                bench.temporary_path(case.job),
                threshold,
                proxy.reset_handle(),
            )))
        }
        _ => None,
    };
    // A cancellation case stops the job at the first progress report past its threshold,
    // or when the temporary file grows past it, whichever the test sees first.
    let cancel_threshold = match (faulty, case.inject) {
        (true, Inject::CancelAtPercent(percent)) => Some((total * percent / 100).max(1)),
        _ => None,
    };
    let cancel = tokio::sync::Notify::new();
    let max_progress = std::sync::atomic::AtomicU64::new(0);
    let on_progress = |bytes: u64| {
        max_progress.fetch_max(bytes, std::sync::atomic::Ordering::Relaxed);
        if cancel_threshold.is_some_and(|threshold| bytes >= threshold) {
            cancel.notify_one();
        }
    };

    let job = async {
        match case.job {
            Job::Upload => library
                .upload_and_register_with_progress(&bench.source, &bench.spec(), Some(&on_progress))
                .await
                .map(|_| ()),
            Job::Download => {
                let image = bench.images_named().await;
                let image = image.first().expect("the case uploaded its image first");
                library
                    .download_image_with_progress(
                        &image.id,
                        bench.download_path(),
                        &DownloadImageOptions::new().resume(true),
                        Some(&on_progress),
                    )
                    .await
                    .map(|_| ())
            }
        }
    };
    let outcome = match (faulty, case.inject) {
        (true, Inject::CancelAtPercent(percent)) => {
            let threshold = (total * percent / 100).max(1);
            tokio::select! {
                biased;
                () = cancel.notified() => None,
                () = wait_for_file(bench.temporary_path(case.job), threshold) => None,
                result = job => Some(result),
            }
        }
        _ => Some(job.await),
    };
    if let Some(trigger) = trigger {
        trigger.abort();
    }
    let text = logs.text();
    let resumed_from = match case.job {
        Job::Upload => logged_number(&text, "upload complete", "resumed_from").unwrap_or(0),
        Job::Download => logged_number(&text, "download complete", "resumed_from")
            .or_else(|| logged_number(&text, "image downloaded", "resumed_from"))
            .unwrap_or(0),
    };
    RunResult {
        outcome,
        resumed_from,
        max_progress: max_progress.into_inner(),
    }
}

/// Returns the length of `path` once it has not changed for 200 ms, or 0 when it does not
/// exist: the emulator may still be writing the last bytes of a dropped data connection.
async fn settled_len(path: &Path) -> u64 {
    let mut last = None;
    loop {
        let len = tokio::fs::metadata(path)
            .await
            .map(|metadata| metadata.len())
            .unwrap_or(0);
        if last == Some(len) {
            return len;
        }
        last = Some(len);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns once `path` holds at least `threshold` bytes, polling every millisecond.
async fn wait_for_file(path: PathBuf, threshold: u64) {
    loop {
        if let Ok(metadata) = tokio::fs::metadata(&path).await
            && metadata.len() >= threshold
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Polls `path` every millisecond and resets the proxy's flows once the file holds at least
/// `threshold` bytes.
async fn reset_when_file_reaches(path: PathBuf, threshold: u64, proxy: ResetHandle) {
    loop {
        if let Ok(metadata) = tokio::fs::metadata(&path).await
            && metadata.len() >= threshold
        {
            proxy.reset_now();
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Checks the guarantees that hold after every run, failed or not.
async fn check_storage(bench: &Bench, case: &Case) {
    let len = IMAGE_LEN as u64;
    let incoming = partial_final_files(&bench.emulator.incoming_dir(), len);
    assert!(
        incoming.is_empty(),
        "{}: partial files in incoming/: {incoming:?}",
        case.id
    );
    let images = partial_final_files(&bench.emulator.images_dir(), len);
    assert!(
        images.is_empty(),
        "{}: partial files in images/: {images:?}",
        case.id
    );
    let named = bench.images_named().await;
    assert!(
        named.len() <= 1,
        "{}: image registered {} times",
        case.id,
        named.len()
    );
    if case.job == Job::Download {
        let path = bench.download_path();
        if path.exists() {
            assert_eq!(
                sha256_of(&path),
                bench.source_sha256,
                "{}: the file under the final download name is not the image",
                case.id
            );
        }
    }
}

/// Checks the byte counts of an upload re-run that resumed the partial file of `first`, which
/// held `kept` bytes after the failed run.
fn check_upload_resumed(case: &Case, first: &RunResult, second: &RunResult, kept: u64) {
    let len = IMAGE_LEN as u64;
    assert_eq!(
        second.resumed_from, kept,
        "{}: the re-run did not continue the whole partial file",
        case.id
    );
    // The verified image is `len` bytes long and the FTP client checks that the server stores
    // the kept prefix plus the bytes sent, so the re-run sent `len - kept` bytes.
    let sent = len - second.resumed_from;
    assert!(
        sent < len,
        "{}: the re-run sent {sent} bytes, the whole file",
        case.id
    );
    // The progress count grows after each whole 1 MiB chunk, so it leaves out a chunk that
    // was still being written when the run failed.
    let resent = first.max_progress.saturating_sub(kept);
    assert!(
        resent <= MAX_RESENT_BYTES,
        "{}: the failed run wrote {} bytes and the server kept {kept}, so {resent} bytes were \
         sent again",
        case.id,
        first.max_progress
    );
}

/// Checks that the job produced a verified image.
async fn check_completed(bench: &Bench, case: &Case) {
    let named = bench.images_named().await;
    assert_eq!(named.len(), 1, "{}: one image of the name", case.id);
    let image = &named[0];
    assert_eq!(image.status, ImageStatus::Available, "{}", case.id);
    let stored = bench.emulator.images_dir().join(image.id.to_string());
    assert_eq!(
        sha256_of(&stored),
        bench.source_sha256,
        "{}: images/{} differs from the source",
        case.id,
        image.id
    );
    if case.job == Job::Download {
        assert_eq!(
            sha256_of(&bench.download_path()),
            bench.source_sha256,
            "{}: the download differs from the source",
            case.id
        );
    }
}

fn variant_name(error: &LibraryError) -> String {
    let debug = format!("{error:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Runs one case and returns a line describing what happened.
async fn run_case(case: &Case) -> String {
    let bench = Bench::start(case).await;
    if case.job == Job::Download {
        bench
            .library(false)
            .upload_and_register(&bench.source, &bench.spec())
            .await
            .expect("the image to download uploads without faults");
    }
    match case.inject {
        Inject::ApiStatus { status, count } => {
            bench
                .emulator
                .faults()
                .fail_next_requests("/1.0/images", status, count);
        }
        Inject::ApiRetryAfter {
            status,
            count,
            seconds,
        } => bench.emulator.faults().fail_next_requests_with_retry_after(
            "/1.0/images",
            status,
            count,
            Duration::from_secs(seconds),
        ),
        Inject::RegisterCreatedThen502 => {
            bench.emulator.faults().fail_next_register_after_create(502)
        }
        _ => {}
    }

    let logs = matrix_logs();

    let started = Instant::now();
    let first = run_job(&bench, case, &bench.library(true), &logs, true).await;
    check_storage(&bench, case).await;
    let first_elapsed = started.elapsed();

    match (&first.outcome, case.outcome) {
        (None, Outcome::Cancelled) => {}
        (Some(Ok(())), Outcome::Completes) => {}
        (Some(Err(error)), Outcome::Fails(variant)) => {
            assert_eq!(variant_name(error), variant, "{}: {error:?}", case.id);
        }
        (result, expected) => panic!(
            "{}: expected {expected:?}, got {:?}",
            case.id,
            result.as_ref().map(|result| result.as_ref().err())
        ),
    }
    if let Some(proxy) = &bench.proxy {
        let faults = case.inject.proxy_faults();
        let needs_reset = faults.reset_after_upstream.is_some()
            || faults.reset_after_downstream.is_some()
            || matches!(
                case.inject,
                Inject::ControlResetAtPercent(_) | Inject::ControlResetAtPercentThenSilent(_)
            );
        if needs_reset && std::env::var_os("MATRIX_PROBE").is_none() {
            assert!(
                proxy.resets() >= 1,
                "{}: the proxy injected no reset",
                case.id
            );
        }
    }

    let rerun_note = match (&first.outcome, case.rerun) {
        (Some(Ok(())), Rerun::NotNeeded) => {
            check_completed(&bench, case).await;
            "no re-run".to_owned()
        }
        (Some(Err(_)) | None, expected) => {
            let kept = settled_len(&bench.temporary_path(case.job)).await;
            let second = run_job(&bench, case, &bench.library(false), &logs, false).await;
            check_storage(&bench, case).await;
            match &second.outcome {
                Some(Ok(())) => {}
                Some(Err(error)) => panic!("{}: the re-run failed: {error:?}", case.id),
                None => panic!("{}: the re-run was dropped", case.id),
            }
            check_completed(&bench, case).await;
            match expected {
                Rerun::CompletesResumed => assert!(
                    second.resumed_from > 0,
                    "{}: the re-run did not resume ({} bytes kept)",
                    case.id,
                    second.resumed_from
                ),
                Rerun::CompletesFromStart => assert_eq!(second.resumed_from, 0, "{}", case.id),
                Rerun::NotNeeded => panic!("{}: the table expects no re-run", case.id),
            }
            if case.job == Job::Upload && expected == Rerun::CompletesResumed {
                check_upload_resumed(case, &first, &second, kept);
            }
            format!(
                "partial file {kept} bytes, re-run kept {} and transferred {} bytes",
                second.resumed_from,
                IMAGE_LEN as u64 - second.resumed_from
            )
        }
        (Some(Ok(())), expected) => {
            panic!("{}: completed, but the table expects {expected:?}", case.id)
        }
    };

    let proxied = bench.proxy.as_ref().map_or(String::new(), |proxy| {
        format!(
            ", proxy: {} flows, {} resets, {} bytes up",
            proxy.accepted(),
            proxy.resets(),
            proxy.upstream_bytes()
        )
    });
    let line = format!(
        "{:<4} {:>6} ms, first run: {}, reported {} bytes, resumed from {} bytes, \
         {rerun_note}{proxied}",
        case.id,
        first_elapsed.as_millis(),
        match &first.outcome {
            Some(Ok(())) => "completed".to_owned(),
            Some(Err(error)) => variant_name(error),
            None => "dropped".to_owned(),
        },
        first.max_progress,
        first.resumed_from,
    );
    bench.emulator.shutdown().await;
    line
}

/// Returns the log buffer of this test binary, installing it as the global subscriber on
/// first use. The cases run one after another, so each clears and reads it in turn.
fn matrix_logs() -> CapturedLogs {
    static LOGS: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        logs
    })
    .clone()
}

// The proxy must act while the client is still sending, so it needs a thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_runs_every_case() {
    let started = Instant::now();
    // MATRIX_CASES=U17,U18 runs only the listed cases.
    let selected = std::env::var("MATRIX_CASES").ok();
    let selected: Option<Vec<&str>> = selected
        .as_deref()
        .map(|list| list.split(',').map(str::trim).collect());
    let mut report = Vec::new();
    for case in CASES {
        if selected.as_ref().is_some_and(|ids| !ids.contains(&case.id)) {
            continue;
        }
        let line = run_case(case).await;
        eprintln!("{line}");
        report.push(line);
    }
    for line in &report {
        eprintln!("{line}");
    }
    eprintln!(
        "{} faults injected, matrix took {:.1} s",
        report.len(),
        started.elapsed().as_secs_f64()
    );
}

fn reliability_doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/reliability.md");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

#[test]
fn docs_list_every_case() {
    let doc = reliability_doc();
    let missing: Vec<String> = CASES
        .iter()
        .map(Case::row)
        .filter(|row| !doc.contains(row.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/reliability.md lacks these rows of the fault matrix (copy them in):\n{}",
        missing.join("\n")
    );
}
