//! The explicit-FTPS server: libunftp over the storage folder, with a password check
//! and a storage wrapper that keeps everything outside `incoming/` read-only.

use std::fmt::Debug;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use libunftp::ServerBuilder;
use libunftp::options::{FtpsRequired, Shutdown};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use unftp_core::auth::{AuthenticationError, Authenticator, Credentials, DefaultUser, Principal};
use unftp_core::storage::{self, ErrorKind, Fileinfo, StorageBackend};
use unftp_sbe_fs::{Filesystem, Meta};

use crate::EmulatorError;
use crate::secret::random_string;

/// The folder under the storage root that FTP clients may write to.
pub(crate) const INCOMING: &str = "incoming";
/// The folder under the storage root that contains registered images, read-only over FTP.
pub(crate) const IMAGES: &str = "images";

const PASSWORD_LEN: usize = 24;
const READY_POLL_INTERVAL: Duration = Duration::from_millis(20);
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts to start on a freshly picked port, because another process can take a
/// picked port between the probe and libunftp's own bind.
const AUTO_PORT_ATTEMPTS: usize = 5;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Returns a new random FTP password.
pub(crate) fn new_password() -> String {
    random_string(PASSWORD_LEN)
}

/// The current library FTP password. Only the newest password is accepted.
pub(crate) struct FtpPassword {
    current: Mutex<String>,
}

impl FtpPassword {
    /// Creates a random password that no client knows until the first reset.
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        FtpPassword {
            current: Mutex::new(random_string(PASSWORD_LEN)),
        }
    }

    /// Creates the holder of `password`: a new one, or one stored in the state folder.
    pub(crate) fn with_password(password: String) -> Self {
        FtpPassword {
            current: Mutex::new(password),
        }
    }

    /// Returns the current password.
    pub(crate) fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the password with a new random one and returns it.
    pub(crate) fn reset(&self) -> String {
        let fresh = random_string(PASSWORD_LEN);
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.clone_from(&fresh);
        fresh
    }

    fn matches(&self, candidate: &str) -> bool {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        constant_time_eq(current.as_bytes(), candidate.as_bytes())
    }
}

impl Debug for FtpPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FtpPassword(<redacted>)")
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Accepts the account id as user name with the current library FTP password.
#[derive(Debug)]
pub(crate) struct LibraryAuthenticator {
    pub(crate) account_id: String,
    pub(crate) password: Arc<FtpPassword>,
}

#[async_trait]
impl Authenticator for LibraryAuthenticator {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        if username != self.account_id {
            tracing::warn!(username, source_ip = %creds.source_ip, "FTP login rejected: unknown user");
            return Err(AuthenticationError::BadUser);
        }
        let password = creds.password.as_deref().unwrap_or_default();
        if !self.password.matches(password) {
            tracing::warn!(username, source_ip = %creds.source_ip, "FTP login rejected: wrong password");
            return Err(AuthenticationError::BadPassword);
        }
        tracing::info!(username, source_ip = %creds.source_ip, "FTP login accepted");
        Ok(Principal {
            username: username.to_owned(),
        })
    }
}

/// The part of the storage root a path points into, after resolving `.` and `..` lexically.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    /// A path inside `incoming/` (not the folder itself): writable.
    InsideIncoming,
    /// Any other path: the root, `incoming/` itself, `images/` and anything under it.
    ReadOnly,
}

fn locate(path: &Path) -> Location {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    match parts.as_slice() {
        [first, _, ..] if *first == INCOMING => Location::InsideIncoming,
        _ => Location::ReadOnly,
    }
}

/// The file system back end with the library's rules: writes, deletes and renames only
/// inside `incoming/`, no folder creation or removal anywhere.
#[derive(Debug)]
pub(crate) struct LibraryFilesystem {
    root: PathBuf,
    inner: Option<Filesystem>,
}

impl LibraryFilesystem {
    fn open(root: &Path) -> Self {
        let inner = match Filesystem::new(root.to_owned()) {
            Ok(filesystem) => Some(filesystem),
            Err(error) => {
                tracing::error!(root = %root.display(), %error, "failed to open the FTP storage folder");
                None
            }
        };
        LibraryFilesystem {
            root: root.to_owned(),
            inner,
        }
    }

    fn filesystem(&self) -> storage::Result<&Filesystem> {
        self.inner.as_ref().ok_or_else(|| {
            storage::Error::new(
                ErrorKind::LocalError,
                format!(
                    "the storage folder {} could not be opened",
                    self.root.display()
                ),
            )
        })
    }

    fn require_writable(operation: &str, path: &Path) -> storage::Result<()> {
        if locate(path) == Location::InsideIncoming {
            return Ok(());
        }
        tracing::warn!(operation, path = %path.display(), "FTP write rejected outside incoming/");
        Err(storage::Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{operation} {} is not allowed: only files inside /{INCOMING}/ are writable",
                path.display()
            ),
        ))
    }
}

#[async_trait]
impl StorageBackend<DefaultUser> for LibraryFilesystem {
    type Metadata = Meta;

    fn supported_features(&self) -> u32 {
        storage::FEATURE_RESTART | storage::FEATURE_SITEMD5
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> storage::Result<Meta> {
        self.filesystem()?.metadata(user, path).await
    }

    async fn list<P>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> storage::Result<Vec<Fileinfo<PathBuf, Meta>>>
    where
        P: AsRef<Path> + Send + Debug,
    {
        self.filesystem()?.list(user, path).await
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
        start_pos: u64,
    ) -> storage::Result<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>> {
        self.filesystem()?.get(user, path, start_pos).await
    }

    async fn put<
        P: AsRef<Path> + Send + Debug,
        R: tokio::io::AsyncRead + Send + Sync + Unpin + 'static,
    >(
        &self,
        user: &DefaultUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> storage::Result<u64> {
        let path = path.as_ref().to_owned();
        Self::require_writable("STOR", &path)?;
        let written = self
            .filesystem()?
            .put(user, input, &path, start_pos)
            .await?;
        tracing::info!(path = %path.display(), start_pos, written, "FTP upload stored");
        Ok(written)
    }

    async fn del<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> storage::Result<()> {
        Self::require_writable("DELE", path.as_ref())?;
        self.filesystem()?.del(user, path).await
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        path: P,
    ) -> storage::Result<()> {
        tracing::warn!(path = %path.as_ref().display(), "FTP MKD rejected");
        Err(storage::Error::new(
            ErrorKind::PermissionDenied,
            "MKD is not allowed: the image library has a fixed folder layout",
        ))
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        from: P,
        to: P,
    ) -> storage::Result<()> {
        Self::require_writable("RNFR", from.as_ref())?;
        Self::require_writable("RNTO", to.as_ref())?;
        self.filesystem()?.rename(user, from, to).await
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        path: P,
    ) -> storage::Result<()> {
        tracing::warn!(path = %path.as_ref().display(), "FTP RMD rejected");
        Err(storage::Error::new(
            ErrorKind::PermissionDenied,
            "RMD is not allowed: the image library has a fixed folder layout",
        ))
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> storage::Result<()> {
        self.filesystem()?.cwd(user, path).await
    }
}

/// Paths of the PEM files libunftp loads for TLS.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    pub(crate) chain: PathBuf,
    pub(crate) key: PathBuf,
}

/// A running FTPS server.
#[derive(Debug)]
pub(crate) struct FtpServer {
    pub(crate) addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), libunftp::ServerError>>>,
}

impl FtpServer {
    /// Starts libunftp on 127.0.0.1 and waits until it accepts connections.
    ///
    /// libunftp cannot bind port 0 and has no ready signal. With `port` 0 this picks a
    /// free port, starts the server and polls it, and tries a new port when the start fails.
    pub(crate) async fn start(
        root: &Path,
        tls: &TlsFiles,
        port: u16,
        authenticator: Arc<LibraryAuthenticator>,
    ) -> Result<Self, EmulatorError> {
        let attempts = if port == 0 { AUTO_PORT_ATTEMPTS } else { 1 };
        let mut last_error = None;
        for attempt in 1..=attempts {
            let chosen = probe_port(port)?;
            match Self::start_on(root, tls, chosen, authenticator.clone()).await {
                Ok(server) => return Ok(server),
                Err(error) => {
                    tracing::warn!(attempt, port = chosen, %error, "FTPS server start failed");
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or(EmulatorError::FtpNotReady { port, waited_ms: 0 }))
    }

    async fn start_on(
        root: &Path,
        tls: &TlsFiles,
        port: u16,
        authenticator: Arc<LibraryAuthenticator>,
    ) -> Result<Self, EmulatorError> {
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let storage_root = root.to_owned();
        let server = ServerBuilder::with_authenticator(
            Box::new(move || LibraryFilesystem::open(&storage_root)),
            authenticator,
        )
        .greeting("Brightbox image library emulator")
        .ftps(tls.chain.clone(), tls.key.clone())
        .ftps_required(FtpsRequired::All, FtpsRequired::All)
        .shutdown_indicator(async move {
            // A dropped sender also means shut down.
            let _ = shutdown_rx.await;
            Shutdown::new().grace_period(SHUTDOWN_GRACE)
        })
        .build()
        .map_err(|source| EmulatorError::FtpServer { port, source })?;

        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut task = tokio::spawn(server.listen(addr.to_string()));

        let started = tokio::time::Instant::now();
        loop {
            if task.is_finished() {
                return match (&mut task).await {
                    Ok(Err(source)) => Err(EmulatorError::FtpServer { port, source }),
                    Ok(Ok(())) | Err(_) => Err(EmulatorError::FtpNotReady {
                        port,
                        waited_ms: elapsed_ms(started),
                    }),
                };
            }
            if greets(addr).await {
                tracing::info!(%addr, "FTPS server accepting connections");
                return Ok(FtpServer {
                    addr,
                    shutdown: Some(shutdown_tx),
                    task: Some(task),
                });
            }
            if started.elapsed() >= READY_TIMEOUT {
                task.abort();
                return Err(EmulatorError::FtpNotReady {
                    port,
                    waited_ms: elapsed_ms(started),
                });
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }

    /// Asks libunftp to stop and waits for it, aborting it after the grace period.
    pub(crate) async fn stop(mut self) {
        self.signal_stop();
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE * 2, &mut task).await {
                Ok(Ok(Ok(()))) => tracing::info!(addr = %self.addr, "FTPS server stopped"),
                Ok(Ok(Err(error))) => {
                    tracing::warn!(addr = %self.addr, %error, "FTPS server stopped with an error");
                }
                Ok(Err(error)) => {
                    tracing::warn!(addr = %self.addr, %error, "FTPS server task failed");
                }
                Err(_) => {
                    tracing::warn!(addr = %self.addr, "FTPS server did not stop in time; aborting it");
                    task.abort();
                }
            }
        }
    }

    fn signal_stop(&mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// Returns true when a server at `addr` sends an FTP greeting (a line starting with 220).
/// The probe then sends QUIT so libunftp ends the session without logging an error.
async fn greets(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let mut reader = BufReader::new(stream);
    let mut greeting = String::new();
    let read = tokio::time::timeout(READY_TIMEOUT, reader.read_line(&mut greeting)).await;
    if !matches!(read, Ok(Ok(_))) || !greeting.starts_with("220") {
        return false;
    }
    let mut stream = reader.into_inner();
    // The greeting proves readiness. A failed QUIT only leaves an idle session that times out.
    let _ = stream.write_all(b"QUIT\r\n").await;
    let mut farewell = String::new();
    let mut reader = BufReader::new(stream);
    let _ = tokio::time::timeout(READY_POLL_INTERVAL * 10, reader.read_line(&mut farewell)).await;
    true
}

fn elapsed_ms(started: tokio::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Binds `port` on 127.0.0.1 (0 asks the OS for a free port) and releases it for
/// libunftp, so a taken port is reported as [`EmulatorError::Bind`].
fn probe_port(port: u16) -> Result<u16, EmulatorError> {
    let bind_error = |source| EmulatorError::Bind {
        service: "FTP",
        port,
        source,
    };
    let probe = StdTcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(bind_error)?;
    let bound = probe.local_addr().map_err(bind_error)?.port();
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_allows_files_inside_incoming() {
        assert_eq!(
            locate(Path::new("/incoming/disk.img")),
            Location::InsideIncoming
        );
        assert_eq!(
            locate(Path::new("incoming/disk.img")),
            Location::InsideIncoming
        );
        assert_eq!(
            locate(Path::new("/images/../incoming/./disk.img")),
            Location::InsideIncoming
        );
    }

    #[test]
    fn locate_keeps_other_paths_read_only() {
        for path in [
            "/",
            "/incoming",
            "/incoming/",
            "/images/img-abcde",
            "/images",
            "/incoming/../images/img-abcde",
            "/incoming/..",
            "/disk.img",
            "/../incoming",
        ] {
            assert_eq!(locate(Path::new(path)), Location::ReadOnly, "{path}");
        }
    }

    #[test]
    fn password_reset_replaces_old_password() {
        let password = FtpPassword::new();
        let first = password.reset();
        assert!(password.matches(&first));

        let second = password.reset();
        assert_ne!(first, second);
        assert!(password.matches(&second));
        assert!(!password.matches(&first));
        assert!(!password.matches(""));
    }

    #[test]
    fn password_debug_is_redacted() {
        let password = FtpPassword::new();
        let issued = password.reset();
        let debug = format!("{password:?}");
        assert!(!debug.contains(&issued), "{debug}");
    }
}
