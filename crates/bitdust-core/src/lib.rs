//! # bitdust-core
//!
//! The pure core every layer and wing shares: keys, the identity document, signed DHT records and the
//! automaton machinery (transition tables and their diagrams). No tokio, no sockets, no disk: everything here
//! is deterministic given its inputs and fast to test. Feature wings (storage, later messages and sharing)
//! keep their own protocol types in their own crates.
//!
//! ```
//! use bitdust_core::{identity::SignedIdentity, keys::NodeKeys};
//!
//! let keys = NodeKeys::generate();
//! let id = SignedIdentity::create(&keys, "alice", vec![], 1, 1_700_000_000).unwrap();
//! // anyone can check the document against the peer id it names
//! let decoded = SignedIdentity::decode_verified(&id.encode()).unwrap();
//! assert_eq!(decoded.identity.peer().unwrap(), keys.peer_id());
//! ```

pub mod automata;
pub mod identity;
pub mod keys;
pub mod record;

pub use libp2p_identity::PeerId;

/// The largest capability a wing hands another user inside a message (a shared file's or a share's key), in
/// bytes. The storage wing never makes a bigger one; the messages wing refuses a bigger one from a peer.
pub const MAX_CAPABILITY_BYTES: usize = 48 * 1024;

/// Formats a byte count for people: `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Parses a size such as `10G`, `512MiB`, `1000000` (bytes; K/M/G/T suffixes are powers of 1024).
///
/// # Errors
/// A message naming the bad input.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| format!("invalid size {text:?}: expected e.g. 10G, 512M, 4096"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("invalid size unit in {text:?}: use K, M, G or T")),
    };
    Ok((num * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(super::parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(super::parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(super::parse_size("4096").unwrap(), 4096);
        assert!(super::parse_size("ten").is_err());
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
    }
}
