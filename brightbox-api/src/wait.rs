//! Waiters: polling an image, server or volume until it reaches a status.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::images::Image;
use crate::retry::random_fraction;
use crate::servers::{Server, Volume};

/// Schedule of the waiters, such as [`Images::wait_until_available`](crate::Images::wait_until_available).
///
/// The first poll happens at once. The pause after each poll starts at `interval`, doubles after every poll up to
/// `max_interval`, and gets up to 10 % random extra so that many waiters spread out. The last pause is cut short
/// so that one poll happens at the deadline.
///
/// ```
/// use std::time::Duration;
/// use brightbox_api::WaitOptions;
///
/// let options = WaitOptions::default().timeout(Duration::from_secs(300));
/// assert_eq!(options.interval, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Pause after the first poll. Default 2 s.
    pub interval: Duration,
    /// Maximum pause between polls. Default 10 s.
    pub max_interval: Duration,
    /// Total time to wait before giving up with [`Error::WaitTimedOut`]. Default 30 min.
    pub timeout: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl WaitOptions {
    /// Sets the pause after the first poll.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the maximum pause between polls.
    pub fn max_interval(mut self, max_interval: Duration) -> Self {
        self.max_interval = max_interval;
        self
    }

    /// Sets the total time to wait.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Resource a waiter polled, as the API last returned it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Resource {
    /// An image.
    Image(Image),
    /// A server.
    Server(Server),
    /// A volume.
    Volume(Volume),
}

impl Resource {
    /// Returns the kind of resource: `image`, `server` or `volume`.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Image(_) => "image",
            Resource::Server(_) => "server",
            Resource::Volume(_) => "volume",
        }
    }

    /// Returns the id, such as `img-3ikco`.
    pub fn id(&self) -> &str {
        match self {
            Resource::Image(image) => image.id.as_str(),
            Resource::Server(server) => server.id.as_str(),
            Resource::Volume(volume) => volume.id.as_str(),
        }
    }

    /// Returns the status as the API spells it.
    pub fn status(&self) -> &str {
        match self {
            Resource::Image(image) => image.status.as_str(),
            Resource::Server(server) => server.status.as_str(),
            Resource::Volume(volume) => volume.status.as_str(),
        }
    }
}

/// State of a wait after each poll, passed to the progress callback.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WaitProgress<'a, T> {
    /// Resource as returned by this poll.
    pub current: &'a T,
    /// Number of polls so far, this one included.
    pub poll: u32,
    /// Time since the wait started.
    pub elapsed: Duration,
}

/// How a waiter classifies a polled status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The target status is reached.
    Done,
    /// The resource can never reach the target.
    Terminal,
    /// A known status on the way to the target.
    Transient,
    /// A status this crate does not know; treated as transient.
    Unknown,
}

/// Smallest pause between polls, so that a zero interval cannot turn the wait into a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Polls `fetch` on the [`WaitOptions`] schedule until `classify` returns [`Verdict::Done`].
///
/// `wrap` turns the resource into a [`Resource`] for errors; `on_poll` runs after every poll.
pub(crate) async fn poll_until<T, Fut>(
    options: &WaitOptions,
    target: &str,
    mut fetch: impl FnMut() -> Fut,
    classify: impl Fn(&T) -> Verdict,
    wrap: impl Fn(T) -> Resource,
    mut on_poll: impl FnMut(&WaitProgress<'_, T>),
) -> Result<T>
where
    T: Clone,
    Fut: Future<Output = Result<T>>,
{
    let started = Instant::now();
    // A timeout too large for `Instant` (such as `Duration::MAX`) means no deadline.
    let deadline = started.checked_add(options.timeout);
    let max_interval = options.max_interval.max(MIN_INTERVAL);
    let mut interval = options.interval.clamp(MIN_INTERVAL, max_interval);
    let mut poll = 0u32;
    let mut warned_status: Option<String> = None;

    loop {
        poll += 1;
        let current = match fetch().await {
            Ok(current) => current,
            // Each poll already retries inside the client. A failure that is still retryable, such as
            // the API restarting or a burst of 503s, does not end a wait that has time left.
            Err(error) if error.is_retryable() => {
                let now = Instant::now();
                if deadline.is_some_and(|deadline| now >= deadline) {
                    return Err(error);
                }
                tracing::warn!(target, poll, error = %error, "status poll failed; polling again");
                sleep_and_back_off(interval, now, deadline, &mut interval, max_interval).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        on_poll(&WaitProgress {
            current: &current,
            poll,
            elapsed: started.elapsed(),
        });

        match classify(&current) {
            Verdict::Done => return Ok(current),
            Verdict::Terminal => {
                let last = Box::new(wrap(current));
                tracing::warn!(
                    kind = last.kind(),
                    id = last.id(),
                    status = last.status(),
                    target,
                    "wait ended in a terminal status"
                );
                return Err(Error::WaitFailed {
                    last,
                    target: target.to_owned(),
                });
            }
            Verdict::Unknown => {
                let last = wrap(current.clone());
                // Warn once per unknown status so that a long wait does not repeat the same line every poll.
                if warned_status.as_deref() != Some(last.status()) {
                    tracing::warn!(
                        kind = last.kind(),
                        id = last.id(),
                        status = last.status(),
                        poll,
                        "unknown status while waiting; treating it as transient"
                    );
                    warned_status = Some(last.status().to_owned());
                } else {
                    tracing::debug!(status = last.status(), poll, "unknown status again");
                }
            }
            Verdict::Transient => {}
        }

        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            return Err(Error::WaitTimedOut {
                last: Box::new(wrap(current)),
                target: target.to_owned(),
                elapsed: now - started,
                polls: poll,
            });
        }

        let jitter = interval.mul_f64(0.1 * random_fraction());
        let pause = interval.saturating_add(jitter);
        sleep_and_back_off(pause, now, deadline, &mut interval, max_interval).await;
    }
}

/// Sleeps for `pause`, cut short at `deadline`, then doubles `interval` up to `max_interval`.
async fn sleep_and_back_off(
    pause: Duration,
    now: Instant,
    deadline: Option<Instant>,
    interval: &mut Duration,
    max_interval: Duration,
) {
    let pause = deadline.map_or(pause, |deadline| pause.min(deadline - now));
    tokio::time::sleep(pause).await;
    *interval = interval.saturating_mul(2).min(max_interval);
}
