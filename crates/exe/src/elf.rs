//! ELF headers, read as ClamAV's `cli_elfheader` reads them.
//!
//! The entry point's file offset comes from the *first* program header (of
//! any type) whose memory range holds `e_entry`; a file with no program
//! headers or an entry of 0 has EP 0. Sections are the section header table
//! as it is, index 0 (the null section) included, with no name lookup: `Sx`
//! starts at `sh_offset`, and ClamAV keeps only the low 32 bits of 64-bit
//! values. Any `EI_DATA` other than 1 is read as big-endian, as ClamAV does.

use object::elf::{
    FileHeader32, FileHeader64, ProgramHeader32, ProgramHeader64, SectionHeader32, SectionHeader64,
};
use object::{Endianness, ReadRef};

use crate::error::{ExeError, Format};
use crate::{ExeInfo, ExeKind, Section};

/// ClamAV treats more program headers than this as a broken file.
pub const MAX_PROGRAM_HEADERS: u16 = 128;
/// ClamAV gives up on files with more section headers than this.
pub const MAX_SECTIONS: u16 = 256;

fn truncated(what: &'static str, offset: u64, len: u64) -> ExeError {
    ExeError::Truncated {
        format: Format::Elf,
        what,
        offset,
        len,
    }
}

fn bad(what: &'static str, value: u64) -> ExeError {
    ExeError::BadField {
        format: Format::Elf,
        what,
        value,
    }
}

/// The fields of either header class that ClamAV uses, widened to 64 bits.
struct Header {
    entry: u64,
    phoff: u64,
    phentsize: u16,
    phnum: u16,
    shoff: u64,
    shentsize: u16,
    shnum: u16,
}

pub(crate) fn parse<'d, R: ReadRef<'d>>(data: R) -> Result<ExeInfo, ExeError> {
    let h32: &FileHeader32<Endianness> = data
        .read_at(0)
        .map_err(|()| truncated("file header", 0, 52))?;
    if h32.e_ident.magic != object::elf::ELFMAG {
        return Err(bad("no ELF magic", 0));
    }
    let class = h32.e_ident.class;
    let big_endian = h32.e_ident.data != object::elf::ELFDATA2LSB;
    let e = if big_endian {
        Endianness::Big
    } else {
        Endianness::Little
    };
    let (is64, h) = match class {
        object::elf::ELFCLASS32 => (
            false,
            Header {
                entry: h32.e_entry.get(e).into(),
                phoff: h32.e_phoff.get(e).into(),
                phentsize: h32.e_phentsize.get(e),
                phnum: h32.e_phnum.get(e),
                shoff: h32.e_shoff.get(e).into(),
                shentsize: h32.e_shentsize.get(e),
                shnum: h32.e_shnum.get(e),
            },
        ),
        object::elf::ELFCLASS64 => {
            let h64: &FileHeader64<Endianness> = data
                .read_at(0)
                .map_err(|()| truncated("64-bit file header", 0, 64))?;
            (
                true,
                Header {
                    entry: h64.e_entry.get(e),
                    phoff: h64.e_phoff.get(e),
                    phentsize: h64.e_phentsize.get(e),
                    phnum: h64.e_phnum.get(e),
                    shoff: h64.e_shoff.get(e),
                    shentsize: h64.e_shentsize.get(e),
                    shnum: h64.e_shnum.get(e),
                },
            )
        }
        c => return Err(bad("unknown ELF class", u64::from(c))),
    };

    let entry_point = entry_offset(data, &h, is64, e)?;
    let sections = sections(data, &h, is64, e)?;
    Ok(ExeInfo {
        kind: if is64 { ExeKind::Elf64 } else { ExeKind::Elf32 },
        big_endian,
        entry_point,
        entry_address: h.entry,
        sections,
        pe: None,
    })
}

fn entry_offset<'d, R: ReadRef<'d>>(
    data: R,
    h: &Header,
    is64: bool,
    e: Endianness,
) -> Result<u32, ExeError> {
    if h.phnum > MAX_PROGRAM_HEADERS {
        return Err(bad("more than 128 program headers", u64::from(h.phnum)));
    }
    if h.phnum == 0 || h.entry == 0 {
        return Ok(0);
    }
    let size: u16 = if is64 { 56 } else { 32 };
    if h.phentsize != size {
        return Err(bad("unexpected e_phentsize", u64::from(h.phentsize)));
    }
    // ClamAV reads every header before it looks for the entry point, so a
    // truncated table fails even when an earlier segment holds the entry.
    let mut segments = Vec::with_capacity(usize::from(h.phnum));
    for i in 0..u64::from(h.phnum) {
        let at = advance(h.phoff, i * u64::from(size), is64);
        let seg = if is64 {
            let p: &ProgramHeader64<Endianness> = data
                .read_at(at)
                .map_err(|()| truncated("program header", at, 56))?;
            (p.p_vaddr.get(e), p.p_memsz.get(e), p.p_offset.get(e))
        } else {
            let p: &ProgramHeader32<Endianness> = data
                .read_at(at)
                .map_err(|()| truncated("program header", at, 32))?;
            (
                p.p_vaddr.get(e).into(),
                p.p_memsz.get(e).into(),
                p.p_offset.get(e).into(),
            )
        };
        segments.push(seg);
    }
    let (entry, mask) = (h.entry, if is64 { u64::MAX } else { u64::from(u32::MAX) });
    // The end of a segment is computed in the class's width and may wrap.
    segments
        .iter()
        .find(|&&(vaddr, memsz, _)| vaddr <= entry && (vaddr.wrapping_add(memsz) & mask) > entry)
        .map(|&(vaddr, _, offset)| (entry - vaddr).wrapping_add(offset) as u32)
        .ok_or(ExeError::EntryPointUnmapped {
            format: Format::Elf,
            address: entry,
        })
}

/// `base + by`, wrapping in the class's width as ClamAV's offset variable does.
fn advance(base: u64, by: u64, is64: bool) -> u64 {
    let sum = base.wrapping_add(by);
    if is64 { sum } else { sum & u64::from(u32::MAX) }
}

fn sections<'d, R: ReadRef<'d>>(
    data: R,
    h: &Header,
    is64: bool,
    e: Endianness,
) -> Result<Vec<Section>, ExeError> {
    if h.shnum > MAX_SECTIONS {
        return Err(ExeError::TooManySections {
            format: Format::Elf,
            limit: usize::from(MAX_SECTIONS),
        });
    }
    let size: u16 = if is64 { 64 } else { 40 };
    // Checked even when there are no sections, as ClamAV does.
    if h.shentsize != size {
        return Err(bad("unexpected e_shentsize", u64::from(h.shentsize)));
    }
    let mut out = Vec::with_capacity(usize::from(h.shnum));
    for i in 0..u64::from(h.shnum) {
        let at = advance(h.shoff, i * u64::from(size), is64);
        let (addr, offset, len) = if is64 {
            let s: &SectionHeader64<Endianness> = data
                .read_at(at)
                .map_err(|()| truncated("section header", at, 64))?;
            (s.sh_addr.get(e), s.sh_offset.get(e), s.sh_size.get(e))
        } else {
            let s: &SectionHeader32<Endianness> = data
                .read_at(at)
                .map_err(|()| truncated("section header", at, 40))?;
            (
                s.sh_addr.get(e).into(),
                s.sh_offset.get(e).into(),
                s.sh_size.get(e).into(),
            )
        };
        out.push(Section {
            name: "".into(),
            raw: offset as u32,
            raw_size: len as u32,
            rva: addr as u32,
            virtual_size: 0,
            outside_file: false,
        });
    }
    Ok(out)
}
