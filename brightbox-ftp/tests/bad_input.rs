//! Bad input for every public entry point: hosts, credentials, local files, remote names and paths,
//! and download options. Each case expects a typed error that names the value and no upload on
//! the server: the scripted server's command log shows no `STOR` or `APPE` and it stores no file.

mod common;
mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use brightbox_ftp::{
    DownloadOptions, FtpError, FtpsClient, FtpsConfig, MAX_SEGMENTS, UploadOptions,
};
use support::scripted::{self, Script, ScriptedServer};

const LEAK_MARKER: &str = "must-not-leak-4b1d";

fn scripted_config(server: &ScriptedServer) -> FtpsConfig {
    FtpsConfig::new("127.0.0.1", scripted::USER, scripted::PASSWORD)
        .port(server.address.port())
        .use_system_roots(false)
        .add_root_certificate_pem(server.ca_pem.as_bytes())
        .expect("test CA PEM")
        .io_timeout(Duration::from_secs(10))
}

async fn connect(server: &ScriptedServer) -> FtpsClient {
    FtpsClient::connect(&scripted_config(server))
        .await
        .expect("connect to the scripted server")
}

/// Returns the commands that write or change files on the server.
fn writing_commands(server: &ScriptedServer) -> Vec<String> {
    server
        .commands()
        .into_iter()
        .filter(|command| {
            let verb = command.split(' ').next().unwrap_or_default();
            matches!(
                verb.to_ascii_uppercase().as_str(),
                "STOR" | "APPE" | "DELE" | "RNFR" | "RNTO" | "MKD" | "RETR"
            )
        })
        .collect()
}

/// Creates local paths that are not readable disk images, with the reason part each error must contain.
fn bad_local_files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let fifo = dir.join("fifo.img");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", fifo.display());

    let loop_a = dir.join("loop-a.img");
    let loop_b = dir.join("loop-b.img");
    std::os::unix::fs::symlink(&loop_b, &loop_a).expect("symlink a");
    std::os::unix::fs::symlink(&loop_a, &loop_b).expect("symlink b");

    let folder = dir.join("folder.img");
    std::fs::create_dir(&folder).expect("create folder");

    vec![
        (dir.join("missing.img"), "No such file"),
        (folder, "not a regular file"),
        (PathBuf::from("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
        (loop_a, "symbolic links"),
        (dir.join("n".repeat(300)), "too long"),
        (
            dir.join(OsStr::from_bytes(b"disk-\xff\xfe.img")),
            "No such file",
        ),
    ]
}

#[tokio::test]
async fn upload_rejects_bad_local_files() {
    let server = ScriptedServer::start(Script::default()).await;
    let mut client = connect(&server).await;
    let scratch = tempfile::tempdir().expect("scratch folder");

    for (local, reason_part) in bad_local_files(scratch.path()) {
        for gzip in [false, true] {
            let options = UploadOptions::new().retries(2).gzip(gzip);
            let upload = client.upload_file_with(&local, "incoming", "disk.img", &options);
            let error = tokio::time::timeout(Duration::from_secs(10), upload)
                .await
                .unwrap_or_else(|_| panic!("{}: upload hangs", local.display()))
                .expect_err("not a readable file");

            let FtpError::Io { path, source } = &error else {
                panic!("{}: expected Io, got {error:?}", local.display());
            };
            assert_eq!(path, &local);
            assert!(
                source.to_string().contains(reason_part),
                "{}: {source}",
                local.display()
            );
            assert!(
                error.to_string().contains(&local.display().to_string()),
                "path named: {error}"
            );
            assert!(!error.is_retryable(), "{error}");
        }
    }

    assert_eq!(writing_commands(&server), Vec::<String>::new());
    assert!(server.file_names().is_empty(), "{:?}", server.file_names());
}

#[tokio::test]
async fn upload_of_unreadable_file() {
    use std::os::unix::fs::PermissionsExt;

    let server = ScriptedServer::start(Script::default()).await;
    let mut client = connect(&server).await;
    let scratch = tempfile::tempdir().expect("scratch folder");
    let local = scratch.path().join("locked.img");
    std::fs::write(&local, vec![7_u8; 4096]).expect("write image");
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");

    // Root reads files whatever their mode, so the expectation depends on who runs the test.
    let readable = std::fs::read(&local).is_ok();
    let result = client
        .upload_file(&local, "incoming", "locked.img", None)
        .await;

    if readable {
        let upload = result.expect("root reads a mode-000 file");
        assert_eq!(upload.bytes, 4096);
        assert_eq!(server.file_names(), vec!["incoming/locked.img".to_owned()]);
    } else {
        let error = result.expect_err("mode 000 blocks reading");
        assert!(
            matches!(&error, FtpError::Io { path, source } if path == &local && source.kind() == std::io::ErrorKind::PermissionDenied),
            "{error:?}"
        );
        assert_eq!(writing_commands(&server), Vec::<String>::new());
    }
}

#[tokio::test]
async fn upload_rejects_bad_remote_names() {
    let server = ScriptedServer::start(Script::default()).await;
    let mut client = connect(&server).await;
    let too_long = "a".repeat(300);

    let names: Vec<(&str, &str)> = vec![
        ("", "empty"),
        ("incoming/disk.img", "`/`"),
        ("..\\disk.img", "`..`"),
        ("disk\\img", "'\\\\'"),
        ("..", "`..`"),
        (".", "`.`"),
        ("disk\0.img", "control character"),
        ("disk\r\nDELE x", "control character"),
        ("disk\u{7f}.img", "control character"),
        ("dïsk.img", "'ï'"),
        ("диск.img", "'д'"),
        (&too_long, "300 bytes"),
    ];
    for (name, reason_part) in names {
        let error = client
            .upload_reader(&b"raw disk"[..], "incoming", name, &UploadOptions::new())
            .await
            .expect_err(&format!("{name:?} is rejected"));
        let FtpError::InvalidRemoteName {
            name: reported,
            reason,
        } = &error
        else {
            panic!("{name:?}: expected InvalidRemoteName, got {error:?}");
        };
        assert_eq!(reported, name);
        assert!(reason.contains(reason_part), "{name:?}: {reason}");
        assert!(
            reason.contains("-_+.~^") || reason.contains("at most"),
            "fix named: {reason}"
        );
    }

    for dir in ["incoming\r\nDELE x", "incoming\0", "in\tcoming"] {
        let error = client
            .upload_reader(&b"raw disk"[..], dir, "disk.img", &UploadOptions::new())
            .await
            .expect_err("control character in the folder");
        let FtpError::InvalidRemotePath { path, reason } = &error else {
            panic!("{dir:?}: expected InvalidRemotePath, got {error:?}");
        };
        assert_eq!(path, dir);
        assert!(reason.contains("remove it"), "{reason}");
    }

    assert_eq!(writing_commands(&server), Vec::<String>::new());
    assert!(server.file_names().is_empty());
}

#[tokio::test]
async fn remote_commands_reject_control_characters() {
    let server = ScriptedServer::start(Script::default()).await;
    server.put_file("incoming/disk.img", vec![1_u8; 16]);
    let mut client = connect(&server).await;

    for path in [
        "incoming/disk.img\r\nDELE incoming/disk.img",
        "incoming/\0disk.img",
    ] {
        let results: Vec<(&str, Result<(), FtpError>)> = vec![
            ("size", client.size(path).await.map(|_| ())),
            ("list", client.list(path).await.map(|_| ())),
            ("list_names", client.list_names(path).await.map(|_| ())),
            ("modified", client.modified(path).await.map(|_| ())),
            ("delete", client.delete(path).await),
            ("mkdir", client.mkdir(path).await),
            ("rename from", client.rename(path, "incoming/b.img").await),
            ("rename to", client.rename("incoming/disk.img", path).await),
        ];
        for (operation, result) in results {
            let error = result.expect_err(operation);
            assert!(
                matches!(&error, FtpError::InvalidRemotePath { path: reported, .. } if reported == path),
                "{operation} {path:?}: {error:?}"
            );
        }
    }

    assert_eq!(writing_commands(&server), Vec::<String>::new());
    assert_eq!(server.file("incoming/disk.img"), Some(vec![1_u8; 16]));
}

#[tokio::test]
async fn download_rejects_bad_arguments() {
    let server = ScriptedServer::start(Script::default()).await;
    server.put_file("images/img-abc12", vec![5_u8; 4096]);
    let mut client = connect(&server).await;
    let scratch = tempfile::tempdir().expect("scratch folder");
    let existing_folder = scratch.path().join("existing");
    std::fs::create_dir(&existing_folder).expect("create folder");

    // Local paths with no file name, or naming a folder.
    let local_cases = [
        (PathBuf::from("/"), "no file name"),
        (scratch.path().join(".."), "no file name"),
        (existing_folder.clone(), "is a folder"),
    ];
    for (local, reason_part) in &local_cases {
        let error = client
            .download_file("images/img-abc12", local, &DownloadOptions::new())
            .await
            .expect_err("unusable local path");
        let FtpError::InvalidOption { value, reason, .. } = &error else {
            panic!("{}: expected InvalidOption, got {error:?}", local.display());
        };
        assert_eq!(value, &local.display().to_string());
        assert!(reason.contains(reason_part), "{reason}");
    }
    assert!(
        std::fs::read_dir(&existing_folder)
            .expect("read folder")
            .next()
            .is_none(),
        "the folder stays empty"
    );

    for segments in [0, MAX_SEGMENTS + 1, usize::MAX] {
        let error = client
            .download_file(
                "images/img-abc12",
                &scratch.path().join("copy.img"),
                &DownloadOptions::new().segments(segments),
            )
            .await
            .expect_err("segments out of range");
        let FtpError::InvalidOption {
            name,
            value,
            reason,
        } = &error
        else {
            panic!("{segments}: expected InvalidOption, got {error:?}");
        };
        assert_eq!(name, "DownloadOptions::segments");
        assert_eq!(value, &segments.to_string());
        assert!(reason.contains(&format!("1 to {MAX_SEGMENTS}")), "{reason}");
    }

    for remote in [
        "",
        "   ",
        "images/",
        "images/img-abc12\r\nDELE x",
        "images/\0",
    ] {
        let local = scratch.path().join("copy.img");
        let file_error = client
            .download_file(remote, &local, &DownloadOptions::new())
            .await
            .expect_err("bad remote path");
        let writer_error = client
            .download_to(remote, Vec::new(), &DownloadOptions::new())
            .await
            .expect_err("bad remote path");
        for error in [file_error, writer_error] {
            assert!(
                matches!(&error, FtpError::InvalidRemotePath { path, .. } if path == remote),
                "{remote:?}: {error:?}"
            );
        }
    }

    assert_eq!(writing_commands(&server), Vec::<String>::new());
    assert!(!scratch.path().join("copy.img").exists());
}

#[tokio::test]
async fn download_of_missing_remote_file() {
    let server = ScriptedServer::start(Script::default()).await;
    let mut client = connect(&server).await;
    let scratch = tempfile::tempdir().expect("scratch folder");
    let local = scratch.path().join("copy.img");

    let error = client
        .download_file("images/img-nope1", &local, &DownloadOptions::new())
        .await
        .expect_err("no such remote file");

    let FtpError::NotFound { remote_path, .. } = &error else {
        panic!("expected NotFound, got {error:?}");
    };
    assert_eq!(remote_path, "images/img-nope1");
    assert!(error.to_string().contains("images/img-nope1"), "{error}");
    assert!(!local.exists());
}

#[tokio::test]
async fn download_into_missing_folder() {
    let server = ScriptedServer::start(Script::default()).await;
    server.put_file("images/img-abc12", vec![5_u8; 4096]);
    let mut client = connect(&server).await;
    let scratch = tempfile::tempdir().expect("scratch folder");
    let local = scratch.path().join("no-such-folder").join("copy.img");

    let error = client
        .download_file("images/img-abc12", &local, &DownloadOptions::new())
        .await
        .expect_err("the folder does not exist");

    let FtpError::Io { path, source } = &error else {
        panic!("expected Io, got {error:?}");
    };
    assert!(
        path.starts_with(scratch.path().join("no-such-folder")),
        "{}",
        path.display()
    );
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
}

/// Listens on 127.0.0.1 and reports whether any client connected within a short time.
async fn nothing_connects(listener: &tokio::net::TcpListener) -> bool {
    tokio::time::timeout(Duration::from_millis(200), listener.accept())
        .await
        .is_err()
}

#[tokio::test]
async fn credentials_with_line_breaks_send_nothing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();

    let cases = [
        (
            "acc-12345\r\nDELE incoming/other.img",
            "secret".to_owned(),
            "user",
        ),
        ("acc-12345\0", "secret".to_owned(), "user"),
        (
            "acc-12345",
            format!("{LEAK_MARKER}\r\nDELE incoming/other.img"),
            "password",
        ),
        ("acc-12345", format!("{LEAK_MARKER}\n"), "password"),
        ("acc-12345", format!("{LEAK_MARKER}\0"), "password"),
    ];
    for (user, password, field) in cases {
        let config = FtpsConfig::new("127.0.0.1", user, password).port(port);
        let error = FtpsClient::connect(&config)
            .await
            .expect_err("line break in the credentials");

        let FtpError::InvalidOption { name, reason, .. } = &error else {
            panic!("{user:?}: expected InvalidOption, got {error:?}");
        };
        assert!(name.contains(field), "{name}");
        assert!(reason.contains("line break"), "{reason}");
        let text = format!("{error} {error:?}");
        assert!(!text.contains(LEAK_MARKER), "{text}");
        assert!(!error.is_retryable());
        assert!(
            nothing_connects(&listener).await,
            "{field}: a connection was opened"
        );
    }
}

#[tokio::test]
async fn connect_rejects_bad_hosts() {
    let long_host = format!("{}.example.com", "a".repeat(300));
    let hosts = [
        ("", "empty"),
        ("   ", "' '"),
        ("exa mple.com", "' '"),
        ("ftp://ftp.example.com", "scheme"),
        ("ftp.example.com\r\n", "'\\r'"),
        ("ftp.example.com\0", "'\\0'"),
        ("ftp.exämple.com", "'ä'"),
        ("ftp/example", "'/'"),
        ("ftp\\example", "'\\\\'"),
        ("..", "empty label"),
        (long_host.as_str(), "253"),
        ("user:pw@ftp.example.com", "':'"),
    ];
    for (host, reason_part) in hosts {
        let config = FtpsConfig::new(host, "acc-12345", LEAK_MARKER);
        let error = tokio::time::timeout(Duration::from_secs(5), FtpsClient::connect(&config))
            .await
            .unwrap_or_else(|_| panic!("{host:?}: connect hangs"))
            .expect_err("invalid host");
        let FtpError::InvalidHost { value, reason } = &error else {
            panic!("{host:?}: expected InvalidHost, got {error:?}");
        };
        assert_eq!(value, host);
        assert!(reason.contains(reason_part), "{host:?}: {reason}");
        assert!(error.to_string().contains(&format!("{host:?}")), "{error}");
        assert!(!format!("{error:?}").contains(LEAK_MARKER));
    }
}

#[test]
fn root_certificate_pem_table() {
    let cases: [&[u8]; 5] = [
        b"",
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"\xff\xfe\x00binary",
    ];
    for pem in cases {
        let error = FtpsConfig::new("127.0.0.1", "u", "p")
            .add_root_certificate_pem(pem)
            .expect_err("no usable certificate");
        assert!(
            matches!(error, FtpError::InvalidCertificatePem { .. }),
            "{:?}: {error:?}",
            String::from_utf8_lossy(pem)
        );
        assert!(error.to_string().contains("PEM"), "{error}");
    }
}
