//! Byte-compare subsignatures: read a number near another subsignature's
//! match and compare it, as ClamAV's `cli_bcomp_compare_check` does.
//!
//! The rules are ClamAV's, quirks included, because a signature means what
//! clamscan makes of it: text numbers may have leading white space (which
//! then fails `e`, exact), `a` (auto) reads hex after a `0x` and decimal
//! otherwise but needs three bytes, little-endian hex is read with its
//! digit pairs reversed, decimal cannot be little endian, and a number whose
//! start would be at offset 0 or before is not read at all.

use aether_sigs::{ByteCompare, ByteFormat, CountCmp, Endian};

/// C's `isspace` in the C locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// ClamAV's `cli_strntol`: C `strtol` bounded to `s.len()` bytes. Returns the
/// value, the bytes used (0 when no digit was read) and whether it overflowed.
fn strntol(s: &[u8], mut base: u32) -> (i64, usize, bool) {
    let n = s.len();
    if n == 0 {
        return (0, 0, false);
    }
    let mut i = 0;
    while i < n && is_space(s[i]) {
        i += 1;
    }
    if i >= n {
        return (0, 0, false);
    }
    let mut c = s[i];
    let mut neg = false;
    if c == b'-' || c == b'+' {
        neg = c == b'-';
        i += 1;
        if i >= n {
            return (0, 0, false);
        }
    } else if (base == 0 || base == 16) && c == b'0' && i + 1 < n && matches!(s[i + 1], b'x' | b'X')
    {
        // A sign leaves `c` on the sign, so "-0x10" reads only the 0.
        if i + 2 >= n {
            return (0, 0, false);
        }
        c = s[i + 1];
        i += 2;
        base = 16;
    }
    if base == 0 {
        base = if c == b'0' { 8 } else { 10 };
    }
    let cutoff: u64 = if neg { 1 << 63 } else { i64::MAX as u64 };
    let cutlim = cutoff % u64::from(base);
    let cutoff = cutoff / u64::from(base);
    let mut acc: u64 = 0;
    let mut any = 0i32;
    while i < n {
        let d = match s[i] {
            b @ b'0'..=b'9' => u32::from(b - b'0'),
            b @ b'a'..=b'z' => u32::from(b - b'a') + 10,
            b @ b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => break,
        };
        if d >= base {
            break;
        }
        if any < 0 || acc > cutoff || (acc == cutoff && u64::from(d) > cutlim) {
            any = -1;
        } else {
            any = 1;
            acc = acc * u64::from(base) + u64::from(d);
        }
        i += 1;
    }
    let end = if any != 0 { i } else { 0 };
    if any < 0 {
        return (if neg { i64::MIN } else { i64::MAX }, end, true);
    }
    let v = if neg {
        (acc as i64).wrapping_neg()
    } else {
        acc as i64
    };
    (v, end, false)
}

/// ClamAV's check for a hex prefix: three bytes at least, starting `0x`.
fn has_hex_prefix(buf: &[u8]) -> bool {
    buf.len() >= 3 && buf[0] == b'0' && matches!(buf[1], b'x' | b'X')
}

/// Little-endian hex text turned big endian: digit pairs in reverse order,
/// ClamAV's way (an odd length gets a leading `0`, a `0x` prefix becomes
/// `xx` and ends up last, a non-hex byte zeroes what was built so far).
fn le_hex(buf: &[u8]) -> Vec<u8> {
    let len = buf.len();
    let norm = if len.is_multiple_of(2) { len } else { len + 1 };
    let mut out = vec![b'0'; norm];
    if len == 1 {
        out[0] = buf[0];
        return out;
    }
    let mut hex = vec![b'0'; norm];
    if norm == len + 1 {
        if has_hex_prefix(buf) {
            hex[3..3 + len - 2].copy_from_slice(&buf[2..]);
            hex[0] = b'x';
        } else {
            hex[1..1 + len].copy_from_slice(buf);
        }
    } else {
        hex[..len].copy_from_slice(buf);
        if has_hex_prefix(buf) {
            hex[0] = b'x';
        }
    }
    let ok = |c: u8| c.is_ascii_hexdigit() || c.eq_ignore_ascii_case(&b'x');
    let mut i = 0;
    while i < norm {
        let hi = hex[norm - i - 2];
        if ok(hi) {
            out[i] = hi;
        } else {
            out.iter_mut().for_each(|b| *b = b'0');
            i += 2;
            continue;
        }
        let lo = hex[norm - i - 1];
        if ok(lo) {
            out[i + 1] = lo;
        } else {
            out.iter_mut().for_each(|b| *b = b'0');
        }
        i += 2;
    }
    out
}

/// Whether the number in `bytes` (the `length` bytes read at the
/// subsignature's position) passes every comparison.
pub(crate) fn compare(bc: &ByteCompare, bytes: &[u8]) -> bool {
    let Some(value) = extract(bc, bytes) else {
        return false;
    };
    bc.comparisons.iter().all(|(cmp, n)| match cmp {
        CountCmp::Gt => value > *n,
        CountCmp::Lt => value < *n,
        CountCmp::Eq => value == *n,
    })
}

fn extract(bc: &ByteCompare, bytes: &[u8]) -> Option<i64> {
    let format = bc.format?;
    // `d` implies big endian.
    let endian = match (format, bc.endian) {
        (ByteFormat::Decimal, None) => Some(Endian::Big),
        (_, e) => e,
    };
    if format == ByteFormat::Binary {
        let e = endian?;
        let v: u64 = match (bytes.len(), e) {
            (1, _) => u64::from(bytes[0]),
            (2, Endian::Little) => u64::from(u16::from_le_bytes(bytes.try_into().ok()?)),
            (2, Endian::Big) => u64::from(u16::from_be_bytes(bytes.try_into().ok()?)),
            (4, Endian::Little) => u64::from(u32::from_le_bytes(bytes.try_into().ok()?)),
            (4, Endian::Big) => u64::from(u32::from_be_bytes(bytes.try_into().ok()?)),
            (8, Endian::Little) => u64::from_le_bytes(bytes.try_into().ok()?),
            (8, Endian::Big) => u64::from_be_bytes(bytes.try_into().ok()?),
            _ => return None,
        };
        return Some(v as i64);
    }
    // Text: leading white space is skipped (and fails `e`).
    let pad = bytes.iter().take_while(|b| is_space(**b)).count();
    let buf = &bytes[pad..];
    let format = match format {
        ByteFormat::Auto if buf.len() < 3 => return None,
        ByteFormat::Auto if has_hex_prefix(buf) => ByteFormat::Hex,
        ByteFormat::Auto => ByteFormat::Decimal,
        f => f,
    };
    let exact_ok = |end: usize| !bc.exact || (end == buf.len() && pad == 0);
    match (format, endian?) {
        (ByteFormat::Hex, Endian::Little) => {
            let norm = le_hex(buf);
            let len = if buf.len() == 1 { 1 } else { norm.len() };
            let (v, end, overflow) = strntol(&norm[..len.min(norm.len())], 16);
            (!overflow && exact_ok(end)).then_some(v)
        }
        (ByteFormat::Hex, Endian::Big) => {
            let (v, end, overflow) = strntol(buf, 16);
            (!overflow && exact_ok(end)).then_some(v)
        }
        (ByteFormat::Decimal, Endian::Big) => {
            let (v, end, overflow) = strntol(buf, 10);
            (!overflow && exact_ok(end)).then_some(v)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bc(
        format: ByteFormat,
        endian: Option<Endian>,
        exact: bool,
        cmp: (CountCmp, i64),
    ) -> ByteCompare {
        ByteCompare {
            trigger: 0,
            offset: 0,
            format: Some(format),
            endian,
            exact,
            length: 0,
            comparisons: vec![cmp],
        }
    }

    #[test]
    fn strntol_reads_as_c() {
        assert_eq!(strntol(b"  12z", 10), (12, 4, false));
        assert_eq!(strntol(b"-0x10", 16), (0, 2, false));
        assert_eq!(strntol(b"0x1F", 16), (31, 4, false));
        assert_eq!(strntol(b"0x", 16), (0, 0, false));
        assert_eq!(strntol(b"zz", 10), (0, 0, false));
        assert!(strntol(b"99999999999999999999", 10).2);
    }

    #[test]
    fn formats() {
        use CountCmp::*;
        assert!(compare(
            &bc(
                ByteFormat::Binary,
                Some(Endian::Little),
                false,
                (Eq, 0x0201)
            ),
            b"\x01\x02"
        ));
        assert!(compare(
            &bc(ByteFormat::Binary, Some(Endian::Big), false, (Eq, 0x0102)),
            b"\x01\x02"
        ));
        assert!(!compare(
            &bc(ByteFormat::Binary, None, false, (Eq, 0x0102)),
            b"\x01\x02"
        ));
        assert!(compare(
            &bc(ByteFormat::Decimal, None, true, (Gt, 99)),
            b"100"
        ));
        assert!(!compare(
            &bc(ByteFormat::Decimal, None, true, (Gt, 99)),
            b" 100"
        ));
        assert!(compare(
            &bc(ByteFormat::Decimal, None, false, (Gt, 99)),
            b" 100"
        ));
        assert!(compare(
            &bc(ByteFormat::Hex, Some(Endian::Big), false, (Eq, 0x1234)),
            b"1234"
        ));
        assert!(compare(
            &bc(ByteFormat::Hex, Some(Endian::Little), false, (Eq, 0x3412)),
            b"1234"
        ));
        assert!(compare(
            &bc(ByteFormat::Auto, Some(Endian::Big), false, (Eq, 0x12)),
            b"0x12"
        ));
        assert!(compare(
            &bc(ByteFormat::Auto, Some(Endian::Big), false, (Eq, 123)),
            b"123"
        ));
        assert!(!compare(
            &bc(ByteFormat::Auto, Some(Endian::Big), false, (Eq, 12)),
            b"12"
        ));
    }
}
