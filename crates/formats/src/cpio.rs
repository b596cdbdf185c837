//! cpio archives: "new" ASCII (newc, crc), portable ASCII (odc) and the old
//! binary format in either byte order.

use std::io::BufReader;

use crate::source::{ReadAt, SourceReader};
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

const TRAILER: &str = "TRAILER!!!";
/// Longest name read; longer ones are cut (names are only for reports).
const MAX_NAME: u64 = 4096;

struct Header {
    mode: u64,
    name_len: u64,
    size: u64,
    /// Header length before the name.
    fixed: u64,
    /// Alignment of the name's end and of the data's end.
    align: u64,
}

fn num(field: &[u8], radix: u32) -> Option<u64> {
    let s = std::str::from_utf8(field).ok()?;
    u64::from_str_radix(s.trim_matches(|c: char| c == ' ' || c == '\0'), radix).ok()
}

fn header(src: &dyn ReadAt, pos: u64) -> Option<Header> {
    let mut h = [0u8; 110];
    let n = src.read_at(&mut h, pos).ok()?;
    let h = &h[..n];
    match h.get(..6)? {
        b"070701" | b"070702" => {
            let f = |i: usize| h.get(6 + i * 8..14 + i * 8).and_then(|x| num(x, 16));
            Some(Header {
                mode: f(1)?,
                size: f(6)?,
                name_len: f(11)?,
                fixed: 110,
                align: 4,
            })
        }
        b"070707" => Some(Header {
            mode: num(h.get(18..24)?, 8)?,
            name_len: num(h.get(59..65)?, 8)?,
            size: num(h.get(65..76)?, 8)?,
            fixed: 76,
            align: 1,
        }),
        [0xc7, 0x71, ..] | [0x71, 0xc7, ..] => {
            let le = h[0] == 0xc7;
            let w = |i: usize| {
                h.get(i * 2..i * 2 + 2).map(|x| {
                    if le {
                        u16::from_le_bytes([x[0], x[1]])
                    } else {
                        u16::from_be_bytes([x[0], x[1]])
                    }
                } as u64)
            };
            Some(Header {
                mode: w(3)?,
                name_len: w(10)?,
                size: (w(11)? << 16) | w(12)?,
                fixed: 26,
                align: 2,
            })
        }
        _ => None,
    }
}

fn align(v: u64, a: u64) -> u64 {
    v.saturating_add(a - 1) / a * a
}

pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let size = src.size();
    let mut pos = 0u64;
    while pos < size {
        let Some(h) = header(src, pos) else {
            visitor.problem(Problem::Broken {
                member: None,
                detail: format!("cpio: bad header at offset {pos}"),
            });
            return Ok(());
        };
        let name_at = pos + h.fixed;
        let mut name = vec![0u8; h.name_len.min(MAX_NAME) as usize];
        if src.read_exact_at(&mut name, name_at).is_err() {
            visitor.problem(Problem::Broken {
                member: None,
                detail: format!("cpio: truncated name at offset {name_at}"),
            });
            return Ok(());
        }
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let name = String::from_utf8_lossy(&name[..end]).into_owned();
        if name == TRAILER {
            return Ok(());
        }
        let data = align(name_at.saturating_add(h.name_len), h.align);
        let data_end = data.saturating_add(h.size);
        if h.mode & 0o170000 == 0o100000 && h.size > 0 {
            if check_name(visitor, &name) == Flow::Stop {
                return Ok(());
            }
            if data_end > size
                && visitor.problem(Problem::Broken {
                    member: Some(name.clone()),
                    detail: format!("cpio: member runs {} bytes past the end", data_end - size),
                }) == Flow::Stop
            {
                return Ok(());
            }
            let reader = BufReader::with_capacity(64 << 10, SourceReader::new(src, data, data_end));
            let mut m = Member::new(name, Body::Read(Box::new(reader)));
            m.declared_size = Some(h.size);
            m.packed_size = Some(h.size);
            if visit(visitor, &mut m) == Flow::Stop {
                return Ok(());
            }
        }
        let next = align(data_end, h.align);
        if next <= pos {
            return Ok(());
        }
        pos = next;
    }
    Ok(())
}
