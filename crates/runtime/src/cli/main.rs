//! `drover-runtime`: the runtime's CLI as a small standalone executable (the same
//! [`drover_runtime::cli::main`] that `drover runtime` runs). Integration tests and benchmarks
//! use it without building the whole `drover` binary.

fn main() {
    let code = drover_runtime::cli::main(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
