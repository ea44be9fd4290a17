//! Blob storage backends. [`FsBlobStore`] keeps content-addressed blobs on a local (or shared)
//! filesystem: `blobs/<alg>/<2 hex>/<hex>`, upload sessions in `uploads/<id>`, single-request
//! pushes in `tmp/<id>`. Data becomes visible under a digest only after fsync + rename.
//! [`S3BlobStore`] keeps the same layout in an S3-compatible bucket, shared by replicas, with
//! one object per uploaded chunk and atomic object writes instead of rename.

mod fs;
mod s3;

pub use fs::FsBlobStore;
pub use s3::{PART_SIZE, S3BlobStore, S3Config};
