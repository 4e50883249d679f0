//! How image bytes reach the library: the [`Transport`] trait and its FTPS implementation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use brightbox_ftp::{FtpError, FtpsClient, FtpsConfig};

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
/// several uploads at once.
#[derive(Clone)]
pub struct FtpsTransport {
    config: Arc<FtpsConfig>,
}

impl FtpsTransport {
    /// Creates a transport that connects with `config`.
    pub fn new(config: FtpsConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

impl fmt::Debug for FtpsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // FtpsConfig's own Debug redacts the password.
        f.debug_struct("FtpsTransport")
            .field("config", &self.config)
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
        let result = client
            .upload_file(local, INCOMING_DIR, remote_name, progress)
            .await;
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
