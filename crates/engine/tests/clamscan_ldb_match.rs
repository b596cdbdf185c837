//! Logical signatures (`.ldb`): aether must report what Debian's clamscan
//! reports.
//!
//! The test generates a few hundred logical signatures over every supported
//! subsignature form (hex patterns with wildcards, alternatives and gaps;
//! offsets `*`, `n`, `n,m`, `EOF-n[,m]`; the modifiers `i`, `w`, `a`, `f`;
//! PCRE subsignatures with triggers, offsets and flags; byte compares in every
//! number format) and expressions with counts, plus target descriptions
//! (`Target`, `FileSize`, `Container`, `Intermediates`), and files that hold
//! each subsignature a chosen number of times (so expressions land on both
//! sides of their counts), some of them inside zip, tar and tar.gz archives.
//! `clamscan --allmatch` and the engine must name the same signatures for
//! every file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use aether_engine::{EngineBuilder, Limits};
use aether_sigs::{LoadOptions, Loader, LogicExpr};

mod common;
use common::Rng;

/// Files start with bytes no file-type magic uses, and a 16-bit unit 0x0001
/// so that ClamAV does not take them for UTF-16 text (which it would also scan
/// normalized, evaluating every signature a second time): binary data.
const HEADER: &[u8] = b"\x00\xff\x00\x01AETHER-LDB\x00";

fn hex(d: &[u8]) -> String {
    d.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One element of a generated hex pattern, with how to write it and how to
/// produce bytes it matches.
#[derive(Clone, Debug)]
enum Piece {
    Static(Vec<u8>),
    AnyByte,
    High(u8),
    Alt(Vec<Vec<u8>>),
    NegAlt(Vec<u8>),
    Fixed(u32),
    Range(u32, u32),
    Star,
}

impl Piece {
    fn text(&self) -> String {
        match self {
            Piece::Static(b) => hex(b),
            Piece::AnyByte => "??".into(),
            Piece::High(v) => format!("{:x}?", v >> 4),
            Piece::Alt(br) => format!(
                "({})",
                br.iter().map(|b| hex(b)).collect::<Vec<_>>().join("|")
            ),
            Piece::NegAlt(br) => format!(
                "!({})",
                br.iter().map(|b| hex(&[*b])).collect::<Vec<_>>().join("|")
            ),
            Piece::Fixed(n) => format!("{{{n}}}"),
            Piece::Range(n, m) => format!("{{{n}-{m}}}"),
            Piece::Star => "*".into(),
        }
    }

    fn instance(&self, rng: &mut Rng) -> Vec<u8> {
        match self {
            Piece::Static(b) => b.clone(),
            Piece::AnyByte => rng.bytes(1),
            Piece::High(v) => vec![(v & 0xf0) | (rng.next() as u8 & 0x0f)],
            Piece::Alt(br) => br[rng.below(br.len() as u64) as usize].clone(),
            Piece::NegAlt(br) => loop {
                let c = rng.next() as u8;
                if !br.contains(&c) {
                    break vec![c];
                }
            },
            Piece::Fixed(n) => rng.bytes(*n as usize),
            Piece::Range(n, m) => {
                let k = rng.range(u64::from(*n), u64::from(*m));
                rng.bytes(k as usize)
            }
            Piece::Star => {
                let k = rng.below(30);
                rng.bytes(k as usize)
            }
        }
    }

    fn variable(&self) -> bool {
        matches!(self, Piece::Range(..) | Piece::Star)
    }
}

fn random_static(rng: &mut Rng) -> Piece {
    let n = rng.range(4, 6) as usize;
    Piece::Static(rng.bytes(n))
}

/// `Static (Sep Static)*`; `fixed` keeps the length constant.
fn random_pieces(rng: &mut Rng, fixed: bool) -> Vec<Piece> {
    let mut pieces = vec![random_static(rng)];
    for _ in 0..rng.below(3) {
        let sep = match rng.below(if fixed { 5 } else { 7 }) {
            0 => Piece::AnyByte,
            1 => Piece::High(rng.next() as u8),
            2 => Piece::Alt((0..rng.range(2, 3)).map(|_| rng.bytes(2)).collect()),
            3 => Piece::NegAlt((0..rng.range(1, 3)).map(|_| rng.next() as u8).collect()),
            4 => Piece::Fixed(rng.range(1, 8) as u32),
            5 => {
                let n = rng.range(0, 5) as u32;
                Piece::Range(n, n + rng.range(1, 6) as u32)
            }
            _ => Piece::Star,
        };
        pieces.push(sep);
        pieces.push(random_static(rng));
    }
    pieces
}

/// Random text for the string modifiers; `-` keeps `::f` interesting.
fn random_word(rng: &mut Rng) -> Vec<u8> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    let n = rng.range(5, 9) as usize;
    (0..n)
        .map(|_| CHARS[rng.below(CHARS.len() as u64) as usize])
        .collect()
}

fn widen(b: &[u8]) -> Vec<u8> {
    b.iter().flat_map(|c| [*c, 0]).collect()
}

/// A hex subsignature: how it is written and how to make bytes it matches.
#[derive(Clone, Debug)]
enum Hex {
    Pieces(Vec<Piece>),
    /// A word with modifiers (`i`, `w`, `a`, `f` combinations).
    Word(Vec<u8>, &'static str),
}

impl Hex {
    fn text(&self) -> String {
        match self {
            Hex::Pieces(p) => p.iter().map(Piece::text).collect(),
            Hex::Word(w, m) => format!("{}::{m}", hex(w)),
        }
    }

    fn instance(&self, rng: &mut Rng) -> Vec<u8> {
        match self {
            Hex::Pieces(p) => p.iter().flat_map(|x| x.instance(rng)).collect(),
            Hex::Word(w, m) => {
                let mut w = w.clone();
                if m.contains('i') {
                    for c in &mut w {
                        if rng.below(2) == 0 {
                            *c = c.to_ascii_lowercase();
                        } else {
                            *c = c.to_ascii_uppercase();
                        }
                    }
                }
                let wide = m.contains('w') && (!m.contains('a') || rng.below(2) == 0);
                let mut out = Vec::new();
                // Word boundaries for `f`: sometimes a letter next to the word.
                let edge = |rng: &mut Rng| -> u8 { if rng.below(4) == 0 { b'q' } else { b' ' } };
                out.push(edge(rng));
                out.extend(if wide { widen(&w) } else { w });
                out.push(edge(rng));
                out
            }
        }
    }

    fn variable(&self) -> bool {
        matches!(self, Hex::Pieces(p) if p.iter().any(Piece::variable))
    }
}

fn random_hex(rng: &mut Rng, fixed: bool) -> Hex {
    if rng.below(3) == 0 {
        const MODS: [&str; 9] = ["i", "w", "wa", "f", "fi", "wi", "a", "wf", "iwa"];
        Hex::Word(
            random_word(rng),
            MODS[rng.below(MODS.len() as u64) as usize],
        )
    } else {
        Hex::Pieces(random_pieces(rng, fixed))
    }
}

fn count(r: &mut Rng, block: bool) -> String {
    let cmp = ["=", ">", "<"][r.below(3) as usize];
    let n = r.below(4);
    if block && r.below(2) == 0 {
        format!("{cmp}{n},{}", r.below(3))
    } else {
        format!("{cmp}{n}")
    }
}

fn gen_expr(r: &mut Rng, n: u64, depth: u32) -> String {
    if depth == 0 || r.below(3) == 0 {
        let id = r.below(n);
        return if r.below(3) == 0 {
            format!("{id}{}", count(r, false))
        } else {
            id.to_string()
        };
    }
    let parts = 2 + r.below(2);
    let body: Vec<String> = (0..parts).map(|_| gen_expr(r, n, depth - 1)).collect();
    let mut text = String::new();
    for (i, p) in body.iter().enumerate() {
        if i > 0 {
            text.push(if r.below(2) == 0 { '&' } else { '|' });
        }
        text.push_str(p);
    }
    match r.below(3) {
        0 => format!("({text}){}", count(r, true)),
        _ => format!("({text})"),
    }
}

/// An expression over subsignatures `0..n` that names `n - 1`.
fn expression(r: &mut Rng, n: u64) -> String {
    loop {
        let e = gen_expr(r, n, 2);
        if LogicExpr::parse(&e).is_ok_and(|x| u64::from(x.max_id()) == n - 1) {
            return e;
        }
    }
}

struct Corpus {
    dir: tempfile::TempDir,
    db: PathBuf,
    files: PathBuf,
    /// Member files to pack into archives: (archive kind, name, bytes).
    members: Vec<(&'static str, String, Vec<u8>)>,
}

impl Corpus {
    fn write(&self, name: &str, data: &[u8]) {
        std::fs::write(self.files.join(name), data).expect("write file");
    }
}

/// Hex subsignatures with offsets and modifiers, and expressions with counts.
fn hex_family(rng: &mut Rng, c: &mut Corpus, ldb: &mut String, sigs: usize) {
    for s in 0..sigs {
        let n = rng.range(1, 4);
        // Subsignature 0 may sit at an absolute offset, the last at EOF-n.
        let abs = rng.below(3) == 0;
        let eof = n > 1 && rng.below(3) == 0;
        let subs: Vec<Hex> = (0..n)
            .map(|i| random_hex(rng, (i == 0 && abs) || (i == n - 1 && eof)))
            .collect();
        let tail = rng.range(0, 12) as usize;
        // Fixed-length instances of the anchored ones, once per signature.
        let abs_inst = abs.then(|| subs[0].instance(rng));
        let eof_inst = eof.then(|| subs[(n - 1) as usize].instance(rng));
        let mut texts: Vec<String> = subs.iter().map(Hex::text).collect();
        if let Some(a) = &abs_inst {
            let _ = a;
            let at = HEADER.len();
            texts[0] = match rng.below(2) {
                0 => format!("{at}:{}", texts[0]),
                _ => {
                    let k = rng.range(0, 3) as usize;
                    format!("{},{}:{}", at - k, k + rng.range(0, 3) as usize, texts[0])
                }
            };
        }
        if let Some(e) = &eof_inst {
            let back = e.len() + tail;
            let last = texts.len() - 1;
            texts[last] = match rng.below(2) {
                0 => format!("EOF-{back}:{}", texts[last]),
                _ => {
                    let k = rng.range(0, 3) as usize;
                    format!(
                        "EOF-{},{}:{}",
                        back + k,
                        k + rng.range(0, 3) as usize,
                        texts[last]
                    )
                }
            };
        }
        let expr = expression(rng, n);
        let name = format!("Ldb.Hex-{s}");
        let _ = writeln!(ldb, "{name};Target:0;{expr};{}", texts.join(";"));
        for f in 0..4 {
            let mut data = HEADER.to_vec();
            if let Some(a) = &abs_inst
                && rng.below(3) != 0
            {
                data.extend_from_slice(a);
            }
            // The other subsignatures, each 0 to 3 times (once if variable).
            let mut parts: Vec<Vec<u8>> = Vec::new();
            for (i, h) in subs.iter().enumerate() {
                if (i == 0 && abs) || (i == subs.len() - 1 && eof) {
                    continue;
                }
                let max = if h.variable() { 1 } else { 3 };
                for _ in 0..rng.below(max + 1) {
                    parts.push(h.instance(rng));
                }
            }
            while !parts.is_empty() {
                let k = rng.below(parts.len() as u64) as usize;
                data.extend(rng.filler(8));
                data.extend(parts.swap_remove(k));
            }
            data.extend(rng.filler(8));
            if let Some(e) = &eof_inst
                && rng.below(3) != 0
            {
                data.extend_from_slice(e);
            }
            data.extend(rng.bytes(tail));
            c.write(&format!("hex-{s:03}-{f}.bin"), &data);
        }
    }
}

/// A regex and text it matches.
fn random_regex(rng: &mut Rng) -> (String, String, Vec<u8>) {
    let w1 = String::from_utf8(random_word(rng)).unwrap_or_default();
    let w2 = String::from_utf8(random_word(rng)).unwrap_or_default();
    let w1 = w1.replace(['-', '_'], "k");
    let w2 = w2.replace(['-', '_'], "z");
    let digits = rng.range(2, 5);
    let num: String = (0..digits)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect();
    match rng.below(7) {
        0 => (
            format!("{w1}[0-9]+{w2}"),
            String::new(),
            format!("{w1}{num}{w2}").into_bytes(),
        ),
        1 => {
            let mixed: String = w1
                .chars()
                .map(|c| {
                    if rng.below(2) == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            (
                format!("{w1}\\d{{2,5}}"),
                "i".into(),
                format!("{mixed}{num}").into_bytes(),
            )
        }
        2 => (
            format!("{w1}.{{0,6}}{w2}"),
            "s".into(),
            format!("{w1}\n{num}{w2}").into_bytes(),
        ),
        3 => (format!("^{w1}"), "m".into(), format!("\n{w1}").into_bytes()),
        4 => (
            format!("{w1} \\d + "),
            "x".into(),
            format!("{w1}{num}").into_bytes(),
        ),
        5 => (
            format!("(?<=\\x3d){w1}(a|b)?"),
            String::new(),
            format!("={w1}b").into_bytes(),
        ),
        _ => (
            format!("{w1}.+?{w2}"),
            "U".into(),
            format!("{w1}{num}{w2}").into_bytes(),
        ),
    }
}

/// PCRE subsignatures: triggers, offsets, flags, global counts.
fn pcre_family(rng: &mut Rng, c: &mut Corpus, ldb: &mut String, sigs: usize) {
    for s in 0..sigs {
        let trigger = random_pieces(rng, true);
        let trig_hex: String = trigger.iter().map(Piece::text).collect();
        let (re, mut flags, text) = random_regex(rng);
        if rng.below(2) == 0 {
            flags.push('g');
        }
        // Offsets: anywhere, or right after the header (anchored, rolling, encompass).
        let at = HEADER.len();
        let (offset, place_at_start) = match rng.below(6) {
            0 => (format!("{at}:"), true),
            1 => {
                flags.push('r');
                (format!("{}:", at - 2), false)
            }
            2 => {
                flags.push('e');
                (
                    format!("{at},{}:", text.len() + rng.below(3) as usize),
                    true,
                )
            }
            3 => (format!("{},{}:", at - 1, rng.range(1, 40)), false),
            _ => (String::new(), false),
        };
        let expr = match rng.below(4) {
            0 => "0&1>1".to_string(),
            1 => "1".to_string(),
            2 => "0&1=1".to_string(),
            _ => "(0|1)>1".to_string(),
        };
        let name = format!("Ldb.Pcre-{s}");
        let _ = writeln!(
            ldb,
            "{name};Engine:81-255,Target:0;{expr};{trig_hex};{offset}0/{re}/{flags}"
        );
        for f in 0..4 {
            let mut data = HEADER.to_vec();
            let copies = rng.below(3);
            if place_at_start && copies > 0 {
                data.extend_from_slice(&text);
            }
            for _ in 0..(if place_at_start {
                copies.saturating_sub(1)
            } else {
                copies
            }) {
                data.extend(rng.filler(20).iter().map(|b| b | 0x80));
                data.extend_from_slice(&text);
            }
            data.extend(b"  ");
            if f % 2 == 0 || rng.below(3) == 0 {
                data.extend(trigger.iter().flat_map(|p| p.instance(rng)));
            }
            data.extend(b"  ");
            c.write(&format!("pcre-{s:03}-{f}.bin"), &data);
        }
    }
}

/// Regexes tied to the file's ends: `E` (dollar end only), `EOF-n`
/// offsets, and `A` (anchored) with a shifted offset.
fn pcre_ends_family(rng: &mut Rng, c: &mut Corpus, ldb: &mut String, sigs: usize) {
    let at = HEADER.len();
    for s in 0..sigs {
        let trigger = rng.bytes(5);
        let word = String::from_utf8(random_word(rng))
            .unwrap_or_default()
            .replace(['-', '_'], "q");
        let kind = s % 3;
        let tail_len = rng.range(0, 6) as usize;
        let (offset, re, flags) = match kind {
            0 => (
                String::new(),
                format!("{word}$"),
                if rng.below(2) == 0 { "E" } else { "" },
            ),
            1 => (format!("EOF-{}:", word.len() + tail_len), word.clone(), ""),
            _ => (format!("{at},{}:", rng.range(1, 4)), word.clone(), "A"),
        };
        let _ = writeln!(
            ldb,
            "Ldb.PcreEnd-{s};Engine:81-255,Target:0;0&1;{};{offset}0/{re}/{flags}",
            hex(&trigger)
        );
        for f in 0..4 {
            let mut data = HEADER.to_vec();
            if kind == 2 {
                // At the offset, or one byte later.
                if f % 2 == 1 {
                    data.push(b'.');
                }
                data.extend(word.as_bytes());
            }
            data.extend(b"\x00\x01");
            data.extend_from_slice(&trigger);
            data.extend(b"\x00\x01");
            match kind {
                0 => {
                    data.extend(word.as_bytes());
                    if f % 2 == 1 {
                        data.push(b'\n');
                    }
                }
                1 => {
                    data.extend(word.as_bytes());
                    data.extend(std::iter::repeat_n(b'.', tail_len + f % 2));
                }
                _ => {}
            }
            c.write(&format!("pcre-end-{s:03}-{f}.bin"), &data);
        }
    }
}

/// Byte compares: every number format, one or two comparisons.
fn bcomp_family(rng: &mut Rng, c: &mut Corpus, ldb: &mut String, sigs: usize) {
    for s in 0..sigs {
        let prefix = rng.bytes(5);
        let gap = rng.range(0, 4) as usize;
        let value: i64 = rng.range(0, 60000) as i64;
        let (opts, len, bytes): (&str, usize, Vec<u8>) = match rng.below(9) {
            0 => ("de", 5, format!("{value:05}").into_bytes()),
            1 => ("d", 6, format!("{value:>6}").into_bytes()),
            2 => ("hb", 4, format!("{value:04x}").into_bytes()),
            3 => ("hl", 4, format!("{value:04X}").into_bytes()),
            4 => ("ab", 6, format!("0x{value:04x}").into_bytes()),
            5 => ("ib", 2, (value as u16).to_be_bytes().to_vec()),
            6 => ("il", 4, (value as u32).to_le_bytes().to_vec()),
            7 => ("il", 8, (value as u64).to_le_bytes().to_vec()),
            _ => ("ib", 1, vec![value as u8]),
        };
        let pick = rng.below(4);
        let probe = value + rng.range(0, 4) as i64 - 2;
        let cmp = match pick {
            0 => format!(">{probe}"),
            1 => format!("<{probe}"),
            2 => format!("={value}"),
            _ => format!(">{},<{}", probe - 5, probe + 5),
        };
        let name = format!("Ldb.Bcomp-{s}");
        let _ = writeln!(
            ldb,
            "{name};Engine:81-255,Target:0;0&1;{};0(>>{}#{opts}{len}#{cmp})",
            hex(&prefix),
            prefix.len() + gap
        );
        for f in 0..3 {
            let mut data = HEADER.to_vec();
            data.extend(rng.filler(5));
            data.extend_from_slice(&prefix);
            data.extend(rng.bytes(gap));
            if f == 2 {
                // Another number.
                let mut other = bytes.clone();
                if let Some(b) = other.last_mut() {
                    *b = b.wrapping_add(1 + rng.below(3) as u8);
                }
                data.extend(other);
            } else {
                data.extend_from_slice(&bytes);
            }
            data.extend(rng.filler(6));
            c.write(&format!("bcomp-{s:03}-{f}.bin"), &data);
        }
    }
}

/// Target descriptions: file types, sizes, containers, intermediates.
fn tdb_family(rng: &mut Rng, c: &mut Corpus, ldb: &mut String) {
    const CONDS: [&str; 9] = [
        "Container:CL_TYPE_ZIP",
        "Container:CL_TYPE_POSIX_TAR",
        "Container:CL_TYPE_ANY",
        "Container:CL_TYPE_GZ",
        "Intermediates:CL_TYPE_GZ>CL_TYPE_POSIX_TAR",
        "Intermediates:CL_TYPE_ANY",
        "Intermediates:CL_TYPE_ZIP",
        "Container:CL_TYPE_ZIP,FileSize:10-60",
        "Target:7",
    ];
    for (s, cond) in CONDS.iter().enumerate() {
        let mark = random_static(rng);
        let Piece::Static(m) = &mark else { continue };
        let target = if cond.contains("Target:") {
            ""
        } else {
            "Target:0,"
        };
        let _ = writeln!(ldb, "Ldb.Tdb-{s};Engine:81-255,{target}{cond};0;{}", hex(m));
        let mut data = HEADER.to_vec();
        data.extend(rng.filler(10));
        data.extend_from_slice(m);
        data.extend(rng.filler(10));
        c.write(&format!("tdb-{s:03}-plain.bin"), &data);
        for kind in ["zip", "tar", "tgz"] {
            c.members.push((kind, format!("tdb-{s:03}"), data.clone()));
        }
    }
    // File sizes on both sides of the range, and file types.
    for s in 0..12u64 {
        let m = rng.bytes(5);
        let size = 40 + s as usize * 3;
        let lo = size as u64 - rng.below(3);
        let hi = size as u64 + rng.below(3);
        let range = match s % 3 {
            0 => format!("{lo}-{hi}"),
            1 => format!("{}-{}", hi + 1, hi + 9),
            _ => format!("0-{}", lo.saturating_sub(1)),
        };
        let _ = writeln!(
            ldb,
            "Ldb.Size-{s};Engine:81-255,Target:0,FileSize:{range};0;{}",
            hex(&m)
        );
        let mut data = HEADER.to_vec();
        data.extend_from_slice(&m);
        data.resize(size, b'.');
        c.write(&format!("size-{s:03}.bin"), &data);
    }
    for (s, (target, magic)) in [
        (6u32, &b"\x7fELF\x02\x01\x01"[..]),
        (0, b"\x7fELF\x02\x01\x01"),
    ]
    .iter()
    .enumerate()
    {
        let m = rng.bytes(6);
        let _ = writeln!(ldb, "Ldb.Target-{s};Target:{target};0;{}", hex(&m));
        let mut elf = magic.to_vec();
        elf.extend(rng.bytes(60));
        elf.extend_from_slice(&m);
        c.write(&format!("target-{s}-elf.bin"), &elf);
        let mut plain = HEADER.to_vec();
        plain.extend_from_slice(&m);
        c.write(&format!("target-{s}-plain.bin"), &plain);
    }
}

/// Packs the member files into zip, tar and tar.gz archives with Python's
/// standard library (not the readers under test).
fn pack(c: &Corpus) {
    let staging = c.dir.path().join("members");
    std::fs::create_dir_all(&staging).expect("mkdir");
    let mut list = String::new();
    for (kind, name, data) in &c.members {
        let path = staging.join(format!("{name}.{kind}.bin"));
        std::fs::write(&path, data).expect("write member");
        let _ = writeln!(list, "{kind}\t{}\t{name}", path.display());
    }
    let script = r#"
import sys, tarfile, zipfile
out = sys.argv[1]
for line in open(sys.argv[2]):
    kind, path, name = line.rstrip('\n').split('\t')
    if kind == 'zip':
        with zipfile.ZipFile(f'{out}/{name}.zip', 'w', zipfile.ZIP_DEFLATED) as z:
            z.write(path, 'member.bin')
    elif kind == 'tar':
        with tarfile.open(f'{out}/{name}.tar', 'w', format=tarfile.USTAR_FORMAT) as t:
            t.add(path, 'member.bin')
    else:
        with tarfile.open(f'{out}/{name}.tar.gz', 'w:gz', format=tarfile.USTAR_FORMAT) as t:
            t.add(path, 'member.bin')
"#;
    let list_path = c.dir.path().join("members.txt");
    std::fs::write(&list_path, list).expect("write list");
    let st = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&c.files)
        .arg(&list_path)
        .status()
        .expect("python3 runs");
    assert!(st.success(), "packing archives failed");
}

fn generate(seed: u64) -> Corpus {
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&db).expect("db dir");
    std::fs::create_dir_all(&files).expect("files dir");
    let mut c = Corpus {
        dir,
        db,
        files,
        members: Vec::new(),
    };
    let mut ldb = String::new();
    hex_family(&mut rng, &mut c, &mut ldb, 160);
    pcre_family(&mut rng, &mut c, &mut ldb, 60);
    pcre_ends_family(&mut rng, &mut c, &mut ldb, 24);
    bcomp_family(&mut rng, &mut c, &mut ldb, 50);
    tdb_family(&mut rng, &mut c, &mut ldb);
    // An allow-listed file and an ignored signature: both found by clamscan
    // without the lists, neither reported with them.
    let mut allowed = HEADER.to_vec();
    allowed.extend_from_slice(b"allow-listed logical");
    let _ = writeln!(ldb, "Ldb.Allowed;Target:0;0&1;616c6c6f77;6c6f676963616c");
    let _ = writeln!(ldb, "Ldb.Ignored;Target:0;0;69676e6f7265");
    c.write("allowed.bin", &allowed);
    c.write("ignored.bin", b"\x00\xff\x00\x01 ignore me");
    let md5 = {
        use md5::{Digest, Md5};
        hex(&Md5::digest(&allowed))
    };
    std::fs::write(
        c.db.join("gen.fp"),
        format!("{md5}:{}:Ldb.Fp\n", allowed.len()),
    )
    .expect("write fp");
    std::fs::write(c.db.join("gen.ign2"), "Ldb.Ignored\n").expect("write ign2");
    std::fs::write(c.db.join("gen.ldb"), ldb).expect("write ldb");
    pack(&c);
    c
}

type Verdicts = BTreeMap<String, BTreeSet<String>>;

fn clamscan(c: &Corpus) -> Verdicts {
    let out = Command::new("clamscan")
        .args(["--allmatch", "--no-summary", "--stdout", "-d"])
        .arg(&c.db)
        .arg(&c.files)
        .output()
        .expect("clamscan runs (install Debian's clamav package; .ci/run does)");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "clamscan failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Verdicts::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(rest) = line.strip_suffix(" FOUND")
            && let Some((path, name)) = rest.rsplit_once(": ")
        {
            let file = Path::new(path)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            v.entry(file).or_default().insert(name.to_string());
        }
    }
    v
}

fn aether(c: &Corpus) -> Verdicts {
    let mut loader = Loader::new(LoadOptions::default());
    let mut builder = EngineBuilder::new();
    loader
        .load_path(&c.db, &mut builder)
        .expect("database loads");
    let report = loader.report();
    assert!(
        report.unsupported().is_empty(),
        "signatures left unsupported: {:?}",
        report.unsupported()
    );
    let engine = builder.build().expect("engine builds");
    let mut scanner = engine.scanner();
    scanner.set_member_threads(1);
    let limits = Limits {
        all_match: true,
        ..Limits::default()
    };
    let mut v = Verdicts::new();
    let mut entries: Vec<_> = std::fs::read_dir(&c.files)
        .expect("list")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file = std::fs::File::open(entry.path()).expect("open");
        let outcome = scanner.scan_file(&file, &limits).expect("scan");
        if !outcome.detections.is_empty() {
            v.insert(
                entry.file_name().to_string_lossy().into_owned(),
                outcome.detections.into_iter().map(|d| d.name).collect(),
            );
        }
    }
    v
}

#[test]
fn same_detections_as_clamscan() {
    for seed in [0x1db0_0001u64, 0x1db0_0002] {
        let c = generate(seed);
        let want = clamscan(&c);
        let got = aether(&c);
        let all: BTreeSet<&str> = want.values().flatten().map(|s| s.as_str()).collect();
        for kind in ["Hex", "Pcre", "PcreEnd", "Bcomp", "Tdb", "Size", "Target"] {
            let n = all
                .iter()
                .filter(|s| s.contains(&format!(".{kind}-")))
                .count();
            assert!(n >= 2, "clamscan found only {n} {kind} signatures: {all:?}");
        }
        assert!(
            !all.iter()
                .any(|s| s.contains("Allowed") || s.contains("Ignored"))
        );
        let files: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
        let mut diffs = Vec::new();
        for f in files {
            let w = want.get(f).cloned().unwrap_or_default();
            let g = got.get(f).cloned().unwrap_or_default();
            if w != g {
                let only_c: Vec<&String> = w.difference(&g).collect();
                let only_a: Vec<&String> = g.difference(&w).collect();
                diffs.push(format!(
                    "{f}: only clamscan {only_c:?}, only aether {only_a:?}"
                ));
            }
        }
        assert!(
            diffs.is_empty(),
            "{} files differ (corpus kept at {}):\n{}",
            diffs.len(),
            c.dir.keep().display(),
            diffs.join("\n")
        );
    }
}
