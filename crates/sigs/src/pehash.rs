//! One line of a PE hash database: `.mdb`/`.msb` section hashes and `.imp`
//! import-table hashes.
//!
//! ClamAV reads both with the loader of `.hdb` files (`cli_loadhash`), with
//! two differences: in `.mdb`/`.msb` lines the size comes *before* the hash
//! (`PESectionSize:PESectionHash:MalwareName`), and `.imp` lines
//! (`PEImportTableHash:PEImportTableSize:MalwareName`) may use a `*` size
//! without a functionality level, since the format is younger than the
//! wildcard. The hash kind (MD5, SHA1, SHA256) is told by its length in both.
//! A section signature's size is the section's raw size as ClamAV computes
//! it; an import signature's size is the length of the text ClamAV hashes.

use crate::line::{LineError, Parsed, parse_digest};
use crate::record::{FUNCTIONALITY_LEVEL, HashSig};

/// Which PE hash database a line comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeHashKind {
    /// `.mdb`/`.msb`: `Size:Hash:Name[:MinFL[:MaxFL]]`.
    Section,
    /// `.imp`: `Hash:Size:Name[:MinFL[:MaxFL]]`.
    Import,
}

fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A functionality level. ClamAV reads it with `atoi`, so an empty field
/// (a trailing `:`) is 0; other text that is not a number is refused, as in
/// `.hdb` lines.
fn flevel(s: &str) -> Result<u64, LineError> {
    if s.is_empty() {
        return Ok(0);
    }
    decimal(s).ok_or_else(|| LineError::BadFlevel(s.to_string()))
}

/// Parses one `.mdb`/`.msb` or `.imp` line, checked in ClamAV's order:
/// field count, functionality level, size, name, hash.
pub fn parse_pe_hash_line(line: &str, kind: PeHashKind) -> Result<Parsed<HashSig<'_>>, LineError> {
    if line.is_empty() {
        return Err(LineError::EmptyLine);
    }
    // Split without allocating: official .mdb files have millions of lines.
    let mut f = [""; 6];
    let mut n = 0;
    for (slot, field) in f.iter_mut().zip(line.splitn(6, ':')) {
        *slot = field;
        n += 1;
    }
    let f = &f[..n];
    if !(3..=5).contains(&n) {
        return Err(LineError::FieldCount {
            expected: "3 to 5",
            found: n,
        });
    }
    let fl = u64::from(FUNCTIONALITY_LEVEL);
    let mut min_fl = 0;
    if let Some(min) = f.get(3) {
        min_fl = flevel(min)?;
        if min_fl > fl {
            return Ok(Parsed::SkippedFlevel);
        }
        if let Some(max) = f.get(4)
            && flevel(max)? < fl
        {
            return Ok(Parsed::SkippedFlevel);
        }
    }
    let (size_field, hash_field) = match kind {
        PeHashKind::Section => (f[0], f[1]),
        PeHashKind::Import => (f[1], f[0]),
    };
    let size = if size_field == "*" {
        if kind == PeHashKind::Section && min_fl < 73 {
            return Err(LineError::WildcardSizeNeedsFlevel);
        }
        None
    } else {
        match decimal(size_field) {
            Some(s) if s > 0 && s < 0xffff_ffff => Some(s),
            _ => return Err(LineError::BadSize(size_field.to_string())),
        }
    };
    if f[2].is_empty() {
        return Err(LineError::EmptyName);
    }
    let Some(digest) = parse_digest(hash_field) else {
        return Err(LineError::BadHash(hash_field.to_string()));
    };
    Ok(Parsed::Record(HashSig {
        digest,
        size,
        name: f[2],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::HashKind;

    const MD5: &str = "83620eda4d054fe35c19faaa89d515f3";

    fn rec(line: &str, kind: PeHashKind) -> HashSig<'_> {
        match parse_pe_hash_line(line, kind) {
            Ok(Parsed::Record(s)) => s,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn section_lines_put_the_size_first() {
        let line = format!("83456:{MD5}:Sect.Name");
        let s = rec(&line, PeHashKind::Section);
        assert_eq!(s.size, Some(83456));
        assert_eq!(s.digest.kind, HashKind::Md5);
        assert_eq!(s.name, "Sect.Name");
        let sha = "a".repeat(64);
        let line = format!("*:{sha}:Any:73");
        let s = rec(&line, PeHashKind::Section);
        assert_eq!((s.size, s.digest.kind), (None, HashKind::Sha256));
        assert_eq!(
            parse_pe_hash_line(&format!("*:{MD5}:Any"), PeHashKind::Section),
            Err(LineError::WildcardSizeNeedsFlevel)
        );
        // The hdb order is an error here: the hash is not a size.
        assert!(matches!(
            parse_pe_hash_line(&format!("{MD5}:83456:Name"), PeHashKind::Section),
            Err(LineError::BadSize(_))
        ));
    }

    #[test]
    fn import_lines_put_the_hash_first_and_allow_any_size() {
        let s = rec(
            "98c88d882f01a3f6ac1e5f7dfd761624:39:clam.exe",
            PeHashKind::Import,
        );
        assert_eq!(s.size, Some(39));
        let line = format!("{MD5}:*:Wild");
        let s = rec(&line, PeHashKind::Import);
        assert_eq!(s.size, None);
    }

    #[test]
    fn flevels_and_errors() {
        assert_eq!(
            parse_pe_hash_line(&format!("10:{MD5}:N:9999"), PeHashKind::Section),
            Ok(Parsed::SkippedFlevel)
        );
        assert_eq!(
            parse_pe_hash_line(&format!("{MD5}:10:N:1:2"), PeHashKind::Import),
            Ok(Parsed::SkippedFlevel)
        );
        assert!(matches!(
            parse_pe_hash_line(&format!("10:{MD5}:N:1:2:3"), PeHashKind::Section),
            Err(LineError::FieldCount { found: 6, .. })
        ));
        assert!(matches!(
            parse_pe_hash_line("10:abc:N", PeHashKind::Section),
            Err(LineError::BadHash(_))
        ));
        assert!(matches!(
            parse_pe_hash_line(&format!("0:{MD5}:N"), PeHashKind::Section),
            Err(LineError::BadSize(_))
        ));
        assert_eq!(
            parse_pe_hash_line(&format!("10:{MD5}:"), PeHashKind::Section),
            Err(LineError::EmptyName)
        );
        assert_eq!(
            parse_pe_hash_line("", PeHashKind::Import),
            Err(LineError::EmptyLine)
        );
    }
}
