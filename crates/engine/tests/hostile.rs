//! Hostile inputs: bombs, lies, damage and depth. Each must end within its
//! limits, in bounded memory and time, with the named result; the verdicts are
//! compared with Debian's clamscan where clamscan has one.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aether_engine::{Alerts, Engine, EngineBuilder, LimitExceeded, Limits, Problem, ScanOutcome};
use aether_sigs::{LoadOptions, Loader};

const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

struct Fixture {
    dir: tempfile::TempDir,
    db: PathBuf,
    engine: Engine,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.ndb");
    std::fs::write(&db, format!("Eicar-Test-Signature:0:*:{}\n", hex(EICAR))).expect("db");
    let mut loader = Loader::new(LoadOptions::default());
    let mut builder = EngineBuilder::new();
    loader.load_path(&db, &mut builder).expect("loads");
    let engine = builder.build().expect("builds");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/make_hostile.py");
    let st = Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .status()
        .expect("python3 runs");
    assert!(st.success(), "make_hostile.py failed");
    Fixture { dir, db, engine }
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Scans `name`, asserting it ends within `secs`.
    fn scan(&self, name: &str, limits: &Limits, alerts: Alerts, secs: u64) -> ScanOutcome {
        let mut s = self.engine.scanner();
        s.set_alerts(alerts);
        let f = File::open(self.path(name)).expect("open");
        let t = Instant::now();
        let o = s.scan_file(&f, limits).expect("scan");
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "{name} took {:?}",
            t.elapsed()
        );
        o
    }

    fn clamscan(&self, name: &str, args: &[&str]) -> BTreeSet<String> {
        let out = Command::new("clamscan")
            .args(["--no-summary", "--stdout", "--allmatch", "-d"])
            .arg(&self.db)
            .args(args)
            .arg(self.path(name))
            .output()
            .expect("clamscan runs (install Debian's clamav package; .ci/run does)");
        assert!(matches!(out.status.code(), Some(0 | 1)));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(" FOUND"))
            .filter_map(|l| l.rsplit_once(": ").map(|(_, s)| s.to_string()))
            .collect()
    }
}

fn all() -> Limits {
    Limits {
        all_match: true,
        ..Limits::default()
    }
}

fn names(o: &ScanOutcome, alert_exceeds_max: bool) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = o.detections.iter().map(|d| d.name.clone()).collect();
    if let (Some(l), true) = (o.limit, alert_exceeds_max) {
        s.insert(l.signature_name().to_string());
    }
    s
}

/// Peak resident memory of this test process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn hostile_archives() {
    let f = fixture();
    let enc = Alerts {
        encrypted: true,
        ..Alerts::default()
    };

    // Overlapping entries: named as clamscan names them, nothing extracted.
    let o = f.scan("overlap.zip", &all(), Alerts::default(), 10);
    assert_eq!(names(&o, false), f.clamscan("overlap.zip", &[]));
    assert!(names(&o, false).contains("Heuristics.Zip.OverlappingFiles"));
    assert_eq!(o.members_scanned, 0);

    // Encrypted members: named with --alert-encrypted, and the clean member
    // beside them is still scanned.
    for name in ["encrypted.zip", "encrypted_only.zip"] {
        let o = f.scan(name, &all(), enc, 10);
        assert_eq!(
            names(&o, false),
            f.clamscan(name, &["--alert-encrypted=yes"]),
            "{name}"
        );
        assert!(names(&o, false).contains("Heuristics.Encrypted.Zip"));
        let quiet = f.scan(name, &all(), Alerts::default(), 10);
        assert!(!names(&quiet, false).contains("Heuristics.Encrypted.Zip"));
        assert!(quiet.notes.iter().any(
            |n| matches!(&n.problem, Problem::Encrypted { member } if member == "secret.txt")
        ));
    }

    // 1,000 levels of zip in zip stop at MaxRecursion, as clamscan does.
    let o = f.scan("deep1000.zip", &all(), Alerts::default(), 30);
    assert_eq!(o.limit, Some(LimitExceeded::MaxRecursion));
    assert_eq!(
        names(&o, true),
        f.clamscan("deep1000.zip", &["--alert-exceeds-max=yes"])
    );

    // 100,000 members stop at MaxFiles; EICAR, last, is never reached.
    let o = f.scan("many100k.zip", &all(), Alerts::default(), 60);
    assert_eq!(o.limit, Some(LimitExceeded::MaxFiles));
    assert_eq!(o.members_scanned, Limits::default().max_files - 1);
    assert_eq!(
        names(&o, true),
        f.clamscan("many100k.zip", &["--alert-exceeds-max=yes"])
    );

    // Lying sizes: the member is decoded to its real length (within limits),
    // the lie is noted, and EICAR behind it is found. clamscan believes the
    // header and misses it (a documented difference).
    let o = f.scan("lying.zip", &all(), Alerts::default(), 30);
    assert_eq!(names(&o, false).len(), 1);
    assert!(o.notes.iter().any(|n| matches!(
        &n.problem,
        Problem::SizeMismatch { declared: 100, actual, .. } if *actual == 3_000_000 + EICAR.len() as u64
    )));

    // 42.zip in miniature: 64 GiB unpacked. ClamAV's clean-file cache makes
    // it skip the identical copies; aether stops at MaxScanSize. Small limits
    // keep the test fast in a debug build; the default ones are the same code.
    let limits = Limits {
        all_match: true,
        max_scansize: 40 << 20,
        ..Limits::default()
    };
    let o = f.scan("bomb42.zip", &limits, Alerts::default(), 60);
    assert_eq!(o.limit, Some(LimitExceeded::MaxScanSize));
    assert!(o.detections.is_empty());
    assert!(o.members_scanned <= 40 + 4 * 16);
    let limits = Limits {
        all_match: true,
        max_files: 50,
        ..Limits::default()
    };
    let o = f.scan("bomb42.zip", &limits, Alerts::default(), 60);
    assert_eq!(o.limit, Some(LimitExceeded::MaxFiles));
    assert_eq!(o.members_scanned, 49);
    assert!(peak_rss() < 1 << 30, "peak RSS {} bytes", peak_rss());
}

/// A gzip stream of 10 GiB of zeros, written in 1 MiB chunks (never whole):
/// each chunk compresses to the same bytes after a full flush.
fn zeros_gzip(path: &Path, gib: u64) {
    use flate2::{Compress, Compression, FlushCompress};
    let chunk = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::default(), false);
    let mut block = Vec::with_capacity(64 << 10);
    c.compress_vec(&chunk, &mut block, FlushCompress::Full)
        .expect("compress");
    let mut crc = flate2::Crc::new();
    let mut one = flate2::Crc::new();
    one.update(&chunk);
    let mut out = std::io::BufWriter::new(File::create(path).expect("create"));
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])
        .expect("write");
    for _ in 0..gib * 1024 {
        out.write_all(&block).expect("write");
        crc.combine(&one);
    }
    // An empty final stored block, then CRC32 and size mod 2^32.
    out.write_all(&[1, 0, 0, 0xff, 0xff]).expect("write");
    out.write_all(&crc.sum().to_le_bytes()).expect("write");
    out.write_all(&((gib << 30) as u32).to_le_bytes())
        .expect("write");
    out.flush().expect("flush");
}

#[test]
fn ten_gigabytes_of_zeros() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("zeros.gz");
    zeros_gzip(&path, 10);
    let size = std::fs::metadata(&path).expect("stat").len();
    assert!(size < 64 << 20, "the bomb itself is small: {size}");
    let f = fixture();
    let mut s = f.engine.scanner();
    let file = File::open(&path).expect("open");
    // The same stream cut at 2 GiB checks that the generator is a valid gzip.
    let t = Instant::now();
    let o = s.scan_file(&file, &all()).expect("scan");
    assert!(t.elapsed() < Duration::from_secs(120), "{:?}", t.elapsed());
    // Decoding stops at MaxFileSize (100 MB), as clamscan reports it.
    assert_eq!(o.limit, Some(LimitExceeded::MaxFileSize));
    assert_eq!(o.members_scanned, 0);
    let theirs = Command::new("clamscan")
        .args(["--no-summary", "--stdout", "--alert-exceeds-max=yes", "-d"])
        .arg(&f.db)
        .arg(&path)
        .output()
        .expect("clamscan runs");
    assert!(
        String::from_utf8_lossy(&theirs.stdout)
            .contains("Heuristics.Limits.Exceeded.MaxFileSize FOUND"),
        "{}",
        String::from_utf8_lossy(&theirs.stdout)
    );
    assert!(peak_rss() < 1 << 30, "peak RSS {} bytes", peak_rss());
}

#[test]
fn a_thousand_gzip_layers() {
    use flate2::{Compression, write::GzEncoder};
    let mut data = EICAR.to_vec();
    for _ in 0..1000 {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(&data).expect("gzip");
        data = e.finish().expect("gzip");
    }
    let f = fixture();
    let mut s = f.engine.scanner();
    let t = Instant::now();
    let o = s.scan_bytes(&data, &all()).expect("scan");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(o.limit, Some(LimitExceeded::MaxRecursion));
    assert!(o.detections.is_empty());
    assert_eq!(o.members_scanned, 16);
    // Within the limit the bottom is reached and found.
    let mut data = EICAR.to_vec();
    for _ in 0..16 {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(&data).expect("gzip");
        data = e.finish().expect("gzip");
    }
    let o = s.scan_bytes(&data, &all()).expect("scan");
    // Small layers may hold EICAR in stored blocks, so it can match at more
    // than one level; it must match at the bottom.
    assert!(!o.detections.is_empty());
    assert!(
        o.detections
            .iter()
            .all(|d| d.name == "Eicar-Test-Signature.UNOFFICIAL")
    );
    assert_eq!(o.members_scanned, 16);
    assert_eq!(o.limit, None);
}

/// Truncated and bit-flipped archives of every kind: each scan ends, without
/// error, within a bound; damage is reported as notes, never a panic.
#[test]
fn truncated_and_bit_flipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/make_archives.py");
    let st = Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .status()
        .expect("python3 runs");
    assert!(st.success());
    let f = fixture();
    let mut s = f.engine.scanner();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut broken_notes = 0;
    let mut scans = 0;
    let t = Instant::now();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.to_string_lossy();
            !(n.contains("big") || n.contains("zeros") || n.contains("large"))
        })
        .collect();
    // Formats the generator cannot write (7z, binary cpio, deflate64).
    for n in [
        "clam.7z",
        "clam.bin-be.cpio",
        "clam.d64.zip",
        "clam.exe.bz2",
    ] {
        inputs.push(Path::new("/usr/share/clamav-testfiles").join(n));
    }
    for path in inputs {
        let data = std::fs::read(&path).expect("read");
        for cut in [
            1,
            10,
            30,
            100,
            data.len() / 2,
            data.len().saturating_sub(30),
            data.len().saturating_sub(1),
        ] {
            let o = s
                .scan_bytes(&data[..cut.min(data.len())], &all())
                .expect("scan");
            broken_notes += o.notes.len();
            scans += 1;
        }
        for _ in 0..20 {
            let mut d = data.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % d.len();
                d[i] ^= 1 << (next() % 8);
            }
            let o = s.scan_bytes(&d, &all()).expect("scan");
            broken_notes += o.notes.len();
            scans += 1;
        }
    }
    assert!(scans > 500, "{scans}");
    assert!(broken_notes > 50, "damage is reported: {broken_notes}");
    assert!(t.elapsed() < Duration::from_secs(120), "{:?}", t.elapsed());
}
