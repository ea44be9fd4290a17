//! `Content-Range` of chunked uploads and `Range` of blob reads.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("malformed range")]
    Malformed,
    #[error("range not satisfiable")]
    Unsatisfiable,
}

/// An inclusive byte range `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        // Parsers guarantee start <= end < u64::MAX; saturate anyway, ranges come from clients.
        self.end.saturating_sub(self.start).saturating_add(1)
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Upload `Content-Range`: `<start>-<end>` (inclusive), also tolerating `bytes ` and `/total`.
    pub fn parse_content_range(value: &str) -> Result<Self, RangeError> {
        let v = value.trim();
        let v = v.strip_prefix("bytes").map(str::trim_start).unwrap_or(v);
        let v = v.strip_prefix('=').unwrap_or(v);
        let v = v.split('/').next().unwrap_or(v);
        let (s, e) = v.split_once('-').ok_or(RangeError::Malformed)?;
        let start = parse_u64(s)?;
        let end = parse_u64(e)?;
        if end < start || end == u64::MAX {
            return Err(RangeError::Malformed);
        }
        Ok(ByteRange { start, end })
    }

    /// Blob read `Range: bytes=a-b | a- | -n` against a blob of `size` bytes. Multiple ranges are
    /// not supported and are reported as malformed so the caller can serve the whole blob.
    pub fn parse_range(value: &str, size: u64) -> Result<Self, RangeError> {
        let spec = value
            .trim()
            .strip_prefix("bytes=")
            .ok_or(RangeError::Malformed)?;
        if spec.contains(',') {
            return Err(RangeError::Malformed);
        }
        let (s, e) = spec.split_once('-').ok_or(RangeError::Malformed)?;
        let (s, e) = (s.trim(), e.trim());
        let range = if s.is_empty() {
            let n = parse_u64(e)?;
            if n == 0 || size == 0 {
                return Err(RangeError::Unsatisfiable);
            }
            ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }
        } else {
            let start = parse_u64(s)?;
            let end = if e.is_empty() {
                size.saturating_sub(1)
            } else {
                parse_u64(e)?.min(size.saturating_sub(1))
            };
            if !e.is_empty() && parse_u64(e)? < start {
                return Err(RangeError::Malformed);
            }
            if start >= size {
                return Err(RangeError::Unsatisfiable);
            }
            ByteRange { start, end }
        };
        Ok(range)
    }
}

fn parse_u64(s: &str) -> Result<u64, RangeError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeError::Malformed);
    }
    s.parse().map_err(|_| RangeError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_range() {
        let r = ByteRange::parse_content_range("0-99").unwrap();
        assert_eq!((r.start, r.end, r.len()), (0, 99, 100));
        assert_eq!(
            ByteRange::parse_content_range("bytes 10-19/*").unwrap(),
            ByteRange { start: 10, end: 19 }
        );
        for bad in [
            "",
            "5",
            "a-b",
            "9-1",
            "-1",
            "1-",
            "0x1-2",
            "1--2",
            "0-18446744073709551615",
            "0-99999999999999999999",
        ] {
            assert_eq!(
                ByteRange::parse_content_range(bad),
                Err(RangeError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn read_range() {
        let r = |v| ByteRange::parse_range(v, 100);
        assert_eq!(r("bytes=0-9").unwrap(), ByteRange { start: 0, end: 9 });
        assert_eq!(r("bytes=90-").unwrap(), ByteRange { start: 90, end: 99 });
        assert_eq!(r("bytes=-10").unwrap(), ByteRange { start: 90, end: 99 });
        assert_eq!(r("bytes=-500").unwrap(), ByteRange { start: 0, end: 99 });
        assert_eq!(
            r("bytes=50-5000").unwrap(),
            ByteRange { start: 50, end: 99 }
        );
        assert_eq!(r("bytes=100-"), Err(RangeError::Unsatisfiable));
        assert_eq!(r("bytes=-0"), Err(RangeError::Unsatisfiable));
        assert_eq!(r("bytes=5-1"), Err(RangeError::Malformed));
        assert_eq!(r("items=0-1"), Err(RangeError::Malformed));
        assert_eq!(r("bytes=0-1,3-4"), Err(RangeError::Malformed));
        assert_eq!(
            ByteRange::parse_range("bytes=0-", 0),
            Err(RangeError::Unsatisfiable)
        );
    }

    proptest! {
        #[test]
        fn ranges_stay_in_bounds(v in "\\PC{0,40}", size in 0u64..1000) {
            if let Ok(r) = ByteRange::parse_content_range(&v) {
                prop_assert_eq!(r.len() - 1, r.end - r.start);
            }
            if let Ok(r) = ByteRange::parse_range(&v, size) {
                prop_assert!(r.start <= r.end && r.end < size);
            }
        }

        #[test]
        fn explicit_ranges_round_trip(a in 0u64..1000, len in 1u64..1000, size in 1u64..3000) {
            let b = a + len - 1;
            let parsed = ByteRange::parse_range(&format!("bytes={a}-{b}"), size);
            if a >= size {
                prop_assert_eq!(parsed, Err(RangeError::Unsatisfiable));
            } else {
                prop_assert_eq!(parsed, Ok(ByteRange { start: a, end: b.min(size - 1) }));
            }
        }
    }
}
