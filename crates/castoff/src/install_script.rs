//! `dist/install.sh`: a POSIX shell installer for the direct-download archives. The template
//! (`templates/install.sh`, checked by `shellcheck -s sh` in the tests) gets one line per
//! archive: app, OS, architecture, the C libraries the build runs on, file name, SHA-256, the
//! download directory of the app's release (its tag's GitHub release) and binaries. The digests are written into the script, so one trusted download (the script,
//! itself covered by `SHA256SUMS` and its signature) verifies every archive.

use castoff_plan::target::{Libc, Os};
use castoff_plan::{App, ArtifactKind, Manifest, Release, Target};

/// Name of the script in dist/.
pub(crate) const FILE_NAME: &str = "install.sh";

const TEMPLATE: &str = include_str!("templates/install.sh");

/// The script for every archive in `manifest`; none when there are no archives.
pub(crate) fn render(release: &Release, manifest: &Manifest) -> Option<String> {
    let mut lines = Vec::new();
    for artifact in manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::Archive)
    {
        let (Some(path), Some(sha256), Some(triple)) =
            (&artifact.path, &artifact.sha256, &artifact.target)
        else {
            continue;
        };
        let Some(app) = release
            .apps
            .iter()
            .find(|app| app.package.name == artifact.app)
        else {
            continue;
        };
        let Ok(target) = triple.parse::<&'static Target>() else {
            continue;
        };
        let file = path.rsplit('/').next().unwrap_or(path);
        let os = match target.os {
            Os::Linux => "linux",
            Os::MacOs => "darwin",
            Os::Windows => "windows",
        };
        // The first C library is the one the build is for; a static build runs on the other
        // too (musl builds always are; glibc builds with crt-static).
        let libcs = match target.libc {
            Some(Libc::Musl) => "musl gnu",
            Some(Libc::Glibc) if app.crt_static => "gnu musl",
            Some(_) => "gnu",
            None => "none",
        };
        let bins: Vec<String> = app
            .bins
            .iter()
            .map(|bin| target.executable_name(bin))
            .collect();
        lines.push(format!(
            "{}|{os}|{}|{libcs}|{file}|{sha256}|{}|{}",
            app.package.name,
            script_arch(target),
            release_url(app),
            bins.join(" ")
        ));
    }
    if lines.is_empty() {
        return None;
    }
    lines.sort();
    let title = release
        .apps
        .iter()
        .map(|app| format!("{} {}", app.package.name, app.package.version))
        .collect::<Vec<_>>()
        .join(", ");
    Some(
        TEMPLATE
            .replace("@@TITLE@@", &title)
            .replace("@@ENTRIES@@", &lines.join("\n")),
    )
}

/// The architecture names the script derives from `uname -m`.
fn script_arch(target: &Target) -> &'static str {
    let arch = target.triple.split('-').next().unwrap_or_default();
    match arch {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "i686" | "i586" => "i686",
        "riscv64gc" => "riscv64",
        "powerpc64le" => "ppc64le",
        "s390x" => "s390x",
        arch if arch.starts_with("armv7") || arch.starts_with("thumbv7") => "armv7",
        _ => "unknown",
    }
}

/// The download directory of the GitHub release of `app`'s version when its repository is on
/// GitHub: release.yml uploads the archives to the release of the tag it runs for, the app's
/// tag (`tag`, default `v{version}`). Otherwise empty, and the user passes `--base-url`. Only
/// URL-safe characters reach the script.
fn release_url(app: &App) -> String {
    let Some(repository) = app.package.repository.as_deref() else {
        return String::new();
    };
    let repository = repository.trim_end_matches('/').trim_end_matches(".git");
    let Some(path) = repository.strip_prefix("https://github.com/") else {
        return String::new();
    };
    let url = format!(
        "https://github.com/{path}/releases/download/{}",
        app.git_tag()
    );
    let safe = url
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:/+".contains(&b));
    if safe { url } else { String::new() }
}
