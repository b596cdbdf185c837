//! PDF documents scanned object by object.
//!
//! The engine must report what Debian's clamscan 1.4.6 reports with
//! `--allmatch`, file by file, on clam.pdf and on documents written by
//! `pdf_common`: markers (`.ndb`) that only show once a stream is decoded,
//! one document per filter and chain, in object streams, in JavaScript hex
//! strings and in page text split across a text array; `.hdb` hashes of
//! decoded streams, which only match when the stream's bounds are exactly
//! ClamAV's (lying and indirect `/Length`s); clam.exe embedded compressed.
//! Then cut and bit-flipped copies of a document holding all of these.

mod common;
#[path = "../../formats/tests/pdf_common/mod.rs"]
mod pdf_common;

use std::fmt::Write as _;

use common::{compare, hdb_line, hex, names};
use pdf_common::{
    Encryption, Security, ascii_hex, ascii85, document, document_with, flate, frame, lzw, obj,
    objstm_data, run_length, stream_obj,
};

fn marker(tag: &str) -> Vec<u8> {
    format!("aether-pdf-marker-{tag}.").into_bytes()
}

/// Text around a marker.
fn text_with(tag: &str) -> Vec<u8> {
    let mut t = b"stream text before the marker; ".repeat(20);
    t.extend_from_slice(&marker(tag));
    t.extend_from_slice(&b" and stream text after it. ".repeat(20));
    t
}

fn with(objects: Vec<Vec<u8>>) -> Vec<u8> {
    let mut all = frame();
    all.extend(objects);
    document(&all)
}

const TAGS: &[&str] = &[
    "flate",
    "ahx",
    "a85",
    "rl",
    "lzw",
    "lzw-late",
    "a85-fl",
    "ahx-a85-fl",
    "fl",
    "dct",
    "objstm",
    "js",
    "contents",
    "lies",
    "indirect",
    "cut",
    "enc-r2",
    "enc-r3",
    "enc-r4",
    "enc-r5",
    "enc-r6",
    "enc-js-r2",
    "enc-js-r3",
    "enc-js-r4",
    "enc-js-r5",
    "enc-js-r6",
    "enc-locked",
];

/// An encrypted document: a Flate stream with a marker, a JavaScript string
/// with another, clam.exe as an embedded file.
fn encrypted(e: &Encryption, tag: &str, exe: &[u8]) -> Vec<u8> {
    let mut objects = frame();
    let js = marker(&format!("enc-js-{tag}"));
    objects.extend([
        stream_obj(
            4,
            "/Filter /FlateDecode",
            &e.encrypt(4, &flate(&text_with(&format!("enc-{tag}")))),
            None,
        ),
        obj(
            5,
            format!("<< /S /JavaScript /JS <{}> >>", hex(&e.encrypt(5, &js))).as_bytes(),
        ),
        stream_obj(
            6,
            "/Type /EmbeddedFile /Filter /FlateDecode",
            &e.encrypt(6, &flate(exe)),
            None,
        ),
        obj(9, e.dict.as_bytes()),
    ]);
    document_with(&objects, &e.trailer(9))
}

/// Named bytes: files by name, or streams by signature name.
type Named = Vec<(String, Vec<u8>)>;

/// The documents, by file name, and the hashes of streams as they decode.
fn documents() -> (Named, Named) {
    let exe =
        std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("Debian's clamav-testfiles");
    let t = text_with;
    let one = |n: u32, dict: &str, data: Vec<u8>| with(vec![stream_obj(n, dict, &data, None)]);
    let mut docs = vec![
        (
            "flate".into(),
            one(4, "/Filter /FlateDecode", flate(&t("flate"))),
        ),
        (
            "ahx".into(),
            one(4, "/Filter /ASCIIHexDecode", ascii_hex(&t("ahx"))),
        ),
        (
            "a85".into(),
            one(4, "/Filter /ASCII85Decode", ascii85(&t("a85"))),
        ),
        (
            "rl".into(),
            one(
                4,
                "/Filter [/AHx /RunLengthDecode]",
                ascii_hex(&run_length(&t("rl"))),
            ),
        ),
        (
            "lzw".into(),
            one(
                4,
                "/Filter [/AHx /LZWDecode]",
                ascii_hex(&lzw(&t("lzw"), true)),
            ),
        ),
        (
            "lzw-late".into(),
            one(
                4,
                "/Filter [/AHx /LZW] /DecodeParms [null << /EarlyChange 0 >>]",
                ascii_hex(&lzw(&t("lzw-late"), false)),
            ),
        ),
        (
            "a85-fl".into(),
            one(4, "/Filter [/A85 /Fl]", ascii85(&flate(&t("a85-fl")))),
        ),
        (
            "ahx-a85-fl".into(),
            one(
                4,
                "/Filter [/AHx /A85 /Fl]",
                ascii_hex(&ascii85(&flate(&t("ahx-a85-fl")))),
            ),
        ),
        ("fl".into(), one(4, "/Filter /Fl", flate(&t("fl")))),
        // Decoding stops at DCT: the hex decoded is what is scanned.
        (
            "dct".into(),
            one(
                4,
                "/Subtype /Image /Filter [/AHx /DCTDecode]",
                ascii_hex(&t("dct")),
            ),
        ),
        // Streams ClamAV does not scan: LZW or RunLength alone, an unknown
        // filter, a non-JPEG image (their markers would show decoded).
        (
            "not-dumped".into(),
            with(vec![
                stream_obj(4, "/Filter /LZWDecode", &lzw(&t("cut"), true), None),
                stream_obj(5, "/Filter /RunLengthDecode", &run_length(&t("cut")), None),
                stream_obj(
                    6,
                    "/Subtype /Image /Filter /FlateDecode",
                    &flate(&t("cut")),
                    None,
                ),
            ]),
        ),
        (
            "exe".into(),
            with(vec![stream_obj(
                4,
                "/Type /EmbeddedFile /Filter /FlateDecode",
                &flate(&exe),
                None,
            )]),
        ),
    ];
    for (tag, sec) in [
        ("r2", Security::Rc4R2),
        ("r3", Security::Rc4R3),
        ("r4", Security::AesR4),
        ("r5", Security::AesR5),
        ("r6", Security::AesR6),
    ] {
        docs.push((
            format!("enc-{tag}"),
            encrypted(&Encryption::new(sec, true), tag, &exe),
        ));
    }
    docs.push((
        "enc-locked".into(),
        encrypted(&Encryption::new(Security::AesR4, false), "locked", &exe),
    ));
    let (stm, first) = objstm_data(&[
        (
            20,
            format!(
                "<< /S /JavaScript /JS ({}) >>",
                String::from_utf8_lossy(&marker("objstm"))
            )
            .as_bytes(),
        ),
        (21, b"<< /Title (x) >>"),
    ]);
    docs.push((
        "objstm".into(),
        one(
            4,
            &format!("/Type/ObjStm /N 2 /First {first} /Filter /FlateDecode"),
            flate(&stm),
        ),
    ));
    docs.push((
        "js".into(),
        with(vec![obj(
            4,
            format!("<< /S /JavaScript /JS <{}> >>", hex(&marker("js"))).as_bytes(),
        )]),
    ));
    // The marker is only whole in the page's text, not in its stream.
    let content = b"BT\n[(aether-pdf-mar) -20 (ker-contents.)] TJ\nET\n".to_vec();
    docs.push((
        "contents".into(),
        with(vec![
            obj(4, b"<< /Type /Page /Contents 5 0 R >>"),
            stream_obj(5, "/Filter /FlateDecode", &flate(&content), None),
        ]),
    ));
    let lies = t("lies");
    docs.push((
        "lies".into(),
        with(vec![
            stream_obj(4, "", &lies, Some("5")),
            stream_obj(5, "/Filter /FlateDecode", &flate(&lies), Some("999999")),
            stream_obj(6, "", &lies, Some("-3")),
        ]),
    ));
    docs.push((
        "indirect".into(),
        with(vec![
            stream_obj(4, "", &t("indirect"), Some("5 0 R")),
            obj(5, t("indirect").len().to_string().as_bytes()),
            stream_obj(6, "/Filter /AHx", &ascii_hex(&t("indirect")), Some("7 0 R")),
            obj(7, b"12"),
        ]),
    ));
    // Streams whose exact decoded bytes a hash pins down.
    let mut hashed = vec![
        ("ClamExe".to_string(), exe.clone()),
        ("Flate".to_string(), t("flate")),
        ("Lzw".to_string(), t("lzw")),
        ("A85".to_string(), t("a85")),
        ("Contents".to_string(), content.clone()),
    ];
    for (name, data) in [("Lies", &lies), ("Indirect", &t("indirect"))] {
        hashed.push((name.to_string(), data.clone()));
        let mut nl = data.clone();
        nl.push(b'\n');
        hashed.push((format!("{name}Nl"), nl));
    }
    let docs = docs
        .into_iter()
        .map(|(n, d): (String, Vec<u8>)| (format!("{n}.pdf"), d))
        .collect();
    (docs, hashed)
}

fn databases(hashed: &[(String, Vec<u8>)]) -> (String, String) {
    let mut ndb = String::new();
    for tag in TAGS {
        let _ = writeln!(ndb, "Pdf.Marker.{tag}:0:*:{}", hex(&marker(tag)));
    }
    let hdb = hashed
        .iter()
        .map(|(name, data)| hdb_line(&format!("Pdf.Hash.{name}"), data))
        .collect();
    (ndb, hdb)
}

#[test]
fn pdfs_match_clamscan() {
    let (mut docs, hashed) = documents();
    for (name, d) in &docs {
        // Unfiltered streams (lying lengths) are checked by their hashes.
        if name == "lies.pdf" || name == "indirect.pdf" {
            continue;
        }
        for tag in TAGS {
            let m = marker(tag);
            assert!(
                !d.windows(m.len()).any(|w| w == m),
                "{name} shows {tag} raw"
            );
        }
    }
    docs.push((
        "clam.pdf".into(),
        std::fs::read("/usr/share/clamav-testfiles/clam.pdf").expect("Debian's clamav-testfiles"),
    ));
    let (ndb, hdb) = databases(&hashed);
    let (want, got) = compare(
        &[("markers.ndb", ndb.as_str()), ("streams.hdb", hdb.as_str())],
        &docs,
    );
    // clamscan must find what the documents were built to hold, or the
    // comparison proves little.
    assert_eq!(names(&want, "clam.pdf"), ["Pdf.Hash.ClamExe.UNOFFICIAL"]);
    assert_eq!(names(&want, "exe.pdf"), ["Pdf.Hash.ClamExe.UNOFFICIAL"]);
    for tag in [
        "ahx",
        "rl",
        "lzw-late",
        "a85-fl",
        "ahx-a85-fl",
        "fl",
        "dct",
        "objstm",
        "js",
    ] {
        assert_eq!(
            names(&want, &format!("{tag}.pdf")),
            [format!("Pdf.Marker.{tag}.UNOFFICIAL")],
            "{tag}"
        );
    }
    // The page's text only, and its stream.
    assert_eq!(
        names(&want, "contents.pdf"),
        [
            "Pdf.Hash.Contents.UNOFFICIAL",
            "Pdf.Marker.contents.UNOFFICIAL"
        ]
    );
    assert!(names(&want, "not-dumped.pdf").is_empty());
    for tag in ["r2", "r3", "r4", "r5", "r6"] {
        assert!(
            names(&want, &format!("enc-{tag}.pdf")).contains(&"Pdf.Hash.ClamExe.UNOFFICIAL"),
            "{tag}: {:?}",
            names(&want, &format!("enc-{tag}.pdf"))
        );
    }
    assert!(names(&want, "enc-locked.pdf").is_empty());
    assert!(names(&want, "lies.pdf").contains(&"Pdf.Hash.Lies.UNOFFICIAL"));
    assert_eq!(got, want);
}

#[test]
fn cut_and_flipped_pdfs_match_clamscan() {
    let (docs, hashed) = documents();
    // One document with every kind of object in it.
    let mut objects = frame();
    let exe =
        std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("Debian's clamav-testfiles");
    let t = text_with;
    let (stm, first) = objstm_data(&[(
        20,
        format!(
            "<< /S /JavaScript /JS ({}) >>",
            String::from_utf8_lossy(&marker("objstm"))
        )
        .as_bytes(),
    )]);
    objects.extend([
        stream_obj(4, "/Filter /FlateDecode", &flate(&t("flate")), None),
        stream_obj(
            5,
            "/Filter [/AHx /LZWDecode]",
            &ascii_hex(&lzw(&t("lzw"), true)),
            None,
        ),
        stream_obj(
            6,
            "/Filter [/A85 /Fl]",
            &ascii85(&flate(&t("a85-fl"))),
            Some("7 0 R"),
        ),
        obj(7, b"40"),
        stream_obj(
            8,
            &format!("/Type/ObjStm /N 1 /First {first} /Filter /Fl"),
            &flate(&stm),
            None,
        ),
        obj(
            9,
            format!("<< /S /JavaScript /JS <{}> >>", hex(&marker("js"))).as_bytes(),
        ),
        stream_obj(
            10,
            "/Type /EmbeddedFile /Filter /FlateDecode",
            &flate(&exe),
            None,
        ),
        stream_obj(
            11,
            "/Filter [/AHx /RunLengthDecode]",
            &ascii_hex(&run_length(&t("rl"))),
            None,
        ),
    ]);
    let base = document(&objects);
    let mut files = vec![("base.pdf".to_string(), base.clone())];
    let mut x = 0x9e37_79b9u32;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as usize
    };
    for i in 0..150 {
        let cut = next() % base.len();
        files.push((format!("cut{i}.pdf"), base[..cut].to_vec()));
    }
    for i in 0..150 {
        let mut p = base.clone();
        for _ in 0..1 + next() % 4 {
            let at = next() % p.len();
            p[at] ^= 1 << (next() % 8);
        }
        files.push((format!("flip{i}.pdf"), p));
    }
    drop(docs);
    // Encrypted ones (RC4 and AES-256): a flipped bit in the dictionary or
    // a key string, a cut trailer.
    for (tag, sec) in [("r3", Security::Rc4R3), ("r6", Security::AesR6)] {
        let enc = encrypted(&Encryption::new(sec, true), tag, &exe);
        for i in 0..40 {
            let cut = enc.len() / 2 + next() % (enc.len() / 2);
            files.push((format!("enc-{tag}-cut{i}.pdf"), enc[..cut].to_vec()));
            let mut p = enc.clone();
            let at = enc.len() / 2 + next() % (enc.len() / 2);
            p[at] ^= 1 << (next() % 8);
            files.push((format!("enc-{tag}-flip{i}.pdf"), p));
        }
    }
    let (ndb, hdb) = databases(&hashed);
    let (want, got) = compare(
        &[("markers.ndb", ndb.as_str()), ("streams.hdb", hdb.as_str())],
        &files,
    );
    assert_eq!(
        names(&want, "base.pdf"),
        [
            "Pdf.Hash.ClamExe.UNOFFICIAL",
            "Pdf.Hash.Flate.UNOFFICIAL",
            "Pdf.Hash.Lzw.UNOFFICIAL",
            "Pdf.Marker.a85-fl.UNOFFICIAL",
            "Pdf.Marker.flate.UNOFFICIAL",
            "Pdf.Marker.js.UNOFFICIAL",
            "Pdf.Marker.lzw.UNOFFICIAL",
            "Pdf.Marker.objstm.UNOFFICIAL",
            "Pdf.Marker.rl.UNOFFICIAL",
        ]
    );
    let differ: Vec<_> = files
        .iter()
        .map(|(n, _)| n)
        .filter(|n| want.get(*n) != got.get(*n))
        .map(|n| (n, want.get(n), got.get(n)))
        .collect();
    assert!(differ.is_empty(), "{differ:#?}");
}
