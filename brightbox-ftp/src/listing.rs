//! Parsers for directory listings: `MLSD` facts (RFC 3659) and the Unix and MS-DOS forms of
//! `LIST`, which has no standard format.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use tracing::warn;

/// The kind of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Anything else, for example a device or an `OS.` type of `MLSD`.
    Other,
}

/// One entry of a remote directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteEntry {
    /// The entry's name, without directory prefix. A name that is not valid UTF-8 is decoded
    /// lossily, with `U+FFFD` for each invalid byte.
    pub name: String,
    /// The entry's type.
    pub kind: EntryKind,
    /// Size in bytes, when the listing gives one.
    pub size: Option<u64>,
    /// Last modification time in UTC, when the listing gives one. `LIST` lines without a
    /// year are placed in the most recent year that is not in the future.
    pub modified: Option<DateTime<Utc>>,
    /// The listing line as the server sent it, lossily decoded.
    pub raw: String,
}

/// Splits raw listing bytes into lines and decodes each one. Lines that are not valid UTF-8 are
/// decoded lossily, and one warning names the first of them and their count.
pub(crate) fn decode_lines(bytes: &[u8]) -> Vec<String> {
    let mut invalid = 0_usize;
    let mut first_invalid = None;
    let lines = bytes
        .split(|byte| *byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .map(|line| match std::str::from_utf8(line) {
            Ok(text) => text.to_owned(),
            Err(_) => {
                let text = String::from_utf8_lossy(line).into_owned();
                invalid += 1;
                first_invalid.get_or_insert_with(|| text.clone());
                text
            }
        })
        .collect();
    if let Some(first) = first_invalid {
        warn!(
            count = invalid,
            first = %first,
            "listing lines are not valid UTF-8; decoded them with U+FFFD for invalid bytes"
        );
    }
    lines
}

/// Logs one warning for the lines a parser skipped, with the first of them and their count.
fn warn_skipped(verb: &str, skipped: &[&str]) {
    if let Some(first) = skipped.first() {
        warn!(
            count = skipped.len(),
            first = %first,
            "skipped {verb} lines in an unknown format"
        );
    }
}

/// Parses `MLSD` lines. Lines without facts and the `cdir`/`pdir` entries are skipped.
pub(crate) fn parse_mlsd(lines: &[String]) -> Vec<RemoteEntry> {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for line in lines {
        match parse_mlsd_line(line) {
            Some(Some(entry)) => entries.push(entry),
            Some(None) => {}
            None => skipped.push(line.as_str()),
        }
    }
    warn_skipped("MLSD", &skipped);
    entries
}

/// Returns `None` for an unparseable line and `Some(None)` for an entry to skip.
fn parse_mlsd_line(line: &str) -> Option<Option<RemoteEntry>> {
    let (facts, name) = line.split_once(' ')?;
    if name.is_empty() {
        return None;
    }
    let mut kind = EntryKind::Other;
    let mut size = None;
    let mut modified = None;
    for fact in facts.split(';').filter(|fact| !fact.is_empty()) {
        let (key, value) = fact.split_once('=')?;
        match key.to_ascii_lowercase().as_str() {
            "type" => match value.to_ascii_lowercase().as_str() {
                "file" => kind = EntryKind::File,
                "dir" => kind = EntryKind::Directory,
                "cdir" | "pdir" => return Some(None),
                "os.unix=symlink" | "os.unix=slink" => kind = EntryKind::Symlink,
                other if other.starts_with("os.unix=slink") => kind = EntryKind::Symlink,
                _ => kind = EntryKind::Other,
            },
            "size" => size = value.parse::<u64>().ok(),
            "modify" => modified = parse_timeval(value),
            _ => {}
        }
    }
    Some(Some(RemoteEntry {
        name: name.to_owned(),
        kind,
        size,
        modified,
        raw: line.to_owned(),
    }))
}

/// Parses an RFC 3659 time value `YYYYMMDDHHMMSS[.sss]` in UTC, as `MDTM` and `MLSD` send it.
pub(crate) fn parse_timeval(value: &str) -> Option<DateTime<Utc>> {
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (value, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| whole.get(range)?.parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(4..6)?,
        number(6..8)?,
    )?;
    let mut nanos = 0;
    if let Some(fraction) = fraction {
        if fraction.is_empty() || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        let digits = fraction.get(..fraction.len().min(9)).unwrap_or(fraction);
        let scale = 10_u32.pow(u32::try_from(9 - digits.len()).ok()?);
        nanos = digits.parse::<u32>().ok()? * scale;
    }
    let time =
        NaiveTime::from_hms_nano_opt(number(8..10)?, number(10..12)?, number(12..14)?, nanos)?;
    Some(Utc.from_utc_datetime(&NaiveDateTime::new(date, time)))
}

/// Parses `LIST` lines in the Unix or MS-DOS form. `total N` lines are skipped, and other lines
/// that fit neither form are logged as warnings and skipped.
pub(crate) fn parse_list(lines: &[String], now: DateTime<Utc>) -> Vec<RemoteEntry> {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for line in lines {
        let trimmed = line.trim_end();
        if is_total_line(trimmed) {
            continue;
        }
        let parsed = parse_unix_line(trimmed, now).or_else(|| parse_dos_line(trimmed));
        match parsed {
            Some(entry) if entry.name == "." || entry.name == ".." => {}
            Some(entry) => entries.push(entry),
            None => skipped.push(line.as_str()),
        }
    }
    warn_skipped("LIST", &skipped);
    entries
}

fn is_total_line(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words
        .next()
        .is_some_and(|word| word.eq_ignore_ascii_case("total"))
        && words
            .next()
            .is_some_and(|count| count.parse::<u64>().is_ok())
        && words.next().is_none()
}

/// Returns each whitespace-separated token with its byte offset in `line`.
fn tokens(line: &str) -> Vec<(usize, &str)> {
    let mut found = Vec::new();
    let mut start = None;
    for (index, character) in line.char_indices() {
        match (character.is_whitespace(), start) {
            (true, Some(begin)) => {
                found.push((begin, line.get(begin..index).unwrap_or_default()));
                start = None;
            }
            (false, None) => start = Some(index),
            _ => {}
        }
    }
    if let Some(begin) = start {
        found.push((begin, line.get(begin..).unwrap_or_default()));
    }
    found
}

fn month_number(token: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = token.to_ascii_lowercase();
    let index = MONTHS.iter().position(|month| *month == lower)?;
    u32::try_from(index + 1).ok()
}

/// Parses `drwxr-xr-x 2 owner group 4096 Jan 02 12:34 name` and its variants without owner or
/// group. The date (`month day time-or-year`) anchors the parse, so names may contain spaces and
/// start with digits.
fn parse_unix_line(line: &str, now: DateTime<Utc>) -> Option<RemoteEntry> {
    let kind = match line.chars().next()? {
        '-' => EntryKind::File,
        'd' => EntryKind::Directory,
        'l' => EntryKind::Symlink,
        'b' | 'c' | 'p' | 's' | 'D' => EntryKind::Other,
        _ => return None,
    };
    let words = tokens(line);
    let permissions = words.first()?.1;
    if permissions.len() < 10 {
        return None;
    }

    // The first token after the permissions that is a month followed by a day and a time or
    // year, with a size just before it, starts the date.
    for index in 2..words.len().saturating_sub(3) {
        let Some(month) = month_number(words.get(index)?.1) else {
            continue;
        };
        let Ok(size) = words.get(index - 1)?.1.parse::<u64>() else {
            continue;
        };
        let Some(day) = words
            .get(index + 1)?
            .1
            .parse::<u32>()
            .ok()
            .filter(|day| (1..=31).contains(day))
        else {
            continue;
        };
        let (time_offset, time_or_year) = *words.get(index + 2)?;
        let Some(modified) = unix_date(month, day, time_or_year, now) else {
            continue;
        };
        let after_time = time_offset + time_or_year.len();
        let rest = line.get(after_time..)?;
        // One space separates the date from the name; further spaces belong to the name.
        let mut name = rest.strip_prefix(' ').unwrap_or(rest).to_owned();
        if kind == EntryKind::Symlink
            && let Some((link, _target)) = name.split_once(" -> ")
        {
            name = link.to_owned();
        }
        // A line that ends at the date, or a link line with nothing before ` -> `, has no name.
        if name.trim().is_empty() {
            return None;
        }
        return Some(RemoteEntry {
            name,
            kind,
            size: Some(size),
            modified: Some(modified),
            raw: line.to_owned(),
        });
    }
    None
}

/// Interprets `HH:MM` (within the last year) or `YYYY` after `month day`.
fn unix_date(
    month: u32,
    day: u32,
    time_or_year: &str,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if let Some((hour, minute)) = time_or_year.split_once(':') {
        let time = NaiveTime::from_hms_opt(hour.parse().ok()?, minute.parse().ok()?, 0)?;
        let this_year = NaiveDate::from_ymd_opt(now.year(), month, day)
            .map(|date| Utc.from_utc_datetime(&NaiveDateTime::new(date, time)));
        // Servers omit the year for the last six months; a date more than a day ahead of now
        // belongs to the previous year.
        match this_year {
            Some(date) if date <= now + chrono::Duration::days(1) => Some(date),
            _ => NaiveDate::from_ymd_opt(now.year() - 1, month, day)
                .map(|date| Utc.from_utc_datetime(&NaiveDateTime::new(date, time))),
        }
    } else {
        if time_or_year.len() != 4 {
            return None;
        }
        let year = time_or_year.parse::<i32>().ok()?;
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        Some(Utc.from_utc_datetime(&NaiveDateTime::new(date, NaiveTime::MIN)))
    }
}

/// Parses `01-02-24  03:04PM  <DIR>  name` and `01-02-2024  15:04  123456  name`.
fn parse_dos_line(line: &str) -> Option<RemoteEntry> {
    let words = tokens(line);
    let (_, date) = *words.first()?;
    let (_, time) = *words.get(1)?;
    let (size_offset, size_or_dir) = *words.get(2)?;
    let (name_offset, _) = *words.get(3)?;

    let mut parts = date.split(['-', '/']);
    let month = parts.next()?.parse::<u32>().ok()?;
    let day = parts.next()?.parse::<u32>().ok()?;
    let year_text = parts.next()?;
    let mut year = year_text.parse::<i32>().ok()?;
    if year_text.len() == 2 {
        year += if year < 70 { 2000 } else { 1900 };
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)?;

    let upper = time.to_ascii_uppercase();
    let (clock, meridiem) = if let Some(clock) = upper.strip_suffix("AM") {
        (clock, Some(false))
    } else if let Some(clock) = upper.strip_suffix("PM") {
        (clock, Some(true))
    } else {
        (upper.as_str(), None)
    };
    let (hour, minute) = clock.split_once(':')?;
    let mut hour = hour.parse::<u32>().ok()?;
    match meridiem {
        Some(false) if hour == 12 => hour = 0,
        Some(true) if hour < 12 => hour += 12,
        _ => {}
    }
    let time = NaiveTime::from_hms_opt(hour, minute.parse().ok()?, 0)?;

    let (kind, size) = if size_or_dir.eq_ignore_ascii_case("<DIR>") {
        (EntryKind::Directory, None)
    } else {
        (EntryKind::File, Some(size_or_dir.parse::<u64>().ok()?))
    };
    debug_assert!(name_offset > size_offset);
    let name = line.get(name_offset..)?.to_owned();
    Some(RemoteEntry {
        name,
        kind,
        size,
        modified: Some(Utc.from_utc_datetime(&NaiveDateTime::new(date, time))),
        raw: line.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> Option<DateTime<Utc>> {
        Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
            .single()
    }

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|line| (*line).to_owned()).collect()
    }

    #[test]
    fn list_unix_and_dos_table() {
        let input = lines(&[
            "total 12",
            "-rw-r--r--    1 1001     1001     4400000000 Mar 05  2024 debian-12.img",
            "-rw-r--r--    1 ftp      ftp          1024 Nov 30 09:15 2024 report v2.img",
            "drwxr-xr-x    2 ftp      ftp          4096 Dec 01 23:59 incoming",
            "lrwxrwxrwx    1 ftp      ftp            11 Jan 10  2025 latest.img -> debian.img",
            "-rw-r--r--    1 ftp          77 Dec 25 10:00 no-group.img",
            "-rw-r--r-- 1 ftp ftp 5 Jan 1 2020 Jan 1 2020 tricky.img",
            "01-02-24  03:04PM       <DIR>          Old Images",
            "12-31-2025  11:30AM            123456789 win disk.vhd",
            "drwxr-xr-x    2 ftp      ftp          4096 Dec 01 10:00 .",
            "this line is not a listing",
        ]);
        let entries = parse_list(&input, now());
        type Expected<'a> = (&'a str, EntryKind, Option<u64>, Option<DateTime<Utc>>);
        let expected: Vec<Expected<'_>> = vec![
            (
                "debian-12.img",
                EntryKind::File,
                Some(4_400_000_000),
                utc(2024, 3, 5, 0, 0),
            ),
            (
                "2024 report v2.img",
                EntryKind::File,
                Some(1024),
                utc(2026, 11, 30, 9, 15),
            ),
            (
                "incoming",
                EntryKind::Directory,
                Some(4096),
                utc(2026, 12, 1, 23, 59),
            ),
            (
                "latest.img",
                EntryKind::Symlink,
                Some(11),
                utc(2025, 1, 10, 0, 0),
            ),
            (
                "no-group.img",
                EntryKind::File,
                Some(77),
                utc(2025, 12, 25, 10, 0),
            ),
            (
                "Jan 1 2020 tricky.img",
                EntryKind::File,
                Some(5),
                utc(2020, 1, 1, 0, 0),
            ),
            (
                "Old Images",
                EntryKind::Directory,
                None,
                utc(2024, 1, 2, 15, 4),
            ),
            (
                "win disk.vhd",
                EntryKind::File,
                Some(123_456_789),
                utc(2025, 12, 31, 11, 30),
            ),
        ];
        assert_eq!(entries.len(), expected.len(), "{entries:#?}");
        for (entry, (name, kind, size, modified)) in entries.iter().zip(expected) {
            assert_eq!(entry.name, name);
            assert_eq!(entry.kind, kind, "kind of {name}");
            assert_eq!(entry.size, size, "size of {name}");
            assert_eq!(entry.modified, modified, "time of {name}");
        }
    }

    #[test]
    fn list_symlink_without_name_is_skipped() {
        let input = lines(&[
            "lrwxrwxrwx 1 ftp ftp 11 Jan 25 1001  -> debian.img",
            "lrwxrwxrwx 1 ftp ftp 11 Jan 25 2025 latest.img -> debian.img",
        ]);
        let entries = parse_list(&input, now());
        let names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
        assert_eq!(names, ["latest.img"]);
    }

    #[test]
    fn list_non_utf8_name_is_lossy() {
        let bytes = b"-rw-r--r-- 1 ftp ftp 10 Jan 02  2025 caf\xe9.img\r\n";
        let decoded = decode_lines(bytes);
        let entries = parse_list(&decoded, now());
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries.first().map(|entry| entry.name.as_str()),
            Some("caf\u{fffd}.img")
        );
    }

    #[test]
    fn mlsd_table() {
        let input = lines(&[
            "type=cdir;modify=20261201101010; .",
            "type=pdir;modify=20261201101010; ..",
            "type=file;size=4400000000;modify=20261201101010.123; disk image.img",
            "Type=dir;Modify=20250102030405; 2025 backups",
            "type=OS.unix=symlink;size=9; link",
            "no facts here",
        ]);
        let entries = parse_mlsd(&input);
        assert_eq!(entries.len(), 3, "{entries:#?}");
        let first = entries.first().cloned();
        let first = first.as_ref();
        assert_eq!(
            first.map(|entry| entry.name.as_str()),
            Some("disk image.img")
        );
        assert_eq!(first.and_then(|entry| entry.size), Some(4_400_000_000));
        assert_eq!(
            first
                .and_then(|entry| entry.modified)
                .map(|time| time.timestamp_subsec_millis()),
            Some(123)
        );
        assert_eq!(
            entries.get(1).map(|entry| entry.kind),
            Some(EntryKind::Directory)
        );
        assert_eq!(
            entries.get(1).map(|entry| entry.name.as_str()),
            Some("2025 backups")
        );
        assert_eq!(
            entries.get(2).map(|entry| entry.kind),
            Some(EntryKind::Symlink)
        );
    }

    #[test]
    fn timeval_table() {
        assert_eq!(
            parse_timeval("20240102030405"),
            utc(2024, 1, 2, 3, 4).map(|t| t + chrono::Duration::seconds(5))
        );
        assert!(parse_timeval("2024010203040").is_none());
        assert!(parse_timeval("20241302030405").is_none());
        assert!(parse_timeval("20240102030405.").is_none());
        assert!(parse_timeval("2024010203040x").is_none());
    }
}
