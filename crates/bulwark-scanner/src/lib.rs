//! Image scanning: package inventory, vulnerability matching and version ordering per ecosystem.

pub mod version;
