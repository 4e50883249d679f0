//! Images: the `/1.0/images` endpoints, the image model and registration requests.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::client::{Call, Client};
use crate::error::{Error, Result};
use crate::id::ImageId;
use crate::wait::WaitOptions;

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
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
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
                Ok(())
            }
            ImageSource::HttpUrl(url) => {
                if matches!(url.scheme(), "http" | "https") {
                    Ok(())
                } else {
                    Err(Error::InvalidRequest {
                        field: "http_url",
                        value: url.to_string(),
                        reason: "the URL must use http or https".to_owned(),
                    })
                }
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
    /// Authentication errors ([`Error::Auth`], [`Error::OtpRequired`]), [`Error::Api`] for an error status after
    /// retries, [`Error::Transport`] and [`Error::Decode`].
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
    /// [`Error::InvalidRequest`] before sending when the name is empty, the arch is unknown, an FTP file name has
    /// characters outside letters, digits and `-_+.~^`, or an HTTP source is not `http`/`https`.
    /// [`Error::Api`] when the server rejects the request (for example 422 with the reasons in `errors`), plus the
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
    /// `creating`, `unavailable` and unknown values keep the wait going.
    ///
    /// Dropping the returned future stops the wait and leaves the image as it is.
    ///
    /// # Errors
    ///
    /// - [`Error::ImageFailed`] when the image reaches `failed`, `deleting` or `deleted`; it carries the image.
    /// - [`Error::WaitTimedOut`] when `options.timeout` passes first; it carries the last status seen.
    /// - Any error of [`Images::get`], such as [`Error::NotFound`], ends the wait at once.
    pub async fn wait_until_available(&self, id: &ImageId, options: &WaitOptions) -> Result<Image> {
        crate::wait::wait_until_available(self, id, options).await
    }
}
