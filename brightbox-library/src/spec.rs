//! What to register: the [`ImageSpec`] a caller passes to a workflow.

use std::time::Duration;

use brightbox_api::Arch;

/// The metadata of an image to register.
///
/// `name` and `arch` are required by the API. Everything else is optional;
/// the API applies its own defaults (private, no minimum RAM).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageSpec {
    /// Display name of the image.
    pub name: String,
    /// CPU architecture the image boots on.
    pub arch: Arch,
    /// Free-text description.
    pub description: Option<String>,
    /// Default login user of the image, such as `ubuntu`.
    pub username: Option<String>,
    /// Minimum RAM in MB that a server built from the image needs.
    pub min_ram: Option<u64>,
    /// Whether other accounts can build servers from the image.
    pub public: Option<bool>,
    /// Whether servers built from the image use emulated devices instead
    /// of virtio.
    pub compatibility_mode: Option<bool>,
    /// File name used on the server and sent as `source` when registering.
    /// Defaults to the local file's name.
    pub remote_name: Option<String>,
    /// Whether the workflow waits until the image is available. When false
    /// it returns the image as registered, usually `creating`.
    pub wait: bool,
    /// Maximum time to wait for the image, replacing the timeout of the
    /// library's [`WaitOptions`](brightbox_api::WaitOptions).
    pub wait_timeout: Option<Duration>,
    /// Whether `upload_and_register` returns an image that an earlier run
    /// registered from the same, unchanged file instead of uploading it
    /// again. On by default; see [`ImageSpec::reuse_existing`].
    pub reuse_existing: bool,
}

impl ImageSpec {
    /// Creates a spec with the two required fields.
    pub fn new(name: impl Into<String>, arch: Arch) -> Self {
        Self {
            name: name.into(),
            arch,
            description: None,
            username: None,
            min_ram: None,
            public: None,
            compatibility_mode: None,
            remote_name: None,
            wait: true,
            wait_timeout: None,
            reuse_existing: true,
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the default login user.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the minimum RAM in MB.
    pub fn min_ram(mut self, megabytes: u64) -> Self {
        self.min_ram = Some(megabytes);
        self
    }

    /// Sets whether the image is public.
    pub fn public(mut self, public: bool) -> Self {
        self.public = Some(public);
        self
    }

    /// Sets whether servers built from the image use emulated devices.
    pub fn compatibility_mode(mut self, on: bool) -> Self {
        self.compatibility_mode = Some(on);
        self
    }

    /// Sets whether the workflow waits until the image is available.
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    /// Sets the maximum time to wait for the image to become available.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = Some(timeout);
        self
    }

    /// Sets the file name used on the server instead of the local file's name.
    pub fn remote_name(mut self, name: impl Into<String>) -> Self {
        self.remote_name = Some(name.into());
        self
    }

    /// Sets whether `upload_and_register` reuses an image that an earlier
    /// run registered from the same, unchanged file. On by default.
    ///
    /// Before uploading, the workflow lists the images and reuses one only
    /// when all of these hold:
    ///
    /// - it belongs to the library's account and is not an official image;
    /// - it has this spec's name and arch;
    /// - its status is `creating` or `available`, so `failed`, `deprecated`,
    ///   `deleting` and `deleted` images never match;
    /// - its `source` names the same remote file: the remote name itself for
    ///   an FTPS upload, or a URL whose last path segment is the remote name
    ///   for an `http_url` registration. The query (a temp URL signature)
    ///   is ignored, and so are the rest of the URL path and the route the
    ///   current transport would take, because the transport picks its URL
    ///   only while uploading;
    /// - its `created_at` is at or after the time the local file last
    ///   changed: its modification time and, on Unix, its status change
    ///   time (ctime), whichever is later.
    ///
    /// The image record carries no checksum, so the file's content cannot
    /// be compared with the server's copy. The change time replaces that
    /// comparison: an edited, rewritten or touched file is newer than the image and
    /// is uploaded again. The ctime also catches a file replaced by a copy
    /// that kept an older modification time, such as `cp -p` or `rsync -t`
    /// produce. Description, username and the other optional fields are
    /// not compared, and a reused image keeps its own.
    ///
    /// When several images match, the newest is reused and a warning names
    /// the others. A reused image that is `creating` is waited for as a new
    /// one would be, unless [`ImageSpec::wait`] is false.
    ///
    /// Limits: the API reports `created_at` in whole seconds, so a file
    /// changed in the same second as the image was registered does not
    /// match, and that run registers a second image. The change time comes
    /// from the local clock and `created_at` from the API's clock, so when
    /// the local clock runs behind the API's, a file changed within that
    /// difference after a registration can match an image of its old
    /// content. Two runs that start together both miss each other's image.
    /// Set this to false to always upload and register.
    pub fn reuse_existing(mut self, reuse: bool) -> Self {
        self.reuse_existing = reuse;
        self
    }
}
