//! Explicit-FTPS upload of disk images for the Brightbox image library.
//!
//! [`FtpsClient`] opens one logged-in session: TCP connect, `AUTH TLS` on the control connection
//! before the user name is sent, login, binary type and passive mode. Uploads stream the local
//! file from disk to a temporary name, check the server's final reply and the remote size, and
//! only then rename the file to its final name.
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
//! use brightbox_ftp::{FtpError, FtpsClient, FtpsConfig};
//!
//! # async fn run() -> Result<(), FtpError> {
//! let ca_pem = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n";
//! let config = FtpsConfig::from_host_port("ftp.library.gb1.brightbox.com", "acc-12345", "secret")?
//!     .add_root_certificate_pem(ca_pem)?;
//! let mut client = FtpsClient::connect(&config).await?;
//! let report = |bytes: u64| eprintln!("{bytes} bytes sent");
//! let upload = client
//!     .upload_file(Path::new("debian-12.img"), "incoming", "debian-12.img", Some(&report))
//!     .await?;
//! println!("stored {} ({} bytes)", upload.remote_path, upload.bytes);
//! println!("incoming: {:?}", client.list_names("incoming").await?);
//! client.quit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Time limits
//!
//! [`FtpsConfig::connect_timeout`] bounds each TCP connect. [`FtpsConfig::io_timeout`] bounds each
//! command's reply and each read or write of a transfer, so a multi-gigabyte upload has no overall
//! deadline as long as data keeps moving.
//!
//! # Errors
//!
//! Every operation returns [`FtpError`], whose variants name the host, command, remote path or
//! local path involved. [`FtpError::is_retryable`] returns whether the same call can succeed later.
//! Passwords never appear in errors, `Debug` output or this crate's logs.
//!
//! # Not supported yet
//!
//! - Plain (unencrypted) FTP and implicit FTPS (port 990).
//! - Downloads, resuming an interrupted upload (`REST`/`APPE`), and `MLSD` listings.
//! - Keeping an idle control connection alive during very long transfers.

mod client;
mod config;
mod error;
mod names;
mod tls;

pub use client::{FtpsClient, Upload};
pub use config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT, DEFAULT_PORT, FtpsConfig};
pub use error::{Channel, FtpError};
pub use names::validate_remote_name;
