//! Loading `.mdb`/`.msb` (PE section hash) and `.imp` (PE import hash)
//! databases: records reach the sink's `section_hash`/`import_hash`, with
//! counts per kind; a sink without support counts them under a reason.

use std::path::Path;

use aether_sigs::{
    BodySig, HashKind, HashSig, LoadErrorKind, LoadOptions, Loader, SignatureSink, Unsupported,
};

#[derive(Default)]
struct Pe {
    sections: Vec<(String, HashKind, Option<u64>)>,
    imports: Vec<(String, HashKind, Option<u64>)>,
    files: usize,
}

impl SignatureSink for Pe {
    fn hash(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        self.files += 1;
        Ok(())
    }
    fn body(&mut self, _: BodySig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn allow(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn section_hash(&mut self, s: HashSig<'_>) -> Result<(), Unsupported> {
        self.sections.push((s.name.into(), s.digest.kind, s.size));
        Ok(())
    }
    fn import_hash(&mut self, s: HashSig<'_>) -> Result<(), Unsupported> {
        self.imports.push((s.name.into(), s.digest.kind, s.size));
        Ok(())
    }
}

/// A sink that keeps the trait's defaults for PE hashes.
struct Plain;

impl SignatureSink for Plain {
    fn hash(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn body(&mut self, _: BodySig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn allow(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
}

const MD5: &str = "83620eda4d054fe35c19faaa89d515f3";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn pe_hash_databases_reach_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    let sha1 = "b".repeat(40);
    let sha256 = "c".repeat(64);
    write(
        dir.path(),
        "a.mdb",
        &format!("# comment\n83456:{MD5}:Sec.A\n*:{MD5}:Sec.Wild:73\n512:{MD5}:Sec.Future:9999\n"),
    );
    write(
        dir.path(),
        "b.msb",
        &format!("4096:{sha1}:Sec.Sha1\n4096:{sha256}:Sec.Sha256\n"),
    );
    write(
        dir.path(),
        "c.imp",
        &format!("98c88d882f01a3f6ac1e5f7dfd761624:39:Imp.Clam\n{MD5}:*:Imp.Wild\n"),
    );
    write(dir.path(), "d.hdb", &format!("{MD5}:68:File.Hash\n"));
    let mut loader = Loader::new(LoadOptions::default());
    let mut sink = Pe::default();
    loader.load_path(dir.path(), &mut sink).unwrap();
    let report = loader.finish();

    assert_eq!(
        sink.sections,
        [
            ("Sec.A".into(), HashKind::Md5, Some(83456)),
            ("Sec.Wild".into(), HashKind::Md5, None),
            ("Sec.Sha1".into(), HashKind::Sha1, Some(4096)),
            ("Sec.Sha256".into(), HashKind::Sha256, Some(4096)),
        ]
    );
    assert_eq!(
        sink.imports,
        [
            ("Imp.Clam".into(), HashKind::Md5, Some(39)),
            ("Imp.Wild".into(), HashKind::Md5, None),
        ]
    );
    assert_eq!(sink.files, 1, "the .hdb still goes to hash()");
    let by = |suffix: &str| {
        report
            .files
            .iter()
            .find(|f| f.name.ends_with(suffix))
            .unwrap()
            .clone()
    };
    let mdb = by("a.mdb");
    assert_eq!(mdb.format, aether_sigs::DbFormat::Mdb);
    assert_eq!(mdb.by_kind.get("section md5"), Some(&2));
    assert_eq!(mdb.skipped_flevel, 1);
    let msb = by("b.msb");
    assert_eq!(msb.by_kind.get("section sha1"), Some(&1));
    assert_eq!(msb.by_kind.get("section sha256"), Some(&1));
    assert_eq!(by("c.imp").by_kind.get("import md5"), Some(&2));
    assert_eq!(report.loaded(), 7);
}

#[test]
fn a_sink_without_pe_hashes_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.mdb", &format!("10:{MD5}:S1\n20:{MD5}:S2\n"));
    write(dir.path(), "b.imp", &format!("{MD5}:5:I1\n"));
    let mut loader = Loader::new(LoadOptions::default());
    loader.load_path(dir.path(), &mut Plain).unwrap();
    let all = loader.finish().unsupported();
    assert_eq!(all.get(aether_sigs::sink::SECTION_HASH_REASON), Some(&2));
    assert_eq!(all.get(aether_sigs::sink::IMPORT_HASH_REASON), Some(&1));
}

#[test]
fn malformed_lines_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // The .hdb field order in an .mdb: the size field holds a hash.
    write(
        dir.path(),
        "bad.mdb",
        &format!("10:{MD5}:Ok\n{MD5}:10:Swapped\n"),
    );
    let mut loader = Loader::new(LoadOptions::default());
    let e = loader
        .load_path(&dir.path().join("bad.mdb"), &mut Pe::default())
        .unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(matches!(e.kind, LoadErrorKind::Line(_)));
    assert!(e.to_string().contains("bad.mdb:2: invalid size"), "{e}");

    write(dir.path(), "wild.msb", &format!("*:{MD5}:NoFlevel\n"));
    let e = Loader::new(LoadOptions::default())
        .load_path(&dir.path().join("wild.msb"), &mut Pe::default())
        .unwrap_err();
    assert!(e.to_string().contains("MinFL"), "{e}");
}

#[test]
fn ignore_lists_apply_to_pe_hashes() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.mdb",
        &format!("10:{MD5}:Drop.Me\n20:{MD5}:Keep\n"),
    );
    write(dir.path(), "b.imp", &format!("{MD5}:5:Drop.Too\n"));
    write(dir.path(), "x.ign2", "Drop.Me\nDrop.Too\n");
    let mut loader = Loader::new(LoadOptions::default());
    let mut sink = Pe::default();
    loader.load_path(dir.path(), &mut sink).unwrap();
    assert_eq!(sink.sections.len(), 1);
    assert!(sink.imports.is_empty());
    assert_eq!(loader.finish().ignored(), 2);
}
