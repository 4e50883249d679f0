//! Entry points for the fuzz targets in the workspace's `fuzz` folder.
//!
//! Compiled only with the `fuzzing` feature. This module is not part of the stable API: it
//! exposes the internal image format detection so that fuzz targets can call it directly, and
//! it changes whenever that code changes.

/// Number of leading bytes the format detection reads from a file.
pub const HEADER_LEN: usize = crate::image_format::HEADER_LEN;

/// Inspects an uploaded image from its first bytes, its length and its last four bytes, and
/// returns the format name, the virtual size in bytes and the defect that makes it fail
/// registration, if any.
pub fn inspect(
    header: &[u8],
    file_len: u64,
    gzip_trailer: Option<[u8; 4]>,
) -> (&'static str, u64, Option<String>) {
    let inspection = crate::image_format::inspect(header, file_len, gzip_trailer);
    (
        inspection.format.as_str(),
        inspection.virtual_size,
        inspection.defect,
    )
}
