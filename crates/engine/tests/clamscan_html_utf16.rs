//! HTML in UTF-16: ClamAV types UTF-16LE pages `CL_TYPE_HTML_UTF16` and
//! scans the ASCII it makes of them as HTML; UTF-16BE pages with a
//! byte-order mark are plain HTML to it. The engine must report what
//! Debian's clamscan 1.4.6 reports with `--allmatch` for HTML-target
//! signatures (only in normalized copies), generic signatures on the raw
//! UTF-16 bytes, whole-file hashes, and a `data:` URI inside such a page.

mod common;
#[path = "../../formats/tests/mail_common/mod.rs"]
mod mail_common;

use std::fmt::Write as _;

use common::{compare, hdb_line, hex};

fn le(s: &str) -> Vec<u8> {
    s.bytes().flat_map(|b| [b, 0]).collect()
}

fn be(s: &str) -> Vec<u8> {
    s.bytes().flat_map(|b| [0, b]).collect()
}

#[test]
fn utf16_pages_as_clamscan_scans_them() {
    let payload = b"\x00\x01binary payload <<utf16-datauri-marker>> end\x00";
    let page = |tag: &str| {
        format!(
            "<HTML><Body><P>Some Text {tag}-HTML-MARKER</P>\
             <script>var x = \"{tag}-js\";</script>\
             <a href=\"data:;base64,{}\">x</a></Body></HTML>\n",
            mail_common::base64(payload).replace('\n', "")
        )
    };
    let mut le_marked = b"\xff\xfe".to_vec();
    le_marked.extend(le(&page("lemark")));
    let mut be_marked = b"\xfe\xff".to_vec();
    be_marked.extend(be(&page("bemark")));
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("le.html", le(&page("le"))),
        ("le-bom.html", le_marked),
        ("be-bom.html", be_marked),
        ("be-nobom.txt", be(&page("benobom"))),
        ("ascii.html", page("ascii").into_bytes()),
    ];
    let mut ndb = String::new();
    for tag in ["le", "lemark", "bemark", "benobom", "ascii"] {
        // Normalized HTML is lower-cased: only a normalized copy has this.
        let _ = writeln!(
            ndb,
            "Html.{tag}:3:*:{}",
            hex(format!("{tag}-html-marker").as_bytes())
        );
        // The raw UTF-16 bytes, for generic signatures.
        let _ = writeln!(
            ndb,
            "RawLe.{tag}:0:*:{}",
            hex(&le(&format!("{tag}-HTML-MARKER")))
        );
    }
    let _ = writeln!(
        ndb,
        "DataUri.Marker:0:*:{}",
        hex(b"<<utf16-datauri-marker>>")
    );
    let hdb: String = files
        .iter()
        .map(|(name, data)| hdb_line(&format!("Hash.{name}"), data))
        .collect();
    let (want, got) = compare(
        &[("markers.ndb", ndb.as_str()), ("files.hdb", hdb.as_str())],
        &files,
    );
    assert_eq!(got, want, "aether (left) vs clamscan (right)");
    let has = |f: &str, n: &str| {
        want.get(f)
            .is_some_and(|s| s.iter().any(|d| d.starts_with(n)))
    };
    // The UTF-16LE pages are scanned as HTML, and their data: URI opened.
    assert!(has("le.html", "Html.le.") && has("le-bom.html", "Html.lemark"));
    assert!(has("le.html", "DataUri.Marker") && has("le.html", "RawLe.le."));
    assert!(has("be-bom.html", "Html.bemark"));
}
