//! Image scanning: package inventory, vulnerability matching and version ordering per ecosystem.

pub mod distro;
pub mod image;
pub mod inventory;
pub mod jobs;
pub mod lint;
pub mod report;
pub mod sbom;
pub mod version;
pub mod vulndb;
