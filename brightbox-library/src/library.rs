//! The [`Library`] client and its `upload_and_register` workflow.

mod reuse;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use brightbox_api::{
    AccountId, Client, Image, ImageId, ImageSource, ImageStatus, RegisterImage, WaitOptions,
    WaitProgress,
};
use brightbox_ftp::FtpsConfig;
use tokio::sync::{Mutex, OnceCell};
use tracing::Instrument;

use crate::error::LibraryError;
use crate::events::{EventFn, Events, JobEvent};
use crate::preflight::preflight;
use crate::spec::ImageSpec;
use crate::transport::{
    FtpsTransport, ProgressFn, Transport, TransportError, UploadedFile, url_without_query,
};
use reuse::{ReuseQuery, last_change};

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
    /// The account chosen on first use when none was configured.
    resolved_account: OnceCell<AccountId>,
    /// The transport, set by the builder or created on first use from the
    /// account's FTP credentials. The lock makes concurrent uploads share one
    /// password reset, because each reset invalidates the previous password.
    transport: Mutex<TransportState>,
}

struct TransportState {
    current: Option<Arc<dyn Transport>>,
    /// Counts password resets, so that uploads rejected with the same
    /// credentials trigger one reset between them, not one each.
    generation: u64,
    /// Whether the caller supplied the transport; it is then never replaced.
    fixed: bool,
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
    ///
    /// # Errors
    ///
    /// Returns [`LibraryError::InvalidRootCertificate`] when `pem` contains no
    /// certificate or one that cannot be a trust anchor. The check runs
    /// here, so a bad file is reported before any password reset or upload.
    pub fn add_root_certificate_pem(
        mut self,
        pem: impl Into<Vec<u8>>,
    ) -> Result<Self, LibraryError> {
        let pem = pem.into();
        FtpsConfig::new("localhost", "check", String::new())
            .add_root_certificate_pem(&pem)
            .map_err(|source| LibraryError::InvalidRootCertificate(Box::new(source)))?;
        self.extra_root_certificates.push(pem);
        Ok(self)
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
                resolved_account: OnceCell::new(),
                transport: Mutex::new(TransportState {
                    fixed: self.transport.is_some(),
                    current: self.transport,
                    generation: 0,
                }),
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

    /// Returns the library's wait schedule, with `timeout` replacing its
    /// timeout when given.
    pub(crate) fn wait_options(&self, timeout: Option<std::time::Duration>) -> WaitOptions {
        let mut wait = self.inner.wait;
        if let Some(timeout) = timeout {
            wait.timeout = timeout;
        }
        wait
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
    /// Unless [`ImageSpec::reuse_existing`] is off, the workflow first looks
    /// for an image that an earlier run registered from the same, unchanged
    /// file, for example one whose wait failed. When it finds one, it skips
    /// the upload and the registration and waits for that image instead.
    ///
    /// Dropping the returned future stops the workflow where it is. A
    /// temporary file may then remain in `incoming/`, but never a file under
    /// the final name that was not verified.
    ///
    /// # Errors
    ///
    /// Returns a [`LibraryError`] naming the failed step. Only
    /// [`LibraryError::Wait`] leaves a registered image behind; its id is in
    /// [`LibraryError::registered_image`]. The look-up of an earlier image
    /// fails with [`LibraryError::ListImages`] when the image list cannot be
    /// fetched.
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
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<Image, LibraryError> {
        let forward = |event: &JobEvent| {
            if let (Some(progress), JobEvent::Uploading { bytes_sent, .. }) = (progress, event) {
                progress(*bytes_sent);
            }
        };
        self.upload_and_register_with_events(path, spec, &forward)
            .await
    }

    /// Runs [`Library::upload_and_register`] and reports each step to
    /// `on_event`: checks, upload progress, registration and each poll.
    ///
    /// The callback runs on the workflow's task, so it should return
    /// quickly; a progress bar update is fine.
    ///
    /// # Errors
    ///
    /// As [`Library::upload_and_register`].
    pub async fn upload_and_register_with_events(
        &self,
        path: impl AsRef<Path>,
        spec: &ImageSpec,
        on_event: &EventFn<'_>,
    ) -> Result<Image, LibraryError> {
        let path = path.as_ref();
        let span =
            tracing::info_span!("upload_and_register", path = %path.display(), name = %spec.name);
        self.run_upload_and_register(path, spec, Events::new(Some(on_event)))
            .instrument(span)
            .await
    }

    async fn run_upload_and_register(
        &self,
        path: &Path,
        spec: &ImageSpec,
        events: Events<'_>,
    ) -> Result<Image, LibraryError> {
        let checked = preflight(path, spec).await?;
        let remote_name = checked.remote_name;
        tracing::info!(bytes = checked.bytes, format = %checked.format, %remote_name, "uploading disk image");
        events.emit(JobEvent::Checked {
            format: checked.format,
            bytes: checked.bytes,
            virtual_size: checked.virtual_size,
        });

        if spec.reuse_existing
            && let Some(image) = self.find_reusable(path, spec, &remote_name).await?
        {
            events.emit(JobEvent::Reused {
                image_id: image.id.clone(),
                status: image.status.clone(),
            });
            return self.finish_reused(image, spec, &events).await;
        }

        let progress = events.upload_progress(checked.bytes);
        let uploaded = self.upload(path, &remote_name, Some(&progress)).await?;
        tracing::info!(remote_path = %uploaded.remote_path, bytes = uploaded.bytes, "upload verified");
        events.emit(JobEvent::Uploaded {
            remote_path: uploaded.remote_path.clone(),
            bytes: uploaded.bytes,
        });

        events.emit(JobEvent::Registering {
            file_name: uploaded.source.clone(),
        });
        let image = self.register(spec, &uploaded).await?;
        events.emit(JobEvent::Registered {
            image_id: image.id.clone(),
        });
        if !spec.wait {
            tracing::info!(image_id = %image.id, "image registered; not waiting");
            events.emit(JobEvent::Done {
                image_id: image.id.clone(),
            });
            return Ok(image);
        }
        tracing::info!(image_id = %image.id, "image registered, waiting until available");

        let image = self.wait_available(&image.id, spec, &events).await?;
        self.remove_staged(&uploaded).await;
        events.emit(JobEvent::Done {
            image_id: image.id.clone(),
        });
        Ok(image)
    }

    /// Polls the image until it is available, reporting each poll.
    async fn wait_available(
        &self,
        image_id: &ImageId,
        spec: &ImageSpec,
        events: &Events<'_>,
    ) -> Result<Image, LibraryError> {
        let wait = self.wait_options(spec.wait_timeout);
        let on_poll = |poll: &WaitProgress<'_, Image>| {
            events.emit(JobEvent::Waiting {
                image_id: poll.current.id.clone(),
                status: poll.current.status.clone(),
                disk_size: poll.current.disk_size,
            });
        };
        let image = self
            .inner
            .api
            .images()
            .wait_until_available_with_progress(image_id, &wait, on_poll)
            .await
            .map_err(|source| LibraryError::Wait {
                image_id: image_id.clone(),
                source,
            })?;
        tracing::info!(image_id = %image.id, "image available");
        Ok(image)
    }

    /// Returns the image that an earlier run registered from the unchanged
    /// file at `path`, as [`ImageSpec::reuse_existing`] defines the match,
    /// or `None` when there is none.
    ///
    /// The look-up is skipped when the file's change time is unknown, or
    /// when the client sees several accounts and none was configured,
    /// because the account's own images then cannot be distinguished from
    /// other accounts' public images.
    async fn find_reusable(
        &self,
        path: &Path,
        spec: &ImageSpec,
        remote_name: &str,
    ) -> Result<Option<Image>, LibraryError> {
        let Some(changed_at) = last_change(path).await else {
            tracing::warn!(
                path = %path.display(),
                "the file's modification time is unknown; uploading without looking for an earlier image"
            );
            return Ok(None);
        };
        let account = match self.account_id().await {
            Ok(account) => account,
            Err(error @ (LibraryError::AmbiguousAccount { .. } | LibraryError::NoAccount)) => {
                tracing::warn!(
                    %error,
                    "cannot distinguish the account's images; uploading without looking for an earlier image (set the account id to enable the look-up)"
                );
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let images = self
            .inner
            .api
            .images()
            .list()
            .await
            .map_err(LibraryError::ListImages)?;

        let query = ReuseQuery {
            spec,
            account: &account,
            remote_name,
            changed_at,
        };
        let mut found = query.matches(images).into_iter();
        let Some(newest) = found.next() else {
            tracing::debug!(%remote_name, %changed_at, "no earlier image of this file");
            return Ok(None);
        };
        let others: Vec<String> = found.map(|image| image.id.to_string()).collect();
        if !others.is_empty() {
            tracing::warn!(
                image_id = %newest.id,
                other_ids = ?others,
                "several images match the unchanged file; reusing the newest"
            );
        }
        tracing::info!(
            image_id = %newest.id,
            status = %newest.status,
            %remote_name,
            %changed_at,
            "reusing the image an earlier run registered from this unchanged file; nothing is uploaded"
        );
        Ok(Some(newest))
    }

    /// Completes the workflow with a reused image: waits for it unless the
    /// spec says not to.
    // NOTE: the staged copy of the earlier run is not removed here, even
    // when the transport removes staged copies after registration, because
    // the transport's copy under this name may belong to another job.
    async fn finish_reused(
        &self,
        image: Image,
        spec: &ImageSpec,
        events: &Events<'_>,
    ) -> Result<Image, LibraryError> {
        let image = if spec.wait && image.status != ImageStatus::Available {
            self.wait_available(&image.id, spec, events).await?
        } else {
            image
        };
        events.emit(JobEvent::Done {
            image_id: image.id.clone(),
        });
        Ok(image)
    }

    /// Asks the transport to remove the staging copy of an upload whose
    /// image is available. A failure is logged, not returned, because the
    /// image itself is complete.
    async fn remove_staged(&self, uploaded: &UploadedFile) {
        let removed = match self.transport().await {
            Ok((transport, _)) => transport.remove_staged(uploaded).await,
            Err(error) => {
                tracing::warn!(%error, "cannot remove the staged upload");
                return;
            }
        };
        if let Err(error) = removed {
            tracing::warn!(%error, remote_path = %uploaded.remote_path, "removing the staged upload failed");
        }
    }

    /// Uploads through the transport. When the FTP server rejects the
    /// login, the password was reset elsewhere since this `Library` got it,
    /// so the workflow resets it once more and tries again, once.
    async fn upload(
        &self,
        path: &Path,
        remote_name: &str,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<UploadedFile, LibraryError> {
        let upload_error = |source: TransportError| LibraryError::Upload {
            path: path.to_path_buf(),
            source,
        };
        let (transport, generation) = self.transport().await?;
        let error = match transport.upload(path, remote_name, progress).await {
            Ok(uploaded) => return Ok(uploaded),
            Err(error) if error.is_authentication() => error,
            Err(error) => return Err(upload_error(error)),
        };

        let Some(transport) = self.renew_transport(generation).await? else {
            return Err(upload_error(error));
        };
        tracing::warn!(%error, "FTP login rejected; uploading again with a new library FTP password");
        transport
            .upload(path, remote_name, progress)
            .await
            .map_err(upload_error)
    }

    /// Returns the transport and its generation, creating the FTPS transport
    /// on first use.
    pub(crate) async fn transport(&self) -> Result<(Arc<dyn Transport>, u64), LibraryError> {
        let mut state = self.inner.transport.lock().await;
        if let Some(transport) = &state.current {
            return Ok((Arc::clone(transport), state.generation));
        }
        let transport = self.ftps_transport().await?;
        state.current = Some(Arc::clone(&transport));
        Ok((transport, state.generation))
    }

    /// Replaces a transport whose credentials the server rejected, unless
    /// another upload already did. Returns `None` for a caller-supplied
    /// transport, which is never replaced.
    pub(crate) async fn renew_transport(
        &self,
        rejected_generation: u64,
    ) -> Result<Option<Arc<dyn Transport>>, LibraryError> {
        let mut state = self.inner.transport.lock().await;
        if state.fixed {
            return Ok(None);
        }
        if state.generation != rejected_generation {
            return Ok(state.current.clone());
        }
        let transport = self.ftps_transport().await?;
        state.current = Some(Arc::clone(&transport));
        state.generation += 1;
        Ok(Some(transport))
    }

    /// Resets the library FTP password and builds an FTPS transport with it.
    async fn ftps_transport(&self) -> Result<Arc<dyn Transport>, LibraryError> {
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
            source: Box::new(source),
        };
        let mut config =
            FtpsConfig::from_host_port(&credentials.host, credentials.user, credentials.password)
                .map_err(invalid)?;
        for pem in &self.inner.extra_root_certificates {
            config = config.add_root_certificate_pem(pem).map_err(invalid)?;
        }
        Ok(Arc::new(FtpsTransport::new(config)))
    }

    /// Registers an uploaded file.
    ///
    /// `POST /1.0/images` is not idempotent: a request that timed out or got
    /// a 5xx may still have created the image. So the ids of images with the
    /// same source are noted before the request, and after such a failure
    /// the workflow looks for a new image with the same source and name. It
    /// sends the request again only when there is none.
    async fn register(
        &self,
        spec: &ImageSpec,
        uploaded: &UploadedFile,
    ) -> Result<Image, LibraryError> {
        let register_error = |source| LibraryError::Register {
            file_name: uploaded.source.clone(),
            source,
        };
        let images = self.inner.api.images();
        let known = images
            .list()
            .await
            .map_err(register_error)?
            .into_iter()
            .filter(|image| same_source(image, uploaded))
            .map(|image| image.id)
            .collect::<Vec<_>>();

        let request = register_request(spec, uploaded);
        let error = match images.register(&request).await {
            Ok(image) => return Ok(image),
            Err(error) if outcome_unknown(&error) => error,
            Err(error) => return Err(register_error(error)),
        };
        tracing::warn!(%error, "registration outcome unknown; looking for the image before sending it again");

        let found = match images.list().await {
            Ok(list) => newest_match(list, &known, spec, uploaded),
            // Without a listing the outcome stays unknown, so resending could
            // create a duplicate image.
            Err(_) => return Err(register_error(error)),
        };
        if let Some(image) = found {
            tracing::info!(image_id = %image.id, "the failed registration had created the image");
            return Ok(image);
        }
        images.register(&request).await.map_err(register_error)
    }

    /// Returns the configured account, or the only account the client can access.
    pub(crate) async fn account_id(&self) -> Result<AccountId, LibraryError> {
        if let Some(id) = &self.inner.account_id {
            return Ok(id.clone());
        }
        self.inner
            .resolved_account
            .get_or_try_init(|| self.only_account())
            .await
            .cloned()
    }

    async fn only_account(&self) -> Result<AccountId, LibraryError> {
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

/// Returns whether a failed `POST /1.0/images` may have created the image.
fn outcome_unknown(error: &brightbox_api::Error) -> bool {
    error.is_retryable()
        || error.status().is_some_and(|status| status >= 500)
        || matches!(error, brightbox_api::Error::Transport { .. })
}

/// Returns whether `image` was registered from `uploaded`: by file name,
/// or by its URL, which the service may store with or without the query.
fn same_source(image: &Image, uploaded: &UploadedFile) -> bool {
    let Some(source) = image.source.as_deref() else {
        return false;
    };
    match &uploaded.http_url {
        Some(url) => source == url.as_str() || source == url_without_query(url),
        None => source == uploaded.source,
    }
}

/// Returns the newest image from `images` that has the given source and
/// name and whose id is not in `known`.
fn newest_match(
    images: Vec<Image>,
    known: &[ImageId],
    spec: &ImageSpec,
    uploaded: &UploadedFile,
) -> Option<Image> {
    images
        .into_iter()
        .filter(|image| !known.contains(&image.id))
        .filter(|image| same_source(image, uploaded))
        .filter(|image| image.name.as_deref() == Some(spec.name.as_str()))
        .filter(|image| !matches!(image.status, ImageStatus::Deleting | ImageStatus::Deleted))
        .max_by_key(|image| image.created_at)
}

fn register_request(spec: &ImageSpec, uploaded: &UploadedFile) -> RegisterImage {
    let source = match &uploaded.http_url {
        Some(url) => ImageSource::HttpUrl(url.clone()),
        None => ImageSource::FtpUpload(uploaded.source.clone()),
    };
    let mut request = RegisterImage::new(spec.name.clone(), spec.arch.clone(), source);
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
    if let Some(compatibility_mode) = spec.compatibility_mode {
        request = request.compatibility_mode(compatibility_mode);
    }
    request
}
