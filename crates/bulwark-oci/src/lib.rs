//! The OCI distribution protocol with no I/O: repository names, tags, digests, references,
//! media types, manifest parsing and validation, error codes, `Content-Range`/`Range` headers
//! and the `/v2/` endpoint parser. Everything here is pure and safe on hostile input.

pub mod digest;
pub mod endpoint;
pub mod error;
pub mod manifest;
pub mod media_types;
pub mod name;
pub mod range;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use endpoint::{Endpoint, EndpointError, Method};
pub use error::ErrorCode;
pub use manifest::{Descriptor, ManifestError, ManifestKind, ParsedManifest};
pub use name::{NameError, Reference, RepoName, Tag};
pub use range::{ByteRange, RangeError};
