//! What both kinds of package take from Cargo: the package.json fields describing the project,
//! the license files, and the one decision they must agree on, a platform package's `libc`.

use std::fs;
use std::path::Path;

use castoff_plan::Target;
use castoff_plan::plan::Package;

use crate::NpmError;
use crate::json::{Json, ObjectBuilder};
use crate::pack::{FILE_MODE, FileSource, PackageFile};

/// The descriptive fields, in npm's usual order: description, keywords, homepage, bugs,
/// repository, license, author, contributors.
pub(crate) fn descriptive_fields(
    builder: ObjectBuilder,
    package: &Package,
    description: Option<String>,
) -> ObjectBuilder {
    let repository = package.repository.as_deref().map(normalize_repository);
    let bugs = package
        .repository
        .as_deref()
        .and_then(hosted_repository)
        .map(|base| {
            ObjectBuilder::default()
                .field("url", Json::string(format!("{base}/issues")))
                .build()
        });
    let license = match (&package.license, &package.license_file) {
        (Some(license), _) => Some(license.clone()),
        (None, Some(_)) => Some("SEE LICENSE IN LICENSE".to_owned()),
        (None, None) => None,
    };
    let mut authors = package.authors.iter();
    let author = authors.next().map(Json::string);
    let contributors: Vec<&String> = authors.collect();
    builder
        .optional("description", description.map(Json::string))
        .optional(
            "keywords",
            (!package.keywords.is_empty()).then(|| Json::strings(&package.keywords)),
        )
        .optional("homepage", package.homepage.clone().map(Json::string))
        .optional("bugs", bugs)
        .optional(
            "repository",
            repository.map(|url| {
                ObjectBuilder::default()
                    .field("type", Json::string("git"))
                    .field("url", Json::string(url))
                    .build()
            }),
        )
        .optional("license", license.map(Json::string))
        .optional("author", author)
        .optional(
            "contributors",
            (!contributors.is_empty()).then(|| Json::strings(contributors)),
        )
}

/// `https://github.com/acme/greeter` for a GitHub, GitLab or Bitbucket repository URL (without
/// `.git`, trailing slash or `git+`), else None.
fn hosted_repository(url: &str) -> Option<String> {
    let trimmed = url
        .trim_start_matches("git+")
        .trim_end_matches('/')
        .trim_end_matches(".git");
    let rest = trimmed.strip_prefix("https://")?;
    let mut parts = rest.split('/');
    let host = parts.next()?;
    let owner = parts.next()?;
    let project = parts.next()?;
    let hosted = matches!(host, "github.com" | "gitlab.com" | "bitbucket.org");
    (hosted && parts.next().is_none() && !owner.is_empty() && !project.is_empty())
        .then(|| format!("https://{host}/{owner}/{project}"))
}

/// The repository URL as npm normalizes it on publish (`git+https://…/x.git` for hosted
/// repositories), so `npm publish` has nothing to "auto-correct"; other URLs pass through.
fn normalize_repository(url: &str) -> String {
    match hosted_repository(url) {
        Some(base) => format!("git+{base}.git"),
        None => url.to_owned(),
    }
}

/// The license files of the package ([`castoff_plan::Package::license_files`]) at the top of
/// the tarball: Cargo's `license-file` as `LICENSE` (what `SEE LICENSE IN LICENSE` names), the
/// others under their own names; of two files of one name, the first.
pub(crate) fn license_files(
    name: &str,
    package: &Package,
    workspace_root: &Path,
) -> Result<Vec<PackageFile>, NpmError> {
    let mut files: Vec<PackageFile> = Vec::new();
    for path in package.license_files(workspace_root) {
        let inside = if package.license_file.as_deref() == Some(path.as_path()) {
            "LICENSE".to_owned()
        } else {
            path.file_name().map_or_else(
                || "LICENSE".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            )
        };
        if files.iter().any(|file| file.path == inside) {
            continue;
        }
        files.push(disk_file(name, &inside, &path, FILE_MODE)?);
    }
    Ok(files)
}

/// A file on disk to be packed as `inside` with `mode`.
pub(crate) fn disk_file(
    name: &str,
    inside: &str,
    path: &Path,
    mode: u32,
) -> Result<PackageFile, NpmError> {
    let size = regular_file_size(name, path)?;
    Ok(PackageFile {
        path: inside.to_owned(),
        mode,
        source: FileSource::Path {
            path: path.to_owned(),
            size,
        },
    })
}

/// The size of `path`, which must be a readable regular file (package `name` is named in
/// the error).
pub(crate) fn regular_file_size(name: &str, path: &Path) -> Result<u64, NpmError> {
    let read_error = |source| NpmError::Read {
        name: name.to_owned(),
        path: path.to_owned(),
        source,
        hint: "check that the file exists and is readable",
    };
    let metadata = fs::metadata(path).map_err(read_error)?;
    if !metadata.is_file() {
        return Err(NpmError::NotAFile {
            name: name.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(metadata.len())
}

/// The `libc` field of a target's platform package, which the launcher's choice must mirror.
/// Only Linux packages have one. A statically linked build (every musl build; a glibc build
/// with `crt-static`) runs on any Linux libc, so when it is the only Linux build for its cpu it
/// carries no `libc` and npm installs it everywhere; when builds for both libcs exist, each
/// carries its own and npm picks one.
pub(crate) fn libc_field(
    app_targets: &[&Target],
    crt_static: bool,
    target: &Target,
) -> Option<&'static str> {
    let libc = target.npm_libc?;
    let runs_on_any_libc = libc == "musl" || crt_static;
    let other_libc_built = app_targets.iter().any(|other| {
        other.npm_os == target.npm_os
            && other.npm_cpu == target.npm_cpu
            && other.npm_libc.is_some_and(|other_libc| other_libc != libc)
    });
    (!runs_on_any_libc || other_libc_built).then_some(libc)
}

/// "linux x64 (glibc)", "darwin arm64", "win32 x64": how READMEs name a platform.
pub(crate) fn describe_target(target: &Target) -> String {
    match target.npm_libc {
        Some(libc) => format!("{} {} ({libc})", target.npm_os, target.npm_cpu),
        None => format!("{} {}", target.npm_os, target.npm_cpu),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        assert_eq!(
            normalize_repository("https://github.com/acme/greeter"),
            "git+https://github.com/acme/greeter.git"
        );
        assert_eq!(
            normalize_repository("https://github.com/acme/greeter.git/"),
            "git+https://github.com/acme/greeter.git"
        );
        assert_eq!(
            normalize_repository("https://git.example.com/acme/greeter"),
            "https://git.example.com/acme/greeter"
        );
        assert_eq!(
            hosted_repository("https://github.com/acme/greeter/tree/main"),
            None
        );
    }

    #[test]
    fn libc_fields() {
        let target = |triple: &str| -> &'static Target { triple.parse().unwrap() };
        let check = |targets: &[&str], crt_static: bool, expect: &[(&str, Option<&str>)]| {
            let targets: Vec<&'static Target> = targets.iter().map(|t| target(t)).collect();
            let got: Vec<(&str, Option<&str>)> = targets
                .iter()
                .map(|t| (t.triple, libc_field(&targets, crt_static, t)))
                .collect();
            assert_eq!(got, expect, "crt_static = {crt_static}");
        };
        // Both libcs built: each package names its own.
        check(
            &["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"],
            false,
            &[
                ("x86_64-unknown-linux-gnu", Some("glibc")),
                ("x86_64-unknown-linux-musl", Some("musl")),
            ],
        );
        // A lone static build serves every libc; a lone dynamic glibc build only glibc.
        check(
            &[
                "aarch64-unknown-linux-musl",
                "x86_64-unknown-linux-gnu",
                "aarch64-apple-darwin",
            ],
            false,
            &[
                ("aarch64-unknown-linux-musl", None),
                ("x86_64-unknown-linux-gnu", Some("glibc")),
                ("aarch64-apple-darwin", None),
            ],
        );
        check(
            &["x86_64-unknown-linux-gnu", "x86_64-pc-windows-msvc"],
            true,
            &[
                ("x86_64-unknown-linux-gnu", None),
                ("x86_64-pc-windows-msvc", None),
            ],
        );
        check(
            &["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"],
            true,
            &[
                ("x86_64-unknown-linux-gnu", Some("glibc")),
                ("x86_64-unknown-linux-musl", Some("musl")),
            ],
        );
    }
}
