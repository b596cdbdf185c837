//! Differential tests: aether's text normalization against the files Debian's
//! clamscan 1.4 keeps with `--leave-temps` (`nocomment.html`, `notags.html`
//! for HTML; the normalized `.tmp` of `cli_scanscript` for text). Each case
//! must be byte-identical. Inputs are generated from a fixed seed plus
//! hand-written edge cases; every case file is scanned in one clamscan run.
//!
//! Skipped, with a message, only when clamscan is not installed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use aether_formats::normalize::ascii::{self, ScriptBuffers};
use aether_formats::normalize::{HtmlLimits, HtmlNormalizer, HtmlOutput, normalize_html};

/// xorshift64*: a fixed, dependency-free source of test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

fn clamscan() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("clamscan"))
        .find(|p| p.is_file())
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("aether-norm-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(dir.join("in")).expect("scratch dir");
        fs::create_dir_all(dir.join("tmp")).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // AETHER_KEEP_SCRATCH=1 keeps the cases and clamscan's files to look at.
        if std::env::var_os("AETHER_KEEP_SCRATCH").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A database with one type-3 and one type-7 signature that match nothing,
/// so that clamscan runs both normalizers (and `cli_scanscript` keeps its
/// output with `--leave-temps`).
const DB: &str = "Aether.Test.Html:3:*:6165746865725f6e657665725f68746d6c\n\
                  Aether.Test.Text:7:*:6165746865725f6e657665725f747874\n";
/// The longest type-7 pattern above, ClamAV's `maxpatlen` for target 7.
const MAXPATLEN: usize = 16;

/// Runs clamscan on every file in `dir/in`, keeping temporaries in `dir/tmp`.
fn run_clamscan(clamscan: &Path, dir: &Path, extra: &[&str]) {
    let db = dir.join("test.ndb");
    fs::write(&db, DB).expect("write db");
    let out = Command::new(clamscan)
        .arg("--leave-temps")
        // Identical cases must each be scanned, not answered from the cache.
        .arg("--disable-cache")
        .arg(format!("--tempdir={}", dir.join("tmp").display()))
        .arg("-d")
        .arg(&db)
        .args(extra)
        .arg("-r")
        .arg(dir.join("in"))
        .output()
        .expect("run clamscan");
    // 0: nothing found, 1: something found (the database matches nothing).
    assert_eq!(
        out.status.code(),
        Some(0),
        "clamscan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under `root`, recursively.
fn walk(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(root) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The temporaries clamscan kept for each input file, by input name: the
/// files of its first layer (`<time>-<name>.<id>/<name>.<id>/...`).
fn temps(dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut all = Vec::new();
    walk(&dir.join("tmp"), &mut all);
    let mut by = BTreeMap::<String, Vec<PathBuf>>::new();
    for p in all {
        let Ok(rel) = p.strip_prefix(dir.join("tmp")) else {
            continue;
        };
        let parts: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if parts.len() < 3 {
            continue;
        }
        // The second component is "<name>.<10 hex digits>".
        let Some((name, _)) = parts[1].rsplit_once('.') else {
            continue;
        };
        by.entry(name.to_string()).or_default().push(p);
    }
    by
}

/// The `html-tmp.*` output named `file` nearest the top for one input.
fn html_temp(files: &[PathBuf], file: &str) -> Option<PathBuf> {
    files
        .iter()
        .filter(|p| {
            p.file_name().is_some_and(|n| n == file)
                && p.parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|n| n.to_string_lossy().starts_with("html-tmp"))
        })
        .min_by_key(|p| p.components().count())
        .cloned()
}

// ---------------------------------------------------------------- ASCII ---

fn text_cases() -> Vec<Vec<u8>> {
    let mut cases: Vec<Vec<u8>> = vec![
        b"Hello World\n".to_vec(),
        b"  leading and trailing  \n\n".to_vec(),
        b"MiXeD CaSe\tTabs\tAnd\r\nCRLF lines\r\n".to_vec(),
        b"form\x0cfeed and\x0bvertical tab\n".to_vec(),
        b"ALL UPPER CASE WITH [brackets] AND {braces} @ ~ ^ _ `\n".to_vec(),
        b"punctuation !\"#$%&'()*+,-./:;=>?\\|\n".to_vec(),
        b"\n\n\n\n   \t\t\t   x\n".to_vec(),
        b"a".to_vec(),
        b"DEL byte \x7f stays\n".to_vec(),
        "utf-8 caf\u{e9} na\u{ef}ve \u{2014} dash\n"
            .as_bytes()
            .to_vec(),
        "\u{feff}BOM then TEXT\n".as_bytes().to_vec(),
        b"trailing spaces at end of file     ".to_vec(),
    ];
    let mut rng = Rng(0x5eed_0007);
    let words: [&[u8]; 14] = [
        b"var",
        b"Function",
        b"EVAL",
        b"document.write",
        b"x=1;",
        b"\"str\"",
        b"'q'",
        b"if(a)",
        b"{",
        b"}",
        b"0xDEAD",
        b"PowerShell",
        b"-EncodedCommand",
        b"Set-Item",
    ];
    let spaces: [&[u8]; 8] = [
        b" ", b"  ", b"\t", b"\n", b"\r\n", b" \t \n", b"\x0b", b"\x0c",
    ];
    for i in 0..250 {
        let mut t = Vec::new();
        let n = 1 + rng.below(if i % 50 == 0 { 3000 } else { 80 });
        for _ in 0..n {
            t.extend_from_slice(rng.pick(&words[..]));
            t.extend_from_slice(rng.pick(&spaces[..]));
            if i % 5 == 0 && rng.below(7) == 0 {
                // Printable noise of every class, upper case included.
                t.push(0x21 + rng.below(0x5e) as u8);
            }
            if i % 9 == 0 && rng.below(11) == 0 {
                // UTF-8: dropped by the normalizer, still text for ClamAV.
                t.extend_from_slice("\u{e9}\u{4e2d}".as_bytes());
            }
        }
        cases.push(t);
    }
    cases
}

/// A text bigger than ClamAV's scan buffer, so that its kept file shows the
/// buffer boundaries (the carried-over overlap, the reset space flag).
fn big_text() -> Vec<u8> {
    let mut rng = Rng(0xb16);
    let mut t = Vec::new();
    while t.len() < 400_000 {
        let w = rng.below(12);
        for _ in 0..w {
            t.push(b'A' + rng.below(26) as u8);
        }
        // Long white-space runs make a run straddling a page likely.
        let s = rng.below(40);
        t.extend(std::iter::repeat_n(b' ', s.max(1)));
        if rng.below(3) == 0 {
            t.push(b'\n');
        }
    }
    t
}

fn clamav_text_file(input: &[u8]) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut sb = ScriptBuffers::new(MAXPATLEN);
    sb.feed(input, &mut |b: &[u8]| kept.extend_from_slice(b));
    sb.finish(&mut |b: &[u8]| kept.extend_from_slice(b));
    kept
}

#[test]
fn ascii_matches_clamscan() {
    let Some(clamscan) = clamscan() else {
        eprintln!("SKIPPED ascii_matches_clamscan: clamscan is not installed");
        return;
    };
    let s = Scratch::new("ascii");
    let mut cases = text_cases();
    cases.push(big_text());
    for (i, c) in cases.iter().enumerate() {
        fs::write(s.0.join("in").join(format!("text{i:04}.txt")), c).expect("write case");
    }
    run_clamscan(&clamscan, &s.0, &[]);
    let temps = temps(&s.0);
    let mut compared = 0;
    let mut missing = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let name = format!("text{i:04}.txt");
        let kept: Vec<&PathBuf> = temps
            .get(&name)
            .map(|v| {
                v.iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
                    .collect()
            })
            .unwrap_or_default();
        if c.len() <= 5 {
            // ClamAV does not scan files of 5 bytes or less at all.
            assert!(kept.is_empty(), "{name}: clamscan normalized a tiny file");
            continue;
        }
        let [kept] = kept.as_slice() else {
            missing.push(name);
            continue;
        };
        let theirs = fs::read(kept).expect("read kept file");
        let ours = clamav_text_file(c);
        assert_eq!(
            ours,
            theirs,
            "{name}: input {:?}",
            String::from_utf8_lossy(&c[..c.len().min(200)])
        );
        if c.len() < 100_000 {
            // Below one scan buffer the kept file is the plain normalization.
            assert_eq!(ascii::normalize(c, usize::MAX).0, theirs, "{name}");
        }
        compared += 1;
    }
    assert!(
        missing.is_empty(),
        "clamscan kept no normalized text for {missing:?}"
    );
    assert!(compared >= 200, "only {compared} cases compared");
    eprintln!("ascii: {compared} cases byte-identical to clamscan");
}

#[test]
fn ascii_limit_matches_clamscan() {
    let Some(clamscan) = clamscan() else {
        eprintln!("SKIPPED ascii_limit_matches_clamscan: clamscan is not installed");
        return;
    };
    let s = Scratch::new("ascii-limit");
    fs::write(s.0.join("in/small.txt"), vec![b'a'; 1000]).expect("write");
    fs::write(s.0.join("in/large.txt"), vec![b'a'; 1001]).expect("write");
    run_clamscan(&clamscan, &s.0, &["--max-scriptnormalize=1000"]);
    let temps = temps(&s.0);
    let kept = |n: &str| {
        temps
            .get(n)
            .is_some_and(|v| v.iter().any(|p| p.extension().is_some_and(|e| e == "tmp")))
    };
    // Over the limit the text is not normalized at all (clamscan's check is
    // "larger than"): the engine must skip type-7 matching, as
    // `aether_formats::normalize::MAX_SCRIPT_NORMALIZE` documents.
    assert!(kept("small.txt"));
    assert!(!kept("large.txt"));
}

// ----------------------------------------------------------------- HTML ---

/// The 8-character length field of an encoded script block: the base64 of
/// the length as 4 little-endian bytes.
fn screnc_len(n: u32) -> Vec<u8> {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = n.to_le_bytes();
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    let mut out: Vec<u8> = (0..4)
        .map(|i| B64[((v >> (18 - 6 * i)) & 63) as usize])
        .collect();
    let w = u32::from(b[3]) << 16;
    out.push(B64[((w >> 18) & 63) as usize]);
    out.push(B64[((w >> 12) & 63) as usize]);
    out.extend_from_slice(b"==");
    out
}

/// An encoded block: marker, length, `n` encoded bytes (any bytes decode to
/// something; the point is that both decoders agree), checksum, terminator.
fn screnc_block(rng: &mut Rng, n: usize, declared: u32) -> Vec<u8> {
    let mut b = b"#@~^".to_vec();
    b.extend(screnc_len(declared));
    for _ in 0..n {
        let c = match rng.below(20) {
            0 => b'@',
            1 => *b"!#$&*".get(rng.below(5)).unwrap_or(&b'!'),
            2 => b'\n',
            3 => 0x80 + rng.below(0x7f) as u8,
            _ => 0x20 + rng.below(0x5f) as u8,
        };
        b.push(c);
    }
    b.extend_from_slice(b"AAAAAA==^#~@");
    b
}

const TAGS: [&str; 14] = [
    "p", "DIV", "Span", "a", "img", "b", "table", "td", "form", "input", "iframe", "META", "body",
    "br",
];
const ENTITIES: [&str; 30] = [
    "&amp;",
    "&lt;",
    "&gt;",
    "&AMP;",
    "&nbsp;",
    "&quot;",
    "&apos;",
    "&copy;",
    "&eacute;",
    "&Eacute;",
    "&#65;",
    "&#x41;",
    "&#X4a;",
    "&#0;",
    "&#;",
    "&#x;",
    "&#99999999999999999999999;",
    "&#x1F600;",
    "&#12290;",
    "&#xff0e;",
    "&#160;",
    "&#255;",
    "&#256;",
    "&#65536;",
    "&unknown;",
    "&amp",
    "&#65",
    "&#x6a&#x61",
    "& ",
    "&a-b_c:d;",
];
const WORDS: [&str; 16] = [
    "Hello",
    "WORLD",
    "click",
    "Here",
    "eval",
    "unescape",
    "document.write",
    "%u9090",
    "x",
    "'quoted'",
    "\"dq\"",
    "a\\b",
    "C:\\Temp",
    "50%",
    "=",
    "/",
];
const SPACES: [&str; 9] = [
    " ", "  ", "\t", "\n", "\r\n", "\r", " \n\t ", "\x0b", "\x0c",
];

fn attr(rng: &mut Rng, out: &mut Vec<u8>) {
    let names = [
        "href", "SRC", "class", "Language", "style", "onload", "id", "type", "x",
    ];
    out.extend_from_slice(rng.pick(&names[..]).as_bytes());
    match rng.below(6) {
        0 => {}
        1 => out.extend_from_slice(b" = "),
        _ => out.push(b'='),
    }
    let mut val = Vec::new();
    for _ in 0..rng.below(4) {
        match rng.below(6) {
            0 => val.extend_from_slice(rng.pick(&ENTITIES[..]).as_bytes()),
            1 => val.extend_from_slice(rng.pick(&SPACES[..]).as_bytes()),
            2 => val.extend_from_slice(b"http://Example.COM/a?b=1&c=2"),
            3 => val.extend_from_slice("caf\u{e9}\u{3002}".as_bytes()),
            _ => val.extend_from_slice(rng.pick(&WORDS[..]).as_bytes()),
        }
    }
    match rng.below(4) {
        0 => {
            out.push(b'"');
            out.extend(&val);
            out.push(b'"');
        }
        1 => {
            out.push(b'\'');
            out.extend(&val);
            out.push(b'\'');
        }
        2 => out.extend(val.iter().filter(|b| !b" \t\r\n>".contains(b))),
        _ => {
            out.push(b'"');
            out.extend(&val);
        }
    }
}

fn fragment(rng: &mut Rng, out: &mut Vec<u8>, depth: usize) {
    match rng.below(24) {
        0..=4 => out.extend_from_slice(rng.pick(&WORDS[..]).as_bytes()),
        5..=7 => out.extend_from_slice(rng.pick(&SPACES[..]).as_bytes()),
        8..=9 => out.extend_from_slice(rng.pick(&ENTITIES[..]).as_bytes()),
        10..=12 => {
            let t = rng.pick(&TAGS[..]);
            out.push(b'<');
            if rng.below(8) == 0 {
                out.push(b' ');
            }
            out.extend_from_slice(t.as_bytes());
            for _ in 0..rng.below(4) {
                out.extend_from_slice(rng.pick(&SPACES[..]).as_bytes());
                attr(rng, out);
            }
            if rng.below(12) != 0 {
                out.push(b'>');
            }
            if depth < 4 {
                for _ in 0..rng.below(4) {
                    fragment(rng, out, depth + 1);
                }
            }
            out.extend_from_slice(
                format!("</{t}{}>", if rng.below(5) == 0 { " " } else { "" }).as_bytes(),
            );
        }
        13 => {
            let c = [
                "<!-- comment -->",
                "<!-- a > b -->",
                "<!DOCTYPE html>",
                "<![CDATA[ x < y ]]>",
                "<!---->",
                "<! x",
                "<!--<script>alert(1)</script>-->",
            ];
            out.extend_from_slice(rng.pick(&c[..]).as_bytes());
        }
        14..=15 => {
            let open = [
                "<script>",
                "<SCRIPT type=\"text/javascript\">",
                "<script language='JavaScript'>",
                "< script >",
            ];
            out.extend_from_slice(rng.pick(&open[..]).as_bytes());
            for _ in 0..rng.below(12) {
                let js = [
                    "function F(a, b) { var c = a + b; return c; }",
                    "var x = 1, y = [2, 3], z;",
                    "x.y.z = X;",
                    "var s = \"a\" + 'b' + \"c\";",
                    "s = \"\\x41\\u0042\\n\\t\\0\\q\";",
                    "n = 1.5e3 + 0.25 + 123456789012;",
                    "eval(\"var q = 5; alert(q)\");",
                    "unescape(\"%u0041%42%zz\");",
                    "function(){ var i; }",
                    "{ { } } }",
                    "a = b ? c : d;",
                    "x >>>= 2; y !== z; w === v;",
                    "/re/g.test(s);",
                    "\"unterminated",
                    "'open",
                    "1.e5 2.5E-3 7e",
                    "eval(function(p,a,c,k,e,r){return p}('0 1',2,2,'alert|x'.split('|'),0,{}));",
                    "dF('%3C%3D1')",
                    "new Date(); typeof x; delete y; void 0;",
                    "$ = _ + \\u0061;",
                    "var \\u00e9t\\u00e9 = 1;",
                    "while (i--) { for (j in o) { continue; } }",
                    "try { throw e; } catch (e) { } finally { }",
                    "var A = 'x';",
                    " ",
                    "\n",
                    "eval(unescape('%41'));",
                    "if (a < b) {",
                    "}",
                    "<!-- hidden",
                    "-->",
                    "document.write(\"<b>\");",
                    "<p>",
                    "</p>",
                    "'single'",
                    "&amp;",
                    "// c\n",
                    "/* c */",
                ];
                out.extend_from_slice(rng.pick(&js[..]).as_bytes());
            }
            let close = [
                "</script>",
                "</SCRIPT >",
                "</script",
                "",
                "</ script>",
                "</script>",
                "</script>",
            ];
            out.extend_from_slice(rng.pick(&close[..]).as_bytes());
        }
        16 => {
            out.extend_from_slice(b"<style>");
            out.extend_from_slice(b"BODY { Color: Red; }\n p{x:url(a.png)}");
            out.extend_from_slice(if rng.below(4) == 0 {
                b"</STYLE>"
            } else {
                b"</style>"
            });
        }
        17 => {
            let lang = ["JScript.Encode", "VBScript.Encode", "jscript.encode"];
            let n = rng.below(60);
            let declared = match rng.below(4) {
                0 => n as u32 + rng.below(20) as u32,
                1 => n.saturating_sub(rng.below(10)) as u32,
                _ => n as u32,
            };
            out.extend_from_slice(
                format!("<script language=\"{}\">", rng.pick(&lang[..])).as_bytes(),
            );
            if rng.below(3) == 0 {
                out.extend_from_slice(b"<!--\n");
            }
            out.extend(screnc_block(rng, n, declared));
            out.extend_from_slice(b"</script>");
        }
        18 => {
            out.extend_from_slice(b"<%@ LANGUAGE = \"VBScript.Encode\" %>");
            let n = rng.below(40);
            out.extend(screnc_block(rng, n, n as u32));
        }
        19 => {
            let d = [
                "<img src=\"data:image/png;base64,iVBORw0KGgo=\">",
                "<a href=data:text/html,%3Cscript%3Ealert(1)%3C/script%3E>x</a>",
                "<img src='data:;base64,QUJD' alt=x>",
                "<iframe src=\"DATA:text/plain,a&amp;b c\">",
                "<a href=\"data:\">",
            ];
            out.extend_from_slice(rng.pick(&d[..]).as_bytes());
        }
        20 => {
            // UTF-8 and stray high bytes, ClamAV's full stops included.
            let h: [&[u8]; 7] = [
                "\u{e9}t\u{e9}".as_bytes(),
                b"\xe3\x80\x82",
                b"\xef\xbc\x8e",
                b"\xa1\x43",
                b"\xa1\x41",
                b"\xff\xfe\xfd\xfc",
                b"\x80",
            ];
            out.extend_from_slice(rng.pick(&h[..]));
        }
        21 => out.extend_from_slice(&[0, 0, b'a', 0]),
        22 => out.push(0x01 + rng.below(0x1f) as u8),
        _ => out.extend_from_slice(b"<a href=\"http://Evil.example/\">Go</a> <IMG SRC=x.GIF>"),
    }
}

fn js_fragment(rng: &mut Rng, out: &mut Vec<u8>) {
    const IDS: [&str; 12] = [
        "a", "B", "fooBar", "$x", "_y", "i", "Z9", "document", "window", "eval", "unescape", "dF",
    ];
    const OPS: [&str; 24] = [
        "=", "+", "-", "*", "/", "%", "==", "===", "!=", "!==", "<", ">", "<=", ">=", "<<", ">>",
        ">>>", "&&", "||", "!", "~", "?", ":", "+=",
    ];
    match rng.below(26) {
        0..=3 => out.extend_from_slice(rng.pick(&IDS[..]).as_bytes()),
        4..=5 => out.extend_from_slice(rng.pick(&OPS[..]).as_bytes()),
        6 => out.extend_from_slice(rng.pick(&[" ", "  ", "\n", "\t", "\r\n"][..]).as_bytes()),
        7 => out.extend_from_slice(rng.pick(&["var ", "function ", "return ", "new ", "typeof ", "if(", "else ", "for(", "while(", "in ", "this", "null", "true", "false", "with(", "int ", "class "][..]).as_bytes()),
        8 => out.extend_from_slice(rng.pick(&["(", ")", "{", "}", "[", "]", ",", ";", "."][..]).as_bytes()),
        9 => {
            let n = [
                "0", "42", "007", "1.5", "1.", "2.5e3", "1.5E-7", "3e5", "1.e+", "99999999999", "4294967296",
                "0x1F", "1.0000001", "123456.7", "1e21", "0.000001",
            ];
            out.extend_from_slice(rng.pick(&n[..]).as_bytes());
        }
        10..=11 => {
            let q = if rng.below(2) == 0 { b'"' } else { b'\'' };
            out.push(q);
            let parts = [
                "text", "A B", "\\x41", "\\u00e9", "\\n", "\\'", "\\\"", "%41%u0042", "caf\u{e9}", "<b>", "\\0", "\\", "|",
            ];
            for _ in 0..rng.below(4) {
                out.extend_from_slice(rng.pick(&parts[..]).as_bytes());
            }
            if rng.below(10) != 0 {
                out.push(q);
            }
        }
        12 => out.extend_from_slice(b"\"a\" + 'b' + \"c\""),
        13 => out.extend_from_slice(b"/* block */"),
        14 => out.extend_from_slice(b"// line comment\n"),
        15 => out.extend_from_slice(b"function F(p1, p2) { var L = p1; function G() { return L + p2; } return G(); }"),
        16 => out.extend_from_slice(b"var a = 1, b = [1, [2, 3]], c = {k: 'v'}, d;"),
        17 => out.extend_from_slice(b"obj.Method(Arg).prop = OTHER.x;"),
        18 => out.extend_from_slice(b"eval(\"var Q = 'in eval'; document.write(Q);\");"),
        19 => out.extend_from_slice(b"eval(unescape('%76%61%72%20%7a%3d%31'));"),
        20 => out.extend_from_slice(
            b"eval(function(p,a,c,k,e,d){e=function(c){return c};return p}('0 1(\\'2\\')',3,3,'var|alert|hi'.split('|'),0,{}))",
        ),
        21 => out.extend_from_slice(b"function U(p,a,c,k,e,r){return p} U('0.1 2',10,3,'x|y|z'.split('|'),0,{});"),
        22 => out.extend_from_slice(b"dF('%264Dtdsjqu%264F2')"),
        23 => out.extend_from_slice(b"\\u0061bc = 1; x\\q = 2;"),
        24 => out.extend_from_slice(b"/regex[a-z]+/gi.test(s); a = b / c / d;"),
        _ => out.extend_from_slice("\u{e9}\u{4e2d}#@`".as_bytes()),
    }
}

fn html_cases() -> Vec<Vec<u8>> {
    let starts = [
        "<html>",
        "<HTML>",
        "<!DOCTYPE html><html lang=en>",
        "<html>\n<head><title>T</title></head><body>",
    ];
    let mut cases: Vec<Vec<u8>> = vec![
        b"<html><body>Hello &amp; &#65;&#x42; World</body></html>\n".to_vec(),
        b"<html><!-- c --><Body  class=\"X\">Hi</Body></html>".to_vec(),
        b"<html><script>var A = 'x'; eval(A);</script></html>".to_vec(),
        b"<html><a href=\"HTTP://X.Y/\">link</a><img src='P.png'></html>".to_vec(),
        b"<html>&amp".to_vec(),
        b"<html>&#x".to_vec(),
        b"<html><p title=\"unterminated".to_vec(),
        b"<html><script>unterminated script".to_vec(),
        b"<html>\x00\x00<b>nul</b>\x00".to_vec(),
        b"<html>\xe3\x80\x82\xef\xbc\x8e\xef\xb9\x92 dots</html>".to_vec(),
        b"<html><a href='a\\'b'>x</a></html>".to_vec(),
        b"<html><a href=\"a\\\"b\">x</a></html>".to_vec(),
    ];
    // A huge attribute, deep nesting, and documents long enough to be cut
    // into several chunks (with and without white space, with NULs).
    let mut huge = b"<html><a href=\"".to_vec();
    huge.extend(std::iter::repeat_n(b'A', 5000));
    huge.extend_from_slice(b"\">x</a></html>");
    cases.push(huge);
    let mut deep = b"<html>".to_vec();
    for _ in 0..3000 {
        deep.extend_from_slice(b"<div>");
    }
    cases.push(deep);
    let mut nospace = b"<html>".to_vec();
    nospace.extend(std::iter::repeat_n(b'Z', 20000));
    cases.push(nospace);
    // Constructs straddling the end of ClamAV's first 8191-byte chunk: a
    // filler without white space (the chunk is not cut back) or with one
    // space near its end (it is), NULs in the filler (not counted).
    let mut rng = Rng(0xb0_0da5);
    let tails: [&[u8]; 10] = [
        b"<style>p{}</style> after",
        b"&amp;&#x41;&#66; after",
        b"<!-- comment --> after",
        b"<a href=\"http://x/\">t</a>",
        b"<TAG attr=\"v a l\">",
        b"\xe3\x80\x82\xc3\xa9 x",
        b"<%@ language=jscript.encode %>#@~^CAAAAA==12345678AAAAAA==^#~@ z",
        b"#@~^BAAAAA==abcdAAAAAA==^#~@</script>",
        b"</script> after",
        b"data:text/plain,abc\" x>",
    ];
    for (t, tail) in tails.iter().enumerate() {
        for d in [0usize, 1, 3, 5, 9] {
            let mut doc: Vec<u8> = match t {
                0 => b"<html><style>".to_vec(),
                7 => b"<html><script language=\"jscript.encode\">".to_vec(),
                8 => b"<html><script>".to_vec(),
                9 => b"<html><img src=\"".to_vec(),
                _ => b"<html>".to_vec(),
            };
            let fill = 8191 - doc.len() - d;
            let with_space = rng.below(2) == 0;
            for k in 0..fill {
                doc.push(if with_space && k == fill - 40 {
                    b' '
                } else {
                    b'q'
                });
            }
            if d == 9 {
                doc.splice(10..10, [0u8, 0, 0]);
            }
            doc.extend_from_slice(tail);
            doc.extend_from_slice(b" end</html>");
            cases.push(doc);
        }
    }
    // Script-heavy pages for the JavaScript normalizer.
    let mut rng = Rng(0x15_c0de);
    for i in 0..120 {
        let mut doc = b"<html><script>".to_vec();
        let target = if i % 15 == 0 {
            12_000 + rng.below(20_000)
        } else {
            50 + rng.below(700)
        };
        while doc.len() < target {
            js_fragment(&mut rng, &mut doc);
        }
        if i % 6 != 0 {
            doc.extend_from_slice(b"</script>");
        }
        if i % 4 == 0 {
            doc.extend_from_slice(b"<p>between</p><SCRIPT>var Second = First;</SCRIPT>");
        }
        cases.push(doc);
    }
    let mut rng = Rng(0x0ddc_0ffe);
    for i in 0..260 {
        let mut doc = rng.pick(&starts[..]).as_bytes().to_vec();
        let target = if i % 20 == 0 {
            9000 + rng.below(30000)
        } else {
            rng.below(400)
        };
        while doc.len() < target {
            fragment(&mut rng, &mut doc, 0);
        }
        if i % 7 == 0 {
            // Truncated anywhere.
            let cut = doc.len() / 2 + rng.below(doc.len() / 2 + 1);
            doc.truncate(cut.max(8));
        }
        if i % 13 == 0 {
            doc.extend_from_slice(b"</body></html>\n");
        }
        cases.push(doc);
    }
    cases
}

/// Our outputs, fed in uneven pieces to exercise the streaming.
fn ours_streamed(input: &[u8], seed: u64) -> HtmlOutput {
    let mut out = HtmlOutput::default();
    let mut n = HtmlNormalizer::new(HtmlLimits::default());
    let mut rng = Rng(seed | 1);
    let mut rest = input;
    while !rest.is_empty() {
        let k = (1 + rng.below(5000)).min(rest.len());
        n.feed(&rest[..k], &mut out);
        rest = &rest[k..];
    }
    out.limit = n.finish(&mut out);
    out
}

fn memmem(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn show(b: &[u8]) -> String {
    let s = format!("{:?}", String::from_utf8_lossy(&b[..b.len().min(600)]));
    if b.len() > 600 { s + "..." } else { s }
}

/// Where two outputs first differ, with context.
fn first_diff(a: &[u8], b: &[u8]) -> String {
    let i = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let lo = i.saturating_sub(60);
    format!(
        "first difference at {i} (lengths {} vs {}):\n ours: {:?}\ntheirs: {:?}",
        a.len(),
        b.len(),
        String::from_utf8_lossy(&a[lo..(i + 60).min(a.len())]),
        String::from_utf8_lossy(&b[lo..(i + 60).min(b.len())])
    )
}

#[test]
fn html_matches_clamscan() {
    let Some(clamscan) = clamscan() else {
        eprintln!("SKIPPED html_matches_clamscan: clamscan is not installed");
        return;
    };
    let s = Scratch::new("html");
    let cases = html_cases();
    for (i, c) in cases.iter().enumerate() {
        fs::write(s.0.join("in").join(format!("page{i:04}.html")), c).expect("write case");
    }
    run_clamscan(&clamscan, &s.0, &[]);
    let temps = temps(&s.0);
    let mut compared = 0;
    let mut failures = Vec::new();
    let mut not_html = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let name = format!("page{i:04}.html");
        let files = temps.get(&name).cloned().unwrap_or_default();
        let (Some(nc), Some(nt)) = (
            html_temp(&files, "nocomment.html"),
            html_temp(&files, "notags.html"),
        ) else {
            // clamscan typed it as plain text (its HTML magic did not match,
            // e.g. a bare `<!DOCTYPE html><html lang=en>`): nothing to compare.
            not_html.push(name);
            continue;
        };
        let nc_dir = nc.parent().map(Path::to_path_buf).unwrap_or_default();
        let theirs_nc = fs::read(&nc).expect("read nocomment");
        let theirs_nt = fs::read(nt).expect("read notags");
        let ours = normalize_html(c, HtmlLimits::default());
        assert_eq!(
            ours,
            ours_streamed(c, i as u64),
            "{name}: streaming changed the output"
        );
        if ours.nocomment != theirs_nc {
            failures.push(format!(
                "{name} nocomment: {}\ninput: {}",
                first_diff(&ours.nocomment, &theirs_nc),
                show(c)
            ));
        }
        if ours.notags != theirs_nt {
            failures.push(format!(
                "{name} notags: {}\ninput: {}",
                first_diff(&ours.notags, &theirs_nt),
                show(c)
            ));
        }
        // In the top-level html-tmp only: a `data:` URI is scanned as a file
        // of its own, with its own html-tmp.
        let js = nc_dir.join("javascript");
        let theirs_js = if js.is_file() {
            fs::read(&js).expect("read javascript")
        } else {
            Vec::new()
        };
        if ours.javascript != theirs_js {
            failures.push(format!(
                "{name} javascript: {}\ninput: {}",
                first_diff(&ours.javascript, &theirs_js),
                show(c)
            ));
        }
        compared += 1;
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(compared >= 200, "only {compared} cases compared");
    // The hand-written cases all start with `<html>`: those must all be HTML.
    assert!(
        not_html.len() < cases.len() / 10,
        "not typed HTML by clamscan: {not_html:?}"
    );
    eprintln!(
        "html: {compared} cases, nocomment, notags and javascript byte-identical to clamscan ({} not typed HTML by it)",
        not_html.len()
    );
}

// ------------------------------------------------- where ClamAV matches ---

/// Runs clamscan with `--allmatch` and a database of its own; the names of
/// the signatures found.
fn detections(clamscan: &Path, dir: &Path, db: &str, file: &str, extra: &[&str]) -> Vec<String> {
    let dbp = dir.join("where.ndb");
    fs::write(&dbp, db).expect("write db");
    let out = Command::new(clamscan)
        .args(["--allmatch", "--disable-cache", "--no-summary", "-d"])
        .arg(&dbp)
        .args(extra)
        .arg(dir.join("in").join(file))
        .output()
        .expect("run clamscan");
    let mut found: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(".UNOFFICIAL FOUND"))
        .filter_map(|l| l.rsplit(' ').next())
        .map(str::to_string)
        .collect();
    found.sort();
    found
}

fn ndb(sigs: &[(&str, u8, &[u8])]) -> String {
    sigs.iter()
        .map(|(n, t, p)| {
            let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
            format!("{n}:{t}:*:{hex}\n")
        })
        .collect()
}

/// Which buffer ClamAV matches which signature target type against, the
/// facts the engine builds on (stated in `aether_formats::normalize`).
#[test]
fn where_clamav_matches_normalized_buffers() {
    let Some(clamscan) = clamscan() else {
        eprintln!("SKIPPED where_clamav_matches_normalized_buffers: clamscan is not installed");
        return;
    };
    let s = Scratch::new("where");
    let page = b"<html><BoDy>Hello &amp; World <a href=\"http://zz/\">t</a><script>var Q=1;</script></BoDy></html>\n";
    fs::write(s.0.join("in/page.html"), page).expect("write");
    let out = normalize_html(page, HtmlLimits::default());
    // The patterns below are taken from our own outputs, so this also checks
    // that they are where ClamAV looks.
    assert!(memmem(&out.nocomment, b"<body>hello & world") == 1);
    assert!(memmem(&out.notags, b"zz/ t") == 1);
    let html_db = ndb(&[
        ("Raw.T0", 0, b"<BoDy>Hello"),
        ("Raw.T3", 3, b"<BoDy>Hello"),
        ("NoComment.T0", 0, b"<body>hello & world"),
        ("NoComment.T3", 3, b"<body>hello & world"),
        ("NoComment.T7", 7, b"<body>hello & world"),
        ("NoTags.T3", 3, b"zz/ t"),
        ("NoTags.T7", 7, b"zz/ t"),
        // ClamAV's JavaScript normalizer renames identifiers: `Q` is `n000`.
        ("Script.T3", 3, b"var n000=1"),
        ("Script.T7", 7, b"var n000=1"),
    ]);
    assert_eq!(
        detections(&clamscan, &s.0, &html_db, "page.html", &[]),
        [
            "NoComment.T0",
            "NoComment.T3",
            "NoTags.T3",
            "Script.T3",
            "Script.T7"
        ],
        "HTML: the raw page is not matched; nocomment and notags against types 0 and 3; the script against 0, 3 and 7"
    );
    // notags is matched only up to MaxHTMLNoTags, nothing past MaxHTMLNormalize.
    let n = page.len();
    assert_eq!(
        detections(
            &clamscan,
            &s.0,
            &html_db,
            "page.html",
            &[&format!("--max-htmlnotags={}", n - 1)]
        ),
        ["NoComment.T0", "NoComment.T3", "Script.T3", "Script.T7"]
    );
    assert!(
        detections(
            &clamscan,
            &s.0,
            &html_db,
            "page.html",
            &[&format!("--max-htmlnormalize={}", n - 1)]
        )
        .is_empty()
    );

    let text = b"Some Text: Hello   WORLD and more text here\n";
    fs::write(s.0.join("in/text.txt"), text).expect("write");
    assert_eq!(
        ascii::normalize(text, usize::MAX).0,
        b"some text: hello world and more text here "
    );
    let text_db = ndb(&[
        ("Raw.T0", 0, b"Hello   WORLD"),
        ("Raw.T7", 7, b"Hello   WORLD"),
        ("Norm.T0", 0, b"hello world and"),
        ("Norm.T7", 7, b"hello world and"),
    ]);
    assert_eq!(
        detections(&clamscan, &s.0, &text_db, "text.txt", &[]),
        ["Norm.T0", "Norm.T7", "Raw.T0"],
        "text: the raw file against type 0, the normalized text against types 0 and 7"
    );
}
