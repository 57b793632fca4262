//! How the CLI shows long work. On a terminal (indicatif): a spinner with the current step and
//! its elapsed time, and one bar per running byte-counted task (an upload, a compression) with
//! its label, bytes done of the total, rate and ETA; finished steps and tasks are printed
//! above them. When stderr is not a terminal (CI logs): one plain line per step and one per
//! finished task (`uploaded pypi greeter-….whl: 608.20 KiB in 183 ms (3.24 MiB/s)`), no
//! escape sequences. `-q`: nothing. `-v`: every plain line carries the elapsed time, and tasks
//! also print a line when they start. Library code reports through
//! [`crate::report::Reporter`] and [`crate::report::Task`]; only this module draws.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{NoTask, Reporter, Task};

const TICK_CHARS: &str = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ";

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-q`: nothing.
    Quiet,
    /// One line per step, and per finished task, on stderr.
    Plain,
    /// A spinner and a bar per running task on the terminal, finished ones printed above.
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
    /// Every bar of this run (Bars mode only); lines are printed above it.
    multi: Option<MultiProgress>,
    /// The spinner with the current step.
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    pub fn new(mode: Mode, verbose: u8) -> Progress {
        Progress {
            mode,
            verbose: verbose > 0,
            started: Instant::now(),
            multi: (mode == Mode::Bars)
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bar: Mutex::new(None),
        }
    }

    fn spinner(&self, multi: &MultiProgress) -> ProgressBar {
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed:>4}] {wide_msg}")
                .expect("valid template")
                .tick_chars(TICK_CHARS),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// Removes the spinner (before the summary is printed, or before a child process writes
    /// to the terminal).
    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
            if let Some(multi) = &self.multi {
                multi.remove(&bar);
            }
        }
    }

    /// A plain line, with the elapsed time under `-v`.
    fn plain(&self, text: &str) {
        if self.verbose {
            eprintln!("[{:>7.1}s] {text}", self.started.elapsed().as_secs_f64());
        } else {
            eprintln!("{text}");
        }
    }

    /// A line above the bars (Bars) or on its own (Plain).
    fn print(&self, text: &str) {
        match (self.mode, &self.multi) {
            (Mode::Quiet, _) => {}
            (Mode::Bars, Some(multi)) => {
                if multi.println(text).is_err() {
                    eprintln!("{text}");
                }
            }
            _ => self.plain(text),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Reporter for Progress {
    /// A child process (`cargo build`) writes to the terminal next: the spinner is taken down
    /// first, so the two never draw over each other.
    fn child_output(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => self.plain(text),
            Mode::Bars => {
                self.finish();
                eprintln!("{text}");
            }
        }
    }

    fn line(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => self.plain(text),
            Mode::Bars => {
                let Some(multi) = &self.multi else { return };
                let mut slot = self.bar.lock().expect("progress lock");
                let bar = slot.get_or_insert_with(|| self.spinner(multi));
                if multi.println(text).is_err() {
                    eprintln!("{text}");
                }
                bar.set_message(text.to_owned());
            }
        }
    }

    /// A task of `total_bytes` > 0 is a bar with bytes, rate and ETA, and prints a line with
    /// its size and rate when it finishes. A task of 0 bytes is a spinner (a wait without a
    /// size, like a registry query): it prints nothing when it finishes unless bytes were
    /// reported, since the caller reports its result as a line.
    fn task(&self, label: &str, total_bytes: u64) -> Box<dyn Task + '_> {
        if self.mode == Mode::Quiet {
            return Box::new(NoTask);
        }
        if self.mode == Mode::Plain && self.verbose {
            if total_bytes > 0 {
                self.plain(&format!("started {label} ({})", BinaryBytes(total_bytes)));
            } else {
                self.plain(label);
            }
        }
        let bar = self.multi.as_ref().map(|multi| {
            let bar = if total_bytes > 0 {
                let bar = ProgressBar::new(total_bytes);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {wide_msg} [{bar:20}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
                    )
                    .expect("valid template")
                    .tick_chars(TICK_CHARS)
                    .progress_chars("=> "),
                );
                bar
            } else {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} [{elapsed:>4}] {wide_msg}")
                        .expect("valid template")
                        .tick_chars(TICK_CHARS),
                );
                bar
            };
            // Above the step spinner, which stays at the bottom.
            let bar = match self.bar.lock().expect("progress lock").as_ref() {
                Some(spinner) => multi.insert_before(spinner, bar),
                None => multi.add(bar),
            };
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Box::new(ProgressTask {
            progress: self,
            label: label.to_owned(),
            total: total_bytes,
            done: AtomicU64::new(0),
            started: Instant::now(),
            bar,
            finished: AtomicBool::new(false),
        })
    }
}

/// One task of a [`Progress`].
struct ProgressTask<'a> {
    progress: &'a Progress,
    label: String,
    total: u64,
    done: AtomicU64,
    started: Instant,
    bar: Option<ProgressBar>,
    finished: AtomicBool,
}

impl ProgressTask<'_> {
    fn remove_bar(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            if let Some(multi) = &self.progress.multi {
                multi.remove(bar);
            }
        }
    }
}

impl Task for ProgressTask<'_> {
    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&self, outcome: &str) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        self.remove_bar();
        let done = self.done.load(Ordering::Relaxed);
        if self.total == 0 && done == 0 {
            return;
        }
        self.progress.print(&finished_line(
            outcome,
            &self.label,
            done,
            self.started.elapsed(),
        ));
    }
}

impl Drop for ProgressTask<'_> {
    fn drop(&mut self) {
        // Dropped without `finish` (an early return): take the bar down, print nothing.
        if !self.finished.swap(true, Ordering::SeqCst) {
            self.remove_bar();
        }
    }
}

/// `uploaded pypi greeter-….whl: 608.20 KiB in 183 ms (3.24 MiB/s)`.
fn finished_line(outcome: &str, label: &str, bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-6);
    let time = if elapsed < Duration::from_secs(1) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{seconds:.1} s")
    };
    if bytes == 0 {
        return format!("{outcome} {label}: 0 B in {time}");
    }
    // Rates beyond u64 are not a concern; `as` saturates.
    let rate = (bytes as f64 / seconds) as u64;
    format!(
        "{outcome} {label}: {} in {time} ({}/s)",
        BinaryBytes(bytes),
        BinaryBytes(rate)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_and_plain_never_draw_a_bar() {
        for mode in [Mode::Quiet, Mode::Plain] {
            let progress = Progress::new(mode, 0);
            progress.line("step");
            let task = progress.task("pypi a.whl", 10);
            task.advance(10);
            task.finish("uploaded");
            assert!(progress.bar.lock().unwrap().is_none());
            assert!(progress.multi.is_none());
        }
        assert_eq!(Mode::detect(true), Mode::Quiet);
    }

    #[test]
    fn finished_lines_carry_size_time_and_rate() {
        assert_eq!(
            finished_line(
                "uploaded",
                "pypi greeter-0.3.1-py3-none-any.whl",
                622_823,
                Duration::from_millis(200)
            ),
            "uploaded pypi greeter-0.3.1-py3-none-any.whl: 608.23 KiB in 200 ms (2.97 MiB/s)"
        );
        assert_eq!(
            finished_line(
                "compressed",
                "greeter",
                3 * 1024 * 1024,
                Duration::from_millis(1500)
            ),
            "compressed greeter: 3.00 MiB in 1.5 s (2.00 MiB/s)"
        );
        assert_eq!(
            finished_line("already-present", "npm a@1", 0, Duration::from_millis(5)),
            "already-present npm a@1: 0 B in 5 ms"
        );
    }
}
