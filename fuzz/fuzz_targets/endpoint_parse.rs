//! Splits the input into `METHOD path?query` and feeds it to `Endpoint::parse`; also feeds the
//! pieces to the digest, name, reference and range parsers and checks their round trips.

#![no_main]

use bulwark_oci::{ByteRange, Digest, Endpoint, Method, Reference, RepoName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (method, target) = text.split_once(' ').unwrap_or(("GET", &text));
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };

    if let Ok(endpoint) = Endpoint::parse(Method::from_str_upper(method), path, query) {
        assert!(path.starts_with("/v2"), "{path:?} accepted");
        if let Some(name) = endpoint.repository() {
            assert_eq!(RepoName::parse(name.as_str()).as_ref(), Ok(name));
        }
    }

    let size = data
        .iter()
        .take(8)
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    for piece in [target, path, query.unwrap_or("")]
        .into_iter()
        .chain(path.split('/').take(16))
    {
        check_scalars(piece, size);
    }
});

fn check_scalars(s: &str, size: u64) {
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(d.to_string(), s);
        assert_eq!(d.hex().len() + d.algorithm().as_str().len() + 1, s.len());
    }
    if let Ok(name) = RepoName::parse(s) {
        assert_eq!(name.as_str(), s);
        assert!(s.starts_with(name.project()));
        assert!(!name.project().is_empty());
    }
    if let Ok(r) = Reference::parse(s) {
        assert_eq!(r.to_string(), s);
    }
    if let Ok(r) = ByteRange::parse_content_range(s) {
        assert!(r.start <= r.end);
        let _ = r.len();
    }
    for size in [size, 0, 1, 100, u64::MAX] {
        if let Ok(r) = ByteRange::parse_range(s, size) {
            assert!(r.start <= r.end && r.end < size, "{s:?} size {size}: {r:?}");
            assert!(r.len() <= size);
        }
    }
}
