//! Binaries built elsewhere: `dist --prebuilt <target>[:<bin>]=<path>` and
//! `dist --prebuilt-dir DIR` (`DIR/<target>/<bin>[.exe]`). [`resolve`] turns the command line
//! into [`Prebuilt`] binaries (which app, binary and target each file is); [`take`] checks each
//! one against its target's headers and reads its digest, before anything is built or written.
//! A target is supplied whole or not at all: cargo builds nothing for a supplied target, and
//! everything for the others.
//!
//! The paths are the user's own (their build output, a folder downloaded from another CI), so
//! symbolic links are followed, unlike in files castoff reads from a dist it did not write; the
//! file at the end must still be a regular file of at most [`MAX_BINARY_BYTES`], never a FIFO,
//! a device or a directory, read through `castoff_archive::foreign`.

use std::fmt;
use std::fs;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};

use castoff_archive::digest;
use castoff_plan::{AppId, Release, Target};
use castoff_wheel::WheelError;

use crate::cargo::{Binaries, BuiltBinaries};
use crate::report::Reporter;

/// The largest binary castoff accepts (a real one with debug info can reach a few hundred
/// MiB); anything larger is refused before it is read.
pub(crate) const MAX_BINARY_BYTES: u64 = 4 << 30;

/// One binary built elsewhere, for one app and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prebuilt {
    /// The released package the binary belongs to.
    pub package: String,
    /// The binary's name (the `[[bin]]` name, without `.exe`).
    pub bin: String,
    pub target: &'static Target,
    /// The file, as the user named it.
    pub path: PathBuf,
}

/// How a target's binaries came to `dist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BinarySource {
    /// Cargo's output directory (built now, or before with `--no-build`).
    Cargo,
    /// Supplied: the size and SHA-256 of each binary, in the order of its paths, read when it
    /// was checked (the cache key, and the proof that what was packaged is what was checked).
    Prebuilt(Vec<(u64, [u8; 32])>),
}

/// The supplied binaries cannot be used: every problem found, each with its hint. Nothing was
/// built or written. The CLI maps it to the usage exit code.
#[derive(Debug)]
pub struct PrebuiltError {
    problems: Vec<Problem>,
}

#[derive(Debug)]
struct Problem {
    text: String,
    hint: String,
}

impl PrebuiltError {
    /// What to do about it: the problem's own hint when there is one; with several, each item
    /// of the message carries its own, and this one says what happened.
    pub fn hint(&self) -> String {
        match self.problems.as_slice() {
            [single] => single.hint.clone(),
            _ => "fix every problem above and run `dist` again; nothing was built and the dist directory was not touched".to_owned(),
        }
    }
}

impl fmt::Display for PrebuiltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [single] => f.write_str(&single.text),
            problems => {
                write!(
                    f,
                    "cannot use the prebuilt binaries ({} problems):",
                    problems.len()
                )?;
                for problem in problems {
                    write!(
                        f,
                        "\n- {}\n  hint: {}",
                        problem.text.replace('\n', "\n  "),
                        problem.hint.replace('\n', "\n  ")
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PrebuiltError {}

/// What the command line says about prebuilt binaries.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// Every `--prebuilt` value, as given.
    pub(crate) specs: &'a [String],
    pub(crate) dir: Option<&'a Path>,
    /// `--target`; empty when none is given (then the supplied targets are selected).
    pub(crate) selected: &'a [String],
}

/// Where one supplied file was named: a `--prebuilt` value or a file in `--prebuilt-dir`.
#[derive(Debug, Clone)]
enum Origin {
    Spec(String),
    Dir,
}

/// A supplied file before it is matched to an app: its target, and what names its binary.
#[derive(Debug)]
struct Offer {
    origin: Origin,
    target: &'static Target,
    bin: BinName,
    path: PathBuf,
}

/// What says which binary a supplied file is.
#[derive(Debug)]
enum BinName {
    /// `--prebuilt <target>=<path>`: the release's only binary for the target.
    Unnamed,
    /// `--prebuilt <target>:<bin>=<path>`.
    Named(String),
    /// A file of `--prebuilt-dir`: named like the binary (`<bin>.exe` on Windows).
    File(String),
}

impl Offer {
    /// How messages name it: the `--prebuilt` value, or the file in the directory.
    fn shown(&self) -> String {
        match &self.origin {
            Origin::Spec(spec) => format!("`--prebuilt {spec}`"),
            Origin::Dir => self.path.display().to_string(),
        }
    }
}

/// Matches every `--prebuilt` value and every file of `--prebuilt-dir` to an app, a binary and
/// a target of `all` (the release of every configured target), and checks each file's
/// headers against its target. Every problem is reported at once.
pub(crate) fn resolve(
    all: &Release,
    request: &Request<'_>,
) -> Result<Vec<Prebuilt>, PrebuiltError> {
    let mut problems = Vec::new();
    let mut offers = Vec::new();
    for spec in request.specs {
        if let Some(offer) = parse_spec(spec, &mut problems) {
            offers.push(offer);
        }
    }
    if let Some(dir) = request.dir {
        read_dir(dir, &mut offers, &mut problems);
    }

    let mut resolved: Vec<(Prebuilt, String)> = Vec::new();
    for offer in offers {
        let triple = offer.target.triple;
        let shown = offer.shown();
        let shown_target = match &offer.origin {
            Origin::Spec(_) => shown.clone(),
            Origin::Dir => offer
                .path
                .parent()
                .map_or_else(|| shown.clone(), |dir| dir.display().to_string()),
        };
        let removal = match &offer.origin {
            Origin::Spec(_) => "leave out this --prebuilt".to_owned(),
            Origin::Dir => format!("remove {shown_target}"),
        };
        let apps: Vec<(AppId, &castoff_plan::App)> = all
            .apps
            .iter()
            .enumerate()
            .filter(|(_, app)| app.targets.contains(&offer.target))
            .map(|(index, app)| (AppId(index), app))
            .collect();
        if apps.is_empty() {
            push_unique(
                &mut problems,
                format!("{shown_target}: no released package is built for `{triple}`"),
                format!(
                    "add `{triple}` to `targets` in [workspace.metadata.castoff] (or the package's), or {removal}"
                ),
            );
            continue;
        }
        if !request.selected.is_empty() && !request.selected.iter().any(|t| t == triple) {
            let selected = request
                .selected
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let dir_note = match &offer.origin {
                Origin::Spec(_) => "",
                Origin::Dir => {
                    " (with --target, --prebuilt-dir may hold only the selected targets)"
                }
            };
            push_unique(
                &mut problems,
                format!("{shown_target}: --target selects {selected}, not `{triple}`"),
                format!("add `--target {triple}`, or {removal}{dir_note}"),
            );
            continue;
        }
        let candidates: Vec<(&castoff_plan::App, &String)> = apps
            .iter()
            .flat_map(|(_, app)| app.bins.iter().map(move |bin| (*app, bin)))
            .collect();
        let names = candidates
            .iter()
            .map(|(_, bin)| format!("`{bin}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let chosen = match &offer.bin {
            BinName::Unnamed => match candidates.as_slice() {
                [single] => *single,
                _ => {
                    let first = candidates[0].1;
                    problems.push(Problem {
                        text: format!(
                            "{shown} does not say which binary it is: the release has {} binaries for `{triple}` ({names})",
                            candidates.len()
                        ),
                        hint: format!(
                            "name the binary: `--prebuilt {triple}:{first}={}`",
                            offer.path.display()
                        ),
                    });
                    continue;
                }
            },
            BinName::Named(name) | BinName::File(name) => {
                let matching: Vec<&(&castoff_plan::App, &String)> = candidates
                    .iter()
                    .filter(|(_, bin)| match &offer.bin {
                        BinName::File(_) => offer.target.executable_name(bin) == *name,
                        _ => *bin == name,
                    })
                    .collect();
                match matching.as_slice() {
                    [single] => **single,
                    [] => {
                        let hint = match &offer.origin {
                            Origin::Spec(_) => {
                                "use one of those names: the [[bin]] name, without `.exe`"
                                    .to_owned()
                            }
                            Origin::Dir => format!(
                                "remove it; a binary's file is named like the binary ({})",
                                candidates
                                    .iter()
                                    .map(|(_, bin)| format!(
                                        "`{}`",
                                        offer.target.executable_name(bin)
                                    ))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        let text = match &offer.origin {
                            Origin::Spec(_) => format!(
                                "{shown}: the release has no binary `{name}` for `{triple}` (its binaries: {names})"
                            ),
                            Origin::Dir => format!(
                                "{shown} is not a binary of the release for `{triple}` (its binaries: {names})"
                            ),
                        };
                        problems.push(Problem { text, hint });
                        continue;
                    }
                    several => {
                        let packages: Vec<String> = several
                            .iter()
                            .map(|(app, _)| format!("`{}`", app.package.name))
                            .collect();
                        let options: Vec<String> = several
                            .iter()
                            .map(|(app, _)| format!("`-p {}`", app.package.name))
                            .collect();
                        problems.push(Problem {
                            text: format!(
                                "{shown}: binary `{}` belongs to {} packages: {}",
                                several[0].1,
                                several.len(),
                                packages.join(", ")
                            ),
                            hint: format!(
                                "release one of them at a time: {}",
                                options.join(" or ")
                            ),
                        });
                        continue;
                    }
                }
            }
        };
        let (app, bin) = chosen;
        let prebuilt = Prebuilt {
            package: app.package.name.clone(),
            bin: bin.clone(),
            target: offer.target,
            path: offer.path.clone(),
        };
        if let Some((_, other)) = resolved.iter().find(|(p, _)| {
            p.package == prebuilt.package && p.bin == prebuilt.bin && p.target == prebuilt.target
        }) {
            problems.push(Problem {
                text: format!(
                    "binary `{bin}` of package `{}` for `{triple}` is given twice: {other} and {shown}",
                    app.package.name
                ),
                hint: "pass each binary once".to_owned(),
            });
            continue;
        }
        resolved.push((prebuilt, shown));
    }
    let prebuilt: Vec<Prebuilt> = resolved.into_iter().map(|(p, _)| p).collect();
    check_whole_targets(all, &prebuilt, &mut problems);
    // The files themselves: headers only here; `take` reads them whole.
    for supplied in &prebuilt {
        if let Err(problem) = open_checked(supplied) {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        Ok(prebuilt)
    } else {
        Err(PrebuiltError { problems })
    }
}

/// Adds a problem unless the same one is already there (every file of a directory for an
/// unplanned target has the same problem: the directory).
fn push_unique(problems: &mut Vec<Problem>, text: String, hint: String) {
    if !problems.iter().any(|problem| problem.text == text) {
        problems.push(Problem { text, hint });
    }
}

/// `<target>=<path>` or `<target>:<bin>=<path>`.
fn parse_spec(spec: &str, problems: &mut Vec<Problem>) -> Option<Offer> {
    let shown = format!("`--prebuilt {spec}`");
    let form = "`--prebuilt <target>=<path>` (an app with one binary) or `--prebuilt <target>:<bin>=<path>`, e.g. `--prebuilt x86_64-unknown-linux-gnu=build/greeter`";
    let Some((left, path)) = spec.split_once('=') else {
        problems.push(Problem {
            text: format!("{shown} names no file: it has no `=`"),
            hint: format!("write {form}"),
        });
        return None;
    };
    let (triple, bin) = match left.split_once(':') {
        Some((triple, bin)) => (triple, Some(bin)),
        None => (left, None),
    };
    if path.is_empty() || triple.is_empty() || bin.is_some_and(str::is_empty) {
        problems.push(Problem {
            text: format!("{shown} has an empty target, binary or path"),
            hint: format!("write {form}"),
        });
        return None;
    }
    match triple.parse::<&'static Target>() {
        Ok(target) => Some(Offer {
            origin: Origin::Spec(spec.to_owned()),
            target,
            bin: bin.map_or(BinName::Unnamed, |bin| BinName::Named(bin.to_owned())),
            path: PathBuf::from(path),
        }),
        Err(unknown) => {
            problems.push(Problem {
                text: format!("{shown}: unknown target `{triple}`"),
                hint: unknown.hint(),
            });
            None
        }
    }
}

/// Every file of `DIR/<target>/` as an offer, in name order; anything that is not a target
/// directory or a file in one is a problem (a folder from another CI holding more than castoff
/// would package must not pass unnoticed).
fn read_dir(dir: &Path, offers: &mut Vec<Offer>, problems: &mut Vec<Problem>) {
    let shown = dir.display();
    let layout = "--prebuilt-dir holds one directory per target with the binaries in it: DIR/<target>/<bin> (`<bin>.exe` on Windows)";
    let entries = match sorted_entries(dir) {
        Ok(entries) => entries,
        Err(error) => {
            problems.push(Problem {
                text: format!("--prebuilt-dir {shown}: cannot list it: {error}"),
                hint: format!("pass a directory; {layout}"),
            });
            return;
        }
    };
    if entries.is_empty() {
        problems.push(Problem {
            text: format!("--prebuilt-dir {shown} is empty"),
            hint: format!("{layout}; drop --prebuilt-dir to build every target with cargo"),
        });
    }
    for (name, path) in entries {
        // The user's folder: a link to a directory counts as the directory.
        if !path.is_dir() {
            problems.push(Problem {
                text: format!("{} is not a target directory", path.display()),
                hint: format!("remove it; {layout}"),
            });
            continue;
        }
        let target = match name.parse::<&'static Target>() {
            Ok(target) => target,
            Err(unknown) => {
                problems.push(Problem {
                    text: format!("{}: `{name}` is not a target castoff knows", path.display()),
                    hint: format!("remove it, or name it after its target; {}", unknown.hint()),
                });
                continue;
            }
        };
        let files = match sorted_entries(&path) {
            Ok(files) => files,
            Err(error) => {
                problems.push(Problem {
                    text: format!("cannot list {}: {error}", path.display()),
                    hint: "check its permissions".to_owned(),
                });
                continue;
            }
        };
        if files.is_empty() {
            problems.push(Problem {
                text: format!("{} holds no binary", path.display()),
                hint: format!("remove it to build `{name}` with cargo; {layout}"),
            });
        }
        for (file_name, file) in files {
            offers.push(Offer {
                origin: Origin::Dir,
                target,
                bin: BinName::File(file_name),
                path: file,
            });
        }
    }
}

/// The entries of a directory by name, names as text (a name that is not UTF-8 is kept
/// lossily: it matches no target or binary and is reported).
fn sorted_entries(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        entries.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    entries.sort();
    Ok(entries)
}

/// A supplied target is supplied whole: every binary of every app built for it, since cargo
/// builds nothing for it.
fn check_whole_targets(release: &Release, prebuilt: &[Prebuilt], problems: &mut Vec<Problem>) {
    let mut targets: Vec<&'static Target> = Vec::new();
    for supplied in prebuilt {
        if !targets.contains(&supplied.target) {
            targets.push(supplied.target);
        }
    }
    for target in targets {
        let triple = target.triple;
        for app in release
            .apps
            .iter()
            .filter(|app| app.targets.contains(&target))
        {
            let missing: Vec<&String> = app
                .bins
                .iter()
                .filter(|bin| {
                    !prebuilt.iter().any(|p| {
                        p.target == target && p.package == app.package.name && &p.bin == *bin
                    })
                })
                .collect();
            if missing.is_empty() {
                continue;
            }
            let list = missing
                .iter()
                .map(|bin| format!("`{bin}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let (noun, pronoun) = if missing.len() == 1 {
                ("binary", "it")
            } else {
                ("binaries", "them")
            };
            let example = missing[0];
            problems.push(Problem {
                text: format!(
                    "`{triple}` is supplied only in part: {noun} {list} of package `{}` {} missing",
                    app.package.name,
                    if missing.len() == 1 { "is" } else { "are" }
                ),
                hint: format!(
                    "supply {pronoun} too (`--prebuilt {triple}:{example}=<path>`, or DIR/{triple}/{}), or supply no binary for `{triple}` so cargo builds them all, or leave the package out with -p",
                    target.executable_name(example)
                ),
            });
        }
    }
}

/// The supplied file, opened: links followed (the user's own path), then only a regular file
/// of at most [`MAX_BINARY_BYTES`], whose headers say it runs on its target. Returns it with
/// its resolved path and size.
fn open_checked(prebuilt: &Prebuilt) -> Result<(fs::File, PathBuf, u64), Problem> {
    let shown = prebuilt.path.display();
    let triple = prebuilt.target.triple;
    let resolved =
        fs::canonicalize(&prebuilt.path).map_err(|error| {
            Problem {
        text: format!("cannot read {shown} (binary `{}` for `{triple}`): {error}", prebuilt.bin),
        hint: "pass the path of the compiled binary (relative paths start at the current directory)"
            .to_owned(),
    }
        })?;
    let (file, size) = castoff_archive::foreign::open_regular(&resolved, MAX_BINARY_BYTES)
        .map_err(|error| {
            let shown_link = if resolved == prebuilt.path {
                String::new()
            } else {
                format!(" (a link to {})", resolved.display())
            };
            Problem {
                text: format!("cannot use {shown}{shown_link} as binary `{}` for `{triple}`: {error}", prebuilt.bin),
                hint: "pass the compiled binary itself: a regular file, not a FIFO, device or directory".to_owned(),
            }
        })?;
    match castoff_wheel::platform::inspect_file(&file, &prebuilt.path, prebuilt.target) {
        Ok(_) => Ok((file, resolved, size)),
        // What PyPI's platform policies allow is the wheel's business, as for a binary cargo
        // built; here only what the binary is.
        Err(WheelError::LibraryNotAllowed { .. } | WheelError::SymbolVersionNotAllowed { .. }) => {
            Ok((file, resolved, size))
        }
        Err(error) => {
            let hint = error.hint().unwrap_or_default();
            Err(Problem {
                text: error.to_string(),
                hint,
            })
        }
    }
}

/// The supplied binaries of `release`, checked (headers, kind, size) and read whole for their
/// digests, as [`BuiltBinaries`] that `cargo::binaries` packages instead of building. Runs
/// before any build and before anything is written; every problem is reported at once.
pub(crate) fn take(
    release: &Release,
    prebuilt: &[Prebuilt],
    reporter: &dyn Reporter,
) -> Result<Binaries, PrebuiltError> {
    let mut problems = Vec::new();
    for supplied in prebuilt {
        let planned = release.apps.iter().any(|app| {
            app.package.name == supplied.package
                && app.targets.contains(&supplied.target)
                && app.bins.contains(&supplied.bin)
        });
        if !planned {
            problems.push(Problem {
                text: format!(
                    "{}: this release has no binary `{}` of package `{}` for `{}`",
                    supplied.path.display(),
                    supplied.bin,
                    supplied.package,
                    supplied.target.triple
                ),
                hint: "supply binaries only for the packages and targets being released (`-p`, `--target`)".to_owned(),
            });
        }
    }
    check_whole_targets(release, prebuilt, &mut problems);
    let mut read: Vec<(&Prebuilt, PathBuf, u64, [u8; 32])> = Vec::new();
    for supplied in prebuilt {
        match open_checked(supplied).and_then(|(mut file, resolved, size)| {
            // From the start: reading the headers moved the position.
            let (sha256, length) = file
                .seek(std::io::SeekFrom::Start(0))
                .and_then(|_| digest::sha256_reader(file.take(size.saturating_add(1))))
                .map_err(|error| Problem {
                    text: format!("cannot read {}: {error}", supplied.path.display()),
                    hint: "pass the path of the compiled binary".to_owned(),
                })?;
            if length != size {
                return Err(Problem {
                    text: format!(
                        "{} changed while castoff read it ({size} bytes, then {length})",
                        supplied.path.display()
                    ),
                    hint: "run `dist` again once the file is complete".to_owned(),
                });
            }
            Ok((resolved, size, sha256))
        }) {
            Ok((resolved, size, sha256)) => read.push((supplied, resolved, size, sha256)),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        return Err(PrebuiltError { problems });
    }
    // One entry per app and target, its binaries in the app's order (what the builders take).
    let mut binaries: Binaries = Vec::new();
    for (index, app) in release.apps.iter().enumerate() {
        for &target in &app.targets {
            let mut paths = Vec::new();
            let mut digests = Vec::new();
            for bin in &app.bins {
                if let Some((supplied, resolved, size, sha256)) = read.iter().find(|(p, ..)| {
                    p.package == app.package.name && p.target == target && &p.bin == bin
                }) {
                    reporter.line(&format!(
                        "prebuilt {bin} for {}: {} ({size} bytes, sha256:{})",
                        target.triple,
                        supplied.path.display(),
                        digest::hex(sha256)
                    ));
                    paths.push((bin.clone(), resolved.clone()));
                    digests.push((*size, *sha256));
                }
            }
            if !paths.is_empty() {
                binaries.push(BuiltBinaries {
                    app: AppId(index),
                    target: target.triple,
                    paths,
                    source: BinarySource::Prebuilt(digests),
                });
            }
        }
    }
    Ok(binaries)
}
