//! The error type returned while starting the emulator.

use std::path::PathBuf;

/// A failure to start the emulator.
///
/// Each variant names the resource involved (a folder, a port) and keeps the underlying
/// error as its [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The storage folder or one of its `incoming/` and `images/` subfolders could not be created.
    #[error(
        "failed to prepare the storage folder {path}: check that the parent folder exists and is writable"
    )]
    StorageDir {
        /// The folder that could not be created or opened.
        path: PathBuf,
        /// The I/O error from the file system.
        #[source]
        source: std::io::Error,
    },

    /// The storage path exists but is not a folder.
    #[error("the storage path {path} exists but is not a folder: pass a folder path or a new path")]
    StorageNotADirectory {
        /// The path given as the storage folder.
        path: PathBuf,
    },

    /// The state folder is inside the storage folder, which FTP clients can read.
    #[error(
        "the state folder {state} is inside the storage folder {storage}, where FTP clients could download the credentials: choose a state folder outside it"
    )]
    StateInsideStorage {
        /// The state folder, made absolute.
        state: PathBuf,
        /// The storage folder, made absolute.
        storage: PathBuf,
    },

    /// A state folder was set without a storage folder.
    #[error(
        "the state folder {state} needs a storage folder too, because a temporary storage folder loses the image files the state lists: set the storage folder"
    )]
    StateWithoutStorage {
        /// The state folder given.
        state: PathBuf,
    },

    /// The state path exists but is not a folder.
    #[error("the state path {path} exists but is not a folder: pass a folder path or a new path")]
    StateNotADirectory {
        /// The path given as the state folder.
        path: PathBuf,
    },

    /// A file or folder of the state folder could not be created, read or written.
    #[error(
        "failed to read or write {path} in the state folder: check that the folder exists and is writable"
    )]
    StateFile {
        /// The file or folder involved.
        path: PathBuf,
        /// The I/O error from the file system.
        #[source]
        source: std::io::Error,
    },

    /// A file in the state folder does not have the expected content.
    #[error(
        "the state file {path} is invalid ({reason}): restore it, or remove the state folder to start with new credentials and no user images"
    )]
    StateInvalid {
        /// The file that failed to load.
        path: PathBuf,
        /// What is wrong, with the JSON path where it applies.
        reason: String,
    },

    /// A temporary folder (for the storage, the server disks or the TLS files) could not be created.
    #[error("failed to create a temporary folder: check the TMPDIR environment variable")]
    TempDir {
        /// The I/O error from the file system.
        #[source]
        source: std::io::Error,
    },

    /// Generating the CA or the server certificate failed.
    #[error("failed to generate the {item} for the FTPS server")]
    Certificate {
        /// The certificate or key that failed ("CA certificate", "server key", ...).
        item: &'static str,
        /// The error from rcgen.
        #[source]
        source: rcgen::Error,
    },

    /// Writing the certificate or key file for the FTPS server failed.
    #[error("failed to write the TLS file {path}")]
    TlsFile {
        /// The file that could not be written.
        path: PathBuf,
        /// The I/O error from the file system.
        #[source]
        source: std::io::Error,
    },

    /// A TCP port on 127.0.0.1 could not be bound.
    #[error(
        "failed to bind the {service} port 127.0.0.1:{port}: choose another port, or 0 for a free one"
    )]
    Bind {
        /// "API" or "FTP".
        service: &'static str,
        /// The requested port; 0 means a free port was requested.
        port: u16,
        /// The I/O error from the socket.
        #[source]
        source: std::io::Error,
    },

    /// libunftp rejected the FTPS server configuration or stopped while starting.
    #[error("the FTPS server on 127.0.0.1:{port} failed to start")]
    FtpServer {
        /// The port the server was to listen on.
        port: u16,
        /// The error from libunftp.
        #[source]
        source: libunftp::ServerError,
    },

    /// The FTPS server did not accept connections in time.
    #[error("the FTPS server on 127.0.0.1:{port} did not accept connections within {waited_ms} ms")]
    FtpNotReady {
        /// The port the server was to listen on.
        port: u16,
        /// How long the emulator waited, in milliseconds.
        waited_ms: u64,
    },
}
