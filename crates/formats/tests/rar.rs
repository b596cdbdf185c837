//! RAR archives written by `rars` itself (RAR 1.5, 2.0, 2.9/4 and 5/7, stored,
//! compressed and solid, encrypted members and headers), read through
//! [`walk`] as the engine reads them: whole, skipped, cut short, stopped,
//! truncated and damaged. Debian's clamscan cannot open RAR (its unrar
//! library is not packaged), so these compare with the archived bytes.

use std::io::{self, Write};

use aether_formats::{FileType, Flow, Member, Problem, Visitor, detect, walk};
use rars::{ArchiveVersion, Builder};

/// What the visitor does with each member, by index.
#[derive(Clone, Copy, PartialEq)]
enum Take {
    All,
    Skip,
    /// Reads this many bytes, then its writer refuses more.
    Cap(usize),
    Stop,
}

struct Collect {
    take: Vec<Take>,
    members: Vec<(String, Vec<u8>)>,
    problems: Vec<Problem>,
    errors: Vec<(String, String)>,
}

impl Collect {
    fn new(take: Vec<Take>) -> Collect {
        Collect {
            take,
            members: Vec::new(),
            problems: Vec::new(),
            errors: Vec::new(),
        }
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
        let i = self.members.len();
        let take = self.take.get(i).copied().unwrap_or(Take::All);
        let mut out = Vec::new();
        let r = match take {
            Take::All => m.extract(&mut out),
            Take::Cap(n) => m.extract(&mut Capped(&mut out, n)),
            Take::Skip | Take::Stop => Ok(0),
        };
        if let Err(e) = r {
            self.errors.push((m.name.clone(), e.to_string()));
        }
        self.members.push((m.name.clone(), out));
        if take == Take::Stop {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
    fn problem(&mut self, p: Problem) -> Flow {
        self.problems.push(p);
        Flow::Continue
    }
}

fn read(data: &[u8], take: Vec<Take>) -> Collect {
    let mut c = Collect::new(take);
    walk(FileType::Rar, &data, &mut c).expect("walk");
    c
}

/// Three members: text, a pseudo-random binary, and text that repeats.
fn contents() -> Vec<(&'static str, Vec<u8>)> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    vec![
        (
            "first.txt",
            b"RAR-MARKER-ONE: the first member\n".repeat(40),
        ),
        ("dir/second.bin", random),
        ("third.txt", b"RAR-MARKER-THREE ".repeat(3000)),
    ]
}

fn build(v: ArchiveVersion, store: bool, solid: bool) -> Vec<u8> {
    let mut b = Builder::new(v).store(store).solid(solid);
    for (name, data) in contents() {
        b.add_bytes(name.as_bytes().to_vec(), data, None, None)
            .expect("add");
    }
    b.to_bytes().expect("build")
}

const VERSIONS: [ArchiveVersion; 5] = [
    ArchiveVersion::Rar15,
    ArchiveVersion::Rar20,
    ArchiveVersion::Rar29,
    ArchiveVersion::Rar50,
    ArchiveVersion::Rar70,
];

fn expected() -> Vec<(String, Vec<u8>)> {
    contents()
        .into_iter()
        .map(|(n, d)| (n.to_string(), d))
        .collect()
}

#[test]
fn every_version_stored_compressed_and_solid() {
    for v in VERSIONS {
        for (store, solid) in [(true, false), (false, false), (false, true)] {
            let data = build(v, store, solid);
            let what = format!("{v:?} store={store} solid={solid}");
            assert_eq!(detect(&data), FileType::Rar, "{what}");
            let c = read(&data, vec![]);
            assert_eq!(c.members, expected(), "{what}");
            assert!(c.problems.is_empty(), "{what}: {:?}", c.problems);
            assert!(c.errors.is_empty(), "{what}: {:?}", c.errors);
        }
    }
}

#[test]
fn skipped_and_cut_members_leave_the_others_whole() {
    let want = expected();
    for v in [ArchiveVersion::Rar29, ArchiveVersion::Rar50] {
        for solid in [false, true] {
            let data = build(v, false, solid);
            let what = format!("{v:?} solid={solid}");
            let c = read(&data, vec![Take::Skip, Take::Cap(100), Take::All]);
            assert_eq!(c.members.len(), 3, "{what}");
            assert!(c.members[0].1.is_empty(), "{what}");
            assert_eq!(c.members[1].1, want[1].1[..100], "{what}");
            assert_eq!(c.members[2], want[2], "{what}");
            // The refusing writer is the only error, and no problem is
            // reported for what the visitor chose not to read.
            assert_eq!(c.errors.len(), 1, "{what}: {:?}", c.errors);
            assert_eq!(c.errors[0].0, "dir/second.bin", "{what}");
            assert!(c.problems.is_empty(), "{what}: {:?}", c.problems);
        }
    }
}

#[test]
fn a_stop_ends_the_walk() {
    for solid in [false, true] {
        let data = build(ArchiveVersion::Rar50, false, solid);
        let c = read(&data, vec![Take::Stop]);
        assert_eq!(c.members.len(), 1);
        let c = read(&data, vec![Take::All, Take::Cap(10), Take::Stop]);
        assert_eq!(c.members.len(), 3);
        assert!(c.members[2].1.is_empty());
    }
}

#[test]
fn a_bomb_stops_at_the_callers_bound() {
    // 16 MiB of zeros in a few KiB, then a small member.
    for v in [ArchiveVersion::Rar29, ArchiveVersion::Rar50] {
        // The fastest level: building the archive is most of the test.
        let mut b = Builder::new(v).compression_level(Some(1));
        b.add_bytes(b"zeros".to_vec(), vec![0u8; 16 << 20], None, None)
            .expect("add");
        b.add_bytes(b"after".to_vec(), b"after the bomb".to_vec(), None, None)
            .expect("add");
        let data = b.to_bytes().expect("build");
        assert!(data.len() < 1 << 20, "{v:?}: {} bytes", data.len());
        let c = read(&data, vec![Take::Cap(4096)]);
        assert_eq!(c.members[0].1.len(), 4096);
        assert_eq!(c.members[1], ("after".into(), b"after the bomb".to_vec()));
    }
}

#[test]
fn encrypted_members_and_headers_are_reported() {
    for v in [ArchiveVersion::Rar29, ArchiveVersion::Rar50] {
        let mut b = Builder::new(v).password(Some(b"secret".to_vec()));
        b.add_bytes(
            b"hidden.txt".to_vec(),
            b"RAR-MARKER-HIDDEN".to_vec(),
            None,
            None,
        )
        .expect("add");
        let data = b.to_bytes().expect("build");
        let c = read(&data, vec![]);
        assert!(c.members.is_empty(), "{v:?}");
        assert_eq!(
            c.problems,
            vec![Problem::Encrypted {
                member: "hidden.txt".into()
            }],
            "{v:?}"
        );
    }
    let mut b = Builder::new(ArchiveVersion::Rar50)
        .password(Some(b"secret".to_vec()))
        .header_encryption(true);
    b.add_bytes(
        b"hidden.txt".to_vec(),
        b"RAR-MARKER-HIDDEN".to_vec(),
        None,
        None,
    )
    .expect("add");
    let c = read(&b.to_bytes().expect("build"), vec![]);
    assert!(c.members.is_empty());
    assert_eq!(
        c.problems,
        vec![Problem::Encrypted {
            member: "(archive header)".into()
        }]
    );
}

#[test]
fn a_mixed_archive_gives_its_clear_members() {
    let mut b = Builder::new(ArchiveVersion::Rar50);
    b.add_bytes(b"clear.txt".to_vec(), b"in the clear".to_vec(), None, None)
        .expect("add");
    b.add_bytes(
        b"hidden.txt".to_vec(),
        b"RAR-MARKER-HIDDEN".to_vec(),
        None,
        None,
    )
    .expect("add");
    b.set_entry_encryption(b"hidden.txt", Some(b"pw".to_vec()), None)
        .expect("encrypt one");
    let c = read(&b.to_bytes().expect("build"), vec![]);
    assert_eq!(
        c.members,
        vec![("clear.txt".into(), b"in the clear".to_vec())]
    );
    assert_eq!(
        c.problems,
        vec![Problem::Encrypted {
            member: "hidden.txt".into()
        }]
    );
}

/// CRC-32 (IEEE), for re-sealing a patched RAR 4 header.
fn crc32(d: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(d);
    c.sum()
}

#[test]
fn a_name_that_climbs_is_reported_and_scanned() {
    let mut b = Builder::new(ArchiveVersion::Rar29).store(true);
    b.add_bytes(b"zz/evil.txt".to_vec(), b"climbing".to_vec(), None, None)
        .expect("add");
    let mut data = b.to_bytes().expect("build");
    // RAR 4 file header: CRC16, type 0x74, flags, size, ... name at 32.
    let at = data
        .windows(11)
        .position(|w| w == b"zz/evil.txt")
        .expect("name");
    data[at..at + 2].copy_from_slice(b"..");
    let start = at - 32;
    assert_eq!(data[start + 2], 0x74);
    let size = u16::from_le_bytes([data[start + 5], data[start + 6]]) as usize;
    let crc = crc32(&data[start + 2..start + size]) as u16;
    data[start..start + 2].copy_from_slice(&crc.to_le_bytes());
    let c = read(&data, vec![]);
    assert_eq!(
        c.problems,
        vec![Problem::PathTraversal {
            member: "../evil.txt".into()
        }]
    );
    assert_eq!(
        c.members,
        vec![("../evil.txt".into(), b"climbing".to_vec())]
    );
}

#[test]
fn not_a_rar_and_empty_input() {
    for data in [
        &b""[..],
        b"Rar!",
        b"Rar!\x1a\x07\x00",
        b"Rar!\x1a\x07\x01\x00",
    ] {
        let c = read(data, vec![]);
        assert!(c.members.is_empty());
        assert!(
            matches!(c.problems.as_slice(), [Problem::Broken { .. }]),
            "{data:?}: {:?}",
            c.problems
        );
    }
}

/// Every member either comes out as archived or with a problem or an error
/// naming why not.
fn check_damaged(data: &[u8], what: &str) {
    let want = expected();
    let c = read(data, vec![]);
    for (name, bytes) in &c.members {
        let whole = want.iter().any(|(n, d)| n == name && d == bytes);
        let told = c.errors.iter().any(|(n, _)| n == name)
            || c.problems.iter().any(|p| match p {
                Problem::Broken { member, .. } => member.as_deref() == Some(name),
                Problem::SizeMismatch { member, .. } => member == name,
                _ => false,
            });
        assert!(whole || told, "{what}: {name} differs silently");
    }
}

#[test]
fn truncated_archives() {
    for v in [ArchiveVersion::Rar29, ArchiveVersion::Rar50] {
        for (store, solid) in [(true, false), (false, false), (false, true)] {
            let data = build(v, store, solid);
            let step = (data.len() / 150).max(1);
            for len in (0..data.len()).step_by(step) {
                let what = format!("{v:?} store={store} solid={solid} cut at {len}");
                check_damaged(&data[..len], &what);
                let c = read(&data[..len], vec![]);
                assert!(
                    c.members.len() < 3 || !c.problems.is_empty() || !c.errors.is_empty(),
                    "{what}: a truncated archive reads whole"
                );
            }
        }
    }
}

#[test]
fn damaged_archives() {
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for v in [
        ArchiveVersion::Rar15,
        ArchiveVersion::Rar29,
        ArchiveVersion::Rar50,
    ] {
        for (store, solid) in [(true, false), (false, false), (false, true)] {
            let data = build(v, store, solid);
            for round in 0..60 {
                let mut d = data.clone();
                for _ in 0..1 + round % 4 {
                    let at = (next() % d.len() as u64) as usize;
                    d[at] ^= 1 << (next() % 8);
                }
                check_damaged(
                    &d,
                    &format!("{v:?} store={store} solid={solid} round {round}"),
                );
            }
        }
    }
}
