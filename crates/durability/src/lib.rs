//! Test support for Drover's durability proofs (`docs/durability.md`).
//!
//! - [`powerloss`]: a SQLite VFS that simulates a power cut: data written but not yet fsynced is
//!   dropped, per file (database, WAL; the `-shm` index is never durable).
//! - [`linearizable`]: a per-key linearizability checker for histories of concurrent reads,
//!   creates and compare-and-swap writes, with operations of unknown outcome.
//! - [`watch`]: a validator of watch streams against the store's history (ordered, gap-free,
//!   duplicate-free, or an explicit "too old" followed by a relist).
//!
//! Every checker here has tests that feed it a broken history and assert that it fails.

pub mod linearizable;
pub mod powerloss;
pub mod replay;
pub mod watch;
