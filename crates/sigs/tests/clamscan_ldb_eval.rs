//! `LogicExpr::eval` must decide as clamscan decides.
//!
//! Generated expressions over four subsignatures, each a distinct plain
//! string, go into one `.ldb`; generated files hold each string a chosen
//! number of times. `clamscan --allmatch` reports which signatures match each
//! file; `eval` on the same counts must name the same ones. The expressions
//! mix operators without parentheses (where ClamAV's split decides the
//! meaning), blocks with every count form, and nested blocks.

use std::collections::BTreeSet;
use std::process::Command;

use aether_sigs::LogicExpr;

/// The subsignatures: strings that cannot overlap one another or themselves.
const MARKS: [&str; 4] = ["<qa1>", "<qb2>", "<qc3>", "<qd4>"];

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

fn count(r: &mut Rng, block: bool) -> String {
    let cmp = ["=", ">", "<"][r.below(3) as usize];
    let n = r.below(4);
    if block && r.below(2) == 0 {
        format!("{cmp}{n},{}", r.below(4))
    } else {
        format!("{cmp}{n}")
    }
}

fn gen_expr(r: &mut Rng, depth: u32) -> String {
    if depth == 0 || r.below(3) == 0 {
        let id = r.below(4);
        return if r.below(3) == 0 {
            format!("{id}{}", count(r, false))
        } else {
            id.to_string()
        };
    }
    let parts = 2 + r.below(2);
    let body: Vec<String> = (0..parts).map(|_| gen_expr(r, depth - 1)).collect();
    let mut text = String::new();
    for (i, p) in body.iter().enumerate() {
        if i > 0 {
            text.push(if r.below(2) == 0 { '&' } else { '|' });
        }
        text.push_str(p);
    }
    match r.below(3) {
        0 => format!("({text}){}", count(r, true)),
        1 => format!("({text})"),
        // Unparenthesized: merges into the enclosing chain, where ClamAV's
        // split (first operator at top level, last in a block) decides.
        _ => text,
    }
}

#[test]
fn evaluation_agrees_with_clamscan() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Rng(0x1234_5678_9abc_def1);
    // Expressions that use all four subsignatures (so each line has four).
    let mut exprs: Vec<(String, LogicExpr)> = Vec::new();
    while exprs.len() < 400 {
        let text = gen_expr(&mut r, 2 + (exprs.len() % 3) as u32);
        let Ok(e) = LogicExpr::parse(&text) else {
            continue;
        };
        if e.max_id() != 3 {
            continue;
        }
        exprs.push((text, e));
    }
    let subsigs: Vec<String> = MARKS
        .iter()
        .map(|m| m.bytes().map(|b| format!("{b:02x}")).collect())
        .collect();
    let db: String = exprs
        .iter()
        .enumerate()
        .map(|(i, (text, _))| format!("E{i};Target:0;{text};{}\n", subsigs.join(";")))
        .collect();
    let db_path = dir.path().join("eval.ldb");
    std::fs::write(&db_path, db).unwrap();

    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let mut counts_of: Vec<[u32; 4]> = Vec::new();
    for f in 0..60 {
        let counts: [u32; 4] = std::array::from_fn(|_| r.below(4) as u32);
        let mut body = String::from("filler ");
        for (m, &n) in MARKS.iter().zip(&counts) {
            for _ in 0..n {
                body.push_str(m);
                body.push_str(" filler ");
            }
        }
        std::fs::write(files.join(format!("f{f}.txt")), body).unwrap();
        counts_of.push(counts);
    }

    let out = Command::new("clamscan")
        .arg("--no-summary")
        .arg("--allmatch")
        .arg("-d")
        .arg(&db_path)
        .arg(&files)
        .output()
        .expect("clamscan must be installed (.ci/run installs Debian's clamav)");
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "clamscan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut clam: BTreeSet<(usize, usize)> = BTreeSet::new();
    for line in stdout.lines() {
        // `/path/fN.txt: EI.UNOFFICIAL FOUND`
        let Some((path, rest)) = line.rsplit_once(": ") else {
            continue;
        };
        let Some(name) = rest.strip_suffix(" FOUND") else {
            continue;
        };
        let f: usize = path
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_prefix('f'))
            .and_then(|n| n.strip_suffix(".txt"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected clamscan line {line:?}"));
        let e: usize = name
            .strip_prefix('E')
            .and_then(|n| n.strip_suffix(".UNOFFICIAL"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected clamscan line {line:?}"));
        clam.insert((f, e));
    }
    let mut ours: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (f, counts) in counts_of.iter().enumerate() {
        for (e, (_, expr)) in exprs.iter().enumerate() {
            if expr.eval(counts) {
                ours.insert((f, e));
            }
        }
    }
    let diff: Vec<String> = clam
        .symmetric_difference(&ours)
        .take(20)
        .map(|&(f, e)| {
            format!(
                "{} on counts {:?}: clamscan {}, aether {}",
                exprs[e].0,
                counts_of[f],
                clam.contains(&(f, e)),
                ours.contains(&(f, e))
            )
        })
        .collect();
    assert!(
        diff.is_empty(),
        "{} of {} (file, signature) verdicts differ, e.g.:\n{}",
        clam.symmetric_difference(&ours).count(),
        counts_of.len() * exprs.len(),
        diff.join("\n")
    );
    eprintln!(
        "{} of {} verdicts are matches",
        ours.len(),
        counts_of.len() * exprs.len()
    );
    // The generated cases must exercise both outcomes.
    assert!(ours.len() > 100 && ours.len() < counts_of.len() * exprs.len() - 100);
}
