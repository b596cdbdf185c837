//! File type recognition from a file's first bytes, named as ClamAV names
//! types (`CL_TYPE_*`).
//!
//! The rules are data: [`TABLE`] holds lines in the syntax of ClamAV's
//! `daily.ftm` (`magictype:offset:magicbytes:name:rtype:type`), parsed once.
//! Type-0 lines (bytes at an offset) are tried first, in order; then an old
//! tar header is recognized by its checksum, as ClamAV does; then text. Type-1
//! lines (patterns) decide HTML inside text and the remaining binary types.

use std::sync::OnceLock;

/// How many bytes of a file the recognizer looks at.
pub const HEAD: usize = 1024;

/// The built-in magic table (aether's own, in `daily.ftm` syntax).
pub const TABLE: &str = include_str!("types.ftm");

macro_rules! file_types {
    ($($variant:ident => $name:literal,)*) => {
        /// A recognized file type, named as ClamAV's `CL_TYPE_*`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[non_exhaustive]
        pub enum FileType {
            #[default]
            BinaryData,
            $($variant,)*
        }

        impl FileType {
            /// ClamAV's name for the type (`CL_TYPE_MSEXE`).
            pub fn clamav_name(self) -> &'static str {
                match self {
                    FileType::BinaryData => "CL_TYPE_BINARY_DATA",
                    $(FileType::$variant => $name,)*
                }
            }

            /// The type named `name` (`CL_TYPE_ZIP`), if known.
            pub fn from_clamav_name(name: &str) -> Option<FileType> {
                match name {
                    "CL_TYPE_BINARY_DATA" => Some(FileType::BinaryData),
                    $($name => Some(FileType::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

file_types! {
    Pe => "CL_TYPE_MSEXE",
    Elf => "CL_TYPE_ELF",
    MachO => "CL_TYPE_MACHO",
    Text => "CL_TYPE_TEXT_ASCII",
    Html => "CL_TYPE_HTML",
    HtmlUtf16 => "CL_TYPE_HTML_UTF16",
    TextUtf8 => "CL_TYPE_TEXT_UTF8",
    TextUtf16Le => "CL_TYPE_TEXT_UTF16LE",
    TextUtf16Be => "CL_TYPE_TEXT_UTF16BE",
    MachOUniversal => "CL_TYPE_MACHO_UNIBIN",
    Java => "CL_TYPE_JAVA",
    PosixTar => "CL_TYPE_POSIX_TAR",
    OldTar => "CL_TYPE_OLD_TAR",
    CpioOld => "CL_TYPE_CPIO_OLD",
    CpioOdc => "CL_TYPE_CPIO_ODC",
    CpioNewc => "CL_TYPE_CPIO_NEWC",
    CpioCrc => "CL_TYPE_CPIO_CRC",
    Gz => "CL_TYPE_GZ",
    Zip => "CL_TYPE_ZIP",
    Bz => "CL_TYPE_BZ",
    Xz => "CL_TYPE_XZ",
    Zstd => "CL_TYPE_ZSTD",
    SevenZip => "CL_TYPE_7Z",
    Rar => "CL_TYPE_RAR",
    Arj => "CL_TYPE_ARJ",
    MsSzdd => "CL_TYPE_MSSZDD",
    Ole2 => "CL_TYPE_MSOLE2",
    MsCab => "CL_TYPE_MSCAB",
    MsChm => "CL_TYPE_MSCHM",
    Sis => "CL_TYPE_SIS",
    ScrEnc => "CL_TYPE_SCRENC",
    Graphics => "CL_TYPE_GRAPHICS",
    Gif => "CL_TYPE_GIF",
    Png => "CL_TYPE_PNG",
    Jpeg => "CL_TYPE_JPEG",
    Tiff => "CL_TYPE_TIFF",
    Riff => "CL_TYPE_RIFF",
    BinHex => "CL_TYPE_BINHEX",
    Tnef => "CL_TYPE_TNEF",
    CryptFf => "CL_TYPE_CRYPTFF",
    Pdf => "CL_TYPE_PDF",
    UuEncoded => "CL_TYPE_UUENCODED",
    Rtf => "CL_TYPE_RTF",
    Swf => "CL_TYPE_SWF",
    Xar => "CL_TYPE_XAR",
    Ps => "CL_TYPE_PS",
    Egg => "CL_TYPE_EGG",
    OneNote => "CL_TYPE_ONENOTE",
    PythonCompiled => "CL_TYPE_PYTHON_COMPILED",
    LhaLzh => "CL_TYPE_LHA_LZH",
    AiModel => "CL_TYPE_AI_MODEL",
    Gpt => "CL_TYPE_GPT",
    Mail => "CL_TYPE_MAIL",
    Lnk => "CL_TYPE_LNK",
    Alz => "CL_TYPE_ALZ",
    Hwp3 => "CL_TYPE_HWP3",
    Ignored => "CL_TYPE_IGNORED",
    Ar => "CL_TYPE_AR",
    Nulsft => "CL_TYPE_NULSFT",
    AutoIt => "CL_TYPE_AUTOIT",
    IshieldMsi => "CL_TYPE_ISHIELD_MSI",
}

impl FileType {
    /// Text of any encoding (what ClamAV's target type 7 applies to).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FileType::Text | FileType::TextUtf8 | FileType::TextUtf16Le | FileType::TextUtf16Be
        )
    }
}

/// One element of a magic pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem {
    /// `(b & mask) == value`
    Byte { value: u8, mask: u8 },
    /// One of these bytes.
    Alt(Vec<u8>),
    /// Between `min` and `max` bytes of anything.
    Gap { min: usize, max: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Offset {
    At(usize),
    Range(usize, usize),
    Anywhere,
}

/// One parsed magic line.
#[derive(Debug, Clone)]
struct Rule {
    offset: Offset,
    elems: Vec<Elem>,
    ty: FileType,
}

/// Why a magic line was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("magic line {line}: {reason}")]
pub struct TableError {
    pub line: usize,
    pub reason: String,
}

/// A parsed magic table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    exact: Vec<Rule>,
    patterns: Vec<Rule>,
}

/// At most this many gaps per pattern, which bounds matching work: every gap
/// multiplies the positions tried by at most [`HEAD`].
const MAX_GAPS: usize = 2;

impl Table {
    /// Parses lines in `daily.ftm` syntax. Lines of magic type 4 (partition
    /// types) and lines naming a type aether does not know are skipped, as an
    /// older ClamAV skips them; any other malformed line is an error.
    pub fn parse(text: &str) -> Result<Table, TableError> {
        let mut table = Table::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: &str| TableError {
                line: i + 1,
                reason: reason.to_string(),
            };
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 6 {
                return Err(err("fewer than 6 fields"));
            }
            let pattern = match fields[0] {
                "0" => false,
                "1" => true,
                "4" => continue,
                _ => return Err(err("unknown magic type")),
            };
            let Some(ty) = FileType::from_clamav_name(fields[5]) else {
                continue;
            };
            let offset = parse_offset(fields[1]).ok_or_else(|| err("bad offset"))?;
            if !pattern && offset == Offset::Anywhere {
                return Err(err("offset * needs magic type 1"));
            }
            let elems = if pattern {
                parse_pattern(fields[2]).ok_or_else(|| err("bad pattern"))?
            } else {
                parse_hex(fields[2])
                    .ok_or_else(|| err("bad hex"))?
                    .into_iter()
                    .map(|value| Elem::Byte { value, mask: 0xff })
                    .collect()
            };
            if elems.is_empty() {
                return Err(err("empty magic"));
            }
            let rule = Rule { offset, elems, ty };
            if pattern {
                table.patterns.push(rule);
            } else {
                table.exact.push(rule);
            }
        }
        Ok(table)
    }

    /// Recognizes a file from its first bytes (up to [`HEAD`]).
    pub fn detect(&self, head: &[u8]) -> FileType {
        let head = &head[..head.len().min(HEAD)];
        if let Some(r) = self.exact.iter().find(|r| r.matches(head)) {
            return r.ty;
        }
        if is_old_tar(head) {
            return FileType::OldTar;
        }
        if let Some(text) = text_type(head) {
            if self.is_html(head) {
                return FileType::Html;
            }
            return self.unicode_html(head).unwrap_or(text);
        }
        self.patterns
            .iter()
            .find(|r| r.ty != FileType::Html && r.matches(head))
            .map_or_else(
                || self.unicode_html(head).unwrap_or(FileType::BinaryData),
                |r| r.ty,
            )
    }

    fn is_html(&self, head: &[u8]) -> bool {
        self.patterns
            .iter()
            .any(|r| r.ty == FileType::Html && r.matches(head))
    }

    /// HTML in UTF-16, as ClamAV finds it in text and binary data: the head
    /// read two bytes a character by its `cli_utf16toascii` (which makes
    /// ASCII of UTF-16LE) holding an HTML tag is `CL_TYPE_HTML_UTF16`;
    /// otherwise a UTF-16BE head (its byte-order mark, or `<?` without one)
    /// that holds a tag once decoded is plain `CL_TYPE_HTML`, whose
    /// normalizer skips the zero bytes.
    fn unicode_html(&self, head: &[u8]) -> Option<FileType> {
        if head.len() < 2 {
            return None;
        }
        if self.is_html(&utf16_to_ascii(head)) {
            return Some(FileType::HtmlUtf16);
        }
        let be = head.starts_with(b"\xfe\xff") && head.get(2..4) != Some(&[0, 0])
            || head.starts_with(b"\x00<\x00?");
        if !be {
            return None;
        }
        let ascii: Vec<u8> = head
            .chunks_exact(2)
            .map(|p| if p[0] == 0 && p[1] < 0x80 { p[1] } else { 0xff })
            .collect();
        self.is_html(&ascii).then_some(FileType::Html)
    }
}

/// The built-in table, parsed on first use.
pub fn builtin() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    // The built-in table is part of the source and tested to parse; an
    // empty table would still type every file as binary data or text.
    T.get_or_init(|| Table::parse(TABLE).unwrap_or_default())
}

/// Recognizes a file from its first bytes with the built-in table.
pub fn detect(head: &[u8]) -> FileType {
    builtin().detect(head)
}

impl Rule {
    fn matches(&self, head: &[u8]) -> bool {
        match self.offset {
            Offset::At(at) => match_at(&self.elems, head, at),
            Offset::Range(lo, hi) => {
                (lo..=hi.min(head.len())).any(|at| match_at(&self.elems, head, at))
            }
            Offset::Anywhere => (0..head.len()).any(|at| match_at(&self.elems, head, at)),
        }
    }
}

fn match_at(elems: &[Elem], head: &[u8], at: usize) -> bool {
    let Some((first, rest)) = elems.split_first() else {
        return true;
    };
    match first {
        Elem::Byte { value, mask } => {
            head.get(at).is_some_and(|b| b & mask == *value) && match_at(rest, head, at + 1)
        }
        Elem::Alt(set) => {
            head.get(at).is_some_and(|b| set.contains(b)) && match_at(rest, head, at + 1)
        }
        Elem::Gap { min, max } => {
            let hi = at.saturating_add(*max).min(head.len());
            (at.saturating_add(*min)..=hi).any(|p| match_at(rest, head, p))
        }
    }
}

fn parse_offset(s: &str) -> Option<Offset> {
    if s == "*" {
        return Some(Offset::Anywhere);
    }
    if let Some((a, b)) = s.split_once(',') {
        let lo: usize = a.parse().ok()?;
        let n: usize = b.parse().ok()?;
        // ClamAV's "n,m" is a start and a maximum shift.
        return (lo <= HEAD).then(|| Offset::Range(lo, lo.saturating_add(n).min(HEAD)));
    }
    let at: usize = s.parse().ok()?;
    (at <= HEAD).then_some(Offset::At(at))
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn parse_pattern(s: &str) -> Option<Vec<Elem>> {
    let b = s.as_bytes();
    let mut elems = Vec::new();
    let mut i = 0;
    let mut gaps = 0;
    while i < b.len() {
        match b[i] {
            b'*' => {
                elems.push(Elem::Gap { min: 0, max: HEAD });
                gaps += 1;
                i += 1;
            }
            b'{' => {
                let end = i + s[i..].find('}')?;
                let inner = &s[i + 1..end];
                let (min, max) = match inner.split_once('-') {
                    Some((a, b)) => (
                        if a.is_empty() { 0 } else { a.parse().ok()? },
                        if b.is_empty() { HEAD } else { b.parse().ok()? },
                    ),
                    None => {
                        let n = inner.parse().ok()?;
                        (n, n)
                    }
                };
                if min > max {
                    return None;
                }
                elems.push(Elem::Gap { min, max });
                gaps += 1;
                i = end + 1;
            }
            b'(' => {
                let end = i + s[i..].find(')')?;
                let set = s[i + 1..end]
                    .split('|')
                    .map(|h| parse_hex(h).filter(|v| v.len() == 1).map(|v| v[0]))
                    .collect::<Option<Vec<u8>>>()?;
                elems.push(Elem::Alt(set));
                i = end + 1;
            }
            _ => {
                let (hi, lo) = (*b.get(i)?, *b.get(i + 1)?);
                let (value, mask) = match (hi, lo) {
                    (b'?', b'?') => (0, 0),
                    (b'?', l) => (nibble(l)?, 0x0f),
                    (h, b'?') => (nibble(h)? << 4, 0xf0),
                    (h, l) => ((nibble(h)? << 4) | nibble(l)?, 0xff),
                };
                elems.push(Elem::Byte { value, mask });
                i += 2;
            }
        }
    }
    (gaps <= MAX_GAPS).then_some(elems)
}

/// A v7 tar header: a plausible name and a valid header checksum.
fn is_old_tar(head: &[u8]) -> bool {
    let Some(h) = head.get(..512) else {
        return false;
    };
    if h[0] == 0 {
        return false;
    }
    let field = &h[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&c| c == b' ')
        .take_while(|c| (b'0'..=b'7').contains(c))
        .collect();
    if digits.is_empty() {
        return false;
    }
    let Some(stored) = std::str::from_utf8(&digits)
        .ok()
        .and_then(|d| u32::from_str_radix(d, 8).ok())
    else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    sum == stored
}

/// How ClamAV's text detection (`textdet.c`) classes a byte.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Never in text: most C0 controls, DEL.
    Never,
    /// Plain ASCII text, and NEL (0x85).
    Plain,
    /// ISO-8859 (0xa0-0xff) or other extended ASCII (0x80-0x9f).
    Extended,
}

fn class(b: u8) -> Class {
    match b {
        0x07..=0x0a | 0x0c | 0x0d | 0x1b | 0x20..=0x7e | 0x85 => Class::Plain,
        0x80..=0xff => Class::Extended,
        _ => Class::Never,
    }
}

/// ClamAV's `cli_utf16toascii`: each two bytes `lo, hi` become one,
/// `(hi << 4) + lo` in 8 bits (the ASCII of UTF-16LE text, and noise
/// otherwise); an odd last byte is dropped.
pub fn utf16_to_ascii(data: &[u8]) -> Vec<u8> {
    data.chunks_exact(2)
        .map(|p| (p[1] << 4).wrapping_add(p[0]))
        .collect()
}

/// Text as ClamAV's `cli_texttype` decides it from the same bytes, in its
/// order: "ASCII" is any bytes but C0 controls and DEL (Latin-1 and UTF-8
/// text included), then UTF-8, then UTF-16; `None` for binary data.
fn text_type(head: &[u8]) -> Option<FileType> {
    if head.is_empty() {
        return None;
    }
    if head.iter().all(|&b| class(b) != Class::Never) {
        return Some(FileType::Text);
    }
    if is_utf8(head) {
        return Some(FileType::TextUtf8);
    }
    match utf16(head) {
        Some(true) => Some(FileType::TextUtf16Be),
        Some(false) => Some(FileType::TextUtf16Le),
        None => None,
    }
}

/// ClamAV's `td_isutf8`: plain ASCII and well-formed sequences of up to six
/// bytes, at least one of them; a sequence cut by the end still counts.
fn is_utf8(head: &[u8]) -> bool {
    let mut seen = false;
    let mut i = 0;
    while i < head.len() {
        let b = head[i];
        if b & 0x80 == 0 {
            if class(b) != Class::Plain {
                return false;
            }
        } else if b & 0x40 == 0 {
            return false;
        } else {
            let following = match b.leading_ones() {
                2 => 1,
                3 => 2,
                4 => 3,
                5 => 4,
                6 => 5,
                _ => return false,
            };
            for _ in 0..following {
                i += 1;
                let Some(&c) = head.get(i) else {
                    return seen;
                };
                if c & 0xc0 != 0x80 {
                    return false;
                }
            }
            seen = true;
        }
        i += 1;
    }
    seen
}

/// ClamAV's `td_isutf16`: `Some(big_endian)` for UTF-16. Without a
/// byte-order mark every unit below 128 must be plain text and the text is
/// taken as big-endian; with one, fewer than half the bytes may be units
/// that are not. The first unit is never checked.
fn utf16(head: &[u8]) -> Option<bool> {
    if head.len() < 2 {
        return None;
    }
    let (be, bom) = match head {
        [0xff, 0xfe, ..] => (false, true),
        [0xfe, 0xff, ..] => (true, true),
        _ => (true, false),
    };
    let mut bad = 0;
    for unit in head[2..].chunks_exact(2) {
        let c = if be {
            u16::from_be_bytes([unit[0], unit[1]])
        } else {
            u16::from_le_bytes([unit[0], unit[1]])
        };
        if c == 0xfffe {
            return None;
        }
        if c < 128 && class(c as u8) != Class::Plain {
            if !bom {
                return None;
            }
            bad += 1;
        }
    }
    if bom && bad >= head.len() / 2 {
        return None;
    }
    Some(be)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_whole() {
        let t = Table::parse(TABLE).unwrap();
        let lines = TABLE
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(t.exact.len() + t.patterns.len(), lines);
    }

    #[test]
    fn html_in_utf16() {
        let le = |s: &str| -> Vec<u8> { s.bytes().flat_map(|b| [b, 0]).collect() };
        let be = |s: &str| -> Vec<u8> { s.bytes().flat_map(|b| [0, b]).collect() };
        // UTF-16LE, with or without its mark: ClamAV's HTML_UTF16.
        assert_eq!(detect(&le("<html><body>x")), FileType::HtmlUtf16);
        let mut marked = b"\xff\xfe".to_vec();
        marked.extend(le("hello <script>x</script>"));
        assert_eq!(detect(&marked), FileType::HtmlUtf16);
        // UTF-16BE with its mark: plain HTML (the normalizer skips zeros).
        let mut marked = b"\xfe\xff".to_vec();
        marked.extend(be("<html><body>x"));
        assert_eq!(detect(&marked), FileType::Html);
        assert_eq!(detect(&be("<?xml?><html>")), FileType::Html);
        // Without a tag, UTF-16 text stays text; BE without a mark too.
        assert!(detect(&le("hello there")).is_text());
        assert!(detect(&be("<html> but no mark")).is_text());
        assert_eq!(utf16_to_ascii(b"a\x00\x01\x02z"), vec![b'a', 0x21]);
    }

    #[test]
    fn recognizes_common_types() {
        let cases: &[(&[u8], FileType)] = &[
            (b"MZ\x90\x00", FileType::Pe),
            (b"\x7fELF\x02\x01", FileType::Elf),
            (&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1], FileType::MachO),
            (
                &[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2],
                FileType::MachOUniversal,
            ),
            (&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52], FileType::Java),
            (b"PK\x03\x04\x14\x00", FileType::Zip),
            (b"\x1f\x8b\x08\x00", FileType::Gz),
            (b"BZh91AY&SY", FileType::Bz),
            (b"\xfd7zXZ\x00\x00", FileType::Xz),
            (b"\x28\xb5\x2f\xfd\x00", FileType::Zstd),
            (b"7z\xbc\xaf\x27\x1c\x00\x04", FileType::SevenZip),
            (b"Rar!\x1a\x07\x00", FileType::Rar),
            (b"070701000000", FileType::CpioNewc),
            (b"070707000000", FileType::CpioOdc),
            (b"\xc7\x71\x00\x00", FileType::CpioOld),
            (b"!<arch>\ndebian-binary", FileType::Ar),
            (b"%PDF-1.4\n", FileType::Pdf),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", FileType::Ole2),
            (b"\x89PNG\r\n", FileType::Png),
            (b"hello world\n", FileType::Text),
            // ClamAV's "ASCII" takes any byte from 0x80: UTF-8 and Latin-1.
            (b"caf\xc3\xa9\n", FileType::Text),
            (b"caf\xe9 cr\xe8me\n", FileType::Text),
            (b"\xff\xfeh\x00i\x00", FileType::TextUtf16Le),
            // Without a byte-order mark, UTF-16 is big-endian to ClamAV.
            (b"\x00h\x00i\x00!", FileType::TextUtf16Be),
            (b"\x00\x01\x00\x02\x00\x03", FileType::BinaryData),
            (b"<!DOCTYPE html><html>", FileType::Html),
            (b"hi\n<SCRIPT>alert(1)</SCRIPT>", FileType::Html),
            (b"<a class=x href=\"y\">", FileType::Html),
            (b"abc\x00def", FileType::TextUtf16Be),
            (b"ab\x00\x01cdef", FileType::BinaryData),
            (b"", FileType::BinaryData),
        ];
        for (head, want) in cases {
            assert_eq!(detect(head), *want, "{head:?}");
        }
    }

    #[test]
    fn tar_headers() {
        let mut h = vec![0u8; 512];
        h[..4].copy_from_slice(b"file");
        h[257..262].copy_from_slice(b"ustar");
        assert_eq!(detect(&h), FileType::PosixTar);
        // A v7 header is recognized by its checksum alone.
        let mut v7 = vec![0u8; 512];
        v7[..4].copy_from_slice(b"file");
        v7[124..135].copy_from_slice(b"00000000005");
        let sum: u32 = v7.iter().map(|&b| b as u32).sum::<u32>() + 8 * 32;
        v7[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert_eq!(detect(&v7), FileType::OldTar);
        v7[0] = b'g';
        assert_eq!(detect(&v7), FileType::BinaryData);
    }

    #[test]
    fn names_round_trip() {
        for t in [
            FileType::Zip,
            FileType::BinaryData,
            FileType::Ar,
            FileType::Html,
        ] {
            assert_eq!(FileType::from_clamav_name(t.clamav_name()), Some(t));
        }
    }

    #[test]
    fn table_errors_name_the_line() {
        assert_eq!(
            Table::parse("# c\n0:0:zz:X:CL_TYPE_ANY:CL_TYPE_ZIP")
                .unwrap_err()
                .line,
            2
        );
        assert!(Table::parse("0:*:00:X:CL_TYPE_ANY:CL_TYPE_ZIP").is_err());
        assert!(Table::parse("1:0:00*11*22*33:X:CL_TYPE_ANY:CL_TYPE_ZIP").is_err());
        // Unknown types are skipped, like an older ClamAV skips them.
        let t = Table::parse("0:0:00:X:CL_TYPE_ANY:CL_TYPE_NEWTHING").unwrap();
        assert_eq!(t.exact.len(), 0);
    }
}
