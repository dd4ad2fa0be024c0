//! Progress on standard error for long work (export, import, verification, reindexing,
//! large file transfers, backup and restore), shown only to a person: hidden when
//! standard error is not a terminal or with `--json`, so scripts and logs see nothing
//! but the result.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Global;

/// One bar or spinner; cleared when dropped, so an error line is never mixed with it.
pub struct Progress(ProgressBar);

impl Progress {
    fn shown(g: &Global) -> bool {
        !g.json && std::io::stderr().is_terminal()
    }

    /// A bar over `total` bytes.
    pub fn bytes(g: &Global, label: impl Into<String>, total: u64) -> Progress {
        let bar = if Self::shown(g) {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {eta} left",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(label.into());
        Progress(bar)
    }

    /// A spinner for work whose size is not known ahead.
    pub fn spinner(g: &Global, label: impl Into<String>) -> Progress {
        let bar = if Self::shown(g) {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"),
        );
        bar.set_message(label.into());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(bar)
    }

    pub fn bar(&self) -> &ProgressBar {
        &self.0
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
