//! Re-runs of `Library::upload_and_register` against the emulator: a re-run
//! with the same, unchanged file returns the image an earlier run
//! registered, without uploading or registering again.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brightbox_api::{Arch, Image, ImageId, ImageStatus, WaitOptions};
use brightbox_emulator::Emulator;
use brightbox_library::{ImageSpec, JobEvent, Library, LibraryError, OrbitTransport};
use common::{api_client, library, sha256_of, start_emulator, write_test_image};

/// Length of each test image: small, because only the control flow matters.
const IMAGE_LEN: usize = 64 * 1024;
/// Registration time of the emulator while a first run is meant to fail its wait.
const SLOW_REGISTRATION: Duration = Duration::from_secs(2);
/// Wait deadline of a first run that must give up while the image is `creating`.
const SHORT_WAIT: Duration = Duration::from_millis(300);

/// Sleeps until the wall clock has entered the next whole second.
///
/// The API reports `created_at` in whole seconds, and an image matches only
/// when its `created_at` is at or after the file's last change. A file
/// written and registered within one second would not match.
async fn wait_for_next_second() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    let rest = Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()));
    tokio::time::sleep(rest + Duration::from_millis(20)).await;
}

/// Writes a test image at `path` and waits until a registration would be
/// dated after it.
async fn write_image(path: &Path, seed: u64) -> String {
    let sha = write_test_image(path, IMAGE_LEN, seed);
    wait_for_next_second().await;
    sha
}

/// Records every event of a run.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<JobEvent>>>);

impl Recorder {
    fn record(&self, event: &JobEvent) {
        self.0.lock().expect("event lock").push(event.clone());
    }

    fn events(&self) -> Vec<JobEvent> {
        self.0.lock().expect("event lock").clone()
    }

    fn bytes_sent(&self) -> u64 {
        self.events()
            .iter()
            .filter_map(|event| match event {
                JobEvent::Uploading { bytes_sent, .. } => Some(*bytes_sent),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    fn uploaded(&self) -> bool {
        self.events()
            .iter()
            .any(|event| matches!(event, JobEvent::Uploaded { .. }))
    }

    fn registered(&self) -> bool {
        self.events()
            .iter()
            .any(|event| matches!(event, JobEvent::Registering { .. }))
    }

    fn reused(&self) -> Option<(ImageId, ImageStatus)> {
        self.events().iter().find_map(|event| match event {
            JobEvent::Reused { image_id, status } => Some((image_id.clone(), status.clone())),
            _ => None,
        })
    }
}

async fn run_recorded(
    library: &Library,
    path: &Path,
    spec: &ImageSpec,
) -> (Result<Image, LibraryError>, Recorder) {
    let recorder = Recorder::default();
    let on_event = |event: &JobEvent| recorder.record(event);
    let outcome = library
        .upload_and_register_with_events(path, spec, &on_event)
        .await;
    (outcome, recorder)
}

async fn ids_named(emulator: &Emulator, name: &str) -> Vec<String> {
    let mut ids: Vec<String> = api_client(emulator)
        .images()
        .list()
        .await
        .expect("images are listed")
        .into_iter()
        .filter(|image| image.name.as_deref() == Some(name))
        .map(|image| image.id.to_string())
        .collect();
    ids.sort();
    ids
}

/// Runs a first job that registers the image but gives up waiting while it is
/// still `creating`, and returns the id from its error.
async fn first_run_fails_wait(
    emulator: &Emulator,
    library: &Library,
    path: &Path,
    spec: &ImageSpec,
) -> ImageId {
    emulator.faults().registration_delay(SLOW_REGISTRATION);
    let short = spec.clone().wait_timeout(SHORT_WAIT);
    let error = library
        .upload_and_register(path, &short)
        .await
        .expect_err("the first run gives up waiting");
    let LibraryError::Wait { image_id, .. } = error else {
        panic!("the first run should fail while waiting: {error:?}");
    };
    image_id
}

#[tokio::test]
async fn rerun_after_failed_wait_reuses_image() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("rerun.img");
    let sha = write_image(&path, 1).await;
    let spec = ImageSpec::new("rerun", Arch::X86_64);

    let registered = first_run_fails_wait(&emulator, &library, &path, &spec).await;
    let (outcome, recorder) = run_recorded(&library, &path, &spec).await;
    let image = outcome.expect("the re-run completes");

    assert_eq!(image.id, registered);
    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(
        recorder.reused(),
        Some((registered.clone(), ImageStatus::Creating))
    );
    assert_eq!(recorder.bytes_sent(), 0);
    assert!(!recorder.uploaded(), "the re-run uploaded");
    assert!(!recorder.registered(), "the re-run registered");
    assert_eq!(
        ids_named(&emulator, "rerun").await,
        [registered.to_string()]
    );
    assert!(
        std::fs::read_dir(emulator.incoming_dir())
            .expect("incoming is readable")
            .next()
            .is_none(),
        "incoming/ is not empty"
    );
    assert_eq!(
        sha256_of(&emulator.images_dir().join(registered.to_string())),
        sha
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn rerun_of_available_image_returns_it() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("done.img");
    write_image(&path, 2).await;
    let spec = ImageSpec::new("done", Arch::X86_64);

    let first = library
        .upload_and_register(&path, &spec)
        .await
        .expect("the first run completes");
    let (outcome, recorder) = run_recorded(&library, &path, &spec).await;
    let second = outcome.expect("the re-run completes");

    assert_eq!(second.id, first.id);
    assert_eq!(
        recorder.reused(),
        Some((first.id.clone(), ImageStatus::Available))
    );
    assert!(!recorder.uploaded(), "the re-run uploaded");
    assert!(
        !recorder
            .events()
            .iter()
            .any(|event| matches!(event, JobEvent::Waiting { .. })),
        "the re-run polled an available image"
    );
    assert!(matches!(
        recorder.events().last(),
        Some(JobEvent::Done { image_id }) if *image_id == first.id
    ));
    assert_eq!(ids_named(&emulator, "done").await, [first.id.to_string()]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn touched_file_uploads_again() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("touched.img");
    write_image(&path, 3).await;
    let spec = ImageSpec::new("touched", Arch::X86_64);

    let first = library
        .upload_and_register(&path, &spec)
        .await
        .expect("the first run completes");
    wait_for_next_second().await;
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("file opens");
    file.set_modified(SystemTime::now())
        .expect("modification time is set");
    drop(file);

    let (outcome, recorder) = run_recorded(&library, &path, &spec).await;
    let second = outcome.expect("the re-run completes");

    assert_ne!(second.id, first.id);
    assert_eq!(recorder.reused(), None);
    assert!(recorder.uploaded(), "the touched file was not uploaded");
    assert_eq!(recorder.bytes_sent(), IMAGE_LEN as u64);
    let mut expected = vec![first.id.to_string(), second.id.to_string()];
    expected.sort();
    assert_eq!(ids_named(&emulator, "touched").await, expected);
    emulator.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn replaced_file_with_old_mtime_uploads_again() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("copied.img");
    write_image(&path, 9).await;
    let old_mtime = std::fs::metadata(&path)
        .and_then(|metadata| metadata.modified())
        .expect("modification time is readable");
    let spec = ImageSpec::new("copied", Arch::X86_64);

    let first = library
        .upload_and_register(&path, &spec)
        .await
        .expect("the first run completes");
    // New content under the old modification time, as `cp -p` leaves it.
    wait_for_next_second().await;
    write_test_image(&path, IMAGE_LEN, 10);
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("file opens");
    file.set_modified(old_mtime)
        .expect("modification time is set");
    drop(file);

    let (outcome, recorder) = run_recorded(&library, &path, &spec).await;
    let second = outcome.expect("the re-run completes");

    assert_ne!(second.id, first.id);
    assert_eq!(recorder.reused(), None);
    assert!(recorder.uploaded(), "the replaced file was not uploaded");
    emulator.shutdown().await;
}

#[tokio::test]
async fn reuse_off_registers_again() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("again.img");
    write_image(&path, 4).await;
    let spec = ImageSpec::new("again", Arch::X86_64);

    let first = library
        .upload_and_register(&path, &spec)
        .await
        .expect("the first run completes");
    let (outcome, recorder) =
        run_recorded(&library, &path, &spec.clone().reuse_existing(false)).await;
    let second = outcome.expect("the re-run completes");

    assert_ne!(second.id, first.id);
    assert_eq!(second.status, ImageStatus::Available);
    assert_eq!(recorder.reused(), None);
    assert!(recorder.registered(), "the re-run did not register");
    let mut expected = vec![first.id.to_string(), second.id.to_string()];
    expected.sort();
    assert_eq!(ids_named(&emulator, "again").await, expected);
    emulator.shutdown().await;
}

#[tokio::test]
async fn failed_image_is_not_reused() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("broken.img");
    write_image(&path, 5).await;
    let spec = ImageSpec::new("broken", Arch::X86_64);

    emulator.faults().registration_outcome_failed(true);
    let error = library
        .upload_and_register(&path, &spec)
        .await
        .expect_err("the first image ends failed");
    let failed = error
        .registered_image()
        .cloned()
        .expect("the failed run names its image");
    emulator.faults().registration_outcome_failed(false);

    let (outcome, recorder) = run_recorded(&library, &path, &spec).await;
    let second = outcome.expect("the re-run completes");

    assert_ne!(second.id, failed);
    assert_eq!(second.status, ImageStatus::Available);
    assert_eq!(recorder.reused(), None);
    assert!(recorder.uploaded(), "the re-run did not upload");
    let mut expected = vec![failed.to_string(), second.id.to_string()];
    expected.sort();
    assert_eq!(ids_named(&emulator, "broken").await, expected);
    emulator.shutdown().await;
}

#[tokio::test]
async fn other_name_is_not_reused() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("shared.img");
    write_image(&path, 6).await;

    let first = library
        .upload_and_register(&path, &ImageSpec::new("first name", Arch::X86_64))
        .await
        .expect("the first run completes");
    let (outcome, recorder) = run_recorded(
        &library,
        &path,
        &ImageSpec::new("second name", Arch::X86_64),
    )
    .await;
    let second = outcome.expect("the second run completes");

    assert_ne!(second.id, first.id);
    assert_eq!(recorder.reused(), None);
    assert_eq!(
        ids_named(&emulator, "second name").await,
        [second.id.to_string()]
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn several_matches_reuse_newest() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("twice.img");
    write_image(&path, 7).await;
    let spec = ImageSpec::new("twice", Arch::X86_64);
    let always_new = spec.clone().reuse_existing(false);

    let older = library
        .upload_and_register(&path, &always_new)
        .await
        .expect("the first registration completes");
    // Dates the second image one second later, so `created_at` orders them.
    wait_for_next_second().await;
    let newer = library
        .upload_and_register(&path, &always_new)
        .await
        .expect("the second registration completes");
    let (outcome, recorder) = run_recorded(&library, &path, &spec).await;
    let reused = outcome.expect("the re-run completes");

    assert_eq!(reused.id, newer.id);
    assert!(!recorder.uploaded(), "the re-run uploaded");
    let mut expected = vec![older.id.to_string(), newer.id.to_string()];
    expected.sort();
    assert_eq!(ids_named(&emulator, "twice").await, expected);
    emulator.shutdown().await;
}

#[tokio::test]
async fn orbit_rerun_reuses_image() {
    let emulator = start_emulator().await;
    let api = api_client(&emulator);
    let storage_url = emulator.orbit_url().parse().expect("orbit URL");
    let transport = OrbitTransport::from_api(&api, storage_url).expect("transport builds");
    let library = Library::builder(api)
        .transport(Arc::new(transport))
        .wait_options(WaitOptions {
            interval: Duration::from_millis(50),
            max_interval: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
        })
        .build();
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("orbit-rerun.img");
    let sha = write_image(&path, 8).await;
    let spec = ImageSpec::new("orbit rerun", Arch::X86_64);

    let registered = first_run_fails_wait(&emulator, &library, &path, &spec).await;
    let (outcome, recorder) = run_recorded(&library, &path, &spec).await;
    let image = outcome.expect("the re-run completes");

    assert_eq!(image.id, registered);
    assert_eq!(image.status, ImageStatus::Available);
    let source = image.source.clone().unwrap_or_default();
    assert!(
        source.ends_with("/orbit-rerun.img"),
        "the image was not registered by URL: {source}"
    );
    assert_eq!(
        recorder.reused(),
        Some((registered.clone(), ImageStatus::Creating))
    );
    assert_eq!(recorder.bytes_sent(), 0);
    assert!(!recorder.uploaded(), "the re-run uploaded");
    assert_eq!(
        ids_named(&emulator, "orbit rerun").await,
        [registered.to_string()]
    );
    assert_eq!(
        sha256_of(&emulator.images_dir().join(registered.to_string())),
        sha
    );
    emulator.shutdown().await;
}
