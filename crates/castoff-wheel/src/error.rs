//! Everything that stops a wheel from being built. Each message names the file or value, says
//! why, and ends with a `hint:` line saying what to change.

use std::io;
use std::path::PathBuf;

/// Why a wheel could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error("binary `{bin}` of package `{package}` was not passed to the wheel builder")]
    MissingBinary { package: String, bin: String },

    #[error("binary `{bin}` is not a binary of package `{package}` (its binaries: {known})")]
    UnexpectedBinary {
        package: String,
        bin: String,
        known: String,
    },

    #[error("SBOM file name `{file_name}` of package `{package}` is not a plain file name")]
    SbomFileName { package: String, file_name: String },

    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: io::Error,
        hint: String,
    },

    #[error("{} is not an executable: {reason}", path.display())]
    NotExecutable { path: PathBuf, reason: String },

    #[error("{} is {found}, but target `{target}` needs {expected}", path.display())]
    WrongFormat {
        path: PathBuf,
        found: String,
        target: &'static str,
        expected: &'static str,
    },

    #[error("{} is built for {found}, but target `{target}` is {expected}", path.display())]
    WrongArchitecture {
        path: PathBuf,
        found: String,
        target: &'static str,
        expected: String,
    },

    #[error("{} {problem}, which target `{target}` cannot use", path.display())]
    WrongLibc {
        path: PathBuf,
        problem: String,
        target: &'static str,
        hint: String,
    },

    #[error(
        "{} needs the shared library `{library}`, which is not part of the {policy} platform: a wheel for it could only be tagged `linux_{arch}`, and PyPI rejects that tag",
        path.display()
    )]
    LibraryNotAllowed {
        path: PathBuf,
        library: String,
        policy: &'static str,
        arch: &'static str,
    },

    #[error(
        "{} needs symbol version `{version}`, which no manylinux policy for {arch} allows (castoff knows them up to manylinux_2_41, from auditwheel): a wheel for it could only be tagged `linux_{arch}`, and PyPI rejects that tag",
        path.display()
    )]
    SymbolVersionNotAllowed {
        path: PathBuf,
        version: String,
        arch: &'static str,
        triple: &'static str,
    },

    #[error("{} {problem}", path.display())]
    MacosVersion {
        path: PathBuf,
        problem: String,
        hint: String,
    },

    #[error("{} {problem}", path.display())]
    Metadata {
        path: PathBuf,
        problem: String,
        hint: String,
    },

    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

impl WheelError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            WheelError::MissingBinary { .. } => Some(
                "build every binary of the app for the target before building its wheel".to_owned(),
            ),
            WheelError::UnexpectedBinary { .. } => Some(
                "pass only the binaries listed in [package.metadata.castoff] `bins`".to_owned(),
            ),
            WheelError::SbomFileName { package, .. } => Some(format!(
                "name it like `{package}.cyclonedx.json`: no directories, not hidden"
            )),
            WheelError::Read { hint, .. } => Some((*hint).to_owned()),
            WheelError::NotExecutable { .. } => {
                Some("pass the compiled binary, e.g. target/<triple>/release/<bin>".to_owned())
            }
            WheelError::WrongFormat { target, .. } => Some(format!(
                "build the binary with `cargo build --release --target {target}` and pass that file"
            )),
            WheelError::WrongArchitecture { target, .. } => Some(format!(
                "build the binary with `cargo build --release --target {target}` and pass that file"
            )),
            WheelError::WrongLibc { hint, .. } => Some((*hint).to_owned()),
            WheelError::LibraryNotAllowed { library, .. } => Some(format!(
                "link `{library}` statically (e.g. a `vendored`/`static` feature of the crate that needs it, or `-C target-feature=+crt-static` for everything), or build for a target whose platform provides it"
            )),
            WheelError::SymbolVersionNotAllowed { triple, .. } => Some(format!(
                "build on an older distribution (a manylinux container) or with cargo-zigbuild's `{triple}.2.17` target so the binary needs older symbols"
            )),
            WheelError::MacosVersion { hint, .. } => Some((*hint).to_owned()),
            WheelError::Metadata { hint, .. } => Some((*hint).to_owned()),
            WheelError::Write { .. } => {
                Some("check that the directory exists, is writable and has free space".to_owned())
            }
        }
    }
}
