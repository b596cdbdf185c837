//! The PE headers as ClamAV's `cli_scanpe` sees them before it tries its
//! unpackers (`cli_peheader` with `REMOVE_MISSING_SECTIONS`, no strict
//! checks): section fields rounded to their alignments, sections that start
//! past the end of the file dropped, sizes cut at the end of the file, and
//! the lowest and highest section RVAs (`min`/`max`). All arithmetic is
//! 32-bit and wraps, as in C; only reads are checked.

/// One section, aligned as ClamAV aligns it, with the header's own values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Section {
    pub rva: u32,
    pub vsz: u32,
    pub raw: u32,
    pub rsz: u32,
    pub urva: u32,
    pub uvsz: u32,
    pub uraw: u32,
    pub ursz: u32,
    pub chr: u32,
}

/// What the unpackers need of a PE file.
#[derive(Debug, Clone)]
pub(crate) struct PeHeader {
    pub e_lfanew: u32,
    pub opt_hdr_size: u16,
    /// `SizeOfHeaders` rounded up to the section alignment.
    pub hdr_size: u32,
    /// The lowest section RVA and the highest end of a section's raw data
    /// in memory (`rva + rsz`).
    pub min: u32,
    pub max: u32,
    /// The data directories (RVA, size).
    pub dirs: [(u32, u32); 16],
    pub image_base: u32,
    /// Entry point RVA.
    pub vep: u32,
    /// Entry point as a file offset (`cli_rawaddr`).
    pub ep: u32,
    pub sections: Vec<Section>,
    pub pe32plus: bool,
}

pub(crate) fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    let b = d.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

pub(crate) fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `PEALIGN`: `o` rounded down to a multiple of `a` (unchanged for 0).
pub(crate) fn align_down(o: u32, a: u32) -> u32 {
    o.checked_div(a).map_or(o, |q| q.wrapping_mul(a))
}

/// `PESALIGN`: `o` rounded up to a multiple of `a`, wrapping at 2^32.
pub(crate) fn align_up(o: u32, a: u32) -> u32 {
    o.checked_div(a)
        .map_or(o, |q| (q + u32::from(!o.is_multiple_of(a))).wrapping_mul(a))
}

/// `CLI_ISCONTAINED_0_TO` on 64-bit values (no wrap).
pub(crate) fn contained0(bb_size: u64, sb: u64, sb_size: u64) -> bool {
    bb_size > 0 && sb_size > 0 && sb_size <= bb_size && sb + sb_size <= bb_size && sb < bb_size
}

/// `CLI_ISCONTAINED(bb, bb_size, sb, sb_size)` on offsets that may be
/// negative or huge (pointer arithmetic in ClamAV).
pub(crate) fn contained(bb: i64, bb_size: i64, sb: i64, sb_size: i64) -> bool {
    bb_size > 0
        && sb_size > 0
        && sb_size <= bb_size
        && sb >= bb
        && sb + sb_size <= bb + bb_size
        && sb + sb_size > bb
        && sb < bb + bb_size
}

/// `cli_rawaddr`: the file offset of an RVA.
pub(crate) fn rawaddr(rva: u32, sections: &[Section], fsize: u64, hdr_size: u32) -> Option<u32> {
    if rva < hdr_size {
        return (u64::from(rva) < fsize).then_some(rva);
    }
    sections
        .iter()
        .rev()
        .find(|s| s.rsz != 0 && s.rva <= rva && s.rsz > rva - s.rva)
        .map(|s| (rva - s.rva).wrapping_add(s.raw))
}

/// Parses `file`; `None` where `cli_peheader` fails (then ClamAV tries no
/// unpacker).
pub(crate) fn parse(file: &[u8]) -> Option<PeHeader> {
    parse_sized(file, file.len() as u64)
}

/// [`parse`] for a file of `fsize` bytes of which `file` may be only the
/// first (the headers must be in it).
fn parse_sized(file: &[u8], fsize: u64) -> Option<PeHeader> {
    let magic = u16_at(file, 0)?;
    if magic != 0x5a4d && magic != 0x4d5a {
        return None;
    }
    let e_lfanew = u32_at(file, 60)?;
    if e_lfanew == 0 {
        return None;
    }
    let at = e_lfanew as usize;
    if u32_at(file, at)? != 0x4550 {
        return None;
    }
    // The file header is 24 bytes with the signature; ClamAV reads it whole.
    file.get(at..at.checked_add(24)?)?;
    let nsections = u16_at(file, at + 6)?;
    if nsections == 0 {
        return None;
    }
    let opt_hdr_size = u16_at(file, at + 20)?;
    if opt_hdr_size < 96 {
        return None;
    }
    let opt = at + 24;
    file.get(opt..opt.checked_add(96)?)?;
    let pe32plus = u16_at(file, opt)? == 0x20b;
    let (vep, hdr_size, ndirs, salign, mut falign, stored, image_base) = if pe32plus {
        if opt_hdr_size < 112 {
            return None;
        }
        file.get(opt..opt + 112)?;
        (
            u32_at(file, opt + 16)?,
            u32_at(file, opt + 60)?,
            u32_at(file, opt + 108)?,
            u32_at(file, opt + 32)?,
            u32_at(file, opt + 36)?,
            112usize,
            // ClamAV reads opt32.ImageBase (the low half of the 64-bit one is
            // at another place, but PE32+ is never unpacked).
            u32_at(file, opt + 28)?,
        )
    } else {
        (
            u32_at(file, opt + 16)?,
            u32_at(file, opt + 60)?,
            u32_at(file, opt + 92)?,
            u32_at(file, opt + 32)?,
            u32_at(file, opt + 36)?,
            96,
            u32_at(file, opt + 28)?,
        )
    };
    let ndirs = ndirs.min(16) as usize;
    if usize::from(opt_hdr_size) < stored + 8 * ndirs {
        return None;
    }
    let mut dirs = [(0u32, 0u32); 16];
    for (i, d) in dirs.iter_mut().enumerate().take(ndirs) {
        let p = opt + stored + 8 * i;
        *d = (u32_at(file, p)?, u32_at(file, p + 4)?);
    }
    let hdr_size = align_up(hdr_size, salign);
    let sect_at = opt + usize::from(opt_hdr_size);
    let table = file.get(sect_at..sect_at.checked_add(40 * usize::from(nsections))?)?;
    let raw_headers: Vec<&[u8]> = table.chunks_exact(40).collect();
    let field = |h: &[u8], o: usize| u32_at(h, o).unwrap_or(0);
    if falign != 0x200
        && falign != 0
        && raw_headers.iter().any(|h| {
            let ptr = field(h, 20);
            field(h, 16) != 0 && ptr % falign != 0 && ptr % 0x200 == 0
        })
    {
        falign = 0x200;
    }
    let mut sections: Vec<Section> = Vec::with_capacity(raw_headers.len());
    let mut left = raw_headers.len();
    let (mut min, mut max) = (0u32, 0u32);
    for h in raw_headers {
        let mut s = Section {
            urva: field(h, 12),
            uvsz: field(h, 8),
            uraw: field(h, 20),
            ursz: field(h, 16),
            chr: field(h, 36),
            ..Section::default()
        };
        s.rva = align_down(s.urva, salign);
        s.vsz = align_up(s.uvsz, salign);
        s.raw = align_down(s.uraw, falign);
        s.rsz = align_up(s.ursz, falign);
        if s.rsz != 0 {
            if u64::from(s.raw) >= fsize || u64::from(s.uraw) >= fsize {
                // Removed from the list; when it is the only one left the
                // file is broken.
                if left == 1 {
                    return None;
                }
                left -= 1;
                continue;
            }
            if !contained0(fsize, u64::from(s.raw), u64::from(s.rsz)) {
                s.rsz = (fsize - u64::from(s.raw)) as u32;
            }
            if !contained0(fsize, u64::from(s.uraw), u64::from(s.ursz)) {
                s.ursz = (fsize - u64::from(s.uraw)) as u32;
            }
        }
        if s.vsz == 0 && s.rsz != 0 {
            s.vsz = align_up(s.ursz, salign);
        }
        if s.urva >> 31 != 0
            || s.uvsz >> 31 != 0
            || (s.rsz != 0 && s.uraw >> 31 != 0)
            || s.ursz >> 31 != 0
        {
            return None;
        }
        if sections.is_empty() {
            min = s.rva;
            max = s.rva.wrapping_add(s.rsz);
        } else {
            min = min.min(s.rva);
            max = max.max(s.rva.wrapping_add(s.rsz));
        }
        sections.push(s);
    }
    if sections.is_empty() {
        return None;
    }
    let ep = rawaddr(vep, &sections, fsize, hdr_size)?;
    Some(PeHeader {
        e_lfanew,
        opt_hdr_size,
        hdr_size,
        min,
        max,
        dirs,
        image_base,
        vep,
        ep,
        sections,
        pe32plus,
    })
}

/// See [`crate::probe`]. `head` is the first bytes of a file of `fsize`.
pub(crate) fn probe(head: &[u8], fsize: u64) -> bool {
    let whole = head.len() as u64 >= fsize;
    let Some(pe) = parse_sized(head, fsize) else {
        // Not a PE, or its headers lie past the head: only the whole file
        // can tell.
        return !whole && u16_at(head, 0).is_some_and(|m| m == 0x5a4d || m == 0x4d5a);
    };
    if pe.pe32plus {
        return false;
    }
    // UPX, FSG and MEW: an empty section followed by one with data.
    if pe
        .sections
        .windows(2)
        .any(|w| w[0].rsz == 0 && w[0].vsz != 0 && w[1].rsz != 0 && w[1].vsz != 0)
    {
        return true;
    }
    // The others by their stubs, as each unpacker recognises them; an entry
    // point past the head: unsure.
    let ep = pe.ep as usize;
    let Some(code) = head.get(ep..ep.saturating_add(24).min(head.len())) else {
        return !whole;
    };
    if code.len() < 14 && !whole {
        return true;
    }
    let last = pe.sections.last().map_or(0, |s| s.rva);
    let at = |o: usize, b: &[u8]| code.get(o..o + b.len()) == Some(b);
    let imm = u32_at(code, 1).unwrap_or(0);
    // yC: the entry point 0x60 into the last section.
    (pe.sections.len() > 1 && pe.vep == last.wrapping_add(0x60))
        // WWPack
        || (pe.vep == last && at(0, b"\x53\x55\x8b\xe8\x33\xdb\xeb"))
        // ASPack
        || at(0, b"\x60\xe8\x03\x00\x00\x00\xe9\xeb")
        // PESpin
        || at(4, b"\xe8\x00\x00\x00\x00\x8b\x1c\x24\x83\xc3")
        // Upack: mov esi, in a 0x148-byte optional header's three sections.
        || (pe.opt_hdr_size == 0x148 && pe.sections.len() == 3 && code.first() == Some(&0xbe))
        // Petite: mov eax, the last or the one but last section.
        || (code.first() == Some(&0xb8)
            && pe.sections.iter().rev().take(2).any(|s| {
                imm == s.rva.wrapping_add(pe.image_base)
            }))
}
