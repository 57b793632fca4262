//! Why an image could not be built. Every message names the input (app, target, file or
//! directory), says what is wrong with it, and ends with a `hint:` line saying what to do.

use std::io;
use std::path::PathBuf;

use castoff_archive::tar::TarError;
use castoff_plan::Target;

/// An image, index, archive or deploy example that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "cannot assemble the images of `{app}` from the partial dist `{}`: {problem}",
        part.display()
    )]
    Assemble {
        app: String,
        part: PathBuf,
        problem: String,
        /// The hint of the error behind `problem`, shown before `hint`.
        cause_hint: Option<String>,
        hint: String,
    },

    #[error("cannot write the layer of {app}: {source}")]
    Tar {
        app: String,
        #[source]
        source: TarError,
    },

    #[error("no image of `{app}` was asked for: the list of platforms is empty")]
    NoPlatforms { app: String },

    #[error("target `{target}` of `{app}` has no container image platform (only Linux targets do)")]
    NotLinux { app: String, target: String },

    #[error("platform {platform} of `{app}` is given twice (targets {first} and {second})")]
    DuplicatePlatform {
        app: String,
        platform: String,
        first: String,
        second: String,
    },

    #[error("binary `{bin}` of `{app}` for {target} was not given to the image builder")]
    MissingBinary {
        app: String,
        bin: String,
        target: String,
    },

    #[error(
        "`{}` ({bin} of `{app}` for {target}) is dynamically linked (ELF interpreter `{interpreter}`), and a `scratch` image has no dynamic loader or C library to run it",
        path.display()
    )]
    DynamicOnScratch {
        app: String,
        bin: String,
        target: String,
        path: PathBuf,
        interpreter: String,
        /// The configuration links this target statically (`crt-static`): the binary is not
        /// the one that configuration builds.
        crt_static: bool,
    },

    #[error(
        "`{}` ({bin} of `{app}` for {target}) is not an ELF executable, and nothing on a `scratch` image could run it",
        path.display()
    )]
    NotElf {
        app: String,
        bin: String,
        target: String,
        path: PathBuf,
    },

    #[error(
        "`{}` ({bin} of `{app}`) is an ELF file for {}, but the image for {} runs {}",
        path.display(), found.describe(), target.oci.map(|platform| platform.to_string()).unwrap_or_default(), expected.describe()
    )]
    WrongArchitecture {
        app: String,
        bin: String,
        target: &'static Target,
        path: PathBuf,
        /// The binary's machine, class and byte order.
        found: castoff_archive::elf::ElfKind,
        /// What the image's platform runs.
        expected: castoff_archive::elf::ElfKind,
    },

    #[error("extra file `{}` of `{app}` (for `{dst}`) {problem}", src.display())]
    ExtraFile {
        app: String,
        src: PathBuf,
        dst: String,
        problem: String,
        hint: String,
    },

    #[error(
        "the image of `{app}` for {platform} needs castoff's health probe, which castoff has no build of for {platform}"
    )]
    NoProbe { app: String, platform: String },

    #[error("the image of `{app}` would contain `/{path}` twice ({what})")]
    DuplicatePath {
        app: String,
        path: String,
        what: String,
    },

    #[error(
        "the base image `{reference}` of `{app}` is not in the base cache `{}`",
        cache.display()
    )]
    BaseNotPulled {
        app: String,
        reference: String,
        cache: PathBuf,
    },

    #[error("base image layout `{}` of `{app}`: {problem}", dir.display())]
    BaseLayout {
        app: String,
        dir: PathBuf,
        problem: String,
        hint: String,
    },

    #[error("cannot write a Dockerfile for `{app}`: its {what} `{value}` {problem}")]
    NotInDockerfile {
        app: String,
        /// `label org.opencontainers.image.description`, `volume`.
        what: String,
        value: String,
        problem: &'static str,
    },
}

impl OciError {
    /// Every hint, in order: [`OciError::hint`], after the hint of the error behind an
    /// assembly's problem.
    pub fn hints(&self) -> Vec<String> {
        let mut hints = Vec::new();
        if let OciError::Assemble {
            cause_hint: Some(cause_hint),
            ..
        } = self
        {
            hints.push(cause_hint.clone());
        }
        hints.extend(self.hint());
        hints
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            OciError::Io { .. } => Some("check that the path exists, is readable and that the disk has room".to_owned()),
            OciError::Assemble { hint, .. } => Some((*hint).to_owned()),
            OciError::Tar { source, .. } => source.hint(),
            OciError::NoPlatforms { .. } => Some("pass at least one Linux target".to_owned()),
            OciError::NotLinux { .. } => Some("build images for Linux targets only".to_owned()),
            OciError::DuplicatePlatform { .. } => Some("build one target per image platform, e.g. either the gnu or the musl target".to_owned()),
            OciError::MissingBinary { .. } => Some("build every binary listed in `bins` for this target".to_owned()),
            OciError::DynamicOnScratch { crt_static: true, .. } => Some("`crt-static = true` is set, so this binary was built some other way: `dist --no-build` took one built before the setting, or `--prebuilt` one linked dynamically; run `castoff dist` without --no-build, or pass a statically linked binary".to_owned()),
            OciError::DynamicOnScratch { .. } => Some("use a musl target (e.g. x86_64-unknown-linux-musl), link statically (`crt-static = true` in [package.metadata.castoff]), or set `base` in [package.metadata.castoff.oci] to an image that provides the C library (e.g. `oci-layout:<dir>` holding gcr.io/distroless/cc-debian12)".to_owned()),
            OciError::NotElf { target, .. } => Some(format!("pass the binary compiled for {target}, or set a `base` image that can run it")),
            OciError::WrongArchitecture { target, .. } => Some(format!("pass the binary compiled for {target}")),
            OciError::ExtraFile { hint, .. } => Some((*hint).to_owned()),
            OciError::NoProbe { .. } => Some("use `healthcheck.cmd` with a command of the image (`http` and `tcp` checks run castoff's probe, built for amd64, arm64, arm/v7, 386, riscv64, ppc64le and s390x)".to_owned()),
            OciError::DuplicatePath { .. } => Some("choose another `dst` for the extra file".to_owned()),
            OciError::BaseNotPulled { .. } => Some("`castoff dist` pulls registry bases into the cache before building; when calling the image builder directly, pull it first (castoff's `base::pull_bases`)".to_owned()),
            OciError::BaseLayout { hint, .. } => Some((*hint).to_owned()),
            OciError::NotInDockerfile { .. } => Some("the image itself is built; to get the Dockerfiles too, keep line breaks out of the package's `description`, `oci.labels` and `oci.env`, and `$` out of `oci.volumes` and `oci.workdir`".to_owned()),
        }
    }
}

impl OciError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| OciError::Io {
            action,
            path,
            source,
        }
    }
}
