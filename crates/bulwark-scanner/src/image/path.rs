//! Lexical normalisation of archive paths.

use super::ImageError;

/// Normalises a tar entry path or hardlink target to the root-relative form
/// the squashed tree is keyed by: no leading `/` or `./`, no empty, `.` or
/// `..` components, no trailing `/`. Returns `Ok("")` for the root itself.
///
/// `..` is resolved lexically; one that would climb above the root is
/// [`ImageError::PathEscapes`]. Paths longer than `max_len` bytes are
/// [`ImageError::PathTooLong`]. Bytes that are not UTF-8 are replaced by
/// U+FFFD (such names are rare in images, and the inventory parsers only
/// route ASCII paths).
pub fn normalize(raw: &[u8], max_len: usize) -> Result<String, ImageError> {
    check_len(raw, max_len)?;
    let text = String::from_utf8_lossy(raw);
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ImageError::PathEscapes(truncated(&text)));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Refuses a path or link target longer than `max_len` bytes.
pub(crate) fn check_len(raw: &[u8], max_len: usize) -> Result<(), ImageError> {
    if raw.len() > max_len {
        return Err(ImageError::PathTooLong {
            len: raw.len(),
            limit: max_len,
            prefix: truncated(&String::from_utf8_lossy(raw)),
        });
    }
    Ok(())
}

/// The directory part of a normalised path (`""` for top-level names).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// `dir/name`, or `name` at the root.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// At most 200 characters of `s`, for error messages.
pub(crate) fn truncated(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        for (raw, want) in [
            ("etc/passwd", "etc/passwd"),
            ("./etc/passwd", "etc/passwd"),
            ("/etc/passwd", "etc/passwd"),
            ("//etc//./passwd/", "etc/passwd"),
            ("a/b/../c", "a/c"),
            ("./", ""),
            (".", ""),
            ("/", ""),
            ("a/..", ""),
        ] {
            assert_eq!(normalize(raw.as_bytes(), 4096).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn refuses_escapes_and_long_paths() {
        for raw in [
            "..",
            "../etc/passwd",
            "/../../etc/passwd",
            "a/../../b",
            "./..",
        ] {
            assert!(
                matches!(
                    normalize(raw.as_bytes(), 4096),
                    Err(ImageError::PathEscapes(_))
                ),
                "{raw}"
            );
        }
        assert!(matches!(
            normalize(&[b'a'; 11], 10),
            Err(ImageError::PathTooLong { len: 11, .. })
        ));
    }

    #[test]
    fn helpers() {
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a/b", "c"), "a/b/c");
    }
}
