//! The read-only `images` container: every usable image with a file, served as an
//! LZ4 frame of the stored file.
//!
//! The first listing or download that needs an image compresses `images/<id>` into
//! `orbit/.images-lz4/<id>` and keeps that copy, with its size and MD5, for later
//! requests. Image files do not change after registration, so the copy stays valid
//! until the image is deleted, which removes it.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use md5::{Digest, Md5};

use super::store::CompressedImage;
use crate::ftp::IMAGES;
use crate::library::{ImageRecord, Library};
use crate::secret::random_string;

/// The name of the read-only container.
pub(crate) const IMAGES_CONTAINER: &str = "images";
const BUFFER_LEN: usize = 1024 * 1024;

/// Returns the images the container lists: the account's own images that have a file
/// and are `available` or `deprecated`, oldest first.
pub(crate) fn listed_images(library: &Library) -> Vec<ImageRecord> {
    let now = Instant::now();
    library
        .images()
        .into_iter()
        .filter(|image| image.owner == library.account_id && image.has_file && image.is_usable(now))
        .collect()
}

/// Returns the image `id` when the container lists it.
pub(crate) fn listed_image(library: &Library, id: &str) -> Option<ImageRecord> {
    let image = library.image(id)?;
    let usable =
        image.owner == library.account_id && image.has_file && image.is_usable(Instant::now());
    usable.then_some(image)
}

/// Returns the compressed copy of `image`, compressing the image file first when no
/// copy exists yet.
///
/// # Errors
///
/// Returns the I/O error when the image file cannot be read or the copy cannot be written.
pub(crate) async fn compressed(
    library: &Library,
    image: &ImageRecord,
) -> std::io::Result<CompressedImage> {
    if let Some(found) = library.orbit.compressed_image(&image.id) {
        return Ok(found);
    }
    let source = library.storage.join(IMAGES).join(&image.id);
    let cache_dir = library.orbit.lz4_cache_dir();
    let temp = library
        .orbit
        .temp_dir()
        .join(format!("lz4-{}-{}", image.id, random_string(12)));
    let target = cache_dir.join(&image.id);

    let started = Instant::now();
    let temp_for_task = temp.clone();
    let written = tokio::task::spawn_blocking(move || compress_file(&source, &temp_for_task))
        .await
        .map_err(std::io::Error::other)?;
    let (bytes, etag) = match written {
        Ok(found) => found,
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
    };
    tokio::fs::create_dir_all(&cache_dir).await?;
    tokio::fs::rename(&temp, &target).await?;
    tracing::info!(
        image_id = image.id,
        compressed_bytes = bytes,
        stored_bytes = image.stored_size,
        elapsed_ms = started.elapsed().as_millis(),
        "image compressed with LZ4 for the images container"
    );
    let copy = CompressedImage {
        path: target,
        bytes,
        etag,
        last_modified: Utc::now(),
    };
    library
        .orbit
        .insert_compressed_image(&image.id, copy.clone());
    // An image deleted during the compression would otherwise leave its copy behind.
    if library.image(&image.id).is_none() {
        library.orbit.forget_image(&image.id);
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("image {} was deleted during its compression", image.id),
        ));
    }
    Ok(copy)
}

/// Writes `source` as one LZ4 frame (with the content size and a content checksum) to
/// `target` and returns the size and the MD5 hex of the frame.
fn compress_file(source: &Path, target: &PathBuf) -> std::io::Result<(u64, String)> {
    let input = std::fs::File::open(source)?;
    let content_len = input.metadata()?.len();
    let mut reader = BufReader::with_capacity(BUFFER_LEN, input);
    let output = HashingWriter {
        inner: BufWriter::with_capacity(BUFFER_LEN, std::fs::File::create(target)?),
        md5: Md5::new(),
        written: 0,
    };
    let frame = lz4_flex::frame::FrameInfo::new()
        .content_size(Some(content_len))
        .content_checksum(true);
    let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(frame, output);
    std::io::copy(&mut reader, &mut encoder)?;
    let mut output = encoder.finish().map_err(std::io::Error::other)?;
    output.inner.flush()?;
    Ok((output.written, hex::encode(output.md5.finalize())))
}

/// A writer that counts and hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    md5: Md5,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let count = self.inner.write(buf)?;
        self.md5.update(&buf[..count]);
        self.written += count as u64;
        Ok(count)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn compressed_file_decodes_to_source() {
        let folder = tempfile::tempdir().expect("temp folder");
        let source = folder.path().join("disk");
        let target = folder.path().join("disk.lz4");
        let content: Vec<u8> = (0..300_000_u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&source, &content).expect("write source");

        let (bytes, etag) = compress_file(&source, &target).expect("compression succeeds");

        let frame = std::fs::read(&target).expect("read frame");
        assert_eq!(bytes, frame.len() as u64);
        assert_eq!(etag, super::super::store::md5_hex(&frame));
        assert_eq!(&frame[..4], &[0x04, 0x22, 0x4d, 0x18], "LZ4 frame magic");
        let mut decoded = Vec::new();
        lz4_flex::frame::FrameDecoder::new(&frame[..])
            .read_to_end(&mut decoded)
            .expect("frame decodes");
        assert_eq!(decoded, content);
    }
}
