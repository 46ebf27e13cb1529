//! `berth completion bash|zsh|fish`: prints the shell's completion script,
//! generated from the same clap definition that parses the command line, so
//! it never lists a verb or flag berth does not have.

use std::process::ExitCode;

use clap::{CommandFactory, ValueEnum};

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for
    pub shell: Shell,
}

/// The shells berth completes for on Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    print!("{}", script(args.shell));
    Ok(ExitCode::SUCCESS)
}

/// The completion script for `shell`, as text.
pub fn script(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell.generator(), &mut Cli::command(), "berth", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_names_the_verbs_and_not_the_hidden_shim() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = script(shell);
            for verb in ["apply", "image", "completion", "man"] {
                assert!(text.contains(verb), "{shell:?} script lacks {verb}");
            }
        }
    }
}
