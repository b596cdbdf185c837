//! Whole-file hash signatures (`.hdb`, `.hsb`) and allow lists (`.fp`, `.sfp`).
//!
//! Each digest kind is a sorted array of packed records searched by
//! bisection: 28 bytes an MD5 signature, no per-entry allocation, and the same
//! bytes whether built in memory or mapped from the compiled cache. Sorted by
//! size first, the array also tells whether any signature has a file's size,
//! so a digest is computed only when one could match (or a signature has `*`
//! as its size), as ClamAV does.
//!
//! A large table loaded from the compiled cache is not read through its
//! mapping but a block at a time ([`Paged`]): a page fault on a file mapping
//! maps the 16 pages around it too, so a few thousand lookups made the whole
//! table (32 MB for a million MD5 signatures) resident in every scanning
//! process. Read with `pread`, the pages stay in the page cache, shared and
//! reclaimable, and the process holds one 4 KiB block per lookup.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use aether_sigs::HashKind;

use crate::bytes::{Bytes, u32_at};
use crate::names::NameId;

/// Records of `R` bytes: owned while building, a range of the mapped cache,
/// or that range read from the cache file a block at a time.
#[derive(Debug)]
enum Records<const R: usize> {
    Owned(Vec<[u8; R]>),
    Mapped(Bytes),
    Paged(Paged),
}

/// Bytes per block read from the file, at most; a block is a whole number of
/// records.
const BLOCK: usize = 4096;

/// Tables smaller than this stay mapped: their few pages cost less than an
/// index.
const PAGED_MIN: usize = 256 << 10;

/// Sorted records kept in the cache file. In memory is only the key of each
/// block's first record (164 KB for a million MD5 signatures), which tells the
/// one block a key can start in.
#[derive(Debug)]
struct Paged {
    file: Arc<File>,
    /// Where the records start in the file.
    start: u64,
    /// The same records through the map, read only if the file cannot be.
    mapped: Bytes,
    /// Records per block.
    per_block: usize,
    /// Key bytes of each block's first record, `key` bytes each.
    fences: Box<[u8]>,
    key: usize,
}

impl Paged {
    /// Indexes `mapped` (records of `record` bytes, compared on their first
    /// `key` bytes), which is the range starting at `start` of `file`.
    fn new(
        file: Arc<File>,
        start: u64,
        mapped: Bytes,
        record: usize,
        key: usize,
    ) -> std::io::Result<Paged> {
        let per_block = (BLOCK / record).max(1);
        let block_bytes = per_block * record;
        let len = mapped.len();
        let mut fences = Vec::with_capacity(len.div_ceil(block_bytes) * key);
        // Read sequentially in large pieces: the index is built once, at load.
        let piece = block_bytes * 64;
        let mut buf = vec![0u8; piece];
        let mut at = 0;
        while at < len {
            let n = piece.min(len - at);
            let got = buf.get_mut(..n).unwrap_or_default();
            file.read_exact_at(got, start + at as u64)?;
            for b in got.chunks(block_bytes) {
                fences.extend_from_slice(b.get(..key).unwrap_or_default());
            }
            at += n;
        }
        Ok(Paged {
            file,
            start,
            mapped,
            per_block,
            fences: fences.into_boxed_slice(),
            key,
        })
    }

    fn blocks(&self) -> usize {
        self.fences.len() / self.key
    }

    fn fence(&self, b: usize) -> &[u8] {
        self.fences
            .get(b * self.key..(b + 1) * self.key)
            .unwrap_or(&[])
    }

    /// Calls `hit` with each record whose first `prefix.len()` bytes are
    /// `prefix`, in order.
    fn find<const R: usize>(&self, prefix: &[u8], hit: &mut dyn FnMut(&[u8])) {
        let k = prefix.len().min(self.key);
        let prefix = &prefix[..k];
        let n = self.blocks();
        // Blocks before `i` start below the prefix: its first record is in
        // block `i - 1`, or starts block `i`.
        let i = partition(n, |b| &self.fence(b)[..k] < prefix);
        let mut b = i.saturating_sub(1);
        let mut buf = [0u8; BLOCK];
        while b < n {
            let at = b * self.per_block * R;
            let len = (self.per_block * R).min(self.mapped.len().saturating_sub(at));
            let read = buf
                .get_mut(..len)
                .is_some_and(|dst| self.file.read_exact_at(dst, self.start + at as u64).is_ok());
            let block = if read {
                &buf[..len]
            } else {
                self.mapped.get(at..at + len).unwrap_or_default()
            };
            find_in::<R>(block, prefix, hit);
            b += 1;
            if b >= n || self.fence(b).get(..k) != Some(prefix) {
                break;
            }
        }
    }
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

/// Calls `hit` with each record of `bytes` (sorted records of `R` bytes)
/// that starts with `prefix`.
fn find_in<const R: usize>(bytes: &[u8], prefix: &[u8], hit: &mut dyn FnMut(&[u8])) {
    let k = prefix.len();
    let record = |i: usize| bytes.get(i * R..(i + 1) * R).unwrap_or(&[]);
    let n = bytes.len() / R;
    let mut i = partition(n, |i| record(i).get(..k).unwrap_or(&[]) < prefix);
    while i < n && record(i).get(..k) == Some(prefix) {
        hit(record(i));
        i += 1;
    }
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
            Records::Paged(p) => &p.mapped,
        }
    }

    fn owned(&mut self) -> &mut Vec<[u8; R]> {
        if !matches!(self, Records::Owned(_)) {
            let v = self
                .bytes()
                .chunks_exact(R)
                .map(|c| <[u8; R]>::try_from(c).unwrap_or([0; R]))
                .collect();
            *self = Records::Owned(v);
        }
        match self {
            Records::Owned(v) => v,
            _ => unreachable!("converted above"),
        }
    }

    fn len(&self) -> usize {
        self.bytes().len() / R
    }

    /// Calls `hit` with each record starting with `prefix`, in order.
    fn find(&self, prefix: &[u8], hit: &mut dyn FnMut(&[u8])) {
        match self {
            Records::Paged(p) => p.find::<R>(prefix, hit),
            _ => find_in::<R>(self.bytes(), prefix, hit),
        }
    }

    /// Reads the records from `file` from now on, if they are a large enough
    /// range of its map (`start`: the map's offset in the file).
    fn page(&mut self, file: &Arc<File>, key: usize) -> std::io::Result<()> {
        if let Records::Mapped(b) = self
            && b.len() >= PAGED_MIN
            && let Some(start) = b.map_offset()
        {
            let mapped = std::mem::take(b);
            *self = Records::Paged(Paged::new(file.clone(), start, mapped, R, key)?);
        }
        Ok(())
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

    pub(crate) fn len(&self) -> usize {
        self.sized.len() + self.wild.len()
    }

    /// Whether a file of `size` bytes could match: its digest is worth computing.
    pub(crate) fn wants(&self, size: u64) -> bool {
        if self.wild.len() > 0 {
            return true;
        }
        let mut any = false;
        self.sized.find(&size.to_be_bytes(), &mut |_| any = true);
        any
    }

    /// Every signature matching `digest` at `size`: sized ones first, then `*`.
    pub(crate) fn lookup(&self, digest: &[u8], size: u64, out: &mut Vec<NameId>) {
        if digest.len() != N {
            return;
        }
        let mut key = [0u8; S];
        key[..8].copy_from_slice(&size.to_be_bytes());
        key[8..8 + N].copy_from_slice(digest);
        self.sized
            .find(&key[..8 + N], &mut |r| out.push(NameId(u32_at(r, 8 + N))));
        self.wild
            .find(digest, &mut |r| out.push(NameId(u32_at(r, N))));
    }

    /// Reads large tables from the cache `file` they are mapped from, a block
    /// at a time, instead of through the map (see the module docs).
    pub(crate) fn page(&mut self, file: &Arc<File>) -> std::io::Result<()> {
        self.sized.page(file, 8 + N)?;
        self.wild.page(file, N)
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

    /// See [`HashTable::page`].
    pub(crate) fn page(&mut self, file: &Arc<File>) -> std::io::Result<()> {
        self.md5.page(file)?;
        self.sha1.page(file)?;
        self.sha256.page(file)
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

#[cfg(test)]
mod paged_tests {
    use std::io::Write;

    use super::*;

    /// A table whose sizes repeat (so that runs of one size, and of one
    /// size and digest, cross block boundaries), written after `pad` bytes of
    /// a file and mapped from it as the cache is.
    fn tables(pad: usize) -> (Md5Table, Md5Table) {
        let mut built = Md5Table::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..30_000u32 {
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&next().to_le_bytes());
            d[8..].copy_from_slice(&next().to_le_bytes());
            // 300 records share size 777 (two blocks' worth); 40 of those
            // share one digest.
            let size = match i {
                0..300 => 777,
                _ => next() % 5000,
            };
            if (100..140).contains(&i) {
                d = [7; 16];
            }
            built.insert(&d, Some(size), NameId(i));
            if i % 3000 == 0 {
                built.insert(&d, None, NameId(i));
            }
        }
        built.finish();
        let mut f = tempfile::tempfile().expect("temp file");
        f.write_all(&vec![0xa5; pad]).expect("write");
        f.write_all(built.sized_bytes()).expect("write");
        let sized_end = pad + built.sized_bytes().len();
        f.write_all(built.wild_bytes()).expect("write");
        // SAFETY: a private temporary file nobody else writes.
        let map = Arc::new(unsafe { memmap2::Mmap::map(&f) }.expect("map"));
        let mut paged = Md5Table::from_bytes(
            Bytes::Mapped(map.clone(), pad..sized_end),
            Bytes::Mapped(map.clone(), sized_end..map.len()),
        );
        paged.page(&Arc::new(f)).expect("pages");
        assert!(matches!(paged.sized, Records::Paged(_)));
        (built, paged)
    }

    #[test]
    fn paged_lookups_equal_in_memory_ones() {
        let (built, paged) = tables(13);
        let records: Vec<[u8; 28]> = built
            .sized_bytes()
            .chunks_exact(28)
            .map(|c| c.try_into().expect("28 bytes"))
            .collect();
        let mut checked = 0;
        for r in records.iter().step_by(7).chain(records.iter().take(300)) {
            let size = u64::from_be_bytes(r[..8].try_into().expect("8 bytes"));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            built.lookup(&r[8..24], size, &mut a);
            paged.lookup(&r[8..24], size, &mut b);
            assert!(!a.is_empty());
            assert_eq!(a, b, "size {size}");
            assert!(paged.wants(size));
            checked += 1;
        }
        assert!(checked > 4000);
        // The run of 40 equal keys, whole.
        let mut run = Vec::new();
        paged.lookup(&[7; 16], 777, &mut run);
        assert_eq!(run.len(), 40);
        // Misses: sizes no record has, digests no record has.
        for size in 5000..5100 {
            assert_eq!(built.wants(size), paged.wants(size));
            let mut out = Vec::new();
            paged.lookup(&[1; 16], size, &mut out);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn small_tables_stay_mapped() {
        let mut built = Md5Table::default();
        built.insert(&[1; 16], Some(10), NameId(0));
        built.finish();
        let mut f = tempfile::tempfile().expect("temp file");
        f.write_all(built.sized_bytes()).expect("write");
        // SAFETY: a private temporary file nobody else writes.
        let map = Arc::new(unsafe { memmap2::Mmap::map(&f) }.expect("map"));
        let mut t = Md5Table::from_bytes(Bytes::Mapped(map.clone(), 0..28), Bytes::default());
        t.page(&Arc::new(f)).expect("pages");
        assert!(matches!(t.sized, Records::Mapped(_)));
        assert!(t.wants(10));
    }
}
