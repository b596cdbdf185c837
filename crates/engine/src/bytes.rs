//! Byte storage that is either owned or a range of a mapped cache file.
//!
//! The large tables (hash signatures, names) are kept as packed bytes in both
//! cases, so an engine read from the cache uses the file's pages where they
//! are instead of copying them: no allocation, no page zeroing, and pages
//! shared by every process that loads the same cache.

use std::ops::{Deref, Range};
use std::sync::Arc;

use memmap2::Mmap;

pub(crate) enum Bytes {
    Owned(Vec<u8>),
    Mapped(Arc<Mmap>, Range<usize>),
}

impl Default for Bytes {
    fn default() -> Bytes {
        Bytes::Owned(Vec::new())
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.len())
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            // The range was checked against the map when it was made.
            Bytes::Mapped(m, r) => m.get(r.clone()).unwrap_or(&[]),
        }
    }
}

impl Bytes {
    /// Where a mapped range starts in its file (maps start at offset 0).
    pub(crate) fn map_offset(&self) -> Option<u64> {
        match self {
            Bytes::Owned(_) => None,
            Bytes::Mapped(_, r) => Some(r.start as u64),
        }
    }

    /// The owned vector, copying a mapped range first.
    pub(crate) fn make_mut(&mut self) -> &mut Vec<u8> {
        if let Bytes::Mapped(..) = self {
            *self = Bytes::Owned(self.to_vec());
        }
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(..) => unreachable!("converted above"),
        }
    }
}

/// Reads a little-endian `u32` at `at`; 0 past the end.
#[inline]
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
