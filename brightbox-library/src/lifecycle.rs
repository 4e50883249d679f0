//! Image lifecycle workflows: find the latest image, publish a new one and
//! prune old ones.

use std::cmp::Ordering;
use std::path::Path;
use std::time::Duration;

use brightbox_api::{AccountId, Image, ImageId, ImageStatus, NamePattern, UpdateImage};
use chrono::Utc;
use tracing::Instrument;

use crate::error::LibraryError;
use crate::library::Library;
use crate::spec::ImageSpec;

/// Options of [`Library::publish`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOptions {
    /// Names of the images the new one replaces. `None`, the default,
    /// means images whose name equals the new image's name.
    pub family: Option<NamePattern>,
    /// Whether older `available` images of the family are set to
    /// `deprecated`. Default `true`.
    pub deprecate_older: bool,
    /// Whether the new image is locked against deletion. Default `true`.
    pub lock: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            family: None,
            deprecate_older: true,
            lock: true,
        }
    }
}

impl PublishOptions {
    /// Creates the default options: same name, deprecate older, lock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the names of the images the new one replaces.
    pub fn family(mut self, pattern: NamePattern) -> Self {
        self.family = Some(pattern);
        self
    }

    /// Sets whether older images of the family are deprecated.
    pub fn deprecate_older(mut self, deprecate: bool) -> Self {
        self.deprecate_older = deprecate;
        self
    }

    /// Sets whether the new image is locked.
    pub fn lock(mut self, lock: bool) -> Self {
        self.lock = lock;
        self
    }
}

/// Result of [`Library::publish`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Published {
    /// The new image, as last returned by the API.
    pub image: Image,
    /// Older images of the family that were set to `deprecated`.
    pub deprecated: Vec<ImageId>,
    /// Whether the new image was locked.
    pub locked: bool,
}

/// Options of [`Library::prune`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneOptions {
    /// Number of the newest matching images that are always kept.
    pub keep_latest: usize,
    /// Minimum age, by `created_at`, of an image that may be removed.
    pub older_than: Duration,
    /// Names of the images considered; `None` considers every own image.
    pub name: Option<NamePattern>,
    /// Whether to report what would be removed without removing anything.
    pub dry_run: bool,
}

impl PruneOptions {
    /// Creates options that keep the newest `keep_latest` images and
    /// remove the others once they are older than `older_than`.
    pub fn new(keep_latest: usize, older_than: Duration) -> Self {
        Self {
            keep_latest,
            older_than,
            name: None,
            dry_run: false,
        }
    }

    /// Restricts the prune to images whose name matches.
    pub fn name(mut self, pattern: NamePattern) -> Self {
        self.name = Some(pattern);
        self
    }

    /// Sets whether the prune only reports what it would remove.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// Why [`Library::prune`] kept an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeepReason {
    /// It is among the newest `keep_latest` images.
    Latest,
    /// It is locked; prune never removes locked images.
    Locked,
    /// It is younger than `older_than`, or has no `created_at`.
    TooRecent,
    /// It is still being created or is already being removed.
    InProgress,
}

/// An image that [`Library::prune`] kept, and why.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct KeptImage {
    /// The image.
    pub image: Image,
    /// The reason it was kept.
    pub reason: KeepReason,
}

/// Result of [`Library::prune`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Images deleted, or that would be deleted in a dry run, newest first.
    pub removed: Vec<Image>,
    /// Matching images kept, newest first.
    pub kept: Vec<KeptImage>,
}

impl Library {
    /// Returns the account's own `available` image with the latest
    /// `created_at` whose name matches `pattern`, or `None`.
    ///
    /// Official and other accounts' public images are not considered, and
    /// neither are `deprecated` ones, which [`Library::publish`] leaves
    /// behind. Equal times are ordered by id.
    ///
    /// # Errors
    ///
    /// [`LibraryError::ListImages`] when listing fails, and the account
    /// errors ([`LibraryError::Accounts`], [`LibraryError::NoAccount`],
    /// [`LibraryError::AmbiguousAccount`]).
    pub async fn latest_image(&self, pattern: &NamePattern) -> Result<Option<Image>, LibraryError> {
        let account = self.account_id().await?;
        let images = self.own_images(&account).await?;
        Ok(images
            .into_iter()
            .filter(|image| image.status == ImageStatus::Available)
            .filter(|image| name_matches(image, pattern))
            .max_by(newer_last))
    }

    /// Uploads and registers the image at `path` as
    /// [`Library::upload_and_register`] does, then deprecates the older
    /// images of its family and locks the new image, as `options` sets.
    ///
    /// Older images are the account's own `available` images in the family
    /// other than the new one. Locked older images are deprecated too:
    /// a lock only prevents deletion.
    ///
    /// # Errors
    ///
    /// The errors of [`Library::upload_and_register`], and
    /// [`LibraryError::Publish`] when a step after registration fails; it
    /// names the new image and wraps [`LibraryError::ListImages`] or
    /// [`LibraryError::ImageUpdate`].
    pub async fn publish(
        &self,
        path: impl AsRef<Path>,
        spec: &ImageSpec,
        options: &PublishOptions,
    ) -> Result<Published, LibraryError> {
        let path = path.as_ref();
        let span = tracing::info_span!("publish", path = %path.display(), name = %spec.name);
        async {
            let image = self.upload_and_register(path, spec).await?;
            self.supersede(image, spec, options)
                .await
                .map_err(|(image_id, source)| LibraryError::Publish {
                    image_id,
                    source: Box::new(source),
                })
        }
        .instrument(span)
        .await
    }

    /// Deprecates the older images of the family and locks `image`.
    async fn supersede(
        &self,
        image: Image,
        spec: &ImageSpec,
        options: &PublishOptions,
    ) -> Result<Published, (ImageId, LibraryError)> {
        let new_id = image.id.clone();
        let fail = |error| (new_id.clone(), error);
        let family = options
            .family
            .clone()
            .unwrap_or_else(|| exact_name(&spec.name));
        let images = self.api().images();

        let mut deprecated = Vec::new();
        if options.deprecate_older {
            let account = self.account_id().await.map_err(fail)?;
            let older = self
                .own_images(&account)
                .await
                .map_err(fail)?
                .into_iter()
                .filter(|other| other.id != new_id)
                .filter(|other| other.status == ImageStatus::Available)
                .filter(|other| name_matches(other, &family));
            for other in older {
                images
                    .update(&other.id, &UpdateImage::new().deprecated(true))
                    .await
                    .map_err(|source| {
                        fail(LibraryError::ImageUpdate {
                            image_id: other.id.clone(),
                            action: "deprecating",
                            source: Box::new(source),
                        })
                    })?;
                tracing::info!(image_id = %other.id, "deprecated older image");
                deprecated.push(other.id);
            }
        }

        let mut image = image;
        if options.lock {
            let lock_error = |source| {
                fail(LibraryError::ImageUpdate {
                    image_id: new_id.clone(),
                    action: "locking",
                    source: Box::new(source),
                })
            };
            images.lock(&new_id).await.map_err(lock_error)?;
            image = images.get(&new_id).await.map_err(lock_error)?;
            tracing::info!(image_id = %new_id, "locked new image");
        }
        Ok(Published {
            locked: image.locked,
            image,
            deprecated,
        })
    }

    /// Deletes the account's own images that `options` selects and returns
    /// what it removed and what it kept.
    ///
    /// The matching images are ordered newest first by `created_at`. The
    /// first `keep_latest` are kept, and so is every image that is locked,
    /// younger than `older_than`, without `created_at`, `creating`,
    /// `deleting` or `deleted`. The rest, uploads and snapshots alike, are
    /// deleted with `DELETE /1.0/images/{id}`. An image locked between the
    /// listing and its deletion (the API returns 409) is reported as kept.
    /// `keep_latest` counts every matching image, `failed` and
    /// `deprecated` ones included.
    ///
    /// # Errors
    ///
    /// [`LibraryError::ListImages`] when listing fails, the account errors,
    /// and [`LibraryError::Prune`] when a deletion fails; it lists the
    /// images already deleted.
    pub async fn prune(&self, options: &PruneOptions) -> Result<PruneReport, LibraryError> {
        let span = tracing::info_span!(
            "prune",
            keep_latest = options.keep_latest,
            dry_run = options.dry_run
        );
        self.run_prune(options).instrument(span).await
    }

    async fn run_prune(&self, options: &PruneOptions) -> Result<PruneReport, LibraryError> {
        let account = self.account_id().await?;
        let mut images: Vec<Image> = self
            .own_images(&account)
            .await?
            .into_iter()
            .filter(|image| {
                options
                    .name
                    .as_ref()
                    .is_none_or(|pattern| name_matches(image, pattern))
            })
            .collect();
        images.sort_by(|a, b| newer_last(b, a));

        let cutoff = chrono::Duration::from_std(options.older_than)
            .ok()
            .and_then(|age| Utc::now().checked_sub_signed(age));
        let mut report = PruneReport::default();
        let mut removed_ids = Vec::new();
        for (position, image) in images.into_iter().enumerate() {
            let reason = if position < options.keep_latest {
                Some(KeepReason::Latest)
            } else if image.locked {
                Some(KeepReason::Locked)
            } else if matches!(
                image.status,
                ImageStatus::Creating | ImageStatus::Deleting | ImageStatus::Deleted
            ) {
                Some(KeepReason::InProgress)
            } else if !older_than_cutoff(&image, cutoff) {
                Some(KeepReason::TooRecent)
            } else {
                None
            };
            if let Some(reason) = reason {
                report.kept.push(KeptImage { image, reason });
                continue;
            }
            if options.dry_run {
                report.removed.push(image);
                continue;
            }
            match self.api().images().destroy(&image.id).await {
                Ok(()) => {
                    tracing::info!(image_id = %image.id, "deleted image");
                    removed_ids.push(image.id.clone());
                    report.removed.push(image);
                }
                Err(brightbox_api::Error::Conflict(api)) => {
                    tracing::warn!(image_id = %image.id, error = %api, "image became undeletable, probably locked; keeping it");
                    report.kept.push(KeptImage {
                        image,
                        reason: KeepReason::Locked,
                    });
                }
                Err(source) => {
                    return Err(LibraryError::Prune {
                        image_id: image.id,
                        removed: removed_ids,
                        source: Box::new(source),
                    });
                }
            }
        }
        Ok(report)
    }

    /// Lists the images owned by `account`.
    async fn own_images(&self, account: &AccountId) -> Result<Vec<Image>, LibraryError> {
        let images = self
            .api()
            .images()
            .list()
            .await
            .map_err(LibraryError::ListImages)?;
        Ok(images
            .into_iter()
            .filter(|image| image.owner.as_deref() == Some(account.as_str()) && !image.official)
            .collect())
    }
}

/// Returns a pattern for the images named `name`. A name without `*` or `?`
/// becomes a glob that matches only that name.
fn exact_name(name: &str) -> NamePattern {
    if name.contains(['*', '?']) {
        // NOTE: NamePattern has no escape for `*` and `?`; `Contains` of the
        // whole name also matches longer names that contain it.
        NamePattern::Contains(name.to_owned())
    } else {
        NamePattern::Glob(name.to_owned())
    }
}

fn name_matches(image: &Image, pattern: &NamePattern) -> bool {
    image
        .name
        .as_deref()
        .is_some_and(|name| pattern.matches(name))
}

/// Orders images by `created_at`, then id, so that the newer one is greater.
/// Images without `created_at` sort first.
fn newer_last(a: &Image, b: &Image) -> Ordering {
    a.created_at
        .cmp(&b.created_at)
        .then_with(|| a.id.cmp(&b.id))
}

/// Returns whether the image was created before `cutoff`. An image without
/// `created_at` never is, and with no cutoff (an age past the calendar's
/// range) nothing is.
fn older_than_cutoff(image: &Image, cutoff: Option<chrono::DateTime<Utc>>) -> bool {
    match (image.created_at, cutoff) {
        (Some(created), Some(cutoff)) => created <= cutoff,
        _ => false,
    }
}
