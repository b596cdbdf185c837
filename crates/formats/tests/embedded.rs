//! Files inside files: self-extracting archives and embedded executables
//! found as ClamAV's raw scan finds them, each handed over as a member.

use aether_formats::{FileType, Flow, Member, Problem, Visitor, detect, is_container, walk};

const TESTFILES: &str = "/usr/share/clamav-testfiles";

fn testfile(name: &str) -> Vec<u8> {
    std::fs::read(format!("{TESTFILES}/{name}")).expect("Debian's clamav-testfiles")
}

#[derive(Default)]
struct Collect {
    members: Vec<Vec<u8>>,
    problems: Vec<Problem>,
}

impl Visitor for Collect {
    fn member(&mut self, m: &mut Member<'_>) -> Flow {
        let mut out = Vec::new();
        let _ = m.extract(&mut out);
        self.members.push(out);
        Flow::Continue
    }
    fn problem(&mut self, p: Problem) -> Flow {
        self.problems.push(p);
        Flow::Continue
    }
}

fn members(ty: FileType, data: &[u8]) -> Vec<Vec<u8>> {
    let mut c = Collect::default();
    walk(ty, &data, &mut c).expect("walk");
    c.members
}

/// Every file in the tree below `data`, itself first, typed from its bytes
/// as the scanner types it.
fn tree(data: &[u8], depth: u32, out: &mut Vec<Vec<u8>>) {
    out.push(data.to_vec());
    let ty = detect(data);
    if depth == 0 || !is_container(ty) {
        return;
    }
    for m in members(ty, data) {
        tree(&m, depth - 1, out);
    }
}

fn holds(data: &[u8], wanted: &[u8]) -> bool {
    let mut all = Vec::new();
    tree(data, 6, &mut all);
    all.iter().any(|f| f == wanted)
}

/// A minimal ELF header (64-bit, little-endian).
fn elf_stub() -> Vec<u8> {
    let mut e = b"\x7fELF\x02\x01\x01\x00".to_vec();
    e.resize(64, 0);
    e.extend_from_slice(&[0x90; 200]);
    e
}

#[test]
fn cabinets_in_installshield_setups_are_found() {
    for name in ["clam_IScab_int.exe", "clam_IScab_ext.exe"] {
        let exe = testfile(name);
        assert_eq!(detect(&exe), FileType::Pe);
        let found = members(FileType::Pe, &exe);
        assert!(
            found.iter().any(|m| m.starts_with(b"MSCF")),
            "{name}: no cabinet member"
        );
    }
}

#[test]
fn archives_appended_to_executables() {
    let clam = testfile("clam.exe");
    for (stub, ty) in [(elf_stub(), FileType::Elf), (clam.clone(), FileType::Pe)] {
        for archive in ["clam.zip", "clam.cab", "clam.7z"] {
            let mut f = stub.clone();
            f.extend_from_slice(&testfile(archive));
            assert_eq!(detect(&f), ty);
            let m = members(ty, &f);
            assert_eq!(m.len(), 1, "{archive} after {ty:?}");
            assert!(holds(&f, &clam), "{archive} after {ty:?}");
        }
    }
}

#[test]
fn zip_entries_are_one_member_each() {
    // A zip of two stored entries behind a stub: each local header is one
    // embedded zip of one entry, as ClamAV scans them.
    let zip = testfile("clam.zip");
    let mut two = elf_stub();
    two.extend_from_slice(&zip);
    two.extend_from_slice(&zip);
    let m = members(FileType::Elf, &two);
    assert_eq!(m.len(), 2);
    for member in &m {
        assert!(member.starts_with(b"PK\x03\x04"));
        assert_eq!(detect(member), FileType::Zip);
    }
}

#[test]
fn arj_after_a_stub_is_sized_by_its_headers() {
    let arj = testfile("clam.arj");
    let mut f = elf_stub();
    f.extend_from_slice(&arj);
    f.extend_from_slice(b"trailing bytes that are not part of the archive");
    let m = members(FileType::Elf, &f);
    assert_eq!(m, vec![arj.clone()]);
    assert_eq!(detect(&m[0]), FileType::Arj);
}

#[test]
fn executables_inside_executables_and_ole2_only() {
    let clam = testfile("clam.exe");
    let mut pe = clam.clone();
    pe.extend_from_slice(&clam);
    assert_eq!(members(FileType::Pe, &pe), vec![clam.clone()]);
    // In an ELF file an executable is not looked for.
    let mut elf = elf_stub();
    elf.extend_from_slice(&clam);
    assert!(members(FileType::Elf, &elf).is_empty());
}

#[test]
fn not_searched_in_zip_gzip_and_tar() {
    let mut f = testfile("clam.zip");
    f.extend_from_slice(&testfile("clam.cab"));
    for ty in [FileType::Zip, FileType::Gz, FileType::PosixTar] {
        let mut c = Collect::default();
        let _ = walk(ty, &f.as_slice(), &mut c);
        assert!(!c.members.iter().any(|m| m.starts_with(b"MSCF")), "{ty:?}");
    }
}

#[test]
fn at_most_ten_matches_but_zip_headers() {
    // Twelve 7z signatures: ten are kept.
    let mut f = elf_stub();
    for _ in 0..12 {
        f.extend_from_slice(b"7z\xbc\xaf\x27\x1c and then some data ");
    }
    assert_eq!(members(FileType::Elf, &f).len(), 10);
}

#[test]
fn truncated_and_flipped_copies_do_not_panic() {
    let mut base = testfile("clam_IScab_int.exe");
    base.truncate(600_000);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for cut in [480_000usize, 472_100, 472_000, 471_999, 300] {
        let mut all = Vec::new();
        tree(&base[..cut.min(base.len())], 4, &mut all);
    }
    for _ in 0..20 {
        let mut f = base.clone();
        for _ in 0..50 {
            let at = (next() % f.len() as u64) as usize;
            f[at] ^= 1 << (next() % 8);
        }
        let mut all = Vec::new();
        tree(&f, 4, &mut all);
    }
}
