//! The squashed file tree: layers applied in order, with OCI whiteouts.
//!
//! Semantics (OCI image spec, "Representing Changes"):
//!
//! - A regular entry adds or replaces its path and records the layer that
//!   wrote it. A non-directory replacing a path also removes everything
//!   below that path; a directory replacing a directory keeps the children.
//! - `dir/.wh.name` removes `dir/name` and everything below it, but only
//!   what lower layers put there: entries of the whiteout's own layer are
//!   kept whatever their order in the tar.
//! - `dir/.wh..wh..opq` removes everything lower layers put below `dir`
//!   (not `dir` itself).
//! - Other `.wh..wh.*` names (aufs bookkeeping such as `.wh..wh.plnk`) are
//!   ignored. Whiteout entries never appear in the tree.
//! - A hardlink takes its target's content as of the moment it is applied
//!   (target looked up by exact path among this layer's earlier entries,
//!   then the lower layers). A missing target is a warning. Content exists
//!   only if it was read, i.e. if the target's own path was wanted: the
//!   stream cannot go back for a target it already passed.
//!
//! Implementation: the open layer's entries go to a separate map, so a
//! whiteout can be applied at once to the lower tree without touching its
//! own layer, and each removal removes nodes (linear overall, whatever the
//! number of whiteouts). [`Squash::end_layer`] merges the open layer down.
//!
//! Paths are keyed literally (see the [module docs](super) for what that
//! means for entries under symlinked directories); [`Squash::resolve`]
//! follows symlinks at lookup time, relative to the image root, with a hop
//! limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::layer::{Content, Entry, EntryKind, FileInfo};
use super::path::{self, check_len};
use super::{ImageError, Limits, Warnings};

/// One path of the squashed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquashedFile {
    /// The index of the layer that last wrote this path.
    pub layer: usize,
    pub info: FileInfo,
    /// Content of wanted regular files (and of hardlinks to them).
    pub content: Option<Arc<[u8]>>,
}

/// Layers applied in order; see the module docs.
#[derive(Debug, Clone)]
pub struct Squash {
    limits: Limits,
    tree: BTreeMap<String, SquashedFile>,
    /// Entries of the open layer.
    open: BTreeMap<String, SquashedFile>,
    /// Index of the open layer, if one is open.
    current: Option<usize>,
    next: usize,
    content_bytes: u64,
    warnings: Warnings,
}

impl Squash {
    /// An empty tree. Uses `max_content_bytes`, `max_tree_entries`,
    /// `max_symlink_hops` and `max_path_len` from `limits`.
    pub fn new(limits: &Limits) -> Squash {
        Squash {
            limits: limits.clone(),
            tree: BTreeMap::new(),
            open: BTreeMap::new(),
            current: None,
            next: 0,
            content_bytes: 0,
            warnings: Warnings::default(),
        }
    }

    /// Opens the next layer (ending an open one first) and returns its
    /// index: 0 for the first layer, then 1, 2, ...
    pub fn begin_layer(&mut self) -> usize {
        if self.current.is_some() {
            self.end_layer();
        }
        let index = self.next;
        self.current = Some(index);
        self.next += 1;
        index
    }

    /// Applies one entry to the open layer (opening one if none is).
    pub fn apply(&mut self, entry: Entry) -> Result<(), ImageError> {
        let layer = match self.current {
            Some(l) => l,
            None => self.begin_layer(),
        };
        let Entry {
            path,
            info,
            content,
        } = entry;
        if path.is_empty() {
            return Ok(());
        }
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", path.as_str()),
        };
        if let Some(rest) = name.strip_prefix(".wh.") {
            if rest == ".wh..opq" {
                let freed = remove_below(&mut self.tree, dir);
                self.release(freed);
            } else if rest.starts_with(".wh.") {
                // aufs metadata
            } else if rest.is_empty() || rest == "." || rest == ".." {
                return Err(ImageError::InvalidWhiteout(path::truncated(&path)));
            } else {
                let target = path::join(dir, rest);
                let mut freed = remove_below(&mut self.tree, &target);
                if let Some(old) = self.tree.remove(&target) {
                    freed += content_len(&old);
                }
                self.release(freed);
            }
            return Ok(());
        }

        let content = match content {
            Content::Loaded(bytes) => Some(Arc::<[u8]>::from(bytes)),
            Content::TooLarge => {
                self.warnings.push(
                    Some(layer),
                    &path,
                    format!(
                        "{} bytes exceeds the {}-byte limit for wanted files; content not read",
                        info.size, self.limits.max_file_bytes
                    ),
                );
                None
            }
            Content::Skipped => match &info.kind {
                EntryKind::Hardlink { target } => self.link_content(layer, &path, target),
                _ => None,
            },
        };

        let mut freed = 0;
        if !info.kind.is_dir() {
            freed += remove_below(&mut self.open, &path);
        }
        // The lower node at this path is replaced when the layer is merged
        // and nothing reads it before: release its content now.
        if let Some(old) = self.tree.get_mut(&path).and_then(|n| n.content.take()) {
            freed += old.len() as u64;
        }
        let node = SquashedFile {
            layer,
            info,
            content,
        };
        let added = content_len(&node);
        if let Some(old) = self.open.insert(path, node) {
            freed += content_len(&old);
        }
        self.release(freed);
        self.content_bytes = self.content_bytes.saturating_add(added);
        if self.content_bytes > self.limits.max_content_bytes {
            return Err(ImageError::LimitExceeded {
                what: "wanted-file content held in memory",
                limit: self.limits.max_content_bytes,
            });
        }
        let held = (self.tree.len() as u64).saturating_add(self.open.len() as u64);
        if held > self.limits.max_tree_entries {
            return Err(ImageError::LimitExceeded {
                what: "paths in the squashed tree",
                limit: self.limits.max_tree_entries,
            });
        }
        Ok(())
    }

    /// Merges the open layer into the tree and returns the paths it wrote,
    /// sorted. Does nothing (and returns nothing) when no layer is open.
    pub fn end_layer(&mut self) -> Vec<String> {
        if self.current.take().is_none() {
            return Vec::new();
        }
        let open = std::mem::take(&mut self.open);
        let mut written = Vec::with_capacity(open.len());
        for (path, node) in open {
            let mut freed = 0;
            if !node.info.kind.is_dir() {
                freed += remove_below(&mut self.tree, &path);
            }
            if let Some(old) = self.tree.insert(path.clone(), node) {
                freed += content_len(&old);
            }
            self.release(freed);
            written.push(path);
        }
        written
    }

    fn link_content(&mut self, layer: usize, path: &str, target: &str) -> Option<Arc<[u8]>> {
        match self.open.get(target).or_else(|| self.tree.get(target)) {
            Some(node) if !node.info.kind.is_dir() => node.content.clone(),
            Some(_) => {
                self.warnings.push(
                    Some(layer),
                    path,
                    format!("hardlink to directory {target:?}"),
                );
                None
            }
            None => {
                self.warnings.push(
                    Some(layer),
                    path,
                    format!("hardlink target {target:?} does not exist"),
                );
                None
            }
        }
    }

    fn release(&mut self, freed: u64) {
        self.content_bytes = self.content_bytes.saturating_sub(freed);
    }

    /// The node at `path` (leading `/` and `./` ignored), without following
    /// symlinks. Sees merged layers only.
    pub fn get(&self, path: &str) -> Option<&SquashedFile> {
        let key = path::normalize(path.as_bytes(), self.limits.max_path_len).ok()?;
        self.tree.get(&key)
    }

    /// The node `path` refers to after following every symlink, also a
    /// final one, with its canonical path. `Ok(None)` when nothing is
    /// there, or when a non-directory is used as a directory on the way.
    /// `..` at the root stays at the root; absolute link targets start
    /// from the image root. More than [`Limits::max_symlink_hops`] links is
    /// [`ImageError::SymlinkLoop`].
    pub fn resolve(&self, path: &str) -> Result<Option<(String, &SquashedFile)>, ImageError> {
        let Some(canonical) = self.resolve_path(path)? else {
            return Ok(None);
        };
        Ok(self.tree.get(&canonical).map(|node| (canonical, node)))
    }

    /// The content of the file `path` refers to, following symlinks;
    /// `None` when there is none, or on a symlink loop.
    pub fn read(&self, path: &str) -> Option<&[u8]> {
        let (_, node) = self.resolve(path).ok()??;
        node.content.as_deref()
    }

    fn resolve_path(&self, path: &str) -> Result<Option<String>, ImageError> {
        let max_len = self.limits.max_path_len;
        check_len(path.as_bytes(), max_len)?;
        // Components still to walk, last on top.
        let mut todo: Vec<String> = Vec::new();
        push_components(&mut todo, path);
        let mut cur = String::new();
        let mut marks: Vec<usize> = Vec::new();
        let mut hops = 0usize;
        while let Some(comp) = todo.pop() {
            if comp == ".." {
                if let Some(m) = marks.pop() {
                    cur.truncate(m);
                }
                continue;
            }
            marks.push(cur.len());
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(&comp);
            if cur.len() > max_len {
                return Ok(None);
            }
            let Some(node) = self.tree.get(&cur) else {
                continue;
            };
            match &node.info.kind {
                EntryKind::Symlink { target } => {
                    hops += 1;
                    if hops > self.limits.max_symlink_hops {
                        return Err(ImageError::SymlinkLoop {
                            path: path::truncated(path),
                            limit: self.limits.max_symlink_hops,
                        });
                    }
                    if let Some(m) = marks.pop() {
                        cur.truncate(m);
                    }
                    if target.starts_with('/') {
                        cur.clear();
                        marks.clear();
                    }
                    push_components(&mut todo, target);
                }
                EntryKind::Dir => {}
                _ if !todo.is_empty() => return Ok(None),
                _ => {}
            }
        }
        Ok(Some(cur))
    }

    /// All paths, sorted, with their nodes.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SquashedFile)> {
        self.tree.iter().map(|(p, n)| (p.as_str(), n))
    }

    /// Number of paths in the tree.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Bytes of file content held.
    pub fn content_bytes(&self) -> u64 {
        self.content_bytes
    }

    /// Number of layers begun.
    pub fn layers(&self) -> usize {
        self.next
    }

    /// Warnings so far: oversized wanted files, dangling hardlinks.
    pub fn warnings(&self) -> &Warnings {
        &self.warnings
    }
}

/// Pushes the components of `path` so that the first is popped first.
fn push_components(todo: &mut Vec<String>, path: &str) {
    for part in path.split('/').rev() {
        if !part.is_empty() && part != "." {
            todo.push(part.to_owned());
        }
    }
}

fn content_len(node: &SquashedFile) -> u64 {
    node.content.as_ref().map_or(0, |c| c.len() as u64)
}

/// Removes every key strictly below `dir` (everything for the root `""`);
/// returns the content bytes freed.
fn remove_below(map: &mut BTreeMap<String, SquashedFile>, dir: &str) -> u64 {
    let doomed: Vec<String> = if dir.is_empty() {
        map.keys().cloned().collect()
    } else {
        // Keys below `dir` sort in [dir + "/", dir + "0"): '0' follows '/'.
        let lo = format!("{dir}/");
        let hi = format!("{dir}0");
        map.range(lo..hi).map(|(k, _)| k.clone()).collect()
    };
    let mut freed = 0;
    for k in doomed {
        if let Some(old) = map.remove(&k) {
            freed += content_len(&old);
        }
    }
    freed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &[u8]) -> Entry {
        Entry {
            path: path.into(),
            info: FileInfo {
                kind: EntryKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: content.len() as u64,
            },
            content: Content::Loaded(content.to_vec()),
        }
    }

    fn with_kind(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: path.into(),
            info: FileInfo {
                kind,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 0,
            },
            content: Content::Skipped,
        }
    }

    fn layer(s: &mut Squash, entries: Vec<Entry>) {
        s.begin_layer();
        for e in entries {
            s.apply(e).unwrap();
        }
        s.end_layer();
    }

    #[test]
    fn whiteouts_affect_lower_layers_only() {
        let mut s = Squash::new(&Limits::default());
        layer(&mut s, vec![file("a/x", b"1"), file("b", b"2")]);
        // Same layer: `a/new` before the whiteout of `a` survives it.
        layer(
            &mut s,
            vec![
                file("a/new", b"3"),
                file("a/.wh.x", b""),
                file(".wh.b", b""),
            ],
        );
        assert!(s.get("a/x").is_none());
        assert!(s.get("b").is_none());
        assert_eq!(s.get("a/new").unwrap().layer, 1);
        assert_eq!(s.content_bytes(), 1);
    }

    #[test]
    fn file_replacing_directory_drops_children() {
        let mut s = Squash::new(&Limits::default());
        layer(
            &mut s,
            vec![with_kind("d", EntryKind::Dir), file("d/x", b"1")],
        );
        layer(&mut s, vec![file("d", b"now a file")]);
        assert!(s.get("d/x").is_none());
        assert_eq!(s.get("d").unwrap().info.kind, EntryKind::File);
        assert_eq!(s.content_bytes(), 10);
    }

    #[test]
    fn directory_over_directory_keeps_children() {
        let mut s = Squash::new(&Limits::default());
        layer(
            &mut s,
            vec![with_kind("d", EntryKind::Dir), file("d/x", b"1")],
        );
        layer(&mut s, vec![with_kind("d", EntryKind::Dir)]);
        assert_eq!(s.get("d/x").unwrap().layer, 0);
        assert_eq!(s.get("d").unwrap().layer, 1);
    }

    #[test]
    fn resolve_follows_relative_and_absolute_links() {
        let mut s = Squash::new(&Limits::default());
        layer(
            &mut s,
            vec![
                file("usr/lib/os-release", b"ID=x"),
                with_kind(
                    "etc/os-release",
                    EntryKind::Symlink {
                        target: "../usr/lib/os-release".into(),
                    },
                ),
                with_kind(
                    "lib",
                    EntryKind::Symlink {
                        target: "/usr/lib".into(),
                    },
                ),
                with_kind(
                    "up",
                    EntryKind::Symlink {
                        target: "../../../usr".into(),
                    },
                ),
            ],
        );
        assert_eq!(s.read("etc/os-release"), Some(&b"ID=x"[..]));
        assert_eq!(s.read("/lib/os-release"), Some(&b"ID=x"[..]));
        assert_eq!(s.read("up/lib/os-release"), Some(&b"ID=x"[..]));
        let (canonical, _) = s.resolve("lib/os-release").unwrap().unwrap();
        assert_eq!(canonical, "usr/lib/os-release");
        assert!(s.resolve("usr/lib/os-release/x").unwrap().is_none());
        assert!(s.resolve("nope").unwrap().is_none());
    }

    #[test]
    fn invalid_whiteouts_are_refused() {
        let mut s = Squash::new(&Limits::default());
        s.begin_layer();
        for p in ["a/.wh.", "a/.wh..", ".wh.."] {
            assert!(matches!(
                s.apply(file(p, b"")),
                Err(ImageError::InvalidWhiteout(_))
            ));
        }
        s.apply(file("a/.wh..wh.plnk", b"")).unwrap();
        s.end_layer();
        assert!(s.is_empty());
    }
}
