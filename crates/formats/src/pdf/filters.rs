//! PDF stream filters, decoded as ClamAV's `pdfdecode.c` decodes them: each
//! filter works on the whole output of the one before, keeps what it decoded
//! of a truncated or corrupt Flate or LZW stream, and gives up (keeping its
//! input) on data it cannot read at all. Image codecs (DCT, JPX, CCITT fax,
//! JBIG2) are not decoded: the chain stops there and what it has is scanned.

use flate2::{Decompress, FlushDecompress, Status};

/// A filter named in a stream's `/Filter`, in the set ClamAV records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    AsciiHex,
    Ascii85,
    RunLength,
    Flate,
    Lzw,
    /// `/Crypt`: the document's encryption, not decoded here.
    Crypt,
    /// DCT, JPX, CCITT fax and JBIG2: passed through, ending the chain.
    Image,
}

/// What one filter made of its input.
pub(super) enum Step {
    /// The filter's output, which replaces its input (it may be empty: the
    /// chain then ends with nothing).
    Decoded(Vec<u8>),
    /// The chain ends here with the input kept, without error (image codecs,
    /// `/Crypt` when the document is not decrypted).
    Stop,
    /// The data is not valid for this filter; the input is kept and the
    /// chain ends.
    Failed(String),
}

/// Applies `filter` to `input`, producing at most `cap` bytes (more is a
/// failure, as ClamAV's size limit makes it one).
pub(super) fn apply(filter: Filter, input: &[u8], early_change: bool, cap: usize) -> Step {
    match filter {
        Filter::AsciiHex => ascii_hex(input),
        Filter::Ascii85 => ascii85(input),
        Filter::RunLength => run_length(input, cap),
        Filter::Flate => inflate(input, cap),
        Filter::Lzw => lzw(input, early_change, cap),
        Filter::Crypt | Filter::Image => Step::Stop,
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Two hex digits at `at` as a byte (ClamAV's `cli_hex2str_to` on two).
pub(super) fn hex_pair(b: &[u8], at: usize) -> Option<u8> {
    let hi = hex_digit(*b.get(at)?)?;
    let lo = hex_digit(*b.get(at + 1)?)?;
    Some(hi << 4 | lo)
}

/// ASCIIHexDecode. Only spaces are skipped between pairs; anything else that
/// is not hex fails the filter, unless it is within the last three bytes.
fn ascii_hex(input: &[u8]) -> Step {
    let mut out = Vec::with_capacity(input.len() / 2 + 1);
    let mut i = 0;
    while i + 1 < input.len() {
        match input[i] {
            b' ' => {}
            b'>' => break,
            _ => match hex_pair(input, i) {
                Some(b) => {
                    out.push(b);
                    i += 1;
                }
                None if input.len() - i < 4 => {}
                None => {
                    return Step::Failed(format!("ASCIIHexDecode: not a hex digit at offset {i}"));
                }
            },
        }
        i += 1;
    }
    Step::Decoded(out)
}

/// ASCII85Decode. The data ends at `~>`; without one, a last partial group
/// is dropped. A partial group before `~>` is rounded up, as ClamAV does.
fn ascii85(input: &[u8]) -> Step {
    let mut out = Vec::with_capacity(input.len() / 5 * 4 + 4);
    let mut quintet = 0u32;
    let mut sum: u64 = 0;
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        i += 1;
        let end = byte == b'~' && input.get(i) == Some(&b'>');
        if end {
            if quintet == 1 {
                return Step::Failed("ASCII85Decode: a lone byte in the last group".into());
            }
            if quintet > 1 {
                for _ in quintet..5 {
                    sum = sum.wrapping_mul(85);
                }
                sum = sum.wrapping_add(0xFF_FFFF >> ((quintet - 2) * 8));
                for k in 0..quintet - 1 {
                    out.push((sum >> (24 - 8 * k)) as u8);
                }
            }
            break;
        }
        match byte {
            b'!'..=b'u' => {
                sum = sum.wrapping_mul(85).wrapping_add(u64::from(byte - b'!'));
                quintet += 1;
                if quintet == 5 {
                    out.extend_from_slice(&[
                        (sum >> 24) as u8,
                        (sum >> 16) as u8,
                        (sum >> 8) as u8,
                        sum as u8,
                    ]);
                    quintet = 0;
                    sum = 0;
                }
            }
            b'z' if quintet == 0 => out.extend_from_slice(&[0; 4]),
            b'z' => {
                return Step::Failed(format!(
                    "ASCII85Decode: 'z' inside a group at offset {}",
                    i - 1
                ));
            }
            b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => {}
            other => {
                return Step::Failed(format!(
                    "ASCII85Decode: byte 0x{other:02x} at offset {}",
                    i - 1
                ));
            }
        }
    }
    Step::Decoded(out)
}

/// RunLengthDecode: a length byte below 128 copies that many plus one bytes,
/// above 128 repeats the next byte 257 minus it times, 128 ends the data.
fn run_length(input: &[u8], cap: usize) -> Step {
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let n = usize::from(input[at]);
        at += 1;
        match n {
            0..=127 => {
                let Some(run) = input.get(at..at + n + 1) else {
                    return Step::Failed(format!(
                        "RunLengthDecode: a run of {} bytes at offset {at} passes the end",
                        n + 1
                    ));
                };
                out.extend_from_slice(run);
                at += n + 1;
            }
            128 => break,
            _ => {
                let Some(&b) = input.get(at) else {
                    return Step::Failed("RunLengthDecode: a repeat without its byte".into());
                };
                out.resize(out.len() + 257 - n, b);
                at += 1;
            }
        }
        if out.len() > cap {
            return Step::Failed(format!("RunLengthDecode: output over {cap} bytes"));
        }
    }
    Step::Decoded(out)
}

/// Where ClamAV retries a Flate or LZW stream that gave nothing: after the
/// first run of line ends (or at the end when there is none).
fn next_line_start(b: &[u8]) -> usize {
    let mut seen = false;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' || c == b'\r' {
            seen = true;
        } else if seen {
            return i;
        }
    }
    b.len()
}

/// How a decoder run ended.
enum Ended {
    /// The input ran out (finished or not): what was decoded is good.
    Fine,
    /// The data broke off; what was decoded before is kept unless empty.
    Error(String),
    /// Over the size cap.
    TooBig,
}

/// FlateDecode (zlib format), as ClamAV drives zlib: a leading lone `\r` is
/// skipped; a stream that gives nothing and fails is retried from its next
/// line; corrupt data after some output keeps that output.
fn inflate(input: &[u8], cap: usize) -> Step {
    let input = match input.split_first() {
        Some((b'\r', [])) => return Step::Decoded(input.to_vec()),
        Some((b'\r', rest)) => rest,
        _ => input,
    };
    let (mut out, mut ended, end_of_stream) = inflate_run(input, cap);
    if out.is_empty() && (end_of_stream || !matches!(ended, Ended::Fine)) {
        let from = next_line_start(input);
        (out, ended, _) = inflate_run(&input[from..], cap);
        if from == input.len() {
            ended = Ended::Error("FlateDecode: no zlib data".into());
        }
    }
    finish("FlateDecode", out, ended)
}

fn finish(name: &str, out: Vec<u8>, ended: Ended) -> Step {
    match ended {
        Ended::TooBig => Step::Failed(format!("{name}: output over the size limit")),
        Ended::Error(e) if out.is_empty() => Step::Failed(format!("{name}: {e}")),
        Ended::Fine | Ended::Error(_) => Step::Decoded(out),
    }
}

/// One zlib run over `input`: its output, how it ended, and whether the
/// stream's end was reached.
fn inflate_run(input: &[u8], cap: usize) -> (Vec<u8>, Ended, bool) {
    const CHUNK: usize = 256 << 10;
    let mut z = Decompress::new(true);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() == out.capacity() {
            if out.len() >= cap {
                return (out, Ended::TooBig, false);
            }
            out.reserve_exact(CHUNK.min(cap - out.len()).max(1));
        }
        let consumed = z.total_in() as usize;
        let rest = input.get(consumed..).unwrap_or(&[]);
        let before = (z.total_in(), z.total_out());
        match z.decompress_vec(rest, &mut out, FlushDecompress::None) {
            Ok(Status::StreamEnd) => return (out, Ended::Fine, true),
            Ok(_) => {
                if z.total_in() as usize >= input.len() && out.len() < out.capacity() {
                    return (out, Ended::Fine, false);
                }
                if (z.total_in(), z.total_out()) == before && out.len() < out.capacity() {
                    return (out, Ended::Fine, false);
                }
            }
            Err(e) => return (out, Ended::Error(e.to_string()), false),
        }
    }
}

/// LZWDecode, the TIFF/PDF variant ClamAV uses (`lzw/lzwdec.c`): 9 to 12
/// bit codes, most significant bit first, 256 clears, 257 ends; with
/// `early_change` (the default) the code width grows one code early.
fn lzw(input: &[u8], early_change: bool, cap: usize) -> Step {
    let input = match input.split_first() {
        Some((b'\r', [])) => return Step::Decoded(input.to_vec()),
        Some((b'\r', rest)) => rest,
        _ => input,
    };
    let (mut out, mut ended, end_code) = lzw_run(input, early_change, cap);
    if out.is_empty() && (end_code || !matches!(ended, Ended::Fine)) {
        let from = next_line_start(input);
        (out, ended, _) = lzw_run(&input[from..], early_change, cap);
        if from == input.len() {
            ended = Ended::Error("no LZW data".into());
        }
    }
    finish("LZWDecode", out, ended)
}

const CLEAR: u16 = 256;
const EOI: u16 = 257;
const FIRST: u16 = 258;
const TABLE: usize = 4096;

#[derive(Clone, Copy, Default)]
struct Entry {
    prev: u16,
    len: u16,
    value: u8,
    first: u8,
}

struct Bits<'a> {
    input: &'a [u8],
    at: usize,
    data: u64,
    count: u32,
}

impl Bits<'_> {
    fn code(&mut self, width: u32) -> Option<u16> {
        let mut byte = || {
            let b = *self.input.get(self.at)?;
            self.at += 1;
            Some(b)
        };
        let b = byte()?;
        self.data = self.data << 8 | u64::from(b);
        self.count += 8;
        if self.count < width {
            let b = byte()?;
            self.data = self.data << 8 | u64::from(b);
            self.count += 8;
        }
        let code = (self.data >> (self.count - width)) & ((1 << width) - 1);
        self.count -= width;
        Some(code as u16)
    }
}

/// One LZW run: output, how it ended, and whether the end code was met.
fn lzw_run(input: &[u8], early_change: bool, cap: usize) -> (Vec<u8>, Ended, bool) {
    let mut table = vec![Entry::default(); TABLE];
    for (code, e) in table.iter_mut().enumerate().take(256) {
        *e = Entry {
            prev: u16::MAX,
            len: 1,
            value: code as u8,
            first: code as u8,
        };
    }
    let mut bits = Bits {
        input,
        at: 0,
        data: 0,
        count: 0,
    };
    let mut out = Vec::new();
    let mut width = 9u32;
    let mut free = FIRST;
    let mut old = CLEAR;
    let mut string = Vec::with_capacity(TABLE);
    // The first code is read as if after a clear.
    let mut code = CLEAR;
    loop {
        if code == CLEAR {
            free = FIRST;
            width = 9;
            while code == CLEAR {
                match bits.code(width) {
                    Some(c) => code = c,
                    None => return (out, Ended::Fine, false),
                }
            }
            match code {
                EOI => return (out, Ended::Fine, true),
                c if c >= FIRST => {
                    return (
                        out,
                        Ended::Error("a code before any was defined".into()),
                        false,
                    );
                }
                c => out.push(c as u8),
            }
            old = code;
        }
        let Some(c) = bits.code(width) else {
            return (out, Ended::Fine, false);
        };
        code = c;
        match code {
            EOI => return (out, Ended::Fine, true),
            CLEAR => continue,
            _ => {}
        }
        let max_code = |w: u32| (1u16 << w) - 2;
        if usize::from(free) < TABLE {
            if !early_change && free > max_code(width) && width < 12 {
                width += 1;
            }
            let prev = table[usize::from(old)];
            let value = if code < free {
                table[usize::from(code)].first
            } else {
                prev.first
            };
            table[usize::from(free)] = Entry {
                prev: old,
                len: prev.len + 1,
                value,
                first: prev.first,
            };
            free += 1;
            if early_change && free > max_code(width) && width < 12 {
                width += 1;
            }
            old = code;
        }
        if code >= CLEAR {
            if code >= free {
                return (
                    out,
                    Ended::Error(format!("code {code} is not defined yet")),
                    false,
                );
            }
            string.clear();
            let mut c = code;
            while c != u16::MAX {
                let e = table[usize::from(c)];
                string.push(e.value);
                c = e.prev;
            }
            out.extend(string.iter().rev());
        } else {
            out.push(code as u8);
        }
        if out.len() > cap {
            return (out, Ended::TooBig, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(s: Step) -> Vec<u8> {
        match s {
            Step::Decoded(v) => v,
            Step::Stop => panic!("stopped"),
            Step::Failed(e) => panic!("failed: {e}"),
        }
    }

    #[test]
    fn lzw_spec_example() {
        // The example of the PDF reference (7.4.4.2): 2D 2D 2D 2D 2D 41 2D 2D 2D 42.
        let enc = [0x80, 0x0B, 0x60, 0x50, 0x22, 0x0C, 0x0C, 0x85, 0x01];
        assert_eq!(
            decoded(lzw(&enc, true, 1 << 20)),
            [0x2D, 0x2D, 0x2D, 0x2D, 0x2D, 0x41, 0x2D, 0x2D, 0x2D, 0x42]
        );
    }

    #[test]
    fn ascii85_partial_group_rounds_up() {
        assert_eq!(decoded(ascii85(b"87cURD]i,\"Ebo80~>")), b"Hello World!");
        assert_eq!(decoded(ascii85(b"87cUR~>")), b"Hell");
        assert_eq!(decoded(ascii85(b"z~>")), [0; 4]);
        assert!(matches!(ascii85(b"8z~>"), Step::Failed(_)));
    }
}
