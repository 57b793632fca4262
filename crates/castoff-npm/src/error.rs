//! Why an npm package could not be built. Every message names the package (and the file or
//! target involved), says why, and ends with a `hint:` line.

use std::io;
use std::path::PathBuf;

use castoff_archive::tar::TarError;

#[derive(Debug, thiserror::Error)]
pub enum NpmError {
    #[error(
        "cannot build npm package `{name}`: target `{target}` is not one of `{package}`'s targets ({known})"
    )]
    UnplannedTarget {
        name: String,
        package: String,
        target: String,
        known: String,
    },

    #[error("cannot build npm package `{name}`: no binary `{bin}` was given for {target}")]
    MissingBinary {
        name: String,
        bin: String,
        target: String,
    },

    #[error(
        "cannot build npm package `{name}`: `{bin}` is not a binary of `{package}` (its binaries: {known})"
    )]
    UnknownBinary {
        name: String,
        package: String,
        bin: String,
        known: String,
    },

    #[error("cannot build npm package `{name}`: binary `{bin}` was given twice")]
    DuplicateBinary { name: String, bin: String },

    #[error("cannot build npm launcher `{name}`: no platform packages were given")]
    NoPlatforms { name: String },

    #[error("cannot build npm package `{name}`: cannot read {}: {source}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
        hint: &'static str,
    },

    #[error("cannot build npm package `{name}`: {} is not a regular file", path.display())]
    NotAFile { name: String, path: PathBuf },

    #[error("cannot write npm package `{name}` to {}: {source}", path.display())]
    Write {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot build npm package `{name}`: {source}")]
    Tar {
        name: String,
        #[source]
        source: TarError,
    },
}

impl NpmError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            NpmError::UnplannedTarget { .. } => Some("add it to `targets` in [package.metadata.castoff] or [workspace.metadata.castoff], or build only the planned targets".to_owned()),
            NpmError::MissingBinary { bin, target, .. } => Some(format!("build it (`cargo build --release --target {target} --bin {bin}`) and pass its path")),
            NpmError::UnknownBinary { .. } => Some("pass only the binaries listed in `bins` of [package.metadata.castoff]".to_owned()),
            NpmError::DuplicateBinary { .. } => Some("pass each binary once".to_owned()),
            NpmError::NoPlatforms { .. } => Some("build at least one target's platform package first, and pass its target".to_owned()),
            NpmError::Read { hint, .. } => Some((*hint).to_owned()),
            NpmError::NotAFile { .. } => Some("pass the path of the compiled binary itself".to_owned()),
            NpmError::Write { .. } => Some("check that the directory is writable and the disk is not full".to_owned()),
            NpmError::Tar { source, .. } => source.hint(),
        }
    }
}
