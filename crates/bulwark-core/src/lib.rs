//! Domain services of the registry: uploads, pushes, pulls, tags, deletes and garbage
//! collection. It defines the ports it consumes ([`BlobStore`], [`MetadataStore`], [`Clock`])
//! and the one domain [`Error`] that the server maps to OCI error responses.

pub mod clock;
pub mod error;
pub mod gc;
pub mod locks;
pub mod registry;
pub mod store;

pub use clock::{Clock, SystemClock};
pub use error::{Error, Result};
pub use registry::{Registry, RegistryConfig};
pub use store::{BlobStore, ByteStream, MetadataStore};
