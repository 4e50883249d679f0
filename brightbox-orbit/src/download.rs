//! Snapshot downloads from the account's `images` container, with LZ4 frame decoding.

use std::fmt;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_MATCH, RANGE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, info, instrument, warn};

use crate::client::{
    OrbitClient, Target, error_from_response, validate_container, validate_object,
};
use crate::error::{OrbitError, Result};
use crate::upload::{ProgressCallback, TransferProgress, io_error};

/// Name of the read-only container that stores an account's snapshots and images.
pub const IMAGES_CONTAINER: &str = "images";
/// Decoded bytes examined at a time when looking for all-zero runs to skip.
const SPARSE_BLOCK: usize = 64 * 1024;
/// Decoded bytes read from the LZ4 decoder per write batch.
const DECODE_BUFFER: usize = 1 << 20;
/// Compressed chunks queued between the network task and the decoding thread.
const CHANNEL_DEPTH: usize = 16;

/// Options for [`OrbitClient::download_snapshot`].
#[derive(Clone)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// Write the LZ4 frame as received instead of decoding it (default false).
    pub keep_compressed: bool,
    /// The image's `virtual_size` in bytes. When set, the decoded size must equal it.
    /// Ignored with [`keep_compressed`](Self::keep_compressed).
    pub expected_size: Option<u64>,
    /// Requests allowed for one download, including the first (default 5). After a broken
    /// response the next request sends `Range` for the remaining bytes.
    pub max_attempts: u32,
    /// With [`keep_compressed`](Self::keep_compressed), continue from an existing
    /// `<file name>.part` left by an earlier run (default true).
    pub resume_partial: bool,
    /// Container to read from (default [`IMAGES_CONTAINER`]).
    pub container: String,
    /// Called with compressed bytes received and the compressed total when known.
    pub progress: Option<ProgressCallback>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            keep_compressed: false,
            expected_size: None,
            max_attempts: 5,
            resume_partial: true,
            container: IMAGES_CONTAINER.to_owned(),
            progress: None,
        }
    }
}

impl fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("keep_compressed", &self.keep_compressed)
            .field("expected_size", &self.expected_size)
            .field("max_attempts", &self.max_attempts)
            .field("resume_partial", &self.resume_partial)
            .field("container", &self.container)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .finish()
    }
}

impl DownloadOptions {
    /// Sets [`keep_compressed`](Self::keep_compressed).
    pub fn keep_compressed(mut self, keep: bool) -> Self {
        self.keep_compressed = keep;
        self
    }

    /// Sets [`expected_size`](Self::expected_size).
    pub fn expected_size(mut self, bytes: u64) -> Self {
        self.expected_size = Some(bytes);
        self
    }

    /// Sets [`max_attempts`](Self::max_attempts).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`resume_partial`](Self::resume_partial).
    pub fn resume_partial(mut self, resume: bool) -> Self {
        self.resume_partial = resume;
        self
    }

    /// Sets [`container`](Self::container).
    pub fn container(mut self, container: impl Into<String>) -> Self {
        self.container = container.into();
        self
    }

    /// Sets the [`progress`](Self::progress) callback.
    pub fn on_progress(
        mut self,
        callback: impl Fn(TransferProgress) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(std::sync::Arc::new(callback));
        self
    }
}

/// The result of [`OrbitClient::download_snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadedSnapshot {
    /// The final local path.
    pub path: PathBuf,
    /// Bytes of the stored (compressed) object.
    pub compressed_bytes: u64,
    /// Length of the local file: the decoded size, or the compressed size with
    /// [`DownloadOptions::keep_compressed`].
    pub size: u64,
    /// The object's ETag, without quotes, when Orbit sent one.
    pub etag: Option<String>,
    /// Requests made, including the first.
    pub attempts: u32,
    /// Bytes taken from an existing `.part` file instead of the network.
    pub resumed_from: u64,
}

/// Destination of the received compressed bytes.
enum Sink {
    Compressed(tokio::io::BufWriter<tokio::fs::File>),
    Decoded {
        chunks: mpsc::Sender<Vec<u8>>,
        worker: tokio::task::JoinHandle<std::result::Result<u64, SinkError>>,
    },
    /// The decoding thread has ended and its result was collected.
    Closed,
}

/// A failure inside the decoding thread.
pub(crate) enum SinkError {
    Decode(std::io::Error),
    Write(&'static str, std::io::Error),
}

/// State of one download across its attempts.
struct Transfer<'a> {
    object: &'a str,
    part: &'a Path,
    sink: Sink,
    received: u64,
    total: Option<u64>,
    etag: Option<String>,
    is_manifest: bool,
    md5: Md5,
    progress: Option<ProgressCallback>,
}

impl OrbitClient {
    /// Downloads the snapshot object `image_id` (from the `images` container by default) to `local`.
    ///
    /// Orbit stores snapshots as one LZ4 frame over the raw disk. By default the frame is
    /// decoded while it downloads, on a separate thread, into a sparse file: runs of 64 KiB of
    /// zeros are skipped with a seek, and the file is extended to its full length at the end.
    /// With [`DownloadOptions::keep_compressed`] the frame is written as received.
    ///
    /// The data goes to `<file name>.part` beside `local` and is renamed to `local` only after
    /// the whole object arrived, the MD5 matched the ETag (for objects that are not Static
    /// Large Objects) and the decoded size matched [`DownloadOptions::expected_size`]. When a
    /// response breaks off, the next request sends `Range` for the remaining bytes and the
    /// decoder continues where it stopped, up to [`DownloadOptions::max_attempts`] requests.
    /// A compressed `.part` left by an earlier call is continued the same way. A decoded
    /// download always starts from the beginning, because the decoder state is not saved.
    ///
    /// # Errors
    ///
    /// - [`OrbitError::InvalidName`] for a bad container or object name, and
    ///   [`OrbitError::InvalidConfig`] when `local` has no file name or is a folder.
    /// - [`OrbitError::NotFound`] when the object does not exist.
    /// - [`OrbitError::Interrupted`] when every attempt broke off; with `keep_compressed` the
    ///   `.part` file stays for the next call, otherwise it is removed.
    /// - [`OrbitError::Decode`] when the body is not a valid LZ4 frame.
    /// - [`OrbitError::EtagMismatch`] or [`OrbitError::SizeMismatch`] when the result is wrong;
    ///   the `.part` file is removed.
    /// - [`OrbitError::Io`] for local file errors, plus HTTP and transport errors.
    ///
    /// # Cancellation
    ///
    /// Dropping the future stops the transfer and the decoding thread, and leaves the `.part`
    /// file behind; `local` itself is never partly written.
    #[instrument(skip(self, options), fields(local = %local.display()), err)]
    pub async fn download_snapshot(
        &self,
        image_id: &str,
        local: &Path,
        options: &DownloadOptions,
    ) -> Result<DownloadedSnapshot> {
        validate_container(&options.container)?;
        validate_object(image_id)?;
        if options.max_attempts == 0 {
            return Err(OrbitError::InvalidConfig {
                field: "DownloadOptions::max_attempts",
                reason: "must be at least 1".into(),
            });
        }
        let part = part_path(local)?;
        if tokio::fs::metadata(local)
            .await
            .is_ok_and(|metadata| metadata.is_dir())
        {
            return Err(OrbitError::InvalidConfig {
                field: "local",
                reason: format!(
                    "{} is a folder; pass a file path inside it, such as folder/snapshot.raw",
                    local.display()
                ),
            });
        }
        let (sink, resumed_from, md5) = open_sink(&part, options).await?;
        let mut transfer = Transfer {
            object: image_id,
            part: &part,
            sink,
            received: resumed_from,
            total: None,
            etag: None,
            is_manifest: false,
            md5,
            progress: options.progress.clone(),
        };

        let fetched = self
            .fetch_all(&options.container, &mut transfer, options.max_attempts)
            .await;
        let attempts = match fetched {
            Ok(attempts) => attempts,
            Err(error) => {
                let keep_part = options.keep_compressed && transfer.received > 0;
                abandon(transfer.sink, &part, keep_part).await;
                return Err(error);
            }
        };

        let compressed_bytes = transfer.received;
        let finished = finish_sink(transfer.sink, image_id, &part).await;
        let size = match finished {
            Ok(size) => size,
            Err(error) => {
                remove_quietly(&part).await;
                return Err(error);
            }
        };
        if let Err(error) = verify(
            image_id,
            &part,
            transfer.etag.as_deref(),
            transfer.is_manifest,
            transfer.md5,
            size,
            options,
        ) {
            remove_quietly(&part).await;
            return Err(error);
        }
        tokio::fs::rename(&part, local)
            .await
            .map_err(|source| io_error("rename the downloaded file to", local, source))?;
        info!(compressed_bytes, size, attempts, "downloaded snapshot");
        Ok(DownloadedSnapshot {
            path: local.to_path_buf(),
            compressed_bytes,
            size,
            etag: transfer.etag,
            attempts,
            resumed_from,
        })
    }

    /// Requests the object until every byte arrived; returns the number of requests made.
    async fn fetch_all(
        &self,
        container: &str,
        transfer: &mut Transfer<'_>,
        max_attempts: u32,
    ) -> Result<u32> {
        let url = self.object_url(container, Some(transfer.object))?;
        let target = Target {
            container,
            object: Some(transfer.object),
        };
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let offset = transfer.received;
            // `If-Match` makes Orbit return 412 instead of bytes of a replaced object.
            let if_match = transfer.etag.as_ref().map(|etag| format!("\"{etag}\""));
            let response = self
                .send("GET object", |http| {
                    let mut request = http.get(url.clone());
                    if offset > 0 {
                        request = request.header(RANGE, format!("bytes={offset}-"));
                    }
                    if let Some(etag) = &if_match {
                        request = request.header(IF_MATCH, etag.as_str());
                    }
                    request
                })
                .await;
            let outcome = match response {
                Ok(response) => self.consume(response, transfer, &target).await,
                Err(error) => Err(error),
            };
            let error = match outcome {
                Ok(()) => return Ok(attempts),
                Err(error) => error,
            };
            if !error.is_retryable() || matches!(error, OrbitError::EtagMismatch { .. }) {
                return Err(error);
            }
            if attempts >= max_attempts {
                let source = match error {
                    OrbitError::Interrupted { source, .. } => source,
                    other => Box::new(other),
                };
                return Err(OrbitError::Interrupted {
                    object: transfer.object.to_owned(),
                    received: transfer.received,
                    attempts,
                    source,
                });
            }
            let delay = std::time::Duration::from_millis(200 * u64::from(attempts));
            warn!(
                attempts,
                received = transfer.received,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "snapshot download broke off; requesting the remaining bytes"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Reads one response into the sink; returns an error when it ends before the object does.
    async fn consume(
        &self,
        mut response: reqwest::Response,
        transfer: &mut Transfer<'_>,
        target: &Target<'_>,
    ) -> Result<()> {
        let status = response.status();
        let mut skip = 0u64;
        match status {
            StatusCode::OK => {
                // The server sent the whole object; drop what is already stored.
                skip = transfer.received;
                transfer.total = header_u64(&response, CONTENT_LENGTH);
            }
            StatusCode::PARTIAL_CONTENT => {
                let (start, total) =
                    parse_content_range(&response).ok_or_else(|| OrbitError::InvalidResponse {
                        operation: "GET object",
                        reason: "206 response without a valid Content-Range".into(),
                    })?;
                if start != transfer.received {
                    return Err(OrbitError::InvalidResponse {
                        operation: "GET object",
                        reason: format!(
                            "requested bytes from {} but the response starts at {start}",
                            transfer.received
                        ),
                    });
                }
                transfer.total = total.or(transfer.total);
            }
            StatusCode::RANGE_NOT_SATISFIABLE if transfer.received > 0 => {
                // A complete `.part` from an earlier run: the range starts at the end.
                let total = unsatisfied_range_total(&response);
                if total == Some(transfer.received) {
                    transfer.total = total;
                    return Ok(());
                }
                return Err(error_from_response("GET object", target, response).await);
            }
            _ => return Err(error_from_response("GET object", target, response).await),
        }
        if let Some(etag) = response.headers().get(ETAG) {
            let etag = String::from_utf8_lossy(etag.as_bytes())
                .trim()
                .trim_matches('"')
                .to_ascii_lowercase();
            transfer.etag.get_or_insert(etag);
        }
        transfer.is_manifest |= response
            .headers()
            .get("x-static-large-object")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        debug!(%status, received = transfer.received, total = ?transfer.total, "response started");

        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|source| OrbitError::Transport {
                    operation: "GET object",
                    source,
                })?;
            let Some(chunk) = chunk else { break };
            let mut data = &chunk[..];
            if skip > 0 {
                let cut = usize::try_from(skip).unwrap_or(usize::MAX).min(data.len());
                data = &data[cut..];
                skip -= cut as u64;
            }
            if data.is_empty() {
                continue;
            }
            transfer.md5.update(data);
            transfer.write(data).await?;
            transfer.received += data.len() as u64;
            if let Some(callback) = &transfer.progress {
                callback(TransferProgress {
                    bytes_done: transfer.received,
                    bytes_total: transfer.total,
                });
            }
        }
        match transfer.total {
            Some(total) if transfer.received < total => Err(OrbitError::Interrupted {
                object: transfer.object.to_owned(),
                received: transfer.received,
                attempts: 1,
                source: Box::new(OrbitError::SizeMismatch {
                    what: "response body".into(),
                    expected: total,
                    actual: transfer.received,
                }),
            }),
            _ => Ok(()),
        }
    }
}

impl Transfer<'_> {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.sink {
            Sink::Compressed(file) => file
                .write_all(data)
                .await
                .map_err(|source| io_error("write", self.part, source)),
            Sink::Closed => Err(closed_sink(self.part)),
            Sink::Decoded { chunks, .. } => {
                if chunks.send(data.to_vec()).await.is_ok() {
                    return Ok(());
                }
                // The decoding thread stopped; take the sink to collect its error.
                let sink = std::mem::replace(&mut self.sink, Sink::Closed);
                match finish_sink(sink, self.object, self.part).await {
                    Err(error) => Err(error),
                    Ok(_) => Err(OrbitError::Decode {
                        object: self.object.to_owned(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "data continues after the end of the LZ4 frame",
                        ),
                    }),
                }
            }
        }
    }
}

/// Returns `<file name>.part` in the same directory as `local`.
fn part_path(local: &Path) -> Result<PathBuf> {
    let name = local.file_name().ok_or_else(|| OrbitError::InvalidConfig {
        field: "local",
        reason: format!("{} has no file name; pass a file path", local.display()),
    })?;
    let mut part_name = name.to_os_string();
    part_name.push(".part");
    Ok(local.with_file_name(part_name))
}

/// Opens the `.part` file; returns the sink, the bytes already stored and their MD5 state.
async fn open_sink(part: &Path, options: &DownloadOptions) -> Result<(Sink, u64, Md5)> {
    if options.keep_compressed {
        let mut md5 = Md5::new();
        let mut existing = 0u64;
        if options.resume_partial
            && let Ok(mut file) = tokio::fs::File::open(part).await
        {
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                let read = file
                    .read(&mut buffer)
                    .await
                    .map_err(|source| io_error("read", part, source))?;
                if read == 0 {
                    break;
                }
                md5.update(&buffer[..read]);
                existing += read as u64;
            }
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(existing > 0)
            .write(true)
            .truncate(existing == 0)
            .open(part)
            .await
            .map_err(|source| io_error("create", part, source))?;
        if existing > 0 {
            info!(existing, "continuing a partial compressed download");
        }
        let writer = tokio::io::BufWriter::with_capacity(1 << 20, file);
        return Ok((Sink::Compressed(writer), existing, md5));
    }

    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(part)
        .map_err(|source| io_error("create", part, source))?;
    let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
    let worker = tokio::task::spawn_blocking(move || decode_sparse(receiver, file));
    Ok((
        Sink::Decoded {
            chunks: sender,
            worker,
        },
        0,
        Md5::new(),
    ))
}

/// Flushes the sink and returns the length of the `.part` file.
async fn finish_sink(sink: Sink, object: &str, part: &Path) -> Result<u64> {
    match sink {
        Sink::Closed => Err(closed_sink(part)),
        Sink::Compressed(mut writer) => {
            writer
                .flush()
                .await
                .map_err(|source| io_error("write", part, source))?;
            let file = writer.into_inner();
            file.sync_all()
                .await
                .map_err(|source| io_error("sync", part, source))?;
            let len = file
                .metadata()
                .await
                .map_err(|source| io_error("read metadata of", part, source))?
                .len();
            Ok(len)
        }
        Sink::Decoded { chunks, worker } => {
            drop(chunks);
            let joined = worker.await.map_err(|e| OrbitError::Io {
                operation: "decode into",
                path: part.to_path_buf(),
                source: std::io::Error::other(format!("decoding thread failed: {e}")),
            })?;
            joined.map_err(|error| match error {
                SinkError::Decode(source) => OrbitError::Decode {
                    object: object.to_owned(),
                    source,
                },
                SinkError::Write(operation, source) => io_error(operation, part, source),
            })
        }
    }
}

/// Stops a failed download; keeps the `.part` file only when it can be continued.
async fn abandon(sink: Sink, part: &Path, keep_part: bool) {
    match sink {
        Sink::Closed => {}
        Sink::Compressed(mut writer) => {
            if let Err(error) = writer.flush().await {
                warn!(%error, part = %part.display(), "failed to flush the partial download");
            }
        }
        Sink::Decoded { chunks, worker } => {
            drop(chunks);
            // The decoder reads the end of input and stops with a truncated-frame error, which is discarded.
            let _ = worker.await;
        }
    }
    if !keep_part {
        remove_quietly(part).await;
    }
}

fn closed_sink(part: &Path) -> OrbitError {
    io_error(
        "write",
        part,
        std::io::Error::other("the decoding thread has already stopped"),
    )
}

async fn remove_quietly(part: &Path) {
    if let Err(error) = tokio::fs::remove_file(part).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        warn!(%error, part = %part.display(), "failed to remove the partial download");
    }
}

/// Checks the MD5 against the ETag and the decoded size against the expected size.
fn verify(
    object: &str,
    part: &Path,
    etag: Option<&str>,
    is_manifest: bool,
    md5: Md5,
    size: u64,
    options: &DownloadOptions,
) -> Result<()> {
    // A Static Large Object's ETag is the MD5 of its segment MD5s, not of its bytes.
    if let Some(etag) = etag.filter(|e| !is_manifest && e.len() == 32) {
        let actual = hex::encode(md5.finalize());
        if actual != etag {
            return Err(OrbitError::EtagMismatch {
                object: object.to_owned(),
                expected: etag.to_owned(),
                actual,
            });
        }
    }
    if let (false, Some(expected)) = (options.keep_compressed, options.expected_size)
        && expected != size
    {
        return Err(OrbitError::SizeMismatch {
            what: format!("decoded snapshot {} ({})", object, part.display()),
            expected,
            actual: size,
        });
    }
    Ok(())
}

fn header_u64(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<u64> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Parses `Content-Range: bytes start-end/total` into `(start, total)`; total may be `*`.
pub(crate) fn parse_content_range(response: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (start, _end) = span.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = total.trim().parse().ok();
    Some((start, total))
}

/// Parses `Content-Range: bytes */total` of a 416 response.
pub(crate) fn unsatisfied_range_total(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    value.trim().strip_prefix("bytes */")?.trim().parse().ok()
}

/// Presents the received compressed chunks as a `Read` for the LZ4 decoder.
struct ChannelReader {
    chunks: mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position == self.current.len() {
            match self.chunks.blocking_recv() {
                Some(chunk) => {
                    self.current = chunk;
                    self.position = 0;
                }
                // The sender is gone: end of input.
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// Decodes the LZ4 frame from `chunks` into `file`, seeking over all-zero blocks.
///
/// Returns the decoded length, which is also the final file length.
pub(crate) fn decode_sparse(
    chunks: mpsc::Receiver<Vec<u8>>,
    mut file: std::fs::File,
) -> std::result::Result<u64, SinkError> {
    let reader = ChannelReader {
        chunks,
        current: Vec::new(),
        position: 0,
    };
    let mut decoder = lz4_flex::frame::FrameDecoder::new(reader);
    let mut buffer = vec![0u8; DECODE_BUFFER];
    let mut logical = 0u64;
    let mut cursor = 0u64;
    loop {
        let filled = fill(&mut decoder, &mut buffer).map_err(SinkError::Decode)?;
        for block in buffer[..filled].chunks(SPARSE_BLOCK) {
            if block.iter().all(|&b| b == 0) {
                logical += block.len() as u64;
                continue;
            }
            if cursor != logical {
                file.seek(SeekFrom::Start(logical))
                    .map_err(|e| SinkError::Write("seek in", e))?;
            }
            file.write_all(block)
                .map_err(|e| SinkError::Write("write", e))?;
            logical += block.len() as u64;
            cursor = logical;
        }
        if filled < buffer.len() {
            break;
        }
    }
    // Zero blocks at the end were skipped; set_len makes them part of the file as a hole.
    file.set_len(logical)
        .map_err(|e| SinkError::Write("set the length of", e))?;
    file.sync_all().map_err(|e| SinkError::Write("sync", e))?;
    Ok(logical)
}

/// Reads until `buffer` is full or the input ends; returns the bytes read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
