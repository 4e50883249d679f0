//! Tests against a real vsftpd 3.0.3 with `require_ssl_reuse=YES`, started by scripts/vsftpd.sh.
//!
//! They read the server's address, user, password, CA file and FTP root from the
//! `BRIGHTBOX_TEST_VSFTPD_*` variables that the script writes to `<state dir>/env`.

mod common;

use std::time::Duration;

use brightbox_ftp::{
    DownloadOptions, EntryKind, FtpError, FtpsClient, FtpsConfig, ImageFormat, ProgressSink,
    UploadOptions,
};
use common::{random_file, sha256_file, sha256_hex};

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

/// A directory of its own under `incoming/` for one test, created over FTP so that vsftpd's
/// user owns it, and removed from disk when dropped.
struct Scratch {
    remote: String,
    local: std::path::PathBuf,
}

impl Scratch {
    async fn create(server: &Vsftpd, client: &mut FtpsClient, test: &str) -> Scratch {
        let remote = format!("incoming/{test}-{}", std::process::id());
        let local = server.root.join(&remote);
        let _ = std::fs::remove_dir_all(&local);
        client.mkdir(&remote).await.expect("MKD scratch directory");
        Scratch { remote, local }
    }

    fn remote(&self, name: &str) -> String {
        format!("{}/{name}", self.remote)
    }

    /// Writes `data` to `name` on disk, owned like the directory so vsftpd's user may change it.
    fn seed(&self, name: &str, data: &[u8]) -> std::path::PathBuf {
        use std::os::unix::fs::MetadataExt;
        let path = self.local.join(name);
        std::fs::write(&path, data).expect("seed file");
        let owner = std::fs::metadata(&self.local).expect("scratch metadata");
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).expect("chown seed");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.local);
    }
}

fn pseudo_random(length: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = random_file(dir.path(), "bytes", length);
    std::fs::read(path).expect("read random bytes")
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_list_parses_unix_lines() {
    let server = vsftpd();
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect to vsftpd");
    let scratch = Scratch::create(&server, &mut client, "list").await;
    scratch.seed("2024 disk image.img", &[1_u8; 1234]);
    let huge = scratch.seed("huge.img", b"");
    // A sparse file: the listing shows its length without the disk holding it.
    std::fs::File::options()
        .write(true)
        .open(&huge)
        .expect("open huge.img")
        .set_len(4_400_000_000)
        .expect("extend huge.img");
    client
        .mkdir(&scratch.remote("sub dir"))
        .await
        .expect("MKD with a space");

    let mut entries = client.list(&scratch.remote).await.expect("LIST");
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    client.quit().await.expect("quit");

    let names = entries
        .iter()
        .map(|entry| entry.name.as_str())
        .collect::<Vec<_>>();
    assert_eq!(names, vec!["2024 disk image.img", "huge.img", "sub dir"]);
    assert_eq!(entries[0].size, Some(1234));
    assert_eq!(entries[0].kind, EntryKind::File);
    assert_eq!(entries[1].size, Some(4_400_000_000));
    assert_eq!(entries[2].kind, EntryKind::Directory);
    assert!(
        entries[0].raw.starts_with("-rw"),
        "vsftpd has no MLSD, so LIST is used: {}",
        entries[0].raw
    );
    assert!(entries.iter().all(|entry| entry.modified.is_some()));
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_upload_resume_with_rest() {
    let server = vsftpd();
    let data = pseudo_random(2 * 1024 * 1024 + 99);
    let prefix = 1_000_001;
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect to vsftpd");
    let scratch = Scratch::create(&server, &mut client, "upload-resume").await;
    scratch.seed(".disk.img.part", &data[..prefix]);
    let (sink, receiver) = ProgressSink::watch();

    let upload = client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            &scratch.remote,
            "disk.img",
            &UploadOptions::default().resume(true).progress(sink),
        )
        .await
        .expect("resumed upload");
    client.quit().await.expect("quit");

    assert_eq!(upload.resumed_from, prefix as u64);
    assert_eq!(upload.sha256, sha256_hex(&data));
    assert_eq!(
        sha256_file(&scratch.local.join("disk.img")),
        sha256_hex(&data)
    );
    assert!(!scratch.local.join(".disk.img.part").exists());
    assert_eq!(receiver.borrow().bytes_done, data.len() as u64);
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_download_resume_and_segments() {
    let server = vsftpd();
    let mut data = pseudo_random(8 * 1024 * 1024 + 3);
    data[..4].copy_from_slice(&[0x1f, 0x8b, 0x08, 0x00]);
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect to vsftpd");
    let scratch = Scratch::create(&server, &mut client, "download").await;
    scratch.seed("disk.img.gz", &data);
    let local_dir = tempfile::tempdir().expect("local dir");

    let resumed_path = local_dir.path().join("resumed.img.gz");
    std::fs::write(
        local_dir.path().join(".resumed.img.gz.part"),
        &data[..300_000],
    )
    .expect("seed local partial");
    let resumed = client
        .download_file(
            &scratch.remote("disk.img.gz"),
            &resumed_path,
            &DownloadOptions::default().resume(true),
        )
        .await
        .expect("resumed download");
    assert_eq!(resumed.resumed_from, 300_000);
    assert_eq!(resumed.sha256, sha256_hex(&data));
    assert_eq!(resumed.format, ImageFormat::Gzip);
    assert_eq!(sha256_file(&resumed_path), sha256_hex(&data));

    let segmented_path = local_dir.path().join("segmented.img.gz");
    let segmented = client
        .download_file(
            &scratch.remote("disk.img.gz"),
            &segmented_path,
            &DownloadOptions::default().segments(4),
        )
        .await
        .expect("segmented download");
    assert_eq!(segmented.sha256, sha256_hex(&data));
    assert_eq!(sha256_file(&segmented_path), sha256_hex(&data));

    // The session is still in step after the segments' ABORs on other connections.
    let mut streamed = Vec::new();
    let to_writer = client
        .download_to(
            &scratch.remote("disk.img.gz"),
            &mut streamed,
            &DownloadOptions::default(),
        )
        .await
        .expect("download to a writer");
    assert_eq!(to_writer.sha256, sha256_hex(&data));
    client.quit().await.expect("quit");
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_file_commands_and_errors() {
    let server = vsftpd();
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect to vsftpd");
    let scratch = Scratch::create(&server, &mut client, "commands").await;
    scratch.seed("a.img", b"contents");

    client
        .rename(&scratch.remote("a.img"), &scratch.remote("b.img"))
        .await
        .expect("rename");
    let modified = client
        .modified(&scratch.remote("b.img"))
        .await
        .expect("MDTM");
    assert!((chrono::Utc::now() - modified).num_seconds().abs() < 300);
    client.delete(&scratch.remote("b.img")).await.expect("DELE");
    assert!(!scratch.local.join("b.img").exists());

    let error = client
        .modified(&scratch.remote("b.img"))
        .await
        .expect_err("MDTM of a deleted file");
    assert!(matches!(error, FtpError::NotFound { .. }), "{error:?}");

    // A directory that vsftpd's user may not write.
    let locked = scratch.local.join("locked");
    std::fs::create_dir(&locked).expect("create locked dir");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555))
            .expect("chmod 555");
    }
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, _) = random_file(local_dir.path(), "disk.img", 1000);
    let error = client
        .upload_file(&local, &scratch.remote("locked"), "disk.img", None)
        .await
        .expect_err("upload into a read-only directory");
    match &error {
        FtpError::PermissionDenied {
            remote_path, host, ..
        } => {
            assert_eq!(remote_path, &scratch.remote("locked/.disk.img.part"));
            assert_eq!(host, "127.0.0.1");
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert!(!error.is_retryable());
    assert!(!error.to_string().contains(&server.password));

    let error = client
        .mkdir(&scratch.remote("locked/sub"))
        .await
        .expect_err("MKD in a read-only directory");
    assert!(
        matches!(error, FtpError::PermissionDenied { .. }),
        "{error:?}"
    );
    client.quit().await.expect("quit");
}

/// A second vsftpd made from the first one's configuration, with a free port and a log file of
/// its own. The lines whose keys are in `replaced` are dropped, and `extra` is appended with
/// `{dir}` replaced by the instance's own folder. It is stopped when dropped.
struct SecondVsftpd {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SecondVsftpd {
    /// Starts an implicit-TLS instance on 127.0.0.1.
    fn implicit_tls() -> SecondVsftpd {
        SecondVsftpd::start(
            &["pasv_min_port=", "pasv_max_port="],
            "pasv_min_port=30200\npasv_max_port=30300\nimplicit_ssl=YES\n",
            |_| {},
            "127.0.0.1".parse().expect("IPv4 loopback"),
        )
    }

    fn start(
        replaced: &[&str],
        extra: &str,
        prepare: impl FnOnce(&std::path::Path),
        address: std::net::IpAddr,
    ) -> SecondVsftpd {
        let state_dir = std::path::Path::new(&required("BRIGHTBOX_TEST_VSFTPD_CA"))
            .parent()
            .expect("the CA file has a parent directory")
            .to_owned();
        let base =
            std::fs::read_to_string(state_dir.join("vsftpd.conf")).expect("read vsftpd.conf");
        let port = {
            let probe = std::net::TcpListener::bind((address, 0)).expect("reserve a port");
            probe.local_addr().expect("probe address").port()
        };

        let dir = tempfile::tempdir().expect("config dir");
        prepare(dir.path());
        let mut config = base
            .lines()
            .filter(|line| {
                !["listen_port=", "vsftpd_log_file="]
                    .iter()
                    .chain(replaced)
                    .any(|key| line.starts_with(key))
            })
            .collect::<Vec<_>>()
            .join("\n");
        config.push_str(&format!(
            "\nlisten_port={port}\nvsftpd_log_file={}\n{}",
            dir.path().join("vsftpd.log").display(),
            extra.replace("{dir}", &dir.path().display().to_string())
        ));
        let config_path = dir.path().join("vsftpd.conf");
        std::fs::write(&config_path, config).expect("write second vsftpd config");

        let child = std::process::Command::new("/usr/sbin/vsftpd")
            .arg(&config_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start a second vsftpd");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((address, port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the second vsftpd did not listen on {address} port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SecondVsftpd { child, port, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vsftpd.log")).unwrap_or_default()
    }
}

impl Drop for SecondVsftpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_implicit_tls_round_trip() {
    let server = vsftpd();
    let implicit = SecondVsftpd::implicit_tls();
    let data = pseudo_random(500_000);
    let name = format!("implicit-{}.img", std::process::id());

    let config = server.config().port(implicit.port).implicit_tls(true);
    let mut client = FtpsClient::connect(&config)
        .await
        .expect("implicit TLS connect");
    let upload = client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            "incoming",
            &name,
            &UploadOptions::default(),
        )
        .await
        .expect("upload over implicit TLS");
    let mut back = Vec::new();
    client
        .download_to(&upload.remote_path, &mut back, &DownloadOptions::default())
        .await
        .expect("download over implicit TLS");
    client.delete(&upload.remote_path).await.expect("DELE");
    client.quit().await.expect("quit");

    assert_eq!(upload.sha256, sha256_hex(&data));
    assert_eq!(back, data);

    // An explicit-TLS client gets no plain greeting from an implicit-TLS port.
    let explicit = server
        .config()
        .port(implicit.port)
        .io_timeout(Duration::from_secs(2));
    let error = FtpsClient::connect(&explicit)
        .await
        .expect_err("explicit TLS against an implicit-TLS port");
    assert!(!error.to_string().contains(&server.password), "{error}");
}

impl SecondVsftpd {
    /// Starts an instance that accepts at most `limit` connections from one address.
    fn max_per_ip(limit: u32, pasv_min: u16) -> SecondVsftpd {
        SecondVsftpd::start(
            &["pasv_min_port=", "pasv_max_port="],
            &format!(
                "pasv_min_port={pasv_min}\npasv_max_port={}\nmax_per_ip={limit}\n",
                pasv_min + 100
            ),
            |_| {},
            "127.0.0.1".parse().expect("IPv4 loopback"),
        )
    }
}

/// Uploads 8 MiB through `instance`, downloads it with 4 segments and returns the download;
/// the downloaded bytes must equal the uploaded ones.
async fn segmented_round_trip(
    server: &Vsftpd,
    instance: &SecondVsftpd,
    name: &str,
) -> brightbox_ftp::Download {
    let data = pseudo_random(8 * 1024 * 1024);
    let local_dir = tempfile::tempdir().expect("local dir");
    let config = server.config().port(instance.port);
    let mut client = FtpsClient::connect(&config).await.expect("connect");
    let upload = client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            "incoming",
            name,
            &UploadOptions::default(),
        )
        .await
        .expect("upload");
    let local = local_dir.path().join(name);
    let download = client
        .download_file(
            &upload.remote_path,
            &local,
            &DownloadOptions::new().segments(4),
        )
        .await
        .expect("segmented download under the connection limit");
    client.delete(&upload.remote_path).await.expect("DELE");
    client.quit().await.expect("quit");

    assert_eq!(download.sha256, sha256_hex(&data));
    assert_eq!(download.bytes, data.len() as u64);
    assert_eq!(std::fs::read(&local).expect("read download"), data);
    download
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_one_connection_per_ip_segments() {
    let server = vsftpd();
    let limited = SecondVsftpd::max_per_ip(1, 30400);
    let name = format!("max-per-ip-1-{}.img", std::process::id());

    let started = std::time::Instant::now();
    let download = segmented_round_trip(&server, &limited, &name).await;
    let elapsed = started.elapsed();

    // The session that started the download uses the only allowed connection, so every
    // extra connection gets 421 until the session has fetched all four ranges.
    assert_eq!(download.connections, 1);
    assert!(
        limited.log().contains("421"),
        "vsftpd never refused a connection"
    );
    // Three retries with backoff of at most 0.75, 1.5 and 3 s bound the wait.
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_two_connections_per_ip_segments() {
    let server = vsftpd();
    let limited = SecondVsftpd::max_per_ip(2, 30600);
    let name = format!("max-per-ip-2-{}.img", std::process::id());

    let download = segmented_round_trip(&server, &limited, &name).await;

    assert!(
        (1..=2).contains(&download.connections),
        "{} connections under max_per_ip=2",
        download.connections
    );
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_ipv6_uses_epsv() {
    let server = vsftpd();
    let pki = common::TestPki::new(&["::1"]);
    let ipv6 = SecondVsftpd::start(
        &[
            "listen=",
            "listen_ipv6=",
            "listen_address=",
            "pasv_address=",
            "pasv_min_port=",
            "pasv_max_port=",
            "rsa_cert_file=",
            "rsa_private_key_file=",
        ],
        "listen=NO\nlisten_ipv6=YES\nlisten_address6=::1\n\
         pasv_min_port=30400\npasv_max_port=30500\n\
         rsa_cert_file={dir}/server-v6.pem\nrsa_private_key_file={dir}/server-v6.key\n",
        |dir| {
            std::fs::write(dir.join("server-v6.pem"), &pki.leaf_pem).expect("write certificate");
            std::fs::write(dir.join("server-v6.key"), &pki.leaf_key_pem).expect("write key");
        },
        "::1".parse().expect("IPv6 loopback"),
    );
    let local_dir = tempfile::tempdir().expect("local dir");
    let name = format!("ipv6-{}.img", std::process::id());
    let (local, local_sha) = random_file(local_dir.path(), &name, 3 * 1024 * 1024 + 7);

    let config = FtpsConfig::from_host_port(
        &format!("[::1]:{}", ipv6.port),
        server.user.as_str(),
        server.password.as_str(),
    )
    .expect("[::1]:port is a valid address")
    .add_root_certificate_pem(pki.ca_pem.as_bytes())
    .expect("CA PEM is valid")
    .io_timeout(Duration::from_secs(30));
    let mut client = FtpsClient::connect(&config)
        .await
        .expect("connect to vsftpd on ::1");
    let upload = client
        .upload_file(&local, "incoming", &name, None)
        .await
        .expect("upload over IPv6");
    let single = client
        .download_file(
            &upload.remote_path,
            &local_dir.path().join("single.img"),
            &DownloadOptions::default(),
        )
        .await
        .expect("download over IPv6");
    let segmented = client
        .download_file(
            &upload.remote_path,
            &local_dir.path().join("segmented.img"),
            &DownloadOptions::default().segments(2),
        )
        .await
        .expect("segmented download over IPv6");
    client.delete(&upload.remote_path).await.expect("DELE");
    client.quit().await.expect("quit");

    assert_eq!(upload.sha256, local_sha);
    assert_eq!(single.sha256, local_sha);
    assert_eq!(segmented.sha256, local_sha);
    assert_eq!(
        sha256_file(&local_dir.path().join("segmented.img")),
        local_sha
    );
    let log = ipv6.log();
    assert!(log.contains("EPSV"), "vsftpd logged no EPSV:\n{log}");
    assert!(!log.contains("\"PASV\""), "vsftpd logged a PASV:\n{log}");
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_stopped_segments_never_count_as_resumable() {
    let server = vsftpd();
    let data = pseudo_random(48 * 1024 * 1024 + 5);
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect to vsftpd");
    let scratch = Scratch::create(&server, &mut client, "stopped-segments").await;
    scratch.seed("disk.img", &data);
    let local_dir = tempfile::tempdir().expect("local dir");
    let local = local_dir.path().join("disk.img");

    // Stop a segmented download partway, as a killed process would.
    let (progress, mut reports) = ProgressSink::watch();
    let remote = scratch.remote("disk.img");
    let options = DownloadOptions::default().segments(4).progress(progress);
    let download = client.download_file(&remote, &local, &options);
    let stop = async {
        while reports.changed().await.is_ok() {
            if reports.borrow().bytes_done >= 4 * 1024 * 1024 {
                break;
            }
        }
    };
    tokio::select! {
        result = download => panic!("the download finished before it was stopped: {result:?}"),
        () = stop => {}
    }
    drop(client);

    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("reconnect to vsftpd");
    let resumed = client
        .download_file(&remote, &local, &DownloadOptions::default().resume(true))
        .await
        .expect("download after the stopped one");

    assert_eq!(resumed.resumed_from, 0);
    assert_eq!(resumed.sha256, sha256_hex(&data));
    assert_eq!(sha256_file(&local), sha256_hex(&data));
    assert_eq!(common::local_names(local_dir.path()), vec!["disk.img"]);
}

#[tokio::test]
#[ignore = "needs vsftpd: run scripts/test.sh"]
async fn vsftpd_local_write_failure_keeps_session_in_step() {
    let server = vsftpd();
    let data = pseudo_random(2 * 1024 * 1024);
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect to vsftpd");
    let scratch = Scratch::create(&server, &mut client, "local-failure").await;
    scratch.seed("disk.img", &data);

    for _ in 0..3 {
        let error = client
            .download_to(
                &scratch.remote("disk.img"),
                FailingWriter,
                &DownloadOptions::default(),
            )
            .await
            .expect_err("a download into a writer that fails");
        assert!(matches!(error, FtpError::Stream { .. }), "{error:?}");

        let size = client
            .size(&scratch.remote("disk.img"))
            .await
            .expect("SIZE after the failed download");
        assert_eq!(size, data.len() as u64);
        let names = client
            .list_names(&scratch.remote)
            .await
            .expect("listing after the failed download");
        assert!(
            names.iter().any(|name| name.ends_with("disk.img")),
            "{names:?}"
        );
    }

    let local_dir = tempfile::tempdir().expect("local dir");
    let missing = local_dir.path().join("no-such-folder").join("disk.img");
    let error = client
        .download_file(
            &scratch.remote("disk.img"),
            &missing,
            &DownloadOptions::default(),
        )
        .await
        .expect_err("a download into a missing folder");
    match &error {
        FtpError::Io { path, source } => {
            assert_eq!(path, &missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected FtpError::Io, got {other:?}"),
    }
    assert_eq!(
        client
            .size(&scratch.remote("disk.img"))
            .await
            .expect("SIZE after the rejected download"),
        data.len() as u64
    );
}

/// A writer whose every write fails, as a full disk or a closed pipe would.
struct FailingWriter;

impl tokio::io::AsyncWrite for FailingWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        _data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Err(std::io::Error::other("the writer is closed")))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
