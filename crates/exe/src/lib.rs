/*!
Reads the headers of PE, ELF and Mach-O executables the way ClamAV does.

ClamAV signatures can be anchored to an executable's structure: `EP+n` (the
entry point), `Sx+n` (the start of section `x`), `SEx` (all of section `x`),
`SL+n` (the last section); `.mdb`/`.msb` signatures hash PE sections and
`.imp` signatures the PE import table. Whether such a signature matches
depends on exactly how ClamAV turns headers into file offsets, quirks
included: PE section fields rounded to their alignments and cut at the end of
the file, the *first* ELF segment holding the entry point, a Mach-O entry
point of 0 unless the file is for PowerPC. This crate reproduces those rules
(see each module) and nothing else: it gives an [`ExeInfo`] per executable and
resolves an [`aether_sigs::Offset`] against it ([`resolve`]).

ClamAV reads the headers that the *signature's target type* names, for files
of that type: a file typed PE (`MZ`) is read with [`ExeInfo::parse_pe`] for
target-1 signatures, ELF with [`ExeInfo::parse_elf`] for target 6, Mach-O
with [`ExeInfo::parse_macho`] for target 9. A universal binary is typed
Mach-O too, but its container has no headers ClamAV can read ([`Layout::Broken`]);
each of its architectures ([`fat_arches`]) is scanned as a file of its own.

The layouts come from the `object` crate's header structs; the logic is
ClamAV's (`libclamav/pe.c`, `elf.c`, `macho.c`, `matcher.c`), read and
rewritten, not copied. Parsing reads only headers and tables, is bounded by
ClamAV's own limits (at most 65535 PE or Mach-O sections, 256 ELF sections,
128 ELF program headers, 1024 Mach-O load commands, 1024 import descriptors)
and fails with a typed [`ExeError`] where ClamAV gives up, never a panic.
*/

use object::ReadRef;

pub mod error;
pub mod imports;
pub mod offset;

mod elf;
mod macho;
mod ordinals;
mod pe;
pub mod version_info;

pub use error::{ExeError, Format, ImportError};
pub use imports::{ImportHash, ImportTable, ImportedDll, ImportedFunction};
pub use macho::{FatArch, FatArches, fat_arches};
pub use offset::{Layout, Placement, resolve};

/// ClamAV does not hash sections larger than this (`CLI_MAX_ALLOCATION`).
pub const MAX_HASHED_SECTION: u32 = 1 << 30;

/// Which executable format, and which variant of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExeKind {
    Pe32,
    Pe32Plus,
    Elf32,
    Elf64,
    MachO32,
    MachO64,
}

impl ExeKind {
    /// The ClamAV target type whose signatures this kind answers to
    /// (1 PE, 6 ELF, 9 Mach-O).
    pub fn target_type(self) -> aether_sigs::TargetType {
        match self {
            ExeKind::Pe32 | ExeKind::Pe32Plus => aether_sigs::TargetType::Pe,
            ExeKind::Elf32 | ExeKind::Elf64 => aether_sigs::TargetType::Elf,
            ExeKind::MachO32 | ExeKind::MachO64 => aether_sigs::TargetType::MachO,
        }
    }
}

/// A section (ELF, Mach-O, PE) as ClamAV sees it. Offsets and sizes are
/// 32-bit, as in ClamAV, which keeps the low 32 bits of 64-bit fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// PE and Mach-O section name, up to its first NUL; empty for ELF (ClamAV
    /// does not look names up).
    pub name: Box<str>,
    /// File offset of the section's first byte: `Sx+0`.
    pub raw: u32,
    /// Bytes of the section in the file (PE: rounded up to the file
    /// alignment and cut at the end of the file; Mach-O: the size rounded up
    /// to the section's alignment). `SEx` spans `[raw, raw + raw_size]`.
    pub raw_size: u32,
    /// Virtual address (PE: RVA rounded down to the section alignment).
    pub rva: u32,
    /// Virtual size (PE: rounded up to the section alignment; ELF: 0).
    pub virtual_size: u32,
    /// PE only: the section's raw data starts at or past the end of the
    /// file, so `raw_size` was set to 0.
    pub outside_file: bool,
}

/// PE header fields that section hashes and import tables need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeInfo {
    /// `SizeOfHeaders` rounded up to the section alignment: RVAs below it
    /// are their own file offsets.
    pub header_size: u32,
    pub section_alignment: u32,
    /// After ClamAV's fallback to 0x200 for misaligned raw offsets.
    pub file_alignment: u32,
    /// The data directories (RVA, size), at most 16.
    pub data_dirs: Vec<(u32, u32)>,
    /// Where `VI` signatures may match: the file offsets of the keys of the
    /// version-information strings, sorted (see [`version_info`]).
    pub version_info: Vec<u32>,
}

/// What ClamAV knows of an executable to place `EP`, `Sx`, `SEx` and `SL` offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExeInfo {
    pub kind: ExeKind,
    /// Byte order of ELF and Mach-O headers (PE is always little-endian).
    pub big_endian: bool,
    /// The entry point as a file offset: what `EP+0` means.
    pub entry_point: u32,
    /// The entry point as the header gives it (PE: RVA; ELF: `e_entry`;
    /// Mach-O: the PowerPC thread state's PC, else 0).
    pub entry_address: u64,
    /// All sections, in header order; their number is `NumberOfSections`.
    pub sections: Vec<Section>,
    /// PE-only header fields.
    pub pe: Option<PeInfo>,
}

impl ExeInfo {
    /// Parses an executable, telling the format by its magic: `MZ` (or
    /// `ZM`), `\x7fELF`, or a thin Mach-O magic. A universal binary gives
    /// [`ExeError::Universal`]: list its parts with [`fat_arches`].
    pub fn parse(data: &[u8]) -> Result<ExeInfo, ExeError> {
        match data.get(..4) {
            Some([b'M', b'Z', ..] | [b'Z', b'M', ..]) => pe::parse(data),
            Some([0x7f, b'E', b'L', b'F']) => elf::parse(data),
            _ if macho::magic(data).is_some() => macho::parse(data),
            _ if macho::is_fat(data) => Err(ExeError::Universal),
            _ => Err(ExeError::UnknownFormat),
        }
    }

    /// Parses `data` as a PE file (ClamAV's target type 1). `data` is a
    /// byte slice, or an [`object::ReadCache`] over a file, which reads only
    /// the headers and tables the parser asks for.
    pub fn parse_pe<'d, R: ReadRef<'d>>(data: R) -> Result<ExeInfo, ExeError> {
        pe::parse(data)
    }

    /// Parses `data` as an ELF file (ClamAV's target type 6).
    pub fn parse_elf<'d, R: ReadRef<'d>>(data: R) -> Result<ExeInfo, ExeError> {
        elf::parse(data)
    }

    /// Parses `data` as a thin Mach-O file (ClamAV's target type 9).
    pub fn parse_macho<'d, R: ReadRef<'d>>(data: R) -> Result<ExeInfo, ExeError> {
        macho::parse(data)
    }

    /// `NumberOfSections`: how many sections `Sx` can name.
    pub fn number_of_sections(&self) -> usize {
        self.sections.len()
    }

    /// The sections ClamAV hashes for `.mdb`/`.msb` signatures, with their
    /// bytes: PE sections with raw data, in order. The hash's size field is
    /// the slice's length (the section's `raw_size`). Empty for ELF and
    /// Mach-O, and for a PE whose only section lies outside the file (ClamAV's
    /// PE scanner gives up on those before hashing); sections over
    /// [`MAX_HASHED_SECTION`] bytes are skipped, as in ClamAV.
    pub fn hashed_sections<'a>(
        &'a self,
        data: &'a [u8],
    ) -> impl Iterator<Item = (usize, &'a [u8])> + 'a {
        self.hashed_section_ranges(data.len() as u64)
            .filter_map(move |(i, range)| {
                let start = usize::try_from(range.start).ok()?;
                let end = usize::try_from(range.end).ok()?;
                data.get(start..end).map(|b| (i, b))
            })
    }

    /// [`ExeInfo::hashed_sections`] as file ranges, for a file of
    /// `file_size` bytes read piece by piece.
    pub fn hashed_section_ranges(
        &self,
        file_size: u64,
    ) -> impl Iterator<Item = (usize, std::ops::Range<u64>)> + '_ {
        let only_one_missing =
            self.sections.len() == 1 && self.sections.first().is_some_and(|s| s.outside_file);
        let pe = self.pe.is_some() && !only_one_missing;
        self.sections
            .iter()
            .enumerate()
            .filter(move |(_, s)| pe && s.raw_size != 0 && s.raw_size <= MAX_HASHED_SECTION)
            .filter_map(move |(i, s)| {
                let start = u64::from(s.raw);
                let end = start + u64::from(s.raw_size);
                (end <= file_size).then_some((i, start..end))
            })
    }

    /// The file offset of a PE RVA, as ClamAV maps it (`cli_rawaddr`).
    pub fn pe_rva_to_offset(&self, rva: u32, file_size: u64) -> Option<u32> {
        let pe = self.pe.as_ref()?;
        pe::rva_to_offset(rva, &self.sections, file_size, pe.header_size)
    }
}
