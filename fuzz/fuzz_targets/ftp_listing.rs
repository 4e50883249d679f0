//! Directory listings: raw `LIST` (Unix and MS-DOS forms) and `MLSD` bytes from a data connection.
#![no_main]

use brightbox_ftp::fuzzing::{decode_listing, parse_list, parse_mlsd};
use libfuzzer_sys::fuzz_target;

/// 2026-12-04T12:00:00Z, so that `LIST` lines without a year resolve the same way on every run.
const NOW_UNIX_SECONDS: i64 = 1_796_385_600;

fuzz_target!(|data: &[u8]| {
    // The first byte moves the clock by up to 255 days, which reaches the year boundary.
    let (shift, listing) = data.split_first().map_or((0, data), |(b, rest)| (*b, rest));
    let now = NOW_UNIX_SECONDS + i64::from(shift) * 86_400;

    let lines = decode_listing(listing);
    for line in &lines {
        assert!(!line.is_empty(), "decode_listing returned an empty line");
        assert!(!line.contains('\n'), "line {line:?} contains a line feed");
    }

    let entries = parse_list(&lines, now);
    assert!(entries.len() <= lines.len());
    for entry in &entries {
        assert!(
            !entry.name.trim().is_empty(),
            "empty name from {:?}",
            entry.raw
        );
        assert!(
            entry.name != "." && entry.name != "..",
            "dot entry from {:?}",
            entry.raw
        );
        assert!(
            lines.iter().any(|line| line.trim_end() == entry.raw),
            "raw {:?} is not one of the input lines",
            entry.raw
        );
        assert!(entry.raw.contains(entry.name.as_str()) || entry.raw.contains(" -> "));
    }

    let entries = parse_mlsd(&lines);
    assert!(entries.len() <= lines.len());
    for entry in &entries {
        assert!(!entry.name.is_empty(), "empty name from {:?}", entry.raw);
        assert!(
            entry.raw.ends_with(entry.name.as_str()),
            "name {:?} not at the end of {:?}",
            entry.name,
            entry.raw
        );
    }
});
