//! Builders of OLE2 test documents shared by aether-formats' reader tests
//! and the engine's clamscan differential test (included there by path).

#![allow(dead_code)]

use std::io::{Cursor, Write};

use cfb::{CompoundFile, Version};

pub fn build(version: Version, streams: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut c =
        CompoundFile::create_with_version(version, Cursor::new(Vec::new())).expect("create");
    for (path, data) in streams {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            let dir = format!("/{}", parts[..i].join("/"));
            if !c.exists(&dir) {
                c.create_storage(&dir).expect("storage");
            }
        }
        let mut s = c.create_stream(format!("/{path}")).expect("stream");
        s.write_all(data).expect("write");
    }
    c.flush().expect("flush");
    c.into_inner().into_inner()
}

/// MS-OVBA's compressed container with literal tokens only.
pub fn compress(text: &[u8]) -> Vec<u8> {
    let mut out = vec![1u8];
    for chunk in text.chunks(4096) {
        let mut body = Vec::new();
        for group in chunk.chunks(8) {
            body.push(0);
            body.extend_from_slice(group);
        }
        let size = (body.len() - 1) as u16 | 0xb000;
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// A `_VBA_PROJECT` stream in the layout ClamAV's `cli_vba_readdir`
/// reads (Office 97-2003): a header, a project string, markers, then a
/// record per module with where its source starts.
pub fn legacy_vba_project(modules: &[(&str, u32)]) -> Vec<u8> {
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let mut p = vec![0xcc, 0x61];
    p.extend_from_slice(&[0x5e, 0x00, 0x00, 0x01]);
    p.extend_from_slice(&[0; 28]);
    let reference = utf16("*\\G{000204EF-0000-0000-C000-000000000046}#4.0#9#VBE6.DLL#Visual Basic");
    p.extend_from_slice(&(reference.len() as u16).to_le_bytes());
    p.extend_from_slice(&reference);
    p.extend_from_slice(&[0, 0]); // no length follows: ten bytes, a "middle"
    p.extend_from_slice(&[0x77; 10]);
    p.extend_from_slice(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    p.extend_from_slice(&[0x33; 100]);
    p.extend_from_slice(&(modules.len() as u16).to_le_bytes());
    for (name, offset) in modules {
        let n = utf16(name);
        p.extend_from_slice(&(n.len() as u16).to_le_bytes());
        p.extend_from_slice(&n);
        p.extend_from_slice(&[0, 0]); // nothing to skip
        p.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]); // then eight bytes
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[0, 0]); // no 8-byte items
        p.extend_from_slice(&[0; 5]);
        p.extend_from_slice(&offset.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
    }
    p
}
