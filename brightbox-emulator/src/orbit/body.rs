//! Streaming response bodies over one or more files, and `Range` headers.

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read from a file per body chunk.
const CHUNK_LEN: u64 = 256 * 1024;

/// One file of a response body: an object, a segment or a compressed image.
#[derive(Debug)]
pub(crate) enum Piece {
    /// A file opened while the object record was read, so that it matches the record.
    Open { file: std::fs::File, len: u64 },
    /// A file opened when the stream reaches it (a segment of a Static Large Object).
    Path { path: PathBuf, len: u64 },
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::Open { len, .. } | Piece::Path { len, .. } => *len,
        }
    }
}

struct StreamState {
    pieces: VecDeque<Piece>,
    /// Bytes still to skip before the range starts.
    skip: u64,
    /// Bytes still to send.
    remaining: u64,
    current: Option<(tokio::fs::File, u64)>,
}

/// Returns a body that streams `len` bytes of the concatenated `pieces`, starting at
/// byte `start`. The stream ends with an error when a file is shorter than its record,
/// which aborts the response as a failed backend read does in Swift.
pub(crate) fn stream(pieces: Vec<Piece>, start: u64, len: u64) -> Body {
    let state = StreamState {
        pieces: pieces.into(),
        skip: start,
        remaining: len,
        current: None,
    };
    let stream = futures_util::stream::try_unfold(state, next_chunk);
    Body::from_stream(stream)
}

async fn next_chunk(mut state: StreamState) -> std::io::Result<Option<(Bytes, StreamState)>> {
    loop {
        if state.remaining == 0 {
            return Ok(None);
        }
        let Some((file, piece_left)) = state.current.as_mut() else {
            let Some(piece) = state.pieces.pop_front() else {
                return Err(short_read("the listed pieces end before the body"));
            };
            let piece_len = piece.len();
            if state.skip >= piece_len {
                state.skip -= piece_len;
                continue;
            }
            let mut file = match piece {
                Piece::Open { file, .. } => tokio::fs::File::from_std(file),
                Piece::Path { path, .. } => tokio::fs::File::open(path).await?,
            };
            file.seek(SeekFrom::Start(state.skip)).await?;
            state.current = Some((file, piece_len - state.skip));
            state.skip = 0;
            continue;
        };

        let want = CHUNK_LEN.min(state.remaining).min(*piece_left);
        if want == 0 {
            state.current = None;
            continue;
        }
        // `want` is at most CHUNK_LEN, so it fits in usize.
        let mut buffer = vec![0_u8; want as usize];
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Err(short_read("a file ended before the size in its record"));
        }
        buffer.truncate(read);
        *piece_left -= read as u64;
        state.remaining -= read as u64;
        if *piece_left == 0 {
            state.current = None;
        }
        return Ok(Some((Bytes::from(buffer), state)));
    }
}

fn short_read(message: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, message)
}

/// The part of an object a `Range` header selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No usable range: send the whole object with 200.
    Whole,
    /// Send bytes `start..=end` with 206.
    Part { start: u64, end: u64 },
    /// The range starts at or after the end of the object: 416.
    Unsatisfiable,
}

/// Parses a single `bytes=N-`, `bytes=N-M` or `bytes=-N` range against an object of
/// `len` bytes. Malformed headers and multiple ranges are ignored, as RFC 9110
/// (section 14.2) allows, so the whole object is sent.
pub(crate) fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|value| value.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // A suffix range: the last N bytes.
        let Ok(suffix) = last.parse::<u64>() else {
            return RangeRequest::Whole;
        };
        if suffix == 0 || len == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Part {
            start: len.saturating_sub(suffix),
            end: len - 1,
        };
    }
    let Ok(start) = first.parse::<u64>() else {
        return RangeRequest::Whole;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(end) if end >= start => end,
            _ => return RangeRequest::Whole,
        }
    };
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part {
        start,
        end: end.min(len - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range(None, 10), RangeRequest::Whole);
        assert_eq!(
            parse_range(Some("bytes=4-"), 10),
            RangeRequest::Part { start: 4, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=2-5"), 10),
            RangeRequest::Part { start: 2, end: 5 }
        );
        assert_eq!(
            parse_range(Some("bytes=2-50"), 10),
            RangeRequest::Part { start: 2, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            RangeRequest::Part { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-30"), 10),
            RangeRequest::Part { start: 0, end: 9 }
        );
    }

    #[test]
    fn unusable_ranges() {
        assert_eq!(
            parse_range(Some("bytes=10-"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=5-2"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=x-"), 10), RangeRequest::Whole);
    }

    #[tokio::test]
    async fn stream_spans_pieces() {
        let folder = tempfile::tempdir().expect("temp folder");
        let first = folder.path().join("first");
        let second = folder.path().join("second");
        std::fs::write(&first, b"hello ").expect("write first");
        std::fs::write(&second, b"world").expect("write second");
        let pieces = vec![
            Piece::Open {
                file: std::fs::File::open(&first).expect("open first"),
                len: 6,
            },
            Piece::Path {
                path: second,
                len: 5,
            },
        ];
        let body = stream(pieces, 4, 5);
        let bytes = axum::body::to_bytes(body, 1024).await.expect("body reads");
        assert_eq!(&bytes[..], b"o wor");
    }
}
