//! The domain error. The server maps each variant to an OCI error code and status once.

use bulwark_oci::{Digest, ErrorCode};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob unknown to registry")]
    BlobUnknown(Digest),
    #[error("upload unknown to registry")]
    UploadUnknown,
    #[error("upload invalid: {0}")]
    UploadInvalid(String),
    #[error("chunk out of order: upload is at offset {expected}")]
    RangeInvalid { expected: u64 },
    #[error("provided digest did not match uploaded content")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("invalid digest: {0}")]
    DigestInvalid(String),
    #[error("unsupported digest algorithm: {0}")]
    DigestUnsupported(String),
    #[error("manifest references {0}, which is unknown to this repository")]
    ManifestBlobUnknown(Digest),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest media type {0:?} is not supported")]
    ManifestUnsupported(String),
    #[error("manifest unknown")]
    ManifestUnknown,
    #[error("manifest is {size} bytes, more than the {limit} allowed")]
    ManifestTooLarge { size: u64, limit: u64 },
    #[error("blob {blob} is referenced by manifest {manifest}; delete the manifest first")]
    BlobInUse { blob: Digest, manifest: Digest },
    #[error("blob exceeds the {limit}-byte limit")]
    BlobTooLarge { limit: u64 },
    #[error("repository name not known to registry")]
    NameUnknown,
    #[error("{0}")]
    SizeInvalid(String),
    #[error("storage error: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("metadata error: {0}")]
    Metadata(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("request body error: {0}")]
    Body(String),
}

impl Error {
    pub fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Storage(Box::new(e))
    }

    pub fn metadata(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Metadata(Box::new(e))
    }

    /// OCI error code and HTTP status for this error.
    pub fn code(&self) -> (ErrorCode, u16) {
        use ErrorCode as C;
        match self {
            Error::BlobUnknown(_) => (C::BlobUnknown, 404),
            Error::UploadUnknown => (C::BlobUploadUnknown, 404),
            Error::UploadInvalid(_) | Error::Body(_) => (C::BlobUploadInvalid, 400),
            Error::RangeInvalid { .. } => (C::BlobUploadInvalid, 416),
            Error::DigestMismatch { .. } | Error::DigestInvalid(_) => (C::DigestInvalid, 400),
            Error::DigestUnsupported(_) => (C::DigestInvalid, 400),
            Error::ManifestBlobUnknown(_) => (C::ManifestBlobUnknown, 400),
            Error::ManifestInvalid(_) => (C::ManifestInvalid, 400),
            Error::ManifestUnsupported(_) => (C::Unsupported, 415),
            Error::ManifestUnknown => (C::ManifestUnknown, 404),
            Error::ManifestTooLarge { .. } => (C::SizeInvalid, 413),
            Error::BlobTooLarge { .. } => (C::SizeInvalid, 413),
            Error::BlobInUse { .. } => (C::Unsupported, 405),
            Error::NameUnknown => (C::NameUnknown, 404),
            Error::SizeInvalid(_) => (C::SizeInvalid, 400),
            Error::Storage(_) | Error::Metadata(_) => (C::Unknown, 500),
        }
    }

    /// Whether details must stay out of the response (logged instead).
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Storage(_) | Error::Metadata(_))
    }
}

impl From<bulwark_oci::ManifestError> for Error {
    fn from(e: bulwark_oci::ManifestError) -> Self {
        match e {
            bulwark_oci::ManifestError::UnsupportedMediaType(m) => Error::ManifestUnsupported(m),
            bulwark_oci::ManifestError::Invalid(m) => Error::ManifestInvalid(m),
            bulwark_oci::ManifestError::Json(e) => {
                Error::ManifestInvalid(format!("not valid JSON: {e}"))
            }
        }
    }
}
