//! The crate's error type.

use std::path::PathBuf;
use std::time::Duration;

/// The connection of an FTPS session on which an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Channel {
    /// The control connection that carries commands and replies.
    Control,
    /// A data connection that carries one file or listing.
    Data,
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Channel::Control => f.write_str("control"),
            Channel::Data => f.write_str("data"),
        }
    }
}

/// Errors from configuring an FTPS client, talking to the server and reading local files.
///
/// No variant contains the password. [`FtpError::is_retryable`] returns whether running the same
/// operation again can succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FtpError {
    /// The host or `host:port` string is not valid.
    #[error("invalid FTPS host {value:?}: {reason}")]
    InvalidHost {
        /// The value as given.
        value: String,
        /// The problem and how to write the value instead.
        reason: String,
    },

    /// A PEM input for [`crate::FtpsConfig::add_root_certificate_pem`] is not usable.
    #[error("invalid root certificate PEM: {reason}")]
    InvalidCertificatePem {
        /// The problem with the input.
        reason: String,
        /// The parser or certificate store error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The client has no certificate to verify the server against, or rustls rejected the set.
    #[error("cannot build the TLS certificate verifier: {reason}")]
    TrustAnchors {
        /// The missing piece and how to add it.
        reason: String,
        /// The rustls error, when there is one.
        #[source]
        source: Option<rustls::client::VerifierBuilderError>,
    },

    /// The TCP connection to the server could not be opened.
    #[error("cannot connect to FTPS server {host}:{port}: {source}")]
    Connect {
        /// Host name or IP address, without the port.
        host: String,
        /// TCP port.
        port: u16,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The server's certificate failed verification, so the client did not trust the server.
    #[error("the FTPS server certificate for {host} is not trusted ({reason}): {fix}")]
    UntrustedCertificate {
        /// Host name or IP address the certificate was checked against.
        host: String,
        /// The verification failure, for example `unknown issuer`.
        reason: String,
        /// The change that makes verification succeed.
        fix: String,
        /// The rustls verification error.
        #[source]
        source: Box<rustls::Error>,
    },

    /// The TLS handshake failed for a reason other than certificate verification.
    #[error("TLS handshake with FTPS server {host} failed on the {channel} connection: {message}")]
    TlsHandshake {
        /// Host name or IP address of the server.
        host: String,
        /// The connection whose handshake failed.
        channel: Channel,
        /// The TLS library's description of the failure.
        message: String,
        /// The rustls error, when the verifier recorded one.
        #[source]
        source: Option<Box<rustls::Error>>,
    },

    /// The server closed a data connection because it did not resume the control connection's
    /// TLS session (vsftpd `require_ssl_reuse=YES` replies `522`).
    #[error(
        "FTPS server {host} requires data connections to resume the control connection's TLS \
         session and rejected this one: {message}; keep TLS session resumption enabled"
    )]
    TlsSessionReuseRequired {
        /// Host name or IP address of the server.
        host: String,
        /// The server's reply text.
        message: String,
    },

    /// The server rejected the user name or the password.
    #[error("FTPS server {host} rejected the login of user {user:?} with {code}: {message}")]
    LoginRejected {
        /// Host name or IP address of the server.
        host: String,
        /// The user name that was sent. The password is never stored here.
        user: String,
        /// FTP reply code, usually `530`.
        code: u32,
        /// The server's reply text.
        message: String,
    },

    /// The server replied to a command with an unexpected reply code.
    #[error("FTPS server rejected `{command}` with {code}: {message}")]
    ServerReply {
        /// The command, for example `STOR incoming/.disk.img.part`.
        command: String,
        /// FTP reply code.
        code: u32,
        /// The server's reply text.
        message: String,
    },

    /// Reading or writing a connection to the server failed.
    #[error("{channel} connection to FTPS server {host} failed during {operation}: {source}")]
    Network {
        /// Host name or IP address of the server.
        host: String,
        /// The connection that failed.
        channel: Channel,
        /// The operation in progress, for example `STOR incoming/.disk.img.part`.
        operation: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The server sent a reply the client cannot parse.
    #[error("FTPS server {host} sent an invalid reply to `{operation}`: {message}")]
    Protocol {
        /// Host name or IP address of the server.
        host: String,
        /// The command the reply belongs to.
        operation: String,
        /// The problem with the reply.
        message: String,
    },

    /// Reading or writing a local file failed.
    #[error("local file {}: {source}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The server stores a different number of bytes than the client sent or expected.
    #[error(
        "transfer of {remote_path} on FTPS server {host} is incomplete: {sent} bytes were sent \
         but {stored} bytes are stored; run the transfer again"
    )]
    IncompleteTransfer {
        /// Host name or IP address of the server.
        host: String,
        /// Remote path of the file, for an upload its temporary name.
        remote_path: String,
        /// Bytes the complete file has: for an upload the bytes sent, resumed prefix included,
        /// and for a download the size the server reported.
        sent: u64,
        /// Bytes the receiving side holds: for an upload the server's `SIZE`, and for a
        /// download the bytes written locally.
        stored: u64,
    },

    /// The server replied that a remote file or directory does not exist (`550` to `RETR`,
    /// `SIZE`, `MDTM`, `DELE`, `RNFR` or a listing).
    #[error("{remote_path} not found on FTPS server {host}: `{command}` got {code}: {message}")]
    NotFound {
        /// Host name or IP address of the server.
        host: String,
        /// The remote path that was requested.
        remote_path: String,
        /// The command, for example `RETR images/disk.img`.
        command: String,
        /// FTP reply code, usually `550`.
        code: u32,
        /// The server's reply text.
        message: String,
    },

    /// The server rejected a change to a file or directory (`553`, or `550` to `STOR`, `APPE`,
    /// `MKD`, `RNTO`, or a reply stating that permission was denied), for example in a read-only
    /// directory.
    #[error(
        "FTPS server {host} denied `{command}` on {remote_path} with {code}: {message}; check \
         that the account may write to that directory"
    )]
    PermissionDenied {
        /// Host name or IP address of the server.
        host: String,
        /// The remote path the command named.
        remote_path: String,
        /// The command, for example `STOR incoming/.disk.img.part`.
        command: String,
        /// FTP reply code, `550` or `553`.
        code: u32,
        /// The server's reply text.
        message: String,
    },

    /// A resumed upload from a reader cannot continue because the remote partial file is longer
    /// than the data the reader supplied. The partial file was deleted.
    #[error(
        "cannot resume the upload of {remote_path} on FTPS server {host}: the remote partial \
         file has {partial} bytes but the reader ended after {available} bytes; the partial \
         file was deleted, upload again from a new reader"
    )]
    ResumeMismatch {
        /// Host name or IP address of the server.
        host: String,
        /// Remote path of the partial file.
        remote_path: String,
        /// Size of the remote partial file in bytes.
        partial: u64,
        /// Bytes the reader supplied before it ended.
        available: u64,
    },

    /// Reading the caller's reader or writing the caller's writer failed.
    #[error("{operation} failed: {source}")]
    Stream {
        /// The step that failed, for example `reading the upload source`.
        operation: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An option has a value the client cannot use.
    #[error("invalid option {name} = {value}: {reason}")]
    InvalidOption {
        /// The option, for example `DownloadOptions::segments`.
        name: String,
        /// The value as given.
        value: String,
        /// The problem and the values that are allowed.
        reason: String,
    },

    /// A remote file name is not allowed.
    #[error("invalid remote file name {name:?}: {reason}")]
    InvalidRemoteName {
        /// The name as given.
        name: String,
        /// The problem and the names that are allowed.
        reason: String,
    },

    /// A remote directory path is not allowed.
    #[error("invalid remote directory {path:?}: {reason}")]
    InvalidRemotePath {
        /// The path as given.
        path: String,
        /// The problem with the path.
        reason: String,
    },

    /// An operation made no progress within its time limit.
    #[error("FTPS operation timed out after {after:?}: {what}")]
    Timeout {
        /// The operation, for example `writing to the data connection of STOR incoming/.a.part`.
        what: String,
        /// The time limit that passed.
        after: Duration,
    },
}

impl FtpError {
    /// Returns whether running the same operation again can succeed.
    ///
    /// Connection failures, time-outs, an incomplete transfer and the transient FTP replies
    /// `421`, `425`, `426`, `450` and `451` are retryable. Rejected logins, untrusted certificates,
    /// invalid input, missing files, denied permissions and other `5xx` replies are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            FtpError::Connect { .. }
            | FtpError::Network { .. }
            | FtpError::Timeout { .. }
            | FtpError::IncompleteTransfer { .. } => true,
            FtpError::TlsHandshake { channel, .. } => *channel == Channel::Data,
            FtpError::ServerReply { code, .. } => matches!(code, 421 | 425 | 426 | 450 | 451),
            FtpError::InvalidHost { .. }
            | FtpError::InvalidCertificatePem { .. }
            | FtpError::TrustAnchors { .. }
            | FtpError::UntrustedCertificate { .. }
            | FtpError::TlsSessionReuseRequired { .. }
            | FtpError::LoginRejected { .. }
            | FtpError::Protocol { .. }
            | FtpError::Io { .. }
            | FtpError::InvalidRemoteName { .. }
            | FtpError::InvalidRemotePath { .. }
            | FtpError::NotFound { .. }
            | FtpError::PermissionDenied { .. }
            | FtpError::ResumeMismatch { .. }
            | FtpError::Stream { .. }
            | FtpError::InvalidOption { .. } => false,
        }
    }

    /// Returns the FTP reply code when the error comes from a server reply.
    pub fn reply_code(&self) -> Option<u32> {
        match self {
            FtpError::ServerReply { code, .. }
            | FtpError::LoginRejected { code, .. }
            | FtpError::NotFound { code, .. }
            | FtpError::PermissionDenied { code, .. } => Some(*code),
            _ => None,
        }
    }
}
