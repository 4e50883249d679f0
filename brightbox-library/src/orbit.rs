//! Uploads through Orbit, Brightbox's Swift-compatible object store, and
//! registration by temp URL: the route of today's Brightbox.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use brightbox_api::Client;
use brightbox_ftp::ImageFormat;
use brightbox_orbit::{
    BoxError, DownloadOptions, OrbitClient, OrbitError, TempUrlMethod, TokenProvider,
    TransferProgress, UploadOptions, temp_url_expiry_for,
};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use url::Url;

use crate::transport::{
    DownloadedFile, ProgressFn, Transport, TransportError, UploadedFile, forward_progress,
    prepare_private_part,
};

/// Default container for staged uploads.
pub const DEFAULT_STAGING_CONTAINER: &str = "image-uploads";

/// Minimum rate at which the service is assumed to fetch a staged image, in
/// bytes per second (10 MB/s). A temp URL lives long enough for a fetch at
/// this rate, so a slower fetch may outlive it.
pub const TEMP_URL_MIN_FETCH_RATE: u64 = 10_000_000;
/// Time added to every temp URL's lifetime for queueing at the service
/// before its fetch starts.
pub const TEMP_URL_MARGIN: Duration = Duration::from_secs(15 * 60);
/// Maximum lifetime of a temp URL, whatever the image size: 24 hours. A
/// leaked URL grants read access to the image until it expires, so the
/// lifetime stays bounded even for images of hundreds of GB.
pub const TEMP_URL_MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Returns the lifetime of the temp URL that registers an image of `bytes`:
/// the time to fetch it at [`TEMP_URL_MIN_FETCH_RATE`] plus
/// [`TEMP_URL_MARGIN`], at most [`TEMP_URL_MAX_LIFETIME`].
pub fn temp_url_lifetime(bytes: u64) -> Duration {
    temp_url_expiry_for(bytes, TEMP_URL_MIN_FETCH_RATE, TEMP_URL_MARGIN).min(TEMP_URL_MAX_LIFETIME)
}

/// Stages images in an Orbit container and registers them by temp URL.
///
/// An upload first ensures the container exists. It uploads the file, as a
/// Static Large Object when it is larger than one segment, and checks each
/// segment's MD5. It then makes sure the account has a temp URL key, setting
/// one only when there is none, because changing it breaks other users'
/// URLs. It returns a `GET` temp URL whose lifetime covers the service's
/// download, as [`temp_url_lifetime`] computes it.
#[derive(Clone)]
pub struct OrbitTransport {
    client: OrbitClient,
    container: String,
    segment_size: Option<u64>,
    remove_after_registration: bool,
}

impl OrbitTransport {
    /// Creates a transport over an Orbit client.
    pub fn new(client: OrbitClient) -> Self {
        Self {
            client,
            container: DEFAULT_STAGING_CONTAINER.to_owned(),
            segment_size: None,
            remove_after_registration: false,
        }
    }

    /// Creates a transport for the Orbit account at `storage_url` (such as
    /// `https://orbit.brightbox.com/v1/acc-xxxxx/`) that authenticates with
    /// the API client's OAuth token.
    ///
    /// # Errors
    ///
    /// Returns [`TransportError::Other`] when the Orbit client cannot be
    /// built, for example from an invalid URL.
    pub fn from_api(api: &Client, storage_url: Url) -> Result<Self, TransportError> {
        let client = OrbitClient::builder()
            .storage_url(storage_url)
            .token_provider(Arc::new(ApiToken(api.clone())))
            .build()
            .map_err(|source| orbit_error(Path::new(""), source))?;
        Ok(Self::new(client))
    }

    /// Sets the container for staged uploads.
    pub fn container(mut self, name: impl Into<String>) -> Self {
        self.container = name.into();
        self
    }

    /// Sets the segment size for files larger than one segment.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = Some(bytes);
        self
    }

    /// Sets whether the staged object is deleted once the image is available.
    pub fn remove_after_registration(mut self, remove: bool) -> Self {
        self.remove_after_registration = remove;
        self
    }
}

impl fmt::Debug for OrbitTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrbitTransport")
            .field("storage_url", &self.client.storage_url().as_str())
            .field("container", &self.container)
            .field("segment_size", &self.segment_size)
            .field("remove_after_registration", &self.remove_after_registration)
            .finish()
    }
}

#[async_trait]
impl Transport for OrbitTransport {
    async fn upload(
        &self,
        local: &Path,
        remote_name: &str,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<UploadedFile, TransportError> {
        let failed = |source| orbit_error(local, source);
        self.client
            .ensure_container(&self.container)
            .await
            .map_err(failed)?;

        let (sender, sent) = tokio::sync::watch::channel(0_u64);
        let mut options =
            UploadOptions::default()
                .resume(true)
                .on_progress(move |report: TransferProgress| {
                    let _ = sender.send(report.bytes_done);
                });
        if let Some(bytes) = self.segment_size {
            options = options.segment_size(bytes);
        }

        let upload = self
            .client
            .upload_file(&self.container, remote_name, local, &options);
        let result = forward_progress(upload, sent, progress).await;
        let uploaded = result.map_err(failed)?;
        if let Some(progress) = progress {
            progress(uploaded.size);
        }

        let key = self.client.ensure_temp_url_key().await.map_err(failed)?;
        let lifetime = temp_url_lifetime(uploaded.size);
        let url = self
            .client
            .temp_url(
                TempUrlMethod::Get,
                &self.container,
                remote_name,
                &key,
                SystemTime::now() + lifetime,
            )
            .map_err(failed)?;
        tracing::info!(
            container = %self.container,
            object = remote_name,
            bytes = uploaded.size,
            lifetime_s = lifetime.as_secs(),
            "staged in Orbit; registering by temp URL"
        );

        let remote_path = format!("{}/{}", self.container, remote_name);
        Ok(UploadedFile::new(remote_name, remote_path, uploaded.size).with_http_url(url))
    }

    /// Downloads `images/<image id>` from the account's read-only `images`
    /// container, decoding Orbit's LZ4-compressed form into a sparse raw
    /// file. Other paths are not supported. `resume` has no effect: a
    /// decoded download starts again from the beginning.
    async fn download(
        &self,
        remote_path: &str,
        local: &Path,
        resume: bool,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<DownloadedFile, TransportError> {
        let _ = resume;
        let Some(image_id) = remote_path.strip_prefix("images/") else {
            return Err(TransportError::Unsupported {
                operation: "Orbit download outside the images container",
            });
        };
        let mut part_name = local.file_name().unwrap_or_default().to_os_string();
        part_name.push(".part");
        prepare_private_part(&local.with_file_name(part_name), local, "Orbit").await?;
        let (sender, received) = tokio::sync::watch::channel(0_u64);
        let options = DownloadOptions::default().on_progress(move |report: TransferProgress| {
            let _ = sender.send(report.bytes_done);
        });

        let download = self.client.download_snapshot(image_id, local, &options);
        let result = forward_progress(download, received, progress).await;
        let snapshot = result.map_err(|source| orbit_error(local, source))?;

        let path = snapshot.path.clone();
        let (sha256, format) = tokio::task::spawn_blocking(move || hash_and_detect(&path))
            .await
            .map_err(|error| TransportError::Other {
                transport: "Orbit",
                local: local.to_path_buf(),
                source: Box::new(error),
            })?
            .map_err(|error| TransportError::Other {
                transport: "Orbit",
                local: local.to_path_buf(),
                source: Box::new(error),
            })?;
        Ok(DownloadedFile::new(
            snapshot.path,
            snapshot.size,
            sha256,
            format,
        ))
    }

    async fn remove_staged(&self, uploaded: &UploadedFile) -> Result<(), TransportError> {
        if !self.remove_after_registration {
            return Ok(());
        }
        self.client
            .delete_object(&self.container, &uploaded.source)
            .await
            .map_err(|source| orbit_error(Path::new(&uploaded.remote_path), source))
    }
}

/// Returns the SHA-256 (lowercase hex) and the format of a local file.
fn hash_and_detect(path: &Path) -> std::io::Result<(String, ImageFormat)> {
    use std::io::Read;

    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 1 << 20];
    let mut head = Vec::new();
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        let chunk = &buffer[..read];
        if head.len() < 8 {
            head.extend_from_slice(&chunk[..chunk.len().min(8 - head.len())]);
        }
        hasher.update(chunk);
    }
    Ok((hex::encode(hasher.finalize()), ImageFormat::detect(&head)))
}

fn orbit_error(local: &Path, source: OrbitError) -> TransportError {
    TransportError::Other {
        transport: "Orbit",
        local: local.to_path_buf(),
        source: Box::new(source),
    }
}

/// Supplies the API client's OAuth token to Orbit, which accepts the same
/// token in `X-Auth-Token`.
struct ApiToken(Client);

#[async_trait]
impl TokenProvider for ApiToken {
    async fn token(&self) -> Result<SecretString, BoxError> {
        Ok(self.0.access_token().await?)
    }

    async fn refresh(&self) -> Result<SecretString, BoxError> {
        let rejected = self.0.access_token().await?;
        self.0.invalidate_access_token(&rejected).await;
        Ok(self.0.access_token().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_of_empty_image_is_margin() {
        assert_eq!(temp_url_lifetime(0), TEMP_URL_MARGIN);
    }

    #[test]
    fn lifetime_grows_with_size() {
        // 10 GB at 10 MB/s is 1000 s.
        assert_eq!(
            temp_url_lifetime(10_000_000_000),
            TEMP_URL_MARGIN + Duration::from_secs(1_000)
        );
        // A partial second of transfer rounds up.
        assert_eq!(
            temp_url_lifetime(10_000_001),
            TEMP_URL_MARGIN + Duration::from_secs(2)
        );
    }

    #[test]
    fn lifetime_is_capped() {
        // 1 TB at 10 MB/s would be 100 000 s, more than the cap.
        assert_eq!(temp_url_lifetime(1_000_000_000_000), TEMP_URL_MAX_LIFETIME);
        assert_eq!(temp_url_lifetime(u64::MAX), TEMP_URL_MAX_LIFETIME);
    }
}
