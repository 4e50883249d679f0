//! Transfer of image files to and from the library: the [`Transport`]
//! trait and its FTPS implementation.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use brightbox_ftp::{
    DownloadOptions, EntryKind, FtpError, FtpsClient, FtpsConfig, ImageFormat, Progress,
    ProgressSink, RemoteEntry, UploadOptions,
};
use tokio::sync::watch;

use crate::partial_upload::{source_fingerprint, stale_partials, temporary_name};

/// Callback that receives the number of bytes sent so far.
pub type ProgressFn<'a> = dyn Fn(u64) + Send + Sync + 'a;

/// A way to place a local disk image where the image library can register
/// it, and to fetch stored images back.
///
/// A workflow calls [`Transport::upload`] and then registers the returned
/// [`UploadedFile::source`]. Implementations must only return `Ok` once the
/// remote copy is complete and checked; the workflow registers whatever a
/// transport reports as uploaded.
///
/// Only `upload` is required. [`Transport::download`], [`Transport::list`]
/// and [`Transport::delete`] return [`TransportError::Unsupported`] unless an
/// implementation provides them; [`FtpsTransport`] provides all four.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Uploads `local` under the file name `remote_name` and verifies the copy.
    ///
    /// # Errors
    ///
    /// Returns a [`TransportError`] when the file cannot be read, the server
    /// rejects the transfer, or the remote copy does not match the local file.
    async fn upload(
        &self,
        local: &Path,
        remote_name: &str,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<UploadedFile, TransportError>;

    /// Downloads `remote_path`, such as `images/img-12345`, to `local`.
    ///
    /// Implementations must write to a temporary name and rename it to
    /// `local` only once the byte count matches the remote size, so `local`
    /// never contains a partial file. With `resume`, a temporary file left by
    /// an earlier attempt is continued.
    ///
    /// # Errors
    ///
    /// Returns [`TransportError::Unsupported`] unless the transport
    /// implements downloads, and otherwise a [`TransportError`] when the
    /// remote file is missing, the transfer fails or the size differs.
    async fn download(
        &self,
        remote_path: &str,
        local: &Path,
        resume: bool,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<DownloadedFile, TransportError> {
        let _ = (remote_path, local, resume, progress);
        Err(TransportError::Unsupported {
            operation: "download",
        })
    }

    /// Lists the regular files in `remote_dir`, such as `incoming`.
    ///
    /// # Errors
    ///
    /// Returns [`TransportError::Unsupported`] unless the transport
    /// implements listings, and otherwise a [`TransportError`] when the
    /// listing fails.
    async fn list(&self, remote_dir: &str) -> Result<Vec<RemoteEntry>, TransportError> {
        let _ = remote_dir;
        Err(TransportError::Unsupported { operation: "list" })
    }

    /// Deletes the remote file `remote_path`.
    ///
    /// # Errors
    ///
    /// Returns [`TransportError::Unsupported`] unless the transport
    /// implements deletion, and otherwise a [`TransportError`] when the
    /// server rejects the deletion.
    async fn delete(&self, remote_path: &str) -> Result<(), TransportError> {
        let _ = remote_path;
        Err(TransportError::Unsupported {
            operation: "delete",
        })
    }

    /// Removes the staging copy of an upload once the image it was
    /// registered as is available.
    ///
    /// The default does nothing, which suits the FTPS library: the service
    /// moves the file out of `incoming/` itself.
    ///
    /// # Errors
    ///
    /// Returns a [`TransportError`] when the copy cannot be removed. The
    /// workflow logs it and still succeeds, because the image is available.
    async fn remove_staged(&self, uploaded: &UploadedFile) -> Result<(), TransportError> {
        let _ = uploaded;
        Ok(())
    }
}

/// A file that a [`Transport`] has downloaded and checked against the remote size.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadedFile {
    /// The local file, under its final name.
    pub local_path: PathBuf,
    /// Length of the file in bytes.
    pub bytes: u64,
    /// SHA-256 of the whole file as lowercase hex.
    pub sha256: String,
    /// Format detected from the file's first bytes.
    pub format: ImageFormat,
    /// Bytes of an earlier partial download that were kept, not fetched again.
    pub resumed_from: u64,
}

impl DownloadedFile {
    /// Creates a record of a checked download.
    pub fn new(
        local_path: impl Into<PathBuf>,
        bytes: u64,
        sha256: impl Into<String>,
        format: ImageFormat,
    ) -> Self {
        Self {
            local_path: local_path.into(),
            bytes,
            sha256: sha256.into(),
            format,
            resumed_from: 0,
        }
    }
}

/// A file that a [`Transport`] has uploaded and verified.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadedFile {
    /// The uploaded file's name: sent as `source` when registering an FTP
    /// upload, and the object name of an Orbit upload.
    pub source: String,
    /// Path of the file on the remote server, for messages.
    pub remote_path: String,
    /// Number of bytes transferred and confirmed on the server.
    pub bytes: u64,
    /// Bytes of a partial upload left by an earlier attempt or run that were kept, not sent
    /// again.
    pub resumed_from: u64,
    /// SHA-256 of the whole local file as lowercase hex, a kept prefix included, when the
    /// transport computed it.
    pub sha256: Option<String>,
    /// URL the service downloads the image from. When set, the image is
    /// registered with `http_url` instead of `source`. Temp URLs carry a
    /// signature, so `Debug` shows this URL without its query.
    pub http_url: Option<url::Url>,
}

impl UploadedFile {
    /// Creates a record of a verified upload, registered by file name.
    pub fn new(source: impl Into<String>, remote_path: impl Into<String>, bytes: u64) -> Self {
        Self {
            source: source.into(),
            remote_path: remote_path.into(),
            bytes,
            resumed_from: 0,
            sha256: None,
            http_url: None,
        }
    }

    /// Records the number of bytes an earlier attempt had stored and this upload kept.
    pub fn with_resumed_from(mut self, bytes: u64) -> Self {
        self.resumed_from = bytes;
        self
    }

    /// Records the SHA-256 of the whole local file as lowercase hex.
    pub fn with_sha256(mut self, sha256: impl Into<String>) -> Self {
        self.sha256 = Some(sha256.into());
        self
    }

    /// Registers the upload by `url` (usually a temp URL) instead of by name.
    pub fn with_http_url(mut self, url: url::Url) -> Self {
        self.http_url = Some(url);
        self
    }
}

impl fmt::Debug for UploadedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadedFile")
            .field("source", &self.source)
            .field("remote_path", &self.remote_path)
            .field("bytes", &self.bytes)
            .field("resumed_from", &self.resumed_from)
            .field("sha256", &self.sha256)
            .field("http_url", &self.http_url.as_ref().map(url_without_query))
            .finish()
    }
}

/// Returns `url` without its query and fragment, which may hold a signature.
pub(crate) fn url_without_query(url: &url::Url) -> String {
    url[..url::Position::AfterPath].to_owned()
}

/// Failure of a [`Transport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The FTPS transfer failed.
    #[error(transparent)]
    Ftp(Box<FtpError>),
    /// A transport outside this crate failed.
    #[error("{transport} upload of {} failed", local.display())]
    Other {
        /// Name of the transport, for messages.
        transport: &'static str,
        /// The local file being uploaded.
        local: PathBuf,
        /// The underlying failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The transport does not implement this operation.
    #[error(
        "the transport does not support {operation}; use FtpsTransport or implement \
         Transport::{operation}"
    )]
    Unsupported {
        /// Name of the trait method, such as `download`.
        operation: &'static str,
    },
    /// A downloaded file's length differs from the remote size.
    #[error(
        "downloaded {received} bytes of {remote_path} but the server reports {expected}; \
         the local file was removed, download it again"
    )]
    SizeMismatch {
        /// The remote file.
        remote_path: String,
        /// Size the server reported with `SIZE`.
        expected: u64,
        /// Bytes written locally.
        received: u64,
    },
}

impl From<FtpError> for TransportError {
    fn from(error: FtpError) -> Self {
        TransportError::Ftp(Box::new(error))
    }
}

impl TransportError {
    /// Returns whether running the same upload again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            TransportError::Ftp(error) => error.is_retryable(),
            TransportError::Other { .. }
            | TransportError::Unsupported { .. }
            | TransportError::SizeMismatch { .. } => false,
        }
    }

    /// Returns whether the server rejected the credentials, as FTP reply
    /// `530` does after a newer password reset.
    pub fn is_authentication(&self) -> bool {
        matches!(self, TransportError::Ftp(error) if matches!(**error, FtpError::LoginRejected { .. }))
    }
}

/// Directory of the FTPS image library that accepts new uploads.
pub const INCOMING_DIR: &str = "incoming";

/// Uploads into the `incoming/` directory of an FTPS image library, and
/// downloads, lists and deletes files there and in `images/`.
///
/// Each operation opens its own logged-in session, so one transport can
/// serve several at once. A retryable failure (a dropped connection, a
/// stall, FTP replies 421, 425 or 426) reconnects and resumes from the bytes
/// already stored, up to [`FtpsTransport::DEFAULT_RETRIES`] times unless set
/// otherwise. Downloads retry the same way, and with `resume` they continue a
/// local partial file from an earlier run.
///
/// # Resuming uploads across runs
///
/// An upload writes to `incoming/.<name>.<fingerprint>.part` (see
/// [`upload_temporary_name`](crate::upload_temporary_name)), where the
/// fingerprint identifies the local file by its length, modification time
/// and first and last MiB. When the upload fails with a retryable error, or
/// its future is dropped, that file stays on the server, and the next upload
/// of the same unchanged file under the same name continues it from its
/// size. The returned SHA-256 still covers the whole file, because the FTP
/// client hashes the kept prefix from the local file. After a non-retryable
/// failure the transport deletes the partial file. Before it uploads, the
/// transport deletes the partial files of the same name with another
/// fingerprint, and the unfingerprinted `.<name>.part` of earlier versions,
/// so a different file never continues them. A partial file longer than the
/// local file is overwritten from byte 0.
///
/// NOTE: two processes that upload different files under one name at the
/// same time delete each other's partial files, and the later rename wins.
#[derive(Clone)]
pub struct FtpsTransport {
    config: Arc<FtpsConfig>,
    retries: u32,
}

impl FtpsTransport {
    /// Number of reconnect-and-resume attempts after a retryable failure.
    pub const DEFAULT_RETRIES: u32 = 3;

    /// Creates a transport that connects with `config`.
    pub fn new(config: FtpsConfig) -> Self {
        Self {
            config: Arc::new(config),
            retries: Self::DEFAULT_RETRIES,
        }
    }

    /// Sets how many times a retryable failure reconnects and resumes.
    pub fn retries(mut self, attempts: u32) -> Self {
        self.retries = attempts;
        self
    }

    /// Opens a logged-in session, trying again after a retryable failure (a reset or a
    /// silent server during the greeting, `AUTH TLS` or login) up to `retries` times.
    async fn connect(&self) -> Result<FtpsClient, FtpError> {
        let mut attempt = 0_u32;
        loop {
            match FtpsClient::connect(&self.config).await {
                Ok(client) => return Ok(client),
                Err(error) if connect_retryable(&error) && attempt < self.retries => {
                    attempt += 1;
                    let delay = CONNECT_RETRY_DELAY * attempt;
                    tracing::warn!(%error, attempt, of = self.retries, ?delay, "FTPS connect failed; trying again");
                    tokio::time::sleep(delay).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Pause before the first connect retry; later retries wait a multiple of it.
const CONNECT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// Returns whether a failed connect may succeed when tried again: the errors the FTP client
/// marks retryable, and [`handshake_cut`].
fn connect_retryable(error: &FtpError) -> bool {
    handshake_cut(error) || error.is_retryable()
}

/// Returns whether the TLS handshake of a control connection failed without a
/// certificate or protocol error from the verifier, as when the connection is reset or
/// carries a stray plain-text reply.
///
/// NOTE: after a control connection reset, a reconnect to libunftp 0.24 sometimes fails
/// with `received corrupt message of type InvalidContentType`. The cause is not known;
/// the FTP client does not retry it, so the transport does.
fn handshake_cut(error: &FtpError) -> bool {
    matches!(
        error,
        FtpError::TlsHandshake {
            channel: brightbox_ftp::Channel::Control,
            source: None,
            ..
        }
    )
}

impl fmt::Debug for FtpsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // FtpsConfig's own Debug redacts the password.
        f.debug_struct("FtpsTransport")
            .field("config", &self.config)
            .field("retries", &self.retries)
            .finish()
    }
}

#[async_trait]
impl Transport for FtpsTransport {
    async fn upload(
        &self,
        local: &Path,
        remote_name: &str,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<UploadedFile, TransportError> {
        // Checked before the name reaches LIST and DELE of stale partial files.
        brightbox_ftp::validate_remote_name(remote_name)?;
        let fingerprint = source_fingerprint(local, remote_name).await?;
        let temporary = temporary_name(remote_name, &fingerprint);
        let (sink, sent) = ProgressSink::watch();
        let mut attempt = 0_u32;
        let upload = loop {
            let mut client = self.connect().await?;
            if attempt == 0 {
                remove_stale_partials(&mut client, remote_name, &temporary).await;
            }
            // Every pass continues the temporary file of this source, when there is one.
            let options = UploadOptions::default()
                .temporary_name(&temporary)
                .resume(true)
                .keep_partial_on_error(true)
                .retries(self.retries)
                .progress(sink.clone());
            let upload = client.upload_file_with(local, INCOMING_DIR, remote_name, &options);
            match forward_progress(upload, sent.clone(), progress).await {
                Ok(upload) => {
                    // The upload is already verified; a failed QUIT must not hide that.
                    if let Err(error) = client.quit().await {
                        tracing::debug!(%error, "closing the FTPS session failed after a verified upload");
                    }
                    break upload;
                }
                Err(error) if handshake_cut(&error) && attempt < self.retries => {
                    attempt += 1;
                    let delay = CONNECT_RETRY_DELAY * attempt;
                    tracing::warn!(%error, attempt, of = self.retries, ?delay, "a reconnect during the upload failed in the TLS handshake; connecting again and resuming");
                    let _ = client.quit().await;
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    // A retryable failure, a cut handshake included, leaves a partial file
                    // that the next run continues.
                    if !connect_retryable(&error) {
                        discard_partial(&mut client, &temporary, &error).await;
                    }
                    let _ = client.quit().await;
                    return Err(error.into());
                }
            }
        };
        if let Some(progress) = progress {
            progress(upload.bytes);
        }
        Ok(
            UploadedFile::new(remote_name, upload.remote_path, upload.bytes)
                .with_resumed_from(upload.resumed_from)
                .with_sha256(upload.sha256),
        )
    }

    async fn download(
        &self,
        remote_path: &str,
        local: &Path,
        resume: bool,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<DownloadedFile, TransportError> {
        prepare_private_part(&ftp_part_path(local), local, "FTPS").await?;
        let mut client = self.connect().await?;
        let result = download_checked(
            &mut client,
            remote_path,
            local,
            resume,
            self.retries,
            progress,
        )
        .await;
        close(client, result.is_ok()).await;
        result
    }

    async fn list(&self, remote_dir: &str) -> Result<Vec<RemoteEntry>, TransportError> {
        let mut client = FtpsClient::connect(&self.config).await?;
        let result = client.list(remote_dir).await;
        close(client, result.is_ok()).await;
        Ok(result?
            .into_iter()
            .filter(|entry| entry.kind == EntryKind::File)
            .collect())
    }

    async fn delete(&self, remote_path: &str) -> Result<(), TransportError> {
        let mut client = FtpsClient::connect(&self.config).await?;
        let result = client.delete(remote_path).await;
        close(client, result.is_ok()).await;
        Ok(result?)
    }
}

/// Deletes the partial uploads of `remote_name` in `incoming/` other than `own`.
///
/// A failure is logged and the upload goes on, because a stale partial file only costs space
/// until [`crate::Library::clean_incoming`] runs.
async fn remove_stale_partials(client: &mut FtpsClient, remote_name: &str, own: &str) {
    let entries = match client.list(INCOMING_DIR).await {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(%error, "listing incoming/ for stale partial uploads failed; uploading anyway");
            return;
        }
    };
    let names = entries
        .iter()
        .filter(|entry| entry.kind == EntryKind::File)
        .map(|entry| entry.name.as_str());
    for name in stale_partials(names, remote_name, own) {
        let path = format!("{INCOMING_DIR}/{name}");
        match client.delete(&path).await {
            Ok(()) => {
                tracing::info!(remote_path = %path, "deleted a partial upload of another source file with the same name");
            }
            Err(error) => {
                tracing::warn!(%error, remote_path = %path, "deleting a stale partial upload failed");
            }
        }
    }
}

/// Deletes the partial upload `incoming/<temporary>` after a failure that a re-run cannot
/// resume from, such as a local file that changed during the upload.
async fn discard_partial(client: &mut FtpsClient, temporary: &str, cause: &FtpError) {
    let path = format!("{INCOMING_DIR}/{temporary}");
    match client.delete(&path).await {
        Ok(()) => {
            tracing::info!(remote_path = %path, error = %cause, "deleted the partial upload after a failure that cannot be resumed");
        }
        Err(FtpError::NotFound { .. }) => {}
        Err(error) => {
            tracing::debug!(%error, remote_path = %path, "deleting the partial upload failed");
        }
    }
}

/// Downloads with the FTP client's own temporary name and size check, then
/// compares the result with a separate `SIZE` reply. The client skips its
/// own check when the server does not implement `SIZE`, and the separate
/// request turns that case into an error.
async fn download_checked(
    client: &mut FtpsClient,
    remote_path: &str,
    local: &Path,
    resume: bool,
    retries: u32,
    progress: Option<&ProgressFn<'_>>,
) -> Result<DownloadedFile, TransportError> {
    let expected = client.size(remote_path).await?;
    let (sink, received) = ProgressSink::watch();
    let options = DownloadOptions::default()
        .resume(resume)
        .retries(retries)
        .progress(sink);
    let download = client.download_file(remote_path, local, &options);
    let download = forward_progress(download, received, progress).await?;
    if download.bytes != expected {
        if let Err(error) = tokio::fs::remove_file(local).await {
            tracing::warn!(%error, local = %local.display(), "removing a download of the wrong size failed");
        }
        return Err(TransportError::SizeMismatch {
            remote_path: remote_path.to_owned(),
            expected,
            received: download.bytes,
        });
    }
    if let Some(progress) = progress {
        progress(download.bytes);
    }
    Ok(DownloadedFile {
        local_path: local.to_path_buf(),
        bytes: download.bytes,
        sha256: download.sha256,
        format: download.format,
        resumed_from: download.resumed_from,
    })
}

/// Returns `.<name>.part` beside `local`, the temporary file of an FTPS download.
fn ftp_part_path(local: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(local.file_name().unwrap_or_default());
    name.push(".part");
    local.with_file_name(name)
}

/// Mode of a download's temporary file and so of the downloaded image: readable and
/// writable by the owner only, because a disk image may hold secrets.
pub(crate) const DOWNLOAD_FILE_MODE: u32 = 0o600;

/// Creates the empty temporary file `part` with [`DOWNLOAD_FILE_MODE`], or restricts an
/// existing one to that mode, before a transfer writes it.
///
/// The FTPS and Orbit clients open the file without a mode, so a file they create gets
/// `0666` minus the umask (usually world-readable `0644`). A file that already exists keeps
/// its mode when they open or truncate it, and the rename to the final name keeps it too.
pub(crate) async fn prepare_private_part(
    part: &Path,
    local: &Path,
    transport: &'static str,
) -> Result<(), TransportError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let part_owned = part.to_path_buf();
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(DOWNLOAD_FILE_MODE)
            .open(&part_owned)
        {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::set_permissions(
                    &part_owned,
                    std::fs::Permissions::from_mode(DOWNLOAD_FILE_MODE),
                )
            }
            Err(error) => Err(error),
        }
    })
    .await
    .unwrap_or_else(|join_error| Err(std::io::Error::other(join_error)));
    result.map_err(|source| TransportError::Other {
        transport,
        local: local.to_path_buf(),
        source: Box::new(std::io::Error::new(
            source.kind(),
            format!(
                "cannot create the temporary file {}: {source}",
                part.display()
            ),
        )),
    })
}

/// Sends `QUIT`. After a successful operation a failed `QUIT` is only
/// logged, because the operation's result is already known.
async fn close(client: FtpsClient, succeeded: bool) {
    if let Err(error) = client.quit().await
        && succeeded
    {
        tracing::debug!(%error, "closing the FTPS session failed after a completed operation");
    }
}

/// A progress report that carries a byte count.
pub(crate) trait BytesDone {
    /// Returns the number of bytes transferred so far.
    fn bytes_done(&self) -> u64;
}

impl BytesDone for Progress {
    fn bytes_done(&self) -> u64 {
        self.bytes_done
    }
}

impl BytesDone for u64 {
    fn bytes_done(&self) -> u64 {
        *self
    }
}

/// Drives `transfer` to completion and forwards the byte counts published
/// on `updates` to `progress`.
///
/// Transfer clients take `'static` callbacks, so they report through a
/// watch channel. Forwarding happens on the caller's task so that
/// `progress` may borrow from the caller.
pub(crate) async fn forward_progress<T, V: BytesDone>(
    transfer: impl Future<Output = T>,
    mut updates: watch::Receiver<V>,
    progress: Option<&ProgressFn<'_>>,
) -> T {
    tokio::pin!(transfer);
    let mut watching = true;
    loop {
        tokio::select! {
            result = &mut transfer => return result,
            changed = updates.changed(), if watching => match changed {
                Ok(()) => {
                    if let Some(progress) = progress {
                        progress(updates.borrow_and_update().bytes_done());
                    }
                }
                Err(_) => watching = false,
            },
        }
    }
}
