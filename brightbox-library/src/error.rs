//! Errors of the library workflows, one variant per step that can fail.

use std::path::PathBuf;

use brightbox_api::{ImageId, ImageStatus, ServerId};

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
        /// The problem and its fix.
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
        /// The reason the name is rejected.
        reason: &'static str,
    },
    /// A field of the [`ImageSpec`](crate::ImageSpec) is invalid.
    #[error("invalid image {field} {value:?}: {reason}")]
    InvalidSpec {
        /// Name of the field.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// The problem and its fix.
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
        /// The reason they are unusable.
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
    /// Registering the uploaded file failed; the file stays where the transport put it.
    #[error(
        "registering uploaded file {file_name:?} failed; the uploaded file stays where it was uploaded (incoming/ or the Orbit staging container)"
    )]
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
    /// Both snapshot routes rejected the snapshot; no image was created.
    #[error("snapshotting server {server_id} failed")]
    Snapshot {
        /// The server to snapshot.
        server_id: ServerId,
        /// The API error of the last route tried.
        #[source]
        source: brightbox_api::Error,
    },
    /// The snapshot image exists but did not become available.
    #[error("snapshot {image_id} of server {server_id} did not become available")]
    SnapshotWait {
        /// The server that was snapshotted.
        server_id: ServerId,
        /// Id of the snapshot image.
        image_id: ImageId,
        /// The API error, such as a failed image or a timeout.
        #[source]
        source: Box<brightbox_api::Error>,
    },
    /// Changing an image's metadata, status or lock failed.
    #[error("{action} image {image_id} failed")]
    ImageUpdate {
        /// The image being changed.
        image_id: ImageId,
        /// What was being done, such as `locking` or `deprecating`.
        action: &'static str,
        /// The API error.
        #[source]
        source: Box<brightbox_api::Error>,
    },
    /// Getting an image before working on it failed, for example because
    /// the id is unknown.
    #[error("getting image {image_id} failed")]
    ImageLookup {
        /// The image requested.
        image_id: ImageId,
        /// The API error.
        #[source]
        source: brightbox_api::Error,
    },
    /// The image is not in a status that allows the operation.
    #[error(
        "image {image_id} is {status}; {operation} needs an available or deprecated image, \
         so wait until it is available"
    )]
    ImageNotReady {
        /// The image.
        image_id: ImageId,
        /// Its status at the check.
        status: ImageStatus,
        /// What was requested, such as `download`.
        operation: &'static str,
    },
    /// The local path for a download cannot be used.
    #[error("invalid download path {}: {reason}", path.display())]
    InvalidDownloadPath {
        /// The path given.
        path: PathBuf,
        /// The problem and its fix.
        reason: String,
    },
    /// Downloading an image file failed; no file exists under the final name.
    #[error("downloading image {image_id} to {} failed", path.display())]
    Download {
        /// The image being downloaded.
        image_id: ImageId,
        /// The local destination.
        path: PathBuf,
        /// The transport error.
        #[source]
        source: TransportError,
    },
    /// A server type or zone given in a
    /// [`ServerSpec`](crate::ServerSpec) was not found.
    #[error("invalid server {field} {value:?}")]
    InvalidServerSpec {
        /// `server_type` or `zone`.
        field: &'static str,
        /// The handle or id given.
        value: String,
        /// The API error, which lists the known handles when the handle is unknown.
        #[source]
        source: Box<brightbox_api::Error>,
    },
    /// Creating a server from an image failed; no server was created.
    #[error("creating a server from image {image_id} failed")]
    CreateServer {
        /// The image the server was to be built from.
        image_id: ImageId,
        /// The API error.
        #[source]
        source: brightbox_api::Error,
    },
    /// The server was created but did not become active.
    #[error("server {server_id} built from image {image_id} did not become active")]
    ServerWait {
        /// Id of the created server.
        server_id: ServerId,
        /// The image it was built from.
        image_id: ImageId,
        /// The API error, such as a failed server or a timeout.
        #[source]
        source: Box<brightbox_api::Error>,
    },
    /// Listing the images failed.
    #[error("listing the images failed")]
    ListImages(#[source] brightbox_api::Error),
    /// The image was published, but a later step (deprecating older images
    /// or locking the new one) failed.
    #[error("image {image_id} was registered, but a later publishing step failed")]
    Publish {
        /// Id of the new, registered image.
        image_id: ImageId,
        /// The failed step.
        #[source]
        source: Box<LibraryError>,
    },
    /// Deleting an image during a prune failed; the images in `removed`
    /// were already deleted.
    #[error(
        "deleting image {image_id} failed after {} other image(s) were deleted",
        removed.len()
    )]
    Prune {
        /// The image that could not be deleted.
        image_id: ImageId,
        /// Images deleted before the failure.
        removed: Vec<ImageId>,
        /// The API error.
        #[source]
        source: Box<brightbox_api::Error>,
    },
    /// Listing or deleting temporary files in `incoming/` failed.
    #[error("cleaning temporary files from incoming/ failed")]
    CleanIncoming(#[source] TransportError),
}

impl LibraryError {
    /// Returns the id of an image this failure left registered, if any.
    pub fn registered_image(&self) -> Option<&ImageId> {
        match self {
            LibraryError::Wait { image_id, .. }
            | LibraryError::SnapshotWait { image_id, .. }
            | LibraryError::Publish { image_id, .. } => Some(image_id),
            _ => None,
        }
    }

    /// Returns the id of a server this failure left created, if any.
    pub fn created_server(&self) -> Option<&ServerId> {
        match self {
            LibraryError::ServerWait { server_id, .. } => Some(server_id),
            _ => None,
        }
    }
}
