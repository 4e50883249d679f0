//! HTTP header values from API responses: the `Link` header of a snapshot response and
//! `Retry-After` as delta seconds or an HTTP date.
#![no_main]

use std::time::{Duration, SystemTime};

use brightbox_api::fuzzing::{parse_retry_after, snapshot_image_from_link};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data)
        && let Some(image) = snapshot_image_from_link(value)
    {
        assert!(image.as_str().starts_with("img-"), "{image} from {value:?}");
        assert!(
            value.contains(image.as_str()),
            "{image} is not in {value:?}"
        );
    }

    // 2026-12-04T12:00:00Z
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_385_600);
    if let Some(delay) = parse_retry_after(data, now)
        && let Ok(seconds) = std::str::from_utf8(data)
            .map(str::trim)
            .map(str::parse::<u64>)
        && let Ok(seconds) = seconds
    {
        assert_eq!(delay, Duration::from_secs(seconds));
    }
});
