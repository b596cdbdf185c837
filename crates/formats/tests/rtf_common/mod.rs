//! Builders of RTF documents with embedded objects, shared by
//! aether-formats' RTF tests and the engine's clamscan differential.

#![allow(dead_code)]

use std::fmt::Write as _;

/// The OLE1 object header Word writes before a class name.
const OLE1_MAGIC: [u8; 8] = [0x01, 0x05, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];

/// An OLE1 object: header, class name, eight bytes, sized payload.
pub fn ole1(class: &str, payload: &[u8]) -> Vec<u8> {
    let mut o = OLE1_MAGIC.to_vec();
    let mut name = class.as_bytes().to_vec();
    name.push(0);
    o.extend_from_slice(&(name.len() as u32).to_le_bytes());
    o.extend_from_slice(&name);
    o.extend_from_slice(&[0; 8]);
    o.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    o.extend_from_slice(payload);
    o
}

/// The packager's native data around a file (what `\1Ole10Native` holds).
pub fn package(name: &str, file: &[u8]) -> Vec<u8> {
    let path = format!("C:\\temp\\{name}");
    let mut p = vec![2, 0];
    for s in [name, path.as_str()] {
        p.extend_from_slice(s.as_bytes());
        p.push(0);
    }
    p.extend_from_slice(&[0, 0, 3, 0]);
    p.extend_from_slice(&((path.len() + 1) as u32).to_le_bytes());
    p.extend_from_slice(path.as_bytes());
    p.push(0);
    p.extend_from_slice(&(file.len() as u32).to_le_bytes());
    p.extend_from_slice(file);
    p
}

/// Hex text as Word writes it: lower case, lines of `width` digits.
pub fn hex_lines(data: &[u8], width: usize) -> String {
    let mut s = String::new();
    for (i, b) in data.iter().enumerate() {
        if i > 0 && (i * 2) % width.max(2) == 0 {
            s.push_str("\r\n");
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A document with `objects` (already hex text) each in an
/// `{\object\objemb{\*\objdata ...}}` group, between paragraphs.
pub fn document(objects: &[String]) -> Vec<u8> {
    let mut d = String::from(
        "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times New Roman;}}\n\\pard Hello.\\par\n",
    );
    for o in objects {
        let _ = writeln!(
            d,
            "{{\\object\\objemb\\objw855\\objh765{{\\*\\objclass Package}}{{\\*\\objdata {o}}}}}\\par"
        );
    }
    d.push_str("}\n");
    d.into_bytes()
}

/// A document embedding `file` as a packaged (OLE1 `Package`) object.
pub fn packaged(name: &str, file: &[u8]) -> Vec<u8> {
    document(&[hex_lines(&ole1("Package", &package(name, file)), 128)])
}
