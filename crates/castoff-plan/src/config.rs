//! The `[workspace.metadata.castoff]` and `[package.metadata.castoff]` tables, exactly as users
//! write them. Unknown keys are errors (`deny_unknown_fields`): a typo must never be ignored.
//! Every key is documented in `docs/configuration.md`; a test keeps the two in sync.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Declares a configuration table that also takes the build settings: the workspace table,
/// a package's table, and the per-target tables of both (`target.<triple>`). One list of
/// fields, so the four tables cannot drift apart; serde's `flatten` would lose
/// `deny_unknown_fields`.
macro_rules! with_build_settings {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($body)*
            /// Cargo features to enable (`--features`), e.g. `["pcre2"]`.
            #[serde(default)]
            pub features: Option<Vec<String>>,
            /// Enable every feature of the package (`--all-features`).
            #[serde(default)]
            pub all_features: Option<bool>,
            /// Leave out the package's default features (`--no-default-features`).
            #[serde(default)]
            pub no_default_features: Option<bool>,
            /// The Cargo profile to build with (`--profile`); default `release`.
            #[serde(default)]
            pub profile: Option<String>,
            /// Extra environment of `cargo build`.
            #[serde(default)]
            pub build_env: Option<BTreeMap<String, String>>,
            /// Extra arguments of `cargo build`, for what no other key covers.
            #[serde(default)]
            pub cargo_args: Option<Vec<String>>,
            /// What builds the binaries: `cargo` (default) or `zigbuild` (cargo-zigbuild).
            #[serde(default)]
            pub build: Option<String>,
            /// The oldest glibc the binaries of `*-linux-gnu*` targets run on, e.g. `"2.17"`
            /// (with `build = "zigbuild"`).
            #[serde(default)]
            pub glibc: Option<String>,
        }

        impl $name {
            /// The build settings this table sets (the others are `None`).
            pub fn build_config(&self) -> BuildConfig {
                BuildConfig {
                    features: self.features.clone(),
                    all_features: self.all_features,
                    no_default_features: self.no_default_features,
                    profile: self.profile.clone(),
                    build_env: self.build_env.clone(),
                    cargo_args: self.cargo_args.clone(),
                    build: self.build.clone(),
                    glibc: self.glibc.clone(),
                }
            }
        }
    };
}

with_build_settings! {
    /// `target.<triple> = { ... }`: build settings for one target, over those of the table
    /// it is in.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    pub struct BuildConfig {}
}

impl BuildConfig {
    /// Each key of `over` that is set replaces the same key of `self` (lists and tables as a
    /// whole: a package's `features` is the list it names, not added to the workspace's).
    pub fn overlay(self, over: BuildConfig) -> BuildConfig {
        BuildConfig {
            features: over.features.or(self.features),
            all_features: over.all_features.or(self.all_features),
            no_default_features: over.no_default_features.or(self.no_default_features),
            profile: over.profile.or(self.profile),
            build_env: over.build_env.or(self.build_env),
            cargo_args: over.cargo_args.or(self.cargo_args),
            build: over.build.or(self.build),
            glibc: over.glibc.or(self.glibc),
        }
    }
}

with_build_settings! {
/// `[workspace.metadata.castoff]`: defaults for every released package.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WorkspaceConfig {
    /// Rust target triples every released package is built for, unless it overrides them.
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    /// Link Linux glibc targets statically (`-C target-feature=+crt-static`), for every
    /// released package unless it overrides it.
    #[serde(default)]
    pub crt_static: Option<bool>,
    /// Deflate level (0-9) of every compressed artifact: wheels, npm tarballs, image layers,
    /// archives. Default 6, zlib's default level.
    #[serde(default)]
    pub compression_level: Option<u32>,
    /// The git tag a version is released under, e.g. `"v{version}"` (the default),
    /// `"{version}"`, `"{name}-v{version}"`; for every released package unless it sets its own.
    #[serde(default)]
    pub tag: Option<String>,
    /// Build settings per target, over the workspace's own.
    #[serde(default)]
    pub target: BTreeMap<String, BuildConfig>,
    /// The crates channel: `true` publishes every publishable member of the workspace to
    /// crates.io, in dependency order, before the binary channels; a table chooses the
    /// registry. Default: off.
    #[serde(default)]
    pub crates: Option<CratesSetting>,
}
}

/// `crates = true` or `crates = { registry = "..." }` in `[workspace.metadata.castoff]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CratesSetting {
    Enabled(bool),
    Table(CratesConfig),
}

/// `[workspace.metadata.castoff.crates]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CratesConfig {
    /// The Cargo registry the crates go to, by the name Cargo's configuration gives it
    /// (`[registries.<name>]`); default `crates-io`.
    #[serde(default)]
    pub registry: Option<String>,
}

impl<'de> Deserialize<'de> for CratesSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The key walker (config/keys.rs) walks the table form, the one with keys.
        if !deserializer.is_human_readable() {
            return CratesConfig::deserialize(deserializer).map(CratesSetting::Table);
        }
        struct CratesVisitor;
        impl<'de> serde::de::Visitor<'de> for CratesVisitor {
            type Value = CratesSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false, or a table { registry = \"<name>\" }")
            }
            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<CratesSetting, E> {
                Ok(CratesSetting::Enabled(value))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CratesSetting, A::Error> {
                CratesConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(CratesSetting::Table)
            }
        }
        deserializer.deserialize_any(CratesVisitor)
    }
}

with_build_settings! {
/// `[package.metadata.castoff]`: its presence makes the package released.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PackageConfig {
    /// Binaries to ship; default: every `[[bin]]` of the package.
    #[serde(default)]
    pub bins: Option<Vec<String>>,
    /// Target triples for this package; default: the workspace's `targets`.
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    /// Link Linux glibc targets statically; default: the workspace's `crt-static`, else false.
    #[serde(default)]
    pub crt_static: Option<bool>,
    /// The Python wheel channel; absent means no wheel.
    #[serde(default)]
    pub python: Option<PythonConfig>,
    /// The npm channel; absent means no npm packages.
    #[serde(default)]
    pub npm: Option<NpmConfig>,
    /// The container image channel; absent means no image.
    #[serde(default)]
    pub oci: Option<OciConfig>,
    /// The git tag this package's versions are released under; default: the workspace's `tag`.
    #[serde(default)]
    pub tag: Option<String>,
    /// `false` keeps this package out of the crates channel (`crates` in the workspace
    /// table). A table holding only this key does not make the package released.
    #[serde(default)]
    pub crates: Option<bool>,
    /// What `castoff verify` runs in each installed artifact.
    #[serde(default)]
    pub verify: Option<VerifyConfig>,
    /// Build settings per target, over the package's own (and the workspace's).
    #[serde(default)]
    pub target: BTreeMap<String, BuildConfig>,
}
}

/// `verify = { ... }`: the smoke command `castoff verify` runs with every client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VerifyConfig {
    /// The command: a binary of the package, then its arguments; `{version}` in an argument
    /// is the release's version. Default: each binary with `--version`.
    #[serde(default)]
    pub smoke: Option<Vec<String>>,
    /// Text the command's output must contain; default: the release's version.
    #[serde(default)]
    pub expect: Option<String>,
}

/// `python = { ... }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PythonConfig {
    /// Distribution name on PyPI; default: the Cargo package name.
    #[serde(default)]
    pub name: Option<String>,
    /// Importable module that locates the binary; default: the distribution name with `-` → `_`.
    #[serde(default)]
    pub module: Option<String>,
    /// Requirements: the package name of another released app of the workspace (pinned to
    /// the same version, and published first), or any PEP 508 requirement string.
    #[serde(default)]
    pub requires: Vec<String>,
    /// `Requires-Python`, e.g. `">=3.8"`; default: none (the wheel holds no Python code that
    /// needs a particular version).
    #[serde(default)]
    pub requires_python: Option<String>,
    /// Trove classifiers added to castoff's defaults.
    #[serde(default)]
    pub classifiers: Vec<String>,
    /// Indexes to upload to, in order (`testpypi`, `pypi`, a `.pypirc` section or an upload
    /// URL); default: one, chosen at publish time (`--pypi-url`, else PyPI).
    #[serde(default)]
    pub repositories: Vec<String>,
    /// Largest wheel `publish` uploads, checked before any upload, e.g. `"300MiB"` (units `B`,
    /// `kB`/`MB`/`GB`, `KiB`/`MiB`/`GiB`); for every index of this package. Default: PyPI's
    /// 100 MiB per file on pypi.org and test.pypi.org, no limit elsewhere. Set it once PyPI
    /// raised the project's limit.
    #[serde(default)]
    pub upload_limit: Option<String>,
    /// Build a source distribution (`<name>-<version>.tar.gz`, built by maturin where no
    /// wheel fits) and upload it with the wheels; default `true`.
    #[serde(default)]
    pub sdist: Option<bool>,
}

/// `npm = { ... }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NpmConfig {
    /// Launcher package name, scoped or not; platform packages append `-<os>-<cpu>[-<libc>]`.
    /// Default: the Cargo package name.
    #[serde(default)]
    pub name: Option<String>,
    /// Other released apps of the workspace (by Cargo package name) the launcher depends on at
    /// the exact same version; they are published first.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Environment variable that overrides the binary path in the launcher; default:
    /// `<NAME>_BINARY_PATH` from the launcher name (`@acme/greeter` → `GREETER_BINARY_PATH`).
    #[serde(default)]
    pub binary_path_env: Option<String>,
    /// `engines.node` of the launcher; default `>=18`.
    #[serde(default)]
    pub node: Option<String>,
    /// Registries to publish to, in order (URLs); default: one, chosen at publish time
    /// (`--npm-registry`, else `.npmrc`, else registry.npmjs.org).
    #[serde(default)]
    pub registries: Vec<String>,
    /// Largest package tarball `publish` uploads, checked before any upload, e.g. `"150MiB"`
    /// (units as for `python.upload-limit`); for every registry of this package. Default: no
    /// limit (npmjs documents none; it has refused request bodies of about 200 MB).
    #[serde(default)]
    pub upload_limit: Option<String>,
}

/// `oci = { ... }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OciConfig {
    /// Image repository, `registry/path` (e.g. `ghcr.io/acme/greeter`).
    pub repository: String,
    /// More repositories that receive the same image, in order after `repository`
    /// (e.g. `docker.io/acme/greeter`).
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Base image: `scratch` (default), a digest-pinned reference, or `oci-layout:<dir>`.
    #[serde(default)]
    pub base: Option<String>,
    /// `User`, numeric `uid:gid`; default `65532:65532` (distroless `nonroot`).
    #[serde(default)]
    pub user: Option<String>,
    /// `WorkingDir`, an absolute path.
    #[serde(default)]
    pub workdir: Option<String>,
    /// `Env` entries.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Ports the service listens on (`ExposedPorts`, the deploy examples): `8080` (TCP),
    /// `"53/udp"`, or `{ name = "metrics", port = 9090, protocol = "tcp" }`.
    #[serde(default)]
    pub ports: Vec<PortConfig>,
    /// `Labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `Cmd`: arguments after the entrypoint; default none.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `StopSignal`, e.g. `SIGTERM`.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// The binary the entrypoint runs when the package ships several; default: the first.
    #[serde(default)]
    pub entrypoint: Option<String>,
    /// Docker health check.
    #[serde(default)]
    pub healthcheck: Option<HealthcheckConfig>,
    /// Extra files copied into the image: single files, directory trees or globs.
    #[serde(default)]
    pub files: Vec<ExtraFileConfig>,
    /// Directories the service writes to (`Volumes`), mounted by the deploy examples.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// How castoff's layers are compressed: `gzip` (default, every runtime) or `zstd`.
    #[serde(default)]
    pub layer_compression: Option<String>,
    /// The targets whose binaries the index holds, one per image platform; default: every
    /// Linux target, the musl one where a platform has both.
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    /// How the deploy examples run the image (replicas, resources, restart, stop grace).
    #[serde(default)]
    pub deploy: Option<DeployConfig>,
    /// A layer with Mozilla's root certificates at `/etc/ssl/certs/ca-certificates.crt`
    /// (`scratch` only); default `false`.
    #[serde(default)]
    pub ca_certificates: bool,
    /// A layer with the IANA time zone database under `/usr/share/zoneinfo/` (`scratch`
    /// only); default `false`.
    #[serde(default)]
    pub tzdata: bool,
    /// The Rust image, pinned by digest, that the `Dockerfile.source` castoff writes compiles
    /// the binaries in (e.g. `rust:1.85-alpine@sha256:…`).
    #[serde(default)]
    pub builder: Option<String>,
}

/// One entry of `oci.ports`: a number (TCP), a string `"<port>[/tcp|/udp]"`, or a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortConfig {
    Number(i64),
    Text(String),
    Table(PortTable),
}

/// `oci.ports = [{ name, port, protocol }]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PortTable {
    /// The port number.
    pub port: i64,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// The Kubernetes port name (`IANA_SVC_NAME`: up to 15 lowercase letters, digits, `-`).
    #[serde(default)]
    pub name: Option<String>,
}

impl<'de> Deserialize<'de> for PortConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The key walker (config/keys.rs) says it is not human readable: it walks the table
        // form, the only one with keys of its own. TOML and JSON are human readable.
        if !deserializer.is_human_readable() {
            return PortTable::deserialize(deserializer).map(PortConfig::Table);
        }
        struct PortVisitor;
        impl<'de> serde::de::Visitor<'de> for PortVisitor {
            type Value = PortConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a port number, a string like \"53/udp\", or a table { name, port, protocol }",
                )
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<PortConfig, E> {
                Ok(PortConfig::Number(value))
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<PortConfig, E> {
                Ok(PortConfig::Number(i64::try_from(value).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<PortConfig, E> {
                Ok(PortConfig::Text(value.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<PortConfig, A::Error> {
                PortTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(PortConfig::Table)
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

/// `oci.deploy = { ... }`: the deploy examples (`dist/deploy/`), not the image.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeployConfig {
    /// Kubernetes `replicas`; default 1.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Kubernetes CPU request, e.g. `"500m"`; default `"50m"`.
    #[serde(default)]
    pub cpu: Option<String>,
    /// Kubernetes CPU limit; default none.
    #[serde(default)]
    pub cpu_limit: Option<String>,
    /// Kubernetes memory request, e.g. `"128Mi"`; default `"64Mi"`.
    #[serde(default)]
    pub memory: Option<String>,
    /// Kubernetes memory limit (compose `mem_limit`); default `memory` when set, else `"256Mi"`.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// Compose `restart`: `no`, `always`, `on-failure`, `unless-stopped` (default).
    #[serde(default)]
    pub restart: Option<String>,
    /// Time between the stop signal and SIGKILL (compose `stop_grace_period`, Kubernetes
    /// `terminationGracePeriodSeconds`); default `"10s"`.
    #[serde(default)]
    pub stop_grace_period: Option<String>,
}

/// `oci.healthcheck = { ... }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HealthcheckConfig {
    /// Command run inside the container (exec form, no shell).
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Path of an HTTP GET on `port`: healthy on a status of 200 to 399. Docker runs it with
    /// castoff's probe, which castoff adds to the image.
    #[serde(default)]
    pub http: Option<String>,
    /// Port of a TCP connection check (castoff's probe under Docker).
    #[serde(default)]
    pub tcp: Option<u16>,
    /// The port of the `http` check; default: the image's one TCP port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Time between checks, e.g. `"10s"`.
    #[serde(default)]
    pub interval: Option<String>,
    /// Time one check may take.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Grace period after start during which failures do not count.
    #[serde(default)]
    pub start_period: Option<String>,
    /// Time between checks during the start period (Docker Engine 25 and later).
    #[serde(default)]
    pub start_interval: Option<String>,
    /// Consecutive failures before the container is unhealthy.
    #[serde(default)]
    pub retries: Option<u32>,
    /// The Kubernetes readiness probe, where it differs from the health check (which is the
    /// liveness probe).
    #[serde(default)]
    pub readiness: Option<ProbeConfig>,
}

/// `oci.healthcheck.readiness = { ... }`: each key set replaces the health check's own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProbeConfig {
    /// Command run inside the container (exec form).
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Path of an HTTP GET (Kubernetes `httpGet`).
    #[serde(default)]
    pub http: Option<String>,
    /// Port of a TCP connection check (Kubernetes `tcpSocket`).
    #[serde(default)]
    pub tcp: Option<u16>,
    /// The port of the `http` check; default: the health check's HTTP port, else the image's
    /// one TCP port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Time between probes.
    #[serde(default)]
    pub interval: Option<String>,
    /// Time one probe may take.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Consecutive failures before the pod is taken out of its Service.
    #[serde(default)]
    pub retries: Option<u32>,
}

/// One entry of `oci.files`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExtraFileConfig {
    /// Source, relative to the package directory; must stay inside the workspace. A file, a
    /// directory (its tree is copied) or a glob (`static/**/*.css`).
    pub src: String,
    /// Absolute, normalized destination path in the image: the file, or the directory a tree
    /// or the matches of a glob go under.
    pub dst: String,
    /// Unix mode of the files as an octal string, e.g. `"0644"`; default `"0755"` for a
    /// source with an executable bit, `"0644"` otherwise.
    #[serde(default)]
    pub mode: Option<String>,
    /// Unix mode of the directories copied or created under `dst`; default `"0755"`.
    #[serde(default)]
    pub dir_mode: Option<String>,
    /// `"uid:gid"` numbers, or `"user"` for the image user; default `"0:0"`.
    #[serde(default)]
    pub owner: Option<String>,
}

/// Parses a duration such as `"10s"`, `"1m30s"`, `"500ms"` or `"2h"` into nanoseconds, the
/// unit Docker's health-check fields use.
pub fn parse_duration_nanos(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let nanos_per_unit: u64 = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3600 * 1_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(number.checked_mul(nanos_per_unit)?)?;
    }
    Some(total)
}

/// Parses a size such as `"100MiB"`, `"1 GiB"`, `"500kB"` or `"1048576"` (bytes) into bytes.
/// Decimal units (`kB`, `MB`, `GB`) are powers of 1000, binary ones (`KiB`, `MiB`, `GiB`) of
/// 1024. Zero is refused: it would refuse every upload.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return None;
    }
    let number: u64 = text[..digits].parse().ok()?;
    let multiplier: u64 = match text[digits..].trim_start() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "GiB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(multiplier).filter(|bytes| *bytes > 0)
}

#[cfg(test)]
pub(crate) mod keys;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let check = |text: &str, expect: Option<u64>| {
            assert_eq!(parse_duration_nanos(text), expect, "{text}")
        };
        check("10s", Some(10_000_000_000));
        check("1m30s", Some(90_000_000_000));
        check("500ms", Some(500_000_000));
        check("2h", Some(7_200_000_000_000));
        check("", None);
        check("10", None);
        check("s", None);
        check("10x", None);
        check("-1s", None);
    }

    #[test]
    fn sizes() {
        let check =
            |text: &str, expect: Option<u64>| assert_eq!(parse_size(text), expect, "{text}");
        check("100MiB", Some(100 * 1024 * 1024));
        check("1 GiB", Some(1 << 30));
        check("500kB", Some(500_000));
        check("2MB", Some(2_000_000));
        check("1048576", Some(1_048_576));
        check("10B", Some(10));
        check("0", None);
        check("", None);
        check("MiB", None);
        check("1.5GiB", None);
        check("10 mib", None);
        check("-1MiB", None);
        check("99999999999999GiB", None);
    }
}
