//! OLE2 compound documents, scanned as Debian's clamscan 1.4.6 scans them:
//! every stream, MSO streams inflated, embedded Ole10Native objects,
//! PowerPoint's compressed objects, and VBA projects as the text ClamAV
//! writes of them. Documents are written with the `cfb` crate (plain
//! streams, nested storages, a VBA project whose module source holds a
//! marker, version 4 files) beside Debian's `clam.ole.doc` and `clam.ppt`;
//! body, logical and hash signatures for the markers, and clamscan
//! `--allmatch` and the engine must report the same names for each file.
//! Cut and bit-flipped documents scan without error.

mod common;
#[path = "../../formats/tests/ole2_common/mod.rs"]
mod ole2_common;

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use cfb::Version;
use common::{Rng, aether, clamscan, engine, file_name};
use md5::Digest as _;
use ole2_common::{build, compress, legacy_vba_project};

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn dir_stream(modules: &[(&str, u32)], codepage: u16) -> Vec<u8> {
    fn rec(out: &mut Vec<u8>, id: u16, data: &[u8]) {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let mut d = Vec::new();
    rec(&mut d, 0x0001, &1u32.to_le_bytes());
    rec(&mut d, 0x0002, &0x409u32.to_le_bytes());
    rec(&mut d, 0x0014, &0x409u32.to_le_bytes());
    rec(&mut d, 0x0003, &codepage.to_le_bytes());
    rec(&mut d, 0x0004, b"VBAProject");
    rec(&mut d, 0x0005, b"A doc string");
    rec(&mut d, 0x0040, &utf16("A doc string"));
    rec(&mut d, 0x0006, b"");
    rec(&mut d, 0x003d, b"");
    rec(&mut d, 0x0007, &0u32.to_le_bytes());
    rec(&mut d, 0x0008, &0u32.to_le_bytes());
    d.extend_from_slice(&0x0009u16.to_le_bytes());
    d.extend_from_slice(&4u32.to_le_bytes());
    d.extend_from_slice(&0x5fu32.to_le_bytes());
    d.extend_from_slice(&7u16.to_le_bytes());
    rec(&mut d, 0x000c, b"");
    rec(&mut d, 0x003c, b"");
    rec(&mut d, 0x000f, &(modules.len() as u16).to_le_bytes());
    rec(&mut d, 0x0013, &0xffffu16.to_le_bytes());
    for (name, offset) in modules {
        rec(&mut d, 0x0019, name.as_bytes());
        rec(&mut d, 0x0047, &utf16(name));
        rec(&mut d, 0x001a, name.as_bytes());
        rec(&mut d, 0x0032, &utf16(name));
        rec(&mut d, 0x001c, b"");
        rec(&mut d, 0x0048, b"");
        rec(&mut d, 0x0031, &offset.to_le_bytes());
        rec(&mut d, 0x001e, &0u32.to_le_bytes());
        rec(&mut d, 0x002c, &0xffffu16.to_le_bytes());
        rec(&mut d, 0x0021, b"");
        rec(&mut d, 0x002b, b"");
    }
    rec(&mut d, 0x0010, b"");
    d
}

/// A Word-like document with a VBA project of the given modules, and with
/// `legacy` a `_VBA_PROJECT` stream listing them too.
fn vba_document(modules: &[(&str, &[u8])], codepage: u16, legacy: bool) -> Vec<u8> {
    let mut streams: Vec<(String, Vec<u8>)> = vec![
        ("WordDocument".into(), vec![0x11; 700]),
        (
            "Macros/PROJECT".into(),
            b"ID=\"{00000000-0000-0000-0000-000000000000}\"\r\n".to_vec(),
        ),
    ];
    let mut entries = Vec::new();
    for (k, (name, source)) in modules.iter().enumerate() {
        let cache = 30 + 7 * k;
        let mut data = vec![0xa5; cache];
        data.extend_from_slice(&compress(source));
        streams.push((format!("Macros/VBA/{name}"), data));
        entries.push((*name, cache as u32));
    }
    streams.push((
        "Macros/VBA/dir".into(),
        compress(&dir_stream(&entries, codepage)),
    ));
    streams.push((
        "Macros/VBA/_VBA_PROJECT".into(),
        if legacy {
            legacy_vba_project(&entries)
        } else {
            vec![0xcc, 0x61, 0xff, 0xff, 0, 0, 0]
        },
    ));
    let refs: Vec<(&str, Vec<u8>)> = streams
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    build(Version::V3, &refs)
}

/// What the formats crate makes of a document's VBA projects.
fn project_texts(doc: &[u8]) -> Vec<Vec<u8>> {
    struct V(Vec<Vec<u8>>);
    impl aether_formats::Visitor for V {
        fn member(&mut self, m: &mut aether_formats::Member<'_>) -> aether_formats::Flow {
            if m.content == aether_formats::Content::MacroProject {
                let mut out = Vec::new();
                let _ = m.extract(&mut out);
                self.0.push(out);
            }
            aether_formats::Flow::Continue
        }
        fn problem(&mut self, _: aether_formats::Problem) -> aether_formats::Flow {
            aether_formats::Flow::Continue
        }
    }
    let mut v = V(Vec::new());
    aether_formats::walk(aether_formats::FileType::Ole2, &doc.to_vec(), &mut v).expect("walk");
    v.0
}

/// A Word 6 `WordDocument` stream whose macro table lists one macro.
fn word6_stream(macro_text: &[u8], key: u8) -> Vec<u8> {
    let mut s = vec![0x07u8; 0x600];
    s[0x118..0x11c].copy_from_slice(&0x200u32.to_le_bytes());
    s[0x11c..0x120].copy_from_slice(&0x100u32.to_le_bytes());
    let mut table = vec![0xff, 0x01];
    table.extend_from_slice(&1u16.to_le_bytes());
    let mut entry = vec![1, key];
    entry.extend_from_slice(&[0; 10]);
    entry.extend_from_slice(&(macro_text.len() as u32).to_le_bytes());
    entry.extend_from_slice(&0u32.to_le_bytes());
    entry.extend_from_slice(&0x400u32.to_le_bytes());
    table.extend_from_slice(&entry);
    table.push(0x40);
    s[0x200..0x200 + table.len()].copy_from_slice(&table);
    for (i, b) in macro_text.iter().enumerate() {
        s[0x400 + i] = b ^ key;
    }
    s
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).expect("deflate");
    z.finish().expect("deflate")
}

fn ole10(name: &str, object: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; 4];
    s.extend_from_slice(&[2, 0]);
    s.extend_from_slice(format!("{name}\0C:\\docs\\{name}\0").as_bytes());
    s.extend_from_slice(&[0; 8]);
    s.extend_from_slice(format!("C:\\tmp\\{name}\0").as_bytes());
    s.extend_from_slice(&(object.len() as u32).to_le_bytes());
    s.extend_from_slice(object);
    let total = (s.len() - 4) as u32;
    s[..4].copy_from_slice(&total.to_le_bytes());
    s
}

const CLAM_EXE_SHA256: &str = "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495";

struct Corpus {
    _dir: tempfile::TempDir,
    db: PathBuf,
    files: Vec<PathBuf>,
}

fn corpus() -> Corpus {
    let dir = tempfile::tempdir().expect("temp dir");
    let files_dir = dir.path().join("files");
    std::fs::create_dir(&files_dir).expect("files dir");
    let mut ndb = String::new();
    let mut ldb = String::new();
    let mut hdb = String::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let body = |ndb: &mut String, name: &str, targets: &[u8], pattern: &[u8]| {
        for t in targets {
            let _ = writeln!(ndb, "{name}_T{t}:{t}:*:{}", hex(pattern));
        }
    };

    // Plain streams (no macros): root, nested, mini and regular streams.
    let mut big = vec![0x42u8; 9000];
    big[7000..7016].copy_from_slice(b"BigStreamMarker!");
    files.push((
        "plain.doc".into(),
        build(
            Version::V3,
            &[
                ("Data", b"..RootStreamMarker..".to_vec()),
                ("ObjectPool/_123/Contents", b"..NestedMarker..".to_vec()),
                ("ObjectPool/_123/Deep/Er/Still", b"..DeepMarker..".to_vec()),
                ("Big", big),
            ],
        ),
    ));
    for m in [
        &b"RootStreamMarker"[..],
        b"NestedMarker",
        b"DeepMarker",
        b"BigStreamMarker!",
    ] {
        body(&mut ndb, &String::from_utf8_lossy(m), &[0, 2], m);
    }
    // An MSO stream: zlib behind its size, inflated without macros only.
    let payload = b"MSO payload with MsoInflatedMarker inside ".repeat(20);
    let mut mso = (payload.len() as u32).to_le_bytes().to_vec();
    mso.extend_from_slice(&zlib(&payload));
    files.push((
        "mso.xls".into(),
        build(
            Version::V3,
            &[("Workbook", vec![9; 300]), ("MsoDataStore/x", mso.clone())],
        ),
    ));
    files.push((
        "mso-with-macros.doc".into(),
        build(
            Version::V3,
            &[("WordDocument", vec![9; 300]), ("MsoDataStore/x", mso)],
        ),
    ));
    body(&mut ndb, "MsoInflated", &[0, 2], b"MsoInflatedMarker");
    // An embedded object, with a marker and as an executable-like file.
    files.push((
        "ole10.doc".into(),
        build(
            Version::V3,
            &[
                ("WordDocument", vec![1; 800]),
                (
                    "ObjectPool/_1/\u{1}Ole10Native",
                    ole10("x.txt", b"the embedded Ole10Marker file"),
                ),
            ],
        ),
    ));
    body(&mut ndb, "Ole10", &[0, 2], b"embedded Ole10Marker");

    // VBA projects: markers in module source, normalized by ClamAV.
    let source1: &[u8] = b"Attribute VB_Name = \"Module1\"\r\nSub AutoOpen()\r\n    MsgBox   \"Hello VbaMarker\"\r\n    Shell \"CMD.EXE /C Echo  Payload\" _\r\n      & \"More\"\r\nEnd Sub\r\n";
    let source2: &[u8] = b"Attribute VB_Name = \"ThisDocument\"\r\nPrivate Sub Document_Open()\r\n  Call SecondModuleMarker\r\nEnd Sub\r\n";
    let doc = vba_document(
        &[("Module1", source1), ("ThisDocument", source2)],
        1252,
        true,
    );
    let texts = project_texts(&doc);
    assert_eq!(texts.len(), 1);
    let text = &texts[0];
    let _ = writeln!(
        hdb,
        "{}:{}:VbaProjectText",
        hex(&md5::Md5::digest(text)),
        text.len()
    );
    files.push(("vba.doc".into(), doc));
    // Normalized forms (lower case outside strings, blanks, continuations).
    body(&mut ndb, "VbaNorm1", &[0, 2], b"msgbox \"Hello VbaMarker\"");
    body(
        &mut ndb,
        "VbaNorm2",
        &[0, 2],
        b"shell \"CMD.EXE /C Echo  Payload\" & \"More\"",
    );
    body(&mut ndb, "VbaNorm3", &[0, 2], b"call secondmodulemarker");
    body(&mut ndb, "VbaRem", &[0], b"REM MODULENAME: ThisDocument");
    body(
        &mut ndb,
        "VbaRemDoc",
        &[0],
        b"REM PROJECTDOCSTRINGUNICODE: A doc string",
    );
    // The source as written: only in the (literal-only) module stream.
    body(&mut ndb, "VbaRaw", &[0, 2], b"AutoOp");
    let _ = writeln!(
        ldb,
        "VbaLdb;Engine:51-255,Target:0;0&1;{};{}",
        hex(b"sub autoopen()"),
        hex(b"document_open()")
    );
    let _ = writeln!(
        ldb,
        "VbaLdbOle2;Engine:51-255,Target:2;0;{}",
        hex(b"sub autoopen()")
    );
    // The source as written, through the legacy `_VBA_PROJECT` only.
    body(&mut ndb, "VbaSrc", &[0, 2], b"MsgBox   \"Hello VbaMarker\"");
    body(&mut ndb, "VbaSrcLatin", &[2], b"Na\xefve LatinMarker");
    let _ = writeln!(
        ldb,
        "VbaSrcLdb;Engine:51-255,Target:2;0&1;{};{}",
        hex(b"Sub AutoOpen()"),
        hex(b"Private Sub Document_Open()")
    );
    let _ = writeln!(
        ldb,
        "VbaSrcLdb1;Engine:51-255,Target:2;0&1;{};{}",
        hex(b"Sub AutoOpen()"),
        hex(b"\"Hello VbaMarker\"")
    );
    // A module stream that does not exist: the project without its source.
    files.push((
        "vba-ok-control.doc".into(),
        vba_document(&[("Module1", source1)], 1252, false),
    ));
    // The MODULESTREAMNAMEUNICODE (what ClamAV looks up) names a stream
    // that is not there.
    let dir_only = {
        let mut d2 = dir_stream(&[("Module1", 30)], 1252);
        let pos = d2
            .windows(7)
            .position(|w| w == [0x32, 0, 14, 0, 0, 0, b'M'])
            .expect("MODULESTREAMNAMEUNICODE");
        d2[pos + 6] = b'X';
        d2
    };
    let broken = build(
        Version::V3,
        &[
            ("WordDocument", vec![0x11; 700]),
            (
                "Macros/VBA/_VBA_PROJECT",
                vec![0xcc, 0x61, 0xff, 0xff, 0, 0, 0],
            ),
            ("Macros/VBA/Module1", {
                let mut m = vec![0xa5; 30];
                m.extend_from_slice(&compress(source1));
                m
            }),
            ("Macros/VBA/dir", compress(&dir_only)),
        ],
    );
    files.push(("vba-missing-module.doc".into(), broken));
    // A code page other than 1252 and non-ASCII source.
    let latin: &[u8] = b"Sub Caf\xe9()\r\n  MsgBox \"Na\xefve LatinMarker\"\r\nEnd Sub\r\n";
    files.push((
        "vba-latin1.doc".into(),
        vba_document(&[("Module1", latin)], 28591, true),
    ));
    body(
        &mut ndb,
        "VbaLatin",
        &[0],
        "msgbox \"Na\u{ef}ve LatinMarker\"".as_bytes(),
    );

    // Word 6/95 macros: a table in the WordDocument stream, each macro
    // XOR-encrypted with its key.
    files.push((
        "word6.doc".into(),
        build(
            Version::V3,
            &[(
                "WordDocument",
                word6_stream(b"Sub MAIN\r\nWord6MacroMarker\r\nEnd Sub\r\n", 0x5a),
            )],
        ),
    ));
    body(&mut ndb, "Word6", &[0, 2], b"Word6MacroMarker");
    files.push((
        "word6-plain.doc".into(),
        build(
            Version::V3,
            &[(
                "WordDocument",
                word6_stream(b"Sub MAIN Word6PlainMarker End Sub", 0),
            )],
        ),
    ));
    body(&mut ndb, "Word6Plain", &[2], b"Word6PlainMarker");

    // Version 4 (4 KiB sectors): ClamAV reads 4 entries per directory sector.
    files.push((
        "v4.doc".into(),
        build(
            Version::V4,
            &[
                ("A", b"..V4FirstMarker..".to_vec()),
                ("B", vec![3; 5000]),
                ("C", b"..V4SecondMarker..".to_vec()),
                ("D", b"..V4ThirdMarker..".to_vec()),
                ("E/F", b"..V4FourthMarker..".to_vec()),
            ],
        ),
    ));
    for m in [
        "V4FirstMarker",
        "V4SecondMarker",
        "V4ThirdMarker",
        "V4FourthMarker",
    ] {
        body(&mut ndb, m, &[0], m.as_bytes());
    }
    // Debian's test documents: clam.exe embedded (and, in the presentation,
    // compressed into the document stream).
    for name in ["clam.ole.doc", "clam.ppt"] {
        let path = format!("/usr/share/clamav-testfiles/{name}");
        let data = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (install Debian's clamav-testfiles)"));
        files.push((name.into(), data));
    }
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(n, d)| {
            let p = files_dir.join(n);
            std::fs::write(&p, d).expect("write");
            p
        })
        .collect();
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    std::fs::write(db.join("ole2.ndb"), ndb).expect("ndb");
    std::fs::write(db.join("ole2.ldb"), ldb).expect("ldb");
    std::fs::write(db.join("ole2.hdb"), hdb).expect("hdb");
    std::fs::write(
        db.join("clam.hsb"),
        format!("{CLAM_EXE_SHA256}:544:ClamAV-Test-File\n"),
    )
    .expect("hsb");
    Corpus {
        _dir: dir,
        db,
        files: paths,
    }
}

#[test]
fn documents_match_clamscan() {
    let c = corpus();
    let e = engine(&c.db);
    let ours = aether(&e, &c.files);
    let theirs = clamscan(&c.db, &c.files);
    for f in ours.keys().chain(theirs.keys()) {
        assert_eq!(ours.get(f), theirs.get(f), "{f}");
    }
    // What each is expected to show, so that agreement on nothing fails.
    let has = |f: &str, n: &str| {
        ours.get(f)
            .is_some_and(|s| s.contains(&format!("{n}.UNOFFICIAL")))
    };
    for (f, n) in [
        ("plain.doc", "RootStreamMarker_T0"),
        ("plain.doc", "NestedMarker_T0"),
        ("plain.doc", "DeepMarker_T0"),
        ("plain.doc", "BigStreamMarker!_T0"),
        ("mso.xls", "MsoInflated_T0"),
        ("ole10.doc", "Ole10_T0"),
        ("vba.doc", "VbaNorm1_T0"),
        ("vba.doc", "VbaNorm2_T0"),
        ("vba.doc", "VbaNorm3_T0"),
        ("vba.doc", "VbaRem_T0"),
        ("vba.doc", "VbaRemDoc_T0"),
        ("vba.doc", "VbaLdb"),
        ("vba.doc", "VbaProjectText"),
        ("vba.doc", "VbaSrc_T0"),
        ("vba.doc", "VbaSrc_T2"),
        ("vba.doc", "VbaSrcLdb1"),
        ("vba-latin1.doc", "VbaSrcLatin_T2"),
        ("vba-ok-control.doc", "VbaNorm1_T0"),
        ("vba-missing-module.doc", "VbaRemDoc_T0"),
        ("vba-latin1.doc", "VbaLatin_T0"),
        ("v4.doc", "V4FirstMarker_T0"),
        ("clam.ole.doc", "ClamAV-Test-File"),
        ("word6.doc", "Word6_T0"),
        ("word6.doc", "Word6_T2"),
        ("word6-plain.doc", "Word6Plain_T2"),
        ("clam.ppt", "ClamAV-Test-File"),
    ] {
        assert!(has(f, n), "{f}: {n} in {:?}", ours.get(f));
    }
    for (f, n) in [
        ("mso-with-macros.doc", "MsoInflated_T0"),
        ("vba-missing-module.doc", "VbaNorm1_T0"),
        ("vba-missing-module.doc", "VbaLdb"),
        ("vba.doc", "VbaNorm1_T2"),
        ("vba-ok-control.doc", "VbaSrc_T2"),
        // Each module's source is a buffer of its own.
        ("vba.doc", "VbaSrcLdb"),
        ("vba.doc", "VbaLdbOle2"),
    ] {
        assert!(!has(f, n), "{f}: {n} in {:?}", ours.get(f));
    }
}

/// Cut and bit-flipped documents scan without error; how many clamscan
/// agrees on is printed (ClamAV reads broken files its own way).
#[test]
fn broken_documents_scan_without_error() {
    let c = corpus();
    let e = engine(&c.db);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Rng(0x01e2_0bad);
    let mut paths = Vec::new();
    for seed in &c.files {
        let data = std::fs::read(seed).expect("read");
        for k in 0..6 {
            let mut m = data.clone();
            if k < 2 {
                let cut = rng.range(1, data.len() as u64 - 1) as usize;
                m.truncate(cut);
            } else {
                for _ in 0..rng.range(1, 6) {
                    let at = rng.below(m.len() as u64) as usize;
                    m[at] ^= 1 << rng.below(8);
                }
            }
            let p = dir.path().join(format!("{}-{k}", file_name(seed)));
            std::fs::write(&p, &m).expect("write");
            paths.push(p);
        }
    }
    let ours = aether(&e, &paths);
    let theirs = clamscan(&c.db, &paths);
    let same = paths
        .iter()
        .filter(|p| ours.get(&file_name(p)) == theirs.get(&file_name(p)))
        .count();
    eprintln!(
        "broken documents: clamscan agrees on {same} of {}",
        paths.len()
    );
    for p in &paths {
        let n = file_name(p);
        if ours.get(&n) != theirs.get(&n) {
            eprintln!(
                "  {n}: aether {:?}, clamscan {:?}",
                ours.get(&n),
                theirs.get(&n)
            );
        }
    }
    // Most damage leaves what is read the same.
    assert!(same * 10 >= paths.len() * 8, "{same} of {}", paths.len());
}
