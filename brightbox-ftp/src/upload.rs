//! Uploads: temporary name, resume, SHA-256, size check, rename and retries.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::client::{CHUNK_SIZE, FtpsClient, Transfer};
use crate::error::{Channel, FtpError};
use crate::names::{
    join_remote, temporary_name, validate_remote_dir, validate_remote_name, validate_temporary_name,
};
use crate::options::UploadOptions;
use crate::progress::Reporter;
use crate::transfer::{DataCommand, backoff_delay};

/// Result of a successful upload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Upload {
    /// The final remote path: `remote_dir` and `remote_name` joined with `/`.
    pub remote_path: String,
    /// Length of the whole remote file in bytes, equal to the size the server reported.
    pub bytes: u64,
    /// Bytes read from the source, including a resumed prefix. It equals `bytes` unless
    /// [`UploadOptions::gzip`] compressed the data.
    pub source_bytes: u64,
    /// SHA-256 of the whole source as lowercase hex, including a resumed prefix, computed
    /// before any compression. Empty when [`UploadOptions::sha256`] turned hashing off.
    pub sha256: String,
    /// Bytes that an earlier attempt had already stored and this upload did not send again.
    pub resumed_from: u64,
}

/// The source of upload data, named in error messages.
enum Source<'a> {
    File(&'a Path),
    Reader,
}

impl Source<'_> {
    fn read_error(&self, source: std::io::Error) -> FtpError {
        match self {
            Source::File(path) => FtpError::Io {
                path: path.to_path_buf(),
                source,
            },
            Source::Reader => FtpError::Stream {
                operation: "reading the upload source".to_owned(),
                source,
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::File(path) => format!("reading {}", path.display()),
            Source::Reader => "reading the upload source".to_owned(),
        }
    }
}

/// Remote names of one upload.
struct Target {
    final_path: String,
    temporary_path: String,
}

/// A progress callback of the older [`FtpsClient::upload_file`] signature.
type LegacyProgress<'a> = Option<&'a (dyn Fn(u64) + Send + Sync)>;

/// A failed attempt: the error, and whether a partial file may be on the server.
struct Failure {
    error: FtpError,
    partial_exists: bool,
}

impl From<FtpError> for Failure {
    fn from(error: FtpError) -> Self {
        Failure {
            error,
            partial_exists: true,
        }
    }
}

impl FtpsClient {
    /// Uploads `local` to `remote_dir/remote_name`.
    ///
    /// This is [`FtpsClient::upload_file_with`] with default options, except that `progress`,
    /// when given, receives the cumulative number of bytes sent after each 1 MiB chunk.
    ///
    /// # Errors
    ///
    /// The errors of [`FtpsClient::upload_file_with`].
    pub async fn upload_file(
        &mut self,
        local: &Path,
        remote_dir: &str,
        remote_name: &str,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<Upload, FtpError> {
        self.upload_file_inner(
            local,
            remote_dir,
            remote_name,
            &UploadOptions::default(),
            progress,
        )
        .await
    }

    /// Uploads `local` to `remote_dir/remote_name` with `options`.
    ///
    /// The file is streamed from disk in 1 MiB chunks, so memory use does not grow with the
    /// file, to the temporary name `remote_dir/.remote_name.part` (or
    /// [`UploadOptions::temporary_name`]). The SHA-256 of the whole
    /// file is computed on the way. After the server confirms the transfer (`226`) and reports
    /// a size equal to the local length, the temporary file is renamed to `remote_name`,
    /// replacing any file of that name. A failed upload never leaves a file under
    /// `remote_name`. The temporary file is deleted, unless
    /// [`UploadOptions::keep_partial_on_error`] is set or the connection is lost.
    ///
    /// With [`UploadOptions::resume`] an existing temporary file is continued, and with
    /// [`UploadOptions::retries`] a retryable failure reconnects and resumes.
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemoteName`] or [`FtpError::InvalidRemotePath`] before any network
    ///   I/O when the name or directory is not allowed.
    /// - [`FtpError::Io`] when the local file cannot be read, is not a regular file, or changes
    ///   length during the upload.
    /// - [`FtpError::IncompleteTransfer`] when the server stores a different number of bytes.
    /// - [`FtpError::PermissionDenied`] when the server does not allow writing the directory.
    /// - [`FtpError::TlsSessionReuseRequired`] when the server rejects the data connection for
    ///   not resuming the TLS session.
    /// - [`FtpError::ServerReply`], [`FtpError::Network`], [`FtpError::TlsHandshake`] or
    ///   [`FtpError::Timeout`] when a command, the data connection or a read or write fails or
    ///   stalls, after the retries run out.
    pub async fn upload_file_with(
        &mut self,
        local: &Path,
        remote_dir: &str,
        remote_name: &str,
        options: &UploadOptions,
    ) -> Result<Upload, FtpError> {
        self.upload_file_inner(local, remote_dir, remote_name, options, None)
            .await
    }

    /// Uploads the bytes `reader` yields to `remote_dir/remote_name` with `options`.
    ///
    /// The upload works like [`FtpsClient::upload_file_with`]: temporary name, SHA-256, size
    /// check and rename. With [`UploadOptions::resume`] the client reads and hashes as many
    /// bytes from `reader` as the temporary file holds, without sending them, so the reader
    /// must yield the whole file from its start. [`UploadOptions::retries`] is ignored, because
    /// a reader cannot be read twice. Progress reports carry no total.
    ///
    /// # Errors
    ///
    /// - [`FtpError::Stream`] when reading `reader` fails.
    /// - [`FtpError::ResumeMismatch`] when resuming and `reader` ends before the length of the
    ///   remote temporary file; that file is then deleted.
    /// - The other errors of [`FtpsClient::upload_file_with`].
    pub async fn upload_reader<R: AsyncRead + Unpin + Send>(
        &mut self,
        mut reader: R,
        remote_dir: &str,
        remote_name: &str,
        options: &UploadOptions,
    ) -> Result<Upload, FtpError> {
        check_gzip_options(options)?;
        let target = prepare_target(remote_dir, remote_name, options.temporary_name.as_deref())?;
        let span = info_span!(
            "ftps_upload",
            host = %self.context.host,
            remote_path = %target.final_path,
            source = "reader",
            gzip = options.gzip,
        );
        async {
            let attempt = self
                .upload_attempt(
                    &mut reader,
                    None,
                    &Source::Reader,
                    &target,
                    options.resume,
                    options,
                    None,
                )
                .await;
            self.settle(attempt, &target, options.keep_partial_on_error)
                .await
        }
        .instrument(span)
        .await
    }

    async fn upload_file_inner(
        &mut self,
        local: &Path,
        remote_dir: &str,
        remote_name: &str,
        options: &UploadOptions,
        legacy: LegacyProgress<'_>,
    ) -> Result<Upload, FtpError> {
        check_gzip_options(options)?;
        let target = prepare_target(remote_dir, remote_name, options.temporary_name.as_deref())?;
        let span = info_span!(
            "ftps_upload",
            host = %self.context.host,
            remote_path = %target.final_path,
            local = %local.display(),
            gzip = options.gzip,
        );
        async {
            let mut attempt_number = 0_u32;
            loop {
                let attempt = match open_local(local).await {
                    Ok((mut file, length)) => {
                        // A gzip stream cannot continue a partial file, so its retries restart.
                        let resume = !options.gzip && (options.resume || attempt_number > 0);
                        self.upload_attempt(
                            &mut file,
                            Some(length),
                            &Source::File(local),
                            &target,
                            resume,
                            options,
                            legacy,
                        )
                        .await
                    }
                    Err(error) => Err(Failure {
                        error,
                        partial_exists: false,
                    }),
                };
                match attempt {
                    Err(failure)
                        if failure.error.is_retryable() && attempt_number < options.retries =>
                    {
                        attempt_number += 1;
                        let delay = backoff_delay(attempt_number);
                        warn!(
                            error = %failure.error,
                            attempt = attempt_number,
                            of = options.retries,
                            ?delay,
                            "upload failed; reconnecting and resuming"
                        );
                        tokio::time::sleep(delay).await;
                        if let Err(error) = self.reconnect().await {
                            warn!(%error, "reconnect failed");
                            if !error.is_retryable() {
                                return Err(error);
                            }
                        }
                    }
                    other => {
                        return self
                            .settle(other, &target, options.keep_partial_on_error)
                            .await;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Returns the upload, or deletes or keeps the partial file and returns the error.
    async fn settle(
        &mut self,
        attempt: Result<Upload, Failure>,
        target: &Target,
        keep_partial: bool,
    ) -> Result<Upload, FtpError> {
        match attempt {
            Ok(upload) => Ok(upload),
            Err(failure) => {
                if failure.partial_exists {
                    if keep_partial {
                        info!(
                            temporary_path = %target.temporary_path,
                            "kept the partial upload; resume it with UploadOptions::resume"
                        );
                    } else {
                        self.discard_partial(&target.temporary_path).await;
                    }
                }
                Err(failure.error)
            }
        }
    }

    /// Runs one upload attempt over the current session.
    #[allow(clippy::too_many_arguments)]
    async fn upload_attempt<R: AsyncRead + Unpin + Send>(
        &mut self,
        reader: &mut R,
        length: Option<u64>,
        source: &Source<'_>,
        target: &Target,
        resume: bool,
        options: &UploadOptions,
        legacy: LegacyProgress<'_>,
    ) -> Result<Upload, Failure> {
        let gzip = options.gzip;
        let sink = options.progress.as_ref();
        let started = Instant::now();
        let temporary = target.temporary_path.as_str();

        let mut offset = if resume {
            self.partial_size(temporary).await?
        } else {
            0
        };
        if let Some(length) = length
            && offset > length
        {
            warn!(
                partial = offset,
                local = length,
                "the remote partial file is longer than the local file; starting again"
            );
            offset = 0;
        }

        // A fresh upload and a resume on a server with `REST STREAM` both use STOR; REST
        // carries the offset of the latter.
        let mut command = if offset == 0 || self.features.rest_stream() {
            DataCommand::Stor(temporary.to_owned())
        } else {
            DataCommand::Appe(temporary.to_owned())
        };
        let rest = if matches!(command, DataCommand::Stor(_)) {
            offset
        } else {
            0
        };
        let mut transfer = match self.open_data(&command, rest).await {
            Ok(transfer) => transfer,
            Err(error) if offset > 0 && matches!(error.reply_code(), Some(500 | 502 | 504)) => {
                warn!(
                    %error,
                    "the server does not support resuming this way; starting again from byte 0"
                );
                offset = 0;
                command = DataCommand::Stor(temporary.to_owned());
                self.open_data(&command, 0).await?
            }
            Err(error) => {
                return Err(Failure {
                    error,
                    partial_exists: offset > 0,
                });
            }
        };
        let line = command.line();
        if offset > 0 {
            info!(offset, "resuming the upload");
        }

        let mut hasher = options.sha256.then(Sha256::new);
        let mut reporter = Reporter::new(sink, length, offset);
        let hashed = match skip_prefix(reader, offset, &mut hasher, source).await {
            Ok(hashed) => hashed,
            Err(error) => return Err(self.close_after_local_error(transfer, error, &line).await),
        };
        if hashed < offset {
            let error = FtpError::ResumeMismatch {
                host: self.context.host.clone(),
                remote_path: temporary.to_owned(),
                partial: offset,
                available: hashed,
            };
            return Err(self.close_after_local_error(transfer, error, &line).await);
        }

        let copied = self
            .send_data(
                reader,
                &mut transfer,
                source,
                &line,
                offset,
                gzip,
                &mut hasher,
                &mut reporter,
                legacy,
            )
            .await;
        let Sent { source_read, sent } = match copied {
            Ok(sent) => sent,
            Err(error @ (FtpError::Stream { .. } | FtpError::Io { .. })) => {
                return Err(self.close_after_local_error(transfer, error, &line).await);
            }
            Err(error) => return Err(self.abandon(transfer, error, &line).await.into()),
        };

        // finish() sends TLS close_notify, waits for the server to close the data connection
        // and checks that the reply is 226 or 250.
        // NOTE: when the server has already closed the data connection, suppaftp 12.2 reports
        // the failed close_notify and drops the server's reply, so the error is a `Network`
        // error on the data channel rather than the server's reason.
        let total = offset + sent;
        let source_total = offset + source_read;
        let context = &self.context;
        let confirmed = context
            .bounded_final(&format!("waiting for the final reply to {line}"), async {
                transfer
                    .finish()
                    .await
                    .map_err(|error| context.map_error(error, Channel::Data, &line))
            })
            .await;
        if let Err(error) = confirmed {
            self.confirm_without_final_reply(error, temporary, total)
                .await?;
        }
        debug!(
            bytes = total,
            source_bytes = source_total,
            "transfer confirmed by the server"
        );

        if let (Some(length), Source::File(path)) = (length, source)
            && source_total != length
        {
            return Err(FtpError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(format!(
                    "the file changed length during the upload, from {length} to \
                     {source_total} bytes; upload it again once it no longer changes"
                )),
            }
            .into());
        }

        let stored = self.size(temporary).await?;
        if stored != total {
            warn!(
                expected = total,
                actual = stored,
                "remote size differs from the bytes sent"
            );
            return Err(FtpError::IncompleteTransfer {
                host: self.context.host.clone(),
                remote_path: temporary.to_owned(),
                sent: total,
                stored,
            }
            .into());
        }

        self.rename(temporary, &target.final_path).await?;
        reporter.finish(source_total);
        let sha256 = hasher
            .map(|hasher| hex::encode(hasher.finalize()))
            .unwrap_or_default();
        info!(
            bytes = total,
            source_bytes = source_total,
            resumed_from = offset,
            elapsed = ?started.elapsed(),
            %sha256,
            "upload complete"
        );
        Ok(Upload {
            remote_path: target.final_path.clone(),
            bytes: total,
            source_bytes: source_total,
            sha256,
            resumed_from: offset,
        })
    }

    /// Decides the outcome of an upload whose final reply could not be read.
    ///
    /// During a long upload the control connection carries nothing, and a NAT gateway or
    /// firewall may drop it while the data connection still moves bytes. The client then cannot
    /// read the `226`. When a `NOOP` shows that the control connection is gone, the client
    /// reconnects and compares the size of the temporary file with the bytes sent, instead of
    /// failing or trusting the upload blindly. It returns `Ok` only when the sizes match; a
    /// shorter file is an [`FtpError::IncompleteTransfer`], which retries resume.
    ///
    /// An error that carries the server's reply, or that happened while the control connection
    /// still replies, is returned unchanged.
    async fn confirm_without_final_reply(
        &mut self,
        error: FtpError,
        temporary: &str,
        sent: u64,
    ) -> Result<(), Failure> {
        if !self.final_reply_lost(&error).await {
            return Err(error.into());
        }
        warn!(
            %error,
            "the control connection was lost before the final reply; reconnecting to check the \
             size of the uploaded file"
        );
        self.reconnect().await?;

        // The old session may still be writing its last buffer to disk, so a short file gets
        // a few more looks before it counts as incomplete.
        let mut stored = 0;
        for look in 0..STORED_SIZE_LOOKS {
            if look > 0 {
                tokio::time::sleep(STORED_SIZE_PAUSE).await;
            }
            stored = match self.size(temporary).await {
                Ok(size) => size,
                Err(FtpError::NotFound { .. }) => 0,
                Err(size_error) => return Err(size_error.into()),
            };
            if stored >= sent {
                break;
            }
        }
        if stored != sent {
            warn!(
                expected = sent,
                actual = stored,
                "after the lost control connection, the remote size differs from the bytes sent"
            );
            return Err(FtpError::IncompleteTransfer {
                host: self.context.host.clone(),
                remote_path: temporary.to_owned(),
                sent,
                stored,
            }
            .into());
        }
        info!(
            bytes = stored,
            "the server stores every byte sent; the upload counts as confirmed"
        );
        Ok(())
    }

    /// Returns whether `error`, from waiting for a transfer's final reply, means that the control
    /// connection is gone: the error carries no server reply and a `NOOP` gets none either.
    pub(crate) async fn final_reply_lost(&mut self, error: &FtpError) -> bool {
        let reply_unknown = matches!(
            error,
            FtpError::Network { .. } | FtpError::Protocol { .. } | FtpError::Timeout { .. }
        );
        reply_unknown && !self.control_replies().await
    }

    /// Sends `NOOP` and returns whether the control connection replied to it.
    async fn control_replies(&mut self) -> bool {
        let probe = tokio::time::timeout(
            CONTROL_PROBE_TIMEOUT.min(self.context.io_timeout),
            self.ftp.noop(),
        )
        .await;
        match probe {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                debug!(%error, "NOOP after the failed final reply failed");
                false
            }
            Err(_) => {
                debug!("NOOP after the failed final reply timed out");
                false
            }
        }
    }

    /// Ends an upload whose local side failed by closing the data connection normally.
    ///
    /// The server then stores the bytes sent so far and replies `226`, which keeps the control
    /// connection in step. `ABOR` would not: libunftp 0.24 sends the transfer's own reply
    /// after its reply to `ABOR`, and the next command would read it.
    async fn close_after_local_error(
        &mut self,
        transfer: Transfer,
        error: FtpError,
        line: &str,
    ) -> Failure {
        let context = &self.context;
        let closed = context
            .bounded(&format!("closing the data connection of {line}"), async {
                transfer
                    .finish()
                    .await
                    .map_err(|error| context.map_error(error, Channel::Data, line))
            })
            .await;
        if let Err(close_error) = closed {
            debug!(%close_error, "closing the data connection after a local error failed");
        }
        Failure {
            error,
            partial_exists: true,
        }
    }

    /// Returns the size of the remote partial file, or 0 when there is none.
    async fn partial_size(&mut self, temporary: &str) -> Result<u64, Failure> {
        match self.size(temporary).await {
            Ok(size) => Ok(size),
            Err(FtpError::NotFound { .. }) => Ok(0),
            Err(error) => Err(Failure {
                error,
                partial_exists: false,
            }),
        }
    }

    /// Copies `reader` to the data connection, compressed with gzip when `gzip` is set,
    /// hashing the source bytes and reporting them on the way.
    #[allow(clippy::too_many_arguments)]
    async fn send_data<R: AsyncRead + Unpin + Send>(
        &self,
        reader: &mut R,
        transfer: &mut Transfer,
        source: &Source<'_>,
        line: &str,
        offset: u64,
        gzip: bool,
        hasher: &mut Option<Sha256>,
        reporter: &mut Reporter,
        legacy: LegacyProgress<'_>,
    ) -> Result<Sent, FtpError> {
        let context = &self.context;
        let mut buffer = vec![0_u8; CHUNK_SIZE];
        let mut encoder = gzip.then(|| GzEncoder::new(Vec::new(), Compression::fast()));
        let mut totals = Sent {
            source_read: 0,
            sent: 0,
        };
        let read_what = source.describe();
        let write_what = format!("writing to the data connection of {line}");
        let write = async |transfer: &mut Transfer, data: &[u8]| {
            context
                .bounded(&write_what, async {
                    transfer
                        .write_all(data)
                        .await
                        .map_err(|source| FtpError::Network {
                            host: context.host.clone(),
                            channel: Channel::Data,
                            operation: line.to_owned(),
                            source,
                        })
                })
                .await
        };
        reporter.update(offset);
        loop {
            let read = context
                .bounded(&read_what, async {
                    read_full(reader, &mut buffer)
                        .await
                        .map_err(|error| source.read_error(error))
                })
                .await?;
            if read == 0 {
                if let Some(mut encoder) = encoder.take() {
                    // The buffer still contains the last chunk's output, which is already sent.
                    encoder.get_mut().clear();
                    let tail = encoder.finish().map_err(compression_error)?;
                    write(transfer, &tail).await?;
                    totals.sent += tail.len() as u64;
                }
                return Ok(totals);
            }
            let chunk = buffer.get(..read).unwrap_or_default();
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(chunk);
            }
            let wire = match encoder.as_mut() {
                Some(encoder) => {
                    // The previous output is on the wire, so the encoder's buffer starts empty.
                    encoder.get_mut().clear();
                    encoder.write_all(chunk).map_err(compression_error)?;
                    encoder.get_ref().as_slice()
                }
                None => chunk,
            };
            if !wire.is_empty() {
                write(transfer, wire).await?;
            }
            totals.sent += wire.len() as u64;
            totals.source_read += read as u64;
            reporter.update(offset + totals.source_read);
            if let Some(report) = legacy {
                report(totals.source_read);
            }
        }
    }
}

/// Looks at the remote size after a lost control connection before a short file counts as
/// incomplete.
const STORED_SIZE_LOOKS: u32 = 4;

/// Pause between those looks.
const STORED_SIZE_PAUSE: Duration = Duration::from_millis(250);

/// Time limit for the `NOOP` that checks whether the control connection still replies.
const CONTROL_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Byte counts of one upload attempt, without a resumed prefix.
struct Sent {
    /// Bytes read from the source.
    source_read: u64,
    /// Bytes written to the data connection; fewer than `source_read` with gzip.
    sent: u64,
}

fn compression_error(source: std::io::Error) -> FtpError {
    FtpError::Stream {
        operation: "compressing the upload with gzip".to_owned(),
        source,
    }
}

/// Rejects [`UploadOptions::gzip`] together with [`UploadOptions::resume`].
fn check_gzip_options(options: &UploadOptions) -> Result<(), FtpError> {
    if options.gzip && options.resume {
        return Err(FtpError::InvalidOption {
            name: "UploadOptions::gzip".to_owned(),
            value: "true".to_owned(),
            reason: "a gzip stream cannot continue a partial file; turn off \
                     UploadOptions::resume or UploadOptions::gzip"
                .to_owned(),
        });
    }
    Ok(())
}

/// Reads until `buffer` is full or the reader ends, and returns the bytes read.
///
/// A full buffer means fewer, larger writes to the data connection.
async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut [u8],
) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let Some(rest) = buffer.get_mut(filled..) else {
            break;
        };
        let read = reader.read(rest).await?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    Ok(filled)
}

/// Reads and hashes the first `offset` bytes of `reader` without sending them, and returns how
/// many bytes it read, which is less than `offset` only when the reader ended early.
async fn skip_prefix<R: AsyncRead + Unpin>(
    reader: &mut R,
    offset: u64,
    hasher: &mut Option<Sha256>,
    source: &Source<'_>,
) -> Result<u64, FtpError> {
    let mut buffer = vec![0_u8; CHUNK_SIZE.min(usize::try_from(offset).unwrap_or(CHUNK_SIZE))];
    let mut done = 0_u64;
    while done < offset {
        let want = usize::try_from(offset - done)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let Some(slice) = buffer.get_mut(..want) else {
            break;
        };
        let read = reader
            .read(slice)
            .await
            .map_err(|error| source.read_error(error))?;
        if read == 0 {
            break;
        }
        if let Some(hasher) = hasher.as_mut() {
            hasher.update(slice.get(..read).unwrap_or_default());
        }
        done += read as u64;
    }
    Ok(done)
}

fn prepare_target(
    remote_dir: &str,
    remote_name: &str,
    custom_temporary: Option<&str>,
) -> Result<Target, FtpError> {
    validate_remote_name(remote_name)?;
    validate_remote_dir(remote_dir)?;
    let temporary = match custom_temporary {
        Some(name) => {
            validate_temporary_name(name, remote_name)?;
            name.to_owned()
        }
        None => temporary_name(remote_name),
    };
    Ok(Target {
        final_path: join_remote(remote_dir, remote_name),
        temporary_path: join_remote(remote_dir, &temporary),
    })
}

/// Opens `path` for reading and returns it with its length.
async fn open_local(path: &Path) -> Result<(tokio::fs::File, u64), FtpError> {
    let io_error = |source| FtpError::Io {
        path: PathBuf::from(path),
        source,
    };
    // Checked before opening, because opening a FIFO blocks until a writer appears.
    let before_open = tokio::fs::metadata(path).await.map_err(io_error)?;
    if !before_open.is_file() {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file; pass the path of a disk image file",
        )));
    }
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
