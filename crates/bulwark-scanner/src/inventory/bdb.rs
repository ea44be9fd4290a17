//! The key/value pairs of a Berkeley DB hash database: enough of the on-disk
//! format (Berkeley DB's `db_page.h`) to read rpm's `var/lib/rpm/Packages`
//! of RHEL/CentOS 7 and 8, Amazon Linux 2 and older SUSE, where every value
//! is one installed package's header.
//!
//! Page 0 is the hash metadata page: magic `0x00061561` at 12 (its byte
//! order is the file's), page size at 20, last page number at 32. Every
//! other page starts with a 26-byte header (`next_pgno` at 16, `entries` at
//! 20, `hf_offset` at 22, type at 25). Hash pages (types 2 and 13) hold an
//! array of `entries` item offsets after the header; items alternate key and
//! value, each starting with its type: `H_KEYDATA` (1, the bytes inline) or
//! `H_OFFPAGE` (3: first overflow page at 4, total length at 8). Overflow
//! pages (type 7) hold `hf_offset` bytes after the header and chain through
//! `next_pgno`. Buckets are not followed: every page is visited once, in
//! order, which finds every pair whatever the hash function.
//!
//! The file is untrusted: every offset is checked, overflow chains are
//! bounded by the page count and must add up to their stated length.

/// Berkeley DB hash database magic.
const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;

struct Db<'a> {
    bytes: &'a [u8],
    big_endian: bool,
    page_size: usize,
    pages: usize,
}

impl<'a> Db<'a> {
    fn u16_at(&self, b: &[u8], at: usize) -> Option<u16> {
        let raw = <[u8; 2]>::try_from(b.get(at..at.checked_add(2)?)?).ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        })
    }

    fn u32_at(&self, b: &[u8], at: usize) -> Option<u32> {
        let raw = <[u8; 4]>::try_from(b.get(at..at.checked_add(4)?)?).ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        })
    }

    fn page(&self, pgno: usize) -> Option<&'a [u8]> {
        if pgno >= self.pages {
            return None;
        }
        let start = pgno.checked_mul(self.page_size)?;
        self.bytes.get(start..start.checked_add(self.page_size)?)
    }

    /// The `tlen` bytes of the overflow chain starting at `pgno`.
    fn overflow(&self, mut pgno: usize, tlen: usize) -> Result<Vec<u8>, String> {
        if tlen > self.bytes.len() {
            return Err(format!(
                "overflow item of {tlen} bytes is larger than the file"
            ));
        }
        let mut out = Vec::with_capacity(tlen);
        // A chain visits each page at most once, so it is never longer than the file.
        for _ in 0..self.pages {
            let page = self
                .page(pgno)
                .ok_or_else(|| format!("overflow page {pgno} is outside the file"))?;
            if page.get(25) != Some(&P_OVERFLOW) {
                return Err(format!("page {pgno} is not an overflow page"));
            }
            let used = usize::from(self.u16_at(page, 22).unwrap_or(0));
            let data = page
                .get(PAGE_HEADER..PAGE_HEADER.saturating_add(used))
                .ok_or_else(|| format!("overflow page {pgno} claims {used} bytes"))?;
            out.extend_from_slice(data);
            if out.len() > tlen {
                return Err(format!("overflow chain is longer than its {tlen} bytes"));
            }
            let next = self.u32_at(page, 16).unwrap_or(0) as usize;
            if next == 0 {
                return if out.len() == tlen {
                    Ok(out)
                } else {
                    Err(format!(
                        "overflow chain holds {} of its {tlen} bytes",
                        out.len()
                    ))
                };
            }
            pgno = next;
        }
        Err("overflow chain loops".to_owned())
    }

    /// The items of hash page `page`, as (type, bytes after the type byte).
    fn items(&self, pgno: usize, page: &'a [u8]) -> Result<Vec<(u8, &'a [u8])>, String> {
        let bad = |what: &str| format!("hash page {pgno}: {what}");
        let entries = usize::from(self.u16_at(page, 20).unwrap_or(0));
        let table_end = PAGE_HEADER + 2 * entries;
        if table_end > self.page_size {
            return Err(bad(&format!("{entries} entries do not fit")));
        }
        let mut offsets = Vec::with_capacity(entries);
        for i in 0..entries {
            let at = usize::from(self.u16_at(page, PAGE_HEADER + 2 * i).unwrap_or(0));
            if at < table_end || at >= self.page_size {
                return Err(bad(&format!("item {i} at {at} is outside the page")));
            }
            offsets.push(at);
        }
        // Items are packed from the end of the page down: one ends where the next
        // higher one starts.
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        let mut items = Vec::with_capacity(entries);
        for &at in &offsets {
            // Binary search: a hostile 64 KiB page holds 32k offsets.
            let end = sorted
                .get(sorted.partition_point(|&o| o <= at))
                .copied()
                .unwrap_or(self.page_size);
            let item = page.get(at..end).unwrap_or_default();
            let (&kind, body) = item.split_first().ok_or_else(|| bad("empty item"))?;
            items.push((kind, body));
        }
        Ok(items)
    }

    fn value(&self, pgno: usize, kind: u8, body: &[u8]) -> Result<Vec<u8>, String> {
        match kind {
            H_KEYDATA => Ok(body.to_vec()),
            H_OFFPAGE => {
                // type (1) + 3 unused bytes, then pgno and tlen.
                let start = self.u32_at(body, 3);
                let tlen = self.u32_at(body, 7);
                match (start, tlen) {
                    (Some(start), Some(tlen)) => self.overflow(start as usize, tlen as usize),
                    _ => Err(format!("hash page {pgno}: short off-page item")),
                }
            }
            H_DUPLICATE | H_OFFDUP => Err(format!(
                "hash page {pgno}: duplicate keys (not used by rpm) are not supported"
            )),
            other => Err(format!("hash page {pgno}: unknown item type {other}")),
        }
    }
}

/// A key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Every (key, value) pair of the hash database in `contents`, in page order.
pub fn hash_pairs(contents: &[u8]) -> Result<Vec<Pair>, String> {
    let magic = contents
        .get(12..16)
        .and_then(|m| <[u8; 4]>::try_from(m).ok())
        .ok_or("not a Berkeley DB hash database: too short for its metadata page")?;
    let big_endian = if u32::from_le_bytes(magic) == HASH_MAGIC {
        false
    } else if u32::from_be_bytes(magic) == HASH_MAGIC {
        true
    } else {
        return Err("not a Berkeley DB hash database".to_owned());
    };
    let mut db = Db {
        bytes: contents,
        big_endian,
        page_size: 0,
        pages: 0,
    };
    let version = db.u32_at(contents, 16).unwrap_or(0);
    if !(8..=10).contains(&version) {
        return Err(format!(
            "hash database version {version} (8 to 10 are read)"
        ));
    }
    let page_size = db.u32_at(contents, 20).unwrap_or(0) as usize;
    if !page_size.is_power_of_two() || !(512..=65_536).contains(&page_size) {
        return Err(format!("page size {page_size}"));
    }
    if contents.get(24).is_some_and(|&alg| alg != 0) {
        return Err("encrypted database".to_owned());
    }
    if contents.get(25) != Some(&P_HASHMETA) {
        return Err("page 0 is not a hash metadata page".to_owned());
    }
    let last = db.u32_at(contents, 32).unwrap_or(0) as usize;
    db.page_size = page_size;
    db.pages = last.saturating_add(1).min(contents.len() / page_size);
    let mut pairs = Vec::new();
    for pgno in 1..db.pages {
        let Some(page) = db.page(pgno) else { break };
        if !matches!(page.get(25), Some(&P_HASH) | Some(&P_HASH_UNSORTED)) {
            continue;
        }
        let items = db.items(pgno, page)?;
        for pair in items.chunks(2) {
            let [(key_kind, key), (kind, body)] = pair else {
                return Err(format!("hash page {pgno}: a key without a value"));
            };
            let key = db.value(pgno, *key_kind, key)?;
            let value = db.value(pgno, *kind, body)?;
            pairs.push((key, value));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(page_size: u32, last: u32) -> Vec<u8> {
        let mut p = vec![0u8; page_size as usize];
        p[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        p[16..20].copy_from_slice(&9u32.to_le_bytes());
        p[20..24].copy_from_slice(&page_size.to_le_bytes());
        p[25] = P_HASHMETA;
        p[32..36].copy_from_slice(&last.to_le_bytes());
        p
    }

    fn overflow_page(next: u32, data: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 512];
        p[16..20].copy_from_slice(&next.to_le_bytes());
        p[22..24].copy_from_slice(&(data.len() as u16).to_le_bytes());
        p[25] = P_OVERFLOW;
        p[26..26 + data.len()].copy_from_slice(data);
        p
    }

    /// A hash page with one inline key and an off-page value.
    fn hash_page(value_pgno: u32, tlen: u32) -> Vec<u8> {
        let mut p = vec![0u8; 512];
        p[20..22].copy_from_slice(&2u16.to_le_bytes());
        p[25] = P_HASH;
        let key_at = 512 - 5;
        p[key_at] = H_KEYDATA;
        p[key_at + 1..512].copy_from_slice(&7u32.to_le_bytes());
        let value_at = key_at - 12;
        p[value_at] = H_OFFPAGE;
        p[value_at + 4..value_at + 8].copy_from_slice(&value_pgno.to_le_bytes());
        p[value_at + 8..value_at + 12].copy_from_slice(&tlen.to_le_bytes());
        p[26..28].copy_from_slice(&(key_at as u16).to_le_bytes());
        p[28..30].copy_from_slice(&(value_at as u16).to_le_bytes());
        p
    }

    fn db(pages: &[Vec<u8>]) -> Vec<u8> {
        pages.concat()
    }

    #[test]
    fn reads_an_inline_key_and_a_chained_value() {
        let file = db(&[
            meta(512, 3),
            hash_page(2, 7),
            overflow_page(3, b"head"),
            overflow_page(0, b"tail"[..3].as_ref()),
        ]);
        let pairs = hash_pairs(&file).unwrap();
        assert_eq!(
            pairs,
            vec![(7u32.to_le_bytes().to_vec(), b"headtai".to_vec())]
        );
    }

    #[test]
    fn hostile_files_are_errors() {
        let good = db(&[
            meta(512, 3),
            hash_page(2, 7),
            overflow_page(3, b"head"),
            overflow_page(0, b"tai"),
        ]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"short".to_vec(), "too short"),
            (vec![0u8; 512], "not a Berkeley DB"),
            // A chain that points back at itself.
            (
                db(&[
                    meta(512, 3),
                    hash_page(2, 7),
                    overflow_page(2, b"head"),
                    overflow_page(0, b""),
                ]),
                "longer than",
            ),
            (
                db(&[meta(512, 2), hash_page(2, 1 << 30), overflow_page(0, b"x")]),
                "larger than the file",
            ),
            (db(&[meta(512, 1), hash_page(9, 4)]), "outside the file"),
            (
                db(&[meta(512, 2), hash_page(2, 9), overflow_page(0, b"head")]),
                "holds 4 of its 9",
            ),
            (
                db(&[meta(512, 2), hash_page(1, 4), overflow_page(0, b"head")]),
                "not an overflow page",
            ),
        ];
        for (file, want) in cases {
            let err = hash_pairs(&file).unwrap_err();
            assert!(err.contains(want), "{err:?} should say {want:?}");
        }
        let mut bad_size = good.clone();
        bad_size[20..24].copy_from_slice(&1000u32.to_le_bytes());
        assert!(hash_pairs(&bad_size).unwrap_err().contains("page size"));
        let mut encrypted = good.clone();
        encrypted[24] = 1;
        assert!(hash_pairs(&encrypted).unwrap_err().contains("encrypted"));
        let mut bad_offset = good.clone();
        bad_offset[512 + 26..512 + 28].copy_from_slice(&4u16.to_le_bytes());
        assert!(
            hash_pairs(&bad_offset)
                .unwrap_err()
                .contains("outside the page")
        );
        let mut too_many = good;
        too_many[512 + 20..512 + 22].copy_from_slice(&400u16.to_le_bytes());
        assert!(hash_pairs(&too_many).unwrap_err().contains("do not fit"));
    }

    #[test]
    fn no_byte_flip_panics() {
        let good = db(&[
            meta(512, 3),
            hash_page(2, 7),
            overflow_page(3, b"head"),
            overflow_page(0, b"tai"),
        ]);
        for i in 0..good.len() {
            let mut f = good.clone();
            f[i] ^= 0xa5;
            let _ = hash_pairs(&f);
            let _ = hash_pairs(&f[..i]);
        }
    }
}
