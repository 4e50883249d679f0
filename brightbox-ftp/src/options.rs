//! Per-transfer options for uploads and downloads.

use crate::progress::ProgressSink;

/// Maximum number of parallel connections one segmented download may open.
pub const MAX_SEGMENTS: usize = 16;

/// Options for [`crate::FtpsClient::upload_file_with`] and [`crate::FtpsClient::upload_reader`].
///
/// The default starts a fresh upload, hashes it with SHA-256, deletes the temporary file when
/// the upload fails, reports no progress and makes no retry.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    pub(crate) resume: bool,
    pub(crate) keep_partial_on_error: bool,
    pub(crate) progress: Option<ProgressSink>,
    pub(crate) retries: u32,
    pub(crate) gzip: bool,
    pub(crate) temporary_name: Option<String>,
    pub(crate) sha256: bool,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            resume: false,
            keep_partial_on_error: false,
            progress: None,
            retries: 0,
            gzip: false,
            temporary_name: None,
            sha256: true,
        }
    }
}

impl UploadOptions {
    /// Creates the default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether an existing temporary file `.<name>.part` is continued (default `false`).
    ///
    /// The client reads the temporary file's size, reads and hashes that many bytes of the
    /// local data without sending them, and sends the rest with `REST` + `STOR` when the server's
    /// `FEAT` lists `REST STREAM`, or with `APPE` otherwise. When the temporary file is longer
    /// than the local file, or the server rejects both ways of resuming, the upload starts again
    /// from byte 0.
    pub fn resume(mut self, yes: bool) -> Self {
        self.resume = yes;
        self
    }

    /// Sets whether the temporary file stays on the server when the upload fails (default
    /// `false`, which deletes it).
    ///
    /// Keep it to resume the upload later with [`UploadOptions::resume`].
    pub fn keep_partial_on_error(mut self, yes: bool) -> Self {
        self.keep_partial_on_error = yes;
        self
    }

    /// Sets where progress reports go.
    pub fn progress(mut self, sink: ProgressSink) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Sets how many times [`crate::FtpsClient::upload_file_with`] reconnects and resumes after
    /// a retryable failure (default 0).
    ///
    /// Retryable failures are lost connections, time-outs, an incomplete transfer and the
    /// replies `421`, `425`, `426`, `450` and `451`. Each retry waits an exponential, jittered
    /// delay starting at about 0.5 s. [`crate::FtpsClient::upload_reader`] cannot read its source
    /// twice and makes no retries.
    pub fn retries(mut self, attempts: u32) -> Self {
        self.retries = attempts;
        self
    }

    /// Sets whether the data is compressed with gzip (DEFLATE level 1) on the way to the
    /// server (default `false`).
    ///
    /// The server stores the compressed stream under the remote name as given, so pass a name
    /// that ends in `.gz`. Images with long runs of zeros cross the network far smaller. The
    /// SHA-256 and the progress reports count the uncompressed source bytes, and the size check
    /// compares the server's `SIZE` with the compressed bytes sent. A compressed upload cannot
    /// continue a partial file, so it cannot be combined with [`UploadOptions::resume`], and
    /// each retry starts again from byte 0.
    pub fn gzip(mut self, yes: bool) -> Self {
        self.gzip = yes;
        self
    }

    /// Sets the file name, in the same remote directory, that the upload is written to before
    /// the rename (default `.<remote_name>.part`).
    ///
    /// [`UploadOptions::resume`] continues the file of this name, so a caller that resumes
    /// across processes can put an identity of the source into the name, and a partial file of
    /// other data is then never continued. The name follows the rules of the remote name, may
    /// be up to 255 bytes long and must differ from the remote name.
    pub fn temporary_name(mut self, name: impl Into<String>) -> Self {
        self.temporary_name = Some(name.into());
        self
    }

    /// Sets whether the source is hashed with SHA-256 on the way (default `true`).
    ///
    /// With `false`, [`crate::Upload::sha256`] is an empty string. The size check after the
    /// upload still runs. At about 2 GB/s per core with SHA-NI, the hash is the largest CPU cost
    /// of an upload that needs no digest.
    pub fn sha256(mut self, yes: bool) -> Self {
        self.sha256 = yes;
        self
    }
}

/// Options for [`crate::FtpsClient::download_file`] and [`crate::FtpsClient::download_to`].
///
/// The default downloads over one connection from byte 0, reports no progress and makes no
/// retry.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    pub(crate) resume: bool,
    pub(crate) segments: usize,
    pub(crate) progress: Option<ProgressSink>,
    pub(crate) retries: u32,
    pub(crate) sha256: bool,
    pub(crate) direct_io: bool,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            resume: false,
            segments: 1,
            progress: None,
            retries: 0,
            sha256: true,
            direct_io: true,
        }
    }
}

impl DownloadOptions {
    /// Creates the default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether [`crate::FtpsClient::download_file`] continues a local partial file
    /// `.<name>.part` with `REST` (default `false`).
    ///
    /// [`crate::FtpsClient::download_to`] always starts at byte 0, because a writer has no
    /// length to resume from, and a segmented download always starts fresh.
    pub fn resume(mut self, yes: bool) -> Self {
        self.resume = yes;
        self
    }

    /// Sets how many connections [`crate::FtpsClient::download_file`] uses (default 1, at most
    /// [`MAX_SEGMENTS`]).
    ///
    /// The connections fetch the file in byte ranges of at least 1 MiB, up to four per
    /// connection, taken in file order. Each extra connection logs in again, and each holds up
    /// to about 1 MiB of buffers, so 16 connections need about 16 MiB more than one. Values above 1 apply to file downloads only;
    /// [`crate::FtpsClient::download_to`] uses one connection.
    pub fn segments(mut self, count: usize) -> Self {
        self.segments = count;
        self
    }

    /// Sets where progress reports go.
    pub fn progress(mut self, sink: ProgressSink) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Sets how many times [`crate::FtpsClient::download_file`] reconnects and tries again
    /// after a retryable failure (default 0).
    ///
    /// Retryable failures are lost connections, time-outs and the replies `421`, `425`, `426`,
    /// `450` and `451`; a byte count that differs from `SIZE` is not retried. A
    /// single-connection download resumes from its partial file, and a segmented download
    /// starts again. Each retry waits an exponential, jittered delay starting at about 0.5 s.
    /// [`crate::FtpsClient::download_to`] makes no retries.
    pub fn retries(mut self, attempts: u32) -> Self {
        self.retries = attempts;
        self
    }

    /// Sets whether [`crate::FtpsClient::download_file`] computes the SHA-256 of the file
    /// (default `true`).
    ///
    /// Hashing costs about 0.5 s of CPU per GiB with SHA-NI, and a segmented download also
    /// reads every segment after the first back from the page cache to hash the file in order.
    /// With `false`, [`crate::Download::sha256`] is an empty string; the format is still
    /// detected. [`crate::FtpsClient::download_to`] always hashes.
    pub fn sha256(mut self, yes: bool) -> Self {
        self.sha256 = yes;
        self
    }

    /// Sets whether a single-connection [`crate::FtpsClient::download_file`] writes with
    /// `O_DIRECT`, past the page cache (default `true`).
    ///
    /// Copying the data into the page cache is the largest CPU cost of a download; writing
    /// past it cut the system CPU time of a 1 GiB download from vsftpd from about 1.6 s to
    /// about 0.8 s on a 2-core VM with an ext4 disk. The downloaded image is then not in the
    /// page cache, so reading it right away goes to the disk. Buffers, offsets and lengths that
    /// are not multiples of 4096 bytes (the end of the file, a resumed download), and file
    /// systems without `O_DIRECT` (tmpfs), use the page cache as with `false`. Segmented
    /// downloads always use the page cache, because their hasher reads the segments back.
    pub fn direct_io(mut self, yes: bool) -> Self {
        self.direct_io = yes;
        self
    }
}
