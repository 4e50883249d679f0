//! Downloads to a writer or a local file, with resume, SHA-256, format detection and optional
//! segments over several connections.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::client::{CHUNK_SIZE, CLEANUP_TIMEOUT, FtpsClient, Transfer};
use crate::config::FtpsConfig;
use crate::error::{Channel, FtpError};
use crate::format::{ImageFormat, Sniffer};
use crate::names::validate_remote_dir;
use crate::options::{DownloadOptions, MAX_SEGMENTS};
use crate::progress::{ProgressSink, Reporter};
use crate::segments::{HashOutcome, SegmentSink, SegmentedFile};
use crate::transfer::{DataCommand, backoff_delay};
use crate::writer::{Buffer, BufferPool, Chunk, FileWriter, OpenMode};

/// Smallest byte range worth its own connection in a segmented download.
const MIN_SEGMENT_BYTES: u64 = 1024 * 1024;

/// Result of a successful download.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Download {
    /// The local file written, or `None` for [`FtpsClient::download_to`].
    pub local_path: Option<PathBuf>,
    /// Length of the whole file in bytes, including a resumed prefix.
    pub bytes: u64,
    /// SHA-256 of the whole file as lowercase hex, or an empty string when
    /// [`DownloadOptions::sha256`] turned hashing off.
    pub sha256: String,
    /// Format detected from the file's first bytes.
    pub format: ImageFormat,
    /// Bytes of a local partial file that this download kept and did not fetch again.
    pub resumed_from: u64,
    /// Connections that carried data: 1 without segments, and fewer than
    /// [`DownloadOptions::segments`] when the server refused extra connections with `421`.
    pub connections: usize,
}

/// Bytes done across every connection of one download, and its throttled reports.
struct SharedProgress {
    done: AtomicU64,
    reporter: Mutex<Reporter>,
}

impl SharedProgress {
    fn new(sink: Option<&ProgressSink>, total: Option<u64>, resumed_from: u64) -> Self {
        Self {
            done: AtomicU64::new(resumed_from),
            reporter: Mutex::new(Reporter::new(sink, total, resumed_from)),
        }
    }

    fn add(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.reporter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update(done);
    }

    /// Returns the bytes done so far, resumed prefix included.
    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    fn finish(&self, total: u64) {
        self.reporter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finish(total);
    }
}

/// The destination of received buffers.
enum Output<'a, W> {
    /// The caller's writer; hashing and format detection happen on this task.
    Writer {
        writer: &'a mut W,
        hasher: &'a mut Sha256,
        sniffer: &'a mut Sniffer,
    },
    /// A file writer thread, with the hasher of a fresh single-connection download.
    File {
        sender: mpsc::Sender<Chunk>,
        pool: BufferPool,
        hasher: Option<&'a mut Sha256>,
    },
}

impl FtpsClient {
    /// Downloads `remote_path` into `writer` over one connection.
    ///
    /// The data is read in 1 MiB buffers, hashed with SHA-256 and written to `writer`, which
    /// is flushed at the end. The client checks the byte count against the server's `SIZE`
    /// when the server implements it. [`DownloadOptions::resume`] does not apply here, and
    /// this always uses one connection, though [`DownloadOptions::segments`] must still be
    /// from 1 to [`MAX_SEGMENTS`].
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemotePath`] when the path contains a control character.
    /// - [`FtpError::NotFound`] when the server replies `550` to `SIZE` or `RETR`.
    /// - [`FtpError::Stream`] when writing to `writer` fails.
    /// - [`FtpError::IncompleteTransfer`] when fewer or more bytes arrive than `SIZE` reported.
    /// - [`FtpError::ServerReply`], [`FtpError::Network`], [`FtpError::TlsHandshake`],
    ///   [`FtpError::TlsSessionReuseRequired`] or [`FtpError::Timeout`] when a command or a
    ///   connection fails or stalls.
    pub async fn download_to<W: AsyncWrite + Unpin + Send>(
        &mut self,
        remote_path: &str,
        mut writer: W,
        options: &DownloadOptions,
    ) -> Result<Download, FtpError> {
        check_remote_file(remote_path)?;
        check_segments(options)?;
        let span = info_span!("ftps_download", host = %self.context.host, remote_path);
        async {
            let started = Instant::now();
            let total = self.optional_size(remote_path).await?;
            let progress = SharedProgress::new(options.progress.as_ref(), total, 0);
            let mut hasher = Sha256::new();
            let mut sniffer = Sniffer::default();
            let mut output = Output::Writer {
                writer: &mut writer,
                hasher: &mut hasher,
                sniffer: &mut sniffer,
            };
            let received = self
                .fetch(remote_path, 0, None, &mut output, &progress)
                .await?;
            drop(output);
            check_received(self, remote_path, total, received)?;
            writer.flush().await.map_err(|source| FtpError::Stream {
                operation: "flushing the download writer".to_owned(),
                source,
            })?;
            progress.finish(received);
            let sha256 = hex::encode(hasher.finalize());
            info!(bytes = received, elapsed = ?started.elapsed(), %sha256, "download complete");
            Ok(Download {
                local_path: None,
                bytes: received,
                sha256,
                format: sniffer.format(),
                resumed_from: 0,
                connections: 1,
            })
        }
        .instrument(span)
        .await
    }

    /// Downloads `remote_path` to the local file `local`.
    ///
    /// The data goes to `.<name>.part` beside `local`, written by a dedicated thread in 256 KiB
    /// buffers. Blocks of 64 KiB that are all zero are skipped, so the file is sparse where the
    /// image is. After the server confirms the transfer and the byte count equals the server's
    /// `SIZE`, the partial file is renamed to `local`, replacing any file there. A failed
    /// single-connection download leaves the partial file for [`DownloadOptions::resume`]; a
    /// failed segmented download removes it.
    ///
    /// With [`DownloadOptions::resume`] an existing partial file is kept: its bytes are hashed
    /// and the rest is fetched with `REST`. A partial file longer than the remote file is
    /// discarded. With [`DownloadOptions::segments`] above 1 and a file of at least 1 MiB per
    /// segment, this session and up to `segments - 1` extra connections fetch the file in byte
    /// ranges, up to four per connection and each of at least 1 MiB, into the preallocated file.
    /// Each range has its own writer thread. When the server rejects an extra connection with `421` (too many
    /// connections from one address), that connection waits with jittered backoff and tries
    /// again up to 3 times, then the download goes on with fewer connections;
    /// [`Download::connections`] reports how many carried data. The SHA-256 of a segmented download is computed in
    /// file order while the segments arrive: the first segment as it is written, each later one
    /// read back from the page cache once everything before it is hashed. With
    /// [`DownloadOptions::retries`] a retryable failure reconnects and resumes.
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemotePath`] when the path contains a control character, and
    ///   [`FtpError::InvalidOption`] when `local` has no file name or is a folder, or `segments` is 0 or above
    ///   [`MAX_SEGMENTS`].
    /// - [`FtpError::NotFound`] when the server replies `550` to `SIZE` or `RETR`.
    /// - [`FtpError::Io`] when the local file cannot be written or renamed.
    /// - [`FtpError::IncompleteTransfer`] when fewer or more bytes arrive than `SIZE` reported.
    /// - [`FtpError::ServerReply`], [`FtpError::Network`], [`FtpError::TlsHandshake`],
    ///   [`FtpError::TlsSessionReuseRequired`] or [`FtpError::Timeout`] when a command or a
    ///   connection fails or stalls.
    pub async fn download_file(
        &mut self,
        remote_path: &str,
        local: &Path,
        options: &DownloadOptions,
    ) -> Result<Download, FtpError> {
        check_remote_file(remote_path)?;
        check_segments(options)?;
        let part = partial_path(local)?;
        if let Some(folder) = local
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty())
            && !tokio::fs::metadata(folder)
                .await
                .is_ok_and(|metadata| metadata.is_dir())
        {
            return Err(FtpError::Io {
                path: local.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "the folder {} does not exist; create it before downloading into it",
                        folder.display()
                    ),
                ),
            });
        }
        // A segmented download that was stopped leaves a file with holes, which nothing can
        // resume, under its own name.
        let holes = segmented_partial_path(&part);
        if tokio::fs::symlink_metadata(&holes)
            .await
            .is_ok_and(|metadata| metadata.is_file())
            && let Err(error) = tokio::fs::remove_file(&holes).await
        {
            debug!(%error, path = %holes.display(), "failed to remove a stopped segmented download");
        }
        if tokio::fs::metadata(local)
            .await
            .is_ok_and(|metadata| metadata.is_dir())
        {
            return Err(FtpError::InvalidOption {
                name: "local path".to_owned(),
                value: local.display().to_string(),
                reason:
                    "the path is a folder; pass a file path inside it, such as `folder/disk.img`"
                        .to_owned(),
            });
        }
        let span = info_span!(
            "ftps_download",
            host = %self.context.host,
            remote_path,
            local = %local.display()
        );
        async {
            let started = Instant::now();
            let mut attempt_number = 0_u32;
            let (mut download, segments) = loop {
                let attempt = self
                    .download_attempt(remote_path, &part, options, attempt_number > 0)
                    .await;
                match attempt {
                    Err(error)
                        if error.is_retryable()
                            && attempt_number < options.retries
                            && !matches!(error, FtpError::IncompleteTransfer { .. }) =>
                    {
                        attempt_number += 1;
                        let delay = backoff_delay(attempt_number);
                        warn!(
                            %error,
                            attempt = attempt_number,
                            of = options.retries,
                            ?delay,
                            "download failed; reconnecting and resuming"
                        );
                        tokio::time::sleep(delay).await;
                        if let Err(error) = self.reconnect().await {
                            warn!(%error, "reconnect failed");
                            if !error.is_retryable() {
                                return Err(error);
                            }
                        }
                    }
                    other => break other?,
                }
            };
            tokio::fs::rename(&part, local)
                .await
                .map_err(|source| FtpError::Io {
                    path: local.to_owned(),
                    source,
                })?;
            download.local_path = Some(local.to_owned());
            info!(
                bytes = download.bytes,
                resumed_from = download.resumed_from,
                segments,
                elapsed = ?started.elapsed(),
                sha256 = %download.sha256,
                format = %download.format,
                "download complete"
            );
            Ok(download)
        }
        .instrument(span)
        .await
    }

    /// Runs one download attempt and returns the download and the number of connections used.
    async fn download_attempt(
        &mut self,
        remote_path: &str,
        part: &Path,
        options: &DownloadOptions,
        retrying: bool,
    ) -> Result<(Download, usize), FtpError> {
        let total = self.optional_size(remote_path).await?;
        let segments = match total {
            Some(total) => segment_count(options.segments, total),
            None => 1,
        };
        let download = match total {
            Some(total) if segments > 1 => {
                self.download_segmented(remote_path, part, total, segments, options)
                    .await?
            }
            _ => {
                let resume = options.resume || retrying;
                self.download_single(remote_path, part, total, resume, options)
                    .await?
            }
        };
        Ok((download, segments))
    }

    async fn download_single(
        &mut self,
        remote_path: &str,
        part: &Path,
        total: Option<u64>,
        resume: bool,
        options: &DownloadOptions,
    ) -> Result<Download, FtpError> {
        let mut offset = 0;
        if resume {
            match tokio::fs::metadata(part).await {
                Ok(metadata) => offset = metadata.len(),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(FtpError::Io {
                        path: part.to_owned(),
                        source,
                    });
                }
            }
        }
        if let Some(total) = total
            && offset > total
        {
            warn!(
                partial = offset,
                remote = total,
                "the local partial file is longer than the remote file; starting again"
            );
            offset = 0;
        }
        if offset > 0 {
            info!(offset, "resuming the download");
        }

        let mode = if offset > 0 {
            OpenMode::Resume { offset }
        } else {
            OpenMode::Fresh { preallocate: None }
        };
        // A fresh download is hashed here, on the receiving task, which leaves the writer thread
        // only the writes. A resumed one is hashed by the writer, which hashes the kept prefix
        // first.
        let hash_here = options.sha256 && offset == 0;
        let mut hasher = Sha256::new();
        let writer = FileWriter::start(part, mode, options.sha256 && !hash_here, options.direct_io);
        let progress = SharedProgress::new(options.progress.as_ref(), total, offset);
        let mut output: Output<'_, tokio::io::Sink> = Output::File {
            sender: writer.sender(),
            pool: writer.pool(),
            hasher: hash_here.then_some(&mut hasher),
        };
        let complete = total.is_some_and(|total| total == offset && offset > 0);
        let fetched = if complete {
            Ok(0)
        } else {
            self.fetch(remote_path, offset, None, &mut output, &progress)
                .await
        };
        drop(output);
        let (mut outcome, received) = match fetched {
            Ok(received) => (writer.finish().await?, received),
            Err(FtpError::Stream { .. }) => return Err(writer.failure().await),
            Err(error) => {
                // The thread still writes what arrived, so a later resume keeps it.
                let finished = writer.finish().await;
                let arrived = progress.done().saturating_sub(offset);
                let complete = total.is_some_and(|total| offset + arrived == total);
                match finished {
                    // Every byte that SIZE announced arrived and only the final reply is
                    // missing, because the control connection is gone.
                    Ok(outcome) if complete && self.final_reply_lost(&error).await => {
                        warn!(
                            %error,
                            bytes = offset + arrived,
                            "the control connection was lost before the final reply, but every \
                             byte arrived; reconnecting"
                        );
                        if let Err(reconnect_error) = self.reconnect().await {
                            warn!(%reconnect_error, "reconnect after a complete download failed");
                        }
                        (outcome, arrived)
                    }
                    _ => return Err(error),
                }
            }
        };
        if hash_here {
            outcome.sha256 = Some(hex::encode(hasher.finalize()));
        }
        let bytes = offset + received;
        check_received(self, remote_path, total, bytes)?;
        progress.finish(bytes);
        Ok(Download {
            local_path: None,
            bytes,
            sha256: outcome.sha256.unwrap_or_default(),
            format: outcome.format,
            resumed_from: offset,
            connections: 1,
        })
    }

    async fn download_segmented(
        &mut self,
        remote_path: &str,
        part: &Path,
        total: u64,
        segments: usize,
        options: &DownloadOptions,
    ) -> Result<Download, FtpError> {
        let ranges = split_ranges(total, piece_count(segments, total));
        debug!(?ranges, "segment ranges");
        // The file has its full length from the start, with holes where ranges are missing, so
        // it must never sit under the name that a resumed download continues.
        let holes = segmented_partial_path(part);
        let (file, sinks) = SegmentedFile::create(&holes, total, &ranges, options.sha256)?;
        let progress = Arc::new(SharedProgress::new(
            options.progress.as_ref(),
            Some(total),
            0,
        ));
        let queue = Arc::new(SegmentQueue::new(
            ranges
                .into_iter()
                .zip(sinks)
                .map(|((start, length), sink)| Segment {
                    start,
                    length,
                    is_last: start + length == total,
                    sink,
                })
                .collect(),
        ));

        // This session fetches segments too, so `segments` ranges need only `segments - 1`
        // extra connections, and a server that allows one connection per address still gets
        // every range.
        let mut workers = Workers(Vec::with_capacity(segments.saturating_sub(1)));
        for _ in 1..segments {
            workers.0.push(tokio::spawn(
                segment_worker(
                    self.config.clone(),
                    remote_path.to_owned(),
                    Arc::clone(&queue),
                    Arc::clone(&progress),
                )
                .in_current_span(),
            ));
        }
        let own = self
            .fetch_queued_segments(remote_path, &queue, &progress, true)
            .await;
        if own.is_err() {
            queue.stop();
        }

        let mut first_error = own.err();
        let mut connections = 1;
        for worker in &mut workers.0 {
            let result = match worker.await {
                Ok(result) => result,
                Err(join_error) => Err(FtpError::Protocol {
                    host: self.context.host.clone(),
                    operation: format!("RETR {remote_path}"),
                    message: format!("a segment task failed: {join_error}"),
                }),
            };
            match result {
                Ok(WorkerOutcome::Fetched) => connections += 1,
                Ok(WorkerOutcome::Refused) => {}
                Err(error) => {
                    if first_error.is_none() {
                        first_error = Some(error);
                    }
                }
            }
        }
        if let Some(mut error) = first_error {
            // A segment whose writer failed sees only a closed channel; the writer's own error
            // names the local file and the cause.
            if let Some(write_error) = file.abandon().await
                && matches!(error, FtpError::Stream { .. })
            {
                error = write_error;
            }
            // The preallocated file has holes where segments failed, and nothing resumes it.
            if let Err(remove_error) = tokio::fs::remove_file(&holes).await {
                warn!(%remove_error, part = %holes.display(), "failed to remove the partial file");
            }
            return Err(error);
        }
        if connections < segments {
            info!(
                connections,
                requested = segments,
                "the server refused some connections, so fewer carried the download"
            );
        }
        let HashOutcome { sha256, format } = file.finish().await?;
        tokio::fs::rename(&holes, part)
            .await
            .map_err(|source| FtpError::Io {
                path: part.to_owned(),
                source,
            })?;
        progress.finish(total);
        self.keep_alive().await;
        Ok(Download {
            local_path: None,
            bytes: total,
            sha256,
            format,
            resumed_from: 0,
            connections,
        })
    }

    /// Fetches segments of `queue` over this session until the queue is empty, from the front,
    /// or the last range first when `last_first` is set.
    ///
    /// The last range ends with the file and a normal `226`. Earlier ranges stop at their length
    /// with `ABOR`, after which the session is brought back in step before the next command.
    /// Taking ranges from the front fills the file roughly in order, so the in-order hasher
    /// keeps up with the writes.
    async fn fetch_queued_segments(
        &mut self,
        remote_path: &str,
        queue: &SegmentQueue,
        progress: &SharedProgress,
        last_first: bool,
    ) -> Result<(), FtpError> {
        let mut aborted_before = false;
        let mut take_back = last_first;
        loop {
            let next = if take_back {
                queue.take_back()
            } else {
                queue.take_front()
            };
            take_back = false;
            let Some(segment) = next else {
                break;
            };
            if aborted_before {
                self.recover_after_abort().await?;
            }
            aborted_before = !segment.is_last;
            fetch_range(self, remote_path, segment, progress).await?;
        }
        // The replies to the last ABOR must not be read as the reply to the caller's next command.
        if aborted_before {
            self.recover_after_abort().await?;
        }
        Ok(())
    }

    /// Brings the session back in step after `ABOR`, or replaces it with a new session when the
    /// replies do not line up again.
    pub(crate) async fn recover_after_abort(&mut self) -> Result<(), FtpError> {
        if self.resync_after_abort().await {
            return Ok(());
        }
        debug!("the session is out of step after ABOR; reconnecting");
        self.reconnect_after_421().await
    }

    /// Sends `NOOP` and reads replies until its `200` arrives, and returns whether it did.
    ///
    /// After `ABOR` servers differ in how many replies they send: vsftpd 3.0.3 may answer the
    /// transfer with `426` and `ABOR` with `225`, which suppaftp does not expect, so a reply can
    /// be left over for the next command. No reply left over from a transfer or `ABOR` is a
    /// `200`, so the first `200` marks the point where the session is in step again.
    async fn resync_after_abort(&mut self) -> bool {
        let limit = CLEANUP_TIMEOUT.min(self.context.io_timeout);
        match tokio::time::timeout(limit, self.ftp.noop()).await {
            Ok(Ok(())) => return true,
            Ok(Err(suppaftp::FtpError::UnexpectedResponse(response))) => {
                let reply = String::from_utf8_lossy(&response.body);
                debug!(reply = %reply.trim_end(), "skipped a reply left over from ABOR");
            }
            Ok(Err(error)) => {
                debug!(%error, "NOOP after ABOR failed");
                return false;
            }
            Err(_) => return false,
        }
        for _ in 0..MAX_LEFTOVER_REPLIES {
            let read = tokio::time::timeout(
                limit,
                self.ftp.read_response_in(&[suppaftp::Status::CommandOk]),
            )
            .await;
            match read {
                Ok(Ok(_)) => return true,
                Ok(Err(suppaftp::FtpError::UnexpectedResponse(response))) => {
                    let reply = String::from_utf8_lossy(&response.body);
                    debug!(reply = %reply.trim_end(), "skipped a reply left over from ABOR");
                }
                Ok(Err(_)) | Err(_) => return false,
            }
        }
        false
    }

    /// Replaces this session with a new one, waiting with jittered backoff while the server
    /// rejects the connection with `421`, at most [`RETRIES_AFTER_421`] times.
    ///
    /// A server with a per-address limit may still count the old session for a moment after it
    /// closed.
    async fn reconnect_after_421(&mut self) -> Result<(), FtpError> {
        let mut refusals = 0_u32;
        loop {
            match self.reconnect().await {
                Ok(()) => return Ok(()),
                Err(error) if error.reply_code() == Some(421) && refusals < RETRIES_AFTER_421 => {
                    refusals += 1;
                    let delay = backoff_delay(refusals);
                    info!(
                        %error,
                        attempt = refusals,
                        ?delay,
                        "the server rejected the new session; waiting before trying again"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Sends `NOOP` and reconnects when it fails, because the session's control connection sat
    /// idle while other connections did the work.
    async fn keep_alive(&mut self) {
        let context = &self.context;
        let ftp = &mut self.ftp;
        let alive = context
            .bounded("NOOP", async {
                ftp.noop()
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, "NOOP"))
            })
            .await;
        if let Err(error) = alive {
            debug!(%error, "the idle control connection failed; reconnecting");
            if let Err(error) = self.reconnect().await {
                warn!(%error, "reconnect after a segmented download failed");
            }
        }
    }

    /// Returns the remote size, or `None` when the server does not implement `SIZE`.
    async fn optional_size(&mut self, remote_path: &str) -> Result<Option<u64>, FtpError> {
        match self.size(remote_path).await {
            Ok(size) => Ok(Some(size)),
            Err(error) if matches!(error.reply_code(), Some(500 | 502 | 504)) => {
                debug!(%error, "SIZE is not available; the byte count is not checked");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Fetches `remote_path` from `offset`, at most `limit` bytes, into `output`, and returns
    /// the bytes received. With a limit the transfer is aborted after the limit.
    async fn fetch<W: AsyncWrite + Unpin + Send>(
        &mut self,
        remote_path: &str,
        offset: u64,
        limit: Option<u64>,
        output: &mut Output<'_, W>,
        progress: &SharedProgress,
    ) -> Result<u64, FtpError> {
        let command = DataCommand::Retr(remote_path.to_owned());
        let line = command.line();
        let mut transfer = self.open_data(&command, offset).await?;
        let received = match self
            .receive(&mut transfer, &line, offset, limit, output, progress)
            .await
        {
            Ok(received) => received,
            Err(error) => return Err(self.abandon(transfer, error, &line).await),
        };

        if limit.is_some_and(|limit| received >= limit) {
            // The server is still sending the rest of the file; ABOR stops it.
            let context = &self.context;
            let ftp = &mut self.ftp;
            let aborted = context
                .bounded(&format!("ABOR after {line}"), async {
                    ftp.abort(transfer)
                        .await
                        .map_err(|error| context.map_error(error, Channel::Control, "ABOR"))
                })
                .await;
            if let Err(error) = aborted {
                // The range is complete; only this session's state is in doubt.
                debug!(%error, "ABOR after a complete range failed");
            }
            return Ok(received);
        }

        let context = &self.context;
        context
            .bounded_final(&format!("waiting for the final reply to {line}"), async {
                transfer
                    .finish()
                    .await
                    .map_err(|error| context.map_error(error, Channel::Data, &line))
            })
            .await?;
        Ok(received)
    }

    /// Reads the data connection into `output` until the end of the file or `limit` bytes.
    async fn receive<W: AsyncWrite + Unpin + Send>(
        &self,
        transfer: &mut Transfer,
        line: &str,
        offset: u64,
        limit: Option<u64>,
        output: &mut Output<'_, W>,
        progress: &SharedProgress,
    ) -> Result<u64, FtpError> {
        let context = &self.context;
        let read_what = format!("reading the data connection of {line}");
        let mut received = 0_u64;
        let mut spare = None;
        loop {
            let mut buffer = match (spare.take(), &*output) {
                (Some(buffer), _) => buffer,
                (None, Output::File { pool, .. }) => pool.take(),
                (None, Output::Writer { .. }) => Buffer::new(CHUNK_SIZE),
            };
            let room = match limit {
                Some(limit) => usize::try_from(limit - received)
                    .unwrap_or(usize::MAX)
                    .min(buffer.len()),
                None => buffer.len(),
            };
            let mut filled = 0;
            let mut ended = false;
            // A read error is returned only after the bytes already in the
            // buffer are written, so that a resume continues after them.
            let mut failure = None;
            while filled < room {
                let slice = buffer.get_mut(filled..room).unwrap_or_default();
                let read = context
                    .bounded(&read_what, async {
                        transfer
                            .read(slice)
                            .await
                            .map_err(|source| FtpError::Network {
                                host: context.host.clone(),
                                channel: Channel::Data,
                                operation: line.to_owned(),
                                source,
                            })
                    })
                    .await;
                match read {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(read) => filled += read,
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }

            if filled > 0 {
                let position = offset + received;
                received += filled as u64;
                match output {
                    Output::Writer {
                        writer,
                        hasher,
                        sniffer,
                    } => {
                        let data = buffer.get(..filled).unwrap_or_default();
                        hasher.update(data);
                        sniffer.feed(data);
                        context
                            .bounded("writing the download writer", async {
                                writer
                                    .write_all(data)
                                    .await
                                    .map_err(|source| FtpError::Stream {
                                        operation: "writing the download writer".to_owned(),
                                        source,
                                    })
                            })
                            .await?;
                        spare = Some(buffer);
                    }
                    Output::File { sender, hasher, .. } => {
                        if let Some(hasher) = hasher {
                            hasher.update(buffer.get(..filled).unwrap_or_default());
                        }
                        let chunk = Chunk {
                            position,
                            data: buffer,
                            len: filled,
                        };
                        if sender.send(chunk).await.is_err() {
                            return Err(FtpError::Stream {
                                operation: "handing data to the file writer".to_owned(),
                                source: std::io::Error::other("the file writer stopped"),
                            });
                        }
                    }
                }
                progress.add(filled as u64);
            } else {
                spare = Some(buffer);
            }

            if let Some(error) = failure {
                return Err(error);
            }
            let limit_reached = limit.is_some_and(|limit| received >= limit);
            if ended || limit_reached {
                return Ok(received);
            }
        }
    }
}

/// Byte ranges of a segmented download that no connection has taken yet.
///
/// When one connection fails, it stops the queue, so the others take no further ranges.
struct SegmentQueue {
    state: Mutex<QueueState>,
}

struct QueueState {
    pending: std::collections::VecDeque<Segment>,
    stopped: bool,
}

/// One byte range of a segmented download and the sink its bytes go to.
struct Segment {
    start: u64,
    length: u64,
    is_last: bool,
    sink: SegmentSink,
}

impl SegmentQueue {
    fn new(segments: std::collections::VecDeque<Segment>) -> Self {
        Self {
            state: Mutex::new(QueueState {
                pending: segments,
                stopped: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the first pending segment, or `None` when none is left or a connection failed.
    fn take_front(&self) -> Option<Segment> {
        let mut state = self.lock();
        if state.stopped {
            return None;
        }
        state.pending.pop_front()
    }

    /// Returns the last pending segment, or `None` when none is left or a connection failed.
    fn take_back(&self) -> Option<Segment> {
        let mut state = self.lock();
        if state.stopped {
            return None;
        }
        state.pending.pop_back()
    }

    fn is_done(&self) -> bool {
        let state = self.lock();
        state.stopped || state.pending.is_empty()
    }

    /// Stops the other connections from taking segments, because the download has failed.
    fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        state.pending.clear();
    }
}

/// The extra connections of a segmented download, stopped when the download is dropped.
struct Workers(Vec<tokio::task::JoinHandle<Result<WorkerOutcome, FtpError>>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &self.0 {
            worker.abort();
        }
    }
}

/// The result of an extra connection of a segmented download.
enum WorkerOutcome {
    /// The connection opened and fetched zero or more segments.
    Fetched,
    /// The server kept refusing the connection with `421`, so the others fetched its share.
    Refused,
}

/// Number of times an extra connection is tried again after a `421` reply before the download
/// goes on with fewer connections.
const RETRIES_AFTER_421: u32 = 3;

/// Replies read after `ABOR` while looking for the `200` of a `NOOP`.
const MAX_LEFTOVER_REPLIES: usize = 3;

/// Opens one extra session and fetches segments from the front of `queue` until it is empty.
///
/// A server that limits connections per client address (vsftpd `max_per_ip`, pure-ftpd `-c`)
/// greets a connection over the limit with `421`. The worker then waits with jittered backoff
/// and tries again, at most [`RETRIES_AFTER_421`] times, and stops when the other connections
/// have taken every segment. When the retries run out it returns [`WorkerOutcome::Refused`]
/// and the download continues on fewer connections.
async fn segment_worker(
    config: FtpsConfig,
    remote_path: String,
    queue: Arc<SegmentQueue>,
    progress: Arc<SharedProgress>,
) -> Result<WorkerOutcome, FtpError> {
    let mut refusals = 0_u32;
    let mut client = loop {
        if queue.is_done() {
            return Ok(WorkerOutcome::Refused);
        }
        match FtpsClient::connect(&config).await {
            Ok(client) => break client,
            Err(error) if error.reply_code() == Some(421) && refusals < RETRIES_AFTER_421 => {
                refusals += 1;
                let delay = backoff_delay(refusals);
                info!(
                    %error,
                    attempt = refusals,
                    of = RETRIES_AFTER_421,
                    ?delay,
                    "the server refused another connection; waiting before trying again"
                );
                tokio::time::sleep(delay).await;
            }
            Err(error) if error.reply_code() == Some(421) => {
                warn!(
                    %error,
                    "the server keeps refusing another connection; continuing with fewer"
                );
                return Ok(WorkerOutcome::Refused);
            }
            Err(error) => {
                queue.stop();
                return Err(error);
            }
        }
    };
    if let Err(error) = client
        .fetch_queued_segments(&remote_path, &queue, &progress, false)
        .await
    {
        queue.stop();
        return Err(error);
    }
    if let Err(error) = client.quit().await {
        debug!(%error, "QUIT after the segments failed");
    }
    Ok(WorkerOutcome::Fetched)
}

/// Fetches one segment over `client` into its sink.
async fn fetch_range(
    client: &mut FtpsClient,
    remote_path: &str,
    segment: Segment,
    progress: &SharedProgress,
) -> Result<(), FtpError> {
    let Segment {
        start,
        length,
        is_last,
        sink,
    } = segment;
    let mut output: Output<'_, tokio::io::Sink> = Output::File {
        sender: sink.sender,
        pool: sink.pool,
        hasher: None,
    };
    // The last range reads to the end of the file and finishes normally; the others stop at
    // their length and abort.
    let limit = (!is_last).then_some(length);
    let received = client
        .fetch(remote_path, start, limit, &mut output, progress)
        .await?;
    drop(output);
    if received != length {
        return Err(FtpError::IncompleteTransfer {
            host: client.context.host.clone(),
            remote_path: remote_path.to_owned(),
            sent: length,
            stored: received,
        });
    }
    debug!(start, length, "segment complete");
    Ok(())
}

fn check_received(
    client: &FtpsClient,
    remote_path: &str,
    total: Option<u64>,
    received: u64,
) -> Result<(), FtpError> {
    match total {
        Some(total) if total != received => Err(FtpError::IncompleteTransfer {
            host: client.context.host.clone(),
            remote_path: remote_path.to_owned(),
            sent: total,
            stored: received,
        }),
        _ => Ok(()),
    }
}

fn check_remote_file(remote_path: &str) -> Result<(), FtpError> {
    validate_remote_dir(remote_path)?;
    if remote_path.trim().is_empty() || remote_path.ends_with('/') {
        return Err(FtpError::InvalidRemotePath {
            path: remote_path.to_owned(),
            reason: "the path names no file; pass a path such as `images/disk.img`".to_owned(),
        });
    }
    Ok(())
}

/// Returns `.<name>.part` beside `local`.
fn partial_path(local: &Path) -> Result<PathBuf, FtpError> {
    let Some(name) = local.file_name() else {
        return Err(FtpError::InvalidOption {
            name: "local path".to_owned(),
            value: local.display().to_string(),
            reason: "the path has no file name; pass a file path such as `disk.img`".to_owned(),
        });
    };
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(".part");
    Ok(local.with_file_name(partial))
}

/// Rejects a segment count outside 1 to [`MAX_SEGMENTS`].
fn check_segments(options: &DownloadOptions) -> Result<(), FtpError> {
    if options.segments == 0 || options.segments > MAX_SEGMENTS {
        return Err(FtpError::InvalidOption {
            name: "DownloadOptions::segments".to_owned(),
            value: options.segments.to_string(),
            reason: format!("use a number of connections from 1 to {MAX_SEGMENTS}"),
        });
    }
    Ok(())
}

/// Returns the path a segmented download writes to before it is complete: the partial path
/// with `.segments` before `.part`, so that a later resumed download never continues a file
/// with holes.
fn segmented_partial_path(part: &Path) -> PathBuf {
    let mut name = part
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(".segments");
    part.with_file_name(name)
}

/// Returns the number of connections for a file of `total` bytes: at most `requested`, and
/// at least [`MIN_SEGMENT_BYTES`] per connection.
fn segment_count(requested: usize, total: u64) -> usize {
    let by_size = usize::try_from(total / MIN_SEGMENT_BYTES).unwrap_or(usize::MAX);
    requested.min(by_size).max(1)
}

/// Ranges per connection of a segmented download.
///
/// The SHA-256 of a segmented download runs over the file in order, so it can hash only the
/// bytes before the first gap. With one range per connection, every range but the first is
/// hashed after all of them arrive. Smaller ranges, taken in file order, fill the file roughly
/// from the front, and the hash keeps up. Each range costs one `REST` + `RETR`, a resumed TLS
/// handshake and, except for the last, an `ABOR`.
const RANGES_PER_CONNECTION: usize = 4;

/// Returns how many ranges a download over `connections` connections is split into: up to
/// [`RANGES_PER_CONNECTION`] per connection, each of at least [`MIN_SEGMENT_BYTES`].
fn piece_count(connections: usize, total: u64) -> usize {
    let by_size = usize::try_from(total / MIN_SEGMENT_BYTES).unwrap_or(usize::MAX);
    connections
        .saturating_mul(RANGES_PER_CONNECTION)
        .min(by_size)
        .max(connections)
}

/// Splits `total` bytes into `count` ranges `(start, length)`; the last takes the remainder.
fn split_ranges(total: u64, count: usize) -> Vec<(u64, u64)> {
    let count_u64 = count as u64;
    let base = total / count_u64;
    (0..count_u64)
        .map(|index| {
            let start = index * base;
            let length = if index + 1 == count_u64 {
                total - start
            } else {
                base
            };
            (start, length)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_file() {
        let ranges = split_ranges(16 * 1024 * 1024 + 3, 4);
        assert_eq!(ranges.len(), 4);
        assert_eq!(ranges.first(), Some(&(0, 4 * 1024 * 1024)));
        let covered: u64 = ranges.iter().map(|(_, length)| length).sum();
        assert_eq!(covered, 16 * 1024 * 1024 + 3);
        for pair in ranges.windows(2) {
            if let [(start, length), (next, _)] = pair {
                assert_eq!(start + length, *next);
            }
        }
    }

    #[test]
    fn piece_count_table() {
        assert_eq!(piece_count(4, 1 << 30), 16);
        assert_eq!(piece_count(4, 6 * 1024 * 1024), 6);
        assert_eq!(piece_count(4, 4 * 1024 * 1024), 4);
        assert_eq!(piece_count(16, 1 << 40), 64);
    }

    #[test]
    fn segment_count_table() {
        assert_eq!(segment_count(4, 16 * 1024 * 1024), 4);
        assert_eq!(segment_count(4, 2 * 1024 * 1024), 2);
        assert_eq!(segment_count(4, 1000), 1);
        assert_eq!(segment_count(1, 1 << 40), 1);
    }

    #[test]
    fn segmented_partial_path_differs_from_resume_path() {
        let part = PathBuf::from("/tmp/images/.disk.img.part");
        assert_eq!(
            segmented_partial_path(&part),
            PathBuf::from("/tmp/images/.disk.img.part.segments")
        );
    }

    #[test]
    fn partial_path_is_hidden_beside_file() {
        let path = partial_path(Path::new("/tmp/images/disk.img"));
        assert_eq!(path.ok(), Some(PathBuf::from("/tmp/images/.disk.img.part")));
        assert!(partial_path(Path::new("/")).is_err());
    }
}
