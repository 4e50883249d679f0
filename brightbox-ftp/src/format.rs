//! Disk image format detection from a file's first bytes.

/// Number of leading bytes [`ImageFormat::detect`] looks at.
pub(crate) const SNIFF_LEN: usize = 8;

/// The format of a disk image, as its first bytes show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageFormat {
    /// No known header: a raw disk image, or a format this crate does not recognise.
    Raw,
    /// QEMU copy-on-write v2 or v3 (`QFI\xfb`).
    Qcow2,
    /// gzip-compressed data (`1f 8b`).
    Gzip,
    /// LZ4 frame format (`04 22 4d 18`).
    Lz4Frame,
    /// Too few bytes to tell, for example an empty file.
    Unknown,
}

impl ImageFormat {
    /// Detects the format from the first bytes of a file.
    ///
    /// Fewer than 4 bytes give [`ImageFormat::Unknown`] unless they are a gzip header.
    pub fn detect(first_bytes: &[u8]) -> ImageFormat {
        if first_bytes.starts_with(b"QFI\xfb") {
            ImageFormat::Qcow2
        } else if first_bytes.starts_with(&[0x1f, 0x8b]) {
            ImageFormat::Gzip
        } else if first_bytes.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
            ImageFormat::Lz4Frame
        } else if first_bytes.len() < 4 {
            ImageFormat::Unknown
        } else {
            ImageFormat::Raw
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Gzip => "gzip",
            ImageFormat::Lz4Frame => "lz4",
            ImageFormat::Unknown => "unknown",
        })
    }
}

/// Collects the first [`SNIFF_LEN`] bytes of a stream that arrives in chunks.
#[derive(Default)]
pub(crate) struct Sniffer {
    head: Vec<u8>,
}

impl Sniffer {
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        let wanted = SNIFF_LEN.saturating_sub(self.head.len());
        if wanted > 0 {
            self.head
                .extend_from_slice(chunk.get(..wanted.min(chunk.len())).unwrap_or_default());
        }
    }

    pub(crate) fn format(&self) -> ImageFormat {
        ImageFormat::detect(&self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_table() {
        let cases: [(&[u8], ImageFormat); 7] = [
            (b"QFI\xfb\x00\x00\x00\x03", ImageFormat::Qcow2),
            (&[0x1f, 0x8b, 0x08, 0x00], ImageFormat::Gzip),
            (&[0x1f, 0x8b], ImageFormat::Gzip),
            (&[0x04, 0x22, 0x4d, 0x18, 0x64], ImageFormat::Lz4Frame),
            (&[0xeb, 0x63, 0x90, 0x10, 0x8e], ImageFormat::Raw),
            (&[0x00, 0x00], ImageFormat::Unknown),
            (&[], ImageFormat::Unknown),
        ];
        for (bytes, expected) in cases {
            assert_eq!(ImageFormat::detect(bytes), expected, "{bytes:02x?}");
        }
    }

    #[test]
    fn sniffer_joins_small_chunks() {
        let mut sniffer = Sniffer::default();
        for byte in b"QFI\xfb\x00\x00\x00\x03\x00" {
            sniffer.feed(std::slice::from_ref(byte));
        }
        assert_eq!(sniffer.format(), ImageFormat::Qcow2);
    }
}
