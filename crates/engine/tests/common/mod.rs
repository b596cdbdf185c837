//! Shared by the engine's tests.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// xorshift64*: a deterministic generator without a dependency, so every run
/// of a randomized test checks the same cases.
pub struct Rng(pub u64);

#[allow(dead_code)] // Each test binary uses a different subset.
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Up to `max` random bytes.
    pub fn filler(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max + 1) as usize;
        self.bytes(n)
    }
}

/// Signature names per file name.
#[allow(dead_code)]
pub type Verdicts = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// What Debian's clamscan reports for `files` with `--allmatch`, by file name.
#[allow(dead_code)]
pub fn clamscan(db: &Path, files: &[PathBuf]) -> Verdicts {
    let out = std::process::Command::new("clamscan")
        .args(["--allmatch", "--no-summary", "--stdout", "-d"])
        .arg(db)
        .args(files)
        .output()
        .expect("clamscan from Debian's clamav package");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "clamscan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Verdicts::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(rest) = line.strip_suffix(" FOUND")
            && let Some((path, name)) = rest.rsplit_once(": ")
        {
            v.entry(file_name(Path::new(path)))
                .or_default()
                .insert(name.to_string());
        }
    }
    v
}

/// A path's last component.
#[allow(dead_code)]
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An engine of the signatures in `db`, all of which it must support.
#[allow(dead_code)]
pub fn engine(db: &Path) -> aether_engine::Engine {
    let mut loader = aether_sigs::Loader::new(aether_sigs::LoadOptions::default());
    let mut builder = aether_engine::EngineBuilder::new();
    loader.load_path(db, &mut builder).expect("database loads");
    let report = loader.finish();
    assert!(
        report.unsupported().is_empty(),
        "{:?}",
        report.unsupported()
    );
    builder.build().expect("engine builds")
}

/// What the engine reports for `files` with `--allmatch`, by file name, as
/// [`clamscan`] gives it.
#[allow(dead_code)]
pub fn aether(engine: &aether_engine::Engine, files: &[PathBuf]) -> Verdicts {
    let limits = aether_engine::Limits {
        all_match: true,
        ..aether_engine::Limits::default()
    };
    let mut scanner = engine.scanner();
    let mut v = Verdicts::new();
    for path in files {
        let file = std::fs::File::open(path).expect("open");
        let outcome = scanner.scan_file(&file, &limits).expect("scan");
        for d in outcome.detections {
            v.entry(file_name(path)).or_default().insert(d.name);
        }
    }
    v
}

/// Database files and test files written to a temporary directory.
#[allow(dead_code)]
pub struct Corpus {
    pub dir: tempfile::TempDir,
    /// The database directory.
    pub db: PathBuf,
    /// The files, in the order given.
    pub files: Vec<PathBuf>,
}

/// Writes `db` (file name, text) into a database directory and `files`
/// (name, bytes) next to it. Leave out an empty database file: ClamAV
/// refuses one.
#[allow(dead_code)]
pub fn corpus<N: AsRef<Path>, D: AsRef<[u8]>>(db: &[(&str, &str)], files: &[(N, D)]) -> Corpus {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_dir = dir.path().join("db");
    std::fs::create_dir(&db_dir).expect("db dir");
    for (name, text) in db {
        std::fs::write(db_dir.join(name), text).expect("database file");
    }
    let files = files
        .iter()
        .map(|(name, data)| {
            let p = dir.path().join(name);
            std::fs::write(&p, data).expect("test file");
            p
        })
        .collect();
    Corpus {
        dir,
        db: db_dir,
        files,
    }
}

/// Writes `db` and `files` as [`corpus`] does and scans the files with
/// Debian's clamscan and with the engine: (clamscan's verdicts, the
/// engine's).
#[allow(dead_code)]
pub fn compare<N: AsRef<Path>, D: AsRef<[u8]>>(
    db: &[(&str, &str)],
    files: &[(N, D)],
) -> (Verdicts, Verdicts) {
    let c = corpus(db, files);
    let want = clamscan(&c.db, &c.files);
    let got = aether(&engine(&c.db), &c.files);
    (want, got)
}

/// Lower-case hex, as signatures write bytes.
#[allow(dead_code)]
pub fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// An `.hdb` line: `data`'s MD5 and size, named `name`.
#[allow(dead_code)]
pub fn hdb_line(name: &str, data: &[u8]) -> String {
    use md5::Digest as _;
    format!("{}:{}:{name}\n", hex(&md5::Md5::digest(data)), data.len())
}

/// The signature names `verdicts` gives `file`, sorted; none if it has none.
#[allow(dead_code)]
pub fn names<'a>(verdicts: &'a Verdicts, file: &str) -> Vec<&'a str> {
    verdicts
        .get(file)
        .map(|s| s.iter().map(String::as_str).collect())
        .unwrap_or_default()
}
