//! FTPS transfer of disk images for the Brightbox image library.
//!
//! [`FtpsClient`] opens one logged-in session: TCP connect, `AUTH TLS` on the control connection
//! before the user name is sent (or implicit TLS), login, binary type and passive mode. On top
//! of it the crate offers:
//!
//! - Uploads from a file or any [`tokio::io::AsyncRead`] to a temporary name, with the remote
//!   size checked before the rename and SHA-256 computed on the way, optionally compressed with
//!   gzip. A partial upload resumes with `REST` + `STOR` or `APPE`, and bounded retries
//!   reconnect and resume.
//! - Downloads to a file or any [`tokio::io::AsyncWrite`], with SHA-256, format detection
//!   ([`ImageFormat`]), resume of a local partial file, bounded retries, sparse output and
//!   optional segments over several connections.
//! - Listings (`MLSD`, or `LIST` parsed in the Unix and MS-DOS forms), `MDTM`, `DELE`,
//!   `RNFR`/`RNTO` and `MKD`.
//! - Throttled progress reports to a callback or a `tokio::sync::watch` channel.
//!
//! TLS is rustls 0.23 with the aws-lc-rs provider. The server certificate is verified against the
//! system roots plus any CA added with [`FtpsConfig::add_root_certificate_pem`]; there is no
//! option to skip verification. Data connections resume the control connection's TLS session,
//! which servers such as vsftpd with `require_ssl_reuse=YES` require.
//!
//! # Quick start
//!
//! ```no_run
//! use std::path::Path;
//! use brightbox_ftp::{DownloadOptions, FtpError, FtpsClient, FtpsConfig, ProgressSink, UploadOptions};
//!
//! # async fn run() -> Result<(), FtpError> {
//! let ca_pem = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n";
//! let config = FtpsConfig::from_host_port("ftp.library.gb1.brightbox.com", "acc-12345", "secret")?
//!     .add_root_certificate_pem(ca_pem)?;
//! let mut client = FtpsClient::connect(&config).await?;
//!
//! let (progress, mut updates) = ProgressSink::watch();
//! tokio::spawn(async move {
//!     while updates.changed().await.is_ok() {
//!         let now = *updates.borrow();
//!         eprintln!("{} of {:?} bytes, {:.0} B/s", now.bytes_done, now.total, now.bytes_per_second);
//!     }
//! });
//! let options = UploadOptions::new().resume(true).retries(3).progress(progress);
//! let upload = client
//!     .upload_file_with(Path::new("debian-12.img"), "incoming", "debian-12.img", &options)
//!     .await?;
//! println!("stored {} ({} bytes, sha256 {})", upload.remote_path, upload.bytes, upload.sha256);
//!
//! let download = client
//!     .download_file(&upload.remote_path, Path::new("copy.img"), &DownloadOptions::new())
//!     .await?;
//! assert_eq!(download.sha256, upload.sha256);
//! for entry in client.list("incoming").await? {
//!     println!("{} {:?} {:?}", entry.name, entry.kind, entry.size);
//! }
//! client.quit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Time limits
//!
//! [`FtpsConfig::connect_timeout`] bounds each TCP connect. [`FtpsConfig::io_timeout`] bounds each
//! command's reply and each read or write of a transfer, so a multi-gigabyte transfer has no
//! overall deadline as long as data keeps moving. [`FtpsConfig::final_reply_timeout`] bounds the
//! wait for the server's `226` after the last byte, which can take longer for a large file.
//!
//! # Long transfers
//!
//! The control connection is idle while a transfer runs, and NAT gateways and firewalls drop
//! idle connections after a few minutes. The client turns on TCP keepalive on the control
//! connection (first probe after 30 s idle, then every 15 s, dead after 4 unanswered probes),
//! which keeps such mappings alive. It sends no `NOOP` while a transfer runs, because servers
//! such as vsftpd read the control connection only between transfers, and a `NOOP` reply that
//! arrives after the `226` puts replies out of step.
//!
//! When the final reply of an upload still cannot be read and a `NOOP` shows that the control
//! connection is gone, the client reconnects and compares the remote size of the temporary
//! file with the bytes sent. It renames the file only when they match; otherwise the upload
//! fails with [`FtpError::IncompleteTransfer`], which [`UploadOptions::retries`] resumes. A
//! single-connection file download in the same situation counts as complete when every byte
//! that `SIZE` announced has arrived, and the client reconnects.
//!
//! When a server refuses the extra connections of a segmented download with `421` (vsftpd
//! `max_per_ip`), each of them is tried again with jittered backoff, at most 3 times, and the
//! download then finishes on fewer connections. The calling session fetches ranges too, so one
//! connection is always enough.
//!
//! # Errors
//!
//! Every operation returns [`FtpError`], whose variants name the host, command, remote path or
//! local path involved. [`FtpError::is_retryable`] returns whether the same call can succeed later.
//! Passwords never appear in errors, `Debug` output or this crate's logs.
//!
//! # What this crate does not do
//!
//! - Retry [`FtpsClient::download_to`] and [`FtpsClient::upload_reader`], which cannot
//!   rewind their writer or reader. A segmented download does not resume; a retry starts it
//!   again.
//! - Resume a gzip upload ([`UploadOptions::gzip`]): each retry starts again from byte zero.
//! - Client certificates and active mode (`PORT`/`EPRT`).
//! - Build on non-Unix targets: downloads write through `std::os::unix::fs::FileExt`.
//! - Hide the `PASS` command from suppaftp's own logs. suppaftp 12.2 logs every command line
//!   through the `log` crate at trace level under the target `suppaftp`; keep that target
//!   below trace in production.
//!
//! # Feature flags
//!
//! - `fuzzing` (off by default) exposes internal parsers to the fuzz targets in the
//!   repository's `fuzz/` folder. It is unstable, hidden from these docs and outside the
//!   semver promise; do not enable it in applications.

mod client;
mod commands;
mod config;
mod download;
mod error;
mod format;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod listing;
mod names;
mod options;
mod progress;
mod record;
mod segments;
mod tls;
mod transfer;
mod upload;
mod writer;

pub use client::FtpsClient;
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_FINAL_REPLY_TIMEOUT, DEFAULT_IMPLICIT_TLS_PORT,
    DEFAULT_IO_TIMEOUT, DEFAULT_PORT, FtpsConfig,
};
pub use download::Download;
pub use error::{Channel, FtpError};
pub use format::ImageFormat;
pub use listing::{EntryKind, RemoteEntry};
pub use names::validate_remote_name;
pub use options::{DownloadOptions, MAX_SEGMENTS, UploadOptions};
pub use progress::{Progress, ProgressSink};
pub use upload::Upload;
