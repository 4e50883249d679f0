//! The `download_image` workflow: fetch a stored image file from `images/`.

use std::path::{Path, PathBuf};

use brightbox_api::ImageId;
use brightbox_ftp::ImageFormat;
use tracing::Instrument;

use crate::error::LibraryError;
use crate::library::Library;
use crate::transport::{DownloadedFile, ProgressFn, TransportError};

/// Directory of the FTPS image library that contains each image's file, named by image id.
pub const IMAGES_DIR: &str = "images";

/// Options of [`Library::download_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadImageOptions {
    /// Whether a temporary file left by an earlier, failed download to the
    /// same path is continued instead of fetched again. Default `true`.
    pub resume: bool,
    /// Whether an existing file at the destination is replaced. Default
    /// `false`, which makes the workflow fail before any transfer.
    pub overwrite: bool,
}

impl Default for DownloadImageOptions {
    fn default() -> Self {
        Self {
            resume: true,
            overwrite: false,
        }
    }
}

impl DownloadImageOptions {
    /// Creates the default options: resume, do not overwrite.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether an earlier partial download is continued.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Sets whether an existing destination file is replaced.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }
}

/// An image file downloaded and checked against its remote size.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadedImage {
    /// The image downloaded.
    pub image_id: ImageId,
    /// The local file, under its final name.
    pub path: PathBuf,
    /// Length of the file in bytes.
    pub bytes: u64,
    /// SHA-256 of the whole file as lowercase hex.
    pub sha256: String,
    /// Format detected from the file's first bytes. Snapshots stored by
    /// today's Brightbox are LZ4 frames of the raw disk.
    pub format: ImageFormat,
    /// Bytes of an earlier partial download that were kept, not fetched again.
    pub resumed_from: u64,
}

impl Library {
    /// Downloads the file of image `image_id` from `images/<id>` to `path`.
    ///
    /// The image must be `available` or `deprecated`: the file of a
    /// `creating` image is still growing. The bytes go to a temporary file
    /// beside `path` (`.<name>.part`), which is renamed to `path` only
    /// after the byte count equals the server's `SIZE`. A failed download
    /// leaves the temporary file, and the next call with
    /// [`DownloadImageOptions::resume`] continues it. The FTP credentials
    /// are the ones uploads use, reset once more when the server rejects
    /// them.
    ///
    /// Dropping the returned future stops the transfer; `path` then contains
    /// no partial data, but the temporary file may remain.
    ///
    /// # Errors
    ///
    /// - [`LibraryError::InvalidDownloadPath`] when `path` has no file name,
    ///   its folder does not exist, or it exists and `overwrite` is off.
    /// - [`LibraryError::ImageLookup`] when the image cannot be fetched, and
    ///   [`LibraryError::ImageNotReady`] when it is not usable yet.
    /// - [`LibraryError::Credentials`] or [`LibraryError::InvalidCredentials`]
    ///   when the FTP credentials cannot be obtained.
    /// - [`LibraryError::Download`] when the transfer fails or the size differs.
    pub async fn download_image(
        &self,
        image_id: &ImageId,
        path: impl AsRef<Path>,
        options: &DownloadImageOptions,
    ) -> Result<DownloadedImage, LibraryError> {
        self.download_image_with_progress(image_id, path, options, None)
            .await
    }

    /// Runs [`Library::download_image`] and reports the bytes of the file
    /// done so far to `progress`, including a resumed prefix.
    ///
    /// # Errors
    ///
    /// As [`Library::download_image`].
    pub async fn download_image_with_progress(
        &self,
        image_id: &ImageId,
        path: impl AsRef<Path>,
        options: &DownloadImageOptions,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<DownloadedImage, LibraryError> {
        let path = path.as_ref();
        let span = tracing::info_span!("download_image", %image_id, path = %path.display());
        self.run_download_image(image_id, path, options, progress)
            .instrument(span)
            .await
    }

    async fn run_download_image(
        &self,
        image_id: &ImageId,
        path: &Path,
        options: &DownloadImageOptions,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<DownloadedImage, LibraryError> {
        check_destination(path, options).await?;
        let image = self.api().images().get(image_id).await.map_err(|source| {
            LibraryError::ImageLookup {
                image_id: image_id.clone(),
                source,
            }
        })?;
        if !image.status.is_usable() {
            return Err(LibraryError::ImageNotReady {
                image_id: image_id.clone(),
                status: image.status,
                operation: "download",
            });
        }

        let remote_path = format!("{IMAGES_DIR}/{image_id}");
        tracing::info!(%remote_path, "downloading image file");
        let file = self
            .download_file(&remote_path, path, options.resume, progress)
            .await
            .map_err(|error| match error {
                DownloadFailure::Library(error) => error,
                DownloadFailure::Transport(source) => LibraryError::Download {
                    image_id: image_id.clone(),
                    path: path.to_path_buf(),
                    source,
                },
            })?;
        tracing::info!(bytes = file.bytes, sha256 = %file.sha256, format = %file.format, "image downloaded");
        Ok(DownloadedImage {
            image_id: image_id.clone(),
            path: file.local_path,
            bytes: file.bytes,
            sha256: file.sha256,
            format: file.format,
            resumed_from: file.resumed_from,
        })
    }

    /// Downloads through the transport, resetting the FTP password once
    /// when the server rejects the login, as uploads do.
    async fn download_file(
        &self,
        remote_path: &str,
        local: &Path,
        resume: bool,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<DownloadedFile, DownloadFailure> {
        let (transport, generation) = self.transport().await?;
        let error = match transport
            .download(remote_path, local, resume, progress)
            .await
        {
            Ok(file) => return Ok(file),
            Err(error) if error.is_authentication() => error,
            Err(error) => return Err(DownloadFailure::Transport(error)),
        };
        let Some(transport) = self.renew_transport(generation).await? else {
            return Err(DownloadFailure::Transport(error));
        };
        tracing::warn!(%error, "FTP login rejected; downloading again with a new library FTP password");
        transport
            .download(remote_path, local, resume, progress)
            .await
            .map_err(DownloadFailure::Transport)
    }
}

/// Failure of [`Library::download_file`]: credentials or the transfer.
enum DownloadFailure {
    Library(LibraryError),
    Transport(TransportError),
}

impl From<LibraryError> for DownloadFailure {
    fn from(error: LibraryError) -> Self {
        DownloadFailure::Library(error)
    }
}

/// Checks the destination before any network call.
async fn check_destination(
    path: &Path,
    options: &DownloadImageOptions,
) -> Result<(), LibraryError> {
    let invalid = |reason: String| LibraryError::InvalidDownloadPath {
        path: path.to_path_buf(),
        reason,
    };
    if path.file_name().is_none() {
        return Err(invalid(
            "the path has no file name; give a file path such as ./image.img".to_owned(),
        ));
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match tokio::fs::metadata(parent).await {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => {
            return Err(invalid(format!("{} is not a folder", parent.display())));
        }
        Err(error) => {
            return Err(invalid(format!(
                "the folder {} cannot be read ({error}); create it first",
                parent.display()
            )));
        }
    }
    match tokio::fs::symlink_metadata(path).await {
        Ok(metadata) if metadata.is_dir() => Err(invalid(
            "the path is a folder; give a file path inside it".to_owned(),
        )),
        Ok(_) if !options.overwrite => Err(invalid(
            "the file exists; remove it or set DownloadImageOptions::overwrite(true)".to_owned(),
        )),
        _ => Ok(()),
    }
}
