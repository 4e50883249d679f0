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
//! # Errors
//!
//! Every operation returns [`FtpError`], whose variants name the host, command, remote path or
//! local path involved. [`FtpError::is_retryable`] returns whether the same call can succeed later.
//! Passwords never appear in errors, `Debug` output or this crate's logs.
//!
//! # Not supported yet
//!
//! - Keeping an idle control connection alive during very long transfers.
//! - Retries for [`FtpsClient::download_to`] and [`FtpsClient::upload_reader`], which cannot
//!   rewind their writer or reader.
//! - Client certificates and active mode (`PORT`/`EPRT`).

mod client;
mod commands;
mod config;
mod download;
mod error;
mod format;
mod listing;
mod names;
mod options;
mod progress;
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
