//! Faults that tests switch on at run time: failed registrations, the retired FTP
//! service, error statuses on chosen paths and the registration delay.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;

/// A handle that changes how a running emulator behaves, for tests of error handling.
///
/// Get it from [`Emulator::faults`](crate::Emulator::faults). Clones share the same
/// state, so a clone can be moved into another task. Each setting applies from the next
/// request on.
///
/// Statuses passed to the methods must be error statuses, 400 to 599. Any other value
/// is logged as a warning and replaced by 500, because a fault that succeeds would let
/// a test pass without exercising its error path.
#[derive(Clone)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Faults")
            .field("fail_next_register", &state.fail_next_register)
            .field(
                "fail_next_register_after_create",
                &state.fail_next_register_after_create,
            )
            .field(
                "registration_outcome_failed",
                &state.registration_outcome_failed,
            )
            .field("ftp_retired", &state.ftp_retired)
            .field("request_rules", &state.request_rules)
            .field("registration_delay", &state.registration_delay)
            .finish()
    }
}

#[derive(Debug)]
struct FaultState {
    fail_next_register: Option<StatusCode>,
    fail_next_register_after_create: Option<StatusCode>,
    registration_outcome_failed: bool,
    ftp_retired: bool,
    request_rules: Vec<RequestRule>,
    registration_delay: Duration,
}

/// Requests under `path_prefix` get `status` until `remaining` reaches zero.
#[derive(Debug, Clone)]
struct RequestRule {
    path_prefix: String,
    status: StatusCode,
    remaining: u32,
    retry_after: Option<RetryAfter>,
}

/// The `Retry-After` value a request fault sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryAfter {
    /// A delay in whole seconds.
    Seconds(u64),
    /// An HTTP-date this long after the response is sent.
    DateAfter(Duration),
}

impl RetryAfter {
    /// Formats the header value: seconds, or an IMF-fixdate such as
    /// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110, section 5.6.7).
    pub(crate) fn header_value(self) -> String {
        match self {
            RetryAfter::Seconds(seconds) => seconds.to_string(),
            RetryAfter::DateAfter(delay) => {
                let at = chrono::Utc::now() + crate::library::time_delta(delay);
                at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
            }
        }
    }
}

/// The error response a request fault sends instead of the real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InjectedFailure {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<RetryAfter>,
    pub(crate) path_prefix: String,
}

impl Faults {
    pub(crate) fn new(
        registration_delay: Duration,
        ftp_retired: bool,
        outcome_failed: bool,
    ) -> Self {
        Faults {
            state: Arc::new(Mutex::new(FaultState {
                fail_next_register: None,
                fail_next_register_after_create: None,
                registration_outcome_failed: outcome_failed,
                ftp_retired,
                request_rules: Vec::new(),
                registration_delay,
            })),
        }
    }

    /// Makes the next `POST /1.0/images` create the image as usual (the upload moves to
    /// `images/<id>` or the snapshot file is written) but return `status`, such as 502,
    /// with an API error body in place of 201.
    ///
    /// This is the case where a client cannot know whether its request took effect:
    /// a blind retry would register a second image. The fault applies once.
    pub fn fail_next_register_after_create(&self, status: u16) {
        let status = error_status(status, "fail_next_register_after_create");
        self.lock().fail_next_register_after_create = Some(status);
    }

    /// Makes the next `POST /1.0/images` return `status` with an API error body without
    /// creating anything: the upload stays in `incoming/`. The fault applies once.
    ///
    /// When both this and [`Faults::fail_next_register_after_create`] are set, this one
    /// applies first and the other waits for the following request. A request that is
    /// rejected as invalid leaves a pending "create, then fail" fault in place.
    pub fn fail_next_register(&self, status: u16) {
        let status = error_status(status, "fail_next_register");
        self.lock().fail_next_register = Some(status);
    }

    /// While `on`, every new image (upload or snapshot) ends `failed` after the
    /// registration delay, as when the real service cannot convert an image.
    /// Images created before the call keep their outcome.
    pub fn registration_outcome_failed(&self, on: bool) {
        self.lock().registration_outcome_failed = on;
    }

    /// While `on`, the FTP password reset routes return `410 Gone` with an API error body,
    /// as Brightbox has done since it retired the library FTP service in 2023, and account
    /// JSON has no `library_ftp_*` fields.
    ///
    /// The FTPS server itself keeps running, and [`Emulator::reset_ftp_password`](crate::Emulator::reset_ftp_password)
    /// still works, so tests can mix both paths.
    pub fn ftp_retired(&self, on: bool) {
        self.lock().ftp_retired = on;
    }

    /// Makes the next `count` requests whose path starts with `path_prefix` (such as
    /// `/1.0/images`, `/token` or the Orbit path `/v1/acc-emu01/uploads`) return `status`
    /// with an API error body, before authentication and routing.
    ///
    /// Rules are checked in the order they were added, and the first matching rule with
    /// requests left applies. A `count` of 0 adds nothing.
    pub fn fail_next_requests(&self, path_prefix: &str, status: u16, count: u32) {
        self.add_request_rule(path_prefix, status, count, None);
    }

    /// Works as [`Faults::fail_next_requests`] and also sends `Retry-After` with
    /// `retry_after` in whole seconds (rounded down), as a rate limiter or a
    /// service in maintenance does with 429 and 503.
    pub fn fail_next_requests_with_retry_after(
        &self,
        path_prefix: &str,
        status: u16,
        count: u32,
        retry_after: Duration,
    ) {
        let retry_after = RetryAfter::Seconds(retry_after.as_secs());
        self.add_request_rule(path_prefix, status, count, Some(retry_after));
    }

    /// Works as [`Faults::fail_next_requests_with_retry_after`], but sends `Retry-After`
    /// as an HTTP-date, `retry_after` after each response is sent (rounded down to whole
    /// seconds by the date format).
    pub fn fail_next_requests_with_retry_after_date(
        &self,
        path_prefix: &str,
        status: u16,
        count: u32,
        retry_after: Duration,
    ) {
        let retry_after = RetryAfter::DateAfter(retry_after);
        self.add_request_rule(path_prefix, status, count, Some(retry_after));
    }

    /// Removes every request rule and one-shot registration fault, and switches
    /// [`Faults::registration_outcome_failed`] and [`Faults::ftp_retired`] off.
    /// The registration delay keeps its value.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.fail_next_register = None;
        state.fail_next_register_after_create = None;
        state.registration_outcome_failed = false;
        state.ftp_retired = false;
        state.request_rules.clear();
    }

    /// Sets how long new images stay `creating` and new servers stay `creating` (and
    /// deleted servers stay `deleting`). Images and servers created earlier keep their
    /// times.
    pub fn registration_delay(&self, delay: Duration) {
        self.lock().registration_delay = delay;
    }

    /// Returns the current registration delay.
    pub fn current_registration_delay(&self) -> Duration {
        self.lock().registration_delay
    }

    pub(crate) fn is_ftp_retired(&self) -> bool {
        self.lock().ftp_retired
    }

    pub(crate) fn is_registration_outcome_failed(&self) -> bool {
        self.lock().registration_outcome_failed
    }

    /// Takes the pending "fail without creating" registration fault, if any.
    pub(crate) fn take_register_failure(&self) -> Option<StatusCode> {
        self.lock().fail_next_register.take()
    }

    /// Takes the pending "create, then fail" registration fault, if any. The caller
    /// takes it only after the image was created, so that a rejected request leaves it
    /// for the next one.
    pub(crate) fn take_register_failure_after_create(&self) -> Option<StatusCode> {
        self.lock().fail_next_register_after_create.take()
    }

    /// Returns the failure for a request to `path` and counts it, if a rule matches.
    pub(crate) fn take_request_failure(&self, path: &str) -> Option<InjectedFailure> {
        let mut state = self.lock();
        let rule = state
            .request_rules
            .iter_mut()
            .find(|rule| rule.remaining > 0 && path.starts_with(&rule.path_prefix))?;
        rule.remaining -= 1;
        let failure = InjectedFailure {
            status: rule.status,
            retry_after: rule.retry_after,
            path_prefix: rule.path_prefix.clone(),
        };
        state.request_rules.retain(|rule| rule.remaining > 0);
        Some(failure)
    }

    fn add_request_rule(
        &self,
        path_prefix: &str,
        status: u16,
        count: u32,
        retry_after: Option<RetryAfter>,
    ) {
        if count == 0 {
            return;
        }
        let status = error_status(status, "fail_next_requests");
        self.lock().request_rules.push(RequestRule {
            path_prefix: path_prefix.to_owned(),
            status,
            remaining: count,
            retry_after,
        });
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Converts `status` to an error status, or to 500 with a warning when it is not one.
fn error_status(status: u16, fault: &'static str) -> StatusCode {
    match StatusCode::from_u16(status) {
        Ok(code) if code.is_client_error() || code.is_server_error() => code,
        _ => {
            // NOTE: the methods return nothing so that test code stays short; an invalid
            // status is reported in the log instead of as an error value.
            tracing::warn!(
                fault,
                status,
                "fault status is not an error status (400 to 599); using 500"
            );
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Returns the `error_name` an API error body carries for an injected `status`.
pub(crate) fn error_name_for(status: StatusCode) -> String {
    match status.as_u16() {
        409 => "resource_conflict".to_owned(),
        422 => "unprocessable_entity".to_owned(),
        500 => "internal_error".to_owned(),
        _ => status
            .canonical_reason()
            .map(|reason| reason.to_ascii_lowercase().replace([' ', '-'], "_"))
            .unwrap_or_else(|| "error".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_status_becomes_500() {
        assert_eq!(error_status(200, "test"), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            error_status(1000, "test"),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(error_status(99, "test"), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error_status(503, "test"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error_status(429, "test"), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn error_names_are_snake_case() {
        assert_eq!(
            error_name_for(StatusCode::TOO_MANY_REQUESTS),
            "too_many_requests"
        );
        assert_eq!(
            error_name_for(StatusCode::SERVICE_UNAVAILABLE),
            "service_unavailable"
        );
        assert_eq!(error_name_for(StatusCode::BAD_GATEWAY), "bad_gateway");
        assert_eq!(
            error_name_for(StatusCode::INTERNAL_SERVER_ERROR),
            "internal_error"
        );
    }

    #[test]
    fn request_rules_count_down_in_order() {
        let faults = Faults::new(Duration::ZERO, false, false);
        faults.fail_next_requests("/1.0/images", 503, 2);
        faults.fail_next_requests("/1.0/", 429, 1);

        let first = faults.take_request_failure("/1.0/images/img-12345");
        assert_eq!(
            first.map(|f| f.status),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        let other_path = faults.take_request_failure("/1.0/servers");
        assert_eq!(
            other_path.map(|f| f.status),
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        let second = faults.take_request_failure("/1.0/images");
        assert_eq!(
            second.map(|f| f.status),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(faults.take_request_failure("/1.0/images"), None);
        assert_eq!(faults.take_request_failure("/token"), None);
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(RetryAfter::Seconds(7).header_value(), "7");
        let date = RetryAfter::DateAfter(Duration::from_secs(60)).header_value();
        let parsed = chrono::DateTime::parse_from_rfc2822(&date).expect("the date parses");
        let ahead = parsed.with_timezone(&chrono::Utc) - chrono::Utc::now();
        assert!(
            ahead.num_seconds() > 50 && ahead.num_seconds() <= 60,
            "{date}"
        );
        assert!(date.ends_with(" GMT"), "{date}");
    }

    #[test]
    fn zero_count_adds_no_rule() {
        let faults = Faults::new(Duration::ZERO, false, false);
        faults.fail_next_requests("/", 503, 0);
        assert_eq!(faults.take_request_failure("/token"), None);
    }

    #[test]
    fn register_faults_apply_once() {
        let faults = Faults::new(Duration::ZERO, false, false);
        faults.fail_next_register_after_create(502);
        faults.fail_next_register(500);
        assert_eq!(
            faults.take_register_failure(),
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        );
        assert_eq!(faults.take_register_failure(), None);
        assert_eq!(
            faults.take_register_failure_after_create(),
            Some(StatusCode::BAD_GATEWAY)
        );
        assert_eq!(faults.take_register_failure_after_create(), None);
    }
}
