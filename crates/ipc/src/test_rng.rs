//! A small deterministic generator for the tests' random inputs: the same
//! cases on every run, so a failure can be reproduced.

/// Marsaglia's xorshift64 from `seed` (not zero).
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
