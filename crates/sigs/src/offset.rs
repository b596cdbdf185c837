//! The `Offset` field of `.ndb` lines (and of `.ldb` subsignatures later).

/// Where a body signature's first byte may lie.
///
/// Every form but `Any` may be floating: `Offset,MaxShift` allows any start from
/// the offset to the offset plus `shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offset {
    /// `*`: anywhere.
    Any,
    /// `n[,shift]`: from the start of the file.
    Absolute { at: u64, shift: u64 },
    /// `EOF-n[,shift]`: `n` bytes before the end of the file.
    FromEnd { back: u64, shift: u64 },
    /// `EP+n` / `EP-n`: relative to the executable's entry point.
    EntryPoint { delta: i64, shift: u64 },
    /// `Sx+n`: relative to the start of section `x`.
    Section { index: u32, delta: u64, shift: u64 },
    /// `SEx`: anywhere inside section `x`.
    SectionEntire { index: u32 },
    /// `SL+n`: relative to the start of the last section.
    LastSection { delta: u64, shift: u64 },
}

impl Offset {
    /// Whether the offset needs an executable's structure (PE/ELF/Mach-O).
    pub fn is_executable_relative(&self) -> bool {
        matches!(
            self,
            Offset::EntryPoint { .. }
                | Offset::Section { .. }
                | Offset::SectionEntire { .. }
                | Offset::LastSection { .. }
        )
    }
}
