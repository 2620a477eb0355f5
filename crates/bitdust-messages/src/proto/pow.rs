//! Proof of work on mailbox deposits (hashcash, Back 2002, with BLAKE3): leaving a message in someone's mailbox
//! costs the sender about 2^[`DEPOSIT_BITS`] hashes (tens of milliseconds), so filling mailboxes with spam costs CPU
//! time per message, while checking costs one hash.
//!
//! The work is bound to the recipient, the sender and the envelope: `BLAKE3-derive_key("bitdust 2026-12 mailbox
//! pow v1", recipient ‖ sender ‖ BLAKE3(ciphertext) ‖ nonce)` must start with [`DEPOSIT_BITS`] zero bits.

/// Leading zero bits a deposit's proof must have.
pub const DEPOSIT_BITS: u32 = 16;

fn digest(recipient: &[u8], sender: &[u8], ciphertext: &[u8], nonce: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("bitdust 2026-12 mailbox pow v1");
    h.update(&(recipient.len() as u32).to_le_bytes());
    h.update(recipient);
    h.update(&(sender.len() as u32).to_le_bytes());
    h.update(sender);
    h.update(blake3::hash(ciphertext).as_bytes());
    h.update(&nonce.to_le_bytes());
    *h.finalize().as_bytes()
}

fn leading_zeros(d: &[u8; 32]) -> u32 {
    let mut n = 0;
    for b in d {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Whether `nonce` proves `bits` of work for this deposit.
pub fn check(recipient: &[u8], sender: &[u8], ciphertext: &[u8], nonce: u64, bits: u32) -> bool {
    leading_zeros(&digest(recipient, sender, ciphertext, nonce)) >= bits
}

/// Finds a nonce proving `bits` of work for this deposit (about 2^bits hashes; blocking).
pub fn solve(recipient: &[u8], sender: &[u8], ciphertext: &[u8], bits: u32) -> u64 {
    let inner = blake3::hash(ciphertext);
    let mut h = blake3::Hasher::new_derive_key("bitdust 2026-12 mailbox pow v1");
    h.update(&(recipient.len() as u32).to_le_bytes());
    h.update(recipient);
    h.update(&(sender.len() as u32).to_le_bytes());
    h.update(sender);
    h.update(inner.as_bytes());
    (0u64..)
        .find(|nonce| {
            let mut h = h.clone();
            h.update(&nonce.to_le_bytes());
            leading_zeros(h.finalize().as_bytes()) >= bits
        })
        .unwrap_or(0)
}

/// What a recipient tells its mailboxes for each contact: BLAKE3 (derive-key mode) over the recipient's and the
/// contact's peer id bytes. A mailbox, which sees both with every deposit, can tell a contact's deposit from a
/// stranger's; the list alone does not name anyone (a tag is tied to this recipient).
pub fn contact_tag(recipient: &[u8], contact: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("bitdust 2026-12 mailbox contact tag v1");
    h.update(&(recipient.len() as u32).to_le_bytes());
    h.update(recipient);
    h.update(contact);
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_tags_are_tied_to_the_recipient() {
        let (r1, r2, c) = (vec![1u8; 38], vec![2u8; 38], vec![3u8; 38]);
        assert_eq!(contact_tag(&r1, &c), contact_tag(&r1, &c));
        assert_ne!(contact_tag(&r1, &c), contact_tag(&r2, &c), "the same contact of two users differs");
        assert_ne!(contact_tag(&r1, &c), contact_tag(&c, &r1));
    }

    #[test]
    fn a_solved_proof_checks_and_binds_recipient_sender_and_envelope() {
        let nonce = solve(b"bob", b"alice", b"ciphertext", 12);
        assert!(check(b"bob", b"alice", b"ciphertext", nonce, 12));
        assert!(!check(b"bob", b"alice", b"ciphertext", nonce, 30), "not that much work");
        assert!(
            !check(b"carol", b"alice", b"ciphertext", nonce, 12)
                || !check(b"bob", b"mallory", b"ciphertext", nonce, 12)
        );
        let others = (0..16u64).filter(|n| check(b"bob", b"alice", b"other", *n, 12)).count();
        assert!(others < 4, "random nonces rarely pass");
    }
}
