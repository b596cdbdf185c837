//! Executable structure for signatures: where `EP`, `Sx`, `SEx` and `SL`
//! offsets land, the `EntryPoint`/`NumberOfSections` of logical signatures,
//! PE section hashes (`.mdb`/`.msb`) and import hashes (`.imp`), and the
//! architectures of a universal Mach-O binary.
//!
//! ClamAV reads the headers of the *file's* type once (PE for a file typed PE
//! by its magic, ELF, Mach-O) and resolves the offsets of every signature
//! against that one result; when they do not parse, no relative offset of any
//! signature resolves, not even `EOF-n`. [`FileLayout`] is that result, and
//! [`FileLayout::offset_of`] turns a program's offset into a plain one
//! (`Absolute`, `Any`) for this file, or nothing, so the matcher and the
//! verifier need not know about executables. The rules are `aether-exe`'s.

use std::io::{self, Write};

use aether_exe::{ExeInfo, ExeKind, ImportTable, Layout, Placement};
use aether_formats::{FileType, ReadAt};
use aether_sigs::{Offset, TargetType};
use md5::{Digest as _, Md5};
use object::ReadRef;
use sha1::Sha1;
use sha2::Sha256;

use crate::hashdb::{Digests, HashDb};
use crate::names::NameId;
use crate::pattern::{Elem, NO_SLOT, Program};

/// What ClamAV knows of the scanned file's structure.
#[derive(Debug, Default)]
pub(crate) enum FileLayout {
    /// Not of an executable type: no headers are read.
    #[default]
    Generic,
    /// Of an executable type, but its headers do not parse (or, for a
    /// universal binary's container, there are none ClamAV reads).
    Broken,
    Exe(Box<ExeInfo>),
}

impl FileLayout {
    /// The layout of a file of type `ty` whose bytes are `data`: a slice, or
    /// an [`object::ReadCache`] over an open file that reads only the headers
    /// and tables (`None` when the type has no headers to read).
    pub(crate) fn of<'d, R: ReadRef<'d>>(ty: FileType, data: Option<R>) -> FileLayout {
        let parsed = match (ty, data) {
            (FileType::Pe, Some(d)) => ExeInfo::parse_pe(d),
            (FileType::Elf, Some(d)) => ExeInfo::parse_elf(d),
            (FileType::MachO, Some(d)) => ExeInfo::parse_macho(d),
            (FileType::Pe | FileType::Elf | FileType::MachO | FileType::MachOUniversal, _) => {
                return FileLayout::Broken;
            }
            _ => return FileLayout::Generic,
        };
        match parsed {
            Ok(info) => FileLayout::Exe(Box::new(info)),
            Err(_) => FileLayout::Broken,
        }
    }

    /// Whether a match starting at `start` is at one of the file's
    /// version-information strings, where `VI` signatures match.
    pub(crate) fn in_version_info(&self, start: u64) -> bool {
        let Ok(start) = u32::try_from(start) else {
            return false;
        };
        self.info()
            .and_then(|i| i.pe.as_ref())
            .is_some_and(|pe| pe.version_info.binary_search(&start).is_ok())
    }

    pub(crate) fn info(&self) -> Option<&ExeInfo> {
        match self {
            FileLayout::Exe(info) => Some(info),
            _ => None,
        }
    }

    /// Where `prog` may start in this file of `size` bytes, as a plain
    /// offset (`Any` or `Absolute`); `None` when nowhere.
    #[inline]
    pub(crate) fn offset_of(&self, prog: &Program, size: u64) -> Option<Offset> {
        match prog.offset {
            Offset::Any | Offset::Absolute { .. } => Some(prog.offset),
            // Anywhere in a PE file with version information; the matcher
            // then keeps only starts at its strings (`in_version_info`).
            Offset::VersionInfo => self
                .info()
                .and_then(|i| i.pe.as_ref())
                .filter(|pe| !pe.version_info.is_empty())
                .map(|_| Offset::Any),
            offset => self.resolve(
                &offset,
                size,
                first_part_len(prog),
                bm_offset_mode(prog, &offset, size),
            ),
        }
    }

    /// Where something at `offset` may start in this file of `size` bytes,
    /// as a plain offset; `min_len` bytes of it must fit before the end, and
    /// with `exact` only the start of the placement counts.
    pub(crate) fn resolve(
        &self,
        offset: &Offset,
        size: u64,
        min_len: u32,
        exact: bool,
    ) -> Option<Offset> {
        let offset = *offset;
        match (self, offset) {
            (_, Offset::Any | Offset::Absolute { .. }) => Some(offset),
            // As before executables were read: 64-bit, no wrap-around.
            (FileLayout::Generic, Offset::FromEnd { .. }) => Some(offset),
            (FileLayout::Generic | FileLayout::Broken, _) => None,
            (FileLayout::Exe(info), _) => {
                let placement = aether_exe::resolve(&offset, size, Layout::Exe(info));
                match placement {
                    Placement::Anywhere => Some(Offset::Any),
                    Placement::Nowhere => None,
                    Placement::Within { min, max } => {
                        // A range that wrapped past 4 GiB holds nothing in ClamAV.
                        if max < min || !placement.fits(min_len, size) {
                            return None;
                        }
                        let shift = if exact { 0 } else { max - min };
                        Some(Offset::Absolute {
                            at: u64::from(min),
                            shift: u64::from(shift),
                        })
                    }
                }
            }
        }
    }
}

/// The bytes ClamAV expects a relatively placed pattern to have inside the
/// file (`length[1]` of its first part): the shortest match of the elements
/// before the first gap, where ClamAV splits a pattern into parts.
fn first_part_len(prog: &Program) -> u32 {
    let mut len = 0usize;
    for e in prog.elems.iter() {
        len += match e {
            Elem::Byte(_) | Elem::Class { .. } => 1,
            Elem::Alt(k) => prog.branches(*k).map(|b| b.len()).min().unwrap_or(0),
            Elem::NegAlt(k) => prog.neg_len(*k),
            Elem::Gap { .. } => break,
        };
    }
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// ClamAV's Boyer-Moore "offset mode" (see
/// [`aether_exe::offset::PE_BM_OFFMODE_MIN_FILE_SIZE`]): a PE-target body
/// signature of plain bytes with an unshifted offset matches, in a file of
/// 256 KiB or more, only at the exact start of its placement. Only `SEx` has
/// a range without a shift.
fn bm_offset_mode(prog: &Program, offset: &Offset, size: u64) -> bool {
    matches!(offset, Offset::SectionEntire { .. })
        && size >= aether_exe::offset::PE_BM_OFFMODE_MIN_FILE_SIZE
        && prog.target == TargetType::Pe
        && prog.slot == NO_SLOT
        && prog.left.is_none()
        && prog.right.is_none()
        && prog
            .elems
            .iter()
            .all(|e| matches!(e, Elem::Byte(m) if m.is_exact()))
}

/// The digests of `data` that some signature of `db` at that size needs.
/// The digests `db` needs of the `len` bytes at `start` of `src`, read a
/// piece at a time (a section may be up to 1 GiB); `None` when it needs none
/// or the bytes cannot be read.
fn digests(db: &HashDb, src: &dyn ReadAt, start: u64, len: u64) -> Option<Digests> {
    let needed = db.needed(len);
    if !needed.any() {
        return None;
    }
    let (mut md5, mut sha1, mut sha256) = (
        needed.md5.then(Md5::new),
        needed.sha1.then(Sha1::new),
        needed.sha256.then(Sha256::new),
    );
    let mut buf = vec![0u8; (256 << 10).min(len as usize)];
    let mut at = start;
    while at < start + len {
        let n = (start + len - at).min(buf.len() as u64) as usize;
        let piece = buf.get_mut(..n)?;
        src.read_exact_at(piece, at).ok()?;
        md5.iter_mut().for_each(|h| h.update(&*piece));
        sha1.iter_mut().for_each(|h| h.update(&*piece));
        sha256.iter_mut().for_each(|h| h.update(&*piece));
        at += n as u64;
    }
    Some(Digests {
        md5: md5.map(|h| h.finalize().into()),
        sha1: sha1.map(|h| h.finalize().into()),
        sha256: sha256.map(|h| h.finalize().into()),
    })
}

/// `.mdb`/`.msb` signatures matching the sections of a parsed PE, in section
/// order; stops at the first unless `all_match`.
pub(crate) fn match_sections(
    db: &HashDb,
    info: &ExeInfo,
    src: &dyn ReadAt,
    all_match: bool,
    out: &mut Vec<NameId>,
) {
    if db.len() == 0 {
        return;
    }
    for (_, range) in info.hashed_section_ranges(src.size()) {
        let len = range.end - range.start;
        let Some(d) = digests(db, src, range.start, len) else {
            continue;
        };
        let before = out.len();
        db.lookup(&d, len, out);
        if !all_match && out.len() > before {
            out.truncate(before + 1);
            return;
        }
    }
}

/// `.imp` signatures matching the import table of a parsed PE. ClamAV 1.4
/// checks them against PE32 files only.
pub(crate) fn match_imports<'d, R: ReadRef<'d>>(
    db: &HashDb,
    info: &ExeInfo,
    data: R,
    all_match: bool,
    out: &mut Vec<NameId>,
) {
    if db.len() == 0 || info.kind != ExeKind::Pe32 {
        return;
    }
    let Ok(h) = ImportTable::read(data, info).and_then(|t| t.hash()) else {
        return;
    };
    let size = u64::from(h.size);
    let needed = db.needed(size);
    if !needed.any() {
        return;
    }
    let d = Digests {
        md5: needed.md5.then_some(h.md5),
        sha1: needed.sha1.then_some(h.sha1),
        sha256: needed.sha256.then_some(h.sha256),
    };
    let before = out.len();
    db.lookup(&d, size, out);
    if !all_match && out.len() > before {
        out.truncate(before + 1);
    }
}

/// Whether the logical signature's `EntryPoint` and `NumberOfSections`
/// conditions hold; ClamAV requires headers that parsed for either.
pub(crate) fn exe_conditions_hold(
    layout: &FileLayout,
    entry_point: Option<aether_sigs::Range>,
    sections: Option<aether_sigs::Range>,
) -> bool {
    if entry_point.is_none() && sections.is_none() {
        return true;
    }
    let Some(info) = layout.info() else {
        return false;
    };
    let nos = u32::try_from(info.number_of_sections()).unwrap_or(u32::MAX);
    entry_point.is_none_or(|r| r.contains(u64::from(info.entry_point)))
        && sections.is_none_or(|r| r.contains(u64::from(nos)))
}

/// The byte ranges (offset, length) of the architectures of a universal
/// Mach-O binary that ClamAV scans as files of their own, in header order.
pub(crate) fn universal_arches(src: &dyn ReadAt) -> Vec<(u64, u64)> {
    // Room for the header and ClamAV's 32 architecture entries.
    let mut head = vec![0u8; 8 + 32 * 20];
    let n = (src.size().min(head.len() as u64)) as usize;
    head.truncate(n);
    if src.read_exact_at(&mut head, 0).is_err() {
        return Vec::new();
    }
    let Ok(fat) = aether_exe::fat_arches(&head) else {
        return Vec::new();
    };
    let size = src.size();
    fat.arches
        .iter()
        .filter(|a| u64::from(a.offset) < size)
        .map(|a| {
            let start = u64::from(a.offset);
            (start, u64::from(a.size).min(size - start))
        })
        .filter(|(_, len)| *len > 0)
        .collect()
}

/// Copies `len` bytes of `src` from `offset` into `out`.
pub(crate) fn copy_range(
    src: &dyn ReadAt,
    offset: u64,
    len: u64,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let mut buf = vec![0u8; (64 << 10).min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        src.read_exact_at(&mut buf[..n], offset + done)?;
        out.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_sigs::{BodySig, HexPattern};

    fn program(offset: &str, target: TargetType, hex: &str) -> Program {
        let sig = BodySig {
            name: "t",
            target,
            offset: Offset::parse(offset).expect("offset"),
            pattern: HexPattern::parse(hex).expect("pattern"),
        };
        crate::pattern::compile(&sig, NameId(0))
            .expect("compiles")
            .0
    }

    fn info() -> ExeInfo {
        let s = |raw, raw_size| aether_exe::Section {
            name: "".into(),
            raw,
            raw_size,
            rva: 0,
            virtual_size: 0,
            outside_file: false,
        };
        ExeInfo {
            kind: ExeKind::Pe32,
            big_endian: false,
            entry_point: 0x400,
            entry_address: 0x1000,
            sections: vec![s(0x400, 0x200), s(0x600, 0x1000)],
            pe: None,
        }
    }

    #[test]
    fn offsets_by_layout() {
        let exe = FileLayout::Exe(Box::new(info()));
        let p = program("EP+2", TargetType::Pe, "41424344");
        assert_eq!(
            exe.offset_of(&p, 0x2000),
            Some(Offset::Absolute {
                at: 0x402,
                shift: 0
            })
        );
        assert_eq!(FileLayout::Generic.offset_of(&p, 0x2000), None);
        assert_eq!(FileLayout::Broken.offset_of(&p, 0x2000), None);
        // EOF-n resolves in a generic file and an executable, not a broken one.
        let e = program("EOF-8", TargetType::Any, "41424344");
        assert!(FileLayout::Generic.offset_of(&e, 0x2000).is_some());
        assert_eq!(
            exe.offset_of(&e, 0x2000),
            Some(Offset::Absolute {
                at: 0x1ff8,
                shift: 0
            })
        );
        assert_eq!(FileLayout::Broken.offset_of(&e, 0x2000), None);
        let a = program("16", TargetType::Any, "41424344");
        assert!(FileLayout::Broken.offset_of(&a, 0x2000).is_some());
        // The pattern must fit before the end.
        let tail = program("SL+4090", TargetType::Pe, "4142434445464748");
        assert_eq!(exe.offset_of(&tail, 0x1600), None);
        assert!(exe.offset_of(&tail, 0x1610).is_some());
    }

    #[test]
    fn whole_sections_in_large_pe_files() {
        let exe = FileLayout::Exe(Box::new(info()));
        let plain = program("SE1", TargetType::Pe, "41424344");
        let small = exe.offset_of(&plain, 0x2000);
        assert_eq!(
            small,
            Some(Offset::Absolute {
                at: 0x600,
                shift: 0x1000
            })
        );
        let big = exe.offset_of(&plain, 300_000);
        assert_eq!(
            big,
            Some(Offset::Absolute {
                at: 0x600,
                shift: 0
            })
        );
        // Wildcards, or another target, keep the whole range.
        let wild = program("SE1", TargetType::Pe, "4142??44");
        assert!(matches!(
            exe.offset_of(&wild, 300_000),
            Some(Offset::Absolute { shift: 0x1000, .. })
        ));
    }

    #[test]
    fn entry_point_and_sections_conditions() {
        let exe = FileLayout::Exe(Box::new(info()));
        let r = |min, max| Some(aether_sigs::Range { min, max });
        assert!(exe_conditions_hold(&exe, r(0x400, 0x400), r(2, 2)));
        assert!(!exe_conditions_hold(&exe, r(0, 0x3ff), None));
        assert!(!exe_conditions_hold(&exe, None, r(3, 9)));
        assert!(!exe_conditions_hold(&FileLayout::Broken, None, r(0, 9)));
        assert!(exe_conditions_hold(&FileLayout::Broken, None, None));
    }
}
