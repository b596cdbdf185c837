//! Target-type 3 (HTML) and 7 (text) signatures, matched as Debian's
//! clamscan 1.4.6 matches them: against the normalized copies of a file,
//! not its raw bytes.
//!
//! HTML pages (upper-case tags, comments, entities, scripts with variables,
//! string concatenation and `unescape`, links) and text files (mixed case,
//! runs of white space, form feeds and UTF-8; one of 400 KB, past
//! ClamAV's 128 KiB buffer) are generated from a fixed seed. Signatures are
//! cut from what `aether_formats::normalize` makes of them (`nocomment`,
//! `notags`, `javascript`, normalized text) and from the raw bytes, each
//! written for target types 0, 3 and 7, plus logical signatures with
//! `Target:3` and `Target:7` and files of 5 bytes or less. clamscan
//! `--allmatch` and the engine must report the same names for every file,
//! the files also inside a zip.

mod common;
#[path = "exe_common/mod.rs"]
mod exe_common;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use aether_formats::normalize::{self, HtmlLimits};
use common::{Rng, aether, clamscan, engine};
use md5::Digest as _;

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

const WORDS: &[&str] = &[
    "Alpha", "bravo", "CHARLIE", "delta", "Echo", "foxtrot", "Golf", "hotel", "INDIA", "juliet",
    "kilo", "Lima", "mike", "November", "oscar", "PAPA", "quebec", "Romeo",
];

fn words(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(if rng.below(3) == 0 { "   " } else { " " })
}

fn page(k: usize, rng: &mut Rng) -> Vec<u8> {
    let mut p = String::new();
    let _ = write!(
        p,
        "<HTML><HEAD><TITLE>Page {k} {}</TITLE>\n<!-- hidden COMMENT {k} {} -->\n",
        words(rng, 2),
        words(rng, 3)
    );
    if k % 3 != 2 {
        let _ = write!(
            p,
            "<SCRIPT language=\"javascript\">\nvar Counter{k} = 'Val' + \"ue{k}\";\n\
             function Compute{k}(first, second) {{ var total = first * second; return total + Counter{k}; }}\n\
             document.write(unescape(\"%48%65llo%20{k}\"));\n// a comment {}\n</SCRIPT>\n",
            words(rng, 2)
        );
    }
    let _ = write!(
        p,
        "</HEAD>\n<BODY BGCOLOR=\"White\">\n<P>Hello &amp; welcome to   <B>page {k}</B> &#65;&#66;&#x43; {}</P>\n\
         <A HREF=\"http://Example.com/{k}/{}\">a link</A>\n<IMG SRC='pic{k}.png'>\n<p>{}</p>\n</BODY></HTML>\n",
        words(rng, 8),
        WORDS[k % WORDS.len()],
        words(rng, 12 + (k % 5) * 20)
    );
    p.into_bytes()
}

fn text(k: usize, rng: &mut Rng, lines: usize) -> Vec<u8> {
    let mut t = Vec::new();
    for i in 0..lines {
        t.extend_from_slice(format!("Line {i} of text {k}:\t{}  \r\n", words(rng, 6)).as_bytes());
        if i % 7 == 3 {
            // Bytes that normalization drops (a form feed, non-ASCII).
            t.extend_from_slice(b"\x0c caf\xc3\xa9 \xe2\x82\xac ");
        }
    }
    t
}

/// A window of `len` bytes of `data` at a random place, if it has one.
fn window(rng: &mut Rng, data: &[u8], len: usize) -> Option<Vec<u8>> {
    if data.len() < len {
        return None;
    }
    let at = rng.below((data.len() - len + 1) as u64) as usize;
    Some(data[at..at + len].to_vec())
}

#[derive(Default)]
struct Db {
    ndb: String,
    ldb: String,
}

impl Db {
    /// A body signature for each of `targets` with `pattern`.
    fn body(&mut self, name: &str, targets: &[u8], pattern: &[u8]) {
        for t in targets {
            let _ = writeln!(self.ndb, "{name}_T{t}:{t}:*:{}", hex(pattern));
        }
    }
}

#[test]
fn normalized_text_signatures_match_clamscan() {
    check(false);
}

/// With a type-7 signature at `EOF-n`, ClamAV cuts normalized text into
/// blocks normalized afresh instead of overlapping buffers.
#[test]
fn normalized_text_with_relative_offsets_matches_clamscan() {
    check(true);
}

fn check(relative: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let files_dir = dir.path().join("files");
    std::fs::create_dir(&files_dir).expect("files dir");
    let mut rng = Rng(0x7e57_0003);
    let mut db = Db::default();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();

    for k in 0..12 {
        let html = page(k, &mut rng);
        let out = normalize::normalize_html(&html, HtmlLimits::default());
        for (what, buf) in [
            ("NC", &out.nocomment),
            ("NT", &out.notags),
            ("JS", &out.javascript),
        ] {
            for n in 0..3 {
                if let Some(w) = window(&mut rng, buf, 12) {
                    db.body(&format!("H{k}_{what}{n}"), &[0, 3, 7], &w);
                }
            }
        }
        // Raw bytes that normalization changes: upper-case tags, comments.
        db.body(&format!("H{k}_RAW"), &[0, 3, 7], b"<HTML><HEAD><TITLE>Page");
        db.body(&format!("H{k}_COMMENT"), &[0, 3], b"hidden COMMENT");
        if let (Some(a), Some(b)) = (
            window(&mut rng, &out.nocomment, 8),
            window(&mut rng, &out.notags, 8),
        ) {
            let _ = writeln!(
                db.ldb,
                "H{k}_LDB3;Engine:51-255,Target:3;0&1;{};{}",
                hex(&a),
                hex(&b)
            );
            let _ = writeln!(
                db.ldb,
                "H{k}_LDB0;Engine:51-255,Target:0;0&1;{};{}",
                hex(&a),
                hex(&b)
            );
        }
        if let Some(j) = window(&mut rng, &out.javascript, 10) {
            let _ = writeln!(db.ldb, "H{k}_LDB7;Engine:51-255,Target:7;0;{}", hex(&j));
        }
        files.push((format!("page{k}.html"), html));
    }
    for k in 0..8 {
        let lines = if k == 7 { 8_000 } else { 20 + k * 15 };
        let t = text(k, &mut rng, lines);
        let (norm, _) = normalize::ascii::normalize(&t, usize::MAX);
        for n in 0..4 {
            if let Some(w) = window(&mut rng, &norm, 14) {
                db.body(&format!("X{k}_N{n}"), &[0, 3, 7], &w);
            }
        }
        if let Some(w) = window(&mut rng, &t, 14) {
            db.body(&format!("X{k}_RAW"), &[0, 7], &w);
        }
        if relative && let Some(tail) = norm.get(norm.len().saturating_sub(10)..) {
            let _ = writeln!(db.ndb, "X{k}_EOF:7:EOF-10:{}", hex(tail));
        }
        db.body(
            &format!("X{k}_LINE"),
            &[0, 7],
            format!("Line 1 of text {k}").as_bytes(),
        );
        if let (Some(a), Some(b)) = (window(&mut rng, &norm, 9), window(&mut rng, &norm, 9)) {
            let _ = writeln!(
                db.ldb,
                "X{k}_LDB7;Engine:51-255,Target:7;0&1;{};{}",
                hex(&a),
                hex(&b)
            );
        }
        files.push((format!("text{k}.txt"), t));
    }
    // HTML tags past the head that typed the file: ClamAV scans text (ASCII
    // or UTF-8, which is ASCII to it) and GIF images holding one as HTML
    // instead of as text.
    let filler = words(&mut rng, 400);
    let late_tail = "<b>Bold</B> words <SCRIPT>var Late = 'Sec' + 'ret'; function \
                     LateFn(a) { return a * 2; }</SCRIPT> and <i>Italic</i> TAIL";
    let late = format!("{filler}\n{late_tail}\n").into_bytes();
    let late_utf8 = format!("caf\u{e9} {filler}\n{late_tail}\n").into_bytes();
    let anchor = format!("{filler}\n<a class=x\nlink to HREF=\"Y\">there</a> END\n").into_bytes();
    let mut gif = b"GIF89a\x10\x00\x10\x00\x80\x00\x00".to_vec();
    gif.extend_from_slice(&[0xff, 0x00, 0x7f, 0x01, 0x02].repeat(60));
    gif.extend_from_slice(late_tail.as_bytes());
    for (k, (name, data)) in [
        ("late.txt", late),
        ("late-utf8.txt", late_utf8),
        ("anchor.txt", anchor),
        ("late.gif", gif),
    ]
    .into_iter()
    .enumerate()
    {
        let out = normalize::normalize_html(&data, HtmlLimits::default());
        let (norm, _) = normalize::ascii::normalize(&data, usize::MAX);
        for (what, buf) in [
            ("NC", &out.nocomment),
            ("NT", &out.notags),
            ("JS", &out.javascript),
            ("N", &norm),
        ] {
            // The end of each copy: where the late tags are.
            if let Some(w) = buf
                .len()
                .checked_sub(40)
                .and_then(|at| buf.get(at..at + 12))
            {
                db.body(&format!("L{k}_{what}"), &[0, 3, 7], w);
            }
        }
        files.push((name.to_string(), data));
    }
    // Files of 5 bytes or less are not scanned at all; 6 bytes are.
    db.body("SMALL5", &[0, 7], b"vwxyz");
    db.body("SMALL6", &[0, 7], b"abcdef");
    files.push(("small5.txt".into(), b"vwxyz".to_vec()));
    files.push(("small6.txt".into(), b"abcdef".to_vec()));
    // Both kinds inside a zip.
    let zip = {
        let members: Vec<(&str, &[u8])> = files
            .iter()
            .filter(|(n, _)| n == "page0.html" || n == "text1.txt")
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        exe_common::stored_zip(&members)
    };
    files.push(("both.zip".into(), zip));

    let mut paths = Vec::new();
    for (name, data) in &files {
        let p = files_dir.join(name);
        std::fs::write(&p, data).expect("write");
        paths.push(p);
    }
    // Hashes of normalized copies: ClamAV checks those it writes to files
    // (the HTML outputs, the text blocks when a type-7 signature has a
    // relative offset), as any file.
    let mut hdb = String::new();
    let page0 = normalize::normalize_html(&files[0].1, HtmlLimits::default());
    for (what, buf) in [
        ("NC", &page0.nocomment),
        ("NT", &page0.notags),
        ("JS", &page0.javascript),
    ] {
        let _ = writeln!(
            hdb,
            "{}:{}:HASH_{what}",
            hex(&md5::Md5::digest(buf)),
            buf.len()
        );
    }
    let text0 = &files
        .iter()
        .find(|(n, _)| n == "text0.txt")
        .expect("text0")
        .1;
    let norm0 = normalize::ascii::normalize(text0, usize::MAX).0;
    let _ = writeln!(
        hdb,
        "{}:{}:HASH_TEXT",
        hex(&md5::Md5::digest(&norm0)),
        norm0.len()
    );
    // `FileSize` compares the copy's size where ClamAV writes it to a file,
    // the text file's own where it matches buffers in memory.
    let sized = |name: &str, target: u8, size: usize, pattern: &[u8]| {
        format!(
            "{name};Engine:51-255,Target:{target},FileSize:{size}-{size};0;{}\n",
            hex(pattern)
        )
    };
    let raw0 = &files[0].1;
    db.ldb += &sized("FS_NC", 3, page0.nocomment.len(), &page0.nocomment[..12]);
    db.ldb += &sized("FS_HTML", 3, raw0.len(), &page0.nocomment[..12]);
    db.ldb += &sized("FS_TEXT", 7, text0.len(), &norm0[..12]);
    db.ldb += &sized("FS_NORM", 7, norm0.len(), &norm0[..12]);
    let dbdir = dir.path().join("db");
    std::fs::create_dir(&dbdir).expect("db dir");
    std::fs::write(dbdir.join("norm.hdb"), &hdb).expect("hdb");
    std::fs::write(dbdir.join("text.ndb"), &db.ndb).expect("ndb");
    std::fs::write(dbdir.join("text.ldb"), &db.ldb).expect("ldb");

    let want = clamscan(&dbdir, &paths);
    let got = aether(&engine(&dbdir), &paths);
    let names: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    let mut diffs = Vec::new();
    for f in names {
        let w = want.get(f).cloned().unwrap_or_default();
        let g = got.get(f).cloned().unwrap_or_default();
        if w != g {
            let missing: Vec<_> = w.difference(&g).collect();
            let extra: Vec<_> = g.difference(&w).collect();
            diffs.push(format!("{f}: aether lacks {missing:?}, adds {extra:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} files differ (kept at {}):\n{}",
        diffs.len(),
        dir.keep().display(),
        diffs.join("\n")
    );

    // What clamscan reported must cover every buffer and target type, and
    // none of what raw HTML alone holds.
    let all: BTreeSet<&String> = want.values().flatten().collect();
    eprintln!("{} files, {} distinct detections", paths.len(), all.len());
    for kind in [
        "_NC0_T0", "_NC0_T3", "_NT0_T3", "_JS0_T3", "_JS0_T7", "_N0_T7", "_N0_T0", "_RAW_T0",
        "_LDB3", "_LDB0", "_LDB7", "SMALL6",
    ]
    .into_iter()
    .chain(relative.then_some("X0_EOF"))
    .chain(["HASH_NC", "HASH_NT", "HASH_JS"])
    {
        assert!(
            all.iter().any(|n| n.contains(kind)),
            "clamscan reported no {kind} signature"
        );
    }
    // (The zip stores its members as they are: its own raw bytes hold them.)
    let unzipped: BTreeSet<&String> = want
        .iter()
        .filter(|(f, _)| f.as_str() != "both.zip")
        .flat_map(|(_, names)| names)
        .collect();
    let hash_text = all.iter().any(|n| n.contains("HASH_TEXT"));
    assert_eq!(hash_text, relative, "normalized text hashed");
    let has = |n: &str| all.iter().any(|x| x.starts_with(n));
    assert!(has("FS_NC") && !has("FS_HTML"), "{all:?}");
    assert_eq!((has("FS_TEXT"), has("FS_NORM")), (!relative, relative));
    for never in ["_RAW_T3", "H0_RAW", "H5_COMMENT", "SMALL5", "X0_LINE_T7"] {
        assert!(
            !unzipped.iter().any(|n| n.contains(never)),
            "clamscan reported {never}"
        );
    }
    // Late HTML tags: scanned as HTML (text, UTF-8 text, GIF).
    for (f, tag) in [
        ("late.txt", "L0"),
        ("late-utf8.txt", "L1"),
        ("late.gif", "L3"),
    ] {
        let names = want.get(f).cloned().unwrap_or_default();
        assert!(
            names.iter().any(|n| n.starts_with(&format!("{tag}_NC_T3"))),
            "{f}: {names:?}"
        );
    }
    let zipped = want.get("both.zip").cloned().unwrap_or_default();
    assert!(
        zipped.iter().any(|n| n.starts_with("H0_NC"))
            && zipped
                .iter()
                .any(|n| n.starts_with("X1_N") && n.contains("_T7")),
        "{zipped:?}"
    );
}
