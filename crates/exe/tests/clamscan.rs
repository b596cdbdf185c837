//! aether-exe's offsets and hashes against Debian's clamscan.
//!
//! For real executables (the PE test files of clamav-testfiles, ELF programs
//! from /usr/bin) and built ones (PE32+, odd PE alignments, Mach-O thin and
//! universal, big-endian ELF), signatures are written from what aether-exe
//! reads: `.ndb` lines whose 16 bytes are those aether-exe places at `EP+0`,
//! `EP-4`, `Sx+3`, `SEx` and `SL+2`, `.mdb`/`.msb` lines from its section
//! hashes and `.imp` lines from its import hash. clamscan must report every
//! one of them, and none of the deliberately wrong twins (one byte later,
//! one size off), which aether-exe's own resolver must also reject.
//! The test needs no aether engine: it proves the offsets are ClamAV's.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use aether_exe::{ExeInfo, ImportTable, Layout, Placement, fat_arches, resolve};
use aether_sigs::Offset;
use md5::Digest as _;

const LEN: usize = 16;

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

struct Sigs {
    ndb: String,
    mdb: String,
    msb: String,
    imp: String,
    /// (signature name, file name, whether clamscan must report it there).
    expect: Vec<(String, String, bool)>,
    /// Hash signatures by database and key: files that share a section or
    /// an import table share one signature (ClamAV keeps one name per hash).
    hash_names: BTreeMap<(&'static str, String), String>,
}

/// Whether aether-exe's resolver places `pattern` at `offset` in `data`.
fn predicted(offset: &str, data: &[u8], info: &ExeInfo, pattern: &[u8]) -> bool {
    let off = Offset::parse(offset).unwrap();
    let p = resolve(&off, data.len() as u64, Layout::Exe(info));
    if !p.fits(pattern.len() as u32, data.len() as u64) {
        return false;
    }
    let Placement::Within { min, max } = p else {
        return false;
    };
    (min..=max).any(|s| data.get(s as usize..s as usize + pattern.len()) == Some(pattern))
}

impl Sigs {
    fn new() -> Sigs {
        Sigs {
            ndb: String::new(),
            mdb: String::new(),
            msb: String::new(),
            imp: String::new(),
            expect: Vec::new(),
            hash_names: BTreeMap::new(),
        }
    }

    /// A body signature at `offset` with the bytes at `at`; a wrong twin one
    /// byte later (when its bytes differ there).
    #[allow(clippy::too_many_arguments)]
    fn body(
        &mut self,
        file: &str,
        tag: &str,
        target: u8,
        data: &[u8],
        info: &ExeInfo,
        offset: &str,
        at: usize,
        wrong: Option<&str>,
        reported: bool,
    ) {
        let Some(pattern) = data.get(at..at + LEN) else {
            return;
        };
        assert!(
            predicted(offset, data, info, pattern),
            "{file}: {offset} does not resolve to {at:#x}"
        );
        // A negative needs bytes found nowhere else, or a copy unpacked from
        // the file could match (clamscan reports nested layers as the file).
        if !reported && data.windows(LEN).filter(|w| *w == pattern).count() > 1 {
            return;
        }
        let name = format!("{tag}_{}_{at:x}", offset.replace(['+', '-', ','], "_"));
        let _ = writeln!(self.ndb, "{name}:{target}:{offset}:{}", hex(pattern));
        self.expect.push((name.clone(), file.to_string(), reported));
        if let Some(w) = wrong {
            if predicted(w, data, info, pattern) {
                return; // the bytes repeat: not a useful negative
            }
            let wname = format!("W{name}");
            let _ = writeln!(self.ndb, "{wname}:{target}:{w}:{}", hex(pattern));
            self.expect.push((wname, file.to_string(), false));
        }
    }

    /// A hash signature `line(name)` in database `db` under `key`, and its
    /// wrong twin `wrong_line(name)`; reused when another file has the same key.
    #[allow(clippy::too_many_arguments)]
    fn hash(
        &mut self,
        db: &'static str,
        key: String,
        new_name: String,
        file: &str,
        reported: bool,
        line: impl Fn(&str) -> String,
        wrong_line: impl Fn(&str) -> String,
    ) {
        let name = match self.hash_names.get(&(db, key.clone())) {
            Some(n) => n.clone(),
            None => {
                let text = match db {
                    "mdb" => &mut self.mdb,
                    "msb" | "msb1" => &mut self.msb,
                    _ => &mut self.imp,
                };
                text.push_str(&line(&new_name));
                text.push_str(&wrong_line(&format!("W{new_name}")));
                self.hash_names.insert((db, key), new_name.clone());
                new_name
            }
        };
        self.expect.push((name.clone(), file.to_string(), reported));
        self.expect
            .push((format!("W{name}"), file.to_string(), false));
    }

    fn executable(&mut self, file: &str, tag: &str, data: &[u8], info: &ExeInfo) {
        let target = info.kind.target_type() as u8;
        let ep = info.entry_point as usize;
        self.body(
            file,
            tag,
            target,
            data,
            info,
            "EP+0",
            ep,
            Some("EP+1"),
            true,
        );
        if ep >= 4 {
            self.body(
                file,
                tag,
                target,
                data,
                info,
                "EP-4",
                ep - 4,
                Some("EP-3"),
                true,
            );
        }
        let n = info.sections.len();
        // A handful of sections spread over the table, the first and last included.
        let picks: BTreeSet<usize> = (0..n.min(6)).map(|k| k * n.saturating_sub(1) / 5).collect();
        for x in picks {
            let s = &info.sections[x];
            let at = s.raw as usize + 3;
            self.body(
                file,
                tag,
                target,
                data,
                info,
                &format!("S{x}+3"),
                at,
                Some(&format!("S{x}+4")),
                true,
            );
            if s.raw_size as usize >= 2 * LEN {
                // `SEx` allows any start inside the section, except that
                // ClamAV's PE matcher puts plain patterns with unshifted
                // offsets in its Boyer-Moore matcher, which in files of 256
                // KiB or more looks only at the exact start of the range.
                let inside = s.raw as usize + s.raw_size as usize / 2;
                let anywhere = !(target == 1
                    && data.len() as u64 >= aether_exe::offset::PE_BM_OFFMODE_MIN_FILE_SIZE);
                self.body(
                    file,
                    tag,
                    target,
                    data,
                    info,
                    &format!("SE{x}"),
                    inside,
                    None,
                    anywhere,
                );
                self.body(
                    file,
                    tag,
                    target,
                    data,
                    info,
                    &format!("SE{x}"),
                    s.raw as usize,
                    None,
                    true,
                );
            }
        }
        if let Some(last) = info.sections.last() {
            self.body(
                file,
                tag,
                target,
                data,
                info,
                "SL+2",
                last.raw as usize + 2,
                Some("SL+3"),
                true,
            );
        }
        // PE section hashes (.mdb MD5, .msb SHA-256) with their wrong-size twins.
        for (i, bytes) in info.hashed_sections(data) {
            let md5 = hex(&md5::Md5::digest(bytes));
            let sha = hex(&sha2::Sha256::digest(bytes));
            let size = bytes.len();
            self.hash(
                "mdb",
                format!("{size}:{md5}"),
                format!("{tag}_MDB{i}"),
                file,
                true,
                |n| format!("{size}:{md5}:{n}\n"),
                |n| format!("{}:{md5}:{n}\n", size + 1),
            );
            self.hash(
                "msb",
                format!("{size}:{sha}"),
                format!("{tag}_MSB{i}"),
                file,
                true,
                |n| format!("{size}:{sha}:{n}\n"),
                |n| format!("{}:{sha}:{n}\n", size + 1),
            );
            let sha1 = hex(&sha1::Sha1::digest(bytes));
            self.hash(
                "msb1",
                format!("{size}:{sha1}"),
                format!("{tag}_MSB1_{i}"),
                file,
                true,
                |n| format!("{size}:{sha1}:{n}\n"),
                |n| format!("{}:{sha1}:{n}\n", size + 1),
            );
        }
    }

    /// An `.imp` signature from aether-exe's import hash; `reported` says
    /// whether clamscan checks imports of this file at all.
    fn imports(
        &mut self,
        file: &str,
        tag: &str,
        data: &[u8],
        info: &ExeInfo,
        reported: bool,
    ) -> bool {
        let Ok(h) = ImportTable::read(data, info).and_then(|t| t.hash()) else {
            return false;
        };
        if h.size == 0 {
            return false; // a size of 0 cannot be written in a signature
        }
        let md5 = hex(&h.md5);
        self.hash(
            "imp",
            format!("{md5}:{}", h.size),
            format!("{tag}_IMP"),
            file,
            reported,
            |n| format!("{md5}:{}:{n}\n", h.size),
            |n| format!("{md5}:{}:{n}\n", h.size + 1),
        );
        let sha256 = hex(&h.sha256);
        self.hash(
            "imp256",
            format!("{sha256}:{}", h.size),
            format!("{tag}_IMP256"),
            file,
            reported,
            |n| format!("{sha256}:{}:{n}\n", h.size),
            |n| format!("{sha256}:{}:{n}\n", h.size + 1),
        );
        true
    }
}

/// Runs clamscan with the databases in `db` over `files`; returns (file name, signature) pairs.
fn clamscan(db: &Path, files: &[PathBuf]) -> BTreeSet<(String, String)> {
    let out = Command::new("clamscan")
        .args(["--no-summary", "--allmatch", "--stdout", "-d"])
        .arg(db)
        .args(files)
        .output()
        .expect("clamscan from Debian's clamav package");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_suffix(" FOUND") else {
            continue;
        };
        let (path, sig) = rest.rsplit_once(": ").unwrap();
        let file = Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let sig = sig.trim_end_matches(".UNOFFICIAL").to_string();
        found.insert((file, sig));
    }
    found
}

/// ELF programs from /usr/bin, a deterministic few of modest size.
fn usr_bin_elves(n: usize) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir("/usr/bin")
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.len() < 2_000_000)
                && std::fs::read(p).is_ok_and(|d| d.starts_with(b"\x7fELF"))
        })
        .collect();
    all.sort();
    let step = (all.len() / n).max(1);
    all.into_iter().step_by(step).take(n).collect()
}

#[test]
fn offsets_and_hashes_match_clamscan() {
    let dir = tempfile::tempdir().unwrap();
    let files_dir = dir.path().join("files");
    std::fs::create_dir(&files_dir).unwrap();
    let mut sigs = Sigs::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();

    // Real PE files.
    let mut pes: Vec<PathBuf> = std::fs::read_dir("/usr/share/clamav-testfiles")
        .expect("clamav-testfiles")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "exe"))
        .collect();
    pes.sort();
    for (k, path) in pes.iter().enumerate() {
        let data = std::fs::read(path).unwrap();
        let Ok(info) = ExeInfo::parse(&data) else {
            continue;
        };
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let tag = format!("P{k}");
        sigs.executable(&file, &tag, &data, &info);
        if sigs.imports(&file, &tag, &data, &info, true) {
            *counts.entry("PE import hashes").or_default() += 1;
        }
        *counts.entry("PE files (clamav-testfiles)").or_default() += 1;
        files.push(path.clone());
    }
    // Real ELF files.
    for (k, path) in usr_bin_elves(14).iter().enumerate() {
        let data = std::fs::read(path).unwrap();
        let info = ExeInfo::parse(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        sigs.executable(&file, &format!("E{k}"), &data, &info);
        *counts.entry("ELF files (/usr/bin)").or_default() += 1;
        files.push(path.clone());
    }
    // Built files.
    let built: Vec<(&str, Vec<u8>)> = vec![
        ("pe32.exe", common::plain_pe(false, 21)),
        ("pe32plus.exe", common::plain_pe(true, 22)),
        ("odd-alignment.exe", common::odd_pe(23)),
        ("macho64", common::macho64(24)),
        ("macho-ppc", common::macho_ppc(25)),
        ("elf32-be", common::elf32_be(26)),
    ];
    for (k, (file, data)) in built.iter().enumerate() {
        let info = ExeInfo::parse(data).unwrap();
        let tag = format!("B{k}");
        sigs.executable(file, &tag, data, &info);
        // ClamAV 1.4 checks .imp signatures only against PE32 files.
        let pe32 = info.kind == aether_exe::ExeKind::Pe32;
        if info.pe.is_some() {
            assert!(
                sigs.imports(file, &tag, data, &info, pe32),
                "{file}: no import hash"
            );
        }
        let path = files_dir.join(file);
        std::fs::write(&path, data).unwrap();
        files.push(path);
        *counts.entry("built files").or_default() += 1;
    }
    // A universal binary: each architecture is scanned as a file of its own.
    let (a, b) = (common::macho64(27), common::macho_ppc(28));
    let fat = common::fat(&[(0x0100_0007, &a), (18, &b)]);
    for (k, arch) in fat_arches(&fat).unwrap().arches.iter().enumerate() {
        let part = arch.bytes(&fat).unwrap();
        let info = ExeInfo::parse(part).unwrap();
        sigs.executable("universal", &format!("U{k}"), part, &info);
    }
    std::fs::write(files_dir.join("universal"), &fat).unwrap();
    files.push(files_dir.join("universal"));

    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::write(db.join("exe.ndb"), &sigs.ndb).unwrap();
    std::fs::write(db.join("exe.mdb"), &sigs.mdb).unwrap();
    std::fs::write(db.join("exe.msb"), &sigs.msb).unwrap();
    std::fs::write(db.join("exe.imp"), &sigs.imp).unwrap();

    let found = clamscan(&db, &files);
    let mut wrong = Vec::new();
    let mut checked: BTreeMap<bool, usize> = BTreeMap::new();
    for (name, file, reported) in &sigs.expect {
        let got = found.contains(&(file.clone(), name.clone()));
        *checked.entry(*reported).or_default() += 1;
        if got != *reported {
            wrong.push(format!(
                "{file}: {name}: clamscan {}",
                if got {
                    "reported it"
                } else {
                    "did not report it"
                }
            ));
        }
    }
    eprintln!(
        "{counts:?}; signatures expected to match: {}, expected not to: {}",
        checked.get(&true).unwrap_or(&0),
        checked.get(&false).unwrap_or(&0)
    );
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        sigs.expect.len(),
        wrong.join("\n")
    );
    assert!(checked.get(&true).copied().unwrap_or(0) > 200);
}

/// A file of an executable type whose headers ClamAV cannot read: none of
/// the relative offsets of any signature resolve in it, not even `EOF-n` of a
/// generic (target 0) signature, because ClamAV reads the headers of the
/// file's type once for all signatures. Absolute offsets still match. A
/// universal binary's container is such a file. aether-exe refuses the same
/// headers.
#[test]
fn broken_headers_resolve_no_relative_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut pe = common::plain_pe(false, 31);
    // AddressOfEntryPoint in no section.
    pe[0x80 + 24 + 16..0x80 + 24 + 20].copy_from_slice(&0x9000u32.to_le_bytes());
    let mut elf = common::elf32_be(32);
    elf[46..48].copy_from_slice(&7u16.to_be_bytes()); // e_shentsize
    // Padding after the last architecture, so the tail is in no architecture
    // (each is scanned as a file of its own, where EOF-n would resolve).
    let mut fat = common::fat(&[(18, &common::macho_ppc(33))]);
    fat.extend(common::filler(34, 64));
    let cases = [
        ("broken.exe", pe, 1u8),
        ("broken.elf", elf, 6u8),
        ("universal", fat, 9u8),
    ];
    let mut ndb = String::new();
    let mut expect = Vec::new();
    let mut files = Vec::new();
    for (k, (file, data, target)) in cases.iter().enumerate() {
        assert!(
            ExeInfo::parse_pe(&data[..]).is_err()
                && ExeInfo::parse_elf(&data[..]).is_err()
                && ExeInfo::parse_macho(&data[..]).is_err(),
            "{file} must not parse"
        );
        let tail = hex(&data[data.len() - LEN..]);
        let head = hex(&data[0x40..0x40 + LEN]);
        let _ = writeln!(ndb, "X{k}_EOF:{target}:EOF-{LEN}:{tail}");
        let _ = writeln!(ndb, "X{k}_EOF_GENERIC:0:EOF-{LEN}:{tail}");
        let _ = writeln!(ndb, "X{k}_ABS:{target}:64:{head}");
        expect.push((format!("X{k}_EOF"), file.to_string(), false));
        expect.push((format!("X{k}_EOF_GENERIC"), file.to_string(), false));
        expect.push((format!("X{k}_ABS"), file.to_string(), true));
        // aether-exe's resolver agrees.
        let size = data.len() as u64;
        let eof = Offset::parse("EOF-16").unwrap();
        assert_eq!(resolve(&eof, size, Layout::Broken), Placement::Nowhere);
        assert!(matches!(
            resolve(&eof, size, Layout::Generic),
            Placement::Within { .. }
        ));
        let path = dir.path().join(file);
        std::fs::write(&path, data).unwrap();
        files.push(path);
    }
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::write(db.join("broken.ndb"), ndb).unwrap();
    let found = clamscan(&db, &files);
    for (name, file, reported) in expect {
        assert_eq!(
            found.contains(&(file.clone(), name.clone())),
            reported,
            "{file}: {name}"
        );
    }
}
