//! Renders a plan for people and machines: a text tree, Graphviz DOT, and the JSON a GitHub
//! Actions `strategy.matrix` takes. (The JSON form is the manifest, see `manifest.rs`.)

use std::fmt::Write as _;

use crate::plan::{
    ArtifactId, ArtifactKind, BaseImage, Check, OciChannel, Release, StepId, StepKind,
};

/// One line describing what an artifact is in its registry.
fn describe(release: &Release, id: ArtifactId) -> String {
    let artifact = &release.artifacts[id.0];
    let app = &release.apps[artifact.app.0];
    match artifact.kind {
        ArtifactKind::Binary => app.bins.join(", "),
        ArtifactKind::Sbom => "CycloneDX JSON".to_owned(),
        ArtifactKind::Archive => artifact
            .target
            .map_or_else(String::new, |target| app.archive_file_name(target)),
        ArtifactKind::Wheel => app.python.as_ref().map_or_else(String::new, |python| {
            format!("{} {} (PyPI)", python.name, python.version)
        }),
        ArtifactKind::Sdist => app.python.as_ref().map_or_else(String::new, |python| {
            format!("{} {} source (PyPI)", python.name, python.version)
        }),
        ArtifactKind::NpmPlatform => app
            .npm
            .as_ref()
            .zip(artifact.target)
            .map_or_else(String::new, |(npm, target)| {
                format!("{}@{}", npm.platform_package(target), npm.version.version)
            }),
        ArtifactKind::NpmLauncher => app.npm.as_ref().map_or_else(String::new, |npm| {
            format!(
                "{}@{} (dist-tag {})",
                npm.name, npm.version.version, npm.version.dist_tag
            )
        }),
        ArtifactKind::OciImage => app
            .oci
            .as_ref()
            .zip(artifact.target.and_then(|target| target.oci))
            .map_or_else(String::new, |(oci, platform)| {
                format!("{} ({platform})", oci.repository)
            }),
        ArtifactKind::OciIndex => app.oci.as_ref().map_or_else(String::new, |oci| {
            format!("{}:{}", oci.repository, oci.tags.join(", "))
        }),
    }
}

/// What an image holds and how it runs, on one line: base, user, entrypoint, ports, health
/// check, extra files, volumes and system data.
fn describe_image(oci: &OciChannel, workspace_root: &std::path::Path) -> String {
    let within = |path: &std::path::Path| {
        path.strip_prefix(workspace_root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut parts = vec![match &oci.base {
        BaseImage::Scratch => "scratch".to_owned(),
        BaseImage::Reference(reference) => format!("on {reference}"),
        BaseImage::Layout(path) => format!("on oci-layout:{}", within(path)),
    }];
    parts.push(format!("user {}", oci.user));
    let mut run = format!("runs {}", oci.entrypoint);
    for arg in oci.cmd.iter().flatten() {
        run.push(' ');
        run.push_str(arg);
    }
    parts.push(run);
    if !oci.ports.is_empty() {
        let ports: Vec<String> = oci
            .ports
            .iter()
            .map(|port| format!("{}/{}", port.number, port.protocol.as_str()))
            .collect();
        parts.push(format!("ports {}", ports.join(", ")));
    }
    if let Some(check) = &oci.healthcheck {
        parts.push(match &check.check {
            Check::Http { path, port } => format!("health http :{port}{path} (castoff's probe)"),
            Check::Tcp { port } => format!("health tcp :{port} (castoff's probe)"),
            Check::Command(cmd) => format!("health {}", cmd.join(" ")),
        });
    }
    if !oci.files.is_empty() {
        let files: Vec<String> = oci
            .files
            .iter()
            .map(|file| {
                let mut src = within(&file.src);
                if let Some(glob) = &file.glob {
                    src = if src.is_empty() {
                        glob.clone()
                    } else {
                        format!("{src}/{glob}")
                    };
                }
                format!("{src} -> {}", file.dst)
            })
            .collect();
        parts.push(format!("files {}", files.join(", ")));
    }
    if !oci.volumes.is_empty() {
        parts.push(format!("volumes {}", oci.volumes.join(", ")));
    }
    if oci.userland.ca_certificates {
        parts.push("ca-certificates".to_owned());
    }
    if oci.userland.tzdata {
        parts.push("tzdata".to_owned());
    }
    parts.join("; ")
}

/// A readable tree: apps → targets → artifacts, then the publish order.
pub fn text(release: &Release) -> String {
    let mut out = String::new();
    // The crates channel's `.crate` files and steps count with the rest.
    let crates = if release.crates.is_empty() {
        String::new()
    } else {
        format!(", {} crate(s)", release.crates.len())
    };
    let _ = writeln!(
        out,
        "release plan: {} app(s), {} target(s), {} artifact(s){crates}, {} publish step(s)",
        release.apps.len(),
        release.targets().len(),
        release.artifacts.len(),
        release.steps.len() + release.crates.len()
    );
    for (app_index, app) in release.apps.iter().enumerate() {
        let _ = writeln!(out);
        let _ = write!(
            out,
            "{} {}  (git tag {}",
            app.package.name,
            app.package.version,
            app.git_tag()
        );
        if !app.depends_on.is_empty() {
            let deps: Vec<&str> = app
                .depends_on
                .iter()
                .map(|dep| release.apps[dep.0].package.name.as_str())
                .collect();
            let _ = write!(out, "; after {}", deps.join(", "));
        }
        let _ = writeln!(out, ")");
        let ids_of = |target: Option<&str>| -> Vec<ArtifactId> {
            release
                .artifacts
                .iter()
                .enumerate()
                .filter(|(_, artifact)| {
                    artifact.app.0 == app_index && artifact.target.map(|t| t.triple) == target
                })
                .map(|(index, _)| ArtifactId(index))
                .collect()
        };
        for target in &app.targets {
            let _ = writeln!(out, "  {}", target.triple);
            let _ = writeln!(out, "    {:<13} {}", "build", app.build(target).describe());
            for id in ids_of(Some(target.triple)) {
                let kind = release.artifacts[id.0].kind.as_str();
                let _ = writeln!(out, "    {kind:<13} {}", describe(release, id));
            }
            if let Some(reason) = app.oci.as_ref().and_then(|oci| oci.no_image_reason(target)) {
                let _ = writeln!(out, "    {:<13} none: {reason}", "oci-image");
            }
        }
        for id in ids_of(None) {
            let kind = release.artifacts[id.0].kind.as_str();
            let _ = writeln!(out, "  {kind:<15} {}", describe(release, id));
        }
        let has_index = release
            .artifacts
            .iter()
            .any(|artifact| artifact.app.0 == app_index && artifact.kind == ArtifactKind::OciIndex);
        if let Some(oci) = app.oci.as_ref().filter(|_| has_index) {
            let _ = writeln!(
                out,
                "  {:<15} {}",
                "image",
                describe_image(oci, &release.workspace_root)
            );
        }
    }
    if !release.crates.is_empty() || !release.crates_skipped.is_empty() {
        let _ = writeln!(out);
        match release.crates.first() {
            Some(first) => writeln!(out, "crates (to {}):", first.registry),
            None => writeln!(out, "crates: none published"),
        }
        .ok();
        for krate in &release.crates {
            let _ = writeln!(out, "  {:<15} crates/{}", krate.name, krate.file_name());
        }
        for skipped in &release.crates_skipped {
            let _ = writeln!(
                out,
                "  {:<15} not published: {}",
                skipped.name, skipped.reason
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "publish order:");
    // The crates first: `cargo install` works by the time a wheel or image is announced.
    for (position, krate) in release.crates.iter().enumerate() {
        let _ = write!(out, "  {:>3}. {}", position + 1, krate.step_id());
        if !krate.after.is_empty() {
            let names: Vec<String> = krate
                .after
                .iter()
                .map(|id| release.crates[id.0].step_id())
                .collect();
            let _ = write!(out, "  (after {})", names.join(", "));
        }
        let _ = writeln!(out);
    }
    for (position, step) in release.publish_order().into_iter().enumerate() {
        let position = position + release.crates.len();
        let after = &release.steps[step.0].after;
        let _ = write!(out, "  {:>3}. {}", position + 1, release.step_id(step));
        if !after.is_empty() {
            let names: Vec<String> = after.iter().map(|id| release.step_id(*id)).collect();
            let _ = write!(out, "  (after {})", names.join(", "));
        }
        let _ = writeln!(out);
    }
    out
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A Graphviz digraph: artifacts as boxes (one cluster per app), publish steps as ellipses,
/// build edges solid and publish-order edges dashed.
pub fn dot(release: &Release) -> String {
    let mut out = String::from(
        "digraph release {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n",
    );
    for (app_index, app) in release.apps.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph \"cluster_{}\" {{",
            dot_escape(&app.package.name)
        );
        let _ = writeln!(
            out,
            "    label=\"{} {}\";",
            dot_escape(&app.package.name),
            app.package.version
        );
        for (index, artifact) in release.artifacts.iter().enumerate() {
            if artifact.app.0 != app_index {
                continue;
            }
            let id = ArtifactId(index);
            let label = match artifact.target {
                Some(target) => format!("{}\\n{}", artifact.kind.as_str(), target.triple),
                None => artifact.kind.as_str().to_owned(),
            };
            let _ = writeln!(
                out,
                "    \"{}\" [shape=box, label=\"{}\"];",
                dot_escape(&release.artifact_id(id)),
                dot_escape(&label).replace("\\\\n", "\\n")
            );
        }
        for (index, step) in release.steps.iter().enumerate() {
            if step.app.0 != app_index {
                continue;
            }
            let label = match &step.kind {
                StepKind::OciTag(tag) => format!("tag {tag}"),
                kind => kind.as_str().to_owned(),
            };
            let _ = writeln!(
                out,
                "    \"{}\" [shape=ellipse, style=filled, fillcolor=\"#e8f0fe\", label=\"{}\"];",
                dot_escape(&release.step_id(StepId(index))),
                dot_escape(&label)
            );
        }
        let _ = writeln!(out, "  }}");
    }
    // The crates channel: one cluster, each `.crate` and its step, dependencies first.
    if let Some(first) = release.crates.first() {
        let _ = writeln!(out, "  subgraph \"cluster_crates\" {{");
        let _ = writeln!(
            out,
            "    label=\"crates ({})\";",
            dot_escape(&first.registry)
        );
        for krate in &release.crates {
            let _ = writeln!(
                out,
                "    \"{}\" [shape=box, label=\"crate\\n{} {}\"];",
                dot_escape(&krate.artifact_id()),
                dot_escape(&krate.name),
                krate.version
            );
            let _ = writeln!(
                out,
                "    \"{}\" [shape=ellipse, style=filled, fillcolor=\"#e8f0fe\", label=\"crate-publish\"];",
                dot_escape(&krate.step_id())
            );
        }
        let _ = writeln!(out, "  }}");
        for krate in &release.crates {
            let step_id = dot_escape(&krate.step_id());
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{step_id}\" [style=dotted];",
                dot_escape(&krate.artifact_id())
            );
            for after in &krate.after {
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{step_id}\" [style=dashed];",
                    dot_escape(&release.crates[after.0].step_id())
                );
            }
        }
    }
    for (index, artifact) in release.artifacts.iter().enumerate() {
        for input in &artifact.inputs {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                dot_escape(&release.artifact_id(*input)),
                dot_escape(&release.artifact_id(ArtifactId(index)))
            );
        }
    }
    for (index, step) in release.steps.iter().enumerate() {
        let step_id = dot_escape(&release.step_id(StepId(index)));
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{step_id}\" [style=dotted];",
            dot_escape(&release.artifact_id(step.artifact))
        );
        for after in &step.after {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{step_id}\" [style=dashed];",
                dot_escape(&release.step_id(*after))
            );
        }
    }
    out.push_str("}\n");
    out
}

/// `{"include": [{"target": …, "runner": …, "packages": …}]}`: one build job per target,
/// on the runner the target table suggests.
pub fn github_matrix(release: &Release) -> String {
    let include: Vec<serde_json::Value> = release
        .targets()
        .into_iter()
        .map(|target| {
            let packages: Vec<&str> = release
                .apps
                .iter()
                .filter(|app| app.targets.contains(&target))
                .map(|app| app.package.name.as_str())
                .collect();
            // The runner must install zig and cargo-zigbuild when any app builds this target
            // with them (release.yml's "Install zig" step).
            let zig = release.apps.iter().any(|app| {
                app.targets.contains(&target)
                    && app.build(target).tool == crate::plan::BuildTool::Zigbuild
            });
            serde_json::json!({
                "target": target.triple,
                "runner": target.github_runner,
                "packages": packages.join(" "),
                "zig": zig,
            })
        })
        .collect();
    let mut json = serde_json::to_string(&serde_json::json!({ "include": include }))
        .expect("matrix serializes");
    json.push('\n');
    json
}
