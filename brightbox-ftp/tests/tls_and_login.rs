//! Certificate verification and login failures against a real in-process FTPS server.

mod common;

use std::error::Error as _;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brightbox_ftp::{FtpError, FtpsClient, FtpsConfig};
use common::{PASSWORD, TestPki, TestServer, USER};

#[tokio::test]
async fn untrusted_certificate_is_rejected() {
    let server = TestServer::start().await;
    let config = FtpsConfig::new("127.0.0.1", USER, PASSWORD)
        .port(server.address.port())
        .connect_timeout(Duration::from_secs(5))
        .io_timeout(Duration::from_secs(10));

    let error = FtpsClient::connect(&config)
        .await
        .expect_err("a certificate from an unknown CA must be rejected");

    match &error {
        FtpError::UntrustedCertificate { host, reason, .. } => {
            assert_eq!(host, "127.0.0.1");
            assert_eq!(reason, "unknown issuer");
        }
        other => panic!("expected UntrustedCertificate, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message
            .contains("the FTPS server certificate for 127.0.0.1 is not trusted (unknown issuer)"),
        "{message}"
    );
    assert!(
        message.contains("FtpsConfig::add_root_certificate_pem"),
        "{message}"
    );
    assert!(
        error.source().is_some(),
        "the rustls error is kept as source"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn untrusted_without_system_roots() {
    let server = TestServer::start().await;
    let other_ca = TestPki::new(&["localhost"]);
    let config = FtpsConfig::new("127.0.0.1", USER, PASSWORD)
        .port(server.address.port())
        .use_system_roots(false)
        .add_root_certificate_pem(other_ca.ca_pem.as_bytes())
        .expect("valid PEM");

    let error = FtpsClient::connect(&config)
        .await
        .expect_err("a different CA must not be trusted");

    assert!(
        matches!(error, FtpError::UntrustedCertificate { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn certificate_for_other_name_is_rejected() {
    let server = TestServer::start_with(TestPki::new(&["localhost"])).await;

    let error = FtpsClient::connect(&server.config_for_host("127.0.0.1"))
        .await
        .expect_err("the certificate does not list 127.0.0.1");

    match &error {
        FtpError::UntrustedCertificate { reason, .. } => {
            assert!(reason.contains("not valid for this host name"), "{reason}");
        }
        other => panic!("expected UntrustedCertificate, got {other:?}"),
    }
}

#[tokio::test]
async fn no_trust_anchors_is_config_error() {
    let config = FtpsConfig::new("127.0.0.1", USER, PASSWORD)
        .port(9)
        .use_system_roots(false);

    let error = FtpsClient::connect(&config)
        .await
        .expect_err("no roots at all");

    assert!(matches!(error, FtpError::TrustAnchors { .. }), "{error:?}");
    assert!(error.to_string().contains("add_root_certificate_pem"));
}

#[tokio::test]
async fn wrong_password_is_login_error() {
    let server = TestServer::start().await;
    let wrong_password = "wrong-password-83c1f";
    let config = FtpsConfig::new("127.0.0.1", USER, wrong_password)
        .port(server.address.port())
        .add_root_certificate_pem(server.ca_pem.as_bytes())
        .expect("valid PEM");

    let error = FtpsClient::connect(&config)
        .await
        .expect_err("wrong password");

    match &error {
        FtpError::LoginRejected {
            user, code, host, ..
        } => {
            assert_eq!(user, USER);
            assert_eq!(*code, 530);
            assert_eq!(host, "127.0.0.1");
        }
        other => panic!("expected LoginRejected, got {other:?}"),
    }
    assert!(!error.is_retryable());
    let message = error.to_string();
    let debug = format!("{error:?}");
    assert!(message.contains(USER), "{message}");
    assert!(!message.contains(wrong_password), "{message}");
    assert!(!debug.contains(wrong_password), "{debug}");
}

#[test]
fn config_debug_redacts_password() {
    let config = FtpsConfig::new("ftp.example.com", "acc-abc12", "s3cret-value-77");

    let debug = format!("{config:?}");

    assert!(!debug.contains("s3cret-value-77"), "{debug}");
    assert!(debug.contains("[REDACTED]"), "{debug}");
    assert!(debug.contains("acc-abc12"), "{debug}");
}

#[test]
fn bad_pem_is_rejected() {
    let config = FtpsConfig::new("ftp.example.com", "u", "p");

    let no_block = config
        .clone()
        .add_root_certificate_pem(b"not a certificate")
        .expect_err("no PEM block");
    let bad_base64 = config
        .clone()
        .add_root_certificate_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
        .expect_err("invalid base64");
    let not_x509 = config
        .add_root_certificate_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        .expect_err("not a certificate");

    assert!(
        no_block.to_string().contains("BEGIN CERTIFICATE"),
        "{no_block}"
    );
    assert!(
        matches!(bad_base64, FtpError::InvalidCertificatePem { .. }),
        "{bad_base64:?}"
    );
    assert!(
        matches!(not_x509, FtpError::InvalidCertificatePem { .. }),
        "{not_x509:?}"
    );
    assert!(
        not_x509.to_string().contains("certificate 1 of 1"),
        "{not_x509}"
    );
}

/// Collects everything the tracing subscriber writes.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_password() {
    let server = TestServer::start().await;
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, _) = common::random_file(local_dir.path(), "disk.img", 10_000);
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    client
        .upload_file(&local, "incoming", "disk.img", None)
        .await
        .expect("upload");
    client.quit().await.expect("quit");
    let bad = FtpsConfig::new("127.0.0.1", USER, "bad-password-6f2e")
        .port(server.address.port())
        .add_root_certificate_pem(server.ca_pem.as_bytes())
        .expect("valid PEM");
    let _ = FtpsClient::connect(&bad).await.expect_err("wrong password");

    let text = String::from_utf8(logs.0.lock().expect("log buffer").clone()).expect("UTF-8 logs");
    assert!(
        text.contains("ftps_upload"),
        "upload span is logged: {text}"
    );
    assert!(text.contains("upload complete"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!text.contains("bad-password-6f2e"), "{text}");
}
