//! Connection modes (plain FTP by explicit opt-in, the `227` address, the `EPSV` fallback) and
//! download size checks against a server whose `SIZE` reply is wrong.

mod common;
mod support;

use brightbox_ftp::{DownloadOptions, FtpError, FtpsClient, FtpsConfig, UploadOptions};

fn scripted_config(server: &ScriptedServer) -> FtpsConfig {
    FtpsConfig::new("127.0.0.1", scripted::USER, scripted::PASSWORD)
        .port(server.address.port())
        .use_system_roots(false)
        .add_root_certificate_pem(server.ca_pem.as_bytes())
        .expect("test CA PEM")
}
use common::{PASSWORD, TestServer, USER, sha256_file, sha256_hex};
use support::scripted::{self, Script, ScriptedServer, SizeReply};

#[tokio::test]
async fn plain_ftp_needs_explicit_opt_in() {
    let server = TestServer::start_plain().await;
    let data = b"plain bytes for a trusted test network".repeat(1000);

    let config = FtpsConfig::new("127.0.0.1", USER, PASSWORD)
        .port(server.address.port())
        .insecure_plain_ftp_sends_password_in_clear();
    let mut client = FtpsClient::connect(&config).await.expect("plain connect");
    let upload = client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            "incoming",
            "plain.img",
            &UploadOptions::default(),
        )
        .await
        .expect("plain upload");
    let mut back = Vec::new();
    let download = client
        .download_to("incoming/plain.img", &mut back, &DownloadOptions::default())
        .await
        .expect("plain download");
    client.quit().await.expect("quit");

    assert_eq!(upload.sha256, sha256_hex(&data));
    assert_eq!(download.sha256, sha256_hex(&data));
    assert_eq!(back, data);
    assert_eq!(
        sha256_file(&server.path("incoming/plain.img")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn tls_client_never_falls_back_to_plain() {
    let server = TestServer::start_plain().await;
    let config = FtpsConfig::new("127.0.0.1", USER, PASSWORD)
        .port(server.address.port())
        .add_root_certificate_pem(server.ca_pem.as_bytes())
        .expect("CA PEM");

    let error = FtpsClient::connect(&config)
        .await
        .expect_err("a server without AUTH TLS must be rejected");

    match &error {
        FtpError::ServerReply { command, .. } => assert_eq!(command, "AUTH TLS"),
        other => panic!("expected the AUTH TLS reply, got {other:?}"),
    }
    assert!(!error.to_string().contains(PASSWORD));
}

#[tokio::test]
async fn passive_address_option_uses_pasv() {
    let server = TestServer::start().await;
    let data = vec![42_u8; 300_000];
    let config = server.config().use_passive_address(true);

    let mut client = FtpsClient::connect(&config).await.expect("connect");
    client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            "incoming",
            "pasv.img",
            &UploadOptions::default(),
        )
        .await
        .expect("upload over PASV with the advertised address");
    let entries = client.list("incoming").await.expect("list");

    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].size, Some(300_000));
    assert_eq!(
        sha256_file(&server.path("incoming/pasv.img")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn epsv_rejected_falls_back_to_pasv() {
    // FEAT lists EPSV, but the server rejects it with 502.
    let script = Script {
        epsv: false,
        features: vec!["EPSV".into(), "SIZE".into(), "REST STREAM".into()],
        ..Script::default()
    };
    let server = ScriptedServer::start(script).await;
    let config = scripted_config(&server);
    let data = vec![9_u8; 100_000];

    let mut client = FtpsClient::connect(&config).await.expect("connect");
    let upload = client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            "",
            "fallback.img",
            &UploadOptions::default(),
        )
        .await
        .expect("upload after the PASV fallback");
    client
        .size("fallback.img")
        .await
        .expect("the session stays in step");

    let commands = server.commands();
    let epsv = commands.iter().position(|command| command == "EPSV");
    let pasv = commands.iter().position(|command| command == "PASV");
    assert!(epsv.is_some(), "EPSV tried first: {commands:?}");
    assert!(pasv > epsv, "PASV after the rejected EPSV: {commands:?}");
    assert_eq!(
        commands.iter().filter(|command| *command == "EPSV").count(),
        1,
        "EPSV is not tried again: {commands:?}"
    );
    assert_eq!(upload.sha256, sha256_hex(&data));
    assert_eq!(server.file("fallback.img"), Some(data));
}

#[tokio::test]
async fn short_download_is_incomplete_and_cleaned() {
    // SIZE reports 1 MiB more than the file has.
    let script = Script {
        size: SizeReply::Offset(1024 * 1024),
        ..Script::default()
    };
    let server = ScriptedServer::start(script).await;
    let length = 4 * 1024 * 1024;
    server.put_file("disk.img", vec![3_u8; length]);
    let local_dir = tempfile::tempdir().expect("local dir");
    let local = local_dir.path().join("disk.img");
    let mut client = FtpsClient::connect(&scripted_config(&server))
        .await
        .expect("connect");

    let error = client
        .download_file("disk.img", &local, &DownloadOptions::default())
        .await
        .expect_err("fewer bytes than SIZE");
    match &error {
        FtpError::IncompleteTransfer {
            sent, stored, host, ..
        } => {
            assert_eq!(*sent, length as u64 + 1024 * 1024);
            assert_eq!(*stored, length as u64);
            assert_eq!(host, "127.0.0.1");
        }
        other => panic!("expected IncompleteTransfer, got {other:?}"),
    }
    assert!(error.is_retryable());
    assert!(!local.exists(), "nothing under the final name");
    let part = local_dir.path().join(".disk.img.part");
    assert_eq!(
        std::fs::metadata(&part).expect("partial file kept").len(),
        length as u64,
        "a single-connection download keeps what arrived"
    );

    let error = client
        .download_file("disk.img", &local, &DownloadOptions::default().segments(4))
        .await
        .expect_err("the last segment is short");
    assert!(
        matches!(error, FtpError::IncompleteTransfer { .. }),
        "{error:?}"
    );
    assert!(!local.exists(), "nothing under the final name");
    assert!(
        !local_dir.path().join(".disk.img.part.segments").exists(),
        "a segmented download removes its preallocated partial file"
    );
    assert_eq!(
        std::fs::metadata(&part)
            .expect("the earlier partial file")
            .len(),
        length as u64,
        "a segmented download leaves the resumable partial file alone"
    );
}

#[tokio::test]
async fn resume_without_rest_stream_uses_appe() {
    // FEAT does not list REST STREAM, so the client must continue with APPE.
    let script = Script {
        features: vec!["SIZE".into()],
        ..Script::default()
    };
    let server = ScriptedServer::start(script).await;
    let data = (0..700_000_u32)
        .map(|index| (index % 251) as u8)
        .collect::<Vec<_>>();
    server.put_file(".disk.img.part", data[..300_000].to_vec());

    let mut client = FtpsClient::connect(&scripted_config(&server))
        .await
        .expect("connect");
    let upload = client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            "",
            "disk.img",
            &UploadOptions::default().resume(true),
        )
        .await
        .expect("resumed upload with APPE");

    let commands = server.commands();
    assert!(
        commands
            .iter()
            .any(|command| command == "APPE .disk.img.part"),
        "{commands:?}"
    );
    assert!(
        !commands.iter().any(|command| command.starts_with("REST")),
        "{commands:?}"
    );
    assert_eq!(upload.resumed_from, 300_000);
    assert_eq!(upload.sha256, sha256_hex(&data));
    assert_eq!(server.file("disk.img"), Some(data));
}
