//! Whole-file hash signatures (`.hdb`, `.hsb`) and allow lists (`.fp`, `.sfp`).
//!
//! Each digest kind is a sorted array of packed records searched by
//! bisection: 28 bytes an MD5 signature, no per-entry allocation, and the same
//! bytes whether built in memory or mapped from the compiled cache. Sorted by
//! size first, the array also tells whether any signature has a file's size,
//! so a digest is computed only when one could match (or a signature has `*`
//! as its size), as ClamAV does.

use aether_sigs::HashKind;

use crate::bytes::{Bytes, u32_at, u64_at};
use crate::names::NameId;

/// Signatures of one digest length `N`.
#[derive(Debug, Default)]
pub(crate) struct HashTable<const N: usize> {
    /// Records of `N + 12` bytes: size (u64 LE), digest, name (u32 LE);
    /// sorted by (size, digest).
    pub(crate) sized: Bytes,
    /// Records of `N + 4` bytes: digest, name; sorted by digest (`*` sizes).
    pub(crate) wild: Bytes,
    /// Records collected by the builder, packed by [`HashTable::finish`].
    pending_sized: Vec<(u64, [u8; N], NameId)>,
    pending_wild: Vec<([u8; N], NameId)>,
}

impl<const N: usize> HashTable<N> {
    pub(crate) const SIZED: usize = N + 12;
    pub(crate) const WILD: usize = N + 4;

    pub(crate) fn from_bytes(sized: Bytes, wild: Bytes) -> HashTable<N> {
        HashTable {
            sized,
            wild,
            pending_sized: Vec::new(),
            pending_wild: Vec::new(),
        }
    }

    pub(crate) fn insert(&mut self, digest: &[u8], size: Option<u64>, name: NameId) {
        let Ok(d) = <[u8; N]>::try_from(digest) else {
            return;
        };
        match size {
            Some(s) => self.pending_sized.push((s, d, name)),
            None => self.pending_wild.push((d, name)),
        }
    }

    pub(crate) fn finish(&mut self) {
        let mut sized = std::mem::take(&mut self.pending_sized);
        let mut wild = std::mem::take(&mut self.pending_wild);
        sized.sort_unstable_by_key(|e| (e.0, e.1));
        wild.sort_unstable_by_key(|e| e.0);
        let out = self.sized.make_mut();
        out.reserve_exact(sized.len() * Self::SIZED);
        for (s, d, n) in sized {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&d);
            out.extend_from_slice(&n.0.to_le_bytes());
        }
        let out = self.wild.make_mut();
        out.reserve_exact(wild.len() * Self::WILD);
        for (d, n) in wild {
            out.extend_from_slice(&d);
            out.extend_from_slice(&n.0.to_le_bytes());
        }
    }

    fn sized_len(&self) -> usize {
        self.sized.len() / Self::SIZED
    }

    fn wild_len(&self) -> usize {
        self.wild.len() / Self::WILD
    }

    pub(crate) fn len(&self) -> usize {
        self.sized_len() + self.wild_len()
    }

    fn size_at(&self, i: usize) -> u64 {
        u64_at(&self.sized, i * Self::SIZED)
    }

    fn sized_digest(&self, i: usize) -> &[u8] {
        let at = i * Self::SIZED + 8;
        self.sized.get(at..at + N).unwrap_or(&[])
    }

    fn wild_digest(&self, i: usize) -> &[u8] {
        let at = i * Self::WILD;
        self.wild.get(at..at + N).unwrap_or(&[])
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
        let i = Self::partition(self.sized_len(), |i| self.size_at(i) < size);
        i < self.sized_len() && self.size_at(i) == size
    }

    /// Every signature matching `digest` at `size`: sized ones first, then `*`.
    pub(crate) fn lookup(&self, digest: &[u8], size: u64, out: &mut Vec<NameId>) {
        if digest.len() != N {
            return;
        }
        let n = self.sized_len();
        let key = |i: usize| (self.size_at(i), self.sized_digest(i));
        let mut i = Self::partition(n, |i| key(i) < (size, digest));
        while i < n && key(i) == (size, digest) {
            out.push(NameId(u32_at(&self.sized, i * Self::SIZED + 8 + N)));
            i += 1;
        }
        let n = self.wild_len();
        let mut i = Self::partition(n, |i| self.wild_digest(i) < digest);
        while i < n && self.wild_digest(i) == digest {
            out.push(NameId(u32_at(&self.wild, i * Self::WILD + N)));
            i += 1;
        }
    }
}

/// The three digest kinds together.
#[derive(Debug, Default)]
pub(crate) struct HashDb {
    pub(crate) md5: HashTable<16>,
    pub(crate) sha1: HashTable<20>,
    pub(crate) sha256: HashTable<32>,
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
        let mut t = HashTable::<16>::default();
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
        let mut t = HashTable::<16>::default();
        t.insert(&[1; 16], Some(10), NameId(0));
        t.finish();
        assert!(t.wants(10));
        assert!(!t.wants(11));
    }
}
