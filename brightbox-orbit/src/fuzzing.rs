//! Entry points for the fuzz targets in the workspace's `fuzz` folder.
//!
//! Compiled only with the `fuzzing` feature. This module is not part of the stable API: it
//! exposes the internal parsers of Orbit responses so that fuzz targets can call them directly,
//! and it changes whenever those parsers change.

use tokio::sync::mpsc;

use crate::download::SinkError;

/// Builds a response whose only header is `Content-Range` with these bytes, or `None` when
/// they are not a valid header value.
fn response_with_content_range(value: &[u8]) -> Option<reqwest::Response> {
    let value = http::HeaderValue::from_bytes(value).ok()?;
    let response = http::Response::builder()
        .header(http::header::CONTENT_RANGE, value)
        .body(Vec::<u8>::new())
        .ok()?;
    Some(reqwest::Response::from(response))
}

/// Parses a `Content-Range: bytes start-end/total` value into `(start, total)`, as a resumed
/// download reads it.
pub fn parse_content_range(value: &[u8]) -> Option<(u64, Option<u64>)> {
    crate::download::parse_content_range(&response_with_content_range(value)?)
}

/// Parses a `Content-Range: bytes */total` value of a `416` response into the total.
pub fn unsatisfied_range_total(value: &[u8]) -> Option<u64> {
    crate::download::unsatisfied_range_total(&response_with_content_range(value)?)
}

/// Decodes an LZ4 frame that arrives in `chunks` into `file`, skipping all-zero blocks, and
/// returns the decoded length.
///
/// Call it outside an async runtime: the decoder blocks on its input channel.
///
/// # Errors
///
/// The I/O error of the decoder for an invalid frame, or of the file for a failed write.
pub fn decode_lz4_sparse(chunks: Vec<Vec<u8>>, file: std::fs::File) -> std::io::Result<u64> {
    let (sender, receiver) = mpsc::channel(chunks.len().max(1));
    for chunk in chunks {
        sender
            .try_send(chunk)
            .map_err(|error| std::io::Error::other(error.to_string()))?;
    }
    drop(sender);
    crate::download::decode_sparse(receiver, file).map_err(|error| match error {
        SinkError::Decode(source) | SinkError::Write(_, source) => source,
    })
}
