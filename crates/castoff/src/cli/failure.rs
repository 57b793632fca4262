//! How a failed command ends: its exit code, and the error rendered with its causes and
//! one `hint:` to act on.

use crate::workspace::LoadError;

/// Exit code of a run that failed for a reason outside the user's input.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage or configuration error: fix the command line or the Cargo.toml.
pub const EXIT_USAGE: u8 = 2;

/// Exit code of a publish stopped by a conflict with what a registry already holds.
pub const EXIT_CONFLICT: u8 = 3;

/// A failed command: the message (with its `hint:`), and the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub error: anyhow::Error,
    pub exit_code: u8,
}

impl From<LoadError> for Failure {
    fn from(error: LoadError) -> Failure {
        match error {
            LoadError::Cargo(error) => Failure {
                error,
                exit_code: EXIT_USAGE,
            },
            LoadError::Config(error) => Failure {
                error: error.into(),
                exit_code: EXIT_USAGE,
            },
            LoadError::Host(error) => failure(error),
        }
    }
}

/// `error: …`, then each cause as `caused by: …`, with every `hint:` line kept last; an error
/// that carries no hint of its own gets the generic one, so every error ends in a `hint:`.
pub fn render_error(error: &anyhow::Error) -> String {
    let mut lines = Vec::new();
    let mut hints = Vec::new();
    for (depth, cause) in error.chain().enumerate() {
        let text = cause.to_string();
        for (line_number, line) in text.lines().enumerate() {
            if line_number == 0 {
                let prefix = if depth == 0 { "error: " } else { "caused by: " };
                lines.push(format!("{prefix}{line}"));
            } else {
                lines.push(line.to_owned());
            }
        }
        // The hint is the error's own field (crate::hint), never read back out of its text.
        for hint in crate::hint::hints_of(cause) {
            hints.push(format!("hint: {hint}"));
        }
    }
    if hints.is_empty() {
        hints.push(generic_hint(error).to_owned());
    }
    lines.extend(hints);
    lines.join("\n")
}

/// The hint of an error that brings none of its own: specific for file-system errors.
fn generic_hint(error: &anyhow::Error) -> &'static str {
    let io_kind = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    match io_kind {
        Some(std::io::ErrorKind::NotFound) => {
            "hint: check that the path named above exists (paths are relative to the current directory)"
        }
        Some(std::io::ErrorKind::PermissionDenied) => {
            "hint: check the permissions of the path named above, or choose another with --dist-dir"
        }
        Some(_) => {
            "hint: the path named above must be a directory castoff can write to (or a file it can read); choose another with --dist-dir"
        }
        None => {
            "hint: docs/troubleshooting.md lists castoff's errors by message; if this one is not there, please report it"
        }
    }
}

pub fn failure(error: anyhow::Error) -> Failure {
    Failure {
        error,
        exit_code: EXIT_FAILURE,
    }
}

pub fn usage(error: anyhow::Error) -> Failure {
    Failure {
        error,
        exit_code: EXIT_USAGE,
    }
}
