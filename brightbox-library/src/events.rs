//! Progress of a whole workflow, reported as [`JobEvent`]s.

use std::time::Instant;

use brightbox_api::{ImageId, ImageStatus};
use brightbox_ftp::ImageFormat;

/// Callback that receives each [`JobEvent`] of a workflow.
pub type EventFn<'a> = dyn Fn(&JobEvent) + Send + Sync + 'a;

/// One step of `upload_and_register`, in the order they happen.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobEvent {
    /// The local file and the metadata passed the checks.
    Checked {
        /// Format detected from the file's first bytes.
        format: ImageFormat,
        /// Length of the file in bytes.
        bytes: u64,
        /// Disk size the image describes, in bytes, where the format shows it.
        virtual_size: Option<u64>,
    },
    /// An image that an earlier run registered from the same, unchanged
    /// file was found, so nothing is uploaded or registered. Waiting and
    /// done events for that image follow. See
    /// [`ImageSpec::reuse_existing`](crate::ImageSpec::reuse_existing).
    Reused {
        /// Id of the existing image.
        image_id: ImageId,
        /// Status of the image when it was found: `creating` or `available`.
        status: ImageStatus,
    },
    /// Bytes are being sent. Sent at most once per upload chunk.
    Uploading {
        /// Bytes sent so far.
        bytes_sent: u64,
        /// Length of the file in bytes.
        total: u64,
        /// Average rate since the upload started, in bytes per second.
        bytes_per_second: f64,
    },
    /// The upload finished and its size on the server matched.
    Uploaded {
        /// Path of the file on the server.
        remote_path: String,
        /// Bytes confirmed on the server.
        bytes: u64,
    },
    /// The registration request is being sent.
    Registering {
        /// File name sent as `source`.
        file_name: String,
    },
    /// The image exists.
    Registered {
        /// Id of the new image.
        image_id: ImageId,
    },
    /// One poll of the image while waiting for it.
    Waiting {
        /// Id of the image.
        image_id: ImageId,
        /// Status at this poll.
        status: ImageStatus,
        /// Stored size in MB, which grows while the image is `creating`.
        disk_size: Option<u64>,
    },
    /// The image is available (or registered, when not waiting).
    Done {
        /// Id of the image.
        image_id: ImageId,
    },
}

/// Sends events to an optional callback and turns byte counts into
/// [`JobEvent::Uploading`] events.
pub(crate) struct Events<'a> {
    callback: Option<&'a EventFn<'a>>,
}

impl<'a> Events<'a> {
    pub(crate) fn new(callback: Option<&'a EventFn<'a>>) -> Self {
        Self { callback }
    }

    pub(crate) fn emit(&self, event: JobEvent) {
        if let Some(callback) = self.callback {
            callback(&event);
        }
    }

    /// Returns a byte-count callback for the transport that reports
    /// [`JobEvent::Uploading`] with the average rate.
    pub(crate) fn upload_progress(&self, total: u64) -> impl Fn(u64) + Send + Sync + 'a {
        let callback = self.callback;
        let started = Instant::now();
        move |bytes_sent| {
            if let Some(callback) = callback {
                let seconds = started.elapsed().as_secs_f64();
                let bytes_per_second = if seconds > 0.0 {
                    bytes_sent as f64 / seconds
                } else {
                    0.0
                };
                callback(&JobEvent::Uploading {
                    bytes_sent,
                    total,
                    bytes_per_second,
                });
            }
        }
    }
}
