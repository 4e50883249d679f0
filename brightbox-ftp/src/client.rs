//! The FTPS session: connect, `SIZE`, `NLST`, `QUIT`, time limits and reply mapping.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use suppaftp::tokio::{ImplAsyncFtpStream, TransferStream};
use suppaftp::types::FileType;
use suppaftp::{Mode, Status};
use tokio::net::TcpStream;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::{FtpsConfig, check_host_name};
use crate::error::{Channel, FtpError};
use crate::names::validate_remote_dir;
use crate::record::{Connector, TlsStream};
use crate::tls::{self, RecordingVerifier, describe_certificate_error};

/// Size of each buffer that moves file data between disk and a data connection.
pub(crate) const CHUNK_SIZE: usize = 1024 * 1024;

/// Time limit for reading a late reply or deleting a partial file after a failed transfer.
pub(crate) const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Time limit for reading a reply the server may have sent after a data connection failed.
const LATE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Idle time of the control connection before the kernel sends the first TCP keepalive probe.
///
/// During a long transfer the control connection carries nothing, and NAT gateways and
/// firewalls drop mappings that stay idle. AWS NAT gateways drop them after 350 s, Azure load
/// balancers after 4 minutes by default, and many home routers after a few minutes. A probe every 30 s
/// keeps the mapping alive well below those limits.
pub(crate) const CONTROL_KEEPALIVE_TIME: Duration = Duration::from_secs(30);

/// Time between unanswered TCP keepalive probes on the control connection.
pub(crate) const CONTROL_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Unanswered probes after which the kernel reports the control connection as dead, so a
/// dropped connection surfaces as an error after about 30 s + 4 × 15 s = 90 s.
pub(crate) const CONTROL_KEEPALIVE_RETRIES: u32 = 4;

/// The data connection of one transfer.
pub(crate) type Transfer = TransferStream<TlsStream>;

/// An FTP session whose TLS connections go through [`TlsStream`].
pub(crate) type FtpSession = ImplAsyncFtpStream<TlsStream>;

/// One logged-in FTPS session.
///
/// By default the control connection is TLS-protected with `AUTH TLS` before the user name is
/// sent; [`FtpsConfig::implicit_tls`] starts TLS at once instead. Transfers use binary type
/// (`TYPE I`) and passive mode, and every data connection is TLS-protected and resumes the
/// control connection's TLS session.
///
/// Passive mode uses `EPSV` when the server's `FEAT` lists it or the control connection is
/// IPv6, and falls back to `PASV` when the server replies `500` or `502` to it. Data connections
/// go to the control connection's peer address: the address in a `227` reply is ignored unless
/// [`FtpsConfig::use_passive_address`] is set, so a server behind NAT that advertises a
/// private address still works.
///
/// Methods take `&mut self`: FTP allows one command at a time per session. Open several
/// sessions to transfer files in parallel. The client keeps its [`FtpsConfig`] so that retries
/// and segmented downloads can open further sessions.
pub struct FtpsClient {
    pub(crate) ftp: FtpSession,
    pub(crate) context: Context,
    pub(crate) config: FtpsConfig,
    pub(crate) features: Features,
    /// Whether the control connection runs over IPv6.
    pub(crate) peer_ipv6: bool,
    /// Whether data connections are opened with `EPSV`.
    pub(crate) extended_passive: bool,
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
pub(crate) struct Context {
    pub(crate) host: String,
    port: u16,
    user: String,
    pub(crate) io_timeout: Duration,
    pub(crate) final_reply_timeout: Duration,
    verifier: Option<Arc<RecordingVerifier>>,
}

/// The extensions a server listed in its `FEAT` reply, with names in upper case.
#[derive(Debug, Clone, Default)]
pub(crate) struct Features {
    listed: HashMap<String, Option<String>>,
}

impl Features {
    pub(crate) fn from_reply(features: suppaftp::types::Features) -> Self {
        let listed = features
            .into_iter()
            .map(|(name, value)| (name.to_ascii_uppercase(), value))
            .collect();
        Self { listed }
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.listed.contains_key(name)
    }

    /// Returns whether `FEAT` lists `REST STREAM`, so `REST` before `STOR` and `RETR` works.
    pub(crate) fn rest_stream(&self) -> bool {
        self.listed
            .get("REST")
            .and_then(Option::as_deref)
            .is_some_and(|value| value.to_ascii_uppercase().contains("STREAM"))
    }
}

impl FtpsClient {
    /// Connects, protects the control connection with TLS, logs in, and selects binary type
    /// and passive mode.
    ///
    /// The TLS server name is the configured host; an IP address is checked against the
    /// certificate's IP address entries. The client then reads the server's `FEAT` reply to
    /// choose between `EPSV` and `PASV`, `MLSD` and `LIST`, and `REST` and `APPE`.
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidHost`] when the configured host is not a host name or IP address.
    /// - [`FtpError::InvalidOption`] when the user name or password contains CR, LF or NUL.
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
        check_credentials(config)?;
        let tls = if config.plain_ftp {
            None
        } else {
            Some(tls::build(config)?)
        };
        let context = Context {
            host: config.host.clone(),
            port: config.port,
            user: config.user.clone(),
            io_timeout: config.io_timeout,
            final_reply_timeout: config.final_reply_timeout,
            verifier: tls.as_ref().map(|setup| Arc::clone(&setup.verifier)),
        };

        let (ftp, peer_is_ipv6) = match &tls {
            Some(setup) if config.implicit_tls => {
                connect_implicit(config, &context, &setup.config).await?
            }
            _ => {
                let tcp = open_tcp(&config.host, config.port, config.connect_timeout).await?;
                let peer_is_ipv6 = tcp.peer_addr().is_ok_and(|address| address.is_ipv6());
                if let Err(error) = tcp.set_nodelay(true) {
                    debug!(%error, "failed to disable Nagle's algorithm on the control connection");
                }
                enable_keepalive(&tcp);
                let ftp = context
                    .bounded("reading the server greeting", async {
                        FtpSession::connect_with_stream(tcp)
                            .await
                            .map_err(|error| context.map_error(error, Channel::Control, "greeting"))
                    })
                    .await?;
                (ftp, peer_is_ipv6)
            }
        };

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
        ftp.set_mode(Mode::Passive);
        ftp.set_passive_nat_workaround(!config.use_passive_address);

        match &tls {
            None => {
                warn!("plain FTP: the password and all data cross the network unencrypted");
            }
            Some(_) if config.implicit_tls => {
                for (command, what) in [("PBSZ 0", "PBSZ 0"), ("PROT P", "PROT P")] {
                    context
                        .bounded(what, async {
                            ftp.custom_command(command, &[Status::CommandOk])
                                .await
                                .map(|_| ())
                                .map_err(|error| context.map_error(error, Channel::Control, what))
                        })
                        .await?;
                }
                debug!("implicit TLS session ready");
            }
            Some(setup) => {
                let connector = Connector::new(Arc::clone(&setup.config));
                ftp = context
                    .bounded("AUTH TLS and the TLS handshake", async {
                        ftp.into_secure(connector, &config.host)
                            .await
                            .map_err(|error| context.map_error(error, Channel::Control, "AUTH TLS"))
                    })
                    .await?;
                debug!("control connection is TLS-protected");
            }
        }

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

        let features = match context
            .bounded("FEAT", async { Ok(ftp.feat().await) })
            .await?
        {
            Ok(features) => Features::from_reply(features),
            Err(error) => {
                debug!(%error, "FEAT failed; assuming a server without extensions");
                Features::default()
            }
        };
        let extended_passive =
            peer_is_ipv6 || (features.has("EPSV") && !config.use_passive_address);
        if extended_passive {
            ftp.set_mode(Mode::ExtendedPassive);
        }
        info!(
            epsv = features.has("EPSV"),
            mlsd = features.has("MLSD"),
            rest_stream = features.rest_stream(),
            "logged in"
        );

        Ok(FtpsClient {
            ftp,
            context,
            config: config.clone(),
            features,
            peer_ipv6: peer_is_ipv6,
            extended_passive,
        })
    }

    /// Replaces this session with a new one to the same server.
    pub(crate) async fn reconnect(&mut self) -> Result<(), FtpError> {
        let fresh = FtpsClient::connect(&self.config).await?;
        *self = fresh;
        Ok(())
    }

    /// Returns the host name or IP address this session is connected to.
    pub fn host(&self) -> &str {
        &self.context.host
    }

    /// Returns the settings this session was opened with.
    pub fn config(&self) -> &FtpsConfig {
        &self.config
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
    /// - [`FtpError::NotFound`] when the server replies `550` for a missing directory, and
    ///   [`FtpError::ServerReply`] when it rejects the listing for another reason.
    /// - [`FtpError::Network`], [`FtpError::TlsHandshake`], [`FtpError::TlsSessionReuseRequired`]
    ///   or [`FtpError::Timeout`] when a connection fails or stalls.
    pub async fn list_names(&mut self, remote_dir: &str) -> Result<Vec<String>, FtpError> {
        validate_remote_dir(remote_dir)?;
        let line = if remote_dir.is_empty() {
            "NLST".to_owned()
        } else {
            format!("NLST {remote_dir}")
        };
        let span = info_span!("ftps_list", host = %self.context.host, remote_dir);
        let bytes = self.read_listing(line).instrument(span).await?;
        let lines = crate::listing::decode_lines(&bytes);

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
    /// Closes a failed upload's data connection and returns the most telling error.
    ///
    /// A server that rejects an upload after `150` closes the data connection and sends the
    /// reason on the control connection, for example a missing directory or a TLS session that
    /// was not resumed. The client only sees a broken pipe. This reads that reply while the
    /// transfer is still open, then sends `ABOR` so the control connection is in step for the
    /// next command.
    pub(crate) async fn abandon_transfer(
        &self,
        ftp: &mut FtpSession,
        transfer: Transfer,
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
    pub(crate) fn reply_error(
        &self,
        response: &suppaftp::types::Response,
        command: &str,
    ) -> FtpError {
        let (code, message) = reply_parts(response);
        if code == 522 {
            return FtpError::TlsSessionReuseRequired {
                host: self.host.clone(),
                message,
            };
        }
        let (verb, remote_path) = split_command(command);
        match classify_reply(code, &verb, &message) {
            ReplyMeaning::NotFound => FtpError::NotFound {
                host: self.host.clone(),
                remote_path,
                command: command.to_owned(),
                code,
                message,
            },
            ReplyMeaning::PermissionDenied => FtpError::PermissionDenied {
                host: self.host.clone(),
                remote_path,
                command: command.to_owned(),
                code,
                message,
            },
            ReplyMeaning::Other => FtpError::ServerReply {
                command: command.to_owned(),
                code,
                message,
            },
        }
    }

    /// Runs `operation` with the time limit for a transfer's final reply.
    pub(crate) async fn bounded_final<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, FtpError>>,
    ) -> Result<T, FtpError> {
        match tokio::time::timeout(self.final_reply_timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(FtpError::Timeout {
                what: format!("{what} on {}", self.host),
                after: self.final_reply_timeout,
            }),
        }
    }

    /// Runs `operation` with the session's stall time limit.
    pub(crate) async fn bounded<T>(
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
    pub(crate) async fn explain_data_failure(
        &self,
        ftp: &mut FtpSession,
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
    pub(crate) fn map_error(
        &self,
        error: suppaftp::FtpError,
        channel: Channel,
        operation: &str,
    ) -> FtpError {
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
        let Some(recorded) = self
            .verifier
            .as_ref()
            .and_then(|verifier| verifier.take_error())
        else {
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

/// The meaning of a negative `5xx` reply for the named remote path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReplyMeaning {
    NotFound,
    PermissionDenied,
    Other,
}

/// Classifies a reply by its code, the command verb and the reply text.
///
/// RFC 959 gives `550` both meanings, so the verb decides: commands that create or replace a
/// file are denied, commands that read or remove one did not find it. A reply text stating that
/// permission was denied, or that the file was not found, decides before the verb.
pub(crate) fn classify_reply(code: u32, verb: &str, message: &str) -> ReplyMeaning {
    let lower = message.to_ascii_lowercase();
    let says_denied = [
        "permission",
        "denied",
        "not allowed",
        "read-only",
        "read only",
    ]
    .iter()
    .any(|phrase| lower.contains(phrase));
    let says_missing = ["not found", "no such", "does not exist", "doesn't exist"]
        .iter()
        .any(|phrase| lower.contains(phrase));
    match code {
        553 => ReplyMeaning::PermissionDenied,
        550 if says_denied => ReplyMeaning::PermissionDenied,
        550 if says_missing => ReplyMeaning::NotFound,
        550 => match verb {
            "STOR" | "APPE" | "STOU" | "MKD" | "RNTO" => ReplyMeaning::PermissionDenied,
            "RETR" | "SIZE" | "MDTM" | "DELE" | "RNFR" | "RMD" | "CWD" | "LIST" | "MLSD"
            | "NLST" | "MLST" => ReplyMeaning::NotFound,
            _ => ReplyMeaning::Other,
        },
        _ => ReplyMeaning::Other,
    }
}

/// Splits `"VERB path"` into the upper-case verb and the path. For the combined rename command
/// `"RNFR from / RNTO to"` the path is `from`.
pub(crate) fn split_command(command: &str) -> (String, String) {
    let (verb, rest) = command.split_once(' ').unwrap_or((command, ""));
    let path = rest.split(" / RNTO ").next().unwrap_or(rest);
    (verb.to_ascii_uppercase(), path.to_owned())
}

/// Splits a reply into its code and its text without the code prefixes.
///
/// The code is read from the reply text because suppaftp maps codes it does not know, such as
/// `522`, to a catch-all status. Lines end at CR or LF, so a bare CR does not reach error
/// messages and logs. Tabs become spaces and other control characters become U+FFFD.
pub(crate) fn reply_parts(response: &suppaftp::types::Response) -> (u32, String) {
    let text = String::from_utf8_lossy(&response.body);
    let code = text
        .get(..3)
        .filter(|digits| digits.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u32>().ok())
        .unwrap_or_else(|| response.status.code());
    let message = text
        .split(['\r', '\n'])
        .map(|line| strip_reply_code(line).trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.chars()
                .map(|character| match character {
                    '\t' => ' ',
                    other if other.is_control() => '\u{fffd}',
                    other => other,
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ");
    (code, message)
}

/// Removes a `NNN ` or `NNN-` prefix from one reply line. Lines that start with digits but no
/// such separator, such as `2024 backups` inside a multi-line reply, are kept whole.
fn strip_reply_code(line: &str) -> &str {
    match (line.get(..3), line.get(3..)) {
        (Some(digits), Some(rest))
            if digits.bytes().all(|byte| byte.is_ascii_digit())
                && (rest.is_empty() || rest.starts_with([' ', '-'])) =>
        {
            rest.get(1..).unwrap_or_default()
        }
        _ => line,
    }
}

/// Opens an implicit-TLS control connection to the first address of the host that accepts.
///
/// suppaftp opens the TCP connection itself here, so the connect time limit covers the TCP
/// connect, the TLS handshake and the greeting together.
/// Rejects a user name or password that contains CR, LF or NUL, which would end the `USER` or
/// `PASS` command early and let the rest run as another command.
fn check_credentials(config: &FtpsConfig) -> Result<(), FtpError> {
    let breaks_line = |value: &str| value.contains(['\r', '\n', '\0']);
    if breaks_line(&config.user) {
        return Err(FtpError::InvalidOption {
            name: "FtpsConfig user".to_owned(),
            value: format!("{:?}", config.user),
            reason: "the user name contains a line break or NUL; pass the bare user name, such as `acc-12345`".to_owned(),
        });
    }
    if breaks_line(config.password.expose_secret()) {
        return Err(FtpError::InvalidOption {
            name: "FtpsConfig password".to_owned(),
            value: "[password withheld]".to_owned(),
            reason: "the password contains a line break or NUL; remove trailing newlines from the value read from a file or prompt".to_owned(),
        });
    }
    Ok(())
}

async fn connect_implicit(
    config: &FtpsConfig,
    context: &Context,
    tls_config: &Arc<rustls::ClientConfig>,
) -> Result<(FtpSession, bool), FtpError> {
    let limit = config.connect_timeout + config.io_timeout;
    let mut last_error = None;
    for address in resolve(&config.host, config.port, config.connect_timeout).await? {
        debug!(%address, "opening an implicit-TLS connection");
        let connector = Connector::new(Arc::clone(tls_config));
        let attempt = tokio::time::timeout(
            limit,
            FtpSession::connect_secure_implicit(address, connector, &config.host),
        )
        .await;
        match attempt {
            Ok(Ok(ftp)) => {
                enable_keepalive(&*ftp.get_ref().await);
                return Ok((ftp, address.is_ipv6()));
            }
            Ok(Err(suppaftp::FtpError::ConnectionError(source))) => {
                last_error = Some(FtpError::Connect {
                    host: config.host.clone(),
                    port: config.port,
                    source,
                });
            }
            Ok(Err(error)) => {
                return Err(context.map_error(error, Channel::Control, "implicit TLS greeting"));
            }
            Err(_) => {
                last_error = Some(FtpError::Timeout {
                    what: format!("implicit TLS connection to {address}"),
                    after: limit,
                });
            }
        }
    }
    Err(last_error.unwrap_or_else(|| FtpError::Connect {
        host: config.host.clone(),
        port: config.port,
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} resolved to no address", config.host),
        ),
    }))
}

/// Turns on TCP keepalive on a control connection with [`CONTROL_KEEPALIVE_TIME`],
/// [`CONTROL_KEEPALIVE_INTERVAL`] and [`CONTROL_KEEPALIVE_RETRIES`].
///
/// A failure only loses the keepalive, so it is logged and the session goes on.
pub(crate) fn enable_keepalive(tcp: &TcpStream) {
    let keepalive = socket2::TcpKeepalive::new().with_time(CONTROL_KEEPALIVE_TIME);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "freebsd",
        target_os = "netbsd"
    ))]
    let keepalive = keepalive
        .with_interval(CONTROL_KEEPALIVE_INTERVAL)
        .with_retries(CONTROL_KEEPALIVE_RETRIES);
    if let Err(error) = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
        warn!(%error, "failed to enable TCP keepalive on the control connection");
    }
}

/// Resolves `host` within `limit`.
async fn resolve(
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<Vec<std::net::SocketAddr>, FtpError> {
    match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Ok(result) => result
            .map(Iterator::collect)
            .map_err(|source| FtpError::Connect {
                host: host.to_owned(),
                port,
                source,
            }),
        Err(_) => Err(FtpError::Timeout {
            what: format!("resolving {host}"),
            after: limit,
        }),
    }
}

/// Opens a TCP connection to the first address of `host` that accepts within `limit`.
async fn open_tcp(host: &str, port: u16, limit: Duration) -> Result<TcpStream, FtpError> {
    let connect_error = |source| FtpError::Connect {
        host: host.to_owned(),
        port,
        source,
    };
    let addresses = resolve(host, port, limit).await?;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &str) -> suppaftp::types::Response {
        suppaftp::types::Response::new(Status::Unknown, body.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn keepalive_settings_reach_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a listener on 127.0.0.1");
        let address = listener.local_addr().expect("listener address");
        let tcp = TcpStream::connect(address).await.expect("connect");

        enable_keepalive(&tcp);

        let socket = socket2::SockRef::from(&tcp);
        assert!(socket.keepalive().expect("read SO_KEEPALIVE"));
        assert_eq!(
            socket.tcp_keepalive_time().expect("read TCP_KEEPIDLE"),
            CONTROL_KEEPALIVE_TIME
        );
        #[cfg(target_os = "linux")]
        {
            assert_eq!(
                socket.tcp_keepalive_interval().expect("read TCP_KEEPINTVL"),
                CONTROL_KEEPALIVE_INTERVAL
            );
            assert_eq!(
                socket.tcp_keepalive_retries().expect("read TCP_KEEPCNT"),
                CONTROL_KEEPALIVE_RETRIES
            );
        }
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
    fn features_read_rest_stream() {
        let mut reply = suppaftp::types::Features::new();
        reply.insert("rest".to_owned(), Some("STREAM".to_owned()));
        reply.insert("MLSD".to_owned(), None);
        let features = Features::from_reply(reply);
        assert!(features.rest_stream());
        assert!(features.has("MLSD"));
        assert!(features.has("REST"));
        assert!(!features.has("EPSV"));

        let mut plain_rest = suppaftp::types::Features::new();
        plain_rest.insert("REST".to_owned(), None);
        assert!(!Features::from_reply(plain_rest).rest_stream());
    }

    #[test]
    fn classify_reply_table() {
        let cases = [
            (550, "RETR", "Failed to open file.", ReplyMeaning::NotFound),
            (
                550,
                "SIZE",
                "Could not get file size.",
                ReplyMeaning::NotFound,
            ),
            (550, "RNFR", "RNFR command failed.", ReplyMeaning::NotFound),
            (
                550,
                "RNFR",
                "Permission denied.",
                ReplyMeaning::PermissionDenied,
            ),
            (
                550,
                "STOR",
                "Failed to open file.",
                ReplyMeaning::PermissionDenied,
            ),
            (550, "STOR", "File not found", ReplyMeaning::NotFound),
            (
                553,
                "STOR",
                "Could not create file.",
                ReplyMeaning::PermissionDenied,
            ),
            (550, "SITE", "Unknown.", ReplyMeaning::Other),
            (451, "STOR", "Local error.", ReplyMeaning::Other),
        ];
        for (code, verb, message, expected) in cases {
            assert_eq!(
                classify_reply(code, verb, message),
                expected,
                "{code} {verb} {message}"
            );
        }
    }

    #[test]
    fn split_command_finds_path() {
        assert_eq!(
            split_command("RETR images/disk.img"),
            ("RETR".to_owned(), "images/disk.img".to_owned())
        );
        assert_eq!(
            split_command("RNFR a/.x.part / RNTO a/x"),
            ("RNFR".to_owned(), "a/.x.part".to_owned())
        );
    }

    #[test]
    fn reply_parts_bare_cr_and_controls() {
        let (code, message) = reply_parts(&response(
            "530-Login incore\rt.cr\r\n530 Bye\x1b[2J\tnow.\x00\r\n",
        ));
        assert_eq!(code, 530);
        assert_eq!(message, "Login incore t.cr Bye\u{fffd}[2J now.\u{fffd}");
    }

    #[test]
    fn reply_parts_code_prefix_rules() {
        let cases = [
            ("550\u{e9} nope\r\n", 550, "550\u{e9} nope"),
            (
                "211-Features:\r\n2024 backups\r\n211 End\r\n",
                211,
                "Features: 2024 backups End",
            ),
            ("+12 odd\r\n", 0, "+12 odd"),
            ("226\r\n", 226, ""),
        ];
        // The test responses carry `Status::Unknown`, whose code 0 is the fallback.
        for (body, expected_code, expected_message) in cases {
            let (code, message) = reply_parts(&response(body));
            assert_eq!(code, expected_code, "code of {body:?}");
            assert_eq!(message, expected_message, "message of {body:?}");
        }
    }

    #[test]
    fn reply_parts_joins_multiline_reply() {
        let (code, message) = reply_parts(&response("530-Login incorrect.\r\n530 Bye.\r\n"));
        assert_eq!(code, 530);
        assert_eq!(message, "Login incorrect. Bye.");
    }
}
