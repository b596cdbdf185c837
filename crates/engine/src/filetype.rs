//! File type recognition, enough to apply `.ndb` target types.
//!
//! A later stage brings ClamAV's full magic table (`daily.ftm`); this recognizer
//! knows executables and text, which is what target types 1, 3, 6, 7 and 9 need.

/// A recognized file type, named as ClamAV's `CL_TYPE_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FileType {
    #[default]
    BinaryData,
    Pe,
    Elf,
    MachO,
    Text,
    Html,
}

impl FileType {
    /// ClamAV's name for the type (`CL_TYPE_PE`).
    pub fn clamav_name(self) -> &'static str {
        match self {
            FileType::BinaryData => "CL_TYPE_BINARY_DATA",
            FileType::Pe => "CL_TYPE_MSEXE",
            FileType::Elf => "CL_TYPE_ELF",
            FileType::MachO => "CL_TYPE_MACHO",
            FileType::Text => "CL_TYPE_TEXT_ASCII",
            FileType::Html => "CL_TYPE_HTML",
        }
    }
}
