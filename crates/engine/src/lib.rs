//! Docker-style single containers on Drover's own runtime, daemonless like podman.
//!
//! `drover run|ps|logs|exec|stop|kill|rm|inspect` keep each container in a directory under
//! `<data-dir>/containers/<id>/` ([`layout`]): its record (what the user asked for), the OCI
//! bundle built from the image config and the flags ([`spec`]), and the status the container's
//! [`supervisor`] writes. The supervisor is a small single-threaded process of our binary
//! (`drover supervise DIR`, in its own session, so it outlives whoever started it): it mounts the
//! overlay rootfs, drives `drover runtime` like conmon drives runc, holds the container's stdio,
//! writes CRI-format logs with rotation ([`logs`]), serves attach clients ([`attach`]), reaps,
//! records the exit code and OOM kills, and applies the restart policy. The CLI ([`cli`]) only
//! reads those files and talks to the supervisor's socket, so a fresh CLI (or agent) re-adopts
//! whatever is running.

pub mod attach;
pub mod cli;
pub mod init;
pub mod layout;
pub mod logs;
pub mod spec;
pub mod supervisor;
pub mod users;
