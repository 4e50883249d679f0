//! Retry policy: backoff with jitter and `Retry-After` parsing.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Retry policy for requests that fail with HTTP 429, 502, 503 or 504, a connection failure or a timeout.
///
/// `GET`, `PUT` and `DELETE` requests, and token requests, are retried on all of these. A `POST` that creates
/// something (an image, a server, a snapshot, an FTP password) is resent in two cases only. One is a connection
/// that could not be opened (TCP or TLS), so no request reached the server. The other is a 429, which means the
/// server did not process it. After a 502, 503, 504 or a timeout the server may have acted on the request, and a
/// repeat could create a duplicate.
///
/// Errors returned after retries carry the number of attempts and the time spent
/// ([`ApiError::attempts`](crate::ApiError::attempts), [`ApiError::elapsed`](crate::ApiError::elapsed),
/// [`Error::Transport`](crate::Error::Transport)).
///
/// ```
/// use std::time::Duration;
/// use brightbox_api::RetryConfig;
///
/// let retry = RetryConfig::default()
///     .max_attempts(5)
///     .initial_backoff(Duration::from_millis(250));
/// assert_eq!(retry.max_attempts, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Total attempts per request, including the first. `1` turns retries off. Default 4.
    pub max_attempts: u32,
    /// Delay before the first retry; it doubles with each further retry. Default 500 ms.
    pub initial_backoff: Duration,
    /// Upper bound of the doubling delay. Default 30 s.
    pub max_backoff: Duration,
    /// Maximum `Retry-After` delay the client waits for. A longer one ends the retries at once, and the error
    /// carries the requested delay. Default 120 s.
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryConfig {
    /// Returns a policy that makes one attempt only.
    pub fn disabled() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets the total attempts per request, including the first; `0` is treated as `1`.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the delay before the first retry.
    pub fn initial_backoff(mut self, delay: Duration) -> Self {
        self.initial_backoff = delay;
        self
    }

    /// Sets the upper bound of the doubling delay.
    pub fn max_backoff(mut self, delay: Duration) -> Self {
        self.max_backoff = delay;
        self
    }

    /// Sets the maximum `Retry-After` delay the client waits for.
    pub fn max_retry_after(mut self, delay: Duration) -> Self {
        self.max_retry_after = delay;
        self
    }

    /// Returns the delay before retry number `retry` (1 for the first retry).
    ///
    /// The delay is `initial_backoff * 2^(retry-1)`, capped at `max_backoff`, and then reduced by a random share of
    /// up to a quarter so that clients started together spread out.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(16);
        let base = self
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.max_backoff);
        base.mul_f64(1.0 - 0.25 * random_fraction())
    }

    /// Returns the delay before retry number `retry`, given the server's `Retry-After` delay if it sent one.
    ///
    /// `Retry-After` is a lower bound: the client waits for it or for its own backoff, whichever is longer. So a
    /// server that replies with `Retry-After: 0` cannot make a burst of retries bypass the backoff.
    pub(crate) fn delay_before_retry(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(retry);
        retry_after.map_or(backoff, |requested| requested.max(backoff))
    }
}

/// Returns a pseudo-random number in `[0, 1)`.
///
/// `RandomState` is seeded per process and varies per call, which is enough to spread retries; it is not meant
/// for anything secret.
pub(crate) fn random_fraction() -> f64 {
    let bits = RandomState::new().hash_one(SystemTime::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses `Retry-After` as delta seconds or as an HTTP date relative to `now`.
///
/// A date in the past gives a zero delay. An unparseable value gives `None`.
pub(crate) fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }

    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let target = SystemTime::from(date.with_timezone(&chrono::Utc));
    Some(target.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers_with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn retry_after_zero_keeps_backoff() {
        let config = RetryConfig::default();
        let delay = config.delay_before_retry(3, Some(Duration::ZERO));
        // The third retry waits 4 × initial_backoff, less at most a quarter of jitter.
        let shortest = config.initial_backoff.saturating_mul(4).mul_f64(0.75);
        assert!(
            delay >= shortest,
            "delay {delay:?} is shorter than the backoff {shortest:?}"
        );
    }

    #[test]
    fn retry_after_longer_than_backoff_wins() {
        let config = RetryConfig::default();
        let delay = config.delay_before_retry(1, Some(Duration::from_secs(30)));
        assert_eq!(delay, Duration::from_secs(30));
    }

    #[test]
    fn retry_after_seconds() {
        let parsed = parse_retry_after(&headers_with("7"), SystemTime::now());
        assert_eq!(parsed, Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        // 2015-10-21T07:28:00Z is 1_445_412_480 seconds after the epoch.
        let parsed = parse_retry_after(&headers_with("Wed, 21 Oct 2015 07:28:00 GMT"), now);
        assert_eq!(parsed, Some(Duration::from_secs(10)));
    }

    #[test]
    fn retry_after_past_date_is_zero() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
        let parsed = parse_retry_after(&headers_with("Wed, 21 Oct 2015 07:28:00 GMT"), now);
        assert_eq!(parsed, Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_is_none() {
        assert_eq!(
            parse_retry_after(&headers_with("soon"), SystemTime::now()),
            None
        );
        assert_eq!(
            parse_retry_after(&HeaderMap::new(), SystemTime::now()),
            None
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let config = RetryConfig::default()
            .initial_backoff(Duration::from_secs(1))
            .max_backoff(Duration::from_secs(4));
        for (retry, base) in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 4.0), (40, 4.0)] {
            let delay = config.backoff(retry).as_secs_f64();
            assert!(delay <= base, "retry {retry}: {delay} > {base}");
            assert!(
                delay >= base * 0.75,
                "retry {retry}: {delay} < {}",
                base * 0.75
            );
        }
    }

    #[test]
    fn random_fraction_in_range() {
        for _ in 0..100 {
            let value = random_fraction();
            assert!((0.0..1.0).contains(&value), "{value}");
        }
    }
}
