//! Signatures anchored to an executable's structure: the engine must report
//! what Debian's clamscan 1.4.6 reports, file by file, with `--allmatch`.
//!
//! For PE files of clamav-testfiles, ELF programs from /usr/bin and built
//! files (PE32, PE32+, odd alignments, a PE of 300 KiB, thin Mach-O for
//! x86-64 and PowerPC, big-endian ELF, a universal binary, a PE and an ELF
//! with unreadable headers, a zip holding a PE), signatures are written from
//! what aether-exe reads: `.ndb` body signatures at `EP+0`, `EP-4`, `Sx+3`,
//! `SEx` (start and middle), `SL+2` and their one-byte-off twins, the same
//! bytes at offset 0 for target types 0, 1, 6 and 9, a generic `EOF-16`,
//! `.ldb` signatures with `EntryPoint`/`NumberOfSections` (right and wrong
//! ranges) and executable-relative subsignatures, `.mdb`/`.msb` section
//! hashes and `.imp` import hashes with wrong-size twins. The engine is
//! checked compiled and read back from its cache.

mod common;
#[path = "exe_common/mod.rs"]
mod exe_common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aether_engine::{DbSources, Limits, load_cached};
use aether_exe::{ExeInfo, ImportTable, fat_arches};
use aether_sigs::LoadOptions;
use common::{Verdicts, aether, clamscan, file_name};
use md5::Digest as _;

const LEN: usize = 16;

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

#[derive(Default)]
struct Db {
    ndb: String,
    ldb: String,
    mdb: String,
    msb: String,
    imp: String,
    /// Hashes (with their size) already written: ClamAV keeps one name per
    /// hash, so a section two files share gets one signature.
    hashes: BTreeSet<String>,
}

impl Db {
    fn body(&mut self, name: &str, target: u8, offset: &str, data: &[u8], at: usize) {
        if let Some(p) = data.get(at..at + LEN) {
            let _ = writeln!(self.ndb, "{name}:{target}:{offset}:{}", hex(p));
        }
    }

    /// A hash line `size:hash:name` or `hash:size:name`; `key` is its hash
    /// and size.
    fn hash(&mut self, which: &str, line: String) {
        let key = line.rsplit_once(':').map_or("", |(k, _)| k).to_string();
        if self.hashes.insert(format!("{which}:{key}")) {
            match which {
                "mdb" => self.mdb.push_str(&line),
                "msb" => self.msb.push_str(&line),
                _ => self.imp.push_str(&line),
            }
        }
    }

    /// Signatures for one executable (`tag` keeps names unique).
    fn executable(&mut self, tag: &str, data: &[u8], info: &ExeInfo) {
        let t = info.kind.target_type() as u8;
        let ep = info.entry_point as usize;
        self.body(&format!("{tag}_EP"), t, "EP+0", data, ep);
        self.body(&format!("{tag}_EPw"), t, "EP+1", data, ep);
        if ep >= 4 {
            self.body(&format!("{tag}_EPm4"), t, "EP-4", data, ep - 4);
            self.body(&format!("{tag}_EPm4w"), t, "EP-3", data, ep - 4);
        }
        let n = info.sections.len();
        let picks: BTreeSet<usize> = (0..n.min(5)).map(|k| k * n.saturating_sub(1) / 4).collect();
        for x in picks {
            let s = &info.sections[x];
            let raw = s.raw as usize;
            self.body(&format!("{tag}_S{x}"), t, &format!("S{x}+3"), data, raw + 3);
            self.body(
                &format!("{tag}_S{x}w"),
                t,
                &format!("S{x}+4"),
                data,
                raw + 3,
            );
            if s.raw_size as usize >= 2 * LEN {
                let mid = raw + s.raw_size as usize / 2;
                self.body(&format!("{tag}_SE{x}"), t, &format!("SE{x}"), data, raw);
                self.body(&format!("{tag}_SE{x}mid"), t, &format!("SE{x}"), data, mid);
                // With a wildcard the pattern leaves the Boyer-Moore matcher.
                if let Some(p) = data.get(mid..mid + LEN) {
                    let _ = writeln!(
                        self.ndb,
                        "{tag}_SE{x}midwild:{t}:SE{x}:{}??{}",
                        hex(&p[..7]),
                        hex(&p[8..])
                    );
                }
            }
        }
        if let Some(last) = info.sections.last() {
            let at = last.raw as usize + 2;
            self.body(&format!("{tag}_SL"), t, "SL+2", data, at);
            self.body(&format!("{tag}_SLw"), t, "SL+3", data, at);
            self.body(&format!("{tag}_SLshift"), t, "SL+0,4", data, at);
        }
        // Logical signatures: the target description's EntryPoint and
        // NumberOfSections, and subsignatures at executable offsets.
        if let Some(p) = data.get(ep..ep + LEN) {
            let p = hex(p);
            let good = format!("EntryPoint:{ep}-{ep},NumberOfSections:{n}-{n}");
            let lines = [
                ("L", good.clone()),
                ("Lep", format!("EntryPoint:{}-{}", ep + 1, ep + 100)),
                ("Lnos", format!("NumberOfSections:{}-{}", n + 1, n + 9)),
                ("Lany", String::new()),
            ];
            for (k, tdb) in lines {
                let sep = if tdb.is_empty() { "" } else { "," };
                let _ = writeln!(
                    self.ldb,
                    "{tag}_{k};Engine:51-255,Target:{t}{sep}{tdb};0&1;EP+0:{p};{}",
                    hex(&data[..4.min(data.len())])
                );
            }
            let _ = writeln!(
                self.ldb,
                "{tag}_Lwrongep;Engine:51-255,Target:{t};0;EP+2:{p}"
            );
            // A regex at the entry point (anchored there: no shift).
            if let Some(bytes) = data.get(ep..ep + 8) {
                let re: String = bytes.iter().map(|b| format!("\\x{b:02x}")).collect();
                let head = hex(&data[..4.min(data.len())]);
                for (k, off) in [("Lpcre", "EP+0"), ("Lpcrew", "EP+1")] {
                    let _ = writeln!(
                        self.ldb,
                        "{tag}_{k};Engine:81-255,Target:{t};0&1;{head};{off}:0/{re}/"
                    );
                }
            }
        }
        if let Some(s) = info.sections.first()
            && let Some(p) = data.get(s.raw as usize + 3..s.raw as usize + 3 + LEN)
        {
            let _ = writeln!(
                self.ldb,
                "{tag}_Lsec;Engine:51-255,Target:{t},NumberOfSections:1-{n};0;S0+3:{}",
                hex(p)
            );
        }
        for (i, bytes) in info.hashed_sections(data) {
            let size = bytes.len();
            let md5 = hex(&md5::Md5::digest(bytes));
            let sha1 = hex(&sha1::Sha1::digest(bytes));
            let sha256 = hex(&sha2::Sha256::digest(bytes));
            self.hash("mdb", format!("{size}:{md5}:{tag}_MDB{i}\n"));
            self.hash("mdb", format!("{}:{md5}:{tag}_MDB{i}w\n", size + 1));
            self.hash("msb", format!("{size}:{sha1}:{tag}_MSB1_{i}\n"));
            self.hash("msb", format!("{size}:{sha256}:{tag}_MSB{i}\n"));
            self.hash("msb", format!("{}:{sha256}:{tag}_MSB{i}w\n", size - 1));
        }
        if let Ok(h) = ImportTable::read(data, info).and_then(|t| t.hash())
            && h.size > 0
        {
            let (md5, sha256) = (hex(&h.md5), hex(&h.sha256));
            self.hash("imp", format!("{md5}:{}:{tag}_IMP\n", h.size));
            self.hash("imp", format!("{md5}:{}:{tag}_IMPw\n", h.size + 1));
            self.hash("imp", format!("{sha256}:{}:{tag}_IMP256\n", h.size));
        }
    }

    /// Signatures that do not need the headers: the first bytes for every
    /// executable target type, and a generic `EOF-16`.
    fn plain(&mut self, tag: &str, data: &[u8]) {
        for t in [0u8, 1, 6, 9] {
            self.body(&format!("{tag}_T{t}"), t, "0", data, 0);
        }
        if data.len() >= LEN {
            self.body(
                &format!("{tag}_EOF"),
                0,
                &format!("EOF-{LEN}"),
                data,
                data.len() - LEN,
            );
        }
    }
}

/// Detections of the signatures written for this file: its tag (`F3`), or
/// for the universal binary its architectures' (`U0`, `U1`). Packed test
/// files hold clam.exe, which clamscan unpacks and matches against
/// clam.exe's signatures; aether does not unpack, so those are left out.
fn own(v: &Verdicts, file: &str, tags: &BTreeMap<String, String>) -> BTreeSet<String> {
    let Some(tag) = tags.get(file) else {
        return BTreeSet::new();
    };
    v.get(file)
        .into_iter()
        .flatten()
        .filter(|n| {
            n.split('_')
                .next()
                .is_some_and(|t| t == tag || (tag == "U" && t.starts_with('U')))
        })
        .cloned()
        .collect()
}

fn compare(
    want: &Verdicts,
    got: &Verdicts,
    tags: &BTreeMap<String, String>,
    what: &str,
    dir: &Path,
) {
    let files: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    let mut diffs = Vec::new();
    for f in files {
        let w = own(want, f, tags);
        let g = own(got, f, tags);
        if w != g {
            let missing: Vec<_> = w.difference(&g).collect();
            let extra: Vec<_> = g.difference(&w).collect();
            diffs.push(format!("{f}: aether lacks {missing:?}, adds {extra:?}"));
        }
    }
    if !diffs.is_empty() {
        // The directory is kept for a look at the files and signatures.
        panic!(
            "{what}: {} files differ (see {}):\n{}",
            diffs.len(),
            dir.display(),
            diffs.join("\n")
        );
    }
}

/// ELF programs from /usr/bin, a deterministic few of modest size.
fn usr_bin_elves(n: usize) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir("/usr/bin")
        .expect("/usr/bin")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.len() < 1_000_000)
                && std::fs::read(p).is_ok_and(|d| d.starts_with(b"\x7fELF"))
        })
        .collect();
    all.sort();
    let step = (all.len() / n).max(1);
    all.into_iter().step_by(step).take(n).collect()
}

/// A PE of 300 KiB: past the size where ClamAV's Boyer-Moore matcher looks
/// only at the start of an `SEx` range.
fn large_pe(seed: u64) -> Vec<u8> {
    exe_common::build_pe(&exe_common::PeSpec {
        plus: false,
        section_alignment: 0x1000,
        file_alignment: 0x200,
        size_of_headers: 0x400,
        entry_rva: 0x1010,
        sections: vec![
            (".text", 0x1000, 0x40000, 0x400, 0x40000),
            (".rdata", 0x41000, 0x200, 0x40400, 0x200),
            (".data", 0x42000, 0x8000, 0x40600, 0x8000),
        ],
        file_len: 0x48600,
        imports_at: Some((0x41000, 0x40400)),
        imports: exe_common::default_imports(),
        seed,
    })
}

#[test]
fn executable_signatures_match_clamscan() {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let files_dir = dir.join("files");
    std::fs::create_dir(&files_dir).expect("files dir");
    let mut db = Db::default();
    let mut files: Vec<PathBuf> = Vec::new();

    let mut pes: Vec<PathBuf> = std::fs::read_dir("/usr/share/clamav-testfiles")
        .expect("clamav-testfiles")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "exe"))
        // InstallShield installers with a cabinet inside: clamscan scans
        // the PE files embedded in them as nested files, where the bytes
        // of `SEx` signatures turn up again; aether does not extract those.
        .filter(|p| !file_name(p).starts_with("clam_IScab"))
        .collect();
    pes.sort();
    let mut inputs: Vec<(String, Vec<u8>, Option<PathBuf>)> = Vec::new();
    for path in pes {
        let data = std::fs::read(&path).expect("read");
        inputs.push((file_name(&path), data, Some(path)));
    }
    for path in usr_bin_elves(6) {
        let data = std::fs::read(&path).expect("read");
        inputs.push((file_name(&path), data, Some(path)));
    }
    let mut broken_pe = exe_common::plain_pe(false, 31);
    // AddressOfEntryPoint in no section.
    broken_pe[0x80 + 24 + 16..0x80 + 24 + 20].copy_from_slice(&0x9000u32.to_le_bytes());
    let mut broken_elf = exe_common::elf32_be(32);
    broken_elf[46..48].copy_from_slice(&7u16.to_be_bytes()); // e_shentsize
    for (name, data) in [
        ("pe32.exe", exe_common::plain_pe(false, 21)),
        ("pe32plus.exe", exe_common::plain_pe(true, 22)),
        ("odd-alignment.exe", exe_common::odd_pe(23)),
        ("large.exe", large_pe(29)),
        ("macho64", exe_common::macho64(24)),
        ("macho-ppc", exe_common::macho_ppc(25)),
        ("elf32-be", exe_common::elf32_be(26)),
        ("broken.exe", broken_pe),
        ("broken.elf", broken_elf),
    ] {
        inputs.push((name.to_string(), data, None));
    }
    let mut generated: Vec<(String, Vec<u8>)> = Vec::new();
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    for (k, (name, data, path)) in inputs.iter().enumerate() {
        let tag = format!("F{k}");
        tags.insert(name.clone(), tag.clone());
        db.plain(&tag, data);
        if let Ok(info) = ExeInfo::parse(data) {
            db.executable(&tag, data, &info);
        }
        match path {
            Some(p) => files.push(p.clone()),
            None => generated.push((name.clone(), data.clone())),
        }
    }
    // A universal binary: each architecture is scanned as a file of its own.
    let (a, b) = (exe_common::macho64(27), exe_common::macho_ppc(28));
    let fat = exe_common::fat(&[(0x0100_0007, &a), (18, &b)]);
    db.plain("U", &fat);
    for (k, arch) in fat_arches(&fat)
        .expect("universal")
        .arches
        .iter()
        .enumerate()
    {
        let part = arch.bytes(&fat).expect("architecture");
        let info = ExeInfo::parse(part).expect("thin Mach-O");
        db.executable(&format!("U{k}"), part, &info);
    }
    generated.push(("universal".into(), fat));
    tags.insert("universal".into(), "U".into());
    tags.insert("pe.zip".into(), "Z".into());
    // A PE inside a zip: the member has the same structure.
    let zipped = large_pe(41);
    db.executable(
        "Z",
        &zipped,
        &ExeInfo::parse(&zipped).expect("zipped PE parses"),
    );
    generated.push((
        "pe.zip".into(),
        exe_common::stored_zip(&[("inner.exe", &zipped)]),
    ));
    for (name, data) in &generated {
        let path = files_dir.join(name);
        std::fs::write(&path, data).expect("write");
        files.push(path);
    }

    let dbdir = dir.join("db");
    std::fs::create_dir(&dbdir).expect("db dir");
    std::fs::write(dbdir.join("exe.ndb"), &db.ndb).expect("ndb");
    std::fs::write(dbdir.join("exe.ldb"), &db.ldb).expect("ldb");
    std::fs::write(dbdir.join("exe.mdb"), &db.mdb).expect("mdb");
    std::fs::write(dbdir.join("exe.msb"), &db.msb).expect("msb");
    std::fs::write(dbdir.join("exe.imp"), &db.imp).expect("imp");

    let want = clamscan(&dbdir, &files);
    let sources = DbSources {
        builtin: false,
        paths: vec![dbdir.clone()],
    };
    let cache = dir.join("cache");
    let compiled = load_cached(&sources, LoadOptions::default(), Some(&cache)).expect("load");
    assert!(
        compiled.report.unsupported().is_empty(),
        "{:?}",
        compiled.report.unsupported()
    );
    let got = aether(&compiled.engine, &files);
    compare(&want, &got, &tags, "compiled", &dir);
    let cached = load_cached(&sources, LoadOptions::default(), Some(&cache)).expect("reload");
    assert!(cached.from_cache, "{:?}", cached.cache_problem);
    compare(
        &want,
        &aether(&cached.engine, &files),
        &tags,
        "from the cache",
        &dir,
    );

    // The comparison proves something only if every kind was reported and
    // the wrong twins were not.
    let all: Vec<&String> = want.values().flatten().collect();
    let lines = |t: &str| t.lines().count();
    eprintln!(
        "{} files; signatures: {} .ndb, {} .ldb, {} .mdb, {} .msb, {} .imp; {} detections by clamscan",
        files.len(),
        lines(&db.ndb),
        lines(&db.ldb),
        lines(&db.mdb),
        lines(&db.msb),
        lines(&db.imp),
        all.len()
    );
    for kind in [
        "_EP.",
        "_EPm4.",
        "_S0.",
        "_SE1.",
        "_SL.",
        "_SLshift",
        "_T1.",
        "_T6.",
        "_T9.",
        "_EOF",
        "_L.",
        "_Lsec",
        "_Lpcre.",
        "_MDB",
        "_MSB1_",
        "_MSB",
        "_IMP.",
        "_IMP256",
        "_SE0midwild",
    ] {
        assert!(
            all.iter().any(|n| n.contains(kind)),
            "clamscan reported no {kind} signature"
        );
    }
    // Built files are random outside their headers, so a twin one byte off
    // cannot match by chance there.
    let built: BTreeSet<String> = generated
        .iter()
        .flat_map(|(f, _)| own(&want, f, &tags))
        .collect();
    assert!(built.len() > 100, "{built:?}");
    // (Not `SL+3`: the last section of odd-alignment.exe has no raw data,
    // so `SL` is offset 0, in the zeros of the headers.)
    for wrong in [
        "_EPw",
        "_EPm4w",
        "_S0w",
        "_Lep",
        "_Lnos",
        "_Lwrongep",
        "_Lpcrew",
        "MDB0w",
    ] {
        assert!(
            !built.iter().any(|n| n.contains(wrong)),
            "clamscan reported a {wrong} signature: {built:?}"
        );
    }
    // In the PE of 300 KiB, a plain `SEx` signature matches only at the
    // start of the section; one with a wildcard anywhere in it.
    let large = own(&want, "large.exe", &tags);
    assert!(
        large.iter().any(|n| n.contains("_SE0midwild"))
            && large.iter().any(|n| n.contains("_SE0."))
            && !large.iter().any(|n| n.contains("_SE0mid.")),
        "{large:?}"
    );
    // Files of an executable type with unreadable headers: no EOF-n.
    for f in ["broken.exe", "broken.elf"] {
        let names = want.get(f).cloned().unwrap_or_default();
        assert!(
            !names.iter().any(|n| n.contains("_EOF")) && names.iter().any(|n| n.contains("_T")),
            "{f}: {names:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every prefix of a universal binary and of a PE, and bit-flipped copies
/// of each built executable, scan without a panic or an error, with
/// signatures of every executable kind loaded; the whole files still match.
#[test]
fn truncated_and_damaged_executables_scan() {
    let (a, b) = (exe_common::macho64(51), exe_common::macho_ppc(52));
    let fat = exe_common::fat(&[(0x0100_0007, &a), (18, &b)]);
    let samples: Vec<(&str, Vec<u8>)> = vec![
        ("pe32", exe_common::plain_pe(false, 53)),
        ("pe32plus", exe_common::plain_pe(true, 54)),
        ("odd", exe_common::odd_pe(55)),
        ("macho-ppc", b.clone()),
        ("elf32-be", exe_common::elf32_be(56)),
        ("universal", fat.clone()),
    ];
    let mut db = Db::default();
    for (k, (_, data)) in samples.iter().enumerate() {
        if let Ok(info) = ExeInfo::parse(data) {
            db.executable(&format!("H{k}"), data, &info);
        }
        db.plain(&format!("H{k}"), data);
    }
    for (k, arch) in fat_arches(&fat)
        .expect("universal")
        .arches
        .iter()
        .enumerate()
    {
        let part = arch.bytes(&fat).expect("architecture");
        db.executable(
            &format!("HU{k}"),
            part,
            &ExeInfo::parse(part).expect("thin"),
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for (ext, text) in [
        ("ndb", &db.ndb),
        ("ldb", &db.ldb),
        ("mdb", &db.mdb),
        ("msb", &db.msb),
        ("imp", &db.imp),
    ] {
        std::fs::write(dir.path().join(format!("h.{ext}")), text).expect("write");
    }
    let sources = DbSources {
        builtin: false,
        paths: vec![dir.path().to_path_buf()],
    };
    let engine = load_cached(&sources, LoadOptions::default(), None)
        .expect("load")
        .engine;
    let mut scanner = engine.scanner();
    let limits = Limits {
        all_match: true,
        ..Limits::default()
    };
    let mut scans = 0u32;
    for (k, (name, data)) in samples.iter().enumerate() {
        let whole = scanner.scan_bytes(data, &limits).expect("scan");
        assert!(
            whole
                .detections
                .iter()
                .any(|d| d.name.starts_with(&format!("H{k}_T"))),
            "{name}: {:?}",
            whole.detections
        );
        let prefixes: Vec<usize> = if *name == "universal" || *name == "pe32" {
            (0..data.len()).collect()
        } else {
            (0..data.len()).step_by(7).collect()
        };
        for n in prefixes {
            scanner
                .scan_bytes(&data[..n], &limits)
                .expect("prefix scan");
            scans += 1;
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ k as u64;
        for _ in 0..400 {
            let mut d = data.clone();
            for _ in 0..3 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let at = (rng >> 8) as usize % d.len();
                d[at] ^= 1 << (rng % 8);
            }
            scanner.scan_bytes(&d, &limits).expect("damaged scan");
            scans += 1;
        }
    }
    assert!(scans > 10_000, "{scans}");
}
