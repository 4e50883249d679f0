//! File uploads: one `PUT` for small files, a Static Large Object for large ones.

use std::fmt;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::stream;
use md5::{Digest, Md5};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tracing::{Instrument, debug, info, info_span, instrument};

use crate::client::{
    OrbitClient, Target, error_from_response, validate_container, validate_object,
};
use crate::error::{OrbitError, Result};

/// Default segment size and single-`PUT` limit: 1 GiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 1 << 30;
/// Largest single object stock OpenStack Swift accepts (5 GiB); segments may not exceed it.
pub const MAX_SEGMENT_SIZE: u64 = 5 << 30;
/// Maximum number of segments in one Static Large Object manifest (Swift's default).
pub const MAX_SEGMENTS: u64 = 1000;
/// Bytes read from the file per body chunk.
const CHUNK_SIZE: usize = 256 * 1024;

/// Progress of a transfer, passed to a [`ProgressCallback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransferProgress {
    /// Bytes transferred (or confirmed already stored) so far.
    pub bytes_done: u64,
    /// Total bytes, when known.
    pub bytes_total: Option<u64>,
}

/// A callback that receives [`TransferProgress`] after each chunk.
///
/// It runs on the transfer's task, so it should return quickly.
pub type ProgressCallback = Arc<dyn Fn(TransferProgress) + Send + Sync>;

/// Options for [`OrbitClient::upload_file`].
#[derive(Clone)]
#[non_exhaustive]
pub struct UploadOptions {
    /// Files up to this size go up in one `PUT`; larger files are split into segments of this
    /// size. Default [`DEFAULT_SEGMENT_SIZE`]; must be between 1 and [`MAX_SEGMENT_SIZE`].
    /// Swift rejects segments under 1 MiB other than the last, so smaller values only suit
    /// test servers.
    pub segment_size: u64,
    /// Skip segments that are already stored with the same size and MD5 (default true).
    pub resume: bool,
    /// `Content-Type` of the stored object (default `application/octet-stream`).
    pub content_type: String,
    /// Requests allowed for each `PUT` (the whole object, each segment and the manifest),
    /// including the first (default 3). Only errors for which
    /// [`OrbitError::is_retryable`] returns true are retried.
    pub max_attempts: u32,
    /// Base delay between attempts; attempt `n` waits `n × retry_delay` (default 1 s).
    pub retry_delay: Duration,
    /// Called with bytes done and total bytes.
    pub progress: Option<ProgressCallback>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            segment_size: DEFAULT_SEGMENT_SIZE,
            resume: true,
            content_type: "application/octet-stream".into(),
            max_attempts: 3,
            retry_delay: Duration::from_secs(1),
            progress: None,
        }
    }
}

impl fmt::Debug for UploadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadOptions")
            .field("segment_size", &self.segment_size)
            .field("resume", &self.resume)
            .field("content_type", &self.content_type)
            .field("max_attempts", &self.max_attempts)
            .field("retry_delay", &self.retry_delay)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .finish()
    }
}

impl UploadOptions {
    /// Sets [`segment_size`](Self::segment_size).
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets [`resume`](Self::resume).
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Sets [`content_type`](Self::content_type).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Sets [`max_attempts`](Self::max_attempts).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`retry_delay`](Self::retry_delay).
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Sets the [`progress`](Self::progress) callback.
    pub fn on_progress(
        mut self,
        callback: impl Fn(TransferProgress) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(Arc::new(callback));
        self
    }
}

/// The result of [`OrbitClient::upload_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadedObject {
    /// Container the object was stored in.
    pub container: String,
    /// Object name.
    pub object: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag Orbit returned: the object's MD5 for a single `PUT`, or the MD5 of the
    /// concatenated segment MD5s for a Static Large Object.
    pub etag: String,
    /// Segments in the manifest, or 0 for a single `PUT`.
    pub segments: u32,
    /// Segments found already stored and not sent again.
    pub segments_reused: u32,
}

/// One entry of a Static Large Object manifest.
#[derive(Debug, Serialize)]
struct ManifestEntry {
    path: String,
    etag: String,
    size_bytes: u64,
}

/// Shared byte counter behind the progress callback.
struct Progress {
    done: AtomicU64,
    total: u64,
    callback: Option<ProgressCallback>,
}

impl Progress {
    fn set(&self, bytes_done: u64) {
        self.done.store(bytes_done, Ordering::Relaxed);
        self.report(bytes_done);
    }

    fn add(&self, bytes: u64) {
        let now = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.report(now);
    }

    fn report(&self, bytes_done: u64) {
        if let Some(callback) = &self.callback {
            callback(TransferProgress {
                bytes_done,
                bytes_total: Some(self.total),
            });
        }
    }
}

impl OrbitClient {
    /// Uploads a local file to `container/object`.
    ///
    /// A file no larger than [`UploadOptions::segment_size`] goes up in one streamed `PUT`.
    /// A larger file becomes a Static Large Object: segments named
    /// `<object>/segments/<file size>-<segment size>/<index, 8 digits>` in the same container,
    /// each streamed from the file, then a manifest `PUT ?multipart-manifest=put`. Memory use
    /// does not grow with the file: each body is read in 256 KiB chunks and its MD5 computed
    /// while it is sent, then compared with the ETag Orbit returns.
    ///
    /// With [`UploadOptions::resume`], the segments already stored under the same prefix are
    /// listed first, and a segment whose size and MD5 match the local bytes is not sent again.
    /// The file size and segment size are part of the prefix, so a changed file or segment size
    /// never reuses old segments. The container must exist; see
    /// [`ensure_container`](Self::ensure_container).
    ///
    /// # Errors
    ///
    /// - [`OrbitError::InvalidName`] and [`OrbitError::InvalidConfig`] for bad names or options,
    ///   or a `local` path that is not a regular file.
    /// - [`OrbitError::TooManySegments`] when the file needs more than [`MAX_SEGMENTS`] segments.
    /// - [`OrbitError::Io`] when the file cannot be read or changes size during the upload.
    /// - [`OrbitError::EtagMismatch`] when Orbit stored different bytes than were sent. The
    ///   mismatched object or segment stays in place until the next attempt overwrites it.
    /// - [`OrbitError::NotFound`] when the container does not exist, plus HTTP and transport errors.
    ///
    /// # Cancellation
    ///
    /// Dropping the future stops the current `PUT`. Segments already stored stay in the
    /// container, and the next call with the same file and segment size reuses them. The
    /// manifest is written only after every segment is stored.
    #[instrument(skip(self, options), fields(local = %local.display()), err)]
    pub async fn upload_file(
        &self,
        container: &str,
        object: &str,
        local: &Path,
        options: &UploadOptions,
    ) -> Result<UploadedObject> {
        validate_container(container)?;
        validate_object(object)?;
        if options.max_attempts == 0 {
            return Err(OrbitError::InvalidConfig {
                field: "UploadOptions::max_attempts",
                reason: "must be at least 1".into(),
            });
        }
        if options.segment_size == 0 || options.segment_size > MAX_SEGMENT_SIZE {
            return Err(OrbitError::InvalidConfig {
                field: "UploadOptions::segment_size",
                reason: format!(
                    "{} is out of range; use 1 to {MAX_SEGMENT_SIZE} bytes",
                    options.segment_size
                ),
            });
        }
        let metadata = tokio::fs::metadata(local)
            .await
            .map_err(|source| io_error("read metadata of", local, source))?;
        // A FIFO would block the upload forever and a device such as /dev/zero reports length 0.
        if !metadata.is_file() {
            return Err(OrbitError::InvalidConfig {
                field: "local",
                reason: format!(
                    "{} is not a regular file (a folder, FIFO or device); pass the path of a disk image file",
                    local.display()
                ),
            });
        }
        let size = metadata.len();
        let progress = Arc::new(Progress {
            done: AtomicU64::new(0),
            total: size,
            callback: options.progress.clone(),
        });

        if size <= options.segment_size {
            let etag = with_retries(options, object, || {
                self.put_file_range(
                    container,
                    object,
                    local,
                    0,
                    size,
                    &options.content_type,
                    &progress,
                )
            })
            .await?;
            info!(size, "uploaded object in one PUT");
            return Ok(UploadedObject {
                container: container.to_owned(),
                object: object.to_owned(),
                size,
                etag,
                segments: 0,
                segments_reused: 0,
            });
        }

        self.upload_segmented(container, object, local, size, options, &progress)
            .await
    }

    async fn upload_segmented(
        &self,
        container: &str,
        object: &str,
        local: &Path,
        size: u64,
        options: &UploadOptions,
        progress: &Arc<Progress>,
    ) -> Result<UploadedObject> {
        let segment_size = options.segment_size;
        let count = size.div_ceil(segment_size);
        if count > MAX_SEGMENTS {
            return Err(OrbitError::TooManySegments {
                object: object.to_owned(),
                file_size: size,
                segment_size,
                segments: count,
                max: MAX_SEGMENTS,
                min_segment_size: size.div_ceil(MAX_SEGMENTS),
            });
        }
        let prefix = format!("{object}/segments/{size}-{segment_size}/");
        validate_object(&format!("{prefix}{:08}", count - 1))?;

        let stored = if options.resume {
            self.list_objects(container, &prefix).await?
        } else {
            Vec::new()
        };
        debug!(
            segments = count,
            already_stored = stored.len(),
            "uploading segments"
        );

        let mut manifest = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut reused = 0u32;
        for index in 0..count {
            let offset = index * segment_size;
            let len = segment_size.min(size - offset);
            let name = format!("{prefix}{index:08}");
            let span = info_span!("segment", index, offset, len);

            let existing = stored.iter().find(|e| e.name == name && e.bytes == len);
            let reuse = match existing {
                Some(entry) => {
                    let local_md5 = md5_of_range(local, offset, len)
                        .instrument(span.clone())
                        .await?;
                    (local_md5.eq_ignore_ascii_case(&entry.hash)).then_some(local_md5)
                }
                None => None,
            };
            let etag = match reuse {
                Some(md5) => {
                    debug!(parent: &span, "segment already stored with the same MD5");
                    reused += 1;
                    progress.add(len);
                    md5
                }
                None => {
                    with_retries(options, &name, || {
                        self.put_file_range(
                            container,
                            &name,
                            local,
                            offset,
                            len,
                            "application/octet-stream",
                            progress,
                        )
                    })
                    .instrument(span)
                    .await?
                }
            };
            manifest.push(ManifestEntry {
                path: format!("/{container}/{name}"),
                etag,
                size_bytes: len,
            });
        }

        let etag = with_retries(options, object, || {
            self.put_manifest(container, object, &manifest, &options.content_type)
        })
        .await?;
        info!(
            size,
            segments = count,
            reused,
            "uploaded Static Large Object"
        );
        Ok(UploadedObject {
            container: container.to_owned(),
            object: object.to_owned(),
            size,
            etag,
            segments: u32::try_from(count).unwrap_or(u32::MAX),
            segments_reused: reused,
        })
    }

    /// Streams `len` bytes of `local` from `offset` into one object and checks its ETag.
    #[allow(clippy::too_many_arguments)]
    async fn put_file_range(
        &self,
        container: &str,
        object: &str,
        local: &Path,
        offset: u64,
        len: u64,
        content_type: &str,
        progress: &Arc<Progress>,
    ) -> Result<String> {
        let url = self.object_url(container, Some(object))?;
        let hasher = Arc::new(Mutex::new(Md5::new()));
        // Every byte before `offset` has been sent or found stored, so progress restarts there.
        let start = offset;
        let response = self
            .send("PUT object", |http| {
                // A repeated attempt (after a token refresh) starts over from the same offset.
                *hasher.lock().unwrap_or_else(PoisonError::into_inner) = Md5::new();
                progress.set(start);
                let body = file_range_body(
                    local.to_path_buf(),
                    offset,
                    len,
                    Arc::clone(&hasher),
                    Arc::clone(progress),
                );
                http.put(url.clone())
                    .header(CONTENT_LENGTH, len)
                    .header(CONTENT_TYPE, content_type)
                    .body(body)
            })
            .await?;
        let target = Target {
            container,
            object: Some(object),
        };
        if !response.status().is_success() {
            return Err(error_from_response("PUT object", &target, response).await);
        }
        let sent = hex::encode(
            hasher
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .finalize(),
        );
        check_etag(object, &sent, response.headers())?;
        Ok(sent)
    }

    async fn put_manifest(
        &self,
        container: &str,
        object: &str,
        manifest: &[ManifestEntry],
        content_type: &str,
    ) -> Result<String> {
        let body = serde_json::to_vec(manifest).map_err(|e| OrbitError::InvalidResponse {
            operation: "PUT manifest",
            reason: format!("failed to encode the manifest: {e}"),
        })?;
        let mut url = self.object_url(container, Some(object))?;
        url.query_pairs_mut()
            .append_pair("multipart-manifest", "put");
        let response = self
            .send("PUT manifest", |http| {
                http.put(url.clone())
                    .header(CONTENT_TYPE, content_type)
                    .body(body.clone())
            })
            .await?;
        if !response.status().is_success() {
            let target = Target {
                container,
                object: Some(object),
            };
            return Err(error_from_response("PUT manifest", &target, response).await);
        }
        // Swift's ETag for a Static Large Object is the MD5 of the concatenated segment MD5s.
        let mut slo = Md5::new();
        for entry in manifest {
            slo.update(entry.etag.as_bytes());
        }
        let expected = hex::encode(slo.finalize());
        check_etag(object, &expected, response.headers())?;
        Ok(expected)
    }
}

/// Runs `request` until it succeeds, fails with an error that is not retryable, or has run
/// [`UploadOptions::max_attempts`] times, sleeping `retry_delay × attempt` between runs.
async fn with_retries<T, F, Fut>(options: &UploadOptions, object: &str, mut request: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 1u32;
    loop {
        let error = match request().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !error.is_retryable() {
            return Err(error);
        }
        if attempt >= options.max_attempts {
            if attempt == 1 {
                return Err(error);
            }
            return Err(OrbitError::RetriesExhausted {
                object: object.to_owned(),
                attempts: attempt,
                source: Box::new(error),
            });
        }
        let delay = options.retry_delay.saturating_mul(attempt);
        info!(
            object,
            attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %error,
            "upload request failed; retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// Compares a response `ETag` (quotes allowed) with the MD5 computed locally.
///
/// A response without an ETag passes, because some proxies drop it.
fn check_etag(object: &str, expected: &str, headers: &reqwest::header::HeaderMap) -> Result<()> {
    let Some(actual) = headers.get(reqwest::header::ETAG) else {
        debug!(object, "response has no ETag; skipping the MD5 check");
        return Ok(());
    };
    let actual = String::from_utf8_lossy(actual.as_bytes())
        .trim()
        .trim_matches('"')
        .to_ascii_lowercase();
    if actual == expected {
        Ok(())
    } else {
        Err(OrbitError::EtagMismatch {
            object: object.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

/// Builds a request body that streams `len` bytes of `path` from `offset`, feeding `hasher`
/// and `progress` as chunks are read.
fn file_range_body(
    path: PathBuf,
    offset: u64,
    len: u64,
    hasher: Arc<Mutex<Md5>>,
    progress: Arc<Progress>,
) -> reqwest::Body {
    struct State {
        path: PathBuf,
        file: Option<tokio::fs::File>,
        offset: u64,
        remaining: u64,
        hasher: Arc<Mutex<Md5>>,
        progress: Arc<Progress>,
    }
    let state = State {
        path,
        file: None,
        offset,
        remaining: len,
        hasher,
        progress,
    };
    let chunks = stream::try_unfold(state, |mut state| async move {
        if state.remaining == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        let file = match state.file.as_mut() {
            Some(file) => file,
            None => {
                let mut file = tokio::fs::File::open(&state.path).await?;
                file.seek(SeekFrom::Start(state.offset)).await?;
                state.file.insert(file)
            }
        };
        let want = usize::try_from(state.remaining)
            .unwrap_or(CHUNK_SIZE)
            .min(CHUNK_SIZE);
        let mut chunk = vec![0u8; want];
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ended {} bytes early; was it changed during the upload?",
                    state.path.display(),
                    state.remaining
                ),
            ));
        }
        chunk.truncate(read);
        state
            .hasher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update(&chunk);
        state.remaining -= read as u64;
        state.progress.add(read as u64);
        Ok(Some((chunk, state)))
    });
    reqwest::Body::wrap_stream(chunks)
}

/// Computes the hex MD5 of `len` bytes of `path` from `offset`.
async fn md5_of_range(path: &Path, offset: u64, len: u64) -> Result<String> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|source| io_error("open", path, source))?;
    file.seek(SeekFrom::Start(offset))
        .await
        .map_err(|source| io_error("seek in", path, source))?;
    let mut hasher = Md5::new();
    let mut remaining = len;
    let mut chunk = vec![0u8; CHUNK_SIZE];
    while remaining > 0 {
        let want = usize::try_from(remaining)
            .unwrap_or(CHUNK_SIZE)
            .min(CHUNK_SIZE);
        let read = file
            .read(&mut chunk[..want])
            .await
            .map_err(|source| io_error("read", path, source))?;
        if read == 0 {
            return Err(OrbitError::SizeMismatch {
                what: path.display().to_string(),
                expected: offset + len,
                actual: offset + len - remaining,
            });
        }
        hasher.update(&chunk[..read]);
        remaining -= read as u64;
    }
    Ok(hex::encode(hasher.finalize()))
}

pub(crate) fn io_error(operation: &'static str, path: &Path, source: std::io::Error) -> OrbitError {
    OrbitError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}
