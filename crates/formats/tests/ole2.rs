//! OLE2 compound documents: streams written by the `cfb` crate read back the
//! same through `walk`, VBA projects come out as ClamAV's text, Debian's test
//! documents give up their embedded files, and broken files never panic.

use std::io::Write;

use aether_formats::{Content, FileType, Flow, Member, Problem, Visitor, detect, walk};
use cfb::Version;
use ole2_common::{build, compress, legacy_vba_project};

mod ole2_common;

#[derive(Default)]
struct Collect {
    members: Vec<(String, Content, Vec<u8>)>,
    problems: Vec<Problem>,
}

impl Visitor for Collect {
    fn member(&mut self, m: &mut Member<'_>) -> Flow {
        let mut out = Vec::new();
        // A failed read keeps what was read, as the engine does.
        let _ = m.extract(&mut out);
        self.members.push((m.name.clone(), m.content, out));
        Flow::Continue
    }
    fn problem(&mut self, p: Problem) -> Flow {
        self.problems.push(p);
        Flow::Continue
    }
}

fn members(data: &[u8]) -> Collect {
    assert_eq!(detect(data), FileType::Ole2);
    let mut c = Collect::default();
    walk(FileType::Ole2, &data.to_vec(), &mut c).expect("walk");
    c
}

/// xorshift64*, so that every run checks the same cases.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn sorted(mut v: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    v.sort();
    v
}

#[test]
fn streams_read_back_as_written() {
    let mut rng = Rng(0x01e2_0001);
    for round in 0..16 {
        let mut streams: Vec<(String, Vec<u8>)> = Vec::new();
        for k in 0..(1 + rng.below(9)) {
            // Small (mini stream) and large streams, some nested.
            let len = match rng.below(4) {
                0 => rng.below(64),
                1 => rng.below(4096),
                2 => 4096 + rng.below(20_000),
                _ => rng.below(300_000),
            } as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let name = match rng.below(3) {
                0 => format!("S{round}_{k}"),
                1 => format!("Dir{}/S{k}", rng.below(3)),
                _ => format!("Dir{}/Sub/S{k}", rng.below(2)),
            };
            if streams.iter().any(|(n, _)| n == &name) {
                continue;
            }
            streams.push((name, data));
        }
        let refs: Vec<(&str, Vec<u8>)> = streams
            .iter()
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect();
        let got = members(&build(Version::V3, &refs));
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        let got: Vec<(String, Vec<u8>)> = got.members.into_iter().map(|(n, _, d)| (n, d)).collect();
        assert_eq!(sorted(got), sorted(streams), "round {round}");
    }
}

/// ClamAV reads every sector's first 512 bytes as 4 directory entries and
/// 128 FAT entries, whatever the sector size: version 4 files (4 KiB
/// sectors) read right only while they are that small, as this one.
#[test]
fn version_4_read_as_clamav_reads_it() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let got = members(&build(Version::V4, &[("Big", data.clone())]));
    let got: Vec<(String, Vec<u8>)> = got.members.into_iter().map(|(n, _, d)| (n, d)).collect();
    assert_eq!(got, vec![("Big".to_string(), data)]);
}

/// What a VBA `dir` stream holds for one module, as Office writes it.
fn dir_stream(module: &str, stream: &str, offset: u32, codepage: u16) -> Vec<u8> {
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
    rec(&mut d, 0x0004, b"Project");
    rec(&mut d, 0x0005, b"");
    rec(&mut d, 0x0040, b"");
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
    rec(&mut d, 0x000f, &1u16.to_le_bytes());
    rec(&mut d, 0x0013, &0xffffu16.to_le_bytes());
    rec(&mut d, 0x0019, module.as_bytes());
    rec(&mut d, 0x0047, &utf16(module));
    rec(&mut d, 0x001a, stream.as_bytes());
    rec(&mut d, 0x0032, &utf16(stream));
    rec(&mut d, 0x001c, b"");
    rec(&mut d, 0x0048, b"");
    rec(&mut d, 0x0031, &offset.to_le_bytes());
    rec(&mut d, 0x001e, &0u32.to_le_bytes());
    rec(&mut d, 0x002c, &0xffffu16.to_le_bytes());
    rec(&mut d, 0x0021, b"");
    rec(&mut d, 0x002b, b"");
    rec(&mut d, 0x0010, b"");
    d
}

fn vba_document(source: &[u8]) -> Vec<u8> {
    let mut module = vec![0xaa; 40]; // the performance cache ClamAV skips
    module.extend_from_slice(&compress(source));
    build(
        Version::V3,
        &[
            ("WordDocument", vec![0x11; 600]),
            (
                "Macros/VBA/_VBA_PROJECT",
                vec![0xcc, 0x61, 0xff, 0xff, 0, 0, 0],
            ),
            (
                "Macros/VBA/dir",
                compress(&dir_stream("Module1", "Module1", 40, 1252)),
            ),
            ("Macros/VBA/Module1", module),
            (
                "Macros/PROJECT",
                b"ID=\"{00000000}\"\r\nModule=Module1\r\n".to_vec(),
            ),
        ],
    )
}

#[test]
fn vba_project_is_clamav_text() {
    let source = b"Attribute VB_Name = \"Module1\"\r\nSub AutoOpen()\r\n    MsgBox   \"Hello  MARKER\"\r\nEnd Sub\r\n";
    let got = members(&vba_document(source));
    let projects: Vec<&Vec<u8>> = got
        .members
        .iter()
        .filter(|(_, c, _)| *c == Content::MacroProject)
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(projects.len(), 1, "{:?}", got.problems);
    let text = String::from_utf8_lossy(projects[0]);
    let want = "REM VBA project extracted from Microsoft Office document\n\n\
        REM PROJECTSYSKIND: Windows 32 bit\n\
        REM PROJECTLCID: 0x00000409\n\
        REM PROJECTLCIDINVOKE: 0x00000409\n\
        REM PROJECTCODEPAGE: 0x04e4\n\
        REM PROJECTNAME: Project\n\
        REM PROJECTDOCSTRING: \n\
        REM PROJECTDOCSTRINGUNICODE: \n\
        REM PROJECTHELPFILEPATH: \n\
        REM PROJECTHELPFILEPATH2: \n\
        REM PROJECTHELPCONTEXT: 0x0000\n\
        REM PROJECTLIBFLAGS: 0x0000\n\
        REM PROJECTVERSION: 95.7\n\
        REM PROJECTMODULES: 1\n\
        REM PROJECTCOOKIE: 0xffff\n\
        \n\nREM MODULENAME: Module1\nREM MODULENAMEUNICODE: Module1\
        \nREM MODULESTREAMNAME: Module1\nREM MODULESTREAMNAMEUNICODE: Module1\
        \nREM MODULEDOCSTRING: \nREM MODULEDOCSTRINGUNICODE: \
        \nREM MODULEOFFSET: 0x00000028\nREM MODULEHELPCONTEXT: 0x00000000\
        \nREM MODULECOOKIE: 0xffff\nREM MODULETYPE: Procedural\
        \nREM ##################################################\n\
        attribute vb_name = \"Module1\"\r\nsub autoopen()\r\n msgbox \"Hello  MARKER\"\r\nend sub\r\n";
    assert_eq!(text, want);
    // The streams themselves are members too.
    let names: Vec<&str> = got.members.iter().map(|(n, _, _)| n.as_str()).collect();
    for s in [
        "WordDocument",
        "Macros/VBA/dir",
        "Macros/VBA/Module1",
        "Macros/PROJECT",
    ] {
        assert!(names.contains(&s), "{s} in {names:?}");
    }
}

#[test]
fn broken_dir_gives_no_project() {
    // A module stream that does not exist: ClamAV goes on without it.
    let mut dir = dir_stream("Module1", "Missing", 0, 1252);
    let file = build(
        Version::V3,
        &[
            (
                "Macros/VBA/_VBA_PROJECT",
                vec![0xcc, 0x61, 0xff, 0xff, 0, 0, 0],
            ),
            ("Macros/VBA/dir", compress(&dir)),
        ],
    );
    let got = members(&file);
    let project: Vec<&Vec<u8>> = got
        .members
        .iter()
        .filter(|(_, c, _)| *c == Content::MacroProject)
        .map(|(_, _, d)| d)
        .collect();
    // The project's records without a module source.
    assert_eq!(project.len(), 1);
    assert!(project[0].ends_with(b"REM ##################################################\n"));
    // A record cut short.
    dir.truncate(dir.len() - 30);
    dir.extend_from_slice(&[0x31, 0, 9, 0, 0, 0]);
    let file = build(
        Version::V3,
        &[
            (
                "Macros/VBA/_VBA_PROJECT",
                vec![0xcc, 0x61, 0xff, 0xff, 0, 0, 0],
            ),
            ("Macros/VBA/dir", compress(&dir)),
        ],
    );
    let got = members(&file);
    assert!(got.members.iter().all(|(_, c, _)| *c == Content::File));
}

#[test]
fn mso_streams_are_inflated_without_macros() {
    let payload = b"inflated MSO payload ".repeat(40);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&payload).unwrap();
    let mut mso = (payload.len() as u32).to_le_bytes().to_vec();
    mso.extend_from_slice(&z.finish().unwrap());
    let file = build(
        Version::V3,
        &[("ObjectPool/mso", mso.clone()), ("Other", vec![7; 10])],
    );
    let got = members(&file);
    let by_name = |n: &str| {
        got.members
            .iter()
            .find(|(m, _, _)| m == n)
            .map(|(_, _, d)| d.clone())
    };
    assert_eq!(by_name("ObjectPool/mso"), Some(payload));
    // With macros, streams are scanned as they are.
    let file = build(
        Version::V3,
        &[
            ("ObjectPool/mso", mso.clone()),
            ("WordDocument", vec![0; 100]),
        ],
    );
    let got = members(&file);
    let d = got
        .members
        .iter()
        .find(|(m, _, _)| m == "ObjectPool/mso")
        .map(|(_, _, d)| d.clone());
    assert_eq!(d, Some(mso));
}

fn testfile(name: &str) -> Vec<u8> {
    let path = format!("/usr/share/clamav-testfiles/{name}");
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (install Debian's clamav-testfiles)"))
}

#[test]
fn clamav_test_documents_give_up_their_objects() {
    // The Word document embeds clam.exe in an Ole10Native stream.
    let got = members(&testfile("clam.ole.doc"));
    let embedded: Vec<&Vec<u8>> = got
        .members
        .iter()
        .filter(|(n, _, _)| n.ends_with(":embedded"))
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(embedded.len(), 1);
    assert_eq!(&embedded[0][..2], b"MZ");
    assert_eq!(embedded[0].len(), 544);
    // The presentation compresses an OLE2 object into its document stream.
    let got = members(&testfile("clam.ppt"));
    let objects: Vec<&Vec<u8>> = got
        .members
        .iter()
        .filter(|(n, _, _)| n.contains(":ppt"))
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(objects.len(), 1);
    let inner = members(objects[0]);
    assert!(
        inner
            .members
            .iter()
            .any(|(n, _, d)| n.ends_with(":embedded") && d.starts_with(b"MZ"))
    );
}

#[test]
fn broken_files_never_fail() {
    let mut rng = Rng(0x01e2_00b0);
    let mut seeds = vec![
        testfile("clam.ole.doc"),
        testfile("clam.ppt"),
        vba_document(b"Sub X()\r\nEnd Sub\r\n"),
    ];
    seeds.push(build(
        Version::V4,
        &[("A/B", vec![1; 9000]), ("C", vec![2; 100])],
    ));
    for seed in &seeds {
        for cut in (0..seed.len()).step_by(97) {
            let mut c = Collect::default();
            walk(FileType::Ole2, &seed[..cut].to_vec(), &mut c).expect("truncated");
        }
        for _ in 0..300 {
            let mut m = seed.clone();
            for _ in 0..(1 + rng.below(8)) {
                let at = rng.below(m.len() as u64) as usize;
                m[at] ^= 1 << rng.below(8);
            }
            let mut c = Collect::default();
            walk(FileType::Ole2, &m, &mut c).expect("bit flips");
            // Every member is bounded by the file's size (and block padding).
            for (_, _, d) in &c.members {
                assert!(d.len() <= 64 << 20);
            }
        }
    }
}

#[test]
fn vba_reads_as_clamav_reads_it() {
    // Decompressing through the public API: a module of several windows.
    let text: Vec<u8> = (0..4000u32)
        .map(|i| b"Sub Foo()\r\n"[i as usize % 11])
        .collect();
    let mut c = vec![0u8; 5];
    c.extend_from_slice(&compress(&text));
    assert_eq!(
        aether_formats::vba::decompress(&c, 5, usize::MAX),
        Some(text)
    );
    let mut buf = b"A  B".to_vec();
    let n = aether_formats::vba::normalize(&mut buf);
    assert_eq!(&buf[..n], b"a b");
}

#[test]
fn legacy_vba_project_gives_module_sources() {
    let source = b"Sub AutoOpen()\r\n  MsgBox   \"Raw Source\"\r\nEnd Sub\r\n";
    let mut module = vec![0xaa; 40];
    module.extend_from_slice(&compress(source));
    let file = build(
        Version::V3,
        &[
            (
                "Macros/VBA/_VBA_PROJECT",
                legacy_vba_project(&[("Module1", 40)]),
            ),
            (
                "Macros/VBA/dir",
                compress(&dir_stream("Module1", "Module1", 40, 1252)),
            ),
            ("Macros/VBA/Module1", module),
        ],
    );
    let got = members(&file);
    let sources: Vec<&Vec<u8>> = got
        .members
        .iter()
        .filter(|(_, c, _)| *c == Content::MacroSource)
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(sources, [&source.to_vec()]);
    // A module the document does not hold: ClamAV drops the whole list.
    let file = build(
        Version::V3,
        &[
            (
                "Macros/VBA/_VBA_PROJECT",
                legacy_vba_project(&[("Module1", 40), ("Gone", 0)]),
            ),
            ("Macros/VBA/Module1", vec![0; 100]),
        ],
    );
    let got = members(&file);
    assert!(got.members.iter().all(|(_, c, _)| *c == Content::File));
}
