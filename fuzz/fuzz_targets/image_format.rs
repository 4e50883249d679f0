//! Disk image format detection: the FTP client's sniffing of a download's first bytes and the
//! emulator's inspection of an uploaded file (qcow2 header, gzip trailer, raw).
#![no_main]

use brightbox_emulator::fuzzing::{HEADER_LEN, inspect};
use brightbox_ftp::ImageFormat;
use brightbox_ftp::fuzzing::sniff_chunks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte sets the chunk size the download delivers, from 1 to 256 bytes.
    let (chunk_len, file) = data
        .split_first()
        .map_or((1, data), |(b, rest)| (usize::from(*b) + 1, rest));

    let detected = ImageFormat::detect(file);
    let head = file.get(..8).unwrap_or(file);
    assert_eq!(
        ImageFormat::detect(head),
        detected,
        "detection reads past 8 bytes"
    );
    assert_eq!(
        sniff_chunks(file.chunks(chunk_len)),
        detected,
        "chunked sniffing differs"
    );

    // The emulator reads the first bytes and, for a gzip file of at least 18 bytes, the last
    // four, as `inspect_file` does.
    let header = file.get(..HEADER_LEN).unwrap_or(file);
    let file_len = file.len() as u64;
    let trailer = (file.starts_with(&[0x1f, 0x8b]) && file.len() >= 18)
        .then(|| file.get(file.len() - 4..))
        .flatten()
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok());
    let (format, virtual_size, defect) = inspect(header, file_len, trailer);
    match detected {
        ImageFormat::Qcow2 => {
            assert_eq!(format, "qcow2");
            match header.get(24..32) {
                Some(size) => {
                    let mut be = [0_u8; 8];
                    be.copy_from_slice(size);
                    assert_eq!(virtual_size, u64::from_be_bytes(be));
                }
                None => assert!(defect.is_some(), "truncated qcow2 header accepted"),
            }
        }
        ImageFormat::Gzip => {
            assert_eq!(format, "gzip");
            assert_eq!(defect.is_some(), trailer.is_none());
        }
        _ => {
            assert_eq!(format, "raw");
            assert_eq!(virtual_size, file_len);
            assert_eq!(defect.is_some(), file.is_empty());
        }
    }
});
