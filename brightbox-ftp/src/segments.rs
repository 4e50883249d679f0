//! Writers and the in-order hasher of a segmented download.
//!
//! Every segment has its own blocking writer thread, which writes the segment's buffers with
//! `pwrite` (`FileExt::write_all_at`) into one shared, preallocated file, so the segments do not
//! queue behind one another. Each writer records how far its range is written. A hasher thread
//! follows those marks in file order: it hashes the first segment while it arrives, then reads
//! each later segment back from the page cache as soon as the bytes before it are hashed. The
//! SHA-256 is therefore ready shortly after the last byte is written, instead of after a second
//! pass over the whole file.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::FtpError;
use crate::format::{ImageFormat, SNIFF_LEN, Sniffer};
use crate::writer::{BufferPool, Chunk, FILE_BUFFER_SIZE, write_sparse};

/// Size of the receive buffers of one segment. Every segment holds up to three of them (one
/// being filled, one queued, one being written), so 16 segments use at most 12 MiB.
const SEGMENT_BUFFER_SIZE: usize = FILE_BUFFER_SIZE;

/// Number of buffers that may wait in one segment's channel.
const SEGMENT_QUEUE_DEPTH: usize = 1;

/// How far each segment is written, shared by the writers and the hasher.
struct Frontier {
    state: Mutex<FrontierState>,
    changed: Condvar,
}

struct FrontierState {
    /// The end of the contiguous written prefix of each segment, as a file offset.
    written: Vec<u64>,
    /// Set when no more bytes will be written, so the hasher stops waiting.
    closed: bool,
}

impl Frontier {
    fn advance(&self, segment: usize, end: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(written) = state.written.get_mut(segment) {
            *written = (*written).max(end);
        }
        self.changed.notify_all();
    }

    fn close(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.changed.notify_all();
    }

    /// Waits until `segment` is written beyond `position` and returns its written end, or
    /// `None` when the writers are done and the segment ends at or before `position`.
    fn wait_beyond(&self, segment: usize, position: u64) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let written = state.written.get(segment).copied().unwrap_or(0);
            if written > position {
                return Some(written);
            }
            if state.closed {
                return None;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A frontier that is closed when dropped, so the hasher thread stops waiting once the download
/// is dropped or has failed.
struct FrontierGuard(Arc<Frontier>);

impl FrontierGuard {
    fn close(&self) {
        self.0.close();
    }
}

impl Drop for FrontierGuard {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The SHA-256 and format of a finished segmented download.
pub(crate) struct HashOutcome {
    pub(crate) sha256: String,
    pub(crate) format: ImageFormat,
}

/// The file, writers and hasher of one segmented download.
pub(crate) struct SegmentedFile {
    path: PathBuf,
    file: Arc<File>,
    frontier: FrontierGuard,
    writers: Vec<JoinHandle<std::io::Result<()>>>,
    /// The in-order hasher, or `None` when hashing is off.
    hasher: Option<JoinHandle<std::io::Result<Option<HashOutcome>>>>,
}

/// The sending side of one segment's writer.
pub(crate) struct SegmentSink {
    pub(crate) sender: mpsc::Sender<Chunk>,
    pub(crate) pool: BufferPool,
}

impl SegmentedFile {
    /// Creates `path` with length `total`, starts the hasher over `ranges` (`(start, length)`
    /// pairs in file order) when `hash` is set, and returns the file with one sink per range.
    ///
    /// # Errors
    ///
    /// [`FtpError::Io`] when the file cannot be created or sized.
    pub(crate) fn create(
        path: &Path,
        total: u64,
        ranges: &[(u64, u64)],
        hash: bool,
    ) -> Result<(SegmentedFile, Vec<SegmentSink>), FtpError> {
        let io_error = |source| FtpError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_error)?;
        // Setting the length allocates nothing on file systems with sparse files, and it makes
        // unwritten zero blocks read back as zeros.
        file.set_len(total).map_err(io_error)?;
        let file = Arc::new(file);
        let frontier = Arc::new(Frontier {
            state: Mutex::new(FrontierState {
                written: ranges.iter().map(|(start, _)| *start).collect(),
                closed: false,
            }),
            changed: Condvar::new(),
        });

        let mut writers = Vec::with_capacity(ranges.len());
        let mut sinks = Vec::with_capacity(ranges.len());
        for index in 0..ranges.len() {
            let (sender, receiver) = mpsc::channel(SEGMENT_QUEUE_DEPTH);
            let pool = BufferPool::with_buffer_size(SEGMENT_BUFFER_SIZE);
            let thread_pool = pool.clone();
            let thread_file = Arc::clone(&file);
            let thread_frontier = Arc::clone(&frontier);
            writers.push(tokio::task::spawn_blocking(move || {
                write_segment(
                    &thread_file,
                    index,
                    receiver,
                    &thread_pool,
                    &thread_frontier,
                )
            }));
            sinks.push(SegmentSink { sender, pool });
        }

        let hasher = hash.then(|| {
            let hash_file = Arc::clone(&file);
            let hash_frontier = Arc::clone(&frontier);
            let hash_ranges = ranges.to_vec();
            tokio::task::spawn_blocking(move || {
                hash_in_order(&hash_file, &hash_ranges, &hash_frontier)
            })
        });

        Ok((
            SegmentedFile {
                path: path.to_owned(),
                file,
                frontier: FrontierGuard(frontier),
                writers,
                hasher,
            },
            sinks,
        ))
    }

    /// Waits for every writer and the hasher, and returns the SHA-256 and format of the file.
    ///
    /// Call it after every sink is dropped, because each writer runs until its channel closes.
    ///
    /// # Errors
    ///
    /// [`FtpError::Io`] when a write or a read for hashing failed, or when a range was not
    /// written to its end.
    pub(crate) async fn finish(self) -> Result<HashOutcome, FtpError> {
        let SegmentedFile {
            path,
            file,
            frontier,
            writers,
            hasher,
        } = self;
        let written = wait_writers(writers, &path).await;
        // No more bytes will arrive, so a hasher that waits for a missing range must stop.
        frontier.close();
        let Some(hasher) = hasher else {
            written?;
            return sniff_only(&file, &path);
        };
        let hashed = hasher.await;
        drop(file);
        written?;
        match hashed {
            Ok(Ok(Some(outcome))) => Ok(outcome),
            Ok(Ok(None)) => Err(FtpError::Io {
                path,
                source: std::io::Error::other(
                    "a segment was not written to its end, so the file cannot be hashed",
                ),
            }),
            Ok(Err(source)) => Err(FtpError::Io { path, source }),
            Err(join_error) => Err(FtpError::Io {
                path,
                source: std::io::Error::other(format!("the hashing thread failed: {join_error}")),
            }),
        }
    }

    /// Stops the hasher and waits for the writers after a failed download, and returns the
    /// first writer's error, such as a full disk, when one failed.
    pub(crate) async fn abandon(self) -> Option<FtpError> {
        self.frontier.close();
        if let Some(hasher) = self.hasher {
            let _ = hasher.await;
        }
        wait_writers(self.writers, &self.path).await.err()
    }
}

/// Detects the format from the first bytes of the written file, without a SHA-256.
fn sniff_only(file: &File, path: &Path) -> Result<HashOutcome, FtpError> {
    let mut head = [0_u8; SNIFF_LEN];
    let read = file.read_at(&mut head, 0).map_err(|source| FtpError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut sniffer = Sniffer::default();
    sniffer.feed(head.get(..read).unwrap_or_default());
    Ok(HashOutcome {
        sha256: String::new(),
        format: sniffer.format(),
    })
}

async fn wait_writers(
    writers: Vec<JoinHandle<std::io::Result<()>>>,
    path: &Path,
) -> Result<(), FtpError> {
    let mut first_error = None;
    for writer in writers {
        let error = match writer.await {
            Ok(Ok(())) => continue,
            Ok(Err(source)) => FtpError::Io {
                path: path.to_owned(),
                source,
            },
            Err(join_error) => FtpError::Io {
                path: path.to_owned(),
                source: std::io::Error::other(format!(
                    "a segment writer thread failed: {join_error}"
                )),
            },
        };
        first_error.get_or_insert(error);
    }
    first_error.map_or(Ok(()), Err)
}

fn write_segment(
    file: &File,
    index: usize,
    mut receiver: mpsc::Receiver<Chunk>,
    pool: &BufferPool,
    frontier: &Frontier,
) -> std::io::Result<()> {
    while let Some(chunk) = receiver.blocking_recv() {
        let data = chunk.data.get(..chunk.len).unwrap_or_default();
        write_sparse(file, chunk.position, data)?;
        frontier.advance(index, chunk.position + chunk.len as u64);
        pool.give_back(chunk.data);
    }
    Ok(())
}

/// Hashes the file in order, reading each range as far as its writer has written it. Returns
/// `None` when the writers stopped before a range was complete.
fn hash_in_order(
    file: &File,
    ranges: &[(u64, u64)],
    frontier: &Frontier,
) -> std::io::Result<Option<HashOutcome>> {
    let mut hasher = Sha256::new();
    let mut sniffer = Sniffer::default();
    let mut buffer = vec![0_u8; FILE_BUFFER_SIZE];
    for (index, (start, length)) in ranges.iter().enumerate() {
        let end = start + length;
        let mut position = *start;
        while position < end {
            let Some(written) = frontier.wait_beyond(index, position) else {
                return Ok(None);
            };
            while position < written.min(end) {
                let want = usize::try_from(written.min(end) - position)
                    .unwrap_or(usize::MAX)
                    .min(buffer.len());
                let slice = buffer.get_mut(..want).unwrap_or_default();
                file.read_exact_at(slice, position)?;
                hasher.update(&*slice);
                sniffer.feed(slice);
                position += want as u64;
            }
        }
    }
    Ok(Some(HashOutcome {
        sha256: hex::encode(hasher.finalize()),
        format: sniffer.format(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `data[start..end]` to `sink` in buffers from its pool.
    async fn send_range(sink: &SegmentSink, data: &[u8], start: usize, end: usize) {
        let mut position = start;
        while position < end {
            let mut buffer = sink.pool.take();
            let len = buffer.len().min(end - position);
            buffer
                .get_mut(..len)
                .unwrap_or_default()
                .copy_from_slice(data.get(position..position + len).unwrap_or_default());
            let chunk = Chunk {
                position: position as u64,
                data: buffer,
                len,
            };
            assert!(sink.sender.send(chunk).await.is_ok(), "writer stopped");
            position += len;
        }
    }

    fn sample_data(length: usize) -> Vec<u8> {
        let mut data: Vec<u8> = (0..length).map(|index| (index * 7 % 253) as u8).collect();
        // A zero run that the writers skip, so the hasher reads a hole.
        data.get_mut(300_000..500_000).unwrap_or_default().fill(0);
        data
    }

    #[tokio::test]
    async fn hash_follows_file_order() -> Result<(), FtpError> {
        let dir = tempfile::tempdir().map_err(|source| FtpError::Io {
            path: PathBuf::from("tempdir"),
            source,
        })?;
        let path = dir.path().join("segmented.img");
        let data = sample_data(1_000_003);
        let ranges = [(0, 400_000), (400_000, 400_000), (800_000, 200_003)];
        let (file, sinks) = SegmentedFile::create(&path, data.len() as u64, &ranges, true)?;

        // The later segments finish first, so the hasher must wait for the first one.
        if let [first, second, third] = sinks.as_slice() {
            send_range(third, &data, 800_000, 1_000_003).await;
            send_range(second, &data, 400_000, 800_000).await;
            send_range(first, &data, 0, 400_000).await;
        }
        drop(sinks);
        let outcome = file.finish().await?;

        assert_eq!(outcome.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(std::fs::read(&path).ok(), Some(data));
        Ok(())
    }

    #[tokio::test]
    async fn short_segment_fails_instead_of_waiting() -> Result<(), FtpError> {
        let dir = tempfile::tempdir().map_err(|source| FtpError::Io {
            path: PathBuf::from("tempdir"),
            source,
        })?;
        let path = dir.path().join("short.img");
        let data = sample_data(600_000);
        let ranges = [(0, 300_000), (300_000, 300_000)];
        let (file, sinks) = SegmentedFile::create(&path, data.len() as u64, &ranges, true)?;

        if let [first, second] = sinks.as_slice() {
            send_range(first, &data, 0, 300_000).await;
            send_range(second, &data, 300_000, 450_000).await;
        }
        drop(sinks);
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), file.finish()).await;

        match result {
            Ok(Err(FtpError::Io { source, .. })) => {
                assert!(
                    source.to_string().contains("not written to its end"),
                    "{source}"
                );
            }
            Ok(other) => panic!("expected an I/O error, got {:?}", other.map(|o| o.sha256)),
            Err(_) => panic!("the hasher kept waiting for the missing bytes"),
        }
        Ok(())
    }

    #[tokio::test]
    async fn without_hash_detects_format() -> Result<(), FtpError> {
        let dir = tempfile::tempdir().map_err(|source| FtpError::Io {
            path: PathBuf::from("tempdir"),
            source,
        })?;
        let path = dir.path().join("plain.img");
        let mut data = sample_data(200_000);
        data.get_mut(..4)
            .unwrap_or_default()
            .copy_from_slice(b"QFI\xfb");
        let ranges = [(0, 100_000), (100_000, 100_000)];
        let (file, sinks) = SegmentedFile::create(&path, data.len() as u64, &ranges, false)?;

        if let [first, second] = sinks.as_slice() {
            send_range(first, &data, 0, 100_000).await;
            send_range(second, &data, 100_000, 200_000).await;
        }
        drop(sinks);
        let outcome = file.finish().await?;

        assert_eq!(outcome.sha256, "");
        assert_eq!(outcome.format, ImageFormat::Qcow2);
        assert_eq!(std::fs::read(&path).ok(), Some(data));
        Ok(())
    }
}
