//! Email: single RFC 822 / MIME messages and mbox files (ClamAV's
//! `CL_TYPE_MAIL`).
//!
//! ClamAV's `mbox.c` decodes every MIME part of a message (base64,
//! quoted-printable, uuencode) into a file of its own and scans it, text
//! bodies included, and walks into attached `message/rfc822` messages and each
//! message of an mbox. This module does the same with the `mail-parser` crate
//! for the MIME structure and transfer encodings, and by hand for the two
//! things it leaves alone: splitting an mbox on its `From ` lines, and
//! uuencoded blocks (`begin 644 name` ... `end`) inside a part.
//!
//! A mail is read whole (bounded by [`MAX_MAIL`]): MIME boundaries can only be
//! found by looking ahead, and mail-parser works on a byte slice. Its work is
//! bounded by the input's size; the members and nesting depth are capped here.

use std::borrow::Cow;
use std::io::Cursor;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, Message, MessageParser, MimeHeaders, PartType};

use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

/// The largest mail read: ClamAV's default `--max-filesize` is 100 MiB, but a
/// mail is held in memory here, with its decoded parts.
pub(crate) const MAX_MAIL: u64 = 64 << 20;
/// Members (decoded parts and uuencoded blocks) given at most per mail file.
const MAX_MEMBERS: usize = 10_000;
/// Attached messages inside attached messages, at most.
const MAX_DEPTH: u32 = 16;

/// Walks the parts of the mail or mbox in `src`.
pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let size = src.size();
    if size > MAX_MAIL {
        visitor.problem(Problem::Broken {
            member: None,
            detail: format!("mail of {size} bytes is larger than {MAX_MAIL}, not opened"),
        });
        return Ok(());
    }
    let mut data = vec![0u8; size as usize];
    src.read_exact_at(&mut data, 0)?;
    let mut w = MailWalk {
        visitor,
        parser: MessageParser::new(),
        members: 0,
    };
    for (i, message) in split_mbox(&data).enumerate() {
        let prefix = if data.starts_with(b"From ") {
            format!("message{}/", i + 1)
        } else {
            String::new()
        };
        if w.message(message, &prefix, 0) == Flow::Stop {
            break;
        }
    }
    Ok(())
}

/// The messages of an mbox (a file starting with a `From ` envelope line),
/// each without its envelope line; any other file is one message.
fn split_mbox(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mbox = data.starts_with(b"From ");
    let mut rest = if mbox { data } else { &[][..] };
    let mut single = (!mbox).then_some(data);
    std::iter::from_fn(move || {
        if let Some(d) = single.take() {
            return Some(d);
        }
        if rest.is_empty() {
            return None;
        }
        // `rest` starts with an envelope line: skip it.
        let body_start = memchr::memchr(b'\n', rest).map_or(rest.len(), |n| n + 1);
        let body = &rest[body_start..];
        let end = memchr::memmem::find(body, b"\nFrom ").map_or(body.len(), |n| n + 1);
        let message = &body[..end];
        rest = &body[end..];
        Some(message)
    })
}

struct MailWalk<'v> {
    visitor: &'v mut dyn Visitor,
    parser: MessageParser,
    members: usize,
}

impl MailWalk<'_> {
    fn message(&mut self, raw: &[u8], prefix: &str, depth: u32) -> Flow {
        match self.parser.parse(raw) {
            Some(m) => self.parts(&m, prefix, depth),
            // mail-parser gives nothing for an empty or header-less input.
            None => Flow::Continue,
        }
    }

    fn parts(&mut self, m: &Message<'_>, prefix: &str, depth: u32) -> Flow {
        for (i, part) in m.parts.iter().enumerate() {
            let fallback = format!("{prefix}part{i}");
            let name = part
                .attachment_name()
                .map(|n| format!("{prefix}{n}"))
                .unwrap_or_else(|| fallback.clone());
            let bytes: Cow<'_, [u8]> = match &part.body {
                PartType::Multipart(_) => continue,
                PartType::Message(inner) => {
                    if depth >= MAX_DEPTH {
                        if self.visitor.problem(Problem::Broken {
                            member: Some(name),
                            detail: format!("messages nested deeper than {MAX_DEPTH}"),
                        }) == Flow::Stop
                        {
                            return Flow::Stop;
                        }
                        continue;
                    }
                    if self.parts(inner, &format!("{fallback}/"), depth + 1) == Flow::Stop {
                        return Flow::Stop;
                    }
                    continue;
                }
                PartType::Text(_) | PartType::Html(_) => text_bytes(m, part),
                PartType::Binary(b) | PartType::InlineBinary(b) => Cow::Borrowed(b.as_ref()),
            };
            if self.member(name, bytes.to_vec()) == Flow::Stop {
                return Flow::Stop;
            }
            for (uname, decoded) in uudecode_blocks(&bytes) {
                if self.member(format!("{prefix}{uname}"), decoded) == Flow::Stop {
                    return Flow::Stop;
                }
            }
        }
        Flow::Continue
    }

    fn member(&mut self, name: String, bytes: Vec<u8>) -> Flow {
        if self.members >= MAX_MEMBERS {
            self.visitor.problem(Problem::Broken {
                member: Some(name),
                detail: format!("more than {MAX_MEMBERS} parts in one mail, the rest skipped"),
            });
            return Flow::Stop;
        }
        self.members += 1;
        if check_name(self.visitor, &name) == Flow::Stop {
            return Flow::Stop;
        }
        let len = bytes.len() as u64;
        let mut m = Member::new(name, Body::Read(Box::new(Cursor::new(bytes))));
        m.declared_size = Some(len);
        visit(self.visitor, &mut m)
    }
}

/// A text part's bytes as ClamAV writes them: transfer encoding undone but
/// no charset conversion (which mail-parser's text would have applied), as
/// signatures are written against the bytes; and, but for base64, line by
/// line as ClamAV's `message.c` does, each line ending in `\n` (CRLF made LF,
/// the line break before the next boundary kept).
fn text_bytes<'m>(m: &'m Message<'_>, part: &'m mail_parser::MessagePart<'_>) -> Cow<'m, [u8]> {
    let (start, end) = (part.offset_body as usize, part.offset_end as usize);
    let Some(raw) = m.raw_message.get(start..end) else {
        return Cow::Borrowed(part.contents());
    };
    let decoded = match part.encoding {
        Encoding::Base64 => {
            return base64_decode(raw)
                .map(Cow::Owned)
                .unwrap_or_else(|| Cow::Borrowed(part.contents()));
        }
        Encoding::None => raw.to_vec(),
        Encoding::QuotedPrintable => match quoted_printable_decode(raw) {
            Some(d) => d,
            None => return Cow::Borrowed(part.contents()),
        },
    };
    let mut out = Vec::with_capacity(decoded.len() + 1);
    let mut lines = decoded.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        if lines.peek().is_some() {
            out.push(b'\n');
        }
    }
    let rest = m.raw_message.get(end..).unwrap_or_default();
    let eaten = rest.starts_with(b"\n") || rest.starts_with(b"\r\n");
    if eaten || !(out.is_empty() || out.ends_with(b"\n")) {
        out.push(b'\n');
    }
    Cow::Owned(out)
}

/// Every uuencoded block (`begin <mode> <name>` ... `end`) in `text`, decoded,
/// with its name. Lines that are not uuencode end a block early, as a
/// truncated block still holds what was decoded.
pub(crate) fn uudecode_blocks(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut lines = text.split(|&b| b == b'\n');
    while let Some(line) = lines.next() {
        let Some(name) = begin_line(line) else {
            continue;
        };
        let mut data = Vec::new();
        for line in lines.by_ref() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line == b"end" || !uuline(line, &mut data) {
                break;
            }
        }
        out.push((name, data));
    }
    out
}

/// The name on a `begin 644 name` line.
fn begin_line(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"begin ")?;
    let space = memchr::memchr(b' ', rest)?;
    let (mode, name) = (&rest[..space], &rest[space + 1..]);
    if !(3..=4).contains(&mode.len()) || !mode.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return None;
    }
    Some(String::from_utf8_lossy(name).trim().to_string())
}

/// Decodes one uuencoded line into `out`; false if it is not one or is the
/// empty line that ends the data.
fn uuline(line: &[u8], out: &mut Vec<u8>) -> bool {
    let Some((&count, chars)) = line.split_first() else {
        return false;
    };
    if !(b' '..=b'`').contains(&count) {
        return false;
    }
    let n = usize::from((count - b' ') & 0x3f);
    if n == 0 {
        return false;
    }
    let six = |c: u8| (c.wrapping_sub(b' ')) & 0x3f;
    let mut bytes = Vec::with_capacity(n + 2);
    for quad in chars.chunks(4) {
        let mut q = [b'`'; 4];
        for (d, s) in q.iter_mut().zip(quad) {
            *d = *s;
        }
        let v = (u32::from(six(q[0])) << 18)
            | (u32::from(six(q[1])) << 12)
            | (u32::from(six(q[2])) << 6)
            | u32::from(six(q[3]));
        bytes.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
    }
    bytes.truncate(n);
    out.extend_from_slice(&bytes);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uudecode_round_trip() {
        // "Cat" uuencoded is "#0V%T".
        let text = b"hello\nbegin 644 cat.txt\n#0V%T\n`\nend\nbye\n";
        assert_eq!(
            uudecode_blocks(text),
            vec![("cat.txt".to_string(), b"Cat".to_vec())]
        );
    }

    #[test]
    fn mbox_split() {
        let m: Vec<&[u8]> =
            split_mbox(b"From a\nSubject: 1\n\nx\nFrom b\nSubject: 2\n\ny\n").collect();
        assert_eq!(m, [&b"Subject: 1\n\nx\n"[..], &b"Subject: 2\n\ny\n"[..]]);
        let one: Vec<&[u8]> = split_mbox(b"Subject: 1\n\nx\n").collect();
        assert_eq!(one, [&b"Subject: 1\n\nx\n"[..]]);
    }
}
