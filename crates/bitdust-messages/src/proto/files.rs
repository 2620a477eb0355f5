//! File transfer between contacts: an offer inside an end-to-end encrypted message, then the file pulled in
//! verified slices, so a cut link resumes where it stopped and a corrupted slice is refused.
//!
//! The sender computes the file's Bao outboard tree (BLAKE3 in verified streaming mode: Jack O'Connor, "Bao",
//! <https://github.com/oconnor663/bao>, spec in its repository) and sends a [`FileOffer`] carrying the root hash.
//! The recipient asks for [`CHUNK_BYTES`] at a time at any offset ([`crate::proto::wire::Request::FileGet`]); each
//! answer is a Bao slice (the bytes interleaved with the tree nodes that prove them) that [`verify`] checks against
//! the root hash from the offer before a byte is written. Resuming is asking from the first offset not yet written.
//!
//! Pure: readers and writers are the caller's (files on disk in the service).

use std::io::{Read, Seek, Write};

use serde::{Deserialize, Serialize};

/// Bytes asked per request.
pub const CHUNK_BYTES: u64 = 1 << 20;
/// The largest slice of [`CHUNK_BYTES`]: the bytes, about 64 bytes of tree per KiB, and the length header.
pub const MAX_SLICE_BYTES: usize = CHUNK_BYTES as usize + CHUNK_BYTES as usize / 8 + 4096;
/// The longest file name kept, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Errors of file transfer.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A slice that does not prove the asked bytes against the offer's hash.
    #[error("slice at {offset} does not verify: {why}")]
    Corrupt {
        /// Where it was asked.
        offset: u64,
        /// What the decoder said.
        why: String,
    },
    /// A range outside the file.
    #[error("range {offset}+{len} is outside a file of {size} bytes")]
    BadRange {
        /// Start.
        offset: u64,
        /// Length.
        len: u64,
        /// File size.
        size: u64,
    },
    /// A read or write failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What the sender offers, inside an encrypted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffer {
    /// The transfer's random id (what the recipient asks slices of).
    pub transfer: [u8; 16],
    /// The file's name (no folders; see [`safe_name`]).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The Bao (BLAKE3) root hash of its bytes.
    pub hash: [u8; 32],
}

/// Writes the Bao outboard tree of everything `input` yields into `outboard` (read, written and rewound by the
/// encoder) and returns the root hash.
///
/// # Errors
/// A read or write failure.
pub fn outboard<R: Read, O: Read + Write + Seek>(mut input: R, outboard: O) -> Result<[u8; 32], FileError> {
    let mut encoder = bao::encode::Encoder::new_outboard(outboard);
    std::io::copy(&mut input, &mut encoder)?;
    Ok(*encoder.finalize()?.as_bytes())
}

/// The length of the chunk at `offset` of a file of `size` bytes.
pub fn chunk_len(size: u64, offset: u64) -> u64 {
    size.saturating_sub(offset).min(CHUNK_BYTES)
}

/// The Bao slice proving `len` bytes at `offset` of a file of `size` bytes, from the file and its outboard tree
/// (the sender's side).
///
/// # Errors
/// [`FileError::BadRange`] for an empty range, one over [`CHUNK_BYTES`] or outside the file; a read failure.
pub fn extract<R: Read + Seek, O: Read + Seek>(
    file: R,
    outboard: O,
    size: u64,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, FileError> {
    if len == 0 || len > CHUNK_BYTES || offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(FileError::BadRange { offset, len, size });
    }
    let mut slice = Vec::with_capacity(len as usize + len as usize / 16 + 64);
    bao::encode::SliceExtractor::new_outboard(file, outboard, offset, len).read_to_end(&mut slice)?;
    Ok(slice)
}

/// Checks a slice against the offer's root `hash` and returns the `len` bytes at `offset` it proves (the
/// recipient's side).
///
/// # Errors
/// [`FileError::Corrupt`] if it is too large, does not verify, or proves fewer bytes than asked.
pub fn verify(slice: &[u8], hash: &[u8; 32], offset: u64, len: u64) -> Result<Vec<u8>, FileError> {
    let corrupt = |why: String| FileError::Corrupt { offset, why };
    if slice.len() > MAX_SLICE_BYTES {
        return Err(corrupt(format!("{} bytes is over the slice limit", slice.len())));
    }
    let hash = bao::Hash::from(*hash);
    let mut decoder = bao::decode::SliceDecoder::new(slice, &hash, offset, len);
    let mut content = Vec::with_capacity(len as usize);
    decoder.read_to_end(&mut content).map_err(|e| corrupt(e.to_string()))?;
    if content.len() as u64 != len {
        return Err(corrupt(format!("{} bytes proven of {len} asked", content.len())));
    }
    Ok(content)
}

/// A name safe to create in a folder: the last component of `name`, without control characters or a leading
/// dot, at most [`MAX_NAME_BYTES`] bytes, `file` if nothing is left.
pub fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out: String = last.chars().filter(|c| !c.is_control()).collect();
    while out.starts_with('.') {
        out.remove(0);
    }
    while out.len() > MAX_NAME_BYTES {
        out.pop();
    }
    if out.trim().is_empty() {
        "file".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn file(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn every_chunk_verifies_and_any_flipped_byte_is_refused() {
        let data = file(3 * CHUNK_BYTES as usize + 12_345);
        let mut tree = Cursor::new(Vec::new());
        let hash = outboard(&data[..], &mut tree).unwrap();
        assert_eq!(hash, *blake3::hash(&data).as_bytes(), "Bao's root is the BLAKE3 hash");
        let size = data.len() as u64;
        let mut offset = 0;
        while offset < size {
            let len = chunk_len(size, offset);
            let slice = extract(Cursor::new(&data), Cursor::new(tree.get_ref()), size, offset, len).unwrap();
            assert!(slice.len() <= MAX_SLICE_BYTES);
            let got = verify(&slice, &hash, offset, len).unwrap();
            assert_eq!(got, &data[offset as usize..(offset + len) as usize]);
            for at in [0, 8, slice.len() / 3, slice.len() - 1] {
                let mut bad = slice.clone();
                bad[at] ^= 1;
                assert!(matches!(verify(&bad, &hash, offset, len), Err(FileError::Corrupt { .. })), "byte {at}");
            }
            // a slice of the right bytes at another offset does not prove this one
            if offset > 0 {
                assert!(verify(&slice, &hash, offset - CHUNK_BYTES, len).is_err());
            }
            offset += len;
        }
        // the file changed on the sender's disk after the offer: its slices no longer verify
        let mut changed = data.clone();
        changed[CHUNK_BYTES as usize + 5] ^= 0x80;
        let slice =
            extract(Cursor::new(&changed), Cursor::new(tree.get_ref()), size, CHUNK_BYTES, CHUNK_BYTES).unwrap();
        assert!(verify(&slice, &hash, CHUNK_BYTES, CHUNK_BYTES).is_err());
        assert!(verify(&slice[..slice.len() / 2], &hash, CHUNK_BYTES, CHUNK_BYTES).is_err(), "a cut slice");
    }

    #[test]
    fn ranges_outside_the_file_are_refused() {
        let data = file(1000);
        let mut tree = Cursor::new(Vec::new());
        outboard(&data[..], &mut tree).unwrap();
        for (offset, len) in [(0, 0), (999, 2), (0, CHUNK_BYTES + 1), (u64::MAX, 1)] {
            let r = extract(Cursor::new(&data), Cursor::new(tree.get_ref()), 1000, offset, len);
            assert!(matches!(r, Err(FileError::BadRange { .. })), "{offset}+{len}");
        }
    }

    #[test]
    fn names_lose_their_folders_and_dots() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("a\\b\\c.txt"), "c.txt");
        assert_eq!(safe_name(".hidden"), "hidden");
        assert_eq!(safe_name(".."), "file");
        assert_eq!(safe_name("x\u{0}y\n"), "xy");
        assert_eq!(safe_name(&"é".repeat(200)).len(), 254);
    }
}
