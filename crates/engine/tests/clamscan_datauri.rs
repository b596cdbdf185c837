//! `data:` URIs in HTML pages: the engine must report what Debian's
//! clamscan 1.4.6 reports with `--allmatch`, file by file, on clam.exe.html
//! and on pages built here (base64 and percent-encoded URIs, quoted and
//! not, in links and images, several per page, a zip inside a URI, one cut
//! by the end of the page, text whose HTML tag comes after its first KiB,
//! pages with none), with `.ndb` markers that exist
//! only once a URI is decoded and `.hdb` hashes of decoded payloads.

mod common;
mod exe_common;
#[path = "../../formats/tests/mail_common/mod.rs"]
mod mail_common;

use std::fmt::Write as _;

use common::{compare, hdb_line, hex};
use exe_common::stored_zip;
use mail_common::base64;

fn marker(tag: &str) -> Vec<u8> {
    format!("<<aether-datauri-marker-{tag}>>").into_bytes()
}

/// A payload: binary bytes around a marker (so that it is typed binary).
fn payload(tag: &str) -> Vec<u8> {
    let mut p = b"\x00\x01\x02\x03binary payload \xff\xfe ".to_vec();
    p.extend_from_slice(&marker(tag));
    p.extend_from_slice(b" end\x00\x00");
    p
}

fn percent(data: &[u8]) -> String {
    data.iter().fold(String::new(), |mut s, b| {
        if b.is_ascii_alphanumeric() {
            s.push(char::from(*b));
        } else {
            let _ = write!(s, "%{b:02X}");
        }
        s
    })
}

fn page(body: &str) -> Vec<u8> {
    format!("<html><head><title>t</title></head><body>\n{body}\n</body></html>\n").into_bytes()
}

#[test]
fn data_uris_as_clamscan_scans_them() {
    let tags = [
        "b64", "img", "pct", "multi1", "multi2", "single", "unq", "cut", "zip",
    ];
    let mut ndb = String::new();
    for t in tags {
        let _ = writeln!(ndb, "DataUri.Marker.{t}:0:*:{}", hex(&marker(t)));
    }
    let hashed = payload("b64");
    let clam_exe = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clamav-testfiles");
    let hdb = hdb_line("DataUri.Payload.Hash", &hashed) + &hdb_line("DataUri.ClamExe", &clam_exe);
    let b64 = |t: &str| base64(&payload(t)).replace('\n', "");
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "clam.exe.html",
            std::fs::read("/usr/share/clamav-testfiles/clam.exe.html").expect("clamav-testfiles"),
        ),
        (
            "b64.html",
            page(&format!(
                "<a href=\"data:application/octet-stream;base64,{}\">x</a>",
                b64("b64")
            )),
        ),
        (
            "img.html",
            page(&format!(
                "<img src=\"data:image/png;base64,{}\">",
                b64("img")
            )),
        ),
        (
            "pct.html",
            page(&format!(
                "<a href=\"data:text/plain,{}\">x</a>",
                percent(&payload("pct"))
            )),
        ),
        (
            "multi.html",
            page(&format!(
                "<a href=\"data:;base64,{}\">1</a> text <img src=\"data:;base64,{}\">",
                b64("multi1"),
                b64("multi2")
            )),
        ),
        (
            "single.html",
            page(&format!("<a href='data:;base64,{}'>x</a>", b64("single"))),
        ),
        (
            "unq.html",
            page(&format!("<a href=data:;base64,{} >x</a>", b64("unq"))),
        ),
        (
            "cut.html",
            format!("<html><body><a href=\"data:;base64,{}", b64("cut")).into_bytes(),
        ),
        (
            "zip.html",
            page(&format!(
                "<a href=\"data:application/zip;base64,{}\">z</a>",
                base64(&stored_zip(&[("inner.bin", &payload("zip"))])).replace('\n', "")
            )),
        ),
        (
            // Text to the type table (its tag is past the first KiB), which
            // ClamAV's raw scan then finds to be HTML.
            "late.txt",
            format!(
                "{}<html><a href=\"data:;base64,{}\">x</a></html>\n",
                "plain words first. ".repeat(100),
                b64("late")
            )
            .into_bytes(),
        ),
        (
            "plain.html",
            page("<a href=\"https://example.org/data:;base64,AAAA\">no uri</a>"),
        ),
    ];
    let (want, got) = compare(
        &[
            ("markers.ndb", ndb.as_str()),
            ("payloads.hdb", hdb.as_str()),
        ],
        &files,
    );
    assert_eq!(got, want, "aether (left) vs clamscan (right)");
    // Each page holds what it was built with, so the comparison means
    // something: every marker and both hashes are found by clamscan.
    let all: Vec<&String> = want.values().flatten().collect();
    for t in tags {
        assert!(
            all.iter()
                .any(|n| n.starts_with(&format!("DataUri.Marker.{t}"))),
            "{t}: {want:?}"
        );
    }
    assert!(
        want["clam.exe.html"]
            .iter()
            .any(|n| n.starts_with("DataUri.ClamExe"))
    );
    assert!(
        want["b64.html"]
            .iter()
            .any(|n| n.starts_with("DataUri.Payload.Hash"))
    );
    assert!(!want.contains_key("plain.html"));
}
