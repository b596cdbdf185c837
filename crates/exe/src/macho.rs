//! Mach-O headers, read as ClamAV's `cli_scanmacho` reads them, and the
//! architectures of a universal (fat) binary, as `cli_scanmacho_unibin` lists
//! them.
//!
//! Sections are those of every `LC_SEGMENT` (`LC_SEGMENT_64` in 64-bit files)
//! in load-command order. ClamAV takes the entry point only from the thread
//! state of an `LC_THREAD`/`LC_UNIXTHREAD` in PowerPC files (32 and 64-bit):
//! it reads an i386 thread state without keeping its `eip`, skips the thread
//! commands of other CPUs and does not know `LC_MAIN`. Every other file has
//! EP 0, the start of the file, and so do the files aether reads.
//! A section's raw size is its size rounded up to its alignment.

use object::macho::{
    FatArch32, FatHeader, LoadCommand, MachHeader32, Section32, Section64, SegmentCommand32,
    SegmentCommand64,
};
use object::{Endianness, ReadRef};

use crate::error::{ExeError, Format};
use crate::{ExeInfo, ExeKind, Section};

/// ClamAV treats more load commands than this as a broken file.
pub const MAX_LOAD_COMMANDS: u32 = 1024;
/// ClamAV treats a segment with more sections than this as broken.
pub const MAX_SEGMENT_SECTIONS: u32 = 255;
/// ClamAV counts sections in 16 bits; aether refuses more rather than wrap.
pub const MAX_SECTIONS: usize = u16::MAX as usize;
/// ClamAV scans at most this many architectures of a universal binary.
pub const MAX_FAT_ARCHES: u32 = 32;

const LC_SEGMENT: u32 = 0x1;
const LC_SEGMENT_64: u32 = 0x19;
const LC_THREAD: u32 = 0x4;
const LC_UNIXTHREAD: u32 = 0x5;
const CPU_X86: u32 = 7;
const CPU_PPC: u32 = 18;
const CPU_PPC64: u32 = 18 | 0x0100_0000;
/// Sizes of the thread states ClamAV reads (with C struct padding).
const X86_STATE_LEN: u64 = 64;
const PPC_STATE_LEN: u64 = 160;
const PPC64_STATE_LEN: u64 = 312;

fn truncated(what: &'static str, offset: u64, len: u64) -> ExeError {
    ExeError::Truncated {
        format: Format::MachO,
        what,
        offset,
        len,
    }
}

fn bad(what: &'static str, value: u64) -> ExeError {
    ExeError::BadField {
        format: Format::MachO,
        what,
        value,
    }
}

/// Whether `data` starts with a (thin) Mach-O magic; returns (64-bit, big-endian).
pub(crate) fn magic(data: &[u8]) -> Option<(bool, bool)> {
    match data.get(..4)? {
        [0xce, 0xfa, 0xed, 0xfe] => Some((false, false)),
        [0xfe, 0xed, 0xfa, 0xce] => Some((false, true)),
        [0xcf, 0xfa, 0xed, 0xfe] => Some((true, false)),
        [0xfe, 0xed, 0xfa, 0xcf] => Some((true, true)),
        _ => None,
    }
}

/// Whether `data` starts with the universal-binary magic (also Java's class magic).
pub(crate) fn is_fat(data: &[u8]) -> bool {
    matches!(
        data.get(..4),
        Some([0xca, 0xfe, 0xba, 0xbe] | [0xbe, 0xba, 0xfe, 0xca])
    )
}

pub(crate) fn parse<'d, R: ReadRef<'d>>(data: R) -> Result<ExeInfo, ExeError> {
    let hdr: &MachHeader32<Endianness> =
        data.read_at(0).map_err(|()| truncated("header", 0, 28))?;
    let head = data.read_bytes_at(0, 4).unwrap_or(&[]);
    let Some((m64, big_endian)) = magic(head) else {
        return Err(bad("no Mach-O magic", 0));
    };
    let e = if big_endian {
        Endianness::Big
    } else {
        Endianness::Little
    };
    let arch = match hdr.cputype.get(e) {
        CPU_X86 => Arch::X86,
        CPU_PPC => Arch::Ppc,
        CPU_PPC64 => Arch::Ppc64,
        _ => Arch::Other,
    };
    let ncmds = hdr.ncmds.get(e);
    if ncmds == 0 || ncmds > MAX_LOAD_COMMANDS {
        return Err(bad(
            "number of load commands is 0 or above 1024",
            u64::from(ncmds),
        ));
    }
    let mut at: u64 = if m64 { 32 } else { 28 };
    let mut sections: Vec<Section> = Vec::new();
    let mut ep: u32 = 0;
    for _ in 0..ncmds {
        let lc: &LoadCommand<Endianness> = data
            .read_at(at)
            .map_err(|()| truncated("load command", at, 8))?;
        let (cmd, cmdsize) = (lc.cmd.get(e), lc.cmdsize.get(e));
        let cmd_at = at;
        at += 8;
        if (m64 && cmd == LC_SEGMENT_64) || (!m64 && cmd == LC_SEGMENT) {
            let nsects = if m64 {
                let s: &SegmentCommand64<Endianness> = data
                    .read_at(cmd_at)
                    .map_err(|()| truncated("segment command", cmd_at, 72))?;
                at = cmd_at + 72;
                s.nsects.get(e)
            } else {
                let s: &SegmentCommand32<Endianness> = data
                    .read_at(cmd_at)
                    .map_err(|()| truncated("segment command", cmd_at, 56))?;
                at = cmd_at + 56;
                s.nsects.get(e)
            };
            if nsects > MAX_SEGMENT_SECTIONS {
                return Err(bad(
                    "more than 255 sections in a segment",
                    u64::from(nsects),
                ));
            }
            if sections.len() + nsects as usize > MAX_SECTIONS {
                return Err(ExeError::TooManySections {
                    format: Format::MachO,
                    limit: MAX_SECTIONS,
                });
            }
            for _ in 0..nsects {
                let (name, addr, size, offset, align) = if m64 {
                    let s: &Section64<Endianness> = data
                        .read_at(at)
                        .map_err(|()| truncated("section", at, 80))?;
                    at += 80;
                    (
                        s.sectname,
                        s.addr.get(e) as u32,
                        s.size.get(e) as u32,
                        s.offset.get(e),
                        s.align.get(e),
                    )
                } else {
                    let s: &Section32<Endianness> = data
                        .read_at(at)
                        .map_err(|()| truncated("section", at, 68))?;
                    at += 68;
                    let align = s.align.get(e);
                    if align >= 32 {
                        return Err(bad("section alignment of 2^32 or more", u64::from(align)));
                    }
                    (
                        s.sectname,
                        s.addr.get(e),
                        s.size.get(e),
                        s.offset.get(e),
                        align,
                    )
                };
                // `1 << align` in C; x86 masks the count to 5 bits, and so does wrapping_shl.
                let align = 1u32.wrapping_shl(align);
                let raw_size = size.wrapping_add(align.wrapping_sub(size % align) % align);
                let name_len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                sections.push(Section {
                    name: String::from_utf8_lossy(&name[..name_len]).into(),
                    raw: offset,
                    raw_size,
                    rva: addr,
                    virtual_size: size,
                    outside_file: false,
                });
            }
        } else if arch != Arch::Other && (cmd == LC_THREAD || cmd == LC_UNIXTHREAD) {
            at += 8; // flavor and count
            match arch {
                Arch::X86 => {
                    data.read_bytes_at(at, X86_STATE_LEN)
                        .map_err(|()| truncated("i386 thread state", at, X86_STATE_LEN))?;
                    at += X86_STATE_LEN;
                }
                Arch::Ppc => {
                    let state = data
                        .read_bytes_at(at, PPC_STATE_LEN)
                        .map_err(|()| truncated("PowerPC thread state", at, PPC_STATE_LEN))?;
                    let srr0: &object::U32<Endianness> = state
                        .read_at(0)
                        .map_err(|()| truncated("PowerPC thread state", at, 4))?;
                    ep = srr0.get(e);
                    at += PPC_STATE_LEN;
                }
                Arch::Ppc64 => {
                    let state = data
                        .read_bytes_at(at, PPC64_STATE_LEN)
                        .map_err(|()| truncated("PowerPC 64 thread state", at, PPC64_STATE_LEN))?;
                    let srr0: &object::U64<Endianness> = state
                        .read_at(0)
                        .map_err(|()| truncated("PowerPC 64 thread state", at, 8))?;
                    ep = srr0.get(e) as u32;
                    at += PPC64_STATE_LEN;
                }
                Arch::Other => {}
            }
        } else if cmdsize > 8 {
            at += u64::from(cmdsize) - 8;
        }
    }
    let entry_address = u64::from(ep);
    // With no sections ClamAV keeps the address itself as the offset.
    if ep != 0 && !sections.is_empty() {
        ep = sections
            .iter()
            .find(|s| s.rva <= ep && s.rva.wrapping_add(s.virtual_size) > ep)
            .map(|s| (ep - s.rva).wrapping_add(s.raw))
            .ok_or(ExeError::EntryPointUnmapped {
                format: Format::MachO,
                address: entry_address,
            })?;
    }
    Ok(ExeInfo {
        kind: if m64 {
            ExeKind::MachO64
        } else {
            ExeKind::MachO32
        },
        big_endian,
        entry_point: ep,
        entry_address,
        sections,
        pe: None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arch {
    X86,
    Ppc,
    Ppc64,
    Other,
}

/// One architecture of a universal binary: where its executable lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatArch {
    pub cpu_type: u32,
    pub cpu_subtype: u32,
    /// Offset of the embedded executable in the universal binary.
    pub offset: u32,
    /// Its size as the header gives it (it may run past the end of the file).
    pub size: u32,
}

impl FatArch {
    /// The embedded executable's bytes, cut at the end of `data`; `None` when
    /// it starts past the end. ClamAV scans each such range as a file of its
    /// own, with offsets (EP, sections) relative to its start.
    pub fn bytes<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let start = self.offset as usize;
        let end = start.saturating_add(self.size as usize).min(data.len());
        data.get(start..end)
    }
}

/// The architectures of a universal binary, in header order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatArches {
    pub arches: Vec<FatArch>,
    /// Why the list stops early: ClamAV scans the architectures before a bad
    /// entry and then gives up on the rest.
    pub stopped: Option<ExeError>,
}

/// Lists the architectures of a universal binary as ClamAV's
/// `cli_scanmacho_unibin` walks them. A `0xcafebabe` file whose count has 39
/// or more in its low 16 bits is a Java class file: it has no architectures.
pub fn fat_arches(data: &[u8]) -> Result<FatArches, ExeError> {
    let fat_truncated = |what, offset, len| ExeError::Truncated {
        format: Format::MachOFat,
        what,
        offset,
        len,
    };
    let h: &FatHeader = data
        .read_at(0)
        .map_err(|()| fat_truncated("header", 0, 8))?;
    let big_endian = match h.magic.get(object::BigEndian) {
        0xcafe_babe => true,
        0xbeba_feca => false,
        m => {
            return Err(ExeError::BadField {
                format: Format::MachOFat,
                what: "no universal-binary magic",
                value: u64::from(m),
            });
        }
    };
    // The struct is declared big-endian; a byte-swapped file reads swapped.
    let fix = |v: u32| if big_endian { v } else { v.swap_bytes() };
    let n = fix(h.nfat_arch.get(object::BigEndian));
    if n & 0xffff >= 39 {
        return Ok(FatArches {
            arches: Vec::new(),
            stopped: None,
        });
    }
    if n > MAX_FAT_ARCHES {
        return Err(ExeError::BadField {
            format: Format::MachOFat,
            what: "more than 32 architectures",
            value: u64::from(n),
        });
    }
    let mut arches = Vec::with_capacity(n as usize);
    let mut at: u64 = 8;
    for _ in 0..n {
        let a: &FatArch32 = match data.read_at(at) {
            Ok(a) => a,
            Err(()) => {
                return Ok(FatArches {
                    arches,
                    stopped: Some(fat_truncated("architecture entry", at, 20)),
                });
            }
        };
        at += 20;
        let be = object::BigEndian;
        let arch = FatArch {
            cpu_type: fix(a.cputype.get(be)),
            cpu_subtype: fix(a.cpusubtype.get(be)),
            offset: fix(a.offset.get(be)),
            size: fix(a.size.get(be)),
        };
        // An architecture inside the header would be scanned again and again.
        if u64::from(arch.offset) < at {
            return Ok(FatArches {
                arches,
                stopped: Some(ExeError::BadField {
                    format: Format::MachOFat,
                    what: "architecture starts inside the header",
                    value: u64::from(arch.offset),
                }),
            });
        }
        arches.push(arch);
    }
    Ok(FatArches {
        arches,
        stopped: None,
    })
}
