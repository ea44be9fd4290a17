//! Blob storage backends. [`FsBlobStore`] keeps content-addressed blobs on a local (or shared)
//! filesystem: `blobs/<alg>/<2 hex>/<hex>`, upload sessions in `uploads/<id>`, single-request
//! pushes in `tmp/<id>`. Data becomes visible under a digest only after fsync + rename.

mod fs;

pub use fs::FsBlobStore;
