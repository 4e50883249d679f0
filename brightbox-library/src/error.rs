//! Errors of the library workflows, one variant per step that can fail.

use std::path::PathBuf;

use brightbox_api::ImageId;

use crate::transport::TransportError;

/// Failure of a library workflow.
///
/// Each variant names the step that failed and, where the failure leaves
/// something behind on the service, what that is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LibraryError {
    /// The local image file cannot be uploaded as it is.
    #[error("invalid image file {}: {reason}", path.display())]
    InvalidImageFile {
        /// The local path given.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The file name to register contains characters the library rejects.
    #[error(
        "invalid remote file name {name:?}: {reason}; \
         set ImageSpec::remote_name to a name of letters, digits and -_+.~^"
    )]
    InvalidRemoteName {
        /// The rejected name.
        name: String,
        /// Why the name is rejected.
        reason: &'static str,
    },
    /// A field of the [`ImageSpec`](crate::ImageSpec) is invalid.
    #[error("invalid image {field} {value:?}: {reason}")]
    InvalidSpec {
        /// Name of the field.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A CA certificate given to the builder is not usable.
    #[error("invalid CA certificate for the FTPS server")]
    InvalidRootCertificate(#[source] Box<brightbox_ftp::FtpError>),
    /// The API client can see no account.
    #[error("the API credentials give access to no account")]
    NoAccount,
    /// The API client can see several accounts and none was chosen.
    #[error(
        "the API credentials give access to several accounts ({}); \
         choose one with LibraryBuilder::account_id",
        accounts.join(", ")
    )]
    AmbiguousAccount {
        /// Ids of the accounts visible to the client.
        accounts: Vec<String>,
    },
    /// Listing the accounts failed.
    #[error("listing the accounts failed")]
    Accounts(#[source] brightbox_api::Error),
    /// Getting the library FTP credentials failed.
    #[error("getting the image library FTP credentials for {account} failed")]
    Credentials {
        /// The account whose FTP password was reset.
        account: String,
        /// The API error.
        #[source]
        source: brightbox_api::Error,
    },
    /// The FTP credentials returned by the API are unusable.
    #[error("the image library FTP credentials for {account} are unusable")]
    InvalidCredentials {
        /// The account whose credentials were returned.
        account: String,
        /// Why they are unusable.
        #[source]
        source: Box<brightbox_ftp::FtpError>,
    },
    /// Uploading the file failed; nothing was registered.
    #[error("uploading {} failed; nothing was registered", path.display())]
    Upload {
        /// The local file.
        path: PathBuf,
        /// The transport error.
        #[source]
        source: TransportError,
    },
    /// Registering the uploaded file failed; the file stays in `incoming/`.
    #[error("registering uploaded file {file_name:?} failed; the file stays in incoming/")]
    Register {
        /// The uploaded file name sent as `source`.
        file_name: String,
        /// The API error.
        #[source]
        source: brightbox_api::Error,
    },
    /// The image was registered but did not become available.
    #[error("image {image_id} was registered but did not become available")]
    Wait {
        /// Id of the registered image.
        image_id: ImageId,
        /// The API error, such as a failed image or a timeout.
        #[source]
        source: brightbox_api::Error,
    },
}

impl LibraryError {
    /// Returns the id of an image this failure left registered, if any.
    pub fn registered_image(&self) -> Option<&ImageId> {
        match self {
            LibraryError::Wait { image_id, .. } => Some(image_id),
            _ => None,
        }
    }
}
