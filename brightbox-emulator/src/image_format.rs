//! Disk image format detection from the first bytes of an uploaded file.

use std::io::SeekFrom;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The number of leading bytes [`inspect`] needs to recognise every supported format.
pub(crate) const HEADER_LEN: usize = 32;

const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";
const GZIP_MAGIC: &[u8; 2] = &[0x1f, 0x8b];
/// A gzip member is at least a 10-byte header plus an 8-byte trailer.
const GZIP_MIN_LEN: u64 = 18;

/// A disk image format the emulator recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageFormat {
    Qcow2,
    Gzip,
    Raw,
}

impl ImageFormat {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Gzip => "gzip",
            ImageFormat::Raw => "raw",
        }
    }
}

/// What [`inspect`] found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inspection {
    pub(crate) format: ImageFormat,
    /// Size of the disk the image describes, in bytes.
    pub(crate) virtual_size: u64,
    /// The reason the image cannot be registered, when it is corrupt or empty.
    /// The emulator then marks the image `failed` after the registration delay,
    /// as the real service did for images it could not convert.
    pub(crate) defect: Option<String>,
}

/// Detects the format of an image from its first bytes.
///
/// `header` holds up to [`HEADER_LEN`] leading bytes, `file_len` is the file size and
/// `gzip_trailer` the last four bytes of the file (the gzip ISIZE field).
pub(crate) fn inspect(header: &[u8], file_len: u64, gzip_trailer: Option<[u8; 4]>) -> Inspection {
    if header.starts_with(QCOW2_MAGIC) {
        return inspect_qcow2(header);
    }

    if header.starts_with(GZIP_MAGIC) {
        // NOTE: ISIZE is the uncompressed size modulo 2^32, so it is exact only for
        // single-member gzip files whose content is smaller than 4 GiB.
        return match gzip_trailer {
            Some(isize_bytes) if file_len >= GZIP_MIN_LEN => Inspection {
                format: ImageFormat::Gzip,
                virtual_size: u64::from(u32::from_le_bytes(isize_bytes)),
                defect: None,
            },
            _ => Inspection {
                format: ImageFormat::Gzip,
                virtual_size: 0,
                defect: Some(format!(
                    "the gzip file is truncated: {file_len} bytes is shorter than a gzip header and trailer"
                )),
            },
        };
    }

    Inspection {
        format: ImageFormat::Raw,
        virtual_size: file_len,
        defect: (file_len == 0).then(|| "the file is empty".to_owned()),
    }
}

fn inspect_qcow2(header: &[u8]) -> Inspection {
    let (Some(version), Some(size)) = (
        header.get(4..8).and_then(|b| <[u8; 4]>::try_from(b).ok()),
        header.get(24..32).and_then(|b| <[u8; 8]>::try_from(b).ok()),
    ) else {
        return Inspection {
            format: ImageFormat::Qcow2,
            virtual_size: 0,
            defect: Some(format!(
                "the qcow2 header is truncated: {} bytes is shorter than the {HEADER_LEN}-byte header",
                header.len()
            )),
        };
    };

    let version = u32::from_be_bytes(version);
    let defect = (!matches!(version, 2 | 3))
        .then(|| format!("qcow2 version {version} is not supported: expected version 2 or 3"));
    Inspection {
        format: ImageFormat::Qcow2,
        virtual_size: u64::from_be_bytes(size),
        defect,
    }
}

/// Reads the first bytes and the gzip trailer of `path` and inspects them.
pub(crate) async fn inspect_file(path: &Path) -> std::io::Result<(Inspection, u64)> {
    let mut file = tokio::fs::File::open(path).await?;
    let file_len = file.metadata().await?.len();

    let mut header = Vec::with_capacity(HEADER_LEN);
    (&mut file)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut header)
        .await?;

    let gzip_trailer = if header.starts_with(GZIP_MAGIC) && file_len >= GZIP_MIN_LEN {
        let mut trailer = [0_u8; 4];
        file.seek(SeekFrom::End(-4)).await?;
        file.read_exact(&mut trailer).await?;
        Some(trailer)
    } else {
        None
    };

    Ok((inspect(&header, file_len, gzip_trailer), file_len))
}

/// Builds a qcow2 file that has only a version 3 header stating `virtual_size` bytes,
/// 64 KiB clusters, and zero padding to 512 bytes.
///
/// The emulator recognises it as qcow2 with that virtual size, but it has no L1 or
/// refcount tables, so `qemu-img` rejects it.
pub(crate) fn qcow2_placeholder(virtual_size: u64) -> Vec<u8> {
    const CLUSTER_BITS: u32 = 16;
    let mut bytes = vec![0_u8; 512];
    bytes[..4].copy_from_slice(QCOW2_MAGIC);
    bytes[4..8].copy_from_slice(&3_u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&CLUSTER_BITS.to_be_bytes());
    bytes[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    bytes
}

/// Converts a size in bytes to whole megabytes (MiB), rounding up, as the API reports sizes.
pub(crate) fn bytes_to_mb(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qcow2_header(version: u32, size: u64) -> Vec<u8> {
        let mut header = vec![0_u8; HEADER_LEN];
        header[..4].copy_from_slice(QCOW2_MAGIC);
        header[4..8].copy_from_slice(&version.to_be_bytes());
        header[24..32].copy_from_slice(&size.to_be_bytes());
        header
    }

    #[test]
    fn qcow2_reads_virtual_size() {
        let found = inspect(&qcow2_header(3, 10 * 1024 * 1024 * 1024), 196_608, None);
        assert_eq!(found.format, ImageFormat::Qcow2);
        assert_eq!(found.virtual_size, 10 * 1024 * 1024 * 1024);
        assert_eq!(found.defect, None);
    }

    #[test]
    fn qcow2_unknown_version_is_defect() {
        let found = inspect(&qcow2_header(7, 1024), 4096, None);
        assert_eq!(found.format, ImageFormat::Qcow2);
        let defect = found.defect.expect("version 7 is a defect");
        assert!(defect.contains("version 7"), "{defect}");
    }

    #[test]
    fn qcow2_truncated_header_is_defect() {
        let found = inspect(b"QFI\xfb\0\0\0\x03", 8, None);
        assert_eq!(found.format, ImageFormat::Qcow2);
        assert!(found.defect.is_some());
    }

    #[test]
    fn gzip_uses_isize_trailer() {
        let found = inspect(&[0x1f, 0x8b, 8, 0], 5000, Some(3_000_000_u32.to_le_bytes()));
        assert_eq!(found.format, ImageFormat::Gzip);
        assert_eq!(found.virtual_size, 3_000_000);
        assert_eq!(found.defect, None);
    }

    #[test]
    fn gzip_too_short_is_defect() {
        let found = inspect(&[0x1f, 0x8b], 2, None);
        assert_eq!(found.format, ImageFormat::Gzip);
        assert!(found.defect.is_some());
    }

    #[test]
    fn raw_uses_file_size() {
        let found = inspect(b"\0\0\0\0hello", 3 * 1024 * 1024 + 1, None);
        assert_eq!(found.format, ImageFormat::Raw);
        assert_eq!(found.virtual_size, 3 * 1024 * 1024 + 1);
        assert_eq!(found.defect, None);
    }

    #[test]
    fn empty_raw_is_defect() {
        let found = inspect(&[], 0, None);
        assert_eq!(found.format, ImageFormat::Raw);
        assert_eq!(found.defect.as_deref(), Some("the file is empty"));
    }

    #[test]
    fn placeholder_reads_back_as_qcow2() {
        let bytes = qcow2_placeholder(3 * 1024 * 1024 * 1024);
        let found = inspect(&bytes[..HEADER_LEN], bytes.len() as u64, None);
        assert_eq!(found.format, ImageFormat::Qcow2);
        assert_eq!(found.virtual_size, 3 * 1024 * 1024 * 1024);
        assert_eq!(found.defect, None);
    }

    #[test]
    fn megabytes_round_up() {
        assert_eq!(bytes_to_mb(0), 0);
        assert_eq!(bytes_to_mb(1), 1);
        assert_eq!(bytes_to_mb(1024 * 1024), 1);
        assert_eq!(bytes_to_mb(1024 * 1024 + 1), 2);
    }
}
