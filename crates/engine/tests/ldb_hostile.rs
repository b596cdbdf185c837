//! Logical signatures on hostile input: a regex with catastrophic
//! backtracking ends at PCRE2's match limit (reported, counted as no match),
//! and millions of subsignature matches are counted exactly in constant
//! memory across the scanner's windows. Verdicts are checked against Debian's
//! clamscan.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aether_engine::{EngineBuilder, Limits};
use aether_sigs::{LoadOptions, Loader};

const LDB: &str = "\
Ldb.Evil;Engine:81-255,Target:0;0&1;7374617274;0/(a|aa)+$/
Ldb.Evil.Global;Engine:81-255,Target:0;0&1>0;7374617274;0/(a|aa)+$/g
Ldb.Many.Eq;Target:0;0=2097152;41424344
Ldb.Many.Gt;Target:0;0>2097152;41424344
Ldb.Many.Lt;Target:0;0<2097152;41424344
Ldb.Overlap;Target:0;0=3000000;5a5a5a5a5a
Ldb.Overlap.Off;Target:0;0=2999999;5a5a5a5a5a
";

fn clamscan(db: &Path, file: &Path) -> BTreeSet<String> {
    let out = Command::new("clamscan")
        .args(["--allmatch", "--no-summary", "--stdout", "-d"])
        .arg(db)
        .arg(file)
        .output()
        .expect("clamscan runs (install Debian's clamav package; .ci/run does)");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "clamscan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(" FOUND"))
        .filter_map(|l| l.rsplit_once(": ").map(|(_, n)| n.to_string()))
        .collect()
}

#[test]
fn hostile_logical_inputs_are_bounded_and_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.ldb");
    std::fs::write(&db, LDB).expect("ldb");
    let mut loader = Loader::new(LoadOptions::default());
    let mut builder = EngineBuilder::new();
    loader.load_path(&db, &mut builder).expect("loads");
    assert!(loader.report().unsupported().is_empty());
    let engine = builder.build().expect("builds");
    let limits = Limits {
        all_match: true,
        ..Limits::default()
    };

    // Binary data (no text normalization in clamscan), the trigger, then a
    // run of 'a' that makes `(a|aa)+$` try exponentially many splits.
    let mut evil = b"\x00\xff\x00\x01start ".to_vec();
    evil.extend(std::iter::repeat_n(b'a', 200_000));
    evil.push(b'b');
    let evil_path = dir.path().join("evil.bin");
    std::fs::write(&evil_path, &evil).expect("write");

    // 8 MiB of "ABCD": 2,097,152 matches of one subsignature, across eight
    // read windows; then 3,000,004 bytes of 'Z': 3,000,000 overlapping matches.
    let mut many = b"\x00\xff\x00\x01".to_vec();
    many.extend(b"ABCD".repeat(1 << 21));
    many.extend(b"\x00\x01");
    many.extend(std::iter::repeat_n(b'Z', 3_000_004));
    many.extend(b"\x00\x01");
    let many_path = dir.path().join("many.bin");
    std::fs::write(&many_path, &many).expect("write");

    let mut scanner = engine.scanner();
    let t = Instant::now();
    let f = std::fs::File::open(&evil_path).expect("open");
    let o = scanner.scan_file(&f, &limits).expect("scan");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    // Only the signature that holds on zero matches.
    let got: BTreeSet<String> = o.detections.into_iter().map(|d| d.name).collect();
    let want = BTreeSet::from(["Ldb.Many.Lt.UNOFFICIAL".to_string()]);
    assert_eq!(got, want);
    assert_eq!(o.regex_limits, 2, "both regex runs stop at the match limit");
    assert_eq!(clamscan(&db, &evil_path), want);

    let t = Instant::now();
    let f = std::fs::File::open(&many_path).expect("open");
    let o = scanner.scan_file(&f, &limits).expect("scan");
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
    let got: BTreeSet<String> = o.detections.into_iter().map(|d| d.name).collect();
    let want: BTreeSet<String> = ["Ldb.Many.Eq.UNOFFICIAL", "Ldb.Overlap.UNOFFICIAL"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(got, want);
    assert_eq!(clamscan(&db, &many_path), want);
}
