//! Drover's object model, shared by every component and free of IO.
//!
//! - [`registry`]: the one table of every built-in resource (group, version, kind, plural,
//!   scope, short names, subresources) that discovery, routing and storage are generated from.
//! - [`selector`]: label and field selectors (parse, match).
//! - [`patch`]: JSON merge patch, JSON patch, and strategic merge patch.
//! - [`table`]: server-side printing (the columns `kubectl get` shows).
//! - [`time`]: RFC 3339 timestamps and Go durations as text.

pub mod patch;
pub mod registry;
pub mod selector;
pub mod table;
pub mod time;
