//! What the benches share: reproducible pseudo-random data.

/// An endless xorshift64 sequence from `seed` (Marsaglia, "Xorshift RNGs", 2003): fast, reproducible filler,
/// not for anything secret.
pub fn xorshift(seed: u64) -> impl Iterator<Item = u64> {
    let mut x = seed | 1;
    std::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    })
}

/// `len` incompressible bytes from `seed`.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    xorshift(seed).map(|x| (x >> 24) as u8).take(len).collect()
}
