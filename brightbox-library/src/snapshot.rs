//! The `snapshot_server` workflow: snapshot a server's disk into a new image.

use std::time::Duration;

use brightbox_api::{Image, ImageId, ServerId, UpdateImage};
use tracing::Instrument;

use crate::error::LibraryError;
use crate::library::Library;

/// Options of [`Library::snapshot_server`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotOptions {
    /// Name to give the snapshot image. Without it the API's default name
    /// stays, such as `Snapshot of srv-12345`.
    pub name: Option<String>,
    /// Description to give the snapshot image.
    pub description: Option<String>,
    /// Whether the workflow returns the image as created instead of waiting
    /// until it is available.
    pub no_wait: bool,
    /// Maximum time to wait for the image, replacing the timeout of the
    /// library's [`WaitOptions`](brightbox_api::WaitOptions).
    pub wait_timeout: Option<Duration>,
}

impl SnapshotOptions {
    /// Creates the default options: API default name, wait until available.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the name of the snapshot image.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the description of the snapshot image.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets whether the workflow waits until the image is available (default `true`).
    pub fn wait(mut self, wait: bool) -> Self {
        self.no_wait = !wait;
        self
    }

    /// Sets the maximum time to wait for the image to become available.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = Some(timeout);
        self
    }
}

impl Library {
    /// Snapshots the disk of server `server_id` into a new image and waits
    /// until the image is available.
    ///
    /// The workflow sends `POST /1.0/images {"server": id}` first. It falls
    /// back to the legacy `POST /1.0/servers/{id}/snapshot` only when that
    /// response shows that the API does not offer the modern route:
    ///
    /// - HTTP 404 or 405. Neither can mean that a snapshot was taken, and if
    ///   the server is unknown the legacy route returns 404 as well;
    /// - HTTP 400 or 422 whose messages name `server` as an unknown,
    ///   unsupported or unpermitted parameter.
    ///
    /// Every other failure is returned as it is. In particular a 5xx or a
    /// timeout is never followed by the legacy route, because the first
    /// request may have created a snapshot, and a second one would make a
    /// duplicate. A 409 (the server is not active) and a 422 saying that the
    /// server was not found are returned too.
    ///
    /// A name or description in `options` is set with `PUT /1.0/images/{id}`
    /// once the image exists.
    ///
    /// # Errors
    ///
    /// - [`LibraryError::InvalidSpec`] before any request when the name in
    ///   `options` is blank or contains a control character.
    /// - [`LibraryError::Snapshot`] when the snapshot is rejected; nothing was created.
    /// - [`LibraryError::ImageUpdate`] when setting the name or description fails.
    /// - [`LibraryError::SnapshotWait`] when the image does not become available;
    ///   [`LibraryError::registered_image`] returns its id.
    pub async fn snapshot_server(
        &self,
        server_id: &ServerId,
        options: &SnapshotOptions,
    ) -> Result<Image, LibraryError> {
        let span = tracing::info_span!("snapshot_server", %server_id);
        self.run_snapshot_server(server_id, options)
            .instrument(span)
            .await
    }

    async fn run_snapshot_server(
        &self,
        server_id: &ServerId,
        options: &SnapshotOptions,
    ) -> Result<Image, LibraryError> {
        check_snapshot_name(options)?;
        let image_id = self.start_snapshot(server_id).await?;
        tracing::info!(%image_id, "snapshot started");

        let named = self.name_snapshot(&image_id, options).await?;
        if options.no_wait {
            return match named {
                Some(image) => Ok(image),
                None => self.api().images().get(&image_id).await.map_err(|source| {
                    LibraryError::ImageLookup {
                        image_id: image_id.clone(),
                        source,
                    }
                }),
            };
        }

        let wait = self.wait_options(options.wait_timeout);
        let image = self
            .api()
            .images()
            .wait_until_available(&image_id, &wait)
            .await
            .map_err(|source| LibraryError::SnapshotWait {
                server_id: server_id.clone(),
                image_id: image_id.clone(),
                source: Box::new(source),
            })?;
        tracing::info!(%image_id, "snapshot available");
        Ok(image)
    }

    /// Starts the snapshot on the modern route, or on the legacy route when
    /// the modern one is not offered, and returns the new image's id.
    async fn start_snapshot(&self, server_id: &ServerId) -> Result<ImageId, LibraryError> {
        let servers = self.api().servers();
        let error = match servers.snapshot(server_id).await {
            Ok(image) => return Ok(image.id),
            Err(error) if modern_route_unsupported(&error) => error,
            Err(source) => {
                return Err(LibraryError::Snapshot {
                    server_id: server_id.clone(),
                    source,
                });
            }
        };
        tracing::warn!(%error, "POST /1.0/images does not take a server; using POST /1.0/servers/{{id}}/snapshot");
        servers
            .snapshot_legacy(server_id)
            .await
            .map_err(|source| LibraryError::Snapshot {
                server_id: server_id.clone(),
                source,
            })
    }

    /// Sets the name and description from `options`; returns the updated
    /// image, or `None` when there is nothing to set.
    async fn name_snapshot(
        &self,
        image_id: &ImageId,
        options: &SnapshotOptions,
    ) -> Result<Option<Image>, LibraryError> {
        let mut update = UpdateImage::new();
        let mut changed = false;
        if let Some(name) = &options.name {
            update = update.name(name.clone());
            changed = true;
        }
        if let Some(description) = &options.description {
            update = update.description(description.clone());
            changed = true;
        }
        if !changed {
            return Ok(None);
        }
        let image = self
            .api()
            .images()
            .update(image_id, &update)
            .await
            .map_err(|source| LibraryError::ImageUpdate {
                image_id: image_id.clone(),
                action: "naming snapshot",
                source: Box::new(source),
            })?;
        Ok(Some(image))
    }
}

/// Returns whether a failed `POST /1.0/images {"server": …}` shows that the
/// API does not offer snapshots on that route. See
/// [`Library::snapshot_server`] for the rule.
pub(crate) fn modern_route_unsupported(error: &brightbox_api::Error) -> bool {
    let Some(api) = error.api_error() else {
        return false;
    };
    match api.status {
        404 | 405 => true,
        400 | 422 => api
            .errors
            .iter()
            .any(|message| names_unsupported_server(message)),
        _ => false,
    }
}

/// Returns whether a validation message rejects `server` as a parameter,
/// rather than rejecting the server it names.
fn names_unsupported_server(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    if !message.contains("server") || message.contains("not found") {
        return false;
    }
    [
        "unknown",
        "not supported",
        "not a supported",
        "unsupported",
        "unpermitted",
        "not permitted",
        "not allowed",
    ]
    .iter()
    .any(|phrase| message.contains(phrase))
}

/// Checks the snapshot name before the snapshot starts, so that a name the
/// API would reject does not leave an unnamed snapshot behind.
fn check_snapshot_name(options: &SnapshotOptions) -> Result<(), LibraryError> {
    let Some(name) = &options.name else {
        return Ok(());
    };
    let reason = if name.trim().is_empty() {
        "it is blank; give the snapshot a name or leave it unset"
    } else if name.chars().any(char::is_control) {
        "it contains a control character; remove it"
    } else {
        return Ok(());
    };
    Err(LibraryError::InvalidSpec {
        field: "name",
        value: name.clone(),
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::names_unsupported_server;

    #[test]
    fn unsupported_server_parameter_messages() {
        assert!(names_unsupported_server(
            "server is not a supported parameter"
        ));
        assert!(names_unsupported_server("Unknown parameter: server"));
        assert!(names_unsupported_server(
            "found unpermitted parameter: server"
        ));
    }

    #[test]
    fn other_server_messages_do_not_fall_back() {
        assert!(!names_unsupported_server(
            "server srv-abcde was not found: list servers with GET /1.0/servers"
        ));
        assert!(!names_unsupported_server("name is too long"));
        assert!(!names_unsupported_server(
            "server srv-abcde is creating: only an active server can be snapshotted"
        ));
    }
}
