//! Polling an image until it becomes usable.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::id::ImageId;
use crate::images::{Image, Images};
use crate::retry::random_fraction;

/// Schedule of [`Images::wait_until_available`].
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

/// Smallest pause between polls, so that a zero interval cannot turn the wait into a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

#[tracing::instrument(name = "brightbox_api.images.wait_until_available", skip_all, fields(image_id = %id))]
pub(crate) async fn wait_until_available(
    images: &Images<'_>,
    id: &ImageId,
    options: &WaitOptions,
) -> Result<Image> {
    let started = Instant::now();
    let deadline = started + options.timeout;
    let max_interval = options.max_interval.max(MIN_INTERVAL);
    let mut interval = options.interval.clamp(MIN_INTERVAL, max_interval);
    let mut poll = 0u32;

    loop {
        poll += 1;
        let image = images.get(id).await?;
        tracing::debug!(
            image_id = %id,
            status = %image.status,
            disk_size = image.disk_size,
            poll,
            "polled image"
        );

        if image.status.is_usable() {
            return Ok(image);
        }
        if image.status.is_dead() {
            return Err(Error::ImageFailed {
                image: Box::new(image),
            });
        }

        let now = Instant::now();
        if now >= deadline {
            return Err(Error::WaitTimedOut {
                id: id.clone(),
                last_status: image.status,
                elapsed: now - started,
            });
        }

        let pause = interval.mul_f64(1.0 + 0.1 * random_fraction());
        tokio::time::sleep(pause.min(deadline - now)).await;
        interval = interval.saturating_mul(2).min(max_interval);
    }
}
