//! The FTPS server against real clients: TLS, login, the incoming/ and images/ rules.

mod common;

use std::io::Cursor;
use std::time::Duration;

use serde_json::{Value, json};
use suppaftp::tokio::{AsyncFtpStream, AsyncRustlsFtpStream};
use suppaftp::tokio_rustls::rustls::RootCertStore;
use tokio::io::AsyncReadExt;

const DELAY: Duration = Duration::from_millis(200);

async fn api_password(emulator: &brightbox_emulator::Emulator) -> String {
    let http = reqwest::Client::new();
    let token = common::token(&http, emulator).await;
    common::reset_ftp_password(&http, emulator, &token).await
}

async fn upload(
    ftp: &mut AsyncRustlsFtpStream,
    path: &str,
    bytes: &[u8],
) -> suppaftp::FtpResult<u64> {
    ftp.put_file(path, &mut Cursor::new(bytes.to_vec())).await
}

async fn download(ftp: &mut AsyncRustlsFtpStream, path: &str) -> Vec<u8> {
    let mut stream = ftp.retr_as_stream(path).await.expect("RETR is accepted");
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .await
        .expect("download completes");
    stream
        .finish()
        .await
        .expect("the server confirms the transfer");
    bytes
}

#[tokio::test]
async fn reset_password_logs_in_and_uploads() {
    let emulator = common::start(DELAY).await;
    let password = api_password(&emulator).await;
    let mut ftp = common::login(&emulator, &password).await;

    let listing = ftp.nlst(Some("/")).await.expect("root lists");
    assert!(
        listing.iter().any(|name| name.ends_with("incoming")),
        "{listing:?}"
    );
    assert!(
        listing.iter().any(|name| name.ends_with("images")),
        "{listing:?}"
    );

    let bytes: Vec<u8> = (0..200_000_u32).map(|i| (i % 251) as u8).collect();
    let written = upload(&mut ftp, "/incoming/disk.img.part", &bytes)
        .await
        .expect("upload succeeds");
    assert_eq!(written, bytes.len() as u64);
    assert_eq!(
        ftp.size("/incoming/disk.img.part")
            .await
            .expect("SIZE works"),
        bytes.len()
    );
    ftp.mdtm("/incoming/disk.img.part")
        .await
        .expect("MDTM works");

    ftp.rename("/incoming/disk.img.part", "/incoming/disk.img")
        .await
        .expect("rename works");
    let names = ftp.nlst(Some("/incoming")).await.expect("incoming lists");
    let long_listing = ftp.list(Some("/incoming")).await.expect("LIST works");
    assert_eq!(long_listing.len(), 1, "{long_listing:?}");
    assert!(long_listing[0].contains("200000"), "{long_listing:?}");
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("disk.img"), "{names:?}");
    assert_eq!(download(&mut ftp, "/incoming/disk.img").await, bytes);
    ftp.quit().await.expect("QUIT works");

    assert_eq!(
        std::fs::read(emulator.incoming_dir().join("disk.img")).expect("file is on disk"),
        bytes
    );
}

#[tokio::test]
async fn append_resumes_partial_upload() {
    let emulator = common::start(DELAY).await;
    let password = emulator.reset_ftp_password();
    let mut ftp = common::login(&emulator, &password).await;

    upload(&mut ftp, "/incoming/part.img", b"first half,")
        .await
        .expect("upload succeeds");
    ftp.append_file(
        "/incoming/part.img",
        &mut Cursor::new(b"second half".to_vec()),
    )
    .await
    .expect("APPE succeeds");

    assert_eq!(
        ftp.size("/incoming/part.img").await.expect("SIZE works"),
        22
    );
    assert_eq!(
        download(&mut ftp, "/incoming/part.img").await,
        b"first half,second half"
    );

    ftp.resume_transfer(6).await.expect("REST is accepted");
    upload(&mut ftp, "/incoming/part.img", b"HALF")
        .await
        .expect("REST then STOR succeeds");
    assert_eq!(
        download(&mut ftp, "/incoming/part.img").await,
        b"first HALF"
    );
}

#[tokio::test]
async fn delete_in_incoming_is_allowed() {
    let emulator = common::start(DELAY).await;
    let password = emulator.reset_ftp_password();
    let mut ftp = common::login(&emulator, &password).await;

    upload(&mut ftp, "/incoming/old.img", b"x")
        .await
        .expect("upload succeeds");
    ftp.rm("/incoming/old.img").await.expect("DELE succeeds");

    assert!(!emulator.incoming_dir().join("old.img").exists());
}

#[tokio::test]
async fn old_password_rejected_after_reset() {
    let emulator = common::start(DELAY).await;
    let first = api_password(&emulator).await;
    let second = api_password(&emulator).await;
    assert_ne!(first, second);

    let mut ftp = common::secure_session(&emulator).await;
    let error = ftp
        .login(emulator.ftp_user(), first.as_str())
        .await
        .expect_err("the replaced password is rejected");
    assert_eq!(common::reply_code(&error), Some(530), "{error}");

    let mut ftp = common::secure_session(&emulator).await;
    ftp.login(emulator.ftp_user(), second.as_str())
        .await
        .expect("the newest password is accepted");
}

#[tokio::test]
async fn unknown_user_rejected() {
    let emulator = common::start(DELAY).await;
    let password = emulator.reset_ftp_password();

    let mut ftp = common::secure_session(&emulator).await;
    let error = ftp
        .login("acc-other", password.as_str())
        .await
        .expect_err("another user name is rejected");

    assert_eq!(common::reply_code(&error), Some(530), "{error}");
}

#[tokio::test]
async fn plain_ftp_login_rejected() {
    let emulator = common::start(DELAY).await;
    let password = emulator.reset_ftp_password();

    let mut ftp = AsyncFtpStream::connect(emulator.ftp_addr())
        .await
        .expect("control connection opens");
    let error = ftp
        .login(emulator.ftp_user(), password.as_str())
        .await
        .expect_err("login without AUTH TLS is rejected");

    assert_eq!(common::reply_code(&error), Some(534), "{error}");
}

#[tokio::test]
async fn untrusted_ca_fails_handshake() {
    let emulator = common::start(DELAY).await;
    let other = common::start(DELAY).await;

    for connector in [
        common::connector(other.ca_certificate_pem()),
        common::connector_with_roots(RootCertStore::empty()),
    ] {
        let result = AsyncRustlsFtpStream::connect(emulator.ftp_addr())
            .await
            .expect("control connection opens")
            .into_secure(connector, "127.0.0.1")
            .await;

        let error = result
            .err()
            .expect("the handshake fails without the emulator CA");
        assert!(
            matches!(error, suppaftp::FtpError::SecureError(_)),
            "{error}"
        );
    }
}

#[tokio::test]
async fn certificate_valid_for_localhost() {
    let emulator = common::start(DELAY).await;
    let password = emulator.reset_ftp_password();

    let mut ftp = AsyncRustlsFtpStream::connect(emulator.ftp_addr())
        .await
        .expect("control connection opens")
        .into_secure(
            common::connector(emulator.ca_certificate_pem()),
            "localhost",
        )
        .await
        .expect("the certificate names localhost");
    ftp.login(emulator.ftp_user(), password.as_str())
        .await
        .expect("login succeeds");
}

#[tokio::test]
async fn images_folder_is_read_only() {
    let emulator = common::start(DELAY).await;
    let password = emulator.reset_ftp_password();
    std::fs::write(emulator.images_dir().join("img-abcde"), b"snapshot").expect("image is written");
    let mut ftp = common::login(&emulator, &password).await;

    let error = upload(&mut ftp, "/images/new.img", b"data")
        .await
        .expect_err("STOR into images/ is rejected");
    assert_eq!(common::reply_code(&error), Some(550), "{error}");
    assert!(!emulator.images_dir().join("new.img").exists());

    ftp.cwd("/images").await.expect("CWD into images/ works");
    let error = upload(&mut ftp, "relative.img", b"data")
        .await
        .expect_err("STOR relative to images/ is rejected");
    assert_eq!(common::reply_code(&error), Some(550), "{error}");
    let error = upload(&mut ftp, "../incoming/../images/sneaky.img", b"data")
        .await
        .expect_err("STOR through .. into images/ is rejected");
    assert_eq!(common::reply_code(&error), Some(550), "{error}");
    ftp.cwd("/").await.expect("CWD to the root works");

    let error = ftp
        .rm("/images/img-abcde")
        .await
        .expect_err("DELE in images/ is rejected");
    assert_eq!(common::reply_code(&error), Some(550), "{error}");

    let error = ftp
        .rename("/images/img-abcde", "/incoming/stolen.img")
        .await
        .expect_err("RNFR in images/ is rejected");
    assert_eq!(common::reply_code(&error), Some(550), "{error}");

    upload(&mut ftp, "/incoming/mine.img", b"data")
        .await
        .expect("upload succeeds");
    let error = ftp
        .rename("/incoming/mine.img", "/images/mine.img")
        .await
        .expect_err("RNTO into images/ is rejected");
    assert_eq!(common::reply_code(&error), Some(550), "{error}");

    let error = ftp.mkdir("/images/sub").await.expect_err("MKD is rejected");
    assert_eq!(common::reply_code(&error), Some(550), "{error}");
    let error = ftp.rmdir("/incoming").await.expect_err("RMD is rejected");
    assert_eq!(common::reply_code(&error), Some(550), "{error}");

    let error = upload(&mut ftp, "/root-file.img", b"data")
        .await
        .expect_err("STOR at the root is rejected");
    assert_eq!(common::reply_code(&error), Some(550), "{error}");

    assert_eq!(download(&mut ftp, "/images/img-abcde").await, b"snapshot");
    assert_eq!(
        std::fs::read(emulator.images_dir().join("img-abcde")).expect("image is still there"),
        b"snapshot"
    );
    assert!(emulator.incoming_dir().join("mine.img").is_file());
    assert!(emulator.incoming_dir().is_dir());
}

#[tokio::test]
async fn upload_then_register_end_to_end() {
    let emulator = common::start(DELAY).await;
    let http = reqwest::Client::new();
    let token = common::token(&http, &emulator).await;
    let password = common::reset_ftp_password(&http, &emulator, &token).await;
    let file = common::qcow2_file(512 * 1024 * 1024, 64 * 1024);

    let mut ftp = common::login(&emulator, &password).await;
    upload(&mut ftp, "/incoming/upload.qcow2", &file)
        .await
        .expect("upload succeeds");
    ftp.quit().await.expect("QUIT works");

    let response = http
        .post(format!("{}1.0/images", emulator.api_url()))
        .bearer_auth(&token)
        .json(&json!({"name": "uploaded", "arch": "x86_64", "source": "upload.qcow2"}))
        .send()
        .await
        .expect("register request is sent");
    assert_eq!(response.status(), 201);
    let image: Value = response.json().await.expect("image is JSON");
    let id = image["id"].as_str().expect("id is a string").to_owned();
    assert_eq!(image["virtual_size"], 512);

    let mut ftp = common::login(&emulator, &password).await;
    let incoming = ftp.nlst(Some("/incoming")).await.expect("incoming lists");
    assert!(incoming.is_empty(), "{incoming:?}");
    assert_eq!(download(&mut ftp, &format!("/images/{id}")).await, file);
}

#[tokio::test]
async fn shutdown_stops_both_servers() {
    let emulator = common::start(DELAY).await;
    let ftp_addr = emulator.ftp_addr();
    let api_url = emulator.api_url().to_owned();

    emulator.shutdown().await;

    let api = reqwest::Client::new()
        .get(format!("{api_url}1.0/accounts"))
        .send()
        .await;
    assert!(api.is_err(), "the API still answers after shutdown");
    let ftp = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(ftp_addr),
    )
    .await;
    assert!(
        !matches!(ftp, Ok(Ok(_))),
        "the FTPS server still accepts connections after shutdown"
    );
}

#[tokio::test]
async fn clear_data_channel_rejected() {
    let emulator = common::start(DELAY).await;
    let password = emulator.reset_ftp_password();
    let mut ftp = common::login(&emulator, &password).await;
    upload(&mut ftp, "/incoming/secret.img", b"data")
        .await
        .expect("upload over a protected data channel succeeds");

    ftp.custom_command("PROT C", &[suppaftp::Status::CommandOk])
        .await
        .expect("PROT C is acknowledged");
    let error = ftp
        .nlst(Some("/incoming"))
        .await
        .expect_err("a listing over a clear data channel is rejected");

    assert_eq!(common::reply_code(&error), Some(534), "{error}");
}

#[tokio::test]
async fn concurrent_sessions_upload() {
    let emulator = common::start(DELAY).await;
    let password = emulator.reset_ftp_password();

    let uploads = (0..3).map(|index| {
        let emulator = &emulator;
        let password = password.as_str();
        async move {
            let mut ftp = common::login(emulator, password).await;
            let bytes = vec![index as u8; 50_000 + index];
            upload(&mut ftp, &format!("/incoming/part-{index}.img"), &bytes)
                .await
                .expect("upload succeeds");
            ftp.quit().await.expect("QUIT works");
            bytes
        }
    });
    let uploaded = futures_util::future::join_all(uploads).await;

    for (index, bytes) in uploaded.iter().enumerate() {
        let on_disk = std::fs::read(emulator.incoming_dir().join(format!("part-{index}.img")))
            .expect("file is on disk");
        assert_eq!(&on_disk, bytes, "part-{index}.img");
    }
}
