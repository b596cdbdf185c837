//! Whole-file hash signatures (`.hdb`, `.hsb`) and allow lists (`.fp`, `.sfp`).
//!
//! Each digest kind is a sorted array of packed records searched by
//! bisection: 28 bytes an MD5 signature, no per-entry allocation, and the same
//! bytes whether built in memory or mapped from the compiled cache. Sorted by
//! size first, the array also tells whether any signature has a file's size,
//! so a digest is computed only when one could match (or a signature has `*`
//! as its size), as ClamAV does.

use aether_sigs::HashKind;

use crate::bytes::{Bytes, u32_at};
use crate::names::NameId;

/// Records of `R` bytes: owned while building, or a range of the mapped cache.
#[derive(Debug)]
enum Records<const R: usize> {
    Owned(Vec<[u8; R]>),
    Mapped(Bytes),
}

impl<const R: usize> Default for Records<R> {
    fn default() -> Self {
        Records::Owned(Vec::new())
    }
}

impl<const R: usize> Records<R> {
    fn bytes(&self) -> &[u8] {
        match self {
            Records::Owned(v) => v.as_flattened(),
            Records::Mapped(b) => b,
        }
    }

    fn owned(&mut self) -> &mut Vec<[u8; R]> {
        if let Records::Mapped(b) = self {
            let v = b
                .chunks_exact(R)
                .map(|c| <[u8; R]>::try_from(c).unwrap_or([0; R]))
                .collect();
            *self = Records::Owned(v);
        }
        match self {
            Records::Owned(v) => v,
            Records::Mapped(_) => unreachable!("converted above"),
        }
    }
}

/// Signatures of one digest length `N`; `S = N + 12` and `W = N + 4` are the
/// record sizes (const generics cannot compute them yet).
///
/// A sized record is the size (u64, big-endian, so that byte order is numeric
/// order), the digest and the name (u32 LE): sorting and searching compare the
/// first `8 + N` bytes as they are. A `*`-size record is the digest and the name.
#[derive(Debug, Default)]
pub(crate) struct HashTable<const N: usize, const S: usize, const W: usize> {
    sized: Records<S>,
    wild: Records<W>,
}

pub(crate) type Md5Table = HashTable<16, 28, 20>;
pub(crate) type Sha1Table = HashTable<20, 32, 24>;
pub(crate) type Sha256Table = HashTable<32, 44, 36>;

impl<const N: usize, const S: usize, const W: usize> HashTable<N, S, W> {
    pub(crate) const SIZED: usize = S;
    pub(crate) const WILD: usize = W;

    pub(crate) fn from_bytes(sized: Bytes, wild: Bytes) -> Self {
        HashTable {
            sized: Records::Mapped(sized),
            wild: Records::Mapped(wild),
        }
    }

    pub(crate) fn sized_bytes(&self) -> &[u8] {
        self.sized.bytes()
    }

    pub(crate) fn wild_bytes(&self) -> &[u8] {
        self.wild.bytes()
    }

    pub(crate) fn insert(&mut self, digest: &[u8], size: Option<u64>, name: NameId) {
        if digest.len() != N {
            return;
        }
        match size {
            Some(size) => {
                let mut r = [0u8; S];
                r[..8].copy_from_slice(&size.to_be_bytes());
                r[8..8 + N].copy_from_slice(digest);
                r[8 + N..].copy_from_slice(&name.0.to_le_bytes());
                self.sized.owned().push(r);
            }
            None => {
                let mut r = [0u8; W];
                r[..N].copy_from_slice(digest);
                r[N..].copy_from_slice(&name.0.to_le_bytes());
                self.wild.owned().push(r);
            }
        }
    }

    /// Sorts the records in place, ready for bisection.
    pub(crate) fn finish(&mut self) {
        // Comparing the first 16 bytes as one integer, and the rest only on a
        // tie, gives the byte order at a fraction of memcmp's cost.
        fn head(r: &[u8]) -> u128 {
            let mut h = [0u8; 16];
            h.copy_from_slice(&r[..16]);
            u128::from_be_bytes(h)
        }
        let sized = self.sized.owned();
        sized.sort_unstable_by(|a, b| {
            head(a)
                .cmp(&head(b))
                .then_with(|| a[16..8 + N].cmp(&b[16..8 + N]))
        });
        sized.shrink_to_fit();
        let wild = self.wild.owned();
        wild.sort_unstable_by(|a, b| head(a).cmp(&head(b)).then_with(|| a[16..N].cmp(&b[16..N])));
        wild.shrink_to_fit();
    }

    fn sized_len(&self) -> usize {
        self.sized.bytes().len() / S
    }

    fn wild_len(&self) -> usize {
        self.wild.bytes().len() / W
    }

    pub(crate) fn len(&self) -> usize {
        self.sized_len() + self.wild_len()
    }

    fn sized_key(&self, i: usize) -> &[u8] {
        self.sized.bytes().get(i * S..i * S + 8 + N).unwrap_or(&[])
    }

    fn wild_key(&self, i: usize) -> &[u8] {
        self.wild.bytes().get(i * W..i * W + N).unwrap_or(&[])
    }

    /// First index in `0..n` for which `below(i)` is false.
    fn partition(n: usize, below: impl Fn(usize) -> bool) -> usize {
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if below(mid) { lo = mid + 1 } else { hi = mid }
        }
        lo
    }

    /// Whether a file of `size` bytes could match: its digest is worth computing.
    pub(crate) fn wants(&self, size: u64) -> bool {
        if self.wild_len() > 0 {
            return true;
        }
        let size = size.to_be_bytes();
        let n = self.sized_len();
        let i = Self::partition(n, |i| self.sized_key(i)[..8] < size[..]);
        i < n && self.sized_key(i)[..8] == size[..]
    }

    /// Every signature matching `digest` at `size`: sized ones first, then `*`.
    pub(crate) fn lookup(&self, digest: &[u8], size: u64, out: &mut Vec<NameId>) {
        if digest.len() != N {
            return;
        }
        let mut key = [0u8; S];
        key[..8].copy_from_slice(&size.to_be_bytes());
        key[8..8 + N].copy_from_slice(digest);
        let key = &key[..8 + N];
        let n = self.sized_len();
        let mut i = Self::partition(n, |i| self.sized_key(i) < key);
        while i < n && self.sized_key(i) == key {
            out.push(NameId(u32_at(self.sized.bytes(), i * S + 8 + N)));
            i += 1;
        }
        let n = self.wild_len();
        let mut i = Self::partition(n, |i| self.wild_key(i) < digest);
        while i < n && self.wild_key(i) == digest {
            out.push(NameId(u32_at(self.wild.bytes(), i * W + N)));
            i += 1;
        }
    }
}

/// The three digest kinds together.
#[derive(Debug, Default)]
pub(crate) struct HashDb {
    pub(crate) md5: Md5Table,
    pub(crate) sha1: Sha1Table,
    pub(crate) sha256: Sha256Table,
}

/// Which digests a scan must compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needed {
    pub(crate) md5: bool,
    pub(crate) sha1: bool,
    pub(crate) sha256: bool,
}

impl Needed {
    pub(crate) fn any(self) -> bool {
        self.md5 || self.sha1 || self.sha256
    }

    pub(crate) fn or(self, other: Needed) -> Needed {
        Needed {
            md5: self.md5 || other.md5,
            sha1: self.sha1 || other.sha1,
            sha256: self.sha256 || other.sha256,
        }
    }
}

/// A file's digests, as far as computed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Digests {
    pub(crate) md5: Option<[u8; 16]>,
    pub(crate) sha1: Option<[u8; 20]>,
    pub(crate) sha256: Option<[u8; 32]>,
}

impl HashDb {
    pub(crate) fn insert(
        &mut self,
        kind: HashKind,
        digest: &[u8],
        size: Option<u64>,
        name: NameId,
    ) {
        match kind {
            HashKind::Md5 => self.md5.insert(digest, size, name),
            HashKind::Sha1 => self.sha1.insert(digest, size, name),
            HashKind::Sha256 => self.sha256.insert(digest, size, name),
        }
    }

    pub(crate) fn finish(&mut self) {
        self.md5.finish();
        self.sha1.finish();
        self.sha256.finish();
    }

    pub(crate) fn len(&self) -> usize {
        self.md5.len() + self.sha1.len() + self.sha256.len()
    }

    pub(crate) fn needed(&self, size: u64) -> Needed {
        Needed {
            md5: self.md5.wants(size),
            sha1: self.sha1.wants(size),
            sha256: self.sha256.wants(size),
        }
    }

    /// All matches in ClamAV's order: MD5, SHA1, SHA256; sized before `*`.
    pub(crate) fn lookup(&self, d: &Digests, size: u64, out: &mut Vec<NameId>) {
        if let Some(h) = &d.md5 {
            self.md5.lookup(h, size, out);
        }
        if let Some(h) = &d.sha1 {
            self.sha1.lookup(h, size, out);
        }
        if let Some(h) = &d.sha256 {
            self.sha256.lookup(h, size, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_and_wild_lookup() {
        let mut t = Md5Table::default();
        t.insert(&[1; 16], Some(10), NameId(0));
        t.insert(&[1; 16], Some(11), NameId(1));
        t.insert(&[2; 16], None, NameId(2));
        t.insert(&[1; 16], None, NameId(3));
        t.finish();
        assert!(t.wants(10));
        let mut out = Vec::new();
        t.lookup(&[1; 16], 10, &mut out);
        assert_eq!(out, vec![NameId(0), NameId(3)]);
        out.clear();
        t.lookup(&[1; 16], 12, &mut out);
        assert_eq!(out, vec![NameId(3)]);
        out.clear();
        t.lookup(&[3; 16], 10, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn sizes_gate_hashing() {
        let mut t = Md5Table::default();
        t.insert(&[1; 16], Some(10), NameId(0));
        t.finish();
        assert!(t.wants(10));
        assert!(!t.wants(11));
    }
}
