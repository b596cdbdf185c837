//! Large pages and texts, whose normalized copies are past what the engine
//! keeps in memory (1 MiB) and are scanned from temporary files: signatures
//! that match only in `notags` near the end (not scanned on a page over
//! `MaxHTMLNoTags`), only in `javascript`, hashes of the copies, and type-7
//! signatures near the end of a long text (with and without a relative
//! offset) must be found as Debian's clamscan finds them, scanning the file
//! and the same bytes in memory.

mod common;

use std::fmt::Write as _;

use aether_formats::normalize::{self, HtmlLimits};
use common::{Rng, compare, corpus, engine, hdb_line, hex, names};

const WORDS: &[&str] = &[
    "Alpha", "bravo", "CHARLIE", "delta", "Echo", "foxtrot", "Golf", "hotel",
];

fn words(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// About `size` bytes of HTML: paragraphs, comments, and a script every few
/// lines, so that each of the three outputs is over a megabyte; the markers
/// come last.
fn big_page(size: usize) -> Vec<u8> {
    let mut rng = Rng(0x51_7cc1_b727_220a);
    let mut p = String::from("<html><head><title>Big</title></head><body>\n");
    let mut i = 0;
    while p.len() < size {
        let _ = writeln!(
            p,
            "<P CLASS='c{i}'>Text {i} &amp; {}</P><!-- comment {i} {} -->",
            words(&mut rng, 10),
            words(&mut rng, 3)
        );
        if i % 2 == 0 {
            let _ = writeln!(
                p,
                "<script>var Value{i} = 'a' + \"b{i}\"; function F{i}(x) {{ return x * {i}; }}</script>"
            );
        }
        i += 1;
    }
    p.push_str("<p>zulu<b>yankee</b>xray whiskey</p>\n");
    p.push_str("<script>var tail = 'qq' + 'zzyy';</script>\n</body></html>\n");
    p.into_bytes()
}

/// About `size` bytes of text with a phrase near its end.
fn big_text(size: usize) -> Vec<u8> {
    let mut rng = Rng(0x2f0b_9d1e_77a3_4c55);
    let mut t = String::new();
    let mut i = 0;
    while t.len() < size {
        let _ = write!(t, "Line {i}:\t{}  \r\n", words(&mut rng, 8));
        i += 1;
    }
    t.push_str("The   LAST Words   of the text\n");
    t.into_bytes()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn large_html_and_text_copies_match_as_clamscan() {
    let page = big_page(6 << 20);
    let out = normalize::normalize_html(&page, HtmlLimits::default());
    assert_eq!(out.limit, None);
    for (name, copy) in [
        ("nocomment", &out.nocomment),
        ("notags", &out.notags),
        ("javascript", &out.javascript),
    ] {
        assert!(copy.len() > 1 << 20, "{name} is {} bytes", copy.len());
    }
    // A phrase only `notags` has (the tags between its words dropped), and
    // one only `javascript` has (the strings joined).
    let at = find(&out.notags, b"zulu").expect("notags has the marker");
    let notags_only = out.notags[at..at + 14].to_vec();
    let js_only = b"\"qqzzyy\"".to_vec();
    for (what, sig, only_in) in [
        ("notags", &notags_only, &out.notags),
        ("javascript", &js_only, &out.javascript),
    ] {
        assert!(find(only_in, sig).is_some(), "{what}");
        for other in [&page, &out.nocomment, &out.notags, &out.javascript] {
            if !std::ptr::eq(other, only_in) {
                assert!(find(other, sig).is_none(), "{what} phrase elsewhere");
            }
        }
    }
    let text = big_text(3 << 20);
    let ndb = format!(
        "Large.NoTags:3:*:{}\nLarge.Js:3:*:{}\nLarge.JsText:7:*:{}\nLarge.Text:7:*:{}\n",
        hex(&notags_only),
        hex(&js_only),
        hex(&js_only),
        hex(b"the last words of the text"),
    );
    let hdb = [
        hdb_line("Large.NoComment.Hash", &out.nocomment),
        hdb_line("Large.NoTags.Hash", &out.notags),
        hdb_line("Large.Js.Hash", &out.javascript),
    ]
    .concat();
    // Over MaxHTMLNoTags (8 MiB), `notags` is not scanned, not even the
    // part before the limit.
    let over = [
        b"<p>zulu<b>yankee</b>xray whiskey</p>\n".as_slice(),
        &big_page(9 << 20),
    ]
    .concat();
    let files = [
        ("big.html", &page),
        ("big.txt", &text),
        ("over.html", &over),
    ];
    let (want, got) = compare(&[("t.ndb", &ndb), ("t.hdb", &hdb)], &files);
    assert_eq!(
        names(&want, "big.html"),
        [
            "Large.Js.Hash.UNOFFICIAL",
            "Large.Js.UNOFFICIAL",
            "Large.JsText.UNOFFICIAL",
            "Large.NoComment.Hash.UNOFFICIAL",
            "Large.NoTags.Hash.UNOFFICIAL",
            "Large.NoTags.UNOFFICIAL",
        ]
    );
    assert_eq!(names(&want, "big.txt"), ["Large.Text.UNOFFICIAL"]);
    assert_eq!(
        names(&want, "over.html"),
        ["Large.Js.UNOFFICIAL", "Large.JsText.UNOFFICIAL"]
    );
    assert_eq!(got, want);

    // The same bytes scanned from memory.
    let c = corpus(&[("t.ndb", &ndb), ("t.hdb", &hdb)], &files);
    let engine = engine(&c.db);
    let mut scanner = engine.scanner();
    let limits = aether_engine::Limits {
        all_match: true,
        ..aether_engine::Limits::default()
    };
    for (name, data) in files {
        let outcome = scanner.scan_bytes(data, &limits).expect("scans");
        let mut found: Vec<String> = outcome.detections.into_iter().map(|d| d.name).collect();
        found.sort();
        assert_eq!(found, names(&want, name), "{name} in memory");
    }
    // Without --allmatch: the first copy with a match ends the scan.
    let first = aether_engine::Limits::default();
    let file = std::fs::File::open(&c.files[0]).expect("open");
    let outcome = scanner.scan_file(&file, &first).expect("scans");
    assert_eq!(outcome.detections.len(), 1);
}

/// With a type-7 signature at a relative offset ClamAV normalizes text into
/// blocks written to a file, scanned whole: an `EOF-n` signature near the
/// end of a long text must land on the same bytes.
#[test]
fn large_text_blocks_match_as_clamscan() {
    let text = big_text(3 << 20);
    let ndb = format!(
        "Large.Eof:7:EOF-27:{}\nLarge.Far:7:EOF-20:{}\n",
        hex(b"the last words"),
        hex(b"line 0:"),
    );
    let (want, got) = compare(&[("t.ndb", &ndb)], &[("big.txt", &text)]);
    assert_eq!(names(&want, "big.txt"), ["Large.Eof.UNOFFICIAL"]);
    assert_eq!(got, want);
}
