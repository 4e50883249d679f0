//! Temporary names of FTPS uploads that identify their source file, so that a later run
//! continues only a partial file of the same data.
//!
//! The temporary name is `.<name>.<fingerprint>.part`. The fingerprint is the first 16 hex
//! digits of a SHA-256 over the remote name, the file length, the modification time and the
//! first and last MiB of the file. Reading 2 MiB costs a few milliseconds, and the sampled
//! bytes tell apart two files that share a name, a length and a modification time, as copies
//! with preserved times do. The modification time catches an edit in the middle of the file.
//! The price of the modification time is that a copy of the same file (`cp` without `-p`) or
//! a `touch` gets a new fingerprint, and its upload starts again from byte 0.
//!
//! NOTE: an edit that keeps the length, the first and last MiB and the modification time (for
//! example one followed by `touch -r`) goes unnoticed, and the resumed upload then stores the
//! old bytes of the partial file. Only hashing the whole file first would catch it, which
//! reads a large image twice.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use brightbox_ftp::FtpError;
use sha2::{Digest, Sha256};

use crate::transport::TransportError;

/// Bytes read from each end of the file for the fingerprint.
const SAMPLE_BYTES: u64 = 1024 * 1024;

/// Hex digits of the fingerprint in the temporary name: 64 bits of the SHA-256.
const FINGERPRINT_DIGITS: usize = 16;

/// Maximum length of a remote file name in bytes, the common `NAME_MAX` of Unix file systems.
const MAX_REMOTE_NAME_BYTES: usize = 255;

/// Suffix of every temporary upload name.
const PART_SUFFIX: &str = ".part";

/// Separates fingerprints of this scheme from hashes of other data.
const FINGERPRINT_DOMAIN: &[u8] = b"brightbox-library upload fingerprint v1\0";

/// Computes the temporary name that an FTPS upload of `local` as `remote_name` writes to,
/// `.<remote_name>.<fingerprint>.part`.
///
/// A later upload of the same unchanged file under the same name continues this file, and an
/// upload of any other file does not. Names too long for the fingerprint are shortened in the
/// temporary name only.
///
/// # Errors
///
/// Returns [`TransportError::Ftp`] with [`FtpError::Io`] when `local` cannot be read or is not
/// a regular file.
pub async fn upload_temporary_name(
    local: &Path,
    remote_name: &str,
) -> Result<String, TransportError> {
    let fingerprint = source_fingerprint(local, remote_name).await?;
    Ok(temporary_name(remote_name, &fingerprint))
}

/// Returns the fingerprint of `local` uploaded as `remote_name`, as lowercase hex.
pub(crate) async fn source_fingerprint(
    local: &Path,
    remote_name: &str,
) -> Result<String, TransportError> {
    let path = local.to_path_buf();
    let name = remote_name.to_owned();
    let result = tokio::task::spawn_blocking(move || fingerprint_blocking(&path, &name))
        .await
        .unwrap_or_else(|join_error| Err(std::io::Error::other(join_error)));
    result.map_err(|source| {
        TransportError::from(FtpError::Io {
            path: PathBuf::from(local),
            source,
        })
    })
}

fn fingerprint_blocking(path: &Path, remote_name: &str) -> std::io::Result<String> {
    // Checked before opening, because opening a FIFO blocks until a writer appears.
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file; pass the path of a disk image file",
        ));
    }
    let mut file = std::fs::File::open(path)?;
    let metadata = file.metadata()?;
    let length = metadata.len();
    // A file system without modification times hashes as time 0, so only the sampled bytes
    // and the length identify the file there.
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();

    let mut hasher = Sha256::new();
    hasher.update(FINGERPRINT_DOMAIN);
    hasher.update((remote_name.len() as u64).to_le_bytes());
    hasher.update(remote_name.as_bytes());
    hasher.update(length.to_le_bytes());
    hasher.update(modified.as_secs().to_le_bytes());
    hasher.update(modified.subsec_nanos().to_le_bytes());

    let head = SAMPLE_BYTES.min(length);
    hash_range(&mut file, 0, head, &mut hasher)?;
    let tail_start = length.saturating_sub(SAMPLE_BYTES).max(head);
    hash_range(&mut file, tail_start, length - tail_start, &mut hasher)?;

    let digest = hex::encode(hasher.finalize());
    Ok(digest
        .get(..FINGERPRINT_DIGITS)
        .unwrap_or(&digest)
        .to_owned())
}

/// Hashes `len` bytes of `file` from `start`, failing when the file ends earlier.
fn hash_range(
    file: &mut std::fs::File,
    start: u64,
    len: u64,
    hasher: &mut Sha256,
) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(start))?;
    let mut limited = file.take(len);
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut read_total = 0_u64;
    loop {
        let read = limited.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(buffer.get(..read).unwrap_or_default());
        read_total += read as u64;
    }
    if read_total < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "the file ended at byte {} while reading it for the upload fingerprint; upload it \
                 again once it no longer changes",
                start + read_total
            ),
        ));
    }
    Ok(())
}

/// Returns `.<stem>.<fingerprint>.part`, where `stem` is `remote_name` shortened to fit the
/// 255-byte name limit.
pub(crate) fn temporary_name(remote_name: &str, fingerprint: &str) -> String {
    let stem = temporary_stem(remote_name, fingerprint.len());
    format!(".{stem}.{fingerprint}{PART_SUFFIX}")
}

/// Returns `remote_name`, cut at a character boundary so that the temporary name with a
/// fingerprint of `digits` characters stays within [`MAX_REMOTE_NAME_BYTES`].
fn temporary_stem(remote_name: &str, digits: usize) -> &str {
    let max = MAX_REMOTE_NAME_BYTES.saturating_sub(2 + digits + PART_SUFFIX.len());
    let mut end = remote_name.len().min(max);
    while !remote_name.is_char_boundary(end) {
        end -= 1;
    }
    remote_name.get(..end).unwrap_or_default()
}

/// Returns the names among `names` that are partial uploads of `remote_name` other than
/// `own`: the unfingerprinted `.<remote_name>.part` of earlier versions, and
/// `.<remote_name>.<fingerprint>.part` with another fingerprint.
///
/// When the temporary name shortens `remote_name`, other fingerprints are not matched,
/// because they may belong to another long name with the same beginning.
pub(crate) fn stale_partials<'a>(
    names: impl IntoIterator<Item = &'a str>,
    remote_name: &str,
    own: &str,
) -> Vec<String> {
    let unfingerprinted = format!(".{remote_name}{PART_SUFFIX}");
    let shortened = temporary_stem(remote_name, FINGERPRINT_DIGITS) != remote_name;
    let prefix = format!(".{remote_name}.");
    names
        .into_iter()
        .filter(|name| *name != own)
        .filter(|name| {
            if *name == unfingerprinted {
                return true;
            }
            if shortened {
                return false;
            }
            name.strip_prefix(prefix.as_str())
                .and_then(|rest| rest.strip_suffix(PART_SUFFIX))
                .is_some_and(is_fingerprint)
        })
        .map(str::to_owned)
        .collect()
}

fn is_fingerprint(text: &str) -> bool {
    text.len() == FINGERPRINT_DIGITS
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, data: &[u8]) {
        std::fs::write(path, data).expect("write test file");
    }

    #[tokio::test]
    async fn fingerprint_is_stable_for_unchanged_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk.img");
        write(&path, &vec![7_u8; 3 * 1024 * 1024]);
        let first = source_fingerprint(&path, "disk.img").await.expect("first");
        let second = source_fingerprint(&path, "disk.img").await.expect("second");
        assert_eq!(first, second);
        assert_eq!(first.len(), FINGERPRINT_DIGITS);
    }

    #[tokio::test]
    async fn fingerprint_differs_by_name_and_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk.img");
        let data = vec![1_u8; 3 * 1024 * 1024];
        write(&path, &data);
        let times = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        let original = source_fingerprint(&path, "disk.img")
            .await
            .expect("original");

        let renamed = source_fingerprint(&path, "other.img")
            .await
            .expect("renamed");
        assert_ne!(
            original, renamed,
            "the remote name is part of the fingerprint"
        );

        // Same length and modification time, different last byte.
        let mut changed = data.clone();
        if let Some(last) = changed.last_mut() {
            *last = 2;
        }
        write(&path, &changed);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_modified(times))
            .expect("restore mtime");
        let edited = source_fingerprint(&path, "disk.img").await.expect("edited");
        assert_ne!(original, edited, "the last MiB is part of the fingerprint");

        // Same bytes, new modification time.
        write(&path, &data);
        let touched = source_fingerprint(&path, "disk.img")
            .await
            .expect("touched");
        assert_ne!(
            original, touched,
            "the modification time is part of the fingerprint"
        );
    }

    #[tokio::test]
    async fn fingerprint_rejects_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        match source_fingerprint(dir.path(), "disk.img").await {
            Err(TransportError::Ftp(error)) => match *error {
                FtpError::Io { path, source } => {
                    assert_eq!(path, dir.path());
                    assert!(
                        source.to_string().contains("not a regular file"),
                        "{source}"
                    );
                }
                other => panic!("expected FtpError::Io, got {other:?}"),
            },
            other => panic!("expected an FTP I/O error, got {other:?}"),
        }
    }

    #[test]
    fn temporary_name_fits_limit() {
        let fingerprint = "0123456789abcdef";
        assert_eq!(
            temporary_name("disk.img", fingerprint),
            ".disk.img.0123456789abcdef.part"
        );
        let long = "a".repeat(249);
        let name = temporary_name(&long, fingerprint);
        assert_eq!(name.len(), MAX_REMOTE_NAME_BYTES);
        assert!(name.ends_with(".0123456789abcdef.part"), "{name}");
    }

    #[test]
    fn stale_partials_match_same_name_only() {
        let own = ".disk.img.0123456789abcdef.part";
        let names = [
            own,
            ".disk.img.part",
            ".disk.img.fedcba9876543210.part",
            ".disk.img2.fedcba9876543210.part",
            ".other.img.fedcba9876543210.part",
            ".disk.img.notahexfingerpr.part",
            "disk.img",
        ];
        assert_eq!(
            stale_partials(names, "disk.img", own),
            vec![
                ".disk.img.part".to_owned(),
                ".disk.img.fedcba9876543210.part".to_owned()
            ]
        );
    }

    #[test]
    fn stale_partials_of_shortened_name() {
        let long = "b".repeat(240);
        let own = temporary_name(&long, "0123456789abcdef");
        let other = temporary_name(&long, "fedcba9876543210");
        let unfingerprinted = format!(".{long}.part");
        let names = [own.as_str(), other.as_str(), unfingerprinted.as_str()];
        assert_eq!(stale_partials(names, &long, &own), vec![unfingerprinted]);
    }
}
