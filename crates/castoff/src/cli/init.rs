//! `castoff init`: sets an existing workspace up for castoff. Adds the `xtask` crate (a
//! `main` that runs castoff's CLI), the `cargo xtask` alias in `.cargo/config.toml`, a
//! `[package.metadata.castoff]` table for each binary package (names derived from
//! the package and checked with castoff-plan's registry name rules), the release workflow and
//! `/dist` in `.gitignore`.
//!
//! Idempotent: a second run changes nothing. Files castoff writes whole are replaced only with
//! `--force` when they differ (the user changed them), and never when they lack castoff's mark
//! (the user's own file); tables and lines castoff adds to the user's files are added once and
//! never rewritten.

use std::fs;
use std::path::{Path, PathBuf};

use crate::hint::Hinted;
use anyhow::Context as _;
use castoff_plan::names;

/// The alias line castoff writes into `.cargo/config.toml`: it runs the launcher
/// (`xtask/launch`, found by its manifest, so `cargo xtask` runs from the workspace root),
/// which runs the xtask and skips Cargo's up-to-date check of castoff's ~240 crates when
/// nothing changed (templates/launch.rs). `--quiet` hides only the launcher's own lines: the
/// xtask's build, when there is one, shows its progress (the first compiles castoff for a
/// minute or more, which must not look like a hang).
const ALIAS: &str = "xtask = \"run --quiet --manifest-path xtask/launch/Cargo.toml --\"";

/// The aliases earlier castoffs' `init` wrote: replaced by [`ALIAS`] without `--force` when
/// the xtask is castoff's. castoff 0.1's (the xtask a member of the workspace), then the xtask
/// run directly (before the launcher).
const EARLIER_ALIASES: &[&str] = &[
    "xtask = \"run --quiet --package xtask --\"",
    "xtask = \"run --manifest-path xtask/Cargo.toml --\"",
];

/// The launcher's manifest: a workspace of its own, with no dependencies (so Cargo's check of
/// it is quick).
const LAUNCH_MANIFEST: &str = "# Written by `castoff init`: what the `cargo xtask` alias runs (src/main.rs says why).\n\
                               [package]\nname = \"xtask-launch\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
                               [workspace]\n";

/// The launcher's `main`.
const LAUNCH_MAIN: &str = include_str!("../templates/launch.rs");

const LAUNCH_GITIGNORE: &str =
    "# Written by `castoff init`: the launcher's build output.\n/target\n";

/// The xtask's `main`.
const XTASK_MAIN: &str = "//! Written by `castoff init`: `cargo xtask …` runs castoff's commands on this workspace.\n\n\
                          fn main() -> std::process::ExitCode {\n    \
                          castoff::cli::main_from(std::env::args_os())\n}\n";

/// The xtask's build output stays out of git; its `Cargo.lock` is committed.
const XTASK_GITIGNORE: &str = "# Written by `castoff init`: the xtask's build output.\n/target\n";

/// The release workflow of castoff's own repository, which releases with `cargo xtask` too.
const RELEASE_WORKFLOW: &str = include_str!("../../../../.github/workflows/release.yml");

/// `init` options.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Replace files castoff wrote before (xtask crate, workflow) even when they were changed.
    #[arg(long)]
    pub force: bool,
    /// Make the xtask depend on castoff at this path (a checkout's `crates/castoff`), written
    /// relative to the xtask, instead of a released version.
    #[arg(long, value_name = "DIR")]
    pub castoff_path: Option<PathBuf>,
    /// Make the xtask depend on this released castoff version from crates.io (default for a
    /// new xtask: the version of the castoff running `init`; an existing xtask keeps its own).
    #[arg(long, value_name = "VERSION", conflicts_with = "castoff_path")]
    pub castoff_version: Option<String>,
    /// Leave out the release workflow (.github/workflows/release.yml).
    #[arg(long)]
    pub no_workflow: bool,
    /// Write the release workflow to this file (relative to the workspace root) instead of
    /// .github/workflows/release.yml, e.g. when the project has a release.yml of its own.
    #[arg(long, value_name = "FILE", conflicts_with = "no_workflow")]
    pub workflow_path: Option<PathBuf>,
}

/// The first line of every file castoff writes whole, in the file's comment syntax: a file
/// without it is the user's, and `init` never replaces it, not even with `--force`.
const MARK: &str = "Written by `castoff init`";

/// What `init` did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Written new: `+ path`.
    Created(String),
    /// Lines added to an existing file: `~ path: what`, then the lines.
    Added {
        path: String,
        what: String,
        lines: Vec<String>,
    },
    /// Already as castoff would write it: `= path`.
    Unchanged(String),
    /// Differs from what castoff writes and was kept (no `--force`): `! path`.
    Kept(String),
    /// Replaced with `--force`: `~ path (overwritten)`.
    Overwritten(String),
    /// A file of the user's where castoff would write one of its own: kept, and castoff's is
    /// not installed (`why` says what that means and how to install it).
    NotInstalled { path: String, why: String },
    /// Something to look at, nothing written: `! path: why`.
    Note { path: String, why: String },
    /// Left out, as an earlier run left it: `- path: why`.
    LeftOut { path: String, why: String },
}

/// `init --json`: every change as an object with its `kind` (the variant's name in snake
/// case), `path` and, where the text says more, `what`, `lines` or `why`; `complete` is false
/// when castoff did not install one of its files.
pub fn render_json(changes: &[Change]) -> String {
    use serde_json::json;
    let listed: Vec<serde_json::Value> = changes
        .iter()
        .map(|change| match change {
            Change::Created(path) => json!({ "kind": "created", "path": path }),
            Change::Added { path, what, lines } => {
                json!({ "kind": "added", "path": path, "what": what, "lines": lines })
            }
            Change::Unchanged(path) => json!({ "kind": "unchanged", "path": path }),
            Change::Kept(path) => json!({ "kind": "kept", "path": path }),
            Change::Overwritten(path) => json!({ "kind": "overwritten", "path": path }),
            Change::NotInstalled { path, why } => {
                json!({ "kind": "not_installed", "path": path, "why": why })
            }
            Change::Note { path, why } => json!({ "kind": "note", "path": path, "why": why }),
            Change::LeftOut { path, why } => {
                json!({ "kind": "left_out", "path": path, "why": why })
            }
        })
        .collect();
    let complete = !changes
        .iter()
        .any(|change| matches!(change, Change::NotInstalled { .. }));
    let mut text = serde_json::to_string_pretty(&json!({
        "command": "init",
        "complete": complete,
        "changes": listed,
    }))
    .expect("JSON values serialize");
    text.push('\n');
    text
}

/// The diff-style summary: one line per file, added lines indented under it.
pub fn render(changes: &[Change]) -> String {
    let mut out = String::new();
    for change in changes {
        match change {
            Change::Created(path) => out.push_str(&format!("+ {path}\n")),
            Change::Added { path, what, lines } => {
                out.push_str(&format!("~ {path}: {what}\n"));
                for line in lines {
                    out.push_str(&format!("    + {line}\n").replace("+ \n", "+\n"));
                }
            }
            Change::Unchanged(path) => out.push_str(&format!("= {path} (unchanged)\n")),
            Change::Kept(path) => out.push_str(&format!(
                "! {path} differs from what castoff writes: kept (run with --force to overwrite)\n"
            )),
            Change::Overwritten(path) => out.push_str(&format!("~ {path} (overwritten)\n")),
            Change::NotInstalled { path, why } => out.push_str(&format!(
                "! {path} is not castoff's (it lacks the `{MARK}` line): kept; {why}\n"
            )),
            Change::Note { path, why } => out.push_str(&format!("! {path}: {why}\n")),
            Change::LeftOut { path, why } => out.push_str(&format!("- {path}: {why}\n")),
        }
    }
    let missing: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Change::NotInstalled { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    let changed = changes
        .iter()
        .filter(|c| {
            !matches!(
                c,
                Change::Unchanged(_)
                    | Change::Kept(_)
                    | Change::Note { .. }
                    | Change::LeftOut { .. }
            )
        })
        .count();
    let notes = changes.iter().any(|c| matches!(c, Change::Note { .. }));
    if !missing.is_empty() {
        out.push_str(&format!(
            "not set up completely: castoff did not install {} (see above)\n",
            missing.join(", ")
        ));
    } else if notes {
        out.push_str(
            "next: look at the `!` lines above, then `cargo xtask plan`, then `cargo xtask dist`\n",
        );
    } else if changed == 0 {
        out.push_str("nothing to do: the workspace is set up\n");
    } else {
        out.push_str("next: `cargo xtask plan`, then `cargo xtask dist`\n");
    }
    out
}

/// Sets up the workspace of `manifest_path` (default: the current directory's).
pub fn init(manifest_path: Option<&Path>, args: &InitArgs) -> anyhow::Result<Vec<Change>> {
    let mut command = cargo_metadata::MetadataCommand::new();
    command.no_deps();
    if let Some(path) = manifest_path {
        command.manifest_path(path);
    }
    let metadata = command.exec().map_err(|error| {
        Hinted::new(
            "could not read the workspace",
            "run `castoff init` inside a Cargo workspace (or pass --manifest-path); `cargo metadata` must succeed",
        )
        .because(error)
    })?;
    let root = metadata.workspace_root.clone().into_std_path_buf();
    // Before anything is written: a tag pattern the workflow cannot follow stops init here.
    let tag_filters = tag_filters(&metadata)?;
    let mut changes = Vec::new();

    // Set up by an earlier run: what that run left out (the workflow) stays out.
    let set_up_before = fs::read_to_string(root.join("xtask/Cargo.toml"))
        .is_ok_and(|text| text.lines().next().is_some_and(|line| line.contains(MARK)));

    // 1. The xtask crate, a workspace of its own.
    let dependency = castoff_dependency(
        &root,
        args.castoff_path.as_deref(),
        args.castoff_version.as_deref(),
    )?;
    let xtask_manifest = xtask_manifest(&dependency);
    // The running castoff's version, pinned from crates.io by a castoff that did not come from
    // there: that version may not be published (a checkout ahead of the last release).
    let this_version = format!("castoff = \"={}\"", env!("CARGO_PKG_VERSION"));
    if args.castoff_version.is_none() && dependency == this_version && !built_from_a_registry() {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
        changes.push(Change::Note {
            path: "xtask/Cargo.toml".to_owned(),
            why: format!(
                "pins castoff {version} from crates.io, but this castoff was built from {}: if \
                 {version} is not on crates.io yet, `cargo xtask` cannot build; point the xtask at \
                 a castoff checkout instead (`castoff init --castoff-path <checkout>/crates/castoff`)",
                checkout.display(),
                version = env!("CARGO_PKG_VERSION"),
            ),
        });
    }
    // Another --castoff-path (or castoff version) than last time: castoff's own dependency
    // line is updated in place, the rest of the file left as the user has it.
    // The manifest an earlier castoff wrote (the xtask a member of the project's workspace),
    // unchanged since: replaced by today's without --force.
    let earlier = fs::read_to_string(root.join("xtask/Cargo.toml"))
        .is_ok_and(|text| is_earlier_manifest(&text));
    if !update_castoff_dependency(&root, &dependency, &mut changes)? {
        write_whole(
            &root,
            "xtask/Cargo.toml",
            &xtask_manifest,
            args.force || earlier,
            &mut changes,
        )?;
    }
    write_whole(
        &root,
        "xtask/src/main.rs",
        XTASK_MAIN,
        args.force,
        &mut changes,
    )?;
    write_whole(
        &root,
        "xtask/.gitignore",
        XTASK_GITIGNORE,
        args.force,
        &mut changes,
    )?;
    for (path, contents) in [
        ("xtask/launch/Cargo.toml", LAUNCH_MANIFEST),
        ("xtask/launch/src/main.rs", LAUNCH_MAIN),
        ("xtask/launch/.gitignore", LAUNCH_GITIGNORE),
    ] {
        write_whole(&root, path, contents, args.force, &mut changes)?;
    }
    if let Some(path) = &args.castoff_path {
        seed_lock_file(&root, path, &mut changes)?;
        // A checkout outside the project is not in CI's checkout of it: said when this run
        // writes the path (a re-run that changes nothing stays quiet).
        let checkout = castoff_checkout(path)?;
        let written = changes.iter().any(|change| match change {
            Change::Created(file) | Change::Overwritten(file) => file == "xtask/Cargo.toml",
            Change::Added { path, .. } => path == "xtask/Cargo.toml",
            _ => false,
        });
        if written && !inside_the_project(&root, &checkout) {
            changes.push(Change::Note {
                path: "xtask/Cargo.toml".to_owned(),
                why: format!(
                    "castoff's path `{}` lies outside the project, so the release workflow's checkout \
                     will not have it: add castoff as a git submodule inside the project (and \
                     `submodules: true` in the workflow's checkout steps), or run `init \
                     --castoff-version X.Y.Z` once castoff is on crates.io",
                    path.display()
                ),
            });
        }
    }
    // Its own workspace only once the manifest castoff wrote says so (`[workspace]`): a
    // manifest kept from an earlier castoff, which made the xtask a member, stays one.
    let own_workspace = fs::read_to_string(root.join("xtask/Cargo.toml"))
        .is_ok_and(|text| text.lines().any(|line| line.trim() == "[workspace]"));
    if own_workspace {
        exclude_xtask(&root, &mut changes)?;
    }

    // 2. The alias.
    // castoff's earlier alias is replaced only when the xtask it runs is castoff's: a project's
    // own xtask crate may have the same alias line, and that line is the project's.
    let xtask_is_castoffs = fs::read_to_string(root.join("xtask/Cargo.toml"))
        .is_ok_and(|text| text.lines().next().is_some_and(|line| line.contains(MARK)));
    add_alias(&root, args.force, xtask_is_castoffs, &mut changes)?;

    // 3. A commented metadata table for each binary package.
    for package in metadata.workspace_packages() {
        if package.name.as_str() == "xtask"
            || !package
                .targets
                .iter()
                .any(|target| target.kind.iter().any(|k| k.to_string() == "bin"))
        {
            continue;
        }
        let manifest = package.manifest_path.clone().into_std_path_buf();
        let text = fs::read_to_string(&manifest)
            .with_context(|| format!("could not read {}", manifest.display()))?;
        let relative = relative(&root, &manifest);
        if text.contains("[package.metadata.castoff]") || text.contains("metadata.castoff =") {
            changes.push(Change::Unchanged(format!(
                "{relative} [package.metadata.castoff]"
            )));
            continue;
        }
        let lines = metadata_table(package.name.as_str(), package.repository.as_deref());
        let mut new_text = text.clone();
        if !new_text.ends_with('\n') {
            new_text.push('\n');
        }
        new_text.push('\n');
        new_text.push_str(&lines.join("\n"));
        new_text.push('\n');
        fs::write(&manifest, new_text)
            .with_context(|| format!("could not write {}", manifest.display()))?;
        changes.push(Change::Added {
            path: relative,
            what: format!("[package.metadata.castoff] for `{}`", package.name),
            lines,
        });
    }

    // 4. The release workflow, triggered by the tags the packages are released under.
    let default_path = ".github/workflows/release.yml";
    let path = args.workflow_path.as_deref().map_or_else(
        || default_path.to_owned(),
        |path| path.to_string_lossy().into_owned(),
    );
    if args.no_workflow {
        // Left out on purpose.
    } else if set_up_before && args.workflow_path.is_none() && !root.join(&path).exists() {
        changes.push(Change::LeftOut {
            path: path.clone(),
            why: "not written: an earlier `castoff init` left it out (--no-workflow, or it was \
                  removed); `castoff init --workflow-path .github/workflows/release.yml` writes it"
                .to_owned(),
        });
    } else {
        let workflow = format!(
            "# Written by `castoff init` (a copy of castoff's own release workflow; see\n\
             # https://github.com/castoff-rs/castoff/blob/main/docs/ci.md).\n{}",
            release_workflow(&tag_filters)
        );
        write_whole(&root, &path, &workflow, args.force, &mut changes)?;
        if let Some(Change::NotInstalled { why, .. }) = changes.last_mut() {
            *why = "castoff's release workflow is not installed: write it beside yours with \
                    `castoff init --workflow-path .github/workflows/castoff-release.yml` (then \
                    remove or change one, or both will release on a tag), see docs/ci.md"
                .to_owned();
        } else {
            other_tag_workflows(&root, &path, &mut changes);
        }
    }

    // 5. dist/ is build output: out of git, and out of what build scripts watch.
    ignore_dist(&root, &mut changes)?;
    Ok(changes)
}

/// A note for each workflow of the project's own (no castoff mark) that runs on tag pushes:
/// with castoff's installed, a release tag starts both.
fn other_tag_workflows(root: &Path, castoffs: &str, changes: &mut Vec<Change>) {
    let dir = root.join(".github/workflows");
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    let mut found: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yml" || extension == "yaml")
        })
        .filter_map(|path| {
            let relative = relative(root, &path);
            // A workflow file is small; a huge one is not read (and not mentioned).
            let small = fs::metadata(&path).is_ok_and(|meta| meta.len() <= 1 << 20);
            let text = small.then(|| fs::read_to_string(&path).ok()).flatten()?;
            let ours = text.lines().next().is_some_and(|line| line.contains(MARK));
            (relative != castoffs && !ours && runs_on_tag_pushes(&text)).then_some(relative)
        })
        .collect();
    found.sort();
    for path in found {
        changes.push(Change::Note {
            path,
            why: "runs on tag pushes too: make sure it and castoff's workflow do not both \
                  release (remove one, or narrow its `tags:` or `branches:`), see docs/ci.md"
                .to_owned(),
        });
    }
}

/// Whether `checkout` lies inside the project CI checks out: its git repository (the
/// workspace may be a folder of it, with castoff a submodule at the top), else the workspace.
/// Both sides resolved, so a link to a checkout elsewhere counts as elsewhere.
fn inside_the_project(root: &Path, checkout: &Path) -> bool {
    let top = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--show-toplevel"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| PathBuf::from(text.trim_end()))
        .unwrap_or_else(|| root.to_owned());
    match (fs::canonicalize(&top), fs::canonicalize(checkout)) {
        (Ok(top), Ok(checkout)) => checkout.starts_with(top),
        _ => false,
    }
}

/// Whether a workflow runs on tag pushes, read line by line (no YAML parser for a hint): a
/// `tags:` or `tags-ignore:` filter; a job that tests for a tag (`refs/tags/`,
/// `github.ref_type`); or a `push` trigger without a `branches:` filter in its own block, which
/// GitHub runs for tags too (`on: [push, pull_request]`).
fn runs_on_tag_pushes(text: &str) -> bool {
    // Each line without its comment: (indentation, text with list dashes dropped).
    let lines: Vec<(usize, &str)> = text
        .lines()
        .map(|line| {
            let line = line.split(" #").next().unwrap_or("");
            let line = if line.trim_start().starts_with('#') {
                ""
            } else {
                line
            };
            let indent = line.len() - line.trim_start().len();
            (indent, line.trim().trim_start_matches('-').trim_start())
        })
        .collect();
    let key = |line: &str, name: &str| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    };
    if lines
        .iter()
        .any(|(_, line)| key(line, "tags") || key(line, "tags-ignore"))
    {
        return true;
    }
    if text.contains("refs/tags/") || text.contains("github.ref_type") {
        return true;
    }
    for (index, (indent, line)) in lines.iter().enumerate() {
        let trigger = line
            .strip_prefix("on")
            .and_then(|rest| rest.trim_start().strip_prefix(':'))
            .map(str::trim);
        let inline_push = trigger.is_some_and(|value| {
            value == "push"
                || (value.starts_with('[')
                    && value
                        .trim_matches(|c| c == '[' || c == ']')
                        .split(',')
                        .any(|event| event.trim().trim_matches(['"', '\'']) == "push"))
        });
        if inline_push {
            return true;
        }
        if *line == "push:" || *line == "push" {
            // The push block: the lines indented deeper than `push:`, up to the next sibling.
            let filtered = lines[index + 1..]
                .iter()
                .filter(|(_, line)| !line.is_empty())
                .take_while(|(deeper, _)| deeper > indent)
                .any(|(_, line)| key(line, "branches") || key(line, "branches-ignore"));
            if !filtered {
                return true;
            }
        }
    }
    false
}

/// The line of castoff's own release workflow that lists its tag filter (castoff releases
/// under the default pattern, `v{version}`).
const OWN_TAG_FILTER_LINE: &str = "      - \"v[0-9]+.[0-9]+.[0-9]+*\"\n";

/// castoff's release workflow triggered by `filters` (GitHub Actions tag filters) instead of
/// its own.
pub fn release_workflow(filters: &[String]) -> String {
    let lines: String = filters
        .iter()
        .map(|filter| {
            format!(
                "      - \"{}\"\n",
                filter.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect();
    RELEASE_WORKFLOW.replacen(OWN_TAG_FILTER_LINE, &lines, 1)
}

/// The tag filters of the release workflow: one per package released (or about to be, with
/// the table `init` adds), from its tag pattern (its `tag`, else the workspace's, else
/// `v{version}`); each once, in the order of the workspace's members.
fn tag_filters(metadata: &cargo_metadata::Metadata) -> anyhow::Result<Vec<String>> {
    use castoff_plan::tag::TagPattern;
    let root_manifest = metadata
        .workspace_root
        .join("Cargo.toml")
        .into_std_path_buf();
    let pattern = |table: &serde_json::Value,
                   file: &Path,
                   key: &str|
     -> anyhow::Result<Option<TagPattern>> {
        let Some(text) = table.get("castoff").and_then(|castoff| castoff.get("tag")) else {
            return Ok(None);
        };
        let parsed = text
            .as_str()
            .ok_or_else(|| format!("tag pattern `{text}` is not a string"))
            .and_then(|text| text.parse::<TagPattern>().map_err(|e| e.to_string()));
        parsed.map(Some).map_err(|problem| {
            Hinted::new(
                format!("{}: `{key}`: {problem}", file.display()),
                "write the pattern your release tags follow, e.g. tag = \"v{version}\" or \"{name}-v{version}\" (docs/configuration.md), then run `castoff init` again",
            )
            .into()
        })
    };
    let workspace = pattern(
        &metadata.workspace_metadata,
        &root_manifest,
        "workspace.metadata.castoff.tag",
    )?
    .unwrap_or_default();
    let mut filters = Vec::new();
    for package in metadata.workspace_packages() {
        let released = package.metadata.get("castoff").is_some()
            || (package.name.as_str() != "xtask"
                && package
                    .targets
                    .iter()
                    .any(|target| target.kind.iter().any(|k| k.to_string() == "bin")));
        if !released {
            continue;
        }
        let own = pattern(
            &package.metadata,
            package.manifest_path.as_std_path(),
            "package.metadata.castoff.tag",
        )?;
        let filter = own
            .unwrap_or_else(|| workspace.clone())
            .github_tag_filter(package.name.as_str());
        if !filters.contains(&filter) {
            filters.push(filter);
        }
    }
    if filters.is_empty() {
        filters.push(workspace.github_tag_filter(""));
    }
    Ok(filters)
}

/// The `[package.metadata.castoff]` lines for a package: every name derived from the package
/// name and checked; a name a registry would refuse is written commented out, with the reason.
pub fn metadata_table(package: &str, repository: Option<&str>) -> Vec<String> {
    let owner = repository
        .and_then(|url| url.strip_prefix("https://github.com/"))
        .and_then(|rest| rest.split('/').next())
        .filter(|owner| !owner.is_empty())
        .map(str::to_ascii_lowercase);
    let npm = package.to_ascii_lowercase();
    let image_name = package.to_ascii_lowercase().replace('_', "-");
    let repository_name = format!(
        "ghcr.io/{}/{image_name}",
        owner.as_deref().unwrap_or("your-github-user")
    );
    let mut lines = vec![
        "# Released with castoff (`cargo xtask dist`, then `cargo xtask publish`). Every key:"
            .to_owned(),
        "# https://github.com/castoff-rs/castoff/blob/main/docs/configuration.md".to_owned(),
        "[package.metadata.castoff]".to_owned(),
        "# Link Linux glibc builds statically: one binary for every Linux, runnable in the"
            .to_owned(),
        "# `scratch` image (without it, set `oci.base` to an image with a C library).".to_owned(),
        "crt-static = true".to_owned(),
        "# The wheel on PyPI: `pip install NAME`, `uvx NAME`.".to_owned(),
    ];
    entry(
        &mut lines,
        "python",
        format!("{{ name = {} }}", toml_string(package)),
        names::check_pypi_name(package),
    );
    lines.push("# The npm packages (launcher + one per platform): `npx NAME`.".to_owned());
    entry(
        &mut lines,
        "npm",
        format!("{{ name = {} }}", toml_string(&npm)),
        names::check_npm_name(&npm),
    );
    lines.push(if owner.is_some() {
        "# The container image: `docker run REPOSITORY`.".to_owned()
    } else {
        "# The container image: `docker run REPOSITORY` (set your registry and user).".to_owned()
    });
    entry(
        &mut lines,
        "oci",
        format!("{{ repository = {} }}", toml_string(&repository_name)),
        names::check_oci_repository(&repository_name),
    );
    lines
}

/// `key = value`, or, when the registry would refuse the name, the line commented out under
/// the reason.
fn entry(lines: &mut Vec<String>, key: &str, value: String, check: Result<(), String>) {
    match check {
        Ok(()) => lines.push(format!("{key} = {value}")),
        Err(problem) => {
            lines.push(format!("# {problem}: pick another name"));
            lines.push(format!("# {key} = {value}"));
        }
    }
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// A file castoff owns whole: created when missing, replaced only with `--force`, and never
/// when it is the user's (it lacks castoff's mark, [`MARK`]).
fn write_whole(
    root: &Path,
    relative: &str,
    contents: &str,
    force: bool,
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    let path = root.join(relative);
    let change = match fs::read_to_string(&path) {
        Ok(existing) if existing == contents => Change::Unchanged(relative.to_owned()),
        // Case aside: castoff's first xtask main.rs said "written by `castoff init`".
        Ok(existing)
            if !existing.lines().next().is_some_and(|line| {
                line.to_ascii_lowercase()
                    .contains(&MARK.to_ascii_lowercase())
            }) =>
        {
            Change::NotInstalled {
                path: relative.to_owned(),
                why: "castoff's file is not installed".to_owned(),
            }
        }
        Ok(_) if !force => Change::Kept(relative.to_owned()),
        Ok(_) => Change::Overwritten(relative.to_owned()),
        Err(_) => Change::Created(relative.to_owned()),
    };
    if matches!(change, Change::Created(_) | Change::Overwritten(_)) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("could not create {}", parent.display()))?;
        }
        fs::write(&path, contents)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    changes.push(change);
    Ok(())
}

/// Whether `text` is the xtask manifest of castoff 0.1's `init` (the xtask a member of the
/// project's workspace), as written, whatever its castoff line.
fn is_earlier_manifest(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    lines.len() == 9
        && lines[8].starts_with("castoff = ")
        && lines[..8].join("\n")
            == "# Written by `castoff init`: `cargo xtask plan|dist|publish` run castoff on this workspace.\n\
                [package]\nname = \"xtask\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
                [dependencies]"
}

/// castoff's dependency line in the xtask: `--castoff-path` written relative to the xtask
/// crate, or `--castoff-version` pinned exactly; without either, the line an existing xtask
/// has (re-running `init` for another reason keeps the castoff it builds), else the running
/// castoff's exact version.
fn castoff_dependency(
    root: &Path,
    castoff_path: Option<&Path>,
    castoff_version: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(path) = castoff_path {
        let path = castoff_checkout(path)?;
        // Relative to the xtask crate, as Cargo reads it: committable, and right in CI's
        // checkout too when castoff's lies beside the project (a submodule, a sibling).
        let written = relative_path(&root.join("xtask"), &path).unwrap_or(path);
        return Ok(format!(
            "castoff = {{ path = {} }}",
            toml_string(&written.to_string_lossy())
        ));
    }
    if let Some(version) = castoff_version {
        let version = version.strip_prefix('=').unwrap_or(version);
        semver::Version::parse(version).map_err(|error| {
            Hinted::new(
                format!("--castoff-version {version} is not a version"),
                "pass a released castoff version, e.g. --castoff-version 0.1.0",
            )
            .because(error)
        })?;
        return Ok(format!("castoff = \"={version}\""));
    }
    let existing = fs::read_to_string(root.join("xtask/Cargo.toml")).unwrap_or_default();
    if is_earlier_manifest(&existing)
        || (existing
            .lines()
            .next()
            .is_some_and(|line| line.contains(MARK))
            && existing.lines().any(|line| line.trim() == "[workspace]"))
    {
        let lines: Vec<&str> = existing
            .lines()
            .filter(|line| line.trim_start().starts_with("castoff ="))
            .collect();
        if let [line] = lines[..] {
            return Ok(line.to_owned());
        }
    }
    Ok(format!("castoff = \"={}\"", env!("CARGO_PKG_VERSION")))
}

/// Whether this castoff was compiled from a registry's copy of its sources (`cargo install
/// castoff`), which Cargo unpacks under `registry/src/`: then its version is released.
fn built_from_a_registry() -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .components()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|pair| pair[0].as_os_str() == "registry" && pair[1].as_os_str() == "src")
}

/// `--castoff-path`, made absolute and checked to be castoff's crate.
/// The path is kept as written, made absolute and normalized without following symbolic
/// links: a checkout reached through a link beside the project is written as that link
/// (`../castoff/crates/castoff`), not as wherever the link points on this machine.
fn castoff_checkout(path: &Path) -> anyhow::Result<PathBuf> {
    path.canonicalize().map_err(|error| {
        Hinted::new(
            format!("--castoff-path {} does not exist", path.display()),
            "pass the `crates/castoff` folder of a castoff checkout",
        )
        .because(error)
    })?;
    let absolute = crate::metadata_cache::lexically_normal(&std::path::absolute(path)?);
    let manifest = fs::read_to_string(absolute.join("Cargo.toml")).unwrap_or_default();
    if !manifest
        .lines()
        .any(|line| line.trim() == "name = \"castoff\"")
    {
        return Err(Hinted::new(
            format!(
                "--castoff-path {}: no castoff crate there (its Cargo.toml does not name the package `castoff`)",
                path.display()
            ),
            "pass the `crates/castoff` folder of a castoff checkout",
        )
        .into());
    }
    Ok(absolute)
}

/// The xtask's manifest: a workspace of its own (`[workspace]`), so castoff's dependencies
/// stay out of the project's `Cargo.lock` and `cargo build --workspace`, built in the `dev`
/// profile without debug info and with the crates that do the heavy work (compression, digests,
/// the archive walk, key derivation) optimized: as fast as a release build where it counts, at
/// well under half of its first compile (ARCHITECTURE.md, "The xtask of a user's workspace").
fn xtask_manifest(dependency: &str) -> String {
    let mut text = format!(
        "# Written by `castoff init`: `cargo xtask plan|dist|publish` run castoff on this workspace.\n\
         # A workspace of its own (own Cargo.lock, own target/), out of the project's.\n\
         [package]\nname = \"xtask\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\n{dependency}\n\n[workspace]\n\n\
         # castoff's hot crates optimized, the rest compiled fast.\n\
         [profile.dev]\ndebug = false\n"
    );
    for package in HOT_CRATES {
        text.push_str(&format!("[profile.dev.package.{package}]\nopt-level = 3\n"));
    }
    text
}

/// The crates where castoff spends its time, optimized in the xtask's `dev` profile. Each one
/// must be in castoff's dependency graph (Cargo warns about a profile naming a package that is
/// not): a test checks them against `cargo metadata`.
pub const HOT_CRATES: &[&str] = &[
    "castoff-archive",
    "libdeflate-sys",
    "zlib-rs",
    "sha2",
    "sha1",
    "scrypt",
    "salsa20",
    "pbkdf2",
];

/// With `--castoff-path`, starts the xtask's `Cargo.lock` as a copy of the checkout's (when the
/// xtask has none): the versions castoff was tested with, and a build that needs no index
/// download when they are already in Cargo's cache. Cargo drops the entries the xtask does not
/// use on its first build.
fn seed_lock_file(
    root: &Path,
    castoff_path: &Path,
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    let lock = root.join("xtask/Cargo.lock");
    if lock.exists() {
        return Ok(());
    }
    let Some(source) = castoff_checkout(castoff_path)?
        .ancestors()
        .map(|dir| dir.join("Cargo.lock"))
        .find(|candidate| candidate.is_file())
    else {
        return Ok(());
    };
    fs::copy(&source, &lock)
        .with_context(|| format!("could not copy {} to {}", source.display(), lock.display()))?;
    changes.push(Change::Created("xtask/Cargo.lock".to_owned()));
    Ok(())
}

/// In castoff's own `xtask/Cargo.toml`, replaces a `castoff = …` dependency line that differs
/// from `dependency`; true when it did (the file is then done).
fn update_castoff_dependency(
    root: &Path,
    dependency: &str,
    changes: &mut Vec<Change>,
) -> anyhow::Result<bool> {
    let path = root.join("xtask/Cargo.toml");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(false);
    };
    // Only a manifest of today's shape (a workspace of its own); an earlier one is replaced
    // whole, with `--force`.
    if !text.lines().next().is_some_and(|line| line.contains(MARK))
        || !text.lines().any(|line| line.trim() == "[workspace]")
    {
        return Ok(false);
    }
    let lines: Vec<&str> = text.lines().collect();
    let castoff_lines: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with("castoff ="))
        .map(|(index, _)| index)
        .collect();
    let [index] = castoff_lines[..] else {
        return Ok(false);
    };
    if lines[index] == dependency {
        return Ok(false);
    }
    let mut updated: Vec<&str> = lines.clone();
    updated[index] = dependency;
    let mut new_text = updated.join("\n");
    new_text.push('\n');
    fs::write(&path, new_text).with_context(|| format!("could not write {}", path.display()))?;
    changes.push(Change::Added {
        path: "xtask/Cargo.toml".to_owned(),
        what: format!("castoff's dependency (was `{}`)", lines[index].trim()),
        lines: vec![dependency.to_owned()],
    });
    Ok(true)
}

/// `to` relative to the directory `from` (both absolute, `from` need not exist yet):
/// `../../castoff/crates/castoff`. None when they share no root.
fn relative_path(from: &Path, to: &Path) -> Option<PathBuf> {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    if from.first() != to.first() {
        return None;
    }
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    for part in &to[common..] {
        relative.push(part);
    }
    Some(relative)
}

/// Adds `/dist` to the workspace root's `.gitignore` (created when missing), unless a line
/// there already ignores it. Without it a build script watching the workspace (`rerun-if-changed`
/// on a directory) runs again after every `dist`, and `git status` lists the artifacts.
fn ignore_dist(root: &Path, changes: &mut Vec<Change>) -> anyhow::Result<()> {
    let path = root.join(".gitignore");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => {
            return Err(error).with_context(|| format!("could not read {}", path.display()));
        }
    };
    if text
        .lines()
        .any(|line| ["dist", "/dist", "dist/", "/dist/"].contains(&line.trim()))
    {
        changes.push(Change::Unchanged(".gitignore /dist".to_owned()));
        return Ok(());
    }
    let mut new_text = text.clone();
    if !new_text.is_empty() && !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    new_text.push_str("/dist\n");
    fs::write(&path, new_text).with_context(|| format!("could not write {}", path.display()))?;
    changes.push(if text.is_empty() {
        Change::Created(".gitignore".to_owned())
    } else {
        Change::Added {
            path: ".gitignore".to_owned(),
            what: "castoff's output".to_owned(),
            lines: vec!["/dist".to_owned()],
        }
    });
    Ok(())
}

/// Keeps the xtask out of the project's workspace: `"xtask"` in the root's
/// `workspace.exclude` (so a `members` glob cannot pull it in), and out of `workspace.members`
/// where an earlier castoff put it. A root without `[workspace]` is left alone: the xtask's own
/// `[workspace]` already keeps it out.
fn exclude_xtask(root: &Path, changes: &mut Vec<Change>) -> anyhow::Result<()> {
    let path = root.join("Cargo.toml");
    let text =
        fs::read_to_string(&path).with_context(|| format!("could not read {}", path.display()))?;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let Some(start) = lines.iter().position(|line| line.trim() == "[workspace]") else {
        return Ok(());
    };
    let mut done = Vec::new();
    if remove_member(&mut lines, start) {
        done.push("no longer a workspace member".to_owned());
    }
    let end = table_end(&lines, start);
    let key_line = |lines: &[String], key: &str| {
        (start + 1..end).find(|&index| {
            lines[index]
                .trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
    };
    let mut added = Vec::new();
    match key_line(&lines, "exclude") {
        Some(index)
            if array_items(&lines, index)
                .iter()
                .any(|item| item == "xtask") => {}
        Some(index) => {
            let line = lines[index].clone();
            let open = line.find('[').ok_or_else(|| {
                Hinted::new(
                    format!("{}: `workspace.exclude` is not an array", path.display()),
                    "add \"xtask\" to `workspace.exclude` by hand",
                )
            })?;
            let rest = line[open + 1..].trim_start().to_owned();
            if rest.is_empty() {
                // A multi-line array: the entry goes on its own line, indented as the ones
                // already there (tabs, two spaces, …).
                let indent = lines
                    .get(index + 1)
                    .filter(|next| !next.trim().is_empty() && !next.trim_start().starts_with(']'))
                    .map_or("    ", |next| &next[..next.len() - next.trim_start().len()])
                    .to_owned();
                lines.insert(index + 1, format!("{indent}\"xtask\","));
                added.push("\"xtask\",".to_owned());
            } else {
                let separator = if rest.starts_with(']') { "" } else { ", " };
                lines[index] = format!("{}\"xtask\"{separator}{rest}", &line[..=open]);
                added.push(lines[index].clone());
            }
        }
        None => {
            let at = key_line(&lines, "members").map_or(start + 1, |index| {
                // After the members array, wherever it ends.
                (index..end)
                    .find(|&i| lines[i].contains(']'))
                    .map_or(index + 1, |i| i + 1)
            });
            lines.insert(at, "exclude = [\"xtask\"]".to_owned());
            added.push("exclude = [\"xtask\"]".to_owned());
        }
    }
    if done.is_empty() && added.is_empty() {
        changes.push(Change::Unchanged("Cargo.toml workspace.exclude".to_owned()));
        return Ok(());
    }
    let mut new_text = lines.join("\n");
    new_text.push('\n');
    fs::write(&path, new_text).with_context(|| format!("could not write {}", path.display()))?;
    if !added.is_empty() {
        done.insert(0, "the xtask out of the workspace".to_owned());
    }
    changes.push(Change::Added {
        path: "Cargo.toml".to_owned(),
        what: done.join(", "),
        lines: added,
    });
    Ok(())
}

/// The index after the last line of the TOML table whose header is at `start`.
fn table_end(lines: &[String], start: usize) -> usize {
    lines[start + 1..]
        .iter()
        .position(|line| line.trim_start().starts_with('['))
        .map_or(lines.len(), |offset| start + 1 + offset)
}

/// The string items of the array that starts on line `index` (one line or several).
fn array_items(lines: &[String], index: usize) -> Vec<String> {
    let mut text = String::new();
    for line in &lines[index..] {
        text.push_str(line.split('#').next().unwrap_or_default());
        if line.contains(']') {
            break;
        }
    }
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Removes `"xtask"` from the `members` array of the `[workspace]` at `start`, in the forms an
/// earlier `castoff init` wrote it (first item of a one-line array, or a line of its own in a
/// multi-line one); true when it did.
fn remove_member(lines: &mut Vec<String>, start: usize) -> bool {
    let end = table_end(lines, start);
    let Some(index) = (start + 1..end).find(|&index| {
        lines[index]
            .trim_start()
            .strip_prefix("members")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    }) else {
        return false;
    };
    for i in index..end {
        let line = &lines[i];
        if i > index && line.trim() == "\"xtask\"," {
            lines.remove(i);
            return true;
        }
        for (from, to) in [
            ("[\"xtask\", ", "["),
            ("[\"xtask\"]", "[]"),
            (", \"xtask\"", ""),
        ] {
            if line.contains(from) {
                lines[i] = line.replacen(from, to, 1);
                return true;
            }
        }
        if line.contains(']') {
            break;
        }
    }
    false
}

/// Adds the `cargo xtask` alias to `.cargo/config.toml`.
fn add_alias(
    root: &Path,
    force: bool,
    xtask_is_castoffs: bool,
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    let relative = ".cargo/config.toml";
    let path = root.join(relative);
    let Ok(text) = fs::read_to_string(&path) else {
        return write_whole(
            root,
            relative,
            &format!(
                "# {MARK}: the `cargo xtask` alias (add your own settings below).\n[alias]\n{ALIAS}\n"
            ),
            force,
            changes,
        );
    };
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let existing = lines.iter().position(|line| {
        line.trim_start()
            .strip_prefix("xtask")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    });
    match existing {
        Some(index) if lines[index].trim() == ALIAS => {
            changes.push(Change::Unchanged(relative.to_owned()));
            return Ok(());
        }
        Some(index)
            if !(force
                || (xtask_is_castoffs && EARLIER_ALIASES.contains(&lines[index].trim()))) =>
        {
            changes.push(Change::Kept(relative.to_owned()));
            return Ok(());
        }
        Some(index) => lines[index] = ALIAS.to_owned(),
        None => match lines.iter().position(|line| line.trim() == "[alias]") {
            Some(index) => lines.insert(index + 1, ALIAS.to_owned()),
            None => {
                lines.push(String::new());
                lines.push("[alias]".to_owned());
                lines.push(ALIAS.to_owned());
            }
        },
    }
    let mut new_text = lines.join("\n");
    new_text.push('\n');
    fs::write(&path, new_text).with_context(|| format!("could not write {}", path.display()))?;
    changes.push(Change::Added {
        path: relative.to_owned(),
        what: "the `cargo xtask` alias".to_owned(),
        lines: vec![ALIAS.to_owned()],
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(before: &str) -> String {
        let dir = std::env::temp_dir().join(format!(
            "castoff-init-exclude-{}-{:x}",
            std::process::id(),
            before.len() * 31 + before.bytes().map(usize::from).sum::<usize>()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("Cargo.toml"), before).unwrap();
        let mut changes = Vec::new();
        exclude_xtask(&dir, &mut changes).unwrap();
        let after = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        after
    }

    #[test]
    fn the_xtask_is_excluded_from_the_project_s_workspace() {
        for (before, after) in [
            // No [workspace]: nothing to keep it out of.
            ("[package]\nname = \"a\"\n", "[package]\nname = \"a\"\n"),
            (
                "[workspace]\nmembers = [\"cli\"]\n",
                "[workspace]\nmembers = [\"cli\"]\nexclude = [\"xtask\"]\n",
            ),
            (
                "[workspace]\nmembers = [\n  \"cli\",\n]\nresolver = \"2\"\n",
                "[workspace]\nmembers = [\n  \"cli\",\n]\nexclude = [\"xtask\"]\nresolver = \"2\"\n",
            ),
            // An earlier castoff's member entry goes; an exclude list keeps its indentation.
            (
                "[workspace]\nmembers = [\"xtask\", \"cli\"]\nexclude = [\n\t\"old\",\n]\n",
                "[workspace]\nmembers = [\"cli\"]\nexclude = [\n\t\"xtask\",\n\t\"old\",\n]\n",
            ),
            (
                "[workspace]\nmembers = [\n    \"xtask\",\n    \"cli\",\n]\nexclude = [\"old\"]\n",
                "[workspace]\nmembers = [\n    \"cli\",\n]\nexclude = [\"xtask\", \"old\"]\n",
            ),
            (
                "[package]\nname = \"a\"\n\n[workspace]\nmembers = [\"xtask\"]\n",
                "[package]\nname = \"a\"\n\n[workspace]\nmembers = []\nexclude = [\"xtask\"]\n",
            ),
            // Already excluded: untouched.
            (
                "[workspace]\nexclude = [\"xtask\"]\n",
                "[workspace]\nexclude = [\"xtask\"]\n",
            ),
        ] {
            assert_eq!(excluded(before), after, "from:\n{before}");
        }
    }

    #[test]
    fn the_workflow_for_the_default_pattern_is_castoffs_own() {
        let default = castoff_plan::tag::TagPattern::default().github_tag_filter("any");
        assert_eq!(release_workflow(&[default]), RELEASE_WORKFLOW);
        let filters = [
            "cli-v[0-9]+.[0-9]+.[0-9]+*".to_owned(),
            "c\\+\\+[0-9]+.[0-9]+.[0-9]+*".to_owned(),
        ];
        let workflow = release_workflow(&filters);
        assert!(
            workflow.contains(
                "    tags:\n      - \"cli-v[0-9]+.[0-9]+.[0-9]+*\"\n      - \"c\\\\+\\\\+[0-9]+.[0-9]+.[0-9]+*\"\n\n"
            ),
            "{workflow}"
        );
    }
}
