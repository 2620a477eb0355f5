//! Tree objects (catalog format 2): one per directory, stored as a chunk, so an unchanged directory is stored once
//! and a version of a million files is read one directory at a time (restic's tree blobs, in postcard).
//!
//! A tree part holds a directory's nodes sorted by name (raw bytes, one path component each), at most
//! [`MAX_TREE_BYTES`] encoded; a bigger directory continues in the part its `next` ref opens. A file node lists its
//! chunks' refs in order; a directory node holds its subtree's ref; so a tree's ref opens exactly the tree below it.
//! Files also record what the next backup compares to skip reading them again (size, mtime, ctime, inode, device:
//! restic's parent snapshot).
//!
//! Decoding checks everything a restore trusts: names are single, non-empty components other than `.` and `..`,
//! without `/` or NUL, strictly ascending (so unique); a file's chunk lengths add up to its size; counts are bounded.

use serde::{Deserialize, Serialize};

use crate::proto::chunk::{ChunkRef, MAX_CHUNK};

/// Current tree format.
pub const TREE_FORMAT: u8 = 1;
/// Most bytes one encoded tree part takes (it is stored as one chunk).
pub const MAX_TREE_BYTES: usize = MAX_CHUNK as usize;
/// Most nodes one part holds.
pub const MAX_TREE_NODES: usize = 100_000;
/// Most chunks a file node or a [`ChunkList`] lists (16 GiB of a file at the average chunk size); a longer list
/// goes on in the chunk list its `more` ref opens.
pub const MAX_FILE_CHUNKS: usize = 16_384;

/// Errors decoding a tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    /// Not a tree of a known format.
    #[error("malformed tree: {0}")]
    Malformed(String),
    /// A node's name could escape its directory or is not unique.
    #[error("tree node {0:?}: {1}")]
    BadName(String, &'static str),
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A directory and its tree.
    Dir {
        /// Opens the directory's (first) tree part.
        tree: ChunkRef,
    },
    /// A regular file and its chunks.
    File {
        /// Bytes.
        size: u64,
        /// Its first chunks in order, at most [`MAX_FILE_CHUNKS`].
        chunks: Vec<ChunkRef>,
        /// The rest of its chunk list, for a file of more than [`MAX_FILE_CHUNKS`] chunks.
        more: Option<ChunkRef>,
        /// Status change time, seconds and nanoseconds (compared by the next backup, not restored).
        ctime: (i64, u32),
        /// Inode and device numbers (compared by the next backup).
        inode: (u64, u64),
    },
    /// A symbolic link (not followed) and its target bytes.
    Symlink {
        /// Target.
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
    },
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// One path component, raw bytes.
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// Kind and contents.
    pub kind: NodeKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time, seconds and nanoseconds.
    pub mtime: (i64, u32),
}

/// One part of a directory's listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Format ([`TREE_FORMAT`]).
    pub format: u8,
    /// Nodes, ascending by name.
    pub nodes: Vec<Node>,
    /// The next part of the same directory, if it did not fit.
    pub next: Option<ChunkRef>,
}

impl Tree {
    /// Encodes the part (postcard).
    ///
    /// # Errors
    /// If it is over [`MAX_TREE_BYTES`] or does not validate.
    pub fn encode(&self) -> Result<Vec<u8>, TreeError> {
        self.validate()?;
        let bytes = postcard::to_allocvec(self).map_err(|e| TreeError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_TREE_BYTES {
            return Err(TreeError::Malformed(format!("{} bytes, over {MAX_TREE_BYTES}", bytes.len())));
        }
        Ok(bytes)
    }

    /// Decodes and validates a part.
    ///
    /// # Errors
    /// [`TreeError`] for anything but a valid part of the current format.
    pub fn decode(bytes: &[u8]) -> Result<Self, TreeError> {
        if bytes.len() > MAX_TREE_BYTES {
            return Err(TreeError::Malformed(format!("{} bytes, over {MAX_TREE_BYTES}", bytes.len())));
        }
        let tree: Self = postcard::from_bytes(bytes).map_err(|e| TreeError::Malformed(e.to_string()))?;
        tree.validate()?;
        Ok(tree)
    }

    /// Checks names (single safe components, strictly ascending), counts, and that every file's chunks add up to
    /// its size.
    ///
    /// # Errors
    /// The first thing wrong.
    pub fn validate(&self) -> Result<(), TreeError> {
        if self.format != TREE_FORMAT {
            return Err(TreeError::Malformed(format!("format {}", self.format)));
        }
        if self.nodes.len() > MAX_TREE_NODES {
            return Err(TreeError::Malformed(format!("{} nodes, over {MAX_TREE_NODES}", self.nodes.len())));
        }
        let mut previous: Option<&[u8]> = None;
        for n in &self.nodes {
            let shown = || String::from_utf8_lossy(&n.name).into_owned();
            if n.name.is_empty() || n.name == b"." || n.name == b".." || n.name.iter().any(|b| *b == b'/' || *b == 0) {
                return Err(TreeError::BadName(shown(), "not a single safe path component"));
            }
            if previous.is_some_and(|p| p >= n.name.as_slice()) {
                return Err(TreeError::BadName(shown(), "not in strictly ascending order"));
            }
            previous = Some(&n.name);
            if let NodeKind::File { size, chunks, more, .. } = &n.kind {
                if chunks.len() > MAX_FILE_CHUNKS {
                    return Err(TreeError::Malformed(format!("{}: {} chunks", shown(), chunks.len())));
                }
                if chunks.iter().any(|c| c.len > MAX_CHUNK) {
                    return Err(TreeError::Malformed(format!("{}: a chunk over {MAX_CHUNK} bytes", shown())));
                }
                let sum: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
                // with `more`, the rest is checked as the lists are read (ChunkList::decode and the reader's total)
                if (more.is_none() && sum != *size) || sum > *size {
                    return Err(TreeError::Malformed(format!(
                        "{}: chunks of {sum} bytes for a size of {size}",
                        shown()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The continuation of a long file's chunk list, stored as a chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkList {
    /// The next chunks, at most [`MAX_FILE_CHUNKS`].
    pub chunks: Vec<ChunkRef>,
    /// The list's next part.
    pub more: Option<ChunkRef>,
}

impl ChunkList {
    /// Encodes it (postcard).
    ///
    /// # Errors
    /// If it lists more than [`MAX_FILE_CHUNKS`].
    pub fn encode(&self) -> Result<Vec<u8>, TreeError> {
        if self.chunks.len() > MAX_FILE_CHUNKS {
            return Err(TreeError::Malformed(format!("a chunk list of {}", self.chunks.len())));
        }
        postcard::to_allocvec(self).map_err(|e| TreeError::Malformed(e.to_string()))
    }

    /// Decodes one.
    ///
    /// # Errors
    /// If it is malformed or too long.
    pub fn decode(bytes: &[u8]) -> Result<Self, TreeError> {
        let list: Self = postcard::from_bytes(bytes).map_err(|e| TreeError::Malformed(e.to_string()))?;
        if list.chunks.len() > MAX_FILE_CHUNKS {
            return Err(TreeError::Malformed(format!("a chunk list of {}", list.chunks.len())));
        }
        if list.chunks.iter().any(|c| c.len > MAX_CHUNK) {
            return Err(TreeError::Malformed(format!("a chunk over {MAX_CHUNK} bytes")));
        }
        Ok(list)
    }
}

/// Cuts a directory's nodes (ascending by name) into parts that each encode within [`MAX_TREE_BYTES`] and
/// [`MAX_TREE_NODES`]; the caller stores them last first, so each part can hold the ref of the one after it.
///
/// # Errors
/// If one node alone is too big for a part.
pub fn split(nodes: Vec<Node>) -> Result<Vec<Vec<Node>>, TreeError> {
    // room for the format byte, the vector's length and the `next` ref
    const PART_OVERHEAD: usize = 1 + 10 + 1 + 32 + 32 + 5;
    let mut parts: Vec<Vec<Node>> = vec![Vec::new()];
    let mut size = PART_OVERHEAD;
    for node in nodes {
        let len = postcard::experimental::serialized_size(&node).map_err(|e| TreeError::Malformed(e.to_string()))?;
        if PART_OVERHEAD + len > MAX_TREE_BYTES {
            return Err(TreeError::Malformed(format!(
                "node {:?} alone takes {len} bytes",
                String::from_utf8_lossy(&node.name)
            )));
        }
        let current = parts.last().map_or(0, Vec::len);
        if size + len > MAX_TREE_BYTES || current >= MAX_TREE_NODES {
            parts.push(Vec::new());
            size = PART_OVERHEAD;
        }
        size += len;
        if let Some(p) = parts.last_mut() {
            p.push(node);
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(len: u32, i: u8) -> ChunkRef {
        ChunkRef { id: [i; 32], key: [i ^ 0xff; 32], len }
    }

    fn file(name: &str, lens: &[u32]) -> Node {
        Node {
            name: name.as_bytes().to_vec(),
            kind: NodeKind::File {
                size: lens.iter().map(|l| u64::from(*l)).sum(),
                chunks: lens.iter().enumerate().map(|(i, l)| chunk(*l, i as u8)).collect(),
                more: None,
                ctime: (1, 2),
                inode: (3, 4),
            },
            mode: 0o644,
            mtime: (5, 6),
        }
    }

    #[test]
    fn trees_round_trip_and_refuse_what_a_restore_must_not_trust() {
        let t = Tree {
            format: TREE_FORMAT,
            nodes: vec![
                file("a", &[10, 20]),
                Node { name: b"b".to_vec(), kind: NodeKind::Dir { tree: chunk(7, 9) }, mode: 0o755, mtime: (0, 0) },
                Node {
                    name: b"c".to_vec(),
                    kind: NodeKind::Symlink { target: b"../x".to_vec() },
                    mode: 0o777,
                    mtime: (0, 0),
                },
                file("empty", &[]),
            ],
            next: Some(chunk(3, 1)),
        };
        assert_eq!(Tree::decode(&t.encode().unwrap()).unwrap(), t);
        for bad in ["", ".", "..", "a/b", "x\0y"] {
            let mut u = t.clone();
            u.nodes[0].name = bad.as_bytes().to_vec();
            assert!(matches!(u.validate(), Err(TreeError::BadName(..))), "{bad:?}");
        }
        let mut dup = t.clone();
        dup.nodes[1] = file("a", &[1]);
        assert!(matches!(dup.validate(), Err(TreeError::BadName(..))), "names are unique");
        let mut lying = t.clone();
        if let NodeKind::File { size, .. } = &mut lying.nodes[0].kind {
            *size += 1;
        }
        assert!(lying.validate().is_err(), "chunk lengths must add up");
        let list = ChunkList { chunks: vec![chunk(5, 5); 3], more: None };
        assert_eq!(ChunkList::decode(&list.encode().unwrap()).unwrap(), list);
        let long = ChunkList { chunks: vec![chunk(5, 5); MAX_FILE_CHUNKS + 1], more: None };
        assert!(long.encode().is_err());
        let encoded = postcard::to_allocvec(&long).unwrap();
        assert!(ChunkList::decode(&encoded).is_err(), "too long a list is refused when read");
        assert!(Tree::decode(b"\x07garbage").is_err());
        assert!(Tree::decode(&[]).is_err());
    }

    #[test]
    fn big_directories_split_into_parts_that_each_fit() {
        let nodes: Vec<Node> = (0..60_000).map(|i| file(&format!("file-{i:08}"), &[1, 2, 3])).collect();
        let parts = split(nodes.clone()).unwrap();
        assert!(parts.len() >= 2, "{} parts", parts.len());
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), nodes.len());
        for p in &parts {
            let t = Tree { format: TREE_FORMAT, nodes: p.clone(), next: Some(chunk(1, 1)) };
            assert!(t.encode().unwrap().len() <= MAX_TREE_BYTES);
        }
        assert_eq!(parts.concat(), nodes, "order kept");
        assert_eq!(split(Vec::new()).unwrap(), vec![Vec::<Node>::new()]);
    }
}
