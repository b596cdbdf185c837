//! OLE2 compound documents (Office 97-2003 `.doc`/`.xls`/`.ppt`, `.msi`):
//! every stream, and what ClamAV makes of some of them.
//!
//! The compound file is read as ClamAV 1.4's `ole2_extract.c` reads it, not
//! as the specification says, because what a scanner finds depends on it:
//! blocks past the end of a truncated file read as zeros, a chain stops at the
//! first block that cannot be read, that leaves the file, or that it already
//! visited, and a directory entry of an unknown type is skipped with its
//! siblings. A FAT sector is read as 128 entries whatever the sector size, as
//! ClamAV does. A strict reader (the `cfb` crate, used by the tests to build
//! files) refuses many such files outright, and looks streams up by name,
//! which hides streams named `.` or sharing a name.
//!
//! Which members come out follows `cli_scanole2`:
//! - a document without macros (no stream named `_VBA_PROJECT`,
//!   `PowerPoint Document`, `WordDocument` or `\1Ole10Native`) has each stream
//!   scanned as it is, except a stream of zlib data behind a 4-byte size
//!   (Office's "MSO" streams), whose inflated content is scanned instead;
//! - otherwise each stream is scanned as it is, and also the file embedded in
//!   each `\1Ole10Native` stream, the OLE2 documents compressed into a
//!   `PowerPoint Document` stream, and each VBA project (the `dir` stream and
//!   its modules, see [`crate::vba`]) as the text ClamAV writes of it, the
//!   module sources an Office 97-2003 `_VBA_PROJECT` stream lists, and the
//!   Word 6/95 macros of a `WordDocument` stream.
//!
//! Not done (ClamAV does them): Excel 4 (XLM) macros and the
//! images of a workbook, HWP documents, and streams encrypted with Excel's
//! default password.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use flate2::{Decompress, FlushDecompress, Status};

use crate::source::ReadAt;
use crate::vba;
use crate::walk::{Body, Content, Flow, FormatError, Member, Problem, Visitor, visit};

/// Bytes of the header ClamAV reads; smaller files are not opened.
const HEADER: usize = 512;
/// ClamAV's limits on the directory tree: storages nested deeper than the
/// default `MaxRecursion` stop the walk, and no more streams than this.
const MAX_STORAGE_DEPTH: u32 = 17;
const MAX_STREAMS: u32 = 100_000;
/// ClamAV's `FILEBUFF`, the chunk size of some of its copies.
const FILEBUFF: usize = 8192;

/// One directory entry, as ClamAV reads it.
#[derive(Clone)]
pub(crate) struct Entry {
    /// The 128 bytes of the entry (ClamAV reads names past their 64 bytes).
    raw: [u8; 128],
    pub(crate) kind: u8,
    pub(crate) start: u32,
    pub(crate) size: u32,
    /// The storage that holds it (0: the root).
    pub(crate) storage: usize,
    /// Its path, for people: storage names and its name, `/`-separated.
    pub(crate) path: String,
    /// ClamAV's name for it (lower case, odd characters spelled out).
    pub(crate) key: Option<String>,
}

impl Entry {
    fn i32_at(&self, at: usize) -> i32 {
        i32::from_le_bytes([
            self.raw[at],
            self.raw[at + 1],
            self.raw[at + 2],
            self.raw[at + 3],
        ])
    }
    fn prev(&self) -> i32 {
        self.i32_at(68)
    }
    fn next(&self) -> i32 {
        self.i32_at(72)
    }
    fn child(&self) -> i32 {
        self.i32_at(76)
    }
    fn name_size(&self) -> u16 {
        u16::from_le_bytes([self.raw[64], self.raw[65]])
    }
    /// The stored UTF-16 name, for display.
    fn display_name(&self) -> String {
        let chars = (usize::from(self.name_size()) / 2).clamp(1, 32) - 1;
        let units: Vec<u16> = (0..chars)
            .map(|i| u16::from_le_bytes([self.raw[2 * i], self.raw[2 * i + 1]]))
            .take_while(|&u| u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    }
}

/// ClamAV's `cli_ole2_get_property_name2`: the name in lower case, other
/// characters spelled out (`\1Ole10Native` is `_1_ole10native`); `None` for
/// an empty name. `raw` holds the name and whatever follows it.
pub(crate) fn property_name(raw: &[u8], size: usize) -> Option<String> {
    if raw.len() < 2 || (raw[0] == 0 && raw[1] == 0) || size == 0 || size > 128 {
        return None;
    }
    let mut out = String::new();
    let mut i = 0;
    while i + 2 < size {
        let (c, c1) = (
            raw.get(i).copied().unwrap_or(0),
            raw.get(i + 1).copied().unwrap_or(0),
        );
        if c < 0x80 && (0x20..0x7f).contains(&c) && c1 == 0 {
            out.push(char::from(c.to_ascii_lowercase()));
        } else {
            if c < 10 && c1 == 0 {
                out.push('_');
                out.push(char::from(b'0' + c));
            } else {
                // ((uint16_t)(signed char)c << 8) | (signed char)c1, in 16 bits.
                let hi = (i32::from(c as i8) as u16 as i32) << 8;
                let x = (hi | i32::from(c1 as i8)) as u16;
                out.push('_');
                for shift in [0, 4, 8] {
                    out.push(char::from(b'a' + ((x >> shift) & 0xf) as u8));
                }
            }
            out.push('_');
        }
        i += 2;
    }
    (!out.is_empty()).then_some(out)
}

/// The `k`-th element of a sequence `s(i+1) = next(s(i))`, remembered, with
/// cycles found so that any `k` is cheap.
#[derive(Default)]
struct ChainMemo {
    seq: Vec<i32>,
    seen: HashMap<i32, usize>,
    /// Where the sequence starts repeating, and its period.
    cycle: Option<(usize, usize)>,
}

/// A compound file read as ClamAV reads it.
pub(crate) struct Ole2<'a> {
    src: &'a dyn ReadAt,
    len: u64,
    big: u32,
    small: u32,
    bat_count: i32,
    bat_array: [i32; 109],
    prop_start: i32,
    sbat_cutoff: u32,
    sbat_start: i32,
    xbat_start: i32,
    max_block_no: i32,
    sbat_root_start: i32,
    prop_chain: RefCell<ChainMemo>,
    sbat_chain: RefCell<ChainMemo>,
    root_chain: RefCell<ChainMemo>,
    /// Block numbers of the XBAT blocks, in chain order (`None`: unreadable).
    xbat_blocks: RefCell<Vec<Option<i32>>>,
}

fn le_i32(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Why a compound file is not walked.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// ClamAV does not open it either (too small, block sizes it refuses).
    Refused(String),
    Io(io::Error),
}

impl<'a> Ole2<'a> {
    pub(crate) fn open(src: &'a dyn ReadAt) -> Result<Ole2<'a>, OpenError> {
        let len = src.size();
        if len < HEADER as u64 {
            return Err(OpenError::Refused(format!(
                "OLE2: {len} bytes is smaller than the header"
            )));
        }
        let mut h = [0u8; HEADER];
        src.read_exact_at(&mut h, 0).map_err(OpenError::Io)?;
        if h[..8] != [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1] {
            return Err(OpenError::Refused("OLE2: bad magic".into()));
        }
        let big = u32::from(u16::from_le_bytes([h[30], h[31]]));
        let small = u32::from_le_bytes([h[32], h[33], h[34], h[35]]);
        if !(6..=28).contains(&big) {
            return Err(OpenError::Refused(format!(
                "OLE2: sector size 2^{big} out of range"
            )));
        }
        if small == 0 || small > big {
            return Err(OpenError::Refused(format!(
                "OLE2: mini sector size 2^{small} out of range"
            )));
        }
        if len > i32::MAX as u64 {
            return Err(OpenError::Refused("OLE2: larger than 2 GiB".into()));
        }
        let mut bat_array = [0i32; 109];
        for (i, b) in bat_array.iter_mut().enumerate() {
            *b = le_i32(&h, 76 + 4 * i);
        }
        let first = 512u64.max(1 << big);
        // (len - first) / small in size_t, then truncated to 32 bits.
        let max_block_no = (len.wrapping_sub(first) >> small) as u32 as i32;
        Ok(Ole2 {
            src,
            len,
            big,
            small,
            bat_count: le_i32(&h, 44),
            bat_array,
            prop_start: le_i32(&h, 48),
            sbat_cutoff: u32::from_le_bytes([h[56], h[57], h[58], h[59]]),
            sbat_start: le_i32(&h, 60),
            xbat_start: le_i32(&h, 68),
            max_block_no,
            sbat_root_start: -1,
            prop_chain: RefCell::default(),
            sbat_chain: RefCell::default(),
            root_chain: RefCell::default(),
            xbat_blocks: RefCell::default(),
        })
    }

    /// Where block `blockno` starts, if it starts inside the file
    /// (`ole2_read_block` for a read of `size` bytes).
    fn block_offset(&self, blockno: i32, size: u64) -> Option<u64> {
        if blockno < 0 {
            return None;
        }
        let first = 512u64.max(1 << self.big);
        let shifted = (blockno as u64) << self.big;
        let offset = if shifted < (i32::MAX as u64).saturating_sub(first) {
            shifted + first
        } else {
            (i32::MAX as u64).checked_sub(size)?
        };
        (offset < self.len).then_some(offset)
    }

    /// Reads `buf.len()` bytes of block `blockno`, zeros past the end.
    fn read_block(&self, blockno: i32, buf: &mut [u8]) -> io::Result<bool> {
        let Some(offset) = self.block_offset(blockno, buf.len() as u64) else {
            return Ok(false);
        };
        let real = (buf.len() as u64).min(self.len - offset) as usize;
        buf[real..].fill(0);
        self.src.read_exact_at(&mut buf[..real], offset)?;
        Ok(true)
    }

    /// Entry `index` of the 512 bytes of a FAT-like block.
    fn table_entry(&self, blockno: i32, index: usize) -> io::Result<Option<i32>> {
        let mut b = [0u8; 512];
        if !self.read_block(blockno, &mut b)? {
            return Ok(None);
        }
        Ok(Some(le_i32(&b, 4 * (index % 128))))
    }

    fn next_bat_block(&self, cur: i32) -> io::Result<i32> {
        let idx = cur / 128;
        if idx > self.bat_count {
            return Ok(-10);
        }
        let Some(&bat) = self.bat_array.get(idx as usize) else {
            return Ok(-1);
        };
        Ok(self
            .table_entry(bat, (cur - idx * 128) as usize)?
            .unwrap_or(-1))
    }

    fn xbat_block(&self, k: usize) -> io::Result<Option<i32>> {
        let mut blocks = self.xbat_blocks.borrow_mut();
        if blocks.is_empty() {
            blocks.push(Some(self.xbat_start));
        }
        while blocks.len() <= k {
            let next = match blocks.last().copied().flatten() {
                Some(b) => self.table_entry(b, 127)?,
                None => None,
            };
            blocks.push(next);
        }
        Ok(blocks[k])
    }

    fn next_xbat_block(&self, cur: i32) -> io::Result<i32> {
        let xbat_index = cur / 128;
        let xbat_block_index = ((xbat_index - 109) / 127) as usize;
        let bat_blockno = ((xbat_index - 109) % 127) as usize;
        let bat_index = (cur % 128) as usize;
        // ClamAV reads the first XBAT block before following the chain.
        let mut b = [0u8; 512];
        if !self.read_block(self.xbat_start, &mut b)? {
            return Ok(-1);
        }
        let Some(xbat) = self.xbat_block(xbat_block_index)? else {
            return Ok(-1);
        };
        let Some(bat) = self.table_entry(xbat, bat_blockno)? else {
            return Ok(-1);
        };
        Ok(self.table_entry(bat, bat_index)?.unwrap_or(-1))
    }

    /// The block after `cur` in its chain (`ole2_get_next_block_number`).
    fn next_block(&self, cur: i32) -> io::Result<i32> {
        if cur < 0 {
            Ok(-1)
        } else if cur / 128 > 108 {
            self.next_xbat_block(cur)
        } else {
            self.next_bat_block(cur)
        }
    }

    /// The `k`-th block of the chain that starts at `start`.
    fn nth(&self, memo: &RefCell<ChainMemo>, start: i32, k: usize) -> io::Result<i32> {
        let mut m = memo.borrow_mut();
        if m.seq.is_empty() {
            m.seq.push(start);
            m.seen.insert(start, 0);
        }
        loop {
            if let Some(&b) = m.seq.get(k) {
                return Ok(b);
            }
            if let Some((from, period)) = m.cycle {
                return Ok(m.seq[from + (k - from) % period]);
            }
            let last = m.seq[m.seq.len() - 1];
            let next = self.next_block(last)?;
            if let Some(&at) = m.seen.get(&next) {
                let period = m.seq.len() - at;
                m.cycle = Some((at, period));
            } else {
                let at = m.seq.len();
                m.seen.insert(next, at);
                m.seq.push(next);
            }
        }
    }

    fn next_sbat_block(&self, cur: i32) -> io::Result<i32> {
        if cur < 0 {
            return Ok(-1);
        }
        let b = self.nth(&self.sbat_chain, self.sbat_start, (cur / 128) as usize)?;
        Ok(self.table_entry(b, (cur % 128) as usize)?.unwrap_or(-1))
    }

    /// Walks the directory tree as `ole2_walk_property_tree` does: the
    /// entries it reaches, in its order, and why it stopped early.
    pub(crate) fn entries(&mut self) -> io::Result<(Vec<Entry>, Option<String>)> {
        let mut w = TreeWalk {
            visited: HashSet::new(),
            out: Vec::new(),
            files: 0,
            storages: 1,
            stop: None,
        };
        self.walk_tree(&mut w, 0, 0, 0, "")?;
        Ok((w.out, w.stop))
    }

    fn read_entry(&self, index: i32) -> io::Result<Option<Entry>> {
        let block = self.nth(&self.prop_chain, self.prop_start, (index / 4) as usize)?;
        let mut b = [0u8; 512];
        if !self.read_block(block, &mut b)? {
            return Ok(None);
        }
        let at = 128 * (index % 4) as usize;
        let mut raw = [0u8; 128];
        raw.copy_from_slice(&b[at..at + 128]);
        let e = Entry {
            raw,
            kind: raw[66],
            start: u32::from_le_bytes([raw[116], raw[117], raw[118], raw[119]]),
            size: u32::from_le_bytes([raw[120], raw[121], raw[122], raw[123]]),
            storage: 0,
            path: String::new(),
            key: None,
        };
        Ok(Some(e))
    }

    fn walk_tree(
        &mut self,
        w: &mut TreeWalk,
        index: i32,
        level: u32,
        storage: usize,
        parent: &str,
    ) -> io::Result<bool> {
        if level > 100 || w.files > MAX_STREAMS {
            return Ok(true);
        }
        if level > MAX_STORAGE_DEPTH {
            w.stop = Some(format!(
                "OLE2: storages nested deeper than {MAX_STORAGE_DEPTH}"
            ));
            return Ok(false);
        }
        let mut stack = vec![index];
        while let Some(cur) = stack.pop() {
            if cur < 0 || cur > self.max_block_no {
                continue;
            }
            let Some(mut e) = self.read_entry(cur)? else {
                continue;
            };
            if e.kind == 0 {
                continue;
            }
            if !w.visited.insert(cur) {
                w.stop = Some(format!("OLE2: directory entry {cur} is reached twice"));
                return Ok(false);
            }
            let name = e.display_name();
            let path = if parent.is_empty() {
                name
            } else {
                format!("{parent}/{name}")
            };
            match e.kind {
                5 => {
                    if cur != 0 || level != 0 || w.files != 0 {
                        continue;
                    }
                    self.sbat_root_start = e.start as i32;
                    if e.child() != -1 && !self.walk_tree(w, e.child(), level + 1, storage, "")? {
                        return Ok(false);
                    }
                }
                2 => {
                    w.files += 1;
                    e.key = property_name(&e.raw, usize::from(e.name_size()));
                    e.storage = storage;
                    e.path = path.clone();
                    w.out.push(e.clone());
                    if e.child() != -1 && !self.walk_tree(w, e.child(), level, storage, parent)? {
                        return Ok(false);
                    }
                }
                1 => {
                    let id = w.storages;
                    w.storages += 1;
                    if e.child() != -1 && !self.walk_tree(w, e.child(), level + 1, id, &path)? {
                        return Ok(false);
                    }
                }
                _ => continue,
            }
            if e.prev() != -1 {
                stack.push(e.prev());
            }
            if e.next() != -1 {
                stack.push(e.next());
            }
        }
        Ok(true)
    }

    /// Copies a stream's bytes to `out`, as far as its chain can be followed
    /// (`handler_writefile`).
    pub(crate) fn copy_stream(&self, e: &Entry, out: &mut dyn Write) -> io::Result<()> {
        let mut cur = e.start as i32;
        let mut left = u64::from(e.size);
        let mut seen = HashSet::new();
        let small_file = e.size < self.sbat_cutoff;
        let bs = 1u64 << self.big;
        let ss = 1u64 << self.small;
        let per_block = 1u64 << (self.big - self.small);
        let mut buf = Vec::new();
        while cur >= 0 && left > 0 {
            if cur > self.max_block_no || !seen.insert(cur) {
                break;
            }
            if small_file {
                if self.sbat_root_start < 0 {
                    break;
                }
                let k = (cur as u64 / per_block) as usize;
                let block = self.nth(&self.root_chain, self.sbat_root_start, k)?;
                let Some(at) = self.block_offset(block, bs) else {
                    break;
                };
                let within = ss * (cur as u64 % per_block);
                let n = left.min(ss);
                write_range(self, at + within, n, &mut buf, out)?;
                left -= n;
                cur = self.next_sbat_block(cur)?;
            } else {
                let Some(at) = self.block_offset(cur, bs) else {
                    break;
                };
                let n = left.min(bs);
                write_range(self, at, n, &mut buf, out)?;
                left -= n;
                cur = self.next_block(cur)?;
            }
        }
        Ok(())
    }

    /// A stream's bytes in memory, at most `cap` of them.
    pub(crate) fn read_stream(&self, e: &Entry, cap: usize) -> io::Result<(Vec<u8>, bool)> {
        let mut w = Capped {
            buf: Vec::new(),
            cap,
            over: false,
        };
        match self.copy_stream(e, &mut w) {
            Err(_) if w.over => Ok((w.buf, true)),
            Err(err) => Err(err),
            Ok(()) => Ok((w.buf, false)),
        }
    }
}

struct TreeWalk {
    visited: HashSet<i32>,
    out: Vec<Entry>,
    files: u32,
    storages: usize,
    stop: Option<String>,
}

/// Writes `n` bytes at `at`, zeros for those past the end of the file.
fn write_range(
    f: &Ole2<'_>,
    at: u64,
    n: u64,
    buf: &mut Vec<u8>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let real = n.min(f.len.saturating_sub(at));
    let mut done = 0;
    while done < real {
        let chunk = (real - done).min(64 << 10) as usize;
        buf.resize(chunk, 0);
        f.src.read_exact_at(&mut buf[..chunk], at + done)?;
        out.write_all(&buf[..chunk])?;
        done += chunk as u64;
    }
    write_zeros(out, n - real)
}

fn write_zeros(out: &mut dyn Write, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

/// A writer into memory that refuses to grow past `cap`.
pub(crate) struct Capped {
    pub(crate) buf: Vec<u8>,
    pub(crate) cap: usize,
    pub(crate) over: bool,
}

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len() + b.len() > self.cap {
            let room = self.cap - self.buf.len();
            self.buf.extend_from_slice(&b[..room]);
            self.over = true;
            return Err(io::Error::other("over the in-memory cap"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams ClamAV reads whole to parse them (an embedded object, a VBA
/// `dir`, module sources, a PowerPoint document) are read into memory up to
/// this size; past it they are parsed as far as they were read.
pub(crate) const MAX_PARSED: usize = 64 << 20;

/// Whether a stream is zlib data behind a 4-byte size (`likely_mso_stream`).
fn is_mso(f: &Ole2<'_>, e: &Entry) -> io::Result<bool> {
    if e.size < 6 {
        return Ok(false);
    }
    let (head, _) = {
        let mut w = Capped {
            buf: Vec::new(),
            cap: 6,
            over: false,
        };
        let r = f.copy_stream(e, &mut w);
        match r {
            Err(_) if w.over => (w.buf, true),
            Err(err) => return Err(err),
            Ok(()) => (w.buf, false),
        }
    };
    Ok(head.len() >= 6 && head[4] == 0x78 && head[5] == 0x9c)
}

/// Inflates an MSO stream as `scan_mso_stream` does: zlib from offset 4, in
/// [`FILEBUFF`] pieces, until the data ends or breaks. `Ok(false)` when it
/// broke before producing anything (ClamAV then scans nothing).
fn inflate_mso(data: &[u8], out: &mut dyn Write) -> io::Result<bool> {
    inflate_zlib(
        data.get(4..).unwrap_or(&[]),
        FILEBUFF,
        FlushDecompress::Sync,
        out,
    )
    .map(|(produced, broke)| !(broke && produced == 0))
}

/// zlib-inflates `input`, fed `chunk` bytes at a time as ClamAV reads it;
/// returns the bytes produced and whether the data broke (an error, or no
/// progress) rather than ending or running out.
pub(crate) fn inflate_zlib(
    input: &[u8],
    chunk: usize,
    flush: FlushDecompress,
    out: &mut dyn Write,
) -> io::Result<(u64, bool)> {
    let mut d = Decompress::new(true);
    let mut obuf = vec![0u8; chunk];
    let mut pos = 0;
    let mut avail: &[u8] = &[];
    loop {
        if avail.is_empty() {
            let end = (pos + chunk).min(input.len());
            if end == pos {
                return Ok((d.total_out(), false));
            }
            avail = &input[pos..end];
            pos = end;
        }
        let (i0, o0) = (d.total_in(), d.total_out());
        let r = d.decompress(avail, &mut obuf, flush);
        let used = (d.total_in() - i0) as usize;
        let made = (d.total_out() - o0) as usize;
        avail = &avail[used.min(avail.len())..];
        out.write_all(&obuf[..made])?;
        match r {
            Ok(Status::Ok) => {}
            Ok(Status::StreamEnd) => return Ok((d.total_out(), false)),
            Ok(Status::BufError) | Err(_) => return Ok((d.total_out(), true)),
        }
    }
}

/// The file embedded in a `\1Ole10Native` stream (`cli_scan_ole10`).
pub(crate) fn ole10_native(data: &[u8]) -> Option<&[u8]> {
    let u32_at = |at: usize| -> Option<u32> {
        let b = data.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut size = u32_at(0)?;
    let mut pos = 4usize;
    if data.len() as i64 - i64::from(size) >= 4 {
        let past_nul = |from: usize| -> Option<usize> {
            let rest = data.get(from..)?;
            memchr::memchr(0, rest).map(|i| from + i + 1)
        };
        pos = past_nul(pos + 2)?; // type id, then the attachment's name
        pos = past_nul(pos)?; // its full path
        pos = past_nul(pos + 8)?; // eight unknown bytes, then a path again
        size = u32_at(pos)?;
        pos += 4;
    }
    // Copied in FILEBUFF pieces; a piece the stream cannot fill is dropped.
    let avail = data.len().saturating_sub(pos);
    let want = size as usize;
    let n = if want <= avail {
        want
    } else {
        avail / FILEBUFF * FILEBUFF
    };
    data.get(pos..pos + n)
}

/// The OLE2 documents compressed into a `PowerPoint Document` stream
/// (`cli_ppt_vba_read`): `(offset, inflated)` for each, or nothing when
/// ClamAV gives up on the stream (then it scans none of them).
pub(crate) fn ppt_objects(data: &[u8], cap: usize) -> Vec<(usize, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pos = 0usize;
    loop {
        let Some(h) = data.get(pos..pos + 8) else {
            return found;
        };
        let kind = u16::from_le_bytes([h[2], h[3]]);
        let length = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        pos += 8;
        if length == 0 {
            return Vec::new();
        }
        if kind == 0x1011 {
            pos += 4; // the object's id
            let length = length.wrapping_sub(4) as usize;
            let at = pos;
            match ppt_unlzw(data, pos, length, cap) {
                Some((out, next)) => {
                    found.push((at, out));
                    pos = next;
                }
                None => return Vec::new(),
            }
        } else {
            pos = pos.saturating_add(length as usize);
        }
    }
}

/// `ppt_unlzw`: inflates `length` bytes at `pos`, read in [`FILEBUFF`]
/// pieces each of which must be there; returns the output and where reading
/// stopped.
fn ppt_unlzw(data: &[u8], pos: usize, length: usize, cap: usize) -> Option<(Vec<u8>, usize)> {
    let mut d = Decompress::new(true);
    let mut out = Vec::new();
    let mut obuf = vec![0u8; FILEBUFF];
    let mut left = length;
    let mut at = pos;
    let take = |left: &mut usize, at: &mut usize| -> Option<&[u8]> {
        let n = (*left).min(FILEBUFF);
        let piece = data.get(*at..at.checked_add(n)?)?;
        *left -= n;
        *at += n;
        Some(piece)
    };
    let mut avail = take(&mut left, &mut at)?;
    loop {
        if avail.is_empty() {
            avail = take(&mut left, &mut at)?;
        }
        let (i0, o0) = (d.total_in(), d.total_out());
        let r = d.decompress(avail, &mut obuf, FlushDecompress::None);
        let used = (d.total_in() - i0) as usize;
        let made = (d.total_out() - o0) as usize;
        avail = &avail[used.min(avail.len())..];
        if out.len() + made > cap {
            let room = cap - out.len();
            out.extend_from_slice(&obuf[..room]);
            return Some((out, at));
        }
        out.extend_from_slice(&obuf[..made]);
        if !matches!(r, Ok(Status::Ok)) {
            return Some((out, at));
        }
        // zlib reports no progress as an error when it has nothing to read.
        if used == 0 && made == 0 && avail.is_empty() && left == 0 {
            return Some((out, at));
        }
    }
}

pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let mut f = match Ole2::open(src) {
        Ok(f) => f,
        Err(OpenError::Io(e)) => return Err(e.into()),
        Err(OpenError::Refused(detail)) => {
            visitor.problem(Problem::Broken {
                member: None,
                detail,
            });
            return Ok(());
        }
    };
    let (entries, stop) = f.entries()?;
    if let Some(detail) = stop
        && visitor.problem(Problem::Broken {
            member: None,
            detail,
        }) == Flow::Stop
    {
        return Ok(());
    }
    let f = &f;
    let macros = [
        "_vba_project",
        "powerpoint document",
        "worddocument",
        "_1_ole10native",
    ]
    .iter()
    .any(|k| named(&entries, k).next().is_some());
    if !macros {
        for e in &entries {
            let flow = if is_mso(f, e)? {
                let (data, _) = f.read_stream(e, MAX_PARSED)?;
                let mut m = Member::new(
                    e.path.clone(),
                    Body::Push(Box::new(move |out: &mut dyn Write| {
                        inflate_mso(&data, out).map(|_| ())
                    })),
                );
                m.packed_size = Some(u64::from(e.size));
                visit(visitor, &mut m)
            } else {
                visit_stream(f, e, visitor)
            };
            if flow == Flow::Stop {
                return Ok(());
            }
        }
        return Ok(());
    }
    // ClamAV writes each stream to a file, but not those whose name is
    // longer than 64 bytes: they are neither scanned nor found by name.
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| e.name_size() <= 64)
        .collect();
    // Embedded objects.
    for e in named(&entries, "_1_ole10native") {
        let (data, _) = f.read_stream(e, MAX_PARSED)?;
        if let Some(object) = ole10_native(&data) {
            let object = object.to_vec();
            let mut m = Member::new(
                format!("{}:embedded", e.path),
                Body::Read(Box::new(io::Cursor::new(object))),
            );
            if visit(visitor, &mut m) == Flow::Stop {
                return Ok(());
            }
        }
    }
    // PowerPoint's compressed OLE objects.
    for e in named(&entries, "powerpoint document") {
        let (data, _) = f.read_stream(e, MAX_PARSED)?;
        for (at, object) in ppt_objects(&data, MAX_PARSED) {
            let name = format!("{}:ppt{:08x}.doc", e.path, at);
            let mut m = Member::new(name, Body::Read(Box::new(io::Cursor::new(object))));
            if visit(visitor, &mut m) == Flow::Stop {
                return Ok(());
            }
        }
    }
    // VBA modules listed by `_VBA_PROJECT` in Office 97-2003's layout; all
    // must be streams of the document, as ClamAV finds them by name.
    for p in named(&entries, "_vba_project") {
        let (data, _) = f.read_stream(p, MAX_PARSED)?;
        let Some(modules) = vba::legacy_modules(&data) else {
            continue;
        };
        let known = |name: &str| entries.iter().any(|e| e.key.as_deref() == Some(name));
        if !modules.iter().all(|(name, _)| known(name)) {
            continue;
        }
        for (name, offset) in &modules {
            let streams = entries
                .iter()
                .filter(|e| e.storage == p.storage && e.key.as_deref() == Some(name.as_str()));
            for e in streams {
                let (raw, _) = f.read_stream(e, MAX_PARSED)?;
                let Some(source) = vba::decompress(&raw, *offset as usize, MAX_PARSED) else {
                    continue;
                };
                let mut m = Member::new(
                    format!("{}:source", e.path),
                    Body::Read(Box::new(io::Cursor::new(source))),
                );
                m.content = Content::MacroSource;
                if visit(visitor, &mut m) == Flow::Stop {
                    return Ok(());
                }
            }
        }
    }
    // Word 6/95 macros.
    for e in named(&entries, "worddocument") {
        let (data, _) = f.read_stream(e, MAX_PARSED)?;
        for (k, source) in vba::word6_macros(&data).into_iter().enumerate() {
            let mut m = Member::new(
                format!("{}:macro{k}", e.path),
                Body::Read(Box::new(io::Cursor::new(source))),
            );
            m.content = Content::MacroSource;
            if visit(visitor, &mut m) == Flow::Stop {
                return Ok(());
            }
        }
    }
    // VBA projects.
    for e in named(&entries, "dir") {
        match vba::project_text(f, &entries, e) {
            Ok(Some(text)) => {
                let mut m = Member::new(
                    format!("{}:vba_project", e.path),
                    Body::Read(Box::new(io::Cursor::new(text))),
                );
                m.content = Content::MacroProject;
                if visit(visitor, &mut m) == Flow::Stop {
                    return Ok(());
                }
            }
            Ok(None) => {}
            Err(vba::ProjectError::Io(err)) => return Err(err.into()),
            Err(vba::ProjectError::Parse(detail)) => {
                if visitor.problem(Problem::Broken {
                    member: Some(e.path.clone()),
                    detail,
                }) == Flow::Stop
                {
                    return Ok(());
                }
            }
        }
    }
    for e in &entries {
        if visit_stream(f, e, visitor) == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

/// The streams ClamAV names `key`.
fn named<'e>(entries: &'e [Entry], key: &'static str) -> impl Iterator<Item = &'e Entry> + 'e {
    entries
        .iter()
        .filter(move |e| e.key.as_deref() == Some(key))
}

fn visit_stream(f: &Ole2<'_>, e: &Entry, visitor: &mut dyn Visitor) -> Flow {
    let mut m = Member::new(
        e.path.clone(),
        Body::Push(Box::new(move |out: &mut dyn Write| f.copy_stream(e, out))),
    );
    m.declared_size = None;
    m.packed_size = Some(u64::from(e.size));
    visit(visitor, &mut m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_clamav_spells_them() {
        let utf16 = |s: &str| -> Vec<u8> {
            let mut v: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            v.extend_from_slice(&[0, 0]);
            v
        };
        let n = utf16("\u{1}Ole10Native");
        assert_eq!(
            property_name(&n, n.len()).as_deref(),
            Some("_1_ole10native")
        );
        let n = utf16("_VBA_PROJECT");
        assert_eq!(property_name(&n, n.len()).as_deref(), Some("_vba_project"));
        let n = utf16("\u{5}SummaryInformation");
        assert_eq!(
            property_name(&n, n.len()).as_deref(),
            Some("_5_summaryinformation")
        );
        // A character outside ASCII: three letters from its bits.
        let n = utf16("\u{00e9}");
        assert_eq!(property_name(&n, n.len()).as_deref(), Some("_aaj_"));
        assert_eq!(property_name(&[0, 0, 0, 0], 4), None);
        assert_eq!(property_name(&utf16("x"), 0), None);
    }

    #[test]
    fn ole10_native_header_is_skipped() {
        let mut s = Vec::new();
        s.extend_from_slice(&[0; 4]);
        s.extend_from_slice(&[2, 0]);
        s.extend_from_slice(b"name.exe\0C:\\path\\name.exe\0");
        s.extend_from_slice(&[0; 8]);
        s.extend_from_slice(b"C:\\tmp\\name.exe\0");
        s.extend_from_slice(&5u32.to_le_bytes());
        s.extend_from_slice(b"HELLOtrailing");
        let total = (s.len() - 4) as u32;
        s[..4].copy_from_slice(&total.to_le_bytes());
        assert_eq!(ole10_native(&s), Some(&b"HELLO"[..]));
        // A size larger than the stream: whole 8 KiB pieces only.
        let mut t = 20_000u32.to_le_bytes().to_vec();
        t.extend(std::iter::repeat_n(7u8, 10_000));
        assert_eq!(ole10_native(&t).map(<[u8]>::len), Some(8192));
        assert_eq!(ole10_native(&[1, 2]), None);
    }
}
