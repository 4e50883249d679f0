//! The [`Library`] client and its `upload_and_register` workflow.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use brightbox_api::{AccountId, Client, Image, ImageSource, RegisterImage, WaitOptions};
use brightbox_ftp::FtpsConfig;
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::error::LibraryError;
use crate::spec::ImageSpec;
use crate::transport::{FtpsTransport, ProgressFn, Transport};

/// Entry point to the image library workflows.
///
/// A `Library` wraps an API [`Client`] and a [`Transport`]. It is cheap to
/// clone, and clones share the account choice and the FTP credentials.
#[derive(Clone)]
pub struct Library {
    inner: Arc<Inner>,
}

struct Inner {
    api: Client,
    account_id: Option<AccountId>,
    extra_root_certificates: Vec<Vec<u8>>,
    wait: WaitOptions,
    /// The transport, set by the builder or created on first use from the
    /// account's FTP credentials. The lock makes concurrent first uploads
    /// share one password reset, because each reset invalidates the previous
    /// password.
    transport: Mutex<Option<Arc<dyn Transport>>>,
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("api", &self.inner.api)
            .field("account_id", &self.inner.account_id)
            .field("wait", &self.inner.wait)
            .finish_non_exhaustive()
    }
}

/// Builder of a [`Library`].
#[must_use]
pub struct LibraryBuilder {
    api: Client,
    account_id: Option<AccountId>,
    extra_root_certificates: Vec<Vec<u8>>,
    wait: WaitOptions,
    transport: Option<Arc<dyn Transport>>,
}

impl fmt::Debug for LibraryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibraryBuilder")
            .field("account_id", &self.account_id)
            .field("wait", &self.wait)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl LibraryBuilder {
    /// Sets the account whose library receives uploads.
    ///
    /// Without it the library uses the only account the API client can see,
    /// and fails with [`LibraryError::AmbiguousAccount`] when there are several.
    pub fn account_id(mut self, id: AccountId) -> Self {
        self.account_id = Some(id);
        self
    }

    /// Trusts the CA certificates in `pem` for the FTPS server, besides the
    /// system roots. The emulator's CA is added this way.
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_root_certificates.push(pem.into());
        self
    }

    /// Sets how registration waits for the image to become available.
    pub fn wait_options(mut self, wait: WaitOptions) -> Self {
        self.wait = wait;
        self
    }

    /// Uses `transport` for uploads instead of FTPS with credentials from the API.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Builds the [`Library`].
    pub fn build(self) -> Library {
        Library {
            inner: Arc::new(Inner {
                api: self.api,
                account_id: self.account_id,
                extra_root_certificates: self.extra_root_certificates,
                wait: self.wait,
                transport: Mutex::new(self.transport),
            }),
        }
    }
}

impl Library {
    /// Starts building a library on top of an API client.
    pub fn builder(api: Client) -> LibraryBuilder {
        LibraryBuilder {
            api,
            account_id: None,
            extra_root_certificates: Vec::new(),
            wait: WaitOptions::default(),
            transport: None,
        }
    }

    /// Returns the API client.
    pub fn api(&self) -> &Client {
        &self.inner.api
    }

    /// Uploads the disk image at `path`, registers it and waits until it is
    /// available.
    ///
    /// The workflow first checks the local file and its remote name, then
    /// gets the library FTP credentials through the API (once per
    /// `Library`). It uploads the file into `incoming/` under a temporary
    /// name, checks its size on the server and renames it. Finally it
    /// registers the file by name with `POST /1.0/images` and polls until
    /// the image is `available`.
    ///
    /// Dropping the returned future stops the workflow where it is. A
    /// temporary file may then remain in `incoming/`, but never a file under
    /// the final name that was not verified.
    ///
    /// # Errors
    ///
    /// Returns a [`LibraryError`] naming the failed step. Only
    /// [`LibraryError::Wait`] leaves a registered image behind; its id is in
    /// [`LibraryError::registered_image`].
    pub async fn upload_and_register(
        &self,
        path: impl AsRef<Path>,
        spec: &ImageSpec,
    ) -> Result<Image, LibraryError> {
        self.upload_and_register_with_progress(path, spec, None)
            .await
    }

    /// Runs [`Library::upload_and_register`] and reports the bytes sent so
    /// far to `progress`.
    ///
    /// # Errors
    ///
    /// As [`Library::upload_and_register`].
    pub async fn upload_and_register_with_progress(
        &self,
        path: impl AsRef<Path>,
        spec: &ImageSpec,
        progress: Option<&ProgressFn>,
    ) -> Result<Image, LibraryError> {
        let path = path.as_ref();
        let span =
            tracing::info_span!("upload_and_register", path = %path.display(), name = %spec.name);
        async move {
            let bytes = check_image_file(path).await?;
            let remote_name = remote_name(path, spec)?;
            tracing::info!(bytes, %remote_name, "uploading disk image");

            let transport = self.transport().await?;
            let uploaded = transport
                .upload(path, &remote_name, progress)
                .await
                .map_err(|source| LibraryError::Upload {
                    path: path.to_path_buf(),
                    source,
                })?;
            tracing::info!(remote_path = %uploaded.remote_path, bytes = uploaded.bytes, "upload verified");

            let request = register_request(spec, &uploaded.source);
            let image = self
                .inner
                .api
                .images()
                .register(&request)
                .await
                .map_err(|source| LibraryError::Register {
                    file_name: uploaded.source.clone(),
                    source,
                })?;
            tracing::info!(image_id = %image.id, "image registered, waiting until available");

            let image = self
                .inner
                .api
                .images()
                .wait_until_available(&image.id, &self.inner.wait)
                .await
                .map_err(|source| LibraryError::Wait {
                    image_id: image.id.clone(),
                    source,
                })?;
            tracing::info!(image_id = %image.id, "image available");
            Ok(image)
        }
        .instrument(span)
        .await
    }

    /// Returns the transport, creating the FTPS transport on first use.
    async fn transport(&self) -> Result<Arc<dyn Transport>, LibraryError> {
        let mut slot = self.inner.transport.lock().await;
        if let Some(transport) = slot.as_ref() {
            return Ok(Arc::clone(transport));
        }

        let account = self.account_id().await?;
        let credentials = self
            .inner
            .api
            .accounts()
            .reset_ftp_password(&account)
            .await
            .map_err(|source| LibraryError::Credentials {
                account: account.to_string(),
                source,
            })?;
        let invalid = |source| LibraryError::InvalidCredentials {
            account: account.to_string(),
            source,
        };
        let mut config =
            FtpsConfig::from_host_port(&credentials.host, credentials.user, credentials.password)
                .map_err(invalid)?;
        for pem in &self.inner.extra_root_certificates {
            config = config.add_root_certificate_pem(pem).map_err(invalid)?;
        }

        let transport: Arc<dyn Transport> = Arc::new(FtpsTransport::new(config));
        *slot = Some(Arc::clone(&transport));
        Ok(transport)
    }

    /// Returns the configured account, or the only account the client sees.
    async fn account_id(&self) -> Result<AccountId, LibraryError> {
        if let Some(id) = &self.inner.account_id {
            return Ok(id.clone());
        }
        let accounts = self
            .inner
            .api
            .accounts()
            .list()
            .await
            .map_err(LibraryError::Accounts)?;
        match accounts.as_slice() {
            [] => Err(LibraryError::NoAccount),
            [only] => Ok(only.id.clone()),
            several => Err(LibraryError::AmbiguousAccount {
                accounts: several.iter().map(|a| a.id.to_string()).collect(),
            }),
        }
    }
}

fn register_request(spec: &ImageSpec, file_name: &str) -> RegisterImage {
    let mut request = RegisterImage::new(
        spec.name.clone(),
        spec.arch.clone(),
        ImageSource::FtpUpload(file_name.to_owned()),
    );
    if let Some(description) = &spec.description {
        request = request.description(description.clone());
    }
    if let Some(username) = &spec.username {
        request = request.username(username.clone());
    }
    if let Some(min_ram) = spec.min_ram {
        request = request.min_ram(min_ram);
    }
    if let Some(public) = spec.public {
        request = request.public(public);
    }
    request
}

/// Checks that `path` is a non-empty regular file and returns its length.
async fn check_image_file(path: &Path) -> Result<u64, LibraryError> {
    let invalid = |reason: String| LibraryError::InvalidImageFile {
        path: path.to_path_buf(),
        reason,
    };
    let metadata = tokio::fs::metadata(path)
        .await
        .map_err(|error| invalid(format!("cannot read it ({error}); check the path")))?;
    if !metadata.is_file() {
        return Err(invalid(
            "it is not a regular file; give the path of a disk image file".to_owned(),
        ));
    }
    if metadata.len() == 0 {
        return Err(invalid(
            "it is empty; a disk image holds at least one sector".to_owned(),
        ));
    }
    Ok(metadata.len())
}

/// Returns the file name to upload and register, checked against the
/// characters the library accepts in a `source` name.
fn remote_name(path: &Path, spec: &ImageSpec) -> Result<String, LibraryError> {
    let name = match &spec.remote_name {
        Some(name) => name.clone(),
        None => file_name(path)?,
    };
    validate_source_name(&name)?;
    Ok(name)
}

fn file_name(path: &Path) -> Result<String, LibraryError> {
    let invalid = |reason: &str| LibraryError::InvalidImageFile {
        path: PathBuf::from(path),
        reason: reason.to_owned(),
    };
    let name = path
        .file_name()
        .ok_or_else(|| invalid("the path has no file name"))?;
    name.to_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid("the file name is not valid UTF-8; set ImageSpec::remote_name"))
}

/// Checks a `source` file name: letters, digits and `-_+.~^`, at most 255
/// bytes, not starting with a dot (dot names are temporary upload files).
pub(crate) fn validate_source_name(name: &str) -> Result<(), LibraryError> {
    let invalid = |reason| {
        Err(LibraryError::InvalidRemoteName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > 255 {
        return invalid("it is longer than 255 bytes");
    }
    if name.starts_with('.') {
        return invalid("it starts with a dot, which marks temporary upload files");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_+.~^".contains(c);
    if !name.chars().all(allowed) {
        return invalid("it contains a character other than letters, digits and -_+.~^");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_name_accepts_library_characters() {
        for name in ["slackware.img", "a-b_c+d.e~f^g", "img2", "UPPER.qcow2"] {
            assert!(validate_source_name(name).is_ok(), "{name} was rejected");
        }
    }

    #[test]
    fn source_name_rejects_bad_names() {
        let long = "a".repeat(256);
        for name in [
            "",
            ".hidden.part",
            "has space.img",
            "dir/file",
            "..",
            "tab\tname",
            "é.img",
            &long,
        ] {
            let error = validate_source_name(name).expect_err(name);
            let message = error.to_string();
            assert!(message.contains("remote_name"), "{message}");
        }
    }

    #[test]
    fn remote_name_defaults_to_file_name() {
        let spec = ImageSpec::new("x", brightbox_api::Arch::X86_64);
        let name = remote_name(Path::new("/tmp/disk.qcow2"), &spec).expect("valid name");
        assert_eq!(name, "disk.qcow2");
    }

    #[test]
    fn remote_name_override_is_checked() {
        let spec = ImageSpec::new("x", brightbox_api::Arch::X86_64).remote_name("bad name");
        let error = remote_name(Path::new("/tmp/disk.qcow2"), &spec).expect_err("space");
        assert!(matches!(error, LibraryError::InvalidRemoteName { .. }));
    }
}
