//! The Orbit object store: containers and object records in memory, object bytes as
//! files under `orbit/` in the storage folder.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};

/// The folder under the storage root that contains the Orbit containers.
pub(crate) const ORBIT: &str = "orbit";
/// Temporary files of uploads in progress, under `orbit/`. Encoded container names
/// never start with a dot, so no container can use this name.
pub(crate) const TEMP: &str = ".tmp";
/// Compressed copies of the images that the `images` container serves, under `orbit/`.
pub(crate) const LZ4_CACHE: &str = ".images-lz4";
/// Encoded names longer than this use a hash, to stay below file system name limits.
const MAX_ENCODED_NAME: usize = 200;

/// One object of a container.
#[derive(Debug, Clone)]
pub(crate) struct ObjectRecord {
    /// The object size; for a Static Large Object, the sum of its segment sizes.
    pub(crate) bytes: u64,
    /// The MD5 hex of the bytes; for a Static Large Object, the MD5 hex of its segment
    /// ETags joined together, as Swift computes it.
    pub(crate) etag: String,
    pub(crate) content_type: String,
    pub(crate) last_modified: DateTime<Utc>,
    /// `X-Object-Meta-*` headers as sent, names in lowercase.
    pub(crate) metadata: Vec<(String, String)>,
    /// The segments when the object is a Static Large Object manifest.
    pub(crate) segments: Option<Vec<Segment>>,
}

/// A segment of a Static Large Object, as validated when the manifest was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) container: String,
    pub(crate) object: String,
    pub(crate) bytes: u64,
    pub(crate) etag: String,
}

/// A container and its objects, sorted by name as Swift lists them.
#[derive(Debug, Clone)]
pub(crate) struct ContainerRecord {
    pub(crate) created: DateTime<Utc>,
    pub(crate) objects: BTreeMap<String, ObjectRecord>,
}

impl ContainerRecord {
    /// Returns the object count and the sum of the object sizes, counting manifests at
    /// their own stored size of zero as Swift does for its usage headers.
    pub(crate) fn usage(&self) -> (u64, u64) {
        let bytes = self
            .objects
            .values()
            .filter(|object| object.segments.is_none())
            .map(|object| object.bytes)
            .sum();
        (self.objects.len() as u64, bytes)
    }
}

/// A compressed copy of an image for the `images` container.
#[derive(Debug, Clone)]
pub(crate) struct CompressedImage {
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
    pub(crate) etag: String,
    pub(crate) last_modified: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct OrbitState {
    /// `X-Account-Meta-Temp-Url-Key` and `X-Account-Meta-Temp-Url-Key-2`.
    temp_url_keys: [Option<String>; 2],
    containers: BTreeMap<String, ContainerRecord>,
    compressed_images: HashMap<String, CompressedImage>,
}

/// The containers, objects and temp URL keys of the one Orbit account.
pub(crate) struct OrbitStore {
    root: PathBuf,
    state: Mutex<OrbitState>,
}

impl std::fmt::Debug for OrbitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrbitStore")
            .field("root", &self.root)
            .field("temp_url_keys", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl OrbitStore {
    /// Creates an empty store whose files live under `root` (`<storage>/orbit`).
    pub(crate) fn new(root: PathBuf) -> Self {
        OrbitStore {
            root,
            state: Mutex::new(OrbitState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OrbitState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the folder for temporary upload files.
    pub(crate) fn temp_dir(&self) -> PathBuf {
        self.root.join(TEMP)
    }

    /// Returns the folder for compressed image copies.
    pub(crate) fn lz4_cache_dir(&self) -> PathBuf {
        self.root.join(LZ4_CACHE)
    }

    /// Returns the file that contains the bytes of `container`/`object`.
    pub(crate) fn object_path(&self, container: &str, object: &str) -> PathBuf {
        self.root
            .join(encode_name(container))
            .join(encode_name(object))
    }

    /// Returns the set temp URL keys, first key first.
    pub(crate) fn temp_url_keys(&self) -> Vec<String> {
        self.lock()
            .temp_url_keys
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Returns the temp URL key in `slot` (0 for `Temp-Url-Key`, 1 for `Temp-Url-Key-2`).
    pub(crate) fn temp_url_key(&self, slot: usize) -> Option<String> {
        self.lock().temp_url_keys.get(slot).cloned().flatten()
    }

    /// Sets or, with `None`, removes the temp URL key in `slot`.
    pub(crate) fn set_temp_url_key(&self, slot: usize, key: Option<String>) {
        if let Some(entry) = self.lock().temp_url_keys.get_mut(slot) {
            *entry = key;
        }
    }

    /// Returns every container, sorted by name.
    pub(crate) fn containers(&self) -> Vec<(String, ContainerRecord)> {
        self.lock()
            .containers
            .iter()
            .map(|(name, container)| (name.clone(), container.clone()))
            .collect()
    }

    pub(crate) fn container(&self, name: &str) -> Option<ContainerRecord> {
        self.lock().containers.get(name).cloned()
    }

    /// Creates a container and its folder. Returns false when it already existed.
    pub(crate) fn create_container(&self, name: &str) -> std::io::Result<bool> {
        let mut state = self.lock();
        if state.containers.contains_key(name) {
            return Ok(false);
        }
        std::fs::create_dir_all(self.root.join(encode_name(name)))?;
        state.containers.insert(
            name.to_owned(),
            ContainerRecord {
                created: Utc::now(),
                objects: BTreeMap::new(),
            },
        );
        Ok(true)
    }

    /// Removes an empty container and its folder.
    pub(crate) fn delete_container(&self, name: &str) -> Result<(), ContainerDeleteError> {
        let mut state = self.lock();
        let Some(container) = state.containers.get(name) else {
            return Err(ContainerDeleteError::NotFound);
        };
        if !container.objects.is_empty() {
            return Err(ContainerDeleteError::NotEmpty(container.objects.len()));
        }
        state.containers.remove(name);
        if let Err(error) = std::fs::remove_dir_all(self.root.join(encode_name(name)))
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(container = name, %error, "failed to remove the container folder");
        }
        Ok(())
    }

    pub(crate) fn object(&self, container: &str, object: &str) -> Option<ObjectRecord> {
        self.lock()
            .containers
            .get(container)?
            .objects
            .get(object)
            .cloned()
    }

    /// Returns the object record and its file opened under the lock, so that the file
    /// matches the record even while another upload replaces the object.
    pub(crate) fn open_object(
        &self,
        container: &str,
        object: &str,
    ) -> Option<std::io::Result<(ObjectRecord, std::fs::File)>> {
        let state = self.lock();
        let record = state
            .containers
            .get(container)?
            .objects
            .get(object)?
            .clone();
        let path = self.object_path(container, object);
        Some(std::fs::File::open(path).map(|file| (record, file)))
    }

    /// Moves the finished upload `temp_file` into place and stores `record`.
    ///
    /// Returns `Ok(false)` and leaves `temp_file` alone when the container no longer exists.
    pub(crate) fn commit_object(
        &self,
        container: &str,
        object: &str,
        temp_file: &Path,
        record: ObjectRecord,
    ) -> std::io::Result<bool> {
        let mut state = self.lock();
        let Some(entry) = state.containers.get_mut(container) else {
            return Ok(false);
        };
        std::fs::rename(temp_file, self.object_path(container, object))?;
        entry.objects.insert(object.to_owned(), record);
        Ok(true)
    }

    /// Removes an object and its file. Returns false when there was no such object.
    pub(crate) fn delete_object(&self, container: &str, object: &str) -> bool {
        let mut state = self.lock();
        let Some(entry) = state.containers.get_mut(container) else {
            return false;
        };
        if entry.objects.remove(object).is_none() {
            return false;
        }
        let path = self.object_path(container, object);
        if let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(container, object, path = %path.display(), %error, "failed to remove the object file");
        }
        true
    }

    pub(crate) fn compressed_image(&self, image_id: &str) -> Option<CompressedImage> {
        self.lock().compressed_images.get(image_id).cloned()
    }

    pub(crate) fn insert_compressed_image(&self, image_id: &str, image: CompressedImage) {
        self.lock()
            .compressed_images
            .insert(image_id.to_owned(), image);
    }

    /// Removes the compressed copy of a deleted image.
    pub(crate) fn forget_image(&self, image_id: &str) {
        let removed = self.lock().compressed_images.remove(image_id);
        if let Some(image) = removed
            && let Err(error) = std::fs::remove_file(&image.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(image_id, path = %image.path.display(), %error, "failed to remove the compressed image copy");
        }
    }
}

/// The reason a container `DELETE` removed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContainerDeleteError {
    NotFound,
    /// The container still has this many objects.
    NotEmpty(usize),
}

/// Encodes a container or object name as one file name: letters, digits, `-`, `_`, `~`
/// and dots after the first byte stay, every other byte becomes `%XX`. Names whose
/// encoding is too long become `%long-<md5 hex>`; no plain encoding starts that way.
pub(crate) fn encode_name(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for (index, byte) in name.bytes().enumerate() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'~')
            || (byte == b'.' && index > 0);
        if keep {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    if encoded.len() > MAX_ENCODED_NAME {
        return format!("%long-{}", md5_hex(name.as_bytes()));
    }
    encoded
}

/// Returns the lowercase MD5 hex of `bytes`.
pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_to_single_file_names() {
        assert_eq!(encode_name("disk.img"), "disk.img");
        assert_eq!(encode_name("segments/000001"), "segments%2F000001");
        assert_eq!(encode_name(".hidden"), "%2Ehidden");
        assert_eq!(encode_name(".."), "%2E.");
        assert_eq!(encode_name("a b%"), "a%20b%25");
        assert_eq!(encode_name("é"), "%C3%A9");
    }

    #[test]
    fn long_names_use_a_hash() {
        let long = "x/".repeat(300);
        let encoded = encode_name(&long);
        assert!(encoded.starts_with("%long-"), "{encoded}");
        assert_eq!(encoded.len(), "%long-".len() + 32);
        assert_ne!(encoded, encode_name(&"y/".repeat(300)));
    }

    #[test]
    fn md5_of_empty_input() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
