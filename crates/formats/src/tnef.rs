//! TNEF (`winmail.dat`, Outlook's Transport Neutral Encapsulation Format):
//! the attachments' data, as ClamAV's `tnef.c` gives it.
//!
//! A TNEF stream is a signature, two bytes of key, and attributes: a level
//! byte (1 message, 2 attachment), a 16-bit tag and type, a 32-bit length,
//! the data and a 16-bit checksum (not checked). ClamAV keeps one file at a
//! time: attachment data (`attAttachData`) is appended to it and the first
//! attachment title (`attAttachTitle`) names it; a message-level attribute
//! starts a new one. So two attachments with no message attribute between
//! them are one file, and data that never got a name before a message
//! attribute is dropped; the last file is kept, named `tnef` if unnamed.
//! Also as ClamAV: an attribute of length 0 has its checksum read as the
//! next attribute, and a file that ends early is scanned with what it has.
//!
//! ClamAV scans the files only once the whole stream was read without a
//! format error (a negative or overlong length, an unknown level): then
//! nothing is given, and a [`Problem::Broken`] is reported. So attachments
//! are collected before any is visited; together they are no larger than
//! the input.

use std::io::Cursor;

use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

const SIGNATURE: u32 = 0x223e_9f78;
const LEVEL_MESSAGE: u8 = 1;
const LEVEL_ATTACHMENT: u8 = 2;
const ATT_ATTACH_DATA: u16 = 0x800f;
const ATT_ATTACH_TITLE: u16 = 0x8010;
/// Largest input read: attachments are held in memory until the end.
const MAX_TNEF: u64 = 256 << 20;

/// The file being written: its name, once an attachment title gave one.
#[derive(Default)]
struct Blob {
    name: Option<String>,
    data: Vec<u8>,
}

/// One attribute's header.
struct Attribute {
    level: u8,
    tag: u16,
    length: i32,
}

/// How reading a header ended.
enum Header {
    Attribute(Attribute),
    /// The end: a level byte of 0, the end of the input, or a trailing line
    /// break.
    End,
    /// The input ends inside the header.
    Cut,
}

fn header(src: &dyn ReadAt, pos: &mut u64) -> std::io::Result<Header> {
    let mut level = [0u8; 1];
    if src.read_at(&mut level, *pos)? != 1 {
        return Ok(Header::End);
    }
    *pos += 1;
    if level[0] == 0 {
        return Ok(Header::End);
    }
    let mut b = [0u8; 4];
    let n = read_upto(src, &mut b, *pos)?;
    if n != 4 {
        if matches!(level[0], b'\n' | b'\r') && n == 0 {
            return Ok(Header::End);
        }
        return Ok(Header::Cut);
    }
    *pos += 4;
    let tag = u16::from_le_bytes([b[0], b[1]]);
    if read_upto(src, &mut b, *pos)? != 4 {
        return Ok(Header::Cut);
    }
    *pos += 4;
    Ok(Header::Attribute(Attribute {
        level: level[0],
        tag,
        length: i32::from_le_bytes(b),
    }))
}

/// Reads as much of `buf` as the input has at `offset`.
fn read_upto(src: &dyn ReadAt, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = src.read_at(&mut buf[got..], offset + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Walks the attachments of the TNEF stream in `src`.
pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let size = src.size();
    if size < 6 {
        return Ok(());
    }
    if size > MAX_TNEF {
        visitor.problem(Problem::Broken {
            member: None,
            detail: format!("TNEF of {size} bytes is larger than {MAX_TNEF}, not opened"),
        });
        return Ok(());
    }
    let mut sig = [0u8; 4];
    src.read_exact_at(&mut sig, 0)?;
    if u32::from_le_bytes(sig) != SIGNATURE {
        visitor.problem(Problem::Broken {
            member: None,
            detail: "TNEF: no signature".into(),
        });
        return Ok(());
    }
    let (files, error, cut) = read(src, size)?;
    if let Some(detail) = error {
        // ClamAV scans none of the files then.
        visitor.problem(Problem::Broken {
            member: None,
            detail,
        });
        return Ok(());
    }
    if let Some(at) = cut
        && visitor.problem(Problem::Broken {
            member: None,
            detail: format!("TNEF: cut inside the attribute header at offset {at}"),
        }) == Flow::Stop
    {
        return Ok(());
    }
    for (name, data) in files {
        if check_name(visitor, &name) == Flow::Stop {
            return Ok(());
        }
        let len = data.len() as u64;
        let mut m = Member::new(name, Body::Read(Box::new(Cursor::new(data))));
        m.declared_size = Some(len);
        if visit(visitor, &mut m) == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

type Files = Vec<(String, Vec<u8>)>;

/// The files ClamAV would write, the format error that makes it scan none
/// of them, and where the input ended inside a header.
fn read(src: &dyn ReadAt, size: u64) -> std::io::Result<(Files, Option<String>, Option<u64>)> {
    let mut files = Files::new();
    let mut blob: Option<Blob> = None;
    let keep = |b: Blob, files: &mut Files| {
        // A file with no name was never written; an empty one is removed.
        if let Some(name) = b.name
            && !b.data.is_empty()
        {
            files.push((name, b.data));
        }
    };
    let mut pos = 6u64;
    let mut cut = None;
    loop {
        let start = pos;
        let a = match header(src, &mut pos)? {
            Header::Attribute(a) => a,
            Header::End => break,
            Header::Cut => {
                cut = Some(start);
                break;
            }
        };
        if a.length == 0 {
            continue;
        }
        let Ok(length) = u64::try_from(a.length) else {
            return Ok((
                Files::new(),
                Some(format!("TNEF: negative length at offset {start}")),
                None,
            ));
        };
        let fits = pos.checked_add(length).is_some_and(|end| end <= size);
        match a.level {
            LEVEL_MESSAGE => {
                if let Some(b) = blob.take() {
                    keep(b, &mut files);
                }
                blob = Some(Blob::default());
            }
            LEVEL_ATTACHMENT => match a.tag {
                ATT_ATTACH_TITLE => {
                    if !fits {
                        return Ok((
                            Files::new(),
                            Some(format!(
                                "TNEF: attachment title at offset {start} runs past the end"
                            )),
                            None,
                        ));
                    }
                    let mut name = vec![0u8; length as usize];
                    src.read_exact_at(&mut name, pos)?;
                    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                    let b = blob.get_or_insert_with(Blob::default);
                    if b.name.is_none() {
                        b.name = Some(String::from_utf8_lossy(&name[..end]).into_owned());
                    }
                }
                ATT_ATTACH_DATA => {
                    let b = blob.get_or_insert_with(Blob::default);
                    let have = size.saturating_sub(pos).min(length) as usize;
                    let from = b.data.len();
                    b.data.resize(from + have, 0);
                    src.read_exact_at(&mut b.data[from..], pos)?;
                }
                _ => {}
            },
            other => {
                return Ok((
                    Files::new(),
                    Some(format!("TNEF: unknown level {other} at offset {start}")),
                    None,
                ));
            }
        }
        if !fits {
            return Ok((
                Files::new(),
                Some(format!(
                    "TNEF: attribute at offset {start} runs past the end"
                )),
                None,
            ));
        }
        pos += length + 2;
    }
    if let Some(mut b) = blob {
        if b.name.is_none() {
            b.name = Some("tnef".into());
        }
        keep(b, &mut files);
    }
    Ok((files, None, cut))
}
