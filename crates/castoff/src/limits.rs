//! Upload size limits: an artifact larger than what its destination accepts is refused by
//! `publish` before any upload (and `dist` warns), instead of failing with a 413 half-way
//! through a release. A limit is `python.upload-limit` / `npm.upload-limit` when configured,
//! else the registry's known default: PyPI (pypi.org, test.pypi.org) takes 100 MiB per file
//! unless the project's limit was raised. registry.npmjs.org documents no limit, and OCI
//! registries have no general one, so neither gets a default.

use crate::hint::Hinted;
use castoff_plan::{ArtifactKind, Manifest};

/// PyPI's default per-file limit (warehouse `MAX_FILESIZE`), on pypi.org and test.pypi.org.
pub(crate) const PYPI_DEFAULT_FILE_LIMIT: u64 = 100 * 1024 * 1024;

/// The channel an upload goes through, which names the configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Pypi,
    Npm,
}

impl Channel {
    fn key(self) -> &'static str {
        match self {
            Channel::Pypi => "python.upload-limit",
            Channel::Npm => "npm.upload-limit",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Channel::Pypi => "wheel",
            Channel::Npm => "package tarball",
        }
    }
}

/// Where a limit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `python.upload-limit` / `npm.upload-limit`.
    Configured,
    /// PyPI's default per-file limit.
    PypiDefault,
}

/// The largest file a destination takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    pub bytes: u64,
    pub source: Source,
}

/// Whether an upload URL is PyPI's (production or test), whose default limit is known.
fn is_pypi(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    matches!(
        host.as_str(),
        "upload.pypi.org" | "pypi.org" | "test.pypi.org" | "upload.test.pypi.org"
    ) || matches!(url, "pypi" | "testpypi")
}

/// The limit for one destination: the configured one, else the registry's known default.
pub(crate) fn limit_for(
    channel: Channel,
    destination_url: &str,
    configured: Option<u64>,
) -> Option<Limit> {
    if let Some(bytes) = configured {
        return Some(Limit {
            bytes,
            source: Source::Configured,
        });
    }
    match channel {
        Channel::Pypi if is_pypi(destination_url) => Some(Limit {
            bytes: PYPI_DEFAULT_FILE_LIMIT,
            source: Source::PypiDefault,
        }),
        _ => None,
    }
}

/// A size for people, exact in bytes too: `100.0 MiB (104857600 bytes)`, `812 bytes`.
pub(crate) fn size_text(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{} ({bytes} bytes)", human_size(bytes))
    }
}

/// Checks one upload against its destination's limit. `artifact` names the file (wheel file
/// name, `package@version`), `destination` is the URL as shown to people (no credentials).
/// The refusal names the artifact, its size, the registry, the limit and a `hint:`.
pub(crate) fn check(
    channel: Channel,
    artifact: &str,
    size: u64,
    destination: &str,
    configured: Option<u64>,
) -> Result<(), Hinted> {
    let Some(limit) = limit_for(channel, destination, configured) else {
        return Ok(());
    };
    if size <= limit.bytes {
        return Ok(());
    }
    let key = channel.key();
    let (whose, hint) = match (limit.source, channel) {
        (Source::PypiDefault, _) => (
            "PyPI's default per-file limit".to_owned(),
            format!(
                "ask PyPI to raise the project's file size limit (open a \"File Limit Request\" at https://github.com/pypi/support; up to 1 GiB), then tell castoff with `{key} = \"<new limit>\"` (e.g. \"300MiB\") in [package.metadata.castoff] and run `dist` again; or make the wheel smaller (`strip = true` and `opt-level = \"z\"` in [profile.release])"
            ),
        ),
        (Source::Configured, Channel::Pypi) => (
            format!("the limit set by `{key}`"),
            format!(
                "if the index accepts larger files (PyPI raises a project's limit on request at https://github.com/pypi/support), raise `{key}` in [package.metadata.castoff] and run `dist` again; or make the wheel smaller (`strip = true` in [profile.release])"
            ),
        ),
        (Source::Configured, Channel::Npm) => (
            format!("the limit set by `{key}`"),
            format!(
                "if the registry accepts larger packages, raise `{key}` in [package.metadata.castoff] and run `dist` again; or make the package smaller (`strip = true` in [profile.release])"
            ),
        ),
    };
    Err(Hinted::new(
        format!(
            "the {noun} {artifact} is {}, larger than {whose} for {destination}: {}",
            size_text(size),
            size_text(limit.bytes),
            // A source distribution is the one `.tar.gz` a PyPI project uploads.
            noun = if channel == Channel::Pypi && artifact.ends_with(".tar.gz") {
                "sdist"
            } else {
                channel.noun()
            }
        ),
        hint,
    ))
}

/// Warnings for `dist`: built wheels and tarballs over their configured limit, and wheels over
/// PyPI's default when the package uploads to PyPI (its configured repositories name `pypi` or
/// `testpypi`, or none are configured, which means PyPI unless `publish` is told otherwise).
pub(crate) fn dist_warnings(manifest: &Manifest) -> Vec<String> {
    let mut warnings = Vec::new();
    for artifact in &manifest.artifacts {
        let (Some(size), Some(app)) = (
            artifact.size,
            manifest.apps.iter().find(|app| app.name == artifact.app),
        ) else {
            continue;
        };
        let name = artifact.path.as_deref().unwrap_or(&artifact.id);
        let (channel, configured, destinations): (Channel, Option<u64>, Vec<&str>) =
            match artifact.kind {
                ArtifactKind::Wheel | ArtifactKind::Sdist => {
                    let Some(python) = &app.python else { continue };
                    let mut destinations: Vec<&str> = manifest
                        .steps
                        .iter()
                        .filter(|step| step.artifact == artifact.id)
                        .map(|step| step.destination.as_deref().unwrap_or("pypi"))
                        .collect();
                    destinations.dedup();
                    (Channel::Pypi, python.upload_limit, destinations)
                }
                ArtifactKind::NpmPlatform | ArtifactKind::NpmLauncher => {
                    let Some(npm) = &app.npm else { continue };
                    (Channel::Npm, npm.upload_limit, vec!["the npm registry"])
                }
                _ => continue,
            };
        for destination in destinations {
            if let Err(refusal) = check(channel, name, size, destination, configured) {
                warnings.push(format!("{refusal}; `publish` will refuse it there"));
                break;
            }
        }
    }
    warnings
}

/// `1.5 GiB`, `1.5 MiB`, `12.0 KiB`, `844 B`.
pub(crate) fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 * 1024 {
        format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
    } else if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn pypi_has_a_default_other_indexes_do_not() {
        for url in [
            "https://upload.pypi.org/legacy/",
            "https://test.pypi.org/legacy/",
            "https://UPLOAD.PYPI.ORG:443/legacy/",
            "pypi",
            "testpypi",
        ] {
            assert_eq!(
                limit_for(Channel::Pypi, url, None),
                Some(Limit {
                    bytes: 100 * MIB,
                    source: Source::PypiDefault
                }),
                "{url}"
            );
        }
        for url in [
            "http://127.0.0.1:8080/",
            "https://pypi.example.com/legacy/",
            "https://upload.pypi.org.evil.example/legacy/",
        ] {
            assert_eq!(limit_for(Channel::Pypi, url, None), None, "{url}");
        }
        // npm: undocumented, so no default, not even on npmjs.
        assert_eq!(
            limit_for(Channel::Npm, "https://registry.npmjs.org/", None),
            None
        );
    }

    #[test]
    fn a_configured_limit_wins_everywhere() {
        let configured = Some(300 * MIB);
        for (channel, url) in [
            (Channel::Pypi, "https://upload.pypi.org/legacy/"),
            (Channel::Pypi, "http://127.0.0.1:8080/"),
            (Channel::Npm, "https://registry.npmjs.org/"),
        ] {
            assert_eq!(
                limit_for(channel, url, configured),
                Some(Limit {
                    bytes: 300 * MIB,
                    source: Source::Configured
                })
            );
        }
        // Raised: a 150 MiB wheel passes PyPI.
        assert!(
            check(
                Channel::Pypi,
                "a.whl",
                150 * MIB,
                "https://upload.pypi.org/legacy/",
                configured
            )
            .is_ok()
        );
    }

    #[test]
    fn at_the_limit_passes_one_byte_over_is_refused() {
        let url = "https://upload.pypi.org/legacy/";
        assert!(check(Channel::Pypi, "a.whl", 100 * MIB, url, None).is_ok());
        assert!(check(Channel::Pypi, "a.whl", 100 * MIB + 1, url, None).is_err());
        assert!(
            check(
                Channel::Pypi,
                "a.whl",
                5 * (1 << 30),
                "http://127.0.0.1:1/",
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn refusal_of_pypi_default_names_everything_and_hints() {
        let message = check(
            Channel::Pypi,
            "greeter-1.0.0-py3-none-manylinux_2_17_x86_64.whl",
            120 * MIB + 512 * 1024,
            "https://upload.pypi.org/legacy/",
            None,
        )
        .unwrap_err();
        let message = crate::hint::render(&message);
        expect_test::expect![[r#"
            the wheel greeter-1.0.0-py3-none-manylinux_2_17_x86_64.whl is 120.5 MiB (126353408 bytes), larger than PyPI's default per-file limit for https://upload.pypi.org/legacy/: 100.0 MiB (104857600 bytes)
            hint: ask PyPI to raise the project's file size limit (open a "File Limit Request" at https://github.com/pypi/support; up to 1 GiB), then tell castoff with `python.upload-limit = "<new limit>"` (e.g. "300MiB") in [package.metadata.castoff] and run `dist` again; or make the wheel smaller (`strip = true` and `opt-level = "z"` in [profile.release])"#]]
        .assert_eq(&message);
    }

    #[test]
    fn refusal_of_a_configured_npm_limit() {
        let message = check(
            Channel::Npm,
            "@acme/greeter-linux-x64-gnu@1.0.0",
            3 * MIB,
            "https://registry.npmjs.org/",
            Some(2 * MIB),
        )
        .unwrap_err();
        let message = crate::hint::render(&message);
        expect_test::expect![[r#"
            the package tarball @acme/greeter-linux-x64-gnu@1.0.0 is 3.0 MiB (3145728 bytes), larger than the limit set by `npm.upload-limit` for https://registry.npmjs.org/: 2.0 MiB (2097152 bytes)
            hint: if the registry accepts larger packages, raise `npm.upload-limit` in [package.metadata.castoff] and run `dist` again; or make the package smaller (`strip = true` in [profile.release])"#]]
        .assert_eq(&message);
    }

    /// A manifest with one wheel (to `repositories`) and one npm tarball, of these sizes.
    fn manifest(wheel: u64, tarball: u64, limits: &str, repositories: &[&str]) -> Manifest {
        let steps: Vec<String> = if repositories.is_empty() {
            vec![r#"{"id":"pypi-upload/a/t","kind":"pypi-upload","app":"a","artifact":"wheel/a/t","after":[]}"#.to_owned()]
        } else {
            repositories
                .iter()
                .map(|r| format!(r#"{{"id":"pypi-upload/a/t@{r}","kind":"pypi-upload","app":"a","artifact":"wheel/a/t","after":[],"destination":"{r}"}}"#))
                .collect()
        };
        Manifest::from_json(&format!(
            r#"{{"schema_version":1,"castoff_version":"0","apps":[{{"name":"a","version":"1.0.0","bins":["a"],"targets":["t"],"depends_on":[],
              "python":{{"name":"a","version":"1.0.0","requires_dist":[]{limits}}},
              "npm":{{"name":"a","version":"1.0.0","dist_tag":"latest"{limits}}}}}],
             "artifacts":[
              {{"id":"wheel/a/t","kind":"wheel","app":"a","inputs":[],"path":"python/a.whl","size":{wheel}}},
              {{"id":"npm-platform/a/t","kind":"npm-platform","app":"a","inputs":[],"path":"npm/a.tgz","size":{tarball}}}],
             "steps":[{}]}}"#,
            steps.join(",")
        ))
        .unwrap()
    }

    #[test]
    fn dist_warns_about_what_publish_will_refuse() {
        // PyPI is the default index: a 101 MiB wheel would be refused there.
        let warnings = dist_warnings(&manifest(101 * MIB, 300 * MIB, "", &[]));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("PyPI's default per-file limit"),
            "{warnings:?}"
        );
        // Another index only: no default limit.
        let private = dist_warnings(&manifest(101 * MIB, 1, "", &["https://pypi.example.com/"]));
        assert!(private.is_empty(), "{private:?}");
        // Configured limits apply to both channels.
        let configured = dist_warnings(&manifest(
            3 * MIB,
            3 * MIB,
            r#","upload_limit":2097152"#,
            &[],
        ));
        assert_eq!(configured.len(), 2, "{configured:?}");
        assert!(configured[1].contains("npm.upload-limit"), "{configured:?}");
        // Within the limits: silence.
        assert!(dist_warnings(&manifest(MIB, MIB, "", &["testpypi", "pypi"])).is_empty());
    }

    #[test]
    fn size_texts() {
        assert_eq!(size_text(1000), "1000 bytes");
        assert_eq!(size_text(1536), "1.5 KiB (1536 bytes)");
        assert_eq!(size_text(100 * MIB), "100.0 MiB (104857600 bytes)");
    }
}
