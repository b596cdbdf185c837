//! The normalizers are fed files a window at a time
//! (`normalize::read_windows`), never whole: what they produce must not
//! depend on where the input is cut. Real pages (Debian's clamav test page,
//! HTML documentation installed on the machine) and generated ones (scripts,
//! comments, entities, `JScript.Encode` markers, `data:` URIs, NULs, several
//! of ClamAV's 8 KiB chunks) are fed whole and in pieces of random sizes;
//! every output, `data:` URI file and limit must be the same, and
//! `HtmlTagProbe` must agree with `has_html_tag`.

use std::path::{Path, PathBuf};

use aether_formats::normalize::ascii::{AsciiNormalizer, ScriptBuffers};
use aether_formats::normalize::{
    HtmlLimits, HtmlNormalizer, HtmlOutput, HtmlSink, HtmlTagProbe, WINDOW, has_html_tag,
    read_windows,
};

/// xorshift64: the same pieces on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `page` cut at random places: mostly small pieces, some large ones.
fn pieces<'a>(page: &'a [u8], rng: &mut Rng) -> Vec<&'a [u8]> {
    let mut rest = page;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let n = match rng.below(4) {
            0 => 1 + rng.below(16),
            1 => 1 + rng.below(9000),
            2 => 8190 + rng.below(4),
            _ => 1 + rng.below(70_000),
        } as usize;
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}

/// Everything the normalizer hands over, `data:` URI files included.
#[derive(Debug, Default, PartialEq, Eq)]
struct All {
    out: HtmlOutput,
    uris: Vec<Vec<u8>>,
}

impl HtmlSink for All {
    fn nocomment(&mut self, data: &[u8]) {
        self.out.nocomment(data);
    }
    fn notags(&mut self, data: &[u8]) {
        self.out.notags(data);
    }
    fn javascript(&mut self, data: &[u8]) {
        self.out.javascript(data);
    }
    fn data_uri(&mut self, file: &[u8]) {
        self.uris.push(file.to_vec());
    }
}

fn normalized<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> All {
    let mut all = All::default();
    let mut n = HtmlNormalizer::new(HtmlLimits::default());
    for p in parts {
        n.feed(p, &mut all);
    }
    all.out.limit = n.finish(&mut all);
    all
}

/// Up to a dozen HTML pages of the machine's documentation, by path, and
/// Debian's clamav test page: real markup nobody wrote for these tests.
fn real_pages() -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "html" || e == "htm") {
                out.push(p);
            }
        }
    }
    let mut paths = vec![PathBuf::from("/usr/share/clamav-testfiles/clam.exe.html")];
    let mut docs = Vec::new();
    walk(Path::new("/usr/share/doc"), &mut docs);
    paths.extend(docs.into_iter().take(12));
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|d| (p, d)))
        .filter(|(_, d)| d.len() <= 4 << 20)
        .collect()
}

fn generated_pages() -> Vec<(PathBuf, Vec<u8>)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let bits: &[&[u8]] = &[
        b"<p class='x'>Some TEXT &amp; more&#65;&#x42;&nbsp;",
        b"<!-- a comment with <b>tags</b> -->",
        b"<SCRIPT language=\"javascript\">var Alpha = 'a' + \"b\"; document.write(unescape('%41%42'));</SCRIPT>\n",
        b"<script>function f(first, second) { return first * second; }\n// comment\n</script>",
        b"<a href=\"http://example.com/Path\">link</a><img src='x.png'>",
        b"<a href=\"data:text/plain;base64,SGVsbG8=\">d</a>",
        b"<img src=\"data:image/png,%41%42&#67;\">",
        b"<script language=\"jscript.encode\">#@~^CAAAAA==@#@&x=1;@#@&VwMAAA==^#~@</script>",
        b"<style>p { color: red }</style>",
        b"\r\n\t   \n",
        b"\0\0\0",
        b"\xe3\x80\x82\xa1\x43\xc3\xa9",
        b"<div data-x=\"1\" onclick='alert(\"x\")'>",
        b"<!DOCTYPE html>",
        b"<",
        b"&",
        b"'\"",
    ];
    let mut pages = Vec::new();
    for (k, size) in [3_000usize, 20_000, 120_000, 400_000]
        .into_iter()
        .enumerate()
    {
        let mut page = b"<html><head>".to_vec();
        while page.len() < size {
            page.extend_from_slice(bits[rng.below(bits.len() as u64) as usize]);
            // Long runs without white space move ClamAV's chunk cuts.
            if rng.below(5) == 0 {
                let n = rng.below(9000) as usize;
                page.extend(std::iter::repeat_n(b'w', n));
            }
        }
        pages.push((PathBuf::from(format!("generated-{k}")), page));
    }
    pages
}

#[test]
fn html_outputs_do_not_depend_on_the_pieces() {
    let mut pages = real_pages();
    let real = pages.len();
    pages.extend(generated_pages());
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut uris = 0;
    for (path, page) in &pages {
        let whole = normalized([page.as_slice()]);
        uris += whole.uris.len();
        for round in 0..6 {
            let got = normalized(pieces(page, &mut rng));
            assert!(got == whole, "{} round {round}", path.display());
        }
        // As the scanner feeds a file.
        let mut windows = All::default();
        let mut n = HtmlNormalizer::new(HtmlLimits::default());
        read_windows(&page.as_slice(), page.len() as u64, &mut |w| {
            assert!(w.len() <= WINDOW);
            n.feed(w, &mut windows);
            true
        })
        .expect("reads");
        windows.out.limit = n.finish(&mut windows);
        assert!(windows == whole, "{} in windows", path.display());
    }
    assert!(real >= 1, "Debian's clamav-testfiles page is missing");
    assert!(uris > 0, "no page had a data: URI");
}

#[test]
fn tag_probe_agrees_with_the_whole_input() {
    let mut inputs: Vec<Vec<u8>> = [
        b"plain text, a < b".as_slice(),
        b"text... <SCRIPT>x</script>",
        b"<Img/src=x>",
        b"<!DOCTYPE HTML>",
        b"<!DOCTYPE HTM",
        b"see <a  class=x HREF=y>",
        b"<a> and href= later",
        b"href= before <a ",
        b"<a href=",
        b"<a hre",
        b"<html",
        b"<head\x0b>",
        b"<a <a <a href",
        b"",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    // Tags far from the start, and an `<a ` far before its `href=`.
    let filler = vec![b'x'; 200_000];
    for (head, tail) in [
        (b"".as_slice(), b"<table>".as_slice()),
        (b"<a ", b"HREF="),
        (b"<a ", b"href"),
        (b"href= ", b"<a "),
        (b"", b"<!doctype html"),
        (b"", b"<!doctype html>"),
    ] {
        inputs.push([head, &filler, tail].concat());
    }
    inputs.extend(real_pages().into_iter().map(|(_, d)| d));
    let mut rng = Rng(7);
    for input in &inputs {
        let want = has_html_tag(input);
        for round in 0..20 {
            let mut probe = HtmlTagProbe::new();
            for p in pieces(input, &mut rng) {
                probe.feed(p);
            }
            assert_eq!(
                probe.finish(),
                want,
                "{:?} round {round}",
                String::from_utf8_lossy(&input[..input.len().min(40)])
            );
        }
    }
}

#[test]
fn ascii_buffers_do_not_depend_on_the_pieces() {
    let mut text = Vec::new();
    let mut rng = Rng(99);
    while text.len() < 600_000 {
        let b = match rng.below(10) {
            0 => b' ',
            1 => b'\n',
            2 => 0x80 | rng.below(128) as u8,
            3 => b'A' + rng.below(26) as u8,
            _ => b'a' + rng.below(26) as u8,
        };
        text.push(b);
    }
    let run = |parts: Vec<&[u8]>| {
        let mut out = Vec::new();
        let mut sb = ScriptBuffers::new(37);
        for p in parts {
            sb.feed(p, &mut |b: &[u8]| out.extend_from_slice(b));
        }
        sb.finish(&mut |b: &[u8]| out.extend_from_slice(b));
        out
    };
    let whole = run(vec![&text]);
    for _ in 0..4 {
        assert_eq!(run(pieces(&text, &mut rng)), whole);
    }
    let mut plain = Vec::new();
    AsciiNormalizer::new().feed(&text, &mut plain, usize::MAX);
    assert!(whole.len() > plain.len());
}
