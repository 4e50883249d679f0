//! Transfer progress reports and the throttle that limits how often they are sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Minimum time between two progress reports of one transfer, except for the final report.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// The state of a transfer at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    /// Bytes of the file that are done, including a prefix that an earlier attempt transferred
    /// and this transfer resumed from.
    pub bytes_done: u64,
    /// Length of the whole file in bytes, when it is known before the transfer ends.
    pub total: Option<u64>,
    /// Average rate in bytes per second of the bytes this transfer moved, since it started.
    pub bytes_per_second: f64,
}

type Callback = dyn Fn(&Progress) + Send + Sync + 'static;

/// A destination for progress reports: a callback or a `tokio::sync::watch` channel.
///
/// A transfer sends a report at most every 100 ms and always sends one final report when it
/// succeeds, whose `bytes_done` equals the file length. Reports are sent from the transfer's own
/// task, so a slow callback slows the transfer. The watch channel's sender does not wait for
/// receivers.
#[derive(Clone)]
pub struct ProgressSink {
    callback: Arc<Callback>,
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressSink").finish_non_exhaustive()
    }
}

impl ProgressSink {
    /// Creates a sink that calls `callback` with each report.
    pub fn callback(callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        Self {
            callback: Arc::new(callback),
        }
    }

    /// Creates a sink that publishes each report on a watch channel, and the channel's receiver.
    ///
    /// The receiver stores the latest report. A slow reader skips intermediate ones but always
    /// sees the final report.
    pub fn watch() -> (Self, watch::Receiver<Progress>) {
        let (sender, receiver) = watch::channel(Progress::default());
        let sink = Self::callback(move |progress| {
            // send_replace stores the value even when every receiver has been dropped.
            sender.send_replace(*progress);
        });
        (sink, receiver)
    }

    fn send(&self, progress: &Progress) {
        (self.callback)(progress);
    }
}

/// Throttles the reports of one transfer.
pub(crate) struct Reporter {
    sink: Option<ProgressSink>,
    total: Option<u64>,
    started: Instant,
    resumed_from: u64,
    last_report: Option<Instant>,
}

impl Reporter {
    pub(crate) fn new(sink: Option<&ProgressSink>, total: Option<u64>, resumed_from: u64) -> Self {
        Self {
            sink: sink.cloned(),
            total,
            started: Instant::now(),
            resumed_from,
            last_report: None,
        }
    }

    /// Reports `bytes_done` when the last report is at least [`REPORT_INTERVAL`] old.
    pub(crate) fn update(&mut self, bytes_done: u64) {
        if self.sink.is_none() {
            return;
        }
        let now = Instant::now();
        let due = self
            .last_report
            .is_none_or(|last| now.duration_since(last) >= REPORT_INTERVAL);
        if due {
            self.last_report = Some(now);
            self.emit(bytes_done, now);
        }
    }

    /// Sends the final report whatever the time since the last one.
    pub(crate) fn finish(&mut self, bytes_done: u64) {
        if self.sink.is_some() {
            self.emit(bytes_done, Instant::now());
        }
    }

    fn emit(&self, bytes_done: u64, now: Instant) {
        let Some(sink) = &self.sink else {
            return;
        };
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let moved = bytes_done.saturating_sub(self.resumed_from) as f64;
        let bytes_per_second = if elapsed > 0.0 { moved / elapsed } else { 0.0 };
        sink.send(&Progress {
            bytes_done,
            total: self.total,
            bytes_per_second,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn reporter_throttles_and_sends_final() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let sink = ProgressSink::callback(move |progress| {
            record
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(progress.bytes_done);
        });
        let mut reporter = Reporter::new(Some(&sink), Some(1000), 0);
        for done in (0..=1000).step_by(10) {
            reporter.update(done);
        }
        reporter.finish(1000);

        let seen = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        assert_eq!(seen.first(), Some(&0), "the first update is sent at once");
        assert_eq!(seen.last(), Some(&1000), "the final report is always sent");
        assert!(seen.len() <= 3, "101 fast updates are throttled: {seen:?}");
    }

    #[test]
    fn watch_receiver_sees_final_value() {
        let (sink, receiver) = ProgressSink::watch();
        let mut reporter = Reporter::new(Some(&sink), Some(42), 0);
        reporter.update(1);
        reporter.update(2);
        reporter.finish(42);

        let latest = *receiver.borrow();
        assert_eq!(latest.bytes_done, 42);
        assert_eq!(latest.total, Some(42));
    }
}
