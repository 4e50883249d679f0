//! Fault tests: a scripted FTPS server and a TCP fault proxy produce the passive-mode, stall,
//! reset and size faults that real servers do not produce on demand.

mod common;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use brightbox_ftp::{DownloadOptions, EntryKind, FtpError, FtpsClient, FtpsConfig, UploadOptions};
use common::{TestServer, random_file, sha256_file, sha256_hex};
use support::proxy::{FaultProxy, Faults};
use support::scripted::{self, DataBehaviour, Script, ScriptedServer, SizeReply};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Returns settings for `server` with short time limits.
fn config_for(server: &ScriptedServer, port: u16) -> FtpsConfig {
    FtpsConfig::new("127.0.0.1", scripted::USER, scripted::PASSWORD)
        .port(port)
        .use_system_roots(false)
        .add_root_certificate_pem(server.ca_pem.as_bytes())
        .expect("test CA PEM is valid")
        .connect_timeout(CONNECT_TIMEOUT)
        .io_timeout(IO_TIMEOUT)
}

fn config(server: &ScriptedServer) -> FtpsConfig {
    config_for(server, server.address.port())
}

/// Asserts that no file is stored under `name` and that no rename reached the server.
fn assert_nothing_renamed(server: &ScriptedServer, name: &str) {
    assert!(
        !server.file_names().iter().any(|stored| stored == name),
        "{name} exists after a failed upload: {:?}",
        server.file_names()
    );
    let renames = server
        .commands()
        .into_iter()
        .filter(|command| command.starts_with("RNTO"))
        .collect::<Vec<_>>();
    assert!(renames.is_empty(), "rename sent: {renames:?}");
}

#[tokio::test]
async fn passive_zero_address_uses_control_peer() {
    let server = ScriptedServer::start(Script {
        pasv_host: [0, 0, 0, 0],
        ..Script::default()
    })
    .await;
    server.put_file("incoming/a.img", vec![1; 10]);
    server.put_file("incoming/b.img", vec![2; 20]);

    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");
    let started = Instant::now();
    let names = client.list_names("incoming").await.expect("list");
    let elapsed = started.elapsed();
    client.quit().await.expect("quit");

    assert_eq!(names, ["a.img", "b.img"]);
    assert!(elapsed < Duration::from_secs(2), "listing took {elapsed:?}");
    assert!(
        server.commands().iter().any(|command| command == "PASV"),
        "{:?}",
        server.commands()
    );
}

#[tokio::test]
async fn silent_passive_port_fails_within_connect_timeout() {
    let server = ScriptedServer::start(Script {
        data: DataBehaviour::NeverAccept,
        ..Script::default()
    })
    .await;
    let config = config(&server).io_timeout(Duration::from_secs(20));
    let mut client = FtpsClient::connect(&config).await.expect("connect");

    let started = Instant::now();
    let error = client
        .list_names("incoming")
        .await
        .expect_err("the data connection cannot open");
    let elapsed = started.elapsed();

    assert!(
        elapsed >= CONNECT_TIMEOUT,
        "failed after {elapsed:?}, before the connect timeout: {error}"
    );
    assert!(
        elapsed < CONNECT_TIMEOUT + Duration::from_secs(3),
        "failed after {elapsed:?}, not within the connect timeout: {error}"
    );
    assert!(
        matches!(error, FtpError::Network { .. } | FtpError::Timeout { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable(), "{error:?}");
}

#[tokio::test]
async fn listing_stalled_after_one_mebibyte_times_out() {
    let server = ScriptedServer::start(Script {
        data: DataBehaviour::SendThenStall(1024 * 1024),
        ..Script::default()
    })
    .await;
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let started = Instant::now();
    let error = client
        .list_names("incoming")
        .await
        .expect_err("the listing never ends");
    let elapsed = started.elapsed();

    assert!(matches!(error, FtpError::Timeout { .. }), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(elapsed >= IO_TIMEOUT, "failed after {elapsed:?}: {error}");
    assert!(
        elapsed < IO_TIMEOUT + Duration::from_secs(3),
        "failed after {elapsed:?}: {error}"
    );

    // The session either still responds or is closed, but QUIT must return.
    let quit = tokio::time::timeout(Duration::from_secs(15), client.quit()).await;
    assert!(quit.is_ok(), "QUIT after the stall did not return");
}

#[tokio::test]
async fn upload_stalled_by_server_times_out() {
    let server = ScriptedServer::start(Script {
        data: DataBehaviour::ReadThenStall(1024 * 1024),
        ..Script::default()
    })
    .await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, _) = random_file(local_dir.path(), "disk.img", 16 * 1024 * 1024);
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let started = Instant::now();
    let error = client
        .upload_file(&local, "incoming", "disk.img", None)
        .await
        .expect_err("the server stops reading");
    let elapsed = started.elapsed();

    assert!(matches!(error, FtpError::Timeout { .. }), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(
        elapsed < Duration::from_secs(20),
        "failed after {elapsed:?}: {error}"
    );
    assert_nothing_renamed(&server, "incoming/disk.img");
}

#[tokio::test]
async fn control_reset_during_upload_confirmed() {
    let server = ScriptedServer::start(Script::default()).await;
    let proxy = FaultProxy::start(server.address, Faults::default()).await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", 8 * 1024 * 1024);
    let config = config_for(&server, proxy.address.port());
    let mut client = FtpsClient::connect(&config).await.expect("connect");

    let reset_sent = AtomicBool::new(false);
    let reset_midway = |sent: u64| {
        if sent >= 2 * 1024 * 1024 && !reset_sent.swap(true, Ordering::SeqCst) {
            proxy.reset_now();
        }
    };
    let result = client
        .upload_file(&local, "incoming", "disk.img", Some(&reset_midway))
        .await;

    assert!(
        reset_sent.load(Ordering::SeqCst),
        "progress never reached 2 MiB"
    );
    // The data connection does not pass the proxy, so every byte arrives; the client cannot
    // read the 226, reconnects and finds the full size.
    let upload = result.expect("the upload is confirmed by the stored size");
    assert_eq!(upload.sha256, local_sha);
    assert_eq!(proxy.resets(), 1);
    assert_eq!(proxy.accepted(), 2, "one reconnect");
    let stored = server.file("incoming/disk.img").expect("stored file");
    assert_eq!(sha256_hex(&stored), local_sha);
}

#[tokio::test]
async fn size_mismatch_fails_without_rename() {
    let server = ScriptedServer::start(Script {
        size: SizeReply::Offset(-1),
        ..Script::default()
    })
    .await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let length = 1024 * 1024;
    let (local, _) = random_file(local_dir.path(), "disk.img", length);
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let error = client
        .upload_file(&local, "incoming", "disk.img", None)
        .await
        .expect_err("the server reports one byte less");

    match &error {
        FtpError::IncompleteTransfer { sent, stored, .. } => {
            assert_eq!(*sent, length as u64);
            assert_eq!(*stored, length as u64 - 1);
        }
        other => panic!("expected IncompleteTransfer, got {other:?}"),
    }
    assert_nothing_renamed(&server, "incoming/disk.img");
    assert!(
        server
            .commands()
            .iter()
            .any(|command| command == "DELE incoming/.disk.img.part"),
        "partial file not deleted: {:?}",
        server.commands()
    );
    assert!(server.file_names().is_empty(), "{:?}", server.file_names());
}

#[tokio::test]
async fn data_reset_midway_fails_upload() {
    let server = ScriptedServer::start(Script::default()).await;
    let data_proxy = FaultProxy::start(
        server.data_address(),
        Faults {
            reset_after_upstream: Some(1024 * 1024),
            ..Faults::default()
        },
    )
    .await;
    server.set_advertised_data_port(data_proxy.address.port());
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, _) = random_file(local_dir.path(), "disk.img", 4 * 1024 * 1024);
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let error = client
        .upload_file(&local, "incoming", "disk.img", None)
        .await
        .expect_err("the data connection was reset");

    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(data_proxy.resets(), 1);
    assert_nothing_renamed(&server, "incoming/disk.img");
}

#[tokio::test]
async fn throttled_data_path_completes_upload() {
    let server = ScriptedServer::start(Script::default()).await;
    let data_proxy = FaultProxy::start(
        server.data_address(),
        Faults {
            throttle_bytes_per_second: Some(2_000_000),
            ..Faults::default()
        },
    )
    .await;
    server.set_advertised_data_port(data_proxy.address.port());
    let local_dir = tempfile::tempdir().expect("local dir");
    let length = 1024 * 1024;
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", length);
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let started = Instant::now();
    let upload = client
        .upload_file(&local, "incoming", "disk.img", None)
        .await
        .expect("upload through the throttled proxy");
    let elapsed = started.elapsed();
    client.quit().await.expect("quit");

    assert_eq!(upload.bytes, length as u64);
    // 1 MiB at 2 MB/s takes about 0.52 s plus TLS overhead.
    assert!(
        elapsed >= Duration::from_millis(450),
        "upload took {elapsed:?}, the throttle did not apply"
    );
    assert!(data_proxy.upstream_bytes() >= length as u64);
    let stored = server.file("incoming/disk.img").expect("stored file");
    assert_eq!(sha256_hex(&stored), local_sha);
}

#[tokio::test]
async fn idle_control_reset_fails_next_command() {
    let server = ScriptedServer::start(Script::default()).await;
    let proxy = FaultProxy::start(
        server.address,
        Faults {
            idle_reset: Some(Duration::from_millis(300)),
            ..Faults::default()
        },
    )
    .await;
    let config = config_for(&server, proxy.address.port());
    let mut client = FtpsClient::connect(&config).await.expect("connect");

    tokio::time::sleep(Duration::from_millis(900)).await;
    let started = Instant::now();
    let error = client
        .list_names("incoming")
        .await
        .expect_err("the proxy reset the idle control connection");
    let elapsed = started.elapsed();

    assert_eq!(proxy.resets(), 1);
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        elapsed < IO_TIMEOUT,
        "the reset took {elapsed:?} to surface: {error}"
    );
}

#[tokio::test]
async fn control_proxy_passes_libunftp_upload() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(server.address, Faults::default()).await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", 2 * 1024 * 1024);
    let config = server.config().port(proxy.address.port());

    let mut client = FtpsClient::connect(&config).await.expect("connect");
    let upload = client
        .upload_file(&local, "incoming", "disk.img", None)
        .await
        .expect("upload through the control proxy");
    client.quit().await.expect("quit");

    assert_eq!(upload.remote_path, "incoming/disk.img");
    assert_eq!(sha256_file(&server.path("incoming/disk.img")), local_sha);
    assert_eq!(proxy.accepted(), 1);
    assert_eq!(proxy.resets(), 0);
}

#[tokio::test]
async fn download_stalled_after_one_mebibyte_times_out() {
    let server = ScriptedServer::start(Script {
        data: DataBehaviour::SendThenStall(1024 * 1024),
        ..Script::default()
    })
    .await;
    server.put_file("images/disk.img", vec![7; 4 * 1024 * 1024]);
    let local_dir = tempfile::tempdir().expect("local dir");
    let local = local_dir.path().join("disk.img");
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let started = Instant::now();
    let error = client
        .download_file("images/disk.img", &local, &DownloadOptions::default())
        .await
        .expect_err("the server stops sending");
    let elapsed = started.elapsed();

    assert!(matches!(error, FtpError::Timeout { .. }), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(
        elapsed < IO_TIMEOUT + Duration::from_secs(3),
        "failed after {elapsed:?}: {error}"
    );
    assert!(
        !local.exists(),
        "a stalled download left {}",
        local.display()
    );
}

#[tokio::test]
async fn upload_resumes_after_data_reset() {
    for (features, resume_command) in [
        (vec!["SIZE", "REST STREAM"], "REST "),
        (vec!["SIZE"], "APPE "),
    ] {
        let server = ScriptedServer::start(Script {
            features: features
                .iter()
                .map(|feature| (*feature).to_owned())
                .collect(),
            ..Script::default()
        })
        .await;
        let data_proxy = FaultProxy::start(
            server.data_address(),
            Faults {
                reset_after_upstream: Some(1024 * 1024),
                ..Faults::default()
            },
        )
        .await;
        server.set_advertised_data_port(data_proxy.address.port());
        let local_dir = tempfile::tempdir().expect("local dir");
        let length = 3 * 1024 * 1024;
        let (local, local_sha) = random_file(local_dir.path(), "disk.img", length);
        let mut client = FtpsClient::connect(&config(&server))
            .await
            .expect("connect");

        let keep = UploadOptions::default().keep_partial_on_error(true);
        let error = client
            .upload_file_with(&local, "incoming", "disk.img", &keep)
            .await
            .expect_err("the data connection was reset");
        assert!(error.is_retryable(), "{error:?}");
        let partial = server
            .file("incoming/.disk.img.part")
            .expect("the partial file was kept");
        assert!(
            !partial.is_empty() && partial.len() < length,
            "{}",
            partial.len()
        );

        // Later attempts go straight to the data listener and are not reset.
        server.update(|script| script.advertised_data_port = None);
        let mut client = FtpsClient::connect(&config(&server))
            .await
            .expect("reconnect");
        let upload = client
            .upload_file_with(
                &local,
                "incoming",
                "disk.img",
                &UploadOptions::default().resume(true),
            )
            .await
            .expect("resumed upload");
        client.quit().await.expect("quit");

        assert_eq!(upload.resumed_from, partial.len() as u64, "{features:?}");
        assert_eq!(upload.sha256, local_sha, "{features:?}");
        let stored = server.file("incoming/disk.img").expect("stored file");
        assert_eq!(sha256_hex(&stored), local_sha, "{features:?}");
        assert!(
            server
                .commands()
                .iter()
                .any(|command| command.starts_with(resume_command)),
            "no {resume_command:?} with {features:?}: {:?}",
            server.commands()
        );
    }
}

#[tokio::test]
async fn upload_retries_after_repeated_resets() {
    let server = ScriptedServer::start(Script::default()).await;
    let data_proxy = FaultProxy::start(
        server.data_address(),
        Faults {
            reset_after_upstream: Some(1024 * 1024),
            ..Faults::default()
        },
    )
    .await;
    server.set_advertised_data_port(data_proxy.address.port());
    let local_dir = tempfile::tempdir().expect("local dir");
    let length = 2 * 1024 * 1024 + 4096;
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", length);
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let upload = client
        .upload_file_with(
            &local,
            "incoming",
            "disk.img",
            &UploadOptions::default().retries(5),
        )
        .await
        .expect("each attempt sends up to 1 MiB more, so retries finish the upload");

    assert!(data_proxy.resets() >= 2, "resets: {}", data_proxy.resets());
    assert!(upload.resumed_from > 0, "{upload:?}");
    assert_eq!(upload.sha256, local_sha);
    let stored = server.file("incoming/disk.img").expect("stored file");
    assert_eq!(sha256_hex(&stored), local_sha);
}

#[tokio::test]
async fn download_resumes_after_data_reset() {
    let server = ScriptedServer::start(Script::default()).await;
    let content = (0..4 * 1024 * 1024_u32)
        .map(|index| (index % 251) as u8)
        .collect::<Vec<_>>();
    let content_sha = sha256_hex(&content);
    server.put_file("images/disk.img", content.clone());
    let data_proxy = FaultProxy::start(
        server.data_address(),
        // The client stores downloads in 1 MiB blocks, so a reset after 2.5 MiB leaves at least
        // one whole block. The throttle lets the client read what arrives before the reset, which
        // discards data still in the client's socket buffer.
        Faults {
            reset_after_downstream: Some(5 * 512 * 1024),
            throttle_bytes_per_second: Some(8_000_000),
            ..Faults::default()
        },
    )
    .await;
    server.set_advertised_data_port(data_proxy.address.port());
    let local_dir = tempfile::tempdir().expect("local dir");
    let local = local_dir.path().join("disk.img");
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let error = client
        .download_file("images/disk.img", &local, &DownloadOptions::default())
        .await
        .expect_err("the data connection was reset");
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        !local.exists(),
        "a failed download left {}",
        local.display()
    );

    server.update(|script| script.advertised_data_port = None);
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("reconnect");
    let download = client
        .download_file(
            "images/disk.img",
            &local,
            &DownloadOptions::default().resume(true),
        )
        .await
        .expect("resumed download");
    client.quit().await.expect("quit");

    assert!(download.resumed_from > 0, "{download:?}");
    assert_eq!(download.bytes, content.len() as u64);
    assert_eq!(download.sha256, content_sha);
    assert_eq!(sha256_file(&local), content_sha);
    assert!(
        server
            .commands()
            .iter()
            .any(|command| command.starts_with("REST ")),
        "{:?}",
        server.commands()
    );
}

#[tokio::test]
async fn download_keeps_partial_block_after_reset() {
    let server = ScriptedServer::start(Script::default()).await;
    let content = (0..4 * 1024 * 1024_u32)
        .map(|index| (index % 251) as u8)
        .collect::<Vec<_>>();
    let content_sha = sha256_hex(&content);
    server.put_file("images/disk.img", content.clone());
    let data_proxy = FaultProxy::start(
        server.data_address(),
        // A reset inside the first 1 MiB block: the bytes read before it must still reach the
        // partial file, so the resume starts after them and not from zero.
        Faults {
            reset_after_downstream: Some(600 * 1024),
            throttle_bytes_per_second: Some(8_000_000),
            ..Faults::default()
        },
    )
    .await;
    server.set_advertised_data_port(data_proxy.address.port());
    let local_dir = tempfile::tempdir().expect("local dir");
    let local = local_dir.path().join("disk.img");
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let error = client
        .download_file("images/disk.img", &local, &DownloadOptions::default())
        .await
        .expect_err("the data connection was reset");
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        !local.exists(),
        "a failed download left {}",
        local.display()
    );

    server.update(|script| script.advertised_data_port = None);
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("reconnect");
    let download = client
        .download_file(
            "images/disk.img",
            &local,
            &DownloadOptions::default().resume(true),
        )
        .await
        .expect("resumed download");
    client.quit().await.expect("quit");

    assert!(download.resumed_from > 0, "{download:?}");
    assert_eq!(download.bytes, content.len() as u64);
    assert_eq!(download.sha256, content_sha);
    assert_eq!(sha256_file(&local), content_sha);
    assert!(
        server
            .commands()
            .iter()
            .any(|command| command.starts_with("REST ")),
        "{:?}",
        server.commands()
    );
}

/// Starts a scripted server behind a control proxy that resets flows idle for `idle` and a data
/// proxy throttled to 1 MB/s, and returns settings that connect through the control proxy.
async fn idle_control_rig(
    script: Script,
    idle: Duration,
) -> (ScriptedServer, FaultProxy, FaultProxy, FtpsConfig) {
    let server = ScriptedServer::start(script).await;
    let control_proxy = FaultProxy::start(
        server.address,
        Faults {
            idle_reset: Some(idle),
            ..Faults::default()
        },
    )
    .await;
    let data_proxy = FaultProxy::start(
        server.data_address(),
        Faults {
            throttle_bytes_per_second: Some(1_000_000),
            ..Faults::default()
        },
    )
    .await;
    server.set_advertised_data_port(data_proxy.address.port());
    let config = config_for(&server, control_proxy.address.port());
    (server, control_proxy, data_proxy, config)
}

#[tokio::test]
async fn idle_control_reset_upload_confirmed_by_size() {
    let (server, control_proxy, data_proxy, config) =
        idle_control_rig(Script::default(), Duration::from_millis(700)).await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let length = 2 * 1024 * 1024;
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", length);
    let mut client = FtpsClient::connect(&config).await.expect("connect");

    // The control connection carries nothing for about 2 s while the data flows, so the proxy
    // resets it. The client cannot read the 226, reconnects and checks the stored size.
    let upload = tokio::time::timeout(
        Duration::from_secs(30),
        client.upload_file_with(&local, "incoming", "disk.img", &UploadOptions::new()),
    )
    .await
    .expect("the upload returned within 30 s")
    .expect("the upload is confirmed by the stored size");
    client.quit().await.expect("quit on the new session");

    assert_eq!(upload.sha256, local_sha);
    assert_eq!(upload.bytes, length as u64);
    assert!(control_proxy.resets() >= 1, "the proxy never reset");
    assert_eq!(data_proxy.resets(), 0);
    assert!(
        control_proxy.accepted() >= 2,
        "the client did not reconnect"
    );
    let stored = server.file("incoming/disk.img").expect("stored file");
    assert_eq!(sha256_hex(&stored), local_sha);
    let commands = server.commands();
    let logins = commands
        .iter()
        .filter(|command| *command == "PASS [hidden]");
    assert_eq!(logins.count(), 2, "{commands:?}");
    let stor_position = commands
        .iter()
        .position(|command| command == "STOR incoming/.disk.img.part")
        .expect("STOR sent");
    assert!(
        commands
            .iter()
            .skip(stor_position)
            .any(|command| command == "SIZE incoming/.disk.img.part"),
        "{commands:?}"
    );
}

#[tokio::test]
async fn idle_control_reset_download_completes() {
    // The server sends the 226 only 3 s after the last byte, so the proxy resets the idle
    // control connection first.
    let script = Script {
        final_reply_delay: Duration::from_secs(3),
        ..Script::default()
    };
    let (server, control_proxy, _data_proxy, config) =
        idle_control_rig(script, Duration::from_millis(700)).await;
    let length = 2 * 1024 * 1024;
    let seed_dir = tempfile::tempdir().expect("seed dir");
    let (seed, seed_sha) = random_file(seed_dir.path(), "seed.img", length);
    server.put_file(
        "incoming/disk.img",
        std::fs::read(&seed).expect("read seed"),
    );
    let local_dir = tempfile::tempdir().expect("local dir");
    let local = local_dir.path().join("disk.img");
    let mut client = FtpsClient::connect(&config).await.expect("connect");

    // Every byte arrives but the 226 does not, and no retry is allowed.
    let download = tokio::time::timeout(
        Duration::from_secs(30),
        client.download_file("incoming/disk.img", &local, &DownloadOptions::new()),
    )
    .await
    .expect("the download returned within 30 s")
    .expect("every byte arrived, so the download counts as complete");
    client.quit().await.expect("quit on the new session");

    assert!(control_proxy.resets() >= 1, "the proxy never reset");
    assert!(
        control_proxy.accepted() >= 2,
        "the client did not reconnect"
    );
    assert_eq!(download.bytes, length as u64);
    assert_eq!(download.sha256, seed_sha);
    assert_eq!(sha256_file(&local), seed_sha);
}

#[tokio::test]
async fn idle_control_reset_short_file_fails() {
    let script = Script {
        size: SizeReply::Offset(-1),
        ..Script::default()
    };
    let (server, control_proxy, _data_proxy, config) =
        idle_control_rig(script, Duration::from_millis(500)).await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let length = 1024 * 1024;
    let (local, _) = random_file(local_dir.path(), "disk.img", length);
    let mut client = FtpsClient::connect(&config).await.expect("connect");

    let error = tokio::time::timeout(
        Duration::from_secs(30),
        client.upload_file_with(&local, "incoming", "disk.img", &UploadOptions::new()),
    )
    .await
    .expect("the upload returned within 30 s")
    .expect_err("the server reports one byte less than was sent");

    assert!(control_proxy.resets() >= 1, "the proxy never reset");
    match &error {
        FtpError::IncompleteTransfer {
            remote_path,
            sent,
            stored,
            ..
        } => {
            assert_eq!(remote_path, "incoming/.disk.img.part");
            assert_eq!(*sent, length as u64);
            assert_eq!(*stored, length as u64 - 1);
        }
        other => panic!("expected IncompleteTransfer, got {other:?}"),
    }
    assert!(error.is_retryable(), "{error:?}");
    assert_nothing_renamed(&server, "incoming/disk.img");
    assert!(
        !server
            .file_names()
            .contains(&"incoming/.disk.img.part".to_owned()),
        "the partial file was not deleted: {:?}",
        server.file_names()
    );
}

#[tokio::test]
async fn idle_control_reset_short_file_resumes() {
    // The four size checks after the lost control connection and the first SIZE of the retry
    // report one byte less than stored, so the upload counts as incomplete and the retry
    // resumes with the last byte.
    let script = Script {
        size: SizeReply::OffsetFirst {
            offset: -1,
            replies: 5,
        },
        ..Script::default()
    };
    let (server, control_proxy, _data_proxy, config) =
        idle_control_rig(script, Duration::from_millis(500)).await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let length = 1024 * 1024;
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", length);
    let mut client = FtpsClient::connect(&config).await.expect("connect");
    let options = UploadOptions::new().retries(2);

    let upload = tokio::time::timeout(
        Duration::from_secs(30),
        client.upload_file_with(&local, "incoming", "disk.img", &options),
    )
    .await
    .expect("the upload returned within 30 s")
    .expect("the retry completes the upload");

    assert!(control_proxy.resets() >= 1, "the proxy never reset");
    assert_eq!(upload.sha256, local_sha);
    assert_eq!(upload.resumed_from, length as u64 - 1);
    let stored = server.file("incoming/disk.img").expect("stored file");
    assert_eq!(sha256_hex(&stored), local_sha);
    let commands = server.commands();
    let rest = format!("REST {}", length - 1);
    assert!(commands.contains(&rest), "{commands:?}");
}

/// `LIST` lines in the forms servers send, each with the entry it must produce.
const LIST_LINES: &[u8] = b"total 12\r\n\
-rw-r--r--    1 ftp      ftp      4400000000 Mar 05  2024 big.img\r\n\
-rw-r--r--    1 ftp      ftp            42 Mar 03  2024 2024 backup copy.img\r\n\
drwxr-xr-x    2 ftp      ftp          4096 Mar 03  2024 subdir\r\n\
-rw-r--r--    1 ftp      ftp             7 Mar 03  2024 caf\xe9.img\r\n\
12-05-24  10:15AM                 1234 dos.img\r\n\
12-05-24  10:15AM       <DIR>          dos dir\r\n\
this line is not a listing\r\n";

#[tokio::test]
async fn list_parses_line_forms_from_server() {
    let server = ScriptedServer::start(Script {
        list_body: LIST_LINES.to_vec(),
        ..Script::default()
    })
    .await;
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let entries = client.list("incoming").await.expect("list");
    client.quit().await.expect("quit");

    let summary = entries
        .iter()
        .map(|entry| (entry.name.as_str(), entry.kind, entry.size))
        .collect::<Vec<_>>();
    assert_eq!(
        summary,
        [
            ("big.img", EntryKind::File, Some(4_400_000_000)),
            ("2024 backup copy.img", EntryKind::File, Some(42)),
            ("subdir", EntryKind::Directory, Some(4096)),
            ("caf\u{fffd}.img", EntryKind::File, Some(7)),
            ("dos.img", EntryKind::File, Some(1234)),
            ("dos dir", EntryKind::Directory, None),
        ]
    );
    assert!(
        server
            .commands()
            .iter()
            .any(|command| command == "LIST incoming"),
        "{:?}",
        server.commands()
    );
}

#[tokio::test]
async fn proxy_resets_without_fin_at_byte_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind target");
    let target_address = target.local_addr().expect("target address");
    let receiver = tokio::spawn(async move {
        let (mut stream, _) = target.accept().await.expect("accept");
        let mut received = 0_usize;
        let mut buffer = vec![0_u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => return (received, None),
                Ok(read) => received += read,
                Err(error) => return (received, Some(error.kind())),
            }
        }
    });
    let proxy = FaultProxy::start(
        target_address,
        Faults {
            reset_after_upstream: Some(4096),
            ..Faults::default()
        },
    )
    .await;

    let mut client = tokio::net::TcpStream::connect(proxy.address)
        .await
        .expect("connect to the proxy");
    // The write may fail once the reset arrives; the receiver's view is what matters.
    let _ = client.write_all(&[0x5a; 64 * 1024]).await;
    let (received, ending) = tokio::time::timeout(Duration::from_secs(5), receiver)
        .await
        .expect("the target saw the flow end")
        .expect("receiver task");

    assert!(
        received <= 4096,
        "forwarded {received} bytes past the limit"
    );
    assert_eq!(ending, Some(std::io::ErrorKind::ConnectionReset));
    assert_eq!(proxy.resets(), 1);
}

#[tokio::test]
async fn scripted_server_hides_password() {
    let server = ScriptedServer::start(Script::default()).await;
    let client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");
    client.quit().await.expect("quit");

    let commands = server.commands();
    assert!(
        commands.iter().any(|command| command == "PASS [hidden]"),
        "{commands:?}"
    );
    assert!(
        !commands
            .iter()
            .any(|command| command.contains(scripted::PASSWORD)),
        "{commands:?}"
    );
    assert_eq!(commands.first().map(String::as_str), Some("AUTH TLS"));
}

/// Returns settings from the `BRIGHTBOX_TEST_VSFTPD_*` variables that `scripts/vsftpd.sh`
/// writes, with the control port replaced by `port`.
fn vsftpd_config(port: u16) -> FtpsConfig {
    let variable = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run scripts/vsftpd.sh and source its env file")
        })
    };
    let ca_path = variable("BRIGHTBOX_TEST_VSFTPD_CA");
    let ca_pem = std::fs::read(&ca_path).unwrap_or_else(|error| panic!("read {ca_path}: {error}"));
    FtpsConfig::from_host_port(
        &variable("BRIGHTBOX_TEST_VSFTPD_ADDR"),
        variable("BRIGHTBOX_TEST_VSFTPD_USER"),
        variable("BRIGHTBOX_TEST_VSFTPD_PASSWORD"),
    )
    .expect("BRIGHTBOX_TEST_VSFTPD_ADDR is host:port")
    .add_root_certificate_pem(&ca_pem)
    .expect("CA PEM is valid")
    .connect_timeout(CONNECT_TIMEOUT)
    .io_timeout(Duration::from_secs(10))
    .port(port)
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_control_reset_during_upload_confirmed() {
    let address = std::env::var("BRIGHTBOX_TEST_VSFTPD_ADDR")
        .expect("BRIGHTBOX_TEST_VSFTPD_ADDR is set")
        .parse()
        .expect("BRIGHTBOX_TEST_VSFTPD_ADDR is an IP address and port");
    let root = std::path::PathBuf::from(
        std::env::var("BRIGHTBOX_TEST_VSFTPD_ROOT").expect("BRIGHTBOX_TEST_VSFTPD_ROOT is set"),
    );
    let proxy = FaultProxy::start(address, Faults::default()).await;
    let local_dir = tempfile::tempdir().expect("local dir");
    let name = format!("proxy-reset-{}.img", std::process::id());
    let (local, local_sha) = random_file(local_dir.path(), &name, 8 * 1024 * 1024);
    let mut client = FtpsClient::connect(&vsftpd_config(proxy.address.port()))
        .await
        .expect("connect through the proxy");

    let reset_sent = AtomicBool::new(false);
    let reset_midway = |sent: u64| {
        if sent >= 2 * 1024 * 1024 && !reset_sent.swap(true, Ordering::SeqCst) {
            proxy.reset_now();
        }
    };
    let result = client
        .upload_file(&local, "incoming", &name, Some(&reset_midway))
        .await;

    assert!(
        reset_sent.load(Ordering::SeqCst),
        "progress never reached 2 MiB"
    );
    // vsftpd keeps reading the data connection after its control connection is gone and
    // stores every byte, so the size check on a new session confirms the upload.
    let upload = result.expect("the upload is confirmed by the stored size");
    assert_eq!(proxy.resets(), 1);
    assert_eq!(proxy.accepted(), 2, "one reconnect");
    assert_eq!(upload.sha256, local_sha);
    let final_path = root.join("incoming").join(&name);
    assert_eq!(sha256_file(&final_path), local_sha);
    assert!(!root.join("incoming").join(format!(".{name}.part")).exists());
    std::fs::remove_file(&final_path).expect("remove uploaded file");
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_slow_upload_survives_idle_control_reset() {
    let address = std::env::var("BRIGHTBOX_TEST_VSFTPD_ADDR")
        .expect("BRIGHTBOX_TEST_VSFTPD_ADDR is set")
        .parse()
        .expect("BRIGHTBOX_TEST_VSFTPD_ADDR is an IP address and port");
    let root = std::path::PathBuf::from(
        std::env::var("BRIGHTBOX_TEST_VSFTPD_ROOT").expect("BRIGHTBOX_TEST_VSFTPD_ROOT is set"),
    );
    // The proxy carries only the control connection; data goes straight to vsftpd.
    let proxy = FaultProxy::start(
        address,
        Faults {
            idle_reset: Some(Duration::from_secs(2)),
            ..Faults::default()
        },
    )
    .await;
    let name = format!("idle-control-{}.img", std::process::id());
    let chunk = 256 * 1024;
    let chunks = 24;
    let content = (0..chunk * chunks)
        .map(|index| (index % 251) as u8)
        .collect::<Vec<_>>();
    let content_sha = sha256_hex(&content);
    // The reader yields 256 KiB every 250 ms, so the 6 MiB upload takes about 6 s while the
    // control connection stays idle.
    let (mut feeder, reader) = tokio::io::duplex(chunk);
    let feed = tokio::spawn({
        let content = content.clone();
        async move {
            use tokio::io::AsyncWriteExt;
            for piece in content.chunks(chunk) {
                feeder.write_all(piece).await.expect("feed the reader");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    let mut client = FtpsClient::connect(&vsftpd_config(proxy.address.port()))
        .await
        .expect("connect through the proxy");

    let started = Instant::now();
    let upload = client
        .upload_reader(reader, "incoming", &name, &UploadOptions::new())
        .await
        .expect("the upload is confirmed by the stored size");
    let elapsed = started.elapsed();
    feed.await.expect("feeder task");
    client.quit().await.expect("quit on the new session");

    assert!(elapsed >= Duration::from_secs(5), "upload took {elapsed:?}");
    assert!(
        proxy.resets() >= 1,
        "the proxy never reset the control flow"
    );
    assert!(proxy.accepted() >= 2, "the client did not reconnect");
    assert_eq!(upload.sha256, content_sha);
    assert_eq!(upload.bytes, content.len() as u64);
    let final_path = root.join("incoming").join(&name);
    assert_eq!(sha256_file(&final_path), content_sha);
    assert!(!root.join("incoming").join(format!(".{name}.part")).exists());
    std::fs::remove_file(&final_path).expect("remove uploaded file");
}

#[tokio::test]
async fn list_uses_mlsd_when_feat_lists_mlst() {
    let server = ScriptedServer::start(Script {
        features: vec!["SIZE".to_owned(), "MLST type*;size*;modify*;".to_owned()],
        list_body: b"type=file;size=4400000000;modify=20240305101500; big.img\r\n\
type=dir;modify=20240305101500; subdir\r\n\
type=cdir; .\r\n"
            .to_vec(),
        ..Script::default()
    })
    .await;
    let mut client = FtpsClient::connect(&config(&server))
        .await
        .expect("connect");

    let entries = client.list("incoming").await.expect("list");
    client.quit().await.expect("quit");

    let summary = entries
        .iter()
        .map(|entry| (entry.name.as_str(), entry.kind, entry.size))
        .collect::<Vec<_>>();
    assert_eq!(
        summary,
        [
            ("big.img", EntryKind::File, Some(4_400_000_000)),
            ("subdir", EntryKind::Directory, None),
        ]
    );
    assert!(
        server
            .commands()
            .iter()
            .any(|command| command == "MLSD incoming"),
        "{:?}",
        server.commands()
    );
}
