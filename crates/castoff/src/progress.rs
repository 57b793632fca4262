//! How the CLI shows long work: a spinner with the current step and its elapsed time on a
//! terminal (indicatif), one plain line per step when stderr is not a terminal (CI logs), and
//! nothing with `-q`. `-v` adds the elapsed time to every plain line. Library code reports
//! through [`crate::publish::Reporter`]; only this module draws.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Lines that announce a child process writing to the terminal itself (`cargo build`): the
/// spinner is taken down for them, so the two never draw over each other.
pub const CHILD_OUTPUT_PREFIX: &str = "compiling ";

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-q`: nothing.
    Quiet,
    /// One line per step on stderr.
    Plain,
    /// A spinner on the terminal, finished steps printed above it.
    Bars,
}

impl Mode {
    /// Bars when stderr is a terminal (and `CASTOFF_PROGRESS` does not say `plain`), plain
    /// lines otherwise, nothing when quiet.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal()
            && std::env::var("CASTOFF_PROGRESS").as_deref() != Ok("plain")
        {
            Mode::Bars
        } else {
            Mode::Plain
        }
    }
}

/// The CLI's reporter for `dist` and `publish`.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    verbose: bool,
    started: Instant,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    pub fn new(mode: Mode, verbose: u8) -> Progress {
        Progress {
            mode,
            verbose: verbose > 0,
            started: Instant::now(),
            bar: Mutex::new(None),
        }
    }

    fn spinner(&self) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed:>4}] {wide_msg}")
                .expect("valid template")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// Removes the spinner (before the summary is printed).
    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl crate::publish::Reporter for Progress {
    fn line(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                if self.verbose {
                    eprintln!("[{:>7.1}s] {text}", self.started.elapsed().as_secs_f64());
                } else {
                    eprintln!("{text}");
                }
            }
            Mode::Bars if text.starts_with(CHILD_OUTPUT_PREFIX) => {
                self.finish();
                eprintln!("{text}");
            }
            Mode::Bars => {
                let mut slot = self.bar.lock().expect("progress lock");
                let bar = slot.get_or_insert_with(|| self.spinner());
                bar.println(text);
                bar.set_message(text.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::Reporter as _;

    #[test]
    fn quiet_and_plain_never_draw_a_bar() {
        for mode in [Mode::Quiet, Mode::Plain] {
            let progress = Progress::new(mode, 0);
            progress.line("step");
            assert!(progress.bar.lock().unwrap().is_none());
        }
        assert_eq!(Mode::detect(true), Mode::Quiet);
    }
}
