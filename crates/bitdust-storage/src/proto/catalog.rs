//! The catalog: the customer's index of backups, versions, files and blocks.
//!
//! It is kept in the customer's local database and stored, sealed, on every supplier, so that a new device
//! holding only the private key gets it back. Sealing ([`SealedCatalog::seal`]): postcard → zstd →
//! AES-256-GCM under `derive(master, "catalog key")` with a random 96-bit nonce, associated data = owner
//! peer id and revision → Ed25519 signature by the owner over `CATALOG_PURPOSE || owner || revision ||
//! nonce || ciphertext`. A supplier checks the signature from the owner's peer id alone (no keys needed)
//! and refuses a revision lower than the one it holds, so a catalog cannot be replaced by an older one.

use bitdust_core::PeerId;
use rand::RngCore;
use ring::aead::{Aad, Nonce};
use serde::{Deserialize, Serialize};

use crate::proto::chunk::ChunkRef;
use crate::proto::erasure::Layout;
use crate::proto::pack::IndexEntry;
use crate::proto::pipeline::BlockMeta;
use bitdust_core::keys::{self, NodeKeys, SignatureError};

const CATALOG_PURPOSE: &[u8] = b"bitdust/catalog/v1\0";
/// Current catalog format: 2 adds pack sets and snapshots (incremental backups); a format-1 catalog reads as a
/// format-2 one without them.
pub const CATALOG_FORMAT: u8 = 2;
/// The largest sealed catalog accepted, in bytes (tens of thousands of files fit in a few MiB).
pub const MAX_SEALED_CATALOG_BYTES: usize = 64 * 1024 * 1024;

/// Errors from sealing or opening a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Signature check failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The sealed catalog belongs to another owner.
    #[error("catalog belongs to another owner")]
    WrongOwner,
    /// Decryption failed: wrong key or tampered.
    #[error("catalog authentication failed")]
    Authentication,
    /// Could not be decoded.
    #[error("malformed catalog: {0}")]
    Malformed(String),
    /// Too large.
    #[error("catalog of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

/// What a catalog entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file: `size` bytes at `offset` in the version's archive stream.
    File {
        /// Bytes.
        size: u64,
        /// Offset of its first byte in the archive stream.
        offset: u64,
    },
    /// A symbolic link and its target (raw bytes, not followed).
    Symlink {
        /// Link target bytes.
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
    },
}

/// One file system entry of a backed-up tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path relative to the backup root, components joined by `/`, raw bytes (names need not be UTF-8).
    /// The root itself is the empty path.
    #[serde(with = "serde_bytes")]
    pub path: Vec<u8>,
    /// Kind and content location.
    pub kind: EntryKind,
    /// Unix permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime_secs: i64,
    /// Modification time, nanoseconds part.
    pub mtime_nanos: u32,
}

/// One run of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// 1, 2, 3... within its backup.
    pub number: u32,
    /// Random id; keys derive from it.
    pub id: [u8; 16],
    /// Unix seconds when the version was made.
    pub created_unix: u64,
    /// The ecc layout its blocks use.
    pub layout: Layout,
    /// Suppliers by position at the time of the backup (peer id bytes).
    pub suppliers: Vec<Vec<u8>>,
    /// Total bytes of file contents.
    pub total_bytes: u64,
    /// The tree's entries, in archive order.
    pub entries: Vec<Entry>,
    /// The blocks of the archive stream.
    pub blocks: Vec<BlockMeta>,
}

impl Version {
    /// Number of regular files.
    pub fn file_count(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e.kind, EntryKind::File { .. })).count()
    }

    /// Bytes stored on suppliers for this version (fragments, headers included).
    pub fn stored_bytes(&self) -> u64 {
        self.blocks
            .iter()
            .map(|b| (b.shard_len as u64 + crate::proto::fragment::HEADER_LEN as u64) * self.layout.n as u64)
            .sum()
    }
}

/// A backed-up path and its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// Short unique name (`restore NAME[@VERSION]`).
    pub name: String,
    /// The absolute source path as given at backup time (raw bytes).
    #[serde(with = "serde_bytes")]
    pub source: Vec<u8>,
    /// Whether the source was a single file rather than a folder.
    pub single_file: bool,
    /// Versions, oldest first.
    pub versions: Vec<Version>,
}

/// The whole catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Format version ([`CATALOG_FORMAT`]).
    pub format: u8,
    /// Increases on every change.
    pub revision: u64,
    /// The backups.
    pub backups: Vec<Backup>,
    /// Format 2: the packs each incremental backup run wrote, oldest first. A run's blocks stay while any kept
    /// snapshot uses a chunk in them (prune decides), whatever happens to the version that wrote them.
    pub packs: Vec<PackSet>,
    /// Format 2: what each incremental version holds (its [`Version`] has no entries and no blocks of its own).
    pub snapshots: Vec<Snapshot>,
}

/// The blocks one incremental backup run wrote (catalog format 2): packs of sealed chunks, erasure-coded without
/// a second encryption ([`crate::proto::pipeline::PackCoder`]); fragment ids derive from `id` as a format-1
/// version's do ([`crate::proto::pipeline::VersionKeys`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackSet {
    /// Random id; the fragment-id key derives from it.
    pub id: [u8; 16],
    /// Unix seconds when the run ended.
    pub created_unix: u64,
    /// The ecc layout its blocks use.
    pub layout: Layout,
    /// Suppliers by position when it was written (peer id bytes).
    pub suppliers: Vec<Vec<u8>>,
    /// The packs; `index` is the place in this list.
    pub blocks: Vec<BlockMeta>,
    /// The index objects that say where this run's chunks are: each a sealed chunk in one of these blocks.
    pub index: Vec<IndexRef>,
}

/// An index object (a postcard list of [`IndexEntry`], stored as a chunk) and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRef {
    /// Opens it.
    pub chunk: ChunkRef,
    /// Its block, offset and sealed length.
    pub at: IndexEntry,
}

/// What an incremental version holds: its root tree and what its run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The [`Version::id`] it belongs to.
    pub version_id: [u8; 16],
    /// Opens the root tree (for a single file: a tree of that one file).
    pub root: ChunkRef,
    /// The root folder's permission bits and modification time (its tree holds only what is in it).
    pub root_mode: u32,
    /// Seconds and nanoseconds.
    pub root_mtime: (i64, u32),
    /// Regular files, folders and symbolic links in it.
    pub files: u64,
    /// Folders.
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Plaintext bytes of the chunks this run stored (not found in earlier runs).
    pub new_bytes: u64,
    /// Files taken from the parent snapshot without being read (size, mtime, ctime, inode unchanged).
    pub unchanged_files: u64,
    /// Bytes the run's packs take on the suppliers (fragments, headers included).
    pub stored_bytes: u64,
    /// Files that kept changing while they were read (stored as last read, reported here).
    pub changed: Vec<String>,
}

/// What a format-1 catalog was (kept to read one).
#[derive(Deserialize)]
struct CatalogV1 {
    format: u8,
    revision: u64,
    backups: Vec<Backup>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

/// One set of blocks that maintenance keeps: a format-1 version's or a format-2 pack set's.
#[derive(Debug, Clone, Copy)]
pub struct BlockSet<'a> {
    /// The version or pack set id (fragment ids derive from it).
    pub id: [u8; 16],
    /// Unix seconds it was made.
    pub created_unix: u64,
    /// Its layout.
    pub layout: Layout,
    /// Suppliers by position when it was written.
    pub suppliers: &'a [Vec<u8>],
    /// Its blocks.
    pub blocks: &'a [BlockMeta],
    /// Whether the blocks are packs ([`crate::proto::pipeline::PackCoder`]) rather than sealed blocks.
    pub packed: bool,
}

impl Catalog {
    /// An empty catalog of the current format.
    pub fn new() -> Self {
        Self { format: CATALOG_FORMAT, revision: 0, backups: Vec::new(), packs: Vec::new(), snapshots: Vec::new() }
    }

    /// Decodes a postcard catalog of format 1 or 2.
    ///
    /// # Errors
    /// A message if it is of another format or malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        match bytes.first() {
            Some(1) => {
                let v1: CatalogV1 = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
                let _ = v1.format;
                Ok(Self { format: CATALOG_FORMAT, revision: v1.revision, backups: v1.backups, ..Self::default() })
            }
            Some(2) => postcard::from_bytes(bytes).map_err(|e| e.to_string()),
            Some(f) => Err(format!("catalog format {f} is unknown (this program reads 1 and 2)")),
            None => Err("empty catalog".into()),
        }
    }

    /// Every set of blocks on the suppliers: format-1 versions, then format-2 pack sets.
    pub fn block_sets(&self) -> impl Iterator<Item = BlockSet<'_>> {
        let versions = self.backups.iter().flat_map(|b| b.versions.iter()).map(|v| BlockSet {
            id: v.id,
            created_unix: v.created_unix,
            layout: v.layout,
            suppliers: &v.suppliers,
            blocks: &v.blocks,
            packed: false,
        });
        let packs = self.packs.iter().map(|p| BlockSet {
            id: p.id,
            created_unix: p.created_unix,
            layout: p.layout,
            suppliers: &p.suppliers,
            blocks: &p.blocks,
            packed: true,
        });
        versions.chain(packs)
    }

    /// The block set `id`.
    pub fn block_set(&self, id: &[u8; 16]) -> Option<BlockSet<'_>> {
        self.block_sets().find(|s| &s.id == id)
    }

    /// The snapshot of `version`, if it is an incremental one.
    pub fn snapshot(&self, version: &Version) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| s.version_id == version.id)
    }

    /// Finds a backup by name.
    pub fn backup(&self, name: &str) -> Option<&Backup> {
        self.backups.iter().find(|b| b.name == name)
    }

    /// A name for a new backup of `source`: the existing one if `source` was backed up before, otherwise
    /// `base` made unique with a numeric suffix.
    pub fn name_for(&self, source: &[u8], base: &str) -> String {
        if let Some(b) = self.backups.iter().find(|b| b.source == source) {
            return b.name.clone();
        }
        let base = if base.is_empty() { "root" } else { base };
        let mut name = base.to_string();
        let mut i = 2;
        while self.backup(&name).is_some() {
            name = format!("{base}-{i}");
            i += 1;
        }
        name
    }
}

/// A catalog sealed for storage on suppliers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedCatalog {
    /// Owner peer id bytes.
    #[serde(with = "serde_bytes")]
    pub owner: Vec<u8>,
    /// The catalog's revision (in clear, so suppliers can refuse rollbacks).
    pub revision: u64,
    /// AES-GCM nonce.
    pub nonce: [u8; 12],
    /// Ciphertext of the zstd-compressed postcard catalog.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
    /// Owner's Ed25519 signature.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl SealedCatalog {
    /// Encrypts and signs `catalog`.
    pub fn seal(keys: &NodeKeys, catalog: &Catalog) -> Self {
        let owner = keys.peer_id().to_bytes();
        let plain = postcard::to_stdvec(catalog).expect("catalog serializes");
        let compressed = zstd::bulk::compress(&plain, 3).unwrap_or(plain);
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = crate::proto::pipeline::aes_256_gcm(&catalog_key(keys));
        let aad = aad(&owner, catalog.revision);
        let mut ciphertext = compressed;
        cipher
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut ciphertext)
            .expect("AES-GCM seals any catalog below its 64 GiB message limit");
        let signature = keys.sign(&signed_bytes(&owner, catalog.revision, &nonce, &ciphertext));
        Self { owner, revision: catalog.revision, nonce, ciphertext, signature }
    }

    /// Checks the owner's signature (what a supplier does; needs no keys). Returns the owner.
    ///
    /// # Errors
    /// [`CatalogError::Signature`] if it does not verify.
    pub fn verify(&self) -> Result<PeerId, CatalogError> {
        let owner = keys::peer_id_from_bytes(&self.owner)?;
        keys::verify(
            &owner,
            &signed_bytes(&self.owner, self.revision, &self.nonce, &self.ciphertext),
            &self.signature,
        )?;
        Ok(owner)
    }

    /// Verifies, decrypts and decodes with the owner's keys.
    ///
    /// # Errors
    /// [`CatalogError`] if it is not `keys`' catalog, was tampered with, or is malformed.
    pub fn open(&self, keys: &NodeKeys) -> Result<Catalog, CatalogError> {
        if self.verify()? != keys.peer_id() {
            return Err(CatalogError::WrongOwner);
        }
        let cipher = crate::proto::pipeline::aes_256_gcm(&catalog_key(keys));
        let aad = aad(&self.owner, self.revision);
        let mut sealed = self.ciphertext.clone();
        let compressed = cipher
            .open_in_place(Nonce::assume_unique_for_key(self.nonce), Aad::from(&aad), &mut sealed)
            .map_err(|_| CatalogError::Authentication)?;
        let plain = zstd::bulk::decompress(compressed, MAX_SEALED_CATALOG_BYTES * 4)
            .map_err(|e| CatalogError::Malformed(e.to_string()))?;
        let catalog = Catalog::decode(&plain).map_err(CatalogError::Malformed)?;
        if catalog.revision != self.revision {
            return Err(CatalogError::Malformed("revision differs from the sealed revision".into()));
        }
        Ok(catalog)
    }

    /// Encodes to bytes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("sealed catalog serializes")
    }

    /// Decodes bytes (does not verify).
    ///
    /// # Errors
    /// [`CatalogError`] if too large or malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, CatalogError> {
        if bytes.len() > MAX_SEALED_CATALOG_BYTES {
            return Err(CatalogError::TooLarge(bytes.len()));
        }
        postcard::from_bytes(bytes).map_err(|e| CatalogError::Malformed(e.to_string()))
    }
}

fn catalog_key(keys: &NodeKeys) -> [u8; 32] {
    keys.master().derive("bitdust 2026-11 catalog key v1", b"")
}

fn aad(owner: &[u8], revision: u64) -> Vec<u8> {
    let mut a = owner.to_vec();
    a.extend(revision.to_le_bytes());
    a
}

fn signed_bytes(owner: &[u8], revision: u64, nonce: &[u8; 12], ciphertext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CATALOG_PURPOSE.len() + owner.len() + 20 + 32);
    out.extend_from_slice(CATALOG_PURPOSE);
    out.extend_from_slice(&(owner.len() as u32).to_le_bytes());
    out.extend_from_slice(owner);
    out.extend_from_slice(&revision.to_le_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(blake3::hash(ciphertext).as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_seals_and_opens_only_for_its_owner() {
        let keys = NodeKeys::from_seed([5u8; 32]).unwrap();
        let mut cat = Catalog { revision: 3, ..Catalog::new() };
        cat.backups.push(Backup {
            name: "docs".into(),
            source: b"/x/docs".to_vec(),
            single_file: false,
            versions: vec![],
        });
        let sealed = SealedCatalog::seal(&keys, &cat);
        assert_eq!(sealed.verify().unwrap(), keys.peer_id());
        let back = SealedCatalog::decode(&sealed.encode()).unwrap().open(&keys).unwrap();
        assert_eq!(back, cat);
        let other = NodeKeys::from_seed([6u8; 32]).unwrap();
        assert!(matches!(sealed.open(&other), Err(CatalogError::WrongOwner)));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(tampered.verify().is_err());
        let mut rolled = sealed;
        rolled.revision = 9;
        assert!(rolled.verify().is_err());
    }

    #[test]
    fn a_format_1_catalog_reads_as_format_2_and_unknown_formats_are_refused() {
        #[derive(Serialize)]
        struct V1 {
            format: u8,
            revision: u64,
            backups: Vec<Backup>,
        }
        let backups =
            vec![Backup { name: "docs".into(), source: b"/x/docs".to_vec(), single_file: false, versions: vec![] }];
        let old = postcard::to_stdvec(&V1 { format: 1, revision: 7, backups: backups.clone() }).unwrap();
        let read = Catalog::decode(&old).unwrap();
        assert_eq!((read.format, read.revision, &read.backups), (CATALOG_FORMAT, 7, &backups));
        assert!(read.packs.is_empty() && read.snapshots.is_empty());
        let now = postcard::to_stdvec(&read).unwrap();
        assert_eq!(Catalog::decode(&now).unwrap(), read);
        let mut future = now;
        future[0] = 3;
        assert!(Catalog::decode(&future).unwrap_err().contains("format 3"));
        assert!(Catalog::decode(&[]).is_err());
    }

    #[test]
    fn names_are_unique_and_stable_per_source() {
        let mut cat = Catalog::default();
        cat.backups.push(Backup {
            name: "doc".into(),
            source: b"/a/doc".to_vec(),
            single_file: false,
            versions: vec![],
        });
        assert_eq!(cat.name_for(b"/a/doc", "doc"), "doc");
        assert_eq!(cat.name_for(b"/b/doc", "doc"), "doc-2");
    }
}
