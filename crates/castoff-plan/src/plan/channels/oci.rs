//! The image channel: repository and mirrors, a digest-pinned base, a numeric user, the
//! entrypoint, health check and extra files (paths checked lexically; `dist` checks the files).

use std::path::{Component, Path, PathBuf};

use cargo_metadata::Package as CargoPackage;
use semver::Version;

use crate::config::{
    self, DeployConfig, ExtraFileConfig, HealthcheckConfig, OciConfig, PortConfig, PortTable,
};
use crate::names;
use crate::plan::model::{
    BaseImage, Check, Deploy, ExtraFile, Healthcheck, LayerCompression, OciChannel, Port,
    PortProtocol, Probe, RestartPolicy, Userland,
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
                if !pinned_by_digest(base) {
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
    if let Some(builder) = &config.builder
        && !pinned_by_digest(builder)
    {
        fail(
            key("builder"),
            format!("builder image `{builder}` is not pinned by digest"),
            "pin it, e.g. `rust:1.85-alpine@sha256:<digest>` (find the digest with `skopeo inspect docker://rust:1.85-alpine`)".to_owned(),
        );
    }
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
    let ports = plan_ports(&config.ports, &key("ports"), &mut fail);
    let deploy = plan_deploy(config.deploy.as_ref(), &key("deploy"), &mut fail);
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
        .map(|check| plan_healthcheck(check, &ports, &mut fail));
    let image_user = user_ok.then(|| {
        let (uid, gid) = user.split_once(':').unwrap_or((&user, "0"));
        (uid.parse().unwrap_or(0), gid.parse().unwrap_or(0))
    });
    let mut files = Vec::new();
    for (index, file) in config.files.iter().enumerate() {
        if let Some(extra) = plan_extra_file(
            file,
            &package_dir,
            workspace_root,
            image_user,
            &format!("files[{index}]"),
            &mut fail,
        ) {
            files.push(extra);
        }
    }
    let volumes = plan_volumes(&config.volumes, &key("volumes"), &mut fail);
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
        ports,
        labels: config.labels.clone(),
        cmd: config.cmd.clone(),
        stop_signal: config.stop_signal.clone(),
        entrypoint,
        healthcheck,
        files,
        volumes,
        layer_compression,
        targets: image_targets,
        targets_configured: config.targets.is_some(),
        deploy,
        userland: Userland {
            ca_certificates: config.ca_certificates,
            tzdata: config.tzdata,
        },
        builder: config.builder.clone(),
    })
}

/// Whether an image reference ends in `@sha256:<64 lower-case hex digits>`.
fn pinned_by_digest(reference: &str) -> bool {
    reference.split_once("@sha256:").is_some_and(|(_, hex)| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

const PORTS_HINT: &str = "write a port as 8080 (TCP), \"53/udp\", or { name = \"metrics\", port = 9090, protocol = \"tcp\" }";

/// `oci.ports`: numbers 1-65535, `tcp` or `udp`, Kubernetes port names; no port twice, no
/// name twice.
fn plan_ports(
    entries: &[PortConfig],
    key: &str,
    fail: &mut impl FnMut(String, String, String),
) -> Vec<Port> {
    let mut ports: Vec<Port> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let entry_key = format!("{key}[{index}]");
        let (number, protocol, name, shown) = match entry {
            PortConfig::Number(number) => (*number, None, None, number.to_string()),
            PortConfig::Text(text) => {
                let (number, protocol) = match text.split_once('/') {
                    Some((number, protocol)) => (number, Some(protocol.to_owned())),
                    None => (text.as_str(), None),
                };
                match number.parse::<i64>() {
                    Ok(number) if !number.to_string().starts_with('+') => {
                        (number, protocol, None, format!("\"{text}\""))
                    }
                    _ => {
                        fail(
                            entry_key,
                            format!("`{text}` is not a port"),
                            PORTS_HINT.to_owned(),
                        );
                        continue;
                    }
                }
            }
            PortConfig::Table(PortTable {
                port,
                protocol,
                name,
            }) => (*port, protocol.clone(), name.clone(), port.to_string()),
        };
        let Some(number) = u16::try_from(number).ok().filter(|number| *number != 0) else {
            fail(
                entry_key,
                format!("{shown} is not a port number (1 to 65535)"),
                PORTS_HINT.to_owned(),
            );
            continue;
        };
        let protocol = match protocol.as_deref() {
            None | Some("tcp") => PortProtocol::Tcp,
            Some("udp") => PortProtocol::Udp,
            Some(other) => {
                fail(
                    entry_key,
                    format!("`{other}` is not a protocol castoff writes (port {number})"),
                    "use `tcp` (the default) or `udp`".to_owned(),
                );
                continue;
            }
        };
        let name = match name {
            Some(name) => {
                if let Err(problem) = check_port_name(&name) {
                    fail(
                        format!("{entry_key}.name"),
                        format!("`{name}` {problem}"),
                        "Kubernetes port names are up to 15 lowercase letters, digits and `-`, with at least one letter, e.g. \"metrics\"".to_owned(),
                    );
                    continue;
                }
                name
            }
            None => format!("{}-{number}", protocol.as_str()),
        };
        if ports
            .iter()
            .any(|port| port.number == number && port.protocol == protocol)
        {
            fail(
                entry_key,
                format!("port {number}/{} is listed twice", protocol.as_str()),
                "list each port once".to_owned(),
            );
            continue;
        }
        if ports.iter().any(|port| port.name == name) {
            fail(
                format!("{entry_key}.name"),
                format!("the port name `{name}` is used twice"),
                "give each port its own name".to_owned(),
            );
            continue;
        }
        ports.push(Port {
            number,
            protocol,
            name,
        });
    }
    ports
}

/// Kubernetes' `IANA_SVC_NAME`: 1-15 of `a-z0-9-`, a letter among them, no `-` at either end
/// or twice in a row.
fn check_port_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        return Err("is not 1 to 15 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("has characters other than lowercase letters, digits and `-`");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err("has no letter");
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err("starts or ends with `-`, or has `--`");
    }
    Ok(())
}

/// A Kubernetes quantity in its smallest unit (millicores for CPU, bytes for memory), for
/// the plain forms castoff accepts: `500m`, `2`, `0.5` (CPU); `128Mi`, `1G`, `1048576` (memory).
fn quantity(text: &str, cpu: bool) -> Option<u128> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit())
        || (number.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let scale: u128 = match (cpu, suffix) {
        (true, "m") if fraction.is_empty() => return whole.parse().ok(),
        (true, "") => 1000,
        (false, "") => 1,
        (false, "k") => 1000,
        (false, "M") => 1000_u128.pow(2),
        (false, "G") => 1000_u128.pow(3),
        (false, "T") => 1000_u128.pow(4),
        (false, "Ki") => 1 << 10,
        (false, "Mi") => 1 << 20,
        (false, "Gi") => 1 << 30,
        (false, "Ti") => 1 << 40,
        _ => return None,
    };
    // (whole.fraction × scale) exactly, or nothing: no quantity finer than the unit.
    let places = 10_u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let digits: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    let scaled = whole
        .parse::<u128>()
        .ok()?
        .checked_mul(places)?
        .checked_add(digits)?
        .checked_mul(scale)?;
    let value = (scaled % places == 0).then_some(scaled / places)?;
    (value > 0).then_some(value)
}

fn plan_deploy(
    config: Option<&DeployConfig>,
    key: &str,
    fail: &mut impl FnMut(String, String, String),
) -> Deploy {
    let defaults = Deploy::default();
    let Some(config) = config else {
        return defaults;
    };
    let key = |name: &str| format!("{key}.{name}");
    let mut check = |name: &str, value: &Option<String>, cpu: bool| -> Option<(String, u128)> {
        let text = value.as_ref()?;
        match quantity(text, cpu) {
            Some(amount) => Some((text.clone(), amount)),
            None => {
                fail(
                    key(name),
                    format!(
                        "`{text}` is not a {} quantity",
                        if cpu { "CPU" } else { "memory" }
                    ),
                    if cpu {
                        "write CPU as millicores or cores, e.g. \"500m\" or \"2\"".to_owned()
                    } else {
                        "write memory as bytes with a unit, e.g. \"128Mi\" or \"1Gi\"".to_owned()
                    },
                );
                None
            }
        }
    };
    let cpu = check("cpu", &config.cpu, true);
    let cpu_limit = check("cpu-limit", &config.cpu_limit, true);
    let memory = check("memory", &config.memory, false);
    let memory_limit = check("memory-limit", &config.memory_limit, false);
    if let (Some((request, requested)), Some((limit, limited))) = (&cpu, &cpu_limit)
        && limited < requested
    {
        fail(
            key("cpu-limit"),
            format!("the CPU limit `{limit}` is below the request `{request}` (`cpu`)"),
            "raise `cpu-limit` or lower `cpu`: Kubernetes refuses a limit below the request"
                .to_owned(),
        );
    }
    let memory_limit = match (&memory, memory_limit) {
        (_, Some(limit)) => Some(limit),
        // The limit follows a configured request: a pod that uses what it asked for is safe.
        (Some(request), None) => Some(request.clone()),
        (None, None) => None,
    };
    let request_amount = memory
        .as_ref()
        .map(|(_, amount)| *amount)
        .unwrap_or(64 << 20);
    if let Some((limit, limited)) = &memory_limit
        && *limited < request_amount
    {
        let request = memory
            .as_ref()
            .map(|(text, _)| text.clone())
            .unwrap_or_else(|| defaults.memory_request.clone());
        fail(
            key("memory-limit"),
            format!("the memory limit `{limit}` is below the request `{request}` (`memory`)"),
            "raise `memory-limit` or lower `memory`: Kubernetes refuses a limit below the request"
                .to_owned(),
        );
    }
    let restart = match config.restart.as_deref() {
        None | Some("unless-stopped") => RestartPolicy::UnlessStopped,
        Some("no") => RestartPolicy::No,
        Some("always") => RestartPolicy::Always,
        Some("on-failure") => RestartPolicy::OnFailure,
        Some(other) => {
            fail(
                key("restart"),
                format!("`{other}` is not a compose restart policy"),
                "use `unless-stopped` (the default), `always`, `on-failure` or `no`".to_owned(),
            );
            RestartPolicy::UnlessStopped
        }
    };
    let stop_grace_period_nanos = match &config.stop_grace_period {
        None => defaults.stop_grace_period_nanos,
        Some(text) => match config::parse_duration_nanos(text) {
            Some(nanos) => nanos,
            None => {
                fail(
                    key("stop-grace-period"),
                    format!("`{text}` is not a duration"),
                    "write durations like \"10s\", \"1m30s\" or \"500ms\"".to_owned(),
                );
                defaults.stop_grace_period_nanos
            }
        },
    };
    if config.replicas == Some(0) {
        fail(
            key("replicas"),
            "0 replicas run nothing".to_owned(),
            "give the number of pods to run, e.g. 2 (default 1)".to_owned(),
        );
    }
    Deploy {
        replicas: config.replicas.unwrap_or(defaults.replicas),
        cpu_request: cpu.map(|(text, _)| text).unwrap_or(defaults.cpu_request),
        cpu_limit: cpu_limit.map(|(text, _)| text),
        memory_request: memory
            .map(|(text, _)| text)
            .unwrap_or(defaults.memory_request),
        memory_limit: memory_limit
            .map(|(text, _)| text)
            .unwrap_or(defaults.memory_limit),
        restart,
        stop_grace_period_nanos,
    }
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
    ports: &[Port],
    fail: &mut impl FnMut(String, String, String),
) -> Healthcheck {
    let key = |name: &str| format!("package.metadata.castoff.oci.healthcheck.{name}");
    let check = plan_check(
        CheckKeys {
            cmd: config.cmd.as_ref(),
            http: config.http.as_ref(),
            tcp: config.tcp,
            port: config.port,
        },
        None,
        ports,
        "package.metadata.castoff.oci.healthcheck",
        fail,
    )
    .unwrap_or(Check::Command(Vec::new()));
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
    let interval_nanos = duration("interval", &config.interval);
    let timeout_nanos = duration("timeout", &config.timeout);
    let start_period_nanos = duration("start-period", &config.start_period);
    let start_interval_nanos = duration("start-interval", &config.start_interval);
    let readiness = config.readiness.clone().unwrap_or_default();
    let readiness_interval = duration("readiness.interval", &readiness.interval);
    let readiness_timeout = duration("readiness.timeout", &readiness.timeout);
    let readiness_check = plan_check(
        CheckKeys {
            cmd: readiness.cmd.as_ref(),
            http: readiness.http.as_ref(),
            tcp: readiness.tcp,
            port: readiness.port,
        },
        Some(&check),
        ports,
        "package.metadata.castoff.oci.healthcheck.readiness",
        fail,
    );
    let readiness = Probe {
        check: readiness_check.unwrap_or_else(|| check.clone()),
        interval_nanos: readiness_interval.or(interval_nanos),
        timeout_nanos: readiness_timeout.or(timeout_nanos),
        retries: readiness.retries.or(config.retries),
    };
    // Docker refuses intervals below 1 ms ("Interval in Healthcheck cannot be less than 1ms").
    for (name, nanos) in [
        ("interval", interval_nanos),
        ("timeout", timeout_nanos),
        ("start-interval", start_interval_nanos),
    ] {
        if nanos.is_some_and(|nanos| nanos < 1_000_000) {
            fail(
                key(name),
                "a duration under 1ms, which Docker refuses".to_owned(),
                "write at least \"1ms\", e.g. \"5s\"".to_owned(),
            );
        }
    }
    Healthcheck {
        check,
        interval_nanos,
        timeout_nanos,
        start_period_nanos,
        start_interval_nanos,
        retries: config.retries,
        readiness,
    }
}

/// The longest `http` path castoff accepts (its probe takes twice that).
const MAX_HTTP_PATH: usize = 1024;

/// The check keys of a health check or of its readiness probe, as configured.
struct CheckKeys<'a> {
    cmd: Option<&'a Vec<String>>,
    http: Option<&'a String>,
    tcp: Option<u16>,
    port: Option<u16>,
}

/// The check of a health check (`over` None) or of its readiness probe (`over` the health
/// check's): exactly one of `cmd`, `http` and `tcp`, or for the readiness probe none (None:
/// the health check's own). An `http` check's port defaults to the health check's HTTP port,
/// then to the image's one TCP port.
fn plan_check(
    keys: CheckKeys<'_>,
    over: Option<&Check>,
    ports: &[Port],
    table: &str,
    fail: &mut impl FnMut(String, String, String),
) -> Option<Check> {
    let key = |name: &str| format!("{table}.{name}");
    let set: Vec<&str> = [
        ("cmd", keys.cmd.is_some()),
        ("http", keys.http.is_some()),
        ("tcp", keys.tcp.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if set.len() > 1 {
        fail(
            key(set[1]),
            format!("is set together with `{}`, and a check is one of them", set[0]),
            "keep one of `cmd` (a command in the image), `http` (a path, with `port`) and `tcp` (a port)".to_owned(),
        );
        return None;
    }
    if keys.port.is_some() && keys.http.is_none() {
        fail(
            key("port"),
            "is set without `http`".to_owned(),
            "`port` is the port of an `http` check; a `tcp` check takes its port itself: `tcp = 8080`".to_owned(),
        );
    }
    if let Some(cmd) = keys.cmd {
        if cmd.is_empty() {
            fail(
                key("cmd"),
                "the command is empty".to_owned(),
                "give the command and its arguments, e.g. [\"/usr/local/bin/app\", \"healthcheck\"]"
                    .to_owned(),
            );
        }
        return Some(Check::Command(cmd.clone()));
    }
    if let Some(port) = keys.tcp {
        if port == 0 {
            fail(
                key("tcp"),
                "port 0 is not a port".to_owned(),
                "give the port the service listens on, 1 to 65535".to_owned(),
            );
        }
        return Some(Check::Tcp { port });
    }
    if let Some(path) = keys.http {
        let valid =
            path.starts_with('/') && !path.chars().any(|c| c.is_whitespace() || c.is_control());
        if path.len() > MAX_HTTP_PATH {
            fail(
                key("http"),
                format!(
                    "the path is {} bytes long, over castoff's limit of {MAX_HTTP_PATH}",
                    path.len()
                ),
                "check a shorter route, e.g. \"/healthz\"".to_owned(),
            );
        } else if !valid {
            fail(
                key("http"),
                format!("`{path}` is not the path of an HTTP request"),
                "give an absolute path without spaces, e.g. \"/healthz\" or \"/health?full=1\""
                    .to_owned(),
            );
        }
        let tcp: Vec<u16> = ports
            .iter()
            .filter(|port| port.protocol == PortProtocol::Tcp)
            .map(|port| port.number)
            .collect();
        let inherited = match over {
            Some(Check::Http { port, .. }) => Some(*port),
            _ => None,
        };
        let port = match (keys.port, inherited, tcp.as_slice()) {
            (Some(0), ..) => {
                fail(
                    key("port"),
                    "port 0 is not a port".to_owned(),
                    "give the port the service listens on, 1 to 65535".to_owned(),
                );
                0
            }
            (Some(port), ..) | (None, Some(port), _) | (None, None, &[port]) => port,
            (None, None, tcp) => {
                fail(
                    key("port"),
                    if tcp.is_empty() {
                        "is missing, and the image exposes no TCP port to take it from".to_owned()
                    } else {
                        format!(
                            "is missing, and the image exposes {} TCP ports ({})",
                            tcp.len(),
                            tcp.iter()
                                .map(u16::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                    "set the port the service answers the check on, e.g. `port = 8080`".to_owned(),
                );
                0
            }
        };
        return Some(Check::Http {
            path: path.clone(),
            port,
        });
    }
    if over.is_none() {
        fail(
            table.to_owned(),
            "names no check".to_owned(),
            "set one of `cmd` (a command in the image), `http = \"/healthz\"` (with `port`) or `tcp = 8080`".to_owned(),
        );
    }
    None
}

fn plan_extra_file(
    config: &ExtraFileConfig,
    package_dir: &Path,
    workspace_root: &Path,
    image_user: Option<(u32, u32)>,
    entry: &str,
    fail: &mut impl FnMut(String, String, String),
) -> Option<ExtraFile> {
    let key = |name: &str| format!("package.metadata.castoff.oci.{entry}.{name}");
    let mut ok = true;
    // A glob's fixed prefix: the components before the first one with a wildcard.
    let is_wild = |part: &str| part.contains(['*', '?', '[', '{']);
    let parts: Vec<&str> = config.src.split('/').collect();
    let fixed = parts.iter().take_while(|part| !is_wild(part)).count();
    let glob = (fixed < parts.len()).then(|| parts[fixed..].join("/"));
    let src_text = parts[..fixed].join("/");
    if Path::new(&config.src).is_absolute() {
        fail(
            key("src"),
            format!("`{}` is an absolute path", config.src),
            "give the source relative to the package directory".to_owned(),
        );
        ok = false;
    }
    if let Some(pattern) = &glob {
        if pattern.split('/').any(|part| part == ".." || part == ".") {
            fail(
                key("src"),
                format!(
                    "the glob `{}` has `.` or `..` after its first wildcard",
                    config.src
                ),
                "put every `..` before the first wildcard, like `../shared/**/*.css`".to_owned(),
            );
            ok = false;
        } else if let Err(error) = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
        {
            fail(
                key("src"),
                format!("`{}` is not a valid glob: {}", config.src, error.kind()),
                "use `*` (within a directory), `**` (any depth), `?`, `[abc]` or `{a,b}`"
                    .to_owned(),
            );
            ok = false;
        }
    }
    let src = lexically_normalize(&package_dir.join(&src_text));
    if ok && !src.starts_with(workspace_root) {
        fail(
            key("src"),
            format!("`{}` points outside the workspace", config.src),
            "copy the file into the workspace and name it relative to the package directory"
                .to_owned(),
        );
        ok = false;
    }
    // A whole package or workspace copied would take `target/`, `dist/` and `.git` along.
    if ok && glob.is_none() && (src == lexically_normalize(package_dir) || src == workspace_root) {
        fail(
            key("src"),
            format!(
                "`{}` is the whole package directory (its `target/`, `.git` and all)",
                config.src
            ),
            "name the folder to copy, e.g. `static`, or a glob such as `*.toml`".to_owned(),
        );
        ok = false;
    }
    if !is_normalized_absolute(&config.dst) || config.dst == "/" {
        fail(
            key("dst"),
            format!("`{}` is not an absolute, normalized path", config.dst),
            "write it like `/etc/app/config.toml` (no `..`, `.`, `//` or trailing `/`)".to_owned(),
        );
        ok = false;
    }
    let mut octal = |name: &str, text: Option<&str>| {
        let mode = text.map(|text| {
            u32::from_str_radix(text, 8)
                .ok()
                .filter(|mode| *mode <= 0o7777)
                .ok_or(text)
        });
        match mode {
            Some(Err(text)) => {
                fail(
                    key(name),
                    format!("`{text}` is not an octal file mode"),
                    "write it like \"0644\" or \"0755\"".to_owned(),
                );
                None
            }
            Some(Ok(mode)) => Some(Some(mode)),
            None => Some(None),
        }
    };
    let mode = octal("mode", config.mode.as_deref());
    let dir_mode = octal("dir-mode", config.dir_mode.as_deref());
    let owner = match config.owner.as_deref() {
        None => Some((0, 0)),
        Some("user") => image_user,
        Some(text) => {
            let ids = text
                .split_once(':')
                .and_then(|(uid, gid)| Some((numeric_id(uid)?, numeric_id(gid)?)));
            if ids.is_none() {
                fail(
                    key("owner"),
                    format!("`{text}` is not `uid:gid` numbers or `user`"),
                    "write it like \"65532:65532\", or \"user\" for the image user".to_owned(),
                );
            }
            ids
        }
    };
    let (Some(mode), Some(dir_mode), Some(owner), true) = (mode, dir_mode, owner, ok) else {
        return None;
    };
    Some(ExtraFile {
        src,
        glob,
        dst: config.dst.clone(),
        mode,
        dir_mode: dir_mode.unwrap_or(0o755),
        owner,
    })
}

/// A decimal uid or gid.
fn numeric_id(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `oci.volumes`: absolute, normalized, not `/`, no path twice, none inside another; sorted.
fn plan_volumes(
    volumes: &[String],
    key: &str,
    fail: &mut impl FnMut(String, String, String),
) -> Vec<String> {
    let mut planned: Vec<String> = Vec::new();
    for (index, volume) in volumes.iter().enumerate() {
        let key = format!("{key}[{index}]");
        if !is_normalized_absolute(volume) || volume == "/" {
            fail(
                key,
                format!("`{volume}` is not an absolute, normalized directory below `/`"),
                "write it like `/data` or `/var/cache/app` (no `..`, `.`, `//` or trailing `/`)"
                    .to_owned(),
            );
            continue;
        }
        if volume
            .chars()
            .any(|c| c == ':' || c == ',' || c.is_whitespace() || c.is_control())
        {
            fail(
                key,
                format!("`{volume}` holds `:`, `,`, a space or a control character"),
                "name the directory without them: compose reads `:` in a volume as the start of its options (`/data:ro` would mount `/data` read-only)"
                    .to_owned(),
            );
            continue;
        }
        if volume == "/tmp" {
            fail(
                key,
                "`/tmp` is already writable: the deploy examples mount a tmpfs there".to_owned(),
                "remove it, or give the service a directory of its own, e.g. `/data`".to_owned(),
            );
            continue;
        }
        if let Some(other) = planned.iter().find(|other| {
            *other == volume
                || volume.starts_with(&format!("{other}/"))
                || other.starts_with(&format!("{volume}/"))
        }) {
            fail(
                key,
                format!("`{volume}` repeats or nests with `{other}`"),
                "list each volume once; a volume inside another is already in it".to_owned(),
            );
            continue;
        }
        planned.push(volume.clone());
    }
    planned.sort();
    planned
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
    fn quantities() {
        assert_eq!(quantity("500m", true), Some(500));
        assert_eq!(quantity("2", true), Some(2000));
        assert_eq!(quantity("0.5", true), Some(500));
        assert_eq!(quantity("1.5m", true), None);
        assert_eq!(quantity("128Mi", false), Some(128 << 20));
        assert_eq!(quantity("1G", false), Some(1_000_000_000));
        assert_eq!(quantity("1.5Gi", false), Some(3 << 29));
        assert_eq!(quantity("64mi", false), None);
        assert_eq!(quantity("0", false), None);
        assert_eq!(quantity("", false), None);
        assert_eq!(quantity(".5", true), None);
        assert_eq!(quantity("5.", true), None);
    }

    #[test]
    fn port_names() {
        assert!(check_port_name("metrics").is_ok());
        assert!(check_port_name("http-2").is_ok());
        assert!(check_port_name("8080").is_err());
        assert!(check_port_name("Metrics").is_err());
        assert!(check_port_name("a-very-long-port-name").is_err());
        assert!(check_port_name("-web").is_err());
        assert!(check_port_name("we--b").is_err());
    }

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
