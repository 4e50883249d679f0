//! An in-process explicit-FTPS server (libunftp with a file-system back end) for tests.
//!
//! Each [`TestServer`] gets its own CA, a leaf certificate signed by it, a temporary FTP root and
//! a free port on 127.0.0.1. The server requires TLS on control and data connections and accepts
//! one user name and password.

#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use brightbox_ftp::FtpsConfig;
use libunftp::ServerBuilder;
use libunftp::options::FtpsRequired;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use sha2::{Digest, Sha256};
use unftp_core::auth::{AuthenticationError, Authenticator, Credentials, Principal};
use unftp_sbe_fs::Filesystem;

pub const USER: &str = "acc-test1";
pub const PASSWORD: &str = "correct-horse-battery-staple-91";

/// A throwaway CA and one server certificate it signed.
pub struct TestPki {
    pub ca_pem: String,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
}

impl TestPki {
    /// Creates a CA and a leaf certificate whose subjectAltName lists `names` (DNS names or IP
    /// addresses).
    pub fn new(names: &[&str]) -> TestPki {
        let ca_key = KeyPair::generate().expect("generate CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "brightbox-ftp test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().expect("generate leaf key");
        let names = names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>();
        let mut leaf_params = CertificateParams::new(names).expect("leaf params");
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "brightbox-ftp test server");
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("sign leaf certificate");

        TestPki {
            ca_pem: ca_cert.pem(),
            leaf_pem: leaf_cert.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
        }
    }
}

/// Accepts exactly one user name and password.
#[derive(Debug)]
struct SingleUser {
    user: String,
    password: String,
}

#[async_trait]
impl Authenticator for SingleUser {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        if username != self.user {
            return Err(AuthenticationError::BadUser);
        }
        if creds.password.as_deref() != Some(self.password.as_str()) {
            return Err(AuthenticationError::BadPassword);
        }
        Ok(Principal {
            username: username.to_owned(),
        })
    }
}

/// A running libunftp server; it stops when dropped.
pub struct TestServer {
    pub address: SocketAddr,
    pub ca_pem: String,
    pub root: tempfile::TempDir,
    _certificates: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts a server whose certificate is valid for `localhost` and `127.0.0.1`.
    pub async fn start() -> TestServer {
        Self::start_with(TestPki::new(&["localhost", "127.0.0.1"])).await
    }

    /// Starts a server that presents the leaf certificate of `pki`.
    pub async fn start_with(pki: TestPki) -> TestServer {
        Self::start_inner(pki, true).await
    }

    /// Starts a server for plain FTP without TLS; `ca_pem` is still filled but unused.
    pub async fn start_plain() -> TestServer {
        Self::start_inner(TestPki::new(&["127.0.0.1"]), false).await
    }

    async fn start_inner(pki: TestPki, tls: bool) -> TestServer {
        let root = tempfile::tempdir().expect("FTP root");
        std::fs::create_dir(root.path().join("incoming")).expect("create incoming/");

        // The key and certificate live outside the FTP root so clients cannot read them.
        let certificates = tempfile::tempdir().expect("certificate dir");
        let certificate_file = certificates.path().join("server.pem");
        let key_file = certificates.path().join("server.key");
        std::fs::write(&certificate_file, &pki.leaf_pem).expect("write certificate");
        std::fs::write(&key_file, &pki.leaf_key_pem).expect("write key");

        let storage_root = root.path().to_owned();
        let authenticator = Arc::new(SingleUser {
            user: USER.to_owned(),
            password: PASSWORD.to_owned(),
        });
        let builder = ServerBuilder::with_authenticator(
            Box::new(move || Filesystem::new(storage_root.clone()).expect("open FTP root")),
            authenticator,
        )
        .passive_ports(50000..=60000);
        let builder = if tls {
            builder
                .ftps(certificate_file, key_file)
                .ftps_required(FtpsRequired::All, FtpsRequired::All)
        } else {
            builder
        };
        let server = builder.build().expect("build libunftp server");

        // libunftp cannot bind port 0 and report the port, so reserve a free port, release it
        // and poll until the server accepts on it.
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("reserve a port");
            probe.local_addr().expect("probe address").port()
        };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let task = tokio::spawn(async move {
            if let Err(error) = server.listen(address.to_string()).await {
                eprintln!("libunftp stopped: {error}");
            }
        });
        wait_until_accepting(address).await;

        TestServer {
            address,
            ca_pem: pki.ca_pem,
            root,
            _certificates: certificates,
            task,
        }
    }

    /// Returns settings for the test user that trust this server's CA.
    pub fn config(&self) -> FtpsConfig {
        self.config_for_host("127.0.0.1")
    }

    /// Returns settings that connect to `host` on this server's port and trust its CA.
    pub fn config_for_host(&self, host: &str) -> FtpsConfig {
        FtpsConfig::new(host, USER, PASSWORD)
            .port(self.address.port())
            .add_root_certificate_pem(self.ca_pem.as_bytes())
            .expect("test CA PEM is valid")
            .io_timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
    }

    /// Returns the local path of `relative` inside the FTP root.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }
}

async fn wait_until_accepting(address: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "libunftp did not accept connections on {address} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `length` pseudo-random bytes to `dir/name` and returns the path and its SHA-256.
pub fn random_file(dir: &Path, name: &str, length: usize) -> (PathBuf, String) {
    // xorshift64* seeded from the clock: cheap, incompressible, different on each run.
    let mut state = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
        | 1;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    bytes.truncate(length);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write random file");
    (path, sha256_hex(&bytes))
}

/// Returns the SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Returns the SHA-256 of the file at `path` as lowercase hex.
pub fn sha256_file(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).expect("read file for hashing"))
}

/// Returns the names in `dir` on the local disk, sorted.
pub fn local_names(dir: &Path) -> Vec<String> {
    let mut names = std::fs::read_dir(dir)
        .expect("read directory")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>();
    names.sort();
    names
}
