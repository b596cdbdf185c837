//! Microsoft cabinets (`MSCF`): stored, MSZIP and LZX folders.
//!
//! The cabinet is read here rather than with the `cab` crate, which looks
//! files up by name (two files of one name read the same data), restarts a
//! folder's decoding for every file, and indexes past the end of a folder
//! whose files claim more data than it has. Decoding is `flate2` (MSZIP) and
//! `lzxd` (LZX), one data block at a time: a block is at most 64 KiB each
//! way, whatever the headers say.
//!
//! As ClamAV (libmspack with its "salvage" option), block checksums are not
//! verified. Members come in the order of their data (folder, then offset),
//! so that each folder is decoded once, front to back; a file the visitor
//! skips is decoded past only if a later file of its folder needs it.
//!
//! Not done: Quantum folders (reported as unsupported; ClamAV decodes them),
//! and files continued from a previous cabinet of a set.

use std::io::{self, Read};

use flate2::{Decompress, FlushDecompress, Status};
use lzxd::{Lzxd, WindowSize};

use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

const FLAG_PREV: u16 = 1;
const FLAG_NEXT: u16 = 2;
const FLAG_RESERVE: u16 = 4;
/// `iFolder` values of files that span cabinets.
const CONTINUED_FROM_PREV: u16 = 0xfffd;
const CONTINUED_TO_NEXT: u16 = 0xfffe;
const CONTINUED_PREV_AND_NEXT: u16 = 0xffff;
/// Times a cabinet's files may send the decoder back to the start of a
/// folder (files that overlap) before the rest are given up: each time
/// decodes the folder again.
const MAX_REWINDS: u32 = 64;
/// MSZIP's history: the last 32 KiB of the folder's output.
const MSZIP_WINDOW: usize = 32 << 10;

/// How a folder's data blocks are compressed.
#[derive(Clone, Copy, Debug)]
enum Method {
    Stored,
    MsZip,
    Quantum,
    Lzx(WindowSize),
    Unknown(u16),
}

impl Method {
    fn from_bits(bits: u16) -> Method {
        match bits & 0x000f {
            0 => Method::Stored,
            1 => Method::MsZip,
            2 => Method::Quantum,
            3 => match (bits >> 8) & 0x1f {
                15 => Method::Lzx(WindowSize::KB32),
                16 => Method::Lzx(WindowSize::KB64),
                17 => Method::Lzx(WindowSize::KB128),
                18 => Method::Lzx(WindowSize::KB256),
                19 => Method::Lzx(WindowSize::KB512),
                20 => Method::Lzx(WindowSize::MB1),
                21 => Method::Lzx(WindowSize::MB2),
                _ => Method::Unknown(bits),
            },
            _ => Method::Unknown(bits),
        }
    }
}

struct Folder {
    /// Offset of its first data block.
    first_block: u64,
    blocks: u16,
    method: Method,
}

struct File {
    name: String,
    size: u32,
    offset: u32,
    folder: u16,
}

/// A cabinet's header, folders and files.
struct Cabinet {
    folders: Vec<Folder>,
    files: Vec<File>,
    /// Reserved bytes in each data block's header.
    data_reserve: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn broken(detail: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, detail)
}

/// Reads a NUL-terminated string of at most 256 bytes at `offset`; returns
/// it and the offset after its NUL.
fn read_cstr(src: &dyn ReadAt, offset: u64, what: &str) -> io::Result<(Vec<u8>, u64)> {
    let mut buf = [0u8; 257];
    let n = src.read_at(&mut buf, offset)?;
    match buf[..n].iter().position(|&b| b == 0) {
        Some(end) => Ok((buf[..end].to_vec(), offset + end as u64 + 1)),
        None => Err(broken(format!(
            "CAB: {what} at offset {offset} is not terminated within 256 bytes"
        ))),
    }
}

impl Cabinet {
    fn read(src: &dyn ReadAt) -> io::Result<Cabinet> {
        let mut h = [0u8; 36];
        src.read_exact_at(&mut h, 0)
            .map_err(|e| broken(format!("CAB: header: {e}")))?;
        if &h[..4] != b"MSCF" {
            return Err(broken("CAB: no MSCF signature".into()));
        }
        let files_at = u64::from(u32_at(&h, 16));
        let (minor, major) = (h[24], h[25]);
        if major != 1 || minor > 3 {
            return Err(broken(format!("CAB: version {major}.{minor}")));
        }
        let folder_count = u16_at(&h, 26);
        let file_count = u16_at(&h, 28);
        let flags = u16_at(&h, 30);
        let mut at = 36u64;
        let (mut folder_reserve, mut data_reserve) = (0u64, 0u64);
        if flags & FLAG_RESERVE != 0 {
            let mut r = [0u8; 4];
            src.read_exact_at(&mut r, at)
                .map_err(|e| broken(format!("CAB: reserve sizes: {e}")))?;
            // The header's reserved bytes are skipped, never read.
            at += 4 + u64::from(u16_at(&r, 0));
            folder_reserve = u64::from(r[2]);
            data_reserve = u64::from(r[3]);
        }
        for (flag, what) in [(FLAG_PREV, "previous"), (FLAG_NEXT, "next")] {
            if flags & flag != 0 {
                let (_, after) = read_cstr(src, at, &format!("{what} cabinet's name"))?;
                let (_, after) = read_cstr(src, after, &format!("{what} disk's name"))?;
                at = after;
            }
        }
        // Each entry is read from the input, so the vectors grow no larger
        // than the input allows.
        let mut folders = Vec::new();
        for i in 0..folder_count {
            let mut f = [0u8; 8];
            src.read_exact_at(&mut f, at)
                .map_err(|e| broken(format!("CAB: folder {i}: {e}")))?;
            folders.push(Folder {
                first_block: u64::from(u32_at(&f, 0)),
                blocks: u16_at(&f, 4),
                method: Method::from_bits(u16_at(&f, 6)),
            });
            at += 8 + folder_reserve;
        }
        let mut files = Vec::new();
        let mut at = files_at;
        for i in 0..file_count {
            let mut f = [0u8; 16];
            src.read_exact_at(&mut f, at)
                .map_err(|e| broken(format!("CAB: file entry {i}: {e}")))?;
            let (name, after) = read_cstr(src, at + 16, &format!("file {i}'s name"))?;
            // Names are UTF-8 (attribute 0x80) or in a code page: both are
            // read lossily.
            files.push(File {
                name: String::from_utf8_lossy(&name).into_owned(),
                size: u32_at(&f, 0),
                offset: u32_at(&f, 4),
                folder: u16_at(&f, 8),
            });
            at = after;
        }
        Ok(Cabinet {
            folders,
            files,
            data_reserve,
        })
    }
}

/// A folder being decoded, front to back.
struct Decoder<'a> {
    src: &'a dyn ReadAt,
    index: usize,
    /// Offset of the next data block, and how many are left.
    next_block: u64,
    blocks_left: u16,
    data_reserve: u64,
    codec: Codec,
    packed: Vec<u8>,
    /// The current block's output, and how much of it was consumed.
    out: Vec<u8>,
    at: usize,
    /// The folder offset of `out[at]`.
    pos: u64,
}

enum Codec {
    Stored,
    MsZip(Box<MsZip>),
    Lzx(Box<Lzxd>),
}

impl<'a> Decoder<'a> {
    fn new(
        src: &'a dyn ReadAt,
        index: usize,
        folder: &Folder,
        data_reserve: u64,
    ) -> Result<Decoder<'a>, String> {
        let codec = match folder.method {
            Method::Stored => Codec::Stored,
            Method::MsZip => Codec::MsZip(Box::new(MsZip::new())),
            Method::Lzx(w) => Codec::Lzx(Box::new(Lzxd::new(w))),
            Method::Quantum => return Err("CAB: Quantum compression".into()),
            Method::Unknown(bits) => return Err(format!("CAB: compression type {bits:#06x}")),
        };
        Ok(Decoder {
            src,
            index,
            next_block: folder.first_block,
            blocks_left: folder.blocks,
            data_reserve,
            codec,
            packed: Vec::new(),
            out: Vec::new(),
            at: 0,
            pos: 0,
        })
    }

    /// Decodes the next data block; false at the end of the folder. After
    /// an error the folder ends there.
    fn fill(&mut self) -> io::Result<bool> {
        let r = self.next();
        if r.is_err() {
            self.blocks_left = 0;
            self.pos += self.out.len() as u64;
            self.out.clear();
            self.at = 0;
        }
        r
    }

    fn next(&mut self) -> io::Result<bool> {
        if self.blocks_left == 0 {
            return Ok(false);
        }
        let mut h = [0u8; 8];
        self.src
            .read_exact_at(&mut h, self.next_block)
            .map_err(|e| broken(format!("CAB: data block header: {e}")))?;
        let packed_len = usize::from(u16_at(&h, 4));
        let out_len = usize::from(u16_at(&h, 6));
        let data_at = self.next_block + 8 + self.data_reserve;
        self.packed.resize(packed_len, 0);
        self.src
            .read_exact_at(&mut self.packed, data_at)
            .map_err(|e| broken(format!("CAB: data block: {e}")))?;
        self.next_block = data_at + packed_len as u64;
        self.blocks_left -= 1;
        // A block continued in the next cabinet has no output here.
        if out_len == 0 {
            self.blocks_left = 0;
            return Ok(false);
        }
        self.pos += self.out.len() as u64;
        self.at = 0;
        match &mut self.codec {
            Codec::Stored => {
                if packed_len != out_len {
                    return Err(broken(format!(
                        "CAB: stored block of {packed_len} bytes holds {out_len}"
                    )));
                }
                std::mem::swap(&mut self.out, &mut self.packed);
            }
            Codec::MsZip(z) => z.block(&self.packed, out_len, &mut self.out)?,
            Codec::Lzx(l) => {
                let d = l
                    .decompress_next(&self.packed, out_len)
                    .map_err(|e| broken(format!("CAB: LZX: {e}")))?;
                self.out.clear();
                self.out.extend_from_slice(d);
            }
        }
        Ok(true)
    }

    /// Decodes up to folder offset `to` (not back: the caller reopens).
    fn skip_to(&mut self, to: u64) -> io::Result<bool> {
        while self.pos + (self.at as u64) < to {
            if self.at == self.out.len() {
                if !self.fill()? {
                    return Ok(false);
                }
                continue;
            }
            let want = to - self.pos - self.at as u64;
            let n = (self.out.len() - self.at).min(usize::try_from(want).unwrap_or(usize::MAX));
            self.at += n;
        }
        Ok(true)
    }

    fn offset(&self) -> u64 {
        self.pos + self.at as u64
    }
}

/// One file's bytes, from its folder's decoder.
struct FileReader<'d, 'a> {
    decoder: &'d mut Decoder<'a>,
    left: u64,
}

impl Read for FileReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let d = &mut *self.decoder;
        if d.at == d.out.len() && !d.fill()? {
            return Ok(0); // the folder ends early: a size mismatch
        }
        let n = buf
            .len()
            .min(d.out.len() - d.at)
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&d.out[d.at..d.at + n]);
        d.at += n;
        self.left -= n as u64;
        Ok(n)
    }
}

/// MSZIP: each block is `CK` and a deflate stream that may refer to the
/// previous blocks' last 32 KiB.
struct MsZip {
    inflate: Decompress,
    window: Vec<u8>,
}

impl MsZip {
    fn new() -> MsZip {
        MsZip {
            inflate: Decompress::new(false),
            window: Vec::new(),
        }
    }

    fn block(&mut self, packed: &[u8], out_len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let Some(data) = packed.strip_prefix(b"CK") else {
            return Err(broken("CAB: MSZIP block without its CK signature".into()));
        };
        self.inflate.reset(false);
        if !self.window.is_empty() {
            // The history goes in as a stored deflate block (not final), the
            // way to give an inflater a dictionary without zlib framing.
            let len = self.window.len() as u16;
            let mut primer = vec![0u8];
            primer.extend_from_slice(&len.to_le_bytes());
            primer.extend_from_slice(&(!len).to_le_bytes());
            primer.extend_from_slice(&self.window);
            let mut scratch = vec![0u8; self.window.len()];
            self.inflate
                .decompress(&primer, &mut scratch, FlushDecompress::Sync)
                .map_err(|e| broken(format!("CAB: MSZIP history: {e}")))?;
        }
        out.clear();
        out.resize(out_len, 0);
        let before_in = self.inflate.total_in();
        let before_out = self.inflate.total_out();
        let status = self
            .inflate
            .decompress(data, out, FlushDecompress::Finish)
            .map_err(|e| broken(format!("CAB: MSZIP: {e}")))?;
        let produced = (self.inflate.total_out() - before_out) as usize;
        let consumed = self.inflate.total_in() - before_in;
        if produced != out_len || (status != Status::StreamEnd && consumed < data.len() as u64) {
            return Err(broken(format!(
                "CAB: MSZIP block decoded to {produced} bytes, not {out_len}"
            )));
        }
        if out.len() >= MSZIP_WINDOW {
            self.window.clear();
            self.window
                .extend_from_slice(&out[out.len() - MSZIP_WINDOW..]);
        } else {
            let keep = MSZIP_WINDOW - out.len();
            if self.window.len() > keep {
                self.window.drain(..self.window.len() - keep);
            }
            self.window.extend_from_slice(out);
        }
        Ok(())
    }
}

pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let cab = match Cabinet::read(src) {
        Ok(c) => c,
        Err(e) => {
            visitor.problem(Problem::Broken {
                member: None,
                detail: e.to_string(),
            });
            return Ok(());
        }
    };
    let last_folder = cab.folders.len().checked_sub(1);
    // Files in the order of their data, so that each folder is decoded once.
    let mut order: Vec<(usize, &File)> = cab
        .files
        .iter()
        .map(|f| {
            let folder = match f.folder {
                CONTINUED_TO_NEXT => last_folder.unwrap_or(usize::MAX),
                CONTINUED_FROM_PREV | CONTINUED_PREV_AND_NEXT => usize::MAX,
                n => usize::from(n),
            };
            (folder, f)
        })
        .collect();
    order.sort_by_key(|(folder, f)| (*folder, f.offset));
    let mut decoder: Option<Decoder<'_>> = None;
    let mut rewinds = 0u32;
    // A folder that failed: its later files are reported, not decoded.
    let mut failed: Option<(usize, String)> = None;
    for (folder_index, file) in order {
        if check_name(visitor, &file.name) == Flow::Stop {
            return Ok(());
        }
        let unavailable = if matches!(file.folder, CONTINUED_FROM_PREV | CONTINUED_PREV_AND_NEXT) {
            Some("CAB: continued from a previous cabinet".to_string())
        } else if let Some((i, why)) = &failed
            && *i == folder_index
        {
            Some(why.clone())
        } else {
            None
        };
        if let Some(detail) = unavailable {
            let p = Problem::Unsupported {
                member: file.name.clone(),
                detail,
            };
            if visitor.problem(p) == Flow::Stop {
                return Ok(());
            }
            continue;
        }
        let Some(folder) = cab.folders.get(folder_index) else {
            let p = Problem::Broken {
                member: Some(file.name.clone()),
                detail: format!("CAB: folder {} does not exist", file.folder),
            };
            if visitor.problem(p) == Flow::Stop {
                return Ok(());
            }
            continue;
        };
        // Reopen the folder when it is another one, or when this file
        // starts before what was decoded (files that overlap).
        let reopen = match &decoder {
            Some(d) => d.index != folder_index || d.offset() > u64::from(file.offset),
            None => true,
        };
        if reopen && decoder.as_ref().is_some_and(|d| d.index == folder_index) {
            rewinds += 1;
            if rewinds > MAX_REWINDS {
                visitor.problem(Problem::Broken {
                    member: Some(file.name.clone()),
                    detail: format!(
                        "CAB: more than {MAX_REWINDS} files overlap others; the rest are not extracted"
                    ),
                });
                return Ok(());
            }
        }
        if reopen {
            match Decoder::new(src, folder_index, folder, cab.data_reserve) {
                Ok(d) => decoder = Some(d),
                Err(why) => {
                    decoder = None;
                    failed = Some((folder_index, why.clone()));
                    let p = Problem::Unsupported {
                        member: file.name.clone(),
                        detail: why,
                    };
                    if visitor.problem(p) == Flow::Stop {
                        return Ok(());
                    }
                    continue;
                }
            }
        }
        let Some(d) = decoder.as_mut() else {
            continue;
        };
        let flow = match d.skip_to(u64::from(file.offset)) {
            Err(e) => {
                decoder = None;
                failed = Some((folder_index, e.to_string()));
                visitor.problem(Problem::Broken {
                    member: Some(file.name.clone()),
                    detail: e.to_string(),
                })
            }
            Ok(_) => {
                let reader = FileReader {
                    decoder: d,
                    left: u64::from(file.size),
                };
                let mut m = Member::new(file.name.clone(), Body::Read(Box::new(reader)));
                m.declared_size = Some(u64::from(file.size));
                visit(visitor, &mut m)
            }
        };
        if flow == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}
