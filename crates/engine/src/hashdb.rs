//! Whole-file hash signatures (`.hdb`, `.hsb`) and allow lists (`.fp`, `.sfp`).
//!
//! Each digest kind is a sorted array searched by bisection: 32 bytes an MD5
//! signature, no per-entry allocation, and a sorted list of the sizes that occur,
//! so a file's digest is computed only when some signature has its size (or any
//! size), as ClamAV does.

use aether_sigs::HashKind;

use crate::names::NameId;

/// Signatures of one digest length `N`.
#[derive(Debug, Default)]
pub(crate) struct HashTable<const N: usize> {
    /// Sorted by (size, digest).
    pub(crate) sized: Vec<(u64, [u8; N], NameId)>,
    /// Sorted by digest: signatures with `*` as size.
    pub(crate) wild: Vec<([u8; N], NameId)>,
}

impl<const N: usize> HashTable<N> {
    pub(crate) fn insert(&mut self, digest: &[u8], size: Option<u64>, name: NameId) {
        let Ok(d) = <[u8; N]>::try_from(digest) else {
            return;
        };
        match size {
            Some(s) => self.sized.push((s, d, name)),
            None => self.wild.push((d, name)),
        }
    }

    pub(crate) fn finish(&mut self) {
        self.sized.sort_unstable_by_key(|e| (e.0, e.1));
        self.wild.sort_unstable_by_key(|e| e.0);
        self.sized.shrink_to_fit();
        self.wild.shrink_to_fit();
    }

    pub(crate) fn len(&self) -> usize {
        self.sized.len() + self.wild.len()
    }

    /// Whether a file of `size` bytes could match: its digest is worth computing.
    pub(crate) fn wants(&self, size: u64) -> bool {
        if !self.wild.is_empty() {
            return true;
        }
        let i = self.sized.partition_point(|e| e.0 < size);
        self.sized.get(i).is_some_and(|e| e.0 == size)
    }

    /// Every signature matching `digest` at `size`: sized ones first, then `*`.
    pub(crate) fn lookup(&self, digest: &[u8], size: u64, out: &mut Vec<NameId>) {
        let Ok(d) = <[u8; N]>::try_from(digest) else {
            return;
        };
        let start = self.sized.partition_point(|e| (e.0, e.1) < (size, d));
        out.extend(
            self.sized[start..]
                .iter()
                .take_while(|e| e.0 == size && e.1 == d)
                .map(|e| e.2),
        );
        let start = self.wild.partition_point(|e| e.0 < d);
        out.extend(
            self.wild[start..]
                .iter()
                .take_while(|e| e.0 == d)
                .map(|e| e.1),
        );
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
