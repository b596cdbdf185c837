//! PDF documents written by `pdf_common` (every filter ClamAV decodes, chains
//! of them, object streams, lying and indirect lengths, JavaScript, page
//! text), Debian's clam.pdf, and hostile ones: cuts and bit flips, a Flate
//! bomb, 100,000 objects, a chain of 70 filters.

use std::io::{self, Write};

use md5::Digest;

use aether_formats::{FileType, Problem};
use legacy_common::{Walked, clam_exe, testfile, walked, walked_as, walked_ok};
use pdf_common::{
    Encryption, Security, ascii_hex, ascii85, document, document_with, flate, frame, lzw, obj,
    objstm_data, run_length, stream_obj,
};

mod legacy_common;
mod pdf_common;

/// The walk of a document detected as PDF, every member extracted.
fn members(pdf: &[u8]) -> Walked {
    walked(FileType::Pdf, pdf).extracted()
}

fn get<'a>(c: &'a Walked, name: &str) -> Option<&'a [u8]> {
    c.members
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| d.as_slice())
}

/// Whether a stream's dump is `want`: ClamAV's dump of a stream whose
/// `/Length` it does not take runs to `endstream`, with the line end before
/// it (`/Length 12 >>` is such: a space after the number makes ClamAV look
/// for an `N G R` reference, and give up on the length when there is none).
fn is(got: Option<&[u8]>, want: &[u8]) -> bool {
    got.is_some_and(|g| g == want || g.strip_suffix(b"\n") == Some(want))
}

fn sizes(c: &Walked) -> Vec<(&str, usize)> {
    c.members
        .iter()
        .map(|(n, d)| (n.as_str(), d.len()))
        .collect()
}

fn with(objects: Vec<Vec<u8>>) -> Vec<u8> {
    let mut all = frame();
    all.extend(objects);
    document(&all)
}

const TEXT: &[u8] = b"some stream text, long enough to compress: abcabcabcabcabcabcabcabc \
    the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy dog";

#[test]
fn clam_pdf_gives_clam_exe() {
    let pdf = testfile("clam.pdf");
    let exe = clam_exe();
    let c = members(&pdf);
    assert!(
        c.members.iter().any(|(_, d)| d == &exe),
        "{:?}",
        c.members
            .iter()
            .map(|(n, d)| (n, d.len()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn each_filter_decodes() {
    let c = members(&with(vec![
        stream_obj(4, "/Filter /FlateDecode", &flate(TEXT), None),
        stream_obj(5, "/Filter /ASCIIHexDecode", &ascii_hex(TEXT), None),
        stream_obj(6, "/Filter /ASCII85Decode", &ascii85(TEXT), None),
        stream_obj(
            7,
            "/Filter [/AHx /RunLengthDecode]",
            &ascii_hex(&run_length(TEXT)),
            None,
        ),
        stream_obj(
            8,
            "/Filter [/AHx /LZWDecode]",
            &ascii_hex(&lzw(TEXT, true)),
            None,
        ),
        stream_obj(
            9,
            "/Filter [/AHx /LZW] /DecodeParms [null << /EarlyChange 0 >>]",
            &ascii_hex(&lzw(TEXT, false)),
            None,
        ),
        stream_obj(10, "/Filter /Fl", &flate(TEXT), None),
        stream_obj(11, "", TEXT, None),
    ]));
    for n in 4..=11 {
        assert!(
            is(get(&c, &format!("obj {n} 0")), TEXT),
            "obj {n}: {:?}",
            sizes(&c)
        );
    }
    assert!(c.problems.is_empty(), "{:?}", c.problems);
}

#[test]
fn lzw_over_the_whole_table() {
    // Enough distinct strings to fill the 4096 codes and clear the table.
    let data: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8 % 23 + b'a')
        .collect();
    for early in [true, false] {
        let dict = if early {
            "/Filter [/AHx /LZW]".to_string()
        } else {
            "/Filter [/AHx /LZW] /DecodeParms [null << /EarlyChange 0 >>]".to_string()
        };
        let c = members(&with(vec![stream_obj(
            4,
            &dict,
            &ascii_hex(&lzw(&data, early)),
            None,
        )]));
        assert!(
            get(&c, "obj 4 0") == Some(&data[..]),
            "early change {early}: {:?}",
            sizes(&c)
        );
    }
}

#[test]
fn what_clamav_does_not_dump() {
    // Streams filtered only by LZW or RunLength, or by an unknown filter,
    // and images other than JPEG, are not scanned by ClamAV; nor are
    // objects without a stream or a name it cares about.
    let c = members(&with(vec![
        stream_obj(4, "/Filter /LZWDecode", &lzw(TEXT, true), None),
        stream_obj(5, "/Filter /RunLengthDecode", &run_length(TEXT), None),
        stream_obj(6, "/Filter /Unheard", TEXT, None),
        stream_obj(
            7,
            "/Subtype /Image /Filter /FlateDecode",
            &flate(TEXT),
            None,
        ),
        obj(8, b"<< /Title (nothing) >>"),
        stream_obj(9, "/Subtype /Image /Filter /DCTDecode", TEXT, None),
    ]));
    let names: Vec<&str> = c.members.iter().map(|(n, _)| n.as_str()).collect();
    // A JPEG is scanned as stored.
    assert_eq!(names, ["obj 9 0"]);
    assert!(is(get(&c, "obj 9 0"), TEXT));
}

#[test]
fn chains_apply_in_order_and_stop_at_images() {
    let c = members(&with(vec![
        stream_obj(
            4,
            "/Filter [/ASCII85Decode /FlateDecode]",
            &ascii85(&flate(TEXT)),
            None,
        ),
        stream_obj(
            5,
            "/Filter [/AHx /A85 /Fl]",
            &ascii_hex(&ascii85(&flate(TEXT))),
            None,
        ),
        // Decoding stops at DCT: what came before is scanned.
        stream_obj(6, "/Filter [/AHx /DCTDecode]", &ascii_hex(TEXT), None),
        // A filter that fails keeps what the chain had.
        stream_obj(
            7,
            "/Filter [/AHx /A85]",
            &ascii_hex(b"not ascii85 {}"),
            None,
        ),
    ]));
    for n in 4..=6 {
        assert!(
            is(get(&c, &format!("obj {n} 0")), TEXT),
            "obj {n}: {:?}",
            sizes(&c)
        );
    }
    assert!(is(get(&c, "obj 7 0"), b"not ascii85 {}"), "{:?}", sizes(&c));
    assert!(
        matches!(&c.problems[..], [Problem::Broken { member: Some(m), .. }] if m == "obj 7 0"),
        "{:?}",
        c.problems
    );
}

#[test]
fn broken_flate_keeps_what_decoded() {
    let long: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let z = flate(TEXT);
    // Cut: the stream ends early.
    let zl = flate(&long);
    let cut = &zl[..zl.len() / 2];
    // Corrupt after the first bytes of output.
    let mut bad = z.clone();
    let at = bad.len() - 2;
    bad[at] ^= 0xff;
    // Not zlib at all: the raw stream is scanned.
    let c = members(&with(vec![
        stream_obj(4, "/Filter /FlateDecode", cut, None),
        stream_obj(5, "/Filter /FlateDecode", &bad, None),
        stream_obj(6, "/Filter /FlateDecode", b"plain, not zlib", None),
    ]));
    let got = get(&c, "obj 4 0").expect("cut stream");
    // The line end before `endstream` is fed to zlib too (as ClamAV does):
    // it may decode into a few more bytes (one match at most) before failing.
    assert!(got.len() > 1000, "{:?}", sizes(&c));
    assert!(long.starts_with(&got[..got.len() - 258]), "{:?}", sizes(&c));
    // The Adler-32 check fails: everything decoded is kept.
    assert!(is(get(&c, "obj 5 0"), TEXT), "{:?}", sizes(&c));
    assert!(
        is(get(&c, "obj 6 0"), b"plain, not zlib"),
        "{:?}",
        sizes(&c)
    );
}

#[test]
fn lengths_that_lie_give_the_data_up_to_endstream() {
    let c = members(&with(vec![
        stream_obj(4, "", TEXT, Some("5")),
        stream_obj(5, "", TEXT, Some("999999")),
        stream_obj(6, "/Filter /FlateDecode", &flate(TEXT), Some("3")),
        stream_obj(7, "", TEXT, Some("8 0 R")),
        obj(8, TEXT.len().to_string().as_bytes()),
        stream_obj(9, "", TEXT, Some("-4")),
    ]));
    for n in [4, 5, 6, 7, 9] {
        assert!(
            is(get(&c, &format!("obj {n} 0")), TEXT),
            "obj {n}: {:?}",
            sizes(&c)
        );
    }
}

#[test]
fn object_streams_are_opened() {
    let (data, first) = objstm_data(&[
        (20, b"<< /S /JavaScript /JS (app.alert(20);) >>"),
        (21, b"<< /Type /Action /S /Launch /F (cmd.exe) >>"),
        (22, b"<< /Title (plain) >>"),
    ]);
    let c = members(&with(vec![stream_obj(
        4,
        &format!("/Type/ObjStm /N 3 /First {first} /Filter /FlateDecode"),
        &flate(&data),
        None,
    )]));
    let names: Vec<&str> = c.members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["obj 4 0", "obj 20 0", "obj 21 0"]);
    assert!(is(get(&c, "obj 4 0"), &data), "{:?}", sizes(&c));
    let js = get(&c, "obj 20 0").expect("JavaScript");
    assert!(
        js.starts_with(b"app.alert(20);"),
        "{:?}",
        String::from_utf8_lossy(js)
    );
    let launch = get(&c, "obj 21 0").expect("Launch action");
    assert!(
        launch.starts_with(b"<< /Type /Action /S /Launch"),
        "{launch:?}"
    );
}

#[test]
fn object_streams_need_type_slash_objstm_unspaced() {
    // ClamAV 1.4 looks for the bytes `/Type/ObjStm`: with a space, the
    // stream is scanned but its objects are not read.
    let (data, first) = objstm_data(&[(20, b"<< /S /JavaScript /JS (app.alert(20);) >>")]);
    let c = members(&with(vec![stream_obj(
        4,
        &format!("/Type /ObjStm /N 1 /First {first} /Filter /FlateDecode"),
        &flate(&data),
        None,
    )]));
    let names: Vec<&str> = c.members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["obj 4 0"]);
}

#[test]
fn javascript_and_page_text() {
    let content = b"BT\n[(Hello,) -20 (  World)] TJ\nET\n";
    let c = members(&with(vec![
        obj(
            4,
            b"<< /Type /Action /S /JavaScript /JS (this.print\\(\\);) >>",
        ),
        obj(5, b"<< /Type /Page /Contents 6 0 R >>"),
        stream_obj(6, "/Filter /FlateDecode", &flate(content), None),
    ]));
    let js = get(&c, "obj 4 0").expect("JavaScript");
    // ClamAV keeps the escapes of a document it did not decrypt.
    assert!(
        js.starts_with(b"this.print\\(\\);"),
        "{:?}",
        String::from_utf8_lossy(js)
    );
    assert!(is(get(&c, "obj 6 0"), content), "{:?}", sizes(&c));
    assert_eq!(get(&c, "obj 6 0 contents"), Some(&b"hello, world"[..]));
}

#[test]
fn cuts_and_flips_never_panic() {
    let (data, first) = objstm_data(&[(20, b"<< /S /JavaScript /JS (x) >>"), (21, b"(s)")]);
    let pdf = with(vec![
        stream_obj(4, "/Filter [/AHx /Fl]", &ascii_hex(&flate(TEXT)), None),
        stream_obj(
            5,
            &format!("/Type/ObjStm /N 2 /First {first} /Filter /Fl"),
            &flate(&data),
            None,
        ),
        stream_obj(6, "/Filter [/AHx /LZW]", &ascii_hex(&lzw(TEXT, true)), None),
        stream_obj(7, "/Filter /A85", &ascii85(TEXT), Some("8 0 R")),
        obj(8, b"120"),
        obj(9, b"<< /Type /Page /Contents 4 0 R >>"),
    ]);
    for cut in 0..pdf.len() {
        walked_as(FileType::Pdf, &pdf[..cut]).extracted();
    }
    let mut x = 0x1234_5678u32;
    for _ in 0..3000 {
        let mut p = pdf.clone();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = x as usize % p.len();
            p[at] ^= 1 << (x >> 29);
        }
        walked_as(FileType::Pdf, &p).extracted();
    }
}

#[test]
fn a_flate_bomb_is_bounded() {
    // 120 MiB of zeros in about 120 KiB: over the decoder's cap, so the
    // filter fails and the stream is scanned as stored, as ClamAV does.
    let zeros = vec![0u8; 120 << 20];
    let z = flate(&zeros);
    drop(zeros);
    let c = members(&with(vec![stream_obj(4, "/Filter /FlateDecode", &z, None)]));
    assert!(is(get(&c, "obj 4 0"), &z), "{:?}", sizes(&c));
    assert!(
        matches!(&c.problems[..], [Problem::Broken { member: Some(m), .. }] if m == "obj 4 0"),
        "{:?}",
        c.problems
    );
}

#[test]
fn object_count_is_capped() {
    let mut objects = Vec::with_capacity(100_000);
    for n in 0..100_000u32 {
        objects.push(obj(n + 10, b"<< /OpenAction 1 >>"));
    }
    let c = members(&document(&objects));
    assert_eq!(c.members.len(), 64 * 1024);
    assert!(
        c.problems
            .iter()
            .any(|p| matches!(p, Problem::Broken { member: None, detail } if detail.contains("more than"))),
        "{:?}",
        c.problems
    );
}

#[test]
fn references_among_many_objects_stay_fast() {
    // 65536 objects, each pointing to one that does not exist: ClamAV
    // searches the whole list for each.
    let mut objects = Vec::with_capacity(70_000);
    for n in 0..70_000u32 {
        objects.push(obj(
            n + 10,
            format!("<< /OpenAction {} 0 R /Contents 7 0 R >>", n + 1_000_000).as_bytes(),
        ));
    }
    let started = std::time::Instant::now();
    let c = members(&document(&objects));
    assert_eq!(c.members.len(), 64 * 1024);
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

#[test]
fn one_long_length_object_for_many_streams() {
    // Every stream's `/Length` points to one object whose number ClamAV
    // looks for past a 2 MiB comment line: read once.
    let mut long = vec![b'%'; 2 << 20];
    long.extend_from_slice(b"\n12");
    let mut objects = vec![obj(5, &long)];
    for n in 0..20_000u32 {
        objects.push(stream_obj(n + 10, "", b"data", Some("5 0 R")));
    }
    let started = std::time::Instant::now();
    let c = members(&document(&objects));
    assert_eq!(c.members.len(), 20_000);
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

#[test]
fn chains_stop_at_64_filters() {
    let mut data = TEXT.to_vec();
    for _ in 0..70 {
        data = flate(&data);
    }
    let names = vec!["/Fl"; 70].join(" ");
    let c = members(&with(vec![stream_obj(
        4,
        &format!("/Filter [{names}]"),
        &data,
        None,
    )]));
    let mut want = TEXT.to_vec();
    for _ in 0..6 {
        want = flate(&want);
    }
    assert!(get(&c, "obj 4 0") == Some(&want[..]), "{:?}", sizes(&c));
}

#[test]
fn a_pdf_that_is_not_one() {
    let c = walked_ok(FileType::Pdf, b"no header here, 1 0 obj << >> endobj").extracted();
    assert!(c.members.is_empty());
    // The header may come late (up to 1 KiB in), as ClamAV's type says.
    let mut late = vec![b' '; 600];
    late.extend(with(vec![stream_obj(4, "", TEXT, None)]));
    let c = walked_ok(FileType::Pdf, &late).extracted();
    assert!(is(get(&c, "obj 4 0"), TEXT), "{:?}", sizes(&c));
}

#[test]
fn escaped_names_are_obfuscation() {
    // `/Fl#61teDecode` is still FlateDecode, and ClamAV's
    // `Heuristics.PDF.ObfuscatedNameObject`, reported after the objects.
    let c = members(&with(vec![stream_obj(
        4,
        "/Filter /Fl#61teDecode",
        &flate(TEXT),
        None,
    )]));
    assert!(is(get(&c, "obj 4 0"), TEXT), "{:?}", sizes(&c));
    assert_eq!(
        c.problems,
        [Problem::Heuristic {
            name: "Heuristics.PDF.ObfuscatedNameObject"
        }]
    );
    // Escapes in a name ClamAV does not act on, or in the document's
    // information, are not.
    let c = members(&with(vec![
        obj(4, b"<< /Ti#74le (x) /Foo#20bar 1 >>"),
        stream_obj(5, "/Filter /FlateDecode", &flate(TEXT), None),
    ]));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
}

/// An encrypted document: a Flate stream, an unfiltered stream, an
/// embedded file and a JavaScript string, each encrypted for its object.
fn encrypted(e: &Encryption) -> Vec<u8> {
    let mut objects = frame();
    objects.extend([
        stream_obj(4, "/Filter /FlateDecode", &e.encrypt(4, &flate(TEXT)), None),
        stream_obj(5, "", &e.encrypt(5, TEXT), None),
        stream_obj(6, "/Type /EmbeddedFile", &e.encrypt(6, TEXT), None),
        obj(
            7,
            format!(
                "<< /S /JavaScript /JS <{}> >>",
                e.encrypt(7, b"app.alert(7);")
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
            .as_bytes(),
        ),
        obj(9, e.dict.as_bytes()),
    ]);
    document_with(&objects, &e.trailer(9))
}

#[test]
fn encrypted_documents_open_with_the_empty_password() {
    for sec in [
        Security::Rc4R2,
        Security::Rc4R3,
        Security::AesR4,
        Security::AesR5,
        Security::AesR6,
    ] {
        let e = Encryption::new(sec, true);
        let c = members(&encrypted(&e));
        assert!(c.problems.is_empty(), "{sec:?}: {:?}", c.problems);
        // A filtered stream is decrypted, then decoded.
        assert!(is(get(&c, "obj 4 0"), TEXT), "{sec:?}: {:?}", sizes(&c));
        // ClamAV scans an unfiltered stream as stored, encrypted.
        let raw = e.encrypt(5, TEXT);
        assert!(is(get(&c, "obj 5 0"), &raw), "{sec:?}: {:?}", sizes(&c));
        let js = get(&c, "obj 7 0").expect("JavaScript");
        assert!(js.starts_with(b"app.alert(7);"), "{sec:?}: {js:?}");
    }
}

#[test]
fn encrypted_documents_that_need_a_password() {
    for sec in [Security::Rc4R3, Security::AesR6] {
        let e = Encryption::new(sec, false);
        let c = members(&encrypted(&e));
        assert!(
            matches!(&c.problems[..], [Problem::Encrypted { .. }, ..]),
            "{sec:?}: {:?}",
            c.problems
        );
        // Scanned as stored: the Flate stream does not inflate.
        let raw = e.encrypt(4, &flate(TEXT));
        assert!(is(get(&c, "obj 4 0"), &raw), "{sec:?}: {:?}", sizes(&c));
    }
}

/// `PDF_DUMP=file:file... cargo test -p aether-formats --test pdf dump --
/// --ignored --nocapture`: each file's members and their sizes, to set
/// beside `clamscan --debug`'s `pdf_extract_obj: extracted N bytes` lines.
#[test]
#[ignore]
fn dump() {
    let paths = std::env::var("PDF_DUMP").expect("PDF_DUMP=file:file...");
    for path in paths.split(':') {
        let pdf = std::fs::read(path).expect("read");
        let c = walked_ok(FileType::Pdf, &pdf).extracted();
        println!("== {path}");
        for (n, d) in &c.members {
            let md5: String = md5::Md5::digest(d)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            println!("{n}: {} bytes {md5}", d.len());
        }
        for p in &c.problems {
            println!("{p:?}");
        }
    }
    let _ = io::stdout().flush();
}

/// `PDF_SAMPLES=dir cargo test -p aether-formats --test pdf samples --
/// --ignored`: writes the encrypted test documents (fuzzing seeds).
#[test]
#[ignore]
fn samples() {
    let dir = std::path::PathBuf::from(std::env::var("PDF_SAMPLES").expect("PDF_SAMPLES=dir"));
    for sec in [
        Security::Rc4R2,
        Security::Rc4R3,
        Security::AesR4,
        Security::AesR5,
        Security::AesR6,
    ] {
        for ok in [true, false] {
            let e = Encryption::new(sec, ok);
            std::fs::write(dir.join(format!("{sec:?}-{ok}.pdf")), encrypted(&e)).expect("write");
        }
    }
}
