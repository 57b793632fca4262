//! Why an npm package could not be built. Every message names the package (and the file or
//! target involved), says why, and ends with a `hint:` line.

use std::io;
use std::path::PathBuf;

use castoff_archive::tar::TarError;

#[derive(Debug, thiserror::Error)]
pub enum NpmError {
    #[error(
        "cannot build npm package `{name}`: target `{target}` is not one of `{package}`'s targets \
         ({known})\nhint: add it to `targets` in [package.metadata.castoff] or \
         [workspace.metadata.castoff], or build only the planned targets"
    )]
    UnplannedTarget {
        name: String,
        package: String,
        target: String,
        known: String,
    },

    #[error(
        "cannot build npm package `{name}`: no binary `{bin}` was given for {target}\nhint: build \
         it (`cargo build --release --target {target} --bin {bin}`) and pass its path"
    )]
    MissingBinary {
        name: String,
        bin: String,
        target: String,
    },

    #[error(
        "cannot build npm package `{name}`: `{bin}` is not a binary of `{package}` (its binaries: \
         {known})\nhint: pass only the binaries listed in `bins` of [package.metadata.castoff]"
    )]
    UnknownBinary {
        name: String,
        package: String,
        bin: String,
        known: String,
    },

    #[error(
        "cannot build npm package `{name}`: binary `{bin}` was given twice\nhint: pass each \
         binary once"
    )]
    DuplicateBinary { name: String, bin: String },

    #[error(
        "cannot build npm launcher `{name}`: no platform packages were given\nhint: build at \
         least one target's platform package first, and pass its target"
    )]
    NoPlatforms { name: String },

    #[error("cannot build npm package `{name}`: cannot read {}: {source}\nhint: {hint}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
        hint: &'static str,
    },

    #[error(
        "cannot build npm package `{name}`: {} is not a regular file\nhint: pass the path of the \
         compiled binary itself",
        path.display()
    )]
    NotAFile { name: String, path: PathBuf },

    #[error(
        "cannot write npm package `{name}` to {}: {source}\nhint: check that the directory is \
         writable and the disk is not full",
        path.display()
    )]
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
