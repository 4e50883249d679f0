//! Progress bars on stderr, drawn only when stderr is a terminal and the
//! output is not JSON.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Returns whether progress bars are drawn.
pub(crate) fn enabled(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// Creates a byte-count bar for a transfer of `total` bytes, hidden unless `show`.
pub(crate) fn bytes_bar(total: u64, message: &'static str, show: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target(show));
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// Creates a spinner for a wait, hidden unless `show`.
pub(crate) fn spinner(message: String, show: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target(show));
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn target(show: bool) -> ProgressDrawTarget {
    if show {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}
