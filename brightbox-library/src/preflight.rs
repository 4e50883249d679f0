//! Checks that run before any network call: the local file, its format, the
//! remote file name and the image metadata.

use std::path::{Path, PathBuf};

use brightbox_api::Arch;
use brightbox_ftp::ImageFormat;
use tokio::io::AsyncReadExt;

use crate::error::LibraryError;
use crate::spec::ImageSpec;

/// Bytes read from the start of the file: enough for a qcow2 version 3 header.
const HEADER_LEN: usize = 104;
/// Length of a qcow2 version 2 header; version 3 headers are longer.
const QCOW2_V2_HEADER_LEN: usize = 72;
/// Maximum image name length in characters. The API does not document one;
/// 255 keeps names within what the Brightbox CLI can display.
const MAX_NAME_CHARS: usize = 255;

/// Facts about a local disk image, gathered by [`preflight`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preflight {
    /// The local file.
    pub path: PathBuf,
    /// Length of the file in bytes.
    pub bytes: u64,
    /// File name to upload and register.
    pub remote_name: String,
    /// Format detected from the first bytes.
    pub format: ImageFormat,
    /// Size of the disk the image describes, in bytes, where the format
    /// shows it: the qcow2 header's size, or the file length of a raw image.
    /// Compressed images show it only once unpacked.
    pub virtual_size: Option<u64>,
}

/// Checks a disk image and its metadata before anything is uploaded.
///
/// The file must be a non-empty regular file. A qcow2 file must have a
/// complete version 2 or 3 header. The remote name (the file name unless
/// [`ImageSpec::remote_name`] is set) must consist of letters, digits and
/// `-_+.~^`, and must not start with a dot. The image name must not be
/// blank, and the architecture must be one the API accepts.
///
/// # Errors
///
/// Returns [`LibraryError::InvalidImageFile`],
/// [`LibraryError::InvalidRemoteName`] or [`LibraryError::InvalidSpec`],
/// each naming the value and the fix.
pub async fn preflight(path: &Path, spec: &ImageSpec) -> Result<Preflight, LibraryError> {
    check_spec(spec)?;
    let (bytes, header) = read_header(path).await?;
    let remote_name = remote_name(path, spec)?;
    let format = ImageFormat::detect(&header);
    let virtual_size = match format {
        ImageFormat::Qcow2 => Some(qcow2_virtual_size(path, &header)?),
        ImageFormat::Raw => Some(bytes),
        _ => None,
    };
    Ok(Preflight {
        path: path.to_path_buf(),
        bytes,
        remote_name,
        format,
        virtual_size,
    })
}

fn check_spec(spec: &ImageSpec) -> Result<(), LibraryError> {
    let invalid = |field, value: &str, reason: &str| {
        Err(LibraryError::InvalidSpec {
            field,
            value: value.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if spec.name.trim().is_empty() {
        return invalid("name", &spec.name, "it is blank; give the image a name");
    }
    if spec.name.chars().count() > MAX_NAME_CHARS {
        return invalid("name", &spec.name, "it is longer than 255 characters");
    }
    if spec.name.chars().any(char::is_control) {
        return invalid("name", &spec.name, "it contains a control character");
    }
    if let Arch::Other(other) = &spec.arch {
        return invalid("arch", other, "use x86_64 or i686");
    }
    Ok(())
}

/// Reads the file's length and first bytes, checking that it is a
/// non-empty regular file.
async fn read_header(path: &Path) -> Result<(u64, Vec<u8>), LibraryError> {
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

    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|error| invalid(format!("cannot open it ({error})")))?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    (&mut file)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut header)
        .await
        .map_err(|error| invalid(format!("cannot read its first bytes ({error})")))?;
    Ok((metadata.len(), header))
}

/// Returns the virtual size from a qcow2 header, checking its version and
/// length.
fn qcow2_virtual_size(path: &Path, header: &[u8]) -> Result<u64, LibraryError> {
    let invalid = |reason: String| LibraryError::InvalidImageFile {
        path: path.to_path_buf(),
        reason,
    };
    let field = |range: std::ops::Range<usize>| header.get(range).map(<[u8]>::to_vec);
    let version = field(4..8)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| invalid("its qcow2 header is truncated".to_owned()))?;
    let minimum = match version {
        2 => QCOW2_V2_HEADER_LEN,
        3 => HEADER_LEN,
        other => {
            return Err(invalid(format!(
                "it is qcow2 version {other}; convert it with `qemu-img convert -O qcow2 -o compat=1.1`"
            )));
        }
    };
    if header.len() < minimum {
        return Err(invalid(format!(
            "its qcow2 version {version} header is truncated ({} of {minimum} bytes)",
            header.len()
        )));
    }
    field(24..32)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| invalid("its qcow2 header is truncated".to_owned()))
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
            "../up.img",
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
        let spec = ImageSpec::new("x", Arch::X86_64);
        let name = remote_name(Path::new("/tmp/disk.qcow2"), &spec).expect("valid name");
        assert_eq!(name, "disk.qcow2");
    }

    #[test]
    fn remote_name_override_is_checked() {
        let spec = ImageSpec::new("x", Arch::X86_64).remote_name("bad name");
        let error = remote_name(Path::new("/tmp/disk.qcow2"), &spec).expect_err("space");
        assert!(matches!(error, LibraryError::InvalidRemoteName { .. }));
    }

    #[test]
    fn spec_rejects_blank_name_and_unknown_arch() {
        let blank = ImageSpec::new("  ", Arch::X86_64);
        let error = check_spec(&blank).expect_err("blank name");
        assert!(matches!(
            error,
            LibraryError::InvalidSpec { field: "name", .. }
        ));

        let arm = ImageSpec::new("arm", Arch::Other("arm64".to_owned()));
        let error = check_spec(&arm).expect_err("unknown arch");
        assert!(error.to_string().contains("arm64"), "{error}");
    }

    #[test]
    fn qcow2_header_checks() {
        let mut header = vec![0u8; HEADER_LEN];
        header[..4].copy_from_slice(b"QFI\xfb");
        header[4..8].copy_from_slice(&3u32.to_be_bytes());
        header[24..32].copy_from_slice(&(2u64 << 30).to_be_bytes());
        let path = Path::new("disk.qcow2");
        assert_eq!(qcow2_virtual_size(path, &header).expect("v3"), 2 << 30);

        header[4..8].copy_from_slice(&4u32.to_be_bytes());
        let error = qcow2_virtual_size(path, &header).expect_err("v4");
        assert!(error.to_string().contains("version 4"), "{error}");

        header[4..8].copy_from_slice(&3u32.to_be_bytes());
        let error = qcow2_virtual_size(path, &header[..50]).expect_err("short");
        assert!(error.to_string().contains("truncated"), "{error}");
    }
}
