//! npm packages that carry a Rust binary: one package per platform, plus a launcher package
//! that picks the right one at run time (no install scripts, no downloads).
//!
//! ```text
//! @acme/greeter                  launcher: bin/greeter.js, index.js (+ index.d.ts), lib/…
//!   optionalDependencies (exact versions):
//!   @acme/greeter-linux-x64-gnu  os: linux, cpu: x64, libc: glibc   bin/greeter (0755)
//!   @acme/greeter-darwin-arm64   os: darwin, cpu: arm64             bin/greeter (0755)
//!   @acme/greeter-win32-x64      os: win32, cpu: x64                bin/greeter.exe
//! ```
//!
//! npm installs only the platform package whose `os`/`cpu`/`libc` match the machine; the
//! launcher makes the same choice at run time, resolves the package with `require.resolve`
//! and runs its binary. Tarballs are what `npm pack` would write for the same files (entry
//! order, modes, mtime, owner), gzip-compressed deterministically.
//!
//! Use [`build_platform_package`] once per target (where the binary was built), then
//! [`build_launcher`] with the targets whose platform packages exist. [`platform_package_contents`]
//! and [`launcher_contents`] give the same files without writing a tarball (dry runs, or
//! [`PackageContents::write_directory`] for a plain directory).

mod error;
mod json;
mod launcher;
mod metadata;
mod pack;
mod packlist;
mod platform;

use std::path::{Path, PathBuf};

use castoff_plan::plan::NpmChannel;
use castoff_plan::{App, Target};

pub use error::NpmError;
pub use launcher::launcher_contents;
pub use pack::{
    BuiltPackage, EXECUTABLE_MODE, FILE_MODE, FileSource, PackageContents, PackageFile,
    tarball_file_name,
};
pub use platform::platform_package_contents;

/// `engines.node` written into launcher packages unless configured.
pub const DEFAULT_NODE_ENGINES: &str = ">=18";

/// What a platform package is built from: one target's binaries of one app.
#[derive(Debug, Clone)]
pub struct PlatformInput<'a> {
    /// The workspace root (license files found there too).
    pub workspace_root: &'a Path,
    pub app: &'a App,
    /// The app's npm channel.
    pub npm: &'a NpmChannel,
    pub target: &'static Target,
    /// `(bin name, path of the compiled binary)`: every binary in the app's `bins`, once.
    pub binaries: Vec<(String, PathBuf)>,
    /// The CycloneDX SBOM of the binaries, shipped as [`SBOM_FILE`] (listed in `files`).
    pub sbom: Option<Vec<u8>>,
    /// Where the binaries are compressed (once per `dist`, shared with the other builders);
    /// its level is the tarball's gzip level.
    pub deflate: &'a castoff_archive::deflate::DeflateCache,
}

/// Where a platform package carries its SBOM.
pub const SBOM_FILE: &str = "sbom.cdx.json";

/// What a launcher package is built from.
#[derive(Debug, Clone)]
pub struct LauncherInput<'a> {
    /// The workspace root (license files found there too).
    pub workspace_root: &'a Path,
    pub app: &'a App,
    /// The app's npm channel.
    pub npm: &'a NpmChannel,
    /// Targets whose platform packages exist (they become the `optionalDependencies`).
    pub targets: Vec<&'static Target>,
    /// The tarball's gzip level (0-9).
    pub level: u32,
}

/// Builds the platform package of `input.target` into `out_dir/<file name>.tgz`.
///
/// ```no_run
/// # fn demo(release: &castoff_plan::Release, out: &std::path::Path) -> Result<(), castoff_npm::NpmError> {
/// use castoff_npm::{PlatformInput, build_platform_package};
/// let target = "x86_64-unknown-linux-gnu".parse().unwrap();
/// let app = &release.apps[0];
/// let built = build_platform_package(
///     &PlatformInput {
///         workspace_root: &release.workspace_root,
///         app,
///         npm: app.npm.as_ref().expect("an app with an npm channel"),
///         target,
///         binaries: vec![("greeter".into(), "target/release/greeter".into())],
///         sbom: None,
///         deflate: &castoff_archive::deflate::DeflateCache::new(
///             "target/scratch",
///             castoff_archive::deflate::DeflateOptions::default(),
///         ),
///     },
///     out,
/// )?;
/// assert_eq!(built.file_name, "acme-greeter-linux-x64-gnu-0.3.1.tgz");
/// # Ok(()) }
/// ```
pub fn build_platform_package(
    input: &PlatformInput<'_>,
    out_dir: &Path,
) -> Result<BuiltPackage, NpmError> {
    platform_package_contents(input)?.write_tarball(out_dir, input.deflate.level())
}

/// Builds the launcher package into `out_dir/<file name>.tgz`.
pub fn build_launcher(input: &LauncherInput<'_>, out_dir: &Path) -> Result<BuiltPackage, NpmError> {
    launcher_contents(input)?.write_tarball(out_dir, input.level)
}
