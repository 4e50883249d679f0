//! Images: the `/1.0/images` endpoints, the image model and registration requests.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::client::{Call, Client};
use crate::error::{Error, Result};
use crate::id::{AccountId, ImageId, ServerId, VolumeId};
use crate::wait::{Resource, Verdict, WaitOptions, WaitProgress, poll_until};

open_string_enum!(
    /// Lifecycle status of an image.
    ///
    /// Values the crate does not know are kept in [`ImageStatus::Unknown`], so a status added by the server does
    /// not break decoding.
    ImageStatus, Unknown {
        /// A registration or snapshot is in progress; `disk_size` grows while it runs.
        Creating => "creating",
        /// The image can build servers.
        Available => "available",
        /// Hidden from image lists but still usable by id.
        Deprecated => "deprecated",
        /// Not usable at the moment; undocumented by Brightbox.
        Unavailable => "unavailable",
        /// Being removed.
        Deleting => "deleting",
        /// Removed.
        Deleted => "deleted",
        /// The registration or snapshot did not succeed.
        Failed => "failed",
    }
);
lossless_from_str!(ImageStatus);

impl ImageStatus {
    /// Returns whether servers can be built from an image in this status: `available` or `deprecated`.
    pub fn is_usable(&self) -> bool {
        matches!(self, Self::Available | Self::Deprecated)
    }

    /// Returns whether the image can no longer become usable: `failed`, `deleting` or `deleted`.
    pub fn is_dead(&self) -> bool {
        matches!(self, Self::Failed | Self::Deleting | Self::Deleted)
    }
}

open_string_enum!(
    /// CPU architecture of an image.
    ///
    /// Decoding keeps unknown values in [`Arch::Other`]; parsing user input with [`FromStr`] accepts only the
    /// known values.
    Arch, Other {
        /// 64-bit x86.
        X86_64 => "x86_64",
        /// 32-bit x86.
        I686 => "i686",
    }
);

/// Error returned when parsing an unknown architecture name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid arch {value:?}: expected one of x86_64, i686")]
pub struct ParseArchError {
    value: String,
}

impl ParseArchError {
    /// Rejected input.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl FromStr for Arch {
    type Err = ParseArchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match Self::from_api(s) {
            Self::Other(value) => Err(ParseArchError { value }),
            known => Ok(known),
        }
    }
}

open_string_enum!(
    /// Origin of an image: upload or snapshot.
    SourceType, Unknown {
        /// Registered from an uploaded file or URL.
        Upload => "upload",
        /// Taken from a server or volume.
        Snapshot => "snapshot",
    }
);
lossless_from_str!(SourceType);

/// Image as returned by `GET /1.0/images/{id}`.
///
/// Decoding ignores fields this crate does not know, and optional fields may be `null` or absent. Sizes are in
/// MB, as the API reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Image {
    /// Image id.
    pub id: ImageId,
    /// Display name.
    pub name: Option<String>,
    /// Free-text description.
    pub description: Option<String>,
    /// Lifecycle status.
    pub status: ImageStatus,
    /// CPU architecture.
    pub arch: Arch,
    /// Owning account id, such as `acc-43ks4`; official images belong to a Brightbox account.
    pub owner: Option<String>,
    /// Uploaded file name or URL, or the `srv-` id a snapshot was taken from.
    pub source: Option<String>,
    /// Origin of the image.
    pub source_type: Option<SourceType>,
    /// Trigger of a snapshot: `manual` or `schedule`.
    pub source_trigger: Option<String>,
    /// Size of the full disk in MB; a server type's disk must be at least this large.
    pub virtual_size: Option<u64>,
    /// Stored size in MB; it grows while the image is `creating`.
    pub disk_size: Option<u64>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// Whether Brightbox provides the image.
    #[serde(default, deserialize_with = "null_as_default")]
    pub official: bool,
    /// Whether other accounts can see the image.
    #[serde(default, deserialize_with = "null_as_default")]
    pub public: bool,
    /// Whether the image is locked against deletion.
    #[serde(default, deserialize_with = "null_as_default")]
    pub locked: bool,
    /// Whether servers built from the image use emulated devices instead of virtio.
    #[serde(default, deserialize_with = "null_as_default")]
    pub compatibility_mode: bool,
    /// Default login user, such as `ubuntu`.
    pub username: Option<String>,
    /// Minimum server RAM in MB.
    pub min_ram: Option<u64>,
    /// Licence name for licensed images, such as `Windows 2008`.
    pub licence_name: Option<String>,
    /// API URL of the image.
    pub url: Option<String>,
}

/// Decodes `null` as the type's default value.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Maximum length of an FTP `source` file name in bytes, the common `NAME_MAX` of Unix file systems.
const MAX_SOURCE_NAME_BYTES: usize = 255;

/// Returns `url` as text with any user name and password replaced by `***`.
fn redact_url_userinfo(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // Both setters fail only for URLs without a host, which cannot carry a user name either.
    let _ = shown.set_username("***");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// Data source of an image registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum ImageSource {
    /// File name in the `incoming/` folder of the library FTP server, sent as `source`.
    ///
    /// Brightbox retired the library FTP service in 2023; this source works against servers that still offer it,
    /// such as a local emulator.
    #[serde(rename = "source")]
    FtpUpload(String),
    /// HTTP or HTTPS URL the service downloads without authentication, sent as `http_url`.
    ///
    /// The URL must stay valid until the download ends, so a temporary URL needs enough lifetime.
    #[serde(rename = "http_url")]
    HttpUrl(Url),
    /// Snapshot of a server's disk, sent as `server`.
    #[serde(rename = "server")]
    Server(ServerId),
    /// Snapshot of a volume, sent as `volume`.
    #[serde(rename = "volume")]
    Volume(VolumeId),
}

impl ImageSource {
    /// Checks the value against the rules of the registration service.
    fn validate(&self) -> Result<()> {
        match self {
            ImageSource::FtpUpload(name) => {
                let allowed = |c: char| {
                    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.' | '~' | '^')
                };
                if name.is_empty() {
                    return Err(Error::InvalidRequest {
                        field: "source",
                        value: name.clone(),
                        reason: "the file name is empty; give the name of the uploaded file in incoming/".to_owned(),
                    });
                }
                if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
                    return Err(Error::InvalidRequest {
                        field: "source",
                        value: name.clone(),
                        reason: format!(
                            "the file name contains {bad:?}; use only letters, digits and - _ + . ~ ^, and no folder"
                        ),
                    });
                }
                if name == "." || name == ".." {
                    return Err(Error::InvalidRequest {
                        field: "source",
                        value: name.clone(),
                        reason: "the file name is a folder reference; give the name of the uploaded file in incoming/".to_owned(),
                    });
                }
                if name.len() > MAX_SOURCE_NAME_BYTES {
                    return Err(Error::InvalidRequest {
                        field: "source",
                        value: format!("{}... ({} bytes)", &name[..32], name.len()),
                        reason: format!(
                            "the file name is longer than {MAX_SOURCE_NAME_BYTES} bytes; rename the uploaded file"
                        ),
                    });
                }
                Ok(())
            }
            ImageSource::Server(_) | ImageSource::Volume(_) => Ok(()),
            ImageSource::HttpUrl(url) => {
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(Error::InvalidRequest {
                        field: "http_url",
                        value: redact_url_userinfo(url),
                        reason: "the URL must use http or https".to_owned(),
                    });
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(Error::InvalidRequest {
                        field: "http_url",
                        value: redact_url_userinfo(url),
                        reason: "the image service downloads without authentication and stores the URL in the image; remove the user name and password and use a URL that needs none, such as an Orbit temp URL".to_owned(),
                    });
                }
                Ok(())
            }
        }
    }
}

/// Body of `POST /1.0/images`, built with [`RegisterImage::new`] and the setters.
///
/// Unset optional fields are left out of the JSON so that the server applies its defaults.
///
/// ```
/// use brightbox_api::{Arch, ImageSource, RegisterImage};
///
/// let url = "https://orbit.brightbox.com/v1/acc-43ks4/uploads/disk.img".parse()?;
/// let request = RegisterImage::new("debian-13", Arch::X86_64, ImageSource::HttpUrl(url))
///     .description("Debian 13 base image")
///     .username("debian")
///     .min_ram(1024);
/// assert_eq!(request.name(), "debian-13");
/// # Ok::<(), url::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterImage {
    name: String,
    arch: Arch,
    #[serde(flatten)]
    source: ImageSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_ram: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compatibility_mode: Option<bool>,
}

impl RegisterImage {
    /// Creates a request with the required fields.
    pub fn new(name: impl Into<String>, arch: Arch, source: ImageSource) -> Self {
        Self {
            name: name.into(),
            arch,
            source,
            description: None,
            username: None,
            min_ram: None,
            public: None,
            compatibility_mode: None,
        }
    }

    /// Sets the free-text description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the default login user, such as `ubuntu`.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the minimum server RAM in MB.
    pub fn min_ram(mut self, megabytes: u64) -> Self {
        self.min_ram = Some(megabytes);
        self
    }

    /// Sets whether other accounts can see the image. The server default is private.
    pub fn public(mut self, public: bool) -> Self {
        self.public = Some(public);
        self
    }

    /// Sets whether servers use emulated devices instead of virtio. The server default is virtio.
    pub fn compatibility_mode(mut self, enabled: bool) -> Self {
        self.compatibility_mode = Some(enabled);
        self
    }

    /// Returns the image name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// Returns the data source.
    pub fn source(&self) -> &ImageSource {
        &self.source
    }

    fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::InvalidRequest {
                field: "name",
                value: self.name.clone(),
                reason: "the image name is empty; give a display name".to_owned(),
            });
        }
        if let Some(control) = self.name.chars().find(|c| c.is_control()) {
            return Err(Error::InvalidRequest {
                field: "name",
                value: self.name.clone(),
                reason: format!(
                    "the image name contains the control character {control:?}; remove it"
                ),
            });
        }
        if let Arch::Other(value) = &self.arch {
            return Err(Error::InvalidRequest {
                field: "arch",
                value: value.clone(),
                reason: "use x86_64 or i686".to_owned(),
            });
        }
        self.source.validate()
    }
}

/// Endpoints under `/1.0/images`, from [`Client::images`].
#[derive(Debug, Clone, Copy)]
pub struct Images<'a> {
    client: &'a Client,
}

impl<'a> Images<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Lists the images visible to the account: its own, plus official and public images of all accounts.
    ///
    /// # Errors
    ///
    /// Authentication errors ([`Error::Unauthenticated`], [`Error::TwoFactorRequired`]), the status errors
    /// ([`Error::Forbidden`], [`Error::Server`], [`Error::RateLimited`] and others) after retries,
    /// [`Error::Transport`] and [`Error::Decode`].
    #[tracing::instrument(name = "brightbox_api.images.list", skip_all)]
    pub async fn list(&self) -> Result<Vec<Image>> {
        let call = Call::get("1.0/images".to_owned(), "image list".to_owned());
        self.client.call_json(&call).await
    }

    /// Fetches one image.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the image does not exist or is not visible, and the errors of [`Images::list`].
    #[tracing::instrument(name = "brightbox_api.images.get", skip_all, fields(image_id = %id))]
    pub async fn get(&self, id: &ImageId) -> Result<Image> {
        let call = Call::get(format!("1.0/images/{id}"), format!("image {id}"));
        self.client.call_json(&call).await
    }

    /// Registers a new image (`POST /1.0/images`) and returns it, normally in status `creating`.
    ///
    /// The request is sent once and never retried automatically, because a repeat could create a second image.
    /// Follow with [`Images::wait_until_available`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] before sending when the name is empty or contains a control character, the arch is
    /// unknown, an FTP file name has characters outside letters, digits and `-_+.~^` or is longer than 255 bytes,
    /// or an HTTP source is not `http`/`https` or contains a user name or password.
    /// [`Error::Validation`] when the server rejects the request (for example 422 with the reasons in `errors`), plus the
    /// authentication, transport and decode errors of [`Images::list`].
    #[tracing::instrument(name = "brightbox_api.images.register", skip_all, fields(name = %request.name))]
    pub async fn register(&self, request: &RegisterImage) -> Result<Image> {
        request.validate()?;
        let body = serde_json::to_value(request).map_err(|source| Error::InvalidRequest {
            field: "body",
            value: request.name.clone(),
            reason: format!("cannot encode the request as JSON: {source}"),
        })?;
        let call = Call::post(
            "1.0/images".to_owned(),
            "image collection".to_owned(),
            Some(body),
        );
        let image: Image = self.client.call_json(&call).await?;
        tracing::info!(image_id = %image.id, status = %image.status, "registered image");
        Ok(image)
    }

    /// Polls an image until it is usable; see [`WaitOptions`] for the schedule.
    ///
    /// Returns the image once its status is `available`, or `deprecated`, which is also usable. Statuses
    /// `creating`, `unavailable` and unknown values keep the wait going; unknown ones are logged with
    /// `tracing::warn!`.
    ///
    /// Dropping the returned future stops the wait and leaves the image as it is.
    ///
    /// # Errors
    ///
    /// - [`Error::WaitFailed`] when the image reaches `failed`, `deleting` or `deleted`; it carries the image.
    /// - [`Error::WaitTimedOut`] when `options.timeout` passes first; it carries the last poll.
    /// - Any error of [`Images::get`], such as [`Error::NotFound`], ends the wait at once.
    pub async fn wait_until_available(&self, id: &ImageId, options: &WaitOptions) -> Result<Image> {
        self.wait_until_available_with_progress(id, options, |_| {})
            .await
    }

    /// Polls an image like [`wait_until_available`](Self::wait_until_available) and calls `on_poll` after every
    /// poll, for example to show `disk_size` growing while the image is `creating`.
    ///
    /// # Errors
    ///
    /// The errors of [`Images::wait_until_available`].
    #[tracing::instrument(name = "brightbox_api.images.wait_until_available", skip_all, fields(image_id = %id))]
    pub async fn wait_until_available_with_progress(
        &self,
        id: &ImageId,
        options: &WaitOptions,
        on_poll: impl FnMut(&WaitProgress<'_, Image>),
    ) -> Result<Image> {
        self.wait_with(
            id,
            options,
            "available",
            |status| status.is_usable(),
            false,
            on_poll,
        )
        .await
    }

    /// Polls an image until its status is `target`, such as [`ImageStatus::Deleted`] after
    /// [`destroy`](Self::destroy).
    ///
    /// `failed`, `deleting` and `deleted` end the wait unless the target is one of them; while waiting for
    /// `deleted`, `deleting` keeps the wait going.
    ///
    /// # Errors
    ///
    /// The errors of [`Images::wait_until_available`].
    #[tracing::instrument(name = "brightbox_api.images.wait_for_status", skip_all, fields(image_id = %id, target = %target))]
    pub async fn wait_for_status(
        &self,
        id: &ImageId,
        target: ImageStatus,
        options: &WaitOptions,
    ) -> Result<Image> {
        let target_name = target.as_str().to_owned();
        let deleting_is_progress = target == ImageStatus::Deleted;
        self.wait_with(
            id,
            options,
            &target_name,
            |status| *status == target,
            deleting_is_progress,
            |_| {},
        )
        .await
    }

    async fn wait_with(
        &self,
        id: &ImageId,
        options: &WaitOptions,
        target: &str,
        is_target: impl Fn(&ImageStatus) -> bool,
        deleting_is_progress: bool,
        mut on_poll: impl FnMut(&WaitProgress<'_, Image>),
    ) -> Result<Image> {
        let classify = |image: &Image| {
            if is_target(&image.status) {
                Verdict::Done
            } else if deleting_is_progress && image.status == ImageStatus::Deleting {
                Verdict::Transient
            } else if image.status.is_dead() {
                Verdict::Terminal
            } else if matches!(image.status, ImageStatus::Unknown(_)) {
                Verdict::Unknown
            } else {
                Verdict::Transient
            }
        };
        poll_until(
            options,
            target,
            || self.get(id),
            classify,
            Resource::Image,
            |progress: &WaitProgress<'_, Image>| {
                tracing::debug!(
                    poll = progress.poll,
                    status = %progress.current.status,
                    disk_size = progress.current.disk_size,
                    "polled image"
                );
                on_poll(progress);
            },
        )
        .await
    }

    /// Changes an image's metadata or status (`PUT /1.0/images/{id}`) and returns the updated image.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] before sending when the update sets nothing or the new name contains a control
    /// character, [`Error::Validation`] when the API
    /// rejects a value, [`Error::NotFound`], and the errors of [`Images::list`].
    #[tracing::instrument(name = "brightbox_api.images.update", skip_all, fields(image_id = %id))]
    pub async fn update(&self, id: &ImageId, update: &UpdateImage) -> Result<Image> {
        let body = serde_json::to_value(update).map_err(|source| Error::InvalidRequest {
            field: "body",
            value: id.to_string(),
            reason: format!("cannot encode the update as JSON: {source}"),
        })?;
        if let Some(name) = &update.name
            && let Some(control) = name.chars().find(|c| c.is_control())
        {
            return Err(Error::InvalidRequest {
                field: "name",
                value: name.clone(),
                reason: format!(
                    "the image name contains the control character {control:?}; remove it"
                ),
            });
        }
        if body.as_object().is_some_and(|fields| fields.is_empty()) {
            return Err(Error::InvalidRequest {
                field: "body",
                value: id.to_string(),
                reason: "the update sets no field; call at least one UpdateImage setter".to_owned(),
            });
        }
        let call = Call::put(
            format!("1.0/images/{id}"),
            format!("image {id}"),
            Some(body),
        );
        self.client.call_json(&call).await
    }

    /// Deletes an image (`DELETE /1.0/images/{id}`). The API returns 202 and removes it in the background. A
    /// locked image cannot be deleted.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::Conflict`], [`Error::Forbidden`] or [`Error::Validation`] when the image is
    /// locked (the API documents no fixed status for that); and the errors of [`Images::list`].
    #[tracing::instrument(name = "brightbox_api.images.destroy", skip_all, fields(image_id = %id))]
    pub async fn destroy(&self, id: &ImageId) -> Result<()> {
        let call = Call::delete(format!("1.0/images/{id}"), format!("image {id}"));
        let reply = self.client.execute(&call).await?;
        tracing::info!(status = reply.status, "image deletion accepted");
        Ok(())
    }

    /// Locks an image against deletion (`PUT /1.0/images/{id}/lock_resource`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] and the errors of [`Images::list`].
    #[tracing::instrument(name = "brightbox_api.images.lock", skip_all, fields(image_id = %id))]
    pub async fn lock(&self, id: &ImageId) -> Result<()> {
        let call = Call::put(
            format!("1.0/images/{id}/lock_resource"),
            format!("image {id}"),
            None,
        );
        self.client.execute(&call).await?;
        Ok(())
    }

    /// Unlocks an image (`PUT /1.0/images/{id}/unlock_resource`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] and the errors of [`Images::list`].
    #[tracing::instrument(name = "brightbox_api.images.unlock", skip_all, fields(image_id = %id))]
    pub async fn unlock(&self, id: &ImageId) -> Result<()> {
        let call = Call::put(
            format!("1.0/images/{id}/unlock_resource"),
            format!("image {id}"),
            None,
        );
        self.client.execute(&call).await?;
        Ok(())
    }

    /// Lists the images and keeps those that match `filter`. The API has no server-side filters, so this
    /// fetches the whole list.
    ///
    /// With [`ImageFilter::mine_only`], the caller's account is the client's
    /// [`account_id`](crate::ClientBuilder::account_id) or, when none is set, the account returned by
    /// `GET /1.0/account`.
    ///
    /// # Errors
    ///
    /// The errors of [`Images::list`] and, for `mine_only` without an account id, of
    /// [`Accounts::current`](crate::Accounts::current).
    #[tracing::instrument(name = "brightbox_api.images.list_filtered", skip_all)]
    pub async fn list_filtered(&self, filter: &ImageFilter) -> Result<Vec<Image>> {
        let my_account = if filter.mine_only {
            match self.client.account_id() {
                Some(id) => Some(id.clone()),
                None => Some(self.client.accounts().current().await?.id),
            }
        } else {
            None
        };
        let images = self.list().await?;
        Ok(images
            .into_iter()
            .filter(|image| filter.matches(image, my_account.as_ref()))
            .collect())
    }

    /// Returns the matching image with the latest `created_at`, or `None` when none matches.
    ///
    /// Unless the filter sets a status, only usable images (`available` or `deprecated`) are considered.
    ///
    /// Images without `created_at` come last; equal times are ordered by id so the result is stable. Names are
    /// never used for ordering, because names such as `ubuntu-24.04` and `ubuntu-24.10` need not sort by date.
    ///
    /// # Errors
    ///
    /// The errors of [`Images::list_filtered`].
    pub async fn most_recent(&self, filter: &ImageFilter) -> Result<Option<Image>> {
        let images = self.list_filtered(filter).await?;
        // Without a status in the filter, only images that can build a
        // server are candidates: a newer `failed` or `creating` image must
        // not shadow an older available one.
        let usable_only = filter.status.is_none();
        Ok(most_recent(
            images
                .into_iter()
                .filter(|image| !usable_only || image.status.is_usable())
                .collect(),
        ))
    }
}

/// Returns the image with the latest `created_at`, breaking ties by id.
pub(crate) fn most_recent(images: Vec<Image>) -> Option<Image> {
    images.into_iter().max_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.id.cmp(&b.id))
    })
}

/// Body of `PUT /1.0/images/{id}`: only the fields set are sent.
///
/// ```
/// use brightbox_api::UpdateImage;
///
/// let update = UpdateImage::new().name("debian-13-old").deprecated(true);
/// # let _ = update;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateImage {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arch: Option<Arch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<ImageStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compatibility_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_ram: Option<u64>,
}

impl UpdateImage {
    /// Creates an update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
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

    /// Sets the architecture.
    pub fn arch(mut self, arch: Arch) -> Self {
        self.arch = Some(arch);
        self
    }

    /// Deprecates the image (status `deprecated`: hidden from lists, still usable by id) or, with `false`, makes
    /// it `available` again.
    pub fn deprecated(mut self, deprecated: bool) -> Self {
        self.status = Some(if deprecated {
            ImageStatus::Deprecated
        } else {
            ImageStatus::Available
        });
        self
    }

    /// Sets whether other accounts can see the image.
    pub fn public(mut self, public: bool) -> Self {
        self.public = Some(public);
        self
    }

    /// Sets whether servers use emulated devices instead of virtio.
    pub fn compatibility_mode(mut self, enabled: bool) -> Self {
        self.compatibility_mode = Some(enabled);
        self
    }

    /// Sets the minimum server RAM in MB.
    pub fn min_ram(mut self, megabytes: u64) -> Self {
        self.min_ram = Some(megabytes);
        self
    }
}

/// Name condition of an [`ImageFilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NamePattern {
    /// The name contains this text (case-sensitive).
    Contains(String),
    /// The whole name matches this glob: `*` matches any run of characters, `?` one character.
    Glob(String),
}

impl NamePattern {
    /// Returns whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Contains(text) => name.contains(text.as_str()),
            NamePattern::Glob(pattern) => glob_matches(pattern, name),
        }
    }
}

/// Matches `text` against a glob with `*` and `?`, by characters.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Position after the last `*` and the text position it was tried at, for backtracking.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((after_star, tried)) => {
                    p = after_star;
                    t = tried + 1;
                    star = Some((after_star, tried + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Conditions applied client side to the image list; every condition set must hold.
///
/// ```
/// use brightbox_api::{Arch, ImageFilter, ImageStatus, NamePattern};
///
/// let filter = ImageFilter::new()
///     .official(true)
///     .arch(Arch::X86_64)
///     .status(ImageStatus::Available)
///     .name(NamePattern::Glob("ubuntu-noble-*".to_owned()));
/// # let _ = filter;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFilter {
    owner: Option<AccountId>,
    mine_only: bool,
    status: Option<ImageStatus>,
    official: Option<bool>,
    public: Option<bool>,
    arch: Option<Arch>,
    source_type: Option<SourceType>,
    source_trigger: Option<String>,
    name: Option<NamePattern>,
    username: Option<String>,
}

impl ImageFilter {
    /// Creates a filter that matches every image.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps images owned by this account.
    pub fn owner(mut self, owner: AccountId) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Keeps only the caller's own images; see [`Images::list_filtered`] for how the account is found.
    pub fn mine_only(mut self, mine_only: bool) -> Self {
        self.mine_only = mine_only;
        self
    }

    /// Keeps images in this status.
    pub fn status(mut self, status: ImageStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Keeps official (Brightbox-provided) images, or with `false` the others.
    pub fn official(mut self, official: bool) -> Self {
        self.official = Some(official);
        self
    }

    /// Keeps public images, or with `false` private ones.
    pub fn public(mut self, public: bool) -> Self {
        self.public = Some(public);
        self
    }

    /// Keeps images of this architecture.
    pub fn arch(mut self, arch: Arch) -> Self {
        self.arch = Some(arch);
        self
    }

    /// Keeps uploads or snapshots.
    pub fn source_type(mut self, source_type: SourceType) -> Self {
        self.source_type = Some(source_type);
        self
    }

    /// Keeps snapshots with this trigger: `manual` or `schedule`.
    pub fn source_trigger(mut self, trigger: impl Into<String>) -> Self {
        self.source_trigger = Some(trigger.into());
        self
    }

    /// Keeps images whose name matches.
    pub fn name(mut self, pattern: NamePattern) -> Self {
        self.name = Some(pattern);
        self
    }

    /// Keeps images whose default login user is this one.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Returns whether `image` meets every condition. `my_account` is used by
    /// [`mine_only`](Self::mine_only); with `None`, `mine_only` matches nothing.
    pub fn matches(&self, image: &Image, my_account: Option<&AccountId>) -> bool {
        let owner = image.owner.as_deref();
        if let Some(expected) = &self.owner
            && owner != Some(expected.as_str())
        {
            return false;
        }
        if self.mine_only && (my_account.is_none() || owner != my_account.map(AccountId::as_str)) {
            return false;
        }
        if self.status.as_ref().is_some_and(|s| *s != image.status)
            || self.official.is_some_and(|o| o != image.official)
            || self.public.is_some_and(|p| p != image.public)
            || self.arch.as_ref().is_some_and(|a| *a != image.arch)
        {
            return false;
        }
        if let Some(expected) = &self.source_type
            && image.source_type.as_ref() != Some(expected)
        {
            return false;
        }
        if let Some(expected) = &self.source_trigger
            && image.source_trigger.as_deref() != Some(expected.as_str())
        {
            return false;
        }
        if let Some(pattern) = &self.name
            && !image
                .name
                .as_deref()
                .is_some_and(|name| pattern.matches(name))
        {
            return false;
        }
        if let Some(expected) = &self.username
            && image.username.as_deref() != Some(expected.as_str())
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, created_at: Option<&str>) -> Image {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "status": "available",
            "arch": "x86_64",
            "created_at": created_at,
        }))
        .expect("test image decodes")
    }

    #[test]
    fn most_recent_puts_missing_dates_last() {
        let images = vec![
            image("img-aaaaa", None),
            image("img-bbbbb", Some("2025-01-01T00:00:00Z")),
            image("img-ccccc", Some("2024-01-01T00:00:00Z")),
        ];
        assert_eq!(
            most_recent(images).map(|i| i.id.into_string()).as_deref(),
            Some("img-bbbbb")
        );

        let undated = vec![image("img-bbbbb", None), image("img-aaaaa", None)];
        assert_eq!(
            most_recent(undated).map(|i| i.id.into_string()).as_deref(),
            Some("img-bbbbb")
        );
        assert!(most_recent(Vec::new()).is_none());
    }

    #[test]
    fn glob_matches_stars_and_marks() {
        for (pattern, text) in [
            ("ubuntu-*", "ubuntu-noble-24.04"),
            ("*-amd64", "debian-13-amd64"),
            ("*", ""),
            ("deb?an", "debian"),
            ("a*b*c", "axxbyyc"),
            ("a*b", "abab"),
        ] {
            assert!(glob_matches(pattern, text), "{pattern} vs {text}");
        }
        for (pattern, text) in [
            ("ubuntu-*", "xubuntu-1"),
            ("deb?an", "debiian"),
            ("a*b", "abac"),
            ("", "x"),
        ] {
            assert!(!glob_matches(pattern, text), "{pattern} vs {text}");
        }
    }
}
