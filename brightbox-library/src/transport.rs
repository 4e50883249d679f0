//! How image bytes reach the library: the [`Transport`] trait and its FTPS implementation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use brightbox_ftp::{FtpError, FtpsClient, FtpsConfig, ProgressSink, UploadOptions};

/// Callback that receives the number of bytes sent so far.
pub type ProgressFn<'a> = dyn Fn(u64) + Send + Sync + 'a;

/// A way to place a local disk image where the image library can register it.
///
/// A workflow calls [`Transport::upload`] and then registers the returned
/// [`UploadedFile::source`]. Implementations must only return `Ok` once the
/// remote copy is complete and checked; the workflow registers whatever a
/// transport reports as uploaded.
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
}

/// A file that a [`Transport`] has uploaded and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadedFile {
    /// The name to send as `source` when registering the image.
    pub source: String,
    /// Path of the file on the remote server, for messages.
    pub remote_path: String,
    /// Number of bytes transferred and confirmed on the server.
    pub bytes: u64,
}

impl UploadedFile {
    /// Creates a record of a verified upload.
    pub fn new(source: impl Into<String>, remote_path: impl Into<String>, bytes: u64) -> Self {
        Self {
            source: source.into(),
            remote_path: remote_path.into(),
            bytes,
        }
    }
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
            TransportError::Other { .. } => false,
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

/// Uploads into the `incoming/` directory of an FTPS image library.
///
/// Each upload opens its own logged-in session, so one transport can serve
/// several uploads at once. A retryable failure (a dropped connection, a
/// stall, FTP replies 421, 425 or 426) reconnects and resumes from the bytes
/// already stored, up to [`FtpsTransport::DEFAULT_RETRIES`] times unless set
/// otherwise. A partial file from an earlier, separate run is never resumed:
/// its origin is unknown, so the upload starts again from byte zero.
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
        let mut client = FtpsClient::connect(&self.config).await?;
        let (sink, mut sent) = ProgressSink::watch();
        let options = UploadOptions::default()
            .retries(self.retries)
            .progress(sink);

        // The transfer reports through a watch channel; forwarding happens on
        // this task so that `progress` may borrow from the caller.
        let mut watching = true;
        let result = {
            let upload = client.upload_file_with(local, INCOMING_DIR, remote_name, &options);
            tokio::pin!(upload);
            loop {
                tokio::select! {
                    result = &mut upload => break result,
                    changed = sent.changed(), if watching => match changed {
                        Ok(()) => {
                            if let Some(progress) = progress {
                                progress(sent.borrow_and_update().bytes_done);
                            }
                        }
                        Err(_) => watching = false,
                    },
                }
            }
        };
        if let (Ok(upload), Some(progress)) = (&result, progress) {
            progress(upload.bytes);
        }
        match result {
            Ok(upload) => {
                // The upload is already verified; a failed QUIT must not hide that.
                if let Err(error) = client.quit().await {
                    tracing::debug!(%error, "closing the FTPS session failed after a verified upload");
                }
                Ok(UploadedFile::new(
                    remote_name,
                    upload.remote_path,
                    upload.bytes,
                ))
            }
            Err(error) => {
                let _ = client.quit().await;
                Err(error.into())
            }
        }
    }
}
