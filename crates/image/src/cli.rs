//! `drover image …` (being written).

use std::process::ExitCode;

/// `drover image` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// List images.
    Ls,
}

/// Runs one `drover image` command.
pub fn run(_cmd: ImageCommand) -> ExitCode {
    eprintln!("drover image: not implemented yet");
    ExitCode::FAILURE
}
