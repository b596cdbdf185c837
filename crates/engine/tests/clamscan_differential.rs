//! aether and Debian's clamscan must report the same detections.
//!
//! The test generates a database that uses every supported signature form
//! (hash signatures sized and `*`, every hex-signature wildcard, alternatives,
//! negations, every plain offset form, an allow list and an ignore list) and
//! files with planted matches and near misses, runs `clamscan --allmatch` on
//! them, and compares its verdict for every file with the engine's.
//!
//! clamscan is the reference: `.ci/run` installs Debian's `clamav` package.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use aether_engine::{EngineBuilder, Limits};
use aether_sigs::{LoadOptions, Loader};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

mod common;
use common::Rng;

/// One element of a generated signature, with how to write it and how to
/// produce bytes that it matches.
#[derive(Clone, Debug)]
enum Piece {
    Static(Vec<u8>),
    AnyByte,
    High(u8),
    Low(u8),
    Alt(Vec<Vec<u8>>),
    NegAlt(Vec<Vec<u8>>),
    Fixed(u32),
    Range(u32, u32),
    UpTo(u32),
    AtLeast(u32),
    Star,
}

impl Piece {
    fn text(&self) -> String {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        match self {
            Piece::Static(b) => hex(b),
            Piece::AnyByte => "??".into(),
            Piece::High(v) => format!("{:x}?", v >> 4),
            Piece::Low(v) => format!("?{:x}", v & 15),
            Piece::Alt(br) => format!(
                "({})",
                br.iter().map(|b| hex(b)).collect::<Vec<_>>().join("|")
            ),
            Piece::NegAlt(br) => format!(
                "!({})",
                br.iter().map(|b| hex(b)).collect::<Vec<_>>().join("|")
            ),
            Piece::Fixed(n) => format!("{{{n}}}"),
            Piece::Range(n, m) => format!("{{{n}-{m}}}"),
            Piece::UpTo(n) => format!("{{-{n}}}"),
            Piece::AtLeast(n) => format!("{{{n}-}}"),
            Piece::Star => "*".into(),
        }
    }

    /// Bytes this piece matches.
    fn instance(&self, rng: &mut Rng) -> Vec<u8> {
        match self {
            Piece::Static(b) => b.clone(),
            Piece::AnyByte => rng.bytes(1),
            Piece::High(v) => vec![(v & 0xf0) | (rng.next() as u8 & 0x0f)],
            Piece::Low(v) => vec![(v & 0x0f) | (rng.next() as u8 & 0xf0)],
            Piece::Alt(br) => br[rng.below(br.len() as u64) as usize].clone(),
            Piece::NegAlt(br) => loop {
                let cand = rng.bytes(br[0].len());
                if !br.contains(&cand) {
                    break cand;
                }
            },
            Piece::Fixed(n) => rng.bytes(*n as usize),
            Piece::Range(n, m) => {
                let k = rng.range(*n as u64, *m as u64);
                rng.bytes(k as usize)
            }
            Piece::UpTo(n) => {
                let k = rng.below(*n as u64 + 1);
                rng.bytes(k as usize)
            }
            Piece::AtLeast(n) => {
                let k = rng.range(*n as u64, *n as u64 + 20);
                rng.bytes(k as usize)
            }
            Piece::Star => {
                let k = rng.below(40);
                rng.bytes(k as usize)
            }
        }
    }
}

fn random_static(rng: &mut Rng) -> Piece {
    let n = rng.range(3, 6) as usize;
    Piece::Static(rng.bytes(n))
}

/// `Static (Sep Static)*`: every sub-signature keeps two static bytes, as
/// ClamAV requires.
fn random_signature(rng: &mut Rng) -> Vec<Piece> {
    let mut pieces = vec![random_static(rng)];
    for _ in 0..rng.below(4) {
        let sep = match rng.below(12) {
            0 => Piece::AnyByte,
            1 => Piece::High(rng.next() as u8),
            2 => Piece::Low(rng.next() as u8),
            3 => Piece::Alt((0..rng.range(2, 4)).map(|_| rng.bytes(1)).collect()),
            4 => Piece::Alt((0..rng.range(2, 3)).map(|_| rng.bytes(2)).collect()),
            5 => Piece::Alt(vec![rng.bytes(1), rng.bytes(3), rng.bytes(2)]),
            6 => Piece::NegAlt((0..rng.range(1, 3)).map(|_| rng.bytes(1)).collect()),
            7 => Piece::Fixed(rng.range(1, 20) as u32),
            8 => {
                let n = rng.range(0, 10) as u32;
                Piece::Range(n, n + rng.range(1, 10) as u32)
            }
            9 => Piece::UpTo(rng.range(1, 12) as u32),
            10 => Piece::AtLeast(rng.range(1, 12) as u32),
            _ => Piece::Star,
        };
        pieces.push(sep);
        pieces.push(random_static(rng));
    }
    pieces
}

fn instance(pieces: &[Piece], rng: &mut Rng) -> Vec<u8> {
    pieces.iter().flat_map(|p| p.instance(rng)).collect()
}

/// Files start with bytes no file-type magic uses, so both tools treat them
/// as plain binary data.
const HEADER: &[u8] = b"\x00\xff\x00\xfeAETHER-DIFF\x00";

fn hex(d: &[u8]) -> String {
    d.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

struct Corpus {
    dir: tempfile::TempDir,
    db: PathBuf,
    files: PathBuf,
}

fn generate(seed: u64) -> Corpus {
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&db).expect("db dir");
    std::fs::create_dir_all(&files).expect("files dir");
    let mut ndb = String::new();
    let mut hdb = String::new();
    let mut hsb = String::new();
    let mut fp = String::new();
    let mut file_no = 0;
    let mut write_file = |data: &[u8]| {
        file_no += 1;
        let path = files.join(format!("f{file_no:04}.bin"));
        std::fs::write(&path, data).expect("write file");
        path
    };

    for i in 0..150 {
        let pieces = random_signature(&mut rng);
        let body: String = pieces.iter().map(Piece::text).collect();
        let inst = instance(&pieces, &mut rng);
        let filler_before = rng.filler(63);
        let filler_after = rng.filler(63);
        let name = format!("Aether.Diff.Body-{i}");
        // Offset forms, chosen per signature.
        let (offset, start) = match rng.below(5) {
            0 => ("*".to_string(), HEADER.len() + filler_before.len()),
            1 => {
                let at = HEADER.len() + filler_before.len();
                (format!("{at}"), at)
            }
            2 => {
                let at = HEADER.len() + filler_before.len();
                let shift = rng.below(8) as usize;
                (
                    format!("{},{shift}", at - rng.below(shift as u64 + 1) as usize),
                    at,
                )
            }
            3 => {
                let from_end = inst.len() + filler_after.len();
                (
                    format!("EOF-{from_end}"),
                    HEADER.len() + filler_before.len(),
                )
            }
            _ => ("*".to_string(), HEADER.len() + filler_before.len()),
        };
        let _ = start;
        let _ = writeln!(ndb, "{name}:0:{offset}:{body}");
        let mut hit = HEADER.to_vec();
        hit.extend_from_slice(&filler_before);
        hit.extend_from_slice(&inst);
        hit.extend_from_slice(&filler_after);
        write_file(&hit);
        // A near miss: one static byte changed.
        let mut miss = hit.clone();
        let first_static = HEADER.len() + filler_before.len();
        miss[first_static] ^= 0x5a;
        write_file(&miss);
        // Shifted by one byte: matters for absolute and end offsets.
        let mut shifted = HEADER.to_vec();
        shifted.push(0x42);
        shifted.extend_from_slice(&hit[HEADER.len()..]);
        write_file(&shifted);
    }

    // Hash signatures: sized and any-size, each digest kind.
    for i in 0..30 {
        let mut data = HEADER.to_vec();
        let n = rng.range(1, 300) as usize;
        data.extend(rng.bytes(n));
        let size = data.len();
        let md5 = hex(&Md5::digest(&data));
        let sha1 = hex(&Sha1::digest(&data));
        let sha256 = hex(&Sha256::digest(&data));
        match i % 5 {
            0 => writeln!(hdb, "{md5}:{size}:Aether.Diff.Md5-{i}"),
            1 => writeln!(hdb, "{md5}:*:Aether.Diff.Md5Any-{i}:73"),
            2 => writeln!(hsb, "{sha1}:{size}:Aether.Diff.Sha1-{i}"),
            3 => writeln!(hsb, "{sha256}:{size}:Aether.Diff.Sha256-{i}"),
            _ => writeln!(hsb, "{sha256}:*:Aether.Diff.Sha256Any-{i}:73"),
        }
        .expect("format");
        write_file(&data);
        // Same content, one byte longer: sized signatures must not match.
        data.push(0);
        write_file(&data);
        // A signature with the right digest and the wrong size.
        if i % 5 == 0 {
            let _ = writeln!(hdb, "{md5}:{}:Aether.Diff.WrongSize-{i}", size + 7);
        }
    }

    // An allow-listed file that a body signature matches, and an ignored signature.
    let mut allowed = HEADER.to_vec();
    allowed.extend_from_slice(b"ALLOW-LISTED-CONTENT");
    let _ = writeln!(ndb, "Aether.Diff.Allowed:0:*:{}", hex(b"ALLOW-LISTED"));
    let _ = writeln!(
        fp,
        "{}:{}:Aether.Diff.FalsePositive",
        hex(&Md5::digest(&allowed)),
        allowed.len()
    );
    write_file(&allowed);
    let _ = writeln!(ndb, "Aether.Diff.Ignored:0:*:{}", hex(b"IGNORED-SIGNATURE"));
    let mut ignored = HEADER.to_vec();
    ignored.extend_from_slice(b"xxIGNORED-SIGNATURExx");
    write_file(&ignored);

    std::fs::write(db.join("diff.ndb"), ndb).expect("ndb");
    std::fs::write(db.join("diff.hdb"), hdb).expect("hdb");
    std::fs::write(db.join("diff.hsb"), hsb).expect("hsb");
    std::fs::write(db.join("diff.fp"), fp).expect("fp");
    std::fs::write(db.join("local.ign2"), "Aether.Diff.Ignored\n").expect("ign2");
    Corpus { dir, db, files }
}

type Verdicts = BTreeMap<String, BTreeSet<String>>;

fn clamscan(corpus: &Corpus) -> Verdicts {
    let out = Command::new("clamscan")
        .args(["--allmatch", "--no-summary", "--stdout", "-d"])
        .arg(&corpus.db)
        .arg(&corpus.files)
        .output()
        .expect("clamscan runs (install Debian's clamav package; .ci/run does)");
    // 0 = clean, 1 = found; anything else means clamscan itself failed.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "clamscan failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut verdicts = Verdicts::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(rest) = line.strip_suffix(" FOUND")
            && let Some((path, name)) = rest.rsplit_once(": ")
        {
            let file = Path::new(path)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned());
            verdicts
                .entry(file.unwrap_or_default())
                .or_default()
                .insert(name.to_string());
        }
    }
    verdicts
}

fn aether(corpus: &Corpus) -> Verdicts {
    let mut loader = Loader::new(LoadOptions::default());
    let mut builder = EngineBuilder::new();
    loader
        .load_path(&corpus.db, &mut builder)
        .expect("database loads");
    let engine = builder.build().expect("engine builds");
    let mut scanner = engine.scanner();
    let limits = Limits {
        all_match: true,
        ..Limits::default()
    };
    let mut verdicts = Verdicts::new();
    let mut entries: Vec<_> = std::fs::read_dir(&corpus.files)
        .expect("list")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file = std::fs::File::open(entry.path()).expect("open");
        let outcome = scanner.scan_file(&file, &limits).expect("scan");
        if !outcome.detections.is_empty() {
            verdicts.insert(
                entry.file_name().to_string_lossy().into_owned(),
                outcome.detections.into_iter().map(|d| d.name).collect(),
            );
        }
    }
    verdicts
}

#[test]
fn same_detections_as_clamscan() {
    for seed in [0x5eed_0001u64, 0x5eed_0002] {
        let corpus = generate(seed);
        let want = clamscan(&corpus);
        let got = aether(&corpus);
        // The generator must produce detections of every kind, or the
        // comparison proves little.
        let all: BTreeSet<&str> = want.values().flatten().map(|s| s.as_str()).collect();
        assert!(
            all.len() > 100,
            "clamscan found only {} signatures",
            all.len()
        );
        for kind in ["Body", "Md5-", "Md5Any", "Sha1", "Sha256-", "Sha256Any"] {
            assert!(
                all.iter().any(|n| n.contains(kind)),
                "no {kind} detection generated"
            );
        }
        let files: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
        let mut diffs = Vec::new();
        for f in files {
            let w = want.get(f).cloned().unwrap_or_default();
            let g = got.get(f).cloned().unwrap_or_default();
            if w != g {
                diffs.push(format!("{f}: clamscan {w:?}, aether {g:?}"));
            }
        }
        assert!(
            diffs.is_empty(),
            "{} of the files differ (corpus kept at {}):\n{}",
            diffs.len(),
            corpus.dir.keep().display(),
            diffs.join("\n")
        );
    }
}

#[test]
fn html_files_are_not_hashed_as_clamscan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).expect("files dir");
    let html = b"<!DOCTYPE html>\n<html><body>a page</body></html>\n";
    let text = b"just some plain text, no markup\n";
    std::fs::write(files.join("page.html"), html).expect("write");
    std::fs::write(files.join("plain.txt"), text).expect("write");
    let hdb = format!(
        "{}:{}:Html.Hash\n{}:{}:Text.Hash\n",
        hex(&Md5::digest(html)),
        html.len(),
        hex(&Md5::digest(text)),
        text.len()
    );
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    std::fs::write(db.join("h.hdb"), hdb).expect("hdb");
    let corpus = Corpus { db, files, dir };
    let want = clamscan(&corpus);
    let got = aether(&corpus);
    assert_eq!(got, want);
    assert!(
        want.contains_key("plain.txt") && !want.contains_key("page.html"),
        "{want:?}"
    );
}
