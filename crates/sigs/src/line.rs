//! One line of a text database: `.hdb`/`.hsb`/`.fp`/`.sfp`, `.ndb`/`.sdb`, `.ign`/`.ign2`.
//!
//! Each parser takes a line already stripped of its line ending and known not
//! to be a comment, and returns a typed record borrowing from the line (so a
//! million hash lines cost no allocation), or says why the record is skipped.
//! The checks and their order follow ClamAV's `readdb.c`.

use crate::hex::{HexError, HexPattern};
use crate::offset::{Offset, OffsetError};
use crate::record::{BodySig, Digest, FUNCTIONALITY_LEVEL, HashKind, HashSig, TargetType};

/// What a line turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A record for the sink.
    Record(T),
    /// The line's `MinFL`/`MaxFL` exclude [`FUNCTIONALITY_LEVEL`].
    SkippedFlevel,
    /// ClamAV would load it but aether cannot represent it yet.
    Unsupported(&'static str),
}

/// An entry of an ignore list (`.ign`, `.ign2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreEntry<'a> {
    pub name: &'a str,
    /// MD5 of the whole signature line: only that version of the signature is ignored.
    pub line_md5: Option<[u8; 16]>,
}

/// Why a line could not be parsed. Displays as the text after `path:line: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    #[error("empty line (ClamAV rejects blank lines; use '#' for comments)")]
    EmptyLine,
    #[error("expected {expected} ':'-separated fields, found {found}")]
    FieldCount {
        expected: &'static str,
        found: usize,
    },
    #[error("malformed hash {0:?}: expected 32 (MD5), 40 (SHA1) or 64 (SHA256) hex digits")]
    BadHash(String),
    #[error("invalid size {0:?}: expected a decimal number from 1 to 4294967294, or '*'")]
    BadSize(String),
    #[error("size '*' needs a MinFL field of at least 73")]
    WildcardSizeNeedsFlevel,
    #[error("invalid functionality level {0:?}: expected a decimal number")]
    BadFlevel(String),
    #[error("empty signature name")]
    EmptyName,
    #[error("invalid target type {0:?}: expected a decimal number or '*'")]
    BadTarget(String),
    #[error("malformed offset: {0}")]
    Offset(OffsetError),
    #[error("offset {offset} needs target type 1 (PE), 6 (ELF) or 9 (Mach-O), not {target}")]
    OffsetNeedsExecutable { offset: String, target: u32 },
    #[error("malformed hex signature: {0}")]
    Hex(#[from] HexError),
    #[error("hex signature of {0} plain bytes is too short (ClamAV needs at least 3)")]
    PlainTooShort(usize),
    #[error("malformed MD5 {0:?} in ignore entry: expected 32 hex digits")]
    BadIgnoreMd5(String),
    /// A malformed `.ldb` line.
    #[error("{0}")]
    Logical(#[from] crate::logical::LdbError),
}

/// Splits `line` at `:` into at most `N` fields; returns how many there were
/// (`N + 1` means "more than N"). A plain byte loop: fields are short, so
/// this beats a memchr call per field.
#[inline]
fn fields<'a, const N: usize>(line: &'a str, out: &mut [&'a str; N]) -> usize {
    let b = line.as_bytes();
    let mut n = 0;
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b':' {
            if n == N - 1 {
                return N + 1;
            }
            out[n] = &line[start..i];
            n += 1;
            start = i + 1;
        }
    }
    out[n] = &line[start..];
    n + 1
}

/// A decimal number as ClamAV's `cli_isnumber` accepts it (digits only).
#[inline]
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s.as_bytes() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some(v)
}

fn flevel(s: &str) -> Result<u64, LineError> {
    // An empty field reads as 0, as ClamAV's atoi() reads it (so an empty
    // MaxFL skips the line): measured against clamscan 1.4.6.
    if s.is_empty() {
        return Ok(0);
    }
    decimal(s).ok_or_else(|| LineError::BadFlevel(s.to_string()))
}

/// Hex digit values, 0xff for anything else.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decodes a hex digest; its length tells the kind.
pub fn parse_digest(s: &str) -> Option<Digest> {
    let b = s.as_bytes();
    let kind = HashKind::from_len(b.len() / 2)?;
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0xf);
    }
    if bad & 0xf0 != 0 {
        return None;
    }
    Digest::new(kind, &out[..kind.len()])
}

/// `HashString:FileSize:MalwareName[:MinFL[:MaxFL]]` (`.hdb`, `.hsb`, `.fp`, `.sfp`).
///
/// The functionality level is checked first, as ClamAV does: a line meant for
/// another engine version is skipped before its other fields are looked at.
pub fn parse_hash_line(line: &str) -> Result<Parsed<HashSig<'_>>, LineError> {
    if line.is_empty() {
        return Err(LineError::EmptyLine);
    }
    let mut f = [""; 5];
    let n = fields(line, &mut f);
    if !(3..=5).contains(&n) {
        return Err(LineError::FieldCount {
            expected: "3 to 5",
            found: n,
        });
    }
    let fl = u64::from(FUNCTIONALITY_LEVEL);
    let mut min_fl = 0;
    if n >= 4 {
        min_fl = flevel(f[3])?;
        if min_fl > fl {
            return Ok(Parsed::SkippedFlevel);
        }
        if n == 5 && flevel(f[4])? < fl {
            return Ok(Parsed::SkippedFlevel);
        }
    }
    let size = if f[1] == "*" {
        if min_fl < 73 {
            return Err(LineError::WildcardSizeNeedsFlevel);
        }
        None
    } else {
        match decimal(f[1]) {
            Some(s) if s > 0 && s < 0xffff_ffff => Some(s),
            _ => return Err(LineError::BadSize(f[1].to_string())),
        }
    };
    let Some(digest) = parse_digest(f[0]) else {
        return Err(LineError::BadHash(f[0].to_string()));
    };
    if f[2].is_empty() {
        return Err(LineError::EmptyName);
    }
    Ok(Parsed::Record(HashSig {
        digest,
        size,
        name: f[2],
    }))
}

/// The name field of an `.ndb` line, for ignore-list checks before parsing the rest.
pub fn body_line_name(line: &str) -> &str {
    line.split(':').next().unwrap_or(line)
}

/// `Name:TargetType:Offset:HexSignature[:MinFL[:MaxFL]]` (`.ndb`, `.sdb`).
pub fn parse_body_line(line: &str) -> Result<Parsed<BodySig<'_>>, LineError> {
    if line.is_empty() {
        return Err(LineError::EmptyLine);
    }
    let mut f = [""; 6];
    let n = fields(line, &mut f);
    if !(4..=6).contains(&n) {
        return Err(LineError::FieldCount {
            expected: "4 to 6",
            found: n,
        });
    }
    let fl = u64::from(FUNCTIONALITY_LEVEL);
    if n >= 5 {
        if flevel(f[4])? > fl {
            return Ok(Parsed::SkippedFlevel);
        }
        if n == 6 && flevel(f[5])? < fl {
            return Ok(Parsed::SkippedFlevel);
        }
    }
    let target_no = if f[1] == "*" {
        0
    } else {
        match decimal(f[1]) {
            Some(t) => t,
            None => return Err(LineError::BadTarget(f[1].to_string())),
        }
    };
    let Some(target) = u32::try_from(target_no)
        .ok()
        .and_then(TargetType::from_number)
    else {
        // ClamAV skips these too (with a debug message only).
        return Ok(Parsed::Unsupported("target type above 14"));
    };
    let exe_target = matches!(target, TargetType::Pe | TargetType::Elf | TargetType::MachO);
    let offset = match Offset::parse(f[2]) {
        Ok(o) => Ok(o),
        // ClamAV allows `VI` only for executables, like the other relative forms.
        Err(OffsetError::Unsupported(_)) if f[2].starts_with("VI") && !exe_target => {
            return Err(LineError::OffsetNeedsExecutable {
                offset: f[2].to_string(),
                target: target as u32,
            });
        }
        Err(OffsetError::Unsupported(why)) => Err(why),
        Err(e) => return Err(LineError::Offset(e)),
    };
    if let Ok(o) = offset
        && o.is_executable_relative()
        && !exe_target
    {
        return Err(LineError::OffsetNeedsExecutable {
            offset: f[2].to_string(),
            target: target as u32,
        });
    }
    let pattern = HexPattern::parse(f[3])?;
    // The rest of the line is valid; only the offset cannot be represented.
    let offset = match offset {
        Ok(o) => o,
        Err(why) => return Ok(Parsed::Unsupported(why)),
    };
    // ClamAV gives plain patterns to its Boyer-Moore matcher (targets 0 and 1,
    // the latter only with a fixed offset), which wants at least 3 bytes.
    let boyer_moore = match target {
        TargetType::Any => true,
        TargetType::Pe => offset != Offset::Any && offset.shift() == 0,
        _ => false,
    };
    if boyer_moore && pattern.is_plain() && pattern.tokens.len() < 3 {
        return Err(LineError::PlainTooShort(pattern.tokens.len()));
    }
    if f[0].is_empty() {
        return Err(LineError::EmptyName);
    }
    Ok(Parsed::Record(BodySig {
        name: f[0],
        target,
        offset,
        pattern,
    }))
}

/// An ignore-list line: `SigName`, `SigName:MD5-of-line` (`.ign2`) or the old
/// `.ign` form `db:line:SigName`.
pub fn parse_ignore_line(line: &str) -> Result<IgnoreEntry<'_>, LineError> {
    let mut f = [""; 3];
    let n = fields(line, &mut f);
    let (name, md5) = match n {
        1 => (f[0], None),
        2 => (f[0], Some(f[1])),
        3 => (f[2], None),
        _ => {
            return Err(LineError::FieldCount {
                expected: "1 to 3",
                found: n,
            });
        }
    };
    if name.is_empty() {
        return Err(LineError::EmptyName);
    }
    let line_md5 = match md5 {
        None => None,
        Some(h) => match parse_digest(h) {
            Some(d) if d.kind == HashKind::Md5 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(d.as_bytes());
                Some(b)
            }
            _ => return Err(LineError::BadIgnoreMd5(h.to_string())),
        },
    };
    Ok(IgnoreEntry { name, line_md5 })
}

/// The name ClamAV compares against ignore lists: without a trailing
/// `.UNOFFICIAL` or `.{...}` clause (`cli_signorm`).
pub fn normalized_name(name: &str) -> &str {
    if name.len() > 3 && name.ends_with('}') {
        if let Some(i) = name.find(".{") {
            return &name[..i];
        }
    } else if name.len() > 11
        && let Some(stripped) = name.strip_suffix(".UNOFFICIAL")
    {
        return stripped;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::HexErrorKind;

    const MD5: &str = "44d88612fea8a8f36de82e1278abb02f";

    fn rec<T: std::fmt::Debug>(p: Parsed<T>) -> T {
        match p {
            Parsed::Record(r) => r,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn hash_md5_sha1_sha256() {
        let l = format!("{MD5}:68:Eicar");
        let s = rec(parse_hash_line(&l).unwrap());
        assert_eq!(s.digest.kind, HashKind::Md5);
        assert_eq!(s.digest.as_bytes()[0], 0x44);
        assert_eq!(s.size, Some(68));
        assert_eq!(s.name, "Eicar");
        let sha1 = "3395856CE81F2B7382DEE72602F798B642F14140";
        let l = format!("{sha1}:68:E");
        let s = rec(parse_hash_line(&l).unwrap());
        assert_eq!(s.digest.kind, HashKind::Sha1);
        assert_eq!(s.digest.as_bytes()[19], 0x40);
        let sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
        let l = format!("{sha256}:68:E:0:999");
        let s = rec(parse_hash_line(&l).unwrap());
        assert_eq!(s.digest.kind, HashKind::Sha256);
    }

    #[test]
    fn hash_wildcard_size_needs_flevel_73() {
        assert_eq!(
            parse_hash_line(&format!("{MD5}:*:E")),
            Err(LineError::WildcardSizeNeedsFlevel)
        );
        assert_eq!(
            parse_hash_line(&format!("{MD5}:*:E:72")),
            Err(LineError::WildcardSizeNeedsFlevel)
        );
        let l = format!("{MD5}:*:E:73");
        let s = rec(parse_hash_line(&l).unwrap());
        assert_eq!(s.size, None);
    }

    #[test]
    fn hash_flevel_skips() {
        assert_eq!(
            parse_hash_line(&format!("{MD5}:68:E:9999")),
            Ok(Parsed::SkippedFlevel)
        );
        assert_eq!(
            parse_hash_line(&format!("{MD5}:68:E:1:2")),
            Ok(Parsed::SkippedFlevel)
        );
        // Skipped before the other fields are checked, like ClamAV.
        assert_eq!(parse_hash_line("zz:0:E:9999"), Ok(Parsed::SkippedFlevel));
        let at = FUNCTIONALITY_LEVEL;
        assert!(matches!(
            parse_hash_line(&format!("{MD5}:68:E:{at}:{at}")),
            Ok(Parsed::Record(_))
        ));
    }

    #[test]
    fn hash_errors() {
        assert_eq!(parse_hash_line(""), Err(LineError::EmptyLine));
        assert_eq!(
            parse_hash_line(&format!("{MD5}:68")),
            Err(LineError::FieldCount {
                expected: "3 to 5",
                found: 2
            })
        );
        assert_eq!(
            parse_hash_line(&format!("{MD5}:68:E:1:2:3")),
            Err(LineError::FieldCount {
                expected: "3 to 5",
                found: 6
            })
        );
        assert!(matches!(
            parse_hash_line(&format!("{MD5}:0:E")),
            Err(LineError::BadSize(_))
        ));
        assert!(matches!(
            parse_hash_line(&format!("{MD5}:-1:E")),
            Err(LineError::BadSize(_))
        ));
        assert!(matches!(
            parse_hash_line(&format!("{MD5}:4294967295:E")),
            Err(LineError::BadSize(_))
        ));
        assert!(matches!(
            parse_hash_line("44d88612fea8a8f36de82e1278abb02g:68:E"),
            Err(LineError::BadHash(_))
        ));
        assert!(matches!(
            parse_hash_line("44d88612fea8a8f36de82e1278abb02:68:E"),
            Err(LineError::BadHash(_))
        ));
        assert!(matches!(
            parse_hash_line(&format!(" {MD5}:68:E")),
            Err(LineError::BadHash(_))
        ));
        assert_eq!(
            parse_hash_line(&format!("{MD5}:68:")),
            Err(LineError::EmptyName)
        );
        assert!(matches!(
            parse_hash_line(&format!("{MD5}:68:E:abc")),
            Err(LineError::BadFlevel(_))
        ));
        // Empty levels read as 0, as clamscan: an empty MaxFL skips the line.
        assert!(matches!(
            parse_hash_line(&format!("{MD5}:68:E:")),
            Ok(Parsed::Record(_))
        ));
        assert_eq!(
            parse_hash_line(&format!("{MD5}:68:E:0:")),
            Ok(Parsed::SkippedFlevel)
        );
    }

    #[test]
    fn body_line() {
        let s = rec(parse_body_line("Test.Sig:1:EP+10,5:aabbcc??dd").unwrap());
        assert_eq!(s.name, "Test.Sig");
        assert_eq!(s.target, TargetType::Pe);
        assert_eq!(
            s.offset,
            Offset::EntryPoint {
                delta: 10,
                shift: 5
            }
        );
        assert_eq!(s.pattern.to_string(), "aabbcc??dd");
        let s = rec(parse_body_line("T:*:*:aabbcc:1:999").unwrap());
        assert_eq!(s.target, TargetType::Any);
    }

    #[test]
    fn body_line_skips() {
        assert_eq!(
            parse_body_line("T:0:*:aabbcc:9999"),
            Ok(Parsed::SkippedFlevel)
        );
        assert_eq!(
            parse_body_line("T:0:*:aabbcc:1:2"),
            Ok(Parsed::SkippedFlevel)
        );
        assert_eq!(
            parse_body_line("T:15:*:aabbcc"),
            Ok(Parsed::Unsupported("target type above 14"))
        );
        assert!(matches!(
            parse_body_line("T:1:VI:aabbcc"),
            Ok(Parsed::Record(BodySig {
                offset: Offset::VersionInfo,
                ..
            }))
        ));
        assert!(matches!(
            parse_body_line("T:0:$1$:aabbcc"),
            Ok(Parsed::Unsupported(_))
        ));
        assert!(matches!(
            parse_body_line("T:9:SE1,5:aabbcc"),
            Ok(Parsed::Unsupported(_))
        ));
    }

    #[test]
    fn body_line_errors() {
        assert_eq!(
            parse_body_line("T:0:*"),
            Err(LineError::FieldCount {
                expected: "4 to 6",
                found: 3
            })
        );
        assert_eq!(
            parse_body_line("T:0:*:aabbcc:1:2:3"),
            Err(LineError::FieldCount {
                expected: "4 to 6",
                found: 7
            })
        );
        assert!(matches!(
            parse_body_line("T:x:*:aabbcc"),
            Err(LineError::BadTarget(_))
        ));
        assert!(matches!(
            parse_body_line("T:0:*:aabbcc:x"),
            Err(LineError::BadFlevel(_))
        ));
        assert!(matches!(
            parse_body_line("T:0:-5:aabbcc"),
            Err(LineError::Offset(_))
        ));
        assert!(matches!(
            parse_body_line("T:0:*,5:aabbcc"),
            Err(LineError::Offset(_))
        ));
        assert!(matches!(
            parse_body_line("T:0:VI:aabbcc"),
            Err(LineError::OffsetNeedsExecutable { .. })
        ));
        // An unsupported offset does not hide a malformed pattern.
        assert!(matches!(
            parse_body_line("T:1:VI:aabbc"),
            Err(LineError::Hex(_))
        ));
        assert_eq!(
            parse_body_line("T:0:EP+10:aabbcc"),
            Err(LineError::OffsetNeedsExecutable {
                offset: "EP+10".into(),
                target: 0
            })
        );
        assert_eq!(
            parse_body_line("T:0:*:aabb"),
            Err(LineError::PlainTooShort(2))
        );
        // PE with a floating offset goes to Aho-Corasick, where two bytes are enough.
        assert!(matches!(
            parse_body_line("T:1:*:aabb"),
            Ok(Parsed::Record(_))
        ));
        assert_eq!(parse_body_line(":0:*:aabbcc"), Err(LineError::EmptyName));
        let e = parse_body_line("T:0:*:aabbc").unwrap_err();
        assert_eq!(
            e,
            LineError::Hex(HexError {
                column: 5,
                kind: HexErrorKind::OddNibbles
            })
        );
        assert_eq!(
            e.to_string(),
            "malformed hex signature: odd number of hex digits at column 5"
        );
    }

    #[test]
    fn ignore_lines() {
        assert_eq!(
            parse_ignore_line("Eicar"),
            Ok(IgnoreEntry {
                name: "Eicar",
                line_md5: None
            })
        );
        let e = parse_ignore_line("Eicar:bc356bae4c42f19a3de16e333ba3569c").unwrap();
        assert_eq!(e.name, "Eicar");
        assert_eq!(e.line_md5.unwrap()[0], 0xbc);
        assert_eq!(
            parse_ignore_line("daily.ndb:12:Eicar"),
            Ok(IgnoreEntry {
                name: "Eicar",
                line_md5: None
            })
        );
        assert!(matches!(
            parse_ignore_line("a:b:c:d"),
            Err(LineError::FieldCount { .. })
        ));
        assert!(matches!(
            parse_ignore_line("Eicar:1234"),
            Err(LineError::BadIgnoreMd5(_))
        ));
        assert_eq!(parse_ignore_line(""), Err(LineError::EmptyName));
    }

    #[test]
    fn name_normalization() {
        assert_eq!(normalized_name("Eicar.UNOFFICIAL"), "Eicar");
        assert_eq!(normalized_name("Eicar.{HEX}"), "Eicar");
        assert_eq!(normalized_name("Eicar"), "Eicar");
    }
}
