//! Where a body signature's offset puts its first byte in one file, as
//! ClamAV's `cli_caloff` computes it.
//!
//! ClamAV computes every offset in 32 bits that wrap (`EP-n` before the start
//! of the file lands near 4 GiB, and so nowhere), and its "no offset" value is
//! `0xfffffffe`; both are kept here so a resolved offset is the one ClamAV
//! checks. One step is left to the matcher, because it needs the pattern:
//! ClamAV also drops a relative offset when `min + pattern length` is past the
//! end of the file ([`Placement::fits`]).

use aether_sigs::Offset;

use crate::ExeInfo;

/// From this file size on, ClamAV matches PE-target (type 1) signatures whose
/// pattern is plain bytes (no wildcards, alternatives or modifiers) and whose
/// offset has no `,shift` with its Boyer-Moore matcher in "offset mode",
/// which accepts a match only at the exact start of the placement: an `SEx`
/// signature then matches only at the start of section `x`
/// (`CLI_DEFAULT_BM_OFFMODE_FSIZE`; see `cli_bm_scanbuff`). Smaller files,
/// other patterns and other targets use the whole `min..=max` range.
pub const PE_BM_OFFMODE_MIN_FILE_SIZE: u64 = 262_144;

/// ClamAV's `CLI_OFF_NONE`: a computed offset equal to it means "nowhere".
const OFF_NONE: u32 = 0xffff_fffe;

/// What an offset is resolved against. ClamAV reads the headers of the
/// *file's* type once (PE for a file typed PE, ELF, Mach-O, including a
/// universal binary's container) and resolves every signature's offsets,
/// generic (target 0) ones included, against that one result.
#[derive(Debug, Clone, Copy)]
pub enum Layout<'a> {
    /// The file is not of an executable type: no headers are read; `*`, `n`
    /// and `EOF-n` resolve, executable-relative forms do not (the loader
    /// rejects them for non-executable targets anyway).
    Generic,
    /// The file is of an executable type but its headers did not parse:
    /// no relative offset of any signature resolves, not even `EOF-n`.
    Broken,
    /// The file is of an executable type and its headers parsed.
    Exe(&'a ExeInfo),
}

impl<'a> Layout<'a> {
    /// The layout for a file whose headers parsed or not.
    pub fn from_result<E>(parsed: Result<&'a ExeInfo, E>) -> Layout<'a> {
        match parsed {
            Ok(info) => Layout::Exe(info),
            Err(_) => Layout::Broken,
        }
    }
}

/// Where a signature may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `*`: anywhere.
    Anywhere,
    /// The first byte lies at an offset in `min..=max`.
    Within { min: u32, max: u32 },
    /// Nowhere in this file (an unknown section, a broken header, ...).
    Nowhere,
}

impl Placement {
    /// Whether the signature can still match in a file of `file_size` bytes
    /// when its pattern spans at least `min_len` bytes from its start:
    /// ClamAV drops a relative placement whose `min + min_len` is past the end.
    /// (It does not apply this to `Anywhere` or absolute offsets, which simply
    /// never match past the end.)
    pub fn fits(&self, min_len: u32, file_size: u64) -> bool {
        match *self {
            Placement::Anywhere => true,
            Placement::Within { min, .. } => u64::from(min) + u64::from(min_len) <= file_size,
            Placement::Nowhere => false,
        }
    }
}

/// Resolves `offset` for a file of `file_size` bytes.
pub fn resolve(offset: &Offset, file_size: u64, layout: Layout<'_>) -> Placement {
    // ClamAV's shift (`,n`) and the `n` of each form are 32-bit.
    let shift = offset.shift() as u32;
    let within = |min: u32| {
        if min == OFF_NONE {
            Placement::Nowhere
        } else {
            Placement::Within {
                min,
                max: min.wrapping_add(shift),
            }
        }
    };
    let fsize = file_size as u32;
    match *offset {
        Offset::Any => Placement::Anywhere,
        // Absolute offsets are resolved once at load time, headers or not.
        Offset::Absolute { at, .. } => within(at as u32),
        _ => {
            let info = match layout {
                Layout::Broken => return Placement::Nowhere,
                Layout::Generic => None,
                Layout::Exe(info) => Some(info),
            };
            match (*offset, info) {
                (Offset::FromEnd { back, .. }, _) => within(fsize.wrapping_sub(back as u32)),
                (_, None) => Placement::Nowhere,
                (Offset::EntryPoint { delta, .. }, Some(info)) => {
                    within(info.entry_point.wrapping_add(delta as i32 as u32))
                }
                (Offset::Section { index, delta, .. }, Some(info)) => {
                    match info.sections.get(index as usize) {
                        Some(s) => within(s.raw.wrapping_add(delta as u32)),
                        None => Placement::Nowhere,
                    }
                }
                (Offset::SectionEntire { index }, Some(info)) => {
                    match info.sections.get(index as usize) {
                        Some(s) if s.raw != OFF_NONE => Placement::Within {
                            min: s.raw,
                            max: s.raw.wrapping_add(s.raw_size),
                        },
                        _ => Placement::Nowhere,
                    }
                }
                // ClamAV reads before its section array when there are no
                // sections; aether places nothing.
                (Offset::LastSection { delta, .. }, Some(info)) => match info.sections.last() {
                    Some(s) => within(s.raw.wrapping_add(delta as u32)),
                    None => Placement::Nowhere,
                },
                // Anywhere, as in ClamAV; the matcher then keeps only starts
                // at a version-information string (`PeInfo::version_info`).
                (Offset::VersionInfo, Some(_)) => Placement::Anywhere,
                (Offset::Any | Offset::Absolute { .. }, _) => Placement::Nowhere,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExeKind, Section};

    fn info() -> ExeInfo {
        let s = |raw, raw_size| Section {
            name: "".into(),
            raw,
            raw_size,
            rva: 0,
            virtual_size: 0,
            outside_file: false,
        };
        ExeInfo {
            kind: ExeKind::Elf64,
            big_endian: false,
            entry_point: 100,
            entry_address: 0x1000,
            sections: vec![s(0, 0), s(64, 32), s(200, 50)],
            pe: None,
        }
    }

    fn at(s: &str, layout: Layout<'_>) -> Placement {
        resolve(&Offset::parse(s).unwrap(), 1000, layout)
    }

    #[test]
    fn forms() {
        let i = info();
        let exe = Layout::Exe(&i);
        assert_eq!(at("*", exe), Placement::Anywhere);
        assert_eq!(at("10,5", exe), Placement::Within { min: 10, max: 15 });
        assert_eq!(at("EOF-10", exe), Placement::Within { min: 990, max: 990 });
        assert_eq!(at("EP+4,2", exe), Placement::Within { min: 104, max: 106 });
        assert_eq!(at("EP-100", exe), Placement::Within { min: 0, max: 0 });
        assert_eq!(at("S1+3", exe), Placement::Within { min: 67, max: 67 });
        assert_eq!(at("S3+0", exe), Placement::Nowhere);
        assert_eq!(at("SE2", exe), Placement::Within { min: 200, max: 250 });
        assert_eq!(at("SE9", exe), Placement::Nowhere);
        assert_eq!(at("SL+1,1", exe), Placement::Within { min: 201, max: 202 });
    }

    #[test]
    fn wraps_like_clamav() {
        let i = info();
        // 100 - 101 wraps to 0xffffffff, which is not CLI_OFF_NONE: a placement
        // that `fits` then rejects.
        let p = at("EP-101", Layout::Exe(&i));
        assert_eq!(
            p,
            Placement::Within {
                min: u32::MAX,
                max: u32::MAX
            }
        );
        assert!(!p.fits(1, 1000));
        // Landing exactly on CLI_OFF_NONE means nowhere.
        assert_eq!(at("EP-102", Layout::Exe(&i)), Placement::Nowhere);
    }

    #[test]
    fn broken_and_generic() {
        assert_eq!(at("EOF-10", Layout::Broken), Placement::Nowhere);
        assert_eq!(at("EP+0", Layout::Broken), Placement::Nowhere);
        assert_eq!(
            at("5", Layout::Broken),
            Placement::Within { min: 5, max: 5 }
        );
        assert_eq!(
            at("EOF-10", Layout::Generic),
            Placement::Within { min: 990, max: 990 }
        );
        assert_eq!(at("EP+0", Layout::Generic), Placement::Nowhere);
        let none = ExeInfo {
            sections: Vec::new(),
            ..info()
        };
        assert_eq!(at("SL+0", Layout::Exe(&none)), Placement::Nowhere);
    }

    #[test]
    fn fits_needs_the_pattern_inside() {
        let p = Placement::Within { min: 990, max: 995 };
        assert!(p.fits(10, 1000));
        assert!(!p.fits(11, 1000));
        assert!(Placement::Anywhere.fits(5000, 1000));
        assert!(!Placement::Nowhere.fits(0, 1000));
    }
}
