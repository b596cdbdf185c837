//! Typed signature records, as the parsers hand them to a [`SignatureSink`](crate::SignatureSink).
//!
//! Records borrow their names from the line they were parsed from, so loading a
//! database of millions of hashes allocates nothing per line: the sink copies what
//! it keeps into its own compact form.

use crate::hex::HexPattern;
use crate::offset::Offset;

/// The functionality level aether implements; signatures whose `MinFL` is above it
/// or whose `MaxFL` is below it are skipped (and counted), as ClamAV does.
/// This is ClamAV 1.4.6's level (216: `Engine:216-216` loads in Debian's
/// clamscan 1.4.6, `Engine:217-255` does not), the release whose databases
/// aether is tested against.
pub const FUNCTIONALITY_LEVEL: u32 = 216;

/// Which digest a hash signature holds; told apart by the hex string's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashKind {
    Md5,
    Sha1,
    Sha256,
}

// `len` is the digest length; a kind is never "empty".
#[allow(clippy::len_without_is_empty)]
impl HashKind {
    /// Digest length in bytes.
    pub const fn len(self) -> usize {
        match self {
            HashKind::Md5 => 16,
            HashKind::Sha1 => 20,
            HashKind::Sha256 => 32,
        }
    }

    /// Kind for a digest of `len` bytes.
    pub const fn from_len(len: usize) -> Option<HashKind> {
        match len {
            16 => Some(HashKind::Md5),
            20 => Some(HashKind::Sha1),
            32 => Some(HashKind::Sha256),
            _ => None,
        }
    }
}

/// A digest of up to 32 bytes, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    pub kind: HashKind,
    bytes: [u8; 32],
}

impl Digest {
    /// `bytes` must be exactly `kind.len()` long.
    pub fn new(kind: HashKind, bytes: &[u8]) -> Option<Digest> {
        if bytes.len() != kind.len() {
            return None;
        }
        let mut b = [0u8; 32];
        b[..bytes.len()].copy_from_slice(bytes);
        Some(Digest { kind, bytes: b })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.kind.len()]
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}:", self.kind)?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A whole-file hash signature (`.hdb`, `.hsb`) or allow-list entry (`.fp`, `.sfp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashSig<'a> {
    pub digest: Digest,
    /// `None` for `*` (any size; needs functionality level 73 in ClamAV).
    pub size: Option<u64>,
    pub name: &'a str,
}

/// ClamAV's target types (the second field of an `.ndb` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum TargetType {
    #[default]
    Any = 0,
    Pe = 1,
    Ole2 = 2,
    Html = 3,
    Mail = 4,
    Graphics = 5,
    Elf = 6,
    Ascii = 7,
    Unused8 = 8,
    MachO = 9,
    Pdf = 10,
    Flash = 11,
    Java = 12,
    Internal13 = 13,
    Internal14 = 14,
}

impl TargetType {
    pub fn from_number(n: u32) -> Option<TargetType> {
        use TargetType::*;
        Some(match n {
            0 => Any,
            1 => Pe,
            2 => Ole2,
            3 => Html,
            4 => Mail,
            5 => Graphics,
            6 => Elf,
            7 => Ascii,
            8 => Unused8,
            9 => MachO,
            10 => Pdf,
            11 => Flash,
            12 => Java,
            13 => Internal13,
            14 => Internal14,
            _ => return None,
        })
    }
}

/// An extended (`.ndb`) body signature: `Name:TargetType:Offset:HexSignature[:MinFL[:MaxFL]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodySig<'a> {
    pub name: &'a str,
    pub target: TargetType,
    pub offset: Offset,
    pub pattern: HexPattern,
}
