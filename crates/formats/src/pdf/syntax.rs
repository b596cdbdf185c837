//! The few pieces of PDF syntax ClamAV's parser reads, with its quirks:
//! numbers as `strtol` reads them, the next token as `pdf_nextobject` finds
//! it (a NUL counts as a line end), dictionary values as `pdf_getdict`
//! finds them. Every function takes a buffer and a position and stays inside
//! the buffer whatever the position and length it is given.

/// PDF white space as ClamAV's object scanner counts it.
pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, 0 | 9 | 0x0a | 0x0c | 0x0d | 0x20)
}

/// C's `isspace`.
pub(super) fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The first occurrence of `needle` in `b[from..from + len]`.
pub(super) fn find(b: &[u8], from: usize, len: usize, needle: &[u8]) -> Option<usize> {
    let end = from.saturating_add(len).min(b.len());
    let hay = b.get(from..end)?;
    memchr::memmem::find(hay, needle).map(|i| from + i)
}

/// `strtol(b + at, len, base 10)`: leading white space, a sign, digits.
/// `None` when there are no digits or the number overflows.
pub(super) fn strtol(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let end = at.saturating_add(len).min(b.len());
    let s = b.get(at..end)?;
    let mut i = 0;
    while i < s.len() && c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if let Some(&c) = s.get(i)
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        i += 1;
    }
    let digits = s.get(i..)?.iter().take_while(|c| c.is_ascii_digit());
    let mut value: i64 = 0;
    let mut any = false;
    for &d in digits {
        value = value.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(if neg { -value } else { value })
}

/// A NUL is a line end too (ClamAV tests with `strchr("\r\n", c)`).
fn is_eol(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | 0)
}

/// The start of the next line after `at` (within `len` bytes), or `None`.
fn next_line_start(b: &[u8], mut at: usize, len: usize) -> Option<usize> {
    let mut len = len.min(b.len().saturating_sub(at));
    if len == 0 {
        return None;
    }
    while !is_eol(b[at]) {
        len -= 1;
        if len == 0 {
            return None;
        }
        at += 1;
    }
    while is_eol(b[at]) {
        len -= 1;
        if len == 0 {
            return None;
        }
        at += 1;
    }
    Some(at)
}

/// The start of the next token after the one `at` is in (`pdf_nextobject`):
/// a name or string starts at once, anything else after a separator.
pub(super) fn next_object(b: &[u8], mut at: usize, len: usize) -> Option<usize> {
    let mut len = len.min(b.len().saturating_sub(at));
    let mut in_object = true;
    while len > 0 {
        match b[at] {
            b'\n' | b'\r' | b'%' => {
                let next = next_line_start(b, at, len)?;
                len -= next - at;
                at = next;
                in_object = false;
            }
            b' ' | b'\t' | b'[' | 0x0b | 0x0c | b'<' => {
                in_object = false;
                at += 1;
                len -= 1;
            }
            b'/' | b'(' => return Some(at),
            _ if !in_object => return Some(at),
            _ => {
                at += 1;
                len -= 1;
            }
        }
    }
    None
}

/// The value of `key` in `b[at..at + len]` (`pdf_getdict`): its position
/// (a dictionary value includes its `<<`) and the bytes left from there.
pub(super) fn get_dict(b: &[u8], at: usize, len: usize, key: &[u8]) -> Option<(usize, usize)> {
    if len == 0 {
        return None;
    }
    let k = find(b, at, len, key)?;
    let len = len - (k - at);
    let mut q = next_object(b, k + 1, len.checked_sub(1)?)?;
    while q > k && (b[q - 1] == b'<' || b[q - 1] == b'\n') {
        q -= 1;
    }
    Some((q, len - (q - k)))
}

/// The integer value of `key` (`pdf_readint`), or -1.
pub(super) fn read_int(b: &[u8], at: usize, len: usize, key: &[u8]) -> i64 {
    get_dict(b, at, len, key)
        .and_then(|(q, left)| strtol(b, q, left))
        .unwrap_or(-1)
}

/// The string value of `key` (`pdf_readstring`): a literal `( )` string,
/// with its escapes decoded unless `raw`, or a `< >` hex string. Returns it
/// and the position after it.
pub(super) fn read_string(
    b: &[u8],
    at: usize,
    len: usize,
    key: &[u8],
    raw: bool,
) -> Option<(Vec<u8>, usize)> {
    let (mut q, mut len) = get_dict(b, at, len, key)?;
    if len == 0 {
        return None;
    }
    match b.get(q)? {
        b'(' => {
            q += 1;
            let start = q;
            len -= 1;
            let mut paren = 1;
            while paren > 0 && len > 0 {
                match b.get(q)? {
                    b'(' => paren += 1,
                    b')' => paren -= 1,
                    b'\\' => {
                        q += 1;
                        len = len.checked_sub(1)?;
                    }
                    _ => {}
                }
                q += 1;
                len = len.checked_sub(1)?;
            }
            if len == 0 {
                return None;
            }
            let end_after = q;
            let body = b.get(start..q - 1)?;
            let s = if raw { body.to_vec() } else { unescape(body) };
            Some((s, end_after))
        }
        b'<' if len >= 3 => {
            q += 1;
            len -= 1;
            while len > 0 && b.get(q) == Some(&b'\n') {
                q += 1;
                len -= 1;
            }
            let start = q;
            let close = find(b, q + 1, len.checked_sub(1)?, b">")?;
            let hex = b.get(start..close)?;
            let mut s = Vec::with_capacity(hex.len() / 2);
            let mut i = 0;
            while i < hex.len() {
                s.push(super::filters::hex_pair(b, start + i)?);
                i += 2;
            }
            Some((s, close))
        }
        _ => None,
    }
}

/// A literal string's escapes, decoded as ClamAV decodes them.
fn unescape(body: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            s.push(body[i]);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&c) = body.get(i) else {
            // A backslash at the very end is followed by the closing paren.
            s.push(b')');
            break;
        };
        match c {
            b'n' => s.push(b'\n'),
            b'r' => s.push(b'\r'),
            b't' => s.push(b'\t'),
            b'b' => s.push(8),
            b'f' => s.push(12),
            b'(' | b')' | b'\\' => s.push(c),
            b'\n' => {}
            b'\r' => {
                if body.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'0'..=b'9' => {
                if i + 2 < body.len() {
                    let d = |k: usize| body[k].wrapping_sub(b'0');
                    s.push(
                        64u8.wrapping_mul(d(i))
                            .wrapping_add(8u8.wrapping_mul(d(i + 1)))
                            .wrapping_add(d(i + 2)),
                    );
                    i += 2;
                }
            }
            _ => {
                s.push(b'\\');
                i -= 1;
            }
        }
        i += 1;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_tokens() {
        assert_eq!(strtol(b"  -12x", 0, 6), Some(-12));
        assert_eq!(strtol(b"x", 0, 1), None);
        assert_eq!(strtol(b"99999999999999999999", 0, 20), None);
        assert_eq!(next_object(b"Length 12", 0, 9), Some(7));
        assert_eq!(next_object(b"Length\n% c\n 12", 0, 14), Some(12));
        assert_eq!(
            get_dict(b"<</N 3/First 17>>", 0, 17, b"/First"),
            Some((13, 4))
        );
        assert_eq!(read_int(b"<</N 3/First 17>>", 0, 17, b"/First"), 17);
    }

    #[test]
    fn strings() {
        let d = b"/JS (a\\(b\\)\\101\\nc) >>";
        let (s, end) = read_string(d, 0, d.len(), b"/JS", false).unwrap();
        assert_eq!(s, b"a(b)A\nc");
        assert_eq!(&d[end..], b" >>");
        let d = b"/JS <616263> >>";
        assert_eq!(read_string(d, 0, d.len(), b"/JS", false).unwrap().0, b"abc");
    }
}
