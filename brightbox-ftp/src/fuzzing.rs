//! Entry points for the fuzz targets in the workspace's `fuzz` folder.
//!
//! Compiled only with the `fuzzing` feature. This module is not part of the stable API: it
//! exposes internal parsers of server output so that fuzz targets can call them directly, and it
//! changes whenever those parsers change.

use chrono::{DateTime, TimeZone, Utc};
use suppaftp::Status;

pub use crate::listing::{EntryKind, RemoteEntry};

/// Splits raw listing bytes into decoded lines, as [`crate::FtpsClient::list`] does.
pub fn decode_listing(bytes: &[u8]) -> Vec<String> {
    crate::listing::decode_lines(bytes)
}

/// Parses `LIST` lines as if the clock showed `now_unix_seconds`, or the epoch when that value
/// is out of range.
pub fn parse_list(lines: &[String], now_unix_seconds: i64) -> Vec<RemoteEntry> {
    let now = Utc
        .timestamp_opt(now_unix_seconds, 0)
        .single()
        .unwrap_or_default();
    crate::listing::parse_list(lines, now)
}

/// Parses `MLSD` lines.
pub fn parse_mlsd(lines: &[String]) -> Vec<RemoteEntry> {
    crate::listing::parse_mlsd(lines)
}

/// Parses an RFC 3659 time value (`YYYYMMDDHHMMSS[.sss]`).
pub fn parse_timeval(value: &str) -> Option<DateTime<Utc>> {
    crate::listing::parse_timeval(value)
}

/// Returns the reply code and the joined text of a raw control-connection reply.
pub fn reply_parts(body: &[u8]) -> (u32, String) {
    let response = suppaftp::types::Response::new(Status::Unknown, body.to_vec());
    crate::client::reply_parts(&response)
}

/// Classifies a raw reply to `command` as `"not found"`, `"permission denied"` or `"other"`,
/// the way negative replies are mapped to [`crate::FtpError`] variants.
pub fn classify_reply(body: &[u8], command: &str) -> &'static str {
    let (code, message) = reply_parts(body);
    let (verb, _path) = crate::client::split_command(command);
    match crate::client::classify_reply(code, &verb, &message) {
        crate::client::ReplyMeaning::NotFound => "not found",
        crate::client::ReplyMeaning::PermissionDenied => "permission denied",
        crate::client::ReplyMeaning::Other => "other",
    }
}

/// Reads the time from a raw `MDTM` reply the way [`crate::FtpsClient::modified`] does.
pub fn parse_mdtm_reply(body: &[u8]) -> Option<DateTime<Utc>> {
    let (_code, text) = reply_parts(body);
    crate::listing::parse_timeval(text.trim())
}

/// Builds the client's view of a `FEAT` reply from `(name, value)` pairs and returns whether
/// it lists `EPSV`, `MLSD` and `REST STREAM`, in that order.
pub fn features(listed: Vec<(String, Option<String>)>) -> (bool, bool, bool) {
    let reply: suppaftp::types::Features = listed.into_iter().collect();
    let features = crate::client::Features::from_reply(reply);
    (
        features.has("EPSV"),
        features.has("MLSD"),
        features.rest_stream(),
    )
}

/// Detects the image format of a download whose data arrives in `chunks`.
pub fn sniff_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> crate::ImageFormat {
    let mut sniffer = crate::format::Sniffer::default();
    for chunk in chunks {
        sniffer.feed(chunk);
    }
    sniffer.format()
}
