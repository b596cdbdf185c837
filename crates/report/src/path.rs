//! Printing paths and OS errors.

use std::borrow::Cow;
use std::fmt::Write;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// How aether prints a path.
///
/// clamscan writes a name's raw bytes, so a name holding a newline can forge
/// an output line and a non-UTF-8 name is unreadable. aether prints a name
/// as is when it is valid UTF-8 without control characters or backslashes;
/// otherwise it escapes: `\` as `\\`, each byte that is not valid UTF-8 as
/// `\xNN`, and control characters as `\xNN` (ASCII) or `\u{NNNN}`. The
/// escaped form is unambiguous: it decodes back to exactly one byte string.
pub fn display_path(path: &Path) -> Cow<'_, str> {
    let bytes = path.as_os_str().as_bytes();
    if let Ok(s) = std::str::from_utf8(bytes)
        && !s.chars().any(|c| c.is_control() || c == '\\')
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// The C library's message for an OS error, without Rust's `(os error N)`
/// suffix, as clamscan prints it (`No such file or directory`).
pub fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => {
            let suffix = format!(" (os error {code})");
            text.strip_suffix(&suffix)
                .map(str::to_string)
                .unwrap_or(text)
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn show(bytes: &[u8]) -> String {
        display_path(Path::new(OsStr::from_bytes(bytes))).into_owned()
    }

    #[test]
    fn plain_names_are_verbatim() {
        assert_eq!(show(b"/usr/bin/ls"), "/usr/bin/ls");
        assert_eq!(show("d/été ünï.txt".as_bytes()), "d/été ünï.txt");
        assert!(matches!(display_path(Path::new("a b")), Cow::Borrowed(_)));
    }

    #[test]
    fn awkward_names_are_escaped_unambiguously() {
        assert_eq!(show(b"d/\xff\xfeok"), "d/\\xff\\xfeok");
        assert_eq!(show(b"a\nb: OK"), "a\\x0ab: OK");
        assert_eq!(show(b"back\\slash"), "back\\\\slash");
        // A literal backslash-x name and a raw byte no longer print the same.
        assert_ne!(show(b"\\xff"), show(b"\xff"));
        assert_eq!(show("c\u{85}".as_bytes()), "c\\u{0085}");
    }

    #[test]
    fn strerror_drops_rust_suffix() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(strerror(&e), "No such file or directory");
        let custom = io::Error::other("boom");
        assert_eq!(strerror(&custom), "boom");
    }
}
