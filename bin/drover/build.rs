//! Link `drover` as a position-dependent executable (see docs/decisions/0008-non-pie-binary.md).
//!
//! A PIE's `.data.rel.ro` (vtables and tables of `&'static str`, ~0.85 MB here) is relocated by
//! the dynamic loader at every start, which turns those pages into private dirty memory in every
//! process: one container supervisor each. Linked non-PIE, the linker resolves them once and the
//! pages stay clean and shared with the file.
fn main() {
    println!("cargo:rustc-link-arg-bin=drover=-no-pie");
}
