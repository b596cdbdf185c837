//! File type recognition, enough to apply `.ndb` target types.
//!
//! A later stage brings ClamAV's full magic table (`daily.ftm`); this recognizer
//! knows executables and text, which is what target types 1, 3, 6, 7 and 9 need.

use aether_sigs::TargetType;

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
    /// ClamAV's name for the type (`CL_TYPE_MSEXE`).
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

    /// Bit `t` is set when signatures of target type `t` apply to this type.
    pub(crate) fn target_mask(self) -> u32 {
        let bit = |t: TargetType| 1u32 << t as u32;
        bit(TargetType::Any)
            | match self {
                FileType::BinaryData => 0,
                FileType::Pe => bit(TargetType::Pe),
                FileType::Elf => bit(TargetType::Elf),
                FileType::MachO => bit(TargetType::MachO),
                FileType::Text => bit(TargetType::Ascii),
                FileType::Html => bit(TargetType::Html) | bit(TargetType::Ascii),
            }
    }
}

/// Recognizes a file from its first bytes (up to 512).
pub fn detect(head: &[u8]) -> FileType {
    match head {
        [b'M', b'Z', ..] => FileType::Pe,
        [0x7f, b'E', b'L', b'F', ..] => FileType::Elf,
        [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..] | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..] => {
            FileType::MachO
        }
        // Universal binaries share 0xcafebabe with Java classes; a Mach-O fat
        // header holds a small architecture count where a class file holds its
        // version (45 and up).
        [0xca, 0xfe, 0xba, 0xbe, a, b, c, d, ..] if u32::from_be_bytes([*a, *b, *c, *d]) < 20 => {
            FileType::MachO
        }
        _ if is_text(head) => {
            if looks_like_html(head) {
                FileType::Html
            } else {
                FileType::Text
            }
        }
        _ => FileType::BinaryData,
    }
}

/// Printable ASCII, whitespace and UTF-8 sequences, with no NUL.
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte character cut at the end of the head is still text.
        Err(e) => e.error_len().is_none(),
    };
    valid
        && head
            .iter()
            .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
}

fn looks_like_html(head: &[u8]) -> bool {
    const TAGS: &[&[u8]] = &[
        b"<html",
        b"<!doctype html",
        b"<head",
        b"<body",
        b"<script",
        b"<iframe",
    ];
    let lower: Vec<u8> = head.iter().map(|b| b.to_ascii_lowercase()).collect();
    TAGS.iter()
        .any(|t| memchr::memmem::find(&lower, t).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_executables_and_text() {
        assert_eq!(detect(b"MZ\x90\x00"), FileType::Pe);
        assert_eq!(detect(b"\x7fELF\x02\x01"), FileType::Elf);
        assert_eq!(
            detect(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]),
            FileType::MachO
        );
        assert_eq!(
            detect(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2]),
            FileType::MachO
        );
        assert_eq!(
            detect(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]),
            FileType::BinaryData
        );
        assert_eq!(detect(b"hello world\n"), FileType::Text);
        assert_eq!(detect(b"<!DOCTYPE html><html>"), FileType::Html);
        assert_eq!(detect(b"abc\x00def"), FileType::BinaryData);
    }

    #[test]
    fn target_masks() {
        assert_ne!(FileType::Pe.target_mask() & (1 << 1), 0);
        assert_eq!(FileType::Elf.target_mask() & (1 << 1), 0);
        assert_ne!(FileType::BinaryData.target_mask() & 1, 0);
    }
}
