//! Unix `ar` archives (static libraries, Debian packages): GNU and BSD names.

use std::io::BufReader;

use crate::source::{ReadAt, SourceReader};
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

const MAGIC: &[u8] = b"!<arch>\n";

fn field(h: &[u8], range: std::ops::Range<usize>) -> &str {
    std::str::from_utf8(&h[range]).unwrap_or("").trim_end()
}

pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let size = src.size();
    let mut pos = MAGIC.len() as u64;
    // GNU's table of long names ("//").
    let mut long_names: Vec<u8> = Vec::new();
    while pos < size {
        let mut h = [0u8; 60];
        if src.read_exact_at(&mut h, pos).is_err() || &h[58..60] != b"`\n" {
            visitor.problem(Problem::Broken {
                member: None,
                detail: format!("ar: bad member header at offset {pos}"),
            });
            return Ok(());
        }
        let Ok(len) = field(&h, 48..58).parse::<u64>() else {
            visitor.problem(Problem::Broken {
                member: None,
                detail: format!("ar: bad size at offset {pos}"),
            });
            return Ok(());
        };
        let mut data = pos + 60;
        let mut data_len = len;
        let raw_name = field(&h, 0..16).to_string();
        let name = if raw_name == "//" {
            // Bounded by the archive's size, read once.
            let n = len.min(size.saturating_sub(data)).min(16 << 20) as usize;
            long_names = vec![0u8; n];
            src.read_exact_at(&mut long_names, data)?;
            None
        } else if raw_name == "/" || raw_name == "/SYM64/" || raw_name.starts_with("__.SYMDEF") {
            None
        } else if let Some(idx) = raw_name
            .strip_prefix('/')
            .and_then(|i| i.parse::<usize>().ok())
        {
            let rest = long_names.get(idx..).unwrap_or(&[]);
            let end = rest
                .iter()
                .position(|&b| b == b'\n' || b == 0)
                .unwrap_or(rest.len());
            let n = String::from_utf8_lossy(&rest[..end]).into_owned();
            Some(n.strip_suffix('/').map(str::to_string).unwrap_or(n))
        } else if let Some(n) = raw_name
            .strip_prefix("#1/")
            .and_then(|n| n.parse::<u64>().ok())
        {
            // BSD: the name follows the header and counts in the size.
            let n = n.min(len).min(4096);
            let mut buf = vec![0u8; n as usize];
            if src.read_exact_at(&mut buf, data).is_err() {
                visitor.problem(Problem::Broken {
                    member: None,
                    detail: format!("ar: truncated name at offset {data}"),
                });
                return Ok(());
            }
            data += n;
            data_len -= n;
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            Some(String::from_utf8_lossy(&buf[..end]).into_owned())
        } else {
            Some(raw_name.strip_suffix('/').unwrap_or(&raw_name).to_string())
        };
        let end = data.saturating_add(data_len);
        if let Some(name) = name {
            if check_name(visitor, &name) == Flow::Stop {
                return Ok(());
            }
            if end > size
                && visitor.problem(Problem::Broken {
                    member: Some(name.clone()),
                    detail: format!("ar: member runs {} bytes past the end", end - size),
                }) == Flow::Stop
            {
                return Ok(());
            }
            let reader = BufReader::with_capacity(64 << 10, SourceReader::new(src, data, end));
            let mut m = Member::new(name, Body::Read(Box::new(reader)));
            m.declared_size = Some(data_len);
            m.packed_size = Some(data_len);
            if visit(visitor, &mut m) == Flow::Stop {
                return Ok(());
            }
        }
        // Members are aligned to two bytes.
        pos = end.saturating_add(end & 1);
    }
    Ok(())
}
