//! Dockerfiles for an app's image, in `dist/deploy/<app>/`: `Dockerfile` (the image `dist`
//! built, from the dist's own layers), `Dockerfile.source` (the same image with the binaries
//! compiled in a Rust builder stage) and `Dockerfile.source.dockerignore` (its context).
//!
//! The build context of `Dockerfile` is the dist directory, and its files are the image
//! layout's layer blobs: each is a gzip tar, which `ADD` unpacks with its modes, owners and
//! times, so the dist holds no second copy of any binary. `Dockerfile.source` adds castoff's
//! layers but the binaries from the same blobs, relative to the workspace root.
//!
//! Everything the Dockerfiles set is read back from the image config castoff wrote (not
//! derived again from the configuration), so a `docker build` gives the same config. Several
//! platforms get one stage each (`image-amd64`, `image-armv7`), chosen by BuildKit's
//! `TARGETARCH` and `TARGETVARIANT`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use castoff_plan::plan::{App, BaseImage, OciChannel};
use serde_json::Value;

use crate::blobs::write_file_atomically;
use crate::deploy::compose_duration;
use crate::error::OciError;
use crate::{BIN_DIR, BuiltIndex};

/// The name of the ignore file BuildKit reads for `Dockerfile.source`: the Dockerfile's own,
/// beside it, so the workspace root needs no `.dockerignore`.
pub const SOURCE_DOCKERIGNORE: &str = "Dockerfile.source.dockerignore";
/// `Dockerfile`'s own ignore file (BuildKit's `<Dockerfile>.dockerignore`).
pub const BINARY_DOCKERIGNORE: &str = "Dockerfile.dockerignore";

/// Where the Dockerfiles find what they need.
#[derive(Debug, Clone, Copy)]
pub struct DockerfileOptions<'a> {
    /// The workspace root: the context of `Dockerfile.source` (its `Cargo.lock` decides
    /// `--locked`, its toolchain file the default builder's Rust version).
    pub workspace_root: &'a Path,
    /// The dist directory as a path relative to the workspace root (`dist`): where
    /// `Dockerfile.source` finds castoff's layers. `None` when the dist directory is outside
    /// the workspace, which then gets no `Dockerfile.source`.
    pub dist_in_workspace: Option<&'a Path>,
}

/// One layer of an image, as a Dockerfile adds it.
struct Layer {
    /// `sha256:<hex>`.
    digest: String,
    /// The history line (`castoff: added /usr/local/bin/pinger`), shown as a comment.
    created_by: String,
    /// The binary this layer holds, for castoff's binary layers.
    binary: Option<String>,
    /// From the base image (an `oci-layout:` base, whose layers the dist layout holds).
    from_base: bool,
}

/// One platform's image: its stage name and layers, and its config.
struct Platform {
    /// `amd64`, `arm64`, `armv7`: `TARGETARCH` followed by `TARGETVARIANT` where BuildKit sets
    /// one (32-bit arm).
    stage_suffix: String,
    /// The target the binaries were built for (its build settings).
    target: &'static castoff_plan::Target,
    layers: Vec<Layer>,
    config: Value,
}

/// Writes `Dockerfile`, `Dockerfile.source` and its ignore file for `app` into
/// `dist_dir/deploy/<app>/`; returns the files written. A value the image config holds that
/// a Dockerfile cannot spell (a line break in a label) is [`OciError::NotInDockerfile`], and
/// nothing is written.
pub fn write_dockerfiles(
    app: &App,
    oci: &OciChannel,
    built: &BuiltIndex,
    dist_dir: &Path,
    options: &DockerfileOptions<'_>,
) -> Result<Vec<PathBuf>, OciError> {
    let platforms = read_platforms(app, built)?;
    let name = &app.package.name;
    let blob_dir = format!("oci/{name}/blobs/sha256");
    let runtime = runtime_instructions(name, &platforms[0].config)?;
    let dist_shown = options
        .dist_in_workspace
        .map_or_else(|| "<dist>".to_owned(), slash_path);

    let image = Image {
        app,
        oci,
        built,
        platforms: &platforms,
        runtime: &runtime,
    };
    let mut files = vec![
        (
            "Dockerfile",
            binary_dockerfile(&image, &blob_dir, &dist_shown),
        ),
        (
            BINARY_DOCKERIGNORE,
            binary_dockerignore(oci, &platforms, &blob_dir),
        ),
    ];
    if let Some(dist) = options.dist_in_workspace {
        let dist = slash_path(dist);
        let source_blob_dir = format!("{dist}/{blob_dir}");
        files.push((
            "Dockerfile.source",
            source_dockerfile(&image, &source_blob_dir, options.workspace_root, &dist),
        ));
        files.push((
            SOURCE_DOCKERIGNORE,
            source_dockerignore(oci, &platforms, &dist, &source_blob_dir),
        ));
    }
    let dir = dist_dir.join("deploy").join(name);
    fs::create_dir_all(&dir).map_err(OciError::io("create the directory", &dir))?;
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        write_file_atomically(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// A relative path with `/` separators, as Dockerfiles and ignore files write them.
fn slash_path(path: &Path) -> String {
    path.components()
        .map(|component| component.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn read_blob(built: &BuiltIndex, digest: &str) -> Result<Value, OciError> {
    let hex = digest.trim_start_matches("sha256:");
    let path = built.layout_dir.join("blobs").join("sha256").join(hex);
    let bytes = fs::read(&path).map_err(OciError::io("read", &path))?;
    serde_json::from_slice(&bytes).map_err(|error| {
        OciError::io("parse", &path)(std::io::Error::new(std::io::ErrorKind::InvalidData, error))
    })
}

/// Each platform's layers (from its manifest, named by its config's history) and config.
fn read_platforms(app: &App, built: &BuiltIndex) -> Result<Vec<Platform>, OciError> {
    let binary_lines: Vec<(String, String)> = app
        .bins
        .iter()
        .map(|bin| (format!("castoff: added {BIN_DIR}/{bin}"), bin.clone()))
        .collect();
    let own_comment = format!("{} {}", app.package.name, app.package.version);
    let mut platforms = Vec::new();
    for image in &built.images {
        let manifest = read_blob(built, &image.manifest_digest)?;
        let config = read_blob(built, &image.config_digest)?;
        let history: Vec<&Value> = config["history"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|entry| entry["empty_layer"] != Value::Bool(true))
                    .collect()
            })
            .unwrap_or_default();
        let descriptors = manifest["layers"].as_array().cloned().unwrap_or_default();
        // Base layers come first. castoff's own history entries, last, carry this app's
        // name and version (a base castoff built has entries of its own app's).
        let base_count = descriptors.len().saturating_sub(
            history
                .iter()
                .rev()
                .take_while(|entry| {
                    entry["created_by"]
                        .as_str()
                        .is_some_and(|line| line.starts_with("castoff: "))
                        && entry["comment"].as_str() == Some(own_comment.as_str())
                })
                .count(),
        );
        let own_history = &history[history.len().saturating_sub(descriptors.len() - base_count)..];
        let layers = descriptors
            .iter()
            .enumerate()
            .map(|(index, descriptor)| {
                let from_base = index < base_count;
                let created_by = if from_base {
                    "base layer".to_owned()
                } else {
                    own_history[index - base_count]["created_by"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                };
                let binary = binary_lines
                    .iter()
                    .find(|(line, _)| *line == created_by)
                    .map(|(_, bin)| bin.clone());
                Layer {
                    digest: descriptor["digest"].as_str().unwrap_or_default().to_owned(),
                    created_by,
                    binary,
                    from_base,
                }
            })
            .collect();
        let platform = image.target.oci.expect("an image has a platform");
        let stage_suffix = match platform.variant {
            Some(variant) if platform.architecture == "arm" => {
                format!("{}{variant}", platform.architecture)
            }
            _ => platform.architecture.to_owned(),
        };
        platforms.push(Platform {
            stage_suffix,
            target: image.target,
            layers,
            config,
        });
    }
    Ok(platforms)
}

/// A double-quoted Dockerfile word: `\`, `"` and `$` escaped, so nothing is expanded.
fn quote(app: &str, what: &str, value: &str) -> Result<String, OciError> {
    refuse_line_breaks(app, what, value)?;
    let mut out = String::from("\"");
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

fn refuse_line_breaks(app: &str, what: &str, value: &str) -> Result<(), OciError> {
    if value.contains(['\n', '\r']) {
        return Err(OciError::NotInDockerfile {
            app: app.to_owned(),
            what: what.to_owned(),
            value: value.escape_debug().to_string(),
            problem: "has a line break, which a Dockerfile instruction cannot hold",
        });
    }
    Ok(())
}

/// A value of an instruction that expands variables but takes no quotes (`WORKDIR`, a
/// `VOLUME` path): refused with a `$` or a line break.
fn plain(app: &str, what: &str, value: &str) -> Result<String, OciError> {
    refuse_line_breaks(app, what, value)?;
    if value.contains('$') {
        return Err(OciError::NotInDockerfile {
            app: app.to_owned(),
            what: what.to_owned(),
            value: value.to_owned(),
            problem: "has a `$`, which Docker would expand as a variable",
        });
    }
    Ok(value.to_owned())
}

/// A JSON array of strings (exec form), with `, ` between items.
fn exec_form(app: &str, what: &str, items: &[Value]) -> Result<String, OciError> {
    let mut quoted = Vec::new();
    for item in items {
        let text = item.as_str().unwrap_or_default();
        refuse_line_breaks(app, what, text)?;
        quoted.push(Value::String(text.to_owned()).to_string());
    }
    Ok(format!("[{}]", quoted.join(", ")))
}

/// The instructions after the layers: every field of the config that a Dockerfile sets, in
/// the config's order (the same on every platform but for the platform fields).
fn runtime_instructions(app: &str, config: &Value) -> Result<String, OciError> {
    let runtime = &config["config"];
    let mut out = String::new();
    let w = &mut out;
    if let Some(env) = runtime["Env"].as_array().filter(|env| !env.is_empty()) {
        let mut lines = Vec::new();
        for entry in env {
            let entry = entry.as_str().unwrap_or_default();
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            lines.push(format!(
                "{key}={}",
                quote(app, &format!("env {key}"), value)?
            ));
        }
        let _ = writeln!(w, "ENV {}", lines.join(" \\\n    "));
    }
    if let Some(labels) = runtime["Labels"].as_object().filter(|l| !l.is_empty()) {
        let mut lines = Vec::new();
        for (key, value) in labels {
            let what = format!("label {key}");
            let value = value.as_str().unwrap_or_default();
            lines.push(format!(
                "{}={}",
                quote(app, &what, key)?,
                quote(app, &what, value)?
            ));
        }
        let _ = writeln!(w, "LABEL {}", lines.join(" \\\n      "));
    }
    if let Some(ports) = runtime["ExposedPorts"]
        .as_object()
        .filter(|p| !p.is_empty())
    {
        let ports: Vec<&str> = ports.keys().map(String::as_str).collect();
        let _ = writeln!(w, "EXPOSE {}", ports.join(" "));
    }
    if let Some(volumes) = runtime["Volumes"].as_object().filter(|v| !v.is_empty()) {
        let mut paths = Vec::new();
        for path in volumes.keys() {
            paths.push(Value::String(plain(app, "volume", path)?));
        }
        let _ = writeln!(w, "VOLUME {}", exec_form(app, "volume", &paths)?);
    }
    if let Some(workdir) = runtime["WorkingDir"].as_str().filter(|d| !d.is_empty()) {
        let _ = writeln!(w, "WORKDIR {}", plain(app, "workdir", workdir)?);
    }
    if let Some(user) = runtime["User"].as_str().filter(|u| !u.is_empty()) {
        let _ = writeln!(w, "USER {}", plain(app, "user", user)?);
    }
    if let Some(signal) = runtime["StopSignal"].as_str() {
        let _ = writeln!(w, "STOPSIGNAL {}", plain(app, "stop signal", signal)?);
    }
    if let Some(check) = runtime["Healthcheck"].as_object() {
        let test = check["Test"].as_array().cloned().unwrap_or_default();
        match test.first().and_then(Value::as_str) {
            Some("NONE") => {
                let _ = writeln!(w, "HEALTHCHECK NONE");
            }
            Some(kind) => {
                let mut flags = String::new();
                for (field, flag) in [
                    ("Interval", "interval"),
                    ("Timeout", "timeout"),
                    ("StartPeriod", "start-period"),
                    // Docker 25 and later; older builders refuse the flag.
                    ("StartInterval", "start-interval"),
                ] {
                    if let Some(nanos) = check.get(field).and_then(Value::as_u64) {
                        let _ = write!(flags, "--{flag}={} ", compose_duration(nanos));
                    }
                }
                if let Some(retries) = check.get("Retries").and_then(Value::as_u64) {
                    let _ = write!(flags, "--retries={retries} ");
                }
                let command = if kind == "CMD-SHELL" {
                    let shell = test.get(1).and_then(Value::as_str).unwrap_or_default();
                    refuse_line_breaks(app, "health check", shell)?;
                    shell.to_owned()
                } else {
                    exec_form(app, "health check", &test[1..])?
                };
                let _ = writeln!(w, "HEALTHCHECK {flags}CMD {command}");
            }
            None => {}
        }
    }
    if let Some(entrypoint) = runtime["Entrypoint"].as_array() {
        let _ = writeln!(
            w,
            "ENTRYPOINT {}",
            exec_form(app, "entrypoint", entrypoint)?
        );
    }
    if let Some(cmd) = runtime["Cmd"].as_array() {
        let _ = writeln!(w, "CMD {}", exec_form(app, "cmd", cmd)?);
    }
    Ok(out)
}

/// `FROM` for one platform's stage: the registry base as configured (pinned by digest), or
/// `scratch` (also for an `oci-layout:` base, whose layers are added from the dist layout).
fn from_line(oci: &OciChannel) -> String {
    match &oci.base {
        BaseImage::Reference(reference) => format!("FROM {reference}"),
        BaseImage::Scratch | BaseImage::Layout(_) => "FROM scratch".to_owned(),
    }
}

/// Whether the Dockerfiles leave `layer` to their `FROM`: a registry base's layers.
fn skips(oci: &OciChannel, layer: &Layer) -> bool {
    layer.from_base && matches!(oci.base, BaseImage::Reference(_))
}

const HEADER: &str = "# Generated by castoff from [package.metadata.castoff.oci], and written again by every\n\
# `dist`: to change it, copy it out of the dist directory first.\n";

/// hadolint's DL3020 ("use COPY for files") goes by the file name; castoff's layer blobs are
/// gzip tars named by their digest, which `ADD` unpacks.
const ADD_PRAGMA: &str = "# The layers are gzip tars named by their digest, which ADD unpacks (hadolint's DL3020\n\
# goes by the file name).\n\
# hadolint global ignore=DL3020\n";

/// The `ARG`s a multi-platform Dockerfile selects its stage by.
const PLATFORM_ARGS: &str = "ARG TARGETARCH\nARG TARGETVARIANT\n";

/// The last `FROM` of a multi-platform Dockerfile: the stage of the platform being built
/// (hadolint's DL3006 asks a tag of an image, and takes the stage for one).
const SELECT_STAGE: &str = "# hadolint ignore=DL3006\nFROM image-${TARGETARCH}${TARGETVARIANT}\n";

fn add_layer(out: &mut String, blob_dir: &str, layer: &Layer) {
    let hex = layer.digest.trim_start_matches("sha256:");
    let _ = writeln!(out, "# {}", layer.created_by);
    let _ = writeln!(out, "ADD {blob_dir}/{hex} /");
}

/// What both Dockerfiles describe: the app's image, its platforms and the instructions that
/// set its config.
struct Image<'a> {
    app: &'a App,
    oci: &'a OciChannel,
    built: &'a BuiltIndex,
    platforms: &'a [Platform],
    runtime: &'a str,
}

fn binary_dockerfile(image: &Image<'_>, blob_dir: &str, dist_shown: &str) -> String {
    let Image {
        app,
        oci,
        built,
        platforms,
        runtime,
    } = *image;
    let name = &app.package.name;
    let mut out = String::from(HEADER);
    let _ = writeln!(
        out,
        "# The image `dist` built ({}), from the dist's own layers: build it with the dist\n\
         # directory as the context, e.g.\n\
         #   docker build -f {dist_shown}/deploy/{name}/Dockerfile -t {} {dist_shown}",
        built.tagged_reference(),
        built.tagged_reference(),
    );
    let _ = writeln!(
        out,
        "# {BINARY_DOCKERIGNORE} beside it keeps the rest of the dist out of the context."
    );
    if platforms.len() > 1 {
        let _ = writeln!(
            out,
            "# BuildKit (Docker 23 and later) builds the stage of the platform asked for, all of them\n\
             # at once with buildx:\n\
             #   docker buildx build --platform {} -f {dist_shown}/deploy/{name}/Dockerfile {dist_shown}\n\
             # The classic builder needs the platform named: --build-arg TARGETARCH=amd64 (and\n\
             # TARGETVARIANT=v7 for arm).",
            docker_platforms(platforms),
        );
    }
    out.push_str(ADD_PRAGMA);
    if platforms.len() > 1 {
        out.push_str(PLATFORM_ARGS);
    }
    for platform in platforms {
        out.push('\n');
        if platforms.len() > 1 {
            let _ = writeln!(out, "{} AS image-{}", from_line(oci), platform.stage_suffix);
        } else {
            let _ = writeln!(out, "{}", from_line(oci));
        }
        for layer in &platform.layers {
            if skips(oci, layer) {
                continue;
            }
            add_layer(&mut out, blob_dir, layer);
        }
    }
    if platforms.len() > 1 {
        out.push('\n');
        out.push_str(SELECT_STAGE);
    }
    out.push_str(runtime);
    out
}

/// A word for `sh`, in single quotes unless it needs none.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=,:+@".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The Rust version of the default builder: the toolchain file's channel when it is a
/// version number, else `package.rust-version`, else the latest Rust 1.
fn rust_version(app: &App, workspace_root: &Path) -> String {
    let is_version =
        |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let toml = fs::read_to_string(workspace_root.join("rust-toolchain.toml")).ok();
    let channel = toml
        .as_deref()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "channel").then(|| value.trim().trim_matches('"').to_owned())
            })
        })
        .or_else(|| {
            fs::read_to_string(workspace_root.join("rust-toolchain"))
                .ok()
                .map(|text| text.trim().to_owned())
        });
    channel
        .filter(|channel| is_version(channel))
        .or_else(|| app.package.rust_version.clone())
        .unwrap_or_else(|| "1".to_owned())
}

fn source_dockerfile(
    image: &Image<'_>,
    blob_dir: &str,
    workspace_root: &Path,
    dist: &str,
) -> String {
    let Image {
        app,
        oci,
        built,
        platforms,
        runtime,
    } = *image;
    let name = &app.package.name;
    let mut out = String::from(HEADER);
    let _ = writeln!(
        out,
        "# The image `dist` built ({}), with the binaries compiled from source in a Rust builder\n\
         # stage; castoff's other layers come from the dist, so run `dist` first. Build it with\n\
         # BuildKit (cache mounts) from the workspace root, which {SOURCE_DOCKERIGNORE} trims:\n\
         #   docker build -f {dist}/deploy/{name}/Dockerfile.source -t {} .",
        built.tagged_reference(),
        built.tagged_reference(),
    );
    let builder = match &oci.builder {
        Some(builder) => builder.clone(),
        None => {
            let _ = writeln!(
                out,
                "# The builder image is not pinned: set `oci.builder` to a digest-pinned Rust image\n\
                 # (`rust:<version>-alpine@sha256:<digest>`) to pin it."
            );
            format!("rust:{}-alpine", rust_version(app, workspace_root))
        }
    };
    let several = platforms.len() > 1;
    if several {
        let _ = writeln!(
            out,
            "# Each platform's builder stage runs on that platform: another platform than the\n\
             # machine's is compiled under emulation (QEMU through binfmt), which is slow:\n\
             #   docker buildx build --platform {} -f {dist}/deploy/{name}/Dockerfile.source .",
            docker_platforms(platforms),
        );
    }
    out.push_str(ADD_PRAGMA);
    if several {
        out.push_str(PLATFORM_ARGS);
    }
    let locked = workspace_root.join("Cargo.lock").is_file();
    for platform in platforms {
        let suffix = &platform.stage_suffix;
        let settings = app.build(platform.target);
        let mut command: Vec<String> = settings
            .build_env
            .iter()
            .map(|(key, value)| shell_word(&format!("{key}={value}")))
            .collect();
        command.extend(["cargo", "build"].map(str::to_owned));
        if locked {
            command.push("--locked".to_owned());
        }
        command.extend(["--profile".to_owned(), shell_word(&settings.profile)]);
        command.extend(["--package".to_owned(), shell_word(name)]);
        for bin in &app.bins {
            command.extend(["--bin".to_owned(), shell_word(bin)]);
        }
        command.extend(settings.feature_args().iter().map(|arg| shell_word(arg)));
        command.extend(settings.cargo_args.iter().map(|arg| shell_word(arg)));
        let copies: Vec<String> = app
            .bins
            .iter()
            .map(|bin| {
                format!(
                    "target/{}/{}",
                    shell_word(settings.profile_dir()),
                    shell_word(bin)
                )
            })
            .collect();
        out.push('\n');
        let _ = writeln!(out, "FROM {builder} AS build-{suffix}");
        let _ = writeln!(out, "WORKDIR /src");
        let _ = writeln!(out, "COPY . .");
        let _ = writeln!(
            out,
            "RUN --mount=type=cache,id=cargo-registry,target=/usr/local/cargo/registry,sharing=locked \\\n    \
             --mount=type=cache,id={name}-target-{suffix},target=/src/target \\\n    \
             {} \\\n    \
             && mkdir -p /out \\\n    \
             && cp {} /out/",
            command.join(" "),
            copies.join(" "),
        );
        out.push('\n');
        if several {
            let _ = writeln!(out, "{} AS image-{suffix}", from_line(oci));
        } else {
            let _ = writeln!(out, "{}", from_line(oci));
        }
        for layer in &platform.layers {
            if skips(oci, layer) {
                continue;
            }
            match &layer.binary {
                None => add_layer(&mut out, blob_dir, layer),
                Some(bin) => {
                    let _ = writeln!(out, "COPY --from=build-{suffix} /out/{bin} {BIN_DIR}/{bin}");
                }
            }
        }
    }
    if several {
        out.push('\n');
        out.push_str(SELECT_STAGE);
    }
    out.push_str(runtime);
    out
}

/// `linux/amd64,linux/arm/v7`: the platforms of `platforms` as `--platform` takes them.
fn docker_platforms(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .filter_map(|platform| platform.target.oci)
        // `arm64/v8` is written `arm64`, as Docker's own messages do.
        .map(|oci| match oci.variant {
            Some(variant) if oci.architecture == "arm" => {
                format!("{}/{}/{variant}", oci.os, oci.architecture)
            }
            _ => format!("{}/{}", oci.os, oci.architecture),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The binary build's context (the dist directory) trimmed to the layer blobs `Dockerfile`
/// adds: the dist's wheels, npm packages and `docker load` archives stay out of it.
fn binary_dockerignore(oci: &OciChannel, platforms: &[Platform], blob_dir: &str) -> String {
    let mut out = String::from(
        "# Generated by castoff: the context of Dockerfile (the dist directory), which BuildKit\n\
         # reads for it from beside it: only the layers it adds.\n\
         *\n",
    );
    for hex in added_blobs(oci, platforms, |_| true) {
        let _ = writeln!(out, "!{blob_dir}/{hex}");
    }
    out
}

/// The digests (hex) of the layers of `platforms` the Dockerfiles add from the dist, among
/// those `wanted`, sorted and once each.
fn added_blobs<'a>(
    oci: &OciChannel,
    platforms: &'a [Platform],
    wanted: impl Fn(&Layer) -> bool,
) -> Vec<&'a str> {
    let mut blobs: Vec<&str> = platforms
        .iter()
        .flat_map(|platform| &platform.layers)
        .filter(|layer| wanted(layer) && !skips(oci, layer))
        .map(|layer| layer.digest.trim_start_matches("sha256:"))
        .collect();
    blobs.sort_unstable();
    blobs.dedup();
    blobs
}

/// The source build's context: the workspace without `.git`, Cargo's target directories
/// and the dist directory, but for the layer blobs `Dockerfile.source` adds.
fn source_dockerignore(
    oci: &OciChannel,
    platforms: &[Platform],
    dist: &str,
    blob_dir: &str,
) -> String {
    let mut out = String::from(
        "# Generated by castoff: the context of Dockerfile.source (the workspace root), which\n\
         # BuildKit reads for it from beside it.\n\
         .git\n\
         target\n\
         **/target\n",
    );
    let _ = writeln!(out, "{dist}");
    for hex in added_blobs(oci, platforms, |layer| layer.binary.is_none()) {
        let _ = writeln!(out, "!{blob_dir}/{hex}");
    }
    out
}
