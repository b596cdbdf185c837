//! The shared-memory ring: live records for local subscribers, written once.
//!
//! Over a socket, every record is copied into the kernel and out again once per
//! subscriber, and every subscriber is woken through the kernel for every batch:
//! with 16 subscribers on two cores that copying is most of the work. The ring
//! is one sealed `memfd` the publisher writes each framed record into once; a
//! subscriber maps it read-only (the descriptor comes over its socket with a
//! [`RingAttach`](crate::msg::RingAttach)) and copies records out at its own
//! pace. Nothing a subscriber does can change the ring or slow the publisher:
//! a subscriber that falls a whole ring behind finds its records overwritten,
//! says so, and catches up from the journal over its socket.
//!
//! Layout (native byte order: the ring never leaves the machine):
//!
//! ```text
//! offset  size  field
//! 0       8     magic "AERING01"
//! 8       4     layout version (1)
//! 12      4     header length (4096): the data starts there
//! 16      8     capacity: data bytes, a power of two
//! 64      8     head: bytes published so far (a position, never wraps)
//! 128     8     reserved: the end of what is being written (>= head)
//! 192     4     wake: incremented after each publication (a futex word)
//! 196     4     closed: 1 once the publisher is gone
//! 4096    cap   data: position p lives at byte 4096 + p % capacity
//! ```
//!
//! An entry starts at a position that is a multiple of 8: one word whose low 32
//! bits are a length and high 32 bits a kind, then that many bytes padded to 8.
//! Kind 1: a frame exactly as the socket carries it (`frame` module). Kind 2:
//! a record too large for the ring; its 8-byte payload is the record's
//! sequence number, to be read from the journal. Entries run across the end of
//! the data area (positions wrap, entries are copied word by word).
//!
//! Consistency is a sequence lock: the writer stores `reserved` before it
//! overwrites anything and `head` after an entry is complete; a reader copies
//! what lies between its position and `head`, then checks that `reserved` has
//! not passed its position plus the capacity. If it has, part of the copy may
//! be newer bytes, and the reader has lagged. Every access to the shared bytes
//! is an atomic word access, so a torn read is detected, never undefined.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;

const MAGIC: u64 = u64::from_ne_bytes(*b"AERING01");
const LAYOUT: u32 = 1;
/// Where the data area starts.
pub const HEADER_LEN: usize = 4096;
const OFF_CAPACITY: usize = 16;
const OFF_HEAD: usize = 64;
const OFF_RESERVED: usize = 128;
const OFF_WAKE: usize = 192;
const OFF_CLOSED: usize = 196;

const KIND_FRAME: u32 = 1;
const KIND_SKIPPED: u32 = 2;

/// The smallest and largest data areas a ring may have.
pub const MIN_CAPACITY: usize = 1 << 16;
/// See [`MIN_CAPACITY`].
pub const MAX_CAPACITY: usize = 1 << 30;

/// The bytes an entry of `len` payload bytes takes.
fn entry_size(len: usize) -> u64 {
    8 + (len as u64).div_ceil(8) * 8
}

/// A shared mapping, unmapped when dropped.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is only accessed through atomics (header and data words)
// and stays mapped until dropped.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, writable: bool) -> io::Result<Mapping> {
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping of a descriptor we hold; the kernel
        // checks the length against nothing, so accesses stay within `len`
        // (callers check the file's size first).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The u64 at byte `off` (a multiple of 8, below `len`).
    fn word(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off.is_multiple_of(8) && off + 8 <= self.len);
        // SAFETY: in bounds and aligned (mmap returns page-aligned memory);
        // AtomicU64 has u64's layout; shared memory is only ever accessed
        // atomically by this crate.
        unsafe { &*self.ptr.add(off).cast::<AtomicU64>() }
    }

    fn word32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off.is_multiple_of(4) && off + 4 <= self.len);
        // SAFETY: as in `word`.
        unsafe { &*self.ptr.add(off).cast::<AtomicU32>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; nothing borrows the
        // mapping past its owner's life.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Wakes every thread waiting on `word` (in any process).
fn futex_wake(word: &AtomicU32) {
    // SAFETY: a futex call on a live, aligned u32; shared (not private), since
    // the waiters are other processes.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0,
        );
    }
}

/// Waits until `word` is no longer `seen`, a wake-up, or `timeout`.
fn futex_wait(word: &AtomicU32, seen: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(3600) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: as in `futex_wake`; the kernel only reads the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0,
        );
    }
}

/// The publisher's side: one per hub, written under the hub's lock.
pub(crate) struct RingWriter {
    map: Mapping,
    fd: OwnedFd,
    capacity: u64,
    /// Where the next entry goes (what `head` will say once published).
    head: u64,
    /// `(first sequence number, position)` of each published batch still in
    /// the ring, oldest first: where a subscriber starting at a given record
    /// may attach.
    index: VecDeque<(u64, u64)>,
    /// The last sequence number published, plus one.
    next_seq: u64,
}

/// Where a subscriber that has every record before `next` may read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttachAt {
    /// At this position (records before `next` found there are skipped).
    Position(u64),
    /// The ring no longer holds `next`: catch up from the journal first.
    Behind,
}

impl RingWriter {
    /// A new ring of `capacity` data bytes (rounded up to a power of two,
    /// within [`MIN_CAPACITY`], [`MAX_CAPACITY`]): a sealed memfd whose size
    /// cannot change and which no one can map for writing again.
    pub(crate) fn new(capacity: usize) -> io::Result<RingWriter> {
        let capacity = capacity
            .clamp(MIN_CAPACITY, MAX_CAPACITY)
            .next_power_of_two();
        let len = HEADER_LEN + capacity;
        // SAFETY: the name is a NUL-terminated literal.
        let raw = unsafe {
            libc::memfd_create(
                c"aether-ring".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create returned a new descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain calls on our descriptor.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let map = Mapping::new(fd.as_fd(), len, true)?;
        // After the one writable mapping: no new writable mapping or write(),
        // no resize, no more seals. A subscriber gets a read-only ring.
        let seals =
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_FUTURE_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        map.word(0).store(MAGIC, Ordering::Relaxed);
        map.word(8).store(
            u64::from(LAYOUT) | (HEADER_LEN as u64) << 32,
            Ordering::Relaxed,
        );
        map.word(OFF_CAPACITY)
            .store(capacity as u64, Ordering::Relaxed);
        fence(Ordering::Release);
        Ok(RingWriter {
            map,
            fd,
            capacity: capacity as u64,
            head: 0,
            index: VecDeque::new(),
            next_seq: 0,
        })
    }

    /// The data area's size.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The descriptor to pass to subscribers.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Stores `bytes` at position `pos` on, word by word, zero-padded.
    fn put(&self, pos: u64, bytes: &[u8]) {
        let mut p = pos;
        let mut words = bytes.chunks_exact(8);
        for w in words.by_ref() {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.store(p, u64::from_ne_bytes(b));
            p += 8;
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.store(p, u64::from_ne_bytes(b));
        }
    }

    fn store(&self, pos: u64, word: u64) {
        let off = HEADER_LEN + (pos % self.capacity) as usize;
        self.map.word(off).store(word, Ordering::Relaxed);
    }

    /// Publishes framed records: `frames[ends[i-1]..ends[i]]` is record
    /// `seqs[i]`'s frame. Subscribers waiting are woken once.
    pub(crate) fn publish(&mut self, seqs: &[u64], ends: &[usize], frames: &[u8]) {
        // A record larger than a quarter of the ring is left to the journal.
        let largest = (self.capacity / 4) as usize;
        let mut start = 0;
        let mut i = 0;
        while i < seqs.len() {
            // Entries are written in runs of at most half the ring, so that a
            // run never overwrites itself and readers half a ring behind keep
            // their records.
            let run_start = self.head;
            let mut end = run_start;
            let mut j = i;
            let mut s = start;
            while j < seqs.len() {
                let e = ends.get(j).copied().unwrap_or(s).max(s);
                let len = e - s;
                let size = if len > largest { 16 } else { entry_size(len) };
                if end - run_start + size > self.capacity / 2 && j > i {
                    break;
                }
                end += size;
                s = e;
                j += 1;
            }
            // Seqlock: announce the overwrite before making it.
            self.map.word(OFF_RESERVED).store(end, Ordering::Relaxed);
            fence(Ordering::Release);
            let mut pos = run_start;
            for k in i..j {
                let e = ends.get(k).copied().unwrap_or(start).max(start);
                let frame = frames.get(start..e).unwrap_or(&[]);
                let seq = seqs.get(k).copied().unwrap_or(0);
                if frame.len() > largest {
                    self.store(pos, 8 | u64::from(KIND_SKIPPED) << 32);
                    self.store(pos + 8, seq);
                    pos += 16;
                } else {
                    self.store(pos, frame.len() as u64 | u64::from(KIND_FRAME) << 32);
                    self.put(pos + 8, frame);
                    pos += entry_size(frame.len());
                }
                start = e;
            }
            let first = seqs.get(i).copied().unwrap_or(0);
            self.index.push_back((first, run_start));
            self.head = end;
            self.map.word(OFF_HEAD).store(end, Ordering::Release);
            i = j;
        }
        if let Some(&last) = seqs.last() {
            self.next_seq = last + 1;
        }
        // Forget batches whose start has been overwritten.
        while self
            .index
            .front()
            .is_some_and(|&(_, p)| p + self.capacity < self.head)
        {
            self.index.pop_front();
        }
        let wake = self.map.word32(OFF_WAKE);
        wake.fetch_add(1, Ordering::Release);
        futex_wake(wake);
    }

    /// Where a subscriber holding every record before `next` attaches.
    pub(crate) fn attach_at(&self, next: u64) -> AttachAt {
        if next >= self.next_seq {
            // Nothing from `next` on is published yet: it will all come after
            // the head.
            return AttachAt::Position(self.head);
        }
        match self.index.iter().rev().find(|&&(seq, _)| seq <= next) {
            // Keep a quarter of the ring as margin: a reader attached where
            // the writer is about to overwrite would lag at once.
            Some(&(_, pos)) if pos + self.capacity * 3 / 4 >= self.head => AttachAt::Position(pos),
            _ => AttachAt::Behind,
        }
    }
}

impl Drop for RingWriter {
    fn drop(&mut self) {
        self.map.word32(OFF_CLOSED).store(1, Ordering::Release);
        let wake = self.map.word32(OFF_WAKE);
        wake.fetch_add(1, Ordering::Release);
        futex_wake(wake);
    }
}

/// Why a ring descriptor cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The descriptor could not be inspected or mapped.
    #[error("cannot map the ring: {0}")]
    Io(#[from] io::Error),
    /// The file is not a ring this side reads.
    #[error("not an aether ring: {0}")]
    Foreign(String),
}

/// What [`RingReader::fill`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fill {
    /// Entries were copied.
    Copied,
    /// Nothing new; the value of the wake word seen before looking.
    Empty(u32),
    /// The writer overwrote what this reader had not read.
    Overrun,
    /// The publisher is gone.
    Closed,
}

/// One entry taken from a reader's copy.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Where a frame's bytes, header included, are in the copy
    /// ([`RingReader::bytes`]).
    Frame(std::ops::Range<usize>),
    /// A record left to the journal.
    Skipped(u64),
}

/// The data area's words from position `pos` to the end of the area, at most
/// `n`, in a ring of `capacity` data bytes mapped at `map`.
fn data_words(map: &Mapping, capacity: u64, pos: u64, n: usize) -> &[AtomicU64] {
    let first = (pos % capacity) as usize / 8;
    let n = n.min(capacity as usize / 8 - first);
    debug_assert!(HEADER_LEN + (first + n) * 8 <= map.len);
    // SAFETY: within the data area (first + n <= capacity / 8 words after the
    // header; the mapping is header + capacity long), aligned; shared memory
    // is only accessed atomically.
    unsafe {
        std::slice::from_raw_parts(map.ptr.add(HEADER_LEN + first * 8).cast::<AtomicU64>(), n)
    }
}

/// The bytes of `words`, in memory order.
fn as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u64s are initialized bytes; u8 has no alignment requirement;
    // the length is the same memory.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words)) }
}

/// Waiting for a ring's publisher, from any thread.
#[derive(Clone)]
pub(crate) struct RingWake(Arc<Mapping>);

impl RingWake {
    /// The wake word: it changes with every publication.
    pub(crate) fn load(&self) -> u32 {
        self.0.word32(OFF_WAKE).load(Ordering::Acquire)
    }

    /// Blocks until the wake word is no longer `seen`, or `timeout` passes.
    pub(crate) fn wait(&self, seen: u32, timeout: Duration) {
        futex_wait(self.0.word32(OFF_WAKE), seen, timeout);
    }
}

/// The largest position a reader accepts.
const MAX_POSITION: u64 = 1 << 62;

/// Bytes copied out of the ring per [`RingReader::fill`] at most (more only
/// when one entry is larger): small enough to stay in a core's cache while the
/// records are decoded, with 16 subscribers copying at once.
const COPY_CHUNK: u64 = 32 * 1024;

/// A ring mapped read-only, checked; shared by every reader of it in a
/// process (one mapping: its pages are faulted in once).
#[derive(Clone)]
pub(crate) struct RingMap {
    map: Arc<Mapping>,
    capacity: u64,
}

impl RingMap {
    /// Maps a ring received from the server, checking its header and size.
    pub(crate) fn open(fd: &OwnedFd) -> Result<RingMap, RingError> {
        let file = std::fs::File::from(fd.try_clone()?);
        let size = file.metadata()?.len();
        let header = u64::try_from(HEADER_LEN).unwrap_or(u64::MAX);
        if size < header + MIN_CAPACITY as u64 || size > header + MAX_CAPACITY as u64 {
            return Err(RingError::Foreign(format!("{size} bytes")));
        }
        let map = Mapping::new(fd.as_fd(), size as usize, false)?;
        fence(Ordering::Acquire);
        if map.word(0).load(Ordering::Relaxed) != MAGIC {
            return Err(RingError::Foreign("bad magic".into()));
        }
        let layout = map.word(8).load(Ordering::Relaxed);
        if layout != u64::from(LAYOUT) | (HEADER_LEN as u64) << 32 {
            return Err(RingError::Foreign(format!("layout word {layout:#x}")));
        }
        let capacity = map.word(OFF_CAPACITY).load(Ordering::Relaxed);
        if !capacity.is_power_of_two() || header + capacity != size {
            return Err(RingError::Foreign(format!(
                "capacity {capacity} in a file of {size} bytes"
            )));
        }
        Ok(RingMap {
            map: Arc::new(map),
            capacity,
        })
    }

    /// A reader of this ring starting at `pos`.
    pub(crate) fn reader(&self, pos: u64) -> RingReader {
        RingReader {
            map: self.map.clone(),
            capacity: self.capacity,
            pos,
            copy: Vec::new(),
            taken: 0,
        }
    }

    /// What another thread may wait on for publications.
    pub(crate) fn waker(&self) -> RingWake {
        RingWake(self.map.clone())
    }
}

/// A subscriber's read-only view of a ring, and its position in it.
pub(crate) struct RingReader {
    map: Arc<Mapping>,
    capacity: u64,
    /// The next position to copy from.
    pos: u64,
    /// The copy (words, as the ring holds them), and how many of its bytes
    /// entries have been taken from.
    copy: Vec<u64>,
    taken: usize,
}

impl RingReader {
    /// Maps a ring received from the server, read-only, reading from `pos`.
    pub(crate) fn open(fd: &OwnedFd, pos: u64) -> Result<RingReader, RingError> {
        Ok(RingMap::open(fd)?.reader(pos))
    }

    /// Moves to position `pos` (a new attachment), dropping what was copied.
    pub(crate) fn seek(&mut self, pos: u64) {
        self.pos = pos;
        self.copy.clear();
        self.taken = 0;
    }

    fn wake_word(&self) -> u32 {
        self.map.word32(OFF_WAKE).load(Ordering::Acquire)
    }

    fn load(&self, pos: u64) -> u64 {
        let off = HEADER_LEN + (pos % self.capacity) as usize;
        self.map.word(off).load(Ordering::Relaxed)
    }

    /// Copies what was published since the last copy (at most about
    /// [`COPY_CHUNK`] bytes) if every entry taken from the last one is gone.
    pub(crate) fn fill(&mut self) -> Fill {
        let wake = self.wake_word();
        let head = self.map.word(OFF_HEAD).load(Ordering::Acquire);
        if head == self.pos {
            if self.map.word32(OFF_CLOSED).load(Ordering::Acquire) != 0 {
                return Fill::Closed;
            }
            return Fill::Empty(wake);
        }
        // Positions past 2^62 bytes are never reached (a century at 1 GB/s):
        // such a head or start is not a ring this side wrote.
        if head < self.pos
            || head - self.pos > self.capacity
            || !self.pos.is_multiple_of(8)
            || head > MAX_POSITION
        {
            return Fill::Overrun;
        }
        // One entry longer than the chunk is copied whole (its length is
        // checked once the copy is known to be good).
        let first_len = self.load(self.pos) & 0xffff_ffff;
        let end = head.min((self.pos + COPY_CHUNK).max(self.pos + entry_size(first_len as usize)));
        let n = ((end - self.pos) / 8) as usize;
        if n == 0 {
            // A head not on an entry's boundary: not a ring this side wrote.
            return Fill::Overrun;
        }
        self.copy.clear();
        self.copy.resize(n, 0);
        self.taken = 0;
        let mut done = 0;
        while done < n {
            let src = data_words(
                &self.map,
                self.capacity,
                self.pos + done as u64 * 8,
                n - done,
            );
            for (d, w) in self.copy[done..].iter_mut().zip(src) {
                *d = w.load(Ordering::Relaxed);
            }
            done += src.len();
        }
        fence(Ordering::Acquire);
        let reserved = self.map.word(OFF_RESERVED).load(Ordering::Relaxed);
        if reserved > self.pos + self.capacity {
            return Fill::Overrun;
        }
        Fill::Copied
    }

    /// Bytes of the current copy (`at` from an [`Entry`]); empty if out of it.
    pub(crate) fn bytes(&self, at: std::ops::Range<usize>) -> &[u8] {
        as_bytes(&self.copy).get(at).unwrap_or(&[])
    }

    /// The next whole entry of the current copy (advancing the position), or
    /// `None` when the copy is used up. `Err` names an entry that cannot be:
    /// the ring is not what this reader expects.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>, String> {
        let rest = as_bytes(&self.copy).get(self.taken..).unwrap_or(&[]);
        let Some(word) = rest.first_chunk::<8>() else {
            return Ok(None);
        };
        let word = u64::from_ne_bytes(*word);
        let (len, kind) = ((word & 0xffff_ffff) as usize, (word >> 32) as u32);
        let size = entry_size(len) as usize;
        if size as u64 > self.capacity / 4 + 16 {
            return Err(format!("entry of {len} bytes at position {}", self.pos));
        }
        if rest.len() < size {
            // A first entry is copied whole up to the head: one cut there runs
            // past what was published.
            if self.taken == 0 {
                return Err(format!(
                    "entry of {len} bytes at position {} runs past the head",
                    self.pos
                ));
            }
            // Cut by the chunk: the rest comes with the next copy.
            return Ok(None);
        }
        let body = rest.get(8..8 + len).unwrap_or(&[]);
        let entry = match kind {
            KIND_FRAME => Entry::Frame(self.taken + 8..self.taken + 8 + len),
            KIND_SKIPPED if len == 8 => {
                let b = body.first_chunk::<8>().copied().unwrap_or_default();
                Entry::Skipped(u64::from_ne_bytes(b))
            }
            _ => {
                return Err(format!(
                    "entry of kind {kind}, {len} bytes at position {}",
                    self.pos
                ));
            }
        };
        self.taken += size;
        self.pos += size as u64;
        Ok(Some(entry))
    }
}

/// Reads a ring made of arbitrary bytes as a subscriber would, for fuzzing:
/// `bytes` gives the reader's start, `head`, `reserved` and the data area (a
/// valid header is written around them). Returns the frames taken; it must
/// never panic or loop without bound, whatever the ring holds.
#[doc(hidden)]
pub fn read_arbitrary_ring(bytes: &[u8]) -> io::Result<usize> {
    let word = |i: usize| {
        let b = bytes.get(i * 8..i * 8 + 8).unwrap_or(&[]);
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    let (start, head, reserved) = (word(0), word(1), word(2));
    let w = RingWriter::new(MIN_CAPACITY)?;
    for (i, chunk) in bytes.get(24..).unwrap_or(&[]).chunks(8).enumerate() {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        w.store(i as u64 * 8, u64::from_ne_bytes(b));
    }
    w.map.word(OFF_RESERVED).store(reserved, Ordering::Relaxed);
    w.map.word(OFF_HEAD).store(head, Ordering::Release);
    let mut r = RingReader::open(&w.fd.try_clone()?, start).map_err(io::Error::other)?;
    let mut frame = crate::msg::Frame::default();
    let mut taken = 0;
    // Each round copies or ends; a ring is at most 64 KiB of entries.
    for _ in 0..64 {
        match r.fill() {
            Fill::Copied => {}
            _ => return Ok(taken),
        }
        loop {
            match r.next_entry() {
                Ok(Some(Entry::Frame(at))) => {
                    let b = r.bytes(at);
                    let _ = crate::frame::decode_frame_into(b, &mut frame, 1 << 20);
                    if let Some(p) = b.get(crate::frame::HEADER_LEN..) {
                        let _ = crate::frame::record_ref(p);
                    }
                    taken += 1;
                }
                Ok(Some(Entry::Skipped(_))) => taken += 1,
                Ok(None) => break,
                Err(_) => return Ok(taken),
            }
        }
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(seqs: &[u64], len: usize) -> (Vec<usize>, Vec<u8>) {
        let mut ends = Vec::new();
        let mut bytes = Vec::new();
        for &s in seqs {
            let n = len + (s as usize % 7);
            bytes.extend((0..n).map(|i| (s as usize + i) as u8));
            ends.push(bytes.len());
        }
        (ends, bytes)
    }

    fn reader(w: &RingWriter, pos: u64) -> RingReader {
        let fd = w.fd.try_clone().unwrap();
        RingReader::open(&fd, pos).unwrap()
    }

    /// Everything the reader can take now, as (kind, bytes).
    fn drain(r: &mut RingReader) -> Result<Vec<Vec<u8>>, Fill> {
        let mut out = Vec::new();
        loop {
            match r.fill() {
                Fill::Copied => {}
                f @ (Fill::Overrun | Fill::Closed) => return Err(f),
                Fill::Empty(_) => return Ok(out),
            }
            while let Some(e) = r.next_entry().unwrap() {
                match e {
                    Entry::Frame(at) => out.push(r.bytes(at).to_vec()),
                    Entry::Skipped(s) => out.push(format!("skipped {s}").into_bytes()),
                }
            }
        }
    }

    #[test]
    fn records_come_out_as_written_across_the_wrap() {
        let mut w = RingWriter::new(MIN_CAPACITY).unwrap();
        let mut r = reader(&w, 0);
        let mut seq = 0;
        // Several times round the ring, reading after each batch.
        for round in 0..200 {
            let seqs: Vec<u64> = (seq..seq + 37).collect();
            let (ends, bytes) = frames(&seqs, 100 + round);
            w.publish(&seqs, &ends, &bytes);
            let got = drain(&mut r).unwrap();
            assert_eq!(got.len(), seqs.len());
            let mut start = 0;
            for (g, e) in got.iter().zip(&ends) {
                assert_eq!(g.as_slice(), &bytes[start..*e]);
                start = *e;
            }
            seq += 37;
        }
        assert!(w.head > 4 * w.capacity);
    }

    #[test]
    fn a_reader_a_ring_behind_is_told_it_was_overrun() {
        let mut w = RingWriter::new(MIN_CAPACITY).unwrap();
        let mut r = reader(&w, 0);
        for s in 0..2000u64 {
            let (ends, bytes) = frames(&[s], 200);
            w.publish(&[s], &ends, &bytes);
        }
        assert_eq!(drain(&mut r), Err(Fill::Overrun));
        // Attached anew where the writer says, it reads on.
        let AttachAt::Position(p) = w.attach_at(1990) else {
            panic!("1990 should still be in the ring");
        };
        r.seek(p);
        let got = drain(&mut r).unwrap();
        assert!(got.len() >= 10 && got.len() < 2000);
        assert_eq!(w.attach_at(5), AttachAt::Behind);
        assert_eq!(w.attach_at(2000), AttachAt::Position(w.head));
    }

    /// A record's bytes, all derived from its number: a torn copy shows.
    fn stamped(seq: u64) -> Vec<u8> {
        let len = 24 + (seq % 300) as usize;
        let mut b = seq.to_le_bytes().to_vec();
        b.extend((8..len).map(|i| (seq as usize * 31 + i) as u8));
        b
    }

    #[test]
    fn a_reader_racing_the_writer_gets_whole_records_or_is_told_it_was_overrun() {
        let w = std::sync::Arc::new(std::sync::Mutex::new(
            RingWriter::new(MIN_CAPACITY).unwrap(),
        ));
        let mut r = reader(&w.lock().unwrap(), 0);
        const N: u64 = 200_000;
        let writer = {
            let w = w.clone();
            std::thread::spawn(move || {
                let mut seq = 0;
                while seq < N {
                    let seqs: Vec<u64> = (seq..(seq + 1 + seq % 13).min(N)).collect();
                    let mut bytes = Vec::new();
                    let mut ends = Vec::new();
                    for &s in &seqs {
                        bytes.extend(stamped(s));
                        ends.push(bytes.len());
                    }
                    w.lock().unwrap().publish(&seqs, &ends, &bytes);
                    seq += seqs.len() as u64;
                }
            })
        };
        let (mut next, mut whole, mut overruns) = (0u64, 0u64, 0u64);
        // Bounded by the writer: it ends after N records; the reader stops at
        // the last one.
        while next < N {
            match r.fill() {
                Fill::Copied => {
                    while let Some(e) = r.next_entry().unwrap() {
                        let Entry::Frame(at) = e else {
                            panic!("no record is skipped here");
                        };
                        let b = r.bytes(at);
                        let seq = u64::from_le_bytes(b[..8].try_into().unwrap());
                        assert_eq!(b, stamped(seq).as_slice(), "record {seq} torn");
                        assert!(seq >= next, "record {seq} again after {next}");
                        next = seq + 1;
                        whole += 1;
                    }
                }
                Fill::Overrun => {
                    overruns += 1;
                    let at = w.lock().unwrap().attach_at(next);
                    match at {
                        AttachAt::Position(p) => r.seek(p),
                        // Fallen out of the ring: start again where it writes.
                        AttachAt::Behind => {
                            let w = w.lock().unwrap();
                            next = w.next_seq;
                            r.seek(w.head);
                        }
                    }
                }
                Fill::Empty(_) => std::thread::yield_now(),
                Fill::Closed => panic!("closed early"),
            }
        }
        writer.join().unwrap();
        assert!(whole > 0);
        eprintln!("{whole} whole records, {overruns} overruns");
    }

    #[test]
    fn garbage_rings_are_read_without_panic_or_end() {
        let mut rand = crate::test_rng::xorshift(0x853c_49e6_748f_ea9bu64);
        let mut taken = 0;
        for i in 0..300 {
            let len = 24 + (rand() % 4096) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
            // Plausible positions and entry headers half of the time.
            if i % 2 == 0 {
                b[..8].copy_from_slice(&(rand() % 64 * 8).to_le_bytes());
                b[8..16].copy_from_slice(&(rand() % 8192 * 8).to_le_bytes());
                b[16..24].copy_from_slice(&(rand() % 8192 * 8).to_le_bytes());
                let at = 24 + (u64::from_le_bytes(b[..8].try_into().unwrap()) as usize);
                if let Some(w) = b.get_mut(at..at + 8) {
                    w.copy_from_slice(
                        &((rand() % 512) | (u64::from(KIND_FRAME) << 32)).to_ne_bytes(),
                    );
                }
            }
            taken += read_arbitrary_ring(&b).unwrap();
        }
        assert!(taken > 0);
        // Found by fuzzing: a start and head near 2^64 overflowed a sum.
        let start_near_the_end = [
            40, 0, 255, 255, 255, 255, 255, 255, 255, 15, 255, 255, 255, 255, 255, 255, 255, 15,
        ];
        assert_eq!(read_arbitrary_ring(&start_near_the_end).unwrap(), 0);
    }

    #[test]
    fn a_record_too_large_is_left_to_the_journal() {
        let mut w = RingWriter::new(MIN_CAPACITY).unwrap();
        let mut r = reader(&w, 0);
        let big = vec![7u8; MIN_CAPACITY / 2];
        let mut bytes = b"small".to_vec();
        bytes.extend_from_slice(&big);
        bytes.extend_from_slice(b"after");
        w.publish(&[1, 2, 3], &[5, 5 + big.len(), bytes.len()], &bytes);
        let got = drain(&mut r).unwrap();
        assert_eq!(
            got,
            [b"small".to_vec(), b"skipped 2".to_vec(), b"after".to_vec()]
        );
    }

    #[test]
    fn the_ring_is_read_only_to_subscribers() {
        let w = RingWriter::new(MIN_CAPACITY).unwrap();
        let fd = w.fd.try_clone().unwrap();
        let len = HEADER_LEN + MIN_CAPACITY;
        let e = Mapping::new(fd.as_fd(), len, true).err().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        // SAFETY: a plain write on our descriptor.
        let n = unsafe { libc::write(fd.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!(n, -1);
        // SAFETY: as above.
        assert_ne!(unsafe { libc::ftruncate(fd.as_raw_fd(), 1 << 20) }, 0);
        // A read-only mapping cannot be made writable.
        let m = Mapping::new(fd.as_fd(), len, false).unwrap();
        // SAFETY: mprotect on our own mapping.
        let rc = unsafe { libc::mprotect(m.ptr.cast(), len, libc::PROT_READ | libc::PROT_WRITE) };
        assert_ne!(rc, 0);
    }

    #[test]
    fn foreign_files_are_refused() {
        let f = tempfile::tempfile().unwrap();
        f.set_len((HEADER_LEN + MIN_CAPACITY) as u64).unwrap();
        let fd = OwnedFd::from(f);
        assert!(matches!(
            RingReader::open(&fd, 0),
            Err(RingError::Foreign(_))
        ));
        let small = OwnedFd::from(tempfile::tempfile().unwrap());
        assert!(RingReader::open(&small, 0).is_err());
    }

    #[test]
    fn closing_the_writer_is_seen() {
        let w = RingWriter::new(MIN_CAPACITY).unwrap();
        let mut r = reader(&w, 0);
        assert!(matches!(r.fill(), Fill::Empty(_)));
        drop(w);
        assert_eq!(r.fill(), Fill::Closed);
    }

    #[test]
    fn a_waiter_is_woken_by_a_publication() {
        let mut w = RingWriter::new(MIN_CAPACITY).unwrap();
        let map = RingMap::open(&w.fd.try_clone().unwrap()).unwrap();
        let mut r = map.reader(0);
        let Fill::Empty(seen) = r.fill() else {
            panic!("empty ring");
        };
        let t = std::thread::spawn(move || {
            // Bounded: a minute at most, and the test fails if it times out.
            let start = std::time::Instant::now();
            map.waker().wait(seen, Duration::from_secs(60));
            (start.elapsed(), r.fill())
        });
        // The waiter may or may not be asleep yet: either way it must see it.
        let (ends, bytes) = frames(&[0], 50);
        w.publish(&[0], &ends, &bytes);
        let (took, fill) = t.join().unwrap();
        assert_eq!(fill, Fill::Copied);
        assert!(took < Duration::from_secs(60));
    }
}
