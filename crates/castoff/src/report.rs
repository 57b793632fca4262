//! How the engine tells the user what it is doing: one line per event, byte-counted tasks,
//! and the moments a child process (cargo) writes to the terminal itself. The engine reports
//! through [`Reporter`]; only the CLI (`cli/progress.rs`) draws.

/// Receives one line per event of the run, and the progress of byte-counted work (uploads,
/// compression); the CLI draws them. Libraries report through this trait; only the CLI draws.
pub trait Reporter: Sync {
    fn line(&self, text: &str);
    /// A child process is about to write to the terminal itself (`cargo build`): `text`
    /// announces it, and nothing may be drawn over its output. Default: a line.
    fn child_output(&self, text: &str) {
        self.line(text);
    }
    /// Starts a byte-counted piece of work (an upload, a compression); the handle reports
    /// progress and the end. Default: nothing is drawn.
    fn task(&self, label: &str, total_bytes: u64) -> Box<dyn Task + '_> {
        let _ = (label, total_bytes);
        Box::new(NoTask)
    }
}

/// Progress of one byte-counted piece of work started with [`Reporter::task`].
pub trait Task: Send + Sync {
    /// `bytes` more were processed.
    fn advance(&self, bytes: u64);
    /// The work ended; `outcome` is a short word or phrase ("uploaded", "failed: …").
    fn finish(&self, outcome: &str);
}

/// A [`Task`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTask;

impl Task for NoTask {
    fn advance(&self, _bytes: u64) {}
    fn finish(&self, _outcome: &str) {}
}
