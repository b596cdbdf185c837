//! ARJ archives: stored files and methods 1-4, as ClamAV's `unarj.c`
//! extracts them.
//!
//! Methods 1-3 are one decoder (LZ77 over a 26 KiB window with static
//! Huffman blocks, as LHA's `-lh5-`, a 16-bit block size and code tables in
//! front of each block); method 4 is ARJ's own, with unary-prefixed lengths
//! and distances and no Huffman coding. Both are written here from ClamAV's
//! description of them, with its particulars, because they decide what is
//! scanned:
//!
//! - the decoder reads zero bits past the member's packed size and stops when
//!   it has made the declared size; the last match is not cut there, so a
//!   member may come out a little longer than declared;
//! - on a decoding error only the whole 26 KiB windows made so far are
//!   output (a cut archive's member is scanned with those);
//! - the next header is read where the decoder stopped reading, not at the
//!   end of the packed data; if it is not there, the walk ends;
//! - password-protected ("garbled") members are skipped, and a member of an
//!   unknown method ends the walk.
//!
//! Memory: the 26 KiB window and the Huffman tables, per member.

use std::cell::Cell;
use std::io::{self, Write};
use std::rc::Rc;

use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

const HEADER_ID: [u8; 2] = [0x60, 0xea];
const FIRST_HDR_SIZE: u64 = 30;
const HEADERSIZE_MAX: u64 = 30 + 10 + 512 + 2048;
const GARBLE_FLAG: u8 = 0x01;
/// The window: output is written in pieces of this size.
const DDICSIZ: usize = 26624;
const THRESHOLD: u16 = 3;
const MAXMATCH: usize = 256;
const NC: usize = 255 + MAXMATCH + 2 - THRESHOLD as usize;
const NP: usize = 16 + 1;
const NT: usize = 16 + 3;
const NPT: usize = NT;
const CBIT: u32 = 9;
const PBIT: u32 = 5;
const TBIT: u32 = 5;
const CTABLESIZE: usize = 4096;
const PTABLESIZE: usize = 256;
const NODES: usize = 2 * NC - 1;

/// One member's header, as far as the walk needs it.
struct FileHeader {
    name: String,
    comp_size: u32,
    orig_size: u32,
    method: u8,
    garbled: bool,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads `n` bytes at `at`, or `None` if the input is shorter.
fn bytes_at(src: &dyn ReadAt, at: u64, n: usize) -> io::Result<Option<Vec<u8>>> {
    let mut b = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = src.read_at(&mut b[got..], at + got as u64)?;
        if k == 0 {
            return Ok(None);
        }
        got += k;
    }
    Ok(Some(b))
}

/// The length of a NUL-terminated string at `at` of at most `max` bytes, if
/// a NUL is within `max + 1` bytes and the input (ClamAV's
/// `fmap_need_offstr`).
fn string_len(src: &dyn ReadAt, at: u64, max: u64) -> io::Result<Option<(usize, Vec<u8>)>> {
    let room = src.size().saturating_sub(at);
    let look = (max + 1).min(room) as usize;
    if look == 0 {
        return Ok(None);
    }
    let Some(b) = bytes_at(src, at, look)? else {
        return Ok(None);
    };
    match b.iter().position(|&c| c == 0) {
        Some(_) => {
            let len = b.iter().take(max as usize).position(|&c| c == 0);
            let len = len.unwrap_or(max as usize);
            Ok(Some((len, b[..len.min(b.len())].to_vec())))
        }
        None => Ok(None),
    }
}

/// A header's fixed 30 bytes and its name.
type Header = ([u8; 30], Vec<u8>);

/// Where a decoder stopped reading, and why if early.
type Stopped = (u64, Option<&'static str>);

/// Why a header could not be read.
enum HeaderEnd {
    /// A header size of 0: the end of the archive.
    End,
    Broken(String),
}

/// Reads a header at `*pos` (after its `60 ea` mark): main or file, which
/// share a layout. Returns its fixed 30 bytes and the name.
fn read_header(src: &dyn ReadAt, pos: &mut u64) -> io::Result<Result<Header, HeaderEnd>> {
    let broken = |what: &str, at: u64| {
        Ok(Err(HeaderEnd::Broken(format!(
            "ARJ: {what} at offset {at}"
        ))))
    };
    let orig = *pos;
    let Some(b) = bytes_at(src, *pos, 2)? else {
        return broken("header size cut", orig);
    };
    let header_size = u64::from(le16(&b, 0));
    *pos += 2;
    if header_size == 0 {
        return Ok(Err(HeaderEnd::End));
    }
    if header_size > HEADERSIZE_MAX {
        return broken("header too large", orig);
    }
    if header_size + 2 > src.size().saturating_sub(*pos) {
        return broken("header runs past the end", orig);
    }
    let Some(fixed) = bytes_at(src, *pos, 30)? else {
        return broken("header cut", orig);
    };
    let mut h = [0u8; 30];
    h.copy_from_slice(&fixed);
    *pos += 30;
    let first = u64::from(h[0]);
    if first < FIRST_HDR_SIZE {
        return broken("first header size below 30", orig);
    }
    *pos += first - FIRST_HDR_SIZE;
    // What is left of the header for the name, and then the comment.
    let left = |pos: u64| (header_size + 2).wrapping_sub(pos - orig);
    let name_max = left(*pos);
    if name_max > header_size {
        return broken("first header size too large", orig);
    }
    let mut name = Vec::new();
    let mut name_len = 0;
    if name_max > 0 {
        let Some((len, n)) = string_len(src, *pos, name_max)? else {
            return broken("name not terminated", orig);
        };
        name_len = len;
        name = n;
    }
    *pos += name_len as u64 + 1;
    let comment_max = left(*pos);
    if comment_max > header_size {
        return broken("name runs past its header", orig);
    }
    let mut comment_len = 0;
    if comment_max > 0 {
        let Some((len, _)) = string_len(src, *pos, comment_max)? else {
            return broken("comment not terminated", orig);
        };
        comment_len = len;
    }
    *pos += comment_len as u64 + 1;
    *pos += 4; // the header's CRC
    // Extended headers, each with a CRC.
    loop {
        let Some(b) = bytes_at(src, *pos, 2)? else {
            return broken("extended header cut", *pos);
        };
        *pos += 2;
        let count = u64::from(le16(&b, 0));
        if count == 0 {
            break;
        }
        *pos += count + 4;
    }
    Ok(Ok((h, name)))
}

fn mark_at(src: &dyn ReadAt, pos: &mut u64) -> io::Result<bool> {
    let Some(b) = bytes_at(src, *pos, 2)? else {
        return Ok(false);
    };
    *pos += 2;
    Ok(b == HEADER_ID)
}

/// Walks the members of the ARJ archive in `src`.
pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let mut pos = 0u64;
    if !mark_at(src, &mut pos)? {
        visitor.problem(Problem::Broken {
            member: None,
            detail: "ARJ: no header mark".into(),
        });
        return Ok(());
    }
    match read_header(src, &mut pos)? {
        Ok(_) => {}
        Err(HeaderEnd::End) => return Ok(()),
        Err(HeaderEnd::Broken(detail)) => {
            visitor.problem(Problem::Broken {
                member: None,
                detail: format!("{detail} (main header)"),
            });
            return Ok(());
        }
    }
    loop {
        let at = pos;
        if !mark_at(src, &mut pos)? {
            // A member whose data ends elsewhere than its decoder stopped.
            if at < src.size() {
                visitor.problem(Problem::Broken {
                    member: None,
                    detail: format!("ARJ: no header mark at offset {at}"),
                });
            }
            return Ok(());
        }
        let (h, name) = match read_header(src, &mut pos)? {
            Ok(x) => x,
            Err(HeaderEnd::End) => return Ok(()),
            Err(HeaderEnd::Broken(detail)) => {
                visitor.problem(Problem::Broken {
                    member: None,
                    detail,
                });
                return Ok(());
            }
        };
        let f = FileHeader {
            name: String::from_utf8_lossy(&name).into_owned(),
            comp_size: le32(&h, 12),
            orig_size: le32(&h, 16),
            method: h[5],
            garbled: h[4] & GARBLE_FLAG != 0,
        };
        match member(src, visitor, &f, pos) {
            (Flow::Stop, _) => return Ok(()),
            (Flow::Continue, Some(next)) => pos = next,
            (Flow::Continue, None) => return Ok(()),
        }
    }
}

/// Visits one member whose data starts at `data`; returns where the next
/// header is, or `None` when the walk ends.
fn member(
    src: &dyn ReadAt,
    visitor: &mut dyn Visitor,
    f: &FileHeader,
    data: u64,
) -> (Flow, Option<u64>) {
    let skip_to = data + u64::from(f.comp_size);
    if f.garbled {
        // Skipped by ClamAV. Not `Encrypted`: ClamAV has no heuristic alert
        // for ARJ passwords.
        let flow = visitor.problem(Problem::Unsupported {
            member: f.name.clone(),
            detail: "ARJ: garbled (password-protected) member, skipped".into(),
        });
        return (flow, Some(skip_to));
    }
    if f.method > 4 {
        let flow = visitor.problem(Problem::Unsupported {
            member: f.name.clone(),
            detail: format!("ARJ: method {}", f.method),
        });
        // ClamAV reads the next header at the member's data: the walk ends.
        return (flow, Some(data));
    }
    if check_name(visitor, &f.name) == Flow::Stop {
        return (Flow::Stop, None);
    }
    // Where the decoder stopped reading, and its error, once it ran to its end.
    let end: Rc<Cell<Option<Stopped>>> = Rc::new(Cell::new(None));
    let done = Rc::clone(&end);
    let (method, comp, orig) = (f.method, f.comp_size, f.orig_size);
    let body = Body::Push(Box::new(move |out: &mut dyn Write| {
        let r = match method {
            0 => unstore(src, data, comp, out),
            4 => {
                let mut d = Decoder::new(src, data, comp);
                d.decode_f(orig, out)
            }
            _ => {
                let mut d = Decoder::new(src, data, comp);
                d.decode(orig, out)
            }
        }?;
        done.set(Some(r));
        Ok(())
    }));
    let mut m = Member::new(f.name.clone(), body);
    m.declared_size = Some(u64::from(f.orig_size));
    m.packed_size = Some(u64::from(f.comp_size));
    let flow = visit(visitor, &mut m);
    drop(m);
    let next = match end.get() {
        Some((at, error)) => {
            if let Some(e) = error
                && visitor.problem(Problem::Broken {
                    member: Some(f.name.clone()),
                    detail: format!("ARJ: {e}"),
                }) == Flow::Stop
            {
                return (Flow::Stop, None);
            }
            at
        }
        None => skip_to,
    };
    (flow, Some(next))
}

/// Copies a stored member; returns where it stopped and why, if early.
fn unstore(src: &dyn ReadAt, data: u64, len: u32, out: &mut dyn Write) -> io::Result<Stopped> {
    let mut buf = vec![0u8; 8192];
    let mut at = data;
    let mut rem = u64::from(len);
    while rem > 0 {
        let want = rem.min(8192) as usize;
        let n = src.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Ok((at, Some("stored data cut short")));
        }
        out.write_all(&buf[..n])?;
        at += n as u64;
        rem -= n as u64;
    }
    Ok((at, None))
}

/// What ClamAV's decoder state calls `status`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    /// The input ended inside the packed data.
    Format,
    /// A bad code table.
    Unpack,
}

impl Status {
    fn describe(self) -> Option<&'static str> {
        match self {
            Status::Ok => None,
            Status::Format => Some("packed data cut short or corrupt"),
            Status::Unpack => Some("bad code table"),
        }
    }
}

/// Where a code goes while a table's tree is built.
#[derive(Clone, Copy)]
enum Slot {
    Table(usize),
    Left(usize),
    Right(usize),
}

/// The decoder state of ClamAV's `arj_decode_t`.
struct Decoder<'a> {
    src: &'a dyn ReadAt,
    /// Next byte to read, and packed bytes left.
    offset: u64,
    comp_left: u32,
    buf: Vec<u8>,
    buf_at: u64,
    bit_buf: u16,
    sub_bit_buf: u8,
    bit_count: u32,
    blocksize: u16,
    getlen: i32,
    getbuf: u16,
    left: Vec<u16>,
    right: Vec<u16>,
    c_len: Vec<u8>,
    c_table: Vec<u16>,
    pt_len: [u8; NPT],
    pt_table: Vec<u16>,
    status: Status,
    text: Vec<u8>,
}

impl<'a> Decoder<'a> {
    fn new(src: &'a dyn ReadAt, offset: u64, comp: u32) -> Decoder<'a> {
        Decoder {
            src,
            offset,
            comp_left: comp,
            buf: Vec::new(),
            buf_at: offset,
            bit_buf: 0,
            sub_bit_buf: 0,
            bit_count: 0,
            blocksize: 0,
            getlen: 0,
            getbuf: 0,
            left: vec![0; NODES],
            right: vec![0; NODES],
            c_len: vec![0; NC],
            c_table: vec![0; CTABLESIZE],
            pt_len: [0; NPT],
            pt_table: vec![0; PTABLESIZE],
            status: Status::Ok,
            text: vec![0; DDICSIZ],
        }
    }

    /// The byte at `offset`, read 8 KiB at a time.
    fn byte(&mut self) -> io::Result<Option<u8>> {
        let rel = self.offset.wrapping_sub(self.buf_at);
        if self.offset < self.buf_at || rel >= self.buf.len() as u64 {
            self.buf.resize(8192, 0);
            let n = self.src.read_at(&mut self.buf, self.offset)?;
            self.buf.truncate(n);
            self.buf_at = self.offset;
            if n == 0 {
                return Ok(None);
            }
            return Ok(Some(self.buf[0]));
        }
        Ok(Some(self.buf[rel as usize]))
    }

    /// Shifts `n` new bits into `bit_buf`.
    fn fill_buf(&mut self, mut n: u32) -> io::Result<()> {
        if self.status == Status::Format {
            return Ok(());
        }
        // ClamAV's overflow check: a no-op for 17 bits of a high buffer.
        if n > 0 && u64::from(self.bit_buf) << n > u64::from(u32::MAX) {
            return Ok(());
        }
        self.bit_buf = ((u64::from(self.bit_buf) << n) & 0xffff) as u16;
        while n > self.bit_count {
            n -= self.bit_count;
            self.bit_buf |= ((u64::from(self.sub_bit_buf) << n) & 0xffff) as u16;
            if self.comp_left != 0 {
                self.comp_left -= 1;
                match self.byte()? {
                    Some(b) => self.sub_bit_buf = b,
                    None => {
                        self.status = Status::Format;
                        return Ok(());
                    }
                }
                self.offset += 1;
            } else {
                self.sub_bit_buf = 0;
            }
            self.bit_count = 8;
        }
        self.bit_count -= n;
        self.bit_buf |= u16::from(self.sub_bit_buf) >> self.bit_count;
        Ok(())
    }

    fn getbits(&mut self, n: u32) -> io::Result<u16> {
        let x = (u32::from(self.bit_buf) >> (16 - n)) as u16;
        self.fill_buf(n)?;
        Ok(x)
    }

    /// Builds a lookup table of `tablebits` bits (and a tree for longer
    /// codes) from code lengths; `c` selects the literal/length table
    /// rather than the position/length-code one.
    fn make_table(&mut self, nchar: usize, c: bool, tablebits: u32) -> bool {
        let bitlen: Vec<u8> = if c {
            self.c_len[..nchar].to_vec()
        } else {
            self.pt_len[..nchar.min(NPT)].to_vec()
        };
        let tablesize = if c { CTABLESIZE } else { PTABLESIZE };
        let mut count = [0u16; 17];
        for &l in &bitlen {
            if l >= 17 {
                self.status = Status::Unpack;
                return false;
            }
            count[usize::from(l)] = count[usize::from(l)].wrapping_add(1);
        }
        let mut start = [0u16; 18];
        for i in 1..=16 {
            start[i + 1] = start[i].wrapping_add(((u32::from(count[i])) << (16 - i)) as u16);
        }
        if start[17] != 0 {
            self.status = Status::Unpack;
            return false;
        }
        let jutbits = 16 - tablebits;
        let mut weight = [0u16; 17];
        for i in 1..=tablebits as usize {
            start[i] >>= jutbits;
            weight[i] = 1 << (tablebits as usize - i);
        }
        for (i, w) in weight.iter_mut().enumerate().skip(tablebits as usize + 1) {
            *w = 1 << (16 - i);
        }
        let mut i = usize::from(start[tablebits as usize + 1] >> jutbits);
        if i != 0 {
            let k = 1usize << tablebits;
            while i != k {
                if i >= tablesize {
                    self.status = Status::Unpack;
                    return false;
                }
                self.table(c)[i] = 0;
                i += 1;
            }
        }
        let mut avail = nchar;
        let mask = 1u32 << (15 - tablebits);
        for (ch, &len) in bitlen.iter().enumerate() {
            if len == 0 {
                continue;
            }
            let len = usize::from(len);
            let mut k = u32::from(start[len]);
            let nextcode = k + u32::from(weight[len]);
            if len <= tablebits as usize {
                if nextcode as usize > tablesize {
                    self.status = Status::Unpack;
                    return false;
                }
                for i in start[len] as usize..nextcode as usize {
                    self.table(c)[i] = ch as u16;
                }
            } else {
                let mut p = Slot::Table((k >> jutbits) as usize);
                let mut n = len - tablebits as usize;
                while n != 0 {
                    let mut v = self.get(c, p);
                    if v == 0 {
                        if avail >= NODES {
                            self.status = Status::Unpack;
                            return false;
                        }
                        self.right[avail] = 0;
                        self.left[avail] = 0;
                        self.set(c, p, avail as u16);
                        v = avail as u16;
                        avail += 1;
                    }
                    if usize::from(v) >= NODES {
                        self.status = Status::Unpack;
                        return false;
                    }
                    p = if k & mask != 0 {
                        Slot::Right(usize::from(v))
                    } else {
                        Slot::Left(usize::from(v))
                    };
                    k <<= 1;
                    n -= 1;
                }
                self.set(c, p, ch as u16);
            }
            start[len] = nextcode as u16;
        }
        true
    }

    fn table(&mut self, c: bool) -> &mut Vec<u16> {
        if c {
            &mut self.c_table
        } else {
            &mut self.pt_table
        }
    }

    fn get(&mut self, c: bool, s: Slot) -> u16 {
        match s {
            Slot::Table(i) => self.table(c)[i],
            Slot::Left(i) => self.left[i],
            Slot::Right(i) => self.right[i],
        }
    }

    fn set(&mut self, c: bool, s: Slot, v: u16) {
        match s {
            Slot::Table(i) => self.table(c)[i] = v,
            Slot::Left(i) => self.left[i] = v,
            Slot::Right(i) => self.right[i] = v,
        }
    }

    /// Follows the tree from `j` while it is a node (`>= leaves`), taking
    /// the bits of `bit_buf` from `mask` down; `None` on a bad node.
    fn walk_tree(&self, mut j: u16, leaves: usize, mut mask: u16) -> Option<u16> {
        // A tree from damaged tables could loop: no real code is longer.
        for _ in 0..NODES {
            if usize::from(j) < leaves {
                return Some(j);
            }
            if usize::from(j) >= NODES {
                return None;
            }
            j = if self.bit_buf & mask != 0 {
                self.right[usize::from(j)]
            } else {
                self.left[usize::from(j)]
            };
            mask >>= 1;
        }
        None
    }

    fn read_pt_len(&mut self, nn: usize, nbit: u32, special: Option<usize>) -> io::Result<()> {
        let n = usize::from(self.getbits(nbit)?);
        if n == 0 {
            let c = self.getbits(nbit)?;
            self.pt_len[..nn].fill(0);
            self.pt_table.fill(c);
            return Ok(());
        }
        let mut i = 0;
        while i < n && i < NPT {
            let mut c = self.bit_buf >> 13;
            if c == 7 {
                let mut mask = 1u16 << 12;
                while mask & self.bit_buf != 0 {
                    mask >>= 1;
                    c += 1;
                }
            }
            self.fill_buf(if c < 7 { 3 } else { u32::from(c) - 3 })?;
            if self.status != Status::Ok {
                return Ok(());
            }
            self.pt_len[i] = c as u8;
            i += 1;
            if Some(i) == special {
                let mut c = i32::from(self.getbits(2)?);
                if self.status != Status::Ok {
                    return Ok(());
                }
                c -= 1;
                while c >= 0 && i < NPT {
                    self.pt_len[i] = 0;
                    i += 1;
                    c -= 1;
                }
            }
        }
        while i < nn && i < NPT {
            self.pt_len[i] = 0;
            i += 1;
        }
        self.make_table(nn, false, 8);
        Ok(())
    }

    fn read_c_len(&mut self) -> io::Result<()> {
        let n = usize::from(self.getbits(CBIT)?);
        if self.status != Status::Ok {
            return Ok(());
        }
        if n == 0 {
            let c = self.getbits(CBIT)?;
            if self.status != Status::Ok {
                return Ok(());
            }
            self.c_len.fill(0);
            self.c_table.fill(c);
            return Ok(());
        }
        let mut i = 0;
        while i < n {
            let c = self.pt_table[usize::from(self.bit_buf >> 8)];
            let Some(c) = self.walk_tree(c, NT, 1 << 7) else {
                self.status = Status::Format;
                return Ok(());
            };
            let c = usize::from(c);
            self.fill_buf(u32::from(self.pt_len[c]))?;
            if self.status != Status::Ok {
                return Ok(());
            }
            if c <= 2 {
                let mut zeros = match c {
                    0 => 1,
                    1 => i32::from(self.getbits(4)?) + 3,
                    _ => i32::from(self.getbits(CBIT)?) + 20,
                };
                if self.status != Status::Ok {
                    return Ok(());
                }
                while zeros > 0 {
                    if i >= NC {
                        self.status = Status::Format;
                        return Ok(());
                    }
                    self.c_len[i] = 0;
                    i += 1;
                    zeros -= 1;
                }
            } else {
                if i >= NC {
                    self.status = Status::Format;
                    return Ok(());
                }
                self.c_len[i] = (c - 2) as u8;
                i += 1;
            }
        }
        self.c_len[i.min(NC)..].fill(0);
        self.make_table(NC, true, 12);
        Ok(())
    }

    fn decode_c(&mut self) -> io::Result<u16> {
        if self.blocksize == 0 {
            self.blocksize = self.getbits(16)?;
            self.read_pt_len(NT, TBIT, Some(3))?;
            self.read_c_len()?;
            self.read_pt_len(NT, PBIT, None)?;
        }
        self.blocksize = self.blocksize.wrapping_sub(1);
        let j = self.c_table[usize::from(self.bit_buf >> 4)];
        let Some(j) = self.walk_tree(j, NC, 1 << 3) else {
            self.status = Status::Unpack;
            return Ok(0);
        };
        self.fill_buf(u32::from(self.c_len[usize::from(j)]))?;
        Ok(j)
    }

    fn decode_p(&mut self) -> io::Result<u16> {
        let j = self.pt_table[usize::from(self.bit_buf >> 8)];
        let Some(mut j) = self.walk_tree(j, NP, 1 << 7) else {
            self.status = Status::Unpack;
            return Ok(0);
        };
        self.fill_buf(u32::from(self.pt_len[usize::from(j)]))?;
        if j != 0 {
            j -= 1;
            j = (1u16 << j).wrapping_add(self.getbits(u32::from(j))?);
        }
        Ok(j)
    }

    /// Where a match starts: ClamAV's 16-bit arithmetic, `None` when it is
    /// outside the window (ClamAV then stops decoding, without an error).
    fn match_start(out_ptr: usize, distance: u16) -> Option<usize> {
        let mut i = (out_ptr as u32)
            .wrapping_sub(distance as i16 as i32 as u32)
            .wrapping_sub(1) as u16 as i16;
        if i < 0 {
            i += DDICSIZ as i16;
        }
        if i < 0 || i as usize >= DDICSIZ {
            return None;
        }
        Some(i as usize)
    }

    /// Adds one byte to the window, writing it out when full.
    fn put(&mut self, out_ptr: &mut usize, b: u8, out: &mut dyn Write) -> io::Result<()> {
        self.text[*out_ptr] = b;
        *out_ptr += 1;
        if *out_ptr >= DDICSIZ {
            *out_ptr = 0;
            out.write_all(&self.text)?;
        }
        Ok(())
    }

    /// The end: where reading stopped and the error, if any.
    fn end(&self) -> Stopped {
        (self.offset, self.status.describe())
    }

    /// Methods 1-3.
    fn decode(&mut self, orig_size: u32, out: &mut dyn Write) -> io::Result<Stopped> {
        self.blocksize = 0;
        self.fill_buf(16)?;
        if self.status != Status::Ok {
            return Ok(self.end());
        }
        let mut count = 0u32;
        let mut out_ptr = 0usize;
        while count < orig_size {
            let chr = self.decode_c()?;
            if chr <= 255 {
                self.put(&mut out_ptr, chr as u8, out)?;
                count += 1;
            } else {
                let mut j = i32::from(chr) - (255 + 1 - i32::from(THRESHOLD));
                count = count.wrapping_add(j as u32);
                let distance = self.decode_p()?;
                let Some(mut i) = Self::match_start(out_ptr, distance) else {
                    break;
                };
                j -= 1;
                while j >= 0 {
                    self.put(&mut out_ptr, self.text[i], out)?;
                    i += 1;
                    if i >= DDICSIZ {
                        i = 0;
                    }
                    j -= 1;
                }
            }
            if self.status != Status::Ok {
                return Ok(self.end());
            }
        }
        out.write_all(&self.text[..out_ptr])?;
        Ok(self.end())
    }

    /// Refills `getbuf` (ClamAV's `ARJ_BFIL`).
    fn bfil(&mut self) -> io::Result<()> {
        self.getbuf |= self.bit_buf >> self.getlen;
        self.fill_buf((16 - self.getlen) as u32)?;
        self.getlen = 16;
        Ok(())
    }

    fn getbit(&mut self) -> io::Result<u16> {
        if self.getlen <= 0 {
            self.bfil()?;
        }
        let c = u16::from(self.getbuf & 0x8000 != 0);
        self.getbuf = self.getbuf.wrapping_mul(2);
        self.getlen -= 1;
        Ok(c)
    }

    fn getbits_f(&mut self, l: i32) -> io::Result<u16> {
        if self.getlen < l {
            self.bfil()?;
        }
        let c = self.getbuf >> (16 - l);
        self.getbuf = self.getbuf.wrapping_shl(l as u32);
        if l >= 16 {
            self.getbuf = 0;
        }
        self.getlen -= l;
        Ok(c)
    }

    /// A unary-prefixed number: `start` to `stop` bits of width.
    fn unary(&mut self, start: u16, stop: u16) -> io::Result<u16> {
        let mut plus = 0u16;
        let mut pwr = 1u16 << start;
        let mut width = start;
        let mut c = 0u16;
        while width < stop {
            c = self.getbit()?;
            if c == 0 {
                break;
            }
            plus = plus.wrapping_add(pwr);
            pwr <<= 1;
            width += 1;
        }
        if width != 0 {
            c = self.getbits_f(i32::from(width))?;
        }
        Ok(c.wrapping_add(plus))
    }

    /// Method 4.
    fn decode_f(&mut self, orig_size: u32, out: &mut dyn Write) -> io::Result<Stopped> {
        self.fill_buf(16)?;
        if self.status != Status::Ok {
            return Ok(self.end());
        }
        self.getlen = 0;
        self.getbuf = 0;
        let mut count = 0u32;
        let mut out_ptr = 0usize;
        while count < orig_size {
            let chr = self.unary(0, 7)?;
            if self.status != Status::Ok {
                return Ok(self.end());
            }
            if chr == 0 {
                let b = self.getbits_f(8)?;
                if self.status != Status::Ok {
                    return Ok(self.end());
                }
                self.put(&mut out_ptr, b as u8, out)?;
                count += 1;
            } else {
                let j = i32::from(chr) - 1 + i32::from(THRESHOLD);
                count = count.wrapping_add(j as u32);
                let pos = self.unary(9, 13)?;
                if self.status != Status::Ok {
                    return Ok(self.end());
                }
                let Some(mut i) = Self::match_start(out_ptr, pos) else {
                    break;
                };
                for _ in 0..j {
                    self.put(&mut out_ptr, self.text[i], out)?;
                    i += 1;
                    if i >= DDICSIZ {
                        i = 0;
                    }
                }
            }
        }
        out.write_all(&self.text[..out_ptr])?;
        Ok(self.end())
    }
}
