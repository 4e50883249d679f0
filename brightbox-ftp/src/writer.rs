//! A dedicated blocking thread that writes downloaded data to a local file.
//!
//! `tokio::fs` hands every write to the blocking pool, and with small chunks most of the time
//! goes to those hand-offs. This writer receives 256 KiB buffers over a channel, writes them with
//! `pwrite` at their file offsets, skips blocks that are all zero so the file stays sparse, and
//! returns the buffers to a pool for reuse.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::client::CHUNK_SIZE;
use crate::error::FtpError;
use crate::format::{ImageFormat, SNIFF_LEN, Sniffer};

/// Size of the blocks that are checked for zeros and skipped.
pub(crate) const SPARSE_BLOCK: usize = 64 * 1024;

/// Size of the buffers handed to the writer thread.
///
/// 256 KiB buffers fit in the CPU's L2 cache while they move from the receiving thread to the
/// writer. On a 2-core AMD EPYC VM, downloading 1 GiB from vsftpd with them took about 1.3 s of
/// system time, against about 2.0 s with 1 MiB buffers (3 alternating runs each, by hand with
/// the `transfer` bench's child process).
pub(crate) const FILE_BUFFER_SIZE: usize = 256 * 1024;

/// Number of buffers that may wait in the channel.
const QUEUE_DEPTH: usize = 4;

/// Alignment of memory, file offsets and lengths that `O_DIRECT` writes need. 4096 bytes is
/// the largest logical block size of common disks, so it satisfies smaller ones too.
pub(crate) const DIRECT_ALIGN: usize = 4096;

/// A zero-filled byte buffer whose first byte sits at a multiple of [`DIRECT_ALIGN`] in memory,
/// so it can be written with `O_DIRECT`.
pub(crate) struct Buffer {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl Buffer {
    /// Allocates a buffer of `len` bytes.
    pub(crate) fn new(len: usize) -> Self {
        // The heap block does not move when the Vec moves, so the offset stays valid.
        let storage = vec![0_u8; len + DIRECT_ALIGN];
        let start = storage
            .as_ptr()
            .align_offset(DIRECT_ALIGN)
            .min(DIRECT_ALIGN);
        Self {
            storage,
            start,
            len,
        }
    }
}

impl Deref for Buffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.storage
            .get(self.start..self.start + self.len)
            .unwrap_or_default()
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.storage
            .get_mut(self.start..self.start + self.len)
            .unwrap_or_default()
    }
}

/// A filled buffer and the file offset of its first byte.
pub(crate) struct Chunk {
    pub(crate) position: u64,
    pub(crate) data: Buffer,
    pub(crate) len: usize,
}

/// Buffers returned by the writer for reuse.
#[derive(Clone)]
pub(crate) struct BufferPool {
    free: Arc<Mutex<Vec<Buffer>>>,
    buffer_size: usize,
}

impl BufferPool {
    /// Creates a pool that hands out buffers of `buffer_size` bytes.
    pub(crate) fn with_buffer_size(buffer_size: usize) -> Self {
        Self {
            free: Arc::default(),
            buffer_size,
        }
    }

    /// Returns a buffer of the pool's size, reused when one is free.
    pub(crate) fn take(&self) -> Buffer {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| Buffer::new(self.buffer_size))
    }

    pub(crate) fn give_back(&self, buffer: Buffer) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < QUEUE_DEPTH + 4 {
            free.push(buffer);
        }
    }
}

/// The way the writer opens the file.
pub(crate) enum OpenMode {
    /// Create or truncate the file, then set its length to the given size when there is one,
    /// which allocates nothing on file systems with sparse files.
    Fresh { preallocate: Option<u64> },
    /// Keep the first `offset` bytes of an existing file and write after them; those bytes are
    /// hashed first.
    Resume { offset: u64 },
}

/// The writer thread's result after the channel closes.
pub(crate) struct WriterOutcome {
    /// SHA-256 of the file as lowercase hex, when hashing was on.
    pub(crate) sha256: Option<String>,
    /// Format detected from the file's first bytes.
    pub(crate) format: ImageFormat,
}

/// The sending side of a running writer thread.
pub(crate) struct FileWriter {
    sender: mpsc::Sender<Chunk>,
    handle: JoinHandle<std::io::Result<WriterOutcome>>,
    pool: BufferPool,
    path: PathBuf,
}

impl FileWriter {
    /// Starts the thread. With `hash`, the thread hashes every byte in order, so it must then
    /// receive chunks in file order.
    ///
    /// With `direct_io`, aligned writes go through a second descriptor opened with `O_DIRECT`.
    pub(crate) fn start(path: &Path, mode: OpenMode, hash: bool, direct_io: bool) -> FileWriter {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let pool = BufferPool::with_buffer_size(FILE_BUFFER_SIZE);
        let thread_pool = pool.clone();
        let thread_path = path.to_owned();
        let handle = tokio::task::spawn_blocking(move || {
            write_loop(&thread_path, mode, hash, direct_io, receiver, &thread_pool)
        });
        FileWriter {
            sender,
            handle,
            pool,
            path: path.to_owned(),
        }
    }

    pub(crate) fn pool(&self) -> BufferPool {
        self.pool.clone()
    }

    pub(crate) fn sender(&self) -> mpsc::Sender<Chunk> {
        self.sender.clone()
    }

    /// Closes the channel, waits for the thread and returns its outcome.
    ///
    /// # Errors
    ///
    /// [`FtpError::Io`] when a write failed.
    pub(crate) async fn finish(self) -> Result<WriterOutcome, FtpError> {
        drop(self.sender);
        join_writer(self.handle, &self.path).await
    }

    /// Returns the thread's error after a send failed because the thread stopped.
    pub(crate) async fn failure(self) -> FtpError {
        drop(self.sender);
        match join_writer(self.handle, &self.path).await {
            Err(error) => error,
            Ok(_) => FtpError::Io {
                path: self.path,
                source: std::io::Error::other("the file writer stopped early"),
            },
        }
    }
}

async fn join_writer(
    handle: JoinHandle<std::io::Result<WriterOutcome>>,
    path: &Path,
) -> Result<WriterOutcome, FtpError> {
    match handle.await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(source)) => Err(FtpError::Io {
            path: path.to_owned(),
            source,
        }),
        Err(join_error) => Err(FtpError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(format!("the file writer thread failed: {join_error}")),
        }),
    }
}

fn write_loop(
    path: &Path,
    mode: OpenMode,
    hash: bool,
    direct_io: bool,
    mut receiver: mpsc::Receiver<Chunk>,
    pool: &BufferPool,
) -> std::io::Result<WriterOutcome> {
    let mut hasher = Sha256::new();
    let mut sniffer = Sniffer::default();
    let file = match mode {
        OpenMode::Fresh { preallocate } => {
            let file = File::create(path)?;
            if let Some(length) = preallocate {
                file.set_len(length)?;
            }
            file
        }
        OpenMode::Resume { offset } => {
            let mut file = OpenOptions::new().read(true).write(true).open(path)?;
            file.set_len(offset)?;
            if hash {
                hash_prefix(&mut file, offset, &mut hasher, &mut sniffer)?;
            } else {
                hash_prefix(
                    &mut file,
                    offset.min(SNIFF_LEN as u64),
                    &mut Sha256::new(),
                    &mut sniffer,
                )?;
            }
            file
        }
    };
    let mut end = file.metadata()?.len();
    let mut direct = if direct_io { open_direct(path) } else { None };

    while let Some(chunk) = receiver.blocking_recv() {
        let data = chunk.data.get(..chunk.len).unwrap_or_default();
        if hash {
            hasher.update(data);
        }
        sniffer.feed(data);
        write_sparse_with(&file, &mut direct, chunk.position, data)?;
        end = end.max(chunk.position + chunk.len as u64);
        pool.give_back(chunk.data);
    }

    // Skipped zero blocks at the end leave the file short until its length is set.
    if file.metadata()?.len() < end {
        file.set_len(end)?;
    }
    Ok(WriterOutcome {
        sha256: hash.then(|| hex::encode(hasher.finalize())),
        format: sniffer.format(),
    })
}

/// Opens a second descriptor of `path` with `O_DIRECT`, or returns `None` when the file system
/// does not support it (tmpfs, for example).
///
/// Writes through it skip the page cache. Copying every downloaded byte into the page cache was
/// the largest CPU cost of a download in `perf` profiles, and under memory pressure it also
/// waits for dirty pages to be written back.
pub(crate) fn open_direct(path: &Path) -> Option<File> {
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(file) => Some(file),
        Err(error) => {
            debug!(%error, path = %path.display(), "O_DIRECT is not available; writing through the page cache");
            None
        }
    }
}

/// Writes `data` at `position`, skipping [`SPARSE_BLOCK`]-sized blocks that are all zero.
///
/// The file must contain no old data in the range. That is true because the writer truncates
/// the file, or cuts it to the resume offset, before the first write.
pub(crate) fn write_sparse(file: &File, position: u64, data: &[u8]) -> std::io::Result<()> {
    write_sparse_with(file, &mut None, position, data)
}

/// Writes like [`write_sparse`], through `direct` where memory, offset and length are aligned
/// to [`DIRECT_ALIGN`], and through `file` elsewhere.
///
/// When the file system rejects a direct write with `EINVAL`, `direct` is set to `None` and
/// this and every later write go through `file`.
pub(crate) fn write_sparse_with(
    file: &File,
    direct: &mut Option<File>,
    position: u64,
    data: &[u8],
) -> std::io::Result<()> {
    let mut run_start: Option<usize> = None;
    let mut offset = 0;
    for block in data.chunks(SPARSE_BLOCK) {
        let zero = block.iter().all(|byte| *byte == 0);
        match (zero, run_start) {
            (false, None) => run_start = Some(offset),
            (true, Some(start)) => {
                write_run(
                    file,
                    direct,
                    data.get(start..offset).unwrap_or_default(),
                    position + start as u64,
                )?;
                run_start = None;
            }
            _ => {}
        }
        offset += block.len();
    }
    if let Some(start) = run_start {
        write_run(
            file,
            direct,
            data.get(start..).unwrap_or_default(),
            position + start as u64,
        )?;
    }
    Ok(())
}

fn write_run(
    file: &File,
    direct: &mut Option<File>,
    data: &[u8],
    position: u64,
) -> std::io::Result<()> {
    let aligned = (data.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN)
        && data.len().is_multiple_of(DIRECT_ALIGN)
        && position.is_multiple_of(DIRECT_ALIGN as u64);
    if aligned && let Some(direct_file) = direct.as_ref() {
        match direct_file.write_all_at(data, position) {
            Ok(()) => return Ok(()),
            Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {
                debug!(%error, "the file system rejected an O_DIRECT write; writing through the page cache");
                *direct = None;
            }
            Err(error) => return Err(error),
        }
    }
    file.write_all_at(data, position)
}

fn hash_prefix(
    file: &mut File,
    length: u64,
    hasher: &mut Sha256,
    sniffer: &mut Sniffer,
) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut buffer = vec![0_u8; CHUNK_SIZE];
    let mut done = 0_u64;
    while done < length {
        let want = usize::try_from(length - done)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let slice = buffer.get_mut(..want).unwrap_or_default();
        let read = file.read(slice)?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the partial file ended at {done} of {length} bytes"),
            ));
        }
        let data = slice.get(..read).unwrap_or_default();
        hasher.update(data);
        sniffer.feed(data);
        done += read as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_is_aligned_and_zeroed() {
        for len in [1, 4096, FILE_BUFFER_SIZE] {
            let buffer = Buffer::new(len);
            assert_eq!(buffer.len(), len);
            assert!((buffer.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN));
            assert!(buffer.iter().all(|byte| *byte == 0));
        }
    }

    #[test]
    fn direct_write_mixes_aligned_and_tail() -> std::io::Result<()> {
        // The temporary directory is on the same file system as the crate's target folder,
        // which supports O_DIRECT on the machines the tests run on (ext4); on one without it
        // the writes fall back to the page cache and the content check still applies.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR"))?;
        let path = dir.path().join("direct.img");
        let file = File::create(&path)?;
        let mut direct = open_direct(&path);
        let mut first = Buffer::new(FILE_BUFFER_SIZE);
        first
            .iter_mut()
            .enumerate()
            .for_each(|(index, byte)| *byte = (index % 251) as u8 | 1);
        let mut tail = Buffer::new(FILE_BUFFER_SIZE);
        tail.iter_mut()
            .take(1000)
            .enumerate()
            .for_each(|(index, byte)| *byte = (index % 7) as u8 + 1);

        write_sparse_with(&file, &mut direct, 0, &first)?;
        let direct_after_aligned = direct.is_some();
        write_sparse_with(
            &file,
            &mut direct,
            FILE_BUFFER_SIZE as u64,
            tail.get(..1000).unwrap_or_default(),
        )?;
        drop(file);

        let written = std::fs::read(&path)?;
        assert_eq!(written.len(), FILE_BUFFER_SIZE + 1000);
        assert_eq!(written.get(..FILE_BUFFER_SIZE), Some(&first[..]));
        assert_eq!(written.get(FILE_BUFFER_SIZE..), tail.get(..1000));
        // An unaligned tail goes through the page cache without giving up O_DIRECT.
        assert_eq!(direct.is_some(), direct_after_aligned);
        Ok(())
    }

    #[test]
    fn sparse_write_keeps_content() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sparse.img");
        let file = File::create(&path)?;
        let mut data = vec![0_u8; SPARSE_BLOCK * 5];
        data.iter_mut()
            .skip(SPARSE_BLOCK)
            .take(10)
            .for_each(|byte| *byte = 7);
        if let Some(last) = data.last_mut() {
            *last = 9;
        }
        write_sparse(&file, 100, &data)?;
        drop(file);

        let written = std::fs::read(&path)?;
        assert_eq!(written.len(), 100 + data.len());
        assert!(
            written
                .get(..100)
                .is_some_and(|head| head.iter().all(|b| *b == 0))
        );
        assert_eq!(written.get(100..), Some(data.as_slice()));
        Ok(())
    }
}
