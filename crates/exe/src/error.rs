//! Why an executable's headers could not be read.

use std::fmt;

/// The container format an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Pe,
    Elf,
    MachO,
    /// A Mach-O universal (fat) binary's own header.
    MachOFat,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Pe => "PE",
            Format::Elf => "ELF",
            Format::MachO => "Mach-O",
            Format::MachOFat => "Mach-O universal binary",
        })
    }
}

/// Headers that cannot be read. Each case is one of the checks ClamAV makes
/// before it computes an entry point and sections; ClamAV gives up on the
/// same inputs (its `cli_targetinfo` status -1), so no executable-relative
/// offset matches in such a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExeError {
    #[error("not an executable: no PE, ELF or Mach-O magic")]
    UnknownFormat,
    /// A header or table runs past the end of the file.
    #[error(
        "{format}: truncated: {what} ({len} bytes at offset {offset}) is past the end of the file"
    )]
    Truncated {
        format: Format,
        what: &'static str,
        offset: u64,
        len: u64,
    },
    /// A field whose value ClamAV rejects.
    #[error("{format}: {what} ({value:#x})")]
    BadField {
        format: Format,
        what: &'static str,
        value: u64,
    },
    /// More sections than aether (and ClamAV, which counts them in 16 bits) keeps.
    #[error("{format}: more than {limit} sections")]
    TooManySections { format: Format, limit: usize },
    /// The entry point lies in no section or segment, so it has no file offset.
    #[error("{format}: entry point {address:#x} is in no section or segment")]
    EntryPointUnmapped { format: Format, address: u64 },
    /// A universal binary holds several executables; ClamAV scans each as a
    /// file of its own and computes no offsets for the container.
    #[error("Mach-O universal binary: parse each architecture with fat_arches()")]
    Universal,
}

/// The import table could not be hashed the way ClamAV hashes it; ClamAV
/// then checks no `.imp` signature against the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("not a PE file")]
    NotPe,
    /// The file has no import directory (RVA or size 0), or it lies outside
    /// the file; ClamAV skips `.imp` matching for such files.
    #[error("no import table")]
    NoImportTable,
    #[error("import table: {what} at RVA {rva:#x} is in no section")]
    Unmapped { what: &'static str, rva: u32 },
    #[error("import table: {what} at offset {offset} is past the end of the file")]
    Truncated { what: &'static str, offset: u64 },
    /// ClamAV accepts only `[0-9A-Za-z_.]` in imported function names.
    #[error("import table: invalid character in the name of a function imported from {dll}")]
    InvalidName { dll: String },
    #[error("import table: more than {0} imported functions")]
    TooMany(usize),
    /// A PE whose only section lies outside the file: ClamAV's PE scanner
    /// stops before it looks at imports and section hashes.
    #[error("the only section lies outside the file")]
    OnlySectionOutsideFile,
}
