//! `.cvd` / `.cld` / `.cud` containers: a 512-byte text header, then a tar
//! archive (gzip-compressed, except in most `.cld` files) of database files.
//!
//! Trust works in two layers, as in ClamAV:
//! - the header carries the MD5 of everything after it and an RSA signature of
//!   that MD5 (`cli_versig`); checked for `.cvd` files only, since a `.cld` is
//!   a `.cvd` patched locally by incremental updates and can no longer match;
//! - the archive's `.info` file lists every database file with its size and
//!   SHA-256, and ends with an RSA-PSS-like signature of its own lines
//!   (`cli_versig2`); that one also protects `.cld` files.
//!
//! The verification functions are pure and take the public key, so tests can
//! use a key of their own; [`RsaKey::clamav_cvd`] and [`RsaKey::clamav_info`]
//! are ClamAV's published keys.

use std::io::Read;

use md5::Digest as _;
use num_bigint::BigUint;

/// Size of the text header in front of the archive.
pub const HEADER_LEN: usize = 512;

/// The fields of a CVD header:
/// `ClamAV-VDB:build time:version:sigs:flevel:MD5:dsig:builder:stime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvdHeader {
    /// Human-readable build time, e.g. `14 May 2010 09-57 -0400`.
    pub build_time: String,
    pub version: u32,
    /// Number of signatures the database claims to hold.
    pub sigs: u32,
    /// Minimum functionality level the database needs.
    pub flevel: u32,
    /// MD5 of the archive after the header, lower-case hex (`X` in `.info` copies).
    pub md5: String,
    /// Digital signature of the MD5 in ClamAV's base-64 digits.
    pub dsig: String,
    pub builder: String,
    /// Build time in seconds since the Unix epoch.
    pub stime: u64,
}

/// What is wrong with a container.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CvdError {
    #[error("file is smaller than the 512-byte CVD header")]
    Truncated,
    #[error("not a CVD header (does not start with \"ClamAV-VDB:\")")]
    NotCvd,
    #[error("CVD header: {0}")]
    Header(String),
    #[error("MD5 mismatch: header says {expected}, archive has {actual}")]
    Md5Mismatch { expected: String, actual: String },
    #[error("digital signature does not verify: {0}")]
    BadSignature(&'static str),
    #[error("cannot decompress archive: {0}")]
    Gzip(std::io::Error),
    #[error("malformed archive: {0}")]
    Tar(String),
    #[error("archive holds more than {0} bytes")]
    TooLarge(u64),
    #[error("archive holds more than {0} files")]
    TooManyEntries(usize),
    #[error("{0}")]
    Info(String),
}

impl CvdHeader {
    /// Parses a header: the first 512 bytes of a container, or the first line
    /// of its `.info` file. Trailing padding (spaces, NULs, line ends) is ignored.
    pub fn parse(bytes: &[u8]) -> Result<CvdHeader, CvdError> {
        let end = bytes
            .iter()
            .rposition(|&b| !matches!(b, b' ' | b'\0' | b'\n' | b'\r' | b'\t'))
            .map_or(0, |i| i + 1);
        let text = std::str::from_utf8(&bytes[..end])
            .map_err(|_| CvdError::Header("not valid UTF-8".into()))?;
        let mut f = text.split(':');
        if f.next() != Some("ClamAV-VDB") {
            return Err(CvdError::NotCvd);
        }
        let mut field = |what: &str| {
            f.next()
                .ok_or_else(|| CvdError::Header(format!("missing {what}")))
        };
        let build_time = field("build time")?.to_string();
        let num = |what: &str, s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| CvdError::Header(format!("{what} {s:?} is not a number")))
        };
        let version = num("version", field("version")?)?;
        let sigs = num("signature count", field("signature count")?)?;
        let flevel = num("functionality level", field("functionality level")?)?;
        let md5 = field("MD5")?.to_string();
        let dsig = field("digital signature")?.to_string();
        let builder = field("builder")?.to_string();
        let stime_text = field("build time in seconds")?;
        let stime = stime_text
            .trim()
            .parse::<u64>()
            .map_err(|_| CvdError::Header(format!("build time {stime_text:?} is not a number")))?;
        Ok(CvdHeader {
            build_time,
            version,
            sigs,
            flevel,
            md5,
            dsig,
            builder,
            stime,
        })
    }

    /// Reads the header at the start of a container.
    pub fn from_container(data: &[u8]) -> Result<CvdHeader, CvdError> {
        let head = data.get(..HEADER_LEN).ok_or(CvdError::Truncated)?;
        CvdHeader::parse(head)
    }
}

/// An RSA public key as ClamAV stores them: decimal modulus and exponent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    pub n: BigUint,
    pub e: BigUint,
}

/// ClamAV's key for the header signature (`CLI_NSTR`, `CLI_ESTR` in dsig.c).
const CLAMAV_CVD_N: &str = "118640995551645342603070001658453189751527774412027743746599405743243142607464144767361060640655844749760788890022283424922762488917565551002467771109669598189410434699034532232228621591089508178591428456220796841621637175567590476666928698770143328137383952820383197532047771780196576957695822641224262693037";
const CLAMAV_CVD_E: &str = "100001027";
/// ClamAV's key for `.info` signatures (`INFO_NSTR`, `INFO_ESTR` in readdb.c).
const CLAMAV_INFO_N: &str = "11088894983048545473659556106627194923928941791795047620591658697413581043322715912172496806525381055880964520618400224333320534660299233983755341740679502866829909679955734391392668378361221524205396631090105151641270857277080310734320951653700508941717419168723942507890702904702707587451621691050754307850383399865346487203798464178537392211402786481359824461197231102895415093770394216666324484593935762408468516826633192140826667923494822045805347809932848454845886971706424360558667862775876072059437703365380209101697738577515476935085469455279994113145977994084618328482151013142393373316337519977244732747977";
const CLAMAV_INFO_E: &str = "100002049";

impl RsaKey {
    /// A key from decimal strings; `None` if either is not a decimal number.
    pub fn from_decimal(n: &str, e: &str) -> Option<RsaKey> {
        Some(RsaKey {
            n: BigUint::parse_bytes(n.as_bytes(), 10)?,
            e: BigUint::parse_bytes(e.as_bytes(), 10)?,
        })
    }

    /// The key that signs official `.cvd` headers.
    pub fn clamav_cvd() -> RsaKey {
        RsaKey {
            n: BigUint::parse_bytes(CLAMAV_CVD_N.as_bytes(), 10).unwrap_or_default(),
            e: BigUint::parse_bytes(CLAMAV_CVD_E.as_bytes(), 10).unwrap_or_default(),
        }
    }

    /// The key that signs official `.info` files.
    pub fn clamav_info() -> RsaKey {
        RsaKey {
            n: BigUint::parse_bytes(CLAMAV_INFO_N.as_bytes(), 10).unwrap_or_default(),
            e: BigUint::parse_bytes(CLAMAV_INFO_E.as_bytes(), 10).unwrap_or_default(),
        }
    }
}

/// ClamAV's signature alphabet: digit value = index.
const DSIG_ALPHABET: &[u8; 64] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";

fn dsig_digit(c: u8) -> Option<u8> {
    DSIG_ALPHABET
        .iter()
        .position(|&a| a == c)
        .and_then(|p| u8::try_from(p).ok())
}

/// The number a signature string stands for: 6-bit digits, least significant first.
pub fn dsig_to_number(sig: &str) -> Option<BigUint> {
    // Little-endian base 64: pack the digits into bits, low digit first.
    let mut bits = vec![0u8; (sig.len() * 6).div_ceil(8) + 1];
    for (i, c) in sig.bytes().enumerate() {
        let d = u16::from(dsig_digit(c)?);
        let bit = i * 6;
        let (byte, shift) = (bit / 8, bit % 8);
        let v = d << shift;
        bits[byte] |= (v & 0xff) as u8;
        bits[byte + 1] |= (v >> 8) as u8;
    }
    Some(BigUint::from_bytes_le(&bits))
}

/// The inverse of [`dsig_to_number`] (for building test containers).
pub fn number_to_dsig(mut n: BigUint) -> String {
    let mut out = String::new();
    let zero = BigUint::default();
    while n != zero {
        let d = (&n & BigUint::from(63u8))
            .to_u32_digits()
            .first()
            .copied()
            .unwrap_or(0);
        out.push(char::from(DSIG_ALPHABET[d as usize]));
        n >>= 6;
    }
    out
}

/// Decodes a signature with `key` into `len` big-endian bytes (`cli_decodesig`).
fn decode_dsig(sig: &str, len: usize, key: &RsaKey) -> Result<Vec<u8>, CvdError> {
    let c = dsig_to_number(sig).ok_or(CvdError::BadSignature("invalid character"))?;
    if key.n == BigUint::default() {
        return Err(CvdError::BadSignature("empty key"));
    }
    let p = c.modpow(&key.e, &key.n).to_bytes_be();
    if p.len() > len {
        return Err(CvdError::BadSignature("decoded value too large"));
    }
    let mut out = vec![0u8; len - p.len()];
    out.extend_from_slice(&p);
    Ok(out)
}

fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    s
}

/// Checks a header signature: `dsig` decoded with `key` must be `md5`.
pub fn verify_md5_signature(md5: &[u8; 16], dsig: &str, key: &RsaKey) -> Result<(), CvdError> {
    if dsig.len() <= 1 {
        return Err(CvdError::BadSignature("no digital signature in header"));
    }
    let plain = decode_dsig(dsig, 16, key)?;
    if plain != md5 {
        return Err(CvdError::BadSignature("signature does not match the MD5"));
    }
    Ok(())
}

/// Verifies a whole `.cvd`: the MD5 of everything after the header must be the
/// header's MD5 (when the header has one), and the signature must decode to it.
pub fn verify_cvd(data: &[u8], header: &CvdHeader, key: &RsaKey) -> Result<(), CvdError> {
    let body = data.get(HEADER_LEN..).ok_or(CvdError::Truncated)?;
    let md5: [u8; 16] = md5::Md5::digest(body).into();
    let actual = to_hex(&md5);
    // ClamAV compares strings and skips the check when the field is not 32 long;
    // the signature check below still ties the archive to the key.
    if header.md5.len() == 32 && header.md5 != actual {
        return Err(CvdError::Md5Mismatch {
            expected: header.md5.clone(),
            actual,
        });
    }
    verify_md5_signature(&md5, &header.dsig, key)
}

/// Checks an `.info` signature (`cli_versig2`): an EMSA-PSS-style encoding of
/// `sha256` with SHA-256, MGF1 and a 32-byte salt, in a 2048-bit block.
pub fn verify_pss_signature(sha256: &[u8; 32], dsig: &str, key: &RsaKey) -> Result<(), CvdError> {
    use sha2::{Digest, Sha256};
    const PAD_LEN: usize = 256;
    const HASH_LEN: usize = 32;
    const BLK_LEN: usize = PAD_LEN - HASH_LEN - 1;
    const SALT_LEN: usize = 32;
    let decoded = decode_dsig(dsig, PAD_LEN, key)?;
    if decoded[PAD_LEN - 1] != 0xbc {
        return Err(CvdError::BadSignature("bad trailer byte"));
    }
    let mask = &decoded[..BLK_LEN];
    let digest2 = &decoded[BLK_LEN..BLK_LEN + HASH_LEN];
    let mut data = [0u8; BLK_LEN];
    for (i, chunk) in data.chunks_mut(HASH_LEN).enumerate() {
        let counter = u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes();
        let d = Sha256::new()
            .chain_update(digest2)
            .chain_update(counter)
            .finalize();
        chunk.copy_from_slice(&d[..chunk.len()]);
    }
    for (d, m) in data.iter_mut().zip(mask) {
        *d ^= m;
    }
    data[0] &= 0x7f;
    let Some(one) = data.iter().position(|&b| b == 0x01) else {
        return Err(CvdError::BadSignature("no salt separator"));
    };
    let salt = &data[one + 1..];
    if salt.len() != SALT_LEN {
        return Err(CvdError::BadSignature("wrong salt length"));
    }
    let digest1 = Sha256::new()
        .chain_update([0u8; 8])
        .chain_update(sha256)
        .chain_update(salt)
        .finalize();
    if digest1.as_slice() != digest2 {
        return Err(CvdError::BadSignature(
            "signature does not match the .info contents",
        ));
    }
    Ok(())
}

/// The `.info` file inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoFile {
    pub header: CvdHeader,
    /// `name:size:sha256` lines.
    pub entries: Vec<InfoEntry>,
    /// Whether a `DSIG:` line was present and verified.
    pub signed: bool,
}

/// One file listed in an `.info` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoEntry {
    pub name: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

impl InfoFile {
    /// Parses an `.info` file (`cli_loadinfo`). With a key, its `DSIG:` line
    /// must be present and verify against the SHA-256 of the lines before it.
    pub fn parse(data: &[u8], key: Option<&RsaKey>) -> Result<InfoFile, CvdError> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let mut header = None;
        let mut entries = Vec::new();
        let mut signed = false;
        let mut pieces = data.split(|&b| b == b'\n').enumerate().peekable();
        while let Some((no, raw)) = pieces.next() {
            let line_no = no + 1;
            if raw.is_empty() && pieces.peek().is_none() {
                break; // after the final newline
            }
            if let Some(sig) = raw.strip_prefix(b"DSIG:") {
                if let Some(key) = key {
                    let sig = std::str::from_utf8(sig)
                        .map_err(|_| CvdError::Info(".info: DSIG is not ASCII".into()))?;
                    let sig = sig.trim_end_matches(['\r', '\n']);
                    let sha: [u8; 32] = hasher.clone().finalize().into();
                    verify_pss_signature(&sha, sig, key)?;
                    signed = true;
                }
                break;
            }
            hasher.update(raw);
            hasher.update(b"\n");
            let line = std::str::from_utf8(raw)
                .map_err(|_| CvdError::Info(format!(".info line {line_no}: not valid UTF-8")))?
                .trim_end_matches(['\r', '\n']);
            if line.starts_with("ClamAV-VDB:") {
                if header.is_some() {
                    return Err(CvdError::Info(format!(
                        ".info line {line_no}: second header"
                    )));
                }
                header = Some(CvdHeader::parse(line.as_bytes())?);
                continue;
            }
            if header.is_none() {
                return Err(CvdError::Info(format!(
                    ".info line {line_no}: expected the ClamAV-VDB header first"
                )));
            }
            let f: Vec<&str> = line.split(':').collect();
            let [name, size, sha] = f.as_slice() else {
                return Err(CvdError::Info(format!(
                    ".info line {line_no}: expected name:size:sha256"
                )));
            };
            let size = if !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) {
                size.parse::<u64>().ok()
            } else {
                None
            }
            .ok_or_else(|| CvdError::Info(format!(".info line {line_no}: invalid size")))?;
            let sha256 = crate::line::parse_digest(sha)
                .filter(|d| d.kind == crate::record::HashKind::Sha256)
                .and_then(|d| <[u8; 32]>::try_from(d.as_bytes()).ok())
                .ok_or_else(|| {
                    CvdError::Info(format!(".info line {line_no}: malformed SHA-256"))
                })?;
            entries.push(InfoEntry {
                name: (*name).to_string(),
                size,
                sha256,
            });
        }
        if key.is_some() && !signed {
            return Err(CvdError::Info(
                ".info has no digital signature (DSIG line)".into(),
            ));
        }
        let header = header.ok_or_else(|| CvdError::Info(".info has no header".into()))?;
        Ok(InfoFile {
            header,
            entries,
            signed,
        })
    }

    /// Whether the `.info` header agrees with the container's (`Corrupted CVD header`).
    pub fn matches(&self, h: &CvdHeader) -> bool {
        self.header.version == h.version
            && self.header.sigs == h.sigs
            && self.header.flevel == h.flevel
            && self.header.stime == h.stime
    }
}

/// Bounds on what a container may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Total bytes of file contents.
    pub max_total: u64,
    /// Number of files.
    pub max_entries: usize,
}

impl Default for ArchiveLimits {
    fn default() -> ArchiveLimits {
        ArchiveLimits {
            max_total: 1 << 30,
            max_entries: 10_000,
        }
    }
}

/// Reads full 512-byte blocks; `Ok(false)` at a clean end of input.
fn read_block(r: &mut dyn Read, block: &mut [u8; 512]) -> Result<bool, CvdError> {
    let mut got = 0;
    while got < block.len() {
        match r.read(&mut block[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CvdError::Gzip(e)),
        }
    }
    match got {
        0 => Ok(false),
        512 => Ok(true),
        _ => Err(CvdError::Tar("incomplete 512-byte block".into())),
    }
}

/// Calls `f(name, contents)` for each file in the archive after the header,
/// in archive order, holding one file in memory at a time. Gzip is detected
/// by its magic bytes. The tar rules are ClamAV's: plain files only, no `/`
/// in names, an all-zero block or the end of input ends the archive.
pub fn for_each_entry<E: From<CvdError>>(
    data: &[u8],
    limits: ArchiveLimits,
    mut f: impl FnMut(&str, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let body = data.get(HEADER_LEN..).ok_or(CvdError::Truncated)?;
    let mut reader: Box<dyn Read + '_> = if body.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let mut block = [0u8; 512];
    let mut total: u64 = 0;
    let mut count = 0usize;
    let mut contents = Vec::new();
    loop {
        if !read_block(&mut reader, &mut block)? || block[0] == 0 {
            return Ok(());
        }
        count += 1;
        if count > limits.max_entries {
            return Err(CvdError::TooManyEntries(limits.max_entries).into());
        }
        let name_end = block[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = std::str::from_utf8(&block[..name_end])
            .map_err(|_| CvdError::Tar("file name is not valid UTF-8".into()))?
            .to_string();
        if name.contains('/') {
            return Err(
                CvdError::Tar(format!("{name:?}: slash separators are not allowed")).into(),
            );
        }
        match block[156] {
            b'0' | 0 => {}
            b'5' => {
                return Err(CvdError::Tar(format!("{name:?}: directories are not allowed")).into());
            }
            t => {
                return Err(CvdError::Tar(format!(
                    "{name:?}: unsupported entry type {:?}",
                    char::from(t)
                ))
                .into());
            }
        }
        let size = parse_octal(&block[124..136])
            .ok_or_else(|| CvdError::Tar(format!("{name:?}: invalid size in header")))?;
        total = total.saturating_add(size);
        if total > limits.max_total {
            return Err(CvdError::TooLarge(limits.max_total).into());
        }
        contents.clear();
        let padded = size.div_ceil(512) * 512;
        let got = (&mut reader)
            .take(padded)
            .read_to_end(&mut contents)
            .map_err(CvdError::Gzip)?;
        if (got as u64) < size {
            return Err(CvdError::Tar(format!("{name:?}: truncated contents")).into());
        }
        let len = usize::try_from(size).map_err(|_| CvdError::TooLarge(limits.max_total))?;
        f(&name, &contents[..len])?;
    }
}

/// A tar size field: octal digits, optionally surrounded by spaces or NULs.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let s = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| (b'0'..=b'7').contains(&b));
    let mut v: u64 = 0;
    let mut any = false;
    for &b in s {
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
        any = true;
    }
    any.then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsig_digits_round_trip() {
        let n = BigUint::parse_bytes(b"123456789012345678901234567890", 10).unwrap();
        assert_eq!(dsig_to_number(&number_to_dsig(n.clone())), Some(n));
        // Least significant digit first: "b" is 1, "ab" is 64.
        assert_eq!(dsig_to_number("b"), Some(BigUint::from(1u8)));
        assert_eq!(dsig_to_number("ab"), Some(BigUint::from(64u8)));
        assert_eq!(dsig_to_number("a!"), None);
    }

    #[test]
    fn header_fields() {
        let mut head = b"ClamAV-VDB:14 May 2010 09-57 -0400:19:3:51:f341ae79c7e73561b89d4e0b8f6a79c0:sig:nervous:1273845430".to_vec();
        head.resize(HEADER_LEN, b' ');
        let h = CvdHeader::parse(&head).unwrap();
        assert_eq!(h.build_time, "14 May 2010 09-57 -0400");
        assert_eq!(
            (h.version, h.sigs, h.flevel, h.stime),
            (19, 3, 51, 1273845430)
        );
        assert_eq!(h.md5, "f341ae79c7e73561b89d4e0b8f6a79c0");
        assert_eq!(h.builder, "nervous");
        assert!(matches!(
            CvdHeader::parse(b"ClamAV-VDX:1:2"),
            Err(CvdError::NotCvd)
        ));
        assert!(matches!(
            CvdHeader::parse(b"ClamAV-VDB:t:x:1:1:m:d:b:1"),
            Err(CvdError::Header(_))
        ));
        assert!(matches!(
            CvdHeader::parse(b"ClamAV-VDB:t:1:1:1:m:d:b"),
            Err(CvdError::Header(_))
        ));
        assert!(matches!(
            CvdHeader::from_container(b"short"),
            Err(CvdError::Truncated)
        ));
    }

    #[test]
    fn octal_sizes() {
        assert_eq!(parse_octal(b"00000000644\0"), Some(0o644));
        assert_eq!(parse_octal(b"  17 \0\0\0\0\0\0\0"), Some(0o17));
        assert_eq!(parse_octal(b"\0\0\0"), None);
        assert_eq!(parse_octal(b"77777777777777777777777"), None);
    }

    #[test]
    fn clamav_keys_parse() {
        assert_eq!(RsaKey::clamav_cvd().n.bits(), 1024);
        assert_eq!(RsaKey::clamav_info().n.bits(), 2047);
    }
}
