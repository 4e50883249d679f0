//! Removal of temporary upload files that interrupted uploads leave in `incoming/`.

use brightbox_ftp::FtpError;

use crate::error::LibraryError;
use crate::library::Library;
use crate::transport::{INCOMING_DIR, Transport, TransportError};

/// Suffix of the temporary name an upload writes before renaming the file.
const PART_SUFFIX: &str = ".part";

impl Library {
    /// Deletes the temporary upload files (`.<name>.<fingerprint>.part`, and
    /// `.<name>.part` of earlier versions) from `incoming/` and returns their
    /// names.
    ///
    /// An upload that failed with a retryable error or was interrupted, for
    /// example because its future was dropped, leaves such a file, and the
    /// next upload of the same unchanged file continues it. Cleaning
    /// `incoming/` gives up that head start. Files under any other name are
    /// left alone.
    ///
    /// Do not run this while an upload into the same account is in
    /// progress: its temporary file would be deleted and the upload would
    /// fail.
    ///
    /// # Errors
    ///
    /// The credential errors of [`Library::upload_and_register`], and
    /// [`LibraryError::CleanIncoming`] when listing or deleting fails; files
    /// deleted before the failure stay deleted.
    pub async fn clean_incoming(&self) -> Result<Vec<String>, LibraryError> {
        let (mut transport, generation) = self.transport().await?;
        let entries = match transport.list(INCOMING_DIR).await {
            Ok(entries) => entries,
            Err(error) if error.is_authentication() => {
                let Some(renewed) = self.renew_transport(generation).await? else {
                    return Err(LibraryError::CleanIncoming(error));
                };
                tracing::warn!(%error, "FTP login rejected; listing again with a new library FTP password");
                transport = renewed;
                transport
                    .list(INCOMING_DIR)
                    .await
                    .map_err(LibraryError::CleanIncoming)?
            }
            Err(error) => return Err(LibraryError::CleanIncoming(error)),
        };
        let names = entries.into_iter().map(|entry| entry.name);
        delete_temporary(transport.as_ref(), names).await
    }
}

/// Deletes the temporary upload files among `names` in `incoming/`.
async fn delete_temporary(
    transport: &dyn Transport,
    names: impl Iterator<Item = String>,
) -> Result<Vec<String>, LibraryError> {
    let mut deleted = Vec::new();
    for name in names.filter(|name| is_temporary_upload(name)) {
        let path = format!("{INCOMING_DIR}/{name}");
        match transport.delete(&path).await {
            Ok(()) => {
                tracing::info!(remote_path = %path, "deleted temporary upload file");
                deleted.push(name);
            }
            Err(TransportError::Ftp(error)) if matches!(*error, FtpError::NotFound { .. }) => {
                tracing::debug!(remote_path = %path, "temporary upload file already gone");
            }
            Err(error) => return Err(LibraryError::CleanIncoming(error)),
        }
    }
    Ok(deleted)
}

/// Returns whether `name` has the form of an upload's temporary name.
fn is_temporary_upload(name: &str) -> bool {
    name.len() > 1 + PART_SUFFIX.len() && name.starts_with('.') && name.ends_with(PART_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::is_temporary_upload;

    #[test]
    fn temporary_upload_names() {
        assert!(is_temporary_upload(".disk.img.part"));
        assert!(is_temporary_upload(".disk.img.0123456789abcdef.part"));
        assert!(!is_temporary_upload("disk.img"));
        assert!(!is_temporary_upload("disk.img.part"));
        assert!(!is_temporary_upload(".part"));
        assert!(!is_temporary_upload(".hidden"));
    }
}
