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
}
