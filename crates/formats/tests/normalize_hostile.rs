//! Hostile inputs for the text normalizers: megabytes of the bytes that open
//! a state (`<`, `&#`, `<!--`, quotes, markers, NULs, high bytes) must be
//! normalized in time linear in the input, with outputs bounded, and the
//! size limits must be reported.

use std::time::{Duration, Instant};

use aether_formats::normalize::ascii::{self, AsciiNormalizer};
use aether_formats::normalize::{
    HtmlLimits, HtmlNormalizer, HtmlOutput, HtmlSink, LimitHit, normalize_html,
};

const MB: usize = 1 << 20;

fn repeat(unit: &[u8], total: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(total + unit.len());
    while v.len() < total {
        v.extend_from_slice(unit);
    }
    v
}

/// A bound no linear pass misses, even unoptimized on a loaded machine, and
/// that a quadratic one (10^12 steps on these inputs) could not meet.
const SLOW: Duration = Duration::from_secs(20);

/// Packer functions with names of their own: for each, ClamAV scans the
/// rest of the script for its calls. (The `;` matters: without it, the end
/// of one function hides the next from ClamAV's decoder.)
fn packer_sites() -> Vec<u8> {
    let mut v = b"<script>".to_vec();
    let mut i = 0;
    while v.len() < MB / 2 {
        v.extend_from_slice(format!("function P{i}(p,a,c,k,e,r){{}};").as_bytes());
        i += 1;
    }
    for j in 0..i {
        v.extend_from_slice(format!("P{j}('0',1,1,'x'.split('|'),0,{{}});").as_bytes());
    }
    v
}

fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = vec![
        ("lt", repeat(b"<", MB)),
        ("charref", repeat(b"&#", MB)),
        ("charref-digits", repeat(b"&#9999999999999999999999", MB)),
        ("hexref", repeat(b"&#x", MB)),
        ("amp", repeat(b"&", MB)),
        ("entity-unterminated", repeat(b"&amp", MB)),
        ("entity-long", [b"&".as_slice(), &repeat(b"a", MB)].concat()),
        ("comment-open", repeat(b"<!--", MB)),
        ("nul", vec![0u8; MB]),
        ("high", repeat(b"\x80", MB)),
        ("dots", repeat(b"\xa1\x43\xe3\x80\x82", MB)),
        (
            "quotes",
            [b"<a href='".as_slice(), &repeat(b"'\"\\", MB)].concat(),
        ),
        (
            "many-args",
            [b"<script ".as_slice(), &repeat(b"a=b ", MB)].concat(),
        ),
        (
            "many-bare-args",
            [b"<a ".as_slice(), &repeat(b"x ", MB)].concat(),
        ),
        (
            "huge-arg",
            [b"<a href=\"".as_slice(), &repeat(b"x", MB)].concat(),
        ),
        ("huge-tag", [b"<".as_slice(), &repeat(b"t", MB)].concat()),
        ("nested", repeat(b"<div>", MB)),
        (
            "script-body",
            [b"<script>".as_slice(), &repeat(b"x", MB)].concat(),
        ),
        ("script-tags", repeat(b"<script></script>", MB)),
        ("style-split", repeat(b"<style></sty", MB)),
        (
            "screnc-markers",
            [
                b"<script language=jscript.encode>".as_slice(),
                &repeat(b"#@~^AAAAAA==", MB),
            ]
            .concat(),
        ),
        (
            "screnc-long",
            [
                b"<script language=jscript.encode>#@~^//////==".as_slice(),
                &repeat(b"@#", MB),
            ]
            .concat(),
        ),
        (
            "screnc-lookfor",
            repeat(b"<%@ language=jscript.encode %>#@~^CAAAAA==", MB),
        ),
        ("data-uri", repeat(b"<img src=\"data:text/plain,%41%4", MB)),
        (
            "data-uri-open",
            [b"<img src=data:,".as_slice(), &repeat(b"%", MB)].concat(),
        ),
        ("no-space", repeat(b"q", 3 * MB)),
        (
            "js-nested-functions",
            [
                b"<script>".as_slice(),
                &repeat(b"function(){", MB / 2),
                &repeat(b"a;", MB / 2),
            ]
            .concat(),
        ),
        (
            "js-tokens",
            [b"<script>".as_slice(), &repeat(b"(", MB)].concat(),
        ),
        (
            "js-strings",
            [b"<script>".as_slice(), &repeat(b"'a'+", MB)].concat(),
        ),
        (
            "js-vars",
            [b"<script>".as_slice(), &repeat(b"var a,b=c;", MB)].concat(),
        ),
        ("js-packer-sites", packer_sites()),
        (
            "js-comment",
            [b"<script>/*".as_slice(), &repeat(b"*", MB)].concat(),
        ),
        (
            "js-eval",
            [
                b"<script>".as_slice(),
                &repeat(b"eval('eval(\\'x\\')');", MB),
            ]
            .concat(),
        ),
        ("spaces", repeat(b" \t\r\n\x0b\x0c", MB)),
    ];
    // A mix of all of them, cut by NULs.
    let mut mix = Vec::new();
    let units: Vec<Vec<u8>> = v
        .iter()
        .map(|(_, d)| d[..64.min(d.len())].to_vec())
        .collect();
    let mut i = 0;
    while mix.len() < 2 * MB {
        mix.extend_from_slice(&units[i % units.len()]);
        mix.push(0);
        i += 7;
    }
    v.push(("mix", mix));
    v
}

#[test]
fn html_hostile_inputs_are_linear_and_bounded() {
    for (name, input) in hostile() {
        let start = Instant::now();
        let out = normalize_html(&input, HtmlLimits::default());
        let took = start.elapsed();
        assert!(took < SLOW, "{name}: {took:?} for {} bytes", input.len());
        eprintln!("{name}: {} bytes in {took:?}", input.len());
        // Each input byte yields at most a few output bytes: `&#256;` (6)
        // gives `&#x0100;` (8), a rewritten encoded-script tag repeats its
        // attributes once.
        for (what, len) in [
            ("nocomment", out.nocomment.len()),
            ("notags", out.notags.len()),
        ] {
            assert!(
                len <= 2 * input.len() + 4096,
                "{name}: {what} has {len} bytes for {} in",
                input.len()
            );
        }
        // A one-letter variable is renamed `n000`...`n1048575`: at most 8
        // bytes for each byte.
        let js = out.javascript.len();
        assert!(js <= 8 * input.len() + 4096, "{name}: javascript {js}");
        // A million `(` and the `)` ClamAV adds to close them are more tokens
        // than one script keeps.
        // 47,000 `eval`s each spliced into a list of 200,000 tokens would be
        // quadratic: the decoders stop at their work limit.
        let expect = match name {
            "js-tokens" => Some(LimitHit::HtmlOutput),
            "js-eval" | "js-packer-sites" => Some(LimitHit::ScriptDecode),
            _ => None,
        };
        assert_eq!(out.limit, expect, "{name}");
    }
}

#[test]
fn ascii_hostile_inputs_are_linear() {
    for (name, input) in hostile() {
        let start = Instant::now();
        let (out, cut) = ascii::normalize(&input, usize::MAX);
        assert!(start.elapsed() < SLOW, "{name}");
        assert!(out.len() <= input.len());
        assert!(!cut);
    }
}

#[test]
fn html_size_limits_are_reported() {
    let page = b"<html><body>Hello <b>World</b> &amp; more</body></html>";
    let n = page.len() as u64;
    let limits = |max_normalize, max_notags| HtmlLimits {
        max_normalize,
        max_notags,
        ..HtmlLimits::default()
    };

    // Limits are on the input size and apply above it, as ClamAV's
    // `len > limit`.
    let full = normalize_html(page, limits(n, n));
    assert_eq!(full.limit, None);
    // As clamscan: white space after a tag is dropped, &amp; is decoded in
    // nocomment and a space in notags.
    assert_eq!(
        full.nocomment,
        b"<html><body>hello <b>world</b>& more</body></html>"
    );
    assert_eq!(full.notags, b" hello world more ");

    let over = normalize_html(page, limits(n - 1, n));
    assert_eq!(over.limit, Some(LimitHit::HtmlNormalize));
    assert!(over.nocomment.is_empty() && over.notags.is_empty());

    let notags = normalize_html(page, limits(n, n - 1));
    assert_eq!(notags.limit, Some(LimitHit::HtmlNoTags));
    assert_eq!(notags.nocomment, full.nocomment);
    assert!(notags.notags.is_empty());

    let capped = normalize_html(
        page,
        HtmlLimits {
            max_output: 10,
            ..HtmlLimits::default()
        },
    );
    assert_eq!(capped.limit, Some(LimitHit::HtmlOutput));
    assert_eq!(capped.nocomment, &full.nocomment[..10]);
}

/// Counts what a sink receives, keeping nothing: the streaming interface
/// needs no memory of its own for any input size.
#[derive(Default)]
struct Count {
    nocomment: usize,
    notags: usize,
    script: usize,
    scripts: usize,
}

impl HtmlSink for Count {
    fn nocomment(&mut self, d: &[u8]) {
        self.nocomment += d.len();
    }
    fn notags(&mut self, d: &[u8]) {
        self.notags += d.len();
    }
    fn javascript(&mut self, d: &[u8]) {
        self.script += d.len();
        self.scripts += 1;
    }
}

#[test]
fn streaming_agrees_with_whole_input() {
    let mut page = Vec::new();
    for i in 0..2000 {
        page.extend_from_slice(
            format!(
                "<p class='c{i}'>Text {i} &amp; &#{};<script>var a{i}='x';</script><!-- c -->\n",
                65 + i % 26
            )
            .as_bytes(),
        );
    }
    let whole = normalize_html(&page, HtmlLimits::default());
    for step in [1usize, 7, 4096, 8191, 8192, 100_000] {
        let mut got = HtmlOutput::default();
        let mut n = HtmlNormalizer::new(HtmlLimits::default());
        for part in page.chunks(step) {
            n.feed(part, &mut got);
        }
        got.limit = n.finish(&mut got);
        assert_eq!(got, whole, "step {step}");
        let mut c = Count::default();
        let mut n = HtmlNormalizer::new(HtmlLimits::default());
        for part in page.chunks(step) {
            n.feed(part, &mut c);
        }
        assert_eq!(n.finish(&mut c), None);
        assert_eq!(c.nocomment, whole.nocomment.len());
        assert_eq!(c.notags, whole.notags.len());
        assert_eq!(c.script, whole.javascript.len());
        assert_eq!(c.scripts, 2000);
    }
}

#[test]
fn ascii_streaming_with_output_limit() {
    let input = repeat(b"Word \t\n", 100_000);
    let (whole, _) = ascii::normalize(&input, usize::MAX);
    // Drain a small output buffer over and over, as a matcher would.
    let mut n = AsciiNormalizer::new();
    let mut got = Vec::new();
    let mut buf = Vec::new();
    let mut rest = &input[..];
    while !rest.is_empty() {
        let used = n.feed(rest, &mut buf, 1000);
        rest = &rest[used..];
        got.append(&mut buf);
    }
    assert_eq!(got, whole);
}

/// Dean Edwards' packer expands each word of its text to a dictionary word:
/// 100,000 one-character words over a 100,000-byte dictionary word would be
/// 10 GB. ClamAV decodes it all; aether stops at `max_output`.
#[test]
fn packer_expansion_is_capped() {
    let mut page = b"<html><script>eval(function(p,a,c,k,e,r){return p}('".to_vec();
    page.extend(repeat(b"0 ", 200_000));
    page.extend_from_slice(b"',10,1,'");
    page.extend(repeat(b"A", 100_000));
    page.extend_from_slice(b"'.split('|'),0,{}))</script></html>");
    let cap = 4 * MB as u64;
    let start = Instant::now();
    let out = normalize_html(
        &page,
        HtmlLimits {
            max_output: cap,
            ..HtmlLimits::default()
        },
    );
    assert!(start.elapsed() < SLOW);
    assert_eq!(out.limit, Some(LimitHit::HtmlOutput));
    assert!(out.javascript.len() as u64 <= cap);
    assert!(out.javascript.starts_with(b"<script>eval(function(n000,"));
}
