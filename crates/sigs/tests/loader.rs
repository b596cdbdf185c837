//! Loader tests on real files in temporary directories, and on containers
//! built here and signed with a test key.

use std::io::Write;
use std::path::{Path, PathBuf};

use aether_sigs::cvd::{self, RsaKey};
use aether_sigs::{
    BodySig, DbFormat, HashKind, HashSig, LoadErrorKind, LoadOptions, LoadReport, Loader,
    SignatureSink, Unsupported,
};
use md5::Digest as _;
use num_bigint::BigUint;

/// A 2048-bit RSA key generated once for these tests (python3, e = 65537).
const TEST_N: &str = "23446955923369976317299372054548746685615226965976279815754913935467641314296992916871334584679795669552532468880367669773705777210756082811552786801424313327564511313699588689991082841590749035974901117738480553797473211582903511894936294116967233942108244951421828486351834490160252178687437584096666329984735209535226337777934458176046658147742238986989904444716564175599852056998065815792601968064175635437081264239352037550058880017900078657822084360341086949907643490681576013643190301525958664183239796756874590398438234037276376803513066075870220083113873420131375953562436458590497446797485380862295182469221";
const TEST_D: &str = "16082686263076591015633286112701677064230301933282446656966761465143001358035807598640723615440298682170300625197661898764627550894229491594484526680873814135740230359716459563012788912797792718833326669601872474096431226334532578088912694042144560590194728707467010329233471410595141922708338522024161031658299925153704417402160813127013728290076315070112839978256344498701962257476632186872063197234957092321884569284313945671454859533951782228064580039480699792157742385685030462678767540395032125154082859675963486409646813705235774774697965242456945817466419701820419489553211208327681174006415132530671201257473";

fn test_key() -> RsaKey {
    RsaKey::from_decimal(TEST_N, "65537").unwrap()
}

fn sign_number(m: &[u8]) -> String {
    let key = test_key();
    let d = BigUint::parse_bytes(TEST_D.as_bytes(), 10).unwrap();
    cvd::number_to_dsig(BigUint::from_bytes_be(m).modpow(&d, &key.n))
}

/// An `.info` signature: the PSS-style encoding ClamAV's `cli_versig2` checks.
fn sign_pss(sha: &[u8; 32]) -> String {
    use sha2::Sha256;
    let salt = [0x5au8; 32];
    let h: [u8; 32] = Sha256::new()
        .chain_update([0u8; 8])
        .chain_update(sha)
        .chain_update(salt)
        .finalize()
        .into();
    let mut db = vec![0u8; 223];
    db[223 - 33] = 1;
    db[223 - 32..].copy_from_slice(&salt);
    for (i, chunk) in db.chunks_mut(32).enumerate() {
        let mask = Sha256::new()
            .chain_update(h)
            .chain_update((i as u32).to_be_bytes())
            .finalize();
        for (b, m) in chunk.iter_mut().zip(mask) {
            *b ^= m;
        }
    }
    db[0] &= 0x7f;
    let mut em = db;
    em.extend_from_slice(&h);
    em.push(0xbc);
    sign_number(&em)
}

struct Container {
    version: u32,
    compress: bool,
    sign_header: bool,
    sign_info: bool,
    /// Overrides the contents listed in `.info` (name, listed contents).
    info_override: Option<(&'static str, Vec<u8>)>,
}

impl Default for Container {
    fn default() -> Container {
        Container {
            version: 7,
            compress: true,
            sign_header: true,
            sign_info: true,
            info_override: None,
        }
    }
}

impl Container {
    fn build(&self, files: &[(&str, &[u8])]) -> Vec<u8> {
        let stime = 1_700_000_000u64;
        let mut info = format!(
            "ClamAV-VDB:01 Jan 2024 00-00 +0000:{}:3:90:X:X:tester:{stime}\n",
            self.version
        );
        for (name, data) in files {
            let listed = match &self.info_override {
                Some((n, d)) if n == name => d.clone(),
                _ => data.to_vec(),
            };
            let sha: [u8; 32] = sha2::Sha256::digest(&listed).into();
            info.push_str(&format!("{name}:{}:{}\n", listed.len(), hex(&sha)));
        }
        let sha: [u8; 32] = sha2::Sha256::digest(info.as_bytes()).into();
        if self.sign_info {
            info.push_str(&format!("DSIG:{}\n", sign_pss(&sha)));
        }
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_old();
            h.set_size(data.len() as u64);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            tar.append_data(&mut h, name, data).unwrap();
        };
        add("COPYING", b"license text\n");
        add("test.info", info.as_bytes());
        for (name, data) in files {
            add(name, data);
        }
        let tar = tar.into_inner().unwrap();
        let body = if self.compress {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&tar).unwrap();
            gz.finish().unwrap()
        } else {
            tar
        };
        let md5: [u8; 16] = md5::Md5::digest(&body).into();
        let dsig = if self.sign_header {
            sign_number(&md5)
        } else {
            "x".to_string()
        };
        let mut out = format!(
            "ClamAV-VDB:01 Jan 2024 00-00 +0000:{}:3:90:{}:{dsig}:tester:{stime}",
            self.version,
            hex(&md5)
        )
        .into_bytes();
        assert!(out.len() <= 512);
        out.resize(512, b' ');
        out.extend_from_slice(&body);
        out
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn test_opts() -> LoadOptions {
    LoadOptions {
        cvd_key: test_key(),
        info_key: test_key(),
        ..LoadOptions::default()
    }
}

#[derive(Default, Debug)]
struct Collect {
    hashes: Vec<(String, HashKind, Option<u64>)>,
    allows: Vec<String>,
    bodies: Vec<(String, String)>,
    /// `official` flags announced by `begin_database`, in order.
    databases: Vec<bool>,
}

impl SignatureSink for Collect {
    fn begin_database(&mut self, official: bool) {
        self.databases.push(official);
    }
    fn hash(&mut self, s: HashSig<'_>) -> Result<(), Unsupported> {
        self.hashes
            .push((s.name.to_string(), s.digest.kind, s.size));
        Ok(())
    }
    fn body(&mut self, s: BodySig<'_>) -> Result<(), Unsupported> {
        // Pretend the engine cannot do entry-point offsets yet.
        if s.offset.is_executable_relative() {
            return Err(Unsupported("executable-relative offsets"));
        }
        self.bodies
            .push((s.name.to_string(), s.pattern.to_string()));
        Ok(())
    }
    fn allow(&mut self, s: HashSig<'_>) -> Result<(), Unsupported> {
        self.allows.push(s.name.to_string());
        Ok(())
    }
}

const EICAR_MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
const EICAR_SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn load(path: &Path, opts: LoadOptions) -> Result<(Collect, LoadReport), aether_sigs::LoadError> {
    let mut loader = Loader::new(opts);
    let mut sink = Collect::default();
    loader.load_path(path, &mut sink)?;
    Ok((sink, loader.finish()))
}

fn report<'a>(r: &'a LoadReport, suffix: &str) -> &'a aether_sigs::FileReport {
    r.files
        .iter()
        .find(|f| f.name.ends_with(suffix))
        .unwrap_or_else(|| panic!("no report for {suffix}: {r:?}"))
}

#[test]
fn hash_files_and_allow_lists() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.hdb",
        format!("# comment\r\n{EICAR_MD5}:68:Eicar.MD5\r\n{EICAR_MD5}:*:Eicar.Any:73\n"),
    );
    write(
        dir.path(),
        "a.hsb",
        format!("{EICAR_SHA256}:68:Eicar.SHA256\n{EICAR_SHA256}:68:Future:9999\n"),
    );
    write(dir.path(), "a.fp", format!("{EICAR_MD5}:68:Clean\n"));
    write(dir.path(), "a.sfp", format!("{EICAR_SHA256}:68:CleanToo"));
    let (sink, rep) = load(dir.path(), LoadOptions::default()).unwrap();
    assert_eq!(
        sink.hashes,
        vec![
            ("Eicar.MD5".to_string(), HashKind::Md5, Some(68)),
            ("Eicar.Any".to_string(), HashKind::Md5, None),
            ("Eicar.SHA256".to_string(), HashKind::Sha256, Some(68)),
        ]
    );
    assert_eq!(sink.allows, vec!["Clean", "CleanToo"]);
    assert_eq!(report(&rep, "a.hdb").by_kind.get("md5"), Some(&2));
    assert_eq!(report(&rep, "a.hsb").skipped_flevel, 1);
    assert_eq!(report(&rep, "a.sfp").by_kind.get("allow sha256"), Some(&1));
    assert_eq!(rep.loaded(), 5);
}

#[test]
fn body_signatures_flevel_and_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "x.ndb",
        "A:0:*:aabbcc(dd|ee)ff\nB:1:EP+10:aabbccdd\nC:0:*:aabbcc:9999\nD:15:*:aabbcc\nE:0:*:aabbcc:1:20\nF:1:VI:aabbcc\n",
    );
    let (sink, rep) = load(&p, LoadOptions::default()).unwrap();
    assert_eq!(
        sink.bodies,
        vec![("A".to_string(), "aabbcc(dd|ee)ff".to_string())]
    );
    let r = report(&rep, "x.ndb");
    assert_eq!(r.by_kind.get("body"), Some(&1));
    assert_eq!(r.skipped_flevel, 2);
    // `EP+10` and `VI`, which this sink refuses.
    assert_eq!(r.unsupported.get("executable-relative offsets"), Some(&2));
    assert_eq!(r.unsupported.get("target type above 14"), Some(&1));
}

#[test]
fn ignore_lists_load_first_and_apply_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    // Sorted by name the .hdb comes first; ClamAV's priority puts ignore lists first.
    write(
        dir.path(),
        "a.hdb",
        format!(
            "{EICAR_MD5}:68:Eicar.A\n{EICAR_MD5}:68:Eicar.B\n{EICAR_MD5}:68:Eicar.C\n{EICAR_MD5}:68:Eicar.D\n"
        ),
    );
    let body_line = "Body.A:0:*:aabbccdd";
    let body_md5: [u8; 16] = md5::Md5::digest(body_line.as_bytes()).into();
    write(
        dir.path(),
        "b.ndb",
        format!("{body_line}\nBody.B:0:*:aabbccdd\n"),
    );
    write(
        dir.path(),
        "z.ign2",
        format!(
            "Eicar.A\nBody.A:{}\nBody.B:00000000000000000000000000000000\nEicar.D.UNOFFICIAL\n",
            hex(&body_md5)
        ),
    );
    write(dir.path(), "z.ign", "daily.hdb:12:Eicar.B\n");
    let (sink, rep) = load(dir.path(), LoadOptions::default()).unwrap();
    let names: Vec<_> = sink.hashes.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(
        names,
        vec!["Eicar.C", "Eicar.D"],
        "Eicar.D.UNOFFICIAL names no loaded signature"
    );
    assert_eq!(
        sink.bodies.len(),
        1,
        "Body.B's entry has another line's MD5"
    );
    assert_eq!(sink.bodies[0].0, "Body.B");
    assert_eq!(report(&rep, "a.hdb").ignored, 2);
    assert_eq!(report(&rep, "b.ndb").ignored, 1);
    assert_eq!(report(&rep, "z.ign2").by_kind.get("ignore"), Some(&4));
    let order: Vec<_> = rep.files.iter().map(|f| f.format).collect();
    assert_eq!(
        order,
        vec![DbFormat::Ign, DbFormat::Ign2, DbFormat::Hdb, DbFormat::Ndb]
    );
}

#[test]
fn ignored_names_match_normalized_signature_names() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.hdb",
        format!("{EICAR_MD5}:68:Eicar.UNOFFICIAL\n"),
    );
    write(dir.path(), "a.ign2", "Eicar\n");
    let (sink, rep) = load(dir.path(), LoadOptions::default()).unwrap();
    assert!(sink.hashes.is_empty());
    assert_eq!(rep.ignored(), 1);
}

#[test]
fn other_database_types_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "x.ldb",
        // Parsed, then declined by a sink without logical-signature support.
        "# c\nSig1;Target:0;0;aabbcc\nSig2;Target:0;0;aabbcc\nSig3;Target:0;0;aabbcc\n",
    );
    write(
        dir.path(),
        "x.mdb",
        "1024:44d88612fea8a8f36de82e1278abb02f:Sec\n",
    );
    write(
        dir.path(),
        "x.yara",
        "rule a { condition: true }\nprivate rule b {\n condition: true\n}\n",
    );
    write(dir.path(), "x.cbc", "ClamBCaa...\n");
    write(dir.path(), "notes.txt", "not a database\n");
    let (_, rep) = load(dir.path(), LoadOptions::default()).unwrap();
    let all = rep.unsupported();
    assert_eq!(all.get("logical signatures (.ldb)"), Some(&3));
    assert_eq!(all.get("PE section hash signatures (.mdb .msb)"), Some(&1));
    assert_eq!(all.get("YARA rules (.yar .yara)"), Some(&2));
    assert_eq!(all.get("bytecode signatures (.cbc)"), Some(&1));
    assert_eq!(rep.files.len(), 4, "notes.txt is passed over");
}

#[test]
fn unknown_extension_given_explicitly_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "sigs.txt", format!("{EICAR_MD5}:68:E\n"));
    let e = load(&p, LoadOptions::default()).unwrap_err();
    assert!(matches!(e.kind, LoadErrorKind::UnknownExtension));
    assert!(
        e.to_string()
            .starts_with(&format!("{}: unknown database extension", p.display()))
    );
}

#[test]
fn empty_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = load(dir.path(), LoadOptions::default()).unwrap_err();
    assert!(matches!(e.kind, LoadErrorKind::NoDatabases));
}

#[test]
fn line_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "bad.ndb",
        "# ok\nA:0:*:aabbccdd\nB:0:*:aabbc?d\n",
    );
    let e = load(&p, LoadOptions::default()).unwrap_err();
    assert_eq!(e.line, Some(3));
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3: malformed hex signature: odd number of hex digits at column 7",
            p.display()
        )
    );

    let cases: &[(&str, &str, Option<usize>, &str)] = &[
        ("empty.hdb", "", None, "empty database file"),
        (
            "blank.hdb",
            "44d88612fea8a8f36de82e1278abb02f:68:E\n\n",
            Some(2),
            "empty line",
        ),
        (
            "size.hdb",
            "44d88612fea8a8f36de82e1278abb02f:0:E\n",
            Some(1),
            "invalid size \"0\"",
        ),
        (
            "hash.hsb",
            "44d886:68:E\n",
            Some(1),
            "malformed hash \"44d886\"",
        ),
        (
            "fields.ndb",
            "A:0:*\n",
            Some(1),
            "expected 4 to 6 ':'-separated fields, found 3",
        ),
        (
            "target.ndb",
            "A:0:EP+1:aabbcc\n",
            Some(1),
            "offset EP+1 needs target type 1",
        ),
        (
            "ign.ign2",
            "A:notanmd5\n",
            Some(1),
            "malformed MD5 \"notanmd5\"",
        ),
    ];
    for (name, body, line, msg) in cases {
        let p = write(dir.path(), name, body);
        let e = load(&p, LoadOptions::default()).unwrap_err();
        assert_eq!(e.line, *line, "{name}: {e}");
        assert!(e.to_string().contains(msg), "{name}: {e}");
    }
    let p = write(dir.path(), "utf8.hdb", b"# fine\n\xff\xfe:1:E\n");
    let e = load(&p, LoadOptions::default()).unwrap_err();
    assert_eq!(
        (e.line, e.to_string().ends_with("line is not valid UTF-8")),
        (Some(2), true)
    );

    let long = format!("A:0:*:{}\n", "aa".repeat(40_000));
    let p = write(dir.path(), "long.ndb", long);
    let e = load(&p, LoadOptions::default()).unwrap_err();
    assert!(matches!(e.kind, LoadErrorKind::LineTooLong(65536)), "{e}");
}

#[test]
fn a_directory_stops_at_the_first_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.hdb", format!("{EICAR_MD5}:68:E\n"));
    write(dir.path(), "b.ndb", "A:0:*:zz\n");
    let e = load(dir.path(), LoadOptions::default()).unwrap_err();
    assert!(e.path.ends_with("b.ndb"));
}

#[test]
fn cvd_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let hdb = format!("{EICAR_MD5}:68:Eicar.Cvd\n");
    let data = Container::default().build(&[
        ("test.hdb", hdb.as_bytes()),
        ("test.ndb", b"B:0:*:aabbccdd\n"),
        ("test.ldb", b"L;Target:0;0;aabbcc\n"),
    ]);
    let p = write(dir.path(), "test.cvd", &data);
    let (sink, rep) = load(&p, test_opts()).unwrap();
    assert_eq!(sink.hashes.len(), 1);
    assert_eq!(sink.bodies.len(), 1);
    let head = rep.files[0].cvd.as_ref().unwrap();
    assert_eq!(
        (head.version, head.sigs, head.flevel, head.builder.as_str()),
        (7, 3, 90, "tester")
    );
    assert_eq!(
        report(&rep, "test.cvd/test.hdb").by_kind.get("md5"),
        Some(&1)
    );
    assert_eq!(
        report(&rep, "test.cvd/test.ldb")
            .unsupported
            .get("logical signatures (.ldb)"),
        Some(&1)
    );

    // The same bytes through load_bytes.
    let mut loader = Loader::new(test_opts());
    let mut sink = Collect::default();
    loader
        .load_bytes("mem.cvd", DbFormat::Cvd, &data, &mut sink)
        .unwrap();
    assert_eq!(sink.hashes.len(), 1);
    assert_eq!(loader.finish().files[1].name, "mem.cvd/test.hdb");
}

#[test]
fn cvd_with_the_wrong_key_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let data =
        Container::default().build(&[("test.hdb", format!("{EICAR_MD5}:68:E\n").as_bytes())]);
    let p = write(dir.path(), "test.cvd", &data);
    let e = load(&p, LoadOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("digital signature does not verify"),
        "{e}"
    );
    // Without verification the same file loads.
    let opts = LoadOptions {
        verify: false,
        ..LoadOptions::default()
    };
    assert_eq!(load(&p, opts).unwrap().0.hashes.len(), 1);
}

#[test]
fn corrupted_cvds_are_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        Container::default().build(&[("test.hdb", format!("{EICAR_MD5}:68:E\n").as_bytes())]);

    let mut flipped = good.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x55;
    let p = write(dir.path(), "flipped.cvd", &flipped);
    let e = load(&p, test_opts()).unwrap_err();
    assert!(e.to_string().contains("MD5 mismatch"), "{e}");
    assert!(e.path.ends_with("flipped.cvd"));

    let unsigned = Container {
        sign_header: false,
        ..Container::default()
    }
    .build(&[("test.hdb", b"x")]);
    let p = write(dir.path(), "unsigned.cvd", &unsigned);
    let e = load(&p, test_opts()).unwrap_err();
    assert!(e.to_string().contains("digital signature"), "{e}");

    let p = write(dir.path(), "short.cvd", &good[..300]);
    assert!(
        load(&p, test_opts())
            .unwrap_err()
            .to_string()
            .contains("smaller than the 512-byte")
    );

    let mut garbage = good.clone();
    garbage[..10].copy_from_slice(b"NotClamAV:");
    let p = write(dir.path(), "garbage.cvd", &garbage);
    assert!(
        load(&p, test_opts())
            .unwrap_err()
            .to_string()
            .contains("not a CVD header")
    );

    // Truncated archive: caught by the MD5 when verifying, by gzip/tar otherwise.
    let p = write(dir.path(), "cut.cvd", &good[..good.len() - 40]);
    assert!(load(&p, test_opts()).is_err());
    let e = load(
        &p,
        LoadOptions {
            verify: false,
            ..test_opts()
        },
    )
    .unwrap_err();
    assert!(matches!(e.kind, LoadErrorKind::Cvd(_)), "{e}");

    // A file whose contents differ from what .info lists.
    let lying = Container {
        info_override: Some(("test.hdb", b"other".to_vec())),
        ..Container::default()
    }
    .build(&[("test.hdb", format!("{EICAR_MD5}:68:E\n").as_bytes())]);
    let p = write(dir.path(), "lying.cvd", &lying);
    let e = load(&p, test_opts()).unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");

    // .info without its signature.
    let noinfo = Container {
        sign_info: false,
        ..Container::default()
    }
    .build(&[("test.hdb", format!("{EICAR_MD5}:68:E\n").as_bytes())]);
    let p = write(dir.path(), "noinfosig.cvd", &noinfo);
    let e = load(&p, test_opts()).unwrap_err();
    assert!(e.to_string().contains("no digital signature"), "{e}");

    // A broken line inside names the entry.
    let bad = Container::default().build(&[("test.ndb", b"A:0:*:aabbccdd\nB:0:*:aabbc\n")]);
    let p = write(dir.path(), "bad.cvd", &bad);
    let e = load(&p, test_opts()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}/test.ndb:2: malformed hex signature: odd number of hex digits at column 5",
            p.display()
        )
    );
}

#[test]
fn cld_skips_the_header_signature_but_not_the_info_signature() {
    let dir = tempfile::tempdir().unwrap();
    let files: &[(&str, &[u8])] = &[("test.hdb", b"44d88612fea8a8f36de82e1278abb02f:68:E\n")];
    let cld = Container {
        compress: false,
        sign_header: false,
        ..Container::default()
    }
    .build(files);
    let p = write(dir.path(), "test.cld", &cld);
    assert_eq!(load(&p, test_opts()).unwrap().0.hashes.len(), 1);
    let cld = Container {
        compress: true,
        sign_header: false,
        ..Container::default()
    }
    .build(files);
    let p = write(dir.path(), "gz.cld", &cld);
    assert_eq!(load(&p, test_opts()).unwrap().0.hashes.len(), 1);
    let cld = Container {
        compress: false,
        sign_header: false,
        sign_info: false,
        ..Container::default()
    }
    .build(files);
    let p = write(dir.path(), "nosig.cld", &cld);
    assert!(load(&p, test_opts()).is_err());
}

#[test]
fn newer_of_cvd_and_cld_wins() {
    let files: &[(&str, &[u8])] = &[("test.hdb", b"44d88612fea8a8f36de82e1278abb02f:68:E\n")];
    for (cvd_v, cld_v, loaded) in [
        (5, 6, "daily.cld"),
        (7, 6, "daily.cvd"),
        (6, 6, "daily.cld"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "daily.cvd",
            Container {
                version: cvd_v,
                ..Container::default()
            }
            .build(files),
        );
        write(
            dir.path(),
            "daily.cld",
            Container {
                version: cld_v,
                compress: false,
                ..Container::default()
            }
            .build(files),
        );
        let (sink, rep) = load(dir.path(), test_opts()).unwrap();
        assert_eq!(sink.hashes.len(), 1, "{cvd_v} vs {cld_v}");
        assert!(
            rep.files[0].name.ends_with(loaded),
            "{cvd_v} vs {cld_v}: {rep:?}"
        );
        assert_eq!(rep.notes.len(), 1);
    }
}

/// `cargo test --release -p aether-sigs --test loader -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn million_md5_lines() {
    let mut text = String::with_capacity(1_000_000 * 60);
    for i in 0..1_000_000u32 {
        let d: [u8; 16] = md5::Md5::digest(i.to_le_bytes()).into();
        text.push_str(&format!("{}:{}:Test.Sig-{i}\n", hex(&d), 1000 + i));
    }
    struct Null(u64);
    impl SignatureSink for Null {
        fn hash(&mut self, s: HashSig<'_>) -> Result<(), Unsupported> {
            self.0 += s.name.len() as u64;
            Ok(())
        }
        fn body(&mut self, _: BodySig<'_>) -> Result<(), Unsupported> {
            Ok(())
        }
        fn allow(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
            Ok(())
        }
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut loader = Loader::new(LoadOptions::default());
        let mut sink = Null(0);
        let t = std::time::Instant::now();
        loader
            .load_bytes("big.hdb", DbFormat::Hdb, text.as_bytes(), &mut sink)
            .unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(loader.finish().loaded(), 1_000_000);
    }
    println!(
        "1,000,000 MD5 lines ({} MB): best of 5 {:.3} s",
        text.len() / 1_000_000,
        best
    );
}

/// Takes logical signatures, declining those with a PCRE subsignature as an
/// engine without a regex library would.
#[derive(Default)]
struct Logical {
    names: Vec<String>,
    exprs: Vec<String>,
}

impl SignatureSink for Logical {
    fn hash(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn body(&mut self, _: BodySig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn allow(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn logical(&mut self, s: aether_sigs::LogicalSig<'_>) -> Result<(), Unsupported> {
        if s.subsigs
            .iter()
            .any(|s| matches!(s, aether_sigs::SubSig::Pcre(_)))
        {
            return Err(Unsupported("PCRE subsignatures"));
        }
        self.names.push(s.name.to_string());
        self.exprs.push(s.expr.to_string());
        Ok(())
    }
}

#[test]
fn logical_signatures_reach_the_sink_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.ign2", "Dropped\n");
    write(
        dir.path(),
        "x.ldb",
        "# comment\n\
         Good;Target:0;0&1|2;aabbcc;ddeeff;112233\n\
         Regex;Engine:81-255,Target:0;0&1;aabbcc;0/a+b/i\n\
         Future;Engine:999-1000,Target:0;0;aabbcc\n\
         Unknown;Engine:51-255,Target:0,Container:CL_TYPE_NEW;0;aabbcc\n\
         Versioninfo;Engine:51-255,Target:1;0;VI:aabbcc\n\
         Dropped;Target:0;0;aabbcc\n",
    );
    let mut loader = Loader::new(LoadOptions::default());
    let mut sink = Logical::default();
    loader.load_path(dir.path(), &mut sink).unwrap();
    let rep = loader.finish();
    assert_eq!(sink.names, ["Good", "Versioninfo"]);
    assert_eq!(sink.exprs[0], "(0&(1|2))");
    let f = report(&rep, "x.ldb");
    assert_eq!(f.format, DbFormat::Ldb);
    assert_eq!(f.format.to_string(), ".ldb");
    assert_eq!(f.by_kind.get("logical"), Some(&2));
    assert_eq!(f.skipped_flevel, 1);
    assert_eq!(f.ignored, 1);
    assert_eq!(f.unsupported.get("PCRE subsignatures"), Some(&1));
    assert_eq!(
        f.unsupported
            .get(aether_sigs::logical::SKIP_UNKNOWN_ATTRIBUTE),
        Some(&1)
    );
    assert_eq!(f.loaded(), 2);
}

#[test]
fn logical_signatures_inside_a_cvd() {
    let dir = tempfile::tempdir().unwrap();
    let data = Container::default().build(&[(
        "test.ldb",
        b"A;Target:0;0;aabbcc\nB;Engine:51-255,Target:0,FileSize:1-99;(0|1)>1,2;aabbcc;ddeeff\n",
    )]);
    let p = write(dir.path(), "test.cvd", &data);
    let mut loader = Loader::new(test_opts());
    let mut sink = Logical::default();
    loader.load_path(&p, &mut sink).unwrap();
    assert_eq!(sink.names, ["A", "B"]);
    assert_eq!(sink.exprs[1], "(0|1)>1,2");
    let rep = loader.finish();
    assert_eq!(
        report(&rep, "test.cvd/test.ldb").by_kind.get("logical"),
        Some(&2)
    );
}

#[test]
fn logical_line_errors_name_file_line_and_part() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "A;Target:0;0&1;aabbcc;aabbc\n",
            "subsignature 1: malformed hex signature: odd number of hex digits at column 5",
        ),
        (
            "A;Target:0;0&2;aabbcc;ddeeff\n",
            "the logical expression names subsignatures 0 to 2, but the line has 2",
        ),
        (
            "A;Target:0;0&(1|;aabbcc;ddeeff\n",
            "logical expression: '(' without a matching ')' at column 6",
        ),
        (
            "A;Target:0,Engine:51-255;0;aabbcc\n",
            "target description: the Engine attribute must come first",
        ),
        (
            "A;Target:0,FileSize:1-2;0;aabbcc\n",
            "target description: attributes other than Target need Engine with a minimum level of at least 51",
        ),
        (
            "A;Engine:81-255,Target:0;0&1;aabbcc;1/x/\n",
            "subsignature 1: PCRE trigger names subsignature 1, which is not before this one",
        ),
        (
            "A;Engine:81-255,Target:0;0&1;aabbcc;0(>>2#ib3#=1)\n",
            "subsignature 1: byte compare: binary byte length 3 is not 1, 2, 4 or 8",
        ),
        (
            "A;Target:0;0;aabbcc::q\n",
            "subsignature 0: unknown modifier 'q' (expected i, w, a or f)",
        ),
        (
            "\n",
            "expected at least 4 ';'-separated fields (name, target description, logic, subsignature), found 1",
        ),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let p = write(dir.path(), &format!("bad{i}.ldb"), format!("# c\n{line}"));
        let e = load(&p, LoadOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}:2: {want}", p.display()),
            "{line}"
        );
    }
    // ClamAV's 32 KiB line buffer.
    let long = format!("A;Target:0;0;{}\n", "aa".repeat(20_000));
    let p = write(dir.path(), "long.ldb", long);
    let e = load(&p, LoadOptions::default()).unwrap_err();
    assert!(matches!(e.kind, LoadErrorKind::LineTooLong(32768)), "{e}");
}
