//! A writer of Symbian installers (pre-9.x `.sis`), shared by
//! aether-formats' SIS tests and the engine's clamscan differential.

#![allow(dead_code)]

use std::io::Write;

/// A file record: its name and, per language, its contents.
pub struct File<'a> {
    pub name: &'a str,
    pub copies: Vec<&'a [u8]>,
    /// File type (0 simple, 4 null: not to be read).
    pub ftype: u32,
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("zlib");
    e.finish().expect("zlib")
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A package of `files` in `langs` languages (each file gives one copy per
/// language), zlib-compressed unless `stored`; `extra` is one more record
/// (raw words) before the files.
pub fn sis(langs: u16, files: &[File<'_>], stored: bool, extra: &[u32]) -> Vec<u8> {
    let header = 16 + 68;
    let plangs = header;
    let pfiles = plangs + 2 * usize::from(langs);
    let records: usize = extra.len() * 4
        + files
            .iter()
            .map(|_| 4 * (7 + 3 * usize::from(langs)) + 8)
            .sum::<usize>();
    let data_at = pfiles + records;
    let mut recs = Vec::new();
    let mut tail = Vec::new();
    for w in extra {
        recs.extend_from_slice(&w.to_le_bytes());
    }
    for f in files {
        let name = utf16(f.name);
        let name_at = data_at + tail.len();
        tail.extend_from_slice(&name);
        let packed: Vec<Vec<u8>> = f
            .copies
            .iter()
            .map(|c| if stored { c.to_vec() } else { zlib(c) })
            .collect();
        let mut ptrs = Vec::new();
        for p in &packed {
            ptrs.push(data_at + tail.len());
            tail.extend_from_slice(p);
        }
        for w in [
            0,
            f.ftype,
            0,
            name.len() as u32,
            name_at as u32,
            name.len() as u32,
            name_at as u32,
        ] {
            recs.extend_from_slice(&w.to_le_bytes());
        }
        for p in &packed {
            recs.extend_from_slice(&(p.len() as u32).to_le_bytes());
        }
        for p in &ptrs {
            recs.extend_from_slice(&(*p as u32).to_le_bytes());
        }
        for c in &f.copies {
            recs.extend_from_slice(&(c.len() as u32).to_le_bytes());
        }
        recs.extend_from_slice(&[0; 8]);
    }
    let mut out = Vec::new();
    for uid in [0x1000_0000u32 | 0x1234, 0x1000_006d, 0x1000_0419, 0] {
        out.extend_from_slice(&uid.to_le_bytes());
    }
    // The extra words are one record.
    let records = files.len() as u16 + u16::from(!extra.is_empty());
    for v in [0u16, langs, records, 0, langs, 0, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&200u32.to_le_bytes());
    let flags: u16 = if stored { 8 } else { 0 };
    for v in [flags, 0, 1, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    for v in [plangs as u32, pfiles as u32, 0, 0, 0, 0, 0, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(out.len(), header);
    for l in 0..langs {
        out.extend_from_slice(&(l + 1).to_le_bytes());
    }
    out.extend_from_slice(&recs);
    out.extend_from_slice(&tail);
    out
}
