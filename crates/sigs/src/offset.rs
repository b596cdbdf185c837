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
    /// `VI`: at the key of one of a PE file's version-information strings
    /// (its `StringFileInfo` entries, `CompanyName`, `FileDescription`...).
    VersionInfo,
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
                | Offset::VersionInfo
        )
    }
}

/// ClamAV refuses offset strings longer than this (`cli_caloff`).
pub const MAX_OFFSET_LEN: usize = 64;

/// An `Offset` field that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetError {
    #[error("empty offset")]
    Empty,
    #[error("offset longer than {MAX_OFFSET_LEN} characters")]
    TooLong,
    #[error("invalid offset {0:?}")]
    Invalid(String),
    #[error("invalid shift {0:?} (expected a decimal number after ',')")]
    InvalidShift(String),
    #[error("number too large in offset {0:?}")]
    TooLarge(String),
    /// A form ClamAV knows but aether does not represent yet (`$n$`
    /// macros, a shift on `SEx`). The loader counts these as unsupported.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// ClamAV numbers in offsets are C `unsigned int`s read with `atoi`.
fn number(s: &str, whole: &str) -> Result<u32, OffsetError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OffsetError::Invalid(whole.to_string()));
    }
    s.parse::<u32>()
        .map_err(|_| OffsetError::TooLarge(whole.to_string()))
}

impl Offset {
    /// Parses the `Offset` field of an `.ndb` line: `*`, `n`, `EOF-n`, `EP+n`,
    /// `EP-n`, `Sx+n`, `SEx`, `SL+n`, each but `*` optionally followed by `,shift`.
    pub fn parse(text: &str) -> Result<Offset, OffsetError> {
        if text.is_empty() {
            return Err(OffsetError::Empty);
        }
        if text == "*" {
            return Ok(Offset::Any);
        }
        if text.len() > MAX_OFFSET_LEN {
            return Err(OffsetError::TooLong);
        }
        let (base, shift) = match text.split_once(',') {
            Some((base, shift)) => {
                if shift.is_empty() || !shift.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(OffsetError::InvalidShift(shift.to_string()));
                }
                let shift: u32 = shift
                    .parse()
                    .map_err(|_| OffsetError::TooLarge(text.to_string()))?;
                (base, Some(u64::from(shift)))
            }
            None => (text, None),
        };
        let s = shift.unwrap_or(0);
        if let Some(n) = base.strip_prefix("EP+") {
            Ok(Offset::EntryPoint {
                delta: i64::from(number(n, text)?),
                shift: s,
            })
        } else if let Some(n) = base.strip_prefix("EP-") {
            Ok(Offset::EntryPoint {
                delta: -i64::from(number(n, text)?),
                shift: s,
            })
        } else if let Some(n) = base.strip_prefix("EOF-") {
            Ok(Offset::FromEnd {
                back: u64::from(number(n, text)?),
                shift: s,
            })
        } else if let Some(n) = base.strip_prefix("SE") {
            let index = number(n, text)?;
            if shift.is_some() {
                return Err(OffsetError::Unsupported("a shift on an SEx offset"));
            }
            Ok(Offset::SectionEntire { index })
        } else if let Some(n) = base.strip_prefix("SL+") {
            Ok(Offset::LastSection {
                delta: u64::from(number(n, text)?),
                shift: s,
            })
        } else if let Some(rest) = base.strip_prefix('S') {
            let Some((x, n)) = rest.split_once('+') else {
                return Err(OffsetError::Invalid(text.to_string()));
            };
            Ok(Offset::Section {
                index: number(x, text)?,
                delta: u64::from(number(n, text)?),
                shift: s,
            })
        } else if base.starts_with("VI") {
            // ClamAV reads the two letters and ignores the rest.
            Ok(Offset::VersionInfo)
        } else if base.contains('$') {
            Err(OffsetError::Unsupported("macro ($n$) offsets"))
        } else {
            Ok(Offset::Absolute {
                at: u64::from(number(base, text)?),
                shift: s,
            })
        }
    }

    /// The `,shift` part, 0 when there is none.
    pub fn shift(&self) -> u64 {
        match *self {
            Offset::Any | Offset::SectionEntire { .. } | Offset::VersionInfo => 0,
            Offset::Absolute { shift, .. }
            | Offset::FromEnd { shift, .. }
            | Offset::EntryPoint { shift, .. }
            | Offset::Section { shift, .. }
            | Offset::LastSection { shift, .. } => shift,
        }
    }
}

impl std::fmt::Display for Offset {
    /// ClamAV's text for the offset; `Offset::parse` reads it back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Offset::Any => return f.write_str("*"),
            Offset::Absolute { at, .. } => write!(f, "{at}")?,
            Offset::FromEnd { back, .. } => write!(f, "EOF-{back}")?,
            Offset::EntryPoint { delta, .. } if delta < 0 => {
                write!(f, "EP-{}", delta.unsigned_abs())?
            }
            Offset::EntryPoint { delta, .. } => write!(f, "EP+{delta}")?,
            Offset::Section { index, delta, .. } => write!(f, "S{index}+{delta}")?,
            Offset::SectionEntire { index } => write!(f, "SE{index}")?,
            Offset::LastSection { delta, .. } => write!(f, "SL+{delta}")?,
            Offset::VersionInfo => f.write_str("VI")?,
        }
        match self.shift() {
            0 => Ok(()),
            s => write!(f, ",{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let ok = |s: &str, o: Offset| {
            assert_eq!(Offset::parse(s), Ok(o), "{s}");
            assert_eq!(Offset::parse(&o.to_string()), Ok(o), "{s} display");
        };
        ok("*", Offset::Any);
        ok("0", Offset::Absolute { at: 0, shift: 0 });
        ok("100,20", Offset::Absolute { at: 100, shift: 20 });
        ok("EOF-10", Offset::FromEnd { back: 10, shift: 0 });
        ok("EOF-10,5", Offset::FromEnd { back: 10, shift: 5 });
        ok("EP+0", Offset::EntryPoint { delta: 0, shift: 0 });
        ok(
            "EP+16,4",
            Offset::EntryPoint {
                delta: 16,
                shift: 4,
            },
        );
        ok(
            "EP-16",
            Offset::EntryPoint {
                delta: -16,
                shift: 0,
            },
        );
        ok(
            "S2+8",
            Offset::Section {
                index: 2,
                delta: 8,
                shift: 0,
            },
        );
        ok(
            "S0+8,100",
            Offset::Section {
                index: 0,
                delta: 8,
                shift: 100,
            },
        );
        ok("SE3", Offset::SectionEntire { index: 3 });
        ok("SL+4", Offset::LastSection { delta: 4, shift: 0 });
        ok("SL+4,2", Offset::LastSection { delta: 4, shift: 2 });
        assert_eq!(
            Offset::parse("4294967295"),
            Ok(Offset::Absolute {
                at: u64::from(u32::MAX),
                shift: 0
            })
        );
    }

    #[test]
    fn errors() {
        assert_eq!(Offset::parse(""), Err(OffsetError::Empty));
        assert_eq!(
            Offset::parse("*,5"),
            Err(OffsetError::Invalid("*,5".into()))
        );
        assert_eq!(Offset::parse("-5"), Err(OffsetError::Invalid("-5".into())));
        assert_eq!(
            Offset::parse("10,"),
            Err(OffsetError::InvalidShift("".into()))
        );
        assert_eq!(
            Offset::parse("10,x"),
            Err(OffsetError::InvalidShift("x".into()))
        );
        assert_eq!(
            Offset::parse("EP+"),
            Err(OffsetError::Invalid("EP+".into()))
        );
        assert_eq!(
            Offset::parse("EP*3"),
            Err(OffsetError::Invalid("EP*3".into()))
        );
        assert_eq!(
            Offset::parse("EOF+3"),
            Err(OffsetError::Invalid("EOF+3".into()))
        );
        assert_eq!(Offset::parse("S1"), Err(OffsetError::Invalid("S1".into())));
        assert_eq!(
            Offset::parse("S1+x"),
            Err(OffsetError::Invalid("S1+x".into()))
        );
        assert_eq!(
            Offset::parse("SEx"),
            Err(OffsetError::Invalid("SEx".into()))
        );
        assert_eq!(
            Offset::parse("4294967296"),
            Err(OffsetError::TooLarge("4294967296".into()))
        );
        assert_eq!(Offset::parse(&"1".repeat(65)), Err(OffsetError::TooLong));
        assert_eq!(Offset::parse("VI"), Ok(Offset::VersionInfo));
        assert_eq!(Offset::parse("VI"), Ok(Offset::VersionInfo));
        assert!(Offset::VersionInfo.is_executable_relative());
        assert_eq!(Offset::VersionInfo.to_string(), "VI");
        assert!(matches!(
            Offset::parse("$1$"),
            Err(OffsetError::Unsupported(_))
        ));
        assert!(matches!(
            Offset::parse("SE1,4"),
            Err(OffsetError::Unsupported(_))
        ));
    }

    #[test]
    fn executable_relative() {
        assert!(Offset::parse("EP+1").unwrap().is_executable_relative());
        assert!(Offset::parse("SL+1").unwrap().is_executable_relative());
        assert!(!Offset::parse("EOF-1").unwrap().is_executable_relative());
        assert!(!Offset::parse("*").unwrap().is_executable_relative());
    }
}
