//! Counts of subsignatures that ClamAV matches in parts (split at `*` and
//! `{..}` ranges): aether must count them as clamscan does, one count per
//! completed chain rather than per distinct start.
//!
//! The test writes files that are random sequences of the parts' bytes with
//! random filler between them (so chains complete zero, one or many times,
//! overlap, and fall inside or outside gap bounds), and signatures over two-
//! and three-part patterns with every gap form and count conditions on both
//! sides of the likely counts. `clamscan --allmatch` and the engine must name
//! the same signatures for every file.

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;

use common::{Rng, aether, clamscan, engine};

/// Bytes no file-type magic uses, and a 16-bit unit 0x0001 so ClamAV does
/// not take the file for UTF-16 text.
const HEADER: &[u8] = b"\x00\xff\x00\x01AETHER-CHAIN\x00";

const PARTS: [&[u8]; 3] = [
    b"\xa1\xa2\xa3\xa4",
    b"\xb1\xb2\xb3\xb4",
    b"\xc1\xc2\xc3\xc4",
];

fn hex(d: &[u8]) -> String {
    d.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A gap between parts as ClamAV writes it.
fn gap(r: &mut Rng) -> String {
    match r.below(5) {
        0 | 1 => "*".to_string(),
        2 => format!("{{{}-{}}}", r.below(3), r.range(4, 12)),
        3 => format!("{{-{}}}", r.range(3, 10)),
        _ => format!("{{{}-}}", r.range(1, 6)),
    }
}

/// A file: parts in random order with random gaps, from bytes that never
/// spell a part themselves.
fn file(r: &mut Rng) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    for _ in 0..r.range(1, 9) {
        let n = r.below(10) as usize;
        out.extend((0..n).map(|_| b'0' + (r.below(10) as u8)));
        out.extend_from_slice(PARTS[r.below(3) as usize]);
    }
    out.extend_from_slice(b"\n");
    out
}

#[test]
fn chained_subsignature_counts_agree_with_clamscan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut r = Rng(0x00c4_a15e_d5ee_d5a1);
    let mut ldb = String::new();
    for i in 0..60 {
        let parts = if i % 3 == 0 { 3 } else { 2 };
        let mut pat = hex(PARTS[0]);
        for p in PARTS.iter().take(parts).skip(1) {
            pat.push_str(&gap(&mut r));
            pat.push_str(&hex(p));
        }
        let cond = match r.below(4) {
            0 => format!("={}", r.range(1, 3)),
            1 => format!(">{}", r.range(0, 2)),
            2 => format!("<{}", r.range(2, 4)),
            _ => format!("={},1", r.range(1, 3)),
        };
        // A second, plain subsignature keeps every signature's expression
        // dependent on the chained count alone.
        let _ = writeln!(ldb, "Chain.{i};Target:0;0{cond}|1;{pat};aabbccddeeff");
    }
    let db = dir.path().join("chains.ldb");
    std::fs::write(&db, &ldb).expect("write ldb");
    let mut files: Vec<PathBuf> = Vec::new();
    for i in 0..80 {
        let p = dir.path().join(format!("f{i:03}"));
        std::fs::write(&p, file(&mut r)).expect("write file");
        files.push(p);
    }
    let want = clamscan(&db, &files);
    let got = aether(&engine(&db), &files);
    // The test means something only if counts decide verdicts both ways.
    let pairs: usize = want.values().map(|s| s.len()).sum();
    let all = 60 * files.len();
    assert!(
        pairs > all / 10 && pairs < all * 9 / 10,
        "{pairs} of {all} (file, signature) pairs flagged by clamscan"
    );
    let mut diffs = Vec::new();
    for f in &files {
        let name = common::file_name(f);
        let (a, b) = (want.get(&name), got.get(&name));
        if a != b {
            let bytes = std::fs::read(f).unwrap_or_default();
            diffs.push(format!(
                "{name} ({}): clamscan {a:?}, aether {b:?}",
                hex(&bytes[HEADER.len()..])
            ));
        }
    }
    assert!(diffs.is_empty(), "{}\n{ldb}", diffs.join("\n"));
}
