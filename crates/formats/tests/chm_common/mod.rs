//! A writer of CHM (`ITSF` version 3) help files, shared by aether-formats'
//! CHM tests and the engine's clamscan differential.
//!
//! Files go to section 0 (stored) or section 1 (`MSCompressed`). No LZX
//! compressor is at hand, so section 1 is a valid LZX stream of
//! uncompressed blocks: one per 32 KiB frame, the decoder reset at every
//! frame, with a `ResetTable` giving each frame's offset.

#![allow(dead_code)]

const GUIDS: [u8; 32] = [
    0x10, 0xfd, 0x01, 0x7c, 0xaa, 0x7b, 0xd0, 0x11, 0x9e, 0x0c, 0x00, 0xa0, 0xc9, 0x22, 0xe6, 0xec,
    0x11, 0xfd, 0x01, 0x7c, 0xaa, 0x7b, 0xd0, 0x11, 0x9e, 0x0c, 0x00, 0xa0, 0xc9, 0x22, 0xe6, 0xec,
];
const CHUNK: usize = 4096;
const FRAME: usize = 0x8000;

/// A file: its name (`/...`), contents, and whether it is compressed.
pub type File<'a> = (&'a str, &'a [u8], bool);

fn encint(mut v: u64, out: &mut Vec<u8>) {
    let mut groups = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        groups.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.extend(groups.iter().rev());
}

/// One frame of output as an LZX uncompressed block (decoder reset before).
fn lzx_frame(data: &[u8]) -> Vec<u8> {
    // E8 bit 0, block type 3, 24-bit size, padding to 32 bits.
    let bits = (3u32 << 24 | data.len() as u32) << 4;
    let mut out = Vec::new();
    out.extend_from_slice(&((bits >> 16) as u16).to_le_bytes());
    out.extend_from_slice(&(bits as u16).to_le_bytes());
    for _ in 0..3 {
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// A help file of `files`.
pub fn chm(files: &[File<'_>]) -> Vec<u8> {
    // Section 1's uncompressed stream, padded to whole frames.
    let mut stream = Vec::new();
    let mut entries: Vec<(String, u64, u64, u64)> = Vec::new();
    let mut sec0 = Vec::new();
    for (name, data, compressed) in files {
        if *compressed {
            entries.push((name.to_string(), 1, stream.len() as u64, data.len() as u64));
            stream.extend_from_slice(data);
        } else {
            entries.push((name.to_string(), 0, sec0.len() as u64, data.len() as u64));
            sec0.extend_from_slice(data);
        }
    }
    let frames = stream.len().div_ceil(FRAME).max(1);
    stream.resize(frames * FRAME, 0);
    let mut content = Vec::new();
    let mut offsets = Vec::new();
    for f in stream.chunks(FRAME) {
        offsets.push(content.len() as u64);
        content.extend(lzx_frame(f));
    }
    let mut control = 6u32.to_le_bytes().to_vec();
    control.extend_from_slice(b"LZXC");
    for v in [2u32, 1, 2, 1, 0] {
        control.extend_from_slice(&v.to_le_bytes());
    }
    let mut table = Vec::new();
    for v in [2u32, offsets.len() as u32, 8, 0x28] {
        table.extend_from_slice(&v.to_le_bytes());
    }
    table.extend_from_slice(&(stream.len() as u64).to_le_bytes());
    table.extend_from_slice(&(content.len() as u64).to_le_bytes());
    table.extend_from_slice(&(FRAME as u32).to_le_bytes());
    table.extend_from_slice(&0u32.to_le_bytes());
    for o in &offsets {
        table.extend_from_slice(&o.to_le_bytes());
    }
    for (name, data) in [
        ("::DataSpace/Storage/MSCompressed/Content", &content),
        ("::DataSpace/Storage/MSCompressed/ControlData", &control),
        (
            "::DataSpace/Storage/MSCompressed/Transform/{7FC28940-9D31-11D0-9B27-00A0C91E9C7C}/InstanceData/ResetTable",
            &table,
        ),
    ] {
        entries.push((name.to_string(), 0, sec0.len() as u64, data.len() as u64));
        sec0.extend_from_slice(data);
    }
    // The listing chunk.
    let mut chunk = b"PMGL".to_vec();
    for v in [2u32, 0, u32::MAX, u32::MAX] {
        chunk.extend_from_slice(&v.to_le_bytes());
    }
    chunk.truncate(0x14);
    for (name, section, offset, length) in &entries {
        encint(name.len() as u64, &mut chunk);
        chunk.extend_from_slice(name.as_bytes());
        encint(*section, &mut chunk);
        encint(*offset, &mut chunk);
        encint(*length, &mut chunk);
    }
    assert!(chunk.len() <= CHUNK - 2, "too many names for one chunk");
    chunk.resize(CHUNK - 2, 0);
    chunk.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    let dir = 0x60 + 0x18 + 0x54;
    let sec0_at = dir + CHUNK;
    let total = sec0_at + sec0.len();
    let mut out = b"ITSF".to_vec();
    for v in [3u32, 0x60, 1, 0x1234_5678, 0x409] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&GUIDS);
    for v in [0x60u64, 0x18, 0x78, (0x54 + CHUNK) as u64, sec0_at as u64] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0x1feu32, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(total as u64).to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(b"ITSP");
    for v in [
        1u32,
        0x54,
        0x0a,
        CHUNK as u32,
        2,
        1,
        u32::MAX,
        0,
        0,
        u32::MAX,
        1,
        0x409,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&[0x6a; 16]);
    for v in [0x54u32, u32::MAX, u32::MAX, u32::MAX] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(out.len(), dir);
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&sec0);
    out
}
