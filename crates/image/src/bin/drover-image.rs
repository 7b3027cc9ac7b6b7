//! `drover-image`: the `drover image` commands as a small binary of this crate, so the crate's
//! own integration tests can spawn (and SIGKILL) the real CLI.

use clap::Parser;

#[derive(Parser)]
#[command(name = "drover-image", about = "The same commands as `drover image`")]
struct Cli {
    #[command(subcommand)]
    command: drover_image::cli::ImageCommand,
}

fn main() -> std::process::ExitCode {
    drover_image::cli::run(Cli::parse().command)
}
