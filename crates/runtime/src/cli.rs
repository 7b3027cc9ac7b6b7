//! runc's command line: `drover runtime [global flags] <verb> [flags] <id>`. (Being written.)

use std::ffi::OsString;

/// Runs one runtime command and returns the process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    if args.first().is_some_and(|a| a == "--version" || a == "-v") {
        println!("drover-runtime {}", env!("CARGO_PKG_VERSION"));
        println!("spec: 1.2.0");
        return 0;
    }
    eprintln!("drover runtime: not implemented yet");
    1
}
