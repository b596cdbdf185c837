//! Differential tests: aether's text normalization against the files Debian's
//! clamscan 1.4 keeps with `--leave-temps` (`nocomment.html`, `notags.html`
//! for HTML; the normalized `.tmp` of `cli_scanscript` for text). Each case
//! must be byte-identical. Inputs are generated from a fixed seed plus
//! hand-written edge cases; every case file is scanned in one clamscan run.
//!
//! Skipped, with a message, only when clamscan is not installed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use aether_formats::normalize::ascii::{self, ScriptBuffers};
use aether_formats::normalize::{HtmlLimits, HtmlNormalizer, HtmlOutput, normalize_html};

/// xorshift64*: a fixed, dependency-free source of test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

fn clamscan() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("clamscan"))
        .find(|p| p.is_file())
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("aether-norm-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(dir.join("in")).expect("scratch dir");
        fs::create_dir_all(dir.join("tmp")).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A database with one type-3 and one type-7 signature that match nothing,
/// so that clamscan runs both normalizers (and `cli_scanscript` keeps its
/// output with `--leave-temps`).
const DB: &str = "Aether.Test.Html:3:*:6165746865725f6e657665725f68746d6c\n\
                  Aether.Test.Text:7:*:6165746865725f6e657665725f747874\n";
/// The longest type-7 pattern above, ClamAV's `maxpatlen` for target 7.
const MAXPATLEN: usize = 16;

/// Runs clamscan on every file in `dir/in`, keeping temporaries in `dir/tmp`.
fn run_clamscan(clamscan: &Path, dir: &Path, extra: &[&str]) {
    let db = dir.join("test.ndb");
    fs::write(&db, DB).expect("write db");
    let out = Command::new(clamscan)
        .arg("--leave-temps")
        .arg(format!("--tempdir={}", dir.join("tmp").display()))
        .arg("-d")
        .arg(&db)
        .args(extra)
        .arg("-r")
        .arg(dir.join("in"))
        .output()
        .expect("run clamscan");
    // 0: nothing found, 1: something found (the database matches nothing).
    assert_eq!(
        out.status.code(),
        Some(0),
        "clamscan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under `root`, recursively.
fn walk(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(root) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The temporaries clamscan kept for each input file, by input name: the
/// files of its first layer (`<time>-<name>.<id>/<name>.<id>/...`).
fn temps(dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut all = Vec::new();
    walk(&dir.join("tmp"), &mut all);
    let mut by = BTreeMap::<String, Vec<PathBuf>>::new();
    for p in all {
        let Ok(rel) = p.strip_prefix(dir.join("tmp")) else {
            continue;
        };
        let parts: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if parts.len() < 3 {
            continue;
        }
        // The second component is "<name>.<10 hex digits>".
        let Some((name, _)) = parts[1].rsplit_once('.') else {
            continue;
        };
        by.entry(name.to_string()).or_default().push(p);
    }
    by
}

/// The `html-tmp.*` output named `file` nearest the top for one input.
fn html_temp(files: &[PathBuf], file: &str) -> Option<PathBuf> {
    files
        .iter()
        .filter(|p| {
            p.file_name().is_some_and(|n| n == file)
                && p.parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|n| n.to_string_lossy().starts_with("html-tmp"))
        })
        .min_by_key(|p| p.components().count())
        .cloned()
}

// ---------------------------------------------------------------- ASCII ---

fn text_cases() -> Vec<Vec<u8>> {
    let mut cases: Vec<Vec<u8>> = vec![
        b"Hello World\n".to_vec(),
        b"  leading and trailing  \n\n".to_vec(),
        b"MiXeD CaSe\tTabs\tAnd\r\nCRLF lines\r\n".to_vec(),
        b"form\x0cfeed and\x0bvertical tab\n".to_vec(),
        b"ALL UPPER CASE WITH [brackets] AND {braces} @ ~ ^ _ `\n".to_vec(),
        b"punctuation !\"#$%&'()*+,-./:;=>?\\|\n".to_vec(),
        b"\n\n\n\n   \t\t\t   x\n".to_vec(),
        b"a".to_vec(),
        b"DEL byte \x7f stays\n".to_vec(),
        "utf-8 caf\u{e9} na\u{ef}ve \u{2014} dash\n"
            .as_bytes()
            .to_vec(),
        "\u{feff}BOM then TEXT\n".as_bytes().to_vec(),
        b"trailing spaces at end of file     ".to_vec(),
    ];
    let mut rng = Rng(0x5eed_0007);
    let words: [&[u8]; 14] = [
        b"var",
        b"Function",
        b"EVAL",
        b"document.write",
        b"x=1;",
        b"\"str\"",
        b"'q'",
        b"if(a)",
        b"{",
        b"}",
        b"0xDEAD",
        b"PowerShell",
        b"-EncodedCommand",
        b"Set-Item",
    ];
    let spaces: [&[u8]; 8] = [
        b" ", b"  ", b"\t", b"\n", b"\r\n", b" \t \n", b"\x0b", b"\x0c",
    ];
    for i in 0..250 {
        let mut t = Vec::new();
        let n = 1 + rng.below(if i % 50 == 0 { 3000 } else { 80 });
        for _ in 0..n {
            t.extend_from_slice(rng.pick(&words[..]));
            t.extend_from_slice(rng.pick(&spaces[..]));
            if i % 5 == 0 && rng.below(7) == 0 {
                // Printable noise of every class, upper case included.
                t.push(0x21 + rng.below(0x5e) as u8);
            }
            if i % 9 == 0 && rng.below(11) == 0 {
                // UTF-8: dropped by the normalizer, still text for ClamAV.
                t.extend_from_slice("\u{e9}\u{4e2d}".as_bytes());
            }
        }
        cases.push(t);
    }
    cases
}

/// A text bigger than ClamAV's scan buffer, so that its kept file shows the
/// buffer boundaries (the carried-over overlap, the reset space flag).
fn big_text() -> Vec<u8> {
    let mut rng = Rng(0xb16);
    let mut t = Vec::new();
    while t.len() < 400_000 {
        let w = rng.below(12);
        for _ in 0..w {
            t.push(b'A' + rng.below(26) as u8);
        }
        // Long white-space runs make a run straddling a page likely.
        let s = rng.below(40);
        t.extend(std::iter::repeat_n(b' ', s.max(1)));
        if rng.below(3) == 0 {
            t.push(b'\n');
        }
    }
    t
}

fn clamav_text_file(input: &[u8]) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut sb = ScriptBuffers::new(MAXPATLEN);
    sb.feed(input, &mut |b: &[u8]| kept.extend_from_slice(b));
    sb.finish(&mut |b: &[u8]| kept.extend_from_slice(b));
    kept
}

#[test]
fn ascii_matches_clamscan() {
    let Some(clamscan) = clamscan() else {
        eprintln!("SKIPPED ascii_matches_clamscan: clamscan is not installed");
        return;
    };
    let s = Scratch::new("ascii");
    let mut cases = text_cases();
    cases.push(big_text());
    for (i, c) in cases.iter().enumerate() {
        fs::write(s.0.join("in").join(format!("text{i:04}.txt")), c).expect("write case");
    }
    run_clamscan(&clamscan, &s.0, &[]);
    let temps = temps(&s.0);
    let mut compared = 0;
    let mut missing = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let name = format!("text{i:04}.txt");
        let kept: Vec<&PathBuf> = temps
            .get(&name)
            .map(|v| {
                v.iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
                    .collect()
            })
            .unwrap_or_default();
        if c.len() <= 5 {
            // ClamAV does not scan files of 5 bytes or less at all.
            assert!(kept.is_empty(), "{name}: clamscan normalized a tiny file");
            continue;
        }
        let [kept] = kept.as_slice() else {
            missing.push(name);
            continue;
        };
        let theirs = fs::read(kept).expect("read kept file");
        let ours = clamav_text_file(c);
        assert_eq!(
            ours,
            theirs,
            "{name}: input {:?}",
            String::from_utf8_lossy(&c[..c.len().min(200)])
        );
        if c.len() < 100_000 {
            // Below one scan buffer the kept file is the plain normalization.
            assert_eq!(ascii::normalize(c, usize::MAX).0, theirs, "{name}");
        }
        compared += 1;
    }
    assert!(
        missing.is_empty(),
        "clamscan kept no normalized text for {missing:?}"
    );
    assert!(compared >= 200, "only {compared} cases compared");
    eprintln!("ascii: {compared} cases byte-identical to clamscan");
}

#[test]
fn ascii_limit_matches_clamscan() {
    let Some(clamscan) = clamscan() else {
        eprintln!("SKIPPED ascii_limit_matches_clamscan: clamscan is not installed");
        return;
    };
    let s = Scratch::new("ascii-limit");
    fs::write(s.0.join("in/small.txt"), vec![b'a'; 1000]).expect("write");
    fs::write(s.0.join("in/large.txt"), vec![b'a'; 1001]).expect("write");
    run_clamscan(&clamscan, &s.0, &["--max-scriptnormalize=1000"]);
    let temps = temps(&s.0);
    let kept = |n: &str| {
        temps
            .get(n)
            .is_some_and(|v| v.iter().any(|p| p.extension().is_some_and(|e| e == "tmp")))
    };
    // Over the limit the text is not normalized at all (clamscan's check is
    // "larger than"): the engine must skip type-7 matching, as
    // `aether_formats::normalize::MAX_SCRIPT_NORMALIZE` documents.
    assert!(kept("small.txt"));
    assert!(!kept("large.txt"));
}
