//! Tests against a real vsftpd 3.0.3 with `require_ssl_reuse=YES`, started by scripts/vsftpd.sh.
//!
//! They read the server's address, user, password, CA file and FTP root from the
//! `BRIGHTBOX_TEST_VSFTPD_*` variables that the script writes to `<state dir>/env`.

mod common;

use std::time::Duration;

use brightbox_ftp::{FtpError, FtpsClient, FtpsConfig};
use common::{random_file, sha256_file};

struct Vsftpd {
    address: String,
    user: String,
    password: String,
    ca_pem: Vec<u8>,
    root: std::path::PathBuf,
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/vsftpd.sh and source its env file")
    })
}

fn vsftpd() -> Vsftpd {
    let ca_path = required("BRIGHTBOX_TEST_VSFTPD_CA");
    Vsftpd {
        address: required("BRIGHTBOX_TEST_VSFTPD_ADDR"),
        user: required("BRIGHTBOX_TEST_VSFTPD_USER"),
        password: required("BRIGHTBOX_TEST_VSFTPD_PASSWORD"),
        ca_pem: std::fs::read(&ca_path).unwrap_or_else(|error| panic!("read {ca_path}: {error}")),
        root: required("BRIGHTBOX_TEST_VSFTPD_ROOT").into(),
    }
}

impl Vsftpd {
    fn config(&self) -> FtpsConfig {
        FtpsConfig::from_host_port(&self.address, self.user.as_str(), self.password.as_str())
            .expect("BRIGHTBOX_TEST_VSFTPD_ADDR is host:port")
            .add_root_certificate_pem(&self.ca_pem)
            .expect("CA PEM is valid")
            .io_timeout(Duration::from_secs(30))
    }
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_upload_reuses_tls_session() {
    let server = vsftpd();
    let local_dir = tempfile::tempdir().expect("local dir");
    let name = format!("vsftpd-{}.img", std::process::id());
    let (local, local_sha) = random_file(local_dir.path(), &name, 1024 * 1024);

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect to vsftpd");
    client
        .list_names("incoming")
        .await
        .expect("list before upload");
    let upload = client
        .upload_file(&local, "incoming", &name, None)
        .await
        .expect("upload to vsftpd");
    let names = client
        .list_names("incoming")
        .await
        .expect("list after upload");
    let size = client
        .size(&format!("incoming/{name}"))
        .await
        .expect("SIZE");
    client.quit().await.expect("quit");

    assert_eq!(upload.bytes, 1024 * 1024);
    assert_eq!(size, 1024 * 1024);
    assert!(names.contains(&name), "{names:?} lacks {name}");
    assert!(
        !names.iter().any(|listed| listed.ends_with(".part")),
        "temporary file left: {names:?}"
    );
    let stored = server.root.join("incoming").join(&name);
    assert_eq!(sha256_file(&stored), local_sha);
    std::fs::remove_file(&stored).expect("remove uploaded file");
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_untrusted_certificate() {
    let server = vsftpd();
    let (host, port) = server
        .address
        .rsplit_once(':')
        .expect("BRIGHTBOX_TEST_VSFTPD_ADDR is host:port");
    let config = FtpsConfig::new(host, server.user.as_str(), server.password.as_str())
        .port(port.parse().expect("numeric port"));

    let error = FtpsClient::connect(&config)
        .await
        .expect_err("the test CA is not a system root");

    assert!(
        matches!(error, FtpError::UntrustedCertificate { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("unknown issuer"), "{error}");
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_rejects_data_without_session_reuse() {
    let server = vsftpd();
    let config = server.config().tls_session_resumption(false);

    let mut client = FtpsClient::connect(&config)
        .await
        .expect("the control connection needs no resumption");
    let error = client
        .list_names("incoming")
        .await
        .expect_err("vsftpd requires session reuse on data connections");

    assert!(
        matches!(error, FtpError::TlsSessionReuseRequired { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("resume"), "{error}");
}
