//! Shell completion scripts and the man page, generated from the clap definitions
//! (`castoff completions <shell>`, `castoff man`) and shipped in castoff's own per-target
//! archives (`completions/`, `man/man1/castoff.1`).

use clap::CommandFactory as _;
pub use clap_complete::Shell;

use super::args::Cli;

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "castoff", &mut out);
    out
}

/// `castoff.1` in roff, with the exit codes section of `--help`.
pub fn man_page() -> Vec<u8> {
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .expect("rendering into memory cannot fail");
    out
}

/// The files castoff's archives carry besides the binary: `(path in archive, contents)`.
pub fn archive_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("completions/castoff.bash".to_owned(), script(Shell::Bash)),
        ("completions/_castoff".to_owned(), script(Shell::Zsh)),
        ("completions/castoff.fish".to_owned(), script(Shell::Fish)),
        (
            "completions/_castoff.ps1".to_owned(),
            script(Shell::PowerShell),
        ),
        ("man/man1/castoff.1".to_owned(), man_page()),
    ]
}
