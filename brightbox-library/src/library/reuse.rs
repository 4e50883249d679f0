//! Finding an image that an earlier run registered from the same, unchanged
//! local file, so that a re-run neither uploads nor registers it again.

use std::path::Path;

use brightbox_api::{AccountId, Image, ImageStatus, SourceType};
use chrono::{DateTime, Utc};

use crate::spec::ImageSpec;

/// Returns when the file at `path` last changed: the later of its
/// modification time and, on Unix, its status change time (ctime). Copies
/// that keep an older modification time still get a new ctime.
///
/// Returns `None` when the platform or file system reports neither.
pub(super) async fn last_change(path: &Path) -> Option<DateTime<Utc>> {
    let metadata = tokio::fs::metadata(path).await.ok()?;
    let modified = metadata.modified().ok().map(DateTime::<Utc>::from);
    let changed = status_change_time(&metadata);
    modified.max(changed)
}

#[cfg(unix)]
fn status_change_time(metadata: &std::fs::Metadata) -> Option<DateTime<Utc>> {
    use std::os::unix::fs::MetadataExt;

    let nanoseconds = u32::try_from(metadata.ctime_nsec()).ok()?;
    DateTime::from_timestamp(metadata.ctime(), nanoseconds)
}

#[cfg(not(unix))]
fn status_change_time(_metadata: &std::fs::Metadata) -> Option<DateTime<Utc>> {
    None
}

/// Criteria an existing image must meet to be reused for the local file.
pub(super) struct ReuseQuery<'a> {
    pub(super) spec: &'a ImageSpec,
    pub(super) account: &'a AccountId,
    pub(super) remote_name: &'a str,
    pub(super) changed_at: DateTime<Utc>,
}

impl ReuseQuery<'_> {
    /// Returns the images that match, newest first. Images with equal
    /// `created_at` are ordered by id, so the choice is stable.
    pub(super) fn matches(&self, images: Vec<Image>) -> Vec<Image> {
        let mut found: Vec<Image> = images
            .into_iter()
            .filter(|image| self.is_match(image))
            .collect();
        found.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        found
    }

    fn is_match(&self, image: &Image) -> bool {
        let own = image.owner.as_deref() == Some(self.account.as_str()) && !image.official;
        let uploaded = matches!(image.source_type, None | Some(SourceType::Upload));
        let in_use = matches!(image.status, ImageStatus::Creating | ImageStatus::Available);
        let same_file = image
            .source
            .as_deref()
            .is_some_and(|source| names_remote_file(source, self.remote_name));
        let newer = image
            .created_at
            .is_some_and(|created| created >= self.changed_at);
        own && uploaded
            && in_use
            && same_file
            && newer
            && image.name.as_deref() == Some(self.spec.name.as_str())
            && image.arch == self.spec.arch
    }
}

/// Returns whether an image's `source` names the remote file `remote_name`:
/// the file name itself (FTPS route), or an HTTP(S) URL whose last path
/// segment is that name (`http_url` route), whatever its query.
fn names_remote_file(source: &str, remote_name: &str) -> bool {
    if source == remote_name {
        return true;
    }
    let Ok(url) = url::Url::parse(source) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    let Some(last) = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
    else {
        return false;
    };
    last == remote_name || last == encoded_segment(remote_name)
}

/// Returns `name` percent-encoded as one URL path segment.
fn encoded_segment(name: &str) -> String {
    let Ok(mut url) = url::Url::parse("http://localhost/") else {
        return name.to_owned();
    };
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.clear().push(name);
    }
    url.path().trim_start_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use brightbox_api::Arch;
    use chrono::TimeZone;

    fn image(id: &str, created_second: u32) -> Image {
        let json = serde_json::json!({
            "id": id,
            "name": "disk",
            "status": "available",
            "arch": "x86_64",
            "owner": "acc-00001",
            "source": "disk.img",
            "source_type": "upload",
            "created_at": format!("2026-12-05T00:00:{created_second:02}Z"),
            "official": false,
        });
        serde_json::from_value(json).expect("image JSON decodes")
    }

    fn query<'a>(spec: &'a ImageSpec, account: &'a AccountId) -> ReuseQuery<'a> {
        ReuseQuery {
            spec,
            account,
            remote_name: "disk.img",
            changed_at: Utc
                .with_ymd_and_hms(2026, 12, 5, 0, 0, 10)
                .single()
                .expect("valid time"),
        }
    }

    fn ids(images: &[Image]) -> Vec<String> {
        images.iter().map(|image| image.id.to_string()).collect()
    }

    #[test]
    fn match_needs_created_at_after_change() {
        let spec = ImageSpec::new("disk", Arch::X86_64);
        let account: AccountId = "acc-00001".parse().expect("account id");
        let found = query(&spec, &account).matches(vec![
            image("img-00009", 9),
            image("img-00010", 10),
            image("img-00011", 11),
        ]);
        assert_eq!(ids(&found), ["img-00011", "img-00010"]);
    }

    #[test]
    fn match_rejects_other_fields() {
        let spec = ImageSpec::new("disk", Arch::X86_64);
        let account: AccountId = "acc-00001".parse().expect("account id");
        let mut failed = image("img-00001", 20);
        failed.status = ImageStatus::Failed;
        let mut deprecated = image("img-00002", 20);
        deprecated.status = ImageStatus::Deprecated;
        let mut other_name = image("img-00003", 20);
        other_name.name = Some("disk 2".to_owned());
        let mut other_arch = image("img-00004", 20);
        other_arch.arch = Arch::I686;
        let mut other_owner = image("img-00005", 20);
        other_owner.owner = Some("acc-00002".to_owned());
        let mut official = image("img-00006", 20);
        official.official = true;
        let mut other_file = image("img-00007", 20);
        other_file.source = Some("disk2.img".to_owned());
        let mut snapshot = image("img-00008", 20);
        snapshot.source_type = Some(SourceType::Snapshot);
        let mut no_time = image("img-00009", 20);
        no_time.created_at = None;

        let found = query(&spec, &account).matches(vec![
            failed,
            deprecated,
            other_name,
            other_arch,
            other_owner,
            official,
            other_file,
            snapshot,
            no_time,
        ]);
        assert_eq!(ids(&found), Vec::<String>::new());
    }

    #[test]
    fn source_url_matches_by_last_segment() {
        let url = "https://orbit.example/v1/acc-00001/image-uploads/disk.img";
        assert!(names_remote_file(url, "disk.img"));
        assert!(names_remote_file(
            &format!("{url}?temp_url_sig=abc&temp_url_expires=1"),
            "disk.img"
        ));
        assert!(!names_remote_file(url, "other.img"));
        assert!(!names_remote_file(
            "https://orbit.example/v1/acc-00001/disk.img/other.img",
            "disk.img"
        ));
        assert!(!names_remote_file(
            "ftp://host/incoming/disk.img",
            "disk.img"
        ));
        assert!(!names_remote_file("srv-00001", "disk.img"));
    }

    #[test]
    fn source_url_matches_encoded_name() {
        assert!(names_remote_file(
            "https://orbit.example/v1/acc-00001/uploads/disk%5E1.img",
            "disk^1.img"
        ));
        assert!(names_remote_file(
            "https://orbit.example/v1/acc-00001/uploads/disk^1.img",
            "disk^1.img"
        ));
    }
}
