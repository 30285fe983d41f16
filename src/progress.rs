//! A progress bar on a terminal, nothing when piped.

// The bar redraws at most ten times a wall-clock second: the CLI's clock, not a node's.
#![allow(clippy::disallowed_methods)]

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Draws `label [#####.....] 42%` on stderr, at most ten times a second.
pub struct ProgressBar {
    label: String,
    enabled: bool,
    last: Option<Instant>,
}

impl ProgressBar {
    /// A bar for `label`, drawn only if stderr is a terminal.
    pub fn new(label: &str) -> Self {
        ProgressBar {
            label: label.to_string(),
            enabled: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    /// Shows `fraction` done.
    pub fn update(&mut self, fraction: f64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|l| now - l < Duration::from_millis(100)) && fraction < 1.0 {
            return;
        }
        self.last = Some(now);
        const WIDTH: usize = 30;
        let filled = ((fraction.clamp(0.0, 1.0)) * WIDTH as f64) as usize;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} [{}{}] {:3.0}%",
            self.label,
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            fraction * 100.0
        );
        let _ = err.flush();
    }

    /// Clears the bar.
    pub fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(self.label.len() + 40));
            let _ = err.flush();
        }
    }
}
