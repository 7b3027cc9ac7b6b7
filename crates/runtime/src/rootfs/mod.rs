//! Skeleton: see `lib.rs` for this module's role. (Being written.)

/// The name of one of this module's child step codes (see [`crate::sys`]).
pub fn step_name(_step: u32) -> &'static str {
    "rootfs step"
}
