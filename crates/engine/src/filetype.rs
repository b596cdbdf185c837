//! File types, from `aether-formats`' magic table, and which `.ndb` target
//! types apply to each.

use aether_sigs::TargetType;

pub use aether_formats::FileType;

/// Recognizes a file from its first bytes.
pub fn detect(head: &[u8]) -> FileType {
    aether_formats::detect(head)
}

/// Bit `t` is set when signatures of target type `t` apply to this type's
/// raw bytes. Text is matched raw against generic signatures only, HTML not
/// at all: ClamAV matches types 3 and 7 against normalized copies (see
/// [`crate::textnorm`]).
pub(crate) fn target_mask(ty: FileType) -> u32 {
    let bit = |t: TargetType| 1u32 << t as u32;
    if ty == FileType::Html {
        return 0;
    }
    bit(TargetType::Any)
        | match ty {
            FileType::Pe => bit(TargetType::Pe),
            FileType::Elf => bit(TargetType::Elf),
            FileType::MachO | FileType::MachOUniversal => bit(TargetType::MachO),
            FileType::Ole2 => bit(TargetType::Ole2),
            FileType::Mail => bit(TargetType::Mail),
            FileType::Graphics
            | FileType::Gif
            | FileType::Png
            | FileType::Jpeg
            | FileType::Tiff => bit(TargetType::Graphics),
            FileType::Pdf => bit(TargetType::Pdf),
            FileType::Swf => bit(TargetType::Flash),
            FileType::Java => bit(TargetType::Java),
            _ => 0,
        }
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
            FileType::MachOUniversal
        );
        assert_eq!(detect(b"hello world\n"), FileType::Text);
        assert_eq!(detect(b"<!DOCTYPE html><html>"), FileType::Html);
        // clamscan 1.4.6 types this as UTF-16BE text too.
        assert_eq!(detect(b"abc\x00def"), FileType::TextUtf16Be);
        assert_eq!(detect(b"ab\x00\x01cdef"), FileType::BinaryData);
    }

    #[test]
    fn target_masks() {
        assert_ne!(target_mask(FileType::Pe) & (1 << 1), 0);
        assert_eq!(target_mask(FileType::Elf) & (1 << 1), 0);
        assert_ne!(target_mask(FileType::BinaryData) & 1, 0);
        assert_ne!(target_mask(FileType::MachOUniversal) & (1 << 9), 0);
        assert_eq!(target_mask(FileType::Zip), 1);
        assert_eq!(target_mask(FileType::Text), 1);
        assert_eq!(target_mask(FileType::Html), 0);
    }
}
