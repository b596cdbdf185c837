//! Microsoft cabinets written by the `cab` crate (stored and MSZIP folders,
//! reserve fields, blocks of 32 KiB and more), Debian's clam.cab, and
//! cabinets patched into what the writer does not make: Quantum folders,
//! files continued from another cabinet, names that climb, cuts and bit
//! flips. No LZX writer is at hand; LZX folders are left to the fuzz target.

use std::io::{self, Write};

use aether_formats::{FileType, Flow, Member, Problem, Visitor, detect, walk};
use cab::CompressionType;
use cab_common::{Folder, build};

mod cab_common;

#[derive(Clone, Copy, PartialEq)]
enum Take {
    All,
    Skip,
    Cap(usize),
}

struct Collect {
    take: Vec<Take>,
    members: Vec<(String, Vec<u8>)>,
    declared: Vec<Option<u64>>,
    problems: Vec<Problem>,
    errors: Vec<String>,
}

fn collect(take: Vec<Take>) -> Collect {
    Collect {
        take,
        members: Vec::new(),
        declared: Vec::new(),
        problems: Vec::new(),
        errors: Vec::new(),
    }
}

struct Capped<'a>(&'a mut Vec<u8>, usize);

impl Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.1 - self.0.len();
        if room == 0 {
            return Err(io::Error::other("full"));
        }
        let n = buf.len().min(room);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Visitor for Collect {
    fn member(&mut self, m: &mut Member<'_>) -> Flow {
        let take = self
            .take
            .get(self.members.len())
            .copied()
            .unwrap_or(Take::All);
        let mut out = Vec::new();
        let r = match take {
            Take::All => m.extract(&mut out),
            Take::Cap(n) => m.extract(&mut Capped(&mut out, n)),
            Take::Skip => Ok(0),
        };
        if let Err(e) = r {
            self.errors.push(format!("{}: {e}", m.name));
        }
        self.members.push((m.name.clone(), out));
        self.declared.push(m.declared_size);
        Flow::Continue
    }
    fn problem(&mut self, p: Problem) -> Flow {
        self.problems.push(p);
        Flow::Continue
    }
}

fn read(data: &[u8], take: Vec<Take>) -> Collect {
    let mut c = collect(take);
    walk(FileType::MsCab, &data, &mut c).expect("walk");
    c
}

fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sample() -> Vec<Folder<'static>> {
    vec![
        (
            CompressionType::None,
            vec![
                ("stored\\one.txt", b"CAB-MARKER-STORED one\n".repeat(100)),
                ("stored\\two.bin", noise(2, 40_000)),
            ],
        ),
        (
            CompressionType::MsZip,
            vec![
                (
                    "zip\\big.txt",
                    b"CAB-MARKER-MSZIP again and again ".repeat(5000),
                ),
                ("zip\\empty", Vec::new()),
                ("zip\\noise.bin", noise(3, 70_000)),
                ("zip\\tail.txt", b"the last one".to_vec()),
            ],
        ),
    ]
}

fn expected() -> Vec<(String, Vec<u8>)> {
    sample()
        .into_iter()
        .flat_map(|(_, files)| files.into_iter().map(|(n, d)| (n.to_string(), d)))
        .collect()
}

#[test]
fn stored_and_mszip_folders_read_back() {
    for reserve in [false, true] {
        let data = build(&sample(), reserve);
        assert_eq!(detect(&data), FileType::MsCab);
        let c = read(&data, vec![]);
        assert_eq!(c.members, expected(), "reserve={reserve}");
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let sizes: Vec<Option<u64>> = expected()
            .iter()
            .map(|(_, d)| Some(d.len() as u64))
            .collect();
        assert_eq!(c.declared, sizes);
    }
}

#[test]
fn skipped_and_cut_members_leave_the_others_whole() {
    let data = build(&sample(), false);
    let want = expected();
    let c = read(
        &data,
        vec![
            Take::Skip,
            Take::Cap(10),
            Take::Skip,
            Take::All,
            Take::Cap(5),
        ],
    );
    assert_eq!(c.members.len(), want.len());
    assert_eq!(c.members[1].1, want[1].1[..10]);
    assert_eq!(c.members[3], want[3]);
    assert_eq!(c.members[4].1, want[4].1[..5]);
    assert_eq!(c.members[5], want[5]);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
}

#[test]
fn same_names_are_two_members() {
    let data = build(
        &[(
            CompressionType::MsZip,
            vec![
                ("dup.txt", b"first".to_vec()),
                ("dup.txt", b"second".to_vec()),
            ],
        )],
        false,
    );
    let c = read(&data, vec![]);
    assert_eq!(
        c.members,
        vec![
            ("dup.txt".into(), b"first".to_vec()),
            ("dup.txt".into(), b"second".to_vec())
        ]
    );
}

#[test]
fn clamav_test_cabinet() {
    let data = std::fs::read("/usr/share/clamav-testfiles/clam.cab")
        .expect("clam.cab from Debian's clamav-testfiles");
    assert_eq!(detect(&data), FileType::MsCab);
    let c = read(&data, vec![]);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(c.members.len(), 1);
    let (name, exe) = &c.members[0];
    assert_eq!(name, "clam.exe");
    assert_eq!(exe.len(), 544);
    assert_eq!(&exe[..2], b"MZ");
}

/// The offset of folder `i`'s entry (no reserve, no cabinet set names).
fn folder_entry(i: usize) -> usize {
    36 + 8 * i
}

/// The offset of the first file entry.
fn files_at(data: &[u8]) -> usize {
    u32::from_le_bytes([data[16], data[17], data[18], data[19]]) as usize
}

#[test]
fn quantum_folders_and_files_from_another_cabinet() {
    let mut data = build(&sample(), false);
    // Folder 1 (MSZIP) claims Quantum, level 4, 2^16 bytes of memory.
    let at = folder_entry(1) + 6;
    data[at..at + 2].copy_from_slice(&0x1042u16.to_le_bytes());
    let c = read(&data, vec![]);
    assert_eq!(c.members, expected()[..2].to_vec());
    let unsupported: Vec<&str> = c
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::Unsupported { member, detail } if detail.contains("Quantum") => {
                Some(member.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        unsupported,
        [
            "zip\\big.txt",
            "zip\\empty",
            "zip\\noise.bin",
            "zip\\tail.txt"
        ]
    );

    // The first file continues from a previous cabinet.
    let mut data = build(&sample(), false);
    let at = files_at(&data) + 8;
    data[at..at + 2].copy_from_slice(&0xfffdu16.to_le_bytes());
    let c = read(&data, vec![]);
    assert_eq!(c.members, expected()[1..].to_vec());
    assert_eq!(
        c.problems,
        vec![Problem::Unsupported {
            member: "stored\\one.txt".into(),
            detail: "CAB: continued from a previous cabinet".into()
        }]
    );
}

#[test]
fn a_name_that_climbs_is_reported_and_scanned() {
    let data = build(
        &[(
            CompressionType::None,
            vec![("..\\evil.txt", b"climbing".to_vec())],
        )],
        false,
    );
    let c = read(&data, vec![]);
    assert_eq!(
        c.problems,
        vec![Problem::PathTraversal {
            member: "..\\evil.txt".into()
        }]
    );
    assert_eq!(
        c.members,
        vec![("..\\evil.txt".into(), b"climbing".to_vec())]
    );
}

#[test]
fn a_file_past_its_folder_is_a_size_mismatch() {
    let mut data = build(
        &[(
            CompressionType::MsZip,
            vec![("short.txt", b"only this".to_vec())],
        )],
        false,
    );
    // The file claims 1000 bytes; its folder holds 9.
    let at = files_at(&data);
    data[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
    let c = read(&data, vec![]);
    assert_eq!(c.members, vec![("short.txt".into(), b"only this".to_vec())]);
    assert_eq!(
        c.problems,
        vec![Problem::SizeMismatch {
            member: "short.txt".into(),
            declared: 1000,
            actual: 9
        }]
    );
}

#[test]
fn not_a_cabinet() {
    for data in [&b""[..], b"MSCF", b"MSCF\0\0\0\0", b"MSCE\0\0\0\0\0\0\0\0"] {
        let c = read(data, vec![]);
        assert!(c.members.is_empty());
        assert!(matches!(c.problems.as_slice(), [Problem::Broken { .. }]));
    }
}

/// No member comes out larger than declared, whatever the damage.
fn check_damaged(data: &[u8]) {
    let c = read(data, vec![]);
    for ((name, bytes), declared) in c.members.iter().zip(&c.declared) {
        let declared = declared.unwrap_or(u64::MAX);
        assert!(bytes.len() as u64 <= declared, "{name}");
    }
}

#[test]
fn truncated_and_damaged_cabinets() {
    let data = build(&sample(), true);
    let want = expected();
    for len in (0..data.len()).step_by(97) {
        check_damaged(&data[..len]);
        let c = read(&data[..len], vec![]);
        // Cut short, a cabinet never reads whole, and says so.
        assert!(
            c.members != want && (!c.problems.is_empty() || !c.errors.is_empty()),
            "cut at {len}"
        );
    }
    let mut x = 0x0cab_0001u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Headers are in the first bytes: damage them more often.
    for round in 0..400 {
        let mut d = data.clone();
        for _ in 0..1 + round % 3 {
            let span = if round % 2 == 0 { 400 } else { d.len() };
            let at = (next() % span as u64) as usize;
            d[at] ^= 1 << (next() % 8);
        }
        check_damaged(&d);
    }
}
