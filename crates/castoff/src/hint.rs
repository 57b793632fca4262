//! Hints as data. Every error castoff shows ends with what to do about it; that hint travels
//! as a field of its own from where the problem is found to where it is shown, never as a
//! `hint:` line inside a message to be parsed out again. castoff's own errors are
//! [`Hinted`]; each library crate's error type has a `hint()` method; [`hint_of`] asks an
//! error of any of them for its hint.

use std::error::Error;
use std::fmt;

/// A problem castoff found, what to do about it, and what caused it (if anything did).
/// Its message is the problem; the hint is [`Hinted::hint`].
#[derive(Debug)]
pub struct Hinted {
    problem: String,
    /// What to do, first things first.
    hints: Vec<String>,
    source: Option<anyhow::Error>,
    /// A mistake in what the user gave castoff (configuration, command line, files they
    /// supplied), found before any work: the command line exits with the usage code.
    bad_input: bool,
}

impl Hinted {
    pub fn new(problem: impl Into<String>, hint: impl Into<String>) -> Hinted {
        Hinted {
            problem: problem.into(),
            hints: vec![hint.into()],
            source: None,
            bad_input: false,
        }
    }

    /// The same problem, marked as the user's input to fix (exit code 2 on the command line).
    pub fn bad_input(mut self) -> Hinted {
        self.bad_input = true;
        self
    }

    /// A problem that comes with the hints of another error (which it replaces in the
    /// message), then its own.
    pub fn keeping_hints_of(
        other: &(dyn Error + 'static),
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Hinted {
        let mut hinted = Hinted::new(problem, hint);
        hinted.hints.splice(0..0, hints_of(other));
        hinted
    }

    /// The same problem, caused by `source` (shown as a `caused by:` line; its own hints are
    /// found through it, whatever its type).
    pub fn because(mut self, source: impl Into<anyhow::Error>) -> Hinted {
        self.source = Some(source.into());
        self
    }

    /// The same problem, `hints` (of the errors behind it) shown before its own.
    pub fn after(mut self, hints: Vec<String>) -> Hinted {
        self.hints.splice(0..0, hints);
        self
    }

    /// What to do about it (the first hint, when there are several; a list of problems made
    /// by [`all_at_once`] has its hints in its message).
    pub fn hint(&self) -> &str {
        self.hints.first().map_or("", String::as_str)
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)
    }
}

impl Error for Hinted {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source
            .as_ref()
            .map(|source| -> &(dyn Error + 'static) { source.as_ref() })
    }
}

/// The hints of one error (not of its causes), usually one: castoff's own, or a library
/// crate's.
pub fn hints_of(error: &(dyn Error + 'static)) -> Vec<String> {
    if let Some(error) = error.downcast_ref::<Hinted>() {
        return error.hints.clone();
    }
    if let Some(error) = error.downcast_ref::<castoff_oci::OciError>() {
        return error.hints();
    }
    if let Some(error) = error.downcast_ref::<crate::publish::RefusedRelease>() {
        return hints_of(error.refusal());
    }
    hint_of(error).into_iter().collect()
}

/// The hint of one error of a library crate or of castoff (see [`hints_of`]).
fn hint_of(error: &(dyn Error + 'static)) -> Option<String> {
    if let Some(error) = error.downcast_ref::<crate::publish::ConflictError>() {
        return Some(error.hint().to_owned());
    }
    if let Some(error) = error.downcast_ref::<crate::stage::RefusedDistDir>() {
        return Some(error.hint().to_owned());
    }
    if let Some(error) = error.downcast_ref::<crate::prebuilt::PrebuiltError>() {
        return Some(error.hint());
    }
    if let Some(error) = error.downcast_ref::<castoff_plan::PlanError>() {
        return error.hint().map(str::to_owned);
    }
    if let Some(error) = error.downcast_ref::<castoff_plan::ConfigError>() {
        return Some(error.hint.clone());
    }
    if let Some(error) = error.downcast_ref::<castoff_plan::version::VersionError>() {
        return Some(error.hint.clone());
    }
    if let Some(error) = error.downcast_ref::<castoff_plan::target::UnknownTarget>() {
        return Some(error.hint());
    }
    if let Some(error) = error.downcast_ref::<castoff_plan::manifest::ManifestError>() {
        return Some(error.hint().to_owned());
    }
    if let Some(error) = error.downcast_ref::<castoff_archive::tar::TarError>() {
        return error.hint();
    }
    if let Some(error) = error.downcast_ref::<castoff_wheel::WheelError>() {
        return error.hint();
    }
    if let Some(error) = error.downcast_ref::<castoff_wheel::filename::InvalidWheelFileName>() {
        return Some(error.hint().to_owned());
    }
    if let Some(error) = error.downcast_ref::<castoff_npm::NpmError>() {
        return error.hint();
    }
    if let Some(error) = error.downcast_ref::<castoff_registry::RegistryError>() {
        return error.hint();
    }
    // A registry error kept as a boxed cause (`RegistryError::Anonymous`): thiserror hands
    // out the box itself as the source.
    if let Some(error) = error.downcast_ref::<Box<castoff_registry::RegistryError>>() {
        return error.hint();
    }
    None
}

/// An error and its causes, one after the other, each followed by its hint line:
/// `problem\nhint: …\ncause\nhint: …` (what a report records, and what lists of problems
/// show).
pub fn render(error: &(dyn Error + 'static)) -> String {
    render_with(error, "hint: ")
}

/// How hints start in a list of problems (`cannot publish: 3 problem(s) …`): indented under
/// their problem.
pub const LIST_HINT: &str = "    hint: ";

/// Problems listed under a heading, one per item at two spaces: an item's hints
/// ([`LIST_HINT`]) and the lines of its causes both sit under it, at four.
pub fn list_items(problems: &[String]) -> String {
    problems
        .iter()
        .map(|problem| {
            problem
                .lines()
                .enumerate()
                .map(|(index, line)| {
                    if index == 0 || line.starts_with(LIST_HINT) {
                        line.to_owned()
                    } else {
                        format!("    {line}")
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// [`render`], each hint line starting with `hint_prefix` (indented hints in a list).
pub fn render_with(error: &(dyn Error + 'static), hint_prefix: &str) -> String {
    let mut parts = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        next = error.source();
        parts.push(error.to_string());
        for hint in hints_of(error) {
            parts.push(format!("{hint_prefix}{hint}"));
        }
    }
    parts.join("\n")
}

/// Whether an error, or one of its causes, is the user's input to fix ([`Hinted::bad_input`]).
pub fn is_bad_input(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<Hinted>()
            .is_some_and(|hinted| hinted.bad_input)
    })
}

/// Every problem at once: `Ok` when there is none, the problem itself when there is one, and
/// when there are several, one error listing each with its hints indented under it, behind
/// `heading` (`cannot build: 3 problems found before any work started`); bad input when any
/// of them is.
pub fn all_at_once(heading: &str, problems: Vec<Hinted>) -> anyhow::Result<()> {
    let mut problems = problems;
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0).into()),
        count => {
            let listed: Vec<String> = problems
                .iter()
                .map(|problem| render_with(problem, LIST_HINT).replace('\n', "\n  "))
                .collect();
            Err(Hinted {
                problem: format!(
                    "{heading}: {count} problems found before any work started:\n  {}",
                    listed.join("\n  ")
                ),
                hints: Vec::new(),
                source: None,
                bad_input: problems.iter().any(|problem| problem.bad_input),
            }
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_found_through_every_cause() {
        let inner = anyhow::Error::new(Hinted::new("inner problem", "inner hint"));
        let outer = anyhow::Error::new(Hinted::new("outer problem", "outer hint").because(inner));
        assert_eq!(
            render(&*outer),
            "outer problem\nhint: outer hint\ninner problem\nhint: inner hint"
        );
        let library = castoff_plan::target::UnknownTarget {
            triple: "x".to_owned(),
        };
        let wrapped = anyhow::Error::new(Hinted::new("outer", "first").because(library));
        let text = render_with(&*wrapped, "  > ");
        assert!(
            text.starts_with("outer\n  > first\nunknown target `x`\n  > supported targets are: ")
        );
    }

    #[test]
    fn listed_problems_keep_their_causes_under_them() {
        let problems = vec![
            format!("image r/x: no credentials\nr/x: GET answered 401\n{LIST_HINT}log in"),
            "npm (a): not logged in".to_owned(),
        ];
        assert_eq!(
            format!("problems:\n  {}", list_items(&problems)),
            "problems:\n  image r/x: no credentials\n    r/x: GET answered 401\n    hint: log in\n  npm (a): not logged in"
        );
    }

    #[test]
    fn a_boxed_registry_cause_keeps_its_hint() {
        let inner = castoff_registry::RegistryError::Setup {
            message: "inner".to_owned(),
            hint: "inner hint".to_owned(),
        };
        let anonymous = castoff_registry::RegistryError::Anonymous {
            note: None,
            source: Box::new(inner),
        };
        assert_eq!(
            render(&anonymous),
            "no credentials were found for this registry\ninner\nhint: inner hint"
        );
    }

    #[test]
    fn a_problem_can_keep_the_hints_of_the_error_it_replaces() {
        let library = castoff_plan::target::UnknownTarget {
            triple: "x".to_owned(),
        };
        let hinted = Hinted::keeping_hints_of(&library, "outer", "then this");
        let hints = hints_of(&hinted);
        assert_eq!(hints.len(), 2);
        assert!(hints[0].starts_with("supported targets are: "));
        assert_eq!(hints[1], "then this");
    }
}
