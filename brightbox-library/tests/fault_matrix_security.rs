//! Security checks of the whole job on the emulator: no secret in trace-level logs,
//! `Debug` or `Display`; private download files; temp URLs no longer than the job needs;
//! and no login over a connection that TLS does not protect.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brightbox_api::Arch;
use brightbox_emulator::{Emulator, EmulatorConfig};
use brightbox_ftp::{FtpError, FtpsConfig};
use brightbox_library::{
    DownloadImageOptions, FtpsTransport, ImageSpec, Library, LibraryError, OrbitTransport,
    Transport, TransportError, temp_url_lifetime,
};
use support::plain_ftp::PlainFtpServer;
use support::{CapturedLogs, api_client, fast_wait, sha256_of, write_test_image};

const IMAGE_LEN: usize = 512 * 1024;

async fn start_emulator() -> Emulator {
    Emulator::start_with(EmulatorConfig::default().registration_delay(Duration::from_millis(100)))
        .await
        .expect("emulator starts")
}

/// Returns the library of the default route: FTP credentials from the API.
fn default_library(emulator: &Emulator) -> Library {
    Library::builder(api_client(emulator, None))
        .add_root_certificate_pem(emulator.ca_certificate_pem())
        .expect("the emulator CA is valid PEM")
        .wait_options(fast_wait())
        .build()
}

fn orbit_transport(emulator: &Emulator) -> OrbitTransport {
    let api = api_client(emulator, None);
    let storage_url = emulator.orbit_url().parse().expect("orbit URL");
    OrbitTransport::from_api(&api, storage_url)
        .expect("transport builds")
        .segment_size(128 * 1024)
}

/// Returns the positions in `text` where `marker` is followed by a hex digit, such as a
/// temp URL signature value.
fn signature_values(text: &str, marker: &str) -> Vec<String> {
    text.match_indices(marker)
        .filter_map(|(at, _)| {
            let value: String = text[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            (!value.is_empty()).then(|| format!("{marker}{value}"))
        })
        .collect()
}

/// Returns whether `line` is suppaftp's trace record of the `PASS` command.
///
/// NOTE: suppaftp 12 writes every control command, `PASS <password>` included, as a `log`
/// record at trace level under the target `suppaftp::async_ftp::tokio_ftp::control`. No
/// crate of this workspace can suppress it, so production log filters must keep the
/// `suppaftp` target at `debug` or above. The scan tolerates exactly that line and
/// the scan checks every other line.
fn is_suppaftp_password_line(line: &str) -> bool {
    line.contains("suppaftp::") && line.contains("CC OUT: PASS ")
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} | {cause:?}"));
        source = cause.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_secrets() {
    let logs = CapturedLogs::default();
    // `try_init` also forwards `log` records, which suppaftp writes, to the subscriber.
    tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .try_init()
        .expect("the only subscriber of this test binary");

    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("secret-scan.img");
    let expected = write_test_image(&source, IMAGE_LEN, 7);

    // The FTPS route with credentials from the API.
    let library = default_library(&emulator);
    let image = library
        .upload_and_register(&source, &ImageSpec::new("secret-scan", Arch::X86_64))
        .await
        .expect("FTPS upload and register");
    let downloaded = library
        .download_image(
            &image.id,
            scratch.path().join("ftps.download"),
            &DownloadImageOptions::new(),
        )
        .await
        .expect("FTPS download");
    assert_eq!(downloaded.sha256, expected);

    // The FTPS route with a known password, so the scan can look for it.
    let ftp_password = emulator.reset_ftp_password();
    let known = FtpsConfig::new("127.0.0.1", emulator.ftp_user(), ftp_password.clone())
        .port(emulator.ftp_addr().port())
        .add_root_certificate_pem(emulator.ca_certificate_pem().as_bytes())
        .expect("CA PEM");
    let known_library = Library::builder(api_client(&emulator, None))
        .wait_options(fast_wait())
        .transport(Arc::new(FtpsTransport::new(known)))
        .build();
    known_library
        .upload_and_register(&source, &ImageSpec::new("secret-scan-known", Arch::X86_64))
        .await
        .expect("FTPS upload with a known password");

    // The Orbit route: registration by temp URL.
    let orbit = orbit_transport(&emulator);
    let staged = orbit
        .upload(&source, "secret-scan-orbit.img", None)
        .await
        .expect("Orbit upload");
    let temp_url = staged.http_url.clone().expect("temp URL");
    let signature = temp_url
        .query_pairs()
        .find(|(key, _)| key == "temp_url_sig")
        .map(|(_, value)| value.into_owned())
        .expect("signature in the temp URL");
    let orbit_library = Library::builder(api_client(&emulator, None))
        .wait_options(fast_wait())
        .transport(Arc::new(orbit_transport(&emulator)))
        .build();
    let orbit_image = orbit_library
        .upload_and_register(&source, &ImageSpec::new("secret-scan-orbit", Arch::X86_64))
        .await
        .expect("Orbit upload and register");

    // A rejected login produces errors whose text must not carry the password.
    let wrong_password = "Wrong-ftp-password-9c1e";
    let rejected = FtpsConfig::new("127.0.0.1", emulator.ftp_user(), wrong_password)
        .port(emulator.ftp_addr().port())
        .add_root_certificate_pem(emulator.ca_certificate_pem().as_bytes())
        .expect("CA PEM");
    let rejected_transport = FtpsTransport::new(rejected);
    let rejected_library = Library::builder(api_client(&emulator, None))
        .wait_options(fast_wait())
        .transport(Arc::new(rejected_transport.clone()))
        .build();
    let login_error = rejected_library
        .upload_and_register(
            &source,
            &ImageSpec::new("secret-scan-rejected", Arch::X86_64),
        )
        .await
        .expect_err("the server rejects the password");

    let token = library.api().access_token().await.expect("access token");
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
    let secrets = [
        ("client secret", emulator.client_secret().to_owned()),
        ("access token", token),
        ("FTP password", ftp_password),
        ("rejected FTP password", wrong_password.to_owned()),
        ("temp URL signature", signature),
    ];

    let debug_and_display = [
        format!("{library:?}"),
        format!("{known_library:?}"),
        format!("{orbit_library:?}"),
        format!("{rejected_transport:?}"),
        format!("{orbit:?}"),
        format!("{staged:?}"),
        format!("{:?}", Library::builder(api_client(&emulator, None))),
        format!("{image:?}"),
        format!("{orbit_image:?}"),
        format!("{downloaded:?}"),
        error_chain(&login_error),
    ]
    .join("\n");
    let captured = logs.text();
    assert!(
        captured.contains("upload complete"),
        "the log capture saw the FTPS upload"
    );
    for (what, secret) in &secrets {
        assert!(!secret.is_empty(), "{what} is known to the test");
        let leaks: Vec<&str> = captured
            .lines()
            .filter(|line| line.contains(secret.as_str()))
            .filter(|line| !is_suppaftp_password_line(line))
            .collect();
        assert!(leaks.is_empty(), "the logs contain the {what}: {leaks:#?}");
        assert!(
            !debug_and_display.contains(secret.as_str()),
            "Debug or Display output contains the {what}"
        );
    }
    let logged_signatures = signature_values(&captured, "temp_url_sig=");
    assert!(
        logged_signatures.is_empty(),
        "the logs contain temp URL signatures: {logged_signatures:?}"
    );
    assert!(
        !captured.contains("\"password\":\""),
        "the logs contain a password field of an API response"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn login_rejection_names_no_password() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("rejected.img");
    write_test_image(&source, 4096, 3);
    let wrong_password = "Another-wrong-password-51d0";
    let config = FtpsConfig::new("127.0.0.1", emulator.ftp_user(), wrong_password)
        .port(emulator.ftp_addr().port())
        .add_root_certificate_pem(emulator.ca_certificate_pem().as_bytes())
        .expect("CA PEM");
    let library = Library::builder(api_client(&emulator, None))
        .transport(Arc::new(FtpsTransport::new(config)))
        .build();

    let error = library
        .upload_and_register(&source, &ImageSpec::new("rejected", Arch::X86_64))
        .await
        .expect_err("the server rejects the password");

    match &error {
        LibraryError::Upload {
            source: TransportError::Ftp(ftp),
            ..
        } => assert!(matches!(**ftp, FtpError::LoginRejected { .. }), "{ftp:?}"),
        other => panic!("expected a rejected login, got {other:?}"),
    }
    assert!(!error_chain(&error).contains(wrong_password));
    emulator.shutdown().await;
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_are_private_files() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("private.img");
    let expected = write_test_image(&source, 4 * 1024 * 1024, 11);
    let library = default_library(&emulator);
    let image = library
        .upload_and_register(&source, &ImageSpec::new("private", Arch::X86_64))
        .await
        .expect("upload and register");

    // A download stopped part way leaves its temporary file, which must not be readable by
    // other users.
    let target = scratch.path().join("private.download");
    let part = scratch.path().join(".private.download.part");
    let stopped = tokio::time::timeout(
        Duration::from_millis(1),
        library.download_image(&image.id, &target, &DownloadImageOptions::new()),
    )
    .await;
    if stopped.is_err() {
        assert!(!target.exists(), "a stopped download left the final file");
        if part.exists() {
            assert_eq!(mode_of(&part), 0o600, "mode of the temporary file");
        }
    }

    let downloaded = library
        .download_image(
            &image.id,
            &target,
            &DownloadImageOptions::new().overwrite(true),
        )
        .await
        .expect("download");
    assert_eq!(downloaded.sha256, expected);
    assert_eq!(sha256_of(&target), expected);
    assert_eq!(mode_of(&target), 0o600, "mode of the downloaded image");
    assert!(!part.exists(), "the temporary file was renamed");

    // An earlier temporary file with a loose mode is restricted before data goes into it.
    let loose_target = scratch.path().join("loose.download");
    let loose_part = scratch.path().join(".loose.download.part");
    std::fs::write(&loose_part, b"").expect("write an empty temporary file");
    std::fs::set_permissions(&loose_part, std::fs::Permissions::from_mode(0o644))
        .expect("loosen its mode");
    library
        .download_image(&image.id, &loose_target, &DownloadImageOptions::new())
        .await
        .expect("download over an empty temporary file");
    assert_eq!(sha256_of(&loose_target), expected);
    assert_eq!(
        mode_of(&loose_target),
        0o600,
        "mode of the resumed download"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn temp_url_expiry_fits_the_image() {
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("expiry.img");
    write_test_image(&source, IMAGE_LEN, 5);

    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let staged = orbit_transport(&emulator)
        .upload(&source, "expiry.img", None)
        .await
        .expect("Orbit upload");
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();

    let url = staged.http_url.expect("temp URL");
    let expires: u64 = url
        .query_pairs()
        .find(|(key, _)| key == "temp_url_expires")
        .map(|(_, value)| value.parse().expect("numeric expiry"))
        .expect("expiry in the temp URL");
    let lifetime = temp_url_lifetime(IMAGE_LEN as u64).as_secs();
    assert!(
        expires >= before + lifetime && expires <= after + lifetime + 1,
        "expires {expires}, expected {lifetime} s after {before}..{after}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn plain_server_gets_no_credentials() {
    let server = PlainFtpServer::start().await;
    let emulator = start_emulator().await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("plain.img");
    write_test_image(&source, 4096, 1);
    let password = "Plain-server-must-not-see-this";
    let config = FtpsConfig::new("127.0.0.1", "plain-user", password)
        .port(server.address.port())
        .add_root_certificate_pem(emulator.ca_certificate_pem().as_bytes())
        .expect("CA PEM");
    let library = Library::builder(api_client(&emulator, None))
        .transport(Arc::new(FtpsTransport::new(config)))
        .build();

    let error = library
        .upload_and_register(&source, &ImageSpec::new("plain", Arch::X86_64))
        .await
        .expect_err("a server without AUTH TLS is rejected");

    match &error {
        LibraryError::Upload {
            source: TransportError::Ftp(ftp),
            ..
        } => match &**ftp {
            FtpError::ServerReply { command, code, .. } => {
                assert_eq!(command, "AUTH TLS");
                assert_eq!(*code, 502);
            }
            other => panic!("expected the AUTH TLS rejection, got {other:?}"),
        },
        other => panic!("expected an upload error, got {other:?}"),
    }
    let commands = server.commands();
    assert!(
        commands
            .iter()
            .any(|command| command.starts_with("AUTH TLS")),
        "{commands:?}"
    );
    assert!(
        !commands
            .iter()
            .any(|command| command.starts_with("USER") || command.starts_with("PASS")),
        "credentials went over plain FTP: {commands:?}"
    );
    assert!(!error_chain(&error).contains(password));
    emulator.shutdown().await;
}

#[test]
fn ftps_config_debug_hides_password() {
    let config = ftps_config_with_password("Debug-hidden-password-77");
    assert!(!format!("{config:?}").contains("Debug-hidden-password-77"));
    let transport = FtpsTransport::new(config);
    assert!(!format!("{transport:?}").contains("Debug-hidden-password-77"));
}

fn ftps_config_with_password(password: &str) -> FtpsConfig {
    FtpsConfig::new("127.0.0.1", "user", password.to_owned())
}

#[tokio::test]
async fn emulator_storage_is_private() {
    let parent = tempfile::tempdir().expect("tempdir");
    let storage = parent.path().join("library-storage");
    let emulator = Emulator::start_with(EmulatorConfig::default().storage_dir(&storage))
        .await
        .expect("emulator starts");

    for folder in [
        storage.clone(),
        emulator.incoming_dir(),
        emulator.images_dir(),
        emulator.orbit_dir(),
    ] {
        assert_eq!(mode_of(&folder), 0o700, "mode of {}", folder.display());
    }
    let tls_dir = emulator
        .ca_certificate_path()
        .parent()
        .expect("the CA file has a folder")
        .to_path_buf();
    assert_eq!(mode_of(&tls_dir), 0o700, "mode of the TLS folder");
    let key = tls_dir.join("server-key.pem");
    assert_eq!(mode_of(&key), 0o600, "mode of the server key");
    emulator.shutdown().await;

    // Without a storage folder the emulator uses a temporary one, private as well.
    let emulator = Emulator::start().await.expect("emulator starts");
    assert_eq!(
        mode_of(emulator.storage_dir()),
        0o700,
        "mode of the temporary storage"
    );
    emulator.shutdown().await;
}
