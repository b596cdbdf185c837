//! The readers on archives built here byte by byte (or by the formats' own
//! tools where Debian has them), for the layouts the engine tests do not
//! reach: zstd, zip64, data before a zip, a zip without its central
//! directory, BSD and GNU ar names, big-endian binary cpio, names that climb.

use std::io::{self, Write};

use aether_formats::{FileType, Flow, Member, Problem, Visitor, detect, walk};
use legacy_common::walked_ok as members;

mod legacy_common;

fn local(name: &str, method: u16, crc: u32, csize: u32, usize_: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    for v in [20u16, 0, method, 0, 0] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    for v in [crc, csize, usize_] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h
}

fn central(
    name: &str,
    method: u16,
    crc: u32,
    csize: u32,
    usize_: u32,
    offset: u32,
    extra: &[u8],
) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    for v in [20u16, 20, 0, method, 0, 0] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    for v in [crc, csize, usize_] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    for v in [name.len() as u16, extra.len() as u16, 0, 0, 0] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&offset.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(extra);
    h
}

fn eocd(count: u16, cd_size: u32, cd_off: u32) -> Vec<u8> {
    let mut h = 0x0605_4b50u32.to_le_bytes().to_vec();
    for v in [0u16, 0, count, count] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&cd_size.to_le_bytes());
    h.extend_from_slice(&cd_off.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h
}

fn crc32(d: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(d);
    c.sum()
}

/// A stored zip of `(name, data)`, with `prefix` before it.
fn stored_zip(prefix: &[u8], files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    let mut cd = Vec::new();
    for (name, data) in files {
        let off = out.len() as u32;
        out.extend(local(
            name,
            0,
            crc32(data),
            data.len() as u32,
            data.len() as u32,
        ));
        out.extend_from_slice(data);
        cd.extend(central(
            name,
            0,
            crc32(data),
            data.len() as u32,
            data.len() as u32,
            off,
            &[],
        ));
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&cd);
    out.extend(eocd(files.len() as u16, cd.len() as u32, cd_off));
    out
}

#[test]
fn zip_with_data_before_it_and_without_its_directory() {
    // A self-extractor: the offsets in the directory do not count the stub.
    let z = stored_zip(
        b"MZ stub of a self-extractor....",
        &[("a.txt", b"alpha"), ("b.txt", b"beta")],
    );
    let mut plain = stored_zip(b"", &[("a.txt", b"alpha"), ("b.txt", b"beta")]);
    let shifted: Vec<u8> = {
        // Rewrite the directory offsets as a stub-unaware writer leaves them.
        let stub = b"MZ stub of a self-extractor....".to_vec();
        let mut v = stub.clone();
        v.extend_from_slice(&plain);
        v
    };
    for data in [&z, &shifted] {
        let c = members(FileType::Zip, data);
        let got: Vec<_> = c
            .members
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        assert_eq!(
            got,
            [("a.txt", &b"alpha"[..]), ("b.txt", &b"beta"[..])],
            "{:?}",
            c.problems
        );
    }
    // Cut before the central directory: the local headers are walked.
    let cut = plain.len() - 22 - 2 * (46 + 5);
    plain.truncate(cut);
    let c = members(FileType::Zip, &plain);
    assert_eq!(c.members.len(), 2);
    assert!(matches!(
        c.problems[0],
        Problem::Broken { member: None, .. }
    ));
}

#[test]
fn zip64_sizes_from_the_extra_field() {
    let data = b"zip64 member";
    let mut out = local("big", 0, crc32(data), data.len() as u32, data.len() as u32);
    out.extend_from_slice(data);
    let mut extra = vec![1, 0, 16, 0];
    extra.extend_from_slice(&(data.len() as u64).to_le_bytes());
    extra.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let cd = central("big", 0, crc32(data), u32::MAX, u32::MAX, 0, &extra);
    let cd_off = out.len() as u32;
    out.extend_from_slice(&cd);
    out.extend(eocd(1, cd.len() as u32, cd_off));
    let c = members(FileType::Zip, &out).extracted();
    assert_eq!(c.members, [("big".to_string(), data.to_vec())]);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
}

#[test]
fn zip_traversal_unsupported_and_lying() {
    let mut out = Vec::new();
    let mut cd = Vec::new();
    let entries: [(&str, u16, &[u8], u32); 3] = [
        ("../../etc/passwd", 0, b"root", 4),
        // Shrink (1): implode (6) is decoded since crate::implode.
        ("shrunk", 1, b"xxxx", 4),
        ("liar", 0, b"four", 100),
    ];
    for (name, method, data, declared) in entries {
        let off = out.len() as u32;
        out.extend(local(
            name,
            method,
            crc32(data),
            data.len() as u32,
            declared,
        ));
        out.extend_from_slice(data);
        cd.extend(central(
            name,
            method,
            crc32(data),
            data.len() as u32,
            declared,
            off,
            &[],
        ));
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&cd);
    out.extend(eocd(3, cd.len() as u32, cd_off));
    let c = members(FileType::Zip, &out).extracted();
    assert_eq!(c.members.len(), 2);
    assert_eq!(
        c.problems,
        [
            Problem::PathTraversal {
                member: "../../etc/passwd".into()
            },
            Problem::Unsupported {
                member: "shrunk".into(),
                detail: "compression method 1".into()
            },
            Problem::SizeMismatch {
                member: "liar".into(),
                declared: 100,
                actual: 4
            },
        ]
    );
}

#[test]
fn zstd_frames() {
    let mut data = Vec::new();
    for part in [&b"first frame, "[..], b"second frame"] {
        data.extend(ruzstd::encoding::compress_to_vec(
            part,
            ruzstd::encoding::CompressionLevel::Fastest,
        ));
    }
    assert_eq!(detect(&data), FileType::Zstd);
    let c = members(FileType::Zstd, &data);
    assert_eq!(
        c.members,
        [(String::new(), b"first frame, second frame".to_vec())]
    );
    // Truncated: what decoded before the cut is kept, the cut is reported
    // (as a failed extraction).
    let c = members(FileType::Zstd, &data[..data.len() - 3]);
    assert!(!c.problems.is_empty() || !c.errors.is_empty());
}

#[test]
fn ar_gnu_and_bsd_names() {
    let mut a = b"!<arch>\n".to_vec();
    let long = "a_rather_long_member_name.o";
    // An odd length, so a padding byte follows.
    let table = format!("{long}/\n\n");
    fn header(a: &mut Vec<u8>, name: &str, size: usize) {
        writeln!(
            a,
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`",
            0, 0, 0, 644
        )
        .expect("vec");
    }
    header(&mut a, "//", table.len() - 1);
    a.extend_from_slice(table.as_bytes());
    header(&mut a, "/0", 3);
    a.extend_from_slice(b"one\n");
    header(&mut a, "#1/12", 12 + 3);
    a.extend_from_slice(b"bsd_name.txttwo\n");
    header(&mut a, "short.o/", 5);
    a.extend_from_slice(b"three\n");
    assert_eq!(detect(&a), FileType::Ar);
    let c = members(FileType::Ar, &a).extracted();
    let got: Vec<_> = c
        .members
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            (long, &b"one"[..]),
            ("bsd_name.txt", b"two"),
            ("short.o", b"three")
        ]
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
}

#[test]
fn cpio_binary_big_endian() {
    let mut a = Vec::new();
    let mut entry = |name: &str, mode: u16, data: &[u8]| {
        let name0 = format!("{name}\0");
        let words = [
            0o070707u16,
            0,
            1,
            mode,
            0,
            0,
            1,
            0,
            0,
            0,
            name0.len() as u16,
            (data.len() >> 16) as u16,
            data.len() as u16,
        ];
        for w in words {
            a.extend_from_slice(&w.to_be_bytes());
        }
        a.extend_from_slice(name0.as_bytes());
        if a.len() % 2 == 1 {
            a.push(0);
        }
        a.extend_from_slice(data);
        if a.len() % 2 == 1 {
            a.push(0);
        }
    };
    entry("dir", 0o040755, b"");
    entry("file.txt", 0o100644, b"hello");
    entry("TRAILER!!!", 0, b"");
    assert_eq!(detect(&a), FileType::CpioOld);
    let c = members(FileType::CpioOld, &a);
    assert_eq!(c.members, [("file.txt".to_string(), b"hello".to_vec())]);
}

#[test]
fn a_writer_that_refuses_stops_the_decoder() {
    struct Refuse(usize);
    impl Write for Refuse {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            if self.0 > 1 << 20 {
                return Err(io::Error::other("enough"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    struct Once(usize);
    impl Visitor for Once {
        fn member(&mut self, m: &mut Member<'_>) -> Flow {
            let mut w = Refuse(0);
            assert!(m.extract(&mut w).is_err());
            self.0 = w.0;
            Flow::Continue
        }
        fn problem(&mut self, _: Problem) -> Flow {
            Flow::Continue
        }
    }
    // 64 MiB of zeros as gzip, of which at most a little past 1 MiB is decoded.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).expect("gzip");
    }
    let gz = e.finish().expect("gzip");
    let mut v = Once(0);
    walk(FileType::Gz, &gz.as_slice(), &mut v).expect("walk");
    assert!(v.0 > 1 << 20 && v.0 < 2 << 20, "{}", v.0);
}
