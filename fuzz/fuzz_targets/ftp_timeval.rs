//! RFC 3659 time values (`YYYYMMDDHHMMSS[.sss]`) from `MDTM` replies and `MLSD` `modify` facts.
#![no_main]

use brightbox_ftp::fuzzing::parse_timeval;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Some(time) = parse_timeval(value) else {
        return;
    };
    // Every accepted value prints back to its first 14 digits.
    let whole = value.split('.').next().unwrap_or(value);
    assert_eq!(time.format("%Y%m%d%H%M%S").to_string(), whole, "{value:?}");
});
