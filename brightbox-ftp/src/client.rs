//! The FTPS session: connect, upload, size, list, quit.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use suppaftp::tokio::{
    AsyncRustlsConnector, AsyncRustlsFtpStream, AsyncRustlsStream, TransferStream,
};
use suppaftp::types::FileType;
use suppaftp::{Mode, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::{FtpsConfig, check_host_name};
use crate::error::{Channel, FtpError};
use crate::names::{join_remote, temporary_name, validate_remote_dir, validate_remote_name};
use crate::tls::{self, RecordingVerifier, describe_certificate_error};

/// Size of each read from the local file and write to the data connection.
const CHUNK_SIZE: usize = 256 * 1024;

/// Time limit for reading a late reply or deleting a partial file after a failed transfer.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Time limit for reading a reply the server may have sent after a data connection failed.
const LATE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Result of a successful upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The final remote path: `remote_dir` and `remote_name` joined with `/`.
    pub remote_path: String,
    /// Bytes sent, equal to the local file's length and to the size the server reported.
    pub bytes: u64,
}

/// One logged-in explicit-FTPS session.
///
/// The control connection is TLS-protected before the user name is sent, transfers use binary
/// type (`TYPE I`) and passive mode, and every data connection is TLS-protected and resumes the
/// control connection's TLS session. Passive data connections go to the control connection's
/// peer address. The client ignores the address in the server's `227` reply, so a server behind
/// NAT that advertises a private address still works. On an IPv6 control connection `EPSV` is
/// used.
///
/// Methods take `&mut self`: FTP allows one command at a time per session. Open several
/// sessions to transfer files in parallel.
pub struct FtpsClient {
    ftp: AsyncRustlsFtpStream,
    context: Context,
}

impl std::fmt::Debug for FtpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpsClient")
            .field("host", &self.context.host)
            .field("port", &self.context.port)
            .field("user", &self.context.user)
            .finish_non_exhaustive()
    }
}

/// Session facts used for error mapping and time limits.
struct Context {
    host: String,
    port: u16,
    user: String,
    io_timeout: Duration,
    verifier: Arc<RecordingVerifier>,
}

impl FtpsClient {
    /// Connects, upgrades the control connection with `AUTH TLS`, logs in, and selects binary
    /// type and passive mode.
    ///
    /// The TLS server name is the configured host; an IP address is checked against the
    /// certificate's IP address entries.
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidHost`] when the configured host is not a host name or IP address.
    /// - [`FtpError::TrustAnchors`] when no root certificate is configured.
    /// - [`FtpError::Connect`] or [`FtpError::Timeout`] when the TCP connection cannot be opened.
    /// - [`FtpError::UntrustedCertificate`] when the server's certificate fails verification,
    ///   and [`FtpError::TlsHandshake`] when the handshake fails for another reason.
    /// - [`FtpError::LoginRejected`] when the server rejects the user name or password.
    /// - [`FtpError::ServerReply`], [`FtpError::Network`] or [`FtpError::Timeout`] when a
    ///   command fails or stalls.
    pub async fn connect(config: &FtpsConfig) -> Result<FtpsClient, FtpError> {
        let span = info_span!(
            "ftps_connect",
            host = %config.host,
            port = config.port,
            user = %config.user
        );
        Self::connect_inner(config).instrument(span).await
    }

    async fn connect_inner(config: &FtpsConfig) -> Result<FtpsClient, FtpError> {
        check_host_name(&config.host).map_err(|reason| FtpError::InvalidHost {
            value: config.host.clone(),
            reason,
        })?;
        let tls = tls::build(config)?;
        let context = Context {
            host: config.host.clone(),
            port: config.port,
            user: config.user.clone(),
            io_timeout: config.io_timeout,
            verifier: tls.verifier,
        };

        let tcp = open_tcp(&config.host, config.port, config.connect_timeout).await?;
        let peer_is_ipv6 = tcp.peer_addr().is_ok_and(|address| address.is_ipv6());
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%error, "failed to disable Nagle's algorithm on the control connection");
        }

        let ftp = context
            .bounded("reading the server greeting", async {
                AsyncRustlsFtpStream::connect_with_stream(tcp)
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, "greeting"))
            })
            .await?;

        let connect_timeout = config.connect_timeout;
        let mut ftp = ftp.passive_stream_builder(move |address| {
            Box::pin(async move {
                match tokio::time::timeout(connect_timeout, TcpStream::connect(address)).await {
                    Ok(result) => result.map_err(suppaftp::FtpError::ConnectionError),
                    Err(_) => Err(suppaftp::FtpError::ConnectionError(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "data connection to {address} not opened within {connect_timeout:?}"
                        ),
                    ))),
                }
            })
        });
        if peer_is_ipv6 {
            ftp.set_mode(Mode::ExtendedPassive);
        } else {
            ftp.set_mode(Mode::Passive);
            ftp.set_passive_nat_workaround(true);
        }

        let connector =
            AsyncRustlsConnector::from(suppaftp::tokio_rustls::TlsConnector::from(tls.config));
        let mut ftp = context
            .bounded("AUTH TLS and the TLS handshake", async {
                ftp.into_secure(connector, &config.host)
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, "AUTH TLS"))
            })
            .await?;
        debug!("control connection is TLS-protected");

        // NOTE: suppaftp logs every command line, `PASS` included, at the `log` crate's trace
        // level under the `suppaftp` target. Keep that target below trace in production logs.
        context
            .bounded("USER and PASS", async {
                ftp.login(config.user.as_str(), config.password.expose_secret())
                    .await
                    .map_err(|error| context.map_login_error(error))
            })
            .await?;
        context
            .bounded("TYPE I", async {
                ftp.transfer_type(FileType::Binary)
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, "TYPE I"))
            })
            .await?;
        info!("logged in");

        Ok(FtpsClient { ftp, context })
    }

    /// Returns the host name or IP address this session is connected to.
    pub fn host(&self) -> &str {
        &self.context.host
    }

    /// Uploads `local` to `remote_dir/remote_name`.
    ///
    /// The file is streamed from disk in 256 KiB chunks to the temporary name
    /// `remote_dir/.remote_name.part`. After the server confirms the transfer (`226`) and reports
    /// a size equal to the local length, the temporary file is renamed to `remote_name`, replacing
    /// any file of that name. A failed upload never leaves a file under `remote_name`; the client
    /// tries to delete the temporary file, which can remain when the connection is lost.
    ///
    /// `remote_dir` may be empty for the session's current directory. `progress`, when given,
    /// receives the cumulative number of bytes sent after each chunk.
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemoteName`] or [`FtpError::InvalidRemotePath`] before any network
    ///   I/O when the name or directory is not allowed.
    /// - [`FtpError::Io`] when the local file cannot be read, is not a regular file, or changes
    ///   length during the upload.
    /// - [`FtpError::SizeMismatch`] when the server stores a different number of bytes.
    /// - [`FtpError::TlsSessionReuseRequired`] when the server rejects the data connection for
    ///   not resuming the TLS session.
    /// - [`FtpError::ServerReply`], [`FtpError::Network`], [`FtpError::TlsHandshake`] or
    ///   [`FtpError::Timeout`] when a command, the data connection or a read or write fails or
    ///   stalls.
    pub async fn upload_file(
        &mut self,
        local: &Path,
        remote_dir: &str,
        remote_name: &str,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<Upload, FtpError> {
        validate_remote_name(remote_name)?;
        validate_remote_dir(remote_dir)?;
        let remote_path = join_remote(remote_dir, remote_name);
        let temporary_path = join_remote(remote_dir, &temporary_name(remote_name));

        let span = info_span!(
            "ftps_upload",
            host = %self.context.host,
            remote_path = %remote_path,
            local = %local.display(),
            bytes = tracing::field::Empty
        );
        self.upload_inner(local, remote_path, temporary_path, progress)
            .instrument(span)
            .await
    }

    async fn upload_inner(
        &mut self,
        local: &Path,
        remote_path: String,
        temporary_path: String,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<Upload, FtpError> {
        let started = Instant::now();
        let (file, length) = open_local(local).await?;
        tracing::Span::current().record("bytes", length);

        let sent = match self.send_file(file, local, &temporary_path, progress).await {
            Ok(sent) => sent,
            Err(error) => {
                self.discard_partial(&temporary_path).await;
                return Err(error);
            }
        };
        if sent != length {
            self.discard_partial(&temporary_path).await;
            return Err(FtpError::Io {
                path: local.to_owned(),
                source: std::io::Error::other(format!(
                    "the file changed length during the upload, from {length} to {sent} bytes; \
                     upload it again once it no longer changes"
                )),
            });
        }

        let stored = match self.size(&temporary_path).await {
            Ok(stored) => stored,
            Err(error) => {
                self.discard_partial(&temporary_path).await;
                return Err(error);
            }
        };
        if stored != sent {
            warn!(
                expected = sent,
                actual = stored,
                "remote size differs from local length"
            );
            self.discard_partial(&temporary_path).await;
            return Err(FtpError::SizeMismatch {
                remote_path: temporary_path,
                expected: sent,
                actual: stored,
            });
        }

        if let Err(error) = self.rename(&temporary_path, &remote_path).await {
            self.discard_partial(&temporary_path).await;
            return Err(error);
        }

        let elapsed = started.elapsed();
        info!(bytes = sent, ?elapsed, "upload complete");
        Ok(Upload {
            remote_path,
            bytes: sent,
        })
    }

    /// Streams `file` to `remote_path` with `STOR` and waits for the server's final reply.
    async fn send_file(
        &mut self,
        mut file: tokio::fs::File,
        local: &Path,
        remote_path: &str,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<u64, FtpError> {
        let command = format!("STOR {remote_path}");
        let context = &self.context;
        let ftp = &mut self.ftp;

        let opened = context
            .bounded(
                &format!("opening the data connection for {command}"),
                async {
                    ftp.put_with_stream(remote_path)
                        .await
                        .map_err(|error| context.map_error(error, Channel::Data, &command))
                },
            )
            .await;
        let mut transfer = match opened {
            Ok(transfer) => transfer,
            Err(error) => return Err(context.explain_data_failure(ftp, error, &command).await),
        };
        debug!("data connection open");

        let copied = context
            .copy_file(&mut file, local, &mut transfer, &command, progress)
            .await;
        let sent = match copied {
            Ok(sent) => sent,
            Err(error) => {
                return Err(context
                    .abandon_transfer(ftp, transfer, error, &command)
                    .await);
            }
        };

        // finish() sends TLS close_notify, waits for the server to close the data connection and
        // checks that the reply is 226 or 250. Without it the server may record a failed transfer.
        // NOTE: when the server has already closed the data connection, suppaftp 12.2 reports the
        // failed close_notify and drops the server's reply, so the error is a `Network` error on
        // the data channel rather than the server's reason.
        context
            .bounded(
                &format!("waiting for the final reply to {command}"),
                async {
                    transfer
                        .finish()
                        .await
                        .map_err(|error| context.map_error(error, Channel::Data, &command))
                },
            )
            .await?;
        debug!(bytes = sent, "transfer confirmed by the server");
        Ok(sent)
    }

    /// Deletes a partial upload, logging instead of failing, because the caller is already
    /// returning the error that made the upload fail.
    async fn discard_partial(&mut self, remote_path: &str) {
        let context = &self.context;
        let ftp = &mut self.ftp;
        let result = tokio::time::timeout(CLEANUP_TIMEOUT.min(context.io_timeout), async {
            ftp.rm(remote_path).await
        })
        .await;
        match result {
            Ok(Ok(())) => debug!(remote_path, "deleted partial upload"),
            Ok(Err(error)) => {
                warn!(remote_path, %error, "failed to delete partial upload; delete it by hand");
            }
            Err(_) => {
                warn!(
                    remote_path,
                    "timed out deleting partial upload; delete it by hand"
                );
            }
        }
    }

    /// Renames `from` to `to` with `RNFR` and `RNTO`.
    async fn rename(&mut self, from: &str, to: &str) -> Result<(), FtpError> {
        let command = format!("RNFR {from} / RNTO {to}");
        let context = &self.context;
        let ftp = &mut self.ftp;
        context
            .bounded(&command, async {
                ftp.rename(from, to)
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, &command))
            })
            .await
    }

    /// Returns the size in bytes of the remote file `remote_path` (`SIZE`).
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemotePath`] when the path contains a control character.
    /// - [`FtpError::ServerReply`] with code `550` when the file does not exist.
    /// - [`FtpError::Protocol`] when the reply has no number.
    /// - [`FtpError::Network`] or [`FtpError::Timeout`] when the control connection fails or
    ///   stalls.
    pub async fn size(&mut self, remote_path: &str) -> Result<u64, FtpError> {
        validate_remote_dir(remote_path)?;
        let command = format!("SIZE {remote_path}");
        let context = &self.context;
        let ftp = &mut self.ftp;
        let size = context
            .bounded(&command, async {
                ftp.size(remote_path)
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, &command))
            })
            .await?;
        u64::try_from(size).map_err(|_| FtpError::Protocol {
            host: context.host.clone(),
            operation: command,
            message: format!("size {size} does not fit in 64 bits"),
        })
    }

    /// Returns the names of the entries in `remote_dir` (`NLST`), without directory prefixes.
    ///
    /// An empty `remote_dir` lists the session's current directory. Names keep the server's order.
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemotePath`] when the path contains a control character.
    /// - [`FtpError::ServerReply`] when the server rejects the listing, for example `550` for a
    ///   missing directory.
    /// - [`FtpError::Network`], [`FtpError::TlsHandshake`], [`FtpError::TlsSessionReuseRequired`]
    ///   or [`FtpError::Timeout`] when a connection fails or stalls.
    pub async fn list_names(&mut self, remote_dir: &str) -> Result<Vec<String>, FtpError> {
        validate_remote_dir(remote_dir)?;
        let command = format!("NLST {remote_dir}");
        let context = &self.context;
        let ftp = &mut self.ftp;
        let span = info_span!("ftps_list", host = %context.host, remote_dir);
        let listed = context
            .bounded(&command, async {
                let argument = (!remote_dir.is_empty()).then_some(remote_dir);
                ftp.nlst(argument)
                    .await
                    .map_err(|error| context.map_error(error, Channel::Data, &command))
            })
            .instrument(span)
            .await;
        let lines = match listed {
            Ok(lines) => lines,
            Err(error) => return Err(context.explain_data_failure(ftp, error, &command).await),
        };

        // Some servers return `dir/name` for `NLST dir`, so only the last segment is kept.
        let names = lines
            .iter()
            .map(|line| line.rsplit('/').next().unwrap_or(line).to_owned())
            .filter(|name| !name.is_empty() && name != "." && name != "..")
            .collect::<Vec<_>>();
        debug!(count = names.len(), remote_dir, "listed directory");
        Ok(names)
    }

    /// Ends the session with `QUIT`.
    ///
    /// # Errors
    ///
    /// [`FtpError::ServerReply`], [`FtpError::Network`] or [`FtpError::Timeout`] when the server
    /// does not confirm. The connection is closed either way.
    pub async fn quit(mut self) -> Result<(), FtpError> {
        let context = &self.context;
        let ftp = &mut self.ftp;
        context
            .bounded("QUIT", async {
                ftp.quit()
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, "QUIT"))
            })
            .await?;
        debug!(host = %context.host, "session closed");
        Ok(())
    }
}

impl Context {
    /// Copies `file` to the data connection in [`CHUNK_SIZE`] chunks and returns the bytes sent.
    async fn copy_file(
        &self,
        file: &mut tokio::fs::File,
        local: &Path,
        transfer: &mut TransferStream<AsyncRustlsStream>,
        command: &str,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<u64, FtpError> {
        let mut buffer = vec![0_u8; CHUNK_SIZE];
        let mut sent: u64 = 0;
        let read_what = format!("reading {}", local.display());
        let write_what = format!("writing to the data connection of {command}");
        loop {
            let read = self
                .bounded(&read_what, async {
                    file.read(&mut buffer).await.map_err(|source| FtpError::Io {
                        path: local.to_owned(),
                        source,
                    })
                })
                .await?;
            if read == 0 {
                return Ok(sent);
            }
            let chunk = buffer.get(..read).unwrap_or_default();
            self.bounded(&write_what, async {
                transfer
                    .write_all(chunk)
                    .await
                    .map_err(|source| FtpError::Network {
                        host: self.host.clone(),
                        channel: Channel::Data,
                        operation: command.to_owned(),
                        source,
                    })
            })
            .await?;
            sent += read as u64;
            if let Some(report) = progress {
                report(sent);
            }
        }
    }

    /// Closes a failed upload's data connection and returns the most telling error.
    ///
    /// A server that rejects an upload after `150` closes the data connection and sends the
    /// reason on the control connection, for example a missing directory or a TLS session that
    /// was not resumed. The client only sees a broken pipe. This reads that reply while the
    /// transfer is still open, then sends `ABOR` so the control connection is in step for the
    /// next command.
    async fn abandon_transfer(
        &self,
        ftp: &mut AsyncRustlsFtpStream,
        transfer: TransferStream<AsyncRustlsStream>,
        error: FtpError,
        command: &str,
    ) -> FtpError {
        let mut explained = None;
        if matches!(
            error,
            FtpError::Network {
                channel: Channel::Data,
                ..
            }
        ) {
            let late = tokio::time::timeout(
                LATE_REPLY_TIMEOUT,
                ftp.read_response_in(&[Status::ClosingDataConnection]),
            )
            .await;
            if let Ok(Err(suppaftp::FtpError::UnexpectedResponse(response))) = late {
                explained = Some(self.reply_error(&response, command));
            }
        }

        match tokio::time::timeout(CLEANUP_TIMEOUT.min(self.io_timeout), ftp.abort(transfer)).await
        {
            Ok(Ok(())) => debug!("transfer aborted"),
            // A server that already ended the transfer replies `225` or `226` to ABOR without a
            // `426` first. suppaftp reads that reply and reports it as unexpected.
            Ok(Err(abort_error)) => debug!(%abort_error, "ABOR after a failed transfer"),
            Err(_) => warn!("timed out sending ABOR after a failed transfer"),
        }
        explained.unwrap_or(error)
    }

    /// Maps a negative reply to `command` to an [`FtpError`].
    fn reply_error(&self, response: &suppaftp::types::Response, command: &str) -> FtpError {
        let (code, message) = reply_parts(response);
        if code == 522 {
            return FtpError::TlsSessionReuseRequired {
                host: self.host.clone(),
                message,
            };
        }
        FtpError::ServerReply {
            command: command.to_owned(),
            code,
            message,
        }
    }

    /// Runs `operation` with the session's stall time limit.
    async fn bounded<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, FtpError>>,
    ) -> Result<T, FtpError> {
        match tokio::time::timeout(self.io_timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(FtpError::Timeout {
                what: format!("{what} on {}", self.host),
                after: self.io_timeout,
            }),
        }
    }

    /// Turns a data-connection failure into the server's reason when the server sent one.
    ///
    /// vsftpd with `require_ssl_reuse=YES` closes a data connection that does not resume the
    /// TLS session and then replies `522` on the control connection, while the client only sees
    /// the data connection fail.
    async fn explain_data_failure(
        &self,
        ftp: &mut AsyncRustlsFtpStream,
        error: FtpError,
        command: &str,
    ) -> FtpError {
        // In passive mode the TCP connection opens before the transfer command is sent, but
        // the TLS handshake runs after the server's `150`, so only then can a reply follow.
        let handshake_failed = matches!(
            error,
            FtpError::TlsHandshake {
                channel: Channel::Data,
                ..
            }
        );
        if !handshake_failed {
            return error;
        }
        let late = tokio::time::timeout(
            LATE_REPLY_TIMEOUT,
            ftp.read_response_in(&[Status::ClosingDataConnection]),
        )
        .await;
        match late {
            Ok(Err(suppaftp::FtpError::UnexpectedResponse(response))) => {
                self.reply_error(&response, command)
            }
            // NOTE: a reply that arrives after LATE_REPLY_TIMEOUT is read by the next command
            // as its own reply; reconnect after this error to be safe.
            _ => error,
        }
    }

    /// Maps a suppaftp error from `operation` on `channel` to an [`FtpError`].
    fn map_error(&self, error: suppaftp::FtpError, channel: Channel, operation: &str) -> FtpError {
        match error {
            suppaftp::FtpError::ConnectionError(source) => FtpError::Network {
                host: self.host.clone(),
                channel,
                operation: operation.to_owned(),
                source,
            },
            suppaftp::FtpError::SecureError(message) => self.map_tls_error(message, channel),
            suppaftp::FtpError::UnexpectedResponse(response) => {
                self.reply_error(&response, operation)
            }
            suppaftp::FtpError::BadResponse => FtpError::Protocol {
                host: self.host.clone(),
                operation: operation.to_owned(),
                message: "the reply is malformed or has an unexpected format".to_owned(),
            },
            suppaftp::FtpError::InvalidAddress(source) => FtpError::Protocol {
                host: self.host.clone(),
                operation: operation.to_owned(),
                message: format!("the reply contains an invalid address: {source}"),
            },
            other => FtpError::Protocol {
                host: self.host.clone(),
                operation: operation.to_owned(),
                message: other.to_string(),
            },
        }
    }

    fn map_tls_error(&self, message: String, channel: Channel) -> FtpError {
        let Some(recorded) = self.verifier.take_error() else {
            return FtpError::TlsHandshake {
                host: self.host.clone(),
                channel,
                message,
                source: None,
            };
        };
        match describe_certificate_error(&recorded) {
            Some((reason, fix)) => FtpError::UntrustedCertificate {
                host: self.host.clone(),
                reason,
                fix,
                source: Box::new(recorded),
            },
            None => FtpError::TlsHandshake {
                host: self.host.clone(),
                channel,
                message,
                source: Some(Box::new(recorded)),
            },
        }
    }

    fn map_login_error(&self, error: suppaftp::FtpError) -> FtpError {
        if let suppaftp::FtpError::UnexpectedResponse(response) = &error {
            let (code, message) = reply_parts(response);
            if matches!(code, 430 | 530) {
                return FtpError::LoginRejected {
                    host: self.host.clone(),
                    user: self.user.clone(),
                    code,
                    message,
                };
            }
        }
        self.map_error(error, Channel::Control, "USER/PASS")
    }
}

/// Splits a reply into its code and its text without the code prefixes.
///
/// The code is read from the reply text because suppaftp maps codes it does not know, such as
/// `522`, to a catch-all status.
fn reply_parts(response: &suppaftp::types::Response) -> (u32, String) {
    let text = String::from_utf8_lossy(&response.body);
    let code = text
        .get(..3)
        .and_then(|digits| digits.parse::<u32>().ok())
        .unwrap_or_else(|| response.status.code());
    let message = text
        .lines()
        .map(|line| {
            let has_code =
                line.len() >= 4 && line.as_bytes().iter().take(3).all(u8::is_ascii_digit);
            if has_code {
                line.get(4..).unwrap_or_default().trim()
            } else {
                line.trim()
            }
        })
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (code, message)
}

/// Opens a TCP connection to the first address of `host` that accepts within `limit`.
async fn open_tcp(host: &str, port: u16, limit: Duration) -> Result<TcpStream, FtpError> {
    let connect_error = |source| FtpError::Connect {
        host: host.to_owned(),
        port,
        source,
    };
    let addresses = match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Ok(result) => result.map_err(connect_error)?.collect::<Vec<_>>(),
        Err(_) => {
            return Err(FtpError::Timeout {
                what: format!("resolving {host}"),
                after: limit,
            });
        }
    };

    let mut last_error = None;
    for address in addresses {
        debug!(%address, "opening TCP connection");
        match tokio::time::timeout(limit, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(error)) => last_error = Some(connect_error(error)),
            Err(_) => {
                last_error = Some(FtpError::Timeout {
                    what: format!("opening a TCP connection to {address}"),
                    after: limit,
                });
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        connect_error(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolved to no address"),
        ))
    }))
}

/// Opens `path` for reading and returns it with its length.
async fn open_local(path: &Path) -> Result<(tokio::fs::File, u64), FtpError> {
    let io_error = |source| FtpError::Io {
        path: path.to_owned(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(io_error)?;
    let metadata = file.metadata().await.map_err(io_error)?;
    if !metadata.is_file() {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file; pass the path of a disk image file",
        )));
    }
    Ok((file, metadata.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &str) -> suppaftp::types::Response {
        suppaftp::types::Response::new(Status::Unknown, body.as_bytes().to_vec())
    }

    #[test]
    fn reply_parts_reads_code_from_text() {
        let (code, message) = reply_parts(&response(
            "522 SSL connection failed: session reuse required\r\n",
        ));
        assert_eq!(code, 522);
        assert_eq!(message, "SSL connection failed: session reuse required");
    }

    #[test]
    fn reply_parts_joins_multiline_reply() {
        let (code, message) = reply_parts(&response("530-Login incorrect.\r\n530 Bye.\r\n"));
        assert_eq!(code, 530);
        assert_eq!(message, "Login incorrect. Bye.");
    }
}
