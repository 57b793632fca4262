//! The image channel: repository and mirrors, a digest-pinned base, a numeric user, the
//! entrypoint, health check and extra files (paths checked lexically; `dist` checks the files).

use std::path::{Component, Path, PathBuf};

use cargo_metadata::Package as CargoPackage;
use semver::Version;

use crate::config::{self, ExtraFileConfig, HealthcheckConfig, OciConfig};
use crate::names;
use crate::plan::model::{
    BaseImage, ExtraFile, Healthcheck, LayerCompression, OciChannel, Userland,
};
use crate::target::{Libc, Target};
use crate::version;

pub(in crate::plan) fn plan_oci(
    package: &CargoPackage,
    config: &OciConfig,
    version: &Version,
    bins: &[String],
    targets: &[&'static Target],
    workspace_root: &Path,
    error: &mut impl FnMut(String, String, String),
) -> Option<OciChannel> {
    let key = |name: &str| format!("package.metadata.castoff.oci.{name}");
    // Short names as Docker reads them (`acme/greeter` is Docker Hub's).
    let config = &OciConfig {
        repository: names::normalize_oci_repository(&config.repository),
        mirrors: config
            .mirrors
            .iter()
            .map(|mirror| names::normalize_oci_repository(mirror))
            .collect(),
        ..config.clone()
    };
    let mut failed = false;
    let mut fail = |key: String, problem: String, hint: String| {
        failed = true;
        error(key, problem, hint);
    };
    for (index, mirror) in config.mirrors.iter().enumerate() {
        if let Err(problem) = names::check_oci_repository(mirror) {
            fail(
                format!("{}[{index}]", key("mirrors")),
                format!("`{mirror}`: {problem}"),
                "write it as `registry/namespace/name`, e.g. `docker.io/acme/greeter`".to_owned(),
            );
        } else if mirror == &config.repository || config.mirrors[..index].contains(mirror) {
            fail(
                format!("{}[{index}]", key("mirrors")),
                format!("`{mirror}` is listed twice"),
                "name each repository once: `repository` first, then its mirrors".to_owned(),
            );
        }
    }
    if let Err(problem) = names::check_oci_repository(&config.repository) {
        fail(
            key("repository"),
            format!(
                "`{}`: {problem}",
                names::redact_userinfo(&config.repository)
            ),
            "write it as `registry/namespace/name`, e.g. `ghcr.io/acme/greeter`".to_owned(),
        );
    }
    let package_dir = package
        .manifest_path
        .parent()
        .map(|dir| dir.as_std_path().to_owned())
        .unwrap_or_default();
    let base = match config.base.as_deref() {
        None | Some("scratch") => BaseImage::Scratch,
        Some(base) => match base.strip_prefix("oci-layout:") {
            Some(dir) => BaseImage::Layout(package_dir.join(dir)),
            None => {
                let pinned = base.split_once("@sha256:").is_some_and(|(_, hex)| {
                    hex.len() == 64
                        && hex
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                });
                if !pinned {
                    fail(
                        key("base"),
                        format!("base image `{base}` is not pinned by digest"),
                        "pin it, e.g. `gcr.io/distroless/static-debian12@sha256:<digest>` (find the digest with `skopeo inspect`), or use `scratch` or `oci-layout:<dir>`".to_owned(),
                    );
                }
                BaseImage::Reference(base.to_owned())
            }
        },
    };
    let user = config
        .user
        .clone()
        .unwrap_or_else(|| "65532:65532".to_owned());
    let numeric = |part: &str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) && part.parse::<u32>().is_ok()
    };
    let user_ok = match user.split_once(':') {
        Some((uid, gid)) => numeric(uid) && numeric(gid),
        None => numeric(&user),
    };
    if !user_ok {
        fail(
            key("user"),
            format!("user `{user}` is not numeric"),
            "use `uid:gid` numbers, e.g. `65532:65532`: Kubernetes `runAsNonRoot` cannot verify a user name".to_owned(),
        );
    }
    if let Some(workdir) = &config.workdir
        && !is_normalized_absolute(workdir)
    {
        fail(
            key("workdir"),
            format!("`{workdir}` is not an absolute, normalized path"),
            "write it like `/srv/app`".to_owned(),
        );
    }
    let layer_compression = match config.layer_compression.as_deref() {
        None | Some("gzip") => LayerCompression::Gzip,
        Some("zstd") => LayerCompression::Zstd,
        Some(other) => {
            fail(
                key("layer-compression"),
                format!("`{other}` is not a layer compression castoff writes"),
                "use `gzip` (the default, read by every runtime) or `zstd` (read by Docker 23 and containerd 1.5 and later)".to_owned(),
            );
            LayerCompression::Gzip
        }
    };
    for name in config.env.keys() {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            fail(
                key(&format!("env.{name}")),
                format!("`{name}` is not an environment variable name"),
                "use a name without `=`, e.g. `RUST_LOG`".to_owned(),
            );
        }
    }
    if config.ports.contains(&0) {
        fail(
            key("ports"),
            "port 0 is not a port a service listens on".to_owned(),
            "list the TCP ports the service listens on, e.g. [8080]".to_owned(),
        );
    }
    let entrypoint = config
        .entrypoint
        .clone()
        .or_else(|| bins.first().cloned())
        .unwrap_or_default();
    // An empty `bins` is reported on its own; naming no entrypoint then says nothing new.
    if !bins.is_empty() && !bins.contains(&entrypoint) {
        fail(
            key("entrypoint"),
            format!("`{entrypoint}` is not one of the released binaries"),
            format!("released binaries: {}", bins.join(", ")),
        );
    }
    let healthcheck = config
        .healthcheck
        .as_ref()
        .map(|check| plan_healthcheck(check, &mut fail));
    let mut files = Vec::new();
    for (index, file) in config.files.iter().enumerate() {
        if let Some(extra) = plan_extra_file(
            file,
            &package_dir,
            workspace_root,
            &format!("files[{index}]"),
            &mut fail,
        ) {
            files.push(extra);
        }
    }
    for tag in version::oci_tags(version) {
        if !version::is_valid_oci_tag(&tag) {
            fail(
                "package.version".to_owned(),
                format!(
                    "`{version}` cannot be an image tag: `{tag}` is longer than the 128 characters a tag may have"
                ),
                "shorten the pre-release and build metadata".to_owned(),
            );
        }
    }
    // A base brings its own system data (or deliberately none); castoff's would shadow it.
    if base != BaseImage::Scratch {
        let data = [
            (
                config.ca_certificates,
                "ca-certificates",
                "/etc/ssl/certs/ca-certificates.crt",
            ),
            (config.tzdata, "tzdata", "/usr/share/zoneinfo/"),
        ];
        for (enabled, name, path) in data {
            if enabled {
                fail(
                    key(name),
                    format!(
                        "`{name} = true` adds `{path}` to a `scratch` image, but `base` is `{}`",
                        config.base.as_deref().unwrap_or_default()
                    ),
                    format!(
                        "remove `{name}` and take `{path}` from the base image (e.g. a distroless or Debian base), or set `base = \"scratch\"`"
                    ),
                );
            }
        }
    }
    let image_targets = match &config.targets {
        Some(triples) => configured_image_targets(triples, targets, &key("targets"), &mut fail),
        None => default_image_targets(targets),
    };
    if failed {
        return None;
    }
    Some(OciChannel {
        repository: config.repository.clone(),
        mirrors: config.mirrors.clone(),
        tags: version::oci_tags(version),
        base,
        user,
        workdir: config.workdir.clone(),
        env: config.env.clone(),
        ports: config.ports.clone(),
        labels: config.labels.clone(),
        cmd: config.cmd.clone(),
        stop_signal: config.stop_signal.clone(),
        entrypoint,
        healthcheck,
        files,
        layer_compression,
        targets: image_targets,
        targets_configured: config.targets.is_some(),
        userland: Userland {
            ca_certificates: config.ca_certificates,
            tzdata: config.tzdata,
        },
    })
}

/// Every Linux target of the package, except a glibc target whose platform also has a musl
/// target: an index holds one image per platform, and the musl build is static, so it runs on
/// any base.
fn default_image_targets(targets: &[&'static Target]) -> Vec<&'static Target> {
    targets
        .iter()
        .copied()
        .filter(|target| {
            target.oci.is_some()
                && !(target.libc == Some(Libc::Glibc)
                    && targets
                        .iter()
                        .any(|other| other.oci == target.oci && other.libc == Some(Libc::Musl)))
        })
        .collect()
}

/// `oci.targets` checked: targets of the package, Linux, one per image platform.
fn configured_image_targets(
    triples: &[String],
    targets: &[&'static Target],
    key: &str,
    fail: &mut impl FnMut(String, String, String),
) -> Vec<&'static Target> {
    let linux: Vec<&str> = targets
        .iter()
        .filter(|target| target.oci.is_some())
        .map(|target| target.triple)
        .collect();
    if triples.is_empty() {
        fail(
            key.to_owned(),
            "the list of image targets is empty".to_owned(),
            "name at least one Linux target, or remove the `oci` table to build no image"
                .to_owned(),
        );
    }
    let mut chosen: Vec<&'static Target> = Vec::new();
    for (index, triple) in triples.iter().enumerate() {
        let entry = format!("{key}[{index}]");
        let Some(target) = targets.iter().copied().find(|t| t.triple == triple) else {
            fail(
                entry,
                format!("`{triple}` is not one of this package's targets"),
                format!("the package's Linux targets: {}", linux.join(", ")),
            );
            continue;
        };
        let Some(platform) = target.oci else {
            fail(
                entry,
                format!("`{triple}` has no image platform: container images are Linux only"),
                format!("the package's Linux targets: {}", linux.join(", ")),
            );
            continue;
        };
        if let Some(earlier) = chosen.iter().find(|t| t.oci == Some(platform)) {
            fail(
                entry,
                format!(
                    "`{triple}` and `{}` are both {platform}, and an index holds one image per platform",
                    earlier.triple
                ),
                "keep one of them".to_owned(),
            );
            continue;
        }
        chosen.push(target);
    }
    // In the package's target order, like every other per-target list.
    targets
        .iter()
        .copied()
        .filter(|target| chosen.contains(target))
        .collect()
}

fn plan_healthcheck(
    config: &HealthcheckConfig,
    fail: &mut impl FnMut(String, String, String),
) -> Healthcheck {
    let key = |name: &str| format!("package.metadata.castoff.oci.healthcheck.{name}");
    if config.cmd.is_empty() {
        fail(
            key("cmd"),
            "the health check command is empty".to_owned(),
            "give the command and its arguments, e.g. [\"/usr/local/bin/app\", \"healthcheck\"]"
                .to_owned(),
        );
    }
    let mut duration = |name: &str, value: &Option<String>| {
        value.as_ref().and_then(|text| {
            let nanos = config::parse_duration_nanos(text);
            if nanos.is_none() {
                fail(
                    key(name),
                    format!("`{text}` is not a duration"),
                    "write durations like \"10s\", \"1m30s\" or \"500ms\"".to_owned(),
                );
            }
            nanos
        })
    };
    Healthcheck {
        cmd: config.cmd.clone(),
        interval_nanos: duration("interval", &config.interval),
        timeout_nanos: duration("timeout", &config.timeout),
        start_period_nanos: duration("start-period", &config.start_period),
        retries: config.retries,
    }
}

fn plan_extra_file(
    config: &ExtraFileConfig,
    package_dir: &Path,
    workspace_root: &Path,
    entry: &str,
    fail: &mut impl FnMut(String, String, String),
) -> Option<ExtraFile> {
    let key = |name: &str| format!("package.metadata.castoff.oci.{entry}.{name}");
    let mut ok = true;
    if Path::new(&config.src).is_absolute() {
        fail(
            key("src"),
            format!("`{}` is an absolute path", config.src),
            "give the source relative to the package directory".to_owned(),
        );
        ok = false;
    }
    let src = lexically_normalize(&package_dir.join(&config.src));
    if ok && !src.starts_with(workspace_root) {
        fail(
            key("src"),
            format!("`{}` points outside the workspace", config.src),
            "copy the file into the workspace and name it relative to the package directory"
                .to_owned(),
        );
        ok = false;
    }
    if !is_normalized_absolute(&config.dst) || config.dst == "/" {
        fail(
            key("dst"),
            format!("`{}` is not an absolute, normalized file path", config.dst),
            "write it like `/etc/app/config.toml` (no `..`, `.`, `//` or trailing `/`)".to_owned(),
        );
        ok = false;
    }
    let mode_text = config.mode.as_deref().unwrap_or("0644");
    let mode = u32::from_str_radix(mode_text, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777);
    if mode.is_none() {
        fail(
            key("mode"),
            format!("`{mode_text}` is not an octal file mode"),
            "write it like \"0644\" or \"0755\"".to_owned(),
        );
        ok = false;
    }
    (ok).then(|| ExtraFile {
        src,
        dst: config.dst.clone(),
        mode: mode.unwrap_or(0o644),
    })
}

/// `/a/b` yes; `a/b`, `/a/../b`, `/a/./b`, `/a//b`, `/a/` no.
fn is_normalized_absolute(path: &str) -> bool {
    path == "/"
        || (path.starts_with('/')
            && path[1..]
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != ".."))
}

/// Resolves `.` and `..` without touching the file system (symlinks are checked at `dist`).
fn lexically_normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                normalized.pop();
            }
            Component::CurDir => {}
            other => normalized.push(other),
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(is_normalized_absolute("/etc/app.toml"));
        assert!(!is_normalized_absolute("etc/app.toml"));
        assert!(!is_normalized_absolute("/etc/../app.toml"));
        assert!(!is_normalized_absolute("/etc//app.toml"));
        assert!(!is_normalized_absolute("/etc/"));
        assert_eq!(
            lexically_normalize(Path::new("/w/p/../../x")),
            PathBuf::from("/x")
        );
    }
}
